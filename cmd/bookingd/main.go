// Command bookingd is the booking engine: the REST API (commands and
// queries) on one event store. With DATABASE_URL unset it runs on the
// embedded in-memory store, which keeps nothing across restarts.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	// The binary carries the IANA zone database, so it evaluates business
	// hours correctly on hosts without zone files.
	_ "time/tzdata"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/bookingengine/booking/commands"
	"github.com/bookingengine/booking/eventstore"
	"github.com/bookingengine/booking/eventstore/instrumented"
	"github.com/bookingengine/booking/eventstore/memory"
	"github.com/bookingengine/booking/eventstore/postgres"
	bhttp "github.com/bookingengine/booking/http"
	"github.com/bookingengine/booking/http/openapi"
	"github.com/bookingengine/booking/http/pgidempotency"
	"github.com/bookingengine/booking/internal/migrations"
	"github.com/bookingengine/booking/projections/busfeed"
	"github.com/bookingengine/booking/projections/readside"
	"github.com/bookingengine/booking/stream"
	"github.com/bookingengine/booking/stream/relay"
	"github.com/bookingengine/booking/stream/subscriber"
	"github.com/bookingengine/booking/webhooks"
	"github.com/bookingengine/booking/webhooks/httpapi"
)

func main() {
	cfg, err := ConfigFromArgs(os.Args[1:], os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bookingd:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m := NewMain(cfg)
	if err := m.Run(ctx); err != nil {
		m.Logger.Error("start", slog.Any("error", err))
		os.Exit(1)
	}
	<-ctx.Done()
	if err := m.Close(); err != nil {
		m.Logger.Error("shutdown", slog.Any("error", err))
		os.Exit(1)
	}
}

// Config is bookingd's configuration, from flags that mirror the
// environment.
type Config struct {
	DatabaseURL      string
	RedisURL         string
	HTTPAddr         string
	JWTSecret        string
	JWTPublicKeyFile string
	LogFormat        string
	ShutdownTimeout  time.Duration
	DatabaseMaxConns int
	PrintDevToken    bool
	DevTokenTTL      time.Duration

	// ---- events out ----
	// DisableAPI stops the process from serving HTTP (flag --api=false),
	// e.g. to run a relay alone.
	DisableAPI bool
	// DisableRelay stops the process from publishing events (RELAY=off,
	// --relay=false). Several processes may keep it on: one publishes at
	// a time (see package stream/relay).
	DisableRelay bool
	// Partitions splits booking.events into this many partitions
	// (BOOKING_PARTITIONS, --partitions; 0 and 1 mean none). Publisher
	// and every subscriber must agree.
	Partitions int
	// EventSourceBase prefixes the CloudEvents source of published events
	// (EVENT_SOURCE_BASE, --event-source-base), e.g.
	// https://booking.example.com; empty gives "/tenants/<id>".
	EventSourceBase string
	// ---- end of events out ----

	// ---- webhooks ----
	// WebhookAllowLoopbackHTTP accepts http:// webhook URLs whose host is
	// a loopback address (WEBHOOK_ALLOW_LOOPBACK_HTTP=1,
	// --webhook-allow-loopback-http), for development and tests; any
	// other URL must be https.
	WebhookAllowLoopbackHTTP bool
	// WebhookRetention is how long finished webhook deliveries are kept
	// (WEBHOOK_RETENTION, --webhook-retention, default 720h); negative
	// keeps them for ever.
	WebhookRetention time.Duration
	// ---- end of webhooks ----

	// ---- read side ----
	// DisableProjectors stops this process from keeping the read models
	// current (PROJECTORS=off, --projectors=false): it serves queries from
	// read models that other processes keep current (PostgreSQL only).
	DisableProjectors bool
	// ProjectionFeed is what feeds the projectors (PROJECTION_FEED,
	// --projection-feed): "bus" (the default, also when empty), the
	// published category topics through a consumer group per projection,
	// or "store", the event store alone.
	ProjectionFeed string
	// ProjectionGrace is how long, with the bus feed, an event may wait
	// for the bus before a projector applies it from the store
	// (PROJECTION_GRACE, --projection-grace; 0 means the default, 2s).
	ProjectionGrace time.Duration
	// ProjectionBusBatch is, with the bus feed, how many events a
	// projection applies in one transaction at most (PROJECTION_BUS_BATCH,
	// --projection-bus-batch; 0 means the default, 256): above 1 its
	// handler acknowledges an event once queued and a batcher commits
	// the queue, and 1 acknowledges each event after its own commit.
	ProjectionBusBatch int
	// ProjectionMaxLag is the lag, in committed events not yet applied,
	// beyond which a projection fails /readyz (PROJECTION_MAX_LAG,
	// --projection-max-lag; 0 means the default, 10000).
	ProjectionMaxLag int64
	// ---- end of read side ----

	// CalendarUIDDomain is the right-hand side of the UIDs of calendar
	// entries (CALENDAR_UID_DOMAIN, --calendar-uid-domain; default
	// readside.DefaultCalendarUIDDomain). Set it once: changing it makes
	// subscribed calendars show every booking twice until they drop the
	// old entries.
	CalendarUIDDomain string

	// ---- holds ----
	// DisableHoldExpiry stops this process from expiring holds
	// (--hold-expiry=false). Any number of processes may keep it on: each
	// hold.expired is appended once whatever the number of schedulers.
	DisableHoldExpiry bool
	// HoldExpiryInterval is how often due holds are looked for
	// (--hold-expiry-interval, default 1s).
	HoldExpiryInterval time.Duration
	// ---- end of holds ----

	// TenantCacheMaxAge bounds how long a cached tenant or domain answers
	// reads without the store when no invalidation arrived
	// (TENANT_CACHE_MAX_AGE, --tenant-cache-max-age, default 30s; 0
	// asks the store every time). See commands.CacheConfig.
	TenantCacheMaxAge time.Duration
}

// ConfigFromArgs reads the environment through getenv, then flags.
func ConfigFromArgs(args []string, getenv func(string) string) (Config, error) {
	c := Config{
		DatabaseURL:       getenv("DATABASE_URL"),
		RedisURL:          getenv("REDIS_URL"),
		HTTPAddr:          getenv("HTTP_ADDR"),
		JWTSecret:         getenv("JWT_SECRET"),
		JWTPublicKeyFile:  getenv("JWT_PUBLIC_KEY_FILE"),
		LogFormat:         getenv("LOG_FORMAT"),
		EventSourceBase:   getenv("EVENT_SOURCE_BASE"),
		CalendarUIDDomain: getenv("CALENDAR_UID_DOMAIN"),
		WebhookRetention:  webhooks.DefaultRetention,
	}
	// ---- events out ----
	relayOn, api := true, true
	var envErrs []error
	switch v := strings.ToLower(strings.TrimSpace(getenv("RELAY"))); v {
	case "", "on", "true", "1", "yes":
	case "off", "false", "0", "no":
		relayOn = false
	default:
		envErrs = append(envErrs, fmt.Errorf("RELAY=%q: want on or off", v))
	}
	if v := strings.TrimSpace(getenv("BOOKING_PARTITIONS")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			envErrs = append(envErrs, fmt.Errorf("BOOKING_PARTITIONS=%q: %v", v, err))
		}
		c.Partitions = n
	}
	// ---- end of events out ----
	// ---- read side ----
	c.ProjectionFeed, c.ProjectionGrace, c.ProjectionMaxLag = strings.TrimSpace(getenv("PROJECTION_FEED")), readside.DefaultGrace, defaultProjectionMaxLag
	if c.ProjectionFeed == "" {
		c.ProjectionFeed = "bus"
	}
	projectors := true
	switch v := strings.ToLower(strings.TrimSpace(getenv("PROJECTORS"))); v {
	case "", "on", "true", "1", "yes":
	case "off", "false", "0", "no":
		projectors = false
	default:
		envErrs = append(envErrs, fmt.Errorf("PROJECTORS=%q: want on or off", v))
	}
	if v := strings.TrimSpace(getenv("PROJECTION_GRACE")); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			envErrs = append(envErrs, fmt.Errorf("PROJECTION_GRACE=%q: %v", v, err))
		}
		c.ProjectionGrace = d
	}
	if v := strings.TrimSpace(getenv("PROJECTION_BUS_BATCH")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			envErrs = append(envErrs, fmt.Errorf("PROJECTION_BUS_BATCH=%q: %v", v, err))
		}
		c.ProjectionBusBatch = n
	}
	if v := strings.TrimSpace(getenv("PROJECTION_MAX_LAG")); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			envErrs = append(envErrs, fmt.Errorf("PROJECTION_MAX_LAG=%q: %v", v, err))
		}
		c.ProjectionMaxLag = n
	}
	// ---- end of read side ----
	if v := strings.TrimSpace(getenv("WEBHOOK_ALLOW_LOOPBACK_HTTP")); v != "" { // webhooks
		on, err := strconv.ParseBool(v)
		if err != nil {
			envErrs = append(envErrs, fmt.Errorf("WEBHOOK_ALLOW_LOOPBACK_HTTP=%q: want true or false", v))
		}
		c.WebhookAllowLoopbackHTTP = on
	}
	if v := strings.TrimSpace(getenv("WEBHOOK_RETENTION")); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			envErrs = append(envErrs, fmt.Errorf("WEBHOOK_RETENTION=%q: %v", v, err))
		}
		c.WebhookRetention = d
	}
	c.TenantCacheMaxAge = commands.DefaultCacheMaxAge // tenant cache
	if v := strings.TrimSpace(getenv("TENANT_CACHE_MAX_AGE")); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			envErrs = append(envErrs, fmt.Errorf("TENANT_CACHE_MAX_AGE=%q: %v", v, err))
		}
		c.TenantCacheMaxAge = d
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = ":8080"
	}
	if c.LogFormat == "" {
		c.LogFormat = "json"
	}
	fs := flag.NewFlagSet("bookingd", flag.ContinueOnError)
	fs.StringVar(&c.DatabaseURL, "database-url", c.DatabaseURL, "PostgreSQL URL (env DATABASE_URL); empty: embedded in-memory store")
	fs.StringVar(&c.RedisURL, "redis-url", c.RedisURL, "Redis URL for the event streams (env REDIS_URL)")
	fs.StringVar(&c.HTTPAddr, "http-addr", c.HTTPAddr, "listen address (env HTTP_ADDR)")
	fs.StringVar(&c.JWTSecret, "jwt-secret", c.JWTSecret, "HS256 secret that verifies bearer tokens (env JWT_SECRET)")
	fs.StringVar(&c.JWTPublicKeyFile, "jwt-public-key-file", c.JWTPublicKeyFile, "PEM public key that verifies RS256/ES256 tokens (env JWT_PUBLIC_KEY_FILE)")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "json or text (env LOG_FORMAT)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 15*time.Second, "how long in-flight requests may finish at shutdown")
	fs.IntVar(&c.DatabaseMaxConns, "database-max-conns", 0, "PostgreSQL pool size (0: pgx default)")
	fs.DurationVar(&c.DevTokenTTL, "dev-token-ttl", 24*time.Hour, "lifetime of the platform-admin token printed in dev mode")
	fs.BoolVar(&api, "api", api, "serve the REST API")
	fs.BoolVar(&relayOn, "relay", relayOn, "publish committed events to the streams (env RELAY=on|off)")
	fs.IntVar(&c.Partitions, "partitions", c.Partitions, "partitions of booking.events (env BOOKING_PARTITIONS)")
	fs.StringVar(&c.EventSourceBase, "event-source-base", c.EventSourceBase, "CloudEvents source prefix (env EVENT_SOURCE_BASE)")
	fs.BoolVar(&c.WebhookAllowLoopbackHTTP, "webhook-allow-loopback-http", c.WebhookAllowLoopbackHTTP, "accept http:// webhook URLs on loopback hosts (env WEBHOOK_ALLOW_LOOPBACK_HTTP)")
	fs.BoolVar(&projectors, "projectors", projectors, "keep the read models current in this process (env PROJECTORS=on|off)")
	fs.StringVar(&c.ProjectionFeed, "projection-feed", c.ProjectionFeed, "what feeds the projectors: bus or store (env PROJECTION_FEED)")
	fs.DurationVar(&c.ProjectionGrace, "projection-grace", c.ProjectionGrace, "bus feed: how long an event may wait for the bus before a projector applies it from the store (env PROJECTION_GRACE)")
	fs.IntVar(&c.ProjectionBusBatch, "projection-bus-batch", c.ProjectionBusBatch, "bus feed: events a projection applies in one transaction at most; 1 acknowledges each after its commit (env PROJECTION_BUS_BATCH)")
	fs.Int64Var(&c.ProjectionMaxLag, "projection-max-lag", c.ProjectionMaxLag, "events a projection may lag behind before /readyz fails (env PROJECTION_MAX_LAG)")
	fs.DurationVar(&c.WebhookRetention, "webhook-retention", c.WebhookRetention, "how long finished webhook deliveries are kept; negative: for ever (env WEBHOOK_RETENTION)")
	fs.StringVar(&c.CalendarUIDDomain, "calendar-uid-domain", c.CalendarUIDDomain, "domain of calendar entries' UIDs; set once (env CALENDAR_UID_DOMAIN)")
	// ---- holds ----
	holdExpiry := true
	fs.BoolVar(&holdExpiry, "hold-expiry", holdExpiry, "expire holds whose expires_at passed (any number of processes may)")
	fs.DurationVar(&c.HoldExpiryInterval, "hold-expiry-interval", time.Second, "how often due holds are looked for")
	// ---- end of holds ----
	fs.DurationVar(&c.TenantCacheMaxAge, "tenant-cache-max-age", c.TenantCacheMaxAge, "how long a cached tenant answers without the store when no invalidation arrived (env TENANT_CACHE_MAX_AGE; 0: always ask)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	c.DisableHoldExpiry = !holdExpiry // holds
	c.DisableAPI, c.DisableRelay = !api, !relayOn
	c.DisableProjectors = !projectors // read side
	if len(envErrs) > 0 {
		return c, errors.Join(append(envErrs, c.Validate())...)
	}
	return c, c.Validate()
}

