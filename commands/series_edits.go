package commands

import (
	"context"
	"time"

	"github.com/bookingengine/booking/domain"
	"github.com/google/uuid"
)

// seriesEdit is what a cancel or reschedule with scope following or all
// loads: the booking the caller named (the pivot), its series, the policy
// and the series' bookings in scope, pivot first.
type seriesEdit struct {
	pivot   *domain.Booking
	series  *domain.Series
	policy  domain.Policy
	targets []*domain.Booking
}

// loadSeriesEdit loads the pivot (with the caller's visibility and
// If-Match), its series and the bookings the scope names: from the
// pivot's occurrence on for following; every occurrence that has not
// started for all. Bookings that are no longer pending or confirmed are
// left out, except the pivot, whose own command reports why it cannot
// change.
func (h *Handlers) loadSeriesEdit(ctx context.Context, meta Meta, id uuid.UUID, expected *int64, scope domain.Scope) (seriesEdit, error) {
	pivot, err := h.Booking(ctx, meta, id)
	if err != nil {
		return seriesEdit{}, err
	}
	if err := checkVersion(expected, pivot.Version()); err != nil {
		return seriesEdit{}, err
	}
	if pivot.SeriesID() == uuid.Nil {
		var v domain.ValidationError
		v.Addf("scope", domain.FieldInvalid, "the booking is not an occurrence of a series; scope %s does not apply", scope)
		return seriesEdit{}, v.Err()
	}
	s := &domain.Series{}
	if err := h.load(ctx, domain.SeriesStream(pivot.SeriesID()), s); err != nil {
		return seriesEdit{}, err
	}
	p, err := h.policy(ctx, meta.TenantID, pivot.ResourceID())
	if err != nil {
		return seriesEdit{}, err
	}
	now := h.Now()
	loads := map[string]aggregate{}
	bookings := map[uuid.UUID]*domain.Booking{}
	for _, o := range s.Occurrences() {
		if o.BookingID == pivot.ID() {
			continue
		}
		if scope == domain.ScopeFollowing && o.OccurrenceStart.Before(pivot.OccurrenceStart()) {
			continue
		}
		b := &domain.Booking{}
		bookings[o.BookingID] = b
		loads[domain.BookingStream(o.BookingID)] = b
	}
	if err := h.loadAll(ctx, loads); err != nil {
		return seriesEdit{}, err
	}
	edit := seriesEdit{pivot: pivot, series: s, policy: p, targets: []*domain.Booking{pivot}}
	for _, o := range s.Occurrences() {
		b, ok := bookings[o.BookingID]
		if !ok || b.Version() == 0 || !b.IsActive() || b.Status() == domain.StatusCheckedIn {
			continue
		}
		if scope == domain.ScopeAll && !b.Start().After(now) {
			continue
		}
		edit.targets = append(edit.targets, b)
	}
	return edit, nil
}

// cancelSeriesOnce cancels the occurrences a scope names, all or none, in
// one append with their bucket releases, the series event and the
// waitlist promotions.
func (h *Handlers) cancelSeriesOnce(ctx context.Context, meta Meta, cmd ChangeBookingStatus) (Result, error) {
	edit, err := h.loadSeriesEdit(ctx, meta, cmd.BookingID, cmd.ExpectedVersion, cmd.Scope)
	if err != nil {
		return Result{}, err
	}
	now := h.Now()
	ws := newWorkset(h)
	var failures []domain.OccurrenceFailure
	var freed []domain.Interval
	var ids []uuid.UUID
	for _, b := range edit.targets {
		if err := b.CancelScoped(meta.Actor, cmd.Reason, cmd.Scope, edit.policy, now); err != nil {
			if b == edit.pivot || !occurrenceRefusal(err) {
				return Result{}, err
			}
			failures = append(failures, domain.NewOccurrenceFailure(b.Start(), b.End(), err))
			continue
		}
		ws.track(domain.BookingStream(b.ID()), b)
		occStart, occEnd := b.OccupiedInterval()
		if err := ws.release(ctx, b.ID(), b.ResourceID(), occStart, occEnd); err != nil {
			return Result{}, err
		}
		if err := ws.uncountBooking(ctx, meta.TenantID, b, b.LocalDate()); err != nil {
			return Result{}, err
		}
		freed = append(freed, domain.Interval{Start: occStart, End: occEnd})
		ids = append(ids, b.ID())
	}
	if len(failures) > 0 {
		return Result{}, &domain.SeriesError{Occurrences: failures, Reason: "the series cannot be cancelled"}
	}
	from := edit.pivot.OccurrenceStart()
	if cmd.Scope == domain.ScopeAll && len(edit.targets) > 0 {
		from = earliestOccurrence(edit.targets)
	}
	if err := edit.series.RecordCancelled(cmd.Scope, from, ids, cmd.Reason, meta.Actor, now); err != nil {
		return Result{}, err
	}
	ws.track(domain.SeriesStream(edit.series.ID()), edit.series)
	if err := h.promoteWaitlist(ctx, ws, edit.policy, freed, now); err != nil {
		return Result{}, err
	}
	return h.commitSeriesEdit(ctx, meta, ws, edit.pivot)
}

