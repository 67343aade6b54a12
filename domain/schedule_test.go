package domain_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/domain"
)

// res is a reservation without buffers.
func res(id uuid.UUID, start, end time.Time, seats int) domain.ScheduleReserved {
	return domain.ScheduleReserved{BookingID: id, ResourceID: resourceID, Start: start, End: end, OccupiedStart: start, OccupiedEnd: end, Seats: seats}
}

func TestOccupancyCheck(t *testing.T) {
	t.Parallel()
	h := func(hour, minute int) time.Time { return utc(2026, 6, 2, hour, minute) }
	buffered := domain.ScheduleReserved{BookingID: booking2ID, ResourceID: resourceID, Start: h(10, 0), End: h(11, 0),
		OccupiedStart: h(9, 45), OccupiedEnd: h(11, 15), Seats: 1}
	tests := []struct {
		name       string
		given      []domain.Event
		capacity   int
		start, end time.Time
		seats      int
		ignore     uuid.UUID
		err        error
		conflicts  []uuid.UUID
	}{
		{name: "empty", capacity: 1, start: h(10, 0), end: h(11, 0), seats: 1},
		{name: "overlap at capacity 1", capacity: 1, start: h(10, 30), end: h(11, 30), seats: 1,
			given: []domain.Event{res(booking2ID, h(10, 0), h(11, 0), 1)}, err: domain.ErrBookingConflict, conflicts: []uuid.UUID{booking2ID}},
		{name: "same interval at capacity 1", capacity: 1, start: h(10, 0), end: h(11, 0), seats: 1,
			given: []domain.Event{res(booking2ID, h(10, 0), h(11, 0), 1)}, err: domain.ErrBookingConflict, conflicts: []uuid.UUID{booking2ID}},
		{name: "back to back before", capacity: 1, start: h(11, 0), end: h(12, 0), seats: 1,
			given: []domain.Event{res(booking2ID, h(10, 0), h(11, 0), 1)}},
		{name: "back to back after", capacity: 1, start: h(9, 0), end: h(10, 0), seats: 1,
			given: []domain.Event{res(booking2ID, h(10, 0), h(11, 0), 1)}},
		{name: "inside the other's buffer after", capacity: 1, start: h(11, 0), end: h(12, 0), seats: 1,
			given: []domain.Event{buffered}, err: domain.ErrBookingConflict, conflicts: []uuid.UUID{booking2ID}},
		{name: "inside the other's buffer before", capacity: 1, start: h(9, 0), end: h(9, 50), seats: 1,
			given: []domain.Event{buffered}, err: domain.ErrBookingConflict, conflicts: []uuid.UUID{booking2ID}},
		{name: "touching the other's buffer", capacity: 1, start: h(11, 15), end: h(12, 0), seats: 1, given: []domain.Event{buffered}},
		{name: "seats fit beside others", capacity: 3, start: h(10, 0), end: h(11, 0), seats: 1,
			given: []domain.Event{res(booking2ID, h(10, 0), h(11, 0), 1), res(booking3ID, h(10, 30), h(11, 30), 1)}},
		{name: "seats do not fit", capacity: 3, start: h(10, 0), end: h(11, 0), seats: 2,
			given: []domain.Event{res(booking2ID, h(10, 0), h(11, 0), 1), res(booking3ID, h(10, 30), h(11, 30), 1)},
			err:   domain.ErrBookingConflict, conflicts: []uuid.UUID{booking2ID, booking3ID}},
		{name: "others overlap the interval but never each other", capacity: 2, start: h(9, 0), end: h(12, 0), seats: 1,
			given: []domain.Event{res(booking2ID, h(9, 0), h(10, 0), 1), res(booking3ID, h(10, 0), h(11, 0), 1)}},
		{name: "peak counted inside the interval only", capacity: 2, start: h(10, 0), end: h(11, 0), seats: 1,
			given: []domain.Event{res(booking2ID, h(8, 0), h(10, 0), 1), res(booking3ID, h(9, 0), h(10, 30), 1), res(uuid.New(), h(9, 30), h(9, 45), 1)}},
		{name: "reservation freed by release", capacity: 1, start: h(10, 0), end: h(11, 0), seats: 1,
			given: []domain.Event{res(booking2ID, h(10, 0), h(11, 0), 1), domain.ScheduleReleased{BookingID: booking2ID}}},
		{name: "ignores the booking being rescheduled", capacity: 1, start: h(10, 30), end: h(11, 30), seats: 1, ignore: bookingID,
			given: []domain.Event{res(bookingID, h(10, 0), h(11, 0), 1)}},
		{name: "ignoring itself still sees others", capacity: 1, start: h(10, 30), end: h(11, 30), seats: 1, ignore: bookingID,
			given: []domain.Event{res(bookingID, h(10, 0), h(11, 0), 1), res(booking2ID, h(11, 0), h(12, 0), 1)},
			err:   domain.ErrBookingConflict, conflicts: []uuid.UUID{booking2ID}},
		{name: "more seats than capacity", capacity: 2, start: h(10, 0), end: h(11, 0), seats: 3, err: domain.ErrCapacityExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			occ := occupancy(t, tt.given...)
			err := occ.Check(tt.capacity, tt.start, tt.end, tt.seats, tt.ignore)
			requireErrorIs(t, tt.err, err)
			if tt.conflicts != nil {
				var cerr *domain.ConflictError
				require.ErrorAs(t, err, &cerr)
				var ids []uuid.UUID
				for _, c := range cerr.Conflicts {
					ids = append(ids, c.BookingID)
				}
				require.Equal(t, tt.conflicts, ids)
			}
		})
	}
}

