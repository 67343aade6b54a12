package commands

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/eventstore"
	"github.com/google/uuid"
)

// CreateSeries books every occurrence of a recurring booking.
type CreateSeries struct {
	// Request is the first occurrence; its start is the rule's DTSTART.
	Request    domain.BookingRequest
	Recurrence Recurrence
}

// CreateSeries runs the command. The rule is expanded in the resource's
// zone (else the tenant's) on wall-clock times (see Recurrence), bounded by
// COUNT or UNTIL and by the tenant's max_occurrences. Every occurrence is
// checked like a single booking (policy, capacity against what the buckets
// hold and the series' earlier occurrences, the client's daily limit).
// With all_or_nothing any failure refuses the whole series with a
// *domain.SeriesError listing every failing occurrence and its code; with
// skip_conflicts the failing ones are left out and reported in the view.
// Every booking, every bucket reservation, the day counters and the series
// stream (series.created) are appended in one atomic append with the
// versions read; a race on a bucket re-runs the whole series, so two
// series racing for one slot never both get it, and the loser is either
// refused whole or (skip_conflicts) skips that occurrence.
//
// Errors: those of CreateBooking that concern the whole request (a
// *domain.ValidationError, also for the recurrence, domain.ErrForbidden,
// domain.ErrNotFound), and *domain.SeriesError.
func (h *Handlers) CreateSeries(ctx context.Context, meta Meta, cmd CreateSeries) (Result, error) {
	req, err := h.authorizeBooking(ctx, meta, cmd.Request)
	if err != nil {
		return Result{}, err
	}
	id := DeriveID(meta, "series")
	stream := domain.SeriesStream(id)
	res, err := h.retry(ctx, func(s string) bool {
		return s != stream && !strings.HasPrefix(s, "booking-")
	}, func() (Result, error) {
		return h.createSeriesOnce(ctx, meta, id, req, cmd.Recurrence)
	})
	if errors.Is(err, eventstore.ErrDuplicateEvent) {
		// A retry under the same idempotency key whose first attempt
		// committed.
		if v, lerr := h.seriesView(ctx, meta.TenantID, id); lerr == nil {
			return Result{ID: id, Version: v.Version, View: v}, nil
		}
	}
	return res, err
}

