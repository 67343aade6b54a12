package validator_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gorilla/mux"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/http/openapi"
	"github.com/bookingengine/booking/http/openapi/validator"
)

func TestDocumentLoads(t *testing.T) {
	t.Parallel()
	doc, err := validator.Load(context.Background(), openapi.Document())
	require.NoError(t, err)
	require.Equal(t, "3.1.0", doc.OpenAPI)
	seen := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			require.NotEmpty(t, op.OperationID, "%s %s", method, path)
			require.False(t, seen[op.OperationID], "operationId %s twice", op.OperationID)
			seen[op.OperationID] = true
			require.NotNil(t, op.Responses.Status(500), "%s %s documents no 500", method, path)
		}
	}
}

func TestLoadRefusesAnInvalidDocument(t *testing.T) {
	t.Parallel()
	_, err := validator.Load(context.Background(), []byte(`{"openapi":"3.1.0","info":{"title":"x","version":"1"},"paths":{"/a":{"get":{"responses":{"200":{"$ref":"#/components/responses/Nope"}}}}}}`))
	require.Error(t, err)
}

// shared is one Validator for the tests: loading the document takes a
// while under the race detector.
var shared = sync.OnceValues(validator.New)

// reply is a canned response.
type reply struct {
	status int
	header map[string]string
	body   string
}

// check serves req with a handler that answers r through the validator and
// returns what the validator reported.
func check(t *testing.T, req *http.Request, r reply) []error {
	t.Helper()
	v, err := shared()
	require.NoError(t, err)
	var mu sync.Mutex
	var errs []error
	h := v.Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		for k, val := range r.header {
			w.Header().Set(k, val)
		}
		w.WriteHeader(r.status)
		_, _ = w.Write([]byte(r.body))
	}), func(_ *http.Request, err error) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, err)
	})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	require.Equal(t, r.status, w.Code, "the validator passes the response on")
	require.Equal(t, r.body, w.Body.String())
	return errs
}

func jsonReply(status int, body string, header ...string) reply {
	r := reply{status: status, body: body, header: map[string]string{"Content-Type": "application/json"}}
	for i := 0; i+1 < len(header); i += 2 {
		r.header[header[i]] = header[i+1]
	}
	return r
}

func problem(status int, code string) reply {
	return reply{status: status, header: map[string]string{"Content-Type": "application/problem+json"},
		body: `{"type":"https://booking.invalid/problems/` + code + `","title":"T","status":` + strconv.Itoa(status) + `,"code":"` + code + `","detail":"d"}`}
}

func req(method, target, body string, header ...string) *http.Request {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	return r
}

const (
	tenant   = "11111111-1111-4111-8111-111111111111"
	resource = "22222222-2222-4222-8222-222222222222"
)

func booking() string {
	return `{"id":"33333333-3333-4333-8333-333333333333","tenant_id":"` + tenant + `","resource_id":"` + resource + `",` +
		`"client_id":"44444444-4444-4444-8444-444444444444","start":"2026-12-01T09:00:00-03:00","end":"2026-12-01T10:00:00-03:00",` +
		`"timezone":"America/Sao_Paulo","seats":1,"title":"","notes":"","attributes":{},"status":"confirmed","policy_version":1,` +
		`"buffer_before_minutes":0,"buffer_after_minutes":0,"version":1,"created_at":"2026-11-01T09:00:00Z",` +
		`"updated_at":"2026-11-01T09:00:00Z","created_by":"u","updated_by":"u"}`
}

