package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	bhttp "github.com/bookingengine/booking/http"
)

// TestE2EPendingFlow covers a tenant that approves bookings: a booking is
// pending and holds its slot, confirm makes it confirmed, and reject and
// cancel free the slot for the next booking.
func TestE2EPendingFlow(t *testing.T) {
	t.Parallel()
	srv := MustStartE2E(t)
	f := MustE2EFixture(t, srv, "pending", map[string]any{"requires_approval": true})
	client, client2 := f.Users[e2eClient], f.Users[e2eClient2]

	// Pending, holding its slot; the client may not approve it.
	s1 := e2eAt(f.Day, 9, 0)
	p := f.must(t, http.StatusCreated, e2eClient, http.MethodPost, "/bookings", e2eBooking(f.Space, "", s1, 60))
	id := p.str(t, "id")
	require.Equal(t, "pending", p.Doc["status"])
	require.Equal(t, client, p.Doc["client_id"])
	conflict := f.call(t, e2eClient2, http.MethodPost, "/bookings", e2eBooking(f.Space, "", s1.Add(30*time.Minute), 30))
	requireE2EProblem(t, conflict, http.StatusConflict, bhttp.CodeBookingConflict)
	require.Equal(t, []string{id}, problemConflicts(t, conflict))
	requireE2EProblem(t, f.call(t, e2eClient, http.MethodPost, "/bookings/"+id+"/confirm", nil), http.StatusForbidden, bhttp.CodeForbidden)
	requireE2EProblem(t, f.call(t, e2eAdmin, http.MethodPost, "/bookings/"+id+"/check-in", nil), http.StatusConflict, bhttp.CodeInvalidTransition)

	c := f.must(t, http.StatusOK, e2eManager, http.MethodPost, "/bookings/"+id+"/confirm", map[string]any{"reason": "approved"}, "If-Match", `"1"`)
	require.Equal(t, "confirmed", c.Doc["status"])
	require.Equal(t, `"2"`, c.Header.Get("ETag"))
	require.Equal(t, f.Users[e2eManager], c.Doc["updated_by"])
	requireE2EProblem(t, f.call(t, e2eManager, http.MethodPost, "/bookings/"+id+"/confirm", nil), http.StatusConflict, bhttp.CodeInvalidTransition)
	requireE2EProblem(t, f.call(t, e2eManager, http.MethodPost, "/bookings/"+id+"/reject", nil), http.StatusConflict, bhttp.CodeInvalidTransition)
	// Still holding the slot once confirmed.
	requireE2EProblem(t, f.call(t, e2eClient2, http.MethodPost, "/bookings", e2eBooking(f.Space, "", s1, 30)), http.StatusConflict, bhttp.CodeBookingConflict)

	// Reject frees the slot.
	s2 := e2eAt(f.Day, 11, 0)
	r := f.book(t, e2eClient, f.Space, "", s2)
	requireE2EProblem(t, f.call(t, e2eClient2, http.MethodPost, "/bookings", e2eBooking(f.Space, "", s2, 30)), http.StatusConflict, bhttp.CodeBookingConflict)
	rej := f.must(t, http.StatusOK, e2eAdmin, http.MethodPost, "/bookings/"+r+"/reject", map[string]any{"reason": "fully booked"})
	require.Equal(t, "rejected", rej.Doc["status"])
	require.Equal(t, "fully booked", rej.Doc["status_reason"])
	after := f.must(t, http.StatusCreated, e2eClient2, http.MethodPost, "/bookings", e2eBooking(f.Space, "", s2, 30))
	require.Equal(t, "pending", after.Doc["status"])
	require.Equal(t, client2, after.Doc["client_id"])
	requireE2EProblem(t, f.call(t, e2eAdmin, http.MethodPost, "/bookings/"+r+"/confirm", nil), http.StatusConflict, bhttp.CodeInvalidTransition)

	// Cancel (by the client, while pending) frees the slot.
	s3 := e2eAt(f.Day, 14, 0)
	k := f.book(t, e2eClient, f.Space, "", s3)
	cancelled := f.must(t, http.StatusOK, e2eClient, http.MethodPost, "/bookings/"+k+"/cancel", nil)
	require.Equal(t, "cancelled", cancelled.Doc["status"])
	f.book(t, e2eClient2, f.Space, "", s3)

	hist := f.must(t, http.StatusOK, e2eAdmin, http.MethodGet, "/bookings/"+r+"/history", nil).Doc["events"].([]any)
	require.Len(t, hist, 2)
	require.Equal(t, "booking.created", hist[0].(map[string]any)["type"])
	require.Equal(t, "booking.status_changed", hist[1].(map[string]any)["type"])
	require.Equal(t, "rejected", hist[1].(map[string]any)["data"].(map[string]any)["to"])
	require.Equal(t, f.Users[e2eAdmin], hist[1].(map[string]any)["actor"])

	// A confirmed booking of the approving tenant can be cancelled too,
	// and its slot frees.
	f.must(t, http.StatusOK, e2eAdmin, http.MethodPost, "/bookings/"+id+"/cancel", nil)
	f.book(t, e2eClient2, f.Space, "", s1)
}

