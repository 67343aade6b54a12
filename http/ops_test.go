package http_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	bhttp "github.com/bookingengine/booking/http"
)

// opsFixture is a server with metrics and readiness and a few endpoints of
// each group.
type opsFixture struct {
	*fixture
	metrics *bhttp.Metrics
	ready   *bhttp.Readiness
}

func mustOpsFixture(tb testing.TB) *opsFixture {
	tb.Helper()
	v, err := bhttp.NewVerifier(bhttp.AuthConfig{Secret: testSecret})
	require.NoError(tb, err)
	m, err := bhttp.NewMinter(testSecret)
	require.NoError(tb, err)
	logs := &syncBuffer{}
	store := bhttp.NewMemoryIdempotencyStore(bhttp.IdempotencyOptions{})
	metrics := bhttp.NewMetrics()
	ready := bhttp.NewReadiness().WithTimeout(200 * time.Millisecond)
	srv, err := bhttp.NewServer(bhttp.ServerConfig{
		Verifier:    v,
		Tenants:     fakeTenants{"sorriso.example.com": tenantA},
		Idempotency: store,
		Logger:      slog.New(slog.NewJSONHandler(logs, nil)),
		Metrics:     metrics,
		Readiness:   ready,
	})
	require.NoError(tb, err)
	t := srv.Tenant()
	t.HandleFunc("/bookings", func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.RawQuery, "conflict") {
			bhttp.WriteError(w, r, bhttp.Error(bhttp.CodeBookingConflict, 0, "the slot is taken"))
			return
		}
		bhttp.SetPosition(w, 7)
		_ = bhttp.WriteJSON(w, http.StatusCreated, map[string]string{"id": "b1"})
	}).Methods(http.MethodPost)
	t.HandleFunc("/bookings/{id}", func(w http.ResponseWriter, _ *http.Request) {
		_ = bhttp.WriteJSON(w, http.StatusOK, map[string]string{"id": "b1"})
	}).Methods(http.MethodGet)
	t.HandleFunc("/bookings/{id}/{action:cancel|confirm}", func(w http.ResponseWriter, _ *http.Request) {
		_ = bhttp.WriteJSON(w, http.StatusOK, map[string]string{"id": "b1"})
	}).Methods(http.MethodPost)
	t.HandleFunc("/boom", func(http.ResponseWriter, *http.Request) { panic("boom") }).Methods(http.MethodPost)
	return &opsFixture{
		fixture: &fixture{srv: srv, h: srv.Handler(), minter: m, store: store, logs: logs},
		metrics: metrics,
		ready:   ready,
	}
}

// tenantReq is a request of tenantA's admin.
func (f *opsFixture) tenantReq(tb testing.TB, method, target, body string, opts ...reqOpt) *http.Request {
	tb.Helper()
	tok := f.token(tb, "u1", bhttp.RoleAdmin, tenantA, bhttp.AllScopes()...)
	return newReq(method, target, body, append([]reqOpt{bearer(tok), header(bhttp.HeaderTenantID, tenantA.String())}, opts...)...)
}

// series finds the metric family name and returns its series as maps of
// label values to the metric.
func series(tb testing.TB, m *bhttp.Metrics, name string) map[string]*dto.Metric {
	tb.Helper()
	mfs, err := m.Registry().Gather()
	require.NoError(tb, err)
	out := map[string]*dto.Metric{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, s := range mf.GetMetric() {
			var labels []string
			for _, l := range s.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			out[strings.Join(labels, ",")] = s
		}
	}
	return out
}

func TestMetricsCountRequestsByRouteTemplate(t *testing.T) {
	t.Parallel()
	f := mustOpsFixture(t)
	for _, id := range []string{"a", "b", "c"} {
		require.Equal(t, http.StatusOK, f.do(f.tenantReq(t, http.MethodGet, "/bookings/"+id, "")).Code)
	}
	require.Equal(t, http.StatusNotFound, f.do(newReq(http.MethodGet, "/no/such/path/1", "")).Code)
	require.Equal(t, http.StatusNotFound, f.do(newReq(http.MethodGet, "/no/such/path/2", "")).Code)
	require.Equal(t, http.StatusUnauthorized, f.do(newReq(http.MethodGet, "/bookings/x", "")).Code)

	reqs := series(t, f.metrics, bhttp.MetricHTTPRequests)
	require.EqualValues(t, 3, reqs["method=GET,route=/bookings/{id},status=200"].GetCounter().GetValue(), "%v", reqs)
	require.EqualValues(t, 1, reqs["method=GET,route=/bookings/{id},status=401"].GetCounter().GetValue(), "%v", reqs)
	require.EqualValues(t, 2, reqs["method=GET,route=unmatched,status=404"].GetCounter().GetValue(), "one series for every unknown path: %v", reqs)
	for k := range reqs {
		require.NotContains(t, k, "/bookings/a", "paths must not become label values")
	}
	dur := series(t, f.metrics, bhttp.MetricHTTPRequestDuration)
	require.EqualValues(t, 3, dur["method=GET,route=/bookings/{id},status=200"].GetHistogram().GetSampleCount())
	require.Empty(t, series(t, f.metrics, bhttp.MetricCommands), "queries are no commands")
	require.EqualValues(t, 0, series(t, f.metrics, bhttp.MetricHTTPInFlight)[""].GetGauge().GetValue())
}