func TestConflictReportsBookedTimesNotBuffers(t *testing.T) {
	t.Parallel()
	h := func(hour, minute int) time.Time { return utc(2026, 6, 2, hour, minute) }
	occ := occupancy(t, domain.ScheduleReserved{BookingID: booking2ID, ResourceID: resourceID, Start: h(10, 0), End: h(11, 0),
		OccupiedStart: h(9, 45), OccupiedEnd: h(11, 15), Seats: 1})
	err := occ.Check(1, h(11, 0), h(12, 0), 1, uuid.Nil)
	var cerr *domain.ConflictError
	require.ErrorAs(t, err, &cerr)
	require.Equal(t, []domain.Conflict{{BookingID: booking2ID, Start: h(10, 0), End: h(11, 0)}}, cerr.Conflicts)
	require.Equal(t, 0, occ.SeatsLeft(1, h(11, 0), h(12, 0), uuid.Nil))
	require.Equal(t, 1, occ.SeatsLeft(1, h(11, 15), h(12, 0), uuid.Nil))
}

func TestOccupancyMergesBuckets(t *testing.T) {
	t.Parallel()
	// A reservation over midnight sits in two buckets and counts once.
	overnight := res(booking2ID, utc(2026, 6, 2, 23, 0), utc(2026, 6, 3, 1, 0), 1)
	day1, day2 := domain.NewSchedule(), &domain.Schedule{}
	require.NoError(t, day1.Replay(overnight))
	require.NoError(t, day2.Replay(overnight, res(booking3ID, utc(2026, 6, 3, 9, 0), utc(2026, 6, 3, 10, 0), 1)))
	occ := domain.NewOccupancy(day1, nil, day2)
	require.Len(t, occ.Reservations(), 2)
	require.NoError(t, occ.Check(2, utc(2026, 6, 3, 0, 0), utc(2026, 6, 3, 0, 30), 1, uuid.Nil), "counted once, so one seat is left")

	occ.Add(domain.Reservation{BookingID: bookingID, Start: utc(2026, 6, 3, 0, 0), End: utc(2026, 6, 3, 1, 0),
		OccupiedStart: utc(2026, 6, 3, 0, 0), OccupiedEnd: utc(2026, 6, 3, 1, 0), Seats: 1})
	requireErrorIs(t, domain.ErrBookingConflict, occ.Check(2, utc(2026, 6, 3, 0, 0), utc(2026, 6, 3, 0, 30), 1, uuid.Nil))
	occ.Remove(bookingID)
	require.NoError(t, occ.Check(2, utc(2026, 6, 3, 0, 0), utc(2026, 6, 3, 0, 30), 1, uuid.Nil))

	var none *domain.Occupancy
	require.NoError(t, none.Check(1, utc(2026, 6, 3, 0, 0), utc(2026, 6, 3, 1, 0), 1, uuid.Nil))
	require.Empty(t, none.Reservations())
}

