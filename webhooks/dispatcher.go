package webhooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// DispatcherConfig configures a Dispatcher.
type DispatcherConfig struct {
	// Store holds the deliveries. Required.
	Store Store
	// Client sends the requests. Default: an http.Client that follows
	// no redirects (a 3xx answer is a failed attempt: a receiver that
	// moved must update its endpoint).
	Client *http.Client
	// Timeout bounds one attempt, answer included (default 15 s).
	Timeout time.Duration
	// Lease is how long a claimed delivery stays claimed; it must exceed
	// Timeout, or a slow receiver could get the delivery twice at once
	// (default Timeout + 30 s).
	Lease time.Duration
	// Retry schedules the retries of failed deliveries.
	Retry RetryPolicy
	// Disable decides when failing attempts disable an endpoint.
	Disable DisablePolicy
	// Concurrency is how many requests may be in flight at once
	// (default 8).
	Concurrency int
	// PollInterval is the longest wait for due deliveries without a Wake
	// (default 1 s).
	PollInterval time.Duration
	// Now is the clock of timestamps and schedules; default time.Now.
	// Attempt durations are measured on the monotonic clock.
	Now func() time.Time
	// UserAgent is sent with every request (default
	// "bookingengine-webhooks/1").
	UserAgent string
	// Logger receives the dispatcher's logs; nil discards them.
	Logger *slog.Logger
	// Observe, when set, is called after each recorded attempt with its
	// outcome (one of the Outcome constants) and how
	// long the request took, for metrics. It must not block.
	Observe func(outcome string, took time.Duration)
}

// Outcomes of an attempt, as DispatcherConfig.Observe reports them.
const (
	// OutcomeSucceeded: the receiver answered 2xx.
	OutcomeSucceeded = "succeeded"
	// OutcomeRetrying: the attempt failed and the delivery will be tried
	// again.
	OutcomeRetrying = "retrying"
	// OutcomeDead: the attempt failed and the delivery's retries ran out.
	OutcomeDead = "dead"
	// OutcomeGone: the receiver answered 410 Gone; the endpoint is
	// disabled and the delivery waits for it to be enabled again.
	OutcomeGone = "gone"
)

// Defaults of DispatcherConfig.
const (
	DefaultTimeout      = 15 * time.Second
	DefaultConcurrency  = 8
	DefaultPollInterval = time.Second
	DefaultUserAgent    = "bookingengine-webhooks/1"
)

// Validate reports every problem of c at once.
func (c DispatcherConfig) Validate() error {
	var errs []error
	if c.Store == nil {
		errs = append(errs, errors.New("field Store is required"))
	}
	if c.Timeout < 0 || c.Lease < 0 || c.PollInterval < 0 || c.Concurrency < 0 {
		errs = append(errs, errors.New("fields Timeout, Lease, PollInterval and Concurrency must not be negative"))
	}
	timeout := c.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	if c.Lease != 0 && c.Lease <= timeout {
		errs = append(errs, fmt.Errorf("field Lease is %s, want more than Timeout (%s)", c.Lease, timeout))
	}
	if err := c.Retry.validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("webhooks: invalid dispatcher config: %w", errors.Join(errs...))
	}
	return nil
}

// Stats counts what a Dispatcher did since NewDispatcher (and, from
// Runtime.Stats, what its Service enqueued). Counters only grow; export
// them as Prometheus counters, InFlight as a gauge.
type Stats struct {
	// Enqueued counts deliveries the consumer created (Runtime.Stats
	// only).
	Enqueued uint64
	// Attempts counts requests sent; AttemptsFailed those that did not
	// succeed (any answer but 2xx, or none).
	Attempts, AttemptsFailed uint64
	// Succeeded counts deliveries that succeeded; Dead those whose
	// retries ran out.
	Succeeded, Dead uint64
	// EndpointsDisabled counts endpoints this dispatcher disabled (410
	// or a run of failures).
	EndpointsDisabled uint64
	// ClaimsLost counts attempts whose lease had passed to another
	// dispatcher by the time they were recorded.
	ClaimsLost uint64
	// InFlight is the number of requests in flight now (a gauge).
	InFlight int64
}

// Dispatcher sends due deliveries. Run it in every process that should
// send; any number of dispatchers may share a Store (see Store.Claim).
// Create it with NewDispatcher and call Run once.
type Dispatcher struct {
	cfg  DispatcherConfig
	log  *slog.Logger
	wake chan struct{}

	attempts, attemptsFailed, succeeded, dead, disabled, lost atomic.Uint64
	inFlight                                                  atomic.Int64
}

