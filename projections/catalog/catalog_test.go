package catalog_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/projections"
	"github.com/bookingengine/booking/projections/catalog"
	"github.com/bookingengine/booking/projections/projectiontest"
	"github.com/bookingengine/booking/queries"
)

type model interface {
	projections.Projection
	queries.PolicyReadModel
	queries.UserLinks
	queries.CatalogReadModel
}

var implementations = []struct {
	name string
	new  func(t *testing.T) model
}{
	{"Memory", func(*testing.T) model { return catalog.NewMemory() }},
	{"Postgres", func(t *testing.T) model {
		return catalog.NewPostgres(projectiontest.MustPool(t, catalog.Migrations()))
	}},
}

func forEach(t *testing.T, fn func(t *testing.T, m model)) {
	t.Helper()
	for _, impl := range implementations {
		t.Run(impl.name, func(t *testing.T) {
			t.Parallel()
			fn(t, impl.new(t))
		})
	}
}

var (
	tenant   = uuid.MustParse("10000000-0000-0000-0000-000000000001")
	other    = uuid.MustParse("10000000-0000-0000-0000-000000000002")
	category = uuid.MustParse("50000000-0000-0000-0000-000000000001")
	res1     = uuid.MustParse("20000000-0000-0000-0000-000000000001")
	res2     = uuid.MustParse("20000000-0000-0000-0000-000000000002")
	res3     = uuid.MustParse("20000000-0000-0000-0000-000000000003")
	unknown  = uuid.MustParse("20000000-0000-0000-0000-0000000000ff")
	pro      = uuid.MustParse("30000000-0000-0000-0000-000000000001")
	client   = uuid.MustParse("30000000-0000-0000-0000-000000000002")
	admin    = domain.Actor{ID: "admin", Role: domain.RoleAdmin}
	t0       = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
)

func ptr[T any](v T) *T { return &v }

// fixture records the same events on real aggregates (through their
// commands) and as a log, so the read model's policies can be compared
// with the command side's.
type fixture struct {
	log       *projectiontest.Log
	events    []projections.Event
	tenant    *domain.Tenant
	resources map[uuid.UUID]*domain.Resource
	// views are the aggregates' View() after the fixture's events.
	views map[uuid.UUID]any
}

func (f *fixture) record(t *testing.T, stream string, changes []domain.Event) {
	t.Helper()
	for _, e := range changes {
		f.events = append(f.events, f.log.Event(t, tenant, stream, e))
	}
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{log: projectiontest.NewLog(), resources: map[uuid.UUID]*domain.Resource{}, views: map[uuid.UUID]any{}}
	tn, err := domain.NewTenant(tenant, domain.TenantInput{Name: "Clinic", Domain: "clinic.example.com", Settings: &domain.SettingsInput{
		Timezone: ptr("America/New_York"), BufferAfterMinutes: ptr(10), SlotGranularityMinutes: ptr(30),
	}}, admin, t0)
	require.NoError(t, err)
	require.NoError(t, tn.ChangeSettings(domain.SettingsInput{Timezone: ptr("Europe/Lisbon"), BufferBeforeMinutes: ptr(5),
		Closures: &[]domain.Closure{{Date: "2026-03-30"}}}.Resolve(), admin, t0))
	f.record(t, domain.TenantStream(tenant), tn.Changes())
	tn.ClearChanges()
	f.tenant = tn

	c, err := domain.NewResourceCategory(category, tenant, domain.ResourceCategoryInput{Name: "Rooms"}, admin, t0)
	require.NoError(t, err)
	f.record(t, domain.ResourceCategoryStream(category), c.Changes())
	f.views[category] = c.View()

	for i, id := range []uuid.UUID{res1, res2, res3} {
		r, err := domain.NewResource(id, tenant, domain.ResourceInput{CategoryID: ptr(category), Name: "Room", Kind: domain.KindSpace,
			Capacity: i + 1}, nil, admin, t0)
		require.NoError(t, err)
		f.resources[id] = r
	}
	require.NoError(t, f.resources[res1].SetAvailability(domain.Availability{
		Weekly:    domain.WeeklyHours{"mon": {{Start: "10:00", End: "12:00"}}},
		Overrides: []domain.Override{{Date: "2026-03-31", Intervals: []domain.TimeRange{{Start: "08:00", End: "09:00"}}}},
	}, admin, t0))
	require.NoError(t, f.resources[res2].Update(domain.ResourcePatch{Timezone: ptr("Asia/Kolkata"), Capacity: ptr(4)}, nil, admin, t0))
	require.NoError(t, f.resources[res3].Deactivate(admin, t0))
	for _, id := range []uuid.UUID{res1, res2, res3} {
		f.record(t, domain.ResourceStream(id), f.resources[id].Changes())
		f.resources[id].ClearChanges()
		f.views[id] = f.resources[id].View()
	}

	u, err := domain.NewUser(pro, tenant, domain.UserInput{Email: "pro@example.com", Name: "Pro", Role: domain.RoleProfessional}, nil, admin, t0)
	require.NoError(t, err)
	require.NoError(t, u.Update(domain.UserPatch{ResourceID: ptr(res1)}, nil, admin, t0))
	f.record(t, domain.UserStream(pro), u.Changes())
	f.views[pro] = u.View()
	cl, err := domain.NewUser(client, tenant, domain.UserInput{Email: "c@example.com", Name: "C", Role: domain.RoleClient,
		Attributes: map[string]any{"vip": true}}, nil, admin, t0)
	require.NoError(t, err)
	f.record(t, domain.UserStream(client), cl.Changes())
	f.views[client] = cl.View()
	return f
}

