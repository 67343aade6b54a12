package commands_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/commands"
	"github.com/bookingengine/booking/domain"
)

func newWeeklySeries(t *testing.T, f zoneFixture, start time.Time, rule string) domain.SeriesView {
	t.Helper()
	v, err := f.series(context.Background(), start, 60, commands.Recurrence{RRule: rule})
	require.NoError(t, err)
	return v
}

func statuses(t *testing.T, f zoneFixture, v domain.SeriesView) []domain.Status {
	t.Helper()
	var out []domain.Status
	for _, b := range v.Bookings {
		out = append(out, f.booking(t, b.ID).Status())
	}
	return out
}

func TestCancelScopes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newZoneFixture(t, "America/New_York", time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), 1, domain.SettingsInput{})
	c, p := domain.StatusCancelled, domain.StatusConfirmed
	v := newWeeklySeries(t, f, f.local(2026, 10, 19, 9, 0), "FREQ=WEEKLY;COUNT=5")

	_, err := f.h.ChangeBookingStatus(ctx, f.admin, commands.ChangeBookingStatus{BookingID: v.Bookings[1].ID, To: c, Scope: domain.ScopeOccurrence})
	require.NoError(t, err)
	require.Equal(t, []domain.Status{p, c, p, p, p}, statuses(t, f, v))

	_, err = f.h.ChangeBookingStatus(ctx, f.admin, commands.ChangeBookingStatus{BookingID: v.Bookings[3].ID, To: c, Scope: domain.ScopeFollowing, Reason: "moving away"})
	require.NoError(t, err)
	require.Equal(t, []domain.Status{p, c, p, c, c}, statuses(t, f, v))
	cancelled := events(t, f.store, "booking", domain.EventBookingCancelled)
	require.Len(t, cancelled, 3)
	e, err := domain.UnmarshalEvent(cancelled[2].Type, cancelled[2].Data)
	require.NoError(t, err)
	require.Equal(t, domain.ScopeFollowing, e.(domain.BookingCancelled).Scope, "the event says which scope")
	sc := events(t, f.store, "series", domain.EventSeriesOccurrencesCancelled)
	require.Len(t, sc, 1)
	e, err = domain.UnmarshalEvent(sc[0].Type, sc[0].Data)
	require.NoError(t, err)
	require.ElementsMatch(t, []uuid.UUID{v.Bookings[3].ID, v.Bookings[4].ID}, e.(domain.SeriesOccurrencesCancelled).BookingIDs)

	// The freed times can be booked again.
	_, err = f.book(ctx, f.admin, v.Bookings[4].Start, v.Bookings[4].End)
	require.NoError(t, err)

	_, err = f.h.ChangeBookingStatus(ctx, f.admin, commands.ChangeBookingStatus{BookingID: v.Bookings[0].ID, To: c, Scope: domain.ScopeAll})
	require.NoError(t, err)
	require.Equal(t, []domain.Status{c, c, c, c, c}, statuses(t, f, v))

	// A scope on a single booking, or on another action, is refused.
	single, err := f.book(ctx, f.admin, f.local(2026, 12, 1, 9, 0), f.local(2026, 12, 1, 10, 0))
	require.NoError(t, err)
	_, err = f.h.ChangeBookingStatus(ctx, f.admin, commands.ChangeBookingStatus{BookingID: single.ID, To: c, Scope: domain.ScopeAll})
	require.ErrorIs(t, err, domain.ErrValidationFailed)
	_, err = f.h.ChangeBookingStatus(ctx, f.admin, commands.ChangeBookingStatus{BookingID: single.ID, To: domain.StatusRejected, Scope: domain.ScopeAll})
	require.ErrorIs(t, err, domain.ErrValidationFailed)
}

