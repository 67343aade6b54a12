package queries

import (
	"context"
	"time"

	"github.com/bookingengine/booking/domain"
)

// BookingsReport is GET /reports/bookings: per group, the bookings that
// start in the range by status, with booked minutes, cancellation rate
// and lead time.
type BookingsReport struct {
	From     time.Time           `json:"from"`
	To       time.Time           `json:"to"`
	GroupBy  ReportGroup         `json:"group_by"`
	Timezone string              `json:"timezone"`
	Rows     []BookingsReportRow `json:"rows"`
}

// BookingsReportRow is one group of BookingsReport. Total (also Created)
// counts every booking; ByStatus counts them by current status;
// Confirmed counts those ever confirmed; BookedMinutes and the lead time
// are as BookingStats defines them. CancellationRate (cancelled / total)
// and LeadTime are absent when the group has no booking.
type BookingsReportRow struct {
	Key              string                `json:"key"`
	Name             string                `json:"name,omitempty"`
	Total            int                   `json:"total"`
	ByStatus         map[domain.Status]int `json:"by_status"`
	Created          int                   `json:"created"`
	Confirmed        int                   `json:"confirmed"`
	Cancelled        int                   `json:"cancelled"`
	LateCancelled    int                   `json:"late_cancelled"`
	NoShow           int                   `json:"no_show"`
	Completed        int                   `json:"completed"`
	BookedMinutes    int64                 `json:"booked_minutes"`
	CancellationRate *float64              `json:"cancellation_rate,omitempty"`
	LeadTime         *LeadTime             `json:"lead_time_minutes,omitempty"`
}

// LeadTime summarises the minutes from creation to start of a group's
// bookings: mean, median and 90th percentile (nearest rank).
type LeadTime struct {
	Avg float64 `json:"avg"`
	P50 int64   `json:"p50"`
	P90 int64   `json:"p90"`
}

// statuses are every booking status, in the order of the lifecycle.
var statuses = []domain.Status{domain.StatusPending, domain.StatusConfirmed, domain.StatusCheckedIn, domain.StatusCompleted,
	domain.StatusNoShow, domain.StatusCancelled, domain.StatusRejected}

// BookingsReportHandler answers ReportQuery with a BookingsReport.
type BookingsReportHandler struct {
	readModel ReportReadModel
	wait      Waiter
}

// NewBookingsReportHandler returns the handler; wait covers the reports
// read model.
func NewBookingsReportHandler(readModel ReportReadModel, wait Waiter) BookingsReportHandler {
	return BookingsReportHandler{readModel: readModel, wait: wait}
}

// Handle returns the report over the bookings that start in [From, To);
// days are the tenant's local dates. Errors: *domain.ValidationError
// (from or to missing or out of order, a range over MaxReportRange, an
// unknown group_by); ErrTimeout; domain.ErrForbidden for a viewer that is
// not staff; domain.ErrNotFound for an unknown tenant; the read model's.
func (h BookingsReportHandler) Handle(ctx context.Context, q ReportQuery) (BookingsReport, error) {
	r, err := openReport(ctx, q, h.readModel, h.wait)
	if err != nil {
		return BookingsReport{}, err
	}
	stats, err := r.stats(ctx, h.readModel)
	if err != nil {
		return BookingsReport{}, err
	}
	out := BookingsReport{From: r.q.From, To: r.q.To, GroupBy: r.q.GroupBy, Timezone: r.loc.String(), Rows: []BookingsReportRow{}}
	for _, g := range r.rows(stats) {
		out.Rows = append(out.Rows, bookingsRow(g, stats[g.key]))
	}
	return out, nil
}

func bookingsRow(g reportGroup, s BookingStats) BookingsReportRow {
	row := BookingsReportRow{Key: g.key, Name: g.name, ByStatus: make(map[domain.Status]int, len(statuses)),
		Confirmed: s.Confirmed, LateCancelled: s.LateCancelled, BookedMinutes: s.BookedMinutes}
	for _, st := range statuses {
		row.ByStatus[st] = s.ByStatus[st]
	}
	row.Total = s.Created()
	row.Created = row.Total
	row.Cancelled, row.NoShow, row.Completed = s.ByStatus[domain.StatusCancelled], s.ByStatus[domain.StatusNoShow], s.ByStatus[domain.StatusCompleted]
	if row.Total > 0 {
		rate := float64(row.Cancelled) / float64(row.Total)
		row.CancellationRate = &rate
		row.LeadTime = &LeadTime{Avg: float64(s.LeadSum) / float64(row.Total), P50: s.LeadP50, P90: s.LeadP90}
	}
	return row
}
