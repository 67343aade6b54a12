package domain

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/google/uuid"
)

// Reservation is one booking's hold on a resource as a schedule bucket
// records it: the booked interval and the occupied one (with buffers).
type Reservation struct {
	BookingID     uuid.UUID `json:"booking_id"`
	ResourceID    uuid.UUID `json:"resource_id"`
	Start         time.Time `json:"start"`
	End           time.Time `json:"end"`
	OccupiedStart time.Time `json:"occupied_start"`
	OccupiedEnd   time.Time `json:"occupied_end"`
	Seats         int       `json:"seats"`
}

// Schedule is one bucket of a resource's occupancy: the reservations whose
// occupied interval touches one UTC day (stream ScheduleStreams). It is the
// conflict boundary: every booking that could overlap another appends to a
// common bucket with its expected version, so two concurrent bookings of the
// same time cannot both commit. The zero value is an empty bucket; there is
// no creation event.
type Schedule struct {
	root
	reservations map[uuid.UUID]Reservation
}

// NewSchedule returns an empty bucket, equivalent to the zero value.
func NewSchedule() *Schedule { return &Schedule{} }

// Replay rebuilds the bucket from its stream.
func (s *Schedule) Replay(events ...Event) error { return s.replay("schedule", s.apply, events) }

// Reserve records schedule.reserved. It does not check capacity: the caller
// checks an Occupancy built from every bucket the interval touches first.
// Reserving a booking again with identical values records nothing
// (idempotent); with other values it replaces the reservation. It returns a
// *ValidationError for an empty interval, an occupied interval that does
// not contain the booked one, or seats below 1.
func (s *Schedule) Reserve(bookingID, resourceID uuid.UUID, start, end, occStart, occEnd time.Time, seats int) error {
	var v ValidationError
	if bookingID == uuid.Nil {
		v.Add("booking_id", FieldRequired, "is required")
	}
	if !start.Before(end) {
		v.Add("end", FieldInvalid, "must be after start")
	}
	if occStart.After(start) || occEnd.Before(end) {
		v.Add("occupied_start", FieldInvalid, "the occupied interval must contain the booked one")
	}
	if seats < 1 {
		v.Add("seats", FieldOutOfRange, "must be at least 1")
	}
	if err := v.Err(); err != nil {
		return err
	}
	r := Reservation{BookingID: bookingID, ResourceID: resourceID, Start: start.UTC(), End: end.UTC(),
		OccupiedStart: occStart.UTC(), OccupiedEnd: occEnd.UTC(), Seats: seats}
	if old, ok := s.reservations[bookingID]; ok && old == r {
		return nil
	}
	return s.record(s.apply, ScheduleReserved(r))
}

// Release records schedule.released for a held booking. Releasing a booking
// the bucket does not hold records nothing and returns nil, so releasing
// every bucket of a booking is always safe.
func (s *Schedule) Release(bookingID uuid.UUID) error {
	if _, ok := s.reservations[bookingID]; !ok {
		return nil
	}
	return s.record(s.apply, ScheduleReleased{BookingID: bookingID})
}

// Holds reports whether the bucket holds a reservation for bookingID.
func (s *Schedule) Holds(bookingID uuid.UUID) bool {
	_, ok := s.reservations[bookingID]
	return ok
}

// Reservations returns the bucket's reservations ordered by occupied start.
func (s *Schedule) Reservations() []Reservation { return sortedReservations(s.reservations) }

func (s *Schedule) apply(e Event) error {
	switch e := e.(type) {
	case ScheduleReserved:
		if s.reservations == nil {
			s.reservations = map[uuid.UUID]Reservation{}
		}
		s.reservations[e.BookingID] = Reservation(e)
	case ScheduleReleased:
		delete(s.reservations, e.BookingID)
	default:
		return foreignEvent("schedule", e)
	}
	return nil
}

// Occupancy is the merged view of the schedule buckets a command loaded,
// deduplicated by booking id (a reservation spanning two days appears in
// both buckets). It answers whether new seats fit. Not safe for concurrent
// use.
type Occupancy struct {
	reservations map[uuid.UUID]Reservation
}

// NewOccupancy merges buckets; nil buckets are skipped. When a booking
// appears in several buckets the last one given wins (they agree unless a
// write is in flight, which the expected versions then reject).
func NewOccupancy(buckets ...*Schedule) *Occupancy {
	o := &Occupancy{reservations: map[uuid.UUID]Reservation{}}
	for _, b := range buckets {
		if b == nil {
			continue
		}
		for id, r := range b.reservations {
			o.reservations[id] = r
		}
	}
	return o
}

