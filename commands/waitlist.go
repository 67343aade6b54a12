package commands

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/eventstore"
	"github.com/google/uuid"
)

// waitlistActor is who books or holds for a promoted waitlist entry: the
// engine itself, on behalf of the waiting client. The command that freed
// the time is in the events' metadata.
var waitlistActor = domain.Actor{ID: "system:waitlist", Role: domain.RolePlatformAdmin}

// JoinWaitlist puts a client in line for a time on a resource.
type JoinWaitlist struct {
	Request domain.WaitlistRequest
}

// JoinWaitlist runs the command: the entry joins the end of the resource's
// line (stream domain.WaitlistStream), with a guard stream that finds the
// line from the entry id. When the time is free already, the first entries
// in line that fit it (this one included) are promoted in the same append,
// as if the time had just freed.
//
// Errors: *domain.ValidationError, domain.ErrForbidden (a client for
// someone else, a professional on another resource), domain.ErrNotFound,
// every rule error of the policy.
func (h *Handlers) JoinWaitlist(ctx context.Context, meta Meta, cmd JoinWaitlist) (Result, error) {
	req, err := h.authorizeBooking(ctx, meta, domain.BookingRequest{ResourceID: cmd.Request.ResourceID, ClientID: cmd.Request.ClientID})
	if err != nil {
		return Result{}, err
	}
	wr := cmd.Request
	wr.ClientID = req.ClientID
	id := DeriveID(meta, "waitlist")
	guard := domain.WaitlistEntryGuardStream(id)
	res, err := h.retry(ctx, func(s string) bool { return s != guard }, func() (Result, error) {
		return h.joinOnce(ctx, meta, id, wr)
	})
	if errors.Is(err, eventstore.ErrDuplicateEvent) {
		if e, lerr := h.WaitlistEntry(ctx, meta, id); lerr == nil {
			return Result{ID: id, Version: e.Version, View: e}, nil
		}
	}
	return res, err
}

func (h *Handlers) joinOnce(ctx context.Context, meta Meta, id uuid.UUID, req domain.WaitlistRequest) (Result, error) {
	p, err := h.policy(ctx, meta.TenantID, req.ResourceID)
	if err != nil {
		return Result{}, resourceField(err)
	}
	if req.ClientID == uuid.Nil {
		var v domain.ValidationError
		v.Add("client_id", domain.FieldRequired, "is required")
		return Result{}, v.Err()
	}
	if _, err := h.loadUser(ctx, meta.TenantID, req.ClientID); err != nil {
		if !isNotFound(err) {
			return Result{}, err
		}
		var v domain.ValidationError
		v.Add("client_id", "not_found", "no such user")
		return Result{}, v.Err()
	}
	ws := newWorkset(h)
	q, err := ws.waitlist(ctx, req.ResourceID)
	if err != nil {
		return Result{}, err
	}
	now := h.Now()
	if err := q.Join(id, req, p, meta.Actor, now); err != nil {
		return Result{}, err
	}
	g := domain.NewGuard()
	if err := g.Claim(req.ResourceID, id.String(), nil); err != nil {
		return Result{}, err
	}
	ws.track(domain.WaitlistEntryGuardStream(id), g)
	occStart, occEnd := p.Occupied(req.Start, req.End)
	if err := h.promoteWaitlist(ctx, ws, p, []domain.Interval{{Start: occStart, End: occEnd}}, now); err != nil {
		return Result{}, err
	}
	bt := &batch{meta: meta}
	if err := ws.addTo(bt); err != nil {
		return Result{}, err
	}
	res, err := h.commit(ctx, bt)
	if err != nil {
		return Result{}, err
	}
	e, _ := q.Entry(id)
	return Result{ID: id, Version: e.Version, Position: res.LastPosition, View: e}, nil
}

// resourceField reports a missing resource as a validation error on
// resource_id, like CreateBooking does.
func resourceField(err error) error {
	if errors.Is(err, errResourceNotFound) {
		var v domain.ValidationError
		v.Add("resource_id", "not_found", "no such resource")
		return v.Err()
	}
	return err
}

// LeaveWaitlist takes an entry out of line.
type LeaveWaitlist struct {
	EntryID         uuid.UUID
	ExpectedVersion *int64
}