// Validate reports every problem of the configuration at once.
func (c Config) Validate() error {
	var errs []error
	if c.JWTSecret != "" && c.JWTPublicKeyFile != "" {
		errs = append(errs, errors.New("set JWT_SECRET or JWT_PUBLIC_KEY_FILE, not both"))
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		errs = append(errs, fmt.Errorf("log format %q: want json or text", c.LogFormat))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("shutdown timeout must be positive"))
	}
	if c.TenantCacheMaxAge < 0 {
		errs = append(errs, errors.New("tenant cache max age must not be negative"))
	}
	if c.DatabaseMaxConns < 0 {
		errs = append(errs, errors.New("database max conns must not be negative"))
	}
	if err := (stream.Topics{Partitions: c.Partitions}).Validate(); err != nil {
		errs = append(errs, fmt.Errorf("partitions: %w", err))
	}
	if c.ProjectionFeed != "" && c.ProjectionFeed != "bus" && c.ProjectionFeed != "store" { // read side
		errs = append(errs, fmt.Errorf("projection feed %q: want bus or store", c.ProjectionFeed))
	}
	if c.ProjectionGrace < 0 {
		errs = append(errs, errors.New("projection grace must not be negative"))
	}
	if c.ProjectionBusBatch < 0 {
		errs = append(errs, errors.New("projection bus batch must not be negative"))
	}
	if c.ProjectionMaxLag < 0 {
		errs = append(errs, errors.New("projection max lag must not be negative"))
	}
	if d := c.CalendarUIDDomain; d != "" && (strings.ContainsAny(d, " \t\r\n@/:;,") || strings.Trim(d, ".") != d) {
		errs = append(errs, fmt.Errorf("calendar UID domain %q: want a domain name such as bookings.example.com", d))
	}

	return errors.Join(errs...)
}

