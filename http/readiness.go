package http

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// DefaultReadinessTimeout bounds each readiness check: a load balancer
// polls /readyz every few seconds, and a check that hangs (a PostgreSQL
// that stopped answering) must turn into "not ready", not into a probe
// that times out with no answer.
const DefaultReadinessTimeout = 2 * time.Second

// ReadinessCheck is one condition of readiness, such as "PostgreSQL
// answers" or "the relay's lag is under 10,000 events". Check returns nil
// when the condition holds; it must honour ctx's deadline and be safe for
// concurrent use, since probes may overlap.
type ReadinessCheck struct {
	// Name identifies the check in the /readyz answer and in logs, e.g.
	// "postgres", "migrations", "relay", "projection:bookings".
	Name  string
	Check func(ctx context.Context) error
}

// CheckResult is the outcome of one check in the /readyz answer.
type CheckResult struct {
	Name string `json:"name"`
	// Status is "ok" or "failing".
	Status string `json:"status"`
	// Error says why a failing check fails.
	Error string `json:"error,omitempty"`
	// DurationMS is how long the check took, in milliseconds.
	DurationMS float64 `json:"duration_ms"`
}

// Check statuses.
const (
	CheckOK      = "ok"
	CheckFailing = "failing"
)

// Readiness is the set of checks behind GET /readyz. Components add their
// checks when they start (the relay and the projectors their lag), also
// while the server is serving. It is safe for concurrent use.
//
// /readyz runs every check concurrently, each bounded by the timeout, and
// answers 200 {"status": "ready", "checks": [...]} when all pass, else 503
// application/problem+json with code service_unavailable and the failing
// checks in its checks member. With no checks it is ready: a process
// without dependencies is ready once it serves.
type Readiness struct {
	timeout time.Duration

	mu     sync.RWMutex
	checks []ReadinessCheck
}

// NewReadiness returns a Readiness holding checks, each bounded by
// DefaultReadinessTimeout.
func NewReadiness(checks ...ReadinessCheck) *Readiness {
	r := &Readiness{timeout: DefaultReadinessTimeout}
	r.Add(checks...)
	return r
}

// WithTimeout sets how long each check may take (0 keeps the current
// value) and returns r. Call it before serving.
func (r *Readiness) WithTimeout(d time.Duration) *Readiness {
	if d > 0 {
		r.timeout = d
	}
	return r
}

// Add adds checks. A check named like one already present replaces it, so
// a component that restarts may add its check again. Checks without a name
// or a function are ignored.
func (r *Readiness) Add(checks ...ReadinessCheck) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range checks {
		if c.Name == "" || c.Check == nil {
			continue
		}
		if i := slices.IndexFunc(r.checks, func(o ReadinessCheck) bool { return o.Name == c.Name }); i >= 0 {
			r.checks[i] = c
		} else {
			r.checks = append(r.checks, c)
		}
	}
}

// Remove drops the check named name, if any.
func (r *Readiness) Remove(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checks = slices.DeleteFunc(r.checks, func(c ReadinessCheck) bool { return c.Name == name })
}

// Check runs every check concurrently and returns their results in the
// order the checks were added, and whether all passed. A panicking check
// counts as failing.
func (r *Readiness) Check(ctx context.Context) ([]CheckResult, bool) {
	r.mu.RLock()
	checks := slices.Clone(r.checks)
	r.mu.RUnlock()
	results := make([]CheckResult, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() { results[i] = r.run(ctx, c) })
	}
	wg.Wait()
	ready := true
	for _, res := range results {
		ready = ready && res.Status == CheckOK
	}
	return results, ready
}

func (r *Readiness) run(ctx context.Context, c ReadinessCheck) (res CheckResult) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	start := time.Now()
	res = CheckResult{Name: c.Name, Status: CheckOK}
	defer func() {
		if v := recover(); v != nil {
			res.Status, res.Error = CheckFailing, fmt.Sprintf("panic: %v", v)
		}
		res.DurationMS = float64(time.Since(start).Microseconds()) / 1000
	}()
	err := c.Check(ctx)
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil {
		res.Status, res.Error = CheckFailing, err.Error()
		if errors.Is(err, context.DeadlineExceeded) {
			res.Error = fmt.Sprintf("no answer within %s", r.timeout)
		}
	}
	return res
}

// readinessProblem is the 503 answer: a problem with the failing checks.
type readinessProblem struct {
	Problem
	Checks []CheckResult `json:"checks"`
}

// ServeHTTP answers /readyz.
func (r *Readiness) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	results, ready := r.Check(req.Context())
	w.Header().Set("Cache-Control", "no-store")
	logger := LoggerFrom(req.Context())
	if ready {
		if err := WriteJSON(w, http.StatusOK, map[string]any{"status": "ready", "checks": results}); err != nil {
			logger.DebugContext(req.Context(), "write readyz", slog.Any("error", err))
		}
		return
	}
	var failing []CheckResult
	var names []string
	for _, res := range results {
		if res.Status != CheckOK {
			failing = append(failing, res)
			names = append(names, res.Name)
		}
	}
	logger.WarnContext(req.Context(), "not ready", slog.Any("failing", failing))
	base := DefaultProblemBaseURL
	if st := stateFrom(req.Context()); st != nil && st.problemBase != "" {
		base = st.problemBase
	}
	info := codes[CodeServiceUnavailable]
	p := readinessProblem{
		Problem: Problem{
			Type: base + "/problems/" + CodeServiceUnavailable, Title: info.title, Status: info.status,
			Detail: "not ready: " + strings.Join(names, ", "), Code: CodeServiceUnavailable, Instance: req.URL.Path,
		},
		Checks: failing,
	}
	w.Header().Set("Retry-After", "5")
	writeBody(w, p.Status, ProblemContentType, p, logger)
}

// LagCheck returns a check named name that fails while lag() exceeds max,
// for the relay and the projectors: a replica whose read models trail far
// behind should not take queries that wait on X-Min-Position.
func LagCheck(name string, max int64, lag func() int64) ReadinessCheck {
	return ReadinessCheck{Name: name, Check: func(context.Context) error {
		if l := lag(); l > max {
			return fmt.Errorf("lag %d events exceeds %d", l, max)
		}
		return nil
	}}
}
