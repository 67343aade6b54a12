package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/commands"
	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/eventstore"
	"github.com/bookingengine/booking/projections/readside"
)

// catchUpReadModels applies every committed event to the read models, as
// a running bookingd's projectors would.
func catchUpReadModels(t *testing.T, w *world) {
	t.Helper()
	rs, err := readside.Open(w.ctx, w.store, readside.Config{SkipProjectors: true, Now: w.clock.Now})
	require.NoError(t, err)
	defer func() { require.NoError(t, rs.Close()) }()
	_, err = rs.CatchUp(w.ctx)
	require.NoError(t, err)
}

// injectBooking appends a confirmed booking of resource [start, end)
// straight to the store, behind the command side's back: with
// reserve, also its schedule.reserved in every bucket, each appended
// whatever the bucket's version (the guard a broken command side would
// skip).
func injectBooking(t *testing.T, w *world, tenant, resource uuid.UUID, start, end time.Time, seats int, reserve bool) uuid.UUID {
	t.Helper()
	id := uuid.New()
	created := domain.BookingCreated{BookingID: id, TenantID: tenant, ResourceID: resource, ClientID: w.client,
		Start: start, End: end, Seats: seats, Title: "injected", Status: domain.StatusConfirmed, PolicyVersion: 1,
		Timezone: "UTC", CreatedBy: "intruder", CreatedAt: w.clock.Now()}
	appends := []eventstore.StreamAppend{{StreamID: domain.BookingStream(id), TenantID: tenant, Expected: eventstore.NoStream,
		Events: []eventstore.EventData{mustEventData(t, created)}}}
	if reserve {
		r := domain.ScheduleReserved{BookingID: id, ResourceID: resource, Start: start, End: end,
			OccupiedStart: start, OccupiedEnd: end, Seats: seats}
		for _, s := range domain.ScheduleStreams(resource, start, end) {
			appends = append(appends, eventstore.StreamAppend{StreamID: s, TenantID: tenant, Expected: eventstore.Any,
				Events: []eventstore.EventData{mustEventData(t, r)}})
		}
	}
	_, err := w.store.Append(w.ctx, appends...)
	require.NoError(t, err)
	return id
}

func mustEventData(t *testing.T, e domain.Event) eventstore.EventData {
	t.Helper()
	data, err := domain.MarshalEvent(e)
	require.NoError(t, err)
	return eventstore.EventData{ID: uuid.New(), Type: e.EventType(), Version: 1, Data: data,
		Metadata: eventstore.Metadata{Actor: "intruder"}}
}

func dec(day, hour int) time.Time { return time.Date(2026, 12, day, hour, 0, 0, 0, time.UTC) }

var auditSummary = regexp.MustCompile(`audited (\d+) bookings and (\d+) holds on (\d+) resources, (\d+) bucket reservations, (?:(\d+) read-model rows|read model skipped): (\d+) overlaps, (\d+) bucket disagreements, (\d+) read-model disagreements\n$`)

func TestAuditPassesACleanStore(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.book("kept", w.resource, 1, 9)
	moved := w.book("moved", w.resource, 1, 11)
	w.step()
	_, err := w.h.RescheduleBooking(w.ctx, w.meta("move"), commands.RescheduleBooking{BookingID: moved, Start: dec(2, 23), End: dec(3, 1)})
	require.NoError(t, err)
	cancelled := w.book("cancelled", w.resource, 1, 13)
	_, err = w.h.ChangeBookingStatus(w.ctx, w.meta("cancel"), commands.ChangeBookingStatus{BookingID: cancelled, To: domain.StatusCancelled})
	require.NoError(t, err)
	// The cancelled booking's time is booked again.
	w.book("again", w.resource, 1, 13)
	_, err = w.h.PlaceHold(w.ctx, w.meta("hold"), commands.PlaceHold{Request: domain.HoldRequest{
		ResourceID: w.other, ClientID: w.client, Start: dec(4, 10), End: dec(4, 11), Seats: 1, TTLMinutes: 30}})
	require.NoError(t, err)

	// Capacity 2, two overlapping bookings, then the capacity is lowered:
	// the bookings accepted before stay legitimate.
	r, err := w.h.CreateResource(w.ctx, w.meta("pair"), commands.CreateResource{Input: domain.ResourceInput{Name: "Pair", Kind: domain.KindSpace, Capacity: 2}})
	require.NoError(t, err)
	w.book("pair-1", r.ID, 5, 10)
	w.book("pair-2", r.ID, 5, 10)
	one := 1
	_, err = w.h.UpdateResource(w.ctx, w.meta("lower"), commands.UpdateResource{ResourceID: r.ID, Patch: domain.ResourcePatch{Capacity: &one}})
	require.NoError(t, err)
	catchUpReadModels(t, w)

	out := mustRun(t, w.env, "audit", "--wait", "0s")
	m := auditSummary.FindStringSubmatch(out)
	require.NotNil(t, m, out)
	require.Equal(t, []string{"6", "1", "3", "7", "7", "0", "0", "0"}, m[1:], out)
	require.Equal(t, strings.Count(out, "\n"), 1, out)

	out = mustRun(t, w.env, "audit", "--skip-read-model", "--tenant", w.tenant.String())
	require.Contains(t, out, "read model skipped: 0 overlaps")
}

