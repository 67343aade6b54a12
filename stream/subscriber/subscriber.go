// Package subscriber is how a service consumes the published events
// (notifications, billing, webhooks, projections): a consumer group on
// category topics, each message decoded into a typed Event, deduped,
// ordered per stream, handled with retries, and parked in a dead-letter
// stream when it keeps failing.
//
// # Modes
//
// Redis mode (Config.Redis): a watermill-redisstream consumer group named
// Config.Group on every partition of every topic of Config.Topics. The
// group is permanent: Redis keeps its position under that name, and a new
// name starts from the oldest retained entry.
//
// Embedded mode (Config.Subscriber, the GoChannel of stream.NewGoChannel):
// the same API in one process. Each Subscriber is its group's only
// consumer; the relay's Publish waits for its acknowledgement, so events
// arrive in order and the relay checkpoints only what was handled. Start
// subscribers, and wait for Ready, before the relay: GoChannel drops what
// is published while a topic has no subscriber.
//
// # What the handler sees
//
//   - Each event once per group, as far as the DedupeStore remembers
//     (RedisStore in Redis mode, MemoryStore in embedded mode, or
//     PostgresStore). Before handling, the subscriber takes the group's
//     lease on the event's stream and reads what the group remembers, in
//     one step (DedupeStore.Begin); the lease keeps two consumers of the
//     group from handling one stream's events at once, duplicates
//     included. After the handler succeeded it marks the event done (its
//     id and its stream's version) and releases the lease, atomically,
//     and only then acknowledges the message. A crash between the handler
//     and the mark redelivers the event: the handler must tolerate a rare
//     repeat (or mark done itself in its own transaction, see MarkDoneTx).
//   - A stream's events in streamversion order. A redelivered event whose
//     id was seen is acknowledged without calling the handler. An event
//     whose version is at or below the stream's last processed version
//     but whose id was not seen arrived too late to keep the order: it is
//     parked in the dead-letter stream (reason out_of_order) rather than
//     handled behind its successors. An event more than one version ahead
//     of the last processed one (a gap; for a stream the group does not
//     know, any version above 1) is held, unacknowledged, and re-checked
//     with backoff for up to Config.GapWait, so that the missing version,
//     in the hands of another consumer of the group, goes first. After
//     GapWait it is handled anyway and the gap is logged: the missing
//     version was trimmed from Redis, or published before the group
//     existed. Meanwhile the topic's later messages wait for this one, so
//     a group created on a trimmed topic pays GapWait once per stream
//     whose beginning is gone.
//   - Handler errors (and panics) are retried in place with exponential
//     backoff, Config.MaxRetries times; then the event is parked and
//     marked done, so the stream's later events go on. Keep the whole
//     retry budget below Config.LeaseTTL and Config.MaxIdleTime: past
//     MaxIdleTime another consumer of the group claims the entry, and past
//     LeaseTTL it may take the lease and handle the event too.
//
// Each topic (partition) is consumed by its own goroutine, one message at
// a time, so a handler must be safe for concurrent use when the Topics
// expand to more than one. The events of one stream come from one topic,
// unless the partition count changed; the lease and the order check keep
// them in order then too.
//
// # Dead letters
//
// Parked messages go to DeadLetterTopic(prefix, group) ("<group>.dlq")
// through Config.DeadLetter (in Redis mode, by default, a Redis publisher
// on Config.Redis): the original payload and UUID, and the metadata of
// the original plus dlq_reason (handler_failed, invalid_envelope,
// invalid_message, out_of_order), dlq_error, dlq_group, dlq_topic,
// dlq_attempts and dlq_at (RFC 3339). A dead letter cannot simply be
// published again: a handler_failed event was marked done, and an
// out_of_order one is older than its stream's last processed version, so
// the subscriber would skip or park it again. Handle it by hand, or with
// a tool that calls the handler directly.
//
// # Restarts
//
// In Redis mode, name each process's consumer (Config.Consumer, default
// the host name) the same across restarts: Run first handles the entries
// this consumer had read but not acknowledged, in order, before new ones.
// Entries of a consumer that never comes back are claimed by the others
// after Config.MaxIdleTime.
package subscriber

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/bookingengine/booking/stream"
)

// Event is a decoded event; see stream.Event.
type Event = stream.Event

