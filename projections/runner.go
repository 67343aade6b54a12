package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// RunnerConfig tunes a Runner. The zero value takes the defaults.
type RunnerConfig struct {
	// BatchSize is how many events one ReadAll and one Apply take at most.
	// Default 1000.
	BatchSize int
	// RetryDelay is how long Run waits after a failed read or apply before
	// trying again. Default 1s.
	RetryDelay time.Duration
	// Grace, when positive, makes the Runner the watermark of a
	// projection that the message bus feeds (package busfeed): it moves
	// the checkpoint over the events the projection has applied already
	// (AppliedVersions), and applies from the store only the events that
	// are still unapplied Grace after the Runner first read them (the bus
	// is down or behind, the events were published before the consumer
	// group existed, or trimmed). Zero: the Runner applies every event it
	// reads, and the store alone feeds the projection.
	Grace time.Duration
	// PollInterval is how often a Runner that waits for the bus to apply
	// an event looks again when no apply in this process wakes it (the
	// bus consumer may run in another process). Default 10ms.
	PollInterval time.Duration
	// Logger receives failures; nil means slog.Default().
	Logger *slog.Logger
}

// Defaults of RunnerConfig.
const (
	DefaultBatchSize    = 1000
	DefaultRetryDelay   = time.Second
	DefaultPollInterval = 10 * time.Millisecond
)