func TestMetricsCountCommandsByOutcomeAndCode(t *testing.T) {
	t.Parallel()
	f := mustOpsFixture(t)
	body := `{"resource_id":"r1"}`
	require.Equal(t, http.StatusCreated, f.do(f.tenantReq(t, http.MethodPost, "/bookings", body, header("Idempotency-Key", "k1"))).Code)
	replay := f.do(f.tenantReq(t, http.MethodPost, "/bookings", body, header("Idempotency-Key", "k1")))
	require.Equal(t, http.StatusCreated, replay.Code)
	require.Equal(t, "true", replay.Header().Get(bhttp.HeaderIdempotentReplayed))
	mustProblem(t, f.do(f.tenantReq(t, http.MethodPost, "/bookings?conflict", body)), http.StatusConflict, bhttp.CodeBookingConflict)
	mustProblem(t, f.do(f.tenantReq(t, http.MethodPost, "/bookings", `{"x":`, header("Idempotency-Key", "k1"))), http.StatusUnprocessableEntity, bhttp.CodeIdempotencyKeyReused)
	mustProblem(t, f.do(newReq(http.MethodPost, "/bookings", body)), http.StatusUnauthorized, bhttp.CodeUnauthorized)
	require.Equal(t, http.StatusOK, f.do(f.tenantReq(t, http.MethodPost, "/bookings/b1/cancel", "")).Code)
	require.Equal(t, http.StatusOK, f.do(f.tenantReq(t, http.MethodPost, "/bookings/b1/confirm", "")).Code)
	mustProblem(t, f.do(f.tenantReq(t, http.MethodPost, "/boom", "")), http.StatusInternalServerError, bhttp.CodeInternal)

	got := map[string]float64{}
	for k, s := range series(t, f.metrics, bhttp.MetricCommands) {
		got[k] = s.GetCounter().GetValue()
	}
	require.Equal(t, map[string]float64{
		"code=,command=create_booking,outcome=accepted":                       1,
		"code=,command=create_booking,outcome=replayed":                       1,
		"code=booking_conflict,command=create_booking,outcome=rejected":       1,
		"code=idempotency_key_reused,command=create_booking,outcome=rejected": 1,
		"code=unauthorized,command=create_booking,outcome=rejected":           1,
		"code=,command=cancel_booking,outcome=accepted":                       1,
		"code=,command=confirm_booking,outcome=accepted":                      1,
		"code=internal,command=POST /boom,outcome=failed":                     1,
	}, got)
}

