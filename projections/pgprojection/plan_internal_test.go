package pgprojection

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/eventstore/postgres"
	"github.com/bookingengine/booking/internal/testenv"
)

// TestAppliedVersionLookupsFollowTheTableAsItGrows: a projector starts on
// a new database, so its first applied-version lookups meet a small
// read_model_streams, for which scanning the table is the right plan;
// once the table has grown, with no ANALYZE in between (autovacuum may be
// off), the lookups must use the primary key rather than keep the plan of
// a small table, as a cached statement's generic plan would. Counted in
// pg_stat_user_tables.
func TestAppliedVersionLookupsFollowTheTableAsItGrows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testenv.NewDatabase(t)
	admin, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	t.Cleanup(admin.Close)
	require.NoError(t, postgres.Migrate(ctx, admin, Migrations()))
	_, err = admin.Exec(ctx, `INSERT INTO read_model_streams (projection, stream_id, tenant_id, version)
		SELECT p, 'booking-' || i, gen_random_uuid(), 1 FROM unnest('{bookings,calendars}'::text[]) p, generate_series(1, 4) i`)
	require.NoError(t, err)

	pc, err := pgxpool.ParseConfig(url)
	require.NoError(t, err)
	pc.MaxConns = 1 // one backend, whose statements and statistics we follow
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	p := &Projection{pool: pool, def: Definition{Name: "bookings"}}
	ids := []string{"booking-1", "booking-2"}
	lookUp := func() {
		for range 10 { // past the five custom plans before a generic one
			applied, err := p.AppliedVersions(ctx, ids)
			require.NoError(t, err)
			require.Equal(t, map[string]int64{"booking-1": 1, "booking-2": 1}, applied)
			recorded, err := recordedVersions(ctx, pool, "bookings", ids)
			require.NoError(t, err)
			require.Equal(t, applied, recorded)
		}
	}
	lookUp()
	_, err = admin.Exec(ctx, `INSERT INTO read_model_streams (projection, stream_id, tenant_id, version)
		SELECT p, 'booking-x' || i, gen_random_uuid(), 1 FROM unnest('{bookings,calendars}'::text[]) p, generate_series(1, 50000) i`)
	require.NoError(t, err)

	seqScans := func() (n int64) {
		// Flush this backend's counters, then read them from another.
		_, err := pool.Exec(ctx, `SELECT pg_stat_force_next_flush()`)
		require.NoError(t, err)
		_, err = pool.Exec(ctx, `SELECT 1`)
		require.NoError(t, err)
		require.NoError(t, admin.QueryRow(ctx, `SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'read_model_streams'`).Scan(&n))
		return n
	}
	before := seqScans()
	lookUp()
	require.Equal(t, before, seqScans(), "no lookup scanned read_model_streams once it had grown")
}
