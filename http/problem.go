package http

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/uuid"
)

// Machine codes of the external contract. A code is part of the API: clients
// branch on it, so never rename one; add a new code instead.
const (
	CodeValidationFailed            = "validation_failed"
	CodeBookingConflict             = "booking_conflict"
	CodeOutsideBusinessHours        = "outside_business_hours"
	CodeOutsideResourceAvailability = "outside_resource_availability"
	CodeTooShortNotice              = "too_short_notice"
	CodeTooFarInAdvance             = "too_far_in_advance"
	CodeDurationOutOfRange          = "duration_out_of_range"
	CodeOffSlotGrid                 = "off_slot_grid"
	CodeCapacityExceeded            = "capacity_exceeded"
	CodeResourceInactive            = "resource_inactive"
	CodeClientDailyLimitReached     = "client_daily_limit_reached"
	CodeCancellationDeadlinePassed  = "cancellation_deadline_passed"
	CodeInvalidTransition           = "invalid_transition"
	CodeVersionMismatch             = "version_mismatch"
	CodeNotFound                    = "not_found"
	CodeUnauthorized                = "unauthorized"
	CodeForbidden                   = "forbidden"
	CodeDomainTaken                 = "domain_taken"
	CodeEmailTaken                  = "email_taken"
	CodeIdempotencyKeyReused        = "idempotency_key_reused"
	CodeIdempotencyInProgress       = "idempotency_in_progress"
	CodePayloadTooLarge             = "payload_too_large"
	CodeUnsupportedMediaType        = "unsupported_media_type"
	CodeMethodNotAllowed            = "method_not_allowed"
	CodeTimeout                     = "timeout"
	CodeServiceUnavailable          = "service_unavailable"
	CodeInternal                    = "internal"
)

// codes is the one table that turns an error code into an HTTP status and a
// problem title. A code missing here is answered as a 500 and logged, so a
// new domain error cannot leak out with a guessed status.
var codes = map[string]struct {
	status int
	title  string
}{
	CodeValidationFailed:            {http.StatusUnprocessableEntity, "Validation failed"},
	CodeBookingConflict:             {http.StatusConflict, "Booking conflict"},
	CodeOutsideBusinessHours:        {http.StatusUnprocessableEntity, "Outside business hours"},
	CodeOutsideResourceAvailability: {http.StatusUnprocessableEntity, "Outside resource availability"},
	CodeTooShortNotice:              {http.StatusUnprocessableEntity, "Too short notice"},
	CodeTooFarInAdvance:             {http.StatusUnprocessableEntity, "Too far in advance"},
	CodeDurationOutOfRange:          {http.StatusUnprocessableEntity, "Duration out of range"},
	CodeOffSlotGrid:                 {http.StatusUnprocessableEntity, "Off the slot grid"},
	CodeCapacityExceeded:            {http.StatusUnprocessableEntity, "Capacity exceeded"},
	CodeResourceInactive:            {http.StatusUnprocessableEntity, "Resource inactive"},
	CodeClientDailyLimitReached:     {http.StatusUnprocessableEntity, "Client daily limit reached"},
	CodeCancellationDeadlinePassed:  {http.StatusUnprocessableEntity, "Cancellation deadline passed"},
	CodeInvalidTransition:           {http.StatusConflict, "Invalid transition"},
	CodeVersionMismatch:             {http.StatusPreconditionFailed, "Version mismatch"},
	CodeNotFound:                    {http.StatusNotFound, "Not found"},
	CodeUnauthorized:                {http.StatusUnauthorized, "Unauthorized"},
	CodeForbidden:                   {http.StatusForbidden, "Forbidden"},
	CodeDomainTaken:                 {http.StatusConflict, "Domain taken"},
	CodeEmailTaken:                  {http.StatusConflict, "Email taken"},
	CodeIdempotencyKeyReused:        {http.StatusUnprocessableEntity, "Idempotency key reused"},
	CodeIdempotencyInProgress:       {http.StatusConflict, "Idempotency key in progress"},
	CodePayloadTooLarge:             {http.StatusRequestEntityTooLarge, "Payload too large"},
	CodeUnsupportedMediaType:        {http.StatusUnsupportedMediaType, "Unsupported media type"},
	CodeMethodNotAllowed:            {http.StatusMethodNotAllowed, "Method not allowed"},
	CodeTimeout:                     {http.StatusGatewayTimeout, "Timeout"},
	CodeServiceUnavailable:          {http.StatusServiceUnavailable, "Service unavailable"},
	CodeInternal:                    {http.StatusInternalServerError, "Internal error"},
}

