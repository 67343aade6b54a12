package queries

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/bookingengine/booking/domain"
)

// CalendarKind says whose calendar: a resource's or a user's. The string
// values are stored with calendar feeds: never rename one.
type CalendarKind string

// Calendar kinds.
const (
	// CalendarResource is the calendar of one resource: every booking of
	// it.
	CalendarResource CalendarKind = "resource"
	// CalendarUser is the calendar of one user: the bookings it is the
	// client of and, when it is linked to a (person) resource, that
	// resource's bookings too, so a professional sees its working day.
	CalendarUser CalendarKind = "user"
)

// Valid reports whether k is a known kind.
func (k CalendarKind) Valid() bool { return k == CalendarResource || k == CalendarUser }

// The window of a calendar when the request leaves it open, and the
// widest window one request may ask for.
const (
	// DefaultCalendarBack is how far before now a calendar starts when
	// from is not given.
	DefaultCalendarBack = 30 * 24 * time.Hour
	// DefaultCalendarAhead is how far after now a calendar ends when
	// neither from nor to is given (with from alone it ends
	// DefaultCalendarBack+DefaultCalendarAhead after from).
	DefaultCalendarAhead = 365 * 24 * time.Hour
	// MaxCalendarRange bounds [from, to).
	MaxCalendarRange = 400 * 24 * time.Hour
)

// iCalendar STATUS values of a VEVENT (RFC 5545, 3.8.1.11).
const (
	ICalTentative = "TENTATIVE"
	ICalConfirmed = "CONFIRMED"
	ICalCancelled = "CANCELLED"
)

// CalendarStatus returns the iCalendar STATUS of a booking in status s:
// TENTATIVE while it awaits approval, CANCELLED once it is cancelled or
// rejected (the entry stays in the feed so that subscribers remove it),
// CONFIRMED otherwise. An entry's sequence rises when this value changes.
func CalendarStatus(s domain.Status) string {
	switch s {
	case domain.StatusPending:
		return ICalTentative
	case domain.StatusCancelled, domain.StatusRejected:
		return ICalCancelled
	}
	return ICalConfirmed
}

// GetCalendar asks for the entries of one calendar that overlap [From,
// To). A zero From means now minus DefaultCalendarBack; a zero To means
// From plus DefaultCalendarBack and DefaultCalendarAhead.
type GetCalendar struct {
	Viewer      Viewer
	Kind        CalendarKind
	ID          uuid.UUID
	From, To    time.Time
	MinPosition int64
}

// CalendarEntry is one booking as a calendar shows it. Start and End are
// in the booking's zone (Timezone); Sequence is the iCalendar SEQUENCE,
// raised by every reschedule and by every status change that changes
// CalendarStatus; UID is stable for the life of the booking. SeriesID and
// OccurrenceStart are set on an occurrence of a recurring series (the
// occurrence start is its iCalendar RECURRENCE-ID). A calendar shown as
// busy time only (CalendarBusy) has no client, an empty ClientName and
// the title "Busy".
type CalendarEntry struct {
	UID             string        `json:"uid"`
	BookingID       uuid.UUID     `json:"booking_id"`
	ResourceID      uuid.UUID     `json:"resource_id"`
	ResourceName    string        `json:"resource_name"`
	ClientID        *uuid.UUID    `json:"client_id,omitempty"`
	ClientName      string        `json:"client_name,omitempty"`
	Title           string        `json:"title"`
	Start           time.Time     `json:"start"`
	End             time.Time     `json:"end"`
	Timezone        string        `json:"timezone"`
	Status          domain.Status `json:"status"`
	Sequence        int           `json:"sequence"`
	SeriesID        *uuid.UUID    `json:"series_id,omitempty"`
	OccurrenceStart *time.Time    `json:"occurrence_start,omitempty"`
	CreatedAt       time.Time     `json:"created_at"`
	UpdatedAt       time.Time     `json:"updated_at"`
}

// CalendarView is one calendar: whose it is, the window asked for and the
// entries overlapping it, ordered by start then booking id. Cancelled and
// rejected bookings are included (status says so). Series are the
// recurring series the entries belong to, each with all its occurrences
// (also those outside the window), for iCalendar, which renders a series
// whole: a master event with its rule and one instance per occurrence.
type CalendarView struct {
	Kind    CalendarKind     `json:"kind"`
	ID      uuid.UUID        `json:"id"`
	Name    string           `json:"name"`
	From    time.Time        `json:"from"`
	To      time.Time        `json:"to"`
	Entries []CalendarEntry  `json:"entries"`
	Series  []CalendarSeries `json:"-"`
}

