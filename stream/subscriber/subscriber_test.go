package subscriber_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/eventstore"
	"github.com/bookingengine/booking/eventstore/memory"
	"github.com/bookingengine/booking/stream"
	"github.com/bookingengine/booking/stream/relay"
	"github.com/bookingengine/booking/stream/streamtest"
	"github.com/bookingengine/booking/stream/subscriber"
)

func testLogger() *slog.Logger {
	if os.Getenv("SUBSCRIBER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

// recorder is a handler that records what it handled, per stream, and
// every violation of once-and-in-order. Safe for concurrent use.
type recorder struct {
	mu         sync.Mutex
	seen       map[uuid.UUID]int
	last       map[string]int64
	violations []string
	count      int
}

func newRecorder() *recorder {
	return &recorder{seen: map[uuid.UUID]int{}, last: map[string]int64{}}
}

func (r *recorder) handle(_ context.Context, e subscriber.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen[e.ID]++
	r.count++
	if r.seen[e.ID] > 1 {
		r.violations = append(r.violations, fmt.Sprintf("event %s handled %d times", e.ID, r.seen[e.ID]))
	}
	if want := r.last[e.StreamID] + 1; e.StreamVersion != want {
		r.violations = append(r.violations, fmt.Sprintf("stream %s: version %d handled, want %d", e.StreamID, e.StreamVersion, want))
	}
	r.last[e.StreamID] = max(r.last[e.StreamID], e.StreamVersion)
	return nil
}

func (r *recorder) handled() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count
}

func (r *recorder) check(t *testing.T, committed map[string][]eventstore.RecordedEvent) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	require.Empty(t, r.violations)
	n := 0
	for _, evs := range committed {
		for _, e := range evs {
			require.Equal(t, 1, r.seen[e.ID], "event %s (stream %s v%d)", e.ID, e.StreamID, e.StreamVersion)
			n++
		}
	}
	require.Equal(t, n, r.count)
}

// run starts sub.Run in the background, stopped when the test ends, and
// waits until it is subscribed.
func run(t *testing.T, sub *subscriber.Subscriber, h subscriber.Handler) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := sub.Run(ctx, h); err != nil {
			t.Errorf("subscriber.Run: %v", err)
		}
	}()
	stop = func() {
		cancel()
		<-done
	}
	t.Cleanup(stop)
	select {
	case <-sub.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("subscriber not ready")
	}
	return stop
}

func mustNew(t *testing.T, cfg subscriber.Config) *subscriber.Subscriber {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger()
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = 5 * time.Millisecond
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 50 * time.Millisecond
	}
	s, err := subscriber.New(cfg)
	require.NoError(t, err)
	return s
}

func startRelay(t *testing.T, cfg relay.Config) *relay.Relay {
	t.Helper()
	cfg.MinBackoff, cfg.MaxBackoff = 10*time.Millisecond, 200*time.Millisecond
	r, err := relay.New(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = r.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return r
}

// TestTenThousandAppendsReachTwoGroupsOnceInOrder appends 10,000 booking
// events to 500 streams from 16 goroutines while the relay publishes to 4
// partitions and two consumer groups of two consumers each consume: each
// group handles every event exactly once, each stream in version order.
func TestTenThousandAppendsReachTwoGroupsOnceInOrder(t *testing.T) {
	t.Parallel()
	const events, streams = 10_000, 500
	store, _ := streamtest.MustPostgres(t)
	rc, prefix := streamtest.MustRedis(t)
	streamtest.Cleanup(t, rc, prefix)
	naming := stream.Topics{Prefix: prefix, Partitions: 4}
	pub, err := stream.NewRedisPublisher(rc, nil)
	require.NoError(t, err)
	rl := startRelay(t, relay.Config{Store: store, Pool: store.Pool(), Publisher: pub, Topics: naming})

	groups := map[string]*recorder{prefix + "billing": newRecorder(), prefix + "notifier": newRecorder()}
	var subs []*subscriber.Subscriber
	for group, rec := range groups {
		for c := range 2 {
			sub := mustNew(t, subscriber.Config{Group: group, Consumer: fmt.Sprintf("c%d", c), Topics: []string{stream.TopicBooking},
				Naming: naming, Redis: rc})
			run(t, sub, rec.handle)
			subs = append(subs, sub)
		}
	}

	w := streamtest.NewWriter(store, streams)
	start := time.Now()
	require.NoError(t, w.Run(context.Background(), events, 16))
	appended := time.Since(start)
	for group, rec := range groups {
		streamtest.Eventually(t, 60*time.Second, func() bool { return rec.handled() >= events },
			"group %s handled %d of %d", group, rec.handled(), events)
	}
	t.Logf("%d appends in %s; all handled by both groups %s after the first append; relay %+v",
		events, appended.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), rl.Status())
	time.Sleep(200 * time.Millisecond)
	committed := w.Committed(t)
	for _, rec := range groups {
		rec.check(t, committed)
	}
	var total subscriber.Stats
	for _, s := range subs {
		st := s.Stats()
		total.Handled += st.Handled
		total.Duplicates += st.Duplicates
		total.DeadLettered += st.DeadLettered
		total.GapsWaited += st.GapsWaited
	}
	t.Logf("subscribers: %+v", total)
	require.Equal(t, uint64(2*events), total.Handled)
	require.Zero(t, total.DeadLettered)
}

