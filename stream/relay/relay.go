// Package relay publishes every committed event of the event store to the
// category topics of package stream, through a Watermill publisher (Redis
// Streams, or the in-process GoChannel in embedded mode).
//
// # Guarantees
//
//   - Every committed event of a published category is published at least
//     once; an event that rolled back never is. The relay reads with
//     eventstore.Store.ReadAll, which returns only committed events and
//     never skips one that commits late with a lower position.
//   - Events of one stream are published in stream-version order, each
//     stream to one topic (and one partition). As a defence against a
//     store that returned a stream's events out of order, the relay
//     remembers the last version it published of recently seen streams
//     (a bounded map, Config.StreamMemory); an event that would leave a
//     gap makes it load and publish the missing versions first, and skip
//     them when ReadAll returns them later.
//   - The checkpoint (eventstore.Store.SaveCheckpoint under Config.Name)
//     is saved only after every event up to it was published, at most
//     every Config.CheckpointInterval. After a crash the next relay
//     publishes again what followed the checkpoint: consumers dedupe by
//     event id.
//   - Publishing failures (Redis down) are retried with exponential
//     backoff, capped at Config.MaxBackoff, on the same event, for ever;
//     the store is untouched, so commands keep succeeding, and the relay
//     catches up when the publisher works again. Put a
//     stream.BreakerPublisher in front of a Redis publisher (bookingd
//     does) so that those retries fail at once while Redis is away.
//
// # One publisher at a time
//
// On PostgreSQL (Config.Pool set) a relay publishes only while it holds a
// session-level advisory lock (pg_try_advisory_lock on LockKey(Name)) on a
// dedicated connection, outside the pool. Relays that do not hold it try
// again every Config.LockRetry. The same connection LISTENs on
// NotifyChannel and is pinged every Config.HealthInterval; when it fails,
// the relay stops publishing at once, because PostgreSQL released the
// lock with the session and another relay may take over. A relay that
// dies closes its connection (or the server notices the dead peer), so a
// standby takes over within LockRetry of that. Between a connection's
// death and its owner noticing, both may publish: events are then
// published twice, never out of order.
//
// The lock and LISTEN need a session of their own: point the pool at
// PostgreSQL itself or at a session-pooling proxy, not at a
// transaction-pooling one.
//
// On the memory store (Config.Pool nil) there is one process and no lock;
// the relay waits on the store's Notify.
//
// # Waking
//
// A statement-level trigger (Migrations) sends pg_notify on
// NotifyChannel when an append commits; the relay reads as soon as it is
// woken, and polls every Config.PollInterval regardless, so a missing
// trigger or a lost notification only delays. When the store's head is
// beyond the last event read (the xid8 watermark is holding an event back
// until an older transaction ends), the relay reads again after a short
// backoff instead of waiting for the next notification.
//
// # Retention
//
// The relay never trims a Redis stream: the publisher sets no MAXLEN,
// because a length cap drops entries whether or not every consumer group
// has read them. Streams grow until an operator trims them: XTRIM
// <topic> MINID <id>, where id is at or below the lowest last-delivered-id
// of the topic's consumer groups (XINFO GROUPS) and below every pending
// entry (XPENDING), so nothing a group has not acknowledged is removed.
// The event store remains the source of truth: a new consumer that needs
// the history from before a trim rebuilds from the store.
package relay

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bookingengine/booking/eventstore"
	"github.com/bookingengine/booking/stream"
)

// DefaultName is the default checkpoint name and lock identity of the
// relay to Redis. It is permanent: renaming it makes the relay start from
// the beginning of the store (every event published again) and take
// another lock, so an old and a new relay would both publish.
const DefaultName = "stream.relay"

// finalSaveTimeout bounds the checkpoint save when a relay stops.
const finalSaveTimeout = 2 * time.Second

