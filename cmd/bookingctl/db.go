package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/bookingengine/booking/eventstore/postgres"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// maxConns caps bookingctl's pool: it runs one query at a time (replay a
// few), and must not crowd out bookingd on a shared server.
const maxConns = 4

// databaseFlag registers --database-url; databaseURL reads it after
// parsing, falling back to DATABASE_URL.
func databaseFlag(fs *flags) *string {
	return fs.String("database-url", "", "PostgreSQL URL (default: env DATABASE_URL)")
}

// databaseURL returns --database-url or DATABASE_URL, and a usage error
// when neither is set.
func (m *Main) databaseURL(flag *string) (string, error) {
	url := m.fromEnv(flag, "DATABASE_URL")
	if url == "" {
		return "", usagef("DATABASE_URL is not set (or pass --database-url)")
	}
	return url, nil
}

// openStore opens the event store without migrating: reading the log must
// never change the schema behind an operator's back (bookingctl migrate
// does that, deliberately).
func openStore(ctx context.Context, url string) (*postgres.Store, error) {
	s, err := postgres.Open(ctx, url, postgres.Config{MaxConns: maxConns, SkipMigrations: true})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// openPool connects to url with bookingctl's pool size.
func openPool(ctx context.Context, url string) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	pc.MaxConns = maxConns
	pc.MinConns = min(pc.MinConns, pc.MaxConns)
	postgres.ConfigurePool(pc)
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect: %w", err)
	}
	return pool, nil
}

// schemaHint adds the likely cure to an error from a database that was
// never migrated (undefined table or function).
func schemaHint(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "42P01" || pgErr.Code == "42883") {
		return fmt.Errorf("%w (is the database migrated? run bookingctl migrate)", err)
	}
	return err
}
