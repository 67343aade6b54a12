package postgres_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/eventstore"
	"github.com/bookingengine/booking/eventstore/postgres"
	"github.com/bookingengine/booking/internal/testenv"
)

// TestStreamLoadsFollowTheLogAsItGrows: a store starts on a new
// database, so its first loads meet a small booking_events, for which
// scanning the table is the right plan; once the log has grown, with no
// ANALYZE in between (autovacuum may be off), loads must use the stream
// index rather than keep the plan of a small table, as a cached
// statement's generic plan would (postgres.Planned). Counted in
// pg_stat_user_tables, on the store's one connection.
func TestStreamLoadsFollowTheLogAsItGrows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testenv.NewDatabase(t)
	s, err := postgres.Open(ctx, url, postgres.Config{MaxConns: 1})
	require.NoError(t, err)
	t.Cleanup(s.Close)
	tenant := uuid.New()
	_, err = s.Append(ctx, eventstore.StreamAppend{StreamID: "booking-a", TenantID: tenant, Expected: eventstore.NoStream,
		Events: []eventstore.EventData{ev("booking.created", `{}`), ev("booking.noted", `{}`)}})
	require.NoError(t, err)
	load := func() {
		for range 10 { // past the five custom plans before a generic one
			got, err := s.LoadStreams(ctx, []eventstore.StreamCursor{{StreamID: "booking-a"}, {StreamID: "booking-b"}})
			require.NoError(t, err)
			require.Len(t, got["booking-a"], 2)
			one, err := s.Load(ctx, "booking-a", 1)
			require.NoError(t, err)
			require.Len(t, one, 1)
		}
	}
	load()
	testenv.SeedEvents(t, s.Pool(), "booking", 50_000)

	seqScans := func() (n int64) {
		_, err := s.Pool().Exec(ctx, `SELECT pg_stat_force_next_flush()`)
		require.NoError(t, err)
		_, err = s.Pool().Exec(ctx, `SELECT 1`)
		require.NoError(t, err)
		require.NoError(t, s.Pool().QueryRow(ctx, `SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'booking_events'`).Scan(&n))
		return n
	}
	before := seqScans()
	load()
	require.Equal(t, before, seqScans(), "no load scanned booking_events once it had grown")
}
