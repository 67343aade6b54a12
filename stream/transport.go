package stream

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/redis/go-redis/v9"
)

// NewRedisClient returns a client for a redis:// or rediss:// URL
// (redis://[user:password@]host:port/db). It does not connect: a relay
// must start, and commands succeed, while Redis is down. The caller closes
// the client after every publisher and subscriber built on it.
func NewRedisClient(url string) (redis.UniversalClient, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("stream: redis url: %w", err)
	}
	return redis.NewClient(opts), nil
}

// sharedClient keeps watermill-redisstream from closing a client it does
// not own: its Publisher.Close and Subscriber.Close close their client.
type sharedClient struct{ redis.UniversalClient }

// Close does nothing: the client's owner closes it.
func (sharedClient) Close() error { return nil }

// WatermillLogger adapts logger for Watermill, logging Watermill's info
// messages (one per message without subscribers on GoChannel, one per
// subscription) at debug level. A nil logger discards everything.
func WatermillLogger(logger *slog.Logger) watermill.LoggerAdapter {
	if logger == nil {
		return watermill.NopLogger{}
	}
	return watermill.NewSlogLoggerWithLevelMapping(logger, map[slog.Level]slog.Level{
		slog.LevelInfo: slog.LevelDebug,
	})
}

// NewRedisPublisher returns a watermill-redisstream publisher on client.
// It never trims a stream (no MAXLEN): trimming by length could drop
// entries that a consumer group has not read yet. See the package doc for
// the retention policy. Closing the publisher leaves client open. Publish
// is safe for concurrent use; it sends one XADD per message and returns
// the first error, after the messages before it were added.
func NewRedisPublisher(client redis.UniversalClient, logger *slog.Logger) (message.Publisher, error) {
	if client == nil {
		return nil, errors.New("stream: redis publisher: nil client")
	}
	return redisstream.NewPublisher(redisstream.PublisherConfig{
		Client:        sharedClient{client},
		DefaultMaxlen: 0, // never trim; see the package doc
	}, WatermillLogger(logger))
}

// RedisSubscriberConfig configures NewRedisSubscriber.
type RedisSubscriberConfig struct {
	// Group is the Redis consumer group. It is permanent: the group's
	// position lives in Redis under this name, so renaming it starts a
	// new group that reads every retained entry again.
	Group string
	// Consumer names this consumer within the group. Give a restarted
	// process the name it had (a host or pod name) so that it finds its
	// own pending entries; empty: a random name.
	Consumer string
	// MaxIdleTime is how long an entry may stay delivered but
	// unacknowledged before another consumer of the group claims it
	// (default 30 s). Keep a handler's whole retry budget below it.
	MaxIdleTime time.Duration
	// ClaimInterval is how often idle pending entries are looked for
	// (default 5 s).
	ClaimInterval time.Duration
	// BlockTime bounds one blocking read (default 100 ms); it is also how
	// quickly a subscription notices its context ended.
	BlockTime time.Duration
}

// Defaults of RedisSubscriberConfig.
const (
	DefaultMaxIdleTime   = 30 * time.Second
	DefaultClaimInterval = 5 * time.Second
	DefaultBlockTime     = 100 * time.Millisecond
)

// NewRedisSubscriber returns a watermill-redisstream subscriber of the
// consumer group cfg.Group on client. New groups start at the oldest
// retained entry ("0"), so a new consumer sees the whole retained history.
// A Nack redelivers the entry to the same consumer at once (it stays
// pending meanwhile); an entry that cannot be unmarshalled is handed on
// with an empty UUID and the metadata key UnmarshalErrorKey instead of
// stopping the subscription. Closing the subscriber leaves client open.
func NewRedisSubscriber(client redis.UniversalClient, cfg RedisSubscriberConfig, logger *slog.Logger) (message.Subscriber, error) {
	if client == nil {
		return nil, errors.New("stream: redis subscriber: nil client")
	}
	if cfg.Group == "" {
		return nil, errors.New("stream: redis subscriber: empty consumer group")
	}
	if cfg.MaxIdleTime <= 0 {
		cfg.MaxIdleTime = DefaultMaxIdleTime
	}
	if cfg.ClaimInterval <= 0 {
		cfg.ClaimInterval = DefaultClaimInterval
	}
	if cfg.BlockTime <= 0 {
		cfg.BlockTime = DefaultBlockTime
	}
	return redisstream.NewSubscriber(redisstream.SubscriberConfig{
		Client:                        sharedClient{client},
		Unmarshaller:                  tolerantUnmarshaller{},
		Consumer:                      cfg.Consumer,
		ConsumerGroup:                 cfg.Group,
		OldestId:                      "0",
		BlockTime:                     cfg.BlockTime,
		ClaimInterval:                 cfg.ClaimInterval,
		MaxIdleTime:                   cfg.MaxIdleTime,
		DisableIndefiniteInitialBlock: true,
	}, WatermillLogger(logger))
}

// UnmarshalErrorKey is the metadata key of a message whose Redis entry
// could not be unmarshalled; its value is the error.
const UnmarshalErrorKey = "unmarshal_error"

// tolerantUnmarshaller turns an unreadable entry into a message that says
// so: watermill-redisstream ends the whole subscription when its
// unmarshaller fails, and one foreign XADD must not stop a consumer.
type tolerantUnmarshaller struct{}

// Unmarshal never fails: see tolerantUnmarshaller.
func (tolerantUnmarshaller) Unmarshal(values map[string]any) (msg *message.Message, err error) {
	defer func() {
		if r := recover(); r != nil {
			msg, err = poisoned(values, fmt.Errorf("panic: %v", r)), nil
		}
	}()
	msg, err = redisstream.DefaultMarshallerUnmarshaller{}.Unmarshal(values)
	if err != nil {
		return poisoned(values, err), nil
	}
	return msg, nil
}

func poisoned(values map[string]any, err error) *message.Message {
	var payload []byte
	if p, ok := values["payload"].(string); ok {
		payload = []byte(p)
	}
	msg := message.NewMessage("", payload)
	msg.Metadata.Set(UnmarshalErrorKey, err.Error())
	return msg
}

// NewGoChannel returns the in-process pub/sub of embedded mode (no
// REDIS_URL). Its semantics differ from Redis in ways the relay and the
// subscribers rely on:
//
//   - Publish returns only after every current subscriber of the topic
//     has acknowledged the message, so messages of a topic arrive in
//     publish order and the relay checkpoints only what in-process
//     consumers have handled; a slow consumer slows the relay.
//   - A message published while a topic has no subscriber is dropped:
//     start every subscriber (and wait for its Ready) before the relay.
//   - Each subscription receives every message: there are no consumer
//     groups, and one process is one consumer per group.
//
// Safe for concurrent use. Close it after the relay and the subscribers.
func NewGoChannel(logger *slog.Logger) *gochannel.GoChannel {
	return gochannel.NewGoChannel(gochannel.Config{
		BlockPublishUntilSubscriberAck: true,
	}, WatermillLogger(logger))
}

// MessageFromRedisEntry converts the values of a Redis stream entry written
// by a watermill-redisstream publisher into a message, as a subscriber
// built by NewRedisSubscriber would: an unreadable entry yields a message
// with an empty UUID and the metadata key UnmarshalErrorKey. For consumers
// that read entries themselves (XREADGROUP of their own pending entries).
func MessageFromRedisEntry(values map[string]any) *message.Message {
	msg, _ := tolerantUnmarshaller{}.Unmarshal(values)
	return msg
}
