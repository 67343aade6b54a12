// Package bookings is the bookings read model: every booking of every
// tenant as GET /bookings/{id} shows it, and the listing GET /bookings
// filters and pages through. It has an in-memory implementation (Memory)
// and a PostgreSQL one (Postgres, table read_bookings); one test suite
// runs against both.
//
// Each row records the stream version of the last booking event applied
// to it (the booking's version), so an event at or below it is ignored:
// a redelivery, or an old event arriving after a newer one, changes
// nothing.
package bookings

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
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
const Name = "bookings"

// categories are the event-store categories the projection reads.
var categories = []string{"booking"}

// row is one booking as stored. Start and End are UTC; Attributes is a
// JSON object.
type row struct {
	ID, TenantID, ResourceID, ClientID uuid.UUID
	Start, End                         time.Time
	Timezone                           string
	Seats                              int
	Title, Notes                       string
	Attributes                         json.RawMessage
	Status                             domain.Status
	StatusReason                       string
	CancelledLate                      bool
	PolicyVersion                      int
	BufferBefore, BufferAfter          int
	Version                            int64
	CreatedAt, UpdatedAt               time.Time
	CreatedBy, UpdatedBy               string
}

// bookingID returns the booking a stream belongs to ("booking-<id>").
func bookingID(streamID string) (uuid.UUID, bool) {
	rest, ok := strings.CutPrefix(streamID, "booking-")
	if !ok {
		return uuid.Nil, false
	}
	id, err := uuid.Parse(rest)
	return id, err == nil
}

// fold applies one event of the booking's stream to r and reports whether
// it changed r. An event whose stream version is not above r.Version is
// ignored. Types this build does not know only advance the version.
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
		attrs, err := marshalAttributes(ev.Attributes)
		if err != nil {
			return false, fmt.Errorf("stream %s version %d: %w", e.StreamID, e.StreamVersion, err)
		}
		*r = row{
			ID: ev.BookingID, TenantID: ev.TenantID, ResourceID: ev.ResourceID, ClientID: ev.ClientID,
			Start: ev.Start.UTC(), End: ev.End.UTC(), Timezone: ev.Timezone, Seats: ev.Seats,
			Title: ev.Title, Notes: ev.Notes, Attributes: attrs, Status: ev.Status,
			PolicyVersion: ev.PolicyVersion, BufferBefore: ev.BufferBeforeMinutes, BufferAfter: ev.BufferAfterMinutes,
			CreatedAt: ev.CreatedAt.UTC(), UpdatedAt: ev.CreatedAt.UTC(), CreatedBy: ev.CreatedBy, UpdatedBy: ev.CreatedBy,
		}
	case domain.BookingRescheduled:
		if !created {
			return false, notCreated(e)
		}
		r.Start, r.End, r.PolicyVersion = ev.Start.UTC(), ev.End.UTC(), ev.PolicyVersion
		r.BufferBefore, r.BufferAfter, r.Timezone = ev.BufferBeforeMinutes, ev.BufferAfterMinutes, ev.Timezone
		r.UpdatedAt, r.UpdatedBy = ev.At.UTC(), ev.Actor
	case domain.BookingStatusChanged:
		if !created {
			return false, notCreated(e)
		}
		r.Status, r.StatusReason = ev.To, ev.Reason
		r.UpdatedAt, r.UpdatedBy = ev.At.UTC(), ev.Actor
	case domain.BookingCancelled:
		if !created {
			return false, notCreated(e)
		}
		r.Status, r.StatusReason, r.CancelledLate = domain.StatusCancelled, ev.Reason, ev.Late
		r.UpdatedAt, r.UpdatedBy = ev.At.UTC(), ev.Actor
	}
	r.Version = e.StreamVersion
	return true, nil
}

// notCreated reports an event that reached the read model before its
// booking's creation; it can only come from a feed that lost the stream
// order, and is refused so that the feed delivers it again later.
func notCreated(e projections.Event) error {
	return fmt.Errorf("stream %s version %d: %s before booking.created", e.StreamID, e.StreamVersion, e.Type)
}

func marshalAttributes(m map[string]any) (json.RawMessage, error) {
	if len(m) == 0 {
		return json.RawMessage(`{}`), nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("attributes: %w", err)
	}
	return b, nil
}

// booking returns the row as the queries see it (times in UTC).
func (r *row) booking() (queries.Booking, error) {
	var attrs map[string]any
	if len(r.Attributes) > 0 {
		if err := json.Unmarshal(r.Attributes, &attrs); err != nil {
			return queries.Booking{}, fmt.Errorf("booking %s: attributes: %w", r.ID, err)
		}
	}
	return queries.Booking{
		ID: r.ID, TenantID: r.TenantID, ResourceID: r.ResourceID, ClientID: r.ClientID,
		Start: r.Start, End: r.End, Timezone: r.Timezone, Seats: r.Seats, Title: r.Title, Notes: r.Notes,
		Attributes: attrs, Status: r.Status, StatusReason: r.StatusReason, CancelledLate: r.CancelledLate,
		PolicyVersion: r.PolicyVersion, BufferBeforeMinutes: r.BufferBefore, BufferAfterMinutes: r.BufferAfter,
		Version: r.Version, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, CreatedBy: r.CreatedBy, UpdatedBy: r.UpdatedBy,
	}, nil
}

// matches reports whether r passes f's filters (not the page key).
func (r *row) matches(f queries.BookingFilter) bool {
	switch {
	case r.TenantID != f.TenantID,
		f.ResourceID != uuid.Nil && r.ResourceID != f.ResourceID,
		f.ClientID != uuid.Nil && r.ClientID != f.ClientID,
		len(f.Statuses) > 0 && !slices.Contains(f.Statuses, r.Status),
		!f.From.IsZero() && !r.End.After(f.From),
		!f.To.IsZero() && !r.Start.Before(f.To),
		!f.Visible.Admits(r.ClientID, r.ResourceID):
		return false
	}
	return true
}

// compareKey orders rows by start, then id, as listings do.
func compareKey(aStart time.Time, aID uuid.UUID, bStart time.Time, bID uuid.UUID) int {
	if c := aStart.Compare(bStart); c != 0 {
		return c
	}
	return bytes.Compare(aID[:], bID[:])
}