// Handler handles one event. Returning an error asks for a retry; after
// Config.MaxRetries the event is parked in the dead-letter stream. It is
// called with the context given to Run.
type Handler func(ctx context.Context, e Event) error

// Defaults of the zero Config fields.
const (
	DefaultMaxRetries = 5
	DefaultMinBackoff = 100 * time.Millisecond
	DefaultMaxBackoff = 5 * time.Second
	DefaultGapWait    = 10 * time.Second
	DefaultLeaseTTL   = 30 * time.Second
)

// NoRetries as Config.MaxRetries parks an event after its first failure.
const NoRetries = -1

// Config configures a Subscriber.
type Config struct {
	// Group names the consumer group. It is permanent: in Redis, the
	// group's read position and pending entries live under this name, and
	// the dedupe store keys on it; renaming it makes a new group that
	// reads every retained entry again. Required.
	Group string
	// Topics are category topics (stream.TopicBooking, …); each is
	// expanded to its partitions with Naming. Required.
	Topics []string
	// Naming is the prefix and partition count the relay publishes with.
	Naming stream.Topics
	// Redis selects Redis mode: the client for the consumer group, the
	// default DedupeStore and the default DeadLetter publisher. The
	// subscriber does not close it.
	Redis redis.UniversalClient
	// Subscriber selects embedded mode (or any other Watermill
	// subscriber) instead of Redis: a GoChannel from stream.NewGoChannel.
	// When both are set, Subscriber is used and Redis backs only the
	// defaults of Dedupe and DeadLetter.
	Subscriber message.Subscriber
	// DeadLetter receives parked messages. Default: a Redis publisher on
	// Redis, behind a stream.BreakerPublisher named after the dead-letter
	// topic; in embedded mode without one, parked events are logged at
	// error level, payload included, and dropped.
	DeadLetter message.Publisher
	// Consumer names this process within the group (Redis mode); default
	// the host name. Keep it stable across restarts and distinct between
	// processes that run at the same time.
	Consumer string
	// Dedupe remembers processed events. Default: a RedisStore on Redis
	// (keys under Naming.Prefix) in Redis mode, a MemoryStore otherwise.
	Dedupe DedupeStore
	// MaxRetries is how often a failing handler is retried (NoRetries for
	// none; 0 means DefaultMaxRetries).
	MaxRetries int
	// MinBackoff and MaxBackoff bound the exponential backoff between
	// handler retries (and retries of the dedupe store and dead-letter
	// publisher).
	MinBackoff, MaxBackoff time.Duration
	// GapWait bounds how long an event that follows a gap is held for the
	// missing version. Keep it above the handler's retry budget.
	GapWait time.Duration
	// LeaseTTL is how long a consumer's lease on a stream lasts while it
	// handles one of its events (default DefaultLeaseTTL). A handler that
	// runs longer, retries included, may find another consumer of the
	// group handling the stream's next event meanwhile.
	LeaseTTL time.Duration
	// MaxIdleTime and ClaimInterval tune the claiming of other consumers'
	// stale entries (Redis mode; see stream.RedisSubscriberConfig).
	MaxIdleTime, ClaimInterval time.Duration
	// Logger receives the subscriber's logs; nil discards them.
	Logger *slog.Logger
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	if c.Group == "" {
		errs = append(errs, errors.New("field Group is required"))
	}
	if len(c.Topics) == 0 {
		errs = append(errs, errors.New("field Topics is empty"))
	}
	for i, t := range c.Topics {
		if t == "" {
			errs = append(errs, fmt.Errorf("field Topics[%d] is empty", i))
		}
	}
	if c.Redis == nil && c.Subscriber == nil {
		errs = append(errs, errors.New("set Redis (Redis mode) or Subscriber (embedded mode)"))
	}
	if err := c.Naming.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.MaxRetries < NoRetries {
		errs = append(errs, fmt.Errorf("field MaxRetries is %d, want >= %d", c.MaxRetries, NoRetries))
	}
	for name, v := range map[string]time.Duration{
		"MinBackoff": c.MinBackoff, "MaxBackoff": c.MaxBackoff, "GapWait": c.GapWait, "LeaseTTL": c.LeaseTTL,
		"MaxIdleTime": c.MaxIdleTime, "ClaimInterval": c.ClaimInterval,
	} {
		if v < 0 {
			errs = append(errs, fmt.Errorf("field %s is %s, want >= 0", name, v))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("subscriber: invalid config: %w", errors.Join(errs...))
	}
	return nil
}

// DeadLetterTopic returns the dead-letter topic of a group: prefix +
// group + ".dlq".
func DeadLetterTopic(prefix, group string) string { return prefix + group + ".dlq" }

// Stats counts what a Subscriber did since New.
type Stats struct {
	// Handled counts events whose handler succeeded.
	Handled uint64
	// Duplicates counts deliveries acknowledged without calling the
	// handler because the event id was seen.
	Duplicates uint64
	// Retries counts handler calls after a failure.
	Retries uint64
	// DeadLettered counts messages parked in the dead-letter stream.
	DeadLettered uint64
	// GapsWaited counts events held for a missing version;
	// GapsAccepted those handled anyway after GapWait.
	GapsWaited, GapsAccepted uint64
}

// Subscriber consumes events for one consumer group. Create it with New
// and call Run once.
type Subscriber struct {
	cfg     Config
	topics  []string
	dlq     string
	log     *slog.Logger
	sub     message.Subscriber
	ownSub  bool
	dead    message.Publisher
	ownDead bool
	ready   chan struct{}
	started atomic.Bool

	handled, duplicates, retries, deadLettered, gapsWaited, gapsAccepted atomic.Uint64
}

// New validates cfg and returns a Subscriber that has not subscribed yet.
// It fails on an invalid Config or when the Redis subscriber cannot be
// built; it does not contact Redis.
func New(cfg Config) (*Subscriber, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = DefaultMaxRetries
	} else if cfg.MaxRetries == NoRetries {
		cfg.MaxRetries = 0
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = max(DefaultMaxBackoff, cfg.MinBackoff)
	}
	if cfg.GapWait == 0 {
		cfg.GapWait = DefaultGapWait
	}
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.Consumer == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "consumer-" + watermill.NewShortUUID()
		}
		cfg.Consumer = host
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Subscriber{
		cfg:   cfg,
		dlq:   DeadLetterTopic(cfg.Naming.Prefix, cfg.Group),
		log:   cfg.Logger.With(slog.String("component", "subscriber"), slog.String("group", cfg.Group)),
		sub:   cfg.Subscriber,
		dead:  cfg.DeadLetter,
		ready: make(chan struct{}),
	}
	for _, t := range cfg.Topics {
		s.topics = append(s.topics, cfg.Naming.Expand(t)...)
	}
	if s.cfg.Dedupe == nil {
		if cfg.Redis != nil {
			s.cfg.Dedupe = NewRedisStore(cfg.Redis, RedisStoreOptions{Prefix: cfg.Naming.Prefix})
		} else {
			s.cfg.Dedupe = NewMemoryStore()
		}
	}
	if s.sub == nil {
		sub, err := stream.NewRedisSubscriber(cfg.Redis, stream.RedisSubscriberConfig{
			Group: cfg.Group, Consumer: cfg.Consumer, MaxIdleTime: cfg.MaxIdleTime, ClaimInterval: cfg.ClaimInterval,
		}, cfg.Logger)
		if err != nil {
			return nil, fmt.Errorf("subscriber: %w", err)
		}
		s.sub, s.ownSub = sub, true
	}
	if s.dead == nil && cfg.Redis != nil {
		pub, err := stream.NewRedisPublisher(cfg.Redis, cfg.Logger)
		if err != nil {
			return nil, fmt.Errorf("subscriber: %w", err)
		}
		// Behind a circuit breaker, like the relay's publisher: while
		// Redis is down, parking fails at once instead of waiting for
		// the client's timeouts on every retry.
		s.dead, s.ownDead = stream.NewBreakerPublisher(pub, stream.BreakerConfig{Name: s.dlq, Logger: cfg.Logger}), true
	}
	return s, nil
}

