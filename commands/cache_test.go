package commands_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bookingengine/booking/commands"
	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/eventstore"
	"github.com/stretchr/testify/require"
)

// feed is an InvalidationFeed whose health the test sets.
type feed struct{ down atomic.Bool }

func (f *feed) Healthy() bool { return !f.down.Load() }

// allDay is the fixture's week, open around the clock.
func allDay() *domain.WeeklyHours {
	day := []domain.TimeRange{{Start: "00:00", End: "24:00"}}
	return &domain.WeeklyHours{"mon": day, "tue": day, "wed": day, "thu": day, "fri": day, "sat": day, "sun": day}
}

// changeMaxDuration sets the tenant's longest booking through h.
func (f fixture) changeMaxDuration(t *testing.T, h *commands.Handlers, minutes int) {
	t.Helper()
	_, err := h.ChangeTenantSettings(context.Background(), f.admin, commands.ChangeTenantSettings{TenantID: f.tenant,
		Settings: domain.SettingsInput{BusinessHours: allDay(), MaxDurationMinutes: intp(minutes)}})
	require.NoError(t, err)
}

// TestCacheTopUpNeverUsesASupersededPolicy: a process whose cache holds
// the tenant checks the next booking against settings another process
// changed since, with no invalidation at all, because a command tops the
// cached tenant up in its own round trip.
func TestCacheTopUpNeverUsesASupersededPolicy(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 1, domain.SettingsInput{})
	ctx := context.Background()
	res, err := f.book(ctx, f.admin, at(1, 9, 0), at(1, 10, 0))
	require.NoError(t, err)
	require.Equal(t, 1, res.View.(domain.BookingView).PolicyVersion)

	other := commands.New(f.store, commands.WithClock(func() time.Time { return clock }))
	f.changeMaxDuration(t, other, 30)
	_, err = f.book(ctx, f.admin, at(2, 9, 0), at(2, 10, 0))
	var rule *domain.RuleError
	require.ErrorAs(t, err, &rule, "booked under the superseded policy")
	require.Equal(t, domain.CodeDurationOutOfRange, rule.Rule)

	res, err = f.book(ctx, f.admin, at(2, 9, 0), at(2, 9, 30))
	require.NoError(t, err)
	require.Equal(t, 2, res.View.(domain.BookingView).PolicyVersion)
	// The policy of the other commands (holds, reschedules) too.
	_, err = f.h.PlaceHold(ctx, f.admin, commands.PlaceHold{Request: domain.HoldRequest{ResourceID: f.resource, ClientID: f.client, Start: at(3, 9, 0), End: at(3, 10, 0), Seats: 1, TTLMinutes: 5}})
	require.ErrorAs(t, err, &rule)
}

// TestCacheTrustedReads covers the reads the cache answers without the
// store (GET of a tenant and its settings, tenant resolution by domain):
// a change by this process shows at once; one by another process shows
// after its invalidation arrives, or after MaxAge without one, or at once
// while the invalidation feed is down.
func TestCacheTrustedReads(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	version := func(t *testing.T, h *commands.Handlers, f fixture) int {
		t.Helper()
		tn, err := h.Tenant(ctx, f.admin, f.tenant)
		require.NoError(t, err)
		return tn.PolicyVersion()
	}
	setup := func(t *testing.T, cfg commands.CacheConfig) (fixture, *commands.Handlers, *commands.Handlers) {
		f := newFixture(t, 1, domain.SettingsInput{})
		reader := commands.New(f.store, commands.WithClock(func() time.Time { return clock }), commands.WithCache(cfg))
		writer := commands.New(f.store, commands.WithClock(func() time.Time { return clock }))
		require.Equal(t, 1, version(t, reader, f))
		return f, reader, writer
	}

	t.Run("OwnChangeAtOnce", func(t *testing.T) {
		t.Parallel()
		f, reader, _ := setup(t, commands.CacheConfig{MaxAge: time.Hour, Invalidations: &feed{}})
		f.changeMaxDuration(t, reader, 30)
		require.Equal(t, 2, version(t, reader, f))
	})
	t.Run("OtherProcessAfterInvalidation", func(t *testing.T) {
		t.Parallel()
		f, reader, writer := setup(t, commands.CacheConfig{MaxAge: time.Hour, Invalidations: &feed{}})
		f.changeMaxDuration(t, writer, 30)
		require.Equal(t, 1, version(t, reader, f), "served from the cache until the invalidation arrives")
		reader.Invalidate(domain.TenantStream(f.tenant))
		require.Equal(t, 2, version(t, reader, f))
	})
	t.Run("AfterGapEverything", func(t *testing.T) {
		t.Parallel()
		f, reader, writer := setup(t, commands.CacheConfig{MaxAge: time.Hour, Invalidations: &feed{}})
		f.changeMaxDuration(t, writer, 30)
		reader.InvalidateAll()
		require.Equal(t, 2, version(t, reader, f))
	})
	t.Run("SafetyBound", func(t *testing.T) {
		t.Parallel()
		f, reader, writer := setup(t, commands.CacheConfig{MaxAge: 50 * time.Millisecond, Invalidations: &feed{}})
		f.changeMaxDuration(t, writer, 30)
		deadline := time.Now().Add(5 * time.Second)
		for version(t, reader, f) != 2 {
			require.True(t, time.Now().Before(deadline), "a lost invalidation kept the old settings past MaxAge")
			time.Sleep(10 * time.Millisecond)
		}
	})
	t.Run("FeedDown", func(t *testing.T) {
		t.Parallel()
		fd := &feed{}
		f, reader, writer := setup(t, commands.CacheConfig{MaxAge: time.Hour, Invalidations: fd})
		fd.down.Store(true)
		f.changeMaxDuration(t, writer, 30)
		require.Equal(t, 2, version(t, reader, f), "without invalidations every read goes to the store")
	})
	t.Run("NoTrustedReadsWithoutWithCache", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, 1, domain.SettingsInput{})
		writer := commands.New(f.store, commands.WithClock(func() time.Time { return clock }))
		require.Equal(t, 1, version(t, f.h, f))
		f.changeMaxDuration(t, writer, 30)
		require.Equal(t, 2, version(t, f.h, f))
	})
	t.Run("DomainResolution", func(t *testing.T) {
		t.Parallel()
		f, reader, _ := setup(t, commands.CacheConfig{MaxAge: time.Hour, Invalidations: &feed{}})
		tn, err := reader.Tenant(ctx, f.admin, f.tenant)
		require.NoError(t, err)
		for range 2 {
			id, err := reader.TenantIDByDomain(ctx, tn.Domain())
			require.NoError(t, err)
			require.Equal(t, f.tenant, id)
		}
		_, err = reader.TenantIDByDomain(ctx, "unknown.example.com")
		require.True(t, errors.Is(err, domain.ErrNotFound))
	})
}