// Defaults of the zero Config fields.
const (
	DefaultBatchSize          = 500
	DefaultPollInterval       = time.Second
	DefaultLockRetry          = time.Second
	DefaultHealthInterval     = 2 * time.Second
	DefaultCheckpointInterval = time.Second
	DefaultMinBackoff         = 50 * time.Millisecond
	DefaultMaxBackoff         = 10 * time.Second
	DefaultStreamMemory       = 100_000
)

// Config configures a Relay. Store and Publisher are required; zero
// fields take the defaults above.
type Config struct {
	// Store is the event store to tail.
	Store eventstore.Store
	// Publisher receives every published event. The relay never closes
	// it. With the GoChannel of stream.NewGoChannel, Publish returns once
	// in-process subscribers acknowledged, so the checkpoint follows them.
	Publisher message.Publisher
	// Pool is the PostgreSQL store's pool (postgres.Store.Pool): the relay
	// opens its dedicated lock-and-listen connection with the pool's
	// connection settings. Nil means the memory store: no lock, woken by
	// the store's Notify.
	Pool *pgxpool.Pool
	// Topics names the topics and partitions.
	Topics stream.Topics
	// SourceBase prefixes the CloudEvents source (see stream.Source).
	SourceBase string
	// Name is the checkpoint name and the lock identity (DefaultName when
	// empty). Relays that share a Name publish one at a time and resume
	// from the same checkpoint; give a relay to another transport (the
	// embedded GoChannel) another Name. Permanent: see DefaultName.
	Name string
	// BatchSize is how many events one ReadAll returns at most.
	BatchSize int
	// PollInterval is the longest wait without a wake-up before reading.
	PollInterval time.Duration
	// LockRetry is how often a standby relay tries to take the lock.
	LockRetry time.Duration
	// HealthInterval is how often the leader pings its lock connection.
	HealthInterval time.Duration
	// CheckpointInterval is how often, at most, the checkpoint is saved
	// while publishing (and how soon after the last publish it is saved).
	CheckpointInterval time.Duration
	// MinBackoff and MaxBackoff bound the exponential backoff between
	// retries of a failed publish, read or checkpoint.
	MinBackoff, MaxBackoff time.Duration
	// StreamMemory bounds how many streams' last published versions are
	// remembered for the gap check.
	StreamMemory int
	// Logger receives the relay's logs; nil discards them.
	Logger *slog.Logger
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	if c.Store == nil {
		errs = append(errs, errors.New("field Store is required"))
	}
	if c.Publisher == nil {
		errs = append(errs, errors.New("field Publisher is required"))
	}
	if err := c.Topics.Validate(); err != nil {
		errs = append(errs, err)
	}
	for name, v := range map[string]int{"BatchSize": c.BatchSize, "StreamMemory": c.StreamMemory} {
		if v < 0 {
			errs = append(errs, fmt.Errorf("field %s is %d, want >= 0", name, v))
		}
	}
	for name, v := range map[string]time.Duration{
		"PollInterval": c.PollInterval, "LockRetry": c.LockRetry, "HealthInterval": c.HealthInterval,
		"CheckpointInterval": c.CheckpointInterval, "MinBackoff": c.MinBackoff, "MaxBackoff": c.MaxBackoff,
	} {
		if v < 0 {
			errs = append(errs, fmt.Errorf("field %s is %s, want >= 0", name, v))
		}
	}
	if c.MinBackoff > 0 && c.MaxBackoff > 0 && c.MinBackoff > c.MaxBackoff {
		errs = append(errs, fmt.Errorf("field MinBackoff %s exceeds MaxBackoff %s", c.MinBackoff, c.MaxBackoff))
	}
	if len(errs) > 0 {
		return fmt.Errorf("relay: invalid config: %w", errors.Join(errs...))
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Name == "" {
		c.Name = DefaultName
	}
	setDefault(&c.BatchSize, DefaultBatchSize)
	setDefault(&c.StreamMemory, DefaultStreamMemory)
	setDefault(&c.PollInterval, DefaultPollInterval)
	setDefault(&c.LockRetry, DefaultLockRetry)
	setDefault(&c.HealthInterval, DefaultHealthInterval)
	setDefault(&c.CheckpointInterval, DefaultCheckpointInterval)
	setDefault(&c.MinBackoff, DefaultMinBackoff)
	setDefault(&c.MaxBackoff, max(DefaultMaxBackoff, c.MinBackoff))
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func setDefault[T int | time.Duration](v *T, d T) {
	if *v == 0 {
		*v = d
	}
}

// LockKey returns the pg_advisory_lock key of the relay named name: the
// FNV-1a (64 bit) hash of "stream.relay/" + name.
func LockKey(name string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("stream.relay/" + name))
	return int64(h.Sum64())
}

// Status is a snapshot of a relay, for /readyz and metrics.
type Status struct {
	// Running is true between Run's start and its return.
	Running bool `json:"running"`
	// Leader is true while this relay may publish: it holds the advisory
	// lock (always true on the memory store while running).
	Leader bool `json:"leader"`
	// PublishedPosition is the position of the last event published.
	PublishedPosition int64 `json:"published_position"`
	// Position is the greatest position this relay is done with:
	// published, or skipped as an internal category.
	Position int64 `json:"position"`
	// HeadPosition is the store's head, looked at every PollInterval and
	// whenever the relay runs out of events.
	HeadPosition int64 `json:"head_position"`
	// Lag is HeadPosition - Position, at least 0: roughly how many
	// committed events wait to be published (positions have gaps, so it
	// may overstate). It is 0 while Leader is false: a standby owes
	// nothing.
	Lag int64 `json:"lag"`
	// Checkpoint is the cursor last saved.
	Checkpoint eventstore.Cursor `json:"checkpoint"`
	// Published counts the messages this relay published since Run began
	// (gap fills and retries that succeeded included).
	Published uint64 `json:"published"`
	// LastPublishedAt is when a message was last published.
	LastPublishedAt time.Time `json:"last_published_at,omitzero"`
	// LastError is the latest failure (publish, read, lock, checkpoint),
	// and LastErrorAt its time; both stay after a later success.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// Failing is true while the latest attempt failed and is being retried.
	Failing bool `json:"failing"`
}

// Relay tails an event store and publishes its events. Create it with
// New and start it with Run; Status and Lag are safe to call from any
// goroutine at any time.
type Relay struct {
	cfg     Config
	lockKey int64
	log     *slog.Logger

	mu     sync.Mutex
	status Status

	versions *versionMemory
}

// New validates cfg and returns a relay that is not running yet.
func New(cfg Config) (*Relay, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Relay{
		cfg:      cfg,
		lockKey:  LockKey(cfg.Name),
		log:      cfg.Logger.With(slog.String("component", "relay"), slog.String("relay", cfg.Name)),
		versions: newVersionMemory(cfg.StreamMemory),
	}, nil
}

// Status returns a snapshot of the relay's state. Safe for concurrent use.
func (r *Relay) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.status
	if s.Leader {
		s.Lag = max(0, s.HeadPosition-s.Position)
	}
	return s
}

