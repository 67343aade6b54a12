package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/bookingengine/booking/eventstore"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Checkpoint returns the named subscriber's cursor, the zero Cursor when
// none is stored. Safe for concurrent use.
func (s *Store) Checkpoint(ctx context.Context, name string) (_ eventstore.Cursor, err error) {
	defer markUnavailable(&err)
	const q = `SELECT transaction_id, position FROM booking_checkpoints WHERE name = $1`
	var c eventstore.Cursor
	err = s.pool.QueryRow(ctx, q, name).Scan(&c.TransactionID, &c.Position)
	if errors.Is(err, pgx.ErrNoRows) {
		return eventstore.Cursor{}, nil
	}
	if err != nil {
		return eventstore.Cursor{}, fmt.Errorf("checkpoint %s: %w", name, err)
	}
	return c, nil
}

// SaveCheckpoint stores the named subscriber's cursor, replacing the
// previous one (also with an earlier cursor: a replay moves it back). It is
// idempotent and safe for concurrent use.
func (s *Store) SaveCheckpoint(ctx context.Context, name string, c eventstore.Cursor) (err error) {
	defer markUnavailable(&err)
	return saveCheckpoint(ctx, s.pool, name, c)
}

// SaveCheckpointTx stores the named subscriber's cursor inside the
// caller's transaction, so that a PostgreSQL read model commits its rows
// and its checkpoint together: after a crash it resumes exactly after the
// last event it applied. Only the caller's commit makes it durable. Do not
// call it in a transaction that has not written yet and then does slow
// work: the write takes a transaction id, which holds back every ReadAll
// (see the package doc).
func SaveCheckpointTx(ctx context.Context, tx pgx.Tx, name string, c eventstore.Cursor) error {
	return saveCheckpoint(ctx, tx, name, c)
}

type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func saveCheckpoint(ctx context.Context, db execer, name string, c eventstore.Cursor) error {
	if name == "" {
		return fmt.Errorf("save checkpoint: empty subscriber name")
	}
	const q = `INSERT INTO booking_checkpoints (name, transaction_id, position) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE
		SET transaction_id = excluded.transaction_id, position = excluded.position, updated_at = now()`
	if _, err := db.Exec(ctx, q, name, c.TransactionID, c.Position); err != nil {
		return fmt.Errorf("save checkpoint %s: %w", name, err)
	}
	return nil
}