// TestFallBackHourBookedTwice books the repeated fall-back hour in New York
// once per real hour: the two 01:00 bookings do not conflict.
func TestFallBackHourBookedTwice(t *testing.T) {
	t.Parallel()
	ny := domain.WeeklyHours{"sun": {rng("00:00", "03:00")}}
	p := MustPolicy(t, domain.SettingsInput{Timezone: ptr("America/New_York"), BusinessHours: &ny, MaxAdvanceDays: ptr(0)})
	now := utc(2026, 10, 1, 0, 0)
	edt := mustTime(t, "2026-11-01T01:00:00-04:00")
	est := mustTime(t, "2026-11-01T01:00:00-05:00")

	first, err := domain.NewBooking(bookingID, domain.BookingRequest{ClientID: clientID, Start: edt, End: edt.Add(time.Hour)}, p, nil, manager, now)
	require.NoError(t, err)
	bucket := domain.NewSchedule()
	occStart, occEnd := p.Occupied(edt, edt.Add(time.Hour))
	require.NoError(t, bucket.Reserve(first.ID(), resourceID, first.Start(), first.End(), occStart, occEnd, 1))

	_, err = domain.NewBooking(booking2ID, domain.BookingRequest{ClientID: clientID, Start: est, End: est.Add(time.Hour)}, p, domain.NewOccupancy(bucket), manager, now)
	require.NoError(t, err, "the second real 01:00 is free")
	_, err = domain.NewBooking(booking3ID, domain.BookingRequest{ClientID: clientID, Start: edt.Add(30 * time.Minute), End: edt.Add(90 * time.Minute)}, p, domain.NewOccupancy(bucket), manager, now)
	requireErrorIs(t, domain.ErrBookingConflict, err)
}

func TestScheduleCommands(t *testing.T) {
	t.Parallel()
	start, end := utc(2026, 6, 2, 10, 0), utc(2026, 6, 2, 11, 0)
	r := res(bookingID, start, end, 2)
	tests := []struct {
		name  string
		given []domain.Event
		when  func(s *domain.Schedule) error
		then  []domain.Event
		err   error
	}{
		{"reserve", nil, func(s *domain.Schedule) error {
			return s.Reserve(bookingID, resourceID, start, end, start, end, 2)
		}, []domain.Event{r}, nil},
		{"reserve again identically", []domain.Event{r}, func(s *domain.Schedule) error {
			return s.Reserve(bookingID, resourceID, start, end, start, end, 2)
		}, nil, nil},
		{"reserve again with a new time", []domain.Event{r}, func(s *domain.Schedule) error {
			return s.Reserve(bookingID, resourceID, start, end.Add(time.Hour), start, end.Add(time.Hour), 2)
		}, []domain.Event{res(bookingID, start, end.Add(time.Hour), 2)}, nil},
		{"reserve an empty interval", nil, func(s *domain.Schedule) error {
			return s.Reserve(bookingID, resourceID, end, start, end, start, 1)
		}, nil, domain.ErrValidationFailed},
		{"reserve with occupied time short of the booking", nil, func(s *domain.Schedule) error {
			return s.Reserve(bookingID, resourceID, start, end, start.Add(time.Minute), end, 1)
		}, nil, domain.ErrValidationFailed},
		{"reserve no seats", nil, func(s *domain.Schedule) error {
			return s.Reserve(bookingID, resourceID, start, end, start, end, 0)
		}, nil, domain.ErrValidationFailed},
		{"release", []domain.Event{r}, func(s *domain.Schedule) error { return s.Release(bookingID) },
			[]domain.Event{domain.ScheduleReleased{BookingID: bookingID}}, nil},
		{"release unknown", []domain.Event{r}, func(s *domain.Schedule) error { return s.Release(booking2ID) }, nil, nil},
		{"release twice", []domain.Event{r, domain.ScheduleReleased{BookingID: bookingID}},
			func(s *domain.Schedule) error { return s.Release(bookingID) }, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := domain.NewSchedule()
			require.NoError(t, s.Replay(tt.given...))
			requireErrorIs(t, tt.err, tt.when(s))
			require.Equal(t, tt.then, nilIfEmpty(s.Changes()))
		})
	}
	require.Error(t, domain.NewSchedule().Replay(domain.BookingCreated{}))
}

