// Package changefeed tells every process, at once, which cached streams
// another process appended to: tenants (their settings and policy) and the
// domain guards that resolve X-Tenant-Domain. bookingd feeds it into the
// command side's cache (commands.Handlers.Invalidate), which answers
// tenant resolution and tenant reads without a round trip while the feed
// is healthy.
//
// # Why LISTEN/NOTIFY and not the tenant.events topic
//
// A cache in every process needs every change in every process: a
// broadcast. A Redis consumer group is the opposite, each entry going to
// one consumer of the group, so every process would need a group of its
// own, created at start and never deleted (Redis keeps a group, and its
// pending entries, until someone destroys it), and a process's
// invalidations would wait for the relay's watermark and publishing. A
// PostgreSQL notification reaches every listening session when the
// appending transaction commits, never for one that rolled back, from the
// database that holds the events, with or without Redis and the relay. The
// trigger (Migrations) notifies only for the streams cached, so the
// appends of bookings pay nothing but the trigger's WHEN test.
//
// # Gaps
//
// A notification sent while a process is not listening is lost to it. So
// a Feed reports itself healthy only while its session listens, and each
// time it (re)starts listening it first calls Sink.InvalidateAll: what
// changed in the gap is dropped wholesale. While it is not healthy, the
// cache asks the store. A session that dies silently (a network that
// drops packets without a reset) is found by a ping after HealthInterval
// without a notification; until then the cache's MaxAge is the bound.
package changefeed

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bookingengine/booking/eventstore/postgres"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// MigrationSetName names the feed's migrations in schema_migrations. It
// is permanent: renaming it makes Migrate apply the files again.
const MigrationSetName = "changefeed"

// Channel is the LISTEN channel on which the trigger of Migrations
// announces the stream id of every tenant and domain-guard event.
const Channel = "booking_cache_invalidation"

// ApplicationName is the application_name of the feed's session, so that
// an operator can tell it in pg_stat_activity.
const ApplicationName = "bookingd-changefeed"

// Migrations returns the feed's migration set: the trigger that notifies
// Channel. Apply it with the event store's migrations.
func Migrations() postgres.MigrationSet {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // the embedded directory is fixed at compile time
	}
	return postgres.MigrationSet{Name: MigrationSetName, FS: sub}
}

// Sink receives the feed: Invalidate with the stream id of each
// notification, InvalidateAll whenever the feed (re)starts listening.
// commands.Handlers is one. Both must be safe for concurrent use.
type Sink interface {
	Invalidate(streamIDs ...string)
	InvalidateAll()
}

// Config configures a Feed.
type Config struct {
	// ConnConfig is where to connect (a copy is taken); typically the
	// store pool's pool.Config().ConnConfig. Required.
	ConnConfig *pgx.ConnConfig
	// Retry is how long to wait before reconnecting after a failure;
	// default 1 s.
	Retry time.Duration
	// HealthInterval is how long the session may stay silent before it
	// is pinged; default 5 s.
	HealthInterval time.Duration
	// Logger, default slog.Default().
	Logger *slog.Logger
}

// Validate reports every problem of the configuration at once.
func (c Config) Validate() error {
	var errs []error
	if c.ConnConfig == nil {
		errs = append(errs, errors.New("changefeed: ConnConfig is required"))
	}
	if c.Retry < 0 {
		errs = append(errs, fmt.Errorf("changefeed: Retry %s must not be negative", c.Retry))
	}
	if c.HealthInterval < 0 {
		errs = append(errs, fmt.Errorf("changefeed: HealthInterval %s must not be negative", c.HealthInterval))
	}
	return errors.Join(errs...)
}

// Feed listens on Channel and passes what it hears to a Sink. Healthy is
// safe for concurrent use; Run once.
type Feed struct {
	cfg     Config
	healthy atomic.Bool
}

// New returns a Feed that is not yet listening (Healthy is false until
// Run listens). It fails when cfg is invalid.
func New(cfg Config) (*Feed, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Retry == 0 {
		cfg.Retry = time.Second
	}
	if cfg.HealthInterval == 0 {
		cfg.HealthInterval = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Feed{cfg: cfg}, nil
}

// Healthy reports whether the feed is listening, i.e. whether every
// notification sent from now on reaches the sink.
func (f *Feed) Healthy() bool { return f.healthy.Load() }

// Run listens until ctx ends, reconnecting after every failure, and
// returns nil then. Each time it starts listening it calls
// sink.InvalidateAll before it reports itself healthy.
func (f *Feed) Run(ctx context.Context, sink Sink) error {
	logged := false
	for {
		err := f.listen(ctx, sink)
		wasListening := f.healthy.Swap(false)
		if ctx.Err() != nil {
			return nil
		}
		// Once per outage: at its start, not at every retry.
		if wasListening || !logged {
			f.cfg.Logger.Warn("changefeed: not listening; cached tenants are read from the store until it is back",
				slog.Any("error", err))
			logged = true
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(f.cfg.Retry):
		}
	}
}

func (f *Feed) listen(ctx context.Context, sink Sink) error {
	cc := f.cfg.ConnConfig.Copy()
	cc.RuntimeParams["application_name"] = ApplicationName
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, `LISTEN `+Channel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// Whatever changed while no one listened is gone: drop everything,
	// then trust what arrives from now on.
	sink.InvalidateAll()
	f.healthy.Store(true)
	f.cfg.Logger.Info("changefeed: listening", slog.String("channel", Channel))
	for {
		wctx, cancel := context.WithTimeout(ctx, f.cfg.HealthInterval)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err == nil:
			sink.Invalidate(n.Payload)
			continue
		case errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
			pctx, cancel := context.WithTimeout(ctx, f.cfg.HealthInterval)
			err = conn.Ping(pctx)
			cancel()
			if err == nil || ctx.Err() != nil {
				continue
			}
		}
		return fmt.Errorf("wait for notifications: %w", err)
	}
}
