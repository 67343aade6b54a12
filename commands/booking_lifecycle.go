package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/eventstore"
	"github.com/google/uuid"
)

// ChangeBookingStatus moves a booking along its lifecycle.
// Scope applies to cancelling an occurrence of a series: "" or occurrence
// cancels this booking only, following this one and every later
// occurrence, all every occurrence that has not started.
type ChangeBookingStatus struct {
	BookingID       uuid.UUID
	To              domain.Status
	Reason          string
	Scope           domain.Scope
	ExpectedVersion *int64
}

// BookingAction names the POST /bookings/{id}/<action> endpoints and the
// status each leads to.
var BookingAction = map[string]domain.Status{
	"confirm":  domain.StatusConfirmed,
	"reject":   domain.StatusRejected,
	"check-in": domain.StatusCheckedIn,
	"complete": domain.StatusCompleted,
	"no-show":  domain.StatusNoShow,
	"cancel":   domain.StatusCancelled,
}

// ChangeBookingStatus runs confirm, reject, check-in, complete, no-show and
// cancel. Rejecting or cancelling frees the booking's slot in the same
// append (and its count in the client's day), and promotes the first
// waiting entry of the resource's waitlist that fits the freed time in that
// same append. A cancellation with scope following or all cancels the
// series' occurrences it names, all or none, and records the scope. Clients may only cancel their
// own bookings; professionals act on the bookings of their linked resource;
// admins and managers on every booking of the tenant.
//
// Errors: domain.ErrNotFound (also for a booking the caller may not see),
// domain.ErrForbidden, *domain.TransitionError,
// domain.ErrCancellationDeadlinePassed, *VersionMismatchError,
// *domain.ValidationError for a scope on another action or an unknown one,
// *domain.SeriesError for a series cancellation that fails on some
// occurrence.
func (h *Handlers) ChangeBookingStatus(ctx context.Context, meta Meta, cmd ChangeBookingStatus) (Result, error) {
	if !cmd.Scope.Valid() || (cmd.Scope != "" && cmd.To != domain.StatusCancelled) {
		var v domain.ValidationError
		v.Addf("scope", domain.FieldInvalid, "applies to cancel and reschedule only, as occurrence, following or all; got %q", cmd.Scope)
		return Result{}, v.Err()
	}
	stream := domain.BookingStream(cmd.BookingID)
	return h.retry(ctx, func(s string) bool { return s != stream }, func() (Result, error) {
		if cmd.Scope == domain.ScopeFollowing || cmd.Scope == domain.ScopeAll {
			return h.cancelSeriesOnce(ctx, meta, cmd)
		}
		return h.changeStatusOnce(ctx, meta, cmd)
	})
}

func (h *Handlers) changeStatusOnce(ctx context.Context, meta Meta, cmd ChangeBookingStatus) (Result, error) {
	b, err := h.Booking(ctx, meta, cmd.BookingID)
	if err != nil {
		return Result{}, err
	}
	if res, done, err := h.answeredBefore(ctx, meta, b); done || err != nil {
		return res, err
	}
	if err := checkVersion(cmd.ExpectedVersion, b.Version()); err != nil {
		return Result{}, err
	}
	if meta.Actor.Role == domain.RoleClient && cmd.To != domain.StatusCancelled {
		return Result{}, fmt.Errorf("a client may only cancel: %w", domain.ErrForbidden)
	}
	wasActive := b.IsActive()
	now := h.Now()
	var p domain.Policy
	if cmd.To == domain.StatusCancelled || cmd.To == domain.StatusRejected {
		if p, err = h.policy(ctx, meta.TenantID, b.ResourceID()); err != nil {
			return Result{}, err
		}
	}
	switch cmd.To {
	case domain.StatusConfirmed:
		err = b.Confirm(meta.Actor, cmd.Reason, now)
	case domain.StatusRejected:
		err = b.Reject(meta.Actor, cmd.Reason, now)
	case domain.StatusCheckedIn:
		err = b.CheckIn(meta.Actor, cmd.Reason, now)
	case domain.StatusCompleted:
		err = b.Complete(meta.Actor, cmd.Reason, now)
	case domain.StatusNoShow:
		err = b.NoShow(meta.Actor, cmd.Reason, now)
	case domain.StatusCancelled:
		err = b.CancelScoped(meta.Actor, cmd.Reason, cmd.Scope, p, now)
	default:
		err = &domain.TransitionError{From: b.Status(), To: cmd.To}
	}
	if err != nil {
		return Result{}, err
	}
	ws := newWorkset(h)
	bookingStream := domain.BookingStream(b.ID())
	ws.track(bookingStream, b)
	if wasActive && !b.IsActive() && (cmd.To == domain.StatusCancelled || cmd.To == domain.StatusRejected) {
		occStart, occEnd := b.OccupiedInterval()
		if err := ws.release(ctx, b.ID(), b.ResourceID(), occStart, occEnd); err != nil {
			return Result{}, err
		}
		if err := ws.uncountBooking(ctx, meta.TenantID, b, b.LocalDate()); err != nil {
			return Result{}, err
		}
		if err := h.promoteWaitlist(ctx, ws, p, []domain.Interval{{Start: occStart, End: occEnd}}, now); err != nil {
			return Result{}, err
		}
	}
	bt := &batch{meta: meta}
	if err := ws.addTo(bt); err != nil {
		return Result{}, err
	}
	res, err := h.commit(ctx, bt)
	if err != nil {
		return Result{}, bookingStreamMismatch(err, bookingStream)
	}
	return Result{ID: b.ID(), Version: b.Version(), Position: res.LastPosition, View: b.View()}, nil
}