// Main is a running bookingd: Run starts it, Close stops it. An end-to-end
// test starts one on HTTP_ADDR 127.0.0.1:0 and reads Addr.
type Main struct {
	Config Config
	Logger *slog.Logger
	// Addr is the address the API listens on, known after Run.
	Addr string
	// DevToken is the platform-admin token minted in dev mode (no JWT
	// configuration), known after Run.
	DevToken string

	// ---- events out ----
	// Consumers are in-process consumers of the published events; Run
	// starts them (set the field before Run), before the relay.
	Consumers []Consumer
	// Relay publishes committed events; nil when disabled. Known after
	// Run; its Status serves /readyz and metrics.
	Relay *relay.Relay
	// RelayBreaker is the circuit breaker in front of the relay's Redis
	// publisher (nil in embedded mode). Known after Run.
	RelayBreaker *stream.BreakerPublisher
	// Events is how in-process components reach the published events.
	// Known after Run.
	Events EventTransport

	eventsCancel context.CancelFunc
	relayDone    chan struct{}
	relayStore   eventstore.Store
	consumersWG  sync.WaitGroup
	// ---- end of events out ----

	// ---- operable service ----
	// Metrics is the process's Prometheus registry, served at /metrics:
	// components report through it (relay and projection lag, webhook
	// deliveries). Known after Run.
	Metrics *bhttp.Metrics
	// Readiness holds the checks of /readyz; components add theirs (relay
	// and projection lag) once they run. Known after Run.
	Readiness *bhttp.Readiness
	api       *bhttp.Server // the API's routes, for tests
	// ---- end of operable service ----

	// Webhooks is the webhooks feature (its Dispatcher's Stats count
	// deliveries by outcome). Known after Run.
	Webhooks *webhooks.Runtime // webhooks

	// ---- holds ----
	// Clock, when set before Run, replaces time.Now for the commands and
	// the hold expiry scheduler (tests move time forward with it).
	Clock      func() time.Time
	expiryStop context.CancelFunc
	expiryDone chan struct{}
	// ---- end of holds ----

	cache tenantCache // tenant cache: its change feed

	store    eventstore.Store
	readSide *readside.ReadSide // read side: projections and queries
	server   *http.Server
	listener net.Listener
	serveErr chan error
}

