package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bookingengine/booking/eventstore"
	"github.com/bookingengine/booking/eventstore/postgres"
	"github.com/bookingengine/booking/projections"
	"github.com/bookingengine/booking/projections/availability"
	"github.com/bookingengine/booking/projections/bookings"
	"github.com/bookingengine/booking/projections/calendars"
	"github.com/bookingengine/booking/projections/catalog"
	"github.com/bookingengine/booking/projections/eventsource"
	"github.com/bookingengine/booking/projections/reports"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

// readModel is a PostgreSQL read model replay can name.
type readModel struct {
	name string
	open func(*pgxpool.Pool) projections.Projection
}

// readModels lists the PostgreSQL read models, the ones bookingd keeps
// current: add one here when it gains one.
func readModels() []readModel {
	return []readModel{
		{bookings.Name, func(p *pgxpool.Pool) projections.Projection { return bookings.NewPostgres(p) }},
		{availability.Name, func(p *pgxpool.Pool) projections.Projection { return availability.NewPostgres(p) }},
		{catalog.Name, func(p *pgxpool.Pool) projections.Projection { return catalog.NewPostgres(p) }},
		{calendars.Name, func(p *pgxpool.Pool) projections.Projection { return calendars.NewPostgres(p) }},
		{reports.Name, func(p *pgxpool.Pool) projections.Projection { return reports.NewPostgres(p) }},
	}
}

// shadowRebuilder is what replay needs of a read model to rebuild it
// beside its live tables, so that queries keep answering from the live
// ones until an atomic swap. A read model offers it with five methods
// (every read model built with pgprojection.New has them, see
// pgprojection.Projection.BeginShadow):
//
//   - CheckShadow reports, changing nothing, why a rebuild (of one tenant,
//     unless uuid.Nil) could not work for the shape of the tables, so that
//     replay refuses before it changes any read model.
//   - BeginShadow creates empty copies of the read model's tables, with a
//     checkpoint of their own at the zero cursor, dropping copies an
//     interrupted rebuild left behind.
//   - ApplyShadow applies a batch to the copies exactly as Apply does to
//     the live tables (checked against the copies' checkpoint, which it
//     moves to b.To, even when b.Events is empty), under a lock of its own:
//     it must not wait for the live projection's appliers.
//   - SwapShadow, in one transaction holding the live projection's apply
//     lock, compares the two checkpoints. When the copies' is behind the
//     live one it changes nothing and returns false (replay reads on and
//     tries again). Otherwise, for tenant uuid.Nil, it replaces every live
//     table by its copy and sets the live checkpoint to the copies'; for
//     one tenant, it replaces that tenant's live rows by the copies' rows
//     and leaves the live checkpoint (the live projector then re-applies
//     the events between the two checkpoints, which the per-row stream
//     versions make no-ops). It drops the copies and returns true. Readers
//     see the old tables until the commit and the new ones after it.
//   - DropShadow removes the copies and their checkpoint (after a failure).
type shadowRebuilder interface {
	projections.Projection
	CheckShadow(ctx context.Context, tenant uuid.UUID) error
	BeginShadow(ctx context.Context) error
	ApplyShadow(ctx context.Context, b projections.Batch) error
	SwapShadow(ctx context.Context, tenant uuid.UUID) (swapped bool, err error)
	DropShadow(ctx context.Context) error
}

// defaultReplayBatch is the batch size of a replay: large batches rebuild
// faster, and the copies' transactions hold back no live reader for long.
const defaultReplayBatch = 1000

