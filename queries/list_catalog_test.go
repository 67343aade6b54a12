package queries_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/commands"
	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/eventstore/memory"
	"github.com/bookingengine/booking/projections"
	"github.com/bookingengine/booking/projections/catalog"
	"github.com/bookingengine/booking/projections/eventsource"
	"github.com/bookingengine/booking/queries"
)

// TestListCatalog: pages walk every object once in name-then-id order,
// users are for staff only, and bad parameters are validation errors.
func TestListCatalog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := memory.New()
	t.Cleanup(store.Close)
	cmd := commands.New(store)
	platform := commands.Meta{Actor: domain.Actor{ID: "p", Role: domain.RolePlatformAdmin}}
	tn, err := cmd.CreateTenant(ctx, platform, commands.CreateTenant{Input: domain.TenantInput{Name: "T", Domain: "t.example.com"}})
	require.NoError(t, err)
	meta := commands.Meta{TenantID: tn.ID, Actor: domain.Actor{ID: "a", Role: domain.RoleAdmin}}
	cat, err := cmd.CreateResourceCategory(ctx, meta, commands.CreateResourceCategory{Input: domain.ResourceCategoryInput{Name: "Rooms"}})
	require.NoError(t, err)
	for i := range 5 {
		_, err := cmd.CreateResource(ctx, meta, commands.CreateResource{Input: domain.ResourceInput{
			CategoryID: &cat.ID, Name: fmt.Sprintf("Room %d", 4-i), Kind: domain.KindSpace}})
		require.NoError(t, err)
	}
	last, err := cmd.CreateUser(ctx, meta, commands.CreateUser{Input: domain.UserInput{Email: "Ana@Example.com", Name: "Ana", Role: domain.RoleClient}})
	require.NoError(t, err)

	src := eventsource.New(store, 0)
	cm := catalog.NewMemory()
	h := queries.NewListCatalogHandler(cm, projections.NewWaiter(src, cm))
	_, err = projections.NewRunner(src, cm, projections.RunnerConfig{}).CatchUp(ctx)
	require.NoError(t, err)
	admin := queries.Viewer{TenantID: tn.ID, UserID: "a", Role: domain.RoleAdmin}
	client := queries.Viewer{TenantID: tn.ID, UserID: last.ID.String(), Role: domain.RoleClient}

	var names []string
	q := queries.ListResources{Viewer: client, Limit: 2, MinPosition: last.Position}
	for pages := 0; ; pages++ {
		require.Less(t, pages, 3)
		page, err := h.Resources(ctx, q)
		require.NoError(t, err)
		for _, r := range page.Resources {
			names = append(names, r.Name)
		}
		if page.NextCursor == "" {
			break
		}
		q.Cursor = page.NextCursor
	}
	require.Equal(t, []string{"Room 0", "Room 1", "Room 2", "Room 3", "Room 4"}, names)

	cats, err := h.ResourceCategories(ctx, queries.ListResourceCategories{Viewer: client})
	require.NoError(t, err)
	require.Len(t, cats.ResourceCategories, 1)
	require.Empty(t, cats.NextCursor)

	users, err := h.Users(ctx, queries.ListUsers{Viewer: admin, Email: " ana@example.COM "})
	require.NoError(t, err)
	require.Len(t, users.Users, 1)
	empty, err := h.Users(ctx, queries.ListUsers{Viewer: queries.Viewer{TenantID: uuid.New(), Role: domain.RoleAdmin}})
	require.NoError(t, err)
	require.NotNil(t, empty.Users, "an empty page is [] in JSON")
	require.Empty(t, empty.Users)

	for _, role := range []domain.Role{domain.RoleClient, domain.RoleProfessional} {
		_, err = h.Users(ctx, queries.ListUsers{Viewer: queries.Viewer{TenantID: tn.ID, Role: role}})
		require.ErrorIs(t, err, domain.ErrForbidden)
	}
	var v *domain.ValidationError
	_, err = h.Resources(ctx, queries.ListResources{Viewer: admin, Limit: queries.MaxCatalogPageSize + 1, Kind: "boat", Cursor: "%%"})
	require.ErrorAs(t, err, &v)
	require.Len(t, v.Errors, 3)
	_, err = h.Users(ctx, queries.ListUsers{Viewer: admin, Role: "king"})
	require.ErrorAs(t, err, &v)
}