func TestCheck(t *testing.T) {
	t.Parallel()
	auth := []string{"Authorization", "Bearer x", "X-Tenant-ID", tenant}
	bookingBody := `{"resource_id":"` + resource + `","start":"2026-12-01T09:00:00-03:00","end":"2026-12-01T10:00:00-03:00"}`
	created := []string{"X-Position", "12", "ETag", `"1"`, "Location", "/bookings/33333333-3333-4333-8333-333333333333"}
	for _, tc := range []struct {
		name  string
		req   *http.Request
		reply reply
		want  string // "" when the exchange agrees with the document
	}{
		{"healthz", req(http.MethodGet, "/healthz", ""), jsonReply(200, `{"status":"ok"}`), ""},
		{"healthz with a wrong body", req(http.MethodGet, "/healthz", ""), jsonReply(200, `{"status":"fine"}`), "response does not match"},
		{"undocumented status", req(http.MethodGet, "/healthz", ""), jsonReply(418, `{}`), "status is not supported"},
		{"booking created", req(http.MethodPost, "/bookings", bookingBody, auth...), jsonReply(201, booking(), created...), ""},
		{"booking created without X-Position", req(http.MethodPost, "/bookings", bookingBody, auth...),
			jsonReply(201, booking(), "ETag", `"1"`, "Location", "/bookings/x"), "X-Position"},
		{"booking without a required member", req(http.MethodPost, "/bookings", `{"start":"2026-12-01T09:00:00-03:00"}`, auth...),
			problem(422, "validation_failed"), ""},
		{"booking without a required member accepted", req(http.MethodPost, "/bookings", `{"start":"2026-12-01T09:00:00-03:00"}`, auth...),
			jsonReply(201, booking(), created...), "refuses the request, yet the server accepted it"},
		{"unknown member refused", req(http.MethodPost, "/bookings", `{"colour":"red"}`, auth...), problem(400, "validation_failed"), ""},
		{"no token refused", req(http.MethodPost, "/bookings", bookingBody, "X-Tenant-ID", tenant), problem(401, "unauthorized"), ""},
		{"no token accepted", req(http.MethodPost, "/bookings", bookingBody, "X-Tenant-ID", tenant),
			jsonReply(201, booking(), created...), "no bearer token"},
		{"conflict", req(http.MethodPost, "/bookings", bookingBody, auth...), problem(409, "booking_conflict"), ""},
		{"problem with a wrong media type", req(http.MethodPost, "/bookings", bookingBody, auth...),
			jsonReply(409, `{"code":"booking_conflict"}`), "response does not match"},
		{"unknown path refused", req(http.MethodGet, "/nowhere", ""), problem(404, "not_found"), ""},
		{"unknown path answered", req(http.MethodGet, "/nowhere", ""), jsonReply(200, `{}`), "no operation"},
		{"unknown method refused", req(http.MethodPut, "/healthz", ""), problem(405, "method_not_allowed"), ""},
		{"undocumented member", req(http.MethodPost, "/bookings", bookingBody, auth...),
			jsonReply(201, strings.Replace(booking(), `"seats":1`, `"seats":1,"colour":"red"`, 1), created...), "members the document does not name: /colour"},
		{"undocumented nested member", req(http.MethodGet, "/readyz", ""),
			jsonReply(200, `{"status":"ready","checks":[{"name":"postgres","status":"ok","duration_ms":1,"colour":"red"}]}`), "/checks/0/colour"},
		{"free attributes", req(http.MethodPost, "/bookings", bookingBody, auth...),
			jsonReply(201, strings.Replace(booking(), `"attributes":{}`, `"attributes":{"colour":"red","n":{"x":1}}`, 1), created...), ""},
		{"members of allOf parts", req(http.MethodGet, "/readyz", ""), reply{status: 503,
			header: map[string]string{"Content-Type": "application/problem+json", "Retry-After": "5"},
			body: `{"type":"https://booking.invalid/problems/service_unavailable","title":"T","status":503,"code":"service_unavailable","detail":"d",` +
				`"checks":[{"name":"postgres","status":"failing","duration_ms":1,"error":"down"}]}`}, ""},
		{"undeclared query parameter accepted", req(http.MethodGet, "/healthz?verbose=1", ""), jsonReply(200, `{"status":"ok"}`),
			"query parameters the document does not declare: verbose"},
		{"undeclared query parameter refused", req(http.MethodGet, "/bookings?colour=red", "", auth...), problem(400, "validation_failed"), ""},
		{"undeclared header", req(http.MethodGet, "/healthz", ""), jsonReply(200, `{"status":"ok"}`, "X-Position", "3"),
			"headers the document does not declare for 200: X-Position"},
		{"generic headers need no declaration", req(http.MethodGet, "/healthz", ""), jsonReply(200, `{"status":"ok"}`, "Cache-Control", "no-store", "Vary", "Accept"), ""},
		{"uuid format", req(http.MethodPost, "/bookings", bookingBody, auth...),
			jsonReply(201, strings.Replace(booking(), `"id":"33333333-3333-4333-8333-333333333333"`, `"id":"booking-1"`, 1), created...), "uuid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			errs := check(t, tc.req, tc.reply)
			if tc.want == "" {
				require.Empty(t, errs)
				return
			}
			require.Len(t, errs, 1)
			require.Contains(t, errs[0].Error(), tc.want)
		})
	}
}

