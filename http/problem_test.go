package http_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	bhttp "github.com/bookingengine/booking/http"
)

// validationErr mimics the domain's *ValidationError.
type validationErr struct{ fields [][3]string }

func (e *validationErr) Error() string { return "booking is invalid" }
func (e *validationErr) Code() string  { return "validation_failed" }
func (e *validationErr) ProblemFields(add func(field, code, message string)) {
	for _, f := range e.fields {
		add(f[0], f[1], f[2])
	}
}

// conflictErr mimics the domain's *ConflictError.
type conflictErr struct {
	id         uuid.UUID
	start, end time.Time
}

func (e *conflictErr) Error() string { return "the slot is taken" }
func (e *conflictErr) Code() string  { return "booking_conflict" }
func (e *conflictErr) ProblemConflicts(add func(uuid.UUID, time.Time, time.Time)) {
	add(e.id, e.start, e.end)
}

// codeOnly is a coded error with an arbitrary code.
type codeOnly string

func (c codeOnly) Error() string { return "detail of " + string(c) }
func (c codeOnly) Code() string  { return string(c) }

func TestWriteErrorMapsCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code   string
		status int
	}{
		{"validation_failed", 422},
		{"booking_conflict", 409},
		{"outside_business_hours", 422},
		{"outside_resource_availability", 422},
		{"too_short_notice", 422},
		{"too_far_in_advance", 422},
		{"duration_out_of_range", 422},
		{"off_slot_grid", 422},
		{"capacity_exceeded", 422},
		{"resource_inactive", 422},
		{"client_daily_limit_reached", 422},
		{"cancellation_deadline_passed", 422},
		{"invalid_transition", 409},
		{"version_mismatch", 412},
		{"not_found", 404},
		{"unauthorized", 401},
		{"forbidden", 403},
		{"domain_taken", 409},
		{"email_taken", 409},
		{"idempotency_key_reused", 422},
		{"idempotency_in_progress", 409},
		{"payload_too_large", 413},
		{"unsupported_media_type", 415},
		{"method_not_allowed", 405},
		{"timeout", 504},
		{"service_unavailable", 503},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			t.Parallel()
			w := httptest.NewRecorder()
			r := httptest.NewRequest(http.MethodPost, "/bookings", nil)
			err := fmt.Errorf("handler: %w", fmt.Errorf("store: %w", codeOnly(tt.code)))
			bhttp.WriteError(w, r, err)
			p := mustProblem(t, w, tt.status, tt.code)
			require.Equal(t, bhttp.DefaultProblemBaseURL+"/problems/"+tt.code, p.Type)
			require.Equal(t, "detail of "+tt.code, p.Detail, "wrapping context stays out of the detail")
			require.Equal(t, "/bookings", p.Instance)
			require.Equal(t, tt.code, bhttp.ErrorCode(err))
		})
	}
}

