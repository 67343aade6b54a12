package postgres

import (
	"context"
	"fmt"

	"github.com/bookingengine/booking/eventstore"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Store is the PostgreSQL event store. It is safe for concurrent use; all
// state lives in the database, so any number of Stores and processes may
// share one database.
type Store struct {
	pool     *pgxpool.Pool
	ownsPool bool
	cfg      Config
}

var _ eventstore.Store = (*Store)(nil)

// Open connects to the database at url (a pgx connection string), runs
// Migrate unless cfg.SkipMigrations, and returns a Store that owns its
// pool: Close closes it. It returns an error, and holds nothing open, when
// cfg is invalid, the server cannot be reached or a migration fails.
func Open(ctx context.Context, url string, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse database url: %w", err)
	}
	// A refused connection marks itself, so that every user of the pool
	// reports a database that is down as unavailable (503), not as a bug.
	pc.ConnConfig.DialFunc = unavailableDial(pc.ConnConfig.DialFunc)
	ConfigurePool(pc)
	if cfg.MaxConns > 0 {
		pc.MaxConns = cfg.MaxConns
		if pc.MinConns > pc.MaxConns {
			pc.MinConns = pc.MaxConns
		}
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	s, err := New(ctx, pool, cfg)
	if err != nil {
		pool.Close()
		return nil, err
	}
	s.ownsPool = true
	return s, nil
}

// New returns a Store on a pool the caller owns (Close leaves it open),
// running Migrate first unless cfg.SkipMigrations.
func New(ctx context.Context, pool *pgxpool.Pool, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if !cfg.SkipMigrations {
		if err := Migrate(ctx, pool, cfg.Migrations...); err != nil {
			return nil, fmt.Errorf("postgres: %w", err)
		}
	}
	return &Store{pool: pool, cfg: cfg}, nil
}

// Pool returns the store's connection pool, so that other adapters (read
// models, idempotency keys, the relay) can share it. Do not close it; close
// the Store.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Upcasters returns the registry applied on Load and ReadAll. Register
// upcasters before the store is used concurrently.
func (s *Store) Upcasters() *eventstore.Upcasters { return s.cfg.Upcasters }

// Close closes the pool if Open created it; with New it does nothing. It
// waits for connections in use to be returned.
func (s *Store) Close() {
	if s.ownsPool {
		s.pool.Close()
	}
}
