package commands

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/eventstore"
)

// CacheConfig configures the process's cache of tenant, resource, user and
// domain-guard aggregates (see WithCache).
//
// The cache serves two kinds of read:
//
//   - Top-ups, for every command: a cached aggregate is read together
//     with the events appended to its stream since (LoadStreams with the
//     cached version as AfterVersion), in the round trip that loads the
//     command's other streams. The command therefore sees exactly what a
//     full load would have shown it at that moment, in every process, and
//     a booking is never checked against a superseded policy; the cache
//     only spares PostgreSQL sending, and the process decoding and
//     replaying, events it has seen before. Top-ups need no invalidation
//     and no configuration.
//   - Trusted reads, without a round trip: tenant resolution by domain and
//     GET of a tenant and its settings. Such a read is answered from an
//     entry only while (a) no append by this process to the stream and no
//     invalidation from Invalidations arrived since the entry was loaded,
//     (b) the entry is younger than MaxAge and (c) Invalidations reports
//     itself healthy. Otherwise the read is a top-up.
type CacheConfig struct {
	// MaxAge bounds how long an entry answers trusted reads: the safety
	// bound for an invalidation that got lost (DefaultCacheMaxAge is a
	// sensible one). 0 disables trusted reads: every read is a top-up.
	MaxAge time.Duration
	// Invalidations reports whether the invalidations of other processes
	// arrive (whoever delivers them calls Handlers.Invalidate and, after
	// a gap, Handlers.InvalidateAll). nil means the process is alone on
	// its store (the embedded memory store): its own appends invalidate
	// at once, and that is all there is.
	Invalidations InvalidationFeed
	// MaxEntries bounds the cache; beyond it a tenth of the entries, the
	// oldest loaded, are dropped. 0 means DefaultCacheEntries.
	MaxEntries int
}

// Defaults of CacheConfig.
const (
	DefaultCacheMaxAge  = 30 * time.Second
	DefaultCacheEntries = 100_000
)

// InvalidationFeed is the source of cross-process invalidations.
// Healthy reports whether it currently delivers them; while it does not,
// trusted reads go to the store. Implementations must be safe for
// concurrent use.
type InvalidationFeed interface {
	Healthy() bool
}

// WithCache enables trusted reads (see CacheConfig). Without it the cache
// serves top-ups only.
func WithCache(cfg CacheConfig) Option {
	return func(h *Handlers) {
		h.cache.cfg = cfg
		if cfg.MaxEntries > 0 {
			h.cache.max = cfg.MaxEntries
		}
	}
}

// Invalidate drops the cached aggregates of the named streams, so that
// the next read of each goes to the store. Safe for concurrent use,
// idempotent; unknown streams are ignored.
func (h *Handlers) Invalidate(streamIDs ...string) {
	h.cache.invalidate(streamIDs...)
}

// InvalidateAll empties the cache: what the feed of invalidations calls
// after a gap in which it may have missed some. Safe for concurrent use.
func (h *Handlers) InvalidateAll() { h.cache.invalidateAll() }

// cacheable reports whether the cache keeps a stream's aggregate: the
// streams every booking command reads but few commands write.
func cacheable(stream string) bool {
	return strings.HasPrefix(stream, "tenant-") || strings.HasPrefix(stream, "user-") ||
		(strings.HasPrefix(stream, "resource-") && !strings.HasPrefix(stream, "resource-category-")) ||
		strings.HasPrefix(stream, "guard-domain-")
}

// aggCache maps a stream to an aggregate replayed up to a version. Stored
// aggregates are never changed (a top-up that finds new events replays
// the stored events and the new ones into a new aggregate), so they may be
// shared by concurrent commands, which only read them.
type aggCache struct {
	cfg CacheConfig
	max int
	now func() time.Time

	mu      sync.RWMutex
	entries map[string]*cacheEntry
	// seq counts invalidations. An entry loaded while one happened is
	// kept for top-ups but not trusted: it may predate the change.
	seq atomic.Uint64
}

type cacheEntry struct {
	agg      aggregate
	events   []domain.Event
	version  int64
	loadedAt time.Time
	trusted  bool
}

func newAggCache() *aggCache {
	return &aggCache{max: DefaultCacheEntries, now: time.Now, entries: map[string]*cacheEntry{}}
}

func (c *aggCache) get(stream string) *cacheEntry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.entries[stream]
}

// fresh reports whether e may answer a read without the store.
func (c *aggCache) fresh(e *cacheEntry) bool {
	if e == nil || !e.trusted || c.cfg.MaxAge <= 0 || c.now().Sub(e.loadedAt) >= c.cfg.MaxAge {
		return false
	}
	return c.cfg.Invalidations == nil || c.cfg.Invalidations.Healthy()
}

// put stores e unless the cache holds a newer version of the stream. seq
// is the invalidation count read before the load began.
func (c *aggCache) put(stream string, e *cacheEntry, seq uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.entries[stream]; ok && old.version > e.version {
		return
	}
	e.trusted = c.seq.Load() == seq
	if len(c.entries) >= c.max {
		c.evictLocked()
	}
	c.entries[stream] = e
}