// NewMain returns a Main for cfg that logs to stderr.
func NewMain(cfg Config) *Main {
	var h slog.Handler
	if cfg.LogFormat == "text" {
		h = slog.NewTextHandler(os.Stderr, nil)
	} else {
		h = slog.NewJSONHandler(os.Stderr, nil)
	}
	return &Main{Config: cfg, Logger: slog.New(h)}
}

// Run opens the store, migrates it, and starts serving. It returns once the
// listener is open; serving continues until Close.
func (m *Main) Run(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			_ = m.Close()
		}
	}()
	m.Metrics, m.Readiness = bhttp.NewMetrics(), bhttp.NewReadiness() // operable service
	var idem bhttp.IdempotencyStore
	if m.Config.DatabaseURL == "" {
		m.Logger.Warn("DATABASE_URL is not set: using the EMBEDDED IN-MEMORY event store; every booking is lost when this process stops")
		m.store = memory.New()
		idem = bhttp.NewMemoryIdempotencyStore(bhttp.IdempotencyOptions{})
	} else {
		pg, err := postgres.Open(ctx, m.Config.DatabaseURL, postgres.Config{
			MaxConns:   int32(m.Config.DatabaseMaxConns),
			Migrations: migrations.Sets(), // every set, as bookingctl migrate applies them
		})
		if err != nil {
			return err
		}
		m.store = pg
		idem = pgidempotency.New(pg.Pool(), bhttp.IdempotencyOptions{})
		if err := addDatabaseChecks(ctx, m.Readiness, pg.Pool()); err != nil { // operable service
			return err
		}
		m.Logger.Info("event store: PostgreSQL, migrations applied")
	}

	authCfg := bhttp.AuthConfig{Secret: m.Config.JWTSecret, PublicKeyFile: m.Config.JWTPublicKeyFile}
	if !authCfg.Configured() {
		secret, err := bhttp.GenerateSecret()
		if err != nil {
			return err
		}
		authCfg.Secret = secret
		minter, err := bhttp.NewMinter(secret)
		if err != nil {
			return err
		}
		m.DevToken, err = minter.Mint(time.Now(), bhttp.TokenRequest{
			Subject: "dev-platform-admin", Role: bhttp.RolePlatformAdmin, Scopes: bhttp.AllScopes(), TTL: m.Config.DevTokenTTL,
		})
		if err != nil {
			return err
		}
		m.Logger.Warn("no JWT_SECRET or JWT_PUBLIC_KEY_FILE: dev mode with a random key; platform-admin token follows", slog.String("token", m.DevToken))
		fmt.Fprintf(os.Stderr, "\nDev-mode platform-admin token (valid %s):\n\n  export TOKEN=%s\n\n", m.Config.DevTokenTTL, m.DevToken)
	}
	verifier, err := bhttp.NewVerifier(authCfg)
	if err != nil {
		return err
	}

	store, err := instrumented.New(m.store, m.Metrics.Registry()) // operable service: append latency
	if err != nil {
		return err
	}
	var cmdOpts []commands.Option // holds: the clock the expiry scheduler shares
	if m.Clock != nil {
		cmdOpts = append(cmdOpts, commands.WithClock(m.Clock))
	}
	cacheOpt, err := m.cacheOption() // tenant cache
	if err != nil {
		return err
	}
	cmd := commands.New(store, append(cmdOpts, cacheOpt)...)
	m.startCacheFeed(ctx, cmd)  // tenant cache
	m.startHoldExpiry(ctx, cmd) // holds
	srv, err := bhttp.NewServer(bhttp.ServerConfig{
		Verifier:    verifier,
		Tenants:     bhttp.Resolver{Cmd: cmd},
		Idempotency: idem,
		Logger:      m.Logger,
		Metrics:     m.Metrics,   // operable service
		Readiness:   m.Readiness, // operable service
		Head:        m.store.HeadPosition,
	})
	if err != nil {
		return err
	}
	bhttp.RegisterAPI(srv, cmd)
	openapi.Register(srv.Public()) // operable service: /openapi.json, /docs, /redoc
	m.api = srv

	// ---- read side: read models kept current by projectors (each a
	// consumer group on the published topics, with a projector per
	// projection that moves its checkpoint and heals what the bus
	// missed; or tailing the store alone), and the query endpoints ----
	rsCfg := readside.Config{Now: cmd.Now, Logger: m.Logger, CalendarUIDDomain: m.Config.CalendarUIDDomain,
		Grace: m.Config.ProjectionGrace, BusBatch: m.Config.ProjectionBusBatch, SkipProjectors: m.Config.DisableProjectors}
	if m.Config.ProjectionFeed != "store" {
		rsCfg.Feed = readside.FeedBus
	}
	m.readSide, err = readside.Open(ctx, m.store, rsCfg)
	if err != nil {
		return err
	}
	for _, f := range m.readSide.Feeds { // started with the other consumers, before the relay
		m.Consumers = append(m.Consumers, Consumer{Group: f.Group(), Topics: f.Topics(), Handler: f.Handle, Dedupe: busfeed.Dedupe()})
	}
	m.observeProjections()
	bhttp.RegisterQueries(srv, bhttp.Queries{ListBookings: m.readSide.ListBookings, FreeSlots: m.readSide.FreeSlots})
	bhttp.RegisterCatalog(srv, m.readSide.Catalog)
	bhttp.RegisterCalendars(srv, bhttp.Calendars{Get: m.readSide.Calendars, Feeds: m.readSide.CalendarFeeds})
	bhttp.RegisterReports(srv, bhttp.Reports{Bookings: m.readSide.BookingsReport, Utilization: m.readSide.UtilizationReport})
	// ---- end of read side ----

	if err := m.startWebhooks(ctx, srv); err != nil { // webhooks: before the consumers start
		return fmt.Errorf("webhooks: %w", err)
	}

	// ---- events out: in-process consumers, then the relay ----
	if err := m.startEvents(ctx); err != nil {
		return err
	}
	if m.Config.DisableAPI {
		m.Logger.Info("bookingd running without the API")
		return nil
	}
	// ---- end of events out ----

	m.listener, err = net.Listen("tcp", m.Config.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", m.Config.HTTPAddr, err)
	}
	m.Addr = m.listener.Addr().String()
	m.server = &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	m.serveErr = make(chan error, 1)
	go func() { m.serveErr <- m.server.Serve(m.listener) }()
	m.Logger.Info("bookingd listening", slog.String("addr", m.Addr))
	return nil
}

