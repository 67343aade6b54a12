package commands_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/commands"
	"github.com/bookingengine/booking/domain"
)

// TestSeriesKeepsWallClockAcrossDST books weekly and monthly series at
// 09:00 local across a daylight-saving change in three zones: each
// occurrence stays at 09:00 local, so its UTC time moves.
func TestSeriesKeepsWallClockAcrossDST(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		zone  string
		now   time.Time
		start [3]int // y, m, d
		rule  string
		utc   []string // expected starts in UTC
	}{
		{"São Paulo weekly into 2018 DST", "America/Sao_Paulo", time.Date(2018, 10, 1, 0, 0, 0, 0, time.UTC), [3]int{2018, 10, 22},
			"FREQ=WEEKLY;COUNT=4", []string{"2018-10-22T12:00:00Z", "2018-10-29T12:00:00Z", "2018-11-05T11:00:00Z", "2018-11-12T11:00:00Z"}},
		{"São Paulo monthly through 2018–19 DST", "America/Sao_Paulo", time.Date(2018, 10, 1, 0, 0, 0, 0, time.UTC), [3]int{2018, 10, 10},
			"FREQ=MONTHLY;BYMONTHDAY=10;COUNT=6", []string{"2018-10-10T12:00:00Z", "2018-11-10T11:00:00Z", "2018-12-10T11:00:00Z",
				"2019-01-10T11:00:00Z", "2019-02-10T11:00:00Z", "2019-03-10T12:00:00Z"}},
		{"New York weekly over fall-back", "America/New_York", time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), [3]int{2026, 10, 19},
			"RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=4", []string{"2026-10-19T13:00:00Z", "2026-10-26T13:00:00Z", "2026-11-02T14:00:00Z", "2026-11-09T14:00:00Z"}},
		{"New York monthly over spring-forward", "America/New_York", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), [3]int{2026, 2, 15},
			"FREQ=MONTHLY;UNTIL=20260415T235959Z", []string{"2026-02-15T14:00:00Z", "2026-03-15T13:00:00Z", "2026-04-15T13:00:00Z"}},
		{"Lisbon weekly over spring-forward", "Europe/Lisbon", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), [3]int{2026, 3, 16},
			"FREQ=WEEKLY;UNTIL=20260406", []string{"2026-03-16T09:00:00Z", "2026-03-23T09:00:00Z", "2026-03-30T08:00:00Z", "2026-04-06T08:00:00Z"}},
		{"Lisbon monthly over fall-back", "Europe/Lisbon", time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC), [3]int{2026, 9, 20},
			"FREQ=MONTHLY;COUNT=3", []string{"2026-09-20T08:00:00Z", "2026-10-20T08:00:00Z", "2026-11-20T09:00:00Z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newZoneFixture(t, tt.zone, tt.now, 1, domain.SettingsInput{})
			v, err := f.series(context.Background(), f.local(tt.start[0], time.Month(tt.start[1]), tt.start[2], 9, 0), 60,
				commands.Recurrence{RRule: tt.rule})
			require.NoError(t, err)
			require.Len(t, v.Bookings, len(tt.utc))
			for i, b := range v.Bookings {
				require.Equal(t, tt.utc[i], b.Start.UTC().Format(time.RFC3339), "occurrence %d", i)
				require.Equal(t, 9, b.Start.In(f.loc).Hour(), "occurrence %d stays at 09:00 local", i)
				require.Equal(t, time.Hour, b.End.Sub(b.Start))
				require.Equal(t, v.ID, *b.SeriesID)
				require.True(t, b.OccurrenceStart.Equal(b.Start))
			}
			require.Empty(t, v.Skipped)
			created := events(t, f.store, "series", domain.EventSeriesCreated)
			require.Len(t, created, 1)
			e, err := domain.UnmarshalEvent(created[0].Type, created[0].Data)
			require.NoError(t, err)
			sc := e.(domain.SeriesCreated)
			require.Equal(t, tt.zone, sc.Timezone)
			require.Contains(t, sc.DTStart, "T09:00:00")
			require.Len(t, sc.Occurrences, len(tt.utc))
		})
	}
}

