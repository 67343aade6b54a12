// Package calendars is the calendars read model: one calendar entry per
// booking (its times and zone, status, title and the iCalendar sequence)
// and the names of the resources and users calendars belong to, from
// which GET /calendars/resources/{id} and GET /calendars/users/{id} are
// answered in JSON or iCalendar. It also keeps the secret calendar feeds
// (FeedStore), which are credentials rather than projected state. It has
// an in-memory implementation (Memory) and a PostgreSQL one (Postgres,
// tables read_calendar_entries and read_calendar_owners); one test suite
// runs against both.
//
// Each row records the stream version of the last event applied to it,
// so a redelivery, or an old event arriving after a newer one, changes
// nothing. An entry's sequence is folded from its booking's events in
// stream order: it starts at 0 and rises by one with every reschedule and
// with every status change that changes the iCalendar STATUS
// (queries.CalendarStatus), so calendar clients replace what they hold.
package calendars

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
const Name = "calendars"

// categories are the event-store categories the projection reads: the
// bookings, the recurring series they belong to, and the resources and
// users whose names calendars show.
var categories = []string{"booking", "series", "resource", "user"}

// entryRow is one booking's calendar entry. Times are UTC; SeriesID is
// uuid.Nil and OccurrenceStart zero outside a series.
type entryRow struct {
	ID, TenantID, ResourceID, ClientID uuid.UUID
	Start, End                         time.Time
	Timezone                           string
	Status                             domain.Status
	Title                              string
	Sequence                           int
	SeriesID                           uuid.UUID
	OccurrenceStart                    time.Time
	CreatedAt, UpdatedAt               time.Time
	Version                            int64
}

// ownerRow is a resource or a user whose calendar can be asked for.
type ownerRow struct {
	ID, TenantID   uuid.UUID
	Kind           queries.CalendarKind
	Name           string
	LinkedResource uuid.UUID
	Version        int64
}

// seriesRow is a recurring series: its rule as recorded, expanded from the
// wall-clock DTStart in Timezone, each occurrence lasting Duration
// minutes.
type seriesRow struct {
	ID, TenantID         uuid.UUID
	RRule, DTStart       string
	Timezone             string
	Duration             int
	CreatedAt, UpdatedAt time.Time
	Version              int64
}