// publisher publishes hand-made events straight to Redis.
type publisher struct {
	t   *testing.T
	pub message.Publisher
}

func newPublisher(t *testing.T, rc redis.UniversalClient) publisher {
	pub, err := stream.NewRedisPublisher(rc, nil)
	require.NoError(t, err)
	return publisher{t: t, pub: pub}
}

func (p publisher) publish(topic string, evs ...stream.Event) {
	p.t.Helper()
	for _, e := range evs {
		msg, err := stream.NewMessage(e)
		require.NoError(p.t, err)
		require.NoError(p.t, p.pub.Publish(topic, msg))
	}
}

// streamEvents returns n consecutive events of a new booking stream.
func streamEvents(n int) []stream.Event {
	sid := "booking-" + uuid.NewString()
	out := make([]stream.Event, n)
	for i := range out {
		out[i] = event(sid, int64(i+1))
	}
	return out
}

// dlq reads the dead-letter stream.
func dlq(t *testing.T, rc redis.UniversalClient, topic string) []*message.Message {
	t.Helper()
	xs, err := rc.XRange(context.Background(), topic, "-", "+").Result()
	require.NoError(t, err)
	var out []*message.Message
	for _, x := range xs {
		out = append(out, stream.MessageFromRedisEntry(x.Values))
	}
	return out
}

func TestHandlerThatFailsTwiceActsOnce(t *testing.T) {
	t.Parallel()
	rc, prefix := streamtest.MustRedis(t)
	streamtest.Cleanup(t, rc, prefix)
	topic := prefix + stream.TopicBooking
	evs := streamEvents(2)
	var mu sync.Mutex
	calls := map[uuid.UUID]int{}
	var effects []int64
	sub := mustNew(t, subscriber.Config{Group: prefix + "g", Topics: []string{stream.TopicBooking}, Naming: stream.Topics{Prefix: prefix}, Redis: rc})
	run(t, sub, func(_ context.Context, e subscriber.Event) error {
		mu.Lock()
		defer mu.Unlock()
		calls[e.ID]++
		if e.StreamVersion == 1 && calls[e.ID] <= 2 {
			return errors.New("flaky downstream")
		}
		effects = append(effects, e.StreamVersion)
		return nil
	})
	p := newPublisher(t, rc)
	p.publish(topic, evs...)
	p.publish(topic, evs[0]) // a redelivery
	streamtest.Eventually(t, 10*time.Second, func() bool { return sub.Stats().Duplicates == 1 }, "redelivery seen")
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []int64{1, 2}, effects, "acted once per event, in order")
	require.Equal(t, 3, calls[evs[0].ID])
	st := sub.Stats()
	require.Equal(t, uint64(2), st.Retries)
	require.Equal(t, uint64(2), st.Handled)
	require.Zero(t, st.DeadLettered)
	require.Empty(t, dlq(t, rc, sub.DeadLetterTopic()))
}

func TestHandlerThatAlwaysFailsEndsInTheDeadLetterStream(t *testing.T) {
	t.Parallel()
	rc, prefix := streamtest.MustRedis(t)
	streamtest.Cleanup(t, rc, prefix)
	topic := prefix + stream.TopicBooking
	evs := streamEvents(2)
	var mu sync.Mutex
	var handled []int64
	attempts := 0
	sub := mustNew(t, subscriber.Config{Group: prefix + "g", Topics: []string{stream.TopicBooking}, Naming: stream.Topics{Prefix: prefix},
		Redis: rc, MaxRetries: 2})
	run(t, sub, func(_ context.Context, e subscriber.Event) error {
		mu.Lock()
		defer mu.Unlock()
		if e.StreamVersion == 1 {
			attempts++
			return fmt.Errorf("template %q missing", "confirmed")
		}
		handled = append(handled, e.StreamVersion)
		return nil
	})
	newPublisher(t, rc).publish(topic, evs...)
	streamtest.Eventually(t, 10*time.Second, func() bool { return sub.Stats().Handled == 1 }, "the next event goes on")

	mu.Lock()
	require.Equal(t, 3, attempts, "first try and MaxRetries retries")
	require.Equal(t, []int64{2}, handled)
	mu.Unlock()
	dead := dlq(t, rc, prefix+prefix+"g.dlq")
	require.Len(t, dead, 1)
	d := dead[0]
	require.Equal(t, evs[0].ID.String(), d.UUID)
	require.Equal(t, "handler_failed", d.Metadata.Get("dlq_reason"))
	require.Equal(t, `template "confirmed" missing`, d.Metadata.Get("dlq_error"))
	require.Equal(t, "3", d.Metadata.Get("dlq_attempts"))
	require.Equal(t, topic, d.Metadata.Get("dlq_topic"))
	require.Equal(t, prefix+"g", d.Metadata.Get("dlq_group"))
	original, err := stream.Decode(d.Payload)
	require.NoError(t, err, "the original payload is kept")
	require.Equal(t, evs[0].ID, original.ID)
	require.Equal(t, uint64(1), sub.Stats().DeadLettered)
}

