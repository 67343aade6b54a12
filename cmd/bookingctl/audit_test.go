package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bookingengine/booking/commands"
	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/eventstore"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

func TestVerifyFindsEditedAndDeletedRows(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	edited := w.book("edited", w.resource, 1, 9)
	w.step()
	gapped := w.book("gapped", w.resource, 2, 9)
	w.step()
	_, err := w.h.RescheduleBooking(w.ctx, w.meta("move"), commands.RescheduleBooking{
		BookingID: gapped, Start: time.Date(2026, 12, 2, 11, 0, 0, 0, time.UTC), End: time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)})
	require.NoError(t, err)
	w.step()
	_, err = w.h.ChangeBookingStatus(w.ctx, w.meta("cancel"), commands.ChangeBookingStatus{BookingID: gapped, To: domain.StatusCancelled, Reason: "sick"})
	require.NoError(t, err)

	out := mustRun(t, w.env, "verify")
	require.Regexp(t, `checked \d+ streams, \d+ events: 0 broken\n$`, out)

	// An edit behind the store's back.
	pool := w.store.Pool()
	var editedPos int64
	require.NoError(t, pool.QueryRow(w.ctx, `UPDATE booking_events SET data = jsonb_set(data, '{seats}', '2')
		WHERE stream_id = $1 AND stream_version = 1 RETURNING position`, domain.BookingStream(edited)).Scan(&editedPos))
	r := run(t, w.env, "verify")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stdout, fmt.Sprintf("BROKEN %s version=1 position=%d reason=hash_mismatch\n", domain.BookingStream(edited), editedPos))
	require.Contains(t, r.stdout, ": 1 broken\n")
	require.Equal(t, "bookingctl verify: 1 of ", r.stderr[:len("bookingctl verify: 1 of ")])
	require.Equal(t, 1, strings.Count(r.stderr, "\n"))

	// A deleted event in the middle of a stream (the reschedule).
	tag, err := pool.Exec(w.ctx, `DELETE FROM booking_events WHERE stream_id = $1 AND stream_version = 2`, domain.BookingStream(gapped))
	require.NoError(t, err)
	require.EqualValues(t, 1, tag.RowsAffected())
	r = run(t, w.env, "verify")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stdout, fmt.Sprintf("BROKEN %s version=2 ", domain.BookingStream(gapped)))
	require.Contains(t, r.stdout, "reason=version_gap\n")
	require.Contains(t, r.stdout, ": 2 broken\n")

	// One stream, or one tenant.
	r = run(t, w.env, "verify", "--stream", domain.BookingStream(gapped))
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stdout, "checked 1 streams")
	out = mustRun(t, w.env, "verify", "--stream", domain.ResourceStream(w.resource))
	require.Contains(t, out, "checked 1 streams, 1 events: 0 broken")
	r = run(t, w.env, "verify", "--tenant", w.tenant.String())
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stdout, ": 2 broken\n")
	r = run(t, w.env, "verify", "--stream", "booking-"+uuid.NewString())
	require.Equal(t, 1, r.code, "a stream that does not exist is not a clean one")
	require.Contains(t, r.stderr, "not found")
}

