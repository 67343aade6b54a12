package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	bhttp "github.com/bookingengine/booking/http"
	"github.com/bookingengine/booking/internal/testenv"
)

// startBusE2E starts bookingd with cfg (its address, secret, log format
// and shutdown timeout filled in) and returns a read-side client on it and
// the running Main, stopped when tb ends.
func startBusE2E(tb testing.TB, cfg Config) (*readSideClient, *Main) {
	tb.Helper()
	cfg.HTTPAddr, cfg.JWTSecret, cfg.LogFormat, cfg.ShutdownTimeout = "127.0.0.1:0", readSideSecret, "text", 5*time.Second
	var logs strings.Builder
	var mu sync.Mutex
	m := NewMain(cfg)
	m.Logger = slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(tb, m.Run(ctx))
	minter, err := bhttp.NewMinter(readSideSecret)
	require.NoError(tb, err)
	c := &readSideClient{base: "http://" + m.Addr, minter: minter, http: &http.Client{Timeout: 30 * time.Second}}
	tb.Cleanup(func() {
		require.NoError(tb, m.Close())
		c.http.CloseIdleConnections()
		if tb.Failed() {
			mu.Lock()
			tb.Logf("bookingd log:\n%s", logs.String())
			mu.Unlock()
		}
	})
	return c, m
}

// deadRedisURL returns a Redis URL on a local port where nothing listens.
func deadRedisURL(tb testing.TB) string {
	tb.Helper()
	return fmt.Sprintf("redis://127.0.0.1:%d/0", faultFreePort(tb))
}

// TestReadYourWritesBusE2E: with bookingd's projections fed by the bus,
// every command followed by a query carrying its X-Position as
// X-Min-Position sees the write, in Redis mode (each projection a
// consumer group, the events applied through it), in embedded mode
// (GoChannel; TestReadYourWritesE2E), and with Redis unreachable, where
// the projectors apply the events from the store after their grace.
func TestReadYourWritesBusE2E(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		cfg    func(t *testing.T) Config
		viaBus bool
	}{
		{"PostgresRedis", func(t *testing.T) Config {
			return Config{DatabaseURL: testenv.NewDatabase(t), RedisURL: "redis://" + startRedis(t) + "/0"}
		}, true},
		{"MemoryRedis", func(t *testing.T) Config {
			return Config{RedisURL: "redis://" + startRedis(t) + "/0"}
		}, true},
		{"PostgresRedisDown", func(t *testing.T) Config {
			return Config{DatabaseURL: testenv.NewDatabase(t), RedisURL: deadRedisURL(t), ProjectionGrace: 200 * time.Millisecond}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, m := startBusE2E(t, tc.cfg(t))
			require.Len(t, m.readSide.Feeds, len(m.readSide.Projections), "the projections consume the bus")
			readYourWrites(t, c)
			var applied uint64
			var healed int64
			for i, f := range m.readSide.Feeds {
				applied += f.Stats().Applied
				healed += m.readSide.Runners[i].Healed()
			}
			if tc.viaBus {
				require.Positive(t, applied, "events reached the projections through their consumer groups")
			} else {
				require.Zero(t, applied, "nothing came through Redis")
				require.Positive(t, healed, "the projectors applied the events from the store")
			}

			// Every projection reports its lag, zero once caught up.
			require.Eventually(t, func() bool {
				body := metricsOf(t, c)
				for _, p := range m.readSide.Projections {
					if !strings.Contains(body, fmt.Sprintf("%s{projection=%q} 0\n", bhttp.MetricProjectionLag, p.Name())) {
						return false
					}
				}
				return true
			}, 20*time.Second, 50*time.Millisecond, "every projection's lag falls to 0")
		})
	}
}

// TestProjectionLagReadinessE2E: a projection that falls behind by more
// than PROJECTION_MAX_LAG events (here: the bus is unreachable and the
// grace is long) fails /readyz, naming the projection, and reports its
// lag; it is ready again once it has caught up.
func TestProjectionLagReadinessE2E(t *testing.T) {
	t.Parallel()
	c, m := startBusE2E(t, Config{DatabaseURL: testenv.NewDatabase(t), RedisURL: deadRedisURL(t),
		ProjectionGrace: time.Hour, ProjectionMaxLag: 3})
	ready := func() (int, string) {
		resp, err := c.http.Get(c.base + "/readyz")
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(body)
	}
	status, body := ready()
	require.Equal(t, http.StatusOK, status, body)

	platform := c.token(t, "platform-admin", bhttp.RolePlatformAdmin, uuid.Nil)
	for range 5 {
		c.must(t, http.StatusCreated, http.MethodPost, "/tenants", platform, uuid.Nil, 0, map[string]any{
			"name": "Lag", "domain": "lag-" + uuid.NewString()[:8] + ".example.com",
		})
	}
	status, body = ready()
	require.Equal(t, http.StatusServiceUnavailable, status, body)
	require.Contains(t, body, "projection catalog")
	var lag int64
	for _, line := range strings.Split(metricsOf(t, c), "\n") {
		if v, ok := strings.CutPrefix(line, bhttp.MetricProjectionLag+`{projection="catalog"} `); ok {
			_, err := fmt.Sscan(v, &lag)
			require.NoError(t, err)
		}
	}
	require.GreaterOrEqual(t, lag, int64(5), "five tenants created, none applied")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := m.readSide.CatchUp(ctx)
	require.NoError(t, err)
	status, body = ready()
	require.Equal(t, http.StatusOK, status, body)
}

