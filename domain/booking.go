package domain

import (
	"strings"
	"time"

	"github.com/google/uuid"
)

// BookingRequest asks for a booking. ResourceID may be left as uuid.Nil to
// take the policy's resource; ClientID may be left as uuid.Nil when the
// actor is the client booking for themselves. Seats 0 means 1.
type BookingRequest struct {
	ResourceID uuid.UUID      `json:"resource_id"`
	ClientID   uuid.UUID      `json:"client_id"`
	Start      time.Time      `json:"start"`
	End        time.Time      `json:"end"`
	Seats      int            `json:"seats"`
	Title      string         `json:"title"`
	Notes      string         `json:"notes"`
	Attributes map[string]any `json:"attributes"`
	// SeriesID and OccurrenceStart make the booking an occurrence of a
	// recurring series; HoldID names the hold it consumes; WaitlistEntryID
	// the waitlist entry it promotes. The command that creates the booking
	// sets them, never a client's JSON.
	SeriesID        uuid.UUID `json:"-"`
	OccurrenceStart time.Time `json:"-"`
	HoldID          uuid.UUID `json:"-"`
	WaitlistEntryID uuid.UUID `json:"-"`
}

// SeriesMove describes the series side of a reschedule: the scope of the
// edit, and, when they change, the series the booking belongs to after the
// move (a split) and its new occurrence start.
type SeriesMove struct {
	Scope           Scope
	SeriesID        uuid.UUID
	OccurrenceStart time.Time
}

// Booking is one reservation of seats on a resource by a client, with its
// lifecycle:
//
//	pending   → confirmed | rejected | cancelled
//	confirmed → cancelled | checked_in | no_show
//	checked_in → completed
//
// Pending, confirmed and checked_in hold their slot (IsActive). A pending or
// confirmed booking may be rescheduled. Every other change returns a
// *TransitionError.
//
// Clients act only on their own bookings, may cancel and reschedule but not
// confirm, reject, check in, complete or mark no-show (ErrForbidden), and are
// bound by the cancellation deadline, which admins and managers may
// override (the cancellation is then recorded as late).
type Booking struct {
	root
	id            uuid.UUID
	tenantID      uuid.UUID
	resourceID    uuid.UUID
	clientID      uuid.UUID
	start, end    time.Time
	seats         int
	title, notes  string
	attributes    map[string]any
	status        Status
	policyVersion int
	bufferBefore  int
	bufferAfter   int
	timezone      string
	statusReason  string
	cancelledLate bool
	createdAt     time.Time
	updatedAt     time.Time
	createdBy     string
	updatedBy     string

	seriesID        uuid.UUID
	occurrenceStart time.Time
	holdID          uuid.UUID
	waitlistEntryID uuid.UUID
}

