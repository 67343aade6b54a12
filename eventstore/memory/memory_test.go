package memory_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/eventstore"
	"github.com/bookingengine/booking/eventstore/memory"
)

func newStore(t testing.TB) *memory.Store {
	t.Helper()
	s := memory.New()
	t.Cleanup(s.Close)
	return s
}

func appendOne(t testing.TB, s *memory.Store, streamID string, tenant uuid.UUID) eventstore.AppendResult {
	t.Helper()
	res, err := s.Append(context.Background(), eventstore.StreamAppend{
		StreamID: streamID,
		TenantID: tenant,
		Expected: eventstore.Any,
		Events:   []eventstore.EventData{{ID: uuid.New(), Type: "x.happened", Version: 1, Data: json.RawMessage(`{}`)}},
	})
	require.NoError(t, err)
	return res
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestNotify(t *testing.T) {
	t.Parallel()
	s := newStore(t)

	empty := s.Notify(0)
	require.False(t, isClosed(empty), "nothing stored beyond 0 yet")

	res := appendOne(t, s, "booking-1", uuid.Nil)
	require.True(t, isClosed(empty), "an append wakes the waiters")

	cases := []struct {
		name   string
		after  int64
		closed bool
	}{
		{"BeforeHead", res.LastPosition - 1, true},
		{"AtHead", res.LastPosition, false},
		{"BeyondHead", res.LastPosition + 5, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.closed, isClosed(s.Notify(tc.after)))
		})
	}

	atHead := s.Notify(res.LastPosition)
	appendOne(t, s, "booking-2", uuid.Nil)
	require.True(t, isClosed(atHead))
}