// stateOf runs state and decodes its JSON.
func stateOf[T any](t *testing.T, w *world, args ...string) T {
	t.Helper()
	out := mustRun(t, w.env, append([]string{"state"}, args...)...)
	var v T
	require.NoError(t, json.Unmarshal([]byte(out), &v), out)
	return v
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func TestStateAtMatchesTheCommandSideThen(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	b := w.book("first", w.resource, 3, 9)
	stream := domain.BookingStream(b)
	confirmed := w.bookingView(b)
	t1 := w.lastRecorded(stream)
	w.step()

	// A settings change: policy version 2 has a 10-minute buffer after.
	buffer := 10
	day := []domain.TimeRange{{Start: "00:00", End: "24:00"}}
	week := domain.WeeklyHours{"mon": day, "tue": day, "wed": day, "thu": day, "fri": day, "sat": day, "sun": day}
	_, err := w.h.ChangeTenantSettings(w.ctx, w.meta("settings"), commands.ChangeTenantSettings{
		TenantID: w.tenant, Settings: domain.SettingsInput{BusinessHours: &week, BufferAfterMinutes: &buffer}})
	require.NoError(t, err)
	tSettings := w.lastRecorded(domain.TenantStream(w.tenant))
	w.step()

	second := w.book("second", w.resource, 4, 9)
	tSecond := w.lastRecorded(domain.BookingStream(second))
	w.step()

	_, err = w.h.ChangeBookingStatus(w.ctx, w.meta("cancel"), commands.ChangeBookingStatus{BookingID: b, To: domain.StatusCancelled, Reason: "changed plans"})
	require.NoError(t, err)
	cancelled := w.bookingView(b)
	t2 := w.lastRecorded(stream)
	require.True(t, t1.Before(tSettings) && tSettings.Before(t2))

	// Before it existed.
	r := run(t, w.env, "state", "--booking", b.String(), "--at", rfc(t1.Add(-time.Microsecond)))
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "did not exist yet")

	// At the very moment it was recorded, and between T1 and the
	// settings change: confirmed, accepted by and under policy 1.
	for _, at := range []time.Time{t1, between(t1, tSettings)} {
		s := stateOf[BookingState](t, w, "--booking", b.String(), "--at", rfc(at))
		require.JSONEq(t, jsonOf(t, confirmed), jsonOf(t, s.Booking))
		require.Equal(t, domain.StatusConfirmed, s.Booking.Status)
		require.Equal(t, 1, s.AcceptedBy.PolicyVersion)
		require.Equal(t, 0, s.AcceptedBy.Settings.BufferAfterMinutes)
		require.Equal(t, 1, s.InForce.PolicyVersion)
		require.Equal(t, domain.EventBookingCreated, s.LastEvent.Type)
	}

	// Between the settings change and the cancellation: still confirmed,
	// accepted by policy 1, while policy 2 is in force.
	s := stateOf[BookingState](t, w, "--booking", b.String(), "--at", rfc(between(tSettings, t2)))
	require.JSONEq(t, jsonOf(t, confirmed), jsonOf(t, s.Booking))
	require.Equal(t, 1, s.AcceptedBy.PolicyVersion)
	require.Equal(t, 0, s.AcceptedBy.Settings.BufferAfterMinutes)
	require.Equal(t, 2, s.InForce.PolicyVersion)
	require.Equal(t, 10, s.InForce.Settings.BufferAfterMinutes)
	require.Equal(t, tSettings, s.InForce.Since)

	// After T2: cancelled.
	s = stateOf[BookingState](t, w, "--booking", b.String(), "--at", rfc(t2.Add(time.Second)))
	require.JSONEq(t, jsonOf(t, cancelled), jsonOf(t, s.Booking))
	require.Equal(t, domain.StatusCancelled, s.Booking.Status)
	require.Equal(t, domain.EventBookingCancelled, s.LastEvent.Type)

	// The default --at is now.
	s = stateOf[BookingState](t, w, "--booking", b.String())
	require.Equal(t, domain.StatusCancelled, s.Booking.Status)

	// The booking made under policy 2 was accepted by it, with its settings.
	s = stateOf[BookingState](t, w, "--booking", second.String())
	require.JSONEq(t, jsonOf(t, w.bookingView(second)), jsonOf(t, s.Booking))
	require.Equal(t, 2, s.Booking.PolicyVersion)
	require.Equal(t, 2, s.AcceptedBy.PolicyVersion)
	require.Equal(t, 10, s.AcceptedBy.Settings.BufferAfterMinutes)

	// The resource: which bookings held their slot then.
	rs := stateOf[ResourceState](t, w, "--resource", w.resource.String(), "--at", rfc(between(t1, tSettings)))
	require.Equal(t, w.resource, rs.Resource.ID)
	require.Equal(t, 1, rs.InForce.PolicyVersion)
	require.Len(t, rs.ActiveBookings, 1)
	require.JSONEq(t, jsonOf(t, confirmed), jsonOf(t, rs.ActiveBookings[0]))

	rs = stateOf[ResourceState](t, w, "--resource", w.resource.String(), "--at", rfc(between(tSettings, tSecond)))
	require.Equal(t, 2, rs.InForce.PolicyVersion)
	require.Equal(t, []uuid.UUID{b}, bookingIDs(rs.ActiveBookings))

	rs = stateOf[ResourceState](t, w, "--resource", w.resource.String(), "--at", rfc(between(tSecond, t2)))
	require.Equal(t, 2, rs.InForce.PolicyVersion)
	require.Equal(t, []uuid.UUID{b, second}, bookingIDs(rs.ActiveBookings))

	rs = stateOf[ResourceState](t, w, "--resource", w.resource.String(), "--at", rfc(t2))
	require.Equal(t, []uuid.UUID{second}, bookingIDs(rs.ActiveBookings), "the cancellation freed the slot")

	rs = stateOf[ResourceState](t, w, "--resource", w.other.String(), "--at", rfc(t2))
	require.Empty(t, rs.ActiveBookings)

	r = run(t, w.env, "state", "--resource", uuid.NewString())
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "not found")
}

