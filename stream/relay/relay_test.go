package relay_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/eventstore"
	"github.com/bookingengine/booking/eventstore/memory"
	"github.com/bookingengine/booking/stream"
	"github.com/bookingengine/booking/stream/relay"
	"github.com/bookingengine/booking/stream/streamtest"
)

func testLogger() *slog.Logger {
	if os.Getenv("RELAY_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

// harness is a relay under test with its Redis publisher.
type harness struct {
	relay  *relay.Relay
	cancel context.CancelFunc
	done   chan struct{}
}

func startRelay(t *testing.T, cfg relay.Config) *harness {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger()
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = 10 * time.Millisecond
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 200 * time.Millisecond
	}
	r, err := relay.New(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{relay: r, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(h.done)
		if err := r.Run(ctx); err != nil {
			t.Errorf("relay.Run: %v", err)
		}
	}()
	t.Cleanup(h.stop)
	return h
}

func (h *harness) stop() {
	h.cancel()
	<-h.done
}

func redisPublisher(t *testing.T, c redis.UniversalClient) message.Publisher {
	t.Helper()
	pub, err := stream.NewRedisPublisher(c, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close() })
	return pub
}

func bookingTopics(n stream.Topics) []string { return n.Expand(stream.TopicBooking) }

func TestConfigValidateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	_, err := relay.New(relay.Config{BatchSize: -1, PollInterval: -1, MinBackoff: time.Second, MaxBackoff: time.Millisecond,
		Topics: stream.Topics{Partitions: -2}})
	require.Error(t, err)
	for _, want := range []string{"Store", "Publisher", "BatchSize", "PollInterval", "MinBackoff", "Partitions"} {
		require.ErrorContains(t, err, want)
	}
}

func TestLockKeyIsStable(t *testing.T) {
	t.Parallel()
	require.Equal(t, relay.LockKey(relay.DefaultName), relay.LockKey("stream.relay"))
	require.NotEqual(t, relay.LockKey("a"), relay.LockKey("b"))
}

// TestRelayPublishesCategoriesInStreamOrder appends events of every
// category, internal ones included, from many goroutines while the relay
// runs, and finds each published category event once on its topic (and
// partition), in stream order, and no internal event anywhere.
func TestRelayPublishesCategoriesInStreamOrder(t *testing.T) {
	t.Parallel()
	store, _ := streamtest.MustPostgres(t)
	rc, prefix := streamtest.MustRedis(t)
	streamtest.Cleanup(t, rc, prefix)
	naming := stream.Topics{Prefix: prefix, Partitions: 4}
	h := startRelay(t, relay.Config{Store: store, Pool: store.Pool(), Publisher: redisPublisher(t, rc), Topics: naming, BatchSize: 50})

	ctx := context.Background()
	w := streamtest.NewWriter(store, 40)
	tenant := uuid.New()
	others := []string{
		"tenant-" + tenant.String(), "resource-" + uuid.NewString(), "resource-category-" + uuid.NewString(),
		"user-" + uuid.NewString(), "hold-" + uuid.NewString(), "waitlist-" + uuid.NewString(),
	}
	internal := []string{"schedule-" + uuid.NewString() + "-20261201", "guard-domain-x.example.com", "clientday-" + uuid.NewString()}
	var wg sync.WaitGroup
	wg.Go(func() { require.NoError(t, w.Run(ctx, 800, 8)) })
	wg.Go(func() {
		for i := range 3 {
			for _, sid := range append(append([]string{}, others...), internal...) {
				_, err := store.Append(ctx, eventstore.StreamAppend{StreamID: sid, TenantID: tenant, Expected: eventstore.Exact(int64(i)),
					Events: []eventstore.EventData{{ID: uuid.New(), Type: eventstore.Category(sid) + ".something", Version: 1, Data: json.RawMessage(`{}`)}}})
				require.NoError(t, err)
			}
		}
	})
	wg.Wait()

	all := append(bookingTopics(naming), prefix+stream.TopicTenant, prefix+stream.TopicResource, prefix+stream.TopicUser)
	want := int64(800 + 3*len(others))
	streamtest.Eventually(t, 30*time.Second, func() bool { return streamtest.CountEntries(t, rc, all...) >= want },
		"%d entries published", want)
	got := streamtest.ReadTopics(t, rc, all...)
	committed := w.Committed(t)
	for _, sid := range others {
		evs, err := store.Load(ctx, sid, 0)
		require.NoError(t, err)
		committed[sid] = evs
	}
	dups := streamtest.RequireInOrder(t, committed, got)
	require.Zero(t, dups, "a relay that neither crashed nor retried publishes each event once")
	for _, d := range got {
		wantTopic, ok := naming.ForStream(d.Event.StreamID)
		require.True(t, ok, "internal stream %s published", d.Event.StreamID)
		require.Equal(t, wantTopic, d.Topic)
		require.Equal(t, d.Event.StreamID, d.Meta[stream.MetadataPartitionKey])
	}
	for _, topic := range bookingTopics(naming) {
		require.Positive(t, streamtest.CountEntries(t, rc, topic), "partition %s unused", topic)
	}

	streamtest.Eventually(t, 10*time.Second, func() bool {
		st := h.relay.Status()
		return st.Leader && st.Lag == 0 && st.Checkpoint.Position > 0
	}, "relay caught up and checkpointed: %+v", h.relay.Status())
	st := h.relay.Status()
	require.Equal(t, uint64(want), st.Published)
	require.False(t, st.Failing)
}

