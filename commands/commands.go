// Package commands holds the write side of the engine: one handler per use
// case. Each handler rebuilds the aggregates it needs from their streams,
// lets the domain decide, and appends the recorded events with the expected
// versions it loaded, so a concurrent writer to any of those streams makes
// the append fail instead of both succeeding. Every handler returns the
// global position of its last event, which the HTTP layer sends as
// X-Position for read-your-writes.
//
// Tenant, resource, user and domain-guard aggregates are cached per
// process and topped up with the events appended since, in the round trip
// that loads a command's other streams, so a command always decides on
// the current state (see CacheConfig). Tenant resolution and reads of a
// tenant may be answered from the cache alone, within the bounds
// CacheConfig sets.
//
// Handlers are safe for concurrent use. They are idempotent when the caller
// supplies an idempotency key in Meta: event ids are derived from the key,
// so a retry after a crash appends nothing and returns the original
// position.
package commands

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/eventstore"
	"github.com/google/uuid"
)

// Meta describes who issues a command and why; it becomes event metadata.
type Meta struct {
	TenantID       uuid.UUID
	Actor          domain.Actor
	CorrelationID  string
	CausationID    string
	RequestID      string
	IdempotencyKey string
}

// Result is what every command returns.
type Result struct {
	// ID is the id of the aggregate the command created or changed.
	ID uuid.UUID
	// Version is the aggregate's stream version after the command.
	Version int64
	// Position is the global position of the command's last event; on an
	// idempotent replay it is the original position.
	Position int64
	// View is the aggregate as the command left it, when the command has
	// it at hand (bookings), so the caller need not read it again.
	View any
}

// Handlers bundles the dependencies every command handler shares.
type Handlers struct {
	store eventstore.Store
	now   func() time.Time
	// MaxRetries bounds how often a command is re-run after it lost a race
	// on a schedule bucket or counter stream.
	maxRetries int
	// cache holds tenant, resource, user and domain-guard aggregates
	// (see CacheConfig).
	cache *aggCache
}

// Option configures Handlers.
type Option func(*Handlers)

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) Option { return func(h *Handlers) { h.now = now } }

// WithMaxRetries bounds how often a command that lost a race on a
// schedule bucket or counter runs again (default 20).
func WithMaxRetries(n int) Option { return func(h *Handlers) { h.maxRetries = n } }

// New returns the command handlers over store.
func New(store eventstore.Store, opts ...Option) *Handlers {
	h := &Handlers{store: store, now: time.Now, maxRetries: 20, cache: newAggCache()}
	for _, o := range opts {
		o(h)
	}
	return h
}

// Store returns the event store the handlers write to.
func (h *Handlers) Store() eventstore.Store { return h.store }

// Now returns the handlers' clock reading, truncated to microseconds as
// PostgreSQL stores it, so a replayed aggregate equals the live one.
func (h *Handlers) Now() time.Time { return h.now().UTC().Truncate(time.Microsecond) }

// aggregate is what every domain aggregate offers the loader.
type aggregate interface {
	Replay(events ...domain.Event) error
	Version() int64
	BaseVersion() int64
	Changes() []domain.Event
	ClearChanges()
}

// load replays the stream into agg. It returns domain.ErrNotFound when the
// stream has no event.
func (h *Handlers) load(ctx context.Context, stream string, agg aggregate) error {
	if err := h.loadMaybe(ctx, stream, agg); err != nil {
		return err
	}
	if agg.Version() == 0 {
		return fmt.Errorf("load %s: %w", stream, domain.ErrNotFound)
	}
	return nil
}

// loadMaybe replays the stream into agg; an empty stream leaves it at
// version 0.
func (h *Handlers) loadMaybe(ctx context.Context, stream string, agg aggregate) error {
	recs, err := h.store.Load(ctx, stream, 0)
	if err != nil {
		return fmt.Errorf("load %s: %w", stream, err)
	}
	events, err := decode(recs)
	if err != nil {
		return fmt.Errorf("load %s: %w", stream, err)
	}
	if err := agg.Replay(events...); err != nil {
		return fmt.Errorf("load %s: %w", stream, err)
	}
	return nil
}

// loadAll replays several streams, each into its aggregate, with one
// round trip to the store. Streams without events leave their aggregate at
// version 0.
func (h *Handlers) loadAll(ctx context.Context, loads map[string]aggregate) error {
	if len(loads) == 0 {
		return nil
	}
	cursors := make([]eventstore.StreamCursor, 0, len(loads))
	for s := range loads {
		cursors = append(cursors, eventstore.StreamCursor{StreamID: s})
	}
	recs, err := h.store.LoadStreams(ctx, cursors)
	if err != nil {
		return fmt.Errorf("load %d streams: %w", len(cursors), err)
	}
	for s, agg := range loads {
		events, err := decode(recs[s])
		if err != nil {
			return fmt.Errorf("load %s: %w", s, err)
		}
		if err := agg.Replay(events...); err != nil {
			return fmt.Errorf("load %s: %w", s, err)
		}
	}
	return nil
}

func decode(recs []eventstore.RecordedEvent) ([]domain.Event, error) {
	events := make([]domain.Event, 0, len(recs))
	for _, r := range recs {
		e, err := domain.UnmarshalEvent(r.Type, r.Data)
		if err != nil {
			return nil, fmt.Errorf("event %s (version %d): %w", r.ID, r.StreamVersion, err)
		}
		events = append(events, e)
	}
	return events, nil
}

