// Package readside assembles the read side over one event store: the read
// models (PostgreSQL when the store is, else in memory), the projectors
// that keep them current, the waiters that serve X-Min-Position, and the
// query handlers the HTTP layer registers. bookingd opens one at start
// and closes it at shutdown; bookingctl can Rebuild through it.
//
// # Feeds
//
// With FeedStore (the zero Config) each projector is a projections.Runner
// tailing the store from the projection's checkpoint. With FeedBus each
// projection is also a consumer group on the published category topics
// (ReadSide.Feeds, package busfeed): the caller runs the Feeds through
// package stream/subscriber (StartBus, or bookingd's consumers), and a
// Runner with Config.Grace moves the checkpoint over what the bus
// applied and applies itself what the bus has not delivered within the
// grace, so the checkpoint, which Waiter reads for X-Min-Position, never
// stalls and never passes an event that is not applied.
package readside

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/bookingengine/booking/eventstore"
	"github.com/bookingengine/booking/eventstore/postgres"
	"github.com/bookingengine/booking/projections"
	"github.com/bookingengine/booking/projections/availability"
	"github.com/bookingengine/booking/projections/bookings"
	"github.com/bookingengine/booking/projections/busfeed"
	"github.com/bookingengine/booking/projections/calendars"
	"github.com/bookingengine/booking/projections/catalog"
	"github.com/bookingengine/booking/projections/eventsource"
	"github.com/bookingengine/booking/projections/pgprojection"
	"github.com/bookingengine/booking/projections/reports"
	"github.com/bookingengine/booking/queries"
	"github.com/bookingengine/booking/stream/subscriber"
)

// Config tunes the read side. The zero value runs every projector with
// the defaults.
type Config struct {
	// SkipProjectors leaves the read models alone: this process serves
	// queries from read models that another process keeps current (the
	// PostgreSQL store only; in memory nobody else could).
	SkipProjectors bool
	// PollInterval is how often a caught-up projector looks for new
	// events on PostgreSQL (default eventsource.DefaultPollInterval), and,
	// with FeedBus, how often at most it moves the checkpoint over what
	// the bus applied (default projections.DefaultPollInterval).
	PollInterval time.Duration
	// BatchSize caps the events of one apply (default
	// projections.DefaultBatchSize).
	BatchSize int
	// Now is the clock of the free-slot query (default time.Now); it must
	// be the command side's clock.
	Now func() time.Time
	// Logger receives projector failures; nil means slog.Default().
	Logger *slog.Logger
	// Feed chooses what feeds the projectors: FeedStore (the default) or
	// FeedBus.
	Feed Feed
	// Grace is, with FeedBus, how long an event may wait for the bus
	// before the projector applies it from the store (default
	// DefaultGrace): the longest a read-your-writes query waits when the
	// bus is down.
	Grace time.Duration
	// BusBatch is, with FeedBus, how many events a projection's bus
	// handler applies in one transaction at most (default DefaultBusBatch):
	// above 1 the handler acknowledges an event once queued and the read
	// side commits the queue in batches (busfeed.WithBatch); 1 commits
	// each event before acknowledging it.
	BusBatch int
	// CalendarUIDDomain is the right-hand side of calendar entries' UIDs
	// (<booking id>@<domain>); default DefaultCalendarUIDDomain. Changing
	// it changes every UID, so subscribed calendars show each booking
	// twice until they drop the old ones.
	CalendarUIDDomain string
}

// Feed names what feeds the projectors.
type Feed int

const (
	// FeedStore: each projector tails the event store.
	FeedStore Feed = iota
	// FeedBus: each projection consumes its category topics through its
	// consumer group (ReadSide.Feeds), and a projector per projection
	// moves the checkpoint and heals what the bus missed.
	FeedBus
)

// String returns "store" or "bus".
func (f Feed) String() string {
	if f == FeedBus {
		return "bus"
	}
	return "store"
}

// DefaultGrace is the default Config.Grace.
const DefaultGrace = 2 * time.Second

// DefaultBusBatch is the default Config.BusBatch.
const DefaultBusBatch = 256

// BusLinger is how long a batched bus handler waits after an event for
// more to share its transaction (busfeed.WithBatch).
const BusLinger = 10 * time.Millisecond

// LagCap bounds the count behind Lag, so that a projection far behind (a
// rebuild) costs one bounded query.
const LagCap = 1_000_000

// DefaultCalendarUIDDomain is the default Config.CalendarUIDDomain. The
// reserved .invalid top-level domain never names a real host, so the UIDs
// cannot collide with another producer's.
const DefaultCalendarUIDDomain = "bookingengine.invalid"