func TestAuditFindsAnInjectedOverlap(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	first := w.book("first", w.resource, 1, 9)
	// Half an hour into the first booking, in the same bucket.
	intruder := injectBooking(t, w, w.tenant, w.resource, dec(1, 9).Add(30*time.Minute), dec(1, 10).Add(30*time.Minute), 1, true)
	catchUpReadModels(t, w)

	r := run(t, w.env, "audit", "--wait", "0s")
	t.Logf("bookingctl audit:\n%s%s", r.stdout, r.stderr)
	require.Equal(t, 1, r.code, r.stdout)
	for _, src := range []string{"store", "read_model"} {
		line := findLine(r.stdout, "OVERLAP source="+src+" ")
		require.NotEmpty(t, line, "source %s in\n%s", src, r.stdout)
		require.Contains(t, line, "resource="+w.resource.String())
		require.Contains(t, line, "at=2026-12-01T09:30:00Z seats=2 capacity=1")
		require.Contains(t, line, first.String())
		require.Contains(t, line, intruder.String())
	}
	require.Contains(t, r.stdout, ": 2 overlaps, 0 bucket disagreements, 0 read-model disagreements\n")
	require.Equal(t, "bookingctl audit: 2 problems found: 2 overlaps, 0 bucket disagreements, 0 read-model disagreements\n", r.stderr)

	// Another tenant's audit does not see it.
	other := newTenant(t, w)
	out := mustRun(t, w.env, "audit", "--wait", "0s", "--tenant", other.String())
	require.Contains(t, out, "audited 0 bookings and 0 holds on 0 resources")
}

func TestAuditFindsBucketsThatDisagree(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.book("fine", w.resource, 1, 9)
	unreserved := injectBooking(t, w, w.tenant, w.resource, dec(2, 23), dec(3, 1), 1, false)
	stray := uuid.New()
	_, err := w.store.Append(w.ctx, eventstore.StreamAppend{StreamID: domain.ScheduleStream(w.other, dec(6, 0)), TenantID: w.tenant,
		Expected: eventstore.Any, Events: []eventstore.EventData{mustEventData(t, domain.ScheduleReserved{BookingID: stray, ResourceID: w.other,
			Start: dec(6, 9), End: dec(6, 10), OccupiedStart: dec(6, 9), OccupiedEnd: dec(6, 10), Seats: 1})}})
	require.NoError(t, err)

	r := run(t, w.env, "audit", "--skip-read-model")
	t.Logf("bookingctl audit:\n%s%s", r.stdout, r.stderr)
	require.Equal(t, 1, r.code, r.stdout)
	require.Contains(t, r.stdout, "BUCKET missing bucket="+domain.ScheduleStream(w.resource, dec(2, 0))+" booking="+unreserved.String())
	require.Contains(t, r.stdout, "BUCKET missing bucket="+domain.ScheduleStream(w.resource, dec(3, 0))+" booking="+unreserved.String())
	require.Contains(t, r.stdout, "BUCKET extra bucket="+domain.ScheduleStream(w.other, dec(6, 0))+" id="+stray.String()+" (no booking or hold of that id)")
	require.Contains(t, r.stdout, ": 0 overlaps, 3 bucket disagreements, ")
}

func TestAuditFindsATamperedReadModel(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	a := w.book("a", w.resource, 1, 9)
	w.book("b", w.resource, 1, 11)
	catchUpReadModels(t, w)
	mustRun(t, w.env, "audit", "--wait", "0s")

	pool := w.store.Pool()
	_, err := pool.Exec(w.ctx, `UPDATE read_availability SET seats = 2 WHERE booking_id = $1`, a.String())
	require.NoError(t, err)
	ghost := uuid.New()
	_, err = pool.Exec(w.ctx, `INSERT INTO read_availability (booking_id, tenant_id, resource_id, start_at, end_at, occupied, seats, active, version)
		VALUES ($1, $2, $3, $4, $5, tstzrange($4, $5), 1, true, 1)`, ghost.String(), w.tenant.String(), w.resource.String(), dec(1, 11), dec(1, 12))
	require.NoError(t, err)

	r := run(t, w.env, "audit", "--wait", "0s")
	t.Logf("bookingctl audit:\n%s%s", r.stdout, r.stderr)
	require.Equal(t, 1, r.code, r.stdout)
	require.Contains(t, r.stdout, "READ_MODEL differs booking="+a.String()+" version=1: seats 2, store 1\n")
	require.Contains(t, r.stdout, "READ_MODEL extra booking="+ghost.String())
	require.Contains(t, r.stdout, "OVERLAP source=read_model resource="+w.resource.String())
	require.Contains(t, r.stdout, ": 2 overlaps, 0 bucket disagreements, 2 read-model disagreements\n")
	require.NotContains(t, r.stdout, "OVERLAP source=store")
}