// NewDispatcher validates cfg and returns a Dispatcher.
func NewDispatcher(cfg DispatcherConfig) (*Dispatcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Lease == 0 {
		cfg.Lease = cfg.Timeout + 30*time.Second
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = DefaultUserAgent
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Retry = cfg.Retry.withDefaults()
	cfg.Disable = cfg.Disable.withDefaults()
	return &Dispatcher{
		cfg:  cfg,
		log:  cfg.Logger.With(slog.String("component", "webhooks")),
		wake: make(chan struct{}, 1),
	}, nil
}

// Wake makes Run look for due deliveries now rather than at its next
// poll. It never blocks; safe for concurrent use.
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Stats returns the dispatcher's counters. Safe for concurrent use.
func (d *Dispatcher) Stats() Stats {
	return Stats{
		Attempts: d.attempts.Load(), AttemptsFailed: d.attemptsFailed.Load(), Succeeded: d.succeeded.Load(),
		Dead: d.dead.Load(), EndpointsDisabled: d.disabled.Load(), ClaimsLost: d.lost.Load(), InFlight: d.inFlight.Load(),
	}
}

func (d *Dispatcher) now() time.Time { return d.cfg.Now().UTC().Truncate(time.Microsecond) }

// Run claims and sends due deliveries until ctx ends, then cancels the
// requests in flight and returns nil once they are done. A cancelled
// request is not recorded: its lease expires and the delivery is sent
// again. Store errors are logged and retried at the next poll.
func (d *Dispatcher) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	done := make(chan struct{}, d.cfg.Concurrency)
	busy := 0
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		if free := d.cfg.Concurrency - busy; free > 0 && ctx.Err() == nil {
			claims, err := d.cfg.Store.Claim(ctx, d.now(), d.cfg.Lease, free)
			if err != nil && ctx.Err() == nil {
				d.log.Warn("webhooks: claim deliveries failed; retrying", slog.Any("error", err))
			}
			for _, c := range claims {
				busy++
				d.inFlight.Add(1)
				wg.Go(func() {
					defer func() {
						d.inFlight.Add(-1)
						done <- struct{}{}
					}()
					d.deliver(ctx, c)
				})
			}
			if len(claims) == free && len(claims) > 0 {
				// Perhaps more are due: ask again once a slot frees.
				select {
				case <-done:
					busy--
					continue
				case <-ctx.Done():
					return nil
				}
			}
		}
		timer.Reset(d.cfg.PollInterval)
		select {
		case <-ctx.Done():
			return nil
		case <-done:
			busy--
		case <-d.wake:
		case <-timer.C:
		}
	}
}

// deliver sends one claimed delivery and records the outcome.
func (d *Dispatcher) deliver(ctx context.Context, c Claim) {
	a, r := d.send(ctx, c)
	if ctx.Err() != nil && r != Succeeded {
		return // our own shutdown, not the receiver's fault: the lease expires and it is sent again
	}
	d.attempts.Add(1)
	if r != Succeeded {
		d.attemptsFailed.Add(1)
	}
	status, tries, start, next := d.cfg.Retry.Next(c.Tries, c.WindowStart, a.At, r)
	o := Outcome{Attempt: a, Result: r, Status: status, Tries: tries, WindowStart: start, NextAttemptAt: next}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	log := d.log.With(slog.String("delivery_id", c.ID.String()), slog.String("endpoint_id", c.EndpointID.String()),
		slog.String("event_id", c.EventID.String()), slog.String("tenant_id", c.TenantID.String()))
	disabled, err := d.cfg.Store.Record(rctx, c, o, d.cfg.Disable, d.now())
	switch {
	case errors.Is(err, ErrClaimLost):
		d.lost.Add(1)
		log.Warn("webhooks: delivery lease expired before its attempt was recorded; another dispatcher holds it")
		return
	case err != nil:
		log.Error("webhooks: record attempt failed; the delivery is sent again when its lease expires", slog.Any("error", err))
		return
	}
	outcome := OutcomeRetrying
	switch status {
	case StatusSucceeded:
		d.succeeded.Add(1)
		outcome = OutcomeSucceeded
	case StatusDead:
		d.dead.Add(1)
		outcome = OutcomeDead
		log.Warn("webhooks: delivery is dead: retries ran out", slog.Int("tries", tries), slog.String("error", a.Error))
	}
	if r == Gone {
		outcome = OutcomeGone
	}
	if d.cfg.Observe != nil {
		d.cfg.Observe(outcome, a.Duration)
	}
	if disabled {
		d.disabled.Add(1)
		log.Warn("webhooks: endpoint disabled", slog.String("error", a.Error))
	}
}

// maxErrorBody is how much of a failed answer's body the attempt keeps.
const maxErrorBody = 256

// send makes one attempt.
func (d *Dispatcher) send(ctx context.Context, c Claim) (Attempt, Result) {
	a := Attempt{At: d.now()}
	key, err := SecretKey(c.Secret)
	if err != nil {
		a.Error = err.Error()
		return a, Failed
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(c.Payload))
	if err != nil {
		a.Error = err.Error()
		return a, Failed
	}
	req.Header.Set("Content-Type", ContentType)
	req.Header.Set("User-Agent", d.cfg.UserAgent)
	setHeaders(req.Header, key, c.EventID.String(), a.At, c.Payload)
	start := time.Now()
	res, err := d.cfg.Client.Do(req)
	if err != nil {
		a.Duration = time.Since(start)
		a.Error = err.Error()
		return a, Failed
	}
	body, _ := io.ReadAll(io.LimitReader(res.Body, 4<<10))
	_ = res.Body.Close()
	a.Duration, a.StatusCode = time.Since(start), res.StatusCode
	switch {
	case res.StatusCode >= 200 && res.StatusCode < 300:
		return a, Succeeded
	case res.StatusCode == http.StatusGone:
		a.Error = "receiver answered 410 Gone: endpoint disabled"
		return a, Gone
	}
	a.Error = fmt.Sprintf("receiver answered %d", res.StatusCode)
	if snippet := strings.TrimSpace(string(body)); snippet != "" {
		if len(snippet) > maxErrorBody {
			snippet = snippet[:maxErrorBody]
			for !utf8.ValidString(snippet) {
				snippet = snippet[:len(snippet)-1]
			}
		}
		a.Error += ": " + snippet
	}
	return a, Failed
}