func TestTransport(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/healthz" {
			_, _ = w.Write([]byte(`{"status":"ok"}`))
			return
		}
		_, _ = w.Write([]byte(`{}`))
	}))
	t.Cleanup(srv.Close)
	v, err := shared()
	require.NoError(t, err)
	var mu sync.Mutex
	var reported []string
	client := &http.Client{Transport: v.Transport(nil, func(r *http.Request, err error) {
		mu.Lock()
		defer mu.Unlock()
		reported = append(reported, r.URL.Path+": "+err.Error())
	})}
	for _, path := range []string{"/healthz", "/readyz"} {
		res, err := client.Get(srv.URL + path)
		require.NoError(t, err)
		require.NoError(t, res.Body.Close())
	}
	require.Len(t, reported, 1)
	require.True(t, strings.HasPrefix(reported[0], "/readyz: "), reported[0])
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	r := mux.NewRouter()
	g := r.NewRoute().Subrouter()
	g.HandleFunc("/bookings/{id}/{action:cancel|check-in}", nil).Methods(http.MethodPost)
	g.HandleFunc("/things/{id:[0-9]+}", nil).Methods(http.MethodGet, http.MethodHead)
	g.HandleFunc("/calendars/{id}.ics", nil).Methods(http.MethodGet)
	r.HandleFunc("/any", nil)
	got, err := validator.Routes(r.Walk)
	require.NoError(t, err)
	require.Equal(t, []string{
		"GET /calendars/{id}.ics",
		"GET /things/{id}",
		"HEAD /things/{id}",
		"POST /bookings/{id}/cancel",
		"POST /bookings/{id}/check-in",
	}, got)

	v, err := shared()
	require.NoError(t, err)
	ops := v.Operations()
	require.Contains(t, ops, "POST /bookings/{id}/check-in")
	require.Contains(t, ops, "HEAD /healthz")
}

func TestExemptions(t *testing.T) {
	t.Parallel()
	auth := []string{"Authorization", "Bearer x", "X-Tenant-ID", tenant}
	created := []string{"X-Position", "12", "ETag", `"1"`, "Location", "/bookings/33333333-3333-4333-8333-333333333333"}
	refused := req(http.MethodPost, "/bookings", `{"start":"2026-12-01T09:00:00-03:00"}`, auth...)

	skipRequest := refused.WithContext(validator.SkipRequest(refused.Context(), "the test sends a refused body on purpose"))
	require.Empty(t, check(t, skipRequest, jsonReply(201, booking(), created...)), "the request is not checked")
	errs := check(t, skipRequest, jsonReply(201, `{}`, created...))
	require.Len(t, errs, 1, "the response still is")
	require.Contains(t, errs[0].Error(), "response does not match")

	gateway := req(http.MethodGet, "/metrics", "")
	gateway = gateway.WithContext(validator.SkipExchange(gateway.Context(), "a gateway answers by itself"))
	require.Empty(t, check(t, gateway, problem(404, "not_found")))

	require.Panics(t, func() { validator.SkipRequest(context.Background(), " ") })
	require.Panics(t, func() { validator.SkipExchange(context.Background(), "") })
}
