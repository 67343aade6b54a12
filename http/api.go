package http

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/bookingengine/booking/commands"
	"github.com/bookingengine/booking/domain"
	"github.com/google/uuid"
	"github.com/gorilla/mux"
)

// API serves the command side of the contract: tenants, settings, resource
// categories, resources and their availability, users and the booking
// lifecycle. Reads of single objects rebuild the aggregate from its stream,
// so they are always current.
type API struct {
	cmd *commands.Handlers
}

// RegisterAPI registers every command endpoint on s. It must be called
// before s serves.
func RegisterAPI(s *Server, cmd *commands.Handlers) *API {
	a := &API{cmd: cmd}
	au := s.Authenticated()
	au.HandleFunc("/tenants", a.createTenant).Methods(http.MethodPost)
	au.HandleFunc("/tenants/{id}", getByID(ScopeTenantsRead, cmd.Tenant)).Methods(http.MethodGet)
	au.HandleFunc("/tenants/{id}/settings", a.getSettings).Methods(http.MethodGet)
	au.HandleFunc("/tenants/{id}/settings", a.putSettings).Methods(http.MethodPut)

	t := s.Tenant()
	t.HandleFunc("/resource-categories", a.createCategory).Methods(http.MethodPost)
	t.HandleFunc("/resource-categories/{id}", getByID(ScopeResourcesRead, cmd.ResourceCategory)).Methods(http.MethodGet)
	t.HandleFunc("/resources", a.createResource).Methods(http.MethodPost)
	t.HandleFunc("/resources/{id}", getByID(ScopeResourcesRead, cmd.Resource)).Methods(http.MethodGet)
	t.HandleFunc("/resources/{id}", a.patchResource).Methods(http.MethodPatch)
	t.HandleFunc("/resources/{id}", a.deactivateResource).Methods(http.MethodDelete)
	t.HandleFunc("/resources/{id}/availability", a.getAvailability).Methods(http.MethodGet)
	t.HandleFunc("/resources/{id}/availability", a.putAvailability).Methods(http.MethodPut)
	t.HandleFunc("/users", a.createUser).Methods(http.MethodPost)
	t.HandleFunc("/users/{id}", getByID(ScopeUsersRead, cmd.User)).Methods(http.MethodGet)
	t.HandleFunc("/users/{id}", a.patchUser).Methods(http.MethodPatch)
	t.HandleFunc("/bookings", a.createBooking).Methods(http.MethodPost)
	t.HandleFunc("/bookings/{id}", getByID(ScopeBookingsRead, cmd.Booking)).Methods(http.MethodGet)
	t.HandleFunc("/bookings/{id}/history", a.bookingHistory).Methods(http.MethodGet)
	t.HandleFunc("/bookings/{id}/reschedule", a.reschedule).Methods(http.MethodPost)
	t.HandleFunc("/bookings/{id}/{action:cancel|confirm|reject|check-in|complete|no-show}", a.bookingAction).Methods(http.MethodPost)
	a.registerHolds(t)
	a.registerWaitlist(t)
	return a
}

// meta builds the command metadata of a request: who acts, in which
// tenant, under which correlation and idempotency key.
func meta(r *http.Request) commands.Meta {
	p, _ := PrincipalFrom(r.Context())
	tenant := TenantFrom(r.Context())
	if tenant == uuid.Nil {
		tenant = p.TenantID
	}
	return commands.Meta{
		TenantID:       tenant,
		Actor:          domain.Actor{ID: p.UserID, Role: domain.Role(p.Role)},
		CorrelationID:  CorrelationIDFrom(r.Context()),
		CausationID:    RequestIDFrom(r.Context()),
		RequestID:      RequestIDFrom(r.Context()),
		IdempotencyKey: IdempotencyKeyFrom(r.Context()),
	}
}