// summary is what a policy decides over a fortnight around the DST change
// in Europe: equal summaries mean policies that accept the same bookings.
type summary struct {
	Resource      uuid.UUID
	Zone          string
	Capacity      int
	Active        bool
	PolicyVersion int
	Windows       []domain.Interval
	Candidates    []time.Time
	Occupied      [2]time.Time
}

func summarize(p domain.Policy) summary {
	from, to := time.Date(2026, 3, 23, 0, 0, 0, 0, time.UTC), time.Date(2026, 4, 6, 0, 0, 0, 0, time.UTC)
	o1, o2 := p.Occupied(from, to)
	return summary{Resource: p.ResourceID(), Zone: p.Location().String(), Capacity: p.Capacity(), Active: p.Active(),
		PolicyVersion: p.PolicyVersion(), Windows: p.Windows(from, to),
		Candidates: p.Candidates(from, to, time.Hour, t0), Occupied: [2]time.Time{o1, o2}}
}

// state is everything the model answers about the fixture's ids.
func state(t *testing.T, m model) map[string]any {
	t.Helper()
	ctx := context.Background()
	out := map[string]any{}
	for _, id := range []uuid.UUID{res1, res2, res3, unknown} {
		p, err := m.ResourcePolicy(ctx, tenant, id)
		if err != nil {
			out["resource "+id.String()] = err.Error()
			continue
		}
		out["resource "+id.String()] = summarize(p)
	}
	ps, err := m.CategoryPolicies(ctx, tenant, category)
	require.NoError(t, err)
	var ids []uuid.UUID
	for _, p := range ps {
		ids = append(ids, p.Policy.ResourceID())
	}
	out["category"] = ids
	for _, u := range []uuid.UUID{pro, client} {
		rid, ok, err := m.LinkedResource(ctx, tenant, u)
		require.NoError(t, err)
		out["user "+u.String()] = []any{rid, ok}
	}
	cp, err := m.Checkpoint(ctx)
	require.NoError(t, err)
	out["checkpoint"] = cp
	return out
}

// TestPoliciesMatchTheCommandSide: the read model builds policies that
// decide exactly as those built from the aggregates.
func TestPoliciesMatchTheCommandSide(t *testing.T) {
	t.Parallel()
	forEach(t, func(t *testing.T, m model) {
		ctx := context.Background()
		f := newFixture(t)
		projectiontest.MustApply(t, m, projectiontest.Batch(projections.Cursor{}, f.events...))
		for _, id := range []uuid.UUID{res1, res2, res3} {
			got, err := m.ResourcePolicy(ctx, tenant, id)
			require.NoError(t, err)
			require.Equal(t, summarize(domain.NewPolicy(f.tenant, f.resources[id])), summarize(got), "resource %s", id)
		}
		ps, err := m.CategoryPolicies(ctx, tenant, category)
		require.NoError(t, err)
		require.Len(t, ps, 2, "the inactive resource is left out")
		require.Equal(t, []uuid.UUID{res1, res2}, []uuid.UUID{ps[0].Policy.ResourceID(), ps[1].Policy.ResourceID()})
		require.Equal(t, 2, summarize(ps[0].Policy).PolicyVersion)
		require.NotEqual(t, ps[0].Rules, ps[1].Rules, "other zone and hours")

		_, err = m.ResourcePolicy(ctx, other, res1)
		require.ErrorIs(t, err, domain.ErrNotFound, "another tenant's resource")
		_, err = m.CategoryPolicies(ctx, other, category)
		require.ErrorIs(t, err, domain.ErrNotFound)
		_, err = m.CategoryPolicies(ctx, tenant, uuid.New())
		require.ErrorIs(t, err, domain.ErrNotFound)

		rid, ok, err := m.LinkedResource(ctx, tenant, pro)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, res1, rid)
		_, ok, err = m.LinkedResource(ctx, tenant, client)
		require.NoError(t, err)
		require.False(t, ok)
		_, ok, err = m.LinkedResource(ctx, other, pro)
		require.NoError(t, err)
		require.False(t, ok)
	})
}

func TestApplyIsIdempotent(t *testing.T) {
	t.Parallel()
	forEach(t, func(t *testing.T, m model) {
		f := newFixture(t)
		half := len(f.events) / 2
		projectiontest.MustApply(t, m, projectiontest.Batch(projections.Cursor{}, f.events[:half]...))
		projectiontest.MustApply(t, m, projectiontest.Batch(projections.CursorOf(f.events[half-1]), f.events[half:]...))
		want := state(t, m)

		projectiontest.MustApply(t, m, projectiontest.Bus(f.events...))
		for i := len(f.events) - 1; i >= 0; i-- {
			projectiontest.MustApply(t, m, projectiontest.Bus(f.events[i]))
		}
		require.Equal(t, want, state(t, m))
		require.ErrorIs(t, m.Apply(context.Background(), projectiontest.Batch(projections.Cursor{}, f.events...)), projections.ErrCheckpointMoved)
		require.Equal(t, want, state(t, m))
	})
}

func TestResetEmptiesTheModel(t *testing.T) {
	t.Parallel()
	forEach(t, func(t *testing.T, m model) {
		f := newFixture(t)
		projectiontest.MustApply(t, m, projectiontest.Batch(projections.Cursor{}, f.events...))
		require.NoError(t, m.Reset(context.Background()))
		_, err := m.ResourcePolicy(context.Background(), tenant, res1)
		require.ErrorIs(t, err, domain.ErrNotFound)
		_, err = m.CategoryPolicies(context.Background(), tenant, category)
		require.ErrorIs(t, err, domain.ErrNotFound)
	})
}