// Lag returns Status().Lag: roughly how many committed events this
// leader has not published yet.
func (r *Relay) Lag() int64 { return r.Status().Lag }

func (r *Relay) update(f func(s *Status)) {
	r.mu.Lock()
	f(&r.status)
	r.mu.Unlock()
}

func (r *Relay) fail(op string, err error) {
	r.log.Warn("relay: "+op+" failed; retrying", slog.Any("error", err))
	r.update(func(s *Status) {
		s.LastError = op + ": " + err.Error()
		s.LastErrorAt = time.Now()
		s.Failing = true
	})
}

func (r *Relay) recovered() {
	r.update(func(s *Status) { s.Failing = false })
}

// Run publishes until ctx ends, then returns nil. On PostgreSQL it first
// waits for the advisory lock, and when it loses the lock (its connection
// fails) it stops publishing and waits for it again. Every failure
// (database, publisher) is retried with backoff and shown in Status,
// never returned. On stopping it saves the checkpoint of what it
// published, trying for up to 2 s; a crash skips that, and the next relay
// publishes again what followed the last periodic checkpoint. Run must
// not be called twice at once on one Relay.
func (r *Relay) Run(ctx context.Context) error {
	r.update(func(s *Status) { s.Running = true })
	defer r.update(func(s *Status) { s.Running, s.Leader = false, false })
	if r.cfg.Pool == nil {
		r.update(func(s *Status) { s.Leader = true })
		r.lead(ctx, nil)
		return nil
	}
	for ctx.Err() == nil {
		conn := r.acquire(ctx)
		if conn == nil {
			break
		}
		r.log.Info("relay: holding the publisher lock; publishing")
		leaderCtx, lost := context.WithCancelCause(ctx)
		wake := make(chan struct{}, 1)
		done := make(chan struct{})
		go func() {
			defer close(done)
			r.watch(leaderCtx, conn, wake, lost)
		}()
		r.update(func(s *Status) { s.Leader = true })
		r.lead(leaderCtx, wake)
		r.update(func(s *Status) { s.Leader = false })
		lost(nil)
		<-done
		closeConn(conn)
		if cause := context.Cause(leaderCtx); ctx.Err() == nil && cause != nil && !errors.Is(cause, context.Canceled) {
			r.log.Warn("relay: lost the publisher lock; waiting to take it again", slog.Any("error", cause))
		}
	}
	return nil
}