func bookingIDs(vs []domain.BookingView) []uuid.UUID {
	ids := make([]uuid.UUID, len(vs))
	for i, v := range vs {
		ids[i] = v.ID
	}
	return ids
}

// parseJSONL decodes an export.
func parseJSONL(t *testing.T, out string) []exportedEvent {
	t.Helper()
	var evs []exportedEvent
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e exportedEvent
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		require.NoError(t, dec.Decode(&e), sc.Text())
		evs = append(evs, e)
	}
	require.NoError(t, sc.Err())
	return evs
}

// seedHistory writes a history across two resources: a booking of the
// resource that is rescheduled and cancelled, one of the other resource,
// and one more of the resource, with known recorded_at times between.
type seeded struct {
	w                     *world
	moved, other, later   uuid.UUID
	tMoved, tOther, tLate time.Time
}

func seedHistory(t *testing.T) seeded {
	w := newWorld(t)
	s := seeded{w: w}
	s.moved = w.book("moved", w.resource, 5, 9)
	w.step()
	_, err := w.h.RescheduleBooking(w.ctx, w.meta("move"), commands.RescheduleBooking{BookingID: s.moved,
		Start: time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC), End: time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC), Reason: "traffic"})
	require.NoError(t, err)
	w.step()
	_, err = w.h.ChangeBookingStatus(w.ctx, w.meta("cancel"), commands.ChangeBookingStatus{BookingID: s.moved, To: domain.StatusCancelled, Reason: "sick"})
	require.NoError(t, err)
	s.tMoved = w.lastRecorded(domain.BookingStream(s.moved))
	w.step()
	s.other = w.book("other", w.other, 5, 9)
	s.tOther = w.lastRecorded(domain.BookingStream(s.other))
	w.step()
	s.later = w.book("later", w.resource, 7, 9)
	s.tLate = w.lastRecorded(domain.BookingStream(s.later))
	return s
}

func TestHistoryJSONLRoundTripsTheStoredEvents(t *testing.T) {
	t.Parallel()
	s := seedHistory(t)
	w := s.w

	out := mustRun(t, w.env, "history", "--tenant", w.tenant.String(), "--format", "jsonl")
	got := parseJSONL(t, out)
	want := readAllOf(t, w, w.tenant)
	require.Equal(t, len(want), len(got))
	for i, e := range want {
		g := got[i]
		require.Equal(t, e.Position, g.Position)
		require.Equal(t, e.TransactionID, g.TransactionID)
		require.Equal(t, e.TenantID, g.TenantID)
		require.Equal(t, e.StreamID, g.StreamID)
		require.Equal(t, e.StreamVersion, g.StreamVersion)
		require.Equal(t, e.ID, g.EventID)
		require.Equal(t, e.Type, g.Type)
		require.Equal(t, e.EventVersion, g.EventVersion)
		require.JSONEq(t, string(e.Data), string(g.Data))
		var md eventstore.Metadata
		require.NoError(t, json.Unmarshal(g.Metadata, &md))
		require.Equal(t, e.Metadata, md)
		require.True(t, e.RecordedAt.Equal(g.RecordedAt), "%s vs %s", e.RecordedAt, g.RecordedAt)
		require.Equal(t, hex.EncodeToString(e.Hash), g.Hash)
	}
	require.Contains(t, out, `"correlation_id": "corr-cancel"`, "metadata keeps the database's own text")

	// The export alone is enough to recompute every hash chain.
	prev := map[string][]byte{}
	for _, g := range got {
		h := sha256.Sum256(append(prev[g.StreamID], canonical(g)...))
		require.Equal(t, g.Hash, hex.EncodeToString(h[:]), "%s v%d", g.StreamID, g.StreamVersion)
		prev[g.StreamID] = h[:]
	}

	// A booking's history is its stream.
	stream, err := w.store.Load(w.ctx, domain.BookingStream(s.moved), 0)
	require.NoError(t, err)
	got = parseJSONL(t, mustRun(t, w.env, "history", "--booking", s.moved.String(), "--format", "jsonl"))
	require.Len(t, got, 3)
	for i, e := range stream {
		require.Equal(t, e.ID, got[i].EventID)
		require.JSONEq(t, string(e.Data), string(got[i].Data))
	}
}

