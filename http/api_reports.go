package http

import (
	"context"
	"net/http"

	"github.com/bookingengine/booking/queries"
)

// Reports are the BI report use cases that RegisterReports serves.
type Reports struct {
	Bookings    queries.BookingsReportHandler
	Utilization queries.UtilizationReportHandler
}

// RegisterReports registers the report endpoints on s's tenant group, for
// staff with scope reports:read:
//
//   - GET /reports/bookings?from&to&group_by=resource|category|day: per
//     group, the bookings that start in [from, to) by status, booked
//     minutes, cancellation rate and lead time;
//   - GET /reports/utilization?from&to&group_by=…: per group, booked
//     against available seat minutes.
//
// from and to are required (RFC 3339; at most 366 days apart); group_by
// defaults to day, in the tenant's zone. Malformed parameters are 400
// validation_failed naming them; a missing or out-of-range from or to or
// an unknown group_by is 422. Both honour X-Min-Position. It must be
// called before s serves.
func RegisterReports(s *Server, rep Reports) {
	h := reportAPI{r: rep}
	t := s.Tenant()
	t.HandleFunc("/reports/bookings", h.bookings).Methods(http.MethodGet)
	t.HandleFunc("/reports/utilization", h.utilization).Methods(http.MethodGet)
}

type reportAPI struct{ r Reports }

// query parses a report's parameters after checking the scope.
func (reportAPI) query(r *http.Request) (queries.ReportQuery, error) {
	if err := scope(r, ScopeReportsRead); err != nil {
		return queries.ReportQuery{}, err
	}
	p := &params{v: r.URL.Query()}
	q := queries.ReportQuery{Viewer: viewer(r), From: p.time("from"), To: p.time("to"),
		GroupBy: queries.ReportGroup(p.v.Get("group_by"))}
	pos, err := p.err(r)
	q.MinPosition = pos
	return q, err
}

func (h reportAPI) bookings(w http.ResponseWriter, r *http.Request) {
	handle(w, r, func(ctx context.Context) error {
		q, err := h.query(r)
		if err != nil {
			return err
		}
		rep, err := h.r.Bookings.Handle(ctx, q)
		if err != nil {
			return err
		}
		return WriteJSON(w, http.StatusOK, rep)
	})
}

func (h reportAPI) utilization(w http.ResponseWriter, r *http.Request) {
	handle(w, r, func(ctx context.Context) error {
		q, err := h.query(r)
		if err != nil {
			return err
		}
		rep, err := h.r.Utilization.Handle(ctx, q)
		if err != nil {
			return err
		}
		return WriteJSON(w, http.StatusOK, rep)
	})
}