// CalendarSeries is a recurring series as a calendar renders it: its
// rule as recorded (RRULE value, bounded by COUNT or UNTIL in UTC),
// expanded from DTStart, the first occurrence's local wall-clock start
// (domain.WallLayout) in Timezone; each occurrence lasts DurationMinutes.
// Sequence rises with every change of the series itself (a reschedule of
// all occurrences, a split, a cancellation of several); UID is stable.
// Members are the bookings that belong to the series now, whatever their
// time or status, ordered by occurrence start (OccurrenceStart is set on
// each), presented as CalendarView's entries are.
type CalendarSeries struct {
	ID              uuid.UUID
	UID             string
	RRule           string
	DTStart         string
	Timezone        string
	DurationMinutes int
	Sequence        int
	CreatedAt       time.Time
	UpdatedAt       time.Time
	Members         []CalendarEntry
}

// CalendarOwner is the resource or user a calendar belongs to.
// LinkedResource is the person resource a user is linked to (uuid.Nil:
// none; always uuid.Nil for a resource).
type CalendarOwner struct {
	TenantID       uuid.UUID
	Kind           CalendarKind
	ID             uuid.UUID
	Name           string
	LinkedResource uuid.UUID
}

// CalendarFilter selects the entries of one tenant whose booking is on
// ResourceID or has ClientID as its client (either may be uuid.Nil, not
// both), overlapping [From, To).
type CalendarFilter struct {
	TenantID   uuid.UUID
	ResourceID uuid.UUID
	ClientID   uuid.UUID
	From, To   time.Time
}

// CalendarReadModel is the calendars read model.
type CalendarReadModel interface {
	// CalendarOwner returns the tenant's resource or user, or an error
	// wrapping domain.ErrNotFound.
	CalendarOwner(ctx context.Context, tenantID uuid.UUID, kind CalendarKind, id uuid.UUID) (CalendarOwner, error)
	// CalendarEntries returns the entries f selects ordered by start then
	// booking id, with Start, End, CreatedAt and UpdatedAt in UTC, the
	// resource's and the client's current names ("" when unknown), UID
	// empty and ClientID set.
	CalendarEntries(ctx context.Context, f CalendarFilter) ([]CalendarEntry, error)
	// CalendarSeries returns the tenant's series among ids (unknown ones
	// are left out) with their members, as CalendarEntries returns
	// entries, ordered by occurrence start; UIDs are left empty.
	CalendarSeries(ctx context.Context, tenantID uuid.UUID, ids []uuid.UUID) ([]CalendarSeries, error)
}

// CalendarHandler answers GetCalendar from the calendars read model.
type CalendarHandler struct {
	readModel CalendarReadModel
	wait      Waiter
	uidDomain string
	now       func() time.Time
}

// NewCalendarHandler returns the handler. uidDomain is the right-hand
// side of every entry's UID (<booking id>@<uidDomain>): changing it
// changes every UID, and subscribed calendars then show every booking
// twice until they drop the old ones. now is the clock of the default
// window (time.Now when nil).
func NewCalendarHandler(readModel CalendarReadModel, wait Waiter, uidDomain string, now func() time.Time) CalendarHandler {
	if now == nil {
		now = time.Now
	}
	return CalendarHandler{readModel: readModel, wait: wait, uidDomain: uidDomain, now: now}
}

// Handle returns the calendar. Who may see which calendar follows the
// bookings' visibility: staff (admin, manager, platform admin) see every
// calendar of the tenant; a professional its own user calendar and its
// linked resource's calendar; a client its own user calendar. Whoever may
// see a calendar sees its entries in full (title, client and resource
// names), as GET /bookings shows them those bookings. A calendar the
// viewer may not see is domain.ErrNotFound, like one that does not exist.
//
// Errors: *domain.ValidationError (an unknown kind, to not after from, a
// window over MaxCalendarRange); ErrTimeout; domain.ErrNotFound;
// domain.ErrForbidden for an unknown role; the read model's.
func (h CalendarHandler) Handle(ctx context.Context, q GetCalendar) (CalendarView, error) {
	from, to, err := h.window(q.Kind, q.From, q.To)
	if err != nil {
		return CalendarView{}, err
	}
	if err := waitFor(ctx, h.wait, q.MinPosition); err != nil {
		return CalendarView{}, err
	}
	owner, err := h.visibleOwner(ctx, q.Viewer, q.Kind, q.ID)
	if err != nil {
		return CalendarView{}, err
	}
	return h.view(ctx, owner, from, to)
}