// readAllOf returns the tenant's events through the store's ReadAll, by
// position. ReadAll withholds events while any transaction in the cluster
// that may precede them runs (another test's, too), so it asks until it
// gets every stored event.
func readAllOf(t *testing.T, w *world, tenant uuid.UUID) []eventstore.RecordedEvent {
	t.Helper()
	var stored int
	require.NoError(t, w.store.Pool().QueryRow(w.ctx, `SELECT count(*) FROM booking_events WHERE tenant_id = $1`, tenant).Scan(&stored))
	var evs []eventstore.RecordedEvent
	require.Eventually(t, func() bool {
		var err error
		evs, err = w.store.ReadAll(w.ctx, eventstore.Cursor{}, eventstore.Filter{TenantID: tenant}, 10_000)
		require.NoError(t, err)
		return len(evs) == stored
	}, 20*time.Second, 10*time.Millisecond)
	slices.SortFunc(evs, func(a, b eventstore.RecordedEvent) int { return int(a.Position - b.Position) })
	return evs
}

// canonical mirrors booking_events_canonical, so the test shows that an
// auditor can check an export without the database.
func canonical(e exportedEvent) []byte {
	return fmt.Appendf(nil, "booking_events/v1\n%d:%s\n%d\n%s\n%d:%s\n%d\n%s\n%d\n%s\n%s",
		len(e.StreamID), e.StreamID, e.StreamVersion, e.EventID, len(e.Type), e.Type, e.EventVersion,
		e.TenantID, e.RecordedAt.UnixMicro(), e.Data, e.Metadata)
}

func TestHistoryOfABookingAResourceAndATimeWindow(t *testing.T) {
	t.Parallel()
	s := seedHistory(t)
	w := s.w

	// Text: one line per event with the audit fields.
	out := mustRun(t, w.env, "history", "--booking", s.moved.String())
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.Len(t, lines, 3)
	stream := domain.BookingStream(s.moved)
	for i, want := range []string{"booking.created", "booking.rescheduled", "booking.cancelled"} {
		require.Contains(t, lines[i], fmt.Sprintf("%s v%d  %s  actor=%s(admin)", stream, i+1, want, w.adminID))
	}
	require.Contains(t, lines[0], "corr=corr-moved cause=cause-moved")
	require.Contains(t, lines[0], "status=confirmed")
	require.Contains(t, lines[0], "resource_id="+w.resource.String())
	require.Contains(t, lines[1], "previous_start=2026-12-05T09:00:00Z")
	require.Contains(t, lines[2], "corr=corr-cancel")
	require.Contains(t, lines[2], "from=confirmed")
	require.Contains(t, lines[2], "reason=sick")
	require.NotContains(t, lines[0], "booking_id=", "the stream's own id is not repeated")

	// A resource: its own stream and every event of its bookings, not
	// those of the other resource.
	got := parseJSONL(t, mustRun(t, w.env, "history", "--resource", w.resource.String(), "--format", "jsonl"))
	streams := map[string]int{}
	for i, e := range got {
		streams[e.StreamID]++
		if i > 0 {
			require.Greater(t, e.Position, got[i-1].Position, "oldest first")
		}
	}
	require.Equal(t, map[string]int{
		domain.ResourceStream(w.resource): 1,
		domain.BookingStream(s.moved):     3,
		domain.BookingStream(s.later):     1,
	}, streams)

	// A window of recorded_at: from inclusive, to exclusive.
	got = parseJSONL(t, mustRun(t, w.env, "history", "--tenant", w.tenant.String(), "--format", "jsonl",
		"--from", rfc(s.tOther), "--to", rfc(s.tLate)))
	require.NotEmpty(t, got)
	for _, e := range got {
		require.True(t, e.RecordedAt.Equal(s.tOther), "only the other booking's append: %s %s", e.StreamID, e.Type)
	}
	require.Contains(t, streamIDs(got), domain.BookingStream(s.other))

	got = parseJSONL(t, mustRun(t, w.env, "history", "--resource", w.resource.String(), "--format", "jsonl",
		"--from", rfc(s.tMoved.Add(time.Microsecond))))
	require.Equal(t, []string{domain.BookingStream(s.later)}, streamIDs(got))

	// Nothing matches: empty output, a note on stderr, success.
	r := run(t, w.env, "history", "--booking", uuid.NewString())
	require.Equal(t, 0, r.code)
	require.Empty(t, r.stdout)
	require.Contains(t, r.stderr, "no events")
}

func streamIDs(evs []exportedEvent) []string {
	var ids []string
	for _, e := range evs {
		if !slices.Contains(ids, e.StreamID) {
			ids = append(ids, e.StreamID)
		}
	}
	return ids
}
