// Package idempotencytest is the contract suite every http.IdempotencyStore
// must pass: the memory store runs it here, the PostgreSQL store runs it
// against a real database, so both keep the same promises.
package idempotencytest

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	bhttp "github.com/bookingengine/booking/http"
)

// Clock is a settable clock for IdempotencyOptions.Now. Safe for concurrent
// use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock stopped at start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// NewStore returns an empty store using opts. Stores must take their clock
// from opts.Now (a SQL store passes it as a parameter instead of calling
// now()), or the suite cannot move time.
type NewStore func(t *testing.T, opts bhttp.IdempotencyOptions) bhttp.IdempotencyStore

// Lease and TTL the suite configures.
const (
	Lease = time.Minute
	TTL   = 24 * time.Hour
)

func fp(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func created() bhttp.StoredResponse {
	return bhttp.StoredResponse{
		Status: http.StatusCreated,
		Header: http.Header{"Content-Type": {"application/json"}, "Location": {"/bookings/1"}, "Etag": {`"1"`}, "X-Position": {"42"}},
		Body:   []byte(`{"id":"1"}`),
	}
}

// Run runs the contract suite. Each subtest gets its own store.
func Run(t *testing.T, newStore NewStore) {
	t.Helper()
	ctx := context.Background()
	setup := func(t *testing.T) (bhttp.IdempotencyStore, *Clock) {
		clock := NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
		return newStore(t, bhttp.IdempotencyOptions{TTL: TTL, Lease: Lease, Now: clock.Now}), clock
	}

	tests := []struct {
		name string
		run  func(t *testing.T, s bhttp.IdempotencyStore, c *Clock)
	}{
		{"first begin claims", func(t *testing.T, s bhttp.IdempotencyStore, _ *Clock) {
			got, err := s.Begin(ctx, "scope", "k", fp("a"))
			require.NoError(t, err)
			require.Nil(t, got)
		}},
		{"completed is replayed", func(t *testing.T, s bhttp.IdempotencyStore, _ *Clock) {
			_, err := s.Begin(ctx, "scope", "k", fp("a"))
			require.NoError(t, err)
			require.NoError(t, s.Complete(ctx, "scope", "k", created()))
			got, err := s.Begin(ctx, "scope", "k", fp("a"))
			require.NoError(t, err)
			require.NotNil(t, got)
			want := created()
			require.Equal(t, want.Status, got.Status)
			require.Equal(t, want.Body, got.Body)
			for k := range want.Header {
				require.Equal(t, want.Header.Values(k), got.Header.Values(k), k)
			}
		}},
		{"replays are copies", func(t *testing.T, s bhttp.IdempotencyStore, _ *Clock) {
			_, err := s.Begin(ctx, "scope", "k", fp("a"))
			require.NoError(t, err)
			require.NoError(t, s.Complete(ctx, "scope", "k", created()))
			got, err := s.Begin(ctx, "scope", "k", fp("a"))
			require.NoError(t, err)
			got.Body[0] = 'X'
			got.Header.Set("Location", "/elsewhere")
			again, err := s.Begin(ctx, "scope", "k", fp("a"))
			require.NoError(t, err)
			require.Equal(t, created().Body, again.Body)
			require.Equal(t, "/bookings/1", again.Header.Get("Location"))
		}},
		{"other fingerprint while in progress", func(t *testing.T, s bhttp.IdempotencyStore, _ *Clock) {
			_, err := s.Begin(ctx, "scope", "k", fp("a"))
			require.NoError(t, err)
			_, err = s.Begin(ctx, "scope", "k", fp("b"))
			require.ErrorIs(t, err, bhttp.ErrIdempotencyKeyReused)
		}},
		{"other fingerprint after completion", func(t *testing.T, s bhttp.IdempotencyStore, _ *Clock) {
			_, err := s.Begin(ctx, "scope", "k", fp("a"))
			require.NoError(t, err)
			require.NoError(t, s.Complete(ctx, "scope", "k", created()))
			_, err = s.Begin(ctx, "scope", "k", fp("b"))
			require.ErrorIs(t, err, bhttp.ErrIdempotencyKeyReused)
		}},
		{"in progress within the lease", func(t *testing.T, s bhttp.IdempotencyStore, c *Clock) {
			_, err := s.Begin(ctx, "scope", "k", fp("a"))
			require.NoError(t, err)
			c.Advance(Lease - time.Second)
			_, err = s.Begin(ctx, "scope", "k", fp("a"))
			require.ErrorIs(t, err, bhttp.ErrIdempotencyInProgress)
		}},
		{"lease expired is taken over once", func(t *testing.T, s bhttp.IdempotencyStore, c *Clock) {
			_, err := s.Begin(ctx, "scope", "k", fp("a"))
			require.NoError(t, err)
			c.Advance(Lease + time.Second)
			got, err := s.Begin(ctx, "scope", "k", fp("a"))
			require.NoError(t, err)
			require.Nil(t, got)
			_, err = s.Begin(ctx, "scope", "k", fp("a"))
			require.ErrorIs(t, err, bhttp.ErrIdempotencyInProgress, "the takeover renews the lease")
		}},
		{"abandon frees the key", func(t *testing.T, s bhttp.IdempotencyStore, _ *Clock) {
			_, err := s.Begin(ctx, "scope", "k", fp("a"))
			require.NoError(t, err)
			require.NoError(t, s.Abandon(ctx, "scope", "k"))
			got, err := s.Begin(ctx, "scope", "k", fp("b"))
			require.NoError(t, err, "an abandoned key may even carry another request")
			require.Nil(t, got)
		}},
		{"abandon keeps a completed record", func(t *testing.T, s bhttp.IdempotencyStore, _ *Clock) {
			_, err := s.Begin(ctx, "scope", "k", fp("a"))
			require.NoError(t, err)
			require.NoError(t, s.Complete(ctx, "scope", "k", created()))
			require.NoError(t, s.Abandon(ctx, "scope", "k"))
			got, err := s.Begin(ctx, "scope", "k", fp("a"))
			require.NoError(t, err)
			require.NotNil(t, got)
		}},
		{"abandon and complete of unknown keys are no-ops", func(t *testing.T, s bhttp.IdempotencyStore, _ *Clock) {
			require.NoError(t, s.Abandon(ctx, "scope", "nope"))
			require.NoError(t, s.Complete(ctx, "scope", "nope", created()))
			got, err := s.Begin(ctx, "scope", "nope", fp("a"))
			require.NoError(t, err)
			require.Nil(t, got)
		}},
		{"records expire after the TTL", func(t *testing.T, s bhttp.IdempotencyStore, c *Clock) {
			_, err := s.Begin(ctx, "scope", "k", fp("a"))
			require.NoError(t, err)
			require.NoError(t, s.Complete(ctx, "scope", "k", created()))
			c.Advance(TTL + time.Second)
			got, err := s.Begin(ctx, "scope", "k", fp("b"))
			require.NoError(t, err)
			require.Nil(t, got)
		}},
		{"scopes are independent", func(t *testing.T, s bhttp.IdempotencyStore, _ *Clock) {
			_, err := s.Begin(ctx, "tenant-a:user-1", "k", fp("a"))
			require.NoError(t, err)
			require.NoError(t, s.Complete(ctx, "tenant-a:user-1", "k", created()))
			got, err := s.Begin(ctx, "tenant-a:user-2", "k", fp("a"))
			require.NoError(t, err)
			require.Nil(t, got)
		}},
		{"concurrent begins claim once", func(t *testing.T, s bhttp.IdempotencyStore, _ *Clock) {
			const n = 32
			var (
				wg      sync.WaitGroup
				mu      sync.Mutex
				claimed int
				busy    int
			)
			for range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					got, err := s.Begin(ctx, "scope", "race", fp("a"))
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil && got == nil:
						claimed++
					case errors.Is(err, bhttp.ErrIdempotencyInProgress):
						busy++
					}
				}()
			}
			wg.Wait()
			require.Equal(t, 1, claimed)
			require.Equal(t, n-1, busy)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, c := setup(t)
			tt.run(t, s, c)
		})
	}
}