// evictLocked drops the oldest tenth of the entries.
func (c *aggCache) evictLocked() {
	type aged struct {
		stream string
		at     time.Time
	}
	all := make([]aged, 0, len(c.entries))
	for s, e := range c.entries {
		all = append(all, aged{s, e.loadedAt})
	}
	slices.SortFunc(all, func(a, b aged) int { return a.at.Compare(b.at) })
	for _, a := range all[:max(1, len(all)/10)] {
		delete(c.entries, a.stream)
	}
}

func (c *aggCache) invalidate(streams ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range streams {
		delete(c.entries, s)
	}
	c.seq.Add(1)
}

func (c *aggCache) invalidateAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.entries)
	c.seq.Add(1)
}

// invalidateAppended drops the entries of the cached streams an append of
// this process changed.
func (c *aggCache) invalidateAppended(appends []eventstore.StreamAppend) {
	var hit []string
	c.mu.RLock()
	for _, a := range appends {
		if _, ok := c.entries[a.StreamID]; ok {
			hit = append(hit, a.StreamID)
		}
	}
	c.mu.RUnlock()
	if len(hit) > 0 || slices.ContainsFunc(appends, func(a eventstore.StreamAppend) bool { return cacheable(a.StreamID) }) {
		// Also when nothing was cached: a load of the stream may be
		// under way and must not be trusted.
		c.invalidate(hit...)
	}
}

// loadCached loads, in one round trip, the streams of cached (each into
// the aggregate its constructor makes, or into the cache's shared one)
// and of fresh (replayed into the aggregate given, as loadAll does). It
// returns the aggregate of every cached stream, at version 0 when the
// stream has no event. The aggregates it returns for cached streams are
// shared: callers must not change them.
func (h *Handlers) loadCached(ctx context.Context, cached map[string]func() aggregate, fresh map[string]aggregate) (map[string]aggregate, error) {
	cursors := make([]eventstore.StreamCursor, 0, len(cached)+len(fresh))
	held := make(map[string]*cacheEntry, len(cached))
	for s := range cached {
		e := h.cache.get(s)
		c := eventstore.StreamCursor{StreamID: s}
		if e != nil {
			held[s] = e
			c.AfterVersion = e.version
		}
		cursors = append(cursors, c)
	}
	for s := range fresh {
		cursors = append(cursors, eventstore.StreamCursor{StreamID: s})
	}
	seq := h.cache.seq.Load()
	loadedAt := h.cache.now()
	recs, err := h.store.LoadStreams(ctx, cursors)
	if err != nil {
		return nil, fmt.Errorf("load %d streams: %w", len(cursors), err)
	}
	for s, agg := range fresh {
		events, err := decode(recs[s])
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", s, err)
		}
		if err := agg.Replay(events...); err != nil {
			return nil, fmt.Errorf("load %s: %w", s, err)
		}
	}
	out := make(map[string]aggregate, len(cached))
	for s, mk := range cached {
		e, err := h.topUp(s, mk, held[s], recs[s], seq, loadedAt)
		if err != nil {
			return nil, err
		}
		out[s] = e
	}
	return out, nil
}

// topUp returns the aggregate of stream: the held entry's when no event
// came after it, else a new one replayed from the held events and the new
// ones, which it caches.
func (h *Handlers) topUp(stream string, mk func() aggregate, held *cacheEntry, recs []eventstore.RecordedEvent, seq uint64, loadedAt time.Time) (aggregate, error) {
	if len(recs) == 0 {
		if held != nil {
			if maxAge := h.cache.cfg.MaxAge; maxAge > 0 && (!held.trusted || loadedAt.Sub(held.loadedAt) > maxAge/2) {
				// Confirmed current: trusted again from now, if nothing
				// was invalidated meanwhile. Only now and then, so that
				// concurrent commands do not queue for the write lock.
				h.cache.put(stream, &cacheEntry{agg: held.agg, events: held.events, version: held.version, loadedAt: loadedAt}, seq)
			}
			return held.agg, nil
		}
		return mk(), nil
	}
	var base []domain.Event
	var version int64
	if held != nil {
		base, version = held.events, held.version
	}
	if recs[0].StreamVersion != version+1 {
		return nil, fmt.Errorf("load %s: cached at version %d, next event has version %d", stream, version, recs[0].StreamVersion)
	}
	added, err := decode(recs)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", stream, err)
	}
	events := make([]domain.Event, 0, len(base)+len(added))
	events = append(append(events, base...), added...)
	agg := mk()
	if err := agg.Replay(events...); err != nil {
		return nil, fmt.Errorf("load %s: %w", stream, err)
	}
	h.cache.put(stream, &cacheEntry{agg: agg, events: events, version: recs[len(recs)-1].StreamVersion, loadedAt: loadedAt}, seq)
	return agg, nil
}

// readCached returns the aggregate of one cached stream: from the cache
// when the entry is fresh (no round trip), else topped up.
func (h *Handlers) readCached(ctx context.Context, stream string, mk func() aggregate) (aggregate, error) {
	if e := h.cache.get(stream); h.cache.fresh(e) {
		return e.agg, nil
	}
	aggs, err := h.loadCached(ctx, map[string]func() aggregate{stream: mk}, nil)
	if err != nil {
		return nil, err
	}
	return aggs[stream], nil
}

func newTenant() aggregate   { return &domain.Tenant{} }
func newResource() aggregate { return &domain.Resource{} }
func newUser() aggregate     { return &domain.User{} }
func newGuard() aggregate    { return domain.NewGuard() }