func TestClientDay(t *testing.T) {
	t.Parallel()
	counted := func(id uuid.UUID) domain.Event { return domain.ClientDayCounted{BookingID: id} }
	tests := []struct {
		name  string
		given []domain.Event
		when  func(c *domain.ClientDay) error
		then  []domain.Event
		err   error
	}{
		{"count under the limit", []domain.Event{counted(booking2ID)},
			func(c *domain.ClientDay) error { return c.Count(bookingID, 2) }, []domain.Event{counted(bookingID)}, nil},
		{"count at the limit", []domain.Event{counted(booking2ID), counted(booking3ID)},
			func(c *domain.ClientDay) error { return c.Count(bookingID, 2) }, nil, domain.ErrClientDailyLimit},
		{"zero limit is no limit", []domain.Event{counted(booking2ID), counted(booking3ID)},
			func(c *domain.ClientDay) error { return c.Count(bookingID, 0) }, []domain.Event{counted(bookingID)}, nil},
		{"released bookings free the day", []domain.Event{counted(booking2ID), counted(booking3ID), domain.ClientDayReleased{BookingID: booking3ID}},
			func(c *domain.ClientDay) error { return c.Count(bookingID, 2) }, []domain.Event{counted(bookingID)}, nil},
		{"counting twice is a no-op", []domain.Event{counted(bookingID)},
			func(c *domain.ClientDay) error { return c.Count(bookingID, 1) }, nil, nil},
		{"release", []domain.Event{counted(bookingID)},
			func(c *domain.ClientDay) error { return c.Release(bookingID) }, []domain.Event{domain.ClientDayReleased{BookingID: bookingID}}, nil},
		{"release unknown", nil, func(c *domain.ClientDay) error { return c.Release(bookingID) }, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := domain.NewClientDay()
			require.NoError(t, c.Replay(tt.given...))
			requireErrorIs(t, tt.err, tt.when(c))
			require.Equal(t, tt.then, nilIfEmpty(c.Changes()))
		})
	}
}

func TestGuard(t *testing.T) {
	t.Parallel()
	claimed := domain.GuardClaimed{OwnerID: tenantID, Value: "clinic.example.com"}
	tests := []struct {
		name  string
		given []domain.Event
		when  func(g *domain.Guard) error
		then  []domain.Event
		err   error
	}{
		{"claim free", nil, func(g *domain.Guard) error { return g.Claim(tenantID, "clinic.example.com", domain.ErrDomainTaken) },
			[]domain.Event{claimed}, nil},
		{"claim again by the owner", []domain.Event{claimed},
			func(g *domain.Guard) error { return g.Claim(tenantID, "clinic.example.com", domain.ErrDomainTaken) }, nil, nil},
		{"claim held by another", []domain.Event{claimed},
			func(g *domain.Guard) error { return g.Claim(otherID, "clinic.example.com", domain.ErrDomainTaken) }, nil, domain.ErrDomainTaken},
		{"email held by another", []domain.Event{domain.GuardClaimed{OwnerID: clientID, Value: "ana@example.com"}},
			func(g *domain.Guard) error { return g.Claim(otherID, "ana@example.com", domain.ErrEmailTaken) }, nil, domain.ErrEmailTaken},
		{"claim after release", []domain.Event{claimed, domain.GuardReleased{OwnerID: tenantID, Value: "clinic.example.com"}},
			func(g *domain.Guard) error { return g.Claim(otherID, "clinic.example.com", domain.ErrDomainTaken) },
			[]domain.Event{domain.GuardClaimed{OwnerID: otherID, Value: "clinic.example.com"}}, nil},
		{"release by the owner", []domain.Event{claimed}, func(g *domain.Guard) error { return g.Release(tenantID) },
			[]domain.Event{domain.GuardReleased{OwnerID: tenantID, Value: "clinic.example.com"}}, nil},
		{"release by another is a no-op", []domain.Event{claimed}, func(g *domain.Guard) error { return g.Release(otherID) }, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := domain.NewGuard()
			require.NoError(t, g.Replay(tt.given...))
			requireErrorIs(t, tt.err, tt.when(g))
			require.Equal(t, tt.then, nilIfEmpty(g.Changes()))
		})
	}
}
