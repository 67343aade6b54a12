// Command notifier is an example consumer of the published events: it
// subscribes to booking.events as the consumer group "notifier" and
// writes, as JSON lines on stdout, the message each client would receive
// ("Ana, your Consulta with Dentista Sala 1 on 2026-12-01 09:00
// (America/Sao_Paulo) is confirmed"), worded with the tenant's labels.
// It reads tenants, resources, users and bookings by replaying their
// streams from the event store (DATABASE_URL), and never writes to it.
//
//	DATABASE_URL=postgres://… REDIS_URL=redis://127.0.0.1:6379/0 notifier
//
// Delivery is at least once and deduped per event id, so a restarted
// notifier does not send a message twice, except when it stops between
// writing a line and recording it (a real sender would pass the event id
// to its provider as an idempotency key).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/bookingengine/booking/eventstore/postgres"
	"github.com/bookingengine/booking/stream"
	"github.com/bookingengine/booking/stream/subscriber"
)

// DefaultGroup is the notifier's consumer group. It is permanent: Redis
// keeps the group's position under this name, and a renamed group would
// send every retained booking's message again.
const DefaultGroup = "notifier"

// Config is the notifier's configuration, from flags that mirror the
// environment.
type Config struct {
	DatabaseURL string // the event store, read only (DATABASE_URL)
	RedisURL    string // the event streams (REDIS_URL)
	Partitions  int    // partitions of booking.events, as the relay's (BOOKING_PARTITIONS)
	Group       string // the consumer group, permanent (NOTIFIER_GROUP, default DefaultGroup)
	Consumer    string // this process's consumer name (NOTIFIER_CONSUMER, default the host name)
	LogFormat   string // json or text (LOG_FORMAT)
	// TopicPrefix is prepended to topic names (stream.Topics.Prefix); it
	// must match the relay's. Production leaves it empty.
	TopicPrefix string
}

// ConfigFromArgs reads the environment through getenv, then flags, and
// reports every problem at once.
func ConfigFromArgs(args []string, getenv func(string) string) (Config, error) {
	c := Config{
		DatabaseURL: getenv("DATABASE_URL"),
		RedisURL:    getenv("REDIS_URL"),
		Group:       getenv("NOTIFIER_GROUP"),
		Consumer:    getenv("NOTIFIER_CONSUMER"),
		LogFormat:   getenv("LOG_FORMAT"),
	}
	var errs []error
	if v := strings.TrimSpace(getenv("BOOKING_PARTITIONS")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("BOOKING_PARTITIONS=%q: %v", v, err))
		}
		c.Partitions = n
	}
	if c.Group == "" {
		c.Group = DefaultGroup
	}
	if c.LogFormat == "" {
		c.LogFormat = "json"
	}
	fs := flag.NewFlagSet("notifier", flag.ContinueOnError)
	fs.StringVar(&c.DatabaseURL, "database-url", c.DatabaseURL, "PostgreSQL URL of the event store (env DATABASE_URL)")
	fs.StringVar(&c.RedisURL, "redis-url", c.RedisURL, "Redis URL of the event streams (env REDIS_URL)")
	fs.IntVar(&c.Partitions, "partitions", c.Partitions, "partitions of booking.events (env BOOKING_PARTITIONS)")
	fs.StringVar(&c.Group, "group", c.Group, "consumer group, permanent (env NOTIFIER_GROUP)")
	fs.StringVar(&c.Consumer, "consumer", c.Consumer, "consumer name, stable across restarts (env NOTIFIER_CONSUMER; default the host name)")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "json or text (env LOG_FORMAT)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if c.DatabaseURL == "" {
		errs = append(errs, errors.New("DATABASE_URL is required: names and labels are read from the event store"))
	}
	if c.RedisURL == "" {
		errs = append(errs, errors.New("REDIS_URL is required: the notifier consumes booking.events from Redis"))
	}
	if err := (stream.Topics{Partitions: c.Partitions}).Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		errs = append(errs, fmt.Errorf("log format %q: want json or text", c.LogFormat))
	}
	return c, errors.Join(errs...)
}

func main() {
	cfg, err := ConfigFromArgs(os.Args[1:], os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "notifier:", err)
		os.Exit(2)
	}
	var h slog.Handler = slog.NewJSONHandler(os.Stderr, nil)
	if cfg.LogFormat == "text" {
		h = slog.NewTextHandler(os.Stderr, nil)
	}
	logger := slog.New(h)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := Run(ctx, cfg, os.Stdout, logger); err != nil {
		logger.Error("notifier stopped", slog.Any("error", err))
		os.Exit(1)
	}
}

// Run consumes until ctx ends (then it returns nil) or the subscription
// fails. It never migrates or writes the event store. A nil logger
// discards the logs.
func Run(ctx context.Context, cfg Config, out io.Writer, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	store, err := postgres.Open(ctx, cfg.DatabaseURL, postgres.Config{SkipMigrations: true, MaxConns: 4})
	if err != nil {
		return err
	}
	defer store.Close()
	rc, err := stream.NewRedisClient(cfg.RedisURL)
	if err != nil {
		return err
	}
	defer rc.Close()
	sub, err := subscriber.New(subscriber.Config{
		Group:    cfg.Group,
		Consumer: cfg.Consumer,
		Topics:   []string{stream.TopicBooking},
		Naming:   stream.Topics{Prefix: cfg.TopicPrefix, Partitions: cfg.Partitions},
		Redis:    rc,
		Logger:   logger,
	})
	if err != nil {
		return err
	}
	logger.Info("notifier consuming", slog.String("group", cfg.Group), slog.Any("topics", sub.Topics()))
	return sub.Run(ctx, NewNotifier(store, out).Handle)
}