// closeConn closes the lock connection, which releases the lock.
func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = conn.Close(ctx)
}

// acquire connects and takes the advisory lock, retrying until it holds
// it (returning the connection, already LISTENing) or ctx ends (nil).
func (r *Relay) acquire(ctx context.Context) *pgx.Conn {
	var conn *pgx.Conn
	bo := r.backoff()
	logged := false
	for {
		if conn == nil {
			c, err := pgx.ConnectConfig(ctx, r.cfg.Pool.Config().ConnConfig.Copy())
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				r.fail("connect for the publisher lock", err)
				if !sleep(ctx, bo.next()) {
					return nil
				}
				continue
			}
			conn = c
		}
		var held bool
		err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, r.lockKey).Scan(&held)
		if err == nil && held {
			_, err = conn.Exec(ctx, `LISTEN `+NotifyChannel)
			if err == nil {
				r.recovered()
				return conn
			}
		}
		if err != nil {
			closeConn(conn)
			conn = nil
			if ctx.Err() != nil {
				return nil
			}
			r.fail("take the publisher lock", err)
			if !sleep(ctx, bo.next()) {
				return nil
			}
			continue
		}
		bo.reset()
		if !logged {
			r.log.Info("relay: another relay holds the publisher lock; standing by")
			logged = true
		}
		if !sleep(ctx, r.cfg.LockRetry) {
			closeConn(conn)
			return nil
		}
	}
}

// watch owns the lock connection while leading: it forwards notifications
// to wake and pings the session every HealthInterval. When the connection
// fails it cancels the leadership with the error.
func (r *Relay) watch(ctx context.Context, conn *pgx.Conn, wake chan<- struct{}, lost context.CancelCauseFunc) {
	for {
		wctx, cancel := context.WithTimeout(ctx, r.cfg.HealthInterval)
		_, err := conn.WaitForNotification(wctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			select {
			case wake <- struct{}{}:
			default:
			}
			continue
		}
		if errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed() {
			pctx, cancel := context.WithTimeout(ctx, r.cfg.HealthInterval)
			err = conn.Ping(pctx)
			cancel()
			if err == nil || ctx.Err() != nil {
				continue
			}
		}
		r.fail("publisher lock connection", err)
		lost(fmt.Errorf("lock connection: %w", err))
		return
	}
}

