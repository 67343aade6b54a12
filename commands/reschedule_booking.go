package commands

import (
	"context"
	"slices"
	"time"

	"github.com/bookingengine/booking/domain"
	"github.com/google/uuid"
)

// RescheduleBooking moves a pending or confirmed booking to a new time.
// Scope applies to an occurrence of a series: "" or occurrence moves this
// booking only; following and all move the series' occurrences by the same
// wall-clock offset (see RescheduleBooking).
type RescheduleBooking struct {
	BookingID       uuid.UUID
	Start, End      time.Time
	Reason          string
	Scope           domain.Scope
	ExpectedVersion *int64
}

// RescheduleBooking runs the command: the new time passes the same policy
// and capacity check as a new booking (ignoring the booking itself), and the
// old reservation is released and the new one taken in one append across
// every bucket either interval touches. The first waiting entry of the
// resource's waitlist that fits the freed time is promoted in the same
// append.
//
// With scope following or all on an occurrence of a series, every
// occurrence from this one on (following) or every one that has not
// started (all) moves by the offset between the booking's old and new
// local wall-clock start, and takes the new duration; all of them are
// checked and appended at once, or none. Following splits the series: the
// moved occurrences form a new series linked to the old one.
//
// Errors: as CreateBooking, plus *domain.TransitionError,
// domain.ErrCancellationDeadlinePassed, *VersionMismatchError and, for a
// series edit, *domain.SeriesError listing every occurrence that cannot
// move.
func (h *Handlers) RescheduleBooking(ctx context.Context, meta Meta, cmd RescheduleBooking) (Result, error) {
	if !cmd.Scope.Valid() {
		var v domain.ValidationError
		v.Addf("scope", domain.FieldInvalid, "must be occurrence, following or all, got %q", cmd.Scope)
		return Result{}, v.Err()
	}
	stream := domain.BookingStream(cmd.BookingID)
	return h.retry(ctx, func(s string) bool { return s != stream }, func() (Result, error) {
		if cmd.Scope == domain.ScopeFollowing || cmd.Scope == domain.ScopeAll {
			return h.rescheduleSeriesOnce(ctx, meta, cmd)
		}
		return h.rescheduleOnce(ctx, meta, cmd)
	})
}

func (h *Handlers) rescheduleOnce(ctx context.Context, meta Meta, cmd RescheduleBooking) (Result, error) {
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
	p, err := h.policy(ctx, meta.TenantID, b.ResourceID())
	if err != nil {
		return Result{}, err
	}
	oldStart, oldEnd := b.OccupiedInterval()
	oldDate := b.LocalDate()
	newStart, newEnd := p.Occupied(cmd.Start, cmd.End)
	// Load the union of old and new buckets once, so a bucket in both
	// gets its release and its reservation in one stream append.
	streams := domain.ScheduleStreams(b.ResourceID(), oldStart, oldEnd)
	for _, s := range domain.ScheduleStreams(b.ResourceID(), newStart, newEnd) {
		if !slices.Contains(streams, s) {
			streams = append(streams, s)
		}
	}
	ws := newWorkset(h)
	bookingStream := domain.BookingStream(b.ID())
	ws.track(bookingStream, b)
	_, occ, err := ws.buckets(ctx, streams)
	if err != nil {
		return Result{}, err
	}
	now := h.Now()
	if err := b.RescheduleIn(cmd.Start, cmd.End, cmd.Reason, domain.SeriesMove{Scope: cmd.Scope}, p, occ, meta.Actor, now); err != nil {
		return Result{}, err
	}
	if len(b.Changes()) == 0 {
		return Result{ID: b.ID(), Version: b.Version(), View: b.View()}, nil
	}
	if err := h.moveReservation(ctx, ws, meta.TenantID, b, p, oldStart, oldEnd, oldDate); err != nil {
		return Result{}, err
	}
	if err := h.promoteWaitlist(ctx, ws, p, []domain.Interval{{Start: oldStart, End: oldEnd}}, now); err != nil {
		return Result{}, err
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

// moveReservation releases a rescheduled booking's old occupied interval
// [oldStart, oldEnd), reserves its new one, and moves its count to its new
// local date when that changed.
func (h *Handlers) moveReservation(ctx context.Context, ws *workset, tenantID uuid.UUID, b *domain.Booking, p domain.Policy, oldStart, oldEnd time.Time, oldDate string) error {
	if err := ws.release(ctx, b.ID(), b.ResourceID(), oldStart, oldEnd); err != nil {
		return err
	}
	movedStart, movedEnd := b.OccupiedInterval()
	if err := ws.reserve(ctx, b.ID(), b.ResourceID(), b.Start(), b.End(), movedStart, movedEnd, b.Seats()); err != nil {
		return err
	}
	if b.LocalDate() == oldDate {
		return nil
	}
	if err := ws.uncountBooking(ctx, tenantID, b, oldDate); err != nil {
		return err
	}
	return ws.countBooking(ctx, tenantID, b, p.Settings().MaxBookingsPerClientPerDay)
}