// Topics returns the topics (partitions included) the subscriber reads.
func (s *Subscriber) Topics() []string { return append([]string(nil), s.topics...) }

// DeadLetterTopic returns the topic parked messages go to.
func (s *Subscriber) DeadLetterTopic() string { return s.dlq }

// Ready is closed once Run has subscribed to every topic. Safe for
// concurrent use.
func (s *Subscriber) Ready() <-chan struct{} { return s.ready }

// Stats returns the subscriber's counters. Safe for concurrent use.
func (s *Subscriber) Stats() Stats {
	return Stats{
		Handled: s.handled.Load(), Duplicates: s.duplicates.Load(), Retries: s.retries.Load(),
		DeadLettered: s.deadLettered.Load(), GapsWaited: s.gapsWaited.Load(), GapsAccepted: s.gapsAccepted.Load(),
	}
}

// ErrAlreadyRun is returned by a second call of Run.
var ErrAlreadyRun = errors.New("subscriber: Run called twice")

// Run consumes until ctx ends, then returns nil after the messages in
// hand are finished or abandoned (an abandoned message is not
// acknowledged and comes back). Subscribing is retried while Redis is
// unreachable. It returns an error when a subscription ends while ctx is
// still live (the Watermill subscriber was closed), and ErrAlreadyRun
// when called again. Run closes the Redis subscriber and dead-letter
// publisher it built, never the ones given in Config.
func (s *Subscriber) Run(ctx context.Context, h Handler) error {
	if !s.started.CompareAndSwap(false, true) {
		return ErrAlreadyRun
	}
	if h == nil {
		return errors.New("subscriber: nil handler")
	}
	defer s.close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	if s.ownSub {
		for _, topic := range s.topics {
			if !s.drainPending(ctx, topic, h) {
				return nil
			}
		}
	}
	chans := make([]<-chan *message.Message, len(s.topics))
	for i, topic := range s.topics {
		ch, ok := s.subscribe(ctx, topic)
		if !ok {
			return nil
		}
		chans[i] = ch
	}
	close(s.ready)
	s.log.Info("subscriber: consuming", slog.Any("topics", s.topics))

	var wg sync.WaitGroup
	errs := make(chan error, len(s.topics))
	for i, topic := range s.topics {
		wg.Go(func() {
			if err := s.consume(ctx, topic, chans[i], h); err != nil {
				errs <- err
				cancel()
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func (s *Subscriber) close() {
	if s.ownSub {
		if err := s.sub.Close(); err != nil {
			s.log.Warn("subscriber: close", slog.Any("error", err))
		}
	}
	if s.ownDead {
		_ = s.dead.Close()
	}
}

// subscribe subscribes to topic, retrying until it works or ctx ends.
func (s *Subscriber) subscribe(ctx context.Context, topic string) (<-chan *message.Message, bool) {
	bo := s.backoff()
	for {
		ch, err := s.sub.Subscribe(ctx, topic)
		if err == nil {
			return ch, true
		}
		if ctx.Err() != nil {
			return nil, false
		}
		s.log.Warn("subscriber: subscribe failed; retrying", slog.String("topic", topic), slog.Any("error", err))
		if !sleep(ctx, bo.next()) {
			return nil, false
		}
	}
}

// consume handles one topic's messages until ctx ends or the channel
// closes.
func (s *Subscriber) consume(ctx context.Context, topic string, ch <-chan *message.Message, h Handler) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case msg, ok := <-ch:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("subscriber: subscription to %s ended", topic)
			}
			if s.process(ctx, topic, msg, h) {
				msg.Ack()
			}
		}
	}
}

// drainPending handles the entries this consumer read earlier but never
// acknowledged (XREADGROUP from id 0), in order, acknowledging each. It
// reports false when ctx ended.
func (s *Subscriber) drainPending(ctx context.Context, topic string, h Handler) bool {
	bo := s.backoff()
	for {
		err := s.cfg.Redis.XGroupCreateMkStream(ctx, topic, s.cfg.Group, "0").Err()
		if err == nil || isBusyGroup(err) {
			break
		}
		if ctx.Err() != nil {
			return false
		}
		s.log.Warn("subscriber: create consumer group failed; retrying", slog.String("topic", topic), slog.Any("error", err))
		if !sleep(ctx, bo.next()) {
			return false
		}
	}
	after := "0"
	for {
		res, err := s.cfg.Redis.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: s.cfg.Group, Consumer: s.cfg.Consumer, Streams: []string{topic, after}, Count: 100, Block: -1,
		}).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			if ctx.Err() != nil {
				return false
			}
			s.log.Warn("subscriber: read own pending entries failed; retrying", slog.String("topic", topic), slog.Any("error", err))
			if !sleep(ctx, bo.next()) {
				return false
			}
			continue
		}
		if len(res) == 0 || len(res[0].Messages) == 0 {
			return true
		}
		for _, xm := range res[0].Messages {
			after = xm.ID
			if xm.Values == nil {
				// Trimmed while pending: nothing left to handle.
				s.ack(ctx, topic, xm.ID)
				continue
			}
			msg := stream.MessageFromRedisEntry(xm.Values)
			if !s.process(ctx, topic, msg, h) {
				return false
			}
			s.ack(ctx, topic, xm.ID)
		}
	}
}

