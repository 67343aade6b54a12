package postgres_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/eventstore"
	"github.com/bookingengine/booking/eventstore/postgres"
	"github.com/bookingengine/booking/internal/testenv"
)

// mustOpen opens a migrated store on a fresh database of its own, closed
// when the test ends, and returns it with the database URL.
func mustOpen(tb testing.TB, cfg postgres.Config) (*postgres.Store, string) {
	tb.Helper()
	url := testenv.NewDatabase(tb)
	if cfg.MaxConns == 0 {
		cfg.MaxConns = 4
	}
	s, err := postgres.Open(context.Background(), url, cfg)
	require.NoError(tb, err)
	tb.Cleanup(s.Close)
	return s, url
}

// mustExec runs sql on a connection of its own (behind the store's back).
func mustExec(tb testing.TB, url, sql string, args ...any) int64 {
	tb.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	require.NoError(tb, err)
	defer conn.Close(context.Background())
	tag, err := conn.Exec(context.Background(), sql, args...)
	require.NoError(tb, err)
	return tag.RowsAffected()
}

// ev returns an event of type typ with data, and a fresh id.
func ev(typ, data string) eventstore.EventData {
	return eventstore.EventData{ID: uuid.New(), Type: typ, Version: 1, Data: json.RawMessage(data)}
}

// rawAppendSQL calls the append function directly, as Append does, for
// tests that hold its transaction open.
const rawAppendSQL = `SELECT * FROM booking_events_append($1, $2, $3, $4, $5, $6, $7, $8, $9)`

// rawAppendArgs are the arguments of rawAppendSQL for one event appended to
// stream with the expectation expected.
func rawAppendArgs(stream string, tenant uuid.UUID, expected int64, e eventstore.EventData) []any {
	return []any{
		[]string{stream}, []uuid.UUID{tenant}, []int64{expected}, []int32{1},
		[]uuid.UUID{e.ID}, []string{e.Type}, []int32{int32(e.Version)},
		[]string{string(e.Data)}, []string{`{}`},
	}
}

// awaitLockWaiters waits until n backends of the database at url wait on
// a lock, so a test knows a writer has reached the index.
func awaitLockWaiters(tb testing.TB, url string, n int) {
	tb.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	require.NoError(tb, err)
	defer conn.Close(context.Background())
	deadline := time.Now().Add(10 * time.Second)
	for {
		var waiting int
		require.NoError(tb, conn.QueryRow(context.Background(),
			`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting))
		if waiting >= n {
			return
		}
		require.True(tb, time.Now().Before(deadline), "no backend waits on a lock after 10s")
		time.Sleep(5 * time.Millisecond)
	}
}