// window resolves the defaults of [from, to) and validates it.
func (h CalendarHandler) window(kind CalendarKind, from, to time.Time) (time.Time, time.Time, error) {
	var v domain.ValidationError
	if !kind.Valid() {
		v.Addf("kind", domain.FieldInvalid, "unknown calendar kind %q", kind)
	}
	if from.IsZero() {
		from = h.now().Add(-DefaultCalendarBack).Truncate(time.Minute)
	}
	if to.IsZero() {
		to = from.Add(DefaultCalendarBack + DefaultCalendarAhead)
	}
	switch {
	case !from.Before(to):
		v.Add("to", domain.FieldInvalid, "must be after from")
	case to.Sub(from) > MaxCalendarRange:
		v.Addf("to", domain.FieldOutOfRange, "the range may span at most %d days", int(MaxCalendarRange/(24*time.Hour)))
	}
	return from, to, v.Err()
}

// visibleOwner returns the calendar's owner when v may see it.
func (h CalendarHandler) visibleOwner(ctx context.Context, v Viewer, kind CalendarKind, id uuid.UUID) (CalendarOwner, error) {
	if !v.isStaff() && v.Role != domain.RoleClient && v.Role != domain.RoleProfessional {
		return CalendarOwner{}, fmt.Errorf("role %q: %w", v.Role, domain.ErrForbidden)
	}
	owner, err := h.readModel.CalendarOwner(ctx, v.TenantID, kind, id)
	if err != nil {
		return CalendarOwner{}, err
	}
	if v.isStaff() {
		return owner, nil
	}
	hidden := fmt.Errorf("%s calendar %s: %w", kind, id, domain.ErrNotFound)
	self, err := uuid.Parse(v.UserID)
	if err != nil {
		return CalendarOwner{}, hidden
	}
	switch {
	case kind == CalendarUser && id == self:
		return owner, nil
	case kind == CalendarResource && v.Role == domain.RoleProfessional:
		me, err := h.readModel.CalendarOwner(ctx, v.TenantID, CalendarUser, self)
		if err == nil && me.LinkedResource == id {
			return owner, nil
		}
	}
	return CalendarOwner{}, hidden
}

// view reads the owner's entries in [from, to) and presents them.
func (h CalendarHandler) view(ctx context.Context, owner CalendarOwner, from, to time.Time) (CalendarView, error) {
	f := CalendarFilter{TenantID: owner.TenantID, From: from, To: to}
	if owner.Kind == CalendarResource {
		f.ResourceID = owner.ID
	} else {
		f.ClientID, f.ResourceID = owner.ID, owner.LinkedResource
	}
	entries, err := h.readModel.CalendarEntries(ctx, f)
	if err != nil {
		return CalendarView{}, err
	}
	out := CalendarView{Kind: owner.Kind, ID: owner.ID, Name: owner.Name, From: from, To: to,
		Entries: make([]CalendarEntry, 0, len(entries))}
	var seriesIDs []uuid.UUID
	seen := map[uuid.UUID]bool{}
	for _, e := range entries {
		out.Entries = append(out.Entries, h.present(e))
		if e.SeriesID != nil && !seen[*e.SeriesID] {
			seen[*e.SeriesID] = true
			seriesIDs = append(seriesIDs, *e.SeriesID)
		}
	}
	if len(seriesIDs) == 0 {
		return out, nil
	}
	series, err := h.readModel.CalendarSeries(ctx, owner.TenantID, seriesIDs)
	if err != nil {
		return CalendarView{}, err
	}
	for _, s := range series {
		s.UID = "series-" + s.ID.String() + "@" + h.uidDomain
		for i, m := range s.Members {
			s.Members[i] = h.present(m)
		}
		out.Series = append(out.Series, s)
	}
	return out, nil
}

// present gives an entry its UID and its times in its zone.
func (h CalendarHandler) present(e CalendarEntry) CalendarEntry {
	loc := zone(e.Timezone)
	e.UID = e.BookingID.String() + "@" + h.uidDomain
	e.Start, e.End = e.Start.In(loc), e.End.In(loc)
	if e.OccurrenceStart != nil {
		o := e.OccurrenceStart.In(loc)
		e.OccurrenceStart = &o
	}
	return e
}
