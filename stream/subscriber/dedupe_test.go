package subscriber_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/stream"
	"github.com/bookingengine/booking/stream/streamtest"
	"github.com/bookingengine/booking/stream/subscriber"
)

// stores builds each DedupeStore implementation on a backend of its own.
func stores(t *testing.T) map[string]func(t *testing.T) subscriber.DedupeStore {
	return map[string]func(t *testing.T) subscriber.DedupeStore{
		"memory": func(t *testing.T) subscriber.DedupeStore { return subscriber.NewMemoryStore() },
		"redis": func(t *testing.T) subscriber.DedupeStore {
			rc, prefix := streamtest.MustRedis(t)
			streamtest.Cleanup(t, rc, prefix)
			return subscriber.NewRedisStore(rc, subscriber.RedisStoreOptions{Prefix: prefix})
		},
		"postgres": func(t *testing.T) subscriber.DedupeStore {
			pg, _ := streamtest.MustPostgres(t)
			return subscriber.NewPostgresStore(pg.Pool())
		},
	}
}

func event(streamID string, version int64) stream.Event {
	return stream.Event{ID: uuid.New(), StreamID: streamID, StreamVersion: version, Type: "booking.created",
		TenantID: uuid.New(), Source: "/tenants/x", EventVersion: 1, Sequence: version, Time: time.Now().UTC(),
		Data: []byte(`{}`)}
}

// TestDedupeStoreContract runs one suite against every implementation.
func TestDedupeStoreContract(t *testing.T) {
	t.Parallel()
	for name, newStore := range stores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := newStore(t)
			sid := "booking-" + uuid.NewString()
			e1, e2 := event(sid, 1), event(sid, 2)

			p, err := s.Begin(ctx, "g", e1, time.Minute)
			require.NoError(t, err)
			require.False(t, p.Seen)
			require.False(t, p.Known, "a new stream is unknown")
			require.NotEmpty(t, p.Token)

			_, err = s.Begin(ctx, "g", e2, time.Minute)
			require.ErrorIs(t, err, subscriber.ErrLeaseHeld, "one holder per stream and group")
			other, err := s.Begin(ctx, "other-group", e2, time.Minute)
			require.NoError(t, err, "groups are independent")
			require.NoError(t, s.Release(ctx, "other-group", e2, other.Token))
			q, err := s.Begin(ctx, "g", event("booking-"+uuid.NewString(), 1), time.Minute)
			require.NoError(t, err, "streams are independent")
			require.NotEqual(t, p.Token, q.Token)

			require.NoError(t, s.MarkDone(ctx, "g", e1, p.Token))
			require.NoError(t, s.MarkDone(ctx, "g", e1, p.Token), "idempotent")
			p, err = s.Begin(ctx, "g", e1, time.Minute)
			require.NoError(t, err, "MarkDone released the lease")
			require.True(t, p.Seen)
			require.True(t, p.Known)
			require.Equal(t, int64(1), p.LastVersion)
			require.NoError(t, s.Release(ctx, "g", e1, p.Token))

			p, err = s.Begin(ctx, "g", e2, time.Minute)
			require.NoError(t, err, "Release released the lease")
			require.False(t, p.Seen)
			require.Equal(t, int64(1), p.LastVersion)
			require.NoError(t, s.MarkDone(ctx, "g", e2, p.Token))

			// A late mark of an older version never lowers the stream's.
			p, err = s.Begin(ctx, "g", e1, time.Minute)
			require.NoError(t, err)
			require.NoError(t, s.MarkDone(ctx, "g", e1, p.Token))
			p, err = s.Begin(ctx, "g", event(sid, 3), time.Minute)
			require.NoError(t, err)
			require.Equal(t, int64(2), p.LastVersion)

			// A stale token releases nothing.
			require.NoError(t, s.Release(ctx, "g", e1, "not-the-token"))
			_, err = s.Begin(ctx, "g", e1, time.Minute)
			require.ErrorIs(t, err, subscriber.ErrLeaseHeld)
			require.NoError(t, s.Release(ctx, "g", e1, p.Token))

			// An expired lease can be taken over; its old holder's mark
			// still counts but releases nothing of the new holder's.
			old, err := s.Begin(ctx, "g", e1, 50*time.Millisecond)
			require.NoError(t, err)
			time.Sleep(120 * time.Millisecond)
			taken, err := s.Begin(ctx, "g", e1, time.Minute)
			require.NoError(t, err)
			e3 := event(sid, 3)
			require.NoError(t, s.MarkDone(ctx, "g", e3, old.Token))
			_, err = s.Begin(ctx, "g", e1, time.Minute)
			require.ErrorIs(t, err, subscriber.ErrLeaseHeld)
			require.NoError(t, s.Release(ctx, "g", e1, taken.Token))
			p, err = s.Begin(ctx, "g", e3, time.Minute)
			require.NoError(t, err)
			require.True(t, p.Seen)
			require.Equal(t, int64(3), p.LastVersion)
		})
	}
}

// TestDedupeStoreLeaseIsExclusiveUnderContention has many goroutines race
// for one stream's lease: never two holders at once.
func TestDedupeStoreLeaseIsExclusiveUnderContention(t *testing.T) {
	t.Parallel()
	for name, newStore := range stores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := newStore(t)
			sid := "booking-" + uuid.NewString()
			var holders, maxHolders, done atomic.Int64
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					for done.Load() < 40 {
						p, err := s.Begin(ctx, "g", event(sid, 1), time.Minute)
						if err != nil {
							require.ErrorIs(t, err, subscriber.ErrLeaseHeld)
							time.Sleep(time.Millisecond)
							continue
						}
						n := holders.Add(1)
						for {
							m := maxHolders.Load()
							if n <= m || maxHolders.CompareAndSwap(m, n) {
								break
							}
						}
						time.Sleep(time.Millisecond)
						holders.Add(-1)
						done.Add(1)
						require.NoError(t, s.Release(ctx, "g", event(sid, 1), p.Token))
					}
				})
			}
			wg.Wait()
			require.Equal(t, int64(1), maxHolders.Load())
		})
	}
}

func TestRedisStoreForgetsIDsAfterTheirTTL(t *testing.T) {
	t.Parallel()
	rc, prefix := streamtest.MustRedis(t)
	streamtest.Cleanup(t, rc, prefix)
	s := subscriber.NewRedisStore(rc, subscriber.RedisStoreOptions{Prefix: prefix, IDTTL: 100 * time.Millisecond})
	ctx := context.Background()
	e := event("booking-"+uuid.NewString(), 1)
	p, err := s.Begin(ctx, "g", e, time.Minute)
	require.NoError(t, err)
	require.NoError(t, s.MarkDone(ctx, "g", e, p.Token))
	time.Sleep(200 * time.Millisecond)
	p, err = s.Begin(ctx, "g", e, time.Minute)
	require.NoError(t, err)
	require.False(t, p.Seen, "the id expired")
	require.True(t, p.Known, "the stream's version is kept")
	require.Equal(t, int64(1), p.LastVersion)
}