func (h *Handlers) createSeriesOnce(ctx context.Context, meta Meta, id uuid.UUID, req domain.BookingRequest, rec Recurrence) (Result, error) {
	t, r, client := &domain.Tenant{}, &domain.Resource{}, &domain.User{}
	loads := map[string]aggregate{
		domain.TenantStream(meta.TenantID):    t,
		domain.ResourceStream(req.ResourceID): r,
		domain.UserStream(req.ClientID):       client,
	}
	if err := h.loadAll(ctx, loads); err != nil {
		return Result{}, err
	}
	if t.Version() == 0 {
		return Result{}, fmt.Errorf("tenant %s: %w", meta.TenantID, domain.ErrNotFound)
	}
	var v domain.ValidationError
	if r.Version() == 0 || r.TenantID() != meta.TenantID {
		v.Add("resource_id", "not_found", "no such resource")
	}
	if req.ClientID == uuid.Nil {
		v.Add("client_id", domain.FieldRequired, "is required")
	} else if client.Version() == 0 || client.TenantID() != meta.TenantID {
		v.Add("client_id", "not_found", "no such user")
	}
	if err := v.Err(); err != nil {
		return Result{}, err
	}
	p := domain.NewPolicy(t, r)
	loc := p.Location()
	settings := p.Settings()
	exp, err := expandSeries(req, rec, loc, settings.MaxOccurrences)
	if err != nil {
		return Result{}, err
	}
	ws := newWorkset(h)
	// One round trip for every bucket (and day counter) of the series.
	var streams, days []string
	for _, iv := range exp.intervals {
		occStart, occEnd := p.Occupied(iv.Start, iv.End)
		streams = append(streams, domain.ScheduleStreams(req.ResourceID, occStart, occEnd)...)
		if settings.MaxBookingsPerClientPerDay > 0 {
			days = append(days, domain.ClientDayStream(meta.TenantID, req.ClientID, domain.LocalDate(iv.Start, loc)))
		}
	}
	if _, _, err := ws.buckets(ctx, streams); err != nil {
		return Result{}, err
	}
	if err := ws.loadMissing(ctx, days, func(string) aggregate { return domain.NewClientDay() }); err != nil {
		return Result{}, err
	}
	now := h.Now()
	var booked []domain.Occurrence
	var views []domain.BookingView
	var failures []domain.OccurrenceFailure
	for _, iv := range exp.intervals {
		bid := occurrenceID(id, iv.Start)
		oreq := req
		oreq.Start, oreq.End, oreq.SeriesID, oreq.OccurrenceStart = iv.Start, iv.End, id, iv.Start
		occStart, occEnd := p.Occupied(iv.Start, iv.End)
		_, occ, err := ws.occupancy(ctx, req.ResourceID, occStart, occEnd)
		if err != nil {
			return Result{}, err
		}
		b, err := domain.NewBooking(bid, oreq, p, occ, meta.Actor, now)
		if err == nil {
			err = ws.countBooking(ctx, meta.TenantID, b, settings.MaxBookingsPerClientPerDay)
		}
		if err != nil {
			if !occurrenceRefusal(err) {
				return Result{}, err
			}
			failures = append(failures, domain.NewOccurrenceFailure(iv.Start, iv.End, err))
			continue
		}
		ws.track(domain.BookingStream(bid), b)
		if err := ws.reserve(ctx, bid, b.ResourceID(), b.Start(), b.End(), occStart, occEnd, b.Seats()); err != nil {
			return Result{}, err
		}
		booked = append(booked, domain.Occurrence{BookingID: bid, OccurrenceStart: iv.Start, Start: iv.Start, End: iv.End})
		views = append(views, b.View())
	}
	if len(failures) > 0 && exp.plan.Policy == domain.SeriesAllOrNothing {
		return Result{}, &domain.SeriesError{Occurrences: failures}
	}
	if len(booked) == 0 {
		return Result{}, &domain.SeriesError{Occurrences: failures, Reason: "no occurrence of the series can be booked"}
	}
	s, err := domain.NewSeries(id, meta.TenantID, exp.plan, loc, booked, failures, exp.excluded, meta.Actor, now)
	if err != nil {
		return Result{}, err
	}
	ws.track(domain.SeriesStream(id), s)
	bt := &batch{meta: meta}
	if err := ws.addTo(bt); err != nil {
		return Result{}, err
	}
	res, err := h.commit(ctx, bt)
	if err != nil {
		return Result{}, err
	}
	return Result{ID: id, Version: s.Version(), Position: res.LastPosition, View: s.View(views, failures)}, nil
}

// occurrenceRefusal reports whether err refuses one occurrence (a rule or
// a conflict) rather than the whole request (bad input, no permission).
func occurrenceRefusal(err error) bool {
	var ve *domain.ValidationError
	if errors.As(err, &ve) {
		return false
	}
	if errors.Is(err, domain.ErrForbidden) || errors.Is(err, domain.ErrNotFound) {
		return false
	}
	var coded domain.Coded
	return errors.As(err, &coded)
}

// seriesView rebuilds the view of a committed series from its stream and
// its bookings.
func (h *Handlers) seriesView(ctx context.Context, tenantID, id uuid.UUID) (domain.SeriesView, error) {
	s := &domain.Series{}
	if err := h.load(ctx, domain.SeriesStream(id), s); err != nil {
		return domain.SeriesView{}, err
	}
	if s.TenantID() != tenantID {
		return domain.SeriesView{}, fmt.Errorf("series %s: %w", id, domain.ErrNotFound)
	}
	var views []domain.BookingView
	for _, o := range s.Occurrences() {
		b, err := h.loadBooking(ctx, tenantID, o.BookingID)
		if err != nil {
			return domain.SeriesView{}, err
		}
		views = append(views, b.View())
	}
	return s.View(views, nil), nil
}