// TestE2ELifecycle drives bookings through every status change, including
// no_show, which is only possible once a booking has started: it books the
// next minute on a one-minute grid and waits for it.
func TestE2ELifecycle(t *testing.T) {
	t.Parallel()
	srv := MustStartE2E(t)
	f := MustE2EFixture(t, srv, "lifecycle", map[string]any{
		"business_hours":           e2eAllDay(),
		"slot_granularity_minutes": 1,
		"min_duration_minutes":     1,
	})
	client := f.Users[e2eClient]

	soon := e2eNextMinute(time.Now().Add(2 * time.Second))
	ns := f.must(t, http.StatusCreated, e2eAdmin, http.MethodPost, "/bookings", e2eBooking(f.Space, client, soon, 1)).str(t, "id")
	requireE2EProblem(t, f.call(t, e2eAdmin, http.MethodPost, "/bookings/"+ns+"/no-show", nil), http.StatusConflict, bhttp.CodeInvalidTransition)

	// confirmed → checked_in → completed; nothing further.
	b := f.book(t, e2eAdmin, f.Space, client, e2eAt(f.Day, 10, 0))
	f.must(t, http.StatusOK, e2eProfessional, http.MethodPost, "/bookings/"+f.book(t, e2eAdmin, f.Person, client, e2eAt(f.Day, 10, 0))+"/check-in", nil)
	require.Equal(t, "checked_in", f.must(t, http.StatusOK, e2eAdmin, http.MethodPost, "/bookings/"+b+"/check-in", nil).Doc["status"])
	for _, action := range []string{"check-in", "confirm", "reject", "cancel", "no-show"} {
		requireE2EProblem(t, f.call(t, e2eAdmin, http.MethodPost, "/bookings/"+b+"/"+action, nil), http.StatusConflict, bhttp.CodeInvalidTransition)
	}
	requireE2EProblem(t, f.call(t, e2eAdmin, http.MethodPost, "/bookings/"+b+"/reschedule", map[string]any{
		"start": e2eAt(f.Day, 12, 0).Format(time.RFC3339), "end": e2eAt(f.Day, 13, 0).Format(time.RFC3339),
	}), http.StatusConflict, bhttp.CodeInvalidTransition)
	// A checked-in booking still holds its slot.
	requireE2EProblem(t, f.call(t, e2eAdmin, http.MethodPost, "/bookings", e2eBooking(f.Space, f.Users[e2eClient2], e2eAt(f.Day, 10, 0), 30)),
		http.StatusConflict, bhttp.CodeBookingConflict)
	require.Equal(t, "completed", f.must(t, http.StatusOK, e2eAdmin, http.MethodPost, "/bookings/"+b+"/complete", nil).Doc["status"])
	for _, action := range []string{"complete", "check-in", "cancel", "no-show"} {
		requireE2EProblem(t, f.call(t, e2eAdmin, http.MethodPost, "/bookings/"+b+"/"+action, nil), http.StatusConflict, bhttp.CodeInvalidTransition)
	}
	// A client may only cancel.
	cb := f.book(t, e2eClient, f.Space, "", e2eAt(f.Day, 15, 0))
	for _, action := range []string{"confirm", "reject", "check-in", "complete", "no-show"} {
		requireE2EProblem(t, f.call(t, e2eClient, http.MethodPost, "/bookings/"+cb+"/"+action, nil), http.StatusForbidden, bhttp.CodeForbidden)
	}

	// Reschedule: onto another booking is a conflict naming it; onto a
	// free time moves the booking and frees the old one.
	r1 := f.book(t, e2eAdmin, f.Space, client, e2eAt(f.Day, 16, 0))
	r2 := f.book(t, e2eAdmin, f.Space, client, e2eAt(f.Day, 17, 0))
	clash := f.call(t, e2eClient, http.MethodPost, "/bookings/"+r1+"/reschedule", map[string]any{
		"start": e2eAt(f.Day, 16, 45).Format(time.RFC3339), "end": e2eAt(f.Day, 17, 15).Format(time.RFC3339),
	})
	requireE2EProblem(t, clash, http.StatusConflict, bhttp.CodeBookingConflict)
	require.Equal(t, []string{r2}, problemConflicts(t, clash))
	// Moving within its own time overlaps only itself.
	f.must(t, http.StatusOK, e2eClient, http.MethodPost, "/bookings/"+r1+"/reschedule", map[string]any{
		"start": e2eAt(f.Day, 16, 15).Format(time.RFC3339), "end": e2eAt(f.Day, 16, 45).Format(time.RFC3339),
	})
	f.book(t, e2eAdmin, f.Space, f.Users[e2eClient2], e2eAt(f.Day, 16, 0).Add(-15*time.Minute))

	// no_show once the booking has started.
	time.Sleep(time.Until(soon) + 100*time.Millisecond)
	got := f.must(t, http.StatusOK, e2eManager, http.MethodPost, "/bookings/"+ns+"/no-show", map[string]any{"reason": "did not come"})
	require.Equal(t, "no_show", got.Doc["status"])
	require.Equal(t, "did not come", got.Doc["status_reason"])
	requireE2EProblem(t, f.call(t, e2eManager, http.MethodPost, "/bookings/"+ns+"/no-show", nil), http.StatusConflict, bhttp.CodeInvalidTransition)
	requireE2EProblem(t, f.call(t, e2eManager, http.MethodPost, "/bookings/"+ns+"/cancel", nil), http.StatusConflict, bhttp.CodeInvalidTransition)
}

