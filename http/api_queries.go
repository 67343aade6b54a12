package http

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/queries"
)

// Queries are the read-side use cases that RegisterQueries serves.
type Queries struct {
	ListBookings queries.ListBookingsHandler
	FreeSlots    queries.FreeSlotsHandler
}

// RegisterQueries registers the read-side endpoints on s's tenant group:
//
//   - GET /bookings: a page of the tenant's bookings the caller may see,
//     filtered by resource_id, client_id, status (comma-separated or
//     repeated), from and to (bookings overlapping [from, to)), with limit
//     and cursor; {"bookings": […], "next_cursor": "…"}. Scope
//     bookings:read.
//   - GET /availability: the free slots of resource_id or category_id in
//     [from, to) for duration minutes; {"slots": [{resource_id, start,
//     end, seats_left}]}. Scope bookings:read or resources:read.
//
// Both honour X-Min-Position (504 timeout after queries.MaxWait). Query
// parameters that do not parse are 400 validation_failed naming the
// parameter; well-formed but unacceptable ones (a range over 31 days) are
// 422. GET /bookings/{id} stays with RegisterAPI, which reads the
// booking's stream and so needs no X-Min-Position. It must be called
// before s serves.
func RegisterQueries(s *Server, q Queries) {
	h := queryAPI{q: q}
	t := s.Tenant()
	t.HandleFunc("/bookings", h.listBookings).Methods(http.MethodGet)
	t.HandleFunc("/availability", h.freeSlots).Methods(http.MethodGet)
}

type queryAPI struct{ q Queries }

// viewer is the caller of a query.
func viewer(r *http.Request) queries.Viewer {
	m := meta(r)
	return queries.Viewer{TenantID: m.TenantID, UserID: m.Actor.ID, Role: m.Actor.Role}
}

// params parses query parameters, collecting every malformed one.
type params struct {
	v        url.Values
	problems []FieldProblem
}

func (p *params) bad(name, msg string) {
	p.problems = append(p.problems, FieldProblem{Field: name, Code: domain.FieldInvalid, Message: msg})
}

func (p *params) uuid(name string) uuid.UUID {
	s := p.v.Get(name)
	if s == "" {
		return uuid.Nil
	}
	id, err := uuid.Parse(s)
	if err != nil {
		p.bad(name, "must be a UUID")
	}
	return id
}

func (p *params) time(name string) time.Time {
	s := p.v.Get(name)
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		p.bad(name, "must be an RFC 3339 time with offset, e.g. 2026-12-01T09:00:00-03:00")
	}
	return t
}

func (p *params) int(name string) int {
	s := p.v.Get(name)
	if s == "" {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		p.bad(name, "must be an integer")
	}
	return n
}

// err returns the 400 for malformed parameters, or the X-Min-Position
// problem, or nil.
func (p *params) err(r *http.Request) (int64, error) {
	if len(p.problems) > 0 {
		return 0, Error(CodeValidationFailed, http.StatusBadRequest, "malformed query parameters", p.problems...)
	}
	pos, _, err := MinPosition(r)
	return pos, err
}

func (h queryAPI) listBookings(w http.ResponseWriter, r *http.Request) {
	handle(w, r, func(ctx context.Context) error {
		if err := scope(r, ScopeBookingsRead); err != nil {
			return err
		}
		p := &params{v: r.URL.Query()}
		q := queries.ListBookings{
			Viewer: viewer(r), ResourceID: p.uuid("resource_id"), ClientID: p.uuid("client_id"),
			From: p.time("from"), To: p.time("to"), Limit: p.int("limit"), Cursor: p.v.Get("cursor"),
		}
		for _, v := range p.v["status"] {
			for s := range strings.SplitSeq(v, ",") {
				if s = strings.TrimSpace(s); s != "" {
					q.Statuses = append(q.Statuses, domain.Status(s))
				}
			}
		}
		pos, err := p.err(r)
		if err != nil {
			return err
		}
		q.MinPosition = pos
		page, err := h.q.ListBookings.Handle(ctx, q)
		if err != nil {
			return err
		}
		return WriteJSON(w, http.StatusOK, page)
	})
}

func (h queryAPI) freeSlots(w http.ResponseWriter, r *http.Request) {
	handle(w, r, func(ctx context.Context) error {
		if err := scope(r, ScopeBookingsRead); err != nil {
			if scope(r, ScopeResourcesRead) != nil {
				return err
			}
		}
		p := &params{v: r.URL.Query()}
		q := queries.FreeSlots{
			Viewer: viewer(r), ResourceID: p.uuid("resource_id"), CategoryID: p.uuid("category_id"),
			From: p.time("from"), To: p.time("to"), Duration: time.Duration(p.int("duration")) * time.Minute,
		}
		pos, err := p.err(r)
		if err != nil {
			return err
		}
		q.MinPosition = pos
		res, err := h.q.FreeSlots.Handle(ctx, q)
		if err != nil {
			return err
		}
		return WriteJSON(w, http.StatusOK, res)
	})
}
