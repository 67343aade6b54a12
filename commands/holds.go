package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/eventstore"
	"github.com/google/uuid"
)

// PlaceHold takes a slot of a resource for a while.
type PlaceHold struct {
	Request domain.HoldRequest
}

// PlaceHold runs the command: the hold passes the same policy and capacity
// checks as a booking and reserves its occupied interval in the schedule
// buckets, with their expected versions, exactly like a booking, so holds
// and bookings exclude each other. Staff and clients may hold (a client
// for itself; a professional on its linked resource).
//
// Errors: as CreateBooking.
func (h *Handlers) PlaceHold(ctx context.Context, meta Meta, cmd PlaceHold) (Result, error) {
	req := cmd.Request
	br, err := h.authorizeBooking(ctx, meta, domain.BookingRequest{ResourceID: req.ResourceID, ClientID: req.ClientID})
	if err != nil {
		return Result{}, err
	}
	req.ClientID = br.ClientID
	id := DeriveID(meta, "hold")
	stream := domain.HoldStream(id)
	res, err := h.retry(ctx, func(s string) bool { return s != stream }, func() (Result, error) {
		return h.placeHoldOnce(ctx, meta, id, req)
	})
	if errors.Is(err, eventstore.ErrDuplicateEvent) {
		if hd, lerr := h.loadHold(ctx, meta.TenantID, id); lerr == nil {
			return Result{ID: id, Version: hd.Version(), View: hd.View()}, nil
		}
	}
	return res, err
}