// TestE2EDST books around New York's daylight-saving changes. In the
// autumn the wall-clock hour 01:00–02:00 happens twice and each real hour
// is bookable once; in the spring 02:00–03:00 does not exist, so a time
// written with the old offset is the instant it names (read in the new
// offset) and a window made only of that hour holds nothing.
func TestE2EDST(t *testing.T) {
	t.Parallel()
	ny, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	srv := MustStartE2E(t)
	f := MustE2EFixture(t, srv, "dst", map[string]any{
		"timezone":             "America/New_York",
		"business_hours":       e2eAllDay(),
		"max_duration_minutes": 180,
		"max_advance_days":     0,
	})
	client := f.Users[e2eClient]
	now := time.Now()
	fall := e2eNthSunday(now, time.November, 1)
	spring := e2eNthSunday(now, time.March, 2)
	// The test's own premise: the offsets change where it expects.
	requireE2EOffset(t, ny, fall.Add(5*time.Hour+30*time.Minute), -4)
	requireE2EOffset(t, ny, fall.Add(6*time.Hour+30*time.Minute), -5)
	requireE2EOffset(t, ny, spring.Add(6*time.Hour+30*time.Minute), -5)
	requireE2EOffset(t, ny, spring.Add(7*time.Hour+30*time.Minute), -4)
	date := func(d time.Time) string { return d.Format("2006-01-02") }
	stamp := func(d time.Time, clock, offset string) string { return date(d) + "T" + clock + ":00" + offset }
	booking := func(resource, start, end string) map[string]any {
		return map[string]any{"resource_id": resource, "client_id": client, "start": start, "end": end}
	}

	t.Run("fall back: the repeated hour is two real hours", func(t *testing.T) {
		edt := f.must(t, http.StatusCreated, e2eAdmin, http.MethodPost, "/bookings",
			booking(f.Space, stamp(fall, "01:30", "-04:00"), stamp(fall, "02:00", "-04:00")))
		est := f.must(t, http.StatusCreated, e2eAdmin, http.MethodPost, "/bookings",
			booking(f.Space, stamp(fall, "01:30", "-05:00"), stamp(fall, "02:00", "-05:00")))
		require.Equal(t, stamp(fall, "01:30", "-04:00"), edt.Doc["start"])
		require.Equal(t, stamp(fall, "01:30", "-05:00"), est.Doc["start"])
		require.Equal(t, "America/New_York", est.Doc["timezone"])
		// 01:00 EDT to 01:00 EST is one real hour and overlaps the first.
		clash := f.call(t, e2eAdmin, http.MethodPost, "/bookings",
			booking(f.Space, stamp(fall, "01:00", "-04:00"), stamp(fall, "01:00", "-05:00")))
		requireE2EProblem(t, clash, http.StatusConflict, bhttp.CodeBookingConflict)
		require.Equal(t, []string{edt.str(t, "id")}, problemConflicts(t, clash))
		// 00:00–03:00 on the wall clock is four real hours: too long.
		requireE2EProblem(t, f.call(t, e2eAdmin, http.MethodPost, "/bookings",
			booking(f.Space, stamp(fall, "00:00", "-04:00"), stamp(fall, "03:00", "-05:00"))),
			http.StatusUnprocessableEntity, bhttp.CodeDurationOutOfRange)
	})

	t.Run("fall back: availability spanning the night", func(t *testing.T) {
		night := f.create(t, e2eAdmin, "/resources", map[string]any{"name": "Night desk", "kind": "space"})
		f.must(t, http.StatusOK, e2eAdmin, http.MethodPut, "/resources/"+night+"/availability", map[string]any{
			"weekly": map[string]any{"sat": []map[string]string{{"start": "22:00", "end": "24:00"}}, "sun": []map[string]string{{"start": "00:00", "end": "03:00"}}},
		})
		// 22:00 Saturday to 03:00 Sunday is six real hours that night.
		for _, span := range [][2]string{
			{stamp(fall.AddDate(0, 0, -1), "23:30", "-04:00"), stamp(fall, "00:30", "-04:00")},
			{stamp(fall, "01:30", "-04:00"), stamp(fall, "02:00", "-04:00")},
			{stamp(fall, "01:30", "-05:00"), stamp(fall, "02:00", "-05:00")},
			{stamp(fall, "02:30", "-05:00"), stamp(fall, "03:00", "-05:00")},
		} {
			f.must(t, http.StatusCreated, e2eAdmin, http.MethodPost, "/bookings", booking(night, span[0], span[1]))
		}
		requireE2EProblem(t, f.call(t, e2eAdmin, http.MethodPost, "/bookings",
			booking(night, stamp(fall, "02:30", "-05:00"), stamp(fall, "03:30", "-05:00"))),
			http.StatusUnprocessableEntity, bhttp.CodeOutsideResourceAvailability)
	})

	t.Run("spring forward: a time in the gap", func(t *testing.T) {
		// 02:30 at the old offset is 03:30 EDT: the booking is taken
		// there and shown so.
		gap := f.must(t, http.StatusCreated, e2eAdmin, http.MethodPost, "/bookings",
			booking(f.Space, stamp(spring, "02:30", "-05:00"), stamp(spring, "03:00", "-05:00")))
		require.Equal(t, stamp(spring, "03:30", "-04:00"), gap.Doc["start"])
		require.Equal(t, stamp(spring, "04:00", "-04:00"), gap.Doc["end"])
		// 01:30 EST to 03:30 EDT crosses the gap: one real hour, and it
		// ends where the booking above starts.
		across := f.must(t, http.StatusCreated, e2eAdmin, http.MethodPost, "/bookings",
			booking(f.Space, stamp(spring, "01:30", "-05:00"), stamp(spring, "03:30", "-04:00")))
		require.Equal(t, stamp(spring, "01:30", "-05:00"), across.Doc["start"])
		require.Equal(t, stamp(spring, "03:30", "-04:00"), across.Doc["end"])
		clash := f.call(t, e2eAdmin, http.MethodPost, "/bookings",
			booking(f.Space, stamp(spring, "03:00", "-04:00"), stamp(spring, "03:45", "-04:00")))
		requireE2EProblem(t, clash, http.StatusConflict, bhttp.CodeBookingConflict)
		require.ElementsMatch(t, []string{gap.str(t, "id"), across.str(t, "id")}, problemConflicts(t, clash))
	})

	t.Run("spring forward: a window made only of the missing hour", func(t *testing.T) {
		missing := f.create(t, e2eAdmin, "/resources", map[string]any{"name": "Gap desk", "kind": "space"})
		f.must(t, http.StatusOK, e2eAdmin, http.MethodPut, "/resources/"+missing+"/availability", map[string]any{
			"weekly": map[string]any{"sun": []map[string]string{{"start": "02:00", "end": "03:00"}}},
		})
		for _, span := range [][2]string{
			{stamp(spring, "02:00", "-05:00"), stamp(spring, "02:30", "-05:00")}, // 03:00–03:30 EDT
			{stamp(spring, "02:00", "-04:00"), stamp(spring, "02:30", "-04:00")}, // 01:00–01:30 EST
			{stamp(spring, "01:45", "-05:00"), stamp(spring, "03:15", "-04:00")}, // 01:45 EST–03:15 EDT
		} {
			requireE2EProblem(t, f.call(t, e2eAdmin, http.MethodPost, "/bookings", booking(missing, span[0], span[1])),
				http.StatusUnprocessableEntity, bhttp.CodeOutsideResourceAvailability)
		}
		// A week later the hour exists and the same window is bookable.
		week := spring.AddDate(0, 0, 7)
		ok := f.must(t, http.StatusCreated, e2eAdmin, http.MethodPost, "/bookings",
			booking(missing, stamp(week, "02:00", "-04:00"), stamp(week, "02:30", "-04:00")))
		require.Equal(t, stamp(week, "02:00", "-04:00"), ok.Doc["start"])
	})
}

// e2eNthSunday returns 00:00 UTC of the n-th Sunday of month in the first
// year where that date is at least two days after now.
func e2eNthSunday(now time.Time, month time.Month, n int) time.Time {
	for y := now.Year(); ; y++ {
		d := time.Date(y, month, 1, 0, 0, 0, 0, time.UTC)
		for d.Weekday() != time.Sunday {
			d = d.AddDate(0, 0, 1)
		}
		d = d.AddDate(0, 0, 7*(n-1))
		if d.After(now.Add(48 * time.Hour)) {
			return d
		}
	}
}

// requireE2EOffset checks the UTC offset of loc at instant at, in hours.
func requireE2EOffset(tb testing.TB, loc *time.Location, at time.Time, hours int) {
	tb.Helper()
	_, off := at.In(loc).Zone()
	require.Equal(tb, hours*3600, off, "offset of %s at %s", loc, at)
}

// e2eNextMinute returns the first whole minute at or after t.
func e2eNextMinute(t time.Time) time.Time {
	m := t.Truncate(time.Minute)
	if m.Before(t) {
		m = m.Add(time.Minute)
	}
	return m
}
