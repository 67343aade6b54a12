package projections_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/commands"
	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/eventstore"
	"github.com/bookingengine/booking/eventstore/memory"
	"github.com/bookingengine/booking/eventstore/postgres"
	"github.com/bookingengine/booking/internal/testenv"
	"github.com/bookingengine/booking/projections"
	"github.com/bookingengine/booking/projections/busfeed"
	"github.com/bookingengine/booking/projections/catalog"
	"github.com/bookingengine/booking/projections/eventsource"
	"github.com/bookingengine/booking/projections/readside"
	"github.com/bookingengine/booking/stream"
	"github.com/bookingengine/booking/stream/relay"
	"github.com/bookingengine/booking/stream/streamtest"
	"github.com/bookingengine/booking/stream/subscriber"
)

// openPostgres opens a store on a database of this test's own, with the
// relay's migrations (its notify trigger).
func openPostgres(t *testing.T) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), testenv.NewDatabase(t), postgres.Config{
		Migrations: []postgres.MigrationSet{relay.Migrations()},
	})
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s
}

// startRelay publishes store's events to pub until the returned stop is
// called (also when the test ends).
func startRelay(t *testing.T, store eventstore.Store, pub message.Publisher, naming stream.Topics) (stop func()) {
	t.Helper()
	cfg := relay.Config{Store: store, Publisher: pub, Topics: naming, PollInterval: 20 * time.Millisecond}
	if pg, ok := store.(*postgres.Store); ok {
		cfg.Pool = pg.Pool()
	}
	r, err := relay.New(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = r.Run(ctx)
	}()
	stop = func() {
		cancel()
		<-done
	}
	t.Cleanup(stop)
	return stop
}

// openBusReadSide opens a read side fed by the bus with the given grace,
// closed when the test ends.
func openBusReadSide(t *testing.T, store eventstore.Store, grace time.Duration) *readside.ReadSide {
	t.Helper()
	return openBusReadSideBatch(t, store, grace, 0)
}

// openBusReadSideBatch is openBusReadSide with Config.BusBatch.
func openBusReadSideBatch(t *testing.T, store eventstore.Store, grace time.Duration, batch int) *readside.ReadSide {
	t.Helper()
	rs, err := readside.Open(context.Background(), store, readside.Config{Feed: readside.FeedBus, Grace: grace, PollInterval: 5 * time.Millisecond,
		BusBatch: batch})
	require.NoError(t, err)
	require.Len(t, rs.Feeds, len(rs.Projections))
	t.Cleanup(func() { _ = rs.Close() })
	return rs
}

// waitApplied waits until every projection of rs has applied everything
// the store holds now, by its checkpoint (Waiter), as a query with
// X-Min-Position of the head would.
func waitApplied(t *testing.T, rs *readside.ReadSide, store eventstore.Store, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	head, err := store.HeadPosition(ctx)
	require.NoError(t, err)
	src := eventsource.New(store, time.Millisecond)
	for _, p := range rs.Projections {
		require.NoError(t, projections.NewWaiter(src, p).WaitFor(ctx, head), "projection %s", p.Name())
	}
}

// healed and applied sum the runners' and the feeds' counters.
func healed(rs *readside.ReadSide) (n int64) {
	for _, r := range rs.Runners {
		n += r.Healed()
	}
	return n
}

func busApplied(rs *readside.ReadSide) (applied, filled uint64) {
	for _, f := range rs.Feeds {
		applied += f.Stats().Applied
		filled += f.Stats().Filled
	}
	return applied, filled
}

// requireEqualsRebuild closes rs (stop its feeds and relay first) and
// requires that a rebuild from the store yields the very read models.
func requireEqualsRebuild(t *testing.T, rs *readside.ReadSide, store eventstore.Store, w *world) {
	t.Helper()
	ctx := context.Background()
	live := readModelState(t, rs, w)
	pg, isPG := store.(*postgres.Store)
	var liveTables map[string][]string
	if isPG {
		liveTables = dumpTables(t, pg.Pool(), rs.Projections)
		require.NotEmpty(t, liveTables["read_bookings"])
	}
	require.NoError(t, rs.Close())
	_, err := rs.Rebuild(ctx, 50)
	require.NoError(t, err)
	require.Equal(t, live, readModelState(t, rs, w))
	if isPG {
		require.Equal(t, liveTables, dumpTables(t, pg.Pool(), rs.Projections))
	}
}