func TestWriteErrorShapes(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 12, 1, 9, 0, 0, 0, time.FixedZone("BRT", -3*3600))
	bookingID := uuid.MustParse("33333333-3333-4333-8333-333333333333")

	tests := []struct {
		name   string
		err    error
		status int
		code   string
		detail string
		check  func(t *testing.T, w *httptest.ResponseRecorder, raw map[string]any)
	}{
		{
			name: "validation errors[]",
			err: fmt.Errorf("create booking: %w", &validationErr{fields: [][3]string{
				{"start", "required", "start is required"},
				{"seats", "too_small", "seats must be at least 1"},
			}}),
			status: 422, code: "validation_failed", detail: "booking is invalid",
			check: func(t *testing.T, _ *httptest.ResponseRecorder, raw map[string]any) {
				require.Equal(t, []any{
					map[string]any{"field": "start", "code": "required", "message": "start is required"},
					map[string]any{"field": "seats", "code": "too_small", "message": "seats must be at least 1"},
				}, raw["errors"])
				require.NotContains(t, raw, "conflicts")
			},
		},
		{
			name:   "conflicts[]",
			err:    fmt.Errorf("append: %w", &conflictErr{id: bookingID, start: start, end: start.Add(time.Hour)}),
			status: 409, code: "booking_conflict", detail: "the slot is taken",
			check: func(t *testing.T, _ *httptest.ResponseRecorder, raw map[string]any) {
				require.Equal(t, []any{map[string]any{
					"booking_id": bookingID.String(),
					"start":      "2026-12-01T09:00:00-03:00",
					"end":        "2026-12-01T10:00:00-03:00",
				}}, raw["conflicts"])
				require.NotContains(t, raw, "errors")
			},
		},
		{
			name:   "status override",
			err:    bhttp.Error("validation_failed", http.StatusBadRequest, "bad header", bhttp.FieldProblem{Field: "X-Thing", Code: "invalid", Message: "bad"}),
			status: 400, code: "validation_failed", detail: "bad header",
			check: func(t *testing.T, _ *httptest.ResponseRecorder, raw map[string]any) {
				require.Len(t, raw["errors"], 1)
			},
		},
		{
			name:   "unauthorized challenges",
			err:    bhttp.Error("unauthorized", 0, "no token"),
			status: 401, code: "unauthorized", detail: "no token",
			check: func(t *testing.T, w *httptest.ResponseRecorder, _ map[string]any) {
				require.Equal(t, "Bearer", w.Header().Get("WWW-Authenticate"))
			},
		},
		{
			name:   "unknown error is internal and hidden",
			err:    errors.New("pq: password authentication failed for user booking"),
			status: 500, code: "internal", detail: "internal error",
		},
		{
			name:   "coded internal is hidden",
			err:    codeOnly("internal"),
			status: 500, code: "internal", detail: "internal error",
		},
		{
			name:   "unmapped code is internal",
			err:    codeOnly("brand_new_code"),
			status: 500, code: "internal", detail: "internal error",
		},
		{
			name:   "unavailable is 503 and hidden",
			err:    fmt.Errorf("load stream: %w", unavailableErr{}),
			status: 503, code: "service_unavailable", detail: "the service is temporarily unavailable; retry later",
			check: func(t *testing.T, w *httptest.ResponseRecorder, _ map[string]any) {
				require.Equal(t, "1", w.Header().Get("Retry-After"))
			},
		},
		{
			name:   "body over limit",
			err:    fmt.Errorf("read: %w", &http.MaxBytesError{Limit: 10}),
			status: 413, code: "payload_too_large", detail: "request body exceeds 10 bytes",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := httptest.NewRecorder()
			w.Header().Set("ETag", `"7"`)
			w.Header().Set("X-Position", "42")
			r := httptest.NewRequest(http.MethodPost, "/bookings", nil)
			bhttp.WriteError(w, r, tt.err)
			p := mustProblem(t, w, tt.status, tt.code)
			require.Equal(t, tt.detail, p.Detail)
			require.Empty(t, w.Header().Get("ETag"), "a failed command must not announce a version")
			require.Empty(t, w.Header().Get("X-Position"))
			var raw map[string]any
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &raw))
			if tt.check != nil {
				tt.check(t, w, raw)
			}
		})
	}
}

func TestWriteErrorInsideServer(t *testing.T) {
	t.Parallel()
	f := MustFixture(t)
	f.srv.Public().HandleFunc("/boom", func(w http.ResponseWriter, r *http.Request) {
		bhttp.WriteError(w, r, errors.New("secret connection string postgres://u:pw@db"))
	})
	f.srv.Public().HandleFunc("/late", func(w http.ResponseWriter, r *http.Request) {
		_ = bhttp.WriteJSON(w, http.StatusOK, map[string]int{"n": 1})
		bhttp.WriteError(w, r, codeOnly("not_found"))
	})

	w := f.do(newReq(http.MethodGet, "/boom", "", header("X-Request-ID", "req-500")))
	p := mustProblem(t, w, 500, "internal")
	require.Equal(t, "https://errors.example.com/problems/internal", p.Type)
	require.NotContains(t, w.Body.String(), "secret")

	var logged bool
	for _, l := range f.logs.lines(t) {
		if l["msg"] == "request failed" {
			logged = true
			require.Equal(t, "req-500", l["request_id"])
			require.Contains(t, l["error"], "secret connection string")
		}
	}
	require.True(t, logged, "the real error is logged with the request id")

	w = f.do(newReq(http.MethodGet, "/late", ""))
	require.Equal(t, http.StatusOK, w.Code, "an error after the response started cannot change it")
	require.JSONEq(t, `{"n":1}`, w.Body.String())
}

func TestWriteJSON(t *testing.T) {
	t.Parallel()
	w := httptest.NewRecorder()
	require.NoError(t, bhttp.WriteJSON(w, http.StatusCreated, map[string]string{"id": "x"}))
	require.Equal(t, http.StatusCreated, w.Code)
	require.Equal(t, "application/json", w.Header().Get("Content-Type"))
	require.JSONEq(t, `{"id":"x"}`, w.Body.String())

	w = httptest.NewRecorder()
	require.Error(t, bhttp.WriteJSON(w, http.StatusOK, map[string]any{"f": func() {}}))
	require.False(t, w.Flushed)
	require.Empty(t, w.Body.String(), "nothing is sent when encoding fails")
	require.Empty(t, w.Header().Get("Content-Type"))
}

func TestErrorCode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"coded", fmt.Errorf("x: %w", codeOnly("forbidden")), "forbidden"},
		{"unavailable", unavailableErr{}, "service_unavailable"},
		{"plain", errors.New("boom"), "internal"},
		{"joined", errors.Join(errors.New("a"), codeOnly("email_taken")), "email_taken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, bhttp.ErrorCode(tt.err))
		})
	}
}