// pathID parses the {id} route variable; a malformed id is a 404, since no
// object can have it.
func pathID(r *http.Request) (uuid.UUID, error) {
	id, err := uuid.Parse(mux.Vars(r)["id"])
	if err != nil {
		return uuid.Nil, Error(CodeNotFound, 0, "no object with id "+mux.Vars(r)["id"])
	}
	return id, nil
}

// scope checks that the token grants scope.
func scope(r *http.Request, s string) error {
	p, _ := PrincipalFrom(r.Context())
	return Authorize(p, s)
}

// ifMatch returns the If-Match version as the command's expectation.
func ifMatch(r *http.Request) (*int64, error) {
	v, present, err := IfMatchVersion(r)
	if err != nil || !present || v < 0 {
		return nil, err
	}
	return &v, nil
}

// respond writes a command's answer: the object, its ETag and X-Position,
// and Location for a creation.
func respond(w http.ResponseWriter, r *http.Request, status int, res commands.Result, location string, view any) {
	SetPosition(w, res.Position)
	w.Header().Set("ETag", ETag(res.Version))
	if location != "" {
		w.Header().Set("Location", location)
	}
	if err := WriteJSON(w, status, view); err != nil {
		LoggerFrom(r.Context()).DebugContext(r.Context(), "write response", "error", err)
	}
}

// show writes an object read by a query with its ETag.
func show(w http.ResponseWriter, r *http.Request, version int64, view any) {
	w.Header().Set("ETag", ETag(version))
	if err := WriteJSON(w, http.StatusOK, view); err != nil {
		LoggerFrom(r.Context()).DebugContext(r.Context(), "write response", "error", err)
	}
}

// viewable is an aggregate as GET /{objects}/{id} shows it.
type viewable[V any] interface {
	Version() int64
	View() V
}

// getByID serves GET /{objects}/{id}: it checks the scope, loads the
// object the caller may see (another tenant's, or one the caller may not
// read, is a 404) and writes its view with its ETag.
func getByID[A viewable[V], V any](scopeName string, load func(context.Context, commands.Meta, uuid.UUID) (A, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		handle(w, r, func(ctx context.Context) error {
			if err := scope(r, scopeName); err != nil {
				return err
			}
			id, err := pathID(r)
			if err != nil {
				return err
			}
			obj, err := load(ctx, meta(r), id)
			if err != nil {
				return err
			}
			show(w, r, obj.Version(), obj.View())
			return nil
		})
	}
}

// handle runs fn and writes its error as a problem.
func handle(w http.ResponseWriter, r *http.Request, fn func(ctx context.Context) error) {
	if err := fn(r.Context()); err != nil {
		WriteError(w, r, err)
	}
}

// ---- tenants ----

func (a *API) createTenant(w http.ResponseWriter, r *http.Request) {
	handle(w, r, func(ctx context.Context) error {
		if err := scope(r, ScopeTenantsWrite); err != nil {
			return err
		}
		var in domain.TenantInput
		if err := DecodeJSON(r, &in); err != nil {
			return err
		}
		m := meta(r)
		res, err := a.cmd.CreateTenant(ctx, m, commands.CreateTenant{Input: in})
		if err != nil {
			return err
		}
		t, err := a.cmd.Tenant(ctx, commands.Meta{Actor: m.Actor, TenantID: res.ID}, res.ID)
		if err != nil {
			return err
		}
		respond(w, r, http.StatusCreated, res, "/tenants/"+res.ID.String(), t.View())
		return nil
	})
}

// settingsView is the settings document with the policy version it is.
type settingsView struct {
	domain.Settings
	PolicyVersion int `json:"policy_version"`
}

func (a *API) getSettings(w http.ResponseWriter, r *http.Request) {
	handle(w, r, func(ctx context.Context) error {
		if err := scope(r, ScopeTenantsRead); err != nil {
			return err
		}
		id, err := pathID(r)
		if err != nil {
			return err
		}
		t, err := a.cmd.Tenant(ctx, meta(r), id)
		if err != nil {
			return err
		}
		show(w, r, t.Version(), settingsView{Settings: t.Settings(), PolicyVersion: t.PolicyVersion()})
		return nil
	})
}

