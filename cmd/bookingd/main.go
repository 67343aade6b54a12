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
	"syscall"
	"time"

	// The binary carries the IANA zone database, so it evaluates business
	// hours correctly on hosts without zone files.
	_ "time/tzdata"

	"github.com/bookingengine/booking/commands"
	"github.com/bookingengine/booking/eventstore"
	"github.com/bookingengine/booking/eventstore/memory"
	"github.com/bookingengine/booking/eventstore/postgres"
	bhttp "github.com/bookingengine/booking/http"
	"github.com/bookingengine/booking/http/pgidempotency"
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
}

// ConfigFromArgs reads the environment through getenv, then flags.
func ConfigFromArgs(args []string, getenv func(string) string) (Config, error) {
	c := Config{
		DatabaseURL:      getenv("DATABASE_URL"),
		RedisURL:         getenv("REDIS_URL"),
		HTTPAddr:         getenv("HTTP_ADDR"),
		JWTSecret:        getenv("JWT_SECRET"),
		JWTPublicKeyFile: getenv("JWT_PUBLIC_KEY_FILE"),
		LogFormat:        getenv("LOG_FORMAT"),
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
	if err := fs.Parse(args); err != nil {
		return c, err
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
	if c.DatabaseMaxConns < 0 {
		errs = append(errs, errors.New("database max conns must not be negative"))
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

	store    eventstore.Store
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
	var idem bhttp.IdempotencyStore
	if m.Config.DatabaseURL == "" {
		m.Logger.Warn("DATABASE_URL is not set: using the EMBEDDED IN-MEMORY event store; every booking is lost when this process stops")
		m.store = memory.New()
		idem = bhttp.NewMemoryIdempotencyStore(bhttp.IdempotencyOptions{})
	} else {
		pg, err := postgres.Open(ctx, m.Config.DatabaseURL, postgres.Config{
			MaxConns:   int32(m.Config.DatabaseMaxConns),
			Migrations: []postgres.MigrationSet{pgidempotency.Migrations()},
		})
		if err != nil {
			return err
		}
		m.store = pg
		idem = pgidempotency.New(pg.Pool(), bhttp.IdempotencyOptions{})
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

	cmd := commands.New(m.store)
	srv, err := bhttp.NewServer(bhttp.ServerConfig{
		Verifier:    verifier,
		Tenants:     bhttp.Resolver{Cmd: cmd},
		Idempotency: idem,
		Logger:      m.Logger,
	})
	if err != nil {
		return err
	}
	bhttp.RegisterAPI(srv, cmd)

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
	if m.store != nil {
		m.store.Close()
		m.store = nil
	}
	return errors.Join(errs...)
}
