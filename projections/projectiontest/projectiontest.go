// Package projectiontest helps the read models' contract suites: it opens
// a migrated PostgreSQL database per test and writes events by hand, with
// the stream versions, positions and cursors a feed would give them.
package projectiontest

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/eventstore/postgres"
	"github.com/bookingengine/booking/internal/testenv"
	"github.com/bookingengine/booking/projections"
	"github.com/bookingengine/booking/projections/pgprojection"
)

// MustPool creates a database for tb, applies the event store's
// migrations, pgprojection's and sets, and returns a pool on it, closed
// when tb ends.
func MustPool(tb testing.TB, sets ...postgres.MigrationSet) *pgxpool.Pool {
	tb.Helper()
	url := testenv.NewDatabase(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pc, err := pgxpool.ParseConfig(url)
	require.NoError(tb, err)
	postgres.ConfigurePool(pc)
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	require.NoError(tb, err)
	tb.Cleanup(pool.Close)
	require.NoError(tb, postgres.Migrate(ctx, pool, append([]postgres.MigrationSet{pgprojection.Migrations()}, sets...)...))
	return pool
}

// Log hands out events as the store would: consecutive positions (with
// transaction id = position) and per-stream versions. Not safe for
// concurrent use.
type Log struct {
	position int64
	versions map[string]int64
}

// NewLog returns an empty log.
func NewLog() *Log { return &Log{versions: map[string]int64{}} }

// Event records e in stream for tenant and returns it as delivered.
func (l *Log) Event(tb testing.TB, tenant uuid.UUID, stream string, e domain.Event) projections.Event {
	tb.Helper()
	data, err := domain.MarshalEvent(e)
	require.NoError(tb, err)
	l.position++
	l.versions[stream]++
	return projections.Event{
		Position: l.position, TransactionID: uint64(l.position), ID: uuid.New(), Type: e.EventType(),
		EventVersion: domain.EventVersion(e), TenantID: tenant, StreamID: stream,
		StreamVersion: l.versions[stream], RecordedAt: time.Unix(1_700_000_000+l.position, 0).UTC(), Data: data,
	}
}

// Batch returns the store batch of events following from.
func Batch(from projections.Cursor, events ...projections.Event) projections.Batch {
	to := from
	if len(events) > 0 {
		to = projections.CursorOf(events[len(events)-1])
	}
	return projections.Batch{Events: events, From: from, To: to}
}

// Bus returns events as a message-bus delivery, which carries no cursor.
func Bus(events ...projections.Event) projections.Batch {
	return projections.Batch{Events: events, FromBus: true}
}

// MustApply applies b to p and fails tb on an error.
func MustApply(tb testing.TB, p projections.Projection, b projections.Batch) {
	tb.Helper()
	require.NoError(tb, p.Apply(context.Background(), b))
}

// Dump returns the rows of the tables as text, table by table in id
// order (each table has a column id).
func Dump(tb testing.TB, pool *pgxpool.Pool, tables ...string) []string {
	tb.Helper()
	var out []string
	for _, table := range tables {
		rows, err := pool.Query(context.Background(), `SELECT t::text FROM `+table+` t ORDER BY id`)
		require.NoError(tb, err)
		rs, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(tb, err)
		out = append(out, rs...)
	}
	return out
}
