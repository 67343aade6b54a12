package domain

import (
	"time"

	"github.com/google/uuid"
)

// WaitlistStatus is an entry's state. The string values are shown by the
// API.
type WaitlistStatus string

// Waitlist entry statuses.
const (
	WaitlistStatusWaiting   WaitlistStatus = "waiting"
	WaitlistStatusPromoted  WaitlistStatus = "promoted"
	WaitlistStatusCancelled WaitlistStatus = "cancelled"
)

// WaitlistRequest asks for a place in line for [Start, End) on a resource.
// ClientID uuid.Nil with a client actor means the actor. Seats 0 means 1.
type WaitlistRequest struct {
	ResourceID uuid.UUID
	ClientID   uuid.UUID
	Start      time.Time
	End        time.Time
	Seats      int
}

// WaitlistEntry is one place in a resource's line, as the API shows it.
// Version counts the entry's own events (joined, then promoted or left),
// so it is the entry's ETag, unaffected by other entries of the line.
type WaitlistEntry struct {
	ID         uuid.UUID      `json:"id"`
	TenantID   uuid.UUID      `json:"tenant_id"`
	ResourceID uuid.UUID      `json:"resource_id"`
	ClientID   uuid.UUID      `json:"client_id"`
	Start      time.Time      `json:"start"`
	End        time.Time      `json:"end"`
	Timezone   string         `json:"timezone"`
	Seats      int            `json:"seats"`
	Status     WaitlistStatus `json:"status"`
	Position   int            `json:"position,omitempty"`
	BookingID  *uuid.UUID     `json:"booking_id,omitempty"`
	HoldID     *uuid.UUID     `json:"hold_id,omitempty"`
	Version    int64          `json:"version"`
	CreatedAt  time.Time      `json:"created_at"`
	UpdatedAt  time.Time      `json:"updated_at"`
	CreatedBy  string         `json:"created_by"`
	UpdatedBy  string         `json:"updated_by"`
}

// Waitlist is one resource's line of clients waiting for times to free
// (stream WaitlistStream). The stream order is the line: entries are
// served first come, first served. Every promotion appends to this stream
// with its expected version, so two commands freeing time at once cannot
// promote the same entry, nor two entries into one freed slot. The zero
// value is an empty line.
type Waitlist struct {
	root
	entries map[uuid.UUID]*WaitlistEntry
	order   []uuid.UUID
}

// NewWaitlist returns an empty line, equivalent to the zero value.
func NewWaitlist() *Waitlist { return &Waitlist{} }

var _ Aggregate = (*Waitlist)(nil)

// Replay rebuilds the line from its stream.
func (w *Waitlist) Replay(events ...Event) error { return w.replay("waitlist", w.apply, events) }