// LeaveWaitlist runs the command. Leaving twice is a no-op. Errors:
// domain.ErrNotFound (also for an entry the caller may not see),
// domain.ErrInvalidTransition for a promoted entry, *VersionMismatchError.
func (h *Handlers) LeaveWaitlist(ctx context.Context, meta Meta, cmd LeaveWaitlist) (Result, error) {
	return h.retry(ctx, func(string) bool { return cmd.ExpectedVersion == nil }, func() (Result, error) {
		q, e, err := h.waitlistOf(ctx, meta, cmd.EntryID)
		if err != nil {
			return Result{}, err
		}
		if err := checkVersion(cmd.ExpectedVersion, e.Version); err != nil {
			return Result{}, err
		}
		if err := q.Leave(cmd.EntryID, meta.Actor, h.Now()); err != nil {
			return Result{}, err
		}
		bt := &batch{meta: meta}
		if err := bt.add(domain.WaitlistStream(e.ResourceID), q); err != nil {
			return Result{}, err
		}
		res, err := h.commit(ctx, bt)
		if err != nil {
			return Result{}, err
		}
		e, _ = q.Entry(cmd.EntryID)
		return Result{ID: e.ID, Version: e.Version, Position: res.LastPosition, View: e}, nil
	})
}

// WaitlistEntry returns an entry the caller may see: staff every entry of
// the tenant, a professional those of its linked resource, a client its
// own. Any other is domain.ErrNotFound.
func (h *Handlers) WaitlistEntry(ctx context.Context, meta Meta, id uuid.UUID) (domain.WaitlistEntry, error) {
	_, e, err := h.waitlistOf(ctx, meta, id)
	return e, err
}

func (h *Handlers) waitlistOf(ctx context.Context, meta Meta, id uuid.UUID) (*domain.Waitlist, domain.WaitlistEntry, error) {
	notFound := fmt.Errorf("waitlist entry %s: %w", id, domain.ErrNotFound)
	g := domain.NewGuard()
	if err := h.loadMaybe(ctx, domain.WaitlistEntryGuardStream(id), g); err != nil {
		return nil, domain.WaitlistEntry{}, err
	}
	if g.Owner() == uuid.Nil {
		return nil, domain.WaitlistEntry{}, notFound
	}
	q := domain.NewWaitlist()
	if err := h.loadMaybe(ctx, domain.WaitlistStream(g.Owner()), q); err != nil {
		return nil, domain.WaitlistEntry{}, err
	}
	e, ok := q.Entry(id)
	if !ok || e.TenantID != meta.TenantID {
		return nil, domain.WaitlistEntry{}, notFound
	}
	if err := h.canSeeEntry(ctx, meta, e); err != nil {
		return nil, domain.WaitlistEntry{}, notFound
	}
	return q, e, nil
}

func (h *Handlers) canSeeEntry(ctx context.Context, meta Meta, e domain.WaitlistEntry) error {
	switch meta.Actor.Role {
	case domain.RoleAdmin, domain.RoleManager, domain.RolePlatformAdmin:
		return nil
	case domain.RoleClient:
		if e.ClientID.String() == meta.Actor.ID {
			return nil
		}
	case domain.RoleProfessional:
		linked, err := h.linkedTo(ctx, meta, e.ResourceID)
		if err != nil {
			return err
		}
		if linked || e.ClientID.String() == meta.Actor.ID {
			return nil
		}
	}
	return domain.ErrNotFound
}