// TestBusFeedRedis: with the relay publishing to Redis, every projection
// of two read sides on one database (two projector processes) consumes
// its topics through its consumer group, named after it; the events reach
// the read models through the bus (the projectors' grace never runs out),
// nothing is dead-lettered, and the read models equal a rebuild.
func TestBusFeedRedis(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := openPostgres(t)
	client, prefix := streamtest.MustRedis(t)
	streamtest.Cleanup(t, client, prefix)
	naming := stream.Topics{Prefix: prefix, Partitions: 2}

	var sides []*readside.ReadSide
	for _, consumer := range []string{"projector-a", "projector-b"} {
		rs := openBusReadSide(t, store, time.Hour)
		require.NoError(t, rs.StartBus(ctx, subscriber.Config{Redis: client, Naming: naming, Consumer: consumer}))
		sides = append(sides, rs)
	}
	pub, err := stream.NewRedisPublisher(client, nil)
	require.NoError(t, err)
	stopRelay := startRelay(t, store, pub, naming)

	cmd := commands.New(store)
	w := setup(t, cmd)
	workload(t, cmd, w, 4, 60, 7)
	for _, rs := range sides {
		waitApplied(t, rs, store, 60*time.Second)
	}

	for i, rs := range sides {
		applied, _ := busApplied(rs)
		require.Positive(t, applied, "read side %d applied events from the bus", i)
		require.Zero(t, healed(rs), "read side %d: nothing waited for the grace", i)
	}
	for i, p := range sides[0].Projections {
		require.Equal(t, p.Name(), sides[0].Feeds[i].Group())
		var total uint64
		for _, rs := range sides {
			total += rs.Feeds[i].Stats().Applied
		}
		require.Positive(t, total, "projection %s applied events from the bus", p.Name())
		for _, topic := range sides[0].Feeds[i].Topics() {
			for _, part := range naming.Expand(topic) {
				groups, err := client.XInfoGroups(ctx, part).Result()
				require.NoError(t, err)
				require.True(t, slices.ContainsFunc(groups, func(g redis.XInfoGroup) bool { return g.Name == p.Name() }),
					"topic %s has the consumer group %s", part, p.Name())
			}
		}
		n, err := client.XLen(ctx, subscriber.DeadLetterTopic(prefix, p.Name())).Result()
		require.NoError(t, err)
		require.Zero(t, n, "nothing of %s was dead-lettered", p.Name())
	}

	stopRelay()
	require.NoError(t, sides[1].Close())
	requireEqualsRebuild(t, sides[0], store, w)
}