func (s *Subscriber) ack(ctx context.Context, topic, id string) {
	bo := s.backoff()
	for ctx.Err() == nil {
		err := s.cfg.Redis.XAck(ctx, topic, s.cfg.Group, id).Err()
		if err == nil {
			return
		}
		s.log.Warn("subscriber: XACK failed; retrying", slog.String("topic", topic), slog.Any("error", err))
		sleep(ctx, bo.next())
	}
}

func isBusyGroup(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "BUSYGROUP")
}

// process decodes, dedupes, orders and handles one message. It reports
// whether the message may be acknowledged: handled, a duplicate, or
// parked. False means ctx ended first.
func (s *Subscriber) process(ctx context.Context, topic string, msg *message.Message, h Handler) bool {
	if reason := msg.Metadata.Get(stream.UnmarshalErrorKey); reason != "" {
		return s.park(ctx, topic, msg, nil, "", "invalid_message", reason, 0)
	}
	e, err := stream.Decode(msg.Payload)
	if err != nil {
		return s.park(ctx, topic, msg, nil, "", "invalid_envelope", err.Error(), 0)
	}
	log := s.log.With(slog.String("event_id", e.ID.String()), slog.String("stream_id", e.StreamID),
		slog.Int64("stream_version", e.StreamVersion), slog.String("topic", topic))

	deadline := time.Now().Add(s.cfg.GapWait)
	wait := newBackoff(5*time.Millisecond, 500*time.Millisecond)
	waiting := false
	var p Progress
	for {
		var ok bool
		if p, ok = s.begin(ctx, e, wait); !ok {
			return false
		}
		expect := int64(1)
		if p.Known {
			expect = p.LastVersion + 1
		}
		switch {
		case p.Seen:
			s.release(ctx, e, p.Token)
			s.duplicates.Add(1)
			return true
		case p.Known && e.StreamVersion < expect:
			s.release(ctx, e, p.Token)
			reason := fmt.Sprintf("stream %s version %d arrived after version %d was processed", e.StreamID, e.StreamVersion, p.LastVersion)
			log.Warn("subscriber: event out of order; parking it", slog.Int64("last_processed", p.LastVersion))
			return s.park(ctx, topic, msg, &e, "", "out_of_order", reason, 0)
		case e.StreamVersion > expect:
			if !waiting {
				waiting = true
				s.gapsWaited.Add(1)
			}
			if time.Now().Before(deadline) {
				// Let the consumer that holds the missing version take
				// the lease meanwhile.
				s.release(ctx, e, p.Token)
				if !sleep(ctx, wait.next()) {
					return false
				}
				continue
			}
			s.gapsAccepted.Add(1)
			log.Warn("subscriber: stream version gap outlasted GapWait; handling the event anyway",
				slog.Int64("expected", expect))
		}
		break
	}

	var herr error
	attempts := 0
	bo := s.backoff()
	for {
		attempts++
		herr = s.call(ctx, h, e)
		if herr == nil || attempts > s.cfg.MaxRetries {
			break
		}
		if ctx.Err() != nil {
			s.release(context.WithoutCancel(ctx), e, p.Token)
			return false
		}
		log.Info("subscriber: handler failed; retrying", slog.Int("attempt", attempts), slog.Any("error", herr))
		s.retries.Add(1)
		if !sleep(ctx, bo.next()) {
			s.release(context.WithoutCancel(ctx), e, p.Token)
			return false
		}
	}
	if herr != nil {
		if ctx.Err() != nil {
			s.release(context.WithoutCancel(ctx), e, p.Token)
			return false
		}
		log.Error("subscriber: handler failed for good; parking the event", slog.Int("attempts", attempts), slog.Any("error", herr))
		return s.park(ctx, topic, msg, &e, p.Token, "handler_failed", herr.Error(), attempts)
	}
	if !s.markDone(ctx, e, p.Token) {
		return false
	}
	s.handled.Add(1)
	return true
}