// Waitlist returns a resource's line, first in line first: every entry
// for staff (waiting ones only unless all is set), a client's own entries
// for a client, and for a professional the line of its linked resource.
// Errors: domain.ErrNotFound for a resource of another tenant.
func (h *Handlers) Waitlist(ctx context.Context, meta Meta, resourceID uuid.UUID, all bool) ([]domain.WaitlistEntry, error) {
	if _, err := h.policy(ctx, meta.TenantID, resourceID); err != nil {
		return nil, err
	}
	q := domain.NewWaitlist()
	if err := h.loadMaybe(ctx, domain.WaitlistStream(resourceID), q); err != nil {
		return nil, err
	}
	out := []domain.WaitlistEntry{}
	for _, e := range q.Entries() {
		if !all && e.Status != domain.WaitlistStatusWaiting {
			continue
		}
		if h.canSeeEntry(ctx, meta, e) != nil {
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

// promotionID names the booking or hold a waitlist entry is promoted to:
// an entry is promoted at most once, so its id alone names the target, and
// every retry of a promotion names the same one.
func promotionID(entryID uuid.UUID) uuid.UUID {
	return uuid.NewSHA1(eventNamespace, []byte("promotion\x00"+entryID.String()))
}

// promoteWaitlist serves the resource's line after the occupied intervals
// freed became free in ws: each waiting entry whose time overlaps them,
// first in line first, that now passes the policy and fits beside what
// the buckets hold (after this command's own changes) becomes a booking
// (setting waitlist_promotion "booking") or a hold of
// waitlist_hold_minutes, recorded with waitlist.promoted in the same
// append as the freeing command. Because that append carries the line's
// expected version and the buckets', two commands freeing time at once
// cannot both promote an entry, nor two entries into one freed slot: the
// loser re-runs and sees the promotion. An entry whose booking would need
// custom fields it cannot supply is promoted to a hold instead.
func (h *Handlers) promoteWaitlist(ctx context.Context, ws *workset, p domain.Policy, freed []domain.Interval, now time.Time) error {
	if len(freed) == 0 || p.ResourceID() == uuid.Nil {
		return nil
	}
	q, err := ws.waitlist(ctx, p.ResourceID())
	if err != nil || q.Version() == 0 {
		return err
	}
	settings := p.Settings()
	for _, e := range q.Waiting() {
		occStart, occEnd := p.Occupied(e.Start, e.End)
		if !overlapsAny(freed, occStart, occEnd) {
			continue
		}
		if p.Check(domain.SlotRequest{Start: e.Start, End: e.End, Seats: e.Seats, Now: now}) != nil {
			continue
		}
		_, occ, err := ws.occupancy(ctx, p.ResourceID(), occStart, occEnd)
		if err != nil {
			return err
		}
		if occ.Check(p.Capacity(), occStart, occEnd, e.Seats, uuid.Nil) != nil {
			continue
		}
		target := promotionID(e.ID)
		kind := domain.PromotedToHold
		if settings.WaitlistPromotion == domain.WaitlistPromoteBooking {
			ok, err := h.promoteToBooking(ctx, ws, p, e, target, occ, now)
			if err != nil {
				return err
			}
			if ok {
				kind = domain.PromotedToBooking
			}
		}
		if kind == domain.PromotedToHold {
			hold, err := domain.PlaceHold(target, domain.HoldRequest{
				ResourceID: e.ResourceID, ClientID: e.ClientID, Start: e.Start, End: e.End, Seats: e.Seats,
				TTLMinutes: settings.WaitlistHoldMinutes, WaitlistEntryID: e.ID,
			}, p, occ, waitlistActor, now)
			if err != nil {
				continue
			}
			ws.track(domain.HoldStream(target), hold)
			hs, he := hold.OccupiedInterval()
			if err := ws.reserve(ctx, target, hold.ResourceID(), hold.Start(), hold.End(), hs, he, hold.Seats()); err != nil {
				return err
			}
		}
		if err := q.Promote(e.ID, kind, target, now); err != nil {
			return err
		}
	}
	return nil
}

// promoteToBooking books the entry's time for its client; false means the
// booking was refused by a rule the client must settle (custom fields,
// the daily limit), so the caller holds the time instead.
func (h *Handlers) promoteToBooking(ctx context.Context, ws *workset, p domain.Policy, e domain.WaitlistEntry, id uuid.UUID, occ *domain.Occupancy, now time.Time) (bool, error) {
	b, err := domain.NewBooking(id, domain.BookingRequest{
		ResourceID: e.ResourceID, ClientID: e.ClientID, Start: e.Start, End: e.End, Seats: e.Seats,
		Title: "", WaitlistEntryID: e.ID,
	}, p, occ, waitlistActor, now)
	if err != nil {
		return false, nil
	}
	if limit := p.Settings().MaxBookingsPerClientPerDay; limit > 0 {
		day, err := ws.clientDay(ctx, domain.ClientDayStream(p.TenantID(), b.ClientID(), b.LocalDate()))
		if err != nil {
			return false, err
		}
		if day.Count(b.ID(), limit) != nil {
			return false, nil
		}
	}
	ws.track(domain.BookingStream(id), b)
	bs, be := b.OccupiedInterval()
	return true, ws.reserve(ctx, id, b.ResourceID(), b.Start(), b.End(), bs, be, b.Seats())
}

func overlapsAny(list []domain.Interval, start, end time.Time) bool {
	for _, iv := range list {
		if iv.Overlaps(start, end) {
			return true
		}
	}
	return false
}
