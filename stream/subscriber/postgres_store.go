package subscriber

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bookingengine/booking/eventstore/postgres"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// MigrationSetName names PostgresStore's migrations in schema_migrations.
// It is permanent: renaming it makes Migrate apply the files again.
const MigrationSetName = "subscriber"

// Migrations returns the tables of PostgresStore. Pass them to
// postgres.Config.Migrations or postgres.Migrate.
func Migrations() postgres.MigrationSet {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // the embedded directory is fixed at compile time
	}
	return postgres.MigrationSet{Name: MigrationSetName, FS: sub}
}

// PostgresStore is a DedupeStore in PostgreSQL (tables of Migrations), for
// consumers whose effects live in the same database: a handler that writes
// its rows and calls MarkDoneTx in one transaction is effectively exactly
// once, since a redelivery then finds the event marked. Rows are kept
// until Prune removes them. Every call is one statement. Safe for
// concurrent use.
type PostgresStore struct {
	pool *pgxpool.Pool
}

// NewPostgresStore returns a store on pool; run Migrations first.
func NewPostgresStore(pool *pgxpool.Pool) *PostgresStore { return &PostgresStore{pool: pool} }

// Begin implements DedupeStore: it takes the lease (a row, replaceable
// once expired) and reads the progress in one statement.
func (s *PostgresStore) Begin(ctx context.Context, group string, e Event, leaseTTL time.Duration) (Progress, error) {
	const q = `WITH lease AS (
			INSERT INTO stream_subscriber_leases AS l (group_name, stream_id, token, expires_at)
			VALUES ($1, $3, $4, clock_timestamp() + $5 * interval '1 millisecond')
			ON CONFLICT (group_name, stream_id) DO UPDATE
			SET token = excluded.token, expires_at = excluded.expires_at
			WHERE l.expires_at < clock_timestamp()
			RETURNING 1)
		SELECT EXISTS (SELECT 1 FROM lease),
			EXISTS (SELECT 1 FROM stream_subscriber_events WHERE group_name = $1 AND event_id = $2),
			(SELECT version FROM stream_subscriber_streams WHERE group_name = $1 AND stream_id = $3)`
	p := Progress{Token: newToken()}
	var leased bool
	var v *int64
	err := s.pool.QueryRow(ctx, q, group, e.ID, e.StreamID, p.Token, max(leaseTTL.Milliseconds(), 1)).Scan(&leased, &p.Seen, &v)
	if err != nil {
		return Progress{}, fmt.Errorf("dedupe begin %s: %w", e.ID, err)
	}
	if !leased {
		return Progress{}, ErrLeaseHeld
	}
	if v != nil {
		p.Known, p.LastVersion = true, *v
	}
	return p, nil
}

// MarkDone implements DedupeStore in one statement (atomic, idempotent).
func (s *PostgresStore) MarkDone(ctx context.Context, group string, e Event, token string) error {
	return markDonePG(ctx, s.pool, group, e, token)
}

// Release implements DedupeStore. Idempotent.
func (s *PostgresStore) Release(ctx context.Context, group string, e Event, token string) error {
	const q = `DELETE FROM stream_subscriber_leases WHERE group_name = $1 AND stream_id = $2 AND token = $3`
	if _, err := s.pool.Exec(ctx, q, group, e.StreamID, token); err != nil {
		return fmt.Errorf("dedupe release %s: %w", e.StreamID, err)
	}
	return nil
}

// MarkDoneTx marks e done for group inside the caller's transaction, so
// that the handler's own writes and the mark commit together; the
// subscriber's MarkDone afterwards finds nothing left to do but release
// the lease. Like every write, it takes a transaction id: keep the
// transaction short (see package eventstore/postgres on the watermark).
func MarkDoneTx(ctx context.Context, tx pgx.Tx, group string, e Event) error {
	return markDonePG(ctx, tx, group, e, "")
}

type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func markDonePG(ctx context.Context, db execer, group string, e Event, token string) error {
	const q = `WITH id AS (
			INSERT INTO stream_subscriber_events (group_name, event_id) VALUES ($1, $2)
			ON CONFLICT DO NOTHING),
		lease AS (
			DELETE FROM stream_subscriber_leases WHERE group_name = $1 AND stream_id = $3 AND token = $5)
		INSERT INTO stream_subscriber_streams (group_name, stream_id, version) VALUES ($1, $3, $4)
		ON CONFLICT (group_name, stream_id) DO UPDATE
		SET version = GREATEST(stream_subscriber_streams.version, excluded.version), updated_at = now()`
	if _, err := db.Exec(ctx, q, group, e.ID, e.StreamID, e.StreamVersion, token); err != nil {
		return fmt.Errorf("dedupe mark done %s: %w", e.ID, err)
	}
	return nil
}

// Prune deletes event ids that every group marked before olderThan, and
// expired leases. Stream versions are kept: a forgotten stream would make
// its next event wait GapWait. It returns how many rows it deleted.
// Idempotent.
func (s *PostgresStore) Prune(ctx context.Context, olderThan time.Time) (int64, error) {
	var n int64
	for _, q := range []string{
		`DELETE FROM stream_subscriber_events WHERE processed_at < $1`,
		`DELETE FROM stream_subscriber_leases WHERE expires_at < now() AND $1::timestamptz IS NOT NULL`,
	} {
		tag, err := s.pool.Exec(ctx, q, olderThan)
		if err != nil {
			return n, fmt.Errorf("dedupe prune: %w", err)
		}
		n += tag.RowsAffected()
	}
	return n, nil
}
