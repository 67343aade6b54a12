package domain

import (
	"time"

	"github.com/google/uuid"
)

// DefaultHoldMinutes is a hold's time to live when the request names none.
const DefaultHoldMinutes = 15

// HoldStatus is a hold's state. The string values are shown by the API.
type HoldStatus string

// Hold statuses. Only an active hold takes time on its resource.
const (
	HoldStatusActive   HoldStatus = "active"
	HoldStatusReleased HoldStatus = "released"
	HoldStatusExpired  HoldStatus = "expired"
	HoldStatusConsumed HoldStatus = "consumed"
)

// HoldRequest asks to take a slot for a while. ClientID uuid.Nil with a
// client actor means the actor; staff may leave it empty. Seats 0 means 1;
// TTLMinutes 0 means DefaultHoldMinutes.
type HoldRequest struct {
	ResourceID      uuid.UUID
	ClientID        uuid.UUID
	Start           time.Time
	End             time.Time
	Seats           int
	TTLMinutes      int
	WaitlistEntryID uuid.UUID
}

// Hold takes a slot of a resource for a short time, so that a client can
// finish booking it: it occupies the schedule buckets exactly like a
// booking and passes the same policy checks. It ends in one of three ways,
// each recorded once:
//
//	active → released (DELETE, or the caller gives it up)
//	active → consumed (a booking with hold_id takes its time in the same append)
//	active → expired  (the expiry scheduler, after expires_at)
//
// A client's hold is its own: only that client (or staff) may release or
// consume it.
type Hold struct {
	root
	id, tenantID, resourceID, clientID uuid.UUID
	start, end, expiresAt              time.Time
	seats                              int
	policyVersion                      int
	bufferBefore, bufferAfter          int
	timezone                           string
	status                             HoldStatus
	bookingID                          uuid.UUID
	waitlistEntryID                    uuid.UUID
	createdAt, updatedAt               time.Time
	createdBy, updatedBy               string
}