func runReplay(ctx context.Context, m *Main, args []string) error {
	names := make([]string, 0, len(readModels()))
	for _, rm := range readModels() {
		names = append(names, rm.name)
	}
	fs := m.flagSet("replay", "replay [--projection NAME|all] [--tenant ID] [--batch-size N]\n\n"+
		"Rebuilds read models from the event store into fresh copies of their tables\n"+
		"while the live tables keep answering queries, then swaps each copy in\n"+
		"atomically. With --tenant only that tenant's rows are rebuilt and replaced.\n"+
		"Shows progress (events done/total, rate, ETA): a bar on a terminal, plain\n"+
		"lines otherwise. Read models: "+strings.Join(names, ", ")+".")
	dbFlag := databaseFlag(fs)
	name := fs.String("projection", "all", "read model to rebuild, or all")
	tenantFlag := fs.String("tenant", "", "rebuild only this tenant's rows")
	batch := fs.Int("batch-size", defaultReplayBatch, "events per batch")
	if err := fs.parse(args); err != nil {
		return err
	}
	var chosen []readModel
	for _, rm := range readModels() {
		if *name == "all" || rm.name == *name {
			chosen = append(chosen, rm)
		}
	}
	if len(chosen) == 0 {
		return usagef("--projection %q: want all or one of %s", *name, strings.Join(names, ", "))
	}
	var tenant uuid.UUID
	if fs.given()["tenant"] {
		var err error
		if tenant, err = parseID("tenant", *tenantFlag); err != nil {
			return err
		}
	}
	if *batch < 1 {
		return usagef("--batch-size %d must be at least 1", *batch)
	}
	dbURL, err := m.databaseURL(dbFlag)
	if err != nil {
		return err
	}
	store, err := openStore(ctx, dbURL)
	if err != nil {
		return err
	}
	defer store.Close()

	// Every chosen read model must support the swap before any starts: a
	// half-done "all" would leave the operator guessing.
	var rebuilders []shadowRebuilder
	var missing []string
	for _, rm := range chosen {
		p := rm.open(store.Pool())
		if sr, ok := p.(shadowRebuilder); ok {
			rebuilders = append(rebuilders, sr)
		} else {
			missing = append(missing, rm.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("read model %s cannot be rebuilt beside its live tables yet: it lacks "+
			"CheckShadow, BeginShadow, ApplyShadow, SwapShadow and DropShadow (see shadowRebuilder in cmd/bookingctl); "+
			"nothing was changed", strings.Join(missing, ", "))
	}
	var problems []error
	for _, p := range rebuilders {
		if err := p.CheckShadow(ctx, tenant); err != nil {
			problems = append(problems, err)
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("replay: %w; nothing was changed", schemaHint(errors.Join(problems...)))
	}
	for _, p := range rebuilders {
		prog := newProgress(m.Stderr, "replay "+p.Name(), m.terminal(), time.Now)
		stats, err := replayReadModel(ctx, store, p, tenant, *batch, prog.Update)
		if err != nil {
			return err
		}
		prog.Finish(stats.Events, stats.Events)
		fmt.Fprintf(m.Stdout, "%s: rebuilt from %d events in %s and swapped in at %d/%d\n",
			p.Name(), stats.Events, roundDuration(stats.Duration), stats.Checkpoint.TransactionID, stats.Checkpoint.Position)
	}
	return nil
}

// replayReadModel rebuilds p into its shadow copies from the first event
// of its categories (only tenant's events when tenant is set; the others
// are read and skipped, so the copies' checkpoint keeps pace with the
// whole log) and swaps them in once they are not behind the live read
// model, reading on while live writes keep it ahead. progress is called
// after every batch with the events read and the events of the categories
// in the store (a count that grows with concurrent appends). On an error
// the copies are dropped and the live read model is untouched.
func replayReadModel(ctx context.Context, store *postgres.Store, p shadowRebuilder, tenant uuid.UUID, batchSize int,
	progress func(done, total int64)) (stats projections.RebuildStats, err error) {
	start := time.Now()
	unlock, err := lockReplay(ctx, store, p.Name())
	if err != nil {
		return stats, err
	}
	defer unlock()
	if err := p.BeginShadow(ctx); err != nil {
		return projections.RebuildStats{}, fmt.Errorf("replay %s: %w", p.Name(), err)
	}
	stats, err = fillAndSwap(ctx, store, p, tenant, batchSize, progress)
	if err != nil {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if derr := p.DropShadow(dctx); derr != nil {
			err = errors.Join(err, fmt.Errorf("drop copies: %w", derr))
		}
		return stats, fmt.Errorf("replay %s: %w", p.Name(), err)
	}
	stats.Duration = time.Since(start)
	return stats, nil
}

// replayLockClass is the first key of the session advisory lock that
// allows one replay per read model at a time (the second key is a hash of
// its name): a second replay would drop the first one's copies.
const replayLockClass int32 = 0x7265706c // "repl"

// lockReplay takes the read model's replay lock on a connection of its own,
// held until unlock, or fails at once when another replay holds it.
func lockReplay(ctx context.Context, store *postgres.Store, name string) (unlock func(), err error) {
	conn, err := store.Pool().Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("replay %s: lock: %w", name, err)
	}
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, hashtext($2))`, replayLockClass, name).Scan(&ok); err != nil {
		conn.Release()
		return nil, fmt.Errorf("replay %s: lock: %w", name, err)
	}
	if !ok {
		conn.Release()
		return nil, fmt.Errorf("replay %s: another replay of it is running", name)
	}
	return func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock($1, hashtext($2))`, replayLockClass, name); err != nil {
			// Closing the session releases its locks.
			_ = conn.Hijack().Close(uctx)
			return
		}
		conn.Release()
	}, nil
}

