package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	bhttp "github.com/bookingengine/booking/http"
	"github.com/bookingengine/booking/http/openapi/validator"
)

// openAPIPending are operations of the contract that the document
// describes and that bookingd does not serve yet. TestOpenAPIRoutes
// tolerates them; remove an entry once bookingd serves the operation (the
// test logs which ones it found served).
var openAPIPending = []string{}

// openAPIValidator is shared by the tests of this process: loading and
// routing the document takes a while under the race detector, so it is
// done once.
var openAPIValidator = sync.OnceValues(validator.New)

// newCheckedClient returns an HTTP client whose every exchange is checked
// against the OpenAPI document (package http/openapi/validator): a request
// or response that disagrees with it fails tb (Errorf, so the test goes on
// and reports every disagreement), naming method, target, status and the
// validator's message. Every end-to-end test calls bookingd through such a
// client; an exchange is left out only by a context made with
// validator.SkipRequest or validator.SkipExchange, whose reason says why.
// base is the transport underneath (a clone of http.DefaultTransport when
// nil); the returned counter counts the requests sent through it. The
// client's idle connections are closed when tb ends.
func newCheckedClient(tb testing.TB, base *http.Transport, timeout time.Duration) (*http.Client, *countingTransport) {
	tb.Helper()
	v, err := openAPIValidator()
	require.NoError(tb, err)
	if base == nil {
		base = http.DefaultTransport.(*http.Transport).Clone()
	}
	tb.Cleanup(base.CloseIdleConnections)
	counted := &countingTransport{next: base}
	c := &http.Client{Timeout: timeout, Transport: v.Transport(counted, func(_ *http.Request, err error) {
		tb.Errorf("OpenAPI: %v", err)
	})}
	return c, counted
}

// countingTransport counts the requests it sends.
type countingTransport struct {
	next *http.Transport
	n    atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

// CloseIdleConnections closes the idle connections of the transport
// underneath, so that http.Client.CloseIdleConnections reaches them.
func (c *countingTransport) CloseIdleConnections() { c.next.CloseIdleConnections() }

// Sent is how many requests went through the transport.
func (c *countingTransport) Sent() int { return int(c.n.Load()) }

// validated returns how many exchanges with s went through the validator.
func (s *e2eServer) validated() int { return s.sent.Sent() }

// recordingTB records what Errorf reports instead of failing the test.
type recordingTB struct {
	testing.TB
	mu       sync.Mutex
	reported []string
}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reported = append(r.reported, fmt.Sprintf(format, args...))
}

