package webhooks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

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
	// Logger receives the logs; nil discards them.
	Logger *slog.Logger
}

// Runtime is the webhooks feature of one process: the store, the use
// cases, and a dispatcher that Start runs until Close. Its Service.Handle
// is the handler of consumer group Group on Topics, with Dedupe as that
// group's dedupe store.
type Runtime struct {
	Store      Store
	Service    *Service
	Dispatcher *Dispatcher

	dedupe subscriber.DedupeStore
	mu     sync.Mutex
	stop   context.CancelFunc
	done   chan struct{}
}

// Open builds the Runtime of cfg. With a Pool it first applies
// Migrations (and subscriber.Migrations, whose tables Enqueue writes);
// migrating is idempotent and safe from several processes at once.
func Open(ctx context.Context, cfg Config) (*Runtime, error) {
	rt := &Runtime{}
	if cfg.Pool != nil {
		if err := postgres.Migrate(ctx, cfg.Pool, subscriber.Migrations(), Migrations()); err != nil {
			return nil, fmt.Errorf("webhooks: %w", err)
		}
		rt.Store = NewPostgresStore(cfg.Pool)
		rt.dedupe = subscriber.NewPostgresStore(cfg.Pool)
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
	go func() {
		defer close(r.done)
		_ = r.Dispatcher.Run(ctx)
	}()
	return nil
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
