// Package busfeed feeds projections from the message bus: each projection
// is a consumer group of package stream/subscriber on the category topics
// that carry its categories, named after the projection (Feed.Group: a
// permanent name, see projections.Projection.Name), in Redis or on the
// embedded GoChannel.
//
// A Feed applies each event in a transaction of its own (a bus batch,
// projections.Batch.FromBus) that records the stream version applied,
// together with the read model. It orders and dedupes by those versions,
// not through the subscriber's store (Dedupe remembers nothing): an event
// at or below the applied version is acknowledged unapplied, so a
// redelivery, an old event arriving after a newer one, and an event that
// the store-side Runner applied first all leave the read model as it was;
// an event that follows a gap (its predecessors were published before
// the group existed, trimmed, or are in another consumer's hands) is
// applied after the missing versions, which the Feed loads from the event
// store. No legitimate event is held back or dead-lettered for its order.
//
// A delivery that keeps failing (the database is down) is retried and then
// parked in the group's dead-letter stream by the subscriber; the
// projector applies that event from the store once its grace has passed,
// so a parked projection event needs no handling by hand.
//
// The bus carries no read-all cursor, so it does not move a projection's
// checkpoint: a projections.Runner with a Grace does (see package
// projections, "Feeding").
//
// # Batches
//
// A consumer gets its topic's events one at a time, each acknowledged
// before the next, so a Feed that commits before it acknowledges pays one
// transaction per event and projection, and a projection keeps up with at
// most one event per commit. A Feed built with WithBatch acknowledges an
// event once it is queued, and Run applies the queue in transactions of
// up to n events. An event acknowledged but not committed (the process
// stopped, or the apply kept failing and was given up) is not lost: it is
// in the event store after the projection's checkpoint, and the Runner
// applies it once its grace has passed. What a batched Feed gives up is
// the dead-letter stream for its events, which it does not need.
package busfeed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/bookingengine/booking/projections"
	"github.com/bookingengine/booking/stream"
	"github.com/bookingengine/booking/stream/subscriber"
)

// Loader loads a stream's events from the event store
// (eventsource.Source).
type Loader interface {
	// LoadStream returns the events of the stream with a version above
	// after, oldest first.
	LoadStream(ctx context.Context, streamID string, after int64) ([]projections.Event, error)
}

// Stats counts what a Feed did.
type Stats struct {
	// Applied counts bus events the Feed applied; Filled the events it
	// loaded from the store to fill a gap before one of them.
	Applied, Filled uint64
	// Skipped counts events the projection had applied already
	// (redeliveries, or applied from the store first); Ignored events of
	// categories the projection does not read. A batched Feed counts every
	// event of a committed batch as Applied, skipped ones included.
	Skipped, Ignored uint64
	// Dropped counts events a batched Feed gave up applying after
	// MaxAttempts (the Runner applies them from the store).
	Dropped uint64
}

// Feed is the bus handler of one projection. Safe for concurrent use.
type Feed struct {
	p          projections.Projection
	store      Loader
	categories map[string]bool
	logger     *slog.Logger

	// batch > 0: Handle queues, Run applies (see "Batches"), waiting up
	// to linger after an event for more to share its transaction.
	batch  int
	linger time.Duration
	queue  chan projections.Event
	// pending counts the events queued and not yet committed or given up.
	pending atomic.Int64

	applied, filled, skipped, ignored, dropped atomic.Uint64
}

// Option configures a Feed.
type Option func(*Feed)

// WithBatch makes Handle acknowledge an event once it is queued, and Run
// apply the queue in transactions of up to n events (see "Batches"),
// waiting up to linger after the first event of a transaction for more:
// under a steady stream of events a few milliseconds turn one
// transaction per event into one per several, for as much more lag.
// n <= 0 leaves the Feed unbatched.
func WithBatch(n int, linger time.Duration) Option {
	return func(f *Feed) { f.batch, f.linger = n, max(linger, 0) }
}

// WithLogger sets where a batched Feed reports failed applies; the
// default is slog.Default().
func WithLogger(l *slog.Logger) Option { return func(f *Feed) { f.logger = l } }

// MaxAttempts is how often a batched Feed tries to apply a batch (or, when
// a batch meets a gap, each of its events) before it gives up.
const MaxAttempts = 5