func (h *Handlers) placeHoldOnce(ctx context.Context, meta Meta, id uuid.UUID, req domain.HoldRequest) (Result, error) {
	p, err := h.policy(ctx, meta.TenantID, req.ResourceID)
	if err != nil {
		return Result{}, resourceField(err)
	}
	now := h.Now()
	ws := newWorkset(h)
	occStart, occEnd := p.Occupied(req.Start, req.End)
	_, occ, err := ws.occupancy(ctx, req.ResourceID, occStart, occEnd)
	if err != nil {
		return Result{}, err
	}
	hd, err := domain.PlaceHold(id, req, p, occ, meta.Actor, now)
	if err != nil {
		return Result{}, err
	}
	ws.track(domain.HoldStream(id), hd)
	if err := ws.reserve(ctx, id, hd.ResourceID(), hd.Start(), hd.End(), occStart, occEnd, hd.Seats()); err != nil {
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
	return Result{ID: id, Version: hd.Version(), Position: res.LastPosition, View: hd.View()}, nil
}

// ReleaseHold gives a hold up.
type ReleaseHold struct {
	HoldID          uuid.UUID
	ExpectedVersion *int64
}

// ReleaseHold runs DELETE /holds/{id}: the hold's reservation is released
// and the resource's waitlist served in the same append. Releasing a hold
// that already ended is a no-op. Errors: domain.ErrNotFound (also for a
// hold the caller may not see), domain.ErrInvalidTransition for a consumed
// hold, *VersionMismatchError.
func (h *Handlers) ReleaseHold(ctx context.Context, meta Meta, cmd ReleaseHold) (Result, error) {
	stream := domain.HoldStream(cmd.HoldID)
	return h.retry(ctx, func(s string) bool { return s != stream }, func() (Result, error) {
		hd, err := h.Hold(ctx, meta, cmd.HoldID)
		if err != nil {
			return Result{}, err
		}
		if err := checkVersion(cmd.ExpectedVersion, hd.Version()); err != nil {
			return Result{}, err
		}
		wasActive := hd.IsActive()
		if err := hd.Release(meta.Actor, h.Now()); err != nil {
			return Result{}, err
		}
		res, err := h.endHold(ctx, meta, hd, wasActive)
		if err != nil {
			return Result{}, bookingStreamMismatch(err, stream)
		}
		return res, nil
	})
}

// endHold appends a hold that stopped being active (released or expired)
// with the release of its reservation and the promotion of the waitlist.
func (h *Handlers) endHold(ctx context.Context, meta Meta, hd *domain.Hold, wasActive bool) (Result, error) {
	if len(hd.Changes()) == 0 {
		return Result{ID: hd.ID(), Version: hd.Version(), View: hd.View()}, nil
	}
	ws := newWorkset(h)
	ws.track(domain.HoldStream(hd.ID()), hd)
	if wasActive && !hd.IsActive() {
		occStart, occEnd := hd.OccupiedInterval()
		if err := ws.release(ctx, hd.ID(), hd.ResourceID(), occStart, occEnd); err != nil {
			return Result{}, err
		}
		p, err := h.policy(ctx, hd.TenantID(), hd.ResourceID())
		if err != nil && !errors.Is(err, errResourceNotFound) {
			return Result{}, err
		}
		if err == nil {
			if err := h.promoteWaitlist(ctx, ws, p, []domain.Interval{{Start: occStart, End: occEnd}}, h.Now()); err != nil {
				return Result{}, err
			}
		}
	}
	bt := &batch{meta: meta}
	if err := ws.addTo(bt); err != nil {
		return Result{}, err
	}
	res, err := h.commit(ctx, bt)
	if err != nil {
		return Result{}, err
	}
	return Result{ID: hd.ID(), Version: hd.Version(), Position: res.LastPosition, View: hd.View()}, nil
}

// Hold loads a hold the caller may see: staff see every hold of the
// tenant, a professional those of its linked resource, a client its own.
// Any other hold is domain.ErrNotFound.
func (h *Handlers) Hold(ctx context.Context, meta Meta, id uuid.UUID) (*domain.Hold, error) {
	hd, err := h.loadHold(ctx, meta.TenantID, id)
	if err != nil {
		return nil, err
	}
	switch meta.Actor.Role {
	case domain.RoleAdmin, domain.RoleManager, domain.RolePlatformAdmin:
		return hd, nil
	case domain.RoleClient:
		if hd.ClientID().String() == meta.Actor.ID {
			return hd, nil
		}
	case domain.RoleProfessional:
		linked, err := h.linkedTo(ctx, meta, hd.ResourceID())
		if err != nil {
			return nil, err
		}
		if linked || hd.ClientID().String() == meta.Actor.ID {
			return hd, nil
		}
	}
	return nil, fmt.Errorf("hold %s: %w", id, domain.ErrNotFound)
}

func (h *Handlers) loadHold(ctx context.Context, tenantID, id uuid.UUID) (*domain.Hold, error) {
	hd := &domain.Hold{}
	if err := h.load(ctx, domain.HoldStream(id), hd); err != nil {
		return nil, err
	}
	if hd.TenantID() != tenantID {
		return nil, fmt.Errorf("hold %s: %w", id, domain.ErrNotFound)
	}
	return hd, nil
}

// expiryActor is who expires holds: the scheduler, not a user.
var expiryActor = domain.Actor{ID: "system:hold-expiry", Role: domain.RolePlatformAdmin}

// ExpireHold records hold.expired for the hold id of tenantID when its
// expires_at has passed, releasing its reservation and serving the
// resource's waitlist in the same append. The append expects the hold
// stream's version as loaded, so when several processes expire the same
// hold at once exactly one appends and the others get a version conflict,
// which ExpireHold reports as (false, nil): there is nothing left to do.
// It returns true when it recorded the expiry; false, nil for a hold that
// is not due or already ended.
func (h *Handlers) ExpireHold(ctx context.Context, tenantID, id uuid.UUID) (bool, error) {
	meta := Meta{TenantID: tenantID, Actor: expiryActor, CorrelationID: "hold-expiry-" + id.String()}
	stream := domain.HoldStream(id)
	res, err := h.retry(ctx, func(s string) bool { return s != stream }, func() (Result, error) {
		hd, err := h.loadHold(ctx, tenantID, id)
		if err != nil {
			return Result{}, err
		}
		now := h.Now()
		if !hd.IsActive() || now.Before(hd.ExpiresAt()) {
			return Result{}, nil
		}
		if err := hd.Expire(now); err != nil {
			return Result{}, err
		}
		return h.endHold(ctx, meta, hd, true)
	})
	if vc, ok := versionConflict(err); ok && vc.StreamID == stream {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return res.Position > 0, nil
}
