package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/eventstore"
)

func testConcurrentOneStream(t *testing.T, h Harness) {
	const (
		rounds  = 4
		writers = 32
	)
	s := h.New(t)
	tenant := uuid.New()
	stream := streamOf("booking")

	var winners []uuid.UUID
	for round := range rounds {
		v := int64(round)
		start := make(chan struct{})
		errs := make([]error, writers)
		evs := make([]eventstore.EventData, writers)
		var wg sync.WaitGroup
		for i := range writers {
			evs[i] = event("booking.updated", fmt.Sprintf(`{"round":%d,"writer":%d}`, round, i))
			wg.Go(func() {
				<-start
				_, errs[i] = s.Append(t.Context(), appendTo(stream, tenant, eventstore.Exact(v), evs[i]))
			})
		}
		close(start)
		wg.Wait()

		won := -1
		for i, err := range errs {
			if err == nil {
				require.Equal(t, -1, won, "round %d: writers %d and %d both won", round, won, i)
				won = i
				continue
			}
			requireConflict(t, err, stream, eventstore.Exact(v), v+1)
		}
		require.NotEqual(t, -1, won, "round %d: no writer won", round)
		winners = append(winners, evs[won].ID)
		require.Equal(t, v+1, mustStreamVersion(t, s, stream))
	}

	loaded := mustLoad(t, s, stream)
	require.Equal(t, winners, ids(loaded), "the stream holds exactly the winners, in order")
	for i, e := range loaded {
		require.Equal(t, int64(i+1), e.StreamVersion)
	}
	awaitVisible(t, s, rounds)

	report, err := s.Verify(t.Context(), stream, uuid.Nil)
	require.NoError(t, err)
	require.True(t, report.OK(), "breaks: %+v", report.Breaks)
}

func testConcurrentDistinctStreams(t *testing.T, h Harness) {
	const (
		writers   = 16
		appends   = 8
		perAppend = 2
		total     = writers * appends * perAppend
		pageSize  = 5
	)
	s := h.New(t)
	tenant := uuid.New()

	// A reader tails the log while the writers append: it must see every
	// event exactly once, in read-all order, even those that commit out of
	// position order.
	type tailResult struct {
		events []eventstore.RecordedEvent
		err    error
	}
	tailed := make(chan tailResult, 1)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	go func() {
		evs, err := tail(ctx, s, total, pageSize)
		tailed <- tailResult{evs, err}
	}()

	start := make(chan struct{})
	errs := make([]error, writers)
	streams := make([]string, writers)
	appended := make([][]uuid.UUID, writers)
	var wg sync.WaitGroup
	for w := range writers {
		streams[w] = streamOf("booking")
		wg.Go(func() {
			<-start
			for a := range appends {
				evs := events("booking.updated", perAppend)
				_, err := s.Append(ctx, appendTo(streams[w], tenant, eventstore.Exact(int64(a*perAppend)), evs...))
				if err != nil {
					errs[w] = fmt.Errorf("writer %d append %d: %w", w, a, err)
					return
				}
				appended[w] = append(appended[w], dataIDs(evs)...)
			}
		})
	}
	close(start)
	wg.Wait()
	require.NoError(t, errors.Join(errs...), "appends to distinct streams do not conflict")

	for w, id := range streams {
		require.Equal(t, appended[w], ids(mustLoad(t, s, id)))
	}

	res := <-tailed
	require.NoError(t, res.err)
	requireReadAllOrder(t, res.events)
	want := map[uuid.UUID]bool{}
	for _, evs := range appended {
		for _, id := range evs {
			want[id] = true
		}
	}
	require.Len(t, res.events, total)
	for _, e := range res.events {
		require.True(t, want[e.ID], "the tailing reader saw an unknown event %s", e.ID)
	}

	// A read after the fact sees the same log in the same order.
	all := awaitVisible(t, s, total)
	require.Equal(t, ids(res.events), ids(all))
	require.Equal(t, maxPosition(all), mustHead(t, s))
}

// tail reads pages of the log after each other until it has n events or
// ctx ends, checking as it goes that each page continues the last.
func tail(ctx context.Context, s eventstore.Store, n, pageSize int) ([]eventstore.RecordedEvent, error) {
	var (
		out  []eventstore.RecordedEvent
		cur  eventstore.Cursor
		seen = map[uuid.UUID]bool{}
	)
	for len(out) < n {
		page, err := s.ReadAll(ctx, cur, eventstore.Filter{}, pageSize)
		if err != nil {
			return out, fmt.Errorf("tail after %d events: %w", len(out), err)
		}
		if len(page) > pageSize {
			return out, fmt.Errorf("tail: page of %d exceeds limit %d", len(page), pageSize)
		}
		for _, e := range page {
			if !cur.After(e) {
				return out, fmt.Errorf("tail: event at position %d is not after cursor %+v", e.Position, cur)
			}
			if seen[e.ID] {
				return out, fmt.Errorf("tail: event %s read twice", e.ID)
			}
			seen[e.ID] = true
			cur = eventstore.CursorOf(e)
		}
		out = append(out, page...)
		if len(page) == 0 {
			select {
			case <-ctx.Done():
				return out, fmt.Errorf("tail: %d of %d events read: %w", len(out), n, ctx.Err())
			case <-time.After(2 * time.Millisecond):
			}
		}
	}
	return out, nil
}
