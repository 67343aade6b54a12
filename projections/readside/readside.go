// Package readside assembles the read side over one event store: the read
// models (PostgreSQL when the store is, else in memory), the runners that
// keep them current by tailing the store from their checkpoints, the
// waiters that serve X-Min-Position, and the query handlers the HTTP layer
// registers. bookingd opens one at start and closes it at shutdown;
// bookingctl can Rebuild through it.
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
	"github.com/bookingengine/booking/projections/calendars"
	"github.com/bookingengine/booking/projections/catalog"
	"github.com/bookingengine/booking/projections/eventsource"
	"github.com/bookingengine/booking/projections/pgprojection"
	"github.com/bookingengine/booking/projections/reports"
	"github.com/bookingengine/booking/queries"
)

// Config tunes the read side. The zero value runs every projector with
// the defaults.
type Config struct {
	// SkipProjectors leaves the read models alone: this process serves
	// queries from read models that another process keeps current (the
	// PostgreSQL store only; in memory nobody else could).
	SkipProjectors bool
	// PollInterval is how often a caught-up projector looks for new
	// events on PostgreSQL (default eventsource.DefaultPollInterval).
	PollInterval time.Duration
	// BatchSize caps the events of one apply (default
	// projections.DefaultBatchSize).
	BatchSize int
	// Now is the clock of the free-slot query (default time.Now); it must
	// be the command side's clock.
	Now func() time.Time
	// Logger receives projector failures; nil means slog.Default().
	Logger *slog.Logger
	// CalendarUIDDomain is the right-hand side of calendar entries' UIDs
	// (<booking id>@<domain>); default DefaultCalendarUIDDomain. Changing
	// it changes every UID, so subscribed calendars show each booking
	// twice until they drop the old ones.
	CalendarUIDDomain string
}

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

	source *eventsource.Source
	cfg    Config
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
	rs.cancel = cancel
	if !cfg.SkipProjectors {
		for _, p := range rs.Projections {
			r := projections.NewRunner(src, p, projections.RunnerConfig{BatchSize: cfg.BatchSize, Logger: cfg.Logger})
			rs.wg.Go(func() { _ = r.Run(runCtx) })
		}
	}
	return rs, nil
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
