// Package pgidempotency keeps the REST API's Idempotency-Key records in
// PostgreSQL (table idempotency_keys), so a retry after a restart, or sent
// to another bookingd process, still gets the first answer.
package pgidempotency

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"time"

	"github.com/bookingengine/booking/eventstore/postgres"
	bhttp "github.com/bookingengine/booking/http"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the migration set that creates idempotency_keys; pass
// it to postgres.Migrate (or postgres.Config.Migrations). Its name is
// recorded with every applied file: never rename it.
func Migrations() postgres.MigrationSet {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err)
	}
	return postgres.MigrationSet{Name: "idempotency", FS: sub}
}

// Store implements bhttp.IdempotencyStore on PostgreSQL. It is safe for
// concurrent use, also by several processes: Begin claims a key with one
// INSERT … ON CONFLICT statement, so exactly one caller wins a new key.
type Store struct {
	pool  *pgxpool.Pool
	ttl   time.Duration
	lease time.Duration
	now   func() time.Time
}

// New returns a store on pool with the given record lifetime and in-progress
// lease (zero values take bhttp's defaults). Times come from opts.Now (the
// processes' clocks, which must roughly agree: the lease is a minute), so
// tests can move them.
func New(pool *pgxpool.Pool, opts bhttp.IdempotencyOptions) *Store {
	ttl, lease := opts.TTL, opts.Lease
	if ttl <= 0 {
		ttl = bhttp.DefaultIdempotencyTTL
	}
	if lease <= 0 {
		lease = bhttp.DefaultIdempotencyLease
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Store{pool: pool, ttl: ttl, lease: lease, now: now}
}

// Begin implements bhttp.IdempotencyStore.
func (s *Store) Begin(ctx context.Context, scope, key string, fp []byte) (*bhttp.StoredResponse, error) {
	// Claim the key when it is new, expired, or an abandoned/stale claim
	// with the same fingerprint; otherwise return the row as it is.
	const q = `
INSERT INTO idempotency_keys AS k (scope, key, fingerprint, claimed_at, expires_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (scope, key) DO UPDATE
   SET fingerprint = EXCLUDED.fingerprint, status = NULL, header = NULL, body = NULL,
       claimed_at = EXCLUDED.claimed_at, completed_at = NULL, expires_at = EXCLUDED.expires_at
 WHERE k.expires_at <= EXCLUDED.claimed_at
    OR (k.completed_at IS NULL AND k.fingerprint = EXCLUDED.fingerprint AND k.claimed_at <= $6)
RETURNING true`
	now := s.now().UTC()
	var claimed bool
	err := s.pool.QueryRow(ctx, q, scope, key, fp, now, now.Add(s.ttl), now.Add(-s.lease)).Scan(&claimed)
	if err == nil {
		return nil, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, postgres.MarkUnavailable(fmt.Errorf("idempotency: claim: %w", err))
	}
	var (
		stored    []byte
		status    *int
		header    []byte
		body      []byte
		completed *time.Time
	)
	err = s.pool.QueryRow(ctx, `SELECT fingerprint, status, header, body, completed_at FROM idempotency_keys WHERE scope = $1 AND key = $2 AND expires_at > $3`,
		scope, key, now).Scan(&stored, &status, &header, &body, &completed)
	if errors.Is(err, pgx.ErrNoRows) {
		// Deleted between the two statements: try again once.
		return s.Begin(ctx, scope, key, fp)
	}
	if err != nil {
		return nil, postgres.MarkUnavailable(fmt.Errorf("idempotency: read: %w", err))
	}
	if string(stored) != string(fp) {
		return nil, bhttp.ErrIdempotencyKeyReused
	}
	if completed == nil || status == nil {
		return nil, bhttp.ErrIdempotencyInProgress
	}
	h := http.Header{}
	if len(header) > 0 {
		if err := json.Unmarshal(header, &h); err != nil {
			return nil, fmt.Errorf("idempotency: decode header: %w", err)
		}
	}
	return &bhttp.StoredResponse{Status: *status, Header: h, Body: body}, nil
}

// Complete implements bhttp.IdempotencyStore.
func (s *Store) Complete(ctx context.Context, scope, key string, resp bhttp.StoredResponse) error {
	header, err := json.Marshal(resp.Header)
	if err != nil {
		return fmt.Errorf("idempotency: encode header: %w", err)
	}
	_, err = s.pool.Exec(ctx, `UPDATE idempotency_keys SET status = $3, header = $4, body = $5, completed_at = $6
WHERE scope = $1 AND key = $2 AND expires_at > $6 AND completed_at IS NULL`, scope, key, resp.Status, header, resp.Body, s.now().UTC())
	if err != nil {
		return postgres.MarkUnavailable(fmt.Errorf("idempotency: complete: %w", err))
	}
	return nil
}

// Abandon implements bhttp.IdempotencyStore.
func (s *Store) Abandon(ctx context.Context, scope, key string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND completed_at IS NULL`, scope, key)
	if err != nil {
		return postgres.MarkUnavailable(fmt.Errorf("idempotency: abandon: %w", err))
	}
	return nil
}

// Sweep deletes expired records and reports how many.
func (s *Store) Sweep(ctx context.Context) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE expires_at <= $1`, s.now().UTC())
	if err != nil {
		return 0, fmt.Errorf("idempotency: sweep: %w", err)
	}
	return tag.RowsAffected(), nil
}