// NewBooking validates req (ids, seats, title and notes lengths, booking
// attributes against the tenant's custom fields), runs p.Check, then checks
// occ (the merged schedule buckets the occupied interval touches), and
// records booking.created: pending when the tenant requires approval, else
// confirmed.
//
// Errors: *ValidationError (every input problem at once); ErrForbidden when
// a client books for someone else; any rule error of Policy.Check;
// *ConflictError when the seats do not fit. A nil occ is treated as empty.
// The caller then reserves the occupied interval (Policy.Occupied) in every
// bucket of ScheduleStreams and counts the booking in its ClientDay.
func NewBooking(id uuid.UUID, req BookingRequest, p Policy, occ *Occupancy, actor Actor, now time.Time) (*Booking, error) {
	if req.Seats == 0 {
		req.Seats = 1
	}
	if req.ResourceID == uuid.Nil {
		req.ResourceID = p.ResourceID()
	}
	if req.ClientID == uuid.Nil && actor.Role == RoleClient {
		if cid, err := uuid.Parse(actor.ID); err == nil {
			req.ClientID = cid
		}
	}
	if actor.Role == RoleClient && actor.ID != req.ClientID.String() {
		return nil, ruleErr(CodeForbidden, "a client may book only for themselves")
	}
	var v ValidationError
	if id == uuid.Nil {
		v.Add("id", FieldRequired, "is required")
	}
	if req.ResourceID == uuid.Nil {
		v.Add("resource_id", FieldRequired, "is required")
	} else if req.ResourceID != p.ResourceID() {
		v.Add("resource_id", FieldInvalid, "does not match the resource of the policy")
	}
	if req.ClientID == uuid.Nil {
		v.Add("client_id", FieldRequired, "is required")
	}
	req.Title = strings.TrimSpace(req.Title)
	if len(req.Title) > maxNameLen {
		v.Addf("title", FieldTooLong, "must be at most %d bytes", maxNameLen)
	}
	if len(req.Notes) > maxTextLen {
		v.Addf("notes", FieldTooLong, "must be at most %d bytes", maxTextLen)
	}
	validateAttributes(&v, "attributes", EntityBooking, req.Attributes, p.settings.CustomFields)
	// Input problems are reported before rule refusals, all at once.
	checkErr := p.Check(SlotRequest{Start: req.Start, End: req.End, Seats: req.Seats, Now: now})
	if v.Merge("", checkErr) {
		checkErr = nil
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	if checkErr != nil {
		return nil, checkErr
	}
	occStart, occEnd := p.Occupied(req.Start, req.End)
	if err := occ.Check(p.Capacity(), occStart, occEnd, req.Seats, id); err != nil {
		return nil, err
	}
	status := StatusConfirmed
	if p.settings.RequiresApproval {
		status = StatusPending
	}
	b := &Booking{}
	e := BookingCreated{
		BookingID: id, TenantID: p.TenantID(), ResourceID: req.ResourceID, ClientID: req.ClientID,
		Start: req.Start.UTC(), End: req.End.UTC(), Seats: req.Seats, Title: req.Title, Notes: req.Notes,
		Attributes: cloneAttributes(req.Attributes), Status: status, PolicyVersion: p.PolicyVersion(),
		BufferBeforeMinutes: p.settings.BufferBeforeMinutes, BufferAfterMinutes: p.settings.BufferAfterMinutes,
		Timezone: p.Location().String(), CreatedBy: actor.ID, CreatedAt: now.UTC(),
		SeriesID: optID(req.SeriesID), HoldID: optID(req.HoldID), WaitlistEntryID: optID(req.WaitlistEntryID),
	}
	if req.SeriesID != uuid.Nil {
		recurrenceID := req.OccurrenceStart.UTC()
		if req.OccurrenceStart.IsZero() {
			recurrenceID = req.Start.UTC()
		}
		e.OccurrenceStart = &recurrenceID
	}
	err := b.record(b.apply, e)
	return b, err
}

// Replay rebuilds the booking from its stream.
func (b *Booking) Replay(events ...Event) error { return b.replay("booking", b.apply, events) }

// Confirm approves a pending booking. Staff only (ErrForbidden for clients);
// *TransitionError from any other status.
func (b *Booking) Confirm(actor Actor, reason string, now time.Time) error {
	return b.changeStatus(actor, reason, now, StatusConfirmed, StatusPending)
}

// Reject refuses a pending booking, freeing its slot. Staff only;
// *TransitionError from any other status.
func (b *Booking) Reject(actor Actor, reason string, now time.Time) error {
	return b.changeStatus(actor, reason, now, StatusRejected, StatusPending)
}

// CheckIn marks a confirmed booking's client as arrived. Staff only;
// *TransitionError from any other status. Early check-in is allowed.
func (b *Booking) CheckIn(actor Actor, reason string, now time.Time) error {
	return b.changeStatus(actor, reason, now, StatusCheckedIn, StatusConfirmed)
}

// Complete closes a checked-in booking. Staff only; *TransitionError from
// any other status.
func (b *Booking) Complete(actor Actor, reason string, now time.Time) error {
	return b.changeStatus(actor, reason, now, StatusCompleted, StatusCheckedIn)
}

// NoShow marks a confirmed booking whose client did not come. Staff only.
// It returns a *TransitionError from any other status, and also before the
// booking's start, since nobody can have failed to show up yet.
func (b *Booking) NoShow(actor Actor, reason string, now time.Time) error {
	notYet := func() error {
		if now.Before(b.start) {
			return &TransitionError{From: b.status, To: StatusNoShow, Reason: "the booking has not started yet"}
		}
		return nil
	}
	return b.changeStatus(actor, reason, now, StatusNoShow, StatusConfirmed, notYet)
}

// changeStatus moves the booking from status from to status to, after the
// role check, the transition check and any extra guards, in that order.
func (b *Booking) changeStatus(actor Actor, reason string, now time.Time, to Status, from Status, guards ...func() error) error {
	if actor.Role == RoleClient {
		return ruleErr(CodeForbidden, "a client may not mark a booking %s", to)
	}
	if b.status != from {
		return &TransitionError{From: b.status, To: to}
	}
	for _, g := range guards {
		if err := g(); err != nil {
			return err
		}
	}
	return b.record(b.apply, BookingStatusChanged{
		BookingID: b.id, From: b.status, To: to, Reason: strings.TrimSpace(reason),
		Actor: actor.ID, ActorRole: actor.Role, At: now.UTC(),
	})
}

// Cancel cancels a pending or confirmed booking, freeing its slot, and
// returns a *TransitionError from any other status. A client may cancel only
// their own booking (ErrForbidden) and only until the policy's
// cancellation_deadline_minutes before the start (ErrCancellationDeadline
// Passed); admins and managers may cancel later, and the event then records
// late = true with the actor and reason. Professionals are bound like
// clients. A deadline of 0 means cancellation is always on time.
func (b *Booking) Cancel(actor Actor, reason string, p Policy, now time.Time) error {
	return b.CancelScoped(actor, reason, "", p, now)
}

// CancelScoped is Cancel as part of a series edit: the event records the
// scope. It returns a *ValidationError for an unknown scope.
func (b *Booking) CancelScoped(actor Actor, reason string, scope Scope, p Policy, now time.Time) error {
	if !scope.Valid() {
		var v ValidationError
		v.Addf("scope", FieldInvalid, "must be occurrence, following or all, got %q", scope)
		return v.Err()
	}
	if err := b.checkOwner(actor); err != nil {
		return err
	}
	if b.status != StatusPending && b.status != StatusConfirmed {
		return &TransitionError{From: b.status, To: StatusCancelled}
	}
	late := b.pastDeadline(p, now)
	if late && !actor.CanOverride() {
		return ruleErr(CodeCancellationDeadlinePassed, "cancellation closed %d minutes before the start",
			p.settings.CancellationDeadlineMinutes)
	}
	return b.record(b.apply, BookingCancelled{
		BookingID: b.id, From: b.status, Reason: strings.TrimSpace(reason),
		Actor: actor.ID, ActorRole: actor.Role, Late: late, At: now.UTC(), Scope: scope,
	})
}

// Reschedule moves a pending or confirmed booking to [start, end), keeping
// its status and seats, and records the reason given. The new time must pass p.Check and fit in occ
// ignoring the booking itself (so moving within its own time is fine). A
// client may reschedule only their own booking and only under the same
// deadline rule as cancelling, measured from the current start
// (ErrCancellationDeadlinePassed); admins and managers are not bound by it.
// Moving to the same times records nothing and returns nil. The caller then
// releases the old occupied interval (OccupiedInterval before the call) and
// reserves the new one.
func (b *Booking) Reschedule(start, end time.Time, reason string, p Policy, occ *Occupancy, actor Actor, now time.Time) error {
	return b.RescheduleIn(start, end, reason, SeriesMove{}, p, occ, actor, now)
}

// RescheduleIn is Reschedule as part of a series edit: the event records
// move's scope and, when set, the booking's new series and occurrence
// start. A move that changes only the series side is recorded even when
// the times stay. It returns a *ValidationError for an unknown scope.
func (b *Booking) RescheduleIn(start, end time.Time, reason string, move SeriesMove, p Policy, occ *Occupancy, actor Actor, now time.Time) error {
	if !move.Scope.Valid() {
		var v ValidationError
		v.Addf("scope", FieldInvalid, "must be occurrence, following or all, got %q", move.Scope)
		return v.Err()
	}
	if err := b.checkOwner(actor); err != nil {
		return err
	}
	if b.status != StatusPending && b.status != StatusConfirmed {
		return &TransitionError{From: b.status, To: b.status, Reason: "only pending or confirmed bookings can be rescheduled"}
	}
	seriesChanges := (move.SeriesID != uuid.Nil && move.SeriesID != b.seriesID) ||
		(!move.OccurrenceStart.IsZero() && !move.OccurrenceStart.Equal(b.occurrenceStart))
	if start.Equal(b.start) && end.Equal(b.end) && !seriesChanges {
		return nil
	}
	if b.pastDeadline(p, now) && !actor.CanOverride() {
		return ruleErr(CodeCancellationDeadlinePassed, "changes closed %d minutes before the start",
			p.settings.CancellationDeadlineMinutes)
	}
	if p.ResourceID() != b.resourceID {
		var v ValidationError
		v.Add("resource_id", FieldInvalid, "does not match the resource of the policy")
		return v.Err()
	}
	if err := p.Check(SlotRequest{Start: start, End: end, Seats: b.seats, Now: now}); err != nil {
		return err
	}
	occStart, occEnd := p.Occupied(start, end)
	if err := occ.Check(p.Capacity(), occStart, occEnd, b.seats, b.id); err != nil {
		return err
	}
	return b.record(b.apply, BookingRescheduled{
		BookingID: b.id, Start: start.UTC(), End: end.UTC(), PreviousStart: b.start, PreviousEnd: b.end,
		PolicyVersion: p.PolicyVersion(), BufferBeforeMinutes: p.settings.BufferBeforeMinutes,
		BufferAfterMinutes: p.settings.BufferAfterMinutes, Timezone: p.Location().String(),
		Reason: strings.TrimSpace(reason), Actor: actor.ID, ActorRole: actor.Role, At: now.UTC(),
		Scope: move.Scope, SeriesID: optID(move.SeriesID), OccurrenceStart: optTime(move.OccurrenceStart),
	})
}

func optID(id uuid.UUID) *uuid.UUID {
	if id == uuid.Nil {
		return nil
	}
	return &id
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// checkOwner refuses a client acting on someone else's booking.
func (b *Booking) checkOwner(actor Actor) error {
	if actor.Role == RoleClient && actor.ID != b.clientID.String() {
		return ruleErr(CodeForbidden, "a client may act only on their own bookings")
	}
	return nil
}

// pastDeadline reports whether now is after the cancellation deadline.
func (b *Booking) pastDeadline(p Policy, now time.Time) bool {
	d := p.settings.CancellationDeadlineMinutes
	return d > 0 && now.After(b.start.Add(-minutes(d)))
}

func (b *Booking) apply(e Event) error {
	switch e := e.(type) {
	case BookingCreated:
		if b.version > 0 {
			return alreadyCreated("booking", e)
		}
		b.id, b.tenantID, b.resourceID, b.clientID = e.BookingID, e.TenantID, e.ResourceID, e.ClientID
		b.start, b.end, b.seats = e.Start.UTC(), e.End.UTC(), e.Seats
		b.title, b.notes, b.attributes = e.Title, e.Notes, cloneAttributes(e.Attributes)
		b.status, b.policyVersion = e.Status, e.PolicyVersion
		b.bufferBefore, b.bufferAfter, b.timezone = e.BufferBeforeMinutes, e.BufferAfterMinutes, e.Timezone
		b.createdAt, b.updatedAt, b.createdBy, b.updatedBy = e.CreatedAt, e.CreatedAt, e.CreatedBy, e.CreatedBy
		if e.SeriesID != nil {
			b.seriesID = *e.SeriesID
		}
		if e.OccurrenceStart != nil {
			b.occurrenceStart = e.OccurrenceStart.UTC()
		}
		if e.HoldID != nil {
			b.holdID = *e.HoldID
		}
		if e.WaitlistEntryID != nil {
			b.waitlistEntryID = *e.WaitlistEntryID
		}
	case BookingRescheduled:
		if b.version == 0 {
			return notCreated("booking", e)
		}
		b.start, b.end, b.policyVersion = e.Start.UTC(), e.End.UTC(), e.PolicyVersion
		b.bufferBefore, b.bufferAfter, b.timezone = e.BufferBeforeMinutes, e.BufferAfterMinutes, e.Timezone
		b.updatedAt, b.updatedBy = e.At, e.Actor
		if e.SeriesID != nil {
			b.seriesID = *e.SeriesID
		}
		if e.OccurrenceStart != nil {
			b.occurrenceStart = e.OccurrenceStart.UTC()
		}
	case BookingStatusChanged:
		if b.version == 0 {
			return notCreated("booking", e)
		}
		b.status, b.statusReason = e.To, e.Reason
		b.updatedAt, b.updatedBy = e.At, e.Actor
	case BookingCancelled:
		if b.version == 0 {
			return notCreated("booking", e)
		}
		b.status, b.statusReason, b.cancelledLate = StatusCancelled, e.Reason, e.Late
		b.updatedAt, b.updatedBy = e.At, e.Actor
	default:
		return foreignEvent("booking", e)
	}
	return nil
}

// ID returns the booking id.
func (b *Booking) ID() uuid.UUID { return b.id }

// TenantID returns the owning tenant.
func (b *Booking) TenantID() uuid.UUID { return b.tenantID }

// ResourceID returns the booked resource.
func (b *Booking) ResourceID() uuid.UUID { return b.resourceID }

// ClientID returns the client the booking is for.
func (b *Booking) ClientID() uuid.UUID { return b.clientID }

// Start returns the booked start (UTC).
func (b *Booking) Start() time.Time { return b.start }

// End returns the booked end (UTC).
func (b *Booking) End() time.Time { return b.end }

// Seats returns the seats booked.
func (b *Booking) Seats() int { return b.seats }

// Status returns the lifecycle status.
func (b *Booking) Status() Status { return b.status }

// PolicyVersion returns the tenant policy version that accepted the current
// times.
func (b *Booking) PolicyVersion() int { return b.policyVersion }

// SeriesID returns the recurring series the booking is an occurrence of,
// uuid.Nil for a single booking.
func (b *Booking) SeriesID() uuid.UUID { return b.seriesID }

// OccurrenceStart returns the start the series' rule gives the occurrence
// (zero for a single booking).
func (b *Booking) OccurrenceStart() time.Time { return b.occurrenceStart }

// HoldID returns the hold the booking consumed, uuid.Nil for none.
func (b *Booking) HoldID() uuid.UUID { return b.holdID }

// IsActive reports whether the booking holds its slot (pending, confirmed
// or checked_in).
func (b *Booking) IsActive() bool { return b.status.Active() }

// OccupiedInterval returns the time the booking takes on its resource, with
// the buffers recorded when it was accepted: the interval to release from
// the schedule buckets (ScheduleStreams) when it is cancelled, rejected or
// moved.
func (b *Booking) OccupiedInterval() (time.Time, time.Time) {
	return b.start.Add(-minutes(b.bufferBefore)), b.end.Add(minutes(b.bufferAfter))
}

// Location returns the zone the booking was accepted in.
func (b *Booking) Location() *time.Location { return mustLocation(b.timezone) }

// LocalDate returns the booking's local start date (YYYY-MM-DD) in its zone,
// the key of its ClientDay.
func (b *Booking) LocalDate() string { return LocalDate(b.start, b.Location()) }

// BookingView is the JSON shape of a booking in API responses. Start and End
// are shown in the booking's zone (RFC 3339 with offset).
type BookingView struct {
	ID                  uuid.UUID      `json:"id"`
	TenantID            uuid.UUID      `json:"tenant_id"`
	ResourceID          uuid.UUID      `json:"resource_id"`
	ClientID            uuid.UUID      `json:"client_id"`
	Start               time.Time      `json:"start"`
	End                 time.Time      `json:"end"`
	Timezone            string         `json:"timezone"`
	Seats               int            `json:"seats"`
	Title               string         `json:"title"`
	Notes               string         `json:"notes"`
	Attributes          map[string]any `json:"attributes"`
	Status              Status         `json:"status"`
	StatusReason        string         `json:"status_reason,omitempty"`
	CancelledLate       bool           `json:"cancelled_late,omitempty"`
	PolicyVersion       int            `json:"policy_version"`
	BufferBeforeMinutes int            `json:"buffer_before_minutes"`
	BufferAfterMinutes  int            `json:"buffer_after_minutes"`
	Version             int64          `json:"version"`
	CreatedAt           time.Time      `json:"created_at"`
	UpdatedAt           time.Time      `json:"updated_at"`
	CreatedBy           string         `json:"created_by"`
	UpdatedBy           string         `json:"updated_by"`
	SeriesID            *uuid.UUID     `json:"series_id,omitempty"`
	OccurrenceStart     *time.Time     `json:"occurrence_start,omitempty"`
	HoldID              *uuid.UUID     `json:"hold_id,omitempty"`
	WaitlistEntryID     *uuid.UUID     `json:"waitlist_entry_id,omitempty"`
}

// View returns the booking as the API shows it.
func (b *Booking) View() BookingView {
	attrs := cloneAttributes(b.attributes)
	if attrs == nil {
		attrs = map[string]any{}
	}
	loc := b.Location()
	v := BookingView{
		ID: b.id, TenantID: b.tenantID, ResourceID: b.resourceID, ClientID: b.clientID,
		Start: b.start.In(loc), End: b.end.In(loc), Timezone: b.timezone, Seats: b.seats,
		Title: b.title, Notes: b.notes, Attributes: attrs, Status: b.status, StatusReason: b.statusReason,
		CancelledLate: b.cancelledLate, PolicyVersion: b.policyVersion,
		BufferBeforeMinutes: b.bufferBefore, BufferAfterMinutes: b.bufferAfter, Version: b.version,
		CreatedAt: b.createdAt, UpdatedAt: b.updatedAt, CreatedBy: b.createdBy, UpdatedBy: b.updatedBy,
		SeriesID: optID(b.seriesID), HoldID: optID(b.holdID), WaitlistEntryID: optID(b.waitlistEntryID),
	}
	if !b.occurrenceStart.IsZero() {
		local := b.occurrenceStart.In(loc)
		v.OccurrenceStart = &local
	}
	return v
}