// Add includes r, e.g. an occurrence of a recurring booking that is being
// created in the same command, so later occurrences are checked against it.
func (o *Occupancy) Add(r Reservation) {
	if o.reservations == nil {
		o.reservations = map[uuid.UUID]Reservation{}
	}
	o.reservations[r.BookingID] = r
}

// Remove drops a booking from the view.
func (o *Occupancy) Remove(bookingID uuid.UUID) { delete(o.reservations, bookingID) }

// Reservations returns every reservation ordered by occupied start. A nil
// Occupancy has none.
func (o *Occupancy) Reservations() []Reservation {
	if o == nil {
		return nil
	}
	return sortedReservations(o.reservations)
}

// Check reports whether seats more fit on a resource of the given capacity
// during the occupied interval [occStart, occEnd), ignoring the reservation
// of booking ignore (the booking being rescheduled; uuid.Nil ignores none).
// Intervals are half-open, so back-to-back occupations never conflict.
//
// When at some instant the reserved seats plus seats would exceed capacity,
// it returns a *ConflictError listing every reservation that overlaps the
// interval, with their booked (not buffered) times. Seats above capacity on
// their own return ErrCapacityExceeded (a *RuleError). A nil Occupancy is
// empty. Check is read-only.
func (o *Occupancy) Check(capacity int, occStart, occEnd time.Time, seats int, ignore uuid.UUID) error {
	if seats > capacity {
		return ruleErr(CodeCapacityExceeded, "%d seats requested, the resource has %d", seats, capacity)
	}
	overlapping := o.overlapping(occStart, occEnd, ignore)
	if len(overlapping) == 0 {
		return nil
	}
	if peakSeats(overlapping, occStart, occEnd)+seats <= capacity {
		return nil
	}
	conflicts := make([]Conflict, 0, len(overlapping))
	for _, r := range overlapping {
		conflicts = append(conflicts, Conflict{BookingID: r.BookingID, Start: r.Start, End: r.End})
	}
	sort.Slice(conflicts, func(i, j int) bool {
		if !conflicts[i].Start.Equal(conflicts[j].Start) {
			return conflicts[i].Start.Before(conflicts[j].Start)
		}
		return conflicts[i].BookingID.String() < conflicts[j].BookingID.String()
	})
	return &ConflictError{Conflicts: conflicts}
}

// SeatsLeft returns how many seats stay free during the whole interval
// [occStart, occEnd) on a resource of the given capacity, ignoring booking
// ignore. The free-slot query reports it as seats_left.
func (o *Occupancy) SeatsLeft(capacity int, occStart, occEnd time.Time, ignore uuid.UUID) int {
	left := capacity - peakSeats(o.overlapping(occStart, occEnd, ignore), occStart, occEnd)
	return max(left, 0)
}

func (o *Occupancy) overlapping(occStart, occEnd time.Time, ignore uuid.UUID) []Reservation {
	if o == nil {
		return nil
	}
	var out []Reservation
	for id, r := range o.reservations {
		if id == ignore && ignore != uuid.Nil {
			continue
		}
		if r.OccupiedStart.Before(occEnd) && occStart.Before(r.OccupiedEnd) {
			out = append(out, r)
		}
	}
	return out
}

// peakSeats sweeps the reservations clipped to [from, to) and returns the
// largest number of seats taken at one instant. Ends sort before starts at
// the same instant, which makes intervals half-open.
func peakSeats(rs []Reservation, from, to time.Time) int {
	type edge struct {
		at    time.Time
		delta int
	}
	edges := make([]edge, 0, 2*len(rs))
	for _, r := range rs {
		edges = append(edges, edge{maxTime(r.OccupiedStart, from), r.Seats}, edge{minTime(r.OccupiedEnd, to), -r.Seats})
	}
	sort.Slice(edges, func(i, j int) bool {
		if !edges[i].at.Equal(edges[j].at) {
			return edges[i].at.Before(edges[j].at)
		}
		return edges[i].delta < edges[j].delta
	})
	peak, cur := 0, 0
	for _, e := range edges {
		cur += e.delta
		peak = max(peak, cur)
	}
	return peak
}

func sortedReservations(m map[uuid.UUID]Reservation) []Reservation {
	out := make([]Reservation, 0, len(m))
	for _, r := range m {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].OccupiedStart.Equal(out[j].OccupiedStart) {
			return out[i].OccupiedStart.Before(out[j].OccupiedStart)
		}
		return out[i].BookingID.String() < out[j].BookingID.String()
	})
	return out
}

