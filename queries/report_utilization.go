package queries

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/bookingengine/booking/domain"
)

// UtilizationReport is GET /reports/utilization: per group, the seat
// minutes booked against the seat minutes the schedule offered.
type UtilizationReport struct {
	From     time.Time        `json:"from"`
	To       time.Time        `json:"to"`
	GroupBy  ReportGroup      `json:"group_by"`
	Timezone string           `json:"timezone"`
	Rows     []UtilizationRow `json:"rows"`
}

// UtilizationRow is one group of UtilizationReport. BookedMinutes are as
// BookingStats defines them (bookings counted on the day they start);
// AvailableMinutes sum, over the group's resources, the bookable time in
// the range (domain.Policy.Windows: business hours minus closures,
// intersected with the resource's availability, as the schedule stands
// now) times the resource's capacity. Utilization is BookedMinutes /
// AvailableMinutes, absent when nothing was available.
type UtilizationRow struct {
	Key              string   `json:"key"`
	Name             string   `json:"name,omitempty"`
	BookedMinutes    int64    `json:"booked_minutes"`
	AvailableMinutes int64    `json:"available_minutes"`
	Utilization      *float64 `json:"utilization,omitempty"`
}

// UtilizationReportHandler answers ReportQuery with a UtilizationReport
// from the reports read model and the policies of the catalog.
type UtilizationReportHandler struct {
	readModel ReportReadModel
	policies  PolicyReadModel
	wait      Waiter
}

// NewUtilizationReportHandler returns the handler; wait covers both read
// models.
func NewUtilizationReportHandler(readModel ReportReadModel, policies PolicyReadModel, wait Waiter) UtilizationReportHandler {
	return UtilizationReportHandler{readModel: readModel, policies: policies, wait: wait}
}

// Handle returns the report. Availability is read from each resource's
// policy as it is now (settings, hours, closures, availability, capacity,
// active flag), not as it was on past days: a deactivated resource offers
// nothing. Errors: those of BookingsReportHandler.Handle, and the policy
// read model's.
func (h UtilizationReportHandler) Handle(ctx context.Context, q ReportQuery) (UtilizationReport, error) {
	r, err := openReport(ctx, q, h.readModel, h.wait)
	if err != nil {
		return UtilizationReport{}, err
	}
	stats, err := r.stats(ctx, h.readModel)
	if err != nil {
		return UtilizationReport{}, err
	}
	avail, err := h.available(ctx, r)
	if err != nil {
		return UtilizationReport{}, err
	}
	out := UtilizationReport{From: r.q.From, To: r.q.To, GroupBy: r.q.GroupBy, Timezone: r.loc.String(), Rows: []UtilizationRow{}}
	for i, g := range r.rows(stats) {
		var offered time.Duration
		if r.q.GroupBy == GroupByDay {
			offered = avail.byDay[i]
		}
		for _, id := range g.resources {
			offered += avail.byResource[id]
		}
		row := UtilizationRow{Key: g.key, Name: g.name, BookedMinutes: stats[g.key].BookedMinutes, AvailableMinutes: int64(offered / time.Minute)}
		if row.AvailableMinutes > 0 {
			u := float64(row.BookedMinutes) / float64(row.AvailableMinutes)
			row.Utilization = &u
		}
		out.Rows = append(out.Rows, row)
	}
	return out, nil
}

// availability is the seat time offered in the range, by resource and by
// day (index of reportRange.days).
type availability struct {
	byResource map[uuid.UUID]time.Duration
	byDay      []time.Duration
}

// available computes every resource's bookable seat time in the range,
// split by day.
func (h UtilizationReportHandler) available(ctx context.Context, r *reportRange) (availability, error) {
	res := r.catalog.Resources
	perResource := make([]time.Duration, len(res))
	perDay := make([][]time.Duration, len(res))
	errs := make([]error, len(res))
	forEach(len(res), func(i int) {
		p, err := h.policies.ResourcePolicy(ctx, r.q.Viewer.TenantID, res[i].ID)
		if errors.Is(err, domain.ErrNotFound) {
			return // not in the catalog yet: it offers nothing so far
		}
		if err != nil {
			errs[i] = err
			return
		}
		seats := time.Duration(p.Capacity())
		windows := p.Windows(r.q.From, r.q.To)
		perDay[i] = make([]time.Duration, len(r.days))
		for _, w := range windows {
			perResource[i] += w.End.Sub(w.Start) * seats
		}
		if r.q.GroupBy == GroupByDay {
			// Windows and days are both sorted and disjoint.
			first := 0
			for d, day := range r.days {
				for first < len(windows) && !windows[first].End.After(day.Start) {
					first++
				}
				for _, w := range windows[first:] {
					if !w.Start.Before(day.End) {
						break
					}
					perDay[i][d] += minTime(w.End, day.End).Sub(maxTime(w.Start, day.Start)) * seats
				}
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return availability{}, err
	}
	out := availability{byResource: make(map[uuid.UUID]time.Duration, len(res)), byDay: make([]time.Duration, len(r.days))}
	for i, rs := range res {
		if r.q.GroupBy == GroupByDay {
			for d, v := range perDay[i] {
				out.byDay[d] += v
			}
			continue
		}
		out.byResource[rs.ID] = perResource[i]
	}
	return out, nil
}