// PlaceHold validates req, runs p.Check, checks occ (the merged buckets of
// the occupied interval) and records hold.placed expiring TTLMinutes after
// now. Errors: *ValidationError, ErrForbidden (a client holding for someone
// else), every rule error of Policy.Check, *ConflictError.
func PlaceHold(id uuid.UUID, req HoldRequest, p Policy, occ *Occupancy, actor Actor, now time.Time) (*Hold, error) {
	if req.Seats == 0 {
		req.Seats = 1
	}
	if req.TTLMinutes == 0 {
		req.TTLMinutes = DefaultHoldMinutes
	}
	if actor.Role == RoleClient {
		self, err := uuid.Parse(actor.ID)
		if err != nil || (req.ClientID != uuid.Nil && req.ClientID != self) {
			return nil, ruleErr(CodeForbidden, "a client may hold only for themselves")
		}
		req.ClientID = self
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
	if req.TTLMinutes < 1 || req.TTLMinutes > MaxHoldMinutes {
		v.Addf("ttl_minutes", FieldOutOfRange, "must be between 1 and %d", MaxHoldMinutes)
	}
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
	h := &Hold{}
	err := h.record(h.apply, HoldPlaced{
		HoldID: id, TenantID: p.TenantID(), ResourceID: req.ResourceID, ClientID: req.ClientID,
		Start: req.Start.UTC(), End: req.End.UTC(), Seats: req.Seats,
		ExpiresAt: now.UTC().Add(minutes(req.TTLMinutes)), PolicyVersion: p.PolicyVersion(),
		BufferBeforeMinutes: p.settings.BufferBeforeMinutes, BufferAfterMinutes: p.settings.BufferAfterMinutes,
		Timezone: p.Location().String(), WaitlistEntryID: optID(req.WaitlistEntryID),
		PlacedBy: actor.ID, PlacedAt: now.UTC(),
	})
	return h, err
}

var _ Aggregate = (*Hold)(nil)

// Replay rebuilds the hold from its stream.
func (h *Hold) Replay(events ...Event) error { return h.replay("hold", h.apply, events) }

// Release gives the hold up, freeing its time. Releasing a hold that is
// already released or expired records nothing and returns nil (DELETE is
// idempotent); a consumed hold returns an ErrInvalidTransition error, since
// its time now belongs to a booking. A client may release only its own
// hold (ErrForbidden).
func (h *Hold) Release(actor Actor, now time.Time) error {
	if err := h.checkOwner(actor); err != nil {
		return err
	}
	switch h.status {
	case HoldStatusReleased, HoldStatusExpired:
		return nil
	case HoldStatusConsumed:
		return ruleErr(CodeInvalidTransition, "the hold was consumed by booking %s", h.bookingID)
	}
	return h.record(h.apply, HoldReleased{HoldID: h.id, Reason: HoldReleasedByCaller, Actor: actor.ID, ActorRole: actor.Role, At: now.UTC()})
}

// Consume lets booking bookingID take the hold's time. The booking must be
// on the hold's resource, lie inside the hold's interval and take no more
// seats; when the hold names a client, the booking must be for that client.
// Errors: ErrInvalidTransition when the hold is not active or its
// expires_at has passed (even if the expiry was not recorded yet);
// *ValidationError (field hold_id) when the booking does not fit the hold;
// ErrForbidden when a client consumes a hold that is not its own.
func (h *Hold) Consume(bookingID uuid.UUID, req BookingRequest, actor Actor, now time.Time) error {
	if err := h.checkOwner(actor); err != nil {
		return err
	}
	if h.status != HoldStatusActive {
		return ruleErr(CodeInvalidTransition, "the hold is %s and cannot be consumed", h.status)
	}
	if !now.Before(h.expiresAt) {
		return ruleErr(CodeInvalidTransition, "the hold expired at %s", h.expiresAt.Format(time.RFC3339))
	}
	var v ValidationError
	if req.ResourceID != h.resourceID {
		v.Add("hold_id", FieldInvalid, "the hold is on another resource")
	}
	if req.Start.Before(h.start) || req.End.After(h.end) {
		v.Addf("hold_id", FieldInvalid, "the booking must lie inside the hold's %s – %s",
			h.start.Format(time.RFC3339), h.end.Format(time.RFC3339))
	}
	seats := req.Seats
	if seats == 0 {
		seats = 1
	}
	if seats > h.seats {
		v.Addf("hold_id", FieldInvalid, "the hold keeps %d seat(s), the booking asks for %d", h.seats, seats)
	}
	if h.clientID != uuid.Nil && req.ClientID != uuid.Nil && req.ClientID != h.clientID {
		v.Add("hold_id", FieldInvalid, "the hold belongs to another client")
	}
	if err := v.Err(); err != nil {
		return err
	}
	return h.record(h.apply, HoldReleased{HoldID: h.id, Reason: HoldConsumed, BookingID: &bookingID,
		Actor: actor.ID, ActorRole: actor.Role, At: now.UTC()})
}

// Expire records hold.expired for an active hold whose expires_at is not
// after now. On a hold that is no longer active it records nothing and
// returns nil, so a second scheduler that lost the race has nothing to
// do; before expires_at it returns an ErrInvalidTransition error.
func (h *Hold) Expire(now time.Time) error {
	if h.status != HoldStatusActive {
		return nil
	}
	if now.Before(h.expiresAt) {
		return ruleErr(CodeInvalidTransition, "the hold expires at %s", h.expiresAt.Format(time.RFC3339))
	}
	return h.record(h.apply, HoldExpired{HoldID: h.id, ExpiresAt: h.expiresAt, At: now.UTC()})
}

// checkOwner refuses a client acting on a hold that is not its own.
func (h *Hold) checkOwner(actor Actor) error {
	if actor.Role == RoleClient && actor.ID != h.clientID.String() {
		return ruleErr(CodeForbidden, "a client may act only on its own holds")
	}
	return nil
}

func (h *Hold) apply(e Event) error {
	switch e := e.(type) {
	case HoldPlaced:
		if h.version > 0 {
			return alreadyCreated("hold", e)
		}
		h.id, h.tenantID, h.resourceID, h.clientID = e.HoldID, e.TenantID, e.ResourceID, e.ClientID
		h.start, h.end, h.seats, h.expiresAt = e.Start.UTC(), e.End.UTC(), e.Seats, e.ExpiresAt.UTC()
		h.policyVersion, h.bufferBefore, h.bufferAfter, h.timezone = e.PolicyVersion, e.BufferBeforeMinutes, e.BufferAfterMinutes, e.Timezone
		if e.WaitlistEntryID != nil {
			h.waitlistEntryID = *e.WaitlistEntryID
		}
		h.status = HoldStatusActive
		h.createdAt, h.updatedAt, h.createdBy, h.updatedBy = e.PlacedAt, e.PlacedAt, e.PlacedBy, e.PlacedBy
	case HoldReleased:
		if h.version == 0 {
			return notCreated("hold", e)
		}
		h.status = HoldStatusReleased
		if e.Reason == HoldConsumed {
			h.status = HoldStatusConsumed
			if e.BookingID != nil {
				h.bookingID = *e.BookingID
			}
		}
		h.updatedAt, h.updatedBy = e.At, e.Actor
	case HoldExpired:
		if h.version == 0 {
			return notCreated("hold", e)
		}
		h.status = HoldStatusExpired
		h.updatedAt, h.updatedBy = e.At, "system"
	default:
		return foreignEvent("hold", e)
	}
	return nil
}

// ID returns the hold id.
func (h *Hold) ID() uuid.UUID { return h.id }

// TenantID returns the owning tenant.
func (h *Hold) TenantID() uuid.UUID { return h.tenantID }

// ResourceID returns the held resource.
func (h *Hold) ResourceID() uuid.UUID { return h.resourceID }

// ClientID returns the client the hold is for (uuid.Nil for none).
func (h *Hold) ClientID() uuid.UUID { return h.clientID }

// Start returns the held start (UTC).
func (h *Hold) Start() time.Time { return h.start }

// End returns the held end (UTC).
func (h *Hold) End() time.Time { return h.end }

// Seats returns the seats held.
func (h *Hold) Seats() int { return h.seats }

// ExpiresAt returns when the hold lapses.
func (h *Hold) ExpiresAt() time.Time { return h.expiresAt }

// Status returns the hold's state.
func (h *Hold) Status() HoldStatus { return h.status }

// IsActive reports whether the hold still takes its time.
func (h *Hold) IsActive() bool { return h.status == HoldStatusActive }

// OccupiedInterval returns the time the hold takes on its resource, with
// the buffers recorded when it was placed: the interval to release from
// the schedule buckets when it ends.
func (h *Hold) OccupiedInterval() (time.Time, time.Time) {
	return h.start.Add(-minutes(h.bufferBefore)), h.end.Add(minutes(h.bufferAfter))
}

// HoldView is the JSON shape of a hold in API responses, times in the
// hold's zone.
type HoldView struct {
	ID              uuid.UUID  `json:"id"`
	TenantID        uuid.UUID  `json:"tenant_id"`
	ResourceID      uuid.UUID  `json:"resource_id"`
	ClientID        *uuid.UUID `json:"client_id,omitempty"`
	Start           time.Time  `json:"start"`
	End             time.Time  `json:"end"`
	Timezone        string     `json:"timezone"`
	Seats           int        `json:"seats"`
	Status          HoldStatus `json:"status"`
	ExpiresAt       time.Time  `json:"expires_at"`
	BookingID       *uuid.UUID `json:"booking_id,omitempty"`
	WaitlistEntryID *uuid.UUID `json:"waitlist_entry_id,omitempty"`
	Version         int64      `json:"version"`
	CreatedAt       time.Time  `json:"created_at"`
	UpdatedAt       time.Time  `json:"updated_at"`
	CreatedBy       string     `json:"created_by"`
	UpdatedBy       string     `json:"updated_by"`
}

// View returns the hold as the API shows it.
func (h *Hold) View() HoldView {
	loc := mustLocation(h.timezone)
	return HoldView{
		ID: h.id, TenantID: h.tenantID, ResourceID: h.resourceID, ClientID: optID(h.clientID),
		Start: h.start.In(loc), End: h.end.In(loc), Timezone: h.timezone, Seats: h.seats, Status: h.status,
		ExpiresAt: h.expiresAt.In(loc), BookingID: optID(h.bookingID), WaitlistEntryID: optID(h.waitlistEntryID),
		Version: h.version, CreatedAt: h.createdAt, UpdatedAt: h.updatedAt, CreatedBy: h.createdBy, UpdatedBy: h.updatedBy,
	}
}
