package http_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	bhttp "github.com/bookingengine/booking/http"
)

func TestHealthz(t *testing.T) {
	t.Parallel()
	f := MustFixture(t)
	w := f.do(newReq(http.MethodGet, "/healthz", ""))
	require.Equal(t, http.StatusOK, w.Code)
	require.JSONEq(t, `{"status":"ok"}`, w.Body.String())
	require.Equal(t, http.StatusOK, f.do(newReq(http.MethodHead, "/healthz", "")).Code)
}

func TestRoutingProblems(t *testing.T) {
	t.Parallel()
	f := MustFixture(t)
	noop := func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }
	f.srv.Tenant().HandleFunc("/bookings/{id}", noop).Methods(http.MethodGet)
	f.srv.Tenant().HandleFunc("/bookings/{id}/cancel", noop).Methods(http.MethodPost)
	f.srv.Authenticated().HandleFunc("/tenants", noop).Methods(http.MethodPost)

	tests := []struct {
		name   string
		method string
		path   string
		status int
		code   string
		allow  string
	}{
		{"unknown path", http.MethodGet, "/nope", 404, "not_found", ""},
		{"unknown path without token is still 404", http.MethodPost, "/bookings", 404, "not_found", ""},
		{"public wrong method", http.MethodPost, "/healthz", 405, "method_not_allowed", "GET, HEAD"},
		{"tenant wrong method", http.MethodDelete, "/bookings/1", 405, "method_not_allowed", "GET"},
		{"tenant action wrong method", http.MethodGet, "/bookings/1/cancel", 405, "method_not_allowed", "POST"},
		{"platform wrong method", http.MethodGet, "/tenants", 405, "method_not_allowed", "POST"},
		{"matching route without token", http.MethodGet, "/bookings/1", 401, "unauthorized", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := f.do(newReq(tt.method, tt.path, ""))
			p := mustProblem(t, w, tt.status, tt.code)
			require.Equal(t, tt.path, p.Instance)
			require.Equal(t, "https://errors.example.com/problems/"+tt.code, p.Type)
			if tt.allow != "" {
				require.Equal(t, tt.allow, w.Header().Get("Allow"))
			}
		})
	}
}

func TestRequestIDs(t *testing.T) {
	t.Parallel()
	f := MustFixture(t)
	f.srv.Public().HandleFunc("/ids", func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		_ = bhttp.WriteJSON(w, http.StatusOK, map[string]string{
			"request": bhttp.RequestIDFrom(ctx), "correlation": bhttp.CorrelationIDFrom(ctx),
		})
	})

	tests := []struct {
		name            string
		requestID       string
		correlationID   string
		wantRequest     string // "" = a generated uuid
		wantCorrelation string // "" = the request id
	}{
		{"generated", "", "", "", ""},
		{"client ids kept", "req-1", "flow-9", "req-1", "flow-9"},
		{"correlation defaults to request id", "req-2", "", "req-2", ""},
		{"unsafe request id replaced", "has space", "", "", ""},
		{"oversized request id replaced", strings.Repeat("a", 129), "", "", ""},
		{"unsafe correlation id replaced", "req-3", "bad\tid", "req-3", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newReq(http.MethodGet, "/ids", "")
			if tt.requestID != "" {
				r.Header.Set("X-Request-ID", tt.requestID)
			}
			if tt.correlationID != "" {
				r.Header.Set("X-Correlation-ID", tt.correlationID)
			}
			w := f.do(r)
			require.Equal(t, http.StatusOK, w.Code)
			reqID, corrID := w.Header().Get("X-Request-ID"), w.Header().Get("X-Correlation-ID")
			if tt.wantRequest == "" {
				_, err := uuid.Parse(reqID)
				require.NoError(t, err)
			} else {
				require.Equal(t, tt.wantRequest, reqID)
			}
			if tt.wantCorrelation == "" {
				require.Equal(t, reqID, corrID)
			} else {
				require.Equal(t, tt.wantCorrelation, corrID)
			}
			require.JSONEq(t, `{"request":"`+reqID+`","correlation":"`+corrID+`"}`, w.Body.String())
		})
	}
}

func TestContextHelpersOutsideRequests(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	require.Empty(t, bhttp.RequestIDFrom(ctx))
	require.Empty(t, bhttp.CorrelationIDFrom(ctx))
	require.Same(t, slog.Default(), bhttp.LoggerFrom(ctx))
	require.Equal(t, uuid.Nil, bhttp.TenantFrom(ctx))
	require.Empty(t, bhttp.IdempotencyKeyFrom(ctx))
	_, ok := bhttp.PrincipalFrom(ctx)
	require.False(t, ok)

	ctx = bhttp.WithTenant(bhttp.WithIdempotencyKey(bhttp.WithPrincipal(ctx, bhttp.Principal{UserID: "u"}), "k"), tenantA)
	p, ok := bhttp.PrincipalFrom(ctx)
	require.True(t, ok)
	require.Equal(t, "u", p.UserID)
	require.Equal(t, "k", bhttp.IdempotencyKeyFrom(ctx))
	require.Equal(t, tenantA, bhttp.TenantFrom(ctx))
}