// batch is what the reader hands the publisher: events in read order and
// the cursor after them.
type batch struct {
	events   []eventstore.RecordedEvent
	cursor   eventstore.Cursor
	position int64 // greatest position read so far
}

// lead publishes from the checkpoint until ctx ends. wake carries
// PostgreSQL notifications (nil on the memory store).
func (r *Relay) lead(ctx context.Context, wake <-chan struct{}) {
	cursor, ok := r.checkpoint(ctx)
	if !ok {
		return
	}
	r.update(func(s *Status) {
		s.Checkpoint = cursor
		s.Position = max(s.Position, cursor.Position)
	})
	// The memory of published versions belongs to this term: events after
	// the checkpoint may have been published by another relay since.
	r.versions.clear()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan batch, 2)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(batches)
		r.read(ctx, cursor, wake, batches)
	})
	wg.Go(func() { r.watchHead(ctx) })
	r.publishAll(ctx, cursor, batches)
	cancel()
	wg.Wait()
}

// watchHead refreshes Status.HeadPosition every PollInterval, so that Lag
// grows while publishing is stuck.
func (r *Relay) watchHead(ctx context.Context) {
	t := time.NewTicker(r.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if head, err := r.cfg.Store.HeadPosition(ctx); err == nil {
			r.update(func(s *Status) { s.HeadPosition = max(s.HeadPosition, head) })
		}
	}
}

// checkpoint loads the saved cursor, retrying until it succeeds or ctx ends.
func (r *Relay) checkpoint(ctx context.Context) (eventstore.Cursor, bool) {
	bo := r.backoff()
	for {
		c, err := r.cfg.Store.Checkpoint(ctx, r.cfg.Name)
		if err == nil {
			r.recovered()
			return c, true
		}
		if ctx.Err() != nil {
			return eventstore.Cursor{}, false
		}
		r.fail("read the checkpoint", err)
		if !sleep(ctx, bo.next()) {
			return eventstore.Cursor{}, false
		}
	}
}

type notifier interface {
	Notify(after int64) <-chan struct{}
}

// read tails the store into batches until ctx ends.
func (r *Relay) read(ctx context.Context, cursor eventstore.Cursor, wake <-chan struct{}, out chan<- batch) {
	notify, _ := r.cfg.Store.(notifier)
	bo := r.backoff()
	quick := newBackoff(2*time.Millisecond, r.cfg.PollInterval)
	seen := cursor.Position // greatest position read (close enough at start)
	for ctx.Err() == nil {
		var head int64
		var err error
		if notify != nil {
			// The memory store commits in position order: everything up
			// to this head is returned by the ReadAll that follows.
			if head, err = r.cfg.Store.HeadPosition(ctx); err != nil {
				r.fail("read the store head", err)
				sleep(ctx, bo.next())
				continue
			}
		}
		evs, err := r.cfg.Store.ReadAll(ctx, cursor, eventstore.Filter{}, r.cfg.BatchSize)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.fail("read events", err)
			sleep(ctx, bo.next())
			continue
		}
		bo.reset()
		if len(evs) > 0 {
			cursor = eventstore.CursorOf(evs[len(evs)-1])
			for i := range evs {
				seen = max(seen, evs[i].Position)
			}
			select {
			case out <- batch{events: evs, cursor: cursor, position: seen}:
			case <-ctx.Done():
				return
			}
			if len(evs) == r.cfg.BatchSize {
				continue
			}
		}
		if notify == nil && len(evs) > 0 && len(wake) > 0 {
			// Another commit was announced meanwhile: read again at once,
			// without asking for the head (a query saved per read under
			// load).
			<-wake
			continue
		}
		if notify == nil {
			if head, err = r.cfg.Store.HeadPosition(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				r.fail("read the store head", err)
				head = seen
			}
		}
		r.update(func(s *Status) { s.HeadPosition = max(s.HeadPosition, head) })
		var wait <-chan struct{}
		timeout := r.cfg.PollInterval
		switch {
		case notify != nil:
			wait = notify.Notify(head)
		case head > seen:
			// Committed events are held back by the watermark: an older
			// transaction is still open. Read again soon.
			wait = wake
			timeout = quick.next()
		default:
			wait = wake
			quick.reset()
		}
		t := time.NewTimer(timeout)
		select {
		case <-wait:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
}

// publishAll publishes batches in order and saves the checkpoint, also
// once more when ctx ends (within finalSaveTimeout), so that a restart
// publishes again as little as possible.
func (r *Relay) publishAll(ctx context.Context, saved eventstore.Cursor, batches <-chan batch) {
	published := saved
	lastSave := time.Now()
	timer := time.NewTimer(r.cfg.CheckpointInterval)
	defer timer.Stop()
	save := func(ctx context.Context) {
		if published == saved {
			return
		}
		if r.saveCheckpoint(ctx, published) {
			saved = published
			lastSave = time.Now()
		}
	}
	defer func() {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalSaveTimeout)
		defer cancel()
		save(fctx)
	}()
	for {
		select {
		case b, ok := <-batches:
			if !ok {
				return
			}
			if !r.publishBatch(ctx, b.events) {
				return
			}
			published = b.cursor
			r.update(func(s *Status) { s.Position = max(s.Position, b.position) })
			if time.Since(lastSave) >= r.cfg.CheckpointInterval {
				save(ctx)
			}
			timer.Reset(r.cfg.CheckpointInterval)
		case <-timer.C:
			save(ctx)
		case <-ctx.Done():
			return
		}
	}
}