// Close stops accepting requests, lets in-flight ones finish within the
// shutdown timeout, and closes the store.
func (m *Main) Close() error {
	var errs []error
	if m.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), m.Config.ShutdownTimeout)
		defer cancel()
		if err := m.server.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
		}
		if err := <-m.serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
		m.server = nil
	}
	m.stopEvents()         // events out: relay, then consumers, before the store
	if m.Webhooks != nil { // webhooks: the dispatcher, before the store
		m.Webhooks.Close()
		m.Webhooks = nil
	}
	m.stopHoldExpiry()     // holds: before the store
	m.stopCacheFeed()      // tenant cache
	if m.readSide != nil { // read side: stop the projectors before the store
		errs = append(errs, m.readSide.Close())
		m.readSide = nil
	}
	if m.store != nil {
		m.store.Close()
		m.store = nil
	}
	return errors.Join(errs...)
}

// ---- events out ----

// Consumer is an in-process consumer of the published events, run by
// package stream/subscriber: in Redis mode a consumer group on REDIS_URL,
// in embedded mode a subscription to the process's GoChannel.
type Consumer struct {
	// Group is the consumer-group name. It is permanent: Redis keeps the
	// group's position under it, so renaming it reads every retained
	// event again.
	Group string
	// Topics are category topics (stream.TopicBooking, …).
	Topics []string
	// Handler handles each event; it must be safe for concurrent use.
	Handler subscriber.Handler
	// Dedupe overrides the default dedupe store (Redis, or memory in
	// embedded mode), e.g. with a subscriber.PostgresStore.
	Dedupe subscriber.DedupeStore
}