func fillAndSwap(ctx context.Context, store *postgres.Store, p shadowRebuilder, tenant uuid.UUID, batchSize int,
	progress func(done, total int64)) (projections.RebuildStats, error) {
	var stats projections.RebuildStats
	total, err := countEvents(ctx, store, p.Categories())
	if err != nil {
		return stats, err
	}
	progress(0, total)
	var cur eventstore.Cursor
	filter := eventstore.Filter{Categories: p.Categories()}
	for {
		recs, err := store.ReadAll(ctx, cur, filter, batchSize)
		if err != nil {
			return stats, err
		}
		if len(recs) > 0 {
			b := projections.Batch{
				From: projections.Cursor{TransactionID: cur.TransactionID, Position: cur.Position},
				To:   projections.Cursor{TransactionID: recs[len(recs)-1].TransactionID, Position: recs[len(recs)-1].Position},
			}
			for i := range recs {
				if tenant == uuid.Nil || recs[i].TenantID == tenant {
					b.Events = append(b.Events, eventsource.FromRecorded(&recs[i]))
				}
			}
			if err := p.ApplyShadow(ctx, b); err != nil {
				return stats, err
			}
			cur = eventstore.CursorOf(recs[len(recs)-1])
			stats.Events += int64(len(recs))
			stats.Checkpoint = b.To
			progress(stats.Events, max(total, stats.Events))
		}
		if len(recs) == batchSize {
			continue
		}
		swapped, err := p.SwapShadow(ctx, tenant)
		if err != nil {
			return stats, fmt.Errorf("swap: %w", err)
		}
		if swapped {
			return stats, nil
		}
		// The live read model moved past the copies meanwhile: read on.
		if total, err = countEvents(ctx, store, p.Categories()); err != nil {
			return stats, err
		}
		if len(recs) == 0 {
			// Nothing readable yet beyond the copies: the live projector
			// read past a long transaction's watermark no sooner than this
			// store can; wait a moment rather than spin.
			select {
			case <-ctx.Done():
				return stats, ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
}

// countEvents counts the stored events of the categories, the total a
// replay's progress is measured against.
func countEvents(ctx context.Context, store *postgres.Store, categories []string) (int64, error) {
	var n int64
	err := store.Pool().QueryRow(ctx, `SELECT count(*) FROM booking_events WHERE category = ANY($1)`,
		slices.Clone(categories)).Scan(&n)
	if err != nil {
		return 0, schemaHint(fmt.Errorf("count events: %w", err))
	}
	return n, nil
}
