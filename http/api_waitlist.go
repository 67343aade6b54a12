package http

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/mux"

	"github.com/bookingengine/booking/commands"
	"github.com/bookingengine/booking/domain"
)

// registerWaitlist serves the waitlist of the contract on the tenant
// group:
//
//   - POST /waitlist {resource_id, client_id, start, end, seats} → 201 the
//     entry (promoted at once when the time is free already). Scope
//     bookings:write.
//   - GET /waitlist/{id}: the entry, with its place in line. Scope
//     bookings:read.
//   - GET /waitlist?resource_id=…[&client_id=…][&status=all]: the line of
//     a resource, first in line first ({"waitlist": […], "next_cursor"});
//     staff see every entry, a client its own. Waiting entries only unless
//     status=all. Scope bookings:read.
//   - DELETE /waitlist/{id}: leaves the line → 200 the entry. Scope
//     bookings:write.
func (a *API) registerWaitlist(t *mux.Router) {
	t.HandleFunc("/waitlist", a.joinWaitlist).Methods(http.MethodPost)
	t.HandleFunc("/waitlist", a.listWaitlist).Methods(http.MethodGet)
	t.HandleFunc("/waitlist/{id}", a.getWaitlistEntry).Methods(http.MethodGet)
	t.HandleFunc("/waitlist/{id}", a.leaveWaitlist).Methods(http.MethodDelete)
}

// waitlistInput is the body of POST /waitlist.
type waitlistInput struct {
	ResourceID uuid.UUID `json:"resource_id"`
	ClientID   uuid.UUID `json:"client_id"`
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	Seats      int       `json:"seats"`
}

func (a *API) joinWaitlist(w http.ResponseWriter, r *http.Request) {
	handle(w, r, func(ctx context.Context) error {
		if err := scope(r, ScopeBookingsWrite); err != nil {
			return err
		}
		var in waitlistInput
		if err := DecodeJSON(r, &in); err != nil {
			return err
		}
		if err := requireTimes(in.Start, in.End); err != nil {
			return err
		}
		res, err := a.cmd.JoinWaitlist(ctx, meta(r), commands.JoinWaitlist{Request: domain.WaitlistRequest{
			ResourceID: in.ResourceID, ClientID: in.ClientID, Start: in.Start, End: in.End, Seats: in.Seats,
		}})
		if err != nil {
			return err
		}
		respond(w, r, http.StatusCreated, res, "/waitlist/"+res.ID.String(), res.View)
		return nil
	})
}

func (a *API) getWaitlistEntry(w http.ResponseWriter, r *http.Request) {
	handle(w, r, func(ctx context.Context) error {
		if err := scope(r, ScopeBookingsRead); err != nil {
			return err
		}
		id, err := pathID(r)
		if err != nil {
			return err
		}
		e, err := a.cmd.WaitlistEntry(ctx, meta(r), id)
		if err != nil {
			return err
		}
		show(w, r, e.Version, e)
		return nil
	})
}

func (a *API) leaveWaitlist(w http.ResponseWriter, r *http.Request) {
	handle(w, r, func(ctx context.Context) error {
		if err := scope(r, ScopeBookingsWrite); err != nil {
			return err
		}
		id, err := pathID(r)
		if err != nil {
			return err
		}
		expected, err := ifMatch(r)
		if err != nil {
			return err
		}
		res, err := a.cmd.LeaveWaitlist(ctx, meta(r), commands.LeaveWaitlist{EntryID: id, ExpectedVersion: expected})
		if err != nil {
			return err
		}
		respond(w, r, http.StatusOK, res, "", res.View)
		return nil
	})
}

// waitlistPage is the answer of GET /waitlist.
type waitlistPage struct {
	Waitlist   []domain.WaitlistEntry `json:"waitlist"`
	NextCursor string                 `json:"next_cursor,omitempty"`
}

func (a *API) listWaitlist(w http.ResponseWriter, r *http.Request) {
	handle(w, r, func(ctx context.Context) error {
		if err := scope(r, ScopeBookingsRead); err != nil {
			return err
		}
		p := &params{v: r.URL.Query()}
		resource := p.uuid("resource_id")
		client := p.uuid("client_id")
		limit, offset := 50, 0
		if s := p.v.Get("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > 500 {
				p.bad("limit", "must be an integer between 1 and 500")
			}
			limit = n
		}
		if s := p.v.Get("cursor"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				p.bad("cursor", "is not a cursor this endpoint returned")
			}
			offset = n
		}
		if resource == uuid.Nil && len(p.problems) == 0 {
			p.problems = append(p.problems, FieldProblem{Field: "resource_id", Code: domain.FieldRequired, Message: "is required"})
		}
		if len(p.problems) > 0 {
			return Error(CodeValidationFailed, http.StatusBadRequest, "invalid query parameters", p.problems...)
		}
		entries, err := a.cmd.Waitlist(ctx, meta(r), resource, p.v.Get("status") == "all")
		if err != nil {
			return err
		}
		page := waitlistPage{Waitlist: []domain.WaitlistEntry{}}
		for i, e := range entries {
			if client != uuid.Nil && e.ClientID != client {
				continue
			}
			if i < offset {
				continue
			}
			if len(page.Waitlist) == limit {
				page.NextCursor = strconv.Itoa(i)
				break
			}
			page.Waitlist = append(page.Waitlist, e)
		}
		return WriteJSON(w, http.StatusOK, page)
	})
}
