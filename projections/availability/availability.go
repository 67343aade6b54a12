// Package availability is the availability read model: for each booking,
// the interval it occupies on its resource (buffers included, as recorded
// when the policy accepted it), its seats, and whether it is active
// (pending, confirmed or checked_in; a rejected, cancelled, completed or
// no-show booking frees its time). The free-slot query combines it with
// the booking policy. It has an in-memory implementation (Memory) and a
// PostgreSQL one (Postgres, table read_availability, the occupied interval
// a tstzrange under a GiST index); one test suite runs against both.
//
// Holds occupy time exactly like bookings: a row per hold (keyed by the
// hold id, which never equals a booking id) is active from hold.placed
// until hold.released (also when a booking consumed it: that booking's own
// row takes the time over, in the same append) or hold.expired.
//
// Each row records its stream's version of the last event applied to it,
// and inactive rows are kept for that reason, so a redelivery or an old
// event arriving late changes nothing.
package availability

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/projections"
	"github.com/bookingengine/booking/projections/internal/decode"
	"github.com/bookingengine/booking/queries"
)

// Name is the projection's permanent name: the key of its checkpoint in
// booking_checkpoints and its consumer group on the message bus. Changing
// it makes the projection replay the whole log.
const Name = "availability"

var categories = []string{"booking", "hold"}

// row is one booking's hold. Times are UTC.
type row struct {
	BookingID, TenantID, ResourceID uuid.UUID
	Start, End                      time.Time
	OccupiedStart, OccupiedEnd      time.Time
	Seats                           int
	Active                          bool
	Version                         int64
}

// bookingID returns the id of the booking or hold whose stream this is.
func bookingID(streamID string) (uuid.UUID, bool) {
	rest, ok := strings.CutPrefix(streamID, "booking-")
	if !ok {
		rest, ok = strings.CutPrefix(streamID, "hold-")
	}
	if !ok {
		return uuid.Nil, false
	}
	id, err := uuid.Parse(rest)
	return id, err == nil
}

// fold applies one event of the booking's stream to r and reports whether
// it changed r; events at or below r.Version are ignored, and types this
// build does not know only advance the version.
func fold(r *row, e projections.Event) (bool, error) {
	if e.StreamVersion <= r.Version {
		return false, nil
	}
	ev, err := decode.Event(e)
	if errors.Is(err, domain.ErrUnknownEventType) {
		r.Version = e.StreamVersion
		return true, nil
	}
	if err != nil {
		return false, err
	}
	created := r.Version > 0
	switch ev := ev.(type) {
	case domain.BookingCreated:
		if created {
			return false, fmt.Errorf("stream %s version %d: booking.created on an existing booking", e.StreamID, e.StreamVersion)
		}
		*r = row{BookingID: ev.BookingID, TenantID: ev.TenantID, ResourceID: ev.ResourceID,
			Seats: ev.Seats, Active: ev.Status.Active()}
		r.setTimes(ev.Start, ev.End, ev.BufferBeforeMinutes, ev.BufferAfterMinutes)
	case domain.BookingRescheduled:
		if !created {
			return false, notCreated(e)
		}
		r.setTimes(ev.Start, ev.End, ev.BufferBeforeMinutes, ev.BufferAfterMinutes)
	case domain.BookingStatusChanged:
		if !created {
			return false, notCreated(e)
		}
		r.Active = ev.To.Active()
	case domain.BookingCancelled:
		if !created {
			return false, notCreated(e)
		}
		r.Active = false
	case domain.HoldPlaced:
		if created {
			return false, fmt.Errorf("stream %s version %d: hold.placed on an existing hold", e.StreamID, e.StreamVersion)
		}
		*r = row{BookingID: ev.HoldID, TenantID: ev.TenantID, ResourceID: ev.ResourceID, Seats: ev.Seats, Active: true}
		r.setTimes(ev.Start, ev.End, ev.BufferBeforeMinutes, ev.BufferAfterMinutes)
	case domain.HoldReleased, domain.HoldExpired:
		if !created {
			return false, notCreated(e)
		}
		r.Active = false
	}
	r.Version = e.StreamVersion
	return true, nil
}

// setTimes records the booked interval and the occupied one, as
// domain.Booking.OccupiedInterval computes it.
func (r *row) setTimes(start, end time.Time, before, after int) {
	r.Start, r.End = start.UTC(), end.UTC()
	r.OccupiedStart = r.Start.Add(-time.Duration(before) * time.Minute)
	r.OccupiedEnd = r.End.Add(time.Duration(after) * time.Minute)
}

func notCreated(e projections.Event) error {
	return fmt.Errorf("stream %s version %d: %s before the stream's first event", e.StreamID, e.StreamVersion, e.Type)
}

func (r *row) interval() queries.OccupiedInterval {
	return queries.OccupiedInterval{BookingID: r.BookingID, ResourceID: r.ResourceID, Start: r.Start, End: r.End,
		OccupiedStart: r.OccupiedStart, OccupiedEnd: r.OccupiedEnd, Seats: r.Seats}
}
