package catalog_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/projections"
	"github.com/bookingengine/booking/projections/projectiontest"
	"github.com/bookingengine/booking/queries"
)

// requireSameJSON compares what the API would send for the read model's
// items with the aggregates' views.
func requireSameJSON(t *testing.T, want []any, got any) {
	t.Helper()
	w, err := json.Marshal(want)
	require.NoError(t, err)
	g, err := json.Marshal(got)
	require.NoError(t, err)
	require.JSONEq(t, string(w), string(g))
}

// TestListsShowTheAggregatesViews: every listing shows its items as the
// single-object reads do, in name-then-id order, filtered and paged.
func TestListsShowTheAggregatesViews(t *testing.T) {
	t.Parallel()
	forEach(t, func(t *testing.T, m model) {
		ctx := context.Background()
		f := newFixture(t)
		// Another tenant's objects must never show.
		c, err := domain.NewResourceCategory(uuid.New(), other, domain.ResourceCategoryInput{Name: "Alien"}, admin, t0)
		require.NoError(t, err)
		events := append([]projections.Event{}, f.events...)
		events = append(events, f.log.Event(t, other, domain.ResourceCategoryStream(c.ID()), c.Changes()[0]))
		projectiontest.MustApply(t, m, projectiontest.Batch(projections.Cursor{}, events...))

		cats, err := m.ListResourceCategories(ctx, queries.CategoryFilter{TenantID: tenant, Limit: 10})
		require.NoError(t, err)
		requireSameJSON(t, []any{f.views[category]}, cats)

		all, err := m.ListResources(ctx, queries.ResourceFilter{TenantID: tenant})
		require.NoError(t, err)
		requireSameJSON(t, []any{f.views[res1], f.views[res2], f.views[res3]}, all)

		first, err := m.ListResources(ctx, queries.ResourceFilter{TenantID: tenant, Limit: 2})
		require.NoError(t, err)
		require.Len(t, first, 2)
		rest, err := m.ListResources(ctx, queries.ResourceFilter{TenantID: tenant, Limit: 2,
			After: &queries.NameKey{Name: first[1].Name, ID: first[1].ID}})
		require.NoError(t, err)
		requireSameJSON(t, []any{f.views[res3]}, rest)

		active, err := m.ListResources(ctx, queries.ResourceFilter{TenantID: tenant, Active: ptr(false), Kind: domain.KindSpace,
			CategoryID: category})
		require.NoError(t, err)
		requireSameJSON(t, []any{f.views[res3]}, active)
		none, err := m.ListResources(ctx, queries.ResourceFilter{TenantID: tenant, Kind: domain.KindEquipment})
		require.NoError(t, err)
		require.Empty(t, none)
		none, err = m.ListResources(ctx, queries.ResourceFilter{TenantID: tenant, CategoryID: uuid.New()})
		require.NoError(t, err)
		require.Empty(t, none)

		users, err := m.ListUsers(ctx, queries.UserFilter{TenantID: tenant})
		require.NoError(t, err)
		requireSameJSON(t, []any{f.views[client], f.views[pro]}, users) // "C" sorts before "Pro"
		users, err = m.ListUsers(ctx, queries.UserFilter{TenantID: tenant, Role: domain.RoleProfessional})
		require.NoError(t, err)
		requireSameJSON(t, []any{f.views[pro]}, users)
		users, err = m.ListUsers(ctx, queries.UserFilter{TenantID: tenant, Email: "c@example.com"})
		require.NoError(t, err)
		requireSameJSON(t, []any{f.views[client]}, users)
		users, err = m.ListUsers(ctx, queries.UserFilter{TenantID: tenant, After: &queries.NameKey{Name: "C", ID: client}})
		require.NoError(t, err)
		requireSameJSON(t, []any{f.views[pro]}, users)

		for _, tn := range []uuid.UUID{other, uuid.New()} {
			rs, err := m.ListResources(ctx, queries.ResourceFilter{TenantID: tn})
			require.NoError(t, err)
			require.Empty(t, rs)
			us, err := m.ListUsers(ctx, queries.UserFilter{TenantID: tn})
			require.NoError(t, err)
			require.Empty(t, us)
		}
		cats, err = m.ListResourceCategories(ctx, queries.CategoryFilter{TenantID: other})
		require.NoError(t, err)
		require.Len(t, cats, 1)
		require.Equal(t, "Alien", cats[0].Name)

		require.NoError(t, m.Reset(ctx))
		all, err = m.ListResources(ctx, queries.ResourceFilter{TenantID: tenant})
		require.NoError(t, err)
		require.Empty(t, all)
	})
}
