package webhooks_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/eventstore"
	"github.com/bookingengine/booking/eventstore/postgres"
	"github.com/bookingengine/booking/internal/testenv"
	"github.com/bookingengine/booking/stream"
	"github.com/bookingengine/booking/stream/relay"
	"github.com/bookingengine/booking/stream/subscriber"
	"github.com/bookingengine/booking/webhooks"
	"github.com/bookingengine/booking/webhooks/webhookstest"
)

// TestPipelineThroughRedis runs the whole path on real servers: events
// appended to PostgreSQL, published by the relay to Redis Streams, read by
// the webhooks consumer group (whose done-marks commit with the
// deliveries), and sent by two runtimes' dispatchers to a receiver that
// fails now and then. Every event arrives signed, in stream order, and the
// group remembers each one as done.
func TestPipelineThroughRedis(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url := testenv.NewDatabase(t)
	es, err := postgres.Open(ctx, url, postgres.Config{MaxConns: 8, Migrations: []postgres.MigrationSet{relay.Migrations()}})
	require.NoError(t, err)
	t.Cleanup(es.Close)
	rc, err := stream.NewRedisClient(testenv.RedisURL(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = rc.Close() })
	naming := stream.Topics{Prefix: testenv.KeyPrefix(t), Partitions: 2}
	t.Cleanup(func() {
		keys, _ := rc.Keys(context.Background(), naming.Prefix+"*").Result()
		if len(keys) > 0 {
			rc.Del(context.Background(), keys...)
		}
	})

	fast := webhooks.DispatcherConfig{PollInterval: 20 * time.Millisecond, Retry: webhooks.RetryPolicy{
		Schedule: []time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond, 20 * time.Millisecond, 20 * time.Millisecond, 20 * time.Millisecond},
	}}
	var runtimes []*webhooks.Runtime
	for i := range 2 {
		rt, err := webhooks.Open(ctx, webhooks.Config{
			Pool: es.Pool(), Events: es, URLPolicy: webhooks.URLPolicy{LoopbackSchemes: []string{"http"}}, Dispatcher: fast,
		})
		require.NoError(t, err, "runtime %d", i)
		require.NoError(t, rt.Start(ctx))
		t.Cleanup(rt.Close)
		runtimes = append(runtimes, rt)
	}

	tenant := uuid.New()
	var calls atomic.Int64
	receiver := webhookstest.NewReceiver(t, func(webhookstest.Request) int {
		if calls.Add(1)%4 == 0 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	ep := webhookstest.MustEndpoint(t, runtimes[0].Service, tenant, receiver.URL, "booking.*")
	receiver.SetSecret(ep.Secret)

	for i := range 2 {
		cfg := subscriber.Config{
			Group: webhooks.Group, Topics: webhooks.Topics(), Naming: naming, Redis: rc,
			Consumer: "bookingd-" + string(rune('a'+i)), Dedupe: runtimes[i].Dedupe(),
		}
		sub, err := subscriber.New(cfg)
		require.NoError(t, err)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = sub.Run(ctx, runtimes[i].Service.Handle)
		}()
		t.Cleanup(func() {
			cancel()
			<-done
		})
	}
	r, err := relay.New(relay.Config{Store: es, Publisher: mustRedisPublisher(t, rc), Pool: es.Pool(), Topics: naming, PollInterval: 20 * time.Millisecond})
	require.NoError(t, err)
	relayDone := make(chan struct{})
	go func() {
		defer close(relayDone)
		_ = r.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-relayDone
	})

	const bookings, perBooking = 4, 6
	var ids []uuid.UUID
	streams := make([]string, bookings)
	for i := range streams {
		streams[i] = "booking-" + uuid.NewString()
	}
	for v := range perBooking {
		for _, s := range streams {
			id := uuid.New()
			ids = append(ids, id)
			typ := "booking.status_changed"
			if v == 0 {
				typ = "booking.created"
			}
			_, err := es.Append(ctx, eventstore.StreamAppend{StreamID: s, TenantID: tenant, Expected: eventstore.Exact(int64(v)),
				Events: []eventstore.EventData{{ID: id, Type: typ, Version: 1, Data: json.RawMessage(`{"v":1}`)}}})
			require.NoError(t, err)
		}
	}
	// Another tenant's and a user's events reach no delivery.
	_, err = es.Append(ctx, eventstore.StreamAppend{StreamID: "booking-" + uuid.NewString(), TenantID: uuid.New(), Expected: eventstore.NoStream,
		Events: []eventstore.EventData{{ID: uuid.New(), Type: "booking.created", Version: 1, Data: json.RawMessage(`{}`)}}})
	require.NoError(t, err)
	_, err = es.Append(ctx, eventstore.StreamAppend{StreamID: "user-" + uuid.NewString(), TenantID: tenant, Expected: eventstore.NoStream,
		Events: []eventstore.EventData{{ID: uuid.New(), Type: "user.created", Version: 1, Data: json.RawMessage(`{}`)}}})
	require.NoError(t, err)

	succeeded := func() map[uuid.UUID]int {
		out := map[uuid.UUID]int{}
		for _, r := range receiver.Requests() {
			if r.Status == http.StatusOK {
				out[r.Event.ID]++
			}
		}
		return out
	}
	webhookstest.Eventually(t, 60*time.Second, func() bool { return len(succeeded()) == len(ids) }, "all %d delivered", len(ids))
	time.Sleep(100 * time.Millisecond)

	last := map[string]int64{}
	for _, r := range receiver.Requests() {
		require.True(t, r.Verified, "signed")
		require.LessOrEqual(t, r.Event.StreamVersion, last[r.Event.StreamID]+1, "stream order: %s", r.Event.StreamID)
		if r.Status == http.StatusOK {
			last[r.Event.StreamID] = max(last[r.Event.StreamID], r.Event.StreamVersion)
		}
	}
	for id, n := range succeeded() {
		require.Equal(t, 1, n, "event %s acknowledged once", id)
	}
	ds, _, err := runtimes[1].Service.Deliveries(ctx, tenant, ep.ID, webhooks.MaxPageSize, "")
	require.NoError(t, err)
	require.Len(t, ds, len(ids), "one delivery per event, however the stream redelivered")
	var marked int
	require.NoError(t, es.Pool().QueryRow(ctx,
		`SELECT count(*) FROM stream_subscriber_events WHERE group_name = $1 AND event_id = ANY($2)`, webhooks.Group, ids).Scan(&marked))
	require.Equal(t, len(ids), marked, "each event marked done with its deliveries")
}

func mustRedisPublisher(t *testing.T, rc redis.UniversalClient) message.Publisher {
	t.Helper()
	pub, err := stream.NewRedisPublisher(rc, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close() })
	return pub
}