func (a *API) putSettings(w http.ResponseWriter, r *http.Request) {
	handle(w, r, func(ctx context.Context) error {
		if err := scope(r, ScopeTenantsWrite); err != nil {
			return err
		}
		id, err := pathID(r)
		if err != nil {
			return err
		}
		m := meta(r)
		if _, err := a.cmd.Tenant(ctx, m, id); err != nil {
			return err
		}
		var in domain.SettingsInput
		if err := DecodeJSON(r, &in); err != nil {
			return err
		}
		expected, err := ifMatch(r)
		if err != nil {
			return err
		}
		res, err := a.cmd.ChangeTenantSettings(ctx, m, commands.ChangeTenantSettings{TenantID: id, Settings: in, ExpectedVersion: expected})
		if err != nil {
			return err
		}
		t, err := a.cmd.Tenant(ctx, m, id)
		if err != nil {
			return err
		}
		res.Version = t.Version()
		respond(w, r, http.StatusOK, res, "", settingsView{Settings: t.Settings(), PolicyVersion: t.PolicyVersion()})
		return nil
	})
}

// ---- resource categories and resources ----

func (a *API) createCategory(w http.ResponseWriter, r *http.Request) {
	handle(w, r, func(ctx context.Context) error {
		if err := scope(r, ScopeResourcesWrite); err != nil {
			return err
		}
		var in domain.ResourceCategoryInput
		if err := DecodeJSON(r, &in); err != nil {
			return err
		}
		m := meta(r)
		res, err := a.cmd.CreateResourceCategory(ctx, m, commands.CreateResourceCategory{Input: in})
		if err != nil {
			return err
		}
		if res.View == nil {
			c, err := a.cmd.ResourceCategory(ctx, m, res.ID)
			if err != nil {
				return err
			}
			res.View = c.View()
		}
		respond(w, r, http.StatusCreated, res, "/resource-categories/"+res.ID.String(), res.View)
		return nil
	})
}

func (a *API) createResource(w http.ResponseWriter, r *http.Request) {
	handle(w, r, func(ctx context.Context) error {
		if err := scope(r, ScopeResourcesWrite); err != nil {
			return err
		}
		var in domain.ResourceInput
		if err := DecodeJSON(r, &in); err != nil {
			return err
		}
		m := meta(r)
		res, err := a.cmd.CreateResource(ctx, m, commands.CreateResource{Input: in})
		if err != nil {
			return err
		}
		return a.writeResource(w, r, http.StatusCreated, res, "/resources/"+res.ID.String())
	})
}

func (a *API) writeResource(w http.ResponseWriter, r *http.Request, status int, res commands.Result, location string) error {
	if res.View != nil {
		// The command's own result: what it just wrote, with no second read.
		respond(w, r, status, res, location, res.View)
		return nil
	}
	rs, err := a.cmd.Resource(r.Context(), meta(r), res.ID)
	if err != nil {
		return err
	}
	res.Version = rs.Version()
	respond(w, r, status, res, location, rs.View())
	return nil
}

func (a *API) patchResource(w http.ResponseWriter, r *http.Request) {
	handle(w, r, func(ctx context.Context) error {
		if err := scope(r, ScopeResourcesWrite); err != nil {
			return err
		}
		id, err := pathID(r)
		if err != nil {
			return err
		}
		var p domain.ResourcePatch
		if err := DecodeJSON(r, &p); err != nil {
			return err
		}
		expected, err := ifMatch(r)
		if err != nil {
			return err
		}
		res, err := a.cmd.UpdateResource(ctx, meta(r), commands.UpdateResource{ResourceID: id, Patch: p, ExpectedVersion: expected})
		if err != nil {
			return err
		}
		return a.writeResource(w, r, http.StatusOK, res, "")
	})
}

