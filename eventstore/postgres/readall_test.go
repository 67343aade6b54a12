package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/eventstore"
	"github.com/bookingengine/booking/eventstore/postgres"
)

// tail is a ReadAll subscriber that remembers its cursor.
type tail struct {
	s      *postgres.Store
	cursor eventstore.Cursor
	got    []uuid.UUID
}

func (r *tail) poll(t *testing.T) []uuid.UUID {
	t.Helper()
	page, err := r.s.ReadAll(t.Context(), r.cursor, eventstore.Filter{}, 100)
	require.NoError(t, err)
	var ids []uuid.UUID
	for _, e := range page {
		require.True(t, r.cursor.After(e), "event at %d/%d not after cursor %+v", e.TransactionID, e.Position, r.cursor)
		r.cursor = eventstore.CursorOf(e)
		ids = append(ids, e.ID)
	}
	r.got = append(r.got, ids...)
	return ids
}

// TestReadAllLateCommit holds a transaction that took the lower position
// open while a later append commits. A reader that paged by position
// would take the later event and skip the earlier one for ever; the xid8
// watermark holds the later one back until the earlier commits, then
// delivers both, each once.
func TestReadAllLateCommit(t *testing.T) {
	t.Parallel()
	s, url := mustOpen(t, postgres.Config{})
	ctx := t.Context()
	tenant := uuid.New()
	reader := &tail{s: s}

	first := ev("booking.created", `{"n":1}`)
	_, err := s.Append(ctx, eventstore.StreamAppend{StreamID: "booking-" + uuid.NewString(), TenantID: tenant, Expected: eventstore.NoStream, Events: []eventstore.EventData{first}})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(reader.poll(t)) == 1 }, 10*time.Second, 5*time.Millisecond)

	holder, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer holder.Close(context.Background())
	tx, err := holder.Begin(ctx)
	require.NoError(t, err)
	late := ev("booking.created", `{"n":2}`)
	var latePos int64
	require.NoError(t, tx.QueryRow(ctx, `SELECT last_position FROM (`+rawAppendSQL+`) r`,
		rawAppendArgs("booking-"+uuid.NewString(), tenant, 0, late)...).Scan(&latePos))

	early := ev("booking.created", `{"n":3}`)
	res, err := s.Append(ctx, eventstore.StreamAppend{StreamID: "booking-" + uuid.NewString(), TenantID: tenant, Expected: eventstore.NoStream, Events: []eventstore.EventData{early}})
	require.NoError(t, err)
	require.Greater(t, res.LastPosition, latePos, "the committed append took the higher position")

	// A naive reader paging by position sees the higher one now...
	var naive []int64
	rows, err := s.Pool().Query(ctx, `SELECT position FROM booking_events WHERE position > 0 ORDER BY position`)
	require.NoError(t, err)
	naive, err = pgx.CollectRows(rows, pgx.RowTo[int64])
	require.NoError(t, err)
	require.NotContains(t, naive, latePos)
	require.Contains(t, naive, res.LastPosition)

	// ...the watermark reader does not, for as long as the gap is open.
	for range 5 {
		require.Empty(t, reader.poll(t), "ReadAll delivered past an open transaction")
		time.Sleep(10 * time.Millisecond)
	}
	head, err := s.HeadPosition(ctx)
	require.NoError(t, err)
	require.Equal(t, res.LastPosition, head, "HeadPosition is the greatest committed position")

	require.NoError(t, tx.Commit(ctx))
	require.Eventually(t, func() bool { reader.poll(t); return len(reader.got) == 3 }, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, []uuid.UUID{first.ID, late.ID, early.ID}, reader.got, "each event once, the late commit first (its transaction is older)")
	for range 3 {
		require.Empty(t, reader.poll(t), "an event was repeated")
	}
}

// TestReadAllRolledBackGap checks that a rolled-back append leaves a
// position gap that the reader passes without waiting for ever.
func TestReadAllRolledBackGap(t *testing.T) {
	t.Parallel()
	s, url := mustOpen(t, postgres.Config{})
	ctx := t.Context()
	holder, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer holder.Close(context.Background())
	tx, err := holder.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, rawAppendSQL, rawAppendArgs("booking-"+uuid.NewString(), uuid.New(), 0, ev("x.y", `{}`))...)
	require.NoError(t, err)
	kept := ev("x.y", `{}`)
	_, err = s.Append(ctx, eventstore.StreamAppend{StreamID: "booking-" + uuid.NewString(), Expected: eventstore.Any, Events: []eventstore.EventData{kept}})
	require.NoError(t, err)
	require.NoError(t, tx.Rollback(ctx))

	reader := &tail{s: s}
	require.Eventually(t, func() bool { reader.poll(t); return len(reader.got) == 1 }, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, []uuid.UUID{kept.ID}, reader.got)
}

// TestReadAllLimits checks the bounds of one ReadAll call.
func TestReadAllLimits(t *testing.T) {
	t.Parallel()
	s, _ := mustOpen(t, postgres.Config{MaxReadAll: 3})
	evs := make([]eventstore.EventData, 5)
	for i := range evs {
		evs[i] = ev("x.y", `{}`)
	}
	_, err := s.Append(t.Context(), eventstore.StreamAppend{StreamID: "booking-" + uuid.NewString(), Expected: eventstore.NoStream, Events: evs})
	require.NoError(t, err)
	cases := []struct {
		name  string
		limit int
		want  int
	}{
		{"Zero", 0, 0},
		{"Negative", -1, 0},
		{"Below", 2, 2},
		{"CappedAtMaxReadAll", 100, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Eventually(t, func() bool {
				page, err := s.ReadAll(t.Context(), eventstore.Cursor{}, eventstore.Filter{}, tc.limit)
				require.NoError(t, err)
				return len(page) == tc.want
			}, 10*time.Second, 5*time.Millisecond)
		})
	}
}