// rescheduleSeriesOnce moves the occurrences a scope names by the pivot's
// wall-clock offset, all or none.
func (h *Handlers) rescheduleSeriesOnce(ctx context.Context, meta Meta, cmd RescheduleBooking) (Result, error) {
	edit, err := h.loadSeriesEdit(ctx, meta, cmd.BookingID, cmd.ExpectedVersion, cmd.Scope)
	if err != nil {
		return Result{}, err
	}
	p, pivot := edit.policy, edit.pivot
	loc := p.Location()
	if !cmd.Start.Before(cmd.End) {
		var v domain.ValidationError
		v.Add("end", domain.FieldInvalid, "must be after start")
		return Result{}, v.Err()
	}
	offset := domain.WallClock(cmd.Start, loc).Sub(domain.WallClock(pivot.Start(), loc))
	duration := cmd.End.Sub(cmd.Start)
	shift := func(t time.Time) time.Time { return domain.WallInstant(domain.WallClock(t, loc).Add(offset), loc) }
	now := h.Now()

	pivotOccurrence := pivot.OccurrenceStart()
	newSeriesID := edit.series.ID()
	if cmd.Scope == domain.ScopeFollowing {
		newSeriesID = DeriveID(meta, "series-split")
	}
	// Release every moving occurrence first, so that occurrences may move
	// into each other's old time; then check and reserve each new time.
	ws := newWorkset(h)
	type old struct {
		start, end time.Time
		date       string
	}
	olds := make([]old, len(edit.targets))
	for i, b := range edit.targets {
		occStart, occEnd := b.OccupiedInterval()
		olds[i] = old{occStart, occEnd, b.LocalDate()}
		if err := ws.release(ctx, b.ID(), b.ResourceID(), occStart, occEnd); err != nil {
			return Result{}, err
		}
	}
	var failures []domain.OccurrenceFailure
	var moved []domain.Occurrence
	var ids []uuid.UUID
	freed := make([]domain.Interval, 0, len(edit.targets))
	for i, b := range edit.targets {
		start := shift(b.Start())
		end := start.Add(duration)
		if b == pivot {
			start, end = cmd.Start, cmd.End
		}
		occurrence := shift(b.OccurrenceStart())
		newStart, newEnd := p.Occupied(start, end)
		_, occ, err := ws.occupancy(ctx, b.ResourceID(), newStart, newEnd)
		if err != nil {
			return Result{}, err
		}
		move := domain.SeriesMove{Scope: cmd.Scope, OccurrenceStart: occurrence}
		if newSeriesID != edit.series.ID() {
			move.SeriesID = newSeriesID
		}
		if err := b.RescheduleIn(start, end, cmd.Reason, move, p, occ, meta.Actor, now); err != nil {
			if b == pivot || !occurrenceRefusal(err) {
				return Result{}, err
			}
			failures = append(failures, domain.NewOccurrenceFailure(start, end, err))
			continue
		}
		ws.track(domain.BookingStream(b.ID()), b)
		movedStart, movedEnd := b.OccupiedInterval()
		if err := ws.reserve(ctx, b.ID(), b.ResourceID(), b.Start(), b.End(), movedStart, movedEnd, b.Seats()); err != nil {
			return Result{}, err
		}
		if b.LocalDate() != olds[i].date {
			if err := ws.uncountBooking(ctx, meta.TenantID, b, olds[i].date); err != nil {
				return Result{}, err
			}
			if err := ws.countBooking(ctx, meta.TenantID, b, p.Settings().MaxBookingsPerClientPerDay); err != nil {
				failures = append(failures, domain.NewOccurrenceFailure(start, end, err))
				continue
			}
		}
		freed = append(freed, domain.Interval{Start: olds[i].start, End: olds[i].end})
		moved = append(moved, domain.Occurrence{BookingID: b.ID(), OccurrenceStart: b.OccurrenceStart(), Start: b.Start(), End: b.End()})
		ids = append(ids, b.ID())
	}
	if len(failures) > 0 {
		return Result{}, &domain.SeriesError{Occurrences: failures, Reason: "the series cannot be moved"}
	}
	if err := h.recordSeriesMove(meta, ws, edit, pivotOccurrence, cmd.Scope, newSeriesID, offset, duration, moved, ids, now); err != nil {
		return Result{}, err
	}
	if err := h.promoteWaitlist(ctx, ws, p, freed, now); err != nil {
		return Result{}, err
	}
	return h.commitSeriesEdit(ctx, meta, ws, pivot)
}

