package commands

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/eventstore"
	"github.com/google/uuid"
)

// DefaultHoldExpiryCheckpoint names the checkpoint of the hold expiry
// scheduler. Renaming it makes the scheduler rescan every hold ever placed
// (harmless, but slow on a large store).
const DefaultHoldExpiryCheckpoint = "hold-expiry"

// HoldExpirerConfig configures a HoldExpirer. Zero fields take defaults.
type HoldExpirerConfig struct {
	// Interval is how often due holds are looked for (default 1 s): a
	// hold expires at most about this long after its expires_at.
	Interval time.Duration
	// Checkpoint names the durable scan position (default
	// DefaultHoldExpiryCheckpoint); every process of a deployment shares it.
	Checkpoint string
	// BatchSize bounds one read of the event store (default 500).
	BatchSize int
	// Logger receives failures; nil discards them.
	Logger *slog.Logger
}

// HoldExpirer is the scheduler that records hold.expired for every hold
// whose expires_at passed. It keeps no timer that a restart could lose:
// it finds open holds by reading the hold streams' events through the
// event store (category "hold") from a durable checkpoint, which it only
// moves past holds that have ended, so a restarted process finds every
// hold still open. Any number of processes may run one on the same store:
// each expiry appends with the hold stream's expected version, so exactly
// one hold.expired is recorded per hold and the other processes move on.
//
// A HoldExpirer is not safe for concurrent use; run one per process.
type HoldExpirer struct {
	h    *Handlers
	cfg  HoldExpirerConfig
	open map[uuid.UUID]holdDue
	// cursor is the position read up to; loaded from the checkpoint on the
	// first Tick.
	cursor  eventstore.Cursor
	started bool
	saved   eventstore.Cursor
}

// holdDue is an open hold the scheduler watches.
type holdDue struct {
	tenantID  uuid.UUID
	expiresAt time.Time
	// before is the read position just before the hold's hold.placed,
	// where a restarted scan must resume while the hold is open.
	before eventstore.Cursor
}

// NewHoldExpirer returns a scheduler over h's store and clock.
func NewHoldExpirer(h *Handlers, cfg HoldExpirerConfig) *HoldExpirer {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Checkpoint == "" {
		cfg.Checkpoint = DefaultHoldExpiryCheckpoint
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 500
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &HoldExpirer{h: h, cfg: cfg, open: map[uuid.UUID]holdDue{}}
}

// Run ticks every Interval until ctx ends, logging failed ticks, and
// returns nil then.
func (e *HoldExpirer) Run(ctx context.Context) error {
	t := time.NewTicker(e.cfg.Interval)
	defer t.Stop()
	for {
		if _, err := e.Tick(ctx); err != nil && ctx.Err() == nil {
			e.cfg.Logger.Error("hold expiry", slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Tick reads the hold events appended since the last tick, expires every
// open hold that is due, and saves the checkpoint. It returns how many
// holds this process expired (others may have expired more).
func (e *HoldExpirer) Tick(ctx context.Context) (int, error) {
	store := e.h.Store()
	if !e.started {
		c, err := store.Checkpoint(ctx, e.cfg.Checkpoint)
		if err != nil {
			return 0, fmt.Errorf("load checkpoint %s: %w", e.cfg.Checkpoint, err)
		}
		e.cursor, e.saved, e.started = c, c, true
	}
	for {
		recs, err := store.ReadAll(ctx, e.cursor, eventstore.Filter{Categories: []string{"hold"}}, e.cfg.BatchSize)
		if err != nil {
			return 0, fmt.Errorf("read hold events: %w", err)
		}
		for _, r := range recs {
			e.observe(r)
			e.cursor = eventstore.CursorOf(r)
		}
		if len(recs) < e.cfg.BatchSize {
			break
		}
	}
	now := e.h.Now()
	expired := 0
	for id, d := range e.open {
		if now.Before(d.expiresAt) {
			continue
		}
		ok, err := e.h.ExpireHold(ctx, d.tenantID, id)
		if err != nil {
			if ctx.Err() != nil {
				return expired, ctx.Err()
			}
			e.cfg.Logger.Error("expire hold", slog.String("hold_id", id.String()), slog.Any("error", err))
			continue
		}
		if ok {
			expired++
		}
	}
	if lw := e.lowWater(); lw != e.saved {
		if err := store.SaveCheckpoint(ctx, e.cfg.Checkpoint, lw); err != nil {
			return expired, fmt.Errorf("save checkpoint %s: %w", e.cfg.Checkpoint, err)
		}
		e.saved = lw
	}
	return expired, nil
}

// observe updates the open holds with one hold event.
func (e *HoldExpirer) observe(r eventstore.RecordedEvent) {
	ev, err := domain.UnmarshalEvent(r.Type, r.Data)
	if err != nil {
		e.cfg.Logger.Warn("hold expiry: undecodable event", slog.String("type", r.Type), slog.Any("error", err))
		return
	}
	switch ev := ev.(type) {
	case domain.HoldPlaced:
		e.open[ev.HoldID] = holdDue{tenantID: r.TenantID, expiresAt: ev.ExpiresAt, before: e.cursor}
	case domain.HoldReleased:
		delete(e.open, ev.HoldID)
	case domain.HoldExpired:
		delete(e.open, ev.HoldID)
	}
}

// lowWater is the checkpoint to save: just before the oldest open hold,
// or everything read when none is open.
func (e *HoldExpirer) lowWater() eventstore.Cursor {
	lw := e.cursor
	for _, d := range e.open {
		if before(d.before, lw) {
			lw = d.before
		}
	}
	return lw
}

// before reports whether cursor a comes before b in read-all order.
func before(a, b eventstore.Cursor) bool {
	if a.TransactionID != b.TransactionID {
		return a.TransactionID < b.TransactionID
	}
	return a.Position < b.Position
}
