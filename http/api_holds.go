package http

import (
	"context"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/mux"

	"github.com/bookingengine/booking/commands"
	"github.com/bookingengine/booking/domain"
)

// registerHolds serves the holds of the contract on the tenant group:
//
//   - POST /holds {resource_id, start, end, seats, ttl_minutes} → 201 the
//     hold, with id and expires_at; staff may name a client_id, a client
//     holds for itself. Scope bookings:write.
//   - GET /holds/{id}: the hold (staff, the professional of its resource,
//     its client). Scope bookings:read.
//   - DELETE /holds/{id}: releases it (If-Match honoured) → 200 the hold;
//     releasing an ended hold is a no-op, a consumed one 409. Scope
//     bookings:write.
func (a *API) registerHolds(t *mux.Router) {
	t.HandleFunc("/holds", a.placeHold).Methods(http.MethodPost)
	t.HandleFunc("/holds/{id}", a.getHold).Methods(http.MethodGet)
	t.HandleFunc("/holds/{id}", a.releaseHold).Methods(http.MethodDelete)
}

// holdInput is the body of POST /holds.
type holdInput struct {
	ResourceID uuid.UUID `json:"resource_id"`
	ClientID   uuid.UUID `json:"client_id"`
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	Seats      int       `json:"seats"`
	TTLMinutes int       `json:"ttl_minutes"`
}

func (a *API) placeHold(w http.ResponseWriter, r *http.Request) {
	handle(w, r, func(ctx context.Context) error {
		if err := scope(r, ScopeBookingsWrite); err != nil {
			return err
		}
		var in holdInput
		if err := DecodeJSON(r, &in); err != nil {
			return err
		}
		if err := requireTimes(in.Start, in.End); err != nil {
			return err
		}
		res, err := a.cmd.PlaceHold(ctx, meta(r), commands.PlaceHold{Request: domain.HoldRequest{
			ResourceID: in.ResourceID, ClientID: in.ClientID, Start: in.Start, End: in.End,
			Seats: in.Seats, TTLMinutes: in.TTLMinutes,
		}})
		if err != nil {
			return err
		}
		respond(w, r, http.StatusCreated, res, "/holds/"+res.ID.String(), res.View)
		return nil
	})
}

func (a *API) getHold(w http.ResponseWriter, r *http.Request) {
	handle(w, r, func(ctx context.Context) error {
		if err := scope(r, ScopeBookingsRead); err != nil {
			return err
		}
		id, err := pathID(r)
		if err != nil {
			return err
		}
		h, err := a.cmd.Hold(ctx, meta(r), id)
		if err != nil {
			return err
		}
		show(w, r, h.Version(), h.View())
		return nil
	})
}

func (a *API) releaseHold(w http.ResponseWriter, r *http.Request) {
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
		res, err := a.cmd.ReleaseHold(ctx, meta(r), commands.ReleaseHold{HoldID: id, ExpectedVersion: expected})
		if err != nil {
			return err
		}
		respond(w, r, http.StatusOK, res, "", res.View)
		return nil
	})
}
