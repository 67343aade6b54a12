package postgres_test

import (
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/eventstore"
	"github.com/bookingengine/booking/eventstore/postgres"
)

// TestSaveCheckpointTx checks that a checkpoint written in the caller's
// transaction commits and rolls back with the caller's rows.
func TestSaveCheckpointTx(t *testing.T) {
	t.Parallel()
	s, _ := mustOpen(t, postgres.Config{})
	ctx := t.Context()
	_, err := s.Pool().Exec(ctx, `CREATE TABLE read_model (id int PRIMARY KEY)`)
	require.NoError(t, err)

	errRollback := errors.New("rollback")
	cases := []struct {
		name    string
		cursor  eventstore.Cursor
		fail    error
		want    eventstore.Cursor
		wantRow bool
	}{
		{"Commit", eventstore.Cursor{TransactionID: 7, Position: 3}, nil, eventstore.Cursor{TransactionID: 7, Position: 3}, true},
		{"Rollback", eventstore.Cursor{TransactionID: 9, Position: 5}, errRollback, eventstore.Cursor{}, false},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			name := "projector." + tc.name
			err := pgx.BeginFunc(ctx, s.Pool(), func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, `INSERT INTO read_model VALUES ($1)`, i); err != nil {
					return err
				}
				if err := postgres.SaveCheckpointTx(ctx, tx, name, tc.cursor); err != nil {
					return err
				}
				return tc.fail
			})
			require.ErrorIs(t, err, tc.fail)
			got, err := s.Checkpoint(ctx, name)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			var exists bool
			require.NoError(t, s.Pool().QueryRow(ctx, `SELECT exists(SELECT 1 FROM read_model WHERE id = $1)`, i).Scan(&exists))
			require.Equal(t, tc.wantRow, exists)
		})
	}
}

func TestCheckpointEmptyName(t *testing.T) {
	t.Parallel()
	s, _ := mustOpen(t, postgres.Config{})
	require.Error(t, s.SaveCheckpoint(t.Context(), "", eventstore.Cursor{Position: 1}))
}

func TestSnapshotInvalid(t *testing.T) {
	t.Parallel()
	s, _ := mustOpen(t, postgres.Config{})
	cases := []struct {
		name string
		snap eventstore.Snapshot
	}{
		{"NoStream", eventstore.Snapshot{Version: 1, State: []byte(`{}`)}},
		{"VersionZero", eventstore.Snapshot{StreamID: "booking-1", State: []byte(`{}`)}},
		{"NotJSON", eventstore.Snapshot{StreamID: "booking-1", Version: 1, State: []byte(`{`)}},
		{"NoState", eventstore.Snapshot{StreamID: "booking-1", Version: 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.ErrorIs(t, s.SaveSnapshot(t.Context(), tc.snap), eventstore.ErrInvalidAppend)
		})
	}
}

// TestNewSharesPool checks that a Store on a caller's pool leaves the pool
// open when it closes.
func TestNewSharesPool(t *testing.T) {
	t.Parallel()
	s, _ := mustOpen(t, postgres.Config{})
	shared, err := postgres.New(t.Context(), s.Pool(), postgres.Config{SkipMigrations: true})
	require.NoError(t, err)
	shared.Close()
	require.NoError(t, s.Pool().Ping(t.Context()))
	_, err = postgres.New(t.Context(), s.Pool(), postgres.Config{AnyRetries: -1})
	require.ErrorContains(t, err, "AnyRetries")
}
