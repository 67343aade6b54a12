// Package reports is the reports read model behind GET /reports/bookings
// and GET /reports/utilization: one fact row per booking (resource,
// start, booked minutes, seats, current status, whether it was ever
// confirmed, whether it was cancelled late, lead time) and each tenant's
// zone, resources and categories. A report aggregates the facts of its
// range when it is asked for (per resource, category or local day), so
// percentiles of any grouping are exact and a change of zone or of a
// resource's category applies to every report at once. It has an
// in-memory implementation (Memory) and a PostgreSQL one (Postgres,
// tables read_report_*); one test suite runs against both.
//
// Each row records its stream's version of the last event applied, so a
// redelivery, or an old event arriving after a newer one, changes
// nothing.
package reports

import (
	"errors"
	"fmt"
	"math"
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
const Name = "reports"

// categories are the event-store categories the projection reads.
var categories = []string{"booking", "resource", "tenant"}

// kind tells which entity a stream holds.
type kind int

const (
	kindNone kind = iota
	kindBooking
	kindTenant
	kindCategory
	kindResource
)

// streamKind parses "booking-<id>", "tenant-<id>",
// "resource-category-<id>" and "resource-<id>".
func streamKind(streamID string) (kind, uuid.UUID) {
	for _, p := range []struct {
		prefix string
		k      kind
	}{{"booking-", kindBooking}, {"tenant-", kindTenant}, {"resource-category-", kindCategory}, {"resource-", kindResource}} {
		if rest, ok := strings.CutPrefix(streamID, p.prefix); ok {
			if id, err := uuid.Parse(rest); err == nil {
				return p.k, id
			}
			return kindNone, uuid.Nil
		}
	}
	return kindNone, uuid.Nil
}

// bookingRow is the fact of one booking. Minutes is its length and Lead
// the whole minutes from its creation to its start.
type bookingRow struct {
	ID, TenantID, ResourceID uuid.UUID
	Start, End               time.Time
	Minutes, Lead            int64
	Seats                    int
	Status                   domain.Status
	Confirmed, Late          bool
	CreatedAt                time.Time
	Version                  int64
}

type tenantRow struct {
	ID       uuid.UUID
	Timezone string
	Version  int64
}

type resourceRow struct {
	ID, TenantID uuid.UUID
	CategoryID   uuid.UUID // uuid.Nil: none
	Name         string
	Active       bool
	Version      int64
}

type categoryRow struct {
	ID, TenantID uuid.UUID
	Name         string
	Version      int64
}

// payload returns the event, nil for a type this build does not know (it
// only advances the version), or an error for a malformed payload.
func payload(e projections.Event) (domain.Event, error) {
	ev, err := decode.Event(e)
	if errors.Is(err, domain.ErrUnknownEventType) {
		return nil, nil
	}
	return ev, err
}

func notCreated(e projections.Event) error {
	return fmt.Errorf("stream %s version %d: %s before the stream's creation", e.StreamID, e.StreamVersion, e.Type)
}

// wasConfirmed reports whether a booking in status s has been confirmed.
func wasConfirmed(s domain.Status) bool {
	return s == domain.StatusConfirmed || s == domain.StatusCheckedIn || s == domain.StatusCompleted || s == domain.StatusNoShow
}

// times sets the booking's interval and what derives from it.
func (r *bookingRow) times(start, end time.Time) {
	r.Start, r.End = start.UTC(), end.UTC()
	r.Minutes = int64(r.End.Sub(r.Start) / time.Minute)
	r.Lead = int64(r.Start.Sub(r.CreatedAt) / time.Minute)
}

func foldBooking(r *bookingRow, e projections.Event) (bool, error) {
	if e.StreamVersion <= r.Version {
		return false, nil
	}
	ev, err := payload(e)
	if err != nil {
		return false, err
	}
	if _, isCreation := ev.(domain.BookingCreated); !isCreation && ev != nil && r.Version == 0 {
		return false, notCreated(e)
	}
	switch ev := ev.(type) {
	case domain.BookingCreated:
		if r.Version > 0 {
			return false, fmt.Errorf("stream %s version %d: booking.created on an existing booking", e.StreamID, e.StreamVersion)
		}
		*r = bookingRow{ID: ev.BookingID, TenantID: ev.TenantID, ResourceID: ev.ResourceID, Seats: ev.Seats,
			Status: ev.Status, Confirmed: wasConfirmed(ev.Status), CreatedAt: ev.CreatedAt.UTC()}
		r.times(ev.Start, ev.End)
	case domain.BookingRescheduled:
		r.times(ev.Start, ev.End)
	case domain.BookingStatusChanged:
		r.Status, r.Confirmed = ev.To, r.Confirmed || wasConfirmed(ev.To)
	case domain.BookingCancelled:
		r.Status, r.Late = domain.StatusCancelled, ev.Late
	}
	r.Version = e.StreamVersion
	return true, nil
}

func foldTenant(r *tenantRow, e projections.Event) (bool, error) {
	if e.StreamVersion <= r.Version {
		return false, nil
	}
	ev, err := payload(e)
	if err != nil {
		return false, err
	}
	switch ev := ev.(type) {
	case domain.TenantCreated:
		*r = tenantRow{ID: ev.TenantID, Timezone: ev.Settings.Timezone}
	case domain.TenantSettingsChanged:
		if r.Version == 0 {
			return false, notCreated(e)
		}
		r.Timezone = ev.Settings.Timezone
	}
	r.Version = e.StreamVersion
	return true, nil
}

func foldCategory(r *categoryRow, e projections.Event) (bool, error) {
	if e.StreamVersion <= r.Version {
		return false, nil
	}
	ev, err := payload(e)
	if err != nil {
		return false, err
	}
	if ev, ok := ev.(domain.ResourceCategoryCreated); ok {
		*r = categoryRow{ID: ev.CategoryID, TenantID: ev.TenantID, Name: ev.Name}
	}
	r.Version = e.StreamVersion
	return true, nil
}

func foldResource(r *resourceRow, e projections.Event) (bool, error) {
	if e.StreamVersion <= r.Version {
		return false, nil
	}
	ev, err := payload(e)
	if err != nil {
		return false, err
	}
	if _, created := ev.(domain.ResourceCreated); !created && ev != nil && r.Version == 0 {
		return false, notCreated(e)
	}
	switch ev := ev.(type) {
	case domain.ResourceCreated:
		*r = resourceRow{ID: ev.ResourceID, TenantID: ev.TenantID, CategoryID: orNil(ev.CategoryID), Name: ev.Name, Active: true}
	case domain.ResourceUpdated:
		r.CategoryID, r.Name = orNil(ev.CategoryID), ev.Name
	case domain.ResourceDeactivated:
		r.Active = false
	}
	r.Version = e.StreamVersion
	return true, nil
}

func orNil(id *uuid.UUID) uuid.UUID {
	if id == nil {
		return uuid.Nil
	}
	return *id
}

// booked reports whether a booking in status s holds or held its time.
func booked(s domain.Status) bool { return s != domain.StatusCancelled && s != domain.StatusRejected }

// percentile returns the nearest-rank percentile p of sorted values, as
// PostgreSQL's percentile_disc: the value at position ceil(p·n).
func percentile(sorted []int64, p float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

// statsBuilder accumulates the facts of one group.
type statsBuilder struct {
	s     queries.BookingStats
	leads []int64
}

func (b *statsBuilder) add(r *bookingRow) {
	if b.s.ByStatus == nil {
		b.s.ByStatus = map[domain.Status]int{}
	}
	b.s.ByStatus[r.Status]++
	if r.Confirmed {
		b.s.Confirmed++
	}
	if r.Late && r.Status == domain.StatusCancelled {
		b.s.LateCancelled++
	}
	if booked(r.Status) {
		b.s.BookedMinutes += r.Minutes * int64(r.Seats)
	}
	b.s.LeadSum += r.Lead
	b.leads = append(b.leads, r.Lead)
}
