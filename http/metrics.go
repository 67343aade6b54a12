package http

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metric names this package exports. They are part of the operator's
// dashboards and alerts: never rename one; add a new one instead.
const (
	MetricHTTPRequests        = "booking_http_requests_total"
	MetricHTTPRequestDuration = "booking_http_request_duration_seconds"
	MetricHTTPInFlight        = "booking_http_requests_in_flight"
	MetricCommands            = "booking_commands_total"
	MetricRelayLag            = "booking_relay_lag_events"
	MetricProjectionLag       = "booking_projection_lag_events"
	MetricWebhookDeliveries   = "booking_webhook_deliveries_total"
	MetricWebhookDuration     = "booking_webhook_delivery_duration_seconds"
	MetricCircuitState        = "booking_publisher_circuit_state"
	MetricCircuitOpened       = "booking_publisher_circuit_opened_total"
)

// Circuit states, the values of booking_publisher_circuit_state (the
// values of stream.BreakerState).
const (
	CircuitClosed   = 0
	CircuitHalfOpen = 1
	CircuitOpen     = 2
)

// Command outcomes, the values of booking_commands_total's outcome label.
const (
	// OutcomeAccepted: the command succeeded (2xx).
	OutcomeAccepted = "accepted"
	// OutcomeReplayed: an Idempotency-Key retry answered with the first
	// response; nothing changed.
	OutcomeReplayed = "replayed"
	// OutcomeRejected: the client's fault or a business rule (4xx); the
	// code label says which.
	OutcomeRejected = "rejected"
	// OutcomeFailed: the server's fault (5xx).
	OutcomeFailed = "failed"
)

// routeUnmatched is the route label of requests no route matched, so that
// scanners probing random paths add one series, not one per path.
const routeUnmatched = "unmatched"

// Metrics holds the process's Prometheus instruments on a registry of its
// own (never the global one, so two servers in one test process do not
// share counters). A Server given Metrics counts every request by route
// template and status, times it, counts commands by outcome and problem
// code, and serves the registry at /metrics.
//
// Other components report through it: the relay and the projectors register
// functions that return their lag (ObserveRelayLag, ObserveProjectionLag),
// read at every scrape; webhook delivery reports each attempt
// (WebhookDelivery); anything else registers on Registry. Every method is
// safe for concurrent use and does nothing on a nil *Metrics, so a
// component need not check whether metrics are enabled.
type Metrics struct {
	registry *prometheus.Registry

	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
	commands *prometheus.CounterVec

	webhookDeliveries *prometheus.CounterVec
	webhookDuration   *prometheus.HistogramVec

	circuitState  *prometheus.GaugeVec
	circuitOpened *prometheus.CounterVec

	lags *lagCollector
}

// NewMetrics returns Metrics on a fresh registry that also carries the Go
// runtime and process collectors.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		registry: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricHTTPRequests,
			Help: "HTTP requests answered, by method, route template and status code.",
		}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    MetricHTTPRequestDuration,
			Help:    "Time to answer an HTTP request, by method, route template and status code.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"method", "route", "status"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: MetricHTTPInFlight,
			Help: "HTTP requests being served.",
		}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricCommands,
			Help: "Commands (POST, PUT, PATCH, DELETE on a known route) by command, outcome (accepted, replayed, rejected, failed) and problem code (empty when accepted).",
		}, []string{"command", "outcome", "code"}),
		webhookDeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricWebhookDeliveries,
			Help: "Webhook delivery attempts by outcome.",
		}, []string{"outcome"}),
		webhookDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    MetricWebhookDuration,
			Help:    "Time a webhook delivery attempt took, by outcome.",
			Buckets: prometheus.DefBuckets,
		}, []string{"outcome"}),
		circuitState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: MetricCircuitState,
			Help: "State of the circuit breaker in front of a Redis publisher: 0 closed, 1 half-open, 2 open (publishes fail at once).",
		}, []string{"publisher"}),
		circuitOpened: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricCircuitOpened,
			Help: "Times the circuit breaker in front of a Redis publisher opened.",
		}, []string{"publisher"}),
		lags: newLagCollector(),
	}
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.duration, m.inFlight, m.commands, m.webhookDeliveries, m.webhookDuration,
		m.circuitState, m.circuitOpened, m.lags,
	)
	return m
}

// Registry returns the registry, for components that bring collectors of
// their own (the event-store decorator in package
// eventstore/instrumented). It returns nil on a nil *Metrics.
func (m *Metrics) Registry() *prometheus.Registry {
	if m == nil {
		return nil
	}
	return m.registry
}

