package testenv

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
)

// GenericPlan returns the generic plan, as EXPLAIN prints it, that
// PostgreSQL makes of q for the parameter types, the plan a statement
// that pgx caches ends up with.
func GenericPlan(t testing.TB, conn *pgx.Conn, q string, types []string, args ...string) string {
	t.Helper()
	ctx := context.Background()
	_, err := conn.Exec(ctx, `SET plan_cache_mode = force_generic_plan`)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `DEALLOCATE ALL`)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `PREPARE plan_probe (`+strings.Join(types, ", ")+`) AS `+q)
	require.NoError(t, err)
	rows, err := conn.Query(ctx, `EXPLAIN EXECUTE plan_probe (`+strings.Join(args, ", ")+`)`, pgx.QueryExecModeSimpleProtocol)
	require.NoError(t, err)
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return strings.Join(lines, "\n")
}

// SeedEvents inserts n events into the event store's booking_events
// behind pool, one new stream each, of the category, without the append
// function's checks (its triggers are off meanwhile), and analyzes
// nothing: a log for tests of plans and scans, not of the store.
func SeedEvents(t testing.TB, exec interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}, category string, n int) {
	t.Helper()
	ctx := context.Background()
	for _, q := range []string{`ALTER TABLE booking_events DISABLE TRIGGER USER`, `
		INSERT INTO booking_events (tenant_id, stream_id, category, stream_version, event_id, type, event_version, data, hash)
		SELECT gen_random_uuid(), $1 || '-seed-' || i, $1, 1, gen_random_uuid(), $1 || '.created', 1, '{}', '\x00'
		FROM generate_series(1, $2::int) i`, `ALTER TABLE booking_events ENABLE TRIGGER USER`} {
		var args []any
		if strings.Contains(q, "$1") {
			args = []any{category, n}
		}
		_, err := exec.Exec(ctx, q, args...)
		require.NoError(t, err)
	}
}

// SkewedLog seeds the event store behind pool as a real log is skewed,
// 20,000 booking events and 20 resource events, analyzes it, and returns
// a connection of its own for GenericPlan, closed when t ends.
func SkewedLog(t testing.TB, pool *pgxpool.Pool) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	SeedEvents(t, pool, "booking", 20_000)
	SeedEvents(t, pool, "resource", 20)
	_, err := pool.Exec(ctx, `ANALYZE booking_events`)
	require.NoError(t, err)
	conn, err := pgx.Connect(ctx, pool.Config().ConnConfig.ConnString())
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(ctx) })
	return conn
}