func (c RunnerConfig) withDefaults() RunnerConfig {
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.RetryDelay <= 0 {
		c.RetryDelay = DefaultRetryDelay
	}
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Runner keeps one projection current by tailing a Source from the
// projection's checkpoint: alone (RunnerConfig.Grace zero), or as the
// watermark beside the bus feed. Several Runners of the same projection,
// in one process or several, are safe: each batch is applied at most
// once, the others get ErrCheckpointMoved and re-read the checkpoint.
// Its methods are safe for concurrent use, but call Run once.
type Runner struct {
	src Source
	p   Projection
	cfg RunnerConfig

	mu sync.Mutex
	// sightings remembers when reads first returned the events up to a
	// cursor, in read-all order, for Grace.
	sightings []sighting
	// read holds the events a grace step read after readFrom and left to
	// the bus: while the bus is behind, the next steps look them up again
	// instead of reading (and decoding) the same events every poll. The
	// store's read-all prefix after a cursor never changes once read.
	read     []Event
	readFrom Cursor
	// known holds the applied versions learned for the streams of read;
	// only Run's goroutine (step) uses it.
	known  map[string]int64
	healed atomic.Int64
}

// sighting: the events up to cursor were first read at at.
type sighting struct {
	upTo Cursor
	at   time.Time
}

// NewRunner returns a Runner that feeds p from src.
func NewRunner(src Source, p Projection, cfg RunnerConfig) *Runner {
	return &Runner{src: src, p: p, cfg: cfg.withDefaults()}
}

// Healed returns how many events the Runner found unapplied past Grace
// and handed to Apply itself (a bus delivery may still have applied some
// of them first, which Apply then skips); 0 without Grace, where the
// Runner applies everything and counts nothing.
func (r *Runner) Healed() int64 { return r.healed.Load() }

// Run tails the source until ctx ends and then returns nil. A failed read
// or apply is logged and retried after RetryDelay, from the stored
// checkpoint, so a poison event stalls the projection (loudly) rather than
// being skipped.
func (r *Runner) Run(ctx context.Context) error {
	log := r.cfg.Logger.With(slog.String("projection", r.p.Name()))
	cur, err := r.p.Checkpoint(ctx)
	for err != nil {
		if ctx.Err() != nil {
			return nil
		}
		log.ErrorContext(ctx, "read checkpoint", slog.Any("error", err))
		sleep(ctx, r.cfg.RetryDelay)
		cur, err = r.p.Checkpoint(ctx)
	}
	for ctx.Err() == nil {
		// Taken before the step, so that a bus apply during the step
		// still wakes the wait below.
		changed := r.p.Changed()
		stepped := time.Now()
		next, n, due, err := r.step(ctx, cur)
		switch {
		case err == nil && n == 0 && due > 0:
			r.waitBus(ctx, changed, stepped, due)
		case err == nil && n == 0:
			r.src.Wait(ctx, cur, r.p.Categories())
		case err == nil:
			cur = next
		case ctx.Err() != nil:
			return nil
		default:
			if !errors.Is(err, ErrCheckpointMoved) {
				log.ErrorContext(ctx, "apply", slog.String("after", cur.String()), slog.Any("error", err))
				sleep(ctx, r.cfg.RetryDelay)
			}
			if c, cerr := r.p.Checkpoint(ctx); cerr == nil {
				cur = c
			}
		}
	}
	return nil
}

// waitBus waits until an apply in this process, PollInterval, or due,
// whichever comes first, but at least until PollInterval after the step
// began (at stepped): under a stream of bus applies the Runner then moves
// the checkpoint over many of them at once, not once per event.
func (r *Runner) waitBus(ctx context.Context, changed <-chan struct{}, stepped time.Time, due time.Duration) {
	t := time.NewTimer(min(due, r.cfg.PollInterval))
	defer t.Stop()
	select {
	case <-changed:
		if d := min(due, r.cfg.PollInterval) - time.Since(stepped); d > 0 {
			sleep(ctx, d)
		}
	case <-t.C:
	case <-ctx.Done():
	}
}

// CatchUp returns once the projection has applied every event of its
// categories that had committed when CatchUp was called, reading and
// applying them itself (alongside any other runner of the projection,
// and without waiting for the bus whatever Grace says). It returns how
// many events it read itself, and stops at the first error or when ctx
// ends.
func (r *Runner) CatchUp(ctx context.Context) (int, error) {
	cur, err := r.p.Checkpoint(ctx)
	if err != nil {
		return 0, err
	}
	target, ok, err := r.src.Target(ctx, cur, r.p.Categories(), math.MaxInt64)
	if err != nil || !ok {
		return 0, err
	}
	total := 0
	for cur.Before(target) {
		next, n, err := r.apply(ctx, cur)
		switch {
		case errors.Is(err, ErrCheckpointMoved):
		case err != nil:
			return total, err
		case n > 0:
			total += n
			cur = next
			continue
		default:
			// Not readable yet: a transaction elsewhere holds the read-all
			// watermark back.
			r.src.Wait(ctx, cur, r.p.Categories())
			if err := ctx.Err(); err != nil {
				return total, err
			}
		}
		if cur, err = r.p.Checkpoint(ctx); err != nil {
			return total, err
		}
	}
	return total, nil
}

// step reads and applies one batch after cur, under the Runner's Grace.
// When it applies nothing because the first event read is left to the
// bus, due is how long until that event's grace ends.
func (r *Runner) step(ctx context.Context, cur Cursor) (next Cursor, n int, due time.Duration, err error) {
	if r.cfg.Grace <= 0 {
		next, n, err = r.apply(ctx, cur)
		return next, n, 0, err
	}
	evs := r.cached(cur)
	if evs == nil {
		if evs, err = r.src.ReadAll(ctx, cur, r.p.Categories(), r.cfg.BatchSize); err != nil {
			return cur, 0, 0, fmt.Errorf("projection %s: read after %s: %w", r.p.Name(), cur, err)
		}
		if len(evs) == 0 {
			return cur, 0, 0, nil
		}
	}
	now := time.Now()
	r.sight(cur, CursorOf(evs[len(evs)-1]), now)
	known := r.knownVersions()
	k, healed, looked := 0, 0, 0
	for k < len(evs) {
		e := evs[k]
		if known[e.StreamID] < e.StreamVersion && k >= looked {
			// Ask the projection about the next window only: while the
			// bus is behind, each poll looks up a few streams, not every
			// event the Runner holds.
			looked = min(k+lookupWindow, len(evs))
			if err := r.lookUp(ctx, known, evs[k:looked]); err != nil {
				return cur, 0, 0, err
			}
		}
		if known[e.StreamID] >= e.StreamVersion {
			k++
			continue
		}
		if d := r.seen(CursorOf(e)).Add(r.cfg.Grace).Sub(now); d > 0 {
			due = d
			break
		}
		k++
		healed++
	}
	if k == 0 {
		r.keep(cur, evs)
		return cur, 0, due, nil
	}
	if err := r.applyBatch(ctx, cur, evs[:k]); err != nil {
		r.keep(Cursor{}, nil)
		return cur, 0, 0, err
	}
	r.keep(CursorOf(evs[k-1]), evs[k:])
	if healed > 0 {
		r.healed.Add(int64(healed))
		r.cfg.Logger.WarnContext(ctx, "projection: applying events the bus has not delivered in time", slog.String("projection", r.p.Name()),
			slog.Int("events", healed), slog.Duration("grace", r.cfg.Grace), slog.String("after", cur.String()))
	}
	return CursorOf(evs[k-1]), k, 0, nil
}

// cached returns the events a step kept after cur, nil when it kept none
// there.
func (r *Runner) cached(cur Cursor) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.read) == 0 || r.readFrom != cur {
		return nil
	}
	return r.read
}