// EventTransport is where published events travel: Redis (REDIS_URL) or,
// without it, the process's GoChannel. Exactly one of Redis and Bus is
// set. A GoChannel feeds only its own process, and on a shared database
// only the process whose relay holds the publisher lock publishes: run
// more than one bookingd with REDIS_URL set.
type EventTransport struct {
	Redis  redis.UniversalClient
	Bus    *gochannel.GoChannel
	Topics stream.Topics
}

// SubscriberConfig returns a subscriber.Config for group on this
// transport, with the deployment's topic naming: Redis mode, or embedded
// mode with dead letters on the GoChannel.
func (t EventTransport) SubscriberConfig(group string, topics ...string) subscriber.Config {
	cfg := subscriber.Config{Group: group, Topics: topics, Naming: t.Topics, Redis: t.Redis}
	if t.Bus != nil {
		cfg.Subscriber, cfg.DeadLetter = t.Bus, t.Bus
	}
	return cfg
}

// startEvents opens the event transport, starts the consumers (in
// embedded mode waiting until they subscribed, since GoChannel drops what
// is published before) and then the relay. They run until Close.
func (m *Main) startEvents(ctx context.Context) error {
	naming := stream.Topics{Partitions: m.Config.Partitions}
	var pub message.Publisher
	name := relay.DefaultName
	if m.Config.RedisURL != "" {
		rc, err := stream.NewRedisClient(m.Config.RedisURL)
		if err != nil {
			return err
		}
		m.Events = EventTransport{Redis: rc, Topics: naming}
		if pub, err = stream.NewRedisPublisher(rc, m.Logger); err != nil {
			return err
		}
		// While Redis is down the relay's retries fail at once instead of
		// each waiting for the client's timeouts; commands never notice.
		m.Metrics.PublisherCircuit("relay", bhttp.CircuitClosed)
		breaker := stream.NewBreakerPublisher(pub, stream.BreakerConfig{
			Name: "relay", Logger: m.Logger,
			OnStateChange: func(_, to stream.BreakerState) { m.Metrics.PublisherCircuit("relay", int(to)) },
		})
		m.RelayBreaker, pub = breaker, breaker
		m.Logger.Info("events: Redis Streams", slog.Int("booking_partitions", max(naming.Partitions, 1)))
	} else {
		bus := stream.NewGoChannel(m.Logger)
		m.Events = EventTransport{Bus: bus, Topics: naming}
		pub = bus
		// Another checkpoint and lock than the Redis relay's: what went
		// to this process's memory never reached Redis.
		name = relay.DefaultName + ".embedded"
		m.Logger.Warn("REDIS_URL is not set: events reach IN-PROCESS consumers only (Watermill GoChannel)")
	}
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.eventsCancel = cancel

	consumersCtx, stopConsumers := context.WithCancel(bg)
	for _, c := range m.Consumers {
		cfg := m.Events.SubscriberConfig(c.Group, c.Topics...)
		cfg.Dedupe, cfg.Logger = c.Dedupe, m.Logger
		sub, err := subscriber.New(cfg)
		if err != nil {
			stopConsumers()
			return fmt.Errorf("consumer %s: %w", c.Group, err)
		}
		m.consumersWG.Go(func() {
			if err := sub.Run(consumersCtx, c.Handler); err != nil {
				m.Logger.Error("consumer stopped", slog.String("group", c.Group), slog.Any("error", err))
			}
		})
		if m.Events.Bus != nil {
			select {
			case <-sub.Ready():
			case <-ctx.Done():
				stopConsumers()
				return ctx.Err()
			}
		}
	}
	m.eventsCancel = func() {
		cancel()
		stopConsumers()
	}

	if m.Config.DisableRelay {
		m.Logger.Info("relay disabled: this process publishes no events")
		return nil
	}
	relayStore, pool := m.store, (*pgxpool.Pool)(nil)
	if _, ok := m.store.(*postgres.Store); ok {
		// A pool of its own, so that a busy API never makes the relay
		// queue for a connection (and the other way round).
		pg, err := postgres.Open(ctx, m.Config.DatabaseURL, postgres.Config{SkipMigrations: true, MaxConns: 3})
		if err != nil {
			return fmt.Errorf("relay: %w", err)
		}
		m.relayStore = pg
		relayStore, pool = pg, pg.Pool()
	}
	r, err := relay.New(relay.Config{
		Store: relayStore, Publisher: pub, Pool: pool, Topics: naming, SourceBase: m.Config.EventSourceBase,
		Name: name, Logger: m.Logger,
	})
	if err != nil {
		return err
	}
	m.Relay = r
	// Relay lag in events, as a metric and as a readiness check: a relay
	// that holds the lock but cannot publish (Redis down) falls behind,
	// and a standby that does not hold the lock reports no lag.
	m.Metrics.ObserveRelayLag(r.Lag)
	if m.Readiness != nil {
		m.Readiness.Add(bhttp.LagCheck("relay", relayMaxLag, r.Lag))
	}
	relayCtx, stopRelay := context.WithCancel(bg)
	m.relayDone = make(chan struct{})
	go func() {
		defer close(m.relayDone)
		_ = r.Run(relayCtx)
	}()
	stopAll := m.eventsCancel
	m.eventsCancel = func() {
		stopRelay()
		<-m.relayDone
		stopAll()
	}
	return nil
}