// TestBusFeedRedeliveryAndOrder hands every published event to the
// projections' bus handlers by hand: newest first (each stream's missing
// versions are loaded from the store), then in order twice (redeliveries).
// The projectors move the checkpoints over what the bus applied, and the
// read models equal a rebuild, on memory and on PostgreSQL, with handlers
// that commit each event before they acknowledge it and with batched ones.
func TestBusFeedRedeliveryAndOrder(t *testing.T) {
	t.Parallel()
	memoryStore := func(*testing.T) eventstore.Store { return memory.New() }
	postgresStore := func(t *testing.T) eventstore.Store { return openPostgres(t) }
	for _, tc := range []struct {
		name  string
		open  func(t *testing.T) eventstore.Store
		batch int
	}{
		{"Memory", memoryStore, 1},
		{"Postgres", postgresStore, 1},
		{"MemoryBatched", memoryStore, 16},
		{"PostgresBatched", postgresStore, 16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			store := tc.open(t)
			cmd := commands.New(store)
			w := setup(t, cmd)
			workload(t, cmd, w, 2, 40, 11)
			rs := openBusReadSideBatch(t, store, time.Hour, tc.batch)

			recs, err := store.ReadAll(ctx, eventstore.Cursor{}, eventstore.Filter{}, 1_000_000)
			require.NoError(t, err)
			var published []subscriber.Event
			for _, r := range recs {
				if stream.Published(r.Category) {
					published = append(published, stream.FromRecorded(r, ""))
				}
			}
			require.Greater(t, len(published), 30, "the workload wrote something")
			deliver := func(evs []subscriber.Event) {
				for _, f := range rs.Feeds {
					require.Equal(t, tc.batch > 1, f.Batched())
					for _, e := range evs {
						require.NoError(t, f.Handle(ctx, e))
					}
				}
				for _, f := range rs.Feeds {
					streamtest.Eventually(t, 30*time.Second, func() bool { return f.Pending() == 0 }, "the batched handlers applied what they queued")
					require.Zero(t, f.Stats().Dropped)
				}
			}
			reversed := slices.Clone(published)
			slices.Reverse(reversed)
			deliver(reversed)
			applied, filled := busApplied(rs)
			require.Positive(t, filled, "the newest events came first: their streams' older versions were loaded from the store")
			deliver(published)
			deliver(published)
			if tc.batch <= 1 {
				// A batched handler counts what it hands to the projection,
				// which skips what it applied; the rebuild below shows it.
				again, _ := busApplied(rs)
				require.Equal(t, applied, again, "redeliveries and older events after newer ones are not applied")
				for _, f := range rs.Feeds {
					require.Positive(t, f.Stats().Skipped)
				}
			}

			waitApplied(t, rs, store, 30*time.Second)
			require.Zero(t, healed(rs), "the projectors applied nothing themselves")
			requireEqualsRebuild(t, rs, store, w)
		})
	}
}

// TestBusFeedHealsWhatTheBusMissed: events published before the consumer
// groups existed and then trimmed from Redis never reach the bus
// handlers; the projectors apply them from the store once their grace
// ends, and the later events come through the bus (their streams' trimmed
// versions filled from the store). Nothing is dead-lettered, and the read
// models equal a rebuild.
func TestBusFeedHealsWhatTheBusMissed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := openPostgres(t)
	client, prefix := streamtest.MustRedis(t)
	streamtest.Cleanup(t, client, prefix)
	naming := stream.Topics{Prefix: prefix}
	pub, err := stream.NewRedisPublisher(client, nil)
	require.NoError(t, err)
	startRelay(t, store, pub, naming)

	cmd := commands.New(store)
	w := setup(t, cmd)
	workload(t, cmd, w, 2, 20, 3)
	var topics []string
	for _, topic := range stream.CategoryTopics() {
		topics = append(topics, naming.Expand(topic)...)
	}
	recs, err := store.ReadAll(ctx, eventstore.Cursor{}, eventstore.Filter{}, 1_000_000)
	require.NoError(t, err)
	published := 0
	for _, r := range recs {
		if stream.Published(r.Category) {
			published++
		}
	}
	streamtest.WaitDistinct(t, client, 30*time.Second, published, topics...)
	// The relay publishes at least once: until its checkpoint has passed
	// the history, a retried batch would publish it again after the trim.
	head, err := store.HeadPosition(ctx)
	require.NoError(t, err)
	streamtest.Eventually(t, 30*time.Second, func() bool {
		var at int64
		err := store.Pool().QueryRow(ctx, `SELECT position FROM booking_checkpoints WHERE name = $1`, relay.DefaultName).Scan(&at)
		return err == nil && at >= head
	}, "the relay checkpointed the history")
	for _, topic := range topics {
		require.NoError(t, client.XTrimMaxLen(ctx, topic, 0).Err())
	}

	rs := openBusReadSide(t, store, 300*time.Millisecond)
	require.NoError(t, rs.StartBus(ctx, subscriber.Config{Redis: client, Naming: naming, Consumer: "projector"}))
	workload(t, cmd, w, 2, 30, 4)
	waitApplied(t, rs, store, 60*time.Second)
	// The trimmed history reached the read models from the store: through
	// the projectors once their grace ended, or through the bus handlers
	// filling the gaps before the later events of the same streams,
	// whichever came first (on a loaded host the bus can win for every
	// stream).
	applied, filled := busApplied(rs)
	require.Positive(t, healed(rs)+int64(filled), "the projectors applied the trimmed history from the store")
	require.Positive(t, applied, "the later events came through the bus")
	for _, p := range rs.Projections {
		n, err := client.XLen(ctx, subscriber.DeadLetterTopic(prefix, p.Name())).Result()
		require.NoError(t, err)
		require.Zero(t, n, "nothing of %s was dead-lettered", p.Name())
	}
	requireEqualsRebuild(t, rs, store, w)
}