// TestRescheduleFollowingSplitsTheSeries moves the tail of a New York
// series by one hour of wall-clock time across the fall-back: every moved
// occurrence is at 10:00 local, and the tail is a new series linked to the
// old one.
func TestRescheduleFollowingSplitsTheSeries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newZoneFixture(t, "America/New_York", time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), 1, domain.SettingsInput{})
	v := newWeeklySeries(t, f, f.local(2026, 10, 19, 9, 0), "FREQ=WEEKLY;BYDAY=MO;COUNT=4")
	pivot := v.Bookings[1]
	_, err := f.h.RescheduleBooking(ctx, f.admin, commands.RescheduleBooking{
		BookingID: pivot.ID, Start: f.local(2026, 10, 27, 10, 0), End: f.local(2026, 10, 27, 11, 0), Scope: domain.ScopeFollowing,
	})
	require.NoError(t, err)
	first := f.booking(t, v.Bookings[0].ID)
	require.Equal(t, 9, first.Start().In(f.loc).Hour(), "the head stays")
	require.Equal(t, v.ID, first.SeriesID())
	var tail uuid.UUID
	for i, want := range []string{"2026-10-27T14:00:00Z", "2026-11-03T15:00:00Z", "2026-11-10T15:00:00Z"} {
		b := f.booking(t, v.Bookings[i+1].ID)
		require.Equal(t, want, b.Start().UTC().Format(time.RFC3339), "occurrence %d", i+1)
		require.Equal(t, 10, b.Start().In(f.loc).Hour())
		require.Equal(t, time.Tuesday, b.Start().In(f.loc).Weekday())
		require.NotEqual(t, v.ID, b.SeriesID(), "the tail is a new series")
		if tail == uuid.Nil {
			tail = b.SeriesID()
		}
		require.Equal(t, tail, b.SeriesID())
		require.True(t, b.OccurrenceStart().Equal(b.Start()))
	}
	split := events(t, f.store, "series", domain.EventSeriesSplit)
	require.Len(t, split, 1)
	e, err := domain.UnmarshalEvent(split[0].Type, split[0].Data)
	require.NoError(t, err)
	require.Equal(t, tail, e.(domain.SeriesSplit).NewSeriesID)
	require.Equal(t, "FREQ=WEEKLY;UNTIL=20261026T125959Z;BYDAY=MO", e.(domain.SeriesSplit).RRule)
	created := seriesCreated(t, f, tail)
	require.Equal(t, v.ID, *created.ParentSeriesID)
	require.Equal(t, "2026-10-27T10:00:00", created.DTStart)
	require.Equal(t, "FREQ=WEEKLY;UNTIL=20261110T150000Z;BYDAY=TU", created.RRule)
	res := events(t, f.store, "booking", domain.EventBookingRescheduled)
	require.Len(t, res, 3)
	e, err = domain.UnmarshalEvent(res[0].Type, res[0].Data)
	require.NoError(t, err)
	require.Equal(t, domain.ScopeFollowing, e.(domain.BookingRescheduled).Scope)

	// The old times are free, the new ones taken.
	_, err = f.book(ctx, f.admin, v.Bookings[3].Start, v.Bookings[3].End)
	require.NoError(t, err)
	_, err = f.book(ctx, f.admin, f.local(2026, 11, 10, 10, 0), f.local(2026, 11, 10, 11, 0))
	require.ErrorIs(t, err, domain.ErrBookingConflict)
}