// saveCheckpoint stores c, retrying until it succeeds or ctx ends.
func (r *Relay) saveCheckpoint(ctx context.Context, c eventstore.Cursor) bool {
	bo := r.backoff()
	for {
		err := r.cfg.Store.SaveCheckpoint(ctx, r.cfg.Name, c)
		if err == nil {
			r.recovered()
			r.update(func(s *Status) { s.Checkpoint = c })
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		r.fail("save the checkpoint", err)
		if !sleep(ctx, bo.next()) {
			return false
		}
	}
}

// publishBatch publishes the batch's events of published categories,
// each topic's in order and the topics concurrently. It reports whether
// every one was published (false only when ctx ended).
func (r *Relay) publishBatch(ctx context.Context, evs []eventstore.RecordedEvent) bool {
	var order []string
	byTopic := map[string][]eventstore.RecordedEvent{}
	for _, e := range evs {
		topic, ok := r.cfg.Topics.ForStream(e.StreamID)
		if !ok {
			continue
		}
		if _, seen := byTopic[topic]; !seen {
			order = append(order, topic)
		}
		byTopic[topic] = append(byTopic[topic], e)
	}
	if len(order) == 1 {
		return r.publishTopic(ctx, order[0], byTopic[order[0]])
	}
	var wg sync.WaitGroup
	results := make([]bool, len(order))
	for i, topic := range order {
		wg.Go(func() { results[i] = r.publishTopic(ctx, topic, byTopic[topic]) })
	}
	wg.Wait()
	for _, ok := range results {
		if !ok {
			return false
		}
	}
	return true
}

// publishTopic publishes events of one topic in order, filling gaps in
// stream versions from the store first.
func (r *Relay) publishTopic(ctx context.Context, topic string, evs []eventstore.RecordedEvent) bool {
	for _, e := range evs {
		last, known := r.versions.get(e.StreamID)
		switch {
		case known && e.StreamVersion <= last:
			continue // published already, by a gap fill
		case known && e.StreamVersion > last+1:
			missing, ok := r.loadGap(ctx, e.StreamID, last, e.StreamVersion)
			if !ok {
				return false
			}
			r.log.Warn("relay: stream version gap; publishing the missing versions first",
				slog.String("stream_id", e.StreamID), slog.Int64("last_published", last),
				slog.Int64("version", e.StreamVersion), slog.Int("missing", len(missing)))
			for _, m := range missing {
				if !r.publishOne(ctx, topic, m) {
					return false
				}
			}
		}
		if !r.publishOne(ctx, topic, e) {
			return false
		}
	}
	return true
}

// loadGap loads the stream's versions after last and before next.
func (r *Relay) loadGap(ctx context.Context, streamID string, last, next int64) ([]eventstore.RecordedEvent, bool) {
	bo := r.backoff()
	for {
		evs, err := r.cfg.Store.Load(ctx, streamID, last)
		if err == nil {
			r.recovered()
			out := evs[:0]
			for _, e := range evs {
				if e.StreamVersion < next {
					out = append(out, e)
				}
			}
			return out, true
		}
		if ctx.Err() != nil {
			return nil, false
		}
		r.fail("load stream "+streamID, err)
		if !sleep(ctx, bo.next()) {
			return nil, false
		}
	}
}

// publishOne publishes e, retrying with backoff until it succeeds or ctx
// ends.
func (r *Relay) publishOne(ctx context.Context, topic string, e eventstore.RecordedEvent) bool {
	msg, err := stream.NewMessage(stream.FromRecorded(e, r.cfg.SourceBase))
	if err != nil {
		// The store accepts only JSON objects as data, so this is a bug;
		// stopping here would stall every later event, so it is logged
		// loudly and skipped.
		r.log.Error("relay: cannot encode event; skipped", slog.String("event_id", e.ID.String()), slog.Any("error", err))
		r.versions.set(e.StreamID, e.StreamVersion)
		return true
	}
	msg.SetContext(ctx)
	bo := r.backoff()
	for {
		err := r.cfg.Publisher.Publish(topic, msg)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return false
		}
		r.fail("publish to "+topic, err)
		if !sleep(ctx, bo.next()) {
			return false
		}
		msg = msg.Copy()
		msg.SetContext(ctx)
	}
	if bo.attempt > 0 {
		r.log.Info("relay: publishing again", slog.String("topic", topic))
		r.recovered()
	}
	r.versions.set(e.StreamID, e.StreamVersion)
	now := time.Now()
	r.update(func(s *Status) {
		s.Published++
		s.PublishedPosition = e.Position
		s.LastPublishedAt = now
	})
	return true
}