// TestBusFeedRedisDown: while Redis is unreachable (neither the relay nor
// the consumer groups get through), every command is still followed by
// read models that have applied it within the projectors' grace, as a
// query with X-Min-Position needs; when Redis is back the bus carries
// on. The read models equal a rebuild.
func TestBusFeedRedisDown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := openPostgres(t)
	_, prefix := streamtest.MustRedis(t)
	proxy := streamtest.StartProxy(t, redisHost(t, testenv.RedisURL(t)))
	client := streamtest.MustRedisAt(t, proxy.RedisURL(testenv.RedisURL(t)))
	streamtest.Cleanup(t, streamtest.MustRedisAt(t, testenv.RedisURL(t)), prefix)
	naming := stream.Topics{Prefix: prefix}
	pub, err := stream.NewRedisPublisher(client, nil)
	require.NoError(t, err)

	const grace = 300 * time.Millisecond
	rs := openBusReadSide(t, store, grace)
	require.NoError(t, rs.StartBus(ctx, subscriber.Config{Redis: client, Naming: naming, Consumer: "projector",
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}))
	startRelay(t, store, pub, naming)
	cmd := commands.New(store)
	w := setup(t, cmd)
	waitApplied(t, rs, store, 30*time.Second)

	proxy.Down()
	src := eventsource.New(store, time.Millisecond)
	tn := w.tenants[0]
	for i := range 5 {
		start := w.base.Add(time.Duration(12+i) * time.Hour) // 09:00 in São Paulo, and on

		res, err := cmd.CreateBooking(ctx, adminOf(tn), commands.CreateBooking{Request: domain.BookingRequest{
			ResourceID: w.resources[tn][0], ClientID: w.clients[tn][0], Start: start, End: start.Add(30 * time.Minute), Seats: 1, Title: "down",
		}})
		require.NoError(t, err)
		began := time.Now()
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		for _, p := range rs.Projections {
			require.NoError(t, projections.NewWaiter(src, p).WaitFor(wctx, res.Position), "booking %d, projection %s", i, p.Name())
		}
		cancel()
		t.Logf("booking %d applied %s after its command with Redis down", i, time.Since(began).Round(time.Millisecond))
		w.bookings[tn] = append(w.bookings[tn], res.ID)
	}
	require.Positive(t, healed(rs), "the projectors applied the events themselves")

	handled := func() (n uint64) {
		for _, f := range rs.Feeds {
			n += f.Stats().Skipped + f.Stats().Applied
		}
		return n
	}
	down := handled()
	proxy.Up(t)
	streamtest.Eventually(t, 30*time.Second, func() bool { return handled() > down },
		"once Redis is back the relay publishes the events of the outage, which the bus handlers skip")
	before, _ := busApplied(rs)
	workload(t, cmd, w, 2, 20, 5)
	waitApplied(t, rs, store, 60*time.Second)
	after, _ := busApplied(rs)
	require.Greater(t, after, before, "the bus applies events again")
	requireEqualsRebuild(t, rs, store, w)
}

// redisHost returns the host:port of a redis:// URL.
func redisHost(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	return u.Host
}