// recordSeriesMove records the series side of a moved scope: for all, the
// series' rule moves with its occurrences; for following, the series ends
// before from (the pivot's occurrence start before the move) and the moved
// occurrences form a new series linked to it.
func (h *Handlers) recordSeriesMove(meta Meta, ws *workset, edit seriesEdit, from time.Time, scope domain.Scope, newSeriesID uuid.UUID, offset, duration time.Duration, moved []domain.Occurrence, ids []uuid.UUID, now time.Time) error {
	s := edit.series
	minutes := int(duration / time.Minute)
	ws.track(domain.SeriesStream(s.ID()), s)
	if scope == domain.ScopeAll {
		rule, err := shiftRule(s.RRule(), offset, time.Time{})
		if err != nil {
			return err
		}
		return s.RecordRescheduled(rule, s.DTStart().Add(offset), minutes, moved, meta.Actor, now)
	}
	last := moved[len(moved)-1].OccurrenceStart
	for _, o := range moved {
		if o.OccurrenceStart.After(last) {
			last = o.OccurrenceStart
		}
	}
	tail, err := shiftRule(s.RRule(), offset, last)
	if err != nil {
		return err
	}
	head, err := truncateRule(s.RRule(), from)
	if err != nil {
		return err
	}
	if err := s.RecordSplit(newSeriesID, from, head, ids, meta.Actor, now); err != nil {
		return err
	}
	first := edit.pivot
	plan := domain.SeriesPlan{
		Request: domain.BookingRequest{ResourceID: first.ResourceID(), ClientID: first.ClientID(), Start: first.Start(), End: first.Start().Add(duration)},
		RRule:   tail, DTStart: domain.WallClock(first.OccurrenceStart(), s.Location()), Policy: domain.SeriesAllOrNothing,
		ParentSeriesID: s.ID(),
	}
	// The tail's rule also yields the moved times of the occurrences that
	// did not move with it (excluded, skipped or cancelled before): its
	// series.created names them as excluded, as the original's did.
	excluded, err := ruleGaps(tail, plan.DTStart, s.Location(), moved)
	if err != nil {
		return err
	}
	ns, err := domain.NewSeries(newSeriesID, meta.TenantID, plan, s.Location(), moved, nil, excluded, meta.Actor, now)
	if err != nil {
		return err
	}
	ws.track(domain.SeriesStream(newSeriesID), ns)
	return nil
}

func earliestOccurrence(bs []*domain.Booking) time.Time {
	first := bs[0].OccurrenceStart()
	for _, b := range bs[1:] {
		if b.OccurrenceStart().Before(first) {
			first = b.OccurrenceStart()
		}
	}
	return first
}

// commitSeriesEdit appends a series edit and answers with the pivot.
func (h *Handlers) commitSeriesEdit(ctx context.Context, meta Meta, ws *workset, pivot *domain.Booking) (Result, error) {
	bt := &batch{meta: meta}
	if err := ws.addTo(bt); err != nil {
		return Result{}, err
	}
	res, err := h.commit(ctx, bt)
	if err != nil {
		return Result{}, bookingStreamMismatch(err, domain.BookingStream(pivot.ID()))
	}
	return Result{ID: pivot.ID(), Version: pivot.Version(), Position: res.LastPosition, View: pivot.View()}, nil
}
