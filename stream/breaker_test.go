package stream_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/stream"
	"github.com/bookingengine/booking/stream/streamtest"
)

// breakerRig is a BreakerPublisher on a real Redis reached through a proxy
// that the test cuts and restores, and the transitions it reported.
type breakerRig struct {
	pub    *stream.BreakerPublisher
	proxy  *streamtest.Proxy
	direct redis.UniversalClient
	topic  string

	mu          sync.Mutex
	transitions []string
}

func newBreakerRig(t *testing.T, cfg stream.BreakerConfig) *breakerRig {
	t.Helper()
	r := streamtest.MustProxiedRedis(t)
	inner, err := stream.NewRedisPublisher(r.ViaProxy, nil)
	require.NoError(t, err)
	rig := &breakerRig{proxy: r.Proxy, direct: r.Direct, topic: r.Prefix + stream.TopicBooking}
	cfg.OnStateChange = func(from, to stream.BreakerState) {
		rig.mu.Lock()
		defer rig.mu.Unlock()
		rig.transitions = append(rig.transitions, from.String()+"->"+to.String())
	}
	rig.pub = stream.NewBreakerPublisher(inner, cfg)
	t.Cleanup(func() { _ = rig.pub.Close() })
	return rig
}

func (r *breakerRig) publish(ctx context.Context) error {
	msg := message.NewMessage(watermill.NewUUID(), []byte(`{}`))
	msg.SetContext(ctx)
	return r.pub.Publish(r.topic, msg)
}

func (r *breakerRig) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.transitions...)
}

func TestBreakerOpensAfterFailuresInARowAndClosesAfterATrial(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rig := newBreakerRig(t, stream.BreakerConfig{Name: "test", Failures: 3, OpenFor: 300 * time.Millisecond})

	require.NoError(t, rig.publish(ctx))
	require.Equal(t, stream.BreakerClosed, rig.pub.State())

	rig.proxy.Down()
	for i := range 3 {
		err := rig.publish(ctx)
		require.Error(t, err, "publish %d with Redis cut off", i)
		require.NotErrorIs(t, err, stream.ErrCircuitOpen, "publish %d reached Redis", i)
	}
	require.Equal(t, stream.BreakerOpen, rig.pub.State())

	// Open: Redis is reachable again, but nothing is sent until the open
	// period is over.
	rig.proxy.Up(t)
	err := rig.publish(ctx)
	require.ErrorIs(t, err, stream.ErrCircuitOpen)
	require.Contains(t, err.Error(), "test")
	require.EqualValues(t, 1, streamtest.CountEntries(t, rig.direct, rig.topic), "an open circuit sent a message")

	streamtest.Eventually(t, 5*time.Second, func() bool { return rig.pub.State() == stream.BreakerHalfOpen }, "half-open after the open period")
	require.NoError(t, rig.publish(ctx), "the trial publish")
	require.Equal(t, stream.BreakerClosed, rig.pub.State())
	require.EqualValues(t, 2, streamtest.CountEntries(t, rig.direct, rig.topic))
	require.Equal(t, []string{"closed->open", "open->half-open", "half-open->closed"}, rig.seen())
}

func TestBreakerReopensWhenTheTrialFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rig := newBreakerRig(t, stream.BreakerConfig{Name: "test", Failures: 1, OpenFor: 100 * time.Millisecond})

	rig.proxy.Down()
	require.Error(t, rig.publish(ctx))
	require.Equal(t, stream.BreakerOpen, rig.pub.State())
	streamtest.Eventually(t, 5*time.Second, func() bool { return rig.pub.State() == stream.BreakerHalfOpen }, "half-open after the open period")
	err := rig.publish(ctx)
	require.Error(t, err)
	require.NotErrorIs(t, err, stream.ErrCircuitOpen, "the trial reached Redis")
	require.Equal(t, stream.BreakerOpen, rig.pub.State())
	require.Equal(t, []string{"closed->open", "open->half-open", "half-open->open"}, rig.seen())
}

func TestBreakerIgnoresPublishesWhoseCallerGaveUp(t *testing.T) {
	t.Parallel()
	rig := newBreakerRig(t, stream.BreakerConfig{Name: "test", Failures: 2})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 5 {
		require.ErrorIs(t, rig.publish(ctx), context.Canceled)
	}
	require.Equal(t, stream.BreakerClosed, rig.pub.State(), "a cancelled publish says nothing about Redis")
	require.Empty(t, rig.seen())
	require.NoError(t, rig.publish(context.Background()))
}

func TestBreakerStateNames(t *testing.T) {
	t.Parallel()
	require.Equal(t, "closed", stream.BreakerClosed.String())
	require.Equal(t, "half-open", stream.BreakerHalfOpen.String())
	require.Equal(t, "open", stream.BreakerOpen.String())
	require.Equal(t, "BreakerState(7)", stream.BreakerState(7).String())
}
