package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// shiftedClock is time.Now plus an offset the test moves, shared by the
// bookingd processes of a test so they agree on the time.
type shiftedClock struct{ offset atomic.Int64 }

func (c *shiftedClock) Now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

func (c *shiftedClock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// startMainWithClock starts a bookingd on s's database with the given
// clock, and makes it the one s talks to.
func startMainWithClock(tb testing.TB, s *e2eServer, clock func() time.Time) *Main {
	tb.Helper()
	m := NewMain(s.cfg)
	m.Logger = slog.New(slog.NewTextHandler(s.logs, nil))
	m.Clock = clock
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(tb, m.Run(ctx))
	s.mu.Lock()
	s.main, s.base = m, "http://"+m.Addr
	s.mu.Unlock()
	return m
}

// countEvents counts the events of a type in the test's database.
func countEvents(tb testing.TB, s *e2eServer, typ string) int {
	tb.Helper()
	conn, err := pgx.Connect(context.Background(), s.cfg.DatabaseURL)
	require.NoError(tb, err)
	defer conn.Close(context.Background())
	var n int
	require.NoError(tb, conn.QueryRow(context.Background(), `SELECT count(*) FROM booking_events WHERE type = $1`, typ).Scan(&n))
	return n
}

// eventually polls cond every 100 ms for up to 15 s.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestRecurringBookingsE2E books a weekly series through bookingd on
// PostgreSQL in New York across a daylight-saving change, refuses a
// racing series whole with occurrences[], and edits the series with each
// scope.
func TestRecurringBookingsE2E(t *testing.T) {
	t.Parallel()
	srv := MustStartE2E(t)
	f := MustE2EFixture(t, srv, "recurrence", map[string]any{
		"timezone": "America/New_York", "business_hours": e2eAllDay(), "max_occurrences": 40,
	})
	ny, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	first := time.Date(f.Day.Year(), f.Day.Month(), f.Day.Day(), 9, 0, 0, 0, ny)
	body := e2eBooking(f.Space, f.Users[e2eClient], first, 60)
	// 30 weeks always include one of New York's two daylight-saving changes.
	body["recurrence"] = map[string]any{"rrule": "FREQ=WEEKLY;COUNT=30", "exdates": []string{first.AddDate(0, 0, 14).Format("2006-01-02")}}
	r := f.must(t, http.StatusCreated, e2eAdmin, http.MethodPost, "/bookings", body)
	seriesID := r.str(t, "series_id")
	series, _ := r.Doc["series"].(map[string]any)
	require.Equal(t, seriesID, series["id"])
	require.Equal(t, "/bookings/"+r.str(t, "id"), r.Header.Get("Location"), "the answer is the first occurrence")
	list, _ := series["bookings"].([]any)
	require.Len(t, list, 29, "one excluded")
	offsets := map[string]bool{}
	var ids []string
	for _, x := range list {
		b := x.(map[string]any)
		start, err := time.Parse(time.RFC3339, b["start"].(string))
		require.NoError(t, err)
		require.Equal(t, 9, start.In(ny).Hour(), "%s stays at 09:00 local", start)
		_, off := start.In(ny).Zone()
		offsets[fmt.Sprint(off)] = true
		require.Equal(t, seriesID, b["series_id"])
		ids = append(ids, b["id"].(string))
	}
	require.Len(t, offsets, 2, "the series crosses a daylight-saving change")
	require.NotEmpty(t, r.Header.Get("X-Position"))

	// A series that shares one of those hours is refused whole, every
	// failing occurrence listed.
	other := e2eBooking(f.Space, f.Users[e2eClient2], first.AddDate(0, 0, 21).Add(30*time.Minute), 60)
	other["recurrence"] = map[string]any{"rrule": "FREQ=DAILY;COUNT=3", "policy": "all_or_nothing"}
	p := requireE2EProblem(t, f.call(t, e2eAdmin, http.MethodPost, "/bookings", other), http.StatusConflict, "booking_conflict")
	occs, _ := p["occurrences"].([]any)
	require.Len(t, occs, 1)
	require.Equal(t, "booking_conflict", occs[0].(map[string]any)["code"])
	require.NotEmpty(t, occs[0].(map[string]any)["conflicts"])
	require.Equal(t, ids[2], problemConflicts(t, f.call(t, e2eAdmin, http.MethodPost, "/bookings", other))[0])
	other["recurrence"] = map[string]any{"rrule": "FREQ=DAILY;COUNT=3", "policy": "skip_conflicts"}
	r = f.must(t, http.StatusCreated, e2eAdmin, http.MethodPost, "/bookings", other)
	require.Len(t, r.Doc["series"].(map[string]any)["bookings"], 2)
	require.Len(t, r.Doc["series"].(map[string]any)["skipped"], 1)
	requireE2EProblem(t, f.call(t, e2eAdmin, http.MethodPost, "/bookings", map[string]any{
		"resource_id": f.Space, "client_id": f.Users[e2eClient], "start": first.AddDate(1, 0, 0).Format(time.RFC3339),
		"end": first.AddDate(1, 0, 0).Add(time.Hour).Format(time.RFC3339), "recurrence": map[string]any{"rrule": "FREQ=WEEKLY"},
	}), http.StatusUnprocessableEntity, "validation_failed")

	// One occurrence, then the following ones, are cancelled; the scope is
	// in the history.
	f.must(t, http.StatusOK, e2eClient, http.MethodPost, "/bookings/"+ids[1]+"/cancel", map[string]any{"reason": "trip", "scope": "occurrence"})
	f.must(t, http.StatusOK, e2eAdmin, http.MethodPost, "/bookings/"+ids[20]+"/cancel", map[string]any{"scope": "following"})
	for i, want := range map[int]string{0: "confirmed", 1: "cancelled", 19: "confirmed", 20: "cancelled", 28: "cancelled"} {
		require.Equal(t, want, f.must(t, http.StatusOK, e2eAdmin, http.MethodGet, "/bookings/"+ids[i], nil).str(t, "status"), "occurrence %d", i)
	}
	h := f.must(t, http.StatusOK, e2eAdmin, http.MethodGet, "/bookings/"+ids[28]+"/history", nil)
	evs := h.Doc["events"].([]any)
	last := evs[len(evs)-1].(map[string]any)
	require.Equal(t, "booking.cancelled", last["type"])
	require.Equal(t, "following", last["data"].(map[string]any)["scope"])

	// Every remaining occurrence moves to 10:00 local.
	f.must(t, http.StatusOK, e2eAdmin, http.MethodPost, "/bookings/"+ids[3]+"/reschedule", map[string]any{
		"start": first.AddDate(0, 0, 21).Add(time.Hour).Format(time.RFC3339),
		"end":   first.AddDate(0, 0, 21).Add(2 * time.Hour).Format(time.RFC3339), "scope": "all",
	})
	for _, i := range []int{0, 3, 19} {
		b := f.must(t, http.StatusOK, e2eAdmin, http.MethodGet, "/bookings/"+ids[i], nil)
		start, err := time.Parse(time.RFC3339, b.str(t, "start"))
		require.NoError(t, err)
		require.Equal(t, 10, start.In(ny).Hour(), "occurrence %d", i)
	}
	requireE2EProblem(t, f.call(t, e2eAdmin, http.MethodPost, "/bookings/"+ids[0]+"/cancel", map[string]any{"scope": "sometimes"}),
		http.StatusUnprocessableEntity, "validation_failed")
}

// TestHoldsAndWaitlistE2E places, consumes and releases holds, promotes a
// waitlist entry on a cancellation, and expires holds across a restart and
// with two bookingd processes on one database.
func TestHoldsAndWaitlistE2E(t *testing.T) {
	t.Parallel()
	srv := MustStartE2E(t)
	clock := &shiftedClock{}
	srv.stop(t)
	startMainWithClock(t, srv, clock.Now)
	f := MustE2EFixture(t, srv, "holds", map[string]any{"business_hours": e2eAllDay()})
	slot := f.nextSlot()
	hold := func(role string, start time.Time, ttl int) e2eReply {
		return f.call(t, role, http.MethodPost, "/holds", map[string]any{
			"resource_id": f.Space, "start": start.Format(time.RFC3339), "end": start.Add(time.Hour).Format(time.RFC3339), "ttl_minutes": ttl,
		})
	}

	// A client's hold blocks others and is consumed by its booking.
	h := hold(e2eClient, slot, 10)
	require.Equal(t, http.StatusCreated, h.Status, "%s", h)
	holdID := h.str(t, "id")
	require.Equal(t, "active", h.str(t, "status"))
	require.NotEmpty(t, h.str(t, "expires_at"))
	requireE2EProblem(t, f.call(t, e2eAdmin, http.MethodPost, "/bookings", e2eBooking(f.Space, f.Users[e2eClient2], slot, 60)),
		http.StatusConflict, "booking_conflict")
	f.must(t, http.StatusNotFound, e2eClient2, http.MethodGet, "/holds/"+holdID, nil)
	body := e2eBooking(f.Space, "", slot, 60)
	body["hold_id"] = holdID
	b := f.must(t, http.StatusCreated, e2eClient, http.MethodPost, "/bookings", body)
	require.Equal(t, holdID, b.str(t, "hold_id"))
	require.Equal(t, "consumed", f.must(t, http.StatusOK, e2eClient, http.MethodGet, "/holds/"+holdID, nil).str(t, "status"))

	// The waitlist: the second client waits for that time, the booking is
	// cancelled, the entry becomes a hold in the same append.
	w := f.must(t, http.StatusCreated, e2eClient2, http.MethodPost, "/waitlist", map[string]any{
		"resource_id": f.Space, "start": slot.Format(time.RFC3339), "end": slot.Add(time.Hour).Format(time.RFC3339),
	})
	require.Equal(t, "waiting", w.str(t, "status"))
	l := f.must(t, http.StatusOK, e2eAdmin, http.MethodGet, "/waitlist?resource_id="+f.Space, nil)
	require.Len(t, l.Doc["waitlist"], 1)
	f.must(t, http.StatusOK, e2eClient, http.MethodPost, "/bookings/"+b.str(t, "id")+"/cancel", nil)
	e := f.must(t, http.StatusOK, e2eClient2, http.MethodGet, "/waitlist/"+w.str(t, "id"), nil)
	require.Equal(t, "promoted", e.str(t, "status"))
	promoted := f.must(t, http.StatusOK, e2eClient2, http.MethodGet, "/holds/"+e.str(t, "hold_id"), nil)
	require.Equal(t, "active", promoted.str(t, "status"))
	f.must(t, http.StatusOK, e2eClient2, http.MethodDelete, "/holds/"+e.str(t, "hold_id"), nil)
	// A promoted entry has left the line; leaving it again answers as the
	// document says, whichever answer that is.
	left := f.call(t, e2eClient2, http.MethodDelete, "/waitlist/"+w.str(t, "id"), nil)
	require.Contains(t, []int{http.StatusOK, http.StatusNoContent, http.StatusConflict}, left.Status, "%s", left)

	// Expiry across a restart: the hold is placed, bookingd stops, time
	// passes, a new bookingd on the same database expires it.
	expiring := hold(e2eAdmin, f.nextSlot(), 1)
	require.Equal(t, http.StatusCreated, expiring.Status, "%s", expiring)
	srv.stop(t)
	clock.Advance(2 * time.Minute)
	startMainWithClock(t, srv, clock.Now)
	eventually(t, "the hold to expire after the restart", func() bool {
		return f.must(t, http.StatusOK, e2eAdmin, http.MethodGet, "/holds/"+expiring.str(t, "id"), nil).str(t, "status") == "expired"
	})
	require.Equal(t, 1, countEvents(t, srv, "hold.expired"))

	// Two processes: a second bookingd on the same database; each hold
	// expires exactly once.
	second := NewMain(srv.cfg)
	second.Logger = slog.New(slog.NewTextHandler(srv.logs, nil))
	second.Clock = clock.Now
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, second.Run(ctx))
	t.Cleanup(func() { require.NoError(t, second.Close()) })
	const n = 5
	for range n {
		r := hold(e2eAdmin, f.nextSlot(), 1)
		require.Equal(t, http.StatusCreated, r.Status, "%s", r)
	}
	clock.Advance(2 * time.Minute)
	eventually(t, "every hold to expire", func() bool { return countEvents(t, srv, "hold.expired") >= n+1 })
	time.Sleep(2 * time.Second) // both schedulers ran again meanwhile
	require.Equal(t, n+1, countEvents(t, srv, "hold.expired"), "exactly one hold.expired per hold")
	require.Equal(t, n+3, countEvents(t, srv, "hold.placed"), "the consumed, the promoted, the restarted and the n holds")
	require.Equal(t, 1, countEvents(t, srv, "waitlist.promoted"))
}