// TestLateAndGappedEventsKeepTheOrder sends a stream's events out of
// order on one topic: a gap is held for GapWait, and the version that
// arrives after its successor was handled is parked, never handled behind
// it.
func TestLateAndGappedEventsKeepTheOrder(t *testing.T) {
	t.Parallel()
	rc, prefix := streamtest.MustRedis(t)
	streamtest.Cleanup(t, rc, prefix)
	topic := prefix + stream.TopicBooking
	rec := newRecorder()
	sub := mustNew(t, subscriber.Config{Group: prefix + "g", Topics: []string{stream.TopicBooking}, Naming: stream.Topics{Prefix: prefix},
		Redis: rc, GapWait: 300 * time.Millisecond})
	run(t, sub, rec.handle)
	evs := streamEvents(3)
	p := newPublisher(t, rc)
	p.publish(topic, evs[0], evs[2], evs[1])
	start := time.Now()
	streamtest.Eventually(t, 10*time.Second, func() bool { return sub.Stats().DeadLettered == 1 }, "late v2 parked")
	require.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond, "v3 was held for GapWait")
	st := sub.Stats()
	require.Equal(t, uint64(1), st.GapsWaited)
	require.Equal(t, uint64(1), st.GapsAccepted)
	require.Equal(t, uint64(2), st.Handled)
	dead := dlq(t, rc, sub.DeadLetterTopic())
	require.Len(t, dead, 1)
	require.Equal(t, "out_of_order", dead[0].Metadata.Get("dlq_reason"))
	require.Equal(t, evs[1].ID.String(), dead[0].UUID)
}

// TestGapIsFilledFromAnotherTopic puts a stream's v2 on one topic and v1
// on another (as after a change of the partition count): v2 waits until
// v1, read by the other topic's goroutine, was handled.
func TestGapIsFilledFromAnotherTopic(t *testing.T) {
	t.Parallel()
	rc, prefix := streamtest.MustRedis(t)
	streamtest.Cleanup(t, rc, prefix)
	rec := newRecorder()
	sub := mustNew(t, subscriber.Config{Group: prefix + "g", Topics: []string{stream.TopicBooking, stream.TopicUser},
		Naming: stream.Topics{Prefix: prefix}, Redis: rc, GapWait: 30 * time.Second})
	run(t, sub, rec.handle)
	evs := streamEvents(2)
	p := newPublisher(t, rc)
	p.publish(prefix+stream.TopicBooking, evs[1])
	time.Sleep(200 * time.Millisecond)
	require.Zero(t, rec.handled(), "v2 waits")
	p.publish(prefix+stream.TopicUser, evs[0])
	streamtest.Eventually(t, 10*time.Second, func() bool { return rec.handled() == 2 }, "both handled")
	require.Empty(t, rec.violations)
	require.Zero(t, sub.Stats().GapsAccepted)
}

// TestRestartHandlesOwnPendingEntriesFirst stops a consumer in the middle
// of a handler; the same consumer, restarted, handles that entry first.
func TestRestartHandlesOwnPendingEntriesFirst(t *testing.T) {
	t.Parallel()
	rc, prefix := streamtest.MustRedis(t)
	streamtest.Cleanup(t, rc, prefix)
	topic := prefix + stream.TopicBooking
	cfg := subscriber.Config{Group: prefix + "g", Consumer: "worker-1", Topics: []string{stream.TopicBooking},
		Naming: stream.Topics{Prefix: prefix}, Redis: rc}
	evs := streamEvents(3)
	started := make(chan struct{})
	first := mustNew(t, cfg)
	stop := run(t, first, func(ctx context.Context, e subscriber.Event) error {
		close(started)
		<-ctx.Done()
		return ctx.Err()
	})
	p := newPublisher(t, rc)
	p.publish(topic, evs[0])
	<-started
	stop()
	pending, err := rc.XPending(context.Background(), topic, prefix+"g").Result()
	require.NoError(t, err)
	require.Equal(t, int64(1), pending.Count, "the interrupted entry stays pending")
	p.publish(topic, evs[1:]...)

	rec := newRecorder()
	second := mustNew(t, cfg)
	run(t, second, rec.handle)
	streamtest.Eventually(t, 10*time.Second, func() bool { return rec.handled() == 3 }, "all three handled")
	require.Empty(t, rec.violations)
	require.Zero(t, second.Stats().GapsWaited, "the pending v1 came first")
	streamtest.Eventually(t, 5*time.Second, func() bool {
		p, err := rc.XPending(context.Background(), topic, prefix+"g").Result()
		return err == nil && p.Count == 0
	}, "nothing left pending")
}

