package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/bookingengine/booking/eventstore"
	"github.com/jackc/pgx/v5"
)

// SaveSnapshot stores the stream's snapshot, replacing any earlier one. It
// is idempotent. It returns eventstore.ErrInvalidAppend for an empty stream
// id, a version below 1 or state that is not JSON. Safe for concurrent use;
// of two concurrent saves the later commit wins.
func (s *Store) SaveSnapshot(ctx context.Context, snap eventstore.Snapshot) (err error) {
	defer markUnavailable(&err)
	if snap.StreamID == "" || snap.Version < 1 || !jsonValid(snap.State) {
		return fmt.Errorf("save snapshot %q v%d: %w: stream id, version >= 1 and JSON state required",
			snap.StreamID, snap.Version, eventstore.ErrInvalidAppend)
	}
	const q = `INSERT INTO booking_snapshots (stream_id, version, schema_version, state)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (stream_id) DO UPDATE
		SET version = excluded.version, schema_version = excluded.schema_version,
		    state = excluded.state, saved_at = now()`
	if _, err := s.pool.Exec(ctx, q, snap.StreamID, snap.Version, snap.SchemaVersion, []byte(snap.State)); err != nil {
		return fmt.Errorf("save snapshot %s: %w", snap.StreamID, err)
	}
	return nil
}

// LoadSnapshot returns the stream's snapshot, or eventstore.ErrNoSnapshot
// when none is stored. Load the events after its Version to catch up.
// Safe for concurrent use.
func (s *Store) LoadSnapshot(ctx context.Context, streamID string) (_ eventstore.Snapshot, err error) {
	defer markUnavailable(&err)
	const q = `SELECT version, schema_version, state FROM booking_snapshots WHERE stream_id = $1`
	snap := eventstore.Snapshot{StreamID: streamID}
	err = s.pool.QueryRow(ctx, q, streamID).Scan(&snap.Version, &snap.SchemaVersion, (*[]byte)(&snap.State))
	if errors.Is(err, pgx.ErrNoRows) {
		return eventstore.Snapshot{}, fmt.Errorf("load snapshot %s: %w", streamID, eventstore.ErrNoSnapshot)
	}
	if err != nil {
		return eventstore.Snapshot{}, fmt.Errorf("load snapshot %s: %w", streamID, err)
	}
	return snap, nil
}

func jsonValid(b []byte) bool { return len(b) > 0 && json.Valid(b) }
