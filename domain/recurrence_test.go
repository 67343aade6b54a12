package domain_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/domain"
)

func TestWallInstantFollowsRFC5545AcrossDST(t *testing.T) {
	t.Parallel()
	wall := func(y int, mo time.Month, d, h, mi int) time.Time { return time.Date(y, mo, d, h, mi, 0, 0, time.UTC) }
	tests := []struct {
		name string
		zone string
		wall time.Time
		want string // RFC 3339
	}{
		{"São Paulo 2018 before DST", "America/Sao_Paulo", wall(2018, 10, 29, 9, 0), "2018-10-29T09:00:00-03:00"},
		{"São Paulo 2018 in DST", "America/Sao_Paulo", wall(2018, 11, 5, 9, 0), "2018-11-05T09:00:00-02:00"},
		{"São Paulo 2018 midnight gap moves forward", "America/Sao_Paulo", wall(2018, 11, 4, 0, 30), "2018-11-04T01:30:00-02:00"},
		{"São Paulo 2019 repeated hour takes the first", "America/Sao_Paulo", wall(2019, 2, 16, 23, 30), "2019-02-16T23:30:00-02:00"},
		{"New York spring gap moves forward", "America/New_York", wall(2026, 3, 8, 2, 30), "2026-03-08T03:30:00-04:00"},
		{"New York fall-back takes the first", "America/New_York", wall(2026, 11, 1, 1, 30), "2026-11-01T01:30:00-04:00"},
		{"New York after fall-back", "America/New_York", wall(2026, 11, 2, 9, 0), "2026-11-02T09:00:00-05:00"},
		{"Lisbon spring gap moves forward", "Europe/Lisbon", wall(2026, 3, 29, 1, 15), "2026-03-29T02:15:00+01:00"},
		{"Lisbon summer", "Europe/Lisbon", wall(2026, 7, 1, 9, 0), "2026-07-01T09:00:00+01:00"},
		{"Lisbon winter", "Europe/Lisbon", wall(2026, 12, 1, 9, 0), "2026-12-01T09:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			loc, err := time.LoadLocation(tt.zone)
			require.NoError(t, err)
			got := domain.WallInstant(tt.wall, loc)
			require.True(t, mustTime(t, tt.want).Equal(got), "got %s", got.In(loc).Format(time.RFC3339))
			if tt.wall.Hour() == 9 {
				require.Equal(t, tt.wall, domain.WallClock(got, loc), "round trip outside transitions")
			}
		})
	}
}

func TestSeriesPlanOccurrences(t *testing.T) {
	t.Parallel()
	loc, err := time.LoadLocation("Europe/Lisbon")
	require.NoError(t, err)
	start := time.Date(2026, 3, 23, 9, 0, 0, 0, loc)
	var starts []time.Time
	for i := range 3 {
		starts = append(starts, domain.WallInstant(domain.WallClock(start, loc).AddDate(0, 0, 7*i), loc))
	}
	plan := domain.SeriesPlan{
		Request:    domain.BookingRequest{Start: start, End: start.Add(time.Hour)},
		Starts:     starts,
		Exclusions: domain.Exclusions{Dates: []string{"2026-03-30"}},
	}
	got, err := plan.Occurrences(loc, 10)
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.Equal(t, "2026-03-23T09:00:00Z", got[0].Start.In(loc).Format(time.RFC3339))
	require.Equal(t, "2026-04-06T09:00:00+01:00", got[1].Start.In(loc).Format(time.RFC3339))
	require.Equal(t, time.Hour, got[1].End.Sub(got[1].Start))

	_, err = plan.Occurrences(loc, 1)
	requireErrorIs(t, domain.ErrValidationFailed, err)
	plan.Exclusions = domain.Exclusions{Instants: starts}
	_, err = plan.Occurrences(loc, 10)
	requireErrorIs(t, domain.ErrValidationFailed, err)
}

func TestSeriesErrorCode(t *testing.T) {
	t.Parallel()
	s, e := utc(2026, 6, 2, 9, 0), utc(2026, 6, 2, 10, 0)
	rule := domain.NewOccurrenceFailure(s, e, domain.ErrOutsideBusinessHours)
	conflict := domain.NewOccurrenceFailure(s, e, &domain.ConflictError{Conflicts: []domain.Conflict{{BookingID: bookingID, Start: s, End: e}}})
	require.Equal(t, domain.CodeOutsideBusinessHours, rule.Code)
	require.Equal(t, domain.CodeBookingConflict, conflict.Code)
	require.Len(t, conflict.Conflicts, 1)

	err := error(&domain.SeriesError{Occurrences: []domain.OccurrenceFailure{rule}})
	require.ErrorIs(t, err, domain.ErrOutsideBusinessHours)
	err = &domain.SeriesError{Occurrences: []domain.OccurrenceFailure{rule, conflict}}
	require.ErrorIs(t, err, domain.ErrBookingConflict, "any conflict makes the series a conflict")
	var se *domain.SeriesError
	require.True(t, errors.As(err, &se))
	var ids []uuid.UUID
	se.ProblemConflicts(func(id uuid.UUID, _, _ time.Time) { ids = append(ids, id) })
	require.Equal(t, []uuid.UUID{bookingID}, ids)
}