// sleep waits d or until ctx ends, reporting whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// backoff is capped exponential backoff with jitter.
type backoff struct {
	min, max time.Duration
	attempt  int
}

func newBackoff(lo, hi time.Duration) *backoff { return &backoff{min: lo, max: max(lo, hi)} }

func (r *Relay) backoff() *backoff { return newBackoff(r.cfg.MinBackoff, r.cfg.MaxBackoff) }

func (b *backoff) next() time.Duration {
	d := b.min << min(b.attempt, 30)
	if d <= 0 || d > b.max {
		d = b.max
	}
	b.attempt++
	// Up to 20 % jitter, so relays and consumers do not retry in step.
	return d - time.Duration(rand.Int64N(int64(d)/5+1))
}

func (b *backoff) reset() { b.attempt = 0 }

// versionMemory remembers the last published version of recently seen
// streams in two generations: when the young one is full it becomes the
// old one, so at most 2*size/2 = size streams are held and a stream seen
// since the last turnover is always found.
type versionMemory struct {
	mu         sync.Mutex
	half       int
	young, old map[string]int64
}

func newVersionMemory(size int) *versionMemory {
	half := max(size/2, 1)
	return &versionMemory{half: half, young: make(map[string]int64), old: make(map[string]int64)}
}

func (m *versionMemory) get(id string) (int64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.young[id]; ok {
		return v, true
	}
	v, ok := m.old[id]
	return v, ok
}

func (m *versionMemory) set(id string, v int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.young[id]; !ok && len(m.young) >= m.half {
		m.old, m.young = m.young, make(map[string]int64, m.half)
	}
	m.young[id] = v
}

func (m *versionMemory) clear() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.young, m.old = make(map[string]int64), make(map[string]int64)
}