func TestSeriesExdates(t *testing.T) {
	t.Parallel()
	f := newZoneFixture(t, "Europe/Lisbon", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), 1, domain.SettingsInput{})
	start := f.local(2026, 12, 7, 9, 0)
	v, err := f.series(context.Background(), start, 30, commands.Recurrence{
		RRule:   "FREQ=WEEKLY;COUNT=5\nEXDATE;TZID=Europe/Lisbon:20261221T090000",
		ExDates: []string{"2026-12-14", "2027-01-04T09:00:00Z"},
	})
	require.NoError(t, err)
	var got []string
	for _, b := range v.Bookings {
		got = append(got, b.Start.In(f.loc).Format("2006-01-02"))
	}
	require.Equal(t, []string{"2026-12-07", "2026-12-28"}, got, "COUNT counts the excluded instances too (RFC 5545)")
	created := events(t, f.store, "series", domain.EventSeriesCreated)
	e, err := domain.UnmarshalEvent(created[0].Type, created[0].Data)
	require.NoError(t, err)
	require.Len(t, e.(domain.SeriesCreated).ExDates, 3)
	require.Equal(t, "FREQ=WEEKLY;COUNT=5", e.(domain.SeriesCreated).RRule)
}

func TestSeriesRefusesBadRules(t *testing.T) {
	t.Parallel()
	f := newZoneFixture(t, "America/New_York", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), 1, domain.SettingsInput{MaxOccurrences: intp(5)})
	start := f.local(2026, 12, 7, 9, 0)
	for _, rule := range []string{
		"FREQ=WEEKLY",                  // unbounded
		"FREQ=DAILY;COUNT=6",           // over max_occurrences
		"FREQ=DAILY;UNTIL=20271231",    // over max_occurrences
		"FREQ=WEEKLY;BYDAY=TU;COUNT=3", // the start is not the first occurrence
		"DTSTART:20261207T090000\nFREQ=WEEKLY;COUNT=2",
		"FREQ=FORTNIGHTLY;COUNT=2",
		"",
	} {
		_, err := f.series(context.Background(), start, 30, commands.Recurrence{RRule: rule})
		require.ErrorIs(t, err, domain.ErrValidationFailed, "rule %q", rule)
		var ve *domain.ValidationError
		require.ErrorAs(t, err, &ve)
		require.True(t, ve.Has("recurrence.rrule"), "rule %q: %v", rule, err)
	}
	_, err := f.series(context.Background(), start, 30, commands.Recurrence{RRule: "FREQ=DAILY;COUNT=2", Policy: "maybe"})
	require.ErrorIs(t, err, domain.ErrValidationFailed)
	require.Empty(t, events(t, f.store, "booking", domain.EventBookingCreated))
}

func TestSeriesAllOrNothingListsEveryFailure(t *testing.T) {
	t.Parallel()
	f := newZoneFixture(t, "UTC", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), 1, domain.SettingsInput{})
	ctx := context.Background()
	start := f.local(2026, 12, 7, 9, 0)
	in1, err := f.book(ctx, f.admin, start.AddDate(0, 0, 7), start.AddDate(0, 0, 7).Add(time.Hour))
	require.NoError(t, err)
	_, err = f.book(ctx, f.admin, start.AddDate(0, 0, 21).Add(30*time.Minute), start.AddDate(0, 0, 21).Add(90*time.Minute))
	require.NoError(t, err)
	before := len(events(t, f.store, "booking", domain.EventBookingCreated))

	_, err = f.series(ctx, start, 60, commands.Recurrence{RRule: "FREQ=WEEKLY;COUNT=5", Policy: domain.SeriesAllOrNothing})
	var se *domain.SeriesError
	require.ErrorAs(t, err, &se)
	require.ErrorIs(t, err, domain.ErrBookingConflict)
	require.Len(t, se.Occurrences, 2)
	require.True(t, se.Occurrences[0].Start.Equal(start.AddDate(0, 0, 7)))
	require.Equal(t, domain.CodeBookingConflict, se.Occurrences[0].Code)
	require.Equal(t, in1.ID, se.Occurrences[0].Conflicts[0].BookingID)
	require.True(t, se.Occurrences[1].Start.Equal(start.AddDate(0, 0, 21)))
	require.Len(t, events(t, f.store, "booking", domain.EventBookingCreated), before, "nothing was booked")
	require.Empty(t, events(t, f.store, "series", domain.EventSeriesCreated))

	// A rule violation is listed with its own code.
	g := newZoneFixture(t, "UTC", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), 1, domain.SettingsInput{
		Closures: &[]domain.Closure{{Date: "2026-12-14"}}})
	_, err = g.series(ctx, start, 60, commands.Recurrence{RRule: "FREQ=WEEKLY;COUNT=3"})
	require.ErrorAs(t, err, &se)
	require.ErrorIs(t, err, domain.ErrOutsideBusinessHours)
	require.Len(t, se.Occurrences, 1)
	require.Equal(t, domain.CodeOutsideBusinessHours, se.Occurrences[0].Code)
}