// TestRunnerGrace: a Runner with a grace leaves the checkpoint where it is
// while the events after it are neither applied by the bus nor past the
// grace; it moves the checkpoint over what the bus applied without
// applying anything itself; and it applies what the bus never delivers
// once the grace has passed.
func TestRunnerGrace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := memory.New()
	cmd := commands.New(store)
	w := setup(t, cmd)
	src := eventsource.New(store, time.Millisecond)
	cat := catalog.NewMemory()
	for i := range 100 {
		_, err := cmd.CreateUser(ctx, adminOf(w.tenants[0]), commands.CreateUser{Input: domain.UserInput{
			Email: fmt.Sprintf("waiting%d@example.com", i), Name: "Waiting", Role: domain.RoleClient}})
		require.NoError(t, err)
	}
	head, err := store.HeadPosition(ctx)
	require.NoError(t, err)

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	counting := &countingSource{Source: src}
	asked := &askingProjection{Projection: cat}
	slow := projections.NewRunner(counting, asked, projections.RunnerConfig{Grace: time.Hour, PollInterval: time.Millisecond})
	go func() { _ = slow.Run(runCtx) }()
	time.Sleep(200 * time.Millisecond)
	cp, err := cat.Checkpoint(ctx)
	require.NoError(t, err)
	require.Equal(t, projections.Cursor{}, cp, "nothing applied, nothing past the grace")
	require.EqualValues(t, 1, counting.reads.Load(), "while it waits for the bus, the Runner looks the events it read up again, without reading them again")
	require.Greater(t, counting.events.Load(), int64(64))
	require.Greater(t, asked.calls.Load(), int64(10), "it asked again on every poll")
	require.LessOrEqual(t, asked.most.Load(), int64(64), "each poll asks about the next few streams only, not about every event held")

	feed := busfeed.New(cat, src)
	recs, err := store.ReadAll(ctx, eventstore.Cursor{}, eventstore.Filter{}, 100_000)
	require.NoError(t, err)
	for _, r := range recs {
		require.NoError(t, feed.Handle(ctx, stream.FromRecorded(r, "")))
	}
	require.Positive(t, feed.Stats().Ignored, "events of other categories are ignored")
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	require.NoError(t, projections.NewWaiter(src, cat).WaitFor(wctx, head))
	require.Zero(t, slow.Healed(), "the checkpoint moved over what the bus applied")
	stop()

	quick := projections.NewRunner(src, cat, projections.RunnerConfig{Grace: 50 * time.Millisecond, PollInterval: time.Millisecond})
	quickCtx, stopQuick := context.WithCancel(ctx)
	defer stopQuick()
	go func() { _ = quick.Run(quickCtx) }()
	res, err := cmd.CreateUser(ctx, adminOf(w.tenants[0]), commands.CreateUser{Input: domain.UserInput{
		Email: "late@example.com", Name: "Late", Role: domain.RoleClient}})
	require.NoError(t, err)
	began := time.Now()
	require.NoError(t, projections.NewWaiter(src, cat).WaitFor(wctx, res.Position))
	require.GreaterOrEqual(t, time.Since(began), 40*time.Millisecond, "the projector waited for the bus first")
	// The Runner counts what it healed once Apply has returned, which
	// may be just after the waiter saw the checkpoint move.
	streamtest.Eventually(t, 5*time.Second, func() bool { return quick.Healed() > 0 }, "the projector applied the event itself")
}

// TestBusFeedGapTheStoreCannotFill: a bus event whose stream's earlier
// versions the store does not hold (another deployment's event, or a
// store restored from an older backup) is refused with an error, so that
// the subscriber retries and then parks it, and nothing is applied.
func TestBusFeedGapTheStoreCannotFill(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := memory.New()
	cmd := commands.New(store)
	setup(t, cmd)
	src := eventsource.New(store, time.Millisecond)
	cat := catalog.NewMemory()
	feed := busfeed.New(cat, src)
	recs, err := store.ReadAll(ctx, eventstore.Cursor{}, eventstore.Filter{Categories: []string{"user"}}, 1)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	e := stream.FromRecorded(recs[0], "")
	e.StreamID, e.StreamVersion = "user-00000000-0000-0000-0000-000000000001", 3
	err = feed.Handle(ctx, e)
	require.ErrorContains(t, err, "the store lacks versions 1 to 3")
	applied, err := cat.AppliedVersions(ctx, []string{e.StreamID})
	require.NoError(t, err)
	require.Empty(t, applied)
	require.Zero(t, feed.Stats().Applied)
}