// TestCheckedClientFailsTheTest: a client of newCheckedClient fails its
// test on an exchange that disagrees with the document, naming method,
// target, status and the disagreement, and leaves out only what an
// exemption names.
func TestCheckedClientFailsTheTest(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"fine"}`))
	}))
	t.Cleanup(srv.Close)
	rec := &recordingTB{TB: t}
	c, sent := newCheckedClient(rec, nil, 10*time.Second)
	get := func(ctx context.Context) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/healthz", nil)
		require.NoError(t, err)
		res, err := c.Do(req)
		require.NoError(t, err)
		require.NoError(t, res.Body.Close())
	}
	get(context.Background())
	get(validator.SkipExchange(context.Background(), "this test checks that an exemption is honoured"))
	require.Equal(t, 2, sent.Sent())
	require.Len(t, rec.reported, 1)
	require.Contains(t, rec.reported[0], "OpenAPI: GET /healthz → 200")
	require.Contains(t, rec.reported[0], "response body doesn't match schema")
}

// TestOpenAPIRoutes compares the routes bookingd registers with the
// operations of the document, both ways.
func TestOpenAPIRoutes(t *testing.T) {
	t.Parallel()
	v, err := openAPIValidator()
	require.NoError(t, err)
	srv := MustStartE2E(t)
	srv.mu.Lock()
	api := srv.main.api
	srv.mu.Unlock()
	require.NotNil(t, api, "Main.Run keeps the API server")
	routes, err := validator.Routes(api.Walk)
	require.NoError(t, err)
	ops := v.Operations()

	var undocumented, unserved, nowServed []string
	for _, r := range routes {
		if !slices.Contains(ops, r) {
			undocumented = append(undocumented, r)
		}
	}
	for _, op := range ops {
		served := slices.Contains(routes, op)
		pending := slices.Contains(openAPIPending, op)
		switch {
		case !served && !pending:
			unserved = append(unserved, op)
		case served && pending:
			nowServed = append(nowServed, op)
		}
	}
	require.Empty(t, undocumented, "routes bookingd serves that http/openapi/openapi.json does not document")
	require.Empty(t, unserved, "operations the document promises that bookingd does not serve (and that are not listed in openAPIPending)")
	if len(nowServed) > 0 {
		t.Logf("served now, remove from openAPIPending: %s", strings.Join(nowServed, ", "))
	}
	require.Contains(t, routes, "GET /openapi.json")
	require.Contains(t, routes, "GET /metrics")
	require.Contains(t, routes, "GET /readyz")
}

// TestOpenAPIE2E sends a broad set of real requests, successes and
// failures, through bookingd and checks each request and response against
// the document.
func TestOpenAPIE2E(t *testing.T) {
	t.Parallel()
	srv := MustStartE2E(t)

	// Operations: no token, no tenant.
	for _, path := range []string{"/healthz", "/readyz", "/openapi.json", "/docs", "/docs/swagger-ui.css", "/redoc", "/redoc/redoc.standalone.js"} {
		srv.must(t, http.StatusOK, e2eCall{method: http.MethodGet, path: path})
	}
	srv.must(t, http.StatusOK, e2eCall{method: http.MethodHead, path: "/healthz"})
	requireE2EProblem(t, srv.do(t, e2eCall{method: http.MethodGet, path: "/docs/nothing.js"}), http.StatusNotFound, bhttp.CodeNotFound)

	// The fixture's tenant, category, resources and users are created
	// through the validator too.
	f := MustE2EFixture(t, srv, "openapi", map[string]any{
		"timezone":                 "America/Sao_Paulo",
		"business_hours":           e2eAllDay(),
		"slot_granularity_minutes": 15,
		"min_duration_minutes":     15,
		"closures":                 []map[string]string{{"date": "2030-12-25", "reason": "Natal"}},
		"custom_fields": []map[string]any{
			{"entity": "booking", "key": "reason", "label": "Motivo", "type": "select", "required": false, "options": []string{"rotina", "urgência"}},
			{"entity": "resource", "key": "floor", "label": "Andar", "type": "number"},
		},
	})
	other := MustE2EFixture(t, srv, "openapi-other", nil)
	client := f.Users[e2eClient]
	platform := f.Tokens[e2ePlatform]

	// Tenants and settings.
	srv.must(t, http.StatusOK, e2eCall{method: http.MethodGet, path: "/tenants/" + f.TenantID, token: platform})
	settingsPath := "/tenants/" + f.TenantID + "/settings"
	s := f.must(t, http.StatusOK, e2eAdmin, http.MethodGet, settingsPath, nil)
	f.must(t, http.StatusOK, e2eAdmin, http.MethodPut, settingsPath, map[string]any{
		"timezone": "America/Sao_Paulo", "business_hours": e2eAllDay(), "buffer_after_minutes": 0, "requires_approval": false,
	}, "If-Match", s.Header.Get("ETag"), "Idempotency-Key", "settings-1")
	requireE2EProblem(t, f.call(t, e2eAdmin, http.MethodPut, settingsPath, map[string]any{"timezone": "UTC"}, "If-Match", s.Header.Get("ETag")),
		http.StatusPreconditionFailed, bhttp.CodeVersionMismatch)
	requireE2EProblem(t, f.call(t, e2eAdmin, http.MethodPut, settingsPath, map[string]any{"timezone": "Mars/Olympus"}),
		http.StatusUnprocessableEntity, bhttp.CodeValidationFailed)
	requireE2EProblem(t, srv.do(t, e2eCall{method: http.MethodPost, path: "/tenants", token: platform,
		body: map[string]any{"name": "Copy", "domain": f.Domain}}), http.StatusConflict, bhttp.CodeDomainTaken)
	requireE2EProblem(t, srv.do(t, e2eCall{method: http.MethodPost, path: "/tenants", token: f.Tokens[e2eAdmin],
		body: map[string]any{"name": "Mine", "domain": "mine.example.com"}}), http.StatusForbidden, bhttp.CodeForbidden)
	srv.must(t, http.StatusCreated, e2eCall{method: http.MethodPost, path: "/tenants", token: platform, body: map[string]any{
		"name": "Clínica Sorriso", "domain": "sorriso-openapi.example.com",
		"branding": map[string]any{"logo_url": "https://sorriso.example.com/logo.png", "primary_color": "#0a7d5a"},
		"labels":   map[string]any{"resource": "Dentista", "booking": "Consulta", "client": "Paciente"},
		"settings": map[string]any{"timezone": "America/Sao_Paulo", "max_bookings_per_client_per_day": 2},
	}})

	// Categories, resources, availability.
	f.must(t, http.StatusOK, e2eClient, http.MethodGet, "/resource-categories/"+f.Category, nil)
	res := f.must(t, http.StatusCreated, e2eManager, http.MethodPost, "/resources", map[string]any{
		"category_id": f.Category, "name": "Chair", "kind": "equipment", "capacity": 2, "attributes": map[string]any{"floor": 1}, "timezone": "Europe/Lisbon",
	})
	chair := res.str(t, "id")
	got := f.must(t, http.StatusOK, e2eProfessional, http.MethodGet, "/resources/"+chair, nil)
	patched := f.must(t, http.StatusOK, e2eManager, http.MethodPatch, "/resources/"+chair, map[string]any{"name": "Chair 1", "capacity": 3},
		"If-Match", got.Header.Get("ETag"))
	av := f.must(t, http.StatusOK, e2eManager, http.MethodGet, "/resources/"+chair+"/availability", nil)
	f.must(t, http.StatusOK, e2eManager, http.MethodPut, "/resources/"+chair+"/availability", map[string]any{
		"weekly":    map[string]any{"mon": []map[string]string{{"start": "09:00", "end": "17:00"}}},
		"overrides": []map[string]any{{"date": f.Day.AddDate(0, 0, 7).Format("2006-01-02"), "intervals": []any{}}},
	}, "If-Match", patched.Header.Get("ETag"))
	require.Equal(t, av.Header.Get("ETag"), patched.Header.Get("ETag"))
	requireE2EProblem(t, f.call(t, e2eManager, http.MethodPost, "/resources", map[string]any{"name": "X", "kind": "spaceship"}),
		http.StatusUnprocessableEntity, bhttp.CodeValidationFailed)
	requireE2EProblem(t, f.call(t, e2eClient, http.MethodPost, "/resources", map[string]any{"name": "X", "kind": "space"}),
		http.StatusForbidden, bhttp.CodeForbidden)
	f.must(t, http.StatusOK, e2eManager, http.MethodDelete, "/resources/"+chair, nil)

	// Users.
	f.must(t, http.StatusOK, e2eAdmin, http.MethodGet, "/users/"+f.Users[e2eProfessional], nil)
	u := f.must(t, http.StatusOK, e2eAdmin, http.MethodGet, "/users/"+client, nil)
	f.must(t, http.StatusOK, e2eAdmin, http.MethodPatch, "/users/"+client, map[string]any{"name": "Ana", "attributes": map[string]any{"vip": true}},
		"If-Match", u.Header.Get("ETag"))
	requireE2EProblem(t, f.call(t, e2eAdmin, http.MethodPost, "/users", map[string]any{"email": "not-an-email", "name": "", "role": "wizard"}),
		http.StatusUnprocessableEntity, bhttp.CodeValidationFailed)
	requireE2EProblem(t, f.call(t, e2eAdmin, http.MethodPost, "/users", map[string]any{
		"email": strings.ToUpper(e2eClient + "@" + f.Domain), "name": "Copy", "role": "client",
	}), http.StatusConflict, bhttp.CodeEmailTaken)

	// Bookings: create (with and without a key), replay, conflict.
	at := e2eAt(f.Day, 10, 0)
	body := e2eBooking(f.Space, client, at, 60)
	body["attributes"] = map[string]any{"reason": "rotina"}
	first := f.must(t, http.StatusCreated, e2eAdmin, http.MethodPost, "/bookings", body, "Idempotency-Key", "book-1", "X-Request-ID", "openapi-e2e")
	replay := f.must(t, http.StatusCreated, e2eAdmin, http.MethodPost, "/bookings", body, "Idempotency-Key", "book-1")
	require.Equal(t, "true", replay.Header.Get(bhttp.HeaderIdempotentReplayed))
	requireE2EProblem(t, f.call(t, e2eAdmin, http.MethodPost, "/bookings", e2eBooking(f.Space, client, at.Add(time.Hour), 60), "Idempotency-Key", "book-1"),
		http.StatusUnprocessableEntity, bhttp.CodeIdempotencyKeyReused)
	booking := first.str(t, "id")
	conflict := f.call(t, e2eAdmin, http.MethodPost, "/bookings", e2eBooking(f.Space, f.Users[e2eClient2], at.Add(30*time.Minute), 60))
	requireE2EProblem(t, conflict, http.StatusConflict, bhttp.CodeBookingConflict)
	require.Equal(t, []string{booking}, problemConflicts(t, conflict))
	mine := f.book(t, e2eClient, f.Space, "", e2eAt(f.Day, 12, 0))

	// Validation and media type problems.
	for _, tc := range []struct {
		name   string
		body   any
		header []string
		status int
		code   string
	}{
		{"unknown member", map[string]any{"resource_id": f.Space, "start": at.Format(time.RFC3339), "end": at.Add(time.Hour).Format(time.RFC3339), "colour": "red"},
			nil, http.StatusBadRequest, bhttp.CodeValidationFailed},
		{"malformed JSON", `{"resource_id": "`, nil, http.StatusBadRequest, bhttp.CodeValidationFailed},
		{"wrong type", `{"seats": "two"}`, nil, http.StatusBadRequest, bhttp.CodeValidationFailed},
		{"times missing", map[string]any{"resource_id": f.Space, "client_id": client}, nil, http.StatusUnprocessableEntity, bhttp.CodeValidationFailed},
		{"time without offset", `{"resource_id": "` + f.Space + `", "start": "2030-01-01T10:00:00", "end": "2030-01-01T11:00:00Z"}`,
			nil, http.StatusBadRequest, bhttp.CodeValidationFailed},
		{"negative seats", map[string]any{"resource_id": f.Space, "client_id": client, "seats": -1, "start": at.Format(time.RFC3339), "end": at.Add(time.Hour).Format(time.RFC3339)},
			nil, http.StatusUnprocessableEntity, bhttp.CodeValidationFailed},
		{"unbounded recurrence", func() map[string]any {
			b := e2eBooking(f.Space, client, e2eAt(f.Day, 14, 0), 30)
			b["recurrence"] = map[string]any{"rrule": "FREQ=WEEKLY", "policy": "all_or_nothing"}
			return b
		}(), nil, http.StatusUnprocessableEntity, bhttp.CodeValidationFailed},
		{"off the grid", e2eBooking(f.Space, client, e2eAt(f.Day, 13, 5), 30), nil, http.StatusUnprocessableEntity, bhttp.CodeOffSlotGrid},
		{"not JSON", `resource_id=1`, []string{"Content-Type", "application/x-www-form-urlencoded"}, http.StatusUnsupportedMediaType, bhttp.CodeUnsupportedMediaType},
		{"too large", `{"title":"` + strings.Repeat("a", int(bhttp.DefaultMaxBodyBytes)) + `"}`, nil, http.StatusRequestEntityTooLarge, bhttp.CodePayloadTooLarge},
		{"bad Idempotency-Key", e2eBooking(f.Space, client, e2eAt(f.Day, 14, 0), 30), []string{"Idempotency-Key", "no spaces allowed"},
			http.StatusBadRequest, bhttp.CodeValidationFailed},
	} {
		r := f.call(t, e2eAdmin, http.MethodPost, "/bookings", tc.body, tc.header...)
		requireE2EProblem(t, r, tc.status, tc.code)
	}

	// Authentication, authorization, tenancy.
	requireE2EProblem(t, srv.do(t, e2eCall{method: http.MethodGet, path: "/bookings/" + booking, tenant: f.TenantID}), http.StatusUnauthorized, bhttp.CodeUnauthorized)
	requireE2EProblem(t, srv.do(t, e2eCall{method: http.MethodGet, path: "/bookings/" + booking, tenant: f.TenantID, token: "not-a-jwt"}),
		http.StatusUnauthorized, bhttp.CodeUnauthorized)
	readOnly := srv.token(t, client, bhttp.RoleClient, uuid.MustParse(f.TenantID), bhttp.ScopeBookingsRead)
	requireE2EProblem(t, srv.do(t, e2eCall{method: http.MethodPost, path: "/bookings/" + mine + "/cancel", tenant: f.TenantID, token: readOnly}),
		http.StatusForbidden, bhttp.CodeForbidden)
	requireE2EProblem(t, srv.do(t, e2eCall{method: http.MethodGet, path: "/bookings/" + booking, tenant: other.TenantID, token: f.Tokens[e2eAdmin]}),
		http.StatusForbidden, bhttp.CodeForbidden)
	requireE2EProblem(t, other.call(t, e2eAdmin, http.MethodGet, "/bookings/"+booking, nil), http.StatusNotFound, bhttp.CodeNotFound)
	requireE2EProblem(t, f.call(t, e2eAdmin, http.MethodGet, "/bookings/42", nil), http.StatusNotFound, bhttp.CodeNotFound)
	requireE2EProblem(t, f.call(t, e2eAdmin, http.MethodGet, "/bookings/"+uuid.NewString(), nil), http.StatusNotFound, bhttp.CodeNotFound)
	requireE2EProblem(t, srv.do(t, e2eCall{method: http.MethodGet, path: "/bookings/" + booking, token: f.Tokens[e2eAdmin]}),
		http.StatusBadRequest, bhttp.CodeValidationFailed)
	requireE2EProblem(t, srv.do(t, e2eCall{method: http.MethodGet, path: "/bookings/" + booking, token: f.Tokens[e2eAdmin], tenant: f.TenantID, domain: f.Domain}),
		http.StatusBadRequest, bhttp.CodeValidationFailed)
	srv.must(t, http.StatusOK, e2eCall{method: http.MethodGet, path: "/bookings/" + booking, token: f.Tokens[e2eAdmin], domain: f.Domain})
	requireE2EProblem(t, srv.do(t, e2eCall{method: http.MethodGet, path: "/bookings/" + booking, token: platform, domain: "nobody.example.com"}),
		http.StatusNotFound, bhttp.CodeNotFound)
	requireE2EProblem(t, srv.do(t, e2eCall{method: http.MethodGet, path: "/no-such-thing"}), http.StatusNotFound, bhttp.CodeNotFound)
	requireE2EProblem(t, f.call(t, e2eAdmin, http.MethodPut, "/bookings", map[string]any{}), http.StatusMethodNotAllowed, bhttp.CodeMethodNotAllowed)

	// Lifecycle and history.
	b := f.must(t, http.StatusOK, e2eAdmin, http.MethodGet, "/bookings/"+booking, nil)
	moved := f.must(t, http.StatusOK, e2eAdmin, http.MethodPost, "/bookings/"+booking+"/reschedule", map[string]any{
		"start": e2eAt(f.Day, 15, 0).Format(time.RFC3339), "end": e2eAt(f.Day, 16, 0).Format(time.RFC3339), "reason": "asked to",
	}, "If-Match", b.Header.Get("ETag"))
	requireE2EProblem(t, f.call(t, e2eAdmin, http.MethodPost, "/bookings/"+booking+"/confirm", nil), http.StatusConflict, bhttp.CodeInvalidTransition)
	requireE2EProblem(t, f.call(t, e2eAdmin, http.MethodPost, "/bookings/"+booking+"/cancel", nil, "If-Match", `"1"`),
		http.StatusPreconditionFailed, bhttp.CodeVersionMismatch)
	requireE2EProblem(t, f.call(t, e2eAdmin, http.MethodPost, "/bookings/"+booking+"/cancel", nil, "If-Match", `W/"1"`),
		http.StatusBadRequest, bhttp.CodeValidationFailed)
	f.must(t, http.StatusOK, e2eAdmin, http.MethodPost, "/bookings/"+booking+"/check-in", nil, "If-Match", moved.Header.Get("ETag"))
	f.must(t, http.StatusOK, e2eAdmin, http.MethodPost, "/bookings/"+booking+"/complete", map[string]any{"reason": "done"})
	cancelled := f.must(t, http.StatusOK, e2eClient, http.MethodPost, "/bookings/"+mine+"/cancel", map[string]any{"reason": "cannot come"})
	require.Equal(t, "cancelled", cancelled.Doc["status"])
	hist := f.must(t, http.StatusOK, e2eClient, http.MethodGet, "/bookings/"+mine+"/history", nil)
	require.Len(t, hist.Doc["events"], 2)
	f.must(t, http.StatusOK, e2eAdmin, http.MethodGet, "/bookings/"+booking+"/history", nil)

	// Pending approval: confirm and reject.
	appr := MustE2EFixture(t, srv, "openapi-approval", map[string]any{"requires_approval": true})
	p1 := appr.book(t, e2eClient, appr.Space, "", e2eAt(appr.Day, 10, 0))
	p2 := appr.book(t, e2eClient, appr.Space, "", e2eAt(appr.Day, 11, 0))
	require.Equal(t, "confirmed", appr.must(t, http.StatusOK, e2eManager, http.MethodPost, "/bookings/"+p1+"/confirm", nil).Doc["status"])
	require.Equal(t, "rejected", appr.must(t, http.StatusOK, e2eManager, http.MethodPost, "/bookings/"+p2+"/reject", map[string]any{"reason": "full"}).Doc["status"])

	// Queries on the read side: read-your-writes with X-Min-Position.
	pos := strconv.FormatInt(e2ePosition(t, cancelled), 10)
	list := readYourWrite(t, f, e2eAdmin, "/bookings?resource_id="+f.Space+"&status=completed&status=cancelled&limit=1", pos)
	require.Len(t, list.Doc["bookings"], 1)
	next := list.str(t, "next_cursor")
	f.must(t, http.StatusOK, e2eAdmin, http.MethodGet, "/bookings?resource_id="+f.Space+"&status=completed&status=cancelled&limit=1&cursor="+next, nil)
	readYourWrite(t, f, e2eClient, "/bookings?from="+f.Day.Format(time.RFC3339)+"&to="+f.Day.AddDate(0, 0, 1).Format(time.RFC3339), pos)
	requireE2EProblem(t, f.call(t, e2eAdmin, http.MethodGet, "/bookings?limit=many", nil), http.StatusBadRequest, bhttp.CodeValidationFailed)
	requireE2EProblem(t, f.call(t, e2eAdmin, http.MethodGet, "/bookings?limit=5000", nil), http.StatusUnprocessableEntity, bhttp.CodeValidationFailed)
	requireE2EProblem(t, f.call(t, e2eAdmin, http.MethodGet, "/bookings", nil, "X-Min-Position", "soon"), http.StatusBadRequest, bhttp.CodeValidationFailed)

	from, to := f.Day.Format(time.RFC3339), f.Day.AddDate(0, 0, 1).Format(time.RFC3339)
	slots := readYourWrite(t, f, e2eClient, "/availability?resource_id="+f.Space+"&from="+from+"&to="+to+"&duration=60", pos)
	require.NotEmpty(t, slots.Doc["slots"])
	f.must(t, http.StatusOK, e2eClient, http.MethodGet, "/availability?category_id="+f.Category+"&from="+from+"&to="+to+"&duration=30", nil)
	requireE2EProblem(t, f.call(t, e2eClient, http.MethodGet, "/availability?resource_id="+f.Space+"&from="+from+"&to="+f.Day.AddDate(0, 2, 0).Format(time.RFC3339)+"&duration=60", nil),
		http.StatusUnprocessableEntity, bhttp.CodeValidationFailed)
	requireE2EProblem(t, f.call(t, e2eClient, http.MethodGet, "/availability?resource_id=x&from="+from+"&to="+to+"&duration=60", nil),
		http.StatusBadRequest, bhttp.CodeValidationFailed)

	// The metrics saw the commands, by outcome and code.
	metrics := srv.must(t, http.StatusOK, e2eCall{method: http.MethodGet, path: "/metrics"})
	text := string(metrics.Body)
	for _, want := range []string{
		`booking_commands_total{code="",command="create_booking",outcome="accepted"}`,
		`booking_commands_total{code="",command="create_booking",outcome="replayed"} 1`,
		`booking_commands_total{code="booking_conflict",command="create_booking",outcome="rejected"} 1`,
		`booking_commands_total{code="",command="cancel_booking",outcome="accepted"} 1`,
		`booking_http_requests_total{method="GET",route="/bookings/{id}",status="200"}`,
		`booking_eventstore_append_duration_seconds_bucket{outcome="ok"`,
		`booking_eventstore_appended_events_total`,
	} {
		require.True(t, strings.Contains(text, want), "/metrics lacks %s", want)
	}
	require.Greater(t, srv.validated(), 100, "the requests went through the validator")
}