func (a *API) deactivateResource(w http.ResponseWriter, r *http.Request) {
	handle(w, r, func(ctx context.Context) error {
		if err := scope(r, ScopeResourcesWrite); err != nil {
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
		res, err := a.cmd.DeactivateResource(ctx, meta(r), commands.DeactivateResource{ResourceID: id, ExpectedVersion: expected})
		if err != nil {
			return err
		}
		return a.writeResource(w, r, http.StatusOK, res, "")
	})
}

func (a *API) getAvailability(w http.ResponseWriter, r *http.Request) {
	handle(w, r, func(ctx context.Context) error {
		if err := scope(r, ScopeResourcesRead); err != nil {
			return err
		}
		id, err := pathID(r)
		if err != nil {
			return err
		}
		rs, err := a.cmd.Resource(ctx, meta(r), id)
		if err != nil {
			return err
		}
		show(w, r, rs.Version(), rs.Availability())
		return nil
	})
}

func (a *API) putAvailability(w http.ResponseWriter, r *http.Request) {
	handle(w, r, func(ctx context.Context) error {
		if err := scope(r, ScopeResourcesWrite); err != nil {
			return err
		}
		id, err := pathID(r)
		if err != nil {
			return err
		}
		var av domain.Availability
		if err := DecodeJSON(r, &av); err != nil {
			return err
		}
		expected, err := ifMatch(r)
		if err != nil {
			return err
		}
		m := meta(r)
		res, err := a.cmd.SetResourceAvailability(ctx, m, commands.SetResourceAvailability{ResourceID: id, Availability: av, ExpectedVersion: expected})
		if err != nil {
			return err
		}
		rs, err := a.cmd.Resource(ctx, m, id)
		if err != nil {
			return err
		}
		res.Version = rs.Version()
		respond(w, r, http.StatusOK, res, "", rs.Availability())
		return nil
	})
}

// ---- users ----

func (a *API) createUser(w http.ResponseWriter, r *http.Request) {
	handle(w, r, func(ctx context.Context) error {
		if err := scope(r, ScopeUsersWrite); err != nil {
			return err
		}
		var in domain.UserInput
		if err := DecodeJSON(r, &in); err != nil {
			return err
		}
		res, err := a.cmd.CreateUser(ctx, meta(r), commands.CreateUser{Input: in})
		if err != nil {
			return err
		}
		return a.writeUser(w, r, http.StatusCreated, res, "/users/"+res.ID.String())
	})
}

func (a *API) writeUser(w http.ResponseWriter, r *http.Request, status int, res commands.Result, location string) error {
	if res.View != nil {
		respond(w, r, status, res, location, res.View)
		return nil
	}
	m := meta(r)
	m.Actor.Role = domain.RoleAdmin // the caller just wrote it; show it back
	u, err := a.cmd.User(r.Context(), m, res.ID)
	if err != nil {
		return err
	}
	res.Version = u.Version()
	respond(w, r, status, res, location, u.View())
	return nil
}

func (a *API) patchUser(w http.ResponseWriter, r *http.Request) {
	handle(w, r, func(ctx context.Context) error {
		if err := scope(r, ScopeUsersWrite); err != nil {
			return err
		}
		id, err := pathID(r)
		if err != nil {
			return err
		}
		var p domain.UserPatch
		if err := DecodeJSON(r, &p); err != nil {
			return err
		}
		expected, err := ifMatch(r)
		if err != nil {
			return err
		}
		res, err := a.cmd.UpdateUser(ctx, meta(r), commands.UpdateUser{UserID: id, Patch: p, ExpectedVersion: expected})
		if err != nil {
			return err
		}
		return a.writeUser(w, r, http.StatusOK, res, "")
	})
}

// ---- bookings ----

// bookingInput is the body of POST /bookings. With recurrence it books a
// series (see commands.Recurrence); with hold_id it consumes the caller's
// hold. The fields of domain.BookingRequest are repeated rather than
// embedded:
// encoding/json (Go 1.24 and later) names a field of an embedded struct
// "BookingRequest.seats" in its type errors, and errors[] must name the
// JSON member ("seats").
type bookingInput struct {
	ResourceID uuid.UUID        `json:"resource_id"`
	ClientID   uuid.UUID        `json:"client_id"`
	Start      time.Time        `json:"start"`
	End        time.Time        `json:"end"`
	Seats      int              `json:"seats"`
	Title      string           `json:"title"`
	Notes      string           `json:"notes"`
	Attributes map[string]any   `json:"attributes"`
	Recurrence *recurrenceInput `json:"recurrence,omitempty"`
	HoldID     *uuid.UUID       `json:"hold_id,omitempty"`
}

// seriesResponse answers POST /bookings with a recurrence: the first
// occurrence as a booking, and the series with all its occurrences and
// those skipped under skip_conflicts.
type seriesResponse struct {
	domain.BookingView
	Series domain.SeriesView `json:"series"`
}

// recurrenceInput is the recurrence member of POST /bookings: an RRULE
// (with optional EXDATE lines), further exclusions in exdates, and the
// policy for occurrences that cannot be booked.
type recurrenceInput struct {
	RRule   string   `json:"rrule"`
	ExDates []string `json:"exdates"`
	Policy  string   `json:"policy"`
}

func (in bookingInput) request() domain.BookingRequest {
	return domain.BookingRequest{
		ResourceID: in.ResourceID, ClientID: in.ClientID, Start: in.Start, End: in.End,
		Seats: in.Seats, Title: in.Title, Notes: in.Notes, Attributes: in.Attributes,
	}
}

func (a *API) createBooking(w http.ResponseWriter, r *http.Request) {
	handle(w, r, func(ctx context.Context) error {
		if err := scope(r, ScopeBookingsWrite); err != nil {
			return err
		}
		var in bookingInput
		if err := DecodeJSON(r, &in); err != nil {
			return err
		}
		if err := requireTimes(in.Start, in.End); err != nil {
			return err
		}
		m := meta(r)
		if in.Recurrence != nil {
			if in.HoldID != nil {
				return Error(CodeValidationFailed, http.StatusUnprocessableEntity, "a recurring booking cannot consume a hold",
					FieldProblem{Field: "hold_id", Code: domain.FieldInvalid, Message: "cannot be combined with recurrence"})
			}
			res, err := a.cmd.CreateSeries(ctx, m, commands.CreateSeries{Request: in.request(), Recurrence: commands.Recurrence{
				RRule: in.Recurrence.RRule, ExDates: in.Recurrence.ExDates, Policy: domain.SeriesPolicy(in.Recurrence.Policy),
			}})
			if err != nil {
				return seriesProblem(w, r, err)
			}
			v, ok := res.View.(domain.SeriesView)
			if !ok || len(v.Bookings) == 0 {
				return errors.New("create series: no booking in the answer")
			}
			// The answer is a booking, as for a single one: the first
			// occurrence, with its series and every occurrence in "series".
			first := v.Bookings[0]
			res.Version = first.Version
			respond(w, r, http.StatusCreated, res, "/bookings/"+first.ID.String(), seriesResponse{BookingView: first, Series: v})
			return nil
		}
		cmd := commands.CreateBooking{Request: in.request()}
		if in.HoldID != nil {
			cmd.HoldID = *in.HoldID
		}
		res, err := a.cmd.CreateBooking(ctx, m, cmd)
		if err != nil {
			return err
		}
		return a.writeBooking(w, r, http.StatusCreated, res, "/bookings/"+res.ID.String())
	})
}

func requireTimes(start, end time.Time) error {
	var fields []FieldProblem
	if start.IsZero() {
		fields = append(fields, FieldProblem{Field: "start", Code: "required", Message: "is required (RFC 3339 with offset)"})
	}
	if end.IsZero() {
		fields = append(fields, FieldProblem{Field: "end", Code: "required", Message: "is required (RFC 3339 with offset)"})
	}
	if len(fields) > 0 {
		return Error(CodeValidationFailed, http.StatusUnprocessableEntity, "start and end are required", fields...)
	}
	return nil
}

func (a *API) writeBooking(w http.ResponseWriter, r *http.Request, status int, res commands.Result, location string) error {
	if res.View != nil {
		// The command's own result: what it just wrote, with no second read.
		respond(w, r, status, res, location, res.View)
		return nil
	}
	m := meta(r)
	// The caller just wrote it; show it back, even when the caller may
	// not read it later: the command committed, so a 404 here would be a
	// lie, and the idempotency layer would replay it.
	m.Actor.Role = domain.RoleAdmin
	b, err := a.cmd.Booking(r.Context(), m, res.ID)
	if err != nil {
		return err
	}
	res.Version = b.Version()
	respond(w, r, status, res, location, b.View())
	return nil
}

// historyEntry is one event of a booking's history.
type historyEntry struct {
	ID            uuid.UUID `json:"id"`
	Type          string    `json:"type"`
	EventVersion  int       `json:"event_version"`
	StreamVersion int64     `json:"stream_version"`
	Position      int64     `json:"position"`
	RecordedAt    time.Time `json:"recorded_at"`
	Data          any       `json:"data"`
	Actor         string    `json:"actor,omitempty"`
	ActorRole     string    `json:"actor_role,omitempty"`
	CorrelationID string    `json:"correlation_id,omitempty"`
	CausationID   string    `json:"causation_id,omitempty"`
}

func (a *API) bookingHistory(w http.ResponseWriter, r *http.Request) {
	handle(w, r, func(ctx context.Context) error {
		if err := scope(r, ScopeBookingsRead); err != nil {
			return err
		}
		id, err := pathID(r)
		if err != nil {
			return err
		}
		events, err := a.cmd.BookingHistory(ctx, meta(r), id)
		if err != nil {
			return err
		}
		out := make([]historyEntry, 0, len(events))
		for _, e := range events {
			out = append(out, historyEntry{
				ID: e.ID, Type: e.Type, EventVersion: e.EventVersion, StreamVersion: e.StreamVersion,
				Position: e.Position, RecordedAt: e.RecordedAt, Data: rawJSON(e.Data),
				Actor: e.Metadata.Actor, ActorRole: e.Metadata.ActorRole,
				CorrelationID: e.Metadata.CorrelationID, CausationID: e.Metadata.CausationID,
			})
		}
		return WriteJSON(w, http.StatusOK, map[string]any{"events": out})
	})
}

// actionInput is the optional body of the lifecycle endpoints. Scope
// (occurrence, following, all) applies to cancelling an occurrence of a
// series.
type actionInput struct {
	Reason string       `json:"reason"`
	Scope  domain.Scope `json:"scope"`
}

func (a *API) bookingAction(w http.ResponseWriter, r *http.Request) {
	handle(w, r, func(ctx context.Context) error {
		if err := scope(r, ScopeBookingsWrite); err != nil {
			return err
		}
		id, err := pathID(r)
		if err != nil {
			return err
		}
		var in actionInput
		if err := DecodeOptionalJSON(r, &in); err != nil {
			return err
		}
		expected, err := ifMatch(r)
		if err != nil {
			return err
		}
		to := commands.BookingAction[mux.Vars(r)["action"]]
		res, err := a.cmd.ChangeBookingStatus(ctx, meta(r), commands.ChangeBookingStatus{
			BookingID: id, To: to, Reason: in.Reason, Scope: in.Scope, ExpectedVersion: expected,
		})
		if err != nil {
			return seriesProblem(w, r, err)
		}
		return a.writeBooking(w, r, http.StatusOK, res, "")
	})
}

// rescheduleInput is the body of POST /bookings/{id}/reschedule. Scope
// (occurrence, following, all) applies to an occurrence of a series.
type rescheduleInput struct {
	Start  time.Time    `json:"start"`
	End    time.Time    `json:"end"`
	Reason string       `json:"reason"`
	Scope  domain.Scope `json:"scope"`
}

func (a *API) reschedule(w http.ResponseWriter, r *http.Request) {
	handle(w, r, func(ctx context.Context) error {
		if err := scope(r, ScopeBookingsWrite); err != nil {
			return err
		}
		id, err := pathID(r)
		if err != nil {
			return err
		}
		var in rescheduleInput
		if err := DecodeJSON(r, &in); err != nil {
			return err
		}
		if err := requireTimes(in.Start, in.End); err != nil {
			return err
		}
		expected, err := ifMatch(r)
		if err != nil {
			return err
		}
		res, err := a.cmd.RescheduleBooking(ctx, meta(r), commands.RescheduleBooking{
			BookingID: id, Start: in.Start, End: in.End, Reason: in.Reason, Scope: in.Scope, ExpectedVersion: expected,
		})
		if err != nil {
			return seriesProblem(w, r, err)
		}
		return a.writeBooking(w, r, http.StatusOK, res, "")
	})
}

// occurrenceProblem is one member of the occurrences[] extension of a
// problem about a recurring series.
type occurrenceProblem struct {
	Start     time.Time         `json:"start"`
	End       time.Time         `json:"end"`
	Code      string            `json:"code"`
	Detail    string            `json:"detail"`
	Conflicts []ConflictProblem `json:"conflicts,omitempty"`
}

// seriesProblem answers a *domain.SeriesError as the problem its code maps
// to (409 booking_conflict, else 422) with the extension member
// occurrences[]: every failing occurrence with its own code, detail and
// conflicts. It returns nil once it answered; any other error is returned
// for handle to answer.
func seriesProblem(w http.ResponseWriter, r *http.Request, err error) error {
	var se *domain.SeriesError
	if !errors.As(err, &se) {
		return err
	}
	// WriteError renders the problem (status, type, logging, headers);
	// the extension is added to its body.
	buf := &bufferedResponse{header: http.Header{}}
	WriteError(buf, r, err)
	var doc map[string]any
	if json.Unmarshal(buf.body.Bytes(), &doc) != nil {
		WriteError(w, r, err)
		return nil
	}
	occs := make([]occurrenceProblem, 0, len(se.Occurrences))
	for _, o := range se.Occurrences {
		op := occurrenceProblem{Start: o.Start, End: o.End, Code: o.Code, Detail: o.Detail}
		for _, c := range o.Conflicts {
			op.Conflicts = append(op.Conflicts, ConflictProblem{BookingID: c.BookingID, Start: c.Start, End: c.End})
		}
		occs = append(occs, op)
	}
	doc["occurrences"] = occs
	body, mErr := json.Marshal(doc)
	if mErr != nil {
		WriteError(w, r, err)
		return nil
	}
	for k, v := range buf.header {
		w.Header()[k] = v
	}
	w.WriteHeader(buf.status)
	_, _ = w.Write(append(body, '\n'))
	return nil
}

// bufferedResponse collects a response in memory.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(status int) { b.status = status }

func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

// Resolver resolves X-Tenant-Domain through the command side's domain
// guard streams.
type Resolver struct{ Cmd *commands.Handlers }

// TenantIDByDomain implements TenantResolver.
func (r Resolver) TenantIDByDomain(ctx context.Context, d string) (uuid.UUID, error) {
	id, err := r.Cmd.TenantIDByDomain(ctx, d)
	if errors.Is(err, domain.ErrNotFound) {
		return uuid.Nil, Error(CodeNotFound, 0, "no tenant with domain "+strings.ToLower(d))
	}
	return id, err
}
