package projections_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/eventstore"
	"github.com/bookingengine/booking/eventstore/memory"
	"github.com/bookingengine/booking/eventstore/postgres"
	"github.com/bookingengine/booking/internal/testenv"
	"github.com/bookingengine/booking/projections"
	"github.com/bookingengine/booking/projections/bookings"
	"github.com/bookingengine/booking/projections/eventsource"
	"github.com/bookingengine/booking/projections/pgprojection"
)

// bookingEvent returns a booking.created of a fresh booking.
func bookingEvent(t *testing.T) (string, eventstore.EventData) {
	t.Helper()
	id := uuid.New()
	start := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	data, err := domain.MarshalEvent(domain.BookingCreated{BookingID: id, TenantID: tenantID, ResourceID: uuid.New(),
		ClientID: uuid.New(), Start: start, End: start.Add(time.Hour), Seats: 1, Status: domain.StatusConfirmed, Timezone: "UTC"})
	require.NoError(t, err)
	return domain.BookingStream(id), eventstore.EventData{ID: uuid.New(), Type: domain.EventBookingCreated, Version: 1, Data: data}
}

var tenantID = uuid.MustParse("10000000-0000-0000-0000-0000000000aa")

func appendBooking(t *testing.T, s eventstore.Store) int64 {
	t.Helper()
	stream, ev := bookingEvent(t)
	res, err := s.Append(context.Background(), eventstore.StreamAppend{StreamID: stream, TenantID: tenantID, Expected: eventstore.NoStream, Events: []eventstore.EventData{ev}})
	require.NoError(t, err)
	return res.LastPosition
}

func waitFor(w *projections.Waiter, pos int64, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return w.WaitFor(ctx, pos)
}

// TestWaiterWaitsForTheProjection: a position is waited for until the
// projection applies it, and only then.
func TestWaiterWaitsForTheProjection(t *testing.T) {
	t.Parallel()
	store := memory.New()
	t.Cleanup(store.Close)
	src := eventsource.New(store, 0)
	m := bookings.NewMemory()
	w := projections.NewWaiter(src, m)

	require.NoError(t, waitFor(w, 0, time.Second), "nothing to wait for")
	pos := appendBooking(t, store)
	require.ErrorIs(t, waitFor(w, pos, 50*time.Millisecond), context.DeadlineExceeded, "no projector runs")
	require.NoError(t, waitFor(w, pos-1, time.Second), "nothing of the projection's at or below pos-1")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = projections.NewRunner(src, m, projections.RunnerConfig{}).Run(ctx) }()
	require.NoError(t, waitFor(w, pos, 5*time.Second))
	for range 20 {
		pos := appendBooking(t, store)
		require.NoError(t, waitFor(w, pos, 5*time.Second))
		cp, err := m.Checkpoint(context.Background())
		require.NoError(t, err)
		require.GreaterOrEqual(t, cp.Position, pos)
	}
	// A position beyond the head is not waited for: nothing committed there.
	require.NoError(t, waitFor(w, pos+1_000_000, time.Second))
}