// Join records waitlist.joined for entry id at the end of the line. The
// time must pass p.Check at now (a line for a time that could never be
// booked would never move). Errors: *ValidationError (also for a client
// already waiting for the same time), ErrForbidden for a client joining
// for someone else, every rule error of Policy.Check.
func (w *Waitlist) Join(id uuid.UUID, req WaitlistRequest, p Policy, actor Actor, now time.Time) error {
	if req.Seats == 0 {
		req.Seats = 1
	}
	if actor.Role == RoleClient {
		self, err := uuid.Parse(actor.ID)
		if err != nil || (req.ClientID != uuid.Nil && req.ClientID != self) {
			return ruleErr(CodeForbidden, "a client may join the waitlist only for themselves")
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
	if req.ClientID == uuid.Nil {
		v.Add("client_id", FieldRequired, "is required")
	}
	for _, e := range w.Waiting() {
		if e.ClientID == req.ClientID && e.Start.Equal(req.Start) && e.End.Equal(req.End) {
			v.Addf("start", FieldDuplicate, "the client already waits for this time (entry %s)", e.ID)
			break
		}
	}
	checkErr := p.Check(SlotRequest{Start: req.Start, End: req.End, Seats: req.Seats, Now: now})
	if v.Merge("", checkErr) {
		checkErr = nil
	}
	if err := v.Err(); err != nil {
		return err
	}
	if checkErr != nil {
		return checkErr
	}
	return w.record(w.apply, WaitlistJoined{
		EntryID: id, TenantID: p.TenantID(), ResourceID: req.ResourceID, ClientID: req.ClientID,
		Start: req.Start.UTC(), End: req.End.UTC(), Seats: req.Seats, Timezone: p.Location().String(),
		JoinedBy: actor.ID, JoinedAt: now.UTC(),
	})
}

// Promote records waitlist.promoted: the waiting entry became booking or
// hold targetID (kind PromotedToBooking or PromotedToHold). An entry that
// is not waiting returns an ErrInvalidTransition error; an unknown one
// ErrNotFound.
func (w *Waitlist) Promote(entryID uuid.UUID, kind string, targetID uuid.UUID, now time.Time) error {
	e, ok := w.entries[entryID]
	if !ok {
		return ruleErr(CodeNotFound, "no waitlist entry %s", entryID)
	}
	if e.Status != WaitlistStatusWaiting {
		return ruleErr(CodeInvalidTransition, "the waitlist entry is %s", e.Status)
	}
	ev := WaitlistPromoted{EntryID: entryID, ClientID: e.ClientID, Kind: kind, At: now.UTC()}
	switch kind {
	case PromotedToBooking:
		ev.BookingID = &targetID
	case PromotedToHold:
		ev.HoldID = &targetID
	default:
		var v ValidationError
		v.Addf("kind", FieldInvalid, "must be %q or %q", PromotedToBooking, PromotedToHold)
		return v.Err()
	}
	return w.record(w.apply, ev)
}

// Leave takes a waiting entry out of line. Leaving again records nothing
// and returns nil; leaving a promoted entry returns an ErrInvalidTransition
// error (cancel the booking or release the hold instead). A client may
// take only its own entry out (ErrNotFound otherwise, as if it did not
// exist).
func (w *Waitlist) Leave(entryID uuid.UUID, actor Actor, now time.Time) error {
	e, ok := w.entries[entryID]
	if !ok || (actor.Role == RoleClient && actor.ID != e.ClientID.String()) {
		return ruleErr(CodeNotFound, "no waitlist entry %s", entryID)
	}
	switch e.Status {
	case WaitlistStatusCancelled:
		return nil
	case WaitlistStatusPromoted:
		return ruleErr(CodeInvalidTransition, "the waitlist entry was already promoted")
	}
	return w.record(w.apply, WaitlistLeft{EntryID: entryID, Actor: actor.ID, ActorRole: actor.Role, At: now.UTC()})
}

func (w *Waitlist) apply(e Event) error {
	switch e := e.(type) {
	case WaitlistJoined:
		if w.entries == nil {
			w.entries = map[uuid.UUID]*WaitlistEntry{}
		}
		if _, dup := w.entries[e.EntryID]; dup {
			return alreadyCreated("waitlist entry", e)
		}
		w.entries[e.EntryID] = &WaitlistEntry{
			ID: e.EntryID, TenantID: e.TenantID, ResourceID: e.ResourceID, ClientID: e.ClientID,
			Start: e.Start.UTC(), End: e.End.UTC(), Timezone: e.Timezone, Seats: e.Seats, Status: WaitlistStatusWaiting,
			Version: 1, CreatedAt: e.JoinedAt, UpdatedAt: e.JoinedAt, CreatedBy: e.JoinedBy, UpdatedBy: e.JoinedBy,
		}
		w.order = append(w.order, e.EntryID)
	case WaitlistPromoted:
		en, ok := w.entries[e.EntryID]
		if !ok {
			return notCreated("waitlist entry", e)
		}
		en.Status, en.BookingID, en.HoldID = WaitlistStatusPromoted, e.BookingID, e.HoldID
		en.Version++
		en.UpdatedAt, en.UpdatedBy = e.At, "system"
	case WaitlistLeft:
		en, ok := w.entries[e.EntryID]
		if !ok {
			return notCreated("waitlist entry", e)
		}
		en.Status = WaitlistStatusCancelled
		en.Version++
		en.UpdatedAt, en.UpdatedBy = e.At, e.Actor
	default:
		return foreignEvent("waitlist", e)
	}
	return nil
}

// Entry returns one entry with its place in line (1 = next; 0 when it no
// longer waits), and false when the line has no such entry.
func (w *Waitlist) Entry(id uuid.UUID) (WaitlistEntry, bool) {
	for _, e := range w.Entries() {
		if e.ID == id {
			return e, true
		}
	}
	return WaitlistEntry{}, false
}

// Entries returns every entry in the order they joined, with places in line
// for those waiting, times in each entry's zone.
func (w *Waitlist) Entries() []WaitlistEntry {
	out := make([]WaitlistEntry, 0, len(w.order))
	pos := 0
	for _, id := range w.order {
		e := *w.entries[id]
		if e.Status == WaitlistStatusWaiting {
			pos++
			e.Position = pos
		}
		loc := mustLocation(e.Timezone)
		e.Start, e.End = e.Start.In(loc), e.End.In(loc)
		out = append(out, e)
	}
	return out
}

// Waiting returns the entries still waiting, first in line first.
func (w *Waitlist) Waiting() []WaitlistEntry {
	var out []WaitlistEntry
	for _, e := range w.Entries() {
		if e.Status == WaitlistStatusWaiting {
			out = append(out, e)
		}
	}
	return out
}
