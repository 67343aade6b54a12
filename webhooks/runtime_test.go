package webhooks_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/stream"
	"github.com/bookingengine/booking/webhooks"
	"github.com/bookingengine/booking/webhooks/webhookstest"
)

// clock is a settable clock for the Runtime's dispatcher.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// finishOne enqueues one event for a new endpoint of a new tenant and
// records its delivery as succeeded at at.
func finishOne(t *testing.T, rt *webhooks.Runtime, at time.Time) stream.Event {
	t.Helper()
	ctx := context.Background()
	tenant := uuid.New()
	_, err := rt.Service.Create(ctx, tenant, "admin", webhooks.Input{URL: "https://hooks.example.com/x", EventTypes: []string{"*"}})
	require.NoError(t, err)
	e := webhookstest.Event(tenant, "booking.created", "booking-"+uuid.NewString(), 1, 1)
	n, err := rt.Store.Enqueue(ctx, webhooks.Group, e, at)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	cs, err := rt.Store.Claim(ctx, at, time.Minute, 10)
	require.NoError(t, err)
	require.Len(t, cs, 1)
	_, err = rt.Store.Record(ctx, cs[0], webhooks.Outcome{
		Attempt: webhooks.Attempt{At: at, StatusCode: 200}, Result: webhooks.Succeeded, Status: webhooks.StatusSucceeded,
		Tries: 1, WindowStart: at, NextAttemptAt: at,
	}, webhooks.DisablePolicy{}, at)
	require.NoError(t, err)
	return e
}

func TestRuntimePrunesPastTheRetention(t *testing.T) {
	t.Parallel()
	es, _ := MustPostgres(t)
	for _, tc := range []struct {
		name string
		cfg  webhooks.Config
	}{
		{"postgres", webhooks.Config{Pool: es.Pool(), Events: es}},
		{"memory", webhooks.Config{Events: es}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			start := time.Now().UTC().Truncate(time.Microsecond)
			clk := &clock{t: start}
			cfg := tc.cfg
			cfg.Retention, cfg.Dispatcher.Now = time.Hour, clk.now
			rt, err := webhooks.Open(ctx, cfg)
			require.NoError(t, err)
			finishOne(t, rt, start)

			n, err := rt.Prune(ctx)
			require.NoError(t, err)
			require.Zero(t, n, "within the retention")
			clk.set(start.Add(61 * time.Minute))
			n, err = rt.Prune(ctx)
			require.NoError(t, err)
			if tc.cfg.Pool != nil {
				// The delivery and the group's record of the event id.
				require.GreaterOrEqual(t, n, int64(2))
			} else {
				require.EqualValues(t, 1, n)
			}
			require.Equal(t, n, rt.Pruned())
		})
	}
}

func TestRuntimePrunesOnASchedule(t *testing.T) {
	t.Parallel()
	es, _ := MustPostgres(t)
	start := time.Now().UTC().Truncate(time.Microsecond)
	clk := &clock{t: start}
	rt, err := webhooks.Open(context.Background(), webhooks.Config{
		Pool: es.Pool(), Events: es, Retention: time.Hour, PruneInterval: 10 * time.Millisecond,
		Dispatcher: webhooks.DispatcherConfig{Now: clk.now},
	})
	require.NoError(t, err)
	finishOne(t, rt, start)
	require.NoError(t, rt.Start(context.Background()))
	t.Cleanup(rt.Close)
	time.Sleep(50 * time.Millisecond)
	require.Zero(t, rt.Pruned())
	clk.set(start.Add(2 * time.Hour))
	deadline := time.Now().Add(10 * time.Second)
	for rt.Pruned() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	require.Positive(t, rt.Pruned(), "the background pruner ran")
}

func TestRuntimeNegativeRetentionKeepsEverything(t *testing.T) {
	t.Parallel()
	start := time.Now().UTC().Truncate(time.Microsecond)
	clk := &clock{t: start}
	es, _ := MustPostgres(t)
	rt, err := webhooks.Open(context.Background(), webhooks.Config{Events: es, Retention: -1, Dispatcher: webhooks.DispatcherConfig{Now: clk.now}})
	require.NoError(t, err)
	finishOne(t, rt, start)
	clk.set(start.AddDate(10, 0, 0))
	n, err := rt.Prune(context.Background())
	require.NoError(t, err)
	require.Zero(t, n)
}