func TestNotifyTailingReader(t *testing.T) {
	t.Parallel()
	const writers, perWriter = 8, 50
	s := newStore(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	got := make(chan int, 1)
	go func() {
		var cur eventstore.Cursor
		n := 0
		for n < writers*perWriter {
			evs, err := s.ReadAll(ctx, cur, eventstore.Filter{}, 16)
			if err != nil {
				break
			}
			if len(evs) == 0 {
				select {
				case <-s.Notify(cur.Position):
				case <-ctx.Done():
					got <- n
					return
				}
				continue
			}
			n += len(evs)
			cur = eventstore.CursorOf(evs[len(evs)-1])
		}
		got <- n
	}()

	errs := make([]error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for range perWriter {
				_, err := s.Append(ctx, eventstore.StreamAppend{
					StreamID: fmt.Sprintf("booking-%d", w),
					Expected: eventstore.Any,
					Events:   []eventstore.EventData{{ID: uuid.New(), Type: "x.happened", Version: 1, Data: json.RawMessage(`{}`)}},
				})
				if err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	require.Equal(t, writers*perWriter, <-got, "the reader woke for every event without polling")
}

func TestClose(t *testing.T) {
	t.Parallel()
	s := memory.New()
	appendOne(t, s, "booking-1", uuid.Nil)
	waiting := s.Notify(1)
	require.False(t, isClosed(waiting))

	s.Close()
	s.Close() // idempotent
	require.True(t, isClosed(waiting), "Close wakes the waiters")
	require.True(t, isClosed(s.Notify(1)))

	ctx := t.Context()
	ops := []struct {
		name string
		call func() error
	}{
		{"Append", func() error {
			_, err := s.Append(ctx, eventstore.StreamAppend{StreamID: "b-1", Events: []eventstore.EventData{{ID: uuid.New(), Type: "x", Version: 1, Data: json.RawMessage(`{}`)}}})
			return err
		}},
		{"Load", func() error { _, err := s.Load(ctx, "booking-1", 0); return err }},
		{"StreamVersion", func() error { _, err := s.StreamVersion(ctx, "booking-1"); return err }},
		{"ReadAll", func() error { _, err := s.ReadAll(ctx, eventstore.Cursor{}, eventstore.Filter{}, 10); return err }},
		{"HeadPosition", func() error { _, err := s.HeadPosition(ctx); return err }},
		{"SaveSnapshot", func() error {
			return s.SaveSnapshot(ctx, eventstore.Snapshot{StreamID: "booking-1", State: json.RawMessage(`{}`)})
		}},
		{"LoadSnapshot", func() error { _, err := s.LoadSnapshot(ctx, "booking-1"); return err }},
		{"Checkpoint", func() error { _, err := s.Checkpoint(ctx, "relay"); return err }},
		{"SaveCheckpoint", func() error { return s.SaveCheckpoint(ctx, "relay", eventstore.Cursor{}) }},
		{"Verify", func() error { _, err := s.Verify(ctx, "", uuid.Nil); return err }},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			t.Parallel()
			require.ErrorIs(t, op.call(), memory.ErrClosed)
		})
	}
}

func TestReadAllAcrossChunks(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	tenant := uuid.New()
	const n = 2500 // more than one scan chunk
	var wantFiltered []int64
	for i := range n {
		if i%97 == 0 {
			res := appendOne(t, s, fmt.Sprintf("hold-%d", i), tenant)
			wantFiltered = append(wantFiltered, res.LastPosition)
			continue
		}
		appendOne(t, s, fmt.Sprintf("booking-%d", i%10), uuid.Nil)
	}

	cases := []struct {
		name   string
		filter eventstore.Filter
		limit  int
		want   int
	}{
		{"Unfiltered", eventstore.Filter{}, n + 10, n},
		{"Category", eventstore.Filter{Categories: []string{"hold"}}, n, len(wantFiltered)},
		{"Tenant", eventstore.Filter{TenantID: tenant}, n, len(wantFiltered)},
		{"LimitedCategory", eventstore.Filter{Categories: []string{"hold"}}, 20, 20},
		{"ZeroLimit", eventstore.Filter{}, 0, 0},
		{"NegativeLimit", eventstore.Filter{}, -1, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			evs, err := s.ReadAll(t.Context(), eventstore.Cursor{}, tc.filter, tc.limit)
			require.NoError(t, err)
			require.Len(t, evs, tc.want)
			if len(tc.filter.Categories) > 0 {
				for i, e := range evs {
					require.Equal(t, wantFiltered[i], e.Position)
				}
			}
		})
	}

	// A cursor far beyond the head, and one of a foreign shape
	// (TransactionID below Position, as PostgreSQL's could be).
	evs, err := s.ReadAll(t.Context(), eventstore.Cursor{TransactionID: 1 << 40, Position: 1}, eventstore.Filter{}, 10)
	require.NoError(t, err)
	require.Empty(t, evs)
	evs, err = s.ReadAll(t.Context(), eventstore.Cursor{TransactionID: 5, Position: 9}, eventstore.Filter{}, 2)
	require.NoError(t, err)
	require.Equal(t, []int64{6, 7}, []int64{evs[0].Position, evs[1].Position})
}

func TestSaveSnapshotRejectsInvalidJSON(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	err := s.SaveSnapshot(t.Context(), eventstore.Snapshot{StreamID: "booking-1", State: json.RawMessage(`{"a":`)})
	require.Error(t, err)
	_, err = s.LoadSnapshot(t.Context(), "booking-1")
	require.ErrorIs(t, err, eventstore.ErrNoSnapshot)
}

// BenchmarkAppend shows that an append costs the same however long the
// history is.
func BenchmarkAppend(b *testing.B) {
	for _, history := range []int{0, 100_000} {
		b.Run(fmt.Sprintf("history=%d", history), func(b *testing.B) {
			s := newStore(b)
			for i := range history {
				appendOne(b, s, fmt.Sprintf("booking-%d", i%1000), uuid.Nil)
			}
			data := json.RawMessage(`{"resource_id":"r","start":"2026-12-01T09:00:00-03:00"}`)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				_, err := s.Append(context.Background(), eventstore.StreamAppend{
					StreamID: fmt.Sprintf("booking-%d", i%1000),
					Expected: eventstore.Any,
					Events:   []eventstore.EventData{{ID: uuid.New(), Type: "booking.created", Version: 1, Data: data}},
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