func TestAccessLog(t *testing.T) {
	t.Parallel()
	f := MustFixture(t)
	f.srv.Tenant().HandleFunc("/bookings/{id}", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "hello")
	}).Methods(http.MethodGet)

	f.do(newReq(http.MethodGet, "/bookings/abc", "", header("X-Request-ID", "log-1"),
		bearer(f.token(t, "u1", "client", tenantA)), header("X-Tenant-ID", tenantA.String())))
	f.do(newReq(http.MethodGet, "/missing", "", header("X-Request-ID", "log-2")))

	byID := map[string]map[string]any{}
	for _, l := range f.logs.lines(t) {
		if l["msg"] == "http request" {
			byID[l["request_id"].(string)] = l
		}
	}
	require.Len(t, byID, 2)

	ok := byID["log-1"]
	require.Equal(t, "GET", ok["method"])
	require.Equal(t, "/bookings/{id}", ok["route"], "the template, so one endpoint's lines group together")
	require.Equal(t, "/bookings/abc", ok["path"])
	require.EqualValues(t, 200, ok["status"])
	require.EqualValues(t, 5, ok["bytes"])
	require.Contains(t, ok, "duration")
	require.Equal(t, "u1", ok["user_id"])
	require.Equal(t, tenantA.String(), ok["tenant_id"])

	missing := byID["log-2"]
	require.Equal(t, "unmatched", missing["route"])
	require.EqualValues(t, 404, missing["status"])
}

func TestPanicRecovery(t *testing.T) {
	t.Parallel()
	f := MustFixture(t)
	f.srv.Public().HandleFunc("/panic", func(http.ResponseWriter, *http.Request) {
		panic("password=hunter2")
	})
	f.srv.Public().HandleFunc("/abort", func(http.ResponseWriter, *http.Request) {
		panic(http.ErrAbortHandler)
	})

	w := f.do(newReq(http.MethodGet, "/panic", "", header("X-Request-ID", "boom-1")))
	p := mustProblem(t, w, 500, "internal")
	require.Equal(t, "internal error", p.Detail)
	require.NotContains(t, w.Body.String(), "hunter2")

	var logged bool
	for _, l := range f.logs.lines(t) {
		if l["msg"] == "request failed" && l["request_id"] == "boom-1" {
			logged = true
			require.Contains(t, l["error"], "panic: password=hunter2")
			require.Contains(t, l["error"], "goroutine", "the stack is logged")
		}
	}
	require.True(t, logged)

	require.PanicsWithValue(t, http.ErrAbortHandler, func() {
		f.do(newReq(http.MethodGet, "/abort", ""))
	}, "net/http's deliberate abort is not swallowed")
}

func TestServerConfigValidate(t *testing.T) {
	t.Parallel()
	err := bhttp.ServerConfig{ProblemBaseURL: "not a url", MaxBodyBytes: -1}.Validate()
	require.Error(t, err)
	for _, want := range []string{"Verifier", "Tenants", "Idempotency", "ProblemBaseURL", "MaxBodyBytes"} {
		require.Contains(t, err.Error(), want)
	}
	_, err = bhttp.NewServer(bhttp.ServerConfig{})
	require.Error(t, err)
}

// TestOverTheWire runs the chain behind a real listener: the body limit
// must hold for chunked uploads and keep the server healthy.
func TestOverTheWire(t *testing.T) {
	t.Parallel()
	f := MustFixture(t)
	f.srv.Public().HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) {
		var in map[string]string
		if err := bhttp.DecodeJSON(r, &in); err != nil {
			bhttp.WriteError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}).Methods(http.MethodPost)
	ts := httptest.NewServer(f.h)
	t.Cleanup(ts.Close)

	big := io.MultiReader(strings.NewReader(`{"s":"`), strings.NewReader(strings.Repeat("x", 2<<20)), strings.NewReader(`"}`))
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, ts.URL+"/upload", big)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := ts.Client().Do(req)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, string(body))
	require.Contains(t, string(body), `"code":"payload_too_large"`)

	req, err = http.NewRequestWithContext(t.Context(), http.MethodGet, ts.URL+"/healthz", nil)
	require.NoError(t, err)
	resp, err = ts.Client().Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NotEmpty(t, resp.Header.Get("X-Request-ID"))
}
