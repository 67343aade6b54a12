package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/sony/gobreaker/v2"
)

// Defaults of BreakerConfig.
const (
	DefaultBreakerFailures = 5
	DefaultBreakerOpenFor  = 5 * time.Second
)

// ErrCircuitOpen is returned (wrapped) by BreakerPublisher.Publish while
// the circuit is open: the message was not sent, and the publisher behind
// was not called.
var ErrCircuitOpen = errors.New("stream: publisher circuit open")

// BreakerState is the state of a BreakerPublisher's circuit.
type BreakerState int

// The states of a circuit, in the order of their gauge values.
const (
	// BreakerClosed: publishes go through.
	BreakerClosed BreakerState = iota
	// BreakerHalfOpen: the open period is over; one trial publish goes
	// through, and its outcome closes or opens the circuit again.
	BreakerHalfOpen
	// BreakerOpen: publishes fail at once with ErrCircuitOpen.
	BreakerOpen
)

// String returns "closed", "half-open" or "open".
func (s BreakerState) String() string {
	switch s {
	case BreakerClosed:
		return "closed"
	case BreakerHalfOpen:
		return "half-open"
	case BreakerOpen:
		return "open"
	}
	return fmt.Sprintf("BreakerState(%d)", int(s))
}

// BreakerConfig configures NewBreakerPublisher. The zero value takes the
// defaults.
type BreakerConfig struct {
	// Name identifies the circuit in logs and metrics ("relay", a consumer
	// group's dead letters, …).
	Name string
	// Failures is how many publishes in a row must fail to open the
	// circuit (default DefaultBreakerFailures).
	Failures uint32
	// OpenFor is how long the circuit stays open before a trial publish
	// (default DefaultBreakerOpenFor).
	OpenFor time.Duration
	// OnStateChange, when set, is called on every transition, after it
	// was logged. It must not block.
	OnStateChange func(from, to BreakerState)
	// Logger receives the transitions; nil discards them.
	Logger *slog.Logger
}

// BreakerPublisher is a circuit breaker (sony/gobreaker) in front of a
// Watermill publisher, for Redis: while Redis is down, every XADD waits
// for the client's dial and read timeouts before it fails, and a relay
// that publishes several topics at once would hold that many connections
// in those waits. After Failures publishes in a row failed, the circuit
// opens and Publish fails at once with ErrCircuitOpen, without touching
// Redis, for OpenFor; then one trial publish goes through (half-open), and
// its success closes the circuit. A publish that failed because its
// message's context ended counts neither way. The caller keeps retrying
// with its own backoff: the breaker only makes the failures cheap and
// visible (State, OnStateChange). Safe for concurrent use.
type BreakerPublisher struct {
	pub message.Publisher
	cb  *gobreaker.CircuitBreaker[struct{}]
}

// NewBreakerPublisher wraps pub in a circuit breaker. Closing the
// BreakerPublisher closes pub.
func NewBreakerPublisher(pub message.Publisher, cfg BreakerConfig) *BreakerPublisher {
	if cfg.Failures == 0 {
		cfg.Failures = DefaultBreakerFailures
	}
	if cfg.OpenFor <= 0 {
		cfg.OpenFor = DefaultBreakerOpenFor
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With(slog.String("circuit", cfg.Name))
	failures := cfg.Failures
	return &BreakerPublisher{
		pub: pub,
		cb: gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
			Name:        cfg.Name,
			MaxRequests: 1,
			Timeout:     cfg.OpenFor,
			ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= failures },
			IsExcluded: func(err error) bool {
				return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
			},
			OnStateChange: func(_ string, from, to gobreaker.State) {
				f, t := breakerState(from), breakerState(to)
				switch t {
				case BreakerOpen:
					log.Warn("publisher circuit opened: publishes fail at once until a trial succeeds",
						slog.String("from", f.String()), slog.Duration("open_for", cfg.OpenFor))
				default:
					log.Info("publisher circuit "+t.String(), slog.String("from", f.String()))
				}
				if cfg.OnStateChange != nil {
					cfg.OnStateChange(f, t)
				}
			},
		}),
	}
}

func breakerState(s gobreaker.State) BreakerState {
	switch s {
	case gobreaker.StateOpen:
		return BreakerOpen
	case gobreaker.StateHalfOpen:
		return BreakerHalfOpen
	}
	return BreakerClosed
}

// Publish publishes through the circuit. While it is open (or a trial is
// under way) it returns an error wrapping ErrCircuitOpen at once.
func (b *BreakerPublisher) Publish(topic string, msgs ...*message.Message) error {
	_, err := b.cb.Execute(func() (struct{}, error) {
		err := b.pub.Publish(topic, msgs...)
		if err != nil && len(msgs) > 0 {
			// A publish abandoned because its caller gave up is no
			// verdict on Redis.
			if cerr := msgs[0].Context().Err(); cerr != nil {
				err = fmt.Errorf("%w (%w)", err, cerr)
			}
		}
		return struct{}{}, err
	})
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return fmt.Errorf("%w (%s): %w", ErrCircuitOpen, b.cb.Name(), err)
	}
	return err
}

// State returns the circuit's current state.
func (b *BreakerPublisher) State() BreakerState { return breakerState(b.cb.State()) }

// Close closes the publisher behind.
func (b *BreakerPublisher) Close() error { return b.pub.Close() }