// TestWaiterOutOfOrderCommit: on PostgreSQL a transaction holding a lower
// position may commit after one holding a higher position. A query for
// the higher position must not be answered before the projection has
// applied it, though the store cannot deliver it while the lower one is
// in flight; once that commits, both are applied and the wait ends.
func TestWaiterOutOfOrderCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, err := postgres.Open(ctx, testenv.NewDatabase(t), postgres.Config{Migrations: []postgres.MigrationSet{pgprojection.Migrations(), bookings.Migrations()}})
	require.NoError(t, err)
	t.Cleanup(store.Close)
	src := eventsource.New(store, 5*time.Millisecond)
	m := bookings.NewPostgres(store.Pool())
	w := projections.NewWaiter(src, m)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = projections.NewRunner(src, m, projections.RunnerConfig{}).Run(runCtx) }()

	// The first append stays in flight inside an open transaction.
	tx, err := store.Pool().Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck // committed below
	stream, ev := bookingEvent(t)
	md, err := json.Marshal(ev.Metadata)
	require.NoError(t, err)
	var low int64
	require.NoError(t, tx.QueryRow(ctx, `SELECT last_position FROM booking_events_append($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		[]string{stream}, []uuid.UUID{tenantID}, []int64{0}, []int32{1}, []uuid.UUID{ev.ID}, []string{ev.Type},
		[]int32{1}, []json.RawMessage{ev.Data}, []json.RawMessage{md}).Scan(&low))

	high := appendBooking(t, store)
	require.Greater(t, high, low)
	require.ErrorIs(t, waitFor(w, high, 200*time.Millisecond), context.DeadlineExceeded,
		"the committed event at the higher position cannot be applied while the lower one is in flight")

	require.NoError(t, tx.Commit(ctx))
	require.NoError(t, waitFor(w, high, 5*time.Second))
	var n int
	require.NoError(t, store.Pool().QueryRow(ctx, `SELECT count(*) FROM read_bookings`).Scan(&n))
	require.Equal(t, 2, n, "both events are applied")
}

// TestWaiterLowerPositionLaterTransaction: an event can hold a lower
// position but a later transaction id than another, so read-all delivers
// it after the other. Waiting for the higher position must also wait for
// it, since both had committed when the wait began.
func TestWaiterLowerPositionLaterTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, err := postgres.Open(ctx, testenv.NewDatabase(t), postgres.Config{Migrations: []postgres.MigrationSet{pgprojection.Migrations(), bookings.Migrations()}})
	require.NoError(t, err)
	t.Cleanup(store.Close)
	src := eventsource.New(store, 5*time.Millisecond)
	m := bookings.NewPostgres(store.Pool())
	w := projections.NewWaiter(src, m)

	begin := func() pgx.Tx {
		tx, err := store.Pool().Begin(ctx)
		require.NoError(t, err)
		t.Cleanup(func() { _ = tx.Rollback(ctx) })
		var xid uint64
		require.NoError(t, tx.QueryRow(ctx, `SELECT pg_current_xact_id()::text::bigint`).Scan(&xid))
		return tx
	}
	appendIn := func(tx pgx.Tx) int64 {
		stream, ev := bookingEvent(t)
		var pos int64
		require.NoError(t, tx.QueryRow(ctx, `SELECT last_position FROM booking_events_append($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			[]string{stream}, []uuid.UUID{tenantID}, []int64{0}, []int32{1}, []uuid.UUID{ev.ID}, []string{ev.Type},
			[]int32{1}, []json.RawMessage{ev.Data}, []json.RawMessage{[]byte(`{}`)}).Scan(&pos))
		return pos
	}
	early, late := begin(), begin() // early takes the smaller transaction id
	low := appendIn(late)           // but late takes the smaller position
	high := appendIn(early)
	require.Less(t, low, high)
	require.NoError(t, late.Commit(ctx))
	require.NoError(t, early.Commit(ctx))

	// Apply only the first event in read-all order: the one at high.
	// Transactions of other tests in the cluster may hold the read-all
	// watermark back for a moment.
	var first []projections.Event
	require.Eventually(t, func() bool {
		first, err = src.ReadAll(ctx, projections.Cursor{}, []string{"booking"}, 1)
		require.NoError(t, err)
		return len(first) == 1
	}, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, high, first[0].Position)
	require.NoError(t, m.Apply(ctx, projections.Batch{Events: first, To: projections.CursorOf(first[0])}))

	require.ErrorIs(t, waitFor(w, high, 200*time.Millisecond), context.DeadlineExceeded,
		"the event at the lower position, later in read-all order, is not applied yet")
	_, err = projections.NewRunner(src, m, projections.RunnerConfig{}).CatchUp(ctx)
	require.NoError(t, err)
	require.NoError(t, waitFor(w, high, time.Second))
	require.NoError(t, waitFor(w, low, time.Second))
}