// New returns the Feed of p, filling gaps from store.
func New(p projections.Projection, store Loader, opts ...Option) *Feed {
	f := &Feed{p: p, store: store, categories: map[string]bool{}, logger: slog.Default()}
	for _, o := range opts {
		o(f)
	}
	for _, c := range p.Categories() {
		f.categories[c] = true
	}
	if f.batch > 0 {
		f.queue = make(chan projections.Event, 4*f.batch)
	}
	return f
}

// Batched reports whether the Feed was built WithBatch: then Run must
// run for the events it acknowledges to be applied.
func (f *Feed) Batched() bool { return f.queue != nil }

// Group returns the consumer group: the projection's name. It is
// permanent: renaming the projection makes a new group that reads every
// retained entry again (harmless, the applied versions skip them, but
// slow).
func (f *Feed) Group() string { return f.p.Name() }

// Topics returns the category topics that carry the projection's
// categories, in the contract's order.
func (f *Feed) Topics() []string { return Topics(f.p.Categories()) }

// Topics returns the category topics that carry events of the categories,
// in the contract's order; categories that are never published add none.
func Topics(categories []string) []string {
	var out []string
	for _, c := range categories {
		if t, ok := stream.RouteOf(c); ok && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	order := stream.CategoryTopics()
	slices.SortFunc(out, func(a, b string) int { return slices.Index(order, a) - slices.Index(order, b) })
	return out
}

// Stats returns the Feed's counters.
func (f *Feed) Stats() Stats {
	return Stats{Applied: f.applied.Load(), Filled: f.filled.Load(), Skipped: f.skipped.Load(), Ignored: f.ignored.Load(),
		Dropped: f.dropped.Load()}
}

// Config returns base (a subscriber.Config for Group and Topics on the
// deployment's transport) with the Feed's group, topics and Dedupe.
func (f *Feed) Config(base subscriber.Config) subscriber.Config {
	base.Group, base.Topics, base.Dedupe = f.Group(), f.Topics(), Dedupe()
	return base
}

// Handle is the subscriber.Handler: it applies e unless the projection
// has applied it, after the versions of its stream that the projection
// has not seen (loaded from the store). An error (the read model or the
// store failed) asks the subscriber to retry. A batched Feed only queues
// e, waiting while the queue is full (see "Batches").
func (f *Feed) Handle(ctx context.Context, e subscriber.Event) error {
	if !f.categories[e.Category()] {
		f.ignored.Add(1)
		return nil
	}
	if f.queue != nil {
		f.pending.Add(1)
		select {
		case f.queue <- FromBus(e):
			return nil
		case <-ctx.Done():
			f.pending.Add(-1)
			return ctx.Err()
		}
	}
	return f.applyOne(ctx, FromBus(e))
}

// applyOne applies e unless the projection has applied it, filling a gap
// before it from the store.
func (f *Feed) applyOne(ctx context.Context, e projections.Event) error {
	applied, err := f.p.AppliedVersions(ctx, []string{e.StreamID})
	if err != nil {
		return err
	}
	if e.StreamVersion <= applied[e.StreamID] {
		f.skipped.Add(1)
		return nil
	}
	err = f.p.Apply(ctx, projections.Batch{Events: []projections.Event{e}, FromBus: true, Contiguous: true})
	var gap *projections.GapError
	switch {
	case err == nil:
		f.applied.Add(1)
		return nil
	case !errors.As(err, &gap):
		return err
	}
	evs, err := f.store.LoadStream(ctx, e.StreamID, gap.Applied)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(evs, func(x projections.Event) bool { return x.StreamVersion > e.StreamVersion })
	if i >= 0 {
		evs = evs[:i]
	}
	if len(evs) == 0 || evs[len(evs)-1].StreamVersion != e.StreamVersion {
		return fmt.Errorf("busfeed %s: stream %s: the store lacks versions %d to %d", f.p.Name(), e.StreamID, gap.Applied+1, e.StreamVersion)
	}
	if err := f.p.Apply(ctx, projections.Batch{Events: evs, FromBus: true, Contiguous: true}); err != nil {
		return err
	}
	f.applied.Add(1)
	f.filled.Add(uint64(len(evs) - 1))
	return nil
}

// Pending returns how many events a batched Feed has acknowledged and
// not yet applied or given up.
func (f *Feed) Pending() int64 { return f.pending.Load() }

// Run applies what a batched Feed queues until ctx ends, and then returns
// nil; it returns at once for a Feed that is not batched. Run it once.
func (f *Feed) Run(ctx context.Context) error {
	if f.queue == nil {
		return nil
	}
	for {
		var evs []projections.Event
		select {
		case e := <-f.queue:
			evs = append(evs, e)
		case <-ctx.Done():
			return nil
		}
		var (
			until <-chan time.Time
			timer *time.Timer
		)
		if f.linger > 0 {
			timer = time.NewTimer(f.linger)
			until = timer.C
		}
	more:
		for len(evs) < f.batch {
			select {
			case e := <-f.queue:
				evs = append(evs, e)
				continue
			default:
			}
			if until == nil {
				break
			}
			select {
			case e := <-f.queue:
				evs = append(evs, e)
			case <-until:
				break more
			case <-ctx.Done():
				break more
			}
		}
		if timer != nil {
			timer.Stop()
		}
		f.commit(ctx, evs)
		f.pending.Add(-int64(len(evs)))
	}
}

// commit applies a batch in one transaction (Apply leaves out the events
// the projection has applied), retrying a failure up to MaxAttempts times; a
// batch that meets a gap is applied event by event, each filling its gap
// from the store. What still fails is given up: the Runner applies it
// from the store.
func (f *Feed) commit(ctx context.Context, evs []projections.Event) {
	var err error
	for attempt := range MaxAttempts {
		if attempt > 0 && !pause(ctx, attempt) {
			return
		}
		err = f.p.Apply(ctx, projections.Batch{Events: evs, FromBus: true, Contiguous: true})
		var gap *projections.GapError
		switch {
		case err == nil:
			f.applied.Add(uint64(len(evs)))
			return
		case errors.As(err, &gap):
			for _, e := range evs {
				f.commitOne(ctx, e)
			}
			return
		}
	}
	f.giveUp(ctx, len(evs), err)
}

// commitOne applies one event of a batch that met a gap, like Handle does
// unbatched, retrying up to MaxAttempts times.
func (f *Feed) commitOne(ctx context.Context, e projections.Event) {
	var err error
	for attempt := range MaxAttempts {
		if attempt > 0 && !pause(ctx, attempt) {
			return
		}
		if err = f.applyOne(ctx, e); err == nil {
			return
		}
	}
	f.giveUp(ctx, 1, err)
}

func (f *Feed) giveUp(ctx context.Context, n int, err error) {
	if ctx.Err() != nil {
		return
	}
	f.dropped.Add(uint64(n))
	f.logger.ErrorContext(ctx, "busfeed: gave up applying events; the projector applies them from the store after its grace",
		slog.String("projection", f.p.Name()), slog.Int("events", n), slog.Any("error", err))
}

// pause waits before the attempt-th try (50ms, doubling), and reports
// whether ctx is still live.
func pause(ctx context.Context, attempt int) bool {
	t := time.NewTimer(50 * time.Millisecond << (attempt - 1))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// FromBus converts a published event to what a projection applies. It
// carries no read-all cursor: TransactionID is 0 and Position the
// event's global position (the envelope's sequence).
func FromBus(e subscriber.Event) projections.Event {
	return projections.Event{
		Position: e.Sequence, ID: e.ID, Type: e.Type, EventVersion: e.EventVersion, TenantID: e.TenantID,
		StreamID: e.StreamID, StreamVersion: e.StreamVersion, RecordedAt: e.Time, Data: e.Data,
	}
}

// Dedupe returns the subscriber.DedupeStore of a projection's consumer
// group. It remembers nothing and leases nothing: it presents every event
// as the next version of its stream, so that the subscriber neither holds
// an event for a gap nor parks one as out of order, and calls the handler
// for every delivery. The Feed orders and dedupes exactly by the versions
// the projection records with its rows, which outlive Redis and move with
// a rebuild. Two consumers of the group may apply events of one stream at
// the same time: the projection's Apply serialises them.
func Dedupe() subscriber.DedupeStore { return passThrough{} }

type passThrough struct{}

func (passThrough) Begin(_ context.Context, _ string, e subscriber.Event, _ time.Duration) (subscriber.Progress, error) {
	return subscriber.Progress{Known: true, LastVersion: e.StreamVersion - 1}, nil
}

func (passThrough) MarkDone(context.Context, string, subscriber.Event, string) error { return nil }

func (passThrough) Release(context.Context, string, subscriber.Event, string) error { return nil }
