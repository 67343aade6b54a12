package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bookingengine/booking/commands"
	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/eventstore/postgres"
	"github.com/bookingengine/booking/internal/testenv"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// result is one in-process run of bookingctl.
type result struct {
	stdout, stderr string
	code           int
}

// run runs bookingctl with args and the environment env.
func run(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	m := &Main{Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return env[k] }}
	code := m.Run(context.Background(), args)
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

// mustRun runs bookingctl and fails t unless it exits 0.
func mustRun(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	r := run(t, env, args...)
	require.Equal(t, 0, r.code, "bookingctl %s: stderr %q", strings.Join(args, " "), r.stderr)
	return r.stdout
}

// testClock is the command side's clock, moved by the test.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// world is a migrated database with a tenant (open all day, every day, in
// UTC), two resources and a client, written through the real command side.
type world struct {
	t        *testing.T
	ctx      context.Context
	env      map[string]string
	store    *postgres.Store
	h        *commands.Handlers
	clock    *testClock
	tenant   uuid.UUID
	resource uuid.UUID
	other    uuid.UUID
	client   uuid.UUID
	adminID  string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	url := testenv.NewDatabase(t)
	store, err := postgres.Open(ctx, url, postgres.Config{MaxConns: 4, Migrations: migrationSets()})
	require.NoError(t, err)
	t.Cleanup(store.Close)
	clock := &testClock{t: time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)}
	w := &world{
		t: t, ctx: ctx, env: map[string]string{"DATABASE_URL": url}, store: store,
		h: commands.New(store, commands.WithClock(clock.Now)), clock: clock,
		adminID: uuid.NewString(),
	}
	day := []domain.TimeRange{{Start: "00:00", End: "24:00"}}
	week := domain.WeeklyHours{"mon": day, "tue": day, "wed": day, "thu": day, "fri": day, "sat": day, "sun": day}
	res, err := w.h.CreateTenant(ctx, commands.Meta{Actor: domain.Actor{ID: "platform", Role: domain.RolePlatformAdmin}, CorrelationID: "corr-tenant"},
		commands.CreateTenant{Input: domain.TenantInput{
			Name: "Clinic", Domain: uuid.NewString()[:8] + ".example.com",
			Settings: &domain.SettingsInput{BusinessHours: &week},
		}})
	require.NoError(t, err)
	w.tenant = res.ID
	w.step()
	r, err := w.h.CreateResource(ctx, w.meta("resource"), commands.CreateResource{Input: domain.ResourceInput{Name: "Room 1", Kind: domain.KindSpace, Capacity: 1}})
	require.NoError(t, err)
	w.resource = r.ID
	r, err = w.h.CreateResource(ctx, w.meta("other"), commands.CreateResource{Input: domain.ResourceInput{Name: "Room 2", Kind: domain.KindSpace, Capacity: 1}})
	require.NoError(t, err)
	w.other = r.ID
	u, err := w.h.CreateUser(ctx, w.meta("client"), commands.CreateUser{Input: domain.UserInput{Email: "ana@example.com", Name: "Ana", Role: domain.RoleClient}})
	require.NoError(t, err)
	w.client = u.ID
	w.step()
	return w
}

// meta is the tenant admin's command metadata, with correlation and
// causation ids derived from name so the history can be checked.
func (w *world) meta(name string) commands.Meta {
	return commands.Meta{
		TenantID: w.tenant, Actor: domain.Actor{ID: w.adminID, Role: domain.RoleAdmin},
		CorrelationID: "corr-" + name, CausationID: "cause-" + name, RequestID: "req-" + name,
	}
}

// step moves the command clock and lets the database clock (recorded_at is
// the appending transaction's start) pass, so the steps of a test lie at
// distinct, ordered recorded_at times.
func (w *world) step() {
	w.clock.Add(time.Minute)
	time.Sleep(20 * time.Millisecond)
}

// book creates a confirmed booking on resource at the given December 2026
// day and hour (UTC), for one hour.
func (w *world) book(name string, resource uuid.UUID, day, hour int) uuid.UUID {
	w.t.Helper()
	start := time.Date(2026, 12, day, hour, 0, 0, 0, time.UTC)
	res, err := w.h.CreateBooking(w.ctx, w.meta(name), commands.CreateBooking{Request: domain.BookingRequest{
		ResourceID: resource, ClientID: w.client, Start: start, End: start.Add(time.Hour), Title: "Visit " + name,
	}})
	require.NoError(w.t, err)
	return res.ID
}

// bookingView returns the booking as the command side sees it now, as JSON.
func (w *world) bookingView(id uuid.UUID) domain.BookingView {
	w.t.Helper()
	b, err := w.h.Booking(w.ctx, w.meta("read"), id)
	require.NoError(w.t, err)
	return b.View()
}

// lastRecorded returns the recorded_at of the stream's last event.
func (w *world) lastRecorded(stream string) time.Time {
	w.t.Helper()
	evs, err := w.store.Load(w.ctx, stream, 0)
	require.NoError(w.t, err)
	require.NotEmpty(w.t, evs, stream)
	return evs[len(evs)-1].RecordedAt
}

// between returns the instant halfway between a and b, in microseconds as
// the database stores times.
func between(a, b time.Time) time.Time {
	return a.Add(b.Sub(a) / 2).Truncate(time.Microsecond)
}

func rfc(t time.Time) string { return t.Format(time.RFC3339Nano) }