// Handler serves the registry in the Prometheus text format (or
// OpenMetrics when the scraper asks for it).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry, EnableOpenMetrics: true})
}

// ObserveRelayLag makes booking_relay_lag_events report f() at each scrape:
// how many committed events the relay has not published. A later call
// replaces f; nil removes the series.
func (m *Metrics) ObserveRelayLag(f func() int64) {
	if m == nil {
		return
	}
	m.lags.set(lagKey{metric: MetricRelayLag}, f)
}

// ObserveProjectionLag makes booking_projection_lag_events{projection}
// report f() at each scrape: how many committed events the projection has
// not applied. A later call for the same projection replaces f; nil removes
// the series. The projection name becomes a label value: use the
// projection's fixed name, never anything per tenant or per request.
func (m *Metrics) ObserveProjectionLag(projection string, f func() int64) {
	if m == nil {
		return
	}
	m.lags.set(lagKey{metric: MetricProjectionLag, projection: projection}, f)
}

// WebhookDelivery records one webhook delivery attempt and how long it
// took. outcome is a fixed word such as "delivered", "failed" or
// "gave_up", never a URL or a status text.
func (m *Metrics) WebhookDelivery(outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.webhookDeliveries.WithLabelValues(outcome).Inc()
	m.webhookDuration.WithLabelValues(outcome).Observe(d.Seconds())
}

// PublisherCircuit records that the circuit breaker in front of the named
// publisher (a fixed name such as "relay") is now in state (CircuitClosed,
// CircuitHalfOpen or CircuitOpen); entering CircuitOpen also counts in
// booking_publisher_circuit_opened_total. Call it once with CircuitClosed
// when the publisher is built, so the series exist before the first
// transition.
func (m *Metrics) PublisherCircuit(publisher string, state int) {
	if m == nil {
		return
	}
	m.circuitState.WithLabelValues(publisher).Set(float64(state))
	opened := m.circuitOpened.WithLabelValues(publisher)
	if state == CircuitOpen {
		opened.Inc()
	}
}

// lagKey names one lag series.
type lagKey struct{ metric, projection string }

// lagCollector reads the registered lag functions at scrape time, so that
// the relay and the projectors need no goroutine of their own to publish
// their lag.
type lagCollector struct {
	relay      *prometheus.Desc
	projection *prometheus.Desc

	mu    sync.Mutex
	funcs map[lagKey]func() int64
}

func newLagCollector() *lagCollector {
	return &lagCollector{
		relay: prometheus.NewDesc(MetricRelayLag,
			"Committed events the relay has not published yet (0 on a standby relay).", nil, nil),
		projection: prometheus.NewDesc(MetricProjectionLag,
			"Committed events a projection has not applied yet.", []string{"projection"}, nil),
		funcs: map[lagKey]func() int64{},
	}
}

func (c *lagCollector) set(k lagKey, f func() int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f == nil {
		delete(c.funcs, k)
		return
	}
	c.funcs[k] = f
}

// Describe implements prometheus.Collector.
func (c *lagCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.relay
	ch <- c.projection
}

// Collect implements prometheus.Collector.
func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	funcs := make(map[lagKey]func() int64, len(c.funcs))
	for k, f := range c.funcs {
		funcs[k] = f
	}
	c.mu.Unlock()
	for k, f := range funcs {
		v := float64(f())
		if k.metric == MetricRelayLag {
			ch <- prometheus.MustNewConstMetric(c.relay, prometheus.GaugeValue, v)
		} else {
			ch <- prometheus.MustNewConstMetric(c.projection, prometheus.GaugeValue, v, k.projection)
		}
	}
}

// instrument is the metrics layer of a Server's chain. It runs inside
// requestContext (whose state carries the route template once the router
// matched) and outside everything else, so it times the whole request.
func (m *Metrics) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		m.inFlight.Inc()
		sw := &problemSniffer{ResponseWriter: w}
		defer func() {
			m.inFlight.Dec()
			route, status := routeUnmatched, http.StatusOK
			if st := stateFrom(r.Context()); st != nil {
				st.mu.Lock()
				if st.route != "" {
					route = st.route
				}
				st.mu.Unlock()
				if st.status != 0 {
					status = st.status
				}
			}
			code := strconv.Itoa(status)
			m.requests.WithLabelValues(r.Method, route, code).Inc()
			m.duration.WithLabelValues(r.Method, route, code).Observe(time.Since(start).Seconds())
			if route != routeUnmatched && isCommand(r.Method) {
				outcome, problem := commandOutcome(status, w.Header(), sw.code())
				m.commands.WithLabelValues(commandName(r.Method, route, r.URL.Path), outcome, problem).Inc()
			}
		}()
		next.ServeHTTP(sw, r)
	})
}