// countingSource counts the ReadAll calls of a Source.
type countingSource struct {
	projections.Source
	reads, events atomic.Int64
}

func (c *countingSource) ReadAll(ctx context.Context, after projections.Cursor, categories []string, limit int) ([]projections.Event, error) {
	c.reads.Add(1)
	evs, err := c.Source.ReadAll(ctx, after, categories, limit)
	c.events.Add(int64(len(evs)))
	return evs, err
}

// askingProjection counts the AppliedVersions calls of a Projection and
// keeps the most streams one call asked about.
type askingProjection struct {
	projections.Projection
	calls, most atomic.Int64
}

func (a *askingProjection) AppliedVersions(ctx context.Context, streamIDs []string) (map[string]int64, error) {
	a.calls.Add(1)
	for n := int64(len(streamIDs)); n > a.most.Load(); {
		if a.most.CompareAndSwap(a.most.Load(), n) {
			break
		}
	}
	return a.Projection.AppliedVersions(ctx, streamIDs)
}

// failingBus is a Projection whose bus applies fail.
type failingBus struct {
	projections.Projection
	attempts atomic.Int64
}

func (f *failingBus) Apply(ctx context.Context, b projections.Batch) error {
	if b.FromBus {
		f.attempts.Add(1)
		return errors.New("read model down")
	}
	return f.Projection.Apply(ctx, b)
}

// TestBatchedFeedGivesUpAndTheProjectorHeals: a batched bus handler
// acknowledges events at once; when their apply keeps failing it tries
// MaxAttempts times, gives them up (counted, logged), and the projector
// applies them from the store once its grace has passed.
func TestBatchedFeedGivesUpAndTheProjectorHeals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := memory.New()
	cmd := commands.New(store)
	setup(t, cmd)
	src := eventsource.New(store, time.Millisecond)
	cat := &failingBus{Projection: catalog.NewMemory()}
	feed := busfeed.New(cat, src, busfeed.WithBatch(8, time.Millisecond))
	require.True(t, feed.Batched())
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { _ = feed.Run(runCtx) }()

	recs, err := store.ReadAll(ctx, eventstore.Cursor{}, eventstore.Filter{Categories: cat.Categories()}, 100_000)
	require.NoError(t, err)
	for _, r := range recs {
		require.NoError(t, feed.Handle(ctx, stream.FromRecorded(r, "")), "acknowledged at once")
	}
	streamtest.Eventually(t, 30*time.Second, func() bool { return feed.Pending() == 0 }, "the handler gives up")
	require.EqualValues(t, len(recs), feed.Stats().Dropped)
	require.Zero(t, feed.Stats().Applied)
	require.GreaterOrEqual(t, cat.attempts.Load(), int64(busfeed.MaxAttempts))
	cp, err := cat.Checkpoint(ctx)
	require.NoError(t, err)
	require.Equal(t, projections.Cursor{}, cp)

	runner := projections.NewRunner(src, cat, projections.RunnerConfig{Grace: 50 * time.Millisecond, PollInterval: time.Millisecond})
	go func() { _ = runner.Run(runCtx) }()
	head, err := store.HeadPosition(ctx)
	require.NoError(t, err)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	require.NoError(t, projections.NewWaiter(src, cat).WaitFor(wctx, head))
	streamtest.Eventually(t, 5*time.Second, func() bool { return runner.Healed() == int64(len(recs)) }, "the projector applied what the handler gave up")
}