// TestOpenAPICatalogLists lists categories, resources and users through
// the validator: paging, filters, the same items as the single-object
// reads, staff-only users and tenant isolation.
func TestOpenAPICatalogLists(t *testing.T) {
	t.Parallel()
	srv := MustStartE2E(t)
	f := MustE2EFixture(t, srv, "openapi-catalog", nil)
	other := MustE2EFixture(t, srv, "openapi-catalog-other", nil)

	cat := f.must(t, http.StatusCreated, e2eAdmin, http.MethodPost, "/resource-categories", map[string]any{"name": "Tools"}).str(t, "id")
	var tools []string
	var last e2eReply
	for _, name := range []string{"Saw", "Drill", "Hammer"} {
		last = f.must(t, http.StatusCreated, e2eManager, http.MethodPost, "/resources", map[string]any{
			"category_id": cat, "name": name, "kind": "equipment", "capacity": 1, "attributes": map[string]any{"brand": name},
		})
		tools = append(tools, last.str(t, "id"))
	}
	gone := f.must(t, http.StatusOK, e2eManager, http.MethodDelete, "/resources/"+tools[0], nil)
	pos := strconv.FormatInt(max(e2ePosition(t, last), e2ePosition(t, gone)), 10)

	// Two pages of the category's resources, by name: Drill, Hammer | Saw.
	page := readYourWrite(t, f, e2eClient, "/resources?category_id="+cat+"&limit=2", pos)
	items := page.Doc["resources"].([]any)
	require.Len(t, items, 2)
	require.Equal(t, f.must(t, http.StatusOK, e2eManager, http.MethodGet, "/resources/"+tools[1], nil).Doc, items[0],
		"a list item is the single-object read")
	require.Equal(t, tools[2], items[1].(map[string]any)["id"])
	rest := f.must(t, http.StatusOK, e2eClient, http.MethodGet, "/resources?category_id="+cat+"&limit=2&cursor="+page.str(t, "next_cursor"), nil)
	require.Len(t, rest.Doc["resources"], 1)
	require.Equal(t, f.must(t, http.StatusOK, e2eManager, http.MethodGet, "/resources/"+tools[0], nil).Doc, rest.Doc["resources"].([]any)[0])
	require.NotContains(t, rest.Doc, "next_cursor")

	active := f.must(t, http.StatusOK, e2eProfessional, http.MethodGet, "/resources?kind=equipment&active=true", nil)
	require.Len(t, active.Doc["resources"], 2)
	inactive := f.must(t, http.StatusOK, e2eProfessional, http.MethodGet, "/resources?active=false", nil)
	require.Len(t, inactive.Doc["resources"], 1)
	require.Len(t, f.must(t, http.StatusOK, e2eAdmin, http.MethodGet, "/resources", nil).Doc["resources"], 5, "the fixture's two and the three tools")

	cats := f.must(t, http.StatusOK, e2eClient, http.MethodGet, "/resource-categories", nil)
	require.Len(t, cats.Doc["resource_categories"], 2)
	require.Equal(t, f.must(t, http.StatusOK, e2eClient, http.MethodGet, "/resource-categories/"+cat, nil).Doc,
		cats.Doc["resource_categories"].([]any)[1], "Tools sorts after the fixture's category")

	users := f.must(t, http.StatusOK, e2eAdmin, http.MethodGet, "/users?role=client", nil)
	require.Len(t, users.Doc["users"], 2)
	byEmail := f.must(t, http.StatusOK, e2eManager, http.MethodGet, "/users?email="+strings.ToUpper(e2eClient+"@"+f.Domain), nil)
	require.Equal(t, []any{f.must(t, http.StatusOK, e2eAdmin, http.MethodGet, "/users/"+f.Users[e2eClient], nil).Doc}, byEmail.Doc["users"])
	platform := srv.must(t, http.StatusOK, e2eCall{method: http.MethodGet, path: "/users?limit=200", token: f.Tokens[e2ePlatform], tenant: f.TenantID})
	require.Len(t, platform.Doc["users"], 5)
	for _, role := range []string{e2eProfessional, e2eClient} {
		requireE2EProblem(t, f.call(t, role, http.MethodGet, "/users", nil), http.StatusForbidden, bhttp.CodeForbidden)
	}

	// Another tenant sees none of these.
	require.Len(t, other.must(t, http.StatusOK, e2eAdmin, http.MethodGet, "/resources", nil).Doc["resources"], 2)
	require.Empty(t, other.must(t, http.StatusOK, e2eAdmin, http.MethodGet, "/resources?category_id="+cat, nil).Doc["resources"])
	require.Len(t, other.must(t, http.StatusOK, e2eAdmin, http.MethodGet, "/resource-categories", nil).Doc["resource_categories"], 1)

	requireE2EProblem(t, f.call(t, e2eAdmin, http.MethodGet, "/resources?active=maybe", nil), http.StatusBadRequest, bhttp.CodeValidationFailed)
	requireE2EProblem(t, f.call(t, e2eAdmin, http.MethodGet, "/resource-categories?cursor=%21", nil), http.StatusUnprocessableEntity, bhttp.CodeValidationFailed)
}