// DefaultProblemBaseURL prefixes problem types when ServerConfig names no
// base. The .invalid TLD (RFC 2606) never resolves, so nobody mistakes it
// for documentation that should load.
const DefaultProblemBaseURL = "https://booking.invalid"

// ProblemContentType is the media type of every error response (RFC 9457).
const ProblemContentType = "application/problem+json"

// Problem is the RFC 9457 body of every error response. Errors and
// Conflicts are extension members, present only for validation_failed and
// booking_conflict respectively.
type Problem struct {
	Type      string            `json:"type"`
	Title     string            `json:"title"`
	Status    int               `json:"status"`
	Detail    string            `json:"detail,omitempty"`
	Code      string            `json:"code"`
	Instance  string            `json:"instance,omitempty"`
	Errors    []FieldProblem    `json:"errors,omitempty"`
	Conflicts []ConflictProblem `json:"conflicts,omitempty"`
}

// FieldProblem names one field of a request that failed validation. Field is
// the JSON path of a body member (e.g. "settings.timezone") or the name of a
// header or query parameter (e.g. "X-Tenant-ID").
type FieldProblem struct {
	Field   string `json:"field"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// ConflictProblem names one booking that holds the time a request wanted.
type ConflictProblem struct {
	BookingID uuid.UUID `json:"booking_id"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
}

// Coder is implemented by every error that the API reports with a machine
// code (domain errors, this package's ad-hoc errors). WriteError finds it
// anywhere in the wrap chain, so adapters may wrap freely with %w.
type Coder interface {
	error
	Code() string
}

// FieldLister is implemented by validation errors that name the fields at
// fault; WriteError copies them into the problem's errors[]. The method takes
// a callback of plain strings rather than returning []FieldProblem so that
// the domain can implement it without importing this adapter package.
type FieldLister interface {
	ProblemFields(add func(field, code, message string))
}

// ConflictLister is implemented by conflict errors that name the bookings in
// the way; WriteError copies them into the problem's conflicts[]. Like
// FieldLister it uses a callback so the domain need not import this package.
type ConflictLister interface {
	ProblemConflicts(add func(bookingID uuid.UUID, start, end time.Time))
}

// statusCarrier lets an error override the status its code maps to, e.g. a
// validation_failed that is a 400 (malformed request) rather than a 422.
type statusCarrier interface {
	HTTPStatus() int
}

// unavailable marks infrastructure errors (store unreachable, pool closed)
// that a client may retry: they become 503 rather than 500.
type unavailable interface {
	Unavailable() bool
}

// codedError is the error behind Error and this package's own sentinels.
type codedError struct {
	code   string
	status int
	detail string
	fields []FieldProblem
}

func (e *codedError) Error() string {
	if e.detail == "" {
		return e.code
	}
	return e.detail
}

func (e *codedError) Code() string { return e.code }

func (e *codedError) HTTPStatus() int { return e.status }

func (e *codedError) ProblemFields(add func(field, code, message string)) {
	for _, f := range e.fields {
		add(f.Field, f.Code, f.Message)
	}
}

// Error returns an error that WriteError renders as a problem with the given
// code and detail. A status of 0 takes the status the code maps to; any other
// value overrides it (validation_failed is 422 by default, 400 for a
// malformed request). Fields become the problem's errors[]. The detail is
// shown to clients, so it must not carry internal information.
func Error(code string, status int, detail string, fields ...FieldProblem) error {
	return &codedError{code: code, status: status, detail: detail, fields: fields}
}

// ErrorCode returns the machine code WriteError would answer err with: the
// code of the first Coder in the chain, CodeServiceUnavailable for an error
// that reports itself unavailable, CodePayloadTooLarge for an
// *http.MaxBytesError, CodeInternal for anything else, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var c Coder
	if errors.As(err, &c) {
		return c.Code()
	}
	var u unavailable
	if errors.As(err, &u) && u.Unavailable() {
		return CodeServiceUnavailable
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return CodePayloadTooLarge
	}
	return CodeInternal
}

