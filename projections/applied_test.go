package projections_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/commands"
	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/eventstore"
	"github.com/bookingengine/booking/projections"
	"github.com/bookingengine/booking/projections/bookings"
	"github.com/bookingengine/booking/projections/busfeed"
	"github.com/bookingengine/booking/projections/eventsource"
	"github.com/bookingengine/booking/projections/readside"
	"github.com/bookingengine/booking/stream"
)

// appliedRows returns the applied versions recorded for a projection.
func appliedRows(t *testing.T, pool *pgxpool.Pool, projection string) map[string]int64 {
	t.Helper()
	return versionsOf(t, pool, `SELECT stream_id, version FROM read_model_streams WHERE projection = $1`, projection)
}

// headVersions returns the last version of each stream of the categories,
// as the event store holds them.
func headVersions(t *testing.T, pool *pgxpool.Pool, categories []string) map[string]int64 {
	t.Helper()
	return versionsOf(t, pool, `SELECT stream_id, max(stream_version) FROM booking_events WHERE category = ANY($1) GROUP BY stream_id`, categories)
}

// versionsOf collects rows of (stream id, version).
func versionsOf(t *testing.T, pool *pgxpool.Pool, q string, arg any) map[string]int64 {
	t.Helper()
	rows, err := pool.Query(context.Background(), q, arg)
	require.NoError(t, err)
	out := map[string]int64{}
	var (
		id string
		v  int64
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &v}, func() error {
		out[id] = v
		return nil
	})
	require.NoError(t, err)
	return out
}

// TestAppliedVersionsFollowTheCheckpoint: store batches record no
// versions, the checkpoint covers them; the bus records what it applies
// ahead of the checkpoint, skips what the checkpoint covers, and a store
// batch skips what the bus recorded; a rebuild leaves the same applied
// versions as the live projection.
func TestAppliedVersionsFollowTheCheckpoint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := openPostgres(t)
	pool := store.Pool()
	cmd := commands.New(store)
	w := setup(t, cmd)
	workload(t, cmd, w, 2, 20, 11)
	rs, err := readside.Open(ctx, store, readside.Config{SkipProjectors: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = rs.Close() })
	src := eventsource.New(store, time.Millisecond)
	p := bookings.NewPostgres(pool)
	all := func() map[string]int64 {
		ids := make([]string, 0)
		for id := range headVersions(t, pool, p.Categories()) {
			ids = append(ids, id)
		}
		got, err := p.AppliedVersions(ctx, ids)
		require.NoError(t, err)
		return got
	}

	n, err := projections.NewRunner(src, p, projections.RunnerConfig{BatchSize: 7}).CatchUp(ctx)
	require.NoError(t, err)
	require.Positive(t, n)
	require.Empty(t, appliedRows(t, pool, p.Name()), "store batches record no versions")
	require.Equal(t, headVersions(t, pool, p.Categories()), all(), "the checkpoint covers them")
	recs, err := store.ReadAll(ctx, eventstore.Cursor{}, eventstore.Filter{Categories: p.Categories()}, 100_000)
	require.NoError(t, err)

	// The workload changes settings now and then: try the hours of the day
	// before its bookings until the commands accept one.
	created := false
	for h := 0; h < 24 && !created; h++ {
		for _, tn := range w.tenants {
			start := w.base.Add(time.Duration(h-24) * time.Hour)
			_, err := cmd.CreateBooking(ctx, adminOf(tn), commands.CreateBooking{Request: domain.BookingRequest{
				ResourceID: w.resources[tn][0], ClientID: w.clients[tn][0], Start: start, End: start.Add(30 * time.Minute), Seats: 1, Title: "late",
			}})
			if created = err == nil; created {
				break
			}
		}
	}
	require.True(t, created)
	var newer []eventstore.RecordedEvent
	require.Eventually(t, func() bool {
		// The read-all withholds a commit while older transactions run.
		newer, err = store.ReadAll(ctx, eventstore.CursorOf(recs[len(recs)-1]), eventstore.Filter{Categories: p.Categories()}, 100_000)
		require.NoError(t, err)
		return len(newer) > 0
	}, 10*time.Second, 5*time.Millisecond)
	require.NotEqual(t, headVersions(t, pool, p.Categories()), all(), "a commit after the checkpoint is not applied")

	feed := busfeed.New(p, src)
	require.NoError(t, feed.Handle(ctx, stream.FromRecorded(recs[len(recs)-1], "")))
	require.EqualValues(t, 1, feed.Stats().Skipped, "the bus skips what the checkpoint covers")
	for _, r := range newer {
		require.NoError(t, feed.Handle(ctx, stream.FromRecorded(r, "")))
	}
	require.EqualValues(t, len(newer), feed.Stats().Applied)
	rows := appliedRows(t, pool, p.Name())
	require.Len(t, rows, len(projections.StreamIDs(toEvents(newer))), "the bus records what it applies ahead of the checkpoint")
	require.Equal(t, headVersions(t, pool, p.Categories()), all())
	live := dumpTables(t, pool, []projections.Projection{p})

	// The store feed then moves the checkpoint over what the bus applied,
	// skipping it.
	n, err = projections.NewRunner(src, p, projections.RunnerConfig{BatchSize: 3}).CatchUp(ctx)
	require.NoError(t, err)
	require.Equal(t, len(newer), n)
	require.Equal(t, live, dumpTables(t, pool, []projections.Projection{p}))

	_, err = projections.Rebuild(ctx, src, p, 5)
	require.NoError(t, err)
	require.Empty(t, appliedRows(t, pool, p.Name()))
	require.Equal(t, live, dumpTables(t, pool, []projections.Projection{p}), "a rebuild equals the live projection, applied versions included")
}

func toEvents(recs []eventstore.RecordedEvent) []projections.Event {
	out := make([]projections.Event, len(recs))
	for i, r := range recs {
		out[i] = projections.Event{StreamID: r.StreamID, StreamVersion: r.StreamVersion}
	}
	return out
}
