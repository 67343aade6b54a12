package changefeed_test

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/eventstore"
	"github.com/bookingengine/booking/eventstore/postgres"
	"github.com/bookingengine/booking/eventstore/postgres/changefeed"
	"github.com/bookingengine/booking/internal/testenv"
)

// sink records what the feed passes on.
type sink struct {
	mu      sync.Mutex
	streams []string
	resets  int
}

func (s *sink) Invalidate(ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.streams = append(s.streams, ids...)
}

func (s *sink) InvalidateAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resets++
}

func (s *sink) snapshot() ([]string, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.streams), s.resets
}

// eventually polls cond every 10 ms until it holds or 10 s passed.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 10 s: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// start opens a store with the feed's migrations and runs a feed on it
// until the test ends.
func start(t *testing.T, retry time.Duration) (*postgres.Store, *changefeed.Feed, *sink) {
	t.Helper()
	url := testenv.NewDatabase(t)
	store, err := postgres.Open(context.Background(), url, postgres.Config{MaxConns: 4, Migrations: []postgres.MigrationSet{changefeed.Migrations()}})
	require.NoError(t, err)
	t.Cleanup(store.Close)
	f, err := changefeed.New(changefeed.Config{ConnConfig: store.Pool().Config().ConnConfig, Retry: retry, HealthInterval: 200 * time.Millisecond})
	require.NoError(t, err)
	s := &sink{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx, s) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	eventually(t, "the feed listens", f.Healthy)
	return store, f, s
}

func appendTo(t *testing.T, store *postgres.Store, stream string) {
	t.Helper()
	_, err := store.Append(context.Background(), eventstore.StreamAppend{StreamID: stream, TenantID: uuid.New(), Expected: eventstore.Any,
		Events: []eventstore.EventData{{ID: uuid.New(), Type: "x.changed", Version: 1, Data: json.RawMessage(`{}`)}}})
	require.NoError(t, err)
}

// TestFeedNotifiesCachedStreams: tenant and domain-guard appends reach the
// sink, others do not, and the first listen starts with InvalidateAll.
func TestFeedNotifiesCachedStreams(t *testing.T) {
	t.Parallel()
	store, _, s := start(t, time.Second)
	tenant, guard := "tenant-"+uuid.NewString(), "guard-domain-a.example.com"
	appendTo(t, store, "booking-"+uuid.NewString())
	appendTo(t, store, "guard-email-a@example.com")
	appendTo(t, store, tenant)
	appendTo(t, store, guard)
	eventually(t, "both cached streams announced", func() bool {
		got, _ := s.snapshot()
		return slices.Contains(got, tenant) && slices.Contains(got, guard)
	})
	got, resets := s.snapshot()
	require.Equal(t, []string{tenant, guard}, got, "only cached streams, in commit order")
	require.Equal(t, 1, resets)
}

// terminate ends the feed's session from another connection.
func terminate(t *testing.T, store *postgres.Store) {
	t.Helper()
	var n int
	require.NoError(t, store.Pool().QueryRow(context.Background(), `
		SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		 WHERE datname = current_database() AND application_name = $1`, changefeed.ApplicationName).Scan(&n))
	require.Equal(t, 1, n)
}

// TestFeedGap: when its session dies the feed reports itself unhealthy at
// once, and when it listens again it first invalidates everything, since
// what was announced in between is lost.
func TestFeedGap(t *testing.T) {
	t.Parallel()
	t.Run("Down", func(t *testing.T) {
		t.Parallel()
		store, f, _ := start(t, time.Hour)
		terminate(t, store)
		eventually(t, "the feed reports the lost session", func() bool { return !f.Healthy() })
	})
	t.Run("Back", func(t *testing.T) {
		t.Parallel()
		store, f, s := start(t, 50*time.Millisecond)
		terminate(t, store)
		eventually(t, "the feed listens again after invalidating everything", func() bool {
			_, resets := s.snapshot()
			return resets == 2 && f.Healthy()
		})
		tenant := "tenant-" + uuid.NewString()
		appendTo(t, store, tenant)
		eventually(t, "announced after the gap", func() bool {
			got, _ := s.snapshot()
			return slices.Contains(got, tenant)
		})
	})
}

// TestFeedUnreachable: a feed that cannot connect never reports itself
// healthy, never calls the sink, and stops when its context ends.
func TestFeedUnreachable(t *testing.T) {
	t.Parallel()
	cc, err := pgx.ParseConfig("postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=1")
	require.NoError(t, err)
	f, err := changefeed.New(changefeed.Config{ConnConfig: cc, Retry: 20 * time.Millisecond})
	require.NoError(t, err)
	s := &sink{}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	require.NoError(t, f.Run(ctx, s))
	require.False(t, f.Healthy())
	got, resets := s.snapshot()
	require.Empty(t, got)
	require.Zero(t, resets)
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	_, err := changefeed.New(changefeed.Config{Retry: -1, HealthInterval: -1})
	require.ErrorContains(t, err, "ConnConfig is required")
	require.ErrorContains(t, err, "Retry")
	require.ErrorContains(t, err, "HealthInterval")
}