// batch collects the streams one command appends to.
type batch struct {
	meta    Meta
	appends []eventstore.StreamAppend
}

// add queues agg's changes for stream with the version it was loaded at as
// the expectation. An aggregate with no changes adds nothing.
func (b *batch) add(stream string, agg aggregate) error {
	return b.addExpect(stream, eventstore.Exact(agg.BaseVersion()), agg.Changes())
}

func (b *batch) addExpect(stream string, expected eventstore.ExpectedVersion, changes []domain.Event) error {
	if len(changes) == 0 {
		return nil
	}
	sa := eventstore.StreamAppend{StreamID: stream, TenantID: b.meta.TenantID, Expected: expected}
	md := eventstore.Metadata{
		CorrelationID:  b.meta.CorrelationID,
		CausationID:    b.meta.CausationID,
		Actor:          b.meta.Actor.ID,
		ActorRole:      string(b.meta.Actor.Role),
		IdempotencyKey: b.meta.IdempotencyKey,
		RequestID:      b.meta.RequestID,
	}
	for i, e := range changes {
		data, err := domain.MarshalEvent(e)
		if err != nil {
			return err
		}
		sa.Events = append(sa.Events, eventstore.EventData{
			ID:       b.eventID(stream, expected, i),
			Type:     e.EventType(),
			Version:  domain.EventVersion(e),
			Data:     data,
			Metadata: md,
		})
	}
	b.appends = append(b.appends, sa)
	return nil
}

// eventNamespace seeds the ids of events written under an idempotency key.
var eventNamespace = uuid.MustParse("6f1c2b7e-7d0a-4a53-9a53-1f3f5a8e2c10")

// eventID is random, or, under an idempotency key, derived from the tenant,
// the caller (keys are scoped per caller), the key, the stream, the version
// the append expects and the event's index. A retry of a create whose first
// attempt committed (the crash window the HTTP idempotency record cannot
// cover) therefore presents the same ids and the store returns the
// original result. For a change to an existing stream the expected version
// is part of the id, so a key reused long after its record expired can
// never make a new change look like a duplicate of an old one; a re-run of
// such a change sees the new state instead and is refused or a no-op.
func (b *batch) eventID(stream string, expected eventstore.ExpectedVersion, i int) uuid.UUID {
	if b.meta.IdempotencyKey == "" {
		return uuid.New()
	}
	return uuid.NewSHA1(eventNamespace, fmt.Appendf(nil, "%s\x00%s\x00%s\x00%s\x00%d\x00%d",
		b.meta.TenantID, b.meta.Actor.ID, b.meta.IdempotencyKey, stream, int64(expected), i))
}

// DeriveID returns a new aggregate id: random, or derived from the
// idempotency key so that a retried create names the same aggregate.
func DeriveID(meta Meta, kind string) uuid.UUID {
	if meta.IdempotencyKey == "" {
		return uuid.New()
	}
	return uuid.NewSHA1(eventNamespace, fmt.Appendf(nil, "%s\x00%s\x00%s\x00id:%s", meta.TenantID, meta.Actor.ID, meta.IdempotencyKey, kind))
}

// commit appends the batch. It reports whether the append was an
// idempotent replay of an earlier one.
func (h *Handlers) commit(ctx context.Context, b *batch) (eventstore.AppendResult, error) {
	if len(b.appends) == 0 {
		return eventstore.AppendResult{}, nil
	}
	res, err := h.store.Append(ctx, b.appends...)
	// Also after an error: the append may have committed before it failed.
	h.cache.invalidateAppended(b.appends)
	if err != nil {
		return res, fmt.Errorf("append: %w", err)
	}
	return res, nil
}

// retry runs fn until it does not fail with a version conflict on one of
// the streams for which retrying is safe (retryable reports which), at most
// maxRetries times. Conflicts on other streams are returned as they are.
func (h *Handlers) retry(ctx context.Context, retryable func(stream string) bool, fn func() (Result, error)) (Result, error) {
	var last error
	for attempt := 0; attempt <= h.maxRetries; attempt++ {
		res, err := fn()
		var vc *eventstore.VersionConflictError
		if err == nil || !errors.As(err, &vc) || !retryable(vc.StreamID) {
			return res, err
		}
		last = err
		if err := ctx.Err(); err != nil {
			return Result{}, err
		}
		// Back off a little so that a crowd of writers on one bucket spreads out.
		backoff(ctx, attempt)
	}
	return Result{}, &ContentionError{Attempts: h.maxRetries + 1, Last: last}
}

// ContentionError reports that a command lost the race for the same
// schedule bucket or counter on every attempt. Nothing was written; the
// client may retry. It reports itself unavailable, so the API answers 503
// with Retry-After rather than a conflict that did not happen.
type ContentionError struct {
	Attempts int
	Last     error
}

func (e *ContentionError) Error() string {
	return fmt.Sprintf("too much contention: gave up after %d attempts: %v", e.Attempts, e.Last)
}

// Unwrap returns the last conflict.
func (e *ContentionError) Unwrap() error { return e.Last }

// Unavailable marks the error as temporary.
func (e *ContentionError) Unavailable() bool { return true }
