package relay_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/eventstore"
	"github.com/bookingengine/booking/eventstore/postgres"
	"github.com/bookingengine/booking/internal/testenv"
	"github.com/bookingengine/booking/stream"
	"github.com/bookingengine/booking/stream/relay"
	"github.com/bookingengine/booking/stream/streamtest"
	"github.com/bookingengine/booking/stream/subscriber"
)

// Run the benchmarks once each, without the race detector:
//
//	go test -run '^$' -bench . -benchtime 1x ./stream/relay/
//
// They report figures (ratios and percentiles) and assert nothing about
// wall-clock time.

// BenchmarkRelayThroughput publishes the same stored events with a bare
// watermill-redisstream publisher loop (encode, Publish, one goroutine)
// and with the relay from an empty checkpoint (ReadAll, encode, Publish,
// checkpoint), alternating which goes first over five rounds in one run,
// and reports the median rates and the median of the per-round ratios.
func BenchmarkRelayThroughput(b *testing.B) {
	const events, streams, rounds = 10_000, 500, 5
	store, _ := streamtest.MustPostgres(b)
	rc, prefix := streamtest.MustRedis(b)
	streamtest.Cleanup(b, rc, prefix)
	ctx := context.Background()

	w := streamtest.NewWriter(store, streams)
	require.NoError(b, w.Run(ctx, events, 16))
	var stored []eventstore.RecordedEvent
	for cur := (eventstore.Cursor{}); ; {
		evs, err := store.ReadAll(ctx, cur, eventstore.Filter{}, 5000)
		require.NoError(b, err)
		if len(evs) == 0 {
			break
		}
		stored = append(stored, evs...)
		cur = eventstore.CursorOf(evs[len(evs)-1])
	}
	require.Len(b, stored, events)
	pub, err := stream.NewRedisPublisher(rc, nil)
	require.NoError(b, err)

	bare := func(round int) float64 {
		naming := stream.Topics{Prefix: fmt.Sprintf("%sbare%d:", prefix, round)}
		start := time.Now()
		for _, e := range stored {
			topic, _ := naming.ForStream(e.StreamID)
			msg, err := stream.NewMessage(stream.FromRecorded(e, ""))
			require.NoError(b, err)
			require.NoError(b, pub.Publish(topic, msg))
		}
		return float64(events) / time.Since(start).Seconds()
	}
	relayed := func(round int) float64 {
		r, err := relay.New(relay.Config{Store: store, Pool: store.Pool(), Publisher: pub,
			Topics: stream.Topics{Prefix: fmt.Sprintf("%srelay%d:", prefix, round)}, Name: fmt.Sprintf("bench-%d", round)})
		require.NoError(b, err)
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		start := time.Now()
		go func() {
			defer close(done)
			_ = r.Run(rctx)
		}()
		for r.Status().Published < events {
			time.Sleep(time.Millisecond)
		}
		rate := float64(events) / time.Since(start).Seconds()
		cancel()
		<-done
		return rate
	}

	for i := 0; i < b.N; i++ {
		var bares, relays, ratios []float64
		for round := range rounds {
			var br, rr float64
			if round%2 == 0 {
				br, rr = bare(i*rounds+round), relayed(i*rounds+round)
			} else {
				rr, br = relayed(i*rounds+round), bare(i*rounds+round)
			}
			bares, relays, ratios = append(bares, br), append(relays, rr), append(ratios, rr/br)
			b.Logf("round %d: bare publisher %.0f events/s, relay %.0f events/s, ratio %.2f", round, br, rr, rr/br)
		}
		b.ReportMetric(median(bares), "bare-events/s")
		b.ReportMetric(median(relays), "relay-events/s")
		b.ReportMetric(median(ratios), "relay/bare")
	}
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkCommitToPublishLatency appends 1,000 events per second for
// ten seconds (one event per append, 500 booking streams, booking.events
// in 4 partitions) while the relay runs, and measures each event from its
// recorded_at (stamped by PostgreSQL when the appending transaction
// began, just before its commit) to its arrival at a plain Redis reader
// (XREAD BLOCK on the partitions) and at a handler of package subscriber
// (consumer group, dedupe, lease).
func BenchmarkCommitToPublishLatency(b *testing.B) {
	const rate, seconds, streams, partitions = 1000, 10, 500, 4
	store, dbURL := streamtest.MustPostgres(b)
	rc, prefix := streamtest.MustRedis(b)
	streamtest.Cleanup(b, rc, prefix)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	naming := stream.Topics{Prefix: prefix, Partitions: partitions}
	topics := naming.Expand(stream.TopicBooking)
	pub, err := stream.NewRedisPublisher(rc, nil)
	require.NoError(b, err)
	// The relay reads through a pool of its own, as bookingd gives it, so
	// that it never queues behind the writers for a connection.
	relayStore, err := postgres.Open(ctx, dbURL, postgres.Config{SkipMigrations: true, MaxConns: 3})
	require.NoError(b, err)
	defer relayStore.Close()
	r, err := relay.New(relay.Config{Store: relayStore, Pool: relayStore.Pool(), Publisher: pub, Topics: naming})
	require.NoError(b, err)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { _ = r.Run(ctx) })
	for !r.Status().Leader {
		time.Sleep(time.Millisecond)
	}

	// Each event is timed from two points that bracket its commit: its
	// recorded_at (stamped by PostgreSQL when the appending transaction
	// began, so before the commit; includes the append's own work and
	// fsync) and the return of Append (after the commit; a reader may get
	// the message before the writer's goroutine runs again).
	type arrival struct {
		id       uuid.UUID
		recorded time.Time
		at       time.Time
	}
	var rawMu, subMu sync.Mutex
	var raw, sub []arrival
	arrived := func(out *[]arrival, mu *sync.Mutex, e stream.Event, at time.Time) {
		mu.Lock()
		*out = append(*out, arrival{e.ID, e.Time, at})
		mu.Unlock()
	}
	var returned sync.Map // event id → time Append returned

	reader := streamtest.MustRedisAt(b, testenv.RedisURL(b))
	wg.Go(func() {
		args := append([]string(nil), topics...)
		for range topics {
			args = append(args, "0") // the topics are new: read from their start
		}
		for ctx.Err() == nil {
			res, err := reader.XRead(ctx, &redis.XReadArgs{Streams: args, Block: 100 * time.Millisecond, Count: 500}).Result()
			now := time.Now()
			if err != nil {
				continue
			}
			for _, xs := range res {
				for _, x := range xs.Messages {
					args[len(topics)+slices.Index(topics, xs.Stream)] = x.ID
					e, err := stream.Decode(stream.MessageFromRedisEntry(x.Values).Payload)
					if err == nil {
						arrived(&raw, &rawMu, e, now)
					}
				}
			}
		}
	})
	s, err := subscriber.New(subscriber.Config{Group: prefix + "bench", Topics: []string{stream.TopicBooking}, Naming: naming, Redis: rc})
	require.NoError(b, err)
	wg.Go(func() {
		_ = s.Run(ctx, func(_ context.Context, e subscriber.Event) error {
			arrived(&sub, &subMu, e, time.Now())
			return nil
		})
	})
	<-s.Ready()

	tenant := uuid.New()
	ids := make([]string, streams)
	for i := range ids {
		ids[i] = "booking-" + uuid.NewString()
	}
	total := rate * seconds
	jobs := make(chan int, total)
	var appendErrs atomic.Int64
	var writers sync.WaitGroup
	for range 32 {
		writers.Go(func() {
			for i := range jobs {
				id := uuid.New()
				_, err := store.Append(ctx, eventstore.StreamAppend{StreamID: ids[i%streams], TenantID: tenant, Expected: eventstore.Any,
					Events: []eventstore.EventData{{ID: id, Type: "booking.status_changed", Version: 1,
						Data: json.RawMessage(`{"to":"confirmed"}`)}}})
				if err != nil {
					appendErrs.Add(1)
					continue
				}
				returned.Store(id, time.Now())
			}
		})
	}
	start := time.Now()
	for i := range total {
		time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / rate)))
		jobs <- i
	}
	close(jobs)
	writers.Wait()
	offered := float64(total) / time.Since(start).Seconds()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		rawMu.Lock()
		subMu.Lock()
		n, m := len(raw), len(sub)
		subMu.Unlock()
		rawMu.Unlock()
		if n >= total && m >= total {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	require.Zero(b, appendErrs.Load())
	for _, c := range []struct {
		name string
		a    []arrival
		mu   *sync.Mutex
	}{{"xread", raw, &rawMu}, {"subscriber", sub, &subMu}} {
		c.mu.Lock()
		as := slices.Clone(c.a)
		c.mu.Unlock()
		require.Len(b, as, total, c.name)
		var fromRecorded, fromReturn []time.Duration
		for _, a := range as {
			fromRecorded = append(fromRecorded, a.at.Sub(a.recorded))
			if r, ok := returned.Load(a.id); ok {
				fromReturn = append(fromReturn, a.at.Sub(r.(time.Time)))
			}
		}
		for _, d := range []struct {
			from string
			d    []time.Duration
		}{{"recorded", fromRecorded}, {"returned", fromReturn}} {
			slices.Sort(d.d)
			p := func(q float64) time.Duration { return d.d[min(len(d.d)-1, int(q*float64(len(d.d))))] }
			b.ReportMetric(float64(p(0.50).Microseconds())/1000, c.name+"-from-"+d.from+"-p50-ms")
			b.ReportMetric(float64(p(0.99).Microseconds())/1000, c.name+"-from-"+d.from+"-p99-ms")
			b.Logf("%s, from %s: %d events at %.0f appends/s offered; p50 %s p95 %s p99 %s max %s", c.name, d.from, len(d.d), offered,
				p(0.50).Round(10*time.Microsecond), p(0.95).Round(10*time.Microsecond), p(0.99).Round(10*time.Microsecond),
				d.d[len(d.d)-1].Round(10*time.Microsecond))
		}
	}
}