// ReadSide is the running read side. Its handlers are safe for concurrent
// use.
type ReadSide struct {
	// Projections are every read model, in the order they are rebuilt.
	Projections []projections.Projection
	// The query handlers, for the HTTP layer.
	ListBookings queries.ListBookingsHandler
	GetBooking   queries.GetBookingHandler
	FreeSlots    queries.FreeSlotsHandler
	// Calendars serves GET /calendars/{resources,users}/{id};
	// CalendarFeeds issues, revokes and serves their secret feeds.
	Calendars     queries.CalendarHandler
	CalendarFeeds queries.CalendarFeedsHandler
	// BookingsReport and UtilizationReport serve GET /reports/*.
	BookingsReport    queries.BookingsReportHandler
	UtilizationReport queries.UtilizationReportHandler
	// Catalog serves GET /resource-categories, /resources and /users.
	Catalog queries.ListCatalogHandler

	// Feeds are the bus handlers of the projections, in the order of
	// Projections, with FeedBus unless SkipProjectors; nil otherwise. Run
	// each as a consumer group (StartBus does): Feed.Config gives the
	// group, topics and dedupe store.
	Feeds []*busfeed.Feed
	// Runners are the running projectors, in the order of Projections
	// (none with SkipProjectors).
	Runners []*projections.Runner

	source *eventsource.Source
	cfg    Config
	runCtx context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Open builds the read side over store. On a *postgres.Store it migrates
// the read models' tables first (Migrations; idempotent and safe from
// several processes) and keeps them in the store's database; otherwise the
// read models live in memory. Unless cfg.SkipProjectors, it starts one
// projector per read model, which runs until Close.
func Open(ctx context.Context, store eventstore.Store, cfg Config) (*ReadSide, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.CalendarUIDDomain == "" {
		cfg.CalendarUIDDomain = DefaultCalendarUIDDomain
	}
	var (
		bm interface {
			projections.Projection
			queries.GetBookingReadModel
			queries.ListBookingsReadModel
		}
		am interface {
			projections.Projection
			queries.OccupancyReadModel
		}
		cm interface {
			projections.Projection
			queries.PolicyReadModel
			queries.UserLinks
			queries.CatalogReadModel
		}
		calm interface {
			projections.Projection
			queries.CalendarReadModel
		}
		feeds queries.CalendarFeedStore
		rm    interface {
			projections.Projection
			queries.ReportReadModel
		}
	)
	if pg, ok := store.(*postgres.Store); ok {
		if err := postgres.Migrate(ctx, pg.Pool(), Migrations()...); err != nil {
			return nil, fmt.Errorf("read side: %w", err)
		}
		bm, am, cm = bookings.NewPostgres(pg.Pool()), availability.NewPostgres(pg.Pool()), catalog.NewPostgres(pg.Pool())
		calm, feeds, rm = calendars.NewPostgres(pg.Pool()), calendars.NewPostgresFeeds(pg.Pool()), reports.NewPostgres(pg.Pool())
		// Build the indexes of a rebuild that died half-way.
		for _, p := range []projections.Projection{bm, am, cm, calm, rm} {
			if err := p.(projections.BulkLoader).EndBulk(ctx); err != nil {
				return nil, fmt.Errorf("read side: %w", err)
			}
		}
	} else {
		if cfg.SkipProjectors {
			return nil, errors.New("read side: in-memory read models need their projectors in this process")
		}
		bm, am, cm = bookings.NewMemory(), availability.NewMemory(), catalog.NewMemory()
		calm, feeds, rm = calendars.NewMemory(), calendars.NewMemoryFeeds(), reports.NewMemory()
	}
	src := eventsource.New(store, cfg.PollInterval)
	cal := queries.NewCalendarHandler(calm, projections.NewWaiter(src, calm), cfg.CalendarUIDDomain, cfg.Now)
	rs := &ReadSide{
		Projections:       []projections.Projection{cm, bm, am, calm, rm},
		ListBookings:      queries.NewListBookingsHandler(bm, cm, projections.NewWaiter(src, bm, cm)),
		GetBooking:        queries.NewGetBookingHandler(bm, cm, projections.NewWaiter(src, bm, cm)),
		FreeSlots:         queries.NewFreeSlotsHandler(cm, am, projections.NewWaiter(src, cm, am), cfg.Now),
		Calendars:         cal,
		CalendarFeeds:     queries.NewCalendarFeedsHandler(cal, feeds),
		BookingsReport:    queries.NewBookingsReportHandler(rm, projections.NewWaiter(src, rm)),
		UtilizationReport: queries.NewUtilizationReportHandler(rm, cm, projections.NewWaiter(src, rm, cm)),
		Catalog:           queries.NewListCatalogHandler(cm, projections.NewWaiter(src, cm)),
		source:            src,
		cfg:               cfg,
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	rs.runCtx, rs.cancel = runCtx, cancel
	if !cfg.SkipProjectors {
		rc := projections.RunnerConfig{BatchSize: cfg.BatchSize, PollInterval: cfg.PollInterval, Logger: cfg.Logger}
		if cfg.Feed == FeedBus {
			rc.Grace = cfg.Grace
			if rc.Grace <= 0 {
				rc.Grace = DefaultGrace
			}
		}
		for _, p := range rs.Projections {
			r := projections.NewRunner(src, p, rc)
			rs.Runners = append(rs.Runners, r)
			rs.wg.Go(func() { _ = r.Run(runCtx) })
			if cfg.Feed == FeedBus {
				batch := cfg.BusBatch
				if batch <= 0 {
					batch = DefaultBusBatch
				}
				opts := []busfeed.Option{busfeed.WithLogger(cfg.Logger)}
				if batch > 1 {
					opts = append(opts, busfeed.WithBatch(batch, BusLinger))
				}
				f := busfeed.New(p, src, opts...)
				rs.Feeds = append(rs.Feeds, f)
				rs.wg.Go(func() { _ = f.Run(runCtx) })
			}
		}
	}
	return rs, nil
}

// StartBus runs every Feed as a consumer group built from base (the
// deployment's transport and topic naming: Redis, or Subscriber for the
// embedded GoChannel; Group, Topics and Dedupe are the Feed's), until
// Close. In embedded mode it returns once every subscriber has
// subscribed, so that a relay started afterwards loses nothing; in Redis
// mode at once (the consumers subscribe, and retry, in the background).
// It fails when a subscriber cannot be built, or when ctx ends first.
func (rs *ReadSide) StartBus(ctx context.Context, base subscriber.Config) error {
	if base.Logger == nil {
		base.Logger = rs.cfg.Logger
	}
	for _, f := range rs.Feeds {
		sub, err := subscriber.New(f.Config(base))
		if err != nil {
			return fmt.Errorf("read side: bus feed %s: %w", f.Group(), err)
		}
		rs.wg.Go(func() {
			if err := sub.Run(rs.runCtx, f.Handle); err != nil {
				rs.cfg.Logger.Error("read side: bus feed stopped", slog.String("projection", f.Group()), slog.Any("error", err))
			}
		})
		if base.Subscriber != nil {
			select {
			case <-sub.Ready():
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return nil
}

// Lag returns how many committed events of p's categories lie after its
// checkpoint (at most LagCap): the events a query that waits for the
// newest position would wait for. Safe for concurrent use.
func (rs *ReadSide) Lag(ctx context.Context, p projections.Projection) (int64, error) {
	cp, err := p.Checkpoint(ctx)
	if err != nil {
		return 0, err
	}
	return rs.source.Pending(ctx, cp, p.Categories(), LagCap)
}

// Migrations returns the migration sets of every PostgreSQL read model.
func Migrations() []postgres.MigrationSet {
	return []postgres.MigrationSet{pgprojection.Migrations(), bookings.Migrations(), availability.Migrations(), catalog.Migrations(),
		calendars.Migrations(), reports.Migrations()}
}

// CatchUp applies everything the store can deliver now to every read
// model, and returns the number of events read. Tests and tools use it to
// wait for quiescence.
func (rs *ReadSide) CatchUp(ctx context.Context) (int, error) {
	total := 0
	for _, p := range rs.Projections {
		n, err := projections.NewRunner(rs.source, p, projections.RunnerConfig{BatchSize: rs.cfg.BatchSize, Logger: rs.cfg.Logger}).CatchUp(ctx)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// Rebuild empties every read model and replays the store into it (see
// projections.Rebuild), then catches up with every event that had
// committed by then. Running projectors carry on from the rebuilt
// checkpoints.
func (rs *ReadSide) Rebuild(ctx context.Context, batchSize int) ([]projections.RebuildStats, error) {
	var out []projections.RebuildStats
	for _, p := range rs.Projections {
		st, err := projections.Rebuild(ctx, rs.source, p, batchSize)
		if err != nil {
			return out, err
		}
		if _, err := projections.NewRunner(rs.source, p, projections.RunnerConfig{BatchSize: batchSize, Logger: rs.cfg.Logger}).CatchUp(ctx); err != nil {
			return out, err
		}
		out = append(out, st)
	}
	return out, nil
}

// Close stops the projectors and waits for them; it is idempotent. The
// read models stay (PostgreSQL) or are dropped with the value (memory).
func (rs *ReadSide) Close() error {
	rs.cancel()
	rs.wg.Wait()
	return nil
}
