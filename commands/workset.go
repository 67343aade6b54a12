package commands

import (
	"context"
	"time"

	"github.com/bookingengine/booking/domain"
	"github.com/google/uuid"
)

// workset holds every aggregate one command loads and changes, keyed by
// stream, so that a command touching the same bucket, day counter or line
// for several reasons (releasing a booking, promoting a waitlist entry,
// booking many occurrences) loads it once and appends its changes in one
// StreamAppend with the version it was loaded at.
type workset struct {
	h     *Handlers
	aggs  map[string]aggregate
	order []string
}

func newWorkset(h *Handlers) *workset {
	return &workset{h: h, aggs: map[string]aggregate{}}
}

// track adds an aggregate loaded (or created) elsewhere.
func (w *workset) track(stream string, agg aggregate) {
	if _, ok := w.aggs[stream]; !ok {
		w.order = append(w.order, stream)
	}
	w.aggs[stream] = agg
}

// loadMissing loads, in one round trip, the streams not yet in the set,
// each into the aggregate mk returns for it.
func (w *workset) loadMissing(ctx context.Context, streams []string, mk func(string) aggregate) error {
	missing := map[string]aggregate{}
	for _, s := range streams {
		if _, ok := w.aggs[s]; ok {
			continue
		}
		if _, ok := missing[s]; ok {
			continue
		}
		missing[s] = mk(s)
	}
	if err := w.h.loadAll(ctx, missing); err != nil {
		return err
	}
	for _, s := range streams {
		if agg, ok := missing[s]; ok {
			w.track(s, agg)
			delete(missing, s)
		}
	}
	return nil
}

// buckets returns the schedule buckets named by streams, loading those
// not yet in the set, and their merged occupancy.
func (w *workset) buckets(ctx context.Context, streams []string) ([]bucket, *domain.Occupancy, error) {
	if err := w.loadMissing(ctx, streams, func(string) aggregate { return domain.NewSchedule() }); err != nil {
		return nil, nil, err
	}
	out := make([]bucket, 0, len(streams))
	schedules := make([]*domain.Schedule, 0, len(streams))
	for _, s := range streams {
		sch := w.aggs[s].(*domain.Schedule)
		out = append(out, bucket{stream: s, schedule: sch})
		schedules = append(schedules, sch)
	}
	return out, domain.NewOccupancy(schedules...), nil
}

// occupancy returns the buckets and occupancy of an occupied interval of a
// resource.
func (w *workset) occupancy(ctx context.Context, resourceID uuid.UUID, occStart, occEnd time.Time) ([]bucket, *domain.Occupancy, error) {
	return w.buckets(ctx, domain.ScheduleStreams(resourceID, occStart, occEnd))
}

// reserve records a reservation of id over [start, end) (occupied
// [occStart, occEnd)) in every bucket the occupied interval touches.
func (w *workset) reserve(ctx context.Context, id, resourceID uuid.UUID, start, end, occStart, occEnd time.Time, seats int) error {
	bks, _, err := w.occupancy(ctx, resourceID, occStart, occEnd)
	if err != nil {
		return err
	}
	for _, bk := range bks {
		if err := bk.schedule.Reserve(id, resourceID, start, end, occStart, occEnd, seats); err != nil {
			return err
		}
	}
	return nil
}

// release frees id's reservation in every bucket of [occStart, occEnd).
func (w *workset) release(ctx context.Context, id, resourceID uuid.UUID, occStart, occEnd time.Time) error {
	bks, _, err := w.occupancy(ctx, resourceID, occStart, occEnd)
	if err != nil {
		return err
	}
	for _, bk := range bks {
		if err := bk.schedule.Release(id); err != nil {
			return err
		}
	}
	return nil
}

// clientDay returns the counter stream, loading it when needed.
func (w *workset) clientDay(ctx context.Context, stream string) (*domain.ClientDay, error) {
	if err := w.loadMissing(ctx, []string{stream}, func(string) aggregate { return domain.NewClientDay() }); err != nil {
		return nil, err
	}
	return w.aggs[stream].(*domain.ClientDay), nil
}

// countBooking counts an active booking in its client's day when the
// tenant limits bookings per day.
func (w *workset) countBooking(ctx context.Context, tenantID uuid.UUID, b *domain.Booking, limit int) error {
	if limit <= 0 {
		return nil
	}
	day, err := w.clientDay(ctx, domain.ClientDayStream(tenantID, b.ClientID(), b.LocalDate()))
	if err != nil {
		return err
	}
	return day.Count(b.ID(), limit)
}

// uncountBooking removes the booking from the client's day counter of
// localDate, when that counter exists.
func (w *workset) uncountBooking(ctx context.Context, tenantID uuid.UUID, b *domain.Booking, localDate string) error {
	day, err := w.clientDay(ctx, domain.ClientDayStream(tenantID, b.ClientID(), localDate))
	if err != nil {
		return err
	}
	return day.Release(b.ID())
}

// waitlist returns the resource's line, loading it when needed.
func (w *workset) waitlist(ctx context.Context, resourceID uuid.UUID) (*domain.Waitlist, error) {
	stream := domain.WaitlistStream(resourceID)
	if err := w.loadMissing(ctx, []string{stream}, func(string) aggregate { return domain.NewWaitlist() }); err != nil {
		return nil, err
	}
	return w.aggs[stream].(*domain.Waitlist), nil
}

// addTo queues the changes of every aggregate of the set, each with the
// version it was loaded at; unchanged ones add nothing.
func (w *workset) addTo(bt *batch) error {
	for _, s := range w.order {
		if err := bt.add(s, w.aggs[s]); err != nil {
			return err
		}
	}
	return nil
}