// WriteError answers r with the problem that err maps to and logs what the
// client must not see.
//
// Mapping, in order: the first Coder in the chain gives the code, its table
// status and title, and its Error() as detail (the wrapping context added by
// adapters is not shown); an HTTPStatus() int method on the chain overrides
// the status; FieldLister and ConflictLister anywhere in the chain fill
// errors[] and conflicts[]. Otherwise an error with Unavailable() bool
// returning true becomes 503 service_unavailable, an *http.MaxBytesError
// becomes 413, and anything else is 500 internal with the detail "internal
// error". 5xx answers are logged with the request's logger (request and
// correlation ids included); the real error never reaches the client.
//
// A 401 carries WWW-Authenticate: Bearer unless the caller set a more
// precise challenge. If the response was already started, WriteError only
// logs: a second status line cannot be sent. Safe for concurrent use.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	ctx := r.Context()
	st := stateFrom(ctx)
	logger := LoggerFrom(ctx)

	p := problemFor(err, logger)
	base := DefaultProblemBaseURL
	if st != nil && st.problemBase != "" {
		base = st.problemBase
	}
	p.Type = base + "/problems/" + p.Code
	p.Instance = r.URL.Path

	if p.Status >= http.StatusInternalServerError {
		logger.ErrorContext(ctx, "request failed",
			slog.String("code", p.Code), slog.Int("status", p.Status),
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Any("error", err))
	}
	if st != nil && st.written.Load() {
		logger.WarnContext(ctx, "error after response started",
			slog.String("code", p.Code), slog.Any("error", err))
		return
	}

	h := w.Header()
	switch p.Status {
	case http.StatusUnauthorized:
		if h.Get("WWW-Authenticate") == "" {
			h.Set("WWW-Authenticate", "Bearer")
		}
	case http.StatusServiceUnavailable:
		if h.Get("Retry-After") == "" {
			h.Set("Retry-After", "1")
		}
	}
	// Headers a handler set for its success answer must not survive into
	// the problem (an ETag of an object the request failed to change).
	for _, k := range []string{"ETag", "Location", headerPosition, "Last-Modified"} {
		h.Del(k)
	}
	h.Set("Cache-Control", "no-store")
	writeBody(w, p.Status, ProblemContentType, p, logger)
}

// problemFor builds the problem for err, without type and instance.
func problemFor(err error, logger *slog.Logger) Problem {
	var c Coder
	if errors.As(err, &c) {
		code := c.Code()
		info, ok := codes[code]
		status := info.status
		var sc statusCarrier
		if errors.As(err, &sc) && validStatus(sc.HTTPStatus()) {
			status = sc.HTTPStatus()
		}
		if !ok {
			logger.Error("error code has no HTTP mapping", slog.String("code", code))
			if status == 0 {
				return internalProblem()
			}
			info.title = http.StatusText(status)
		}
		p := Problem{Title: info.title, Status: status, Code: code, Detail: c.Error()}
		if code == CodeInternal {
			p.Detail = "internal error"
		}
		var fl FieldLister
		if errors.As(err, &fl) {
			fl.ProblemFields(func(field, code, message string) {
				p.Errors = append(p.Errors, FieldProblem{Field: field, Code: code, Message: message})
			})
		}
		var cl ConflictLister
		if errors.As(err, &cl) {
			cl.ProblemConflicts(func(id uuid.UUID, start, end time.Time) {
				p.Conflicts = append(p.Conflicts, ConflictProblem{BookingID: id, Start: start, End: end})
			})
		}
		return p
	}
	var u unavailable
	if errors.As(err, &u) && u.Unavailable() {
		info := codes[CodeServiceUnavailable]
		return Problem{Title: info.title, Status: info.status, Code: CodeServiceUnavailable,
			Detail: "the service is temporarily unavailable; retry later"}
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return tooLargeProblem(tooLarge.Limit)
	}
	return internalProblem()
}

func internalProblem() Problem {
	info := codes[CodeInternal]
	return Problem{Title: info.title, Status: info.status, Code: CodeInternal, Detail: "internal error"}
}

func tooLargeProblem(limit int64) Problem {
	info := codes[CodePayloadTooLarge]
	return Problem{Title: info.title, Status: info.status, Code: CodePayloadTooLarge,
		Detail: fmt.Sprintf("request body exceeds %d bytes", limit)}
}

func validStatus(s int) bool { return s >= 400 && s <= 599 }

// WriteJSON answers with v encoded as application/json and the given status.
// It encodes before writing, so an encoding error (a programming error)
// returns with nothing sent and the caller can still WriteError. A non-nil
// error after that means the client went away; the response is lost and
// there is nothing left to do but return.
func WriteJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if _, err := w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write response: %w", err)
	}
	return nil
}

// writeBody writes a value whose encoding cannot fail for want of a
// programming error (problems), logging instead of returning.
func writeBody(w http.ResponseWriter, status int, contentType string, v any, logger *slog.Logger) {
	b, err := json.Marshal(v)
	if err != nil {
		logger.Error("encode problem", slog.Any("error", err))
		b = []byte(`{"type":"about:blank","title":"Internal error","status":500,"code":"internal","detail":"internal error"}`)
		status = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Del("Content-Length")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// badRequest is a 400 validation_failed naming one field.
func badRequest(field, code, message string) error {
	return Error(CodeValidationFailed, http.StatusBadRequest, message,
		FieldProblem{Field: field, Code: code, Message: message})
}