// call runs the handler, turning a panic into an error.
func (s *Subscriber) call(ctx context.Context, h Handler, e Event) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panicked: %v", r)
		}
	}()
	return h(ctx, e)
}

// begin takes the stream's lease, waiting while another consumer holds it
// and retrying while the store fails, until ctx ends (false).
func (s *Subscriber) begin(ctx context.Context, e Event, wait *backoff) (Progress, bool) {
	bo := s.backoff()
	for {
		p, err := s.cfg.Dedupe.Begin(ctx, s.cfg.Group, e, s.cfg.LeaseTTL)
		switch {
		case err == nil:
			return p, true
		case ctx.Err() != nil:
			return Progress{}, false
		case errors.Is(err, ErrLeaseHeld):
			if !sleep(ctx, wait.next()) {
				return Progress{}, false
			}
		default:
			s.log.Warn("subscriber: dedupe store failed; retrying", slog.Any("error", err))
			if !sleep(ctx, bo.next()) {
				return Progress{}, false
			}
		}
	}
}

// release gives the lease back; a failure only delays the next holder
// until the lease expires.
func (s *Subscriber) release(ctx context.Context, e Event, token string) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.cfg.Dedupe.Release(ctx, s.cfg.Group, e, token); err != nil {
		s.log.Warn("subscriber: release stream lease failed", slog.Any("error", err))
	}
}