// TestCacheBucketsFollowTheLoadedPolicy: a create loads the buckets the
// cached tenant's buffers name; when another process lengthened the
// buffers since, the booking's occupied time reaches a day whose bucket
// was not loaded, and the command loads it before deciding, so the
// overlap there is still found.
func TestCacheBucketsFollowTheLoadedPolicy(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 1, domain.SettingsInput{})
	ctx := context.Background()
	_, err := f.book(ctx, f.admin, at(2, 0, 30), at(2, 1, 0))
	require.NoError(t, err)

	other := commands.New(f.store, commands.WithClock(func() time.Time { return clock }))
	_, err = other.ChangeTenantSettings(ctx, f.admin, commands.ChangeTenantSettings{TenantID: f.tenant,
		Settings: domain.SettingsInput{BusinessHours: allDay(), BufferAfterMinutes: intp(120)}})
	require.NoError(t, err)
	_, err = f.book(ctx, f.admin, at(1, 22, 30), at(1, 23, 30))
	var conflict *domain.ConflictError
	require.ErrorAs(t, err, &conflict, "the buffer reaches into the next day's booking")
}

// gappyStore loses the first event of every top-up it answers, as a store
// that broke its contract would.
type gappyStore struct{ eventstore.Store }

func (s gappyStore) LoadStreams(ctx context.Context, cursors []eventstore.StreamCursor) (map[string][]eventstore.RecordedEvent, error) {
	out, err := s.Store.LoadStreams(ctx, cursors)
	for _, c := range cursors {
		if c.AfterVersion > 0 && len(out[c.StreamID]) > 0 {
			out[c.StreamID] = out[c.StreamID][1:]
		}
	}
	return out, err
}

// TestCacheRefusesAGap: a top-up whose events do not follow the cached
// version fails the command instead of building a wrong aggregate.
func TestCacheRefusesAGap(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 1, domain.SettingsInput{})
	ctx := context.Background()
	h := commands.New(gappyStore{f.store}, commands.WithClock(func() time.Time { return clock }))
	_, err := h.CreateBooking(ctx, f.admin, commands.CreateBooking{Request: domain.BookingRequest{
		ResourceID: f.resource, ClientID: f.client, Start: at(1, 9, 0), End: at(1, 10, 0)}})
	require.NoError(t, err)
	f.changeMaxDuration(t, f.h, 240)
	f.changeMaxDuration(t, f.h, 180)
	_, err = h.CreateBooking(ctx, f.admin, commands.CreateBooking{Request: domain.BookingRequest{
		ResourceID: f.resource, ClientID: f.client, Start: at(2, 9, 0), End: at(2, 10, 0)}})
	require.ErrorContains(t, err, "cached at version 1, next event has version 3")
}

// TestCacheBounded: with room for fewer entries than streams read, reads
// stay right; entries are dropped, not kept stale.
func TestCacheBounded(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 1, domain.SettingsInput{})
	ctx := context.Background()
	h := commands.New(f.store, commands.WithClock(func() time.Time { return clock }),
		commands.WithCache(commands.CacheConfig{MaxAge: time.Hour, MaxEntries: 2}))
	for day := 1; day <= 6; day++ {
		res, err := h.CreateBooking(ctx, f.admin, commands.CreateBooking{Request: domain.BookingRequest{
			ResourceID: f.resource, ClientID: f.client, Start: at(day, 9, 0), End: at(day, 10, 0)}})
		require.NoError(t, err)
		require.Equal(t, day, res.View.(domain.BookingView).PolicyVersion, "policy version on day %d", day)
		f.changeMaxDuration(t, f.h, 240-day)
	}
}