// terminateLockHolder ends the sessions of this database that hold the
// advisory lock key, as a crashed host would, and returns how many.
func terminateLockHolder(t *testing.T, conn *pgx.Conn, key int64) int64 {
	t.Helper()
	hi, lo := int64(uint64(key)>>32), int64(uint32(uint64(key)))
	var n int64
	err := conn.QueryRow(context.Background(), `SELECT count(pg_terminate_backend(pid)) FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND objsubid = 1
		  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
		  AND classid = $1::bigint::oid AND objid = $2::bigint::oid`, hi, lo).Scan(&n)
	require.NoError(t, err)
	return n
}

// rawAppend appends one event inside tx, as the store's Append does.
func rawAppend(t *testing.T, ctx context.Context, tx pgx.Tx, sid string, tenant uuid.UUID) uuid.UUID {
	t.Helper()
	id := uuid.New()
	_, err := tx.Exec(ctx, `SELECT * FROM booking_events_append($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		[]string{sid}, []uuid.UUID{tenant}, []int64{-1}, []int32{1}, []uuid.UUID{id},
		[]string{"booking.created"}, []int32{1}, []string{`{}`}, []string{`{}`})
	require.NoError(t, err)
	return id
}

// TestRelayNeverPublishesRolledBackEvents holds appends open in
// transactions while later appends commit: a rolled-back event is never
// published, and one that commits late with a lower position is
// published exactly once.
func TestRelayNeverPublishesRolledBackEvents(t *testing.T) {
	t.Parallel()
	store, url := streamtest.MustPostgres(t)
	rc, prefix := streamtest.MustRedis(t)
	streamtest.Cleanup(t, rc, prefix)
	naming := stream.Topics{Prefix: prefix}
	topic := prefix + stream.TopicBooking
	h := startRelay(t, relay.Config{Store: store, Pool: store.Pool(), Publisher: redisPublisher(t, rc), Topics: naming,
		PollInterval: 100 * time.Millisecond})
	ctx := context.Background()
	tenant := uuid.New()

	conn1, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn1.Close(ctx)
	conn2, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn2.Close(ctx)

	rolledBack, err := conn1.Begin(ctx)
	require.NoError(t, err)
	lost := rawAppend(t, ctx, rolledBack, "booking-"+uuid.NewString(), tenant)
	late, err := conn2.Begin(ctx)
	require.NoError(t, err)
	lateID := rawAppend(t, ctx, late, "booking-"+uuid.NewString(), tenant)

	w := streamtest.NewWriter(store, 5)
	require.NoError(t, w.Run(ctx, 20, 2))
	time.Sleep(300 * time.Millisecond)
	require.Zero(t, streamtest.CountEntries(t, rc, topic),
		"events that committed after still-open appends wait for them (the watermark)")

	require.NoError(t, rolledBack.Rollback(ctx))
	require.NoError(t, late.Commit(ctx))
	require.NoError(t, w.Run(ctx, 10, 2))

	streamtest.Eventually(t, 10*time.Second, func() bool { return streamtest.CountEntries(t, rc, topic) >= 31 }, "31 entries")
	time.Sleep(300 * time.Millisecond)
	got := streamtest.ReadTopics(t, rc, topic)
	require.Len(t, got, 31)
	count := map[uuid.UUID]int{}
	for _, d := range got {
		count[d.Event.ID]++
	}
	require.Zero(t, count[lost], "rolled-back event published")
	require.Equal(t, 1, count[lateID], "late-committing event published once")
	lateEvent := got[0].Event
	require.Equal(t, lateID, lateEvent.ID, "the late commit had the older transaction id, so it goes first")
	require.Less(t, lateEvent.Sequence, got[1].Event.Sequence)
	committed := w.Committed(t)
	streamtest.RequireInOrder(t, committed, got)
	require.False(t, h.relay.Status().Failing)
}

// mortalStore fails every read and checkpoint once killed, as the store
// of a crashed process would: a dead relay saves nothing on its way out.
type mortalStore struct {
	eventstore.Store
	dead atomic.Bool
}

var errKilled = errors.New("process killed")

func (m *mortalStore) ReadAll(ctx context.Context, c eventstore.Cursor, f eventstore.Filter, limit int) ([]eventstore.RecordedEvent, error) {
	if m.dead.Load() {
		return nil, errKilled
	}
	return m.Store.ReadAll(ctx, c, f, limit)
}

func (m *mortalStore) SaveCheckpoint(ctx context.Context, name string, c eventstore.Cursor) error {
	if m.dead.Load() {
		return errKilled
	}
	return m.Store.SaveCheckpoint(ctx, name, c)
}

// TestStandbyTakesOverWhenTheLeaderDies runs two relays on one database
// while events are appended: the first leads; it dies (its store fails,
// its context is cancelled and its lock connection is terminated by the
// server: no goodbye, no last checkpoint), and the second holds the lock
// within seconds and publishes everything, what the dead one published
// after its last checkpoint again included.
func TestStandbyTakesOverWhenTheLeaderDies(t *testing.T) {
	t.Parallel()
	store, url := streamtest.MustPostgres(t)
	rc, prefix := streamtest.MustRedis(t)
	streamtest.Cleanup(t, rc, prefix)
	naming := stream.Topics{Prefix: prefix, Partitions: 2}
	pub := redisPublisher(t, rc)
	cfg := relay.Config{Store: store, Pool: store.Pool(), Publisher: pub, Topics: naming, BatchSize: 20,
		CheckpointInterval: 200 * time.Millisecond}
	mortal := &mortalStore{Store: store}
	firstCfg := cfg
	firstCfg.Store = mortal
	first := startRelay(t, firstCfg)
	streamtest.Eventually(t, 10*time.Second, func() bool { return first.relay.Status().Leader }, "first relay leads")
	second := startRelay(t, cfg)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := streamtest.NewWriter(store, 50)
	writeDone := make(chan error, 1)
	go func() { writeDone <- w.Run(ctx, 1500, 8) }()

	streamtest.Eventually(t, 20*time.Second, func() bool { return first.relay.Status().Published > 200 }, "first relay publishing")
	require.False(t, second.relay.Status().Leader, "only one relay leads")

	// Kill the leader: its context ends and the server drops its session.
	admin, err := pgx.Connect(context.Background(), url)
	require.NoError(t, err)
	defer admin.Close(context.Background())
	killedAt := time.Now()
	mortal.dead.Store(true)
	require.Equal(t, int64(1), terminateLockHolder(t, admin, relay.LockKey(relay.DefaultName)))
	first.cancel()

	streamtest.Eventually(t, 10*time.Second, func() bool { return second.relay.Status().Leader }, "standby takes the lock")
	takeover := time.Since(killedAt)
	<-first.done
	t.Logf("standby took over %s after the leader died", takeover.Round(time.Millisecond))
	require.Less(t, takeover, 5*time.Second)

	require.NoError(t, <-writeDone)
	require.Zero(t, w.Failed())
	got := streamtest.WaitDistinct(t, rc, 30*time.Second, 1500, bookingTopics(naming)...)
	dups := streamtest.RequireInOrder(t, w.Committed(t), got)
	t.Logf("duplicates after the takeover: %d", dups)
	require.Positive(t, dups, "the dead relay's work after its last checkpoint was published again")
}

// TestLeaderThatLosesItsLockConnectionStopsAndRecovers terminates the
// leader's lock session alone: the relay notices, stops publishing, takes
// the lock again, and nothing is lost.
func TestLeaderThatLosesItsLockConnectionStopsAndRecovers(t *testing.T) {
	t.Parallel()
	store, url := streamtest.MustPostgres(t)
	rc, prefix := streamtest.MustRedis(t)
	streamtest.Cleanup(t, rc, prefix)
	naming := stream.Topics{Prefix: prefix}
	h := startRelay(t, relay.Config{Store: store, Pool: store.Pool(), Publisher: redisPublisher(t, rc), Topics: naming,
		HealthInterval: 200 * time.Millisecond, LockRetry: 100 * time.Millisecond})
	streamtest.Eventually(t, 10*time.Second, func() bool { return h.relay.Status().Leader }, "leads")

	ctx := context.Background()
	w := streamtest.NewWriter(store, 20)
	require.NoError(t, w.Run(ctx, 200, 4))
	admin, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer admin.Close(ctx)
	require.Equal(t, int64(1), terminateLockHolder(t, admin, relay.LockKey(relay.DefaultName)))
	streamtest.Eventually(t, 5*time.Second, func() bool { return h.relay.Status().LastError != "" }, "relay noticed")
	require.NoError(t, w.Run(ctx, 200, 4))
	got := streamtest.WaitDistinct(t, rc, 20*time.Second, 400, prefix+stream.TopicBooking)
	streamtest.RequireInOrder(t, w.Committed(t), got)
	require.True(t, h.relay.Status().Leader)
}

// TestRelayRidesOutARedisOutage cuts Redis off (through a proxy) while
// events are appended: no append fails, the relay reports the failure,
// and once Redis is back everything is published, in order.
func TestRelayRidesOutARedisOutage(t *testing.T) {
	t.Parallel()
	store, _ := streamtest.MustPostgres(t)
	r := streamtest.MustProxiedRedis(t)
	direct, prefix, proxy, viaProxy := r.Direct, r.Prefix, r.Proxy, r.ViaProxy
	naming := stream.Topics{Prefix: prefix}
	topic := prefix + stream.TopicBooking
	h := startRelay(t, relay.Config{Store: store, Pool: store.Pool(), Publisher: redisPublisher(t, viaProxy), Topics: naming})

	ctx := context.Background()
	w := streamtest.NewWriter(store, 30)
	require.NoError(t, w.Run(ctx, 200, 4))
	streamtest.Eventually(t, 10*time.Second, func() bool { return streamtest.CountEntries(t, direct, topic) >= 200 }, "published before the outage")

	proxy.Down()
	writeDone := make(chan error, 1)
	go func() { writeDone <- w.Run(ctx, 600, 4) }()
	streamtest.Eventually(t, 10*time.Second, func() bool { return h.relay.Status().Failing }, "relay reports the outage")
	require.Contains(t, h.relay.Status().LastError, "publish")
	time.Sleep(500 * time.Millisecond)
	proxy.Up(t)

	require.NoError(t, <-writeDone, "appends need only PostgreSQL")
	require.Zero(t, w.Failed())
	require.Equal(t, int64(800), w.Appended())
	got := streamtest.WaitDistinct(t, direct, 30*time.Second, 800, topic)
	streamtest.Eventually(t, 5*time.Second, func() bool { return !h.relay.Status().Failing }, "relay recovered")
	dups := streamtest.RequireInOrder(t, w.Committed(t), got)
	t.Logf("duplicates after the outage: %d", dups)
}

// TestRelayOnTheMemoryStore tails the embedded store, woken by Notify.
func TestRelayOnTheMemoryStore(t *testing.T) {
	t.Parallel()
	store := memory.New()
	t.Cleanup(store.Close)
	rc, prefix := streamtest.MustRedis(t)
	streamtest.Cleanup(t, rc, prefix)
	naming := stream.Topics{Prefix: prefix, Partitions: 3}
	h := startRelay(t, relay.Config{Store: store, Publisher: redisPublisher(t, rc), Topics: naming, PollInterval: time.Hour})

	ctx := context.Background()
	w := streamtest.NewWriter(store, 30)
	require.NoError(t, w.Run(ctx, 600, 6))
	topics := bookingTopics(naming)
	streamtest.Eventually(t, 10*time.Second, func() bool { return streamtest.CountEntries(t, rc, topics...) >= 600 },
		"published without polling")
	require.Zero(t, streamtest.RequireInOrder(t, w.Committed(t), streamtest.ReadTopics(t, rc, topics...)))
	require.True(t, h.relay.Status().Leader)

	// A restart resumes from the checkpoint instead of the beginning.
	streamtest.Eventually(t, 5*time.Second, func() bool {
		c, err := store.Checkpoint(ctx, relay.DefaultName)
		return err == nil && c.Position == 600
	}, "checkpoint saved")
	h.stop()
	require.NoError(t, w.Run(ctx, 60, 2))
	startRelay(t, relay.Config{Store: store, Publisher: redisPublisher(t, rc), Topics: naming})
	streamtest.Eventually(t, 10*time.Second, func() bool { return streamtest.CountEntries(t, rc, topics...) >= 660 }, "restart publishes the rest")
	time.Sleep(200 * time.Millisecond)
	require.Equal(t, int64(660), streamtest.CountEntries(t, rc, topics...))
}

// gappyStore returns a stream's second event before its first from
// ReadAll, as a store that broke its ordering promise would.
type gappyStore struct {
	eventstore.Store
	once sync.Once
}

func (g *gappyStore) ReadAll(ctx context.Context, after eventstore.Cursor, f eventstore.Filter, limit int) ([]eventstore.RecordedEvent, error) {
	evs, err := g.Store.ReadAll(ctx, after, f, limit)
	if err == nil && len(evs) >= 3 {
		g.once.Do(func() { evs[1], evs[2] = evs[2], evs[1] })
	}
	return evs, err
}

// TestRelayFillsStreamVersionGaps publishes the missing versions first
// when the store hands a stream's events out of order.
func TestRelayFillsStreamVersionGaps(t *testing.T) {
	t.Parallel()
	mem := memory.New()
	t.Cleanup(mem.Close)
	ctx := context.Background()
	sid := "booking-" + uuid.NewString()
	tenant := uuid.New()
	for range 4 {
		_, err := mem.Append(ctx, eventstore.StreamAppend{StreamID: sid, TenantID: tenant, Expected: eventstore.Any,
			Events: []eventstore.EventData{{ID: uuid.New(), Type: "booking.x", Version: 1, Data: json.RawMessage(`{}`)}}})
		require.NoError(t, err)
	}
	rc, prefix := streamtest.MustRedis(t)
	streamtest.Cleanup(t, rc, prefix)
	naming := stream.Topics{Prefix: prefix}
	startRelay(t, relay.Config{Store: &gappyStore{Store: mem}, Publisher: redisPublisher(t, rc), Topics: naming})
	topic := prefix + stream.TopicBooking
	streamtest.Eventually(t, 10*time.Second, func() bool { return streamtest.CountEntries(t, rc, topic) >= 4 }, "published")
	time.Sleep(200 * time.Millisecond)
	got := streamtest.ReadTopics(t, rc, topic)
	var versions []int64
	for _, d := range got {
		versions = append(versions, d.Event.StreamVersion)
	}
	require.Equal(t, []int64{1, 2, 3, 4}, versions, "each version once, in order")
}

// failingPublisher fails every publish while down is set.
type failingPublisher struct {
	message.Publisher
	mu   sync.Mutex
	down bool
}

func (f *failingPublisher) Publish(topic string, msgs ...*message.Message) error {
	f.mu.Lock()
	down := f.down
	f.mu.Unlock()
	if down {
		return errors.New("publisher down")
	}
	return f.Publisher.Publish(topic, msgs...)
}

// TestRelayCheckpointsOnlyWhatWasPublished keeps the checkpoint behind a
// publisher that fails.
func TestRelayCheckpointsOnlyWhatWasPublished(t *testing.T) {
	t.Parallel()
	store := memory.New()
	t.Cleanup(store.Close)
	rc, prefix := streamtest.MustRedis(t)
	streamtest.Cleanup(t, rc, prefix)
	pub := &failingPublisher{Publisher: redisPublisher(t, rc)}
	naming := stream.Topics{Prefix: prefix}
	h := startRelay(t, relay.Config{Store: store, Publisher: pub, Topics: naming, CheckpointInterval: 10 * time.Millisecond})
	ctx := context.Background()
	w := streamtest.NewWriter(store, 3)
	require.NoError(t, w.Run(ctx, 10, 1))
	streamtest.Eventually(t, 5*time.Second, func() bool {
		c, _ := store.Checkpoint(ctx, relay.DefaultName)
		return c.Position == 10
	}, "checkpoint at 10")

	pub.mu.Lock()
	pub.down = true
	pub.mu.Unlock()
	require.NoError(t, w.Run(ctx, 10, 1))
	streamtest.Eventually(t, 5*time.Second, func() bool { return h.relay.Status().Failing }, "failing")
	streamtest.Eventually(t, 5*time.Second, func() bool { return h.relay.Status().Lag == 10 },
		"lag shows the 10 unpublished events: %+v", h.relay.Status())
	c, err := store.Checkpoint(ctx, relay.DefaultName)
	require.NoError(t, err)
	require.Equal(t, int64(10), c.Position, "nothing unpublished is checkpointed")
	require.Equal(t, int64(10), h.relay.Status().PublishedPosition)

	pub.mu.Lock()
	pub.down = false
	pub.mu.Unlock()
	streamtest.Eventually(t, 5*time.Second, func() bool {
		c, _ := store.Checkpoint(ctx, relay.DefaultName)
		return c.Position == 20
	}, "checkpoint at 20 after recovery")
	require.Equal(t, int64(20), streamtest.CountEntries(t, rc, prefix+stream.TopicBooking))
}