func TestSeriesSkipConflicts(t *testing.T) {
	t.Parallel()
	f := newZoneFixture(t, "UTC", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), 1, domain.SettingsInput{})
	ctx := context.Background()
	start := f.local(2026, 12, 7, 9, 0)
	_, err := f.book(ctx, f.admin, start.AddDate(0, 0, 7), start.AddDate(0, 0, 7).Add(time.Hour))
	require.NoError(t, err)
	v, err := f.series(ctx, start, 60, commands.Recurrence{RRule: "FREQ=WEEKLY;COUNT=4", Policy: domain.SeriesSkipConflicts})
	require.NoError(t, err)
	require.Len(t, v.Bookings, 3)
	require.Len(t, v.Skipped, 1)
	require.Equal(t, domain.CodeBookingConflict, v.Skipped[0].Code)
	require.True(t, v.Skipped[0].Start.Equal(start.AddDate(0, 0, 7)))
	// Its occurrences count against each other: hour-long occurrences every
	// 30 minutes overlap every other one.
	w, err := f.series(ctx, start.AddDate(0, 1, 0), 60, commands.Recurrence{RRule: "FREQ=MINUTELY;INTERVAL=30;COUNT=4", Policy: domain.SeriesSkipConflicts})
	require.NoError(t, err)
	require.Len(t, w.Bookings, 2)
	require.Len(t, w.Skipped, 2)
	require.Equal(t, w.Bookings[0].ID, w.Skipped[0].Conflicts[0].BookingID)
}

// TestSeriesRace runs series that share one slot at once: exactly one
// wins, whole, and every other is refused whole.
func TestSeriesRace(t *testing.T) {
	t.Parallel()
	f := newZoneFixture(t, "UTC", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), 1, domain.SettingsInput{})
	ctx := context.Background()
	const racers = 8
	var ok, refused atomic.Int32
	var wg sync.WaitGroup
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each racer starts on another Monday; all share the fifth
			// week's Monday 09:00.
			start := f.local(2026, 12, 7+7*(i%4), 9, 0)
			count := 5 - i%4
			_, err := f.series(ctx, start, 60, commands.Recurrence{RRule: "FREQ=WEEKLY;COUNT=" + string(rune('0'+count))})
			var se *domain.SeriesError
			switch {
			case err == nil:
				ok.Add(1)
			case errors.As(err, &se):
				refused.Add(1)
			default:
				t.Errorf("unexpected error: %v", err)
			}
		}()
	}
	wg.Wait()
	require.EqualValues(t, 1, ok.Load())
	require.EqualValues(t, racers-1, refused.Load())
	created := events(t, f.store, "series", domain.EventSeriesCreated)
	require.Len(t, created, 1)
	e, err := domain.UnmarshalEvent(created[0].Type, created[0].Data)
	require.NoError(t, err)
	require.Len(t, events(t, f.store, "booking", domain.EventBookingCreated), len(e.(domain.SeriesCreated).Occurrences),
		"only the winner's bookings exist, all of them")
}

// TestSubDailyRulesTakeNoFilters: an hourly rule whose filters never match
// would scan centuries of hours before answering; it is refused at once.
func TestSubDailyRulesTakeNoFilters(t *testing.T) {
	t.Parallel()
	f := newZoneFixture(t, "UTC", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), 1, domain.SettingsInput{})
	start := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	for _, rule := range []string{"FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=30;COUNT=2", "FREQ=MINUTELY;BYHOUR=25;COUNT=2", "FREQ=HOURLY;INTERVAL=24;BYHOUR=1;COUNT=3"} {
		_, err := f.series(context.Background(), start, 60, commands.Recurrence{RRule: rule})
		var v *domain.ValidationError
		require.ErrorAs(t, err, &v, rule)
		require.True(t, v.Has("recurrence.rrule"), rule)
	}
}