func TestAuditWaitsForALaggingReadModel(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	catchUpReadModels(t, w)
	late := w.book("late", w.resource, 1, 9)

	r := run(t, w.env, "audit", "--wait", "0s")
	require.Equal(t, 1, r.code, r.stdout)
	require.Contains(t, r.stdout, "READ_MODEL missing booking="+late.String()+" version=1 (not applied within 0s)")

	// A projector that catches up while the audit waits satisfies it. The
	// audit may end once the read models it reads have caught up, before
	// the others: wait for the projector before the store closes.
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(500 * time.Millisecond)
		catchUpReadModels(t, w)
	}()
	out := mustRun(t, w.env, "audit", "--wait", "20s")
	<-done
	require.Contains(t, out, "0 read-model disagreements")
}

func TestAuditUsage(t *testing.T) {
	t.Parallel()
	r := run(t, map[string]string{"DATABASE_URL": "postgres://unused"}, "audit", "--tenant", "nope")
	require.Equal(t, 2, r.code)
	require.Contains(t, r.stderr, `--tenant "nope" is not a uuid`)
	r = run(t, map[string]string{}, "audit")
	require.Equal(t, 2, r.code)
	require.Contains(t, r.stderr, "DATABASE_URL is not set")
	out := mustRun(t, nil, "audit", "--help")
	require.Contains(t, out, "--skip-read-model")
}

// findLine returns the first line of out that starts with prefix.
func findLine(out, prefix string) string {
	for l := range strings.Lines(out) {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

// newTenant creates another tenant in w's database.
func newTenant(t *testing.T, w *world) uuid.UUID {
	t.Helper()
	res, err := w.h.CreateTenant(context.Background(), commands.Meta{Actor: domain.Actor{ID: "platform", Role: domain.RolePlatformAdmin}},
		commands.CreateTenant{Input: domain.TenantInput{Name: "Other", Domain: uuid.NewString()[:8] + ".example.org"}})
	require.NoError(t, err)
	return res.ID
}

func TestAuditCountsHolds(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	held, err := w.h.PlaceHold(w.ctx, w.meta("hold"), commands.PlaceHold{Request: domain.HoldRequest{
		ResourceID: w.resource, ClientID: w.client, Start: dec(7, 10), End: dec(7, 11), Seats: 1, TTLMinutes: 30}})
	require.NoError(t, err)
	released, err := w.h.PlaceHold(w.ctx, w.meta("released"), commands.PlaceHold{Request: domain.HoldRequest{
		ResourceID: w.resource, ClientID: w.client, Start: dec(8, 10), End: dec(8, 11), Seats: 1, TTLMinutes: 30}})
	require.NoError(t, err)
	_, err = w.h.ReleaseHold(w.ctx, w.meta("release"), commands.ReleaseHold{HoldID: released.ID})
	require.NoError(t, err)
	// Behind the command side's back: one booking over the live hold, one
	// over the released one (which is fine).
	over := injectBooking(t, w, w.tenant, w.resource, dec(7, 10).Add(30*time.Minute), dec(7, 11).Add(30*time.Minute), 1, true)
	injectBooking(t, w, w.tenant, w.resource, dec(8, 10), dec(8, 11), 1, true)
	catchUpReadModels(t, w)

	r := run(t, w.env, "audit", "--wait", "0s")
	t.Logf("bookingctl audit:\n%s%s", r.stdout, r.stderr)
	require.Equal(t, 1, r.code, r.stdout)
	line := findLine(r.stdout, "OVERLAP source=store ")
	require.Contains(t, line, "at=2026-12-07T10:30:00Z seats=2 capacity=1 occupants=hold:"+held.ID.String()+",booking:"+over.String())
	require.Contains(t, r.stdout, "audited 2 bookings and 2 holds on 1 resources")
	require.Contains(t, r.stdout, ": 2 overlaps, 0 bucket disagreements, 0 read-model disagreements\n")
}
