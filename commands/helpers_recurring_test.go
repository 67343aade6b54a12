package commands_test

import (
	"context"
	"sync"
	"testing"
	"time"
	_ "time/tzdata" // the DST cases must not depend on the host's zone database

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/commands"
	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/eventstore"
	"github.com/bookingengine/booking/eventstore/memory"
)

// testClock is a clock the test moves.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// zoneFixture is a fixture whose tenant lives in zone tz, open around the
// clock every day, with a clock the test can move.
type zoneFixture struct {
	fixture
	clock *testClock
	loc   *time.Location
}

func newZoneFixture(t *testing.T, tz string, now time.Time, capacity int, settings domain.SettingsInput) zoneFixture {
	t.Helper()
	ctx := context.Background()
	store := memory.New()
	t.Cleanup(store.Close)
	clk := &testClock{now: now}
	h := commands.New(store, commands.WithClock(clk.Now))
	if settings.BusinessHours == nil {
		day := []domain.TimeRange{{Start: "00:00", End: "24:00"}}
		w := domain.WeeklyHours{"mon": day, "tue": day, "wed": day, "thu": day, "fri": day, "sat": day, "sun": day}
		settings.BusinessHours = &w
	}
	settings.Timezone = &tz
	res, err := h.CreateTenant(ctx, commands.Meta{Actor: platform}, commands.CreateTenant{Input: domain.TenantInput{
		Name: "Clinic", Domain: uuid.NewString()[:8] + ".example.com", Settings: &settings,
	}})
	require.NoError(t, err)
	admin := commands.Meta{TenantID: res.ID, Actor: domain.Actor{ID: uuid.NewString(), Role: domain.RoleAdmin}}
	r, err := h.CreateResource(ctx, admin, commands.CreateResource{Input: domain.ResourceInput{Name: "Room", Kind: domain.KindSpace, Capacity: capacity}})
	require.NoError(t, err)
	loc, err := time.LoadLocation(tz)
	require.NoError(t, err)
	f := zoneFixture{fixture: fixture{h: h, store: store, tenant: res.ID, admin: admin, resource: r.ID}, clock: clk, loc: loc}
	f.client = f.newClient(t)
	return f
}

func (f zoneFixture) newClient(t *testing.T) uuid.UUID {
	t.Helper()
	u, err := f.h.CreateUser(context.Background(), f.admin, commands.CreateUser{Input: domain.UserInput{
		Email: uuid.NewString()[:8] + "@example.com", Name: "Client", Role: domain.RoleClient}})
	require.NoError(t, err)
	return u.ID
}

func (f zoneFixture) clientMeta(id uuid.UUID) commands.Meta {
	return commands.Meta{TenantID: f.tenant, Actor: domain.Actor{ID: id.String(), Role: domain.RoleClient}}
}

// local is a wall-clock time in the fixture's zone.
func (f zoneFixture) local(y int, mo time.Month, d, h, mi int) time.Time {
	return time.Date(y, mo, d, h, mi, 0, 0, f.loc)
}

func (f zoneFixture) series(ctx context.Context, start time.Time, minutes int, rec commands.Recurrence) (domain.SeriesView, error) {
	res, err := f.h.CreateSeries(ctx, f.admin, commands.CreateSeries{
		Request:    domain.BookingRequest{ResourceID: f.resource, ClientID: f.client, Start: start, End: start.Add(time.Duration(minutes) * time.Minute)},
		Recurrence: rec,
	})
	if err != nil {
		return domain.SeriesView{}, err
	}
	return res.View.(domain.SeriesView), nil
}

func (f zoneFixture) booking(t *testing.T, id uuid.UUID) *domain.Booking {
	t.Helper()
	b, err := f.h.Booking(context.Background(), f.admin, id)
	require.NoError(t, err)
	return b
}

// events returns the events of the given types in the store, oldest first.
func events(t *testing.T, store eventstore.Store, category string, types ...string) []eventstore.RecordedEvent {
	t.Helper()
	recs, err := store.ReadAll(context.Background(), eventstore.Cursor{}, eventstore.Filter{Categories: []string{category}}, 100000)
	require.NoError(t, err)
	var out []eventstore.RecordedEvent
	for _, r := range recs {
		for _, typ := range types {
			if r.Type == typ {
				out = append(out, r)
			}
		}
	}
	return out
}

func ptr[T any](v T) *T { return &v }