// bookingStreamMismatch reports a conflict on the booking's own stream as
// a version mismatch: somebody else changed the booking meanwhile.
func bookingStreamMismatch(err error, stream string) error {
	if vc, ok := versionConflict(err); ok && vc.StreamID == stream {
		return asVersionMismatch(err)
	}
	return err
}

// versionConflict unwraps a store version conflict.
func versionConflict(err error) (*eventstore.VersionConflictError, bool) {
	var vc *eventstore.VersionConflictError
	ok := errors.As(err, &vc)
	return vc, ok
}

// answeredBefore reports whether the booking's stream already holds an
// event written under the caller's Idempotency-Key: a retry of a change
// whose first attempt committed but whose answer was lost (the process
// died before the HTTP layer stored it). The retry then answers with the
// booking as it stands, as the first attempt did, instead of running the
// change again against the new state (which would refuse it as an invalid
// transition). Without a key it costs nothing.
func (h *Handlers) answeredBefore(ctx context.Context, meta Meta, b *domain.Booking) (Result, bool, error) {
	if meta.IdempotencyKey == "" {
		return Result{}, false, nil
	}
	recs, err := h.store.Load(ctx, domain.BookingStream(b.ID()), 0)
	if err != nil {
		return Result{}, false, err
	}
	for _, r := range recs {
		if r.StreamVersion > 1 && r.Metadata.IdempotencyKey == meta.IdempotencyKey && r.Metadata.Actor == meta.Actor.ID {
			return Result{ID: b.ID(), Version: b.Version(), Position: r.Position, View: b.View()}, true, nil
		}
	}
	return Result{}, false, nil
}

// Booking loads a booking the caller may see: staff see every booking of
// the tenant, a professional those of its linked resource, a client its
// own. Any other booking, and a booking of another tenant, is
// domain.ErrNotFound.
func (h *Handlers) Booking(ctx context.Context, meta Meta, id uuid.UUID) (*domain.Booking, error) {
	b, err := h.loadBooking(ctx, meta.TenantID, id)
	if err != nil {
		return nil, err
	}
	if err := h.canSee(ctx, meta, b); err != nil {
		return nil, err
	}
	return b, nil
}

func (h *Handlers) canSee(ctx context.Context, meta Meta, b *domain.Booking) error {
	switch meta.Actor.Role {
	case domain.RoleAdmin, domain.RoleManager, domain.RolePlatformAdmin:
		return nil
	case domain.RoleClient:
		if b.ClientID().String() == meta.Actor.ID {
			return nil
		}
	case domain.RoleProfessional:
		if b.ClientID().String() == meta.Actor.ID {
			return nil
		}
		linked, err := h.linkedTo(ctx, meta, b.ResourceID())
		if err != nil {
			return err
		}
		if linked {
			return nil
		}
	}
	return fmt.Errorf("booking %s: %w", b.ID(), domain.ErrNotFound)
}

func (h *Handlers) loadBooking(ctx context.Context, tenantID, id uuid.UUID) (*domain.Booking, error) {
	b := &domain.Booking{}
	if err := h.load(ctx, domain.BookingStream(id), b); err != nil {
		return nil, err
	}
	if b.TenantID() != tenantID {
		return nil, fmt.Errorf("booking %s: %w", id, domain.ErrNotFound)
	}
	return b, nil
}

// BookingHistory returns the booking's events, oldest first, after the
// same visibility check as Booking.
func (h *Handlers) BookingHistory(ctx context.Context, meta Meta, id uuid.UUID) ([]eventstore.RecordedEvent, error) {
	if _, err := h.Booking(ctx, meta, id); err != nil {
		return nil, err
	}
	return h.store.Load(ctx, domain.BookingStream(id), 0)
}