// relayMaxLag is the relay lag, in events, beyond which /readyz reports the
// process not ready.
const relayMaxLag = 10_000

// stopEvents stops the relay first (in embedded mode it may wait for a
// consumer's acknowledgement), then the consumers, then closes the
// transport. Idempotent.
func (m *Main) stopEvents() {
	if m.eventsCancel != nil {
		m.eventsCancel()
		m.eventsCancel = nil
	}
	m.consumersWG.Wait()
	if m.Events.Bus != nil {
		_ = m.Events.Bus.Close()
	}
	if m.Events.Redis != nil {
		_ = m.Events.Redis.Close()
	}
	if m.relayStore != nil {
		m.relayStore.Close()
		m.relayStore = nil
	}
	m.Events = EventTransport{}
}

// ---- end of events out ----

// ---- read side ----

// defaultProjectionMaxLag is the default Config.ProjectionMaxLag.
const defaultProjectionMaxLag = 10_000

// observeProjections reports each projection's lag (committed events of
// its categories after its checkpoint) as a metric and as a readiness
// check: a replica whose read models trail far behind should not take
// queries that wait on X-Min-Position. A lag that cannot be read (the
// database is down, which the postgres check reports) keeps the last
// value read.
func (m *Main) observeProjections() {
	maxLag := m.Config.ProjectionMaxLag
	if maxLag <= 0 {
		maxLag = defaultProjectionMaxLag
	}
	for _, p := range m.readSide.Projections {
		rs := m.readSide
		var last atomic.Int64
		lag := func() int64 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if n, err := rs.Lag(ctx, p); err == nil {
				last.Store(n)
			}
			return last.Load()
		}
		m.Metrics.ObserveProjectionLag(p.Name(), lag)
		m.Readiness.Add(bhttp.LagCheck("projection "+p.Name(), maxLag, lag))
	}
}