func (s *Subscriber) markDone(ctx context.Context, e Event, token string) bool {
	bo := s.backoff()
	for {
		err := s.cfg.Dedupe.MarkDone(ctx, s.cfg.Group, e, token)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		s.log.Warn("subscriber: dedupe store failed; retrying", slog.Any("error", err))
		if !sleep(ctx, bo.next()) {
			return false
		}
	}
}

// park publishes msg to the dead-letter topic and, when it is a decoded
// event that was not processed out of order, marks it done so that its
// stream's later events go on. It reports false when ctx ended first.
func (s *Subscriber) park(ctx context.Context, topic string, msg *message.Message, e *Event, token, reason, errText string, attempts int) bool {
	uuid := msg.UUID
	if uuid == "" {
		uuid = watermill.NewUUID()
	}
	dl := message.NewMessage(uuid, msg.Payload)
	for k, v := range msg.Metadata {
		dl.Metadata.Set(k, v)
	}
	dl.Metadata.Set("dlq_reason", reason)
	dl.Metadata.Set("dlq_error", errText)
	dl.Metadata.Set("dlq_group", s.cfg.Group)
	dl.Metadata.Set("dlq_topic", topic)
	dl.Metadata.Set("dlq_attempts", strconv.Itoa(attempts))
	dl.Metadata.Set("dlq_at", time.Now().UTC().Format(time.RFC3339Nano))
	dl.SetContext(ctx)
	if s.dead == nil {
		s.log.Error("subscriber: parked event dropped (no dead-letter publisher)", slog.String("reason", reason),
			slog.String("error", errText), slog.String("payload", string(msg.Payload)))
	} else {
		bo := s.backoff()
		for {
			err := s.dead.Publish(s.dlq, dl)
			if err == nil {
				break
			}
			if ctx.Err() == nil {
				s.log.Warn("subscriber: publish to the dead-letter stream failed; retrying", slog.Any("error", err))
			}
			if ctx.Err() != nil || !sleep(ctx, bo.next()) {
				if e != nil && token != "" {
					s.release(context.WithoutCancel(ctx), *e, token)
				}
				return false
			}
			dl = dl.Copy()
			dl.SetContext(ctx)
		}
	}
	s.deadLettered.Add(1)
	if e != nil && token != "" {
		return s.markDone(ctx, *e, token)
	}
	return true
}

func (s *Subscriber) backoff() *backoff { return newBackoff(s.cfg.MinBackoff, s.cfg.MaxBackoff) }

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

// backoff is capped exponential backoff with up to 20 % jitter.
type backoff struct {
	min, max time.Duration
	attempt  int
}

func newBackoff(lo, hi time.Duration) *backoff { return &backoff{min: lo, max: max(lo, hi)} }

func (b *backoff) next() time.Duration {
	d := b.min << min(b.attempt, 30)
	if d <= 0 || d > b.max {
		d = b.max
	}
	b.attempt++
	return d - time.Duration(rand.Int64N(int64(d)/5+1))
}