// metricsOf returns the body of GET /metrics.
func metricsOf(t *testing.T, c *readSideClient) string {
	t.Helper()
	resp, err := c.http.Get(c.base + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(body)
}

// TestProjectionConfig reads the read side's knobs from the environment
// and flags, and reports every bad one.
func TestProjectionConfig(t *testing.T) {
	t.Parallel()
	getenv := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	c, err := ConfigFromArgs(nil, getenv(nil))
	require.NoError(t, err)
	require.Equal(t, "bus", c.ProjectionFeed)
	require.Equal(t, 2*time.Second, c.ProjectionGrace)
	require.Equal(t, int64(defaultProjectionMaxLag), c.ProjectionMaxLag)
	require.Zero(t, c.ProjectionBusBatch, "the read side's default")

	c, err = ConfigFromArgs(nil, getenv(map[string]string{"PROJECTION_FEED": "store", "PROJECTION_GRACE": "500ms", "PROJECTION_MAX_LAG": "7",
		"PROJECTION_BUS_BATCH": "1"}))
	require.NoError(t, err)
	require.Equal(t, "store", c.ProjectionFeed)
	require.Equal(t, 500*time.Millisecond, c.ProjectionGrace)
	require.Equal(t, int64(7), c.ProjectionMaxLag)
	require.Equal(t, 1, c.ProjectionBusBatch)

	c, err = ConfigFromArgs([]string{"--projection-feed=bus", "--projection-grace=3s", "--projection-max-lag=9", "--projection-bus-batch=64"},
		getenv(map[string]string{"PROJECTION_FEED": "store"}))
	require.NoError(t, err)
	require.Equal(t, "bus", c.ProjectionFeed)
	require.Equal(t, 3*time.Second, c.ProjectionGrace)
	require.Equal(t, int64(9), c.ProjectionMaxLag)
	require.Equal(t, 64, c.ProjectionBusBatch)

	_, err = ConfigFromArgs(nil, getenv(map[string]string{"PROJECTION_FEED": "kafka", "PROJECTION_GRACE": "soon", "PROJECTION_MAX_LAG": "-1",
		"PROJECTION_BUS_BATCH": "many"}))
	require.ErrorContains(t, err, `projection feed "kafka"`)
	require.ErrorContains(t, err, `PROJECTION_GRACE="soon"`)
	require.ErrorContains(t, err, "projection max lag must not be negative")
	require.ErrorContains(t, err, `PROJECTION_BUS_BATCH="many"`)
	_, err = ConfigFromArgs([]string{"--projection-bus-batch=-2"}, getenv(nil))
	require.ErrorContains(t, err, "projection bus batch must not be negative")
}

// TestProjectorsOffE2E: a bookingd with PROJECTORS=off runs no projector
// and consumes nothing, and its queries with X-Min-Position see the
// writes that another bookingd's projectors apply to the shared read
// models.
func TestProjectorsOffE2E(t *testing.T) {
	t.Parallel()
	c, err := ConfigFromArgs(nil, func(k string) string { return map[string]string{"PROJECTORS": "off"}[k] })
	require.NoError(t, err)
	require.True(t, c.DisableProjectors)
	_, err = ConfigFromArgs(nil, func(k string) string { return map[string]string{"PROJECTORS": "maybe"}[k] })
	require.ErrorContains(t, err, `PROJECTORS="maybe"`)

	db := testenv.NewDatabase(t)
	_, worker := startBusE2E(t, Config{DatabaseURL: db, DisableAPI: true})
	require.NotEmpty(t, worker.readSide.Runners)
	api, m := startBusE2E(t, Config{DatabaseURL: db, DisableRelay: true, DisableProjectors: true})
	require.Empty(t, m.readSide.Runners)
	require.Empty(t, m.readSide.Feeds)
	readYourWrites(t, api)
}