func TestRescheduleAllAndOccurrence(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newZoneFixture(t, "Europe/Lisbon", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), 1, domain.SettingsInput{})
	v := newWeeklySeries(t, f, f.local(2026, 3, 16, 9, 0), "FREQ=WEEKLY;COUNT=4")

	// One occurrence alone: only it moves, and says so.
	_, err := f.h.RescheduleBooking(ctx, f.admin, commands.RescheduleBooking{
		BookingID: v.Bookings[2].ID, Start: f.local(2026, 3, 30, 14, 0), End: f.local(2026, 3, 30, 15, 0), Scope: domain.ScopeOccurrence,
	})
	require.NoError(t, err)
	b := f.booking(t, v.Bookings[2].ID)
	require.Equal(t, 14, b.Start().In(f.loc).Hour())
	require.True(t, b.OccurrenceStart().Equal(v.Bookings[2].Start), "the RECURRENCE-ID stays")
	require.Equal(t, 9, f.booking(t, v.Bookings[3].ID).Start().In(f.loc).Hour())

	// All: every occurrence moves by +1 day 30 minutes of wall-clock time
	// (the one moved alone moves by the same offset), and takes the new
	// duration.
	_, err = f.h.RescheduleBooking(ctx, f.admin, commands.RescheduleBooking{
		BookingID: v.Bookings[1].ID, Start: f.local(2026, 3, 24, 9, 30), End: f.local(2026, 3, 24, 10, 0), Scope: domain.ScopeAll,
	})
	require.NoError(t, err)
	for i, want := range []string{"2026-03-17T09:30:00Z", "2026-03-24T09:30:00Z", "2026-03-31T14:30:00+01:00", "2026-04-07T09:30:00+01:00"} {
		b := f.booking(t, v.Bookings[i].ID)
		require.Equal(t, want, b.Start().In(f.loc).Format(time.RFC3339), "occurrence %d", i)
		require.Equal(t, 30*time.Minute, b.End().Sub(b.Start()))
		require.Equal(t, v.ID, b.SeriesID(), "all keeps the series")
	}
	resched := events(t, f.store, "series", domain.EventSeriesRescheduled)
	require.Len(t, resched, 1)
	e, err := domain.UnmarshalEvent(resched[0].Type, resched[0].Data)
	require.NoError(t, err)
	require.Equal(t, "2026-03-17T09:30:00", e.(domain.SeriesRescheduled).DTStart)
	require.Equal(t, 30, e.(domain.SeriesRescheduled).DurationMinutes)

	// A move that does not fit anywhere refuses the whole edit and lists
	// the occurrence.
	_, err = f.book(ctx, f.admin, f.local(2026, 4, 7, 11, 0), f.local(2026, 4, 7, 12, 0))
	require.NoError(t, err)
	_, err = f.h.RescheduleBooking(ctx, f.admin, commands.RescheduleBooking{
		BookingID: v.Bookings[1].ID, Start: f.local(2026, 3, 24, 11, 0), End: f.local(2026, 3, 24, 11, 30), Scope: domain.ScopeAll,
	})
	var se *domain.SeriesError
	require.ErrorAs(t, err, &se)
	require.Len(t, se.Occurrences, 1)
	require.Equal(t, domain.CodeBookingConflict, se.Occurrences[0].Code)
	require.Equal(t, 9, f.booking(t, v.Bookings[3].ID).Start().In(f.loc).Hour(), "nothing moved")
}

// TestSplitSeriesKeepsItsGaps: the new series a "following" reschedule
// splits off names as excluded every time its rule yields that no moved
// occurrence holds: an occurrence cancelled before the split, and a date
// the original series excluded. Its event alone tells a consumer which
// instances are not booked, as the original's did.
func TestSplitSeriesKeepsItsGaps(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newZoneFixture(t, "America/New_York", time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), 1, domain.SettingsInput{})
	// Mondays 09:00 from 19 October, six of them, without 9 November.
	v := newWeeklySeries(t, f, f.local(2026, 10, 19, 9, 0), "FREQ=WEEKLY;COUNT=6\nEXDATE;TZID=America/New_York:20261109T090000")
	require.Len(t, v.Bookings, 5)
	_, err := f.h.ChangeBookingStatus(ctx, f.admin, commands.ChangeBookingStatus{BookingID: v.Bookings[2].ID, To: domain.StatusCancelled,
		Scope: domain.ScopeOccurrence})
	require.NoError(t, err)

	// From the second Monday on, to Tuesdays at 10:00.
	_, err = f.h.RescheduleBooking(ctx, f.admin, commands.RescheduleBooking{
		BookingID: v.Bookings[1].ID, Start: f.local(2026, 10, 27, 10, 0), End: f.local(2026, 10, 27, 11, 0), Scope: domain.ScopeFollowing,
	})
	require.NoError(t, err)
	tail := f.booking(t, v.Bookings[1].ID).SeriesID()
	created := seriesCreated(t, f, tail)
	require.Equal(t, tail, created.SeriesID)
	require.Len(t, created.Occurrences, 3, "the second, fifth and sixth Mondays moved")
	require.Equal(t, []time.Time{f.local(2026, 11, 3, 10, 0).UTC(), f.local(2026, 11, 10, 10, 0).UTC()}, created.ExDates,
		"the Tuesdays of the cancelled third Monday and of the excluded fourth")
}

// seriesCreated returns the series.created event of a series.
func seriesCreated(t *testing.T, f zoneFixture, id uuid.UUID) domain.SeriesCreated {
	t.Helper()
	for _, r := range events(t, f.store, "series", domain.EventSeriesCreated) {
		e, err := domain.UnmarshalEvent(r.Type, r.Data)
		require.NoError(t, err)
		if c := e.(domain.SeriesCreated); c.SeriesID == id {
			return c
		}
	}
	t.Fatalf("no series.created for %s", id)
	return domain.SeriesCreated{}
}