// stream tells which row a stream feeds: a booking's entry, a series or
// an owner. Resource category streams ("resource-category-<id>") feed
// nothing.
func stream(streamID string) (kind string, id uuid.UUID, ok bool) {
	var rest string
	switch {
	case strings.HasPrefix(streamID, "resource-category-"):
		return "", uuid.Nil, false
	case strings.HasPrefix(streamID, "booking-"):
		kind, rest = "booking", streamID[len("booking-"):]
	case strings.HasPrefix(streamID, "series-"):
		kind, rest = "series", streamID[len("series-"):]
	case strings.HasPrefix(streamID, "resource-"):
		kind, rest = string(queries.CalendarResource), streamID[len("resource-"):]
	case strings.HasPrefix(streamID, "user-"):
		kind, rest = string(queries.CalendarUser), streamID[len("user-"):]
	default:
		return "", uuid.Nil, false
	}
	id, err := uuid.Parse(rest)
	return kind, id, err == nil
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

// notCreated reports an event that reached the read model before its
// stream's creation; only a feed that lost the stream order sends one,
// and it is refused so that the feed delivers it again later.
func notCreated(e projections.Event) error {
	return fmt.Errorf("stream %s version %d: %s before the stream's creation", e.StreamID, e.StreamVersion, e.Type)
}

// foldEntry applies one event of a booking's stream to r and reports
// whether it changed r. An event whose stream version is not above
// r.Version is ignored.
func foldEntry(r *entryRow, e projections.Event) (bool, error) {
	if e.StreamVersion <= r.Version {
		return false, nil
	}
	ev, err := payload(e)
	if err != nil {
		return false, err
	}
	created := r.Version > 0
	if _, isCreation := ev.(domain.BookingCreated); !isCreation && ev != nil && !created {
		return false, notCreated(e)
	}
	switch ev := ev.(type) {
	case domain.BookingCreated:
		if created {
			return false, fmt.Errorf("stream %s version %d: booking.created on an existing booking", e.StreamID, e.StreamVersion)
		}
		*r = entryRow{
			ID: ev.BookingID, TenantID: ev.TenantID, ResourceID: ev.ResourceID, ClientID: ev.ClientID,
			Start: ev.Start.UTC(), End: ev.End.UTC(), Timezone: ev.Timezone, Status: ev.Status, Title: ev.Title,
			CreatedAt: ev.CreatedAt.UTC(), UpdatedAt: ev.CreatedAt.UTC(),
		}
		if ev.SeriesID != nil {
			r.SeriesID = *ev.SeriesID
		}
		if ev.OccurrenceStart != nil {
			r.OccurrenceStart = ev.OccurrenceStart.UTC()
		}
	case domain.BookingRescheduled:
		r.Start, r.End, r.Timezone = ev.Start.UTC(), ev.End.UTC(), ev.Timezone
		if ev.SeriesID != nil {
			r.SeriesID = *ev.SeriesID
		}
		if ev.OccurrenceStart != nil {
			r.OccurrenceStart = ev.OccurrenceStart.UTC()
		}
		r.Sequence++
		r.UpdatedAt = ev.At.UTC()
	case domain.BookingStatusChanged:
		if queries.CalendarStatus(r.Status) != queries.CalendarStatus(ev.To) {
			r.Sequence++
		}
		r.Status, r.UpdatedAt = ev.To, ev.At.UTC()
	case domain.BookingCancelled:
		if queries.CalendarStatus(r.Status) != queries.ICalCancelled {
			r.Sequence++
		}
		r.Status, r.UpdatedAt = domain.StatusCancelled, ev.At.UTC()
	}
	r.Version = e.StreamVersion
	return true, nil
}

// foldSeries applies one event of a series' stream to r and reports
// whether it changed r.
func foldSeries(r *seriesRow, e projections.Event) (bool, error) {
	if e.StreamVersion <= r.Version {
		return false, nil
	}
	ev, err := payload(e)
	if err != nil {
		return false, err
	}
	if _, isCreation := ev.(domain.SeriesCreated); !isCreation && ev != nil && r.Version == 0 {
		return false, notCreated(e)
	}
	switch ev := ev.(type) {
	case domain.SeriesCreated:
		*r = seriesRow{ID: ev.SeriesID, TenantID: ev.TenantID, RRule: ev.RRule, DTStart: ev.DTStart, Timezone: ev.Timezone,
			Duration: ev.DurationMinutes, CreatedAt: ev.CreatedAt.UTC(), UpdatedAt: ev.CreatedAt.UTC()}
	case domain.SeriesRescheduled:
		r.RRule, r.DTStart, r.Duration, r.UpdatedAt = ev.RRule, ev.DTStart, ev.DurationMinutes, ev.At.UTC()
	case domain.SeriesSplit:
		r.RRule, r.UpdatedAt = ev.RRule, ev.At.UTC()
	case domain.SeriesOccurrencesCancelled:
		r.UpdatedAt = ev.At.UTC()
	}
	r.Version = e.StreamVersion
	return true, nil
}

// series returns the row as the queries see it, with its members.
func (r *seriesRow) series(members []queries.CalendarEntry) queries.CalendarSeries {
	return queries.CalendarSeries{ID: r.ID, RRule: r.RRule, DTStart: r.DTStart, Timezone: r.Timezone,
		DurationMinutes: r.Duration, Sequence: int(r.Version - 1), CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
		Members: members}
}

// foldOwner applies one event of a resource's or a user's stream to r and
// reports whether it changed r.
func foldOwner(r *ownerRow, e projections.Event) (bool, error) {
	if e.StreamVersion <= r.Version {
		return false, nil
	}
	ev, err := payload(e)
	if err != nil {
		return false, err
	}
	switch ev := ev.(type) {
	case domain.ResourceCreated:
		*r = ownerRow{ID: ev.ResourceID, TenantID: ev.TenantID, Kind: queries.CalendarResource, Name: ev.Name}
	case domain.UserCreated:
		*r = ownerRow{ID: ev.UserID, TenantID: ev.TenantID, Kind: queries.CalendarUser, Name: ev.Name,
			LinkedResource: orNil(ev.ResourceID)}
	case domain.ResourceUpdated:
		if r.Version == 0 {
			return false, notCreated(e)
		}
		r.Name = ev.Name
	case domain.UserUpdated:
		if r.Version == 0 {
			return false, notCreated(e)
		}
		r.Name, r.LinkedResource = ev.Name, orNil(ev.ResourceID)
	default:
		if ev != nil && r.Version == 0 {
			return false, notCreated(e)
		}
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

// owner returns the row as the queries see it.
func (r *ownerRow) owner() queries.CalendarOwner {
	return queries.CalendarOwner{TenantID: r.TenantID, Kind: r.Kind, ID: r.ID, Name: r.Name, LinkedResource: r.LinkedResource}
}

// entry returns the row as the queries see it, with the names given.
func (r *entryRow) entry(resourceName, clientName string) queries.CalendarEntry {
	client := r.ClientID
	e := queries.CalendarEntry{
		BookingID: r.ID, ResourceID: r.ResourceID, ResourceName: resourceName, ClientID: &client, ClientName: clientName,
		Title: r.Title, Start: r.Start, End: r.End, Timezone: r.Timezone, Status: r.Status, Sequence: r.Sequence,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
	}
	if r.SeriesID != uuid.Nil {
		s := r.SeriesID
		e.SeriesID = &s
	}
	if !r.OccurrenceStart.IsZero() {
		o := r.OccurrenceStart
		e.OccurrenceStart = &o
	}
	return e
}

// matches reports whether r is selected by f.
func (r *entryRow) matches(f queries.CalendarFilter) bool {
	if r.TenantID != f.TenantID || !r.End.After(f.From) || !r.Start.Before(f.To) {
		return false
	}
	return (f.ResourceID != uuid.Nil && r.ResourceID == f.ResourceID) || (f.ClientID != uuid.Nil && r.ClientID == f.ClientID)
}
