package commands

import (
	"context"
	"slices"
	"time"

	"github.com/bookingengine/booking/domain"
	"github.com/google/uuid"
)

// RescheduleBooking moves a pending or confirmed booking to a new time.
type RescheduleBooking struct {
	BookingID       uuid.UUID
	Start, End      time.Time
	Reason          string
	ExpectedVersion *int64
}

// RescheduleBooking runs the command: the new time passes the same policy
// and capacity check as a new booking (ignoring the booking itself), and the
// old reservation is released and the new one taken in one append across
// every bucket either interval touches.
//
// Errors: as CreateBooking, plus *domain.TransitionError,
// domain.ErrCancellationDeadlinePassed and *VersionMismatchError.
func (h *Handlers) RescheduleBooking(ctx context.Context, meta Meta, cmd RescheduleBooking) (Result, error) {
	stream := domain.BookingStream(cmd.BookingID)
	return h.retry(ctx, func(s string) bool { return s != stream }, func() (Result, error) {
		return h.rescheduleOnce(ctx, meta, cmd)
	})
}

func (h *Handlers) rescheduleOnce(ctx context.Context, meta Meta, cmd RescheduleBooking) (Result, error) {
	b, err := h.Booking(ctx, meta, cmd.BookingID)
	if err != nil {
		return Result{}, err
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
	buckets, occ, err := h.loadBuckets(ctx, streams)
	if err != nil {
		return Result{}, err
	}
	if err := b.Reschedule(cmd.Start, cmd.End, cmd.Reason, p, occ, meta.Actor, h.Now()); err != nil {
		return Result{}, err
	}
	if len(b.Changes()) == 0 {
		return Result{ID: b.ID(), Version: b.Version(), View: b.View()}, nil
	}
	for _, bk := range buckets {
		if err := bk.schedule.Release(b.ID()); err != nil {
			return Result{}, err
		}
	}
	movedStart, movedEnd := b.OccupiedInterval()
	for _, bk := range buckets {
		if !touches(bk.stream, b.ResourceID(), movedStart, movedEnd) {
			continue
		}
		if err := bk.schedule.Reserve(b.ID(), b.ResourceID(), b.Start(), b.End(), movedStart, movedEnd, b.Seats()); err != nil {
			return Result{}, err
		}
	}
	bt := &batch{meta: meta}
	bookingStream := domain.BookingStream(b.ID())
	if err := bt.add(bookingStream, b); err != nil {
		return Result{}, err
	}
	if err := addBuckets(bt, buckets); err != nil {
		return Result{}, err
	}
	if newDate := b.LocalDate(); newDate != oldDate {
		if err := h.releaseClientDay(ctx, bt, meta.TenantID, b, oldDate); err != nil {
			return Result{}, err
		}
		if limit := p.Settings().MaxBookingsPerClientPerDay; limit > 0 {
			stream := domain.ClientDayStream(meta.TenantID, b.ClientID(), newDate)
			day := domain.NewClientDay()
			if err := h.loadMaybe(ctx, stream, day); err != nil {
				return Result{}, err
			}
			if err := day.Count(b.ID(), limit); err != nil {
				return Result{}, err
			}
			if err := bt.add(stream, day); err != nil {
				return Result{}, err
			}
		}
	}
	res, err := h.commit(ctx, bt)
	if err != nil {
		return Result{}, bookingStreamMismatch(err, bookingStream)
	}
	return Result{ID: b.ID(), Version: b.Version(), Position: res.LastPosition, View: b.View()}, nil
}

// touches reports whether the bucket stream is one of those the interval
// touches.
func touches(stream string, resourceID uuid.UUID, start, end time.Time) bool {
	for _, s := range domain.ScheduleStreams(resourceID, start, end) {
		if s == stream {
			return true
		}
	}
	return false
}