// readYourWrite GETs path as role with X-Min-Position pos and expects 200.
// A 504 timeout is what the contract tells a client to retry: the read
// side's watermark is cluster-wide, so a slow transaction of another test
// on the same PostgreSQL server can hold it back for seconds. It is retried
// twice, each answer still checked against the document.
func readYourWrite(tb testing.TB, f *e2eFixture, role, path, pos string) e2eReply {
	tb.Helper()
	var r e2eReply
	for range 3 {
		r = f.call(tb, role, http.MethodGet, path, nil, "X-Min-Position", pos)
		if r.Status != http.StatusGatewayTimeout {
			break
		}
		requireE2EProblem(tb, r, http.StatusGatewayTimeout, bhttp.CodeTimeout)
	}
	require.Equal(tb, http.StatusOK, r.Status, "%s", r)
	return r
}

// TestOpenAPIReadyz checks /readyz on PostgreSQL through the validator.
func TestOpenAPIReadyz(t *testing.T) {
	t.Parallel()
	srv := MustStartE2E(t)
	r := srv.must(t, http.StatusOK, e2eCall{method: http.MethodGet, path: "/readyz"})
	var names []string
	for _, c := range r.Doc["checks"].([]any) {
		names = append(names, c.(map[string]any)["name"].(string))
	}
	require.Subset(t, names, []string{"postgres", "migrations"})

	srv.mu.Lock()
	ready := srv.main.Readiness
	srv.mu.Unlock()
	ready.Add(bhttp.LagCheck("test-lag", 10, func() int64 { return 11 }))
	p := srv.do(t, e2eCall{method: http.MethodGet, path: "/readyz"})
	requireE2EProblem(t, p, http.StatusServiceUnavailable, bhttp.CodeServiceUnavailable)
	require.Len(t, p.Doc["checks"], 1)
	head := srv.do(t, e2eCall{method: http.MethodHead, path: "/readyz"})
	require.Equal(t, http.StatusServiceUnavailable, head.Status)
	require.NotEmpty(t, head.Header.Get("Retry-After"))
	ready.Remove("test-lag")
	srv.must(t, http.StatusOK, e2eCall{method: http.MethodGet, path: "/readyz"})
	srv.must(t, http.StatusOK, e2eCall{method: http.MethodHead, path: "/readyz"})
}
