// Package instrumented decorates an eventstore.Store with Prometheus
// metrics: how long appends and stream loads take, how appends end, and how
// many events were written. It changes no behaviour: every call goes to the
// wrapped store and returns what it returned.
package instrumented

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bookingengine/booking/eventstore"
)

// Append outcomes, the values of the outcome label.
const (
	OutcomeOK       = "ok"
	OutcomeConflict = "version_conflict"
	// OutcomeDuplicate is an append whose events were all stored already
	// (a retried command): nothing was written.
	OutcomeDuplicate = "duplicate"
	OutcomeInvalid   = "invalid"
	OutcomeCanceled  = "canceled"
	OutcomeError     = "error"
)

// Metric names. They are part of the operator's dashboards and alerts:
// never rename one.
const (
	MetricAppendDuration = "booking_eventstore_append_duration_seconds"
	MetricAppendedEvents = "booking_eventstore_appended_events_total"
	MetricLoadDuration   = "booking_eventstore_load_duration_seconds"
)

// latencyBuckets span 0.5 ms to about 4 s: an append is one round trip to
// PostgreSQL, a few milliseconds when healthy.
var latencyBuckets = prometheus.ExponentialBuckets(0.0005, 2, 14)

// Store is an eventstore.Store that records metrics. Methods other than
// Append and Load pass straight through. It is safe for concurrent use when
// the wrapped store is.
//
// Only the methods of eventstore.Store are forwarded: optional interfaces of
// the wrapped store (the memory store's Notify) and type assertions to a
// concrete store do not see through the decorator, so hand it to callers
// that append and load (the command handlers), and the bare store to those
// that look for more (the read side, the relay). Unwrap returns the bare
// store.
type Store struct {
	eventstore.Store
	appendDuration *prometheus.HistogramVec
	appended       prometheus.Counter
	loadDuration   prometheus.Histogram
}

// New wraps store and registers its collectors on reg. Collectors already
// registered on reg by an earlier New are reused, so several stores on one
// registry add to the same series. It fails only when reg holds another
// collector of the same name.
func New(store eventstore.Store, reg prometheus.Registerer) (*Store, error) {
	appendDuration, err := register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    MetricAppendDuration,
		Help:    "Time an event-store append took, by outcome (ok, version_conflict, duplicate, invalid, canceled, error).",
		Buckets: latencyBuckets,
	}, []string{"outcome"}))
	if err != nil {
		return nil, err
	}
	appended, err := register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: MetricAppendedEvents,
		Help: "Events written to the event store (retried appends that wrote nothing are not counted).",
	}))
	if err != nil {
		return nil, err
	}
	loadDuration, err := register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    MetricLoadDuration,
		Help:    "Time loading one stream from the event store took.",
		Buckets: latencyBuckets,
	}))
	if err != nil {
		return nil, err
	}
	return &Store{Store: store, appendDuration: appendDuration, appended: appended, loadDuration: loadDuration}, nil
}

// register registers c, or returns the collector registered before under
// the same description.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var already prometheus.AlreadyRegisteredError
		if errors.As(err, &already) {
			if existing, ok := already.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		var zero C
		return zero, err
	}
	return c, nil
}

// Unwrap returns the wrapped store.
func (s *Store) Unwrap() eventstore.Store { return s.Store }

// Append forwards to the wrapped store and records the call's duration
// under its outcome.
func (s *Store) Append(ctx context.Context, appends ...eventstore.StreamAppend) (eventstore.AppendResult, error) {
	start := time.Now()
	res, err := s.Store.Append(ctx, appends...)
	outcome := Outcome(res, err)
	s.appendDuration.WithLabelValues(outcome).Observe(time.Since(start).Seconds())
	if outcome == OutcomeOK {
		n := 0
		for _, a := range appends {
			n += len(a.Events)
		}
		s.appended.Add(float64(n))
	}
	return res, err
}

// Load forwards to the wrapped store and records the call's duration.
func (s *Store) Load(ctx context.Context, streamID string, afterVersion int64) ([]eventstore.RecordedEvent, error) {
	start := time.Now()
	evs, err := s.Store.Load(ctx, streamID, afterVersion)
	s.loadDuration.Observe(time.Since(start).Seconds())
	return evs, err
}

// Outcome classifies the result of an append for the outcome label.
func Outcome(res eventstore.AppendResult, err error) string {
	switch {
	case err == nil && res.Duplicate:
		return OutcomeDuplicate
	case err == nil:
		return OutcomeOK
	case errors.Is(err, eventstore.ErrVersionConflict):
		return OutcomeConflict
	case errors.Is(err, eventstore.ErrInvalidAppend), errors.Is(err, eventstore.ErrDuplicateEvent):
		return OutcomeInvalid
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return OutcomeCanceled
	default:
		return OutcomeError
	}
}