// TestUnreadableMessagesAreParked XADDs entries that are no Watermill
// message, or no envelope: both are parked and the topic goes on.
func TestUnreadableMessagesAreParked(t *testing.T) {
	t.Parallel()
	rc, prefix := streamtest.MustRedis(t)
	streamtest.Cleanup(t, rc, prefix)
	topic := prefix + stream.TopicBooking
	rec := newRecorder()
	sub := mustNew(t, subscriber.Config{Group: prefix + "g", Topics: []string{stream.TopicBooking}, Naming: stream.Topics{Prefix: prefix}, Redis: rc})
	run(t, sub, rec.handle)
	ctx := context.Background()
	require.NoError(t, rc.XAdd(ctx, &redis.XAddArgs{Stream: topic, Values: map[string]any{"payload": "garbage"}}).Err())
	require.NoError(t, rc.XAdd(ctx, &redis.XAddArgs{Stream: topic, Values: map[string]any{"_watermill_message_uuid": "x", "payload": `{"specversion":"0.3"}`}}).Err())
	newPublisher(t, rc).publish(topic, streamEvents(1)...)
	streamtest.Eventually(t, 10*time.Second, func() bool { return rec.handled() == 1 }, "the valid event is handled")
	dead := dlq(t, rc, sub.DeadLetterTopic())
	require.Len(t, dead, 2)
	require.Equal(t, "invalid_message", dead[0].Metadata.Get("dlq_reason"))
	require.Equal(t, "garbage", string(dead[0].Payload))
	require.Equal(t, "invalid_envelope", dead[1].Metadata.Get("dlq_reason"))
	require.Contains(t, dead[1].Metadata.Get("dlq_error"), "specversion")
}

// TestEmbeddedModeFeedsInProcessConsumers runs the memory store, the
// relay and two subscribers on one GoChannel: each handles every event
// once, in order, and the relay's checkpoint follows their acks.
func TestEmbeddedModeFeedsInProcessConsumers(t *testing.T) {
	t.Parallel()
	store := memory.New()
	t.Cleanup(store.Close)
	bus := stream.NewGoChannel(testLogger())
	t.Cleanup(func() { _ = bus.Close() })
	naming := stream.Topics{Partitions: 2}
	recs := []*recorder{newRecorder(), newRecorder()}
	for i, rec := range recs {
		sub := mustNew(t, subscriber.Config{Group: fmt.Sprintf("group-%d", i), Topics: []string{stream.TopicBooking, stream.TopicUser},
			Naming: naming, Subscriber: bus, DeadLetter: bus})
		run(t, sub, rec.handle)
	}
	startRelay(t, relay.Config{Store: store, Publisher: bus, Topics: naming, Name: "stream.relay.embedded"})
	w := streamtest.NewWriter(store, 40)
	require.NoError(t, w.Run(context.Background(), 2000, 8))
	for _, rec := range recs {
		streamtest.Eventually(t, 30*time.Second, func() bool { return rec.handled() >= 2000 }, "handled %d", rec.handled())
	}
	committed := w.Committed(t)
	for _, rec := range recs {
		rec.check(t, committed)
	}
}

func TestConfigValidateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	_, err := subscriber.New(subscriber.Config{Topics: []string{""}, MaxRetries: -5, GapWait: -1, Naming: stream.Topics{Partitions: -1}})
	require.Error(t, err)
	for _, want := range []string{"Group", "Topics[0]", "Redis", "MaxRetries", "GapWait", "Partitions"} {
		require.ErrorContains(t, err, want)
	}
}

func TestRunTwiceFails(t *testing.T) {
	t.Parallel()
	bus := stream.NewGoChannel(nil)
	t.Cleanup(func() { _ = bus.Close() })
	sub := mustNew(t, subscriber.Config{Group: "g", Topics: []string{stream.TopicBooking}, Subscriber: bus})
	stop := run(t, sub, newRecorder().handle)
	require.ErrorIs(t, sub.Run(context.Background(), newRecorder().handle), subscriber.ErrAlreadyRun)
	stop()
}