// keep remembers evs, the events read after from that are not applied
// yet (none: forget), and forgets the known versions of other streams.
func (r *Runner) keep(from Cursor, evs []Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(evs) == 0 {
		r.read, r.readFrom, r.known = nil, Cursor{}, nil
		return
	}
	r.read, r.readFrom = evs, from
	streams := make(map[string]bool, len(evs))
	for _, e := range evs {
		streams[e.StreamID] = true
	}
	for id := range r.known {
		if !streams[id] {
			delete(r.known, id)
		}
	}
}

// lookupWindow is how many held events a grace step asks the projection
// about at once.
const lookupWindow = 64

// knownVersions returns the versions the Runner has learned the
// projection applied, for the events it holds.
func (r *Runner) knownVersions() map[string]int64 {
	if r.known == nil {
		r.known = map[string]int64{}
	}
	return r.known
}

// lookUp asks the projection for the applied versions of the streams of
// evs that known does not show applied yet, and raises known to them.
// Known versions only ever rise while the Runner holds the events: a
// version that turns out too high (the projection was reset meanwhile)
// makes the Runner hand an event to Apply before its grace, and Apply
// still applies only what the projection lacks.
func (r *Runner) lookUp(ctx context.Context, known map[string]int64, evs []Event) error {
	var ids []string
	seen := make(map[string]bool, len(evs))
	for _, e := range evs {
		if known[e.StreamID] < e.StreamVersion && !seen[e.StreamID] {
			seen[e.StreamID] = true
			ids = append(ids, e.StreamID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	applied, err := r.p.AppliedVersions(ctx, ids)
	if err != nil {
		return fmt.Errorf("projection %s: %w", r.p.Name(), err)
	}
	for id, v := range applied {
		known[id] = max(known[id], v)
	}
	return nil
}

// sight records that the events after cur up to upTo were read at now,
// and forgets the sightings at or before cur.
func (r *Runner) sight(cur, upTo Cursor, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := 0
	for i < len(r.sightings) && !cur.Before(r.sightings[i].upTo) {
		i++
	}
	r.sightings = r.sightings[i:]
	if n := len(r.sightings); n == 0 || r.sightings[n-1].upTo.Before(upTo) {
		r.sightings = append(r.sightings, sighting{upTo: upTo, at: now})
	}
}

// seen returns when a read first returned the event at c.
func (r *Runner) seen(c Cursor) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.sightings {
		if !s.upTo.Before(c) {
			return s.at
		}
	}
	return time.Now()
}

// apply reads one batch after cur and applies all of it.
func (r *Runner) apply(ctx context.Context, cur Cursor) (Cursor, int, error) {
	evs, err := r.src.ReadAll(ctx, cur, r.p.Categories(), r.cfg.BatchSize)
	if err != nil {
		return cur, 0, fmt.Errorf("projection %s: read after %s: %w", r.p.Name(), cur, err)
	}
	if len(evs) == 0 {
		return cur, 0, nil
	}
	if err := r.applyBatch(ctx, cur, evs); err != nil {
		return cur, 0, err
	}
	return CursorOf(evs[len(evs)-1]), len(evs), nil
}

// applyBatch applies the events read after cur, with the checkpoint.
func (r *Runner) applyBatch(ctx context.Context, cur Cursor, evs []Event) error {
	b := Batch{Events: evs, From: cur, To: CursorOf(evs[len(evs)-1])}
	if err := r.p.Apply(ctx, b); err != nil {
		return fmt.Errorf("projection %s: apply %d events after %s: %w", r.p.Name(), len(evs), cur, err)
	}
	return nil
}

// RebuildStats reports a rebuild.
type RebuildStats struct {
	// Events is how many events were read (and applied or skipped).
	Events int64
	// Duration is the wall time from the reset to the last apply and, for
	// a BulkLoader, to the end of its index build.
	Duration time.Duration
	// IndexBuild is the part of Duration a BulkLoader spent building its
	// indexes at the end.
	IndexBuild time.Duration
	// Checkpoint is the cursor the projection stands at afterwards.
	Checkpoint Cursor
}

// Rebuild empties p (Reset) and replays every event of its categories from
// the first one, reading the next batch while the previous one is applied;
// a BulkLoader loads without its secondary indexes and builds them at the
// end, which Duration includes. It stops when the source has nothing more
// to deliver (a transaction elsewhere may hold back events that have
// committed: Runner.CatchUp, or a running Runner, applies them from the
// checkpoint). Queries see a partial read model while it runs. batchSize
// <= 0 means DefaultBatchSize; larger batches rebuild faster.
func Rebuild(ctx context.Context, src Source, p Projection, batchSize int) (stats RebuildStats, err error) {
	if batchSize <= 0 {
		batchSize = DefaultBatchSize
	}
	start := time.Now()
	if err := p.Reset(ctx); err != nil {
		return RebuildStats{}, fmt.Errorf("rebuild %s: reset: %w", p.Name(), err)
	}
	if bl, ok := p.(BulkLoader); ok {
		if err := bl.BeginBulk(ctx); err != nil {
			return RebuildStats{}, fmt.Errorf("rebuild %s: %w", p.Name(), err)
		}
		defer func() {
			// Restore the indexes even when ctx ended.
			ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Hour)
			defer cancel()
			built := time.Now()
			if eerr := bl.EndBulk(ectx); eerr != nil && err == nil {
				err = fmt.Errorf("rebuild %s: %w", p.Name(), eerr)
			}
			stats.IndexBuild = time.Since(built)
			stats.Duration = time.Since(start)
		}()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type read struct {
		b   Batch
		err error
	}
	batches := make(chan read, 2)
	go func() {
		defer close(batches)
		var cur Cursor
		for {
			evs, err := src.ReadAll(ctx, cur, p.Categories(), batchSize)
			if err != nil {
				select {
				case batches <- read{err: err}:
				case <-ctx.Done():
				}
				return
			}
			if len(evs) == 0 {
				return
			}
			b := Batch{Events: evs, From: cur, To: CursorOf(evs[len(evs)-1])}
			select {
			case batches <- read{b: b}:
			case <-ctx.Done():
				return
			}
			if len(evs) < batchSize {
				return
			}
			cur = b.To
		}
	}()
	for r := range batches {
		if r.err != nil {
			return stats, fmt.Errorf("rebuild %s: read after %s: %w", p.Name(), stats.Checkpoint, r.err)
		}
		if err := p.Apply(ctx, r.b); err != nil {
			return stats, fmt.Errorf("rebuild %s: apply after %s: %w", p.Name(), r.b.From, err)
		}
		stats.Events += int64(len(r.b.Events))
		stats.Checkpoint = r.b.To
	}
	if err := ctx.Err(); err != nil {
		return stats, fmt.Errorf("rebuild %s: %w", p.Name(), err)
	}
	stats.Duration = time.Since(start)
	return stats, nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