// ClientDay counts a client's active bookings on one local date (stream
// ClientDayStream) to enforce max_bookings_per_client_per_day: two
// concurrent bookings of the same client and day append to the same stream,
// so the limit cannot be overrun. The zero value is an empty day.
type ClientDay struct {
	root
	bookings map[uuid.UUID]bool
}

// NewClientDay returns an empty day, equivalent to the zero value.
func NewClientDay() *ClientDay { return &ClientDay{} }

// Replay rebuilds the day from its stream.
func (c *ClientDay) Replay(events ...Event) error { return c.replay("client day", c.apply, events) }

// Count records clientday.counted for an active booking. A limit of 0 means
// no limit. Counting a booking already counted records nothing and returns
// nil (idempotent, and a reschedule within the day keeps its place). When
// the day already holds limit bookings it returns ErrClientDailyLimit (a
// *RuleError with code client_daily_limit_reached).
func (c *ClientDay) Count(bookingID uuid.UUID, limit int) error {
	if c.bookings[bookingID] {
		return nil
	}
	if limit > 0 && len(c.bookings) >= limit {
		return ruleErr(CodeClientDailyLimitReached, "the client already has %d booking(s) that day, the limit is %d", len(c.bookings), limit)
	}
	return c.record(c.apply, ClientDayCounted{BookingID: bookingID})
}

// Release records clientday.released when the booking stops being active
// (cancelled, rejected) or moves to another day. Releasing a booking not
// counted records nothing and returns nil.
func (c *ClientDay) Release(bookingID uuid.UUID) error {
	if !c.bookings[bookingID] {
		return nil
	}
	return c.record(c.apply, ClientDayReleased{BookingID: bookingID})
}

// Active returns how many bookings the day counts.
func (c *ClientDay) Active() int { return len(c.bookings) }

func (c *ClientDay) apply(e Event) error {
	switch e := e.(type) {
	case ClientDayCounted:
		if c.bookings == nil {
			c.bookings = map[uuid.UUID]bool{}
		}
		c.bookings[e.BookingID] = true
	case ClientDayReleased:
		delete(c.bookings, e.BookingID)
	default:
		return foreignEvent("client day", e)
	}
	return nil
}

// Guard makes a value unique (a tenant domain across the platform, an email
// within a tenant): its stream (DomainGuardStream, EmailGuardStream) holds at
// most one owner, and claiming appends with the expected version, so two
// concurrent claims cannot both win. The zero value is an unclaimed guard.
type Guard struct {
	root
	owner uuid.UUID
	value string
}

var errValueTaken = errors.New("value taken")

// NewGuard returns an unclaimed guard, equivalent to the zero value.
func NewGuard() *Guard { return &Guard{} }

// Replay rebuilds the guard from its stream.
func (g *Guard) Replay(events ...Event) error { return g.replay("guard", g.apply, events) }

// Claim records guard.claimed for ownerID. Claiming again by the same owner
// records nothing and returns nil (idempotent). When another owner holds the
// guard it returns taken wrapped with the value (pass ErrDomainTaken or
// ErrEmailTaken, so the error carries the contract code).
func (g *Guard) Claim(ownerID uuid.UUID, value string, taken error) error {
	if g.owner == ownerID && ownerID != uuid.Nil {
		return nil
	}
	if g.owner != uuid.Nil {
		if taken == nil {
			taken = errValueTaken
		}
		return fmt.Errorf("%q is held by another owner: %w", value, taken)
	}
	return g.record(g.apply, GuardClaimed{OwnerID: ownerID, Value: value})
}

// Release records guard.released when ownerID holds the guard; otherwise it
// records nothing and returns nil, so only the owner can free a value.
func (g *Guard) Release(ownerID uuid.UUID) error {
	if g.owner != ownerID || ownerID == uuid.Nil {
		return nil
	}
	return g.record(g.apply, GuardReleased{OwnerID: ownerID, Value: g.value})
}

// Owner returns the current owner, uuid.Nil when free.
func (g *Guard) Owner() uuid.UUID { return g.owner }

func (g *Guard) apply(e Event) error {
	switch e := e.(type) {
	case GuardClaimed:
		g.owner, g.value = e.OwnerID, e.Value
	case GuardReleased:
		g.owner, g.value = uuid.Nil, ""
	default:
		return foreignEvent("guard", e)
	}
	return nil
}