func TestMetricsEndpointServesTheRegistry(t *testing.T) {
	t.Parallel()
	f := mustOpsFixture(t)
	require.Equal(t, http.StatusOK, f.do(f.tenantReq(t, http.MethodGet, "/bookings/a", "")).Code)
	f.metrics.ObserveRelayLag(func() int64 { return 42 })
	f.metrics.ObserveProjectionLag("bookings", func() int64 { return 3 })
	f.metrics.ObserveProjectionLag("availability", func() int64 { return 0 })
	f.metrics.WebhookDelivery("delivered", 120*time.Millisecond)
	f.metrics.WebhookDelivery("failed", time.Second)
	f.metrics.PublisherCircuit("relay", bhttp.CircuitClosed)
	f.metrics.PublisherCircuit("relay", bhttp.CircuitOpen)
	f.metrics.PublisherCircuit("relay", bhttp.CircuitHalfOpen)
	f.metrics.PublisherCircuit("other", bhttp.CircuitClosed)

	w := f.do(newReq(http.MethodGet, "/metrics", ""))
	require.Equal(t, http.StatusOK, w.Code)
	require.True(t, strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain"), w.Header().Get("Content-Type"))
	text := w.Body.String()
	for _, want := range []string{
		`booking_http_requests_total{method="GET",route="/bookings/{id}",status="200"} 1`,
		`booking_relay_lag_events 42`,
		`booking_projection_lag_events{projection="bookings"} 3`,
		`booking_projection_lag_events{projection="availability"} 0`,
		`booking_webhook_deliveries_total{outcome="delivered"} 1`,
		`booking_webhook_deliveries_total{outcome="failed"} 1`,
		`booking_publisher_circuit_state{publisher="relay"} 1`,
		`booking_publisher_circuit_opened_total{publisher="relay"} 1`,
		`booking_publisher_circuit_state{publisher="other"} 0`,
		`booking_publisher_circuit_opened_total{publisher="other"} 0`,
		`go_goroutines`,
	} {
		require.Contains(t, text, want)
	}

	f.metrics.ObserveRelayLag(nil)
	f.metrics.ObserveProjectionLag("bookings", func() int64 { return 9 })
	text = f.do(newReq(http.MethodGet, "/metrics", "")).Body.String()
	require.NotContains(t, text, "booking_relay_lag_events ")
	require.Contains(t, text, `booking_projection_lag_events{projection="bookings"} 9`)
	require.Equal(t, http.StatusMethodNotAllowed, f.do(newReq(http.MethodPost, "/metrics", "")).Code)
}

func TestMetricsNilIsANoOp(t *testing.T) {
	t.Parallel()
	var m *bhttp.Metrics
	m.ObserveRelayLag(func() int64 { return 1 })
	m.ObserveProjectionLag("p", func() int64 { return 1 })
	m.WebhookDelivery("delivered", time.Millisecond)
	m.PublisherCircuit("relay", bhttp.CircuitOpen)
	require.Nil(t, m.Registry())
}

func TestServerWithoutOpsServesNoOpsRoutes(t *testing.T) {
	t.Parallel()
	f := MustFixture(t)
	mustProblem(t, f.do(newReq(http.MethodGet, "/metrics", "")), http.StatusNotFound, bhttp.CodeNotFound)
	mustProblem(t, f.do(newReq(http.MethodGet, "/readyz", "")), http.StatusNotFound, bhttp.CodeNotFound)
}

// readyzProblem is the 503 body of /readyz.
type readyzProblem struct {
	bhttp.Problem
	Checks []bhttp.CheckResult `json:"checks"`
}

func TestReadyz(t *testing.T) {
	t.Parallel()
	f := mustOpsFixture(t)

	w := f.do(newReq(http.MethodGet, "/readyz", ""))
	require.Equal(t, http.StatusOK, w.Code, "no checks: ready")
	require.JSONEq(t, `{"status":"ready","checks":[]}`, w.Body.String())

	var dbUp, lag = true, int64(10)
	var mu sync.Mutex
	f.ready.Add(
		bhttp.ReadinessCheck{Name: "postgres", Check: func(context.Context) error {
			mu.Lock()
			defer mu.Unlock()
			if !dbUp {
				return errors.New("connection refused")
			}
			return nil
		}},
		bhttp.LagCheck("relay", 100, func() int64 { mu.Lock(); defer mu.Unlock(); return lag }),
	)
	w = f.do(newReq(http.MethodGet, "/readyz", ""))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var ok struct {
		Status string              `json:"status"`
		Checks []bhttp.CheckResult `json:"checks"`
	}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &ok))
	require.Equal(t, "ready", ok.Status)
	require.Len(t, ok.Checks, 2)
	require.Equal(t, "postgres", ok.Checks[0].Name)
	require.Equal(t, bhttp.CheckOK, ok.Checks[1].Status)

	mu.Lock()
	dbUp, lag = false, 1000
	mu.Unlock()
	f.ready.Add(
		bhttp.ReadinessCheck{Name: "hangs", Check: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }},
		bhttp.ReadinessCheck{Name: "panics", Check: func(context.Context) error { panic("oops") }},
		bhttp.ReadinessCheck{Name: "fine", Check: func(context.Context) error { return nil }},
	)
	start := time.Now()
	w = f.do(newReq(http.MethodGet, "/readyz", ""))
	require.Less(t, time.Since(start), 2*time.Second, "checks run concurrently, each within the timeout")
	require.Equal(t, http.StatusServiceUnavailable, w.Code)
	require.Equal(t, bhttp.ProblemContentType, w.Header().Get("Content-Type"))
	require.NotEmpty(t, w.Header().Get("Retry-After"))
	var body readyzProblem
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body))
	require.Equal(t, bhttp.CodeServiceUnavailable, body.Code)
	require.Equal(t, http.StatusServiceUnavailable, body.Status)
	require.True(t, strings.HasSuffix(body.Type, "/problems/service_unavailable"), body.Type)
	require.Equal(t, "not ready: postgres, relay, hangs, panics", body.Detail)
	var names []string
	for _, c := range body.Checks {
		require.Equal(t, bhttp.CheckFailing, c.Status)
		require.NotEmpty(t, c.Error)
		names = append(names, c.Name)
	}
	require.Equal(t, []string{"postgres", "relay", "hangs", "panics"}, names, "only the failing checks are listed")
	require.Contains(t, body.Checks[1].Error, "lag 1000 events exceeds 100")
	require.Contains(t, body.Checks[2].Error, "no answer within")

	// A check added again under its name replaces the old one.
	mu.Lock()
	dbUp, lag = true, 0
	mu.Unlock()
	f.ready.Add(bhttp.ReadinessCheck{Name: "hangs", Check: func(context.Context) error { return nil }})
	f.ready.Remove("panics")
	w = f.do(newReq(http.MethodHead, "/readyz", ""))
	require.Equal(t, http.StatusOK, w.Code)
}

func TestReadinessAddWhileServing(t *testing.T) {
	t.Parallel()
	f := mustOpsFixture(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 20 {
				name := fmt.Sprintf("c%d-%d", i, j%3)
				f.ready.Add(bhttp.ReadinessCheck{Name: name, Check: func(context.Context) error { return nil }})
				if j%2 == 0 {
					f.ready.Remove(name)
				}
			}
		})
		wg.Go(func() {
			for range 20 {
				require.Equal(t, http.StatusOK, f.do(newReq(http.MethodGet, "/readyz", "")).Code)
			}
		})
	}
	wg.Wait()
}