// ---- end of read side ----

// ---- operable service ----

// addDatabaseChecks adds the readiness checks of the PostgreSQL store:
// "postgres" (the pool reaches the server) and "migrations" (the
// migrations recorded when this process started are still recorded, so
// the database is the one it migrated and was not reset or restored from
// an older backup).
func addDatabaseChecks(ctx context.Context, ready *bhttp.Readiness, pool *pgxpool.Pool) error {
	const count = `SELECT count(*) FROM schema_migrations`
	var applied int64
	if err := pool.QueryRow(ctx, count).Scan(&applied); err != nil {
		return fmt.Errorf("count applied migrations: %w", err)
	}
	ready.Add(
		bhttp.ReadinessCheck{Name: "postgres", Check: pool.Ping},
		bhttp.ReadinessCheck{Name: "migrations", Check: func(ctx context.Context) error {
			var n int64
			if err := pool.QueryRow(ctx, count).Scan(&n); err != nil {
				return fmt.Errorf("read schema_migrations: %w", err)
			}
			if n < applied {
				return fmt.Errorf("%d migrations recorded, %d applied at start", n, applied)
			}
			return nil
		}},
	)
	return nil
}

// ---- end of operable service ----

// ---- webhooks ----

// startWebhooks registers the webhook endpoints on srv, adds the consumer
// group that enqueues deliveries (webhooks.Group, permanent) to
// m.Consumers, and starts the dispatcher, which runs until Close. On
// PostgreSQL the deliveries live in the database, so every bookingd
// process dispatches and none sends a delivery twice at once; in
// embedded mode they live in memory.
func (m *Main) startWebhooks(ctx context.Context, srv *bhttp.Server) error {
	cfg := webhooks.Config{Events: m.store, SourceBase: m.Config.EventSourceBase, Retention: m.Config.WebhookRetention, Logger: m.Logger}
	cfg.Dispatcher.Observe = m.Metrics.WebhookDelivery
	if m.Config.WebhookAllowLoopbackHTTP {
		cfg.URLPolicy.LoopbackSchemes = []string{"http"}
	}
	if pg, ok := m.store.(*postgres.Store); ok {
		cfg.Pool = pg.Pool()
	}
	rt, err := webhooks.Open(ctx, cfg)
	if err != nil {
		return err
	}
	m.Webhooks = rt
	bhttp.RegisterWebhooks(srv, httpapi.New(rt.Service))
	m.Consumers = append(m.Consumers, Consumer{
		Group: webhooks.Group, Topics: webhooks.Topics(), Handler: rt.Service.Handle, Dedupe: rt.Dedupe(),
	})
	return rt.Start(context.WithoutCancel(ctx))
}

// ---- end of webhooks ----

// ---- holds ----

// startHoldExpiry runs the hold expiry scheduler (commands.HoldExpirer)
// until Close, unless disabled. It finds open holds from the event store,
// so a restarted process picks up where any process left off.
func (m *Main) startHoldExpiry(ctx context.Context, cmd *commands.Handlers) {
	if m.Config.DisableHoldExpiry {
		m.Logger.Info("hold expiry disabled: this process expires no holds")
		return
	}
	exp := commands.NewHoldExpirer(cmd, commands.HoldExpirerConfig{Interval: m.Config.HoldExpiryInterval, Logger: m.Logger})
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	m.expiryStop, m.expiryDone = stop, make(chan struct{})
	go func() {
		defer close(m.expiryDone)
		_ = exp.Run(runCtx)
	}()
}

// stopHoldExpiry stops the scheduler and waits for it. Idempotent.
func (m *Main) stopHoldExpiry() {
	if m.expiryStop != nil {
		m.expiryStop()
		<-m.expiryDone
		m.expiryStop = nil
	}
}

// ---- end of holds ----
