package pgprojection_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/projections/availability"
	"github.com/bookingengine/booking/projections/bookings"
	"github.com/bookingengine/booking/projections/projectiontest"
)

func indexes(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT indexdef FROM pg_indexes WHERE tablename IN ('read_bookings', 'read_availability') ORDER BY 1`)
	require.NoError(t, err)
	var out []string
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		out = append(out, s)
	}
	require.NoError(t, rows.Err())
	return out
}

// TestBulkLoadDropsAndRestoresIndexes: BeginBulk drops the secondary
// indexes (not the primary keys), and EndBulk, from another value as after
// a crash, builds exactly them again; both are idempotent.
func TestBulkLoadDropsAndRestoresIndexes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := projectiontest.MustPool(t, bookings.Migrations(), availability.Migrations())
	before := indexes(t, pool)
	require.Len(t, before, 6, "two primary keys, three listing indexes, one GiST")

	b, a := bookings.NewPostgres(pool), availability.NewPostgres(pool)
	require.NoError(t, b.BeginBulk(ctx))
	require.NoError(t, a.BeginBulk(ctx))
	require.NoError(t, a.BeginBulk(ctx))
	require.Len(t, indexes(t, pool), 2, "only the primary keys are left")

	require.NoError(t, bookings.NewPostgres(pool).EndBulk(ctx))
	require.NoError(t, availability.NewPostgres(pool).EndBulk(ctx))
	require.NoError(t, a.EndBulk(ctx))
	require.Equal(t, before, indexes(t, pool))
	var left int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM read_model_dropped_indexes`).Scan(&left))
	require.Zero(t, left)
}
