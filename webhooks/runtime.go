package webhooks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bookingengine/booking/eventstore/postgres"
	"github.com/bookingengine/booking/stream/subscriber"
)

// Config configures Open: the whole feature of one process.
type Config struct {
	// Pool selects PostgresStore on this pool (migrated by Open); nil
	// selects a MemoryStore (embedded mode).
	Pool *pgxpool.Pool
	// Events, SourceBase and URLPolicy go to the Service (see
	// ServiceConfig).
	Events     EventReader
	SourceBase string
	URLPolicy  URLPolicy
	// Dispatcher tunes the dispatcher; Open sets its Store and, when
	// nil, its Logger.
	Dispatcher DispatcherConfig
	// Retention is how long finished deliveries (succeeded or dead), and
	// on PostgreSQL the consumer group's record of handled event ids, are
	// kept (default DefaultRetention); negative keeps them for ever. The
	// deliveries list of GET /webhooks/{id}/deliveries reaches back this
	// far.
	Retention time.Duration
	// PruneInterval is how often the Runtime prunes (default
	// DefaultPruneInterval).
	PruneInterval time.Duration
	// Logger receives the logs; nil discards them.
	Logger *slog.Logger
}

// Defaults of Config.
const (
	DefaultRetention     = 30 * 24 * time.Hour
	DefaultPruneInterval = time.Hour
)

// Runtime is the webhooks feature of one process: the store, the use
// cases, and a dispatcher that Start runs until Close. Its Service.Handle
// is the handler of consumer group Group on Topics, with Dedupe as that
// group's dedupe store.
type Runtime struct {
	Store      Store
	Service    *Service
	Dispatcher *Dispatcher

	dedupe        subscriber.DedupeStore
	pgDedupe      *subscriber.PostgresStore
	retention     time.Duration
	pruneInterval time.Duration
	now           func() time.Time
	log           *slog.Logger
	pruned        atomic.Int64

	mu   sync.Mutex
	stop context.CancelFunc
	done chan struct{}
}

// Open builds the Runtime of cfg. With a Pool it first applies
// Migrations (and subscriber.Migrations, whose tables Enqueue writes);
// migrating is idempotent and safe from several processes at once.
func Open(ctx context.Context, cfg Config) (*Runtime, error) {
	rt := &Runtime{retention: cfg.Retention, pruneInterval: cfg.PruneInterval, log: cfg.Logger}
	if rt.retention == 0 {
		rt.retention = DefaultRetention
	}
	if rt.pruneInterval <= 0 {
		rt.pruneInterval = DefaultPruneInterval
	}
	if rt.log == nil {
		rt.log = slog.New(slog.DiscardHandler)
	}
	if cfg.Pool != nil {
		if err := postgres.Migrate(ctx, cfg.Pool, subscriber.Migrations(), Migrations()); err != nil {
			return nil, fmt.Errorf("webhooks: %w", err)
		}
		rt.Store = NewPostgresStore(cfg.Pool)
		rt.pgDedupe = subscriber.NewPostgresStore(cfg.Pool)
		rt.dedupe = rt.pgDedupe
	} else {
		rt.Store = NewMemoryStore()
	}
	dc := cfg.Dispatcher
	dc.Store = rt.Store
	if dc.Logger == nil {
		dc.Logger = cfg.Logger
	}
	var err error
	if rt.Dispatcher, err = NewDispatcher(dc); err != nil {
		return nil, err
	}
	rt.now = rt.Dispatcher.now
	rt.Service, err = NewService(ServiceConfig{
		Store: rt.Store, Events: cfg.Events, SourceBase: cfg.SourceBase, URLPolicy: cfg.URLPolicy,
		Now: dc.Now, Notify: rt.Dispatcher.Wake,
	})
	if err != nil {
		return nil, err
	}
	return rt, nil
}

// Dedupe returns the dedupe store the Group's subscriber must use so that
// Handle's transaction marks events done (a subscriber.PostgresStore on
// the Pool), or nil in memory mode, where the subscriber's default will
// do.
func (r *Runtime) Dedupe() subscriber.DedupeStore { return r.dedupe }

// Stats returns the dispatcher's counters and how many deliveries the
// consumer enqueued, in this process. Safe for concurrent use.
func (r *Runtime) Stats() Stats {
	st := r.Dispatcher.Stats()
	st.Enqueued = r.Service.Enqueued()
	return st
}

// ErrStarted is returned by a second Start.
var ErrStarted = errors.New("webhooks: runtime already started")

// Start runs the dispatcher in the background until Close (or ctx ends).
func (r *Runtime) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done != nil {
		return ErrStarted
	}
	ctx, r.stop = context.WithCancel(ctx)
	r.done = make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { _ = r.Dispatcher.Run(ctx) })
	if r.retention > 0 {
		wg.Go(func() { r.runPruner(ctx) })
	}
	go func() {
		defer close(r.done)
		wg.Wait()
	}()
	return nil
}

// Prune deletes what is older than the retention now: finished
// deliveries and, on PostgreSQL, the group's handled event ids. It returns
// how many rows it deleted. Start runs it every PruneInterval; it is safe
// from several processes at once.
func (r *Runtime) Prune(ctx context.Context) (int64, error) {
	if r.retention < 0 {
		return 0, nil
	}
	before := r.now().Add(-r.retention)
	n, err := r.Store.Prune(ctx, before)
	if err != nil {
		return n, err
	}
	if r.pgDedupe != nil {
		m, err := r.pgDedupe.Prune(ctx, before)
		n += m
		if err != nil {
			return n, fmt.Errorf("webhooks: %w", err)
		}
	}
	r.pruned.Add(n)
	return n, nil
}

// Pruned returns how many rows Prune deleted in this process.
func (r *Runtime) Pruned() int64 { return r.pruned.Load() }

// runPruner prunes at once and then every pruneInterval until ctx ends;
// a failure is logged and tried again at the next tick.
func (r *Runtime) runPruner(ctx context.Context) {
	t := time.NewTicker(r.pruneInterval)
	defer t.Stop()
	for {
		n, err := r.Prune(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			r.log.Warn("webhooks: prune failed; trying again later", slog.Any("error", err))
		case n > 0:
			r.log.Info("webhooks: pruned finished deliveries", slog.Int64("rows", n), slog.Duration("retention", r.retention))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Close stops the dispatcher and waits for its requests in flight to end.
// Idempotent; the Store's pool is the caller's to close, afterwards.
func (r *Runtime) Close() {
	r.mu.Lock()
	stop, done := r.stop, r.done
	r.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
}