// commandOutcome classifies a command's answer.
func commandOutcome(status int, h http.Header, code string) (outcome, problem string) {
	switch {
	case status < 400 && h.Get(HeaderIdempotentReplayed) == "true":
		return OutcomeReplayed, ""
	case status < 400:
		return OutcomeAccepted, ""
	case status < 500:
		return OutcomeRejected, code
	default:
		return OutcomeFailed, code
	}
}

// commandNames are the commands of the contract by method and route
// template. A route missing here is named "<method> <template>", which is
// still bounded by the routes registered.
var commandNames = map[string]string{
	"POST /tenants":                    "create_tenant",
	"PUT /tenants/{id}/settings":       "change_tenant_settings",
	"POST /resource-categories":        "create_resource_category",
	"POST /resources":                  "create_resource",
	"PATCH /resources/{id}":            "update_resource",
	"DELETE /resources/{id}":           "deactivate_resource",
	"PUT /resources/{id}/availability": "set_resource_availability",
	"POST /users":                      "create_user",
	"PATCH /users/{id}":                "update_user",
	"POST /bookings":                   "create_booking",
	"POST /bookings/{id}/reschedule":   "reschedule_booking",
	"POST /holds":                      "place_hold",
	"DELETE /holds/{id}":               "release_hold",
	"POST /waitlist":                   "join_waitlist",
	"DELETE /waitlist/{id}":            "leave_waitlist",
	"POST /webhooks":                   "create_webhook",
	"POST /webhooks/{id}/enable":       "enable_webhook",
	"POST /webhooks/{id}/redeliver":    "redeliver_webhook",
	"POST /bookings/{id}/cancel":       "cancel_booking",
	"POST /bookings/{id}/confirm":      "confirm_booking",
	"POST /bookings/{id}/reject":       "reject_booking",
	"POST /bookings/{id}/check-in":     "check_in_booking",
	"POST /bookings/{id}/complete":     "complete_booking",
	"POST /bookings/{id}/no-show":      "no_show_booking",
}

// commandName names the command of a request. A template segment with a
// pattern of alternatives ({action:cancel|confirm}) takes the value the
// path has at that segment, so each booking action is a command of its
// own; any other pattern is reduced to its variable name.
func commandName(method, template, path string) string {
	tsegs := strings.Split(template, "/")
	psegs := strings.Split(path, "/")
	for i, s := range tsegs {
		name, pattern, ok := strings.Cut(strings.Trim(s, "{}"), ":")
		if !strings.HasPrefix(s, "{") || !ok {
			continue
		}
		if i < len(psegs) && slices.Contains(strings.Split(pattern, "|"), psegs[i]) {
			tsegs[i] = psegs[i]
		} else {
			tsegs[i] = "{" + name + "}"
		}
	}
	key := method + " " + strings.Join(tsegs, "/")
	if n, ok := commandNames[key]; ok {
		return n
	}
	return key
}

// maxSniff bounds how much of a problem body is kept to read its code.
const maxSniff = 64 << 10

// problemSniffer keeps the start of a problem+json body so that the
// metrics layer can read its machine code without the handlers telling it.
type problemSniffer struct {
	http.ResponseWriter
	checked bool
	problem bool
	buf     bytes.Buffer
}

// Write keeps the start of a problem body and passes b on.
func (s *problemSniffer) Write(b []byte) (int, error) {
	if !s.checked {
		s.checked = true
		mt, _, _ := mime.ParseMediaType(s.Header().Get("Content-Type"))
		s.problem = mt == ProblemContentType
	}
	if s.problem && s.buf.Len() < maxSniff {
		s.buf.Write(b[:min(len(b), maxSniff-s.buf.Len())])
	}
	return s.ResponseWriter.Write(b)
}

// Flush lets streaming handlers flush through the sniffer.
func (s *problemSniffer) Flush() { _ = http.NewResponseController(s.ResponseWriter).Flush() }

// Unwrap lets http.ResponseController reach the connection's writer.
func (s *problemSniffer) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// code returns the problem's machine code, or "" when the body was no
// problem or could not be read.
func (s *problemSniffer) code() string {
	if !s.problem {
		return ""
	}
	var p struct {
		Code string `json:"code"`
	}
	if json.Unmarshal(s.buf.Bytes(), &p) != nil || len(p.Code) > 64 {
		return ""
	}
	return p.Code
}
