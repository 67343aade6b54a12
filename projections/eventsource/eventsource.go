// Package eventsource feeds projections from the event store: it adapts an
// eventstore.Store (PostgreSQL or memory) to projections.Source.
package eventsource

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/eventstore"
	"github.com/bookingengine/booking/eventstore/postgres"
	"github.com/bookingengine/booking/projections"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultPollInterval is how often a tail over PostgreSQL looks for new
// events when it has caught up: the floor of a projection's lag.
const DefaultPollInterval = 10 * time.Millisecond

// Source is a projections.Source over an event store. It is safe for
// concurrent use.
type Source struct {
	store  eventstore.Store
	pool   *pgxpool.Pool
	poll   time.Duration
	notify func(after int64) <-chan struct{}
}

var _ projections.Source = (*Source)(nil)

// New returns the source over store. A *postgres.Store is asked through
// its pool which events have committed (Target); a store with a
// Notify(after int64) <-chan struct{} method (the memory store) wakes
// waiting tails at once instead of after pollInterval. Any other store is
// taken to make every stored event readable at once, as the memory store
// does. pollInterval <= 0 means DefaultPollInterval.
func New(store eventstore.Store, pollInterval time.Duration) *Source {
	if pollInterval <= 0 {
		pollInterval = DefaultPollInterval
	}
	s := &Source{store: store, poll: pollInterval}
	if pg, ok := store.(*postgres.Store); ok {
		s.pool = pg.Pool()
	}
	if n, ok := store.(interface {
		Notify(after int64) <-chan struct{}
	}); ok {
		s.notify = n.Notify
	}
	return s
}

// ReadAll reads through the store's ReadAll (see eventstore.Store).
func (s *Source) ReadAll(ctx context.Context, after projections.Cursor, categories []string, limit int) ([]projections.Event, error) {
	recs, err := s.store.ReadAll(ctx, eventstore.Cursor{TransactionID: after.TransactionID, Position: after.Position},
		eventstore.Filter{Categories: categories, PayloadOnly: true}, limit)
	if err != nil {
		return nil, err
	}
	out := make([]projections.Event, len(recs))
	for i := range recs {
		out[i] = FromRecorded(&recs[i])
	}
	decodePayloads(out)
	return out, nil
}

// decodePayloads fills each event's Payload, on every core for a large
// batch: decoding JSON is most of a projection's own work, and done here
// it runs in the feed's goroutine, ahead of and beside the apply of the
// previous batch. An event that does not decode keeps a nil Payload; the
// read model decodes it again and reports the error.
func decodePayloads(evs []projections.Event) {
	one := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			if ev, err := domain.UnmarshalEvent(evs[i].Type, evs[i].Data); err == nil {
				evs[i].Payload = ev
			}
		}
	}
	workers := min(runtime.GOMAXPROCS(0), len(evs)/256)
	if workers <= 1 {
		one(0, len(evs))
		return
	}
	var wg sync.WaitGroup
	step := (len(evs) + workers - 1) / workers
	for lo := 0; lo < len(evs); lo += step {
		wg.Go(func() { one(lo, min(lo+step, len(evs))) })
	}
	wg.Wait()
}

// FromRecorded converts a stored event.
func FromRecorded(r *eventstore.RecordedEvent) projections.Event {
	return projections.Event{
		Position: r.Position, TransactionID: r.TransactionID, ID: r.ID, Type: r.Type,
		EventVersion: r.EventVersion, TenantID: r.TenantID, StreamID: r.StreamID,
		StreamVersion: r.StreamVersion, RecordedAt: r.RecordedAt, Data: r.Data,
	}
}

// Wait returns when events of the categories after the cursor are
// readable, or after the poll interval, or when ctx ends. On the memory
// store it wakes at the append that stores one; on PostgreSQL it sleeps
// the poll interval.
func (s *Source) Wait(ctx context.Context, after projections.Cursor, categories []string) {
	t := time.NewTimer(s.poll)
	defer t.Stop()
	if s.notify == nil {
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		return
	}
	for {
		// Take the head before looking, so an append after the look
		// still wakes the select.
		head, err := s.store.HeadPosition(ctx)
		if err != nil {
			return
		}
		if evs, err := s.ReadAll(ctx, after, categories, 1); err != nil || len(evs) > 0 {
			return
		}
		select {
		case <-s.notify(head):
		case <-t.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// targetQuery finds the last committed event, in read-all order, of the
// categories after the cursor with a position at or below $4. It reads
// committed rows, not only those below the read-all watermark: an event
// that committed behind a long transaction is not readable yet, and a
// waiter must wait for it rather than overlook it.
//
// Each category is read backwards on its index (category,
// transaction_id, position), the cursor compared as a triple so that only
// that index can bound it (see package eventstore/postgres, ReadAll): a
// generic plan on the read-all index would walk back over every event of
// the other categories first.
const targetQuery = `SELECT t.transaction_id, t.position FROM unnest($1::text[]) AS c(category) CROSS JOIN LATERAL (
		SELECT b.transaction_id, b.position FROM booking_events b
		WHERE (b.category, b.transaction_id, b.position) > (c.category, $2, $3) AND b.category = c.category AND b.position <= $4
		ORDER BY b.category DESC, b.transaction_id DESC, b.position DESC
		LIMIT 1
	) t
	ORDER BY t.transaction_id DESC, t.position DESC
	LIMIT 1`

// Target implements projections.Source.Target: one query on PostgreSQL; a
// scan of the events after the cursor otherwise.
func (s *Source) Target(ctx context.Context, after projections.Cursor, categories []string, position int64) (projections.Cursor, bool, error) {
	if s.pool != nil {
		var c projections.Cursor
		err := s.pool.QueryRow(ctx, targetQuery, postgres.Planned, categories, after.TransactionID, after.Position, position).
			Scan(&c.TransactionID, &c.Position)
		if errors.Is(err, pgx.ErrNoRows) {
			return projections.Cursor{}, false, nil
		}
		if err != nil {
			return projections.Cursor{}, false, fmt.Errorf("target of position %d: %w", position, err)
		}
		return c, true, nil
	}
	// Without PostgreSQL every stored event is committed and read-all
	// order is position order.
	var (
		target projections.Cursor
		found  bool
		cur    = after
	)
	for cur.Position < position {
		evs, err := s.ReadAll(ctx, cur, categories, 1000)
		if err != nil {
			return projections.Cursor{}, false, fmt.Errorf("target of position %d: %w", position, err)
		}
		for _, e := range evs {
			if e.Position <= position {
				target, found = projections.CursorOf(e), true
			}
		}
		if len(evs) < 1000 || evs[len(evs)-1].Position > position {
			return target, found, nil
		}
		cur = projections.CursorOf(evs[len(evs)-1])
	}
	return target, found, nil
}

// LoadStream returns the events of one stream with a version above
// after, oldest first, upcast as ReadAll delivers them. The bus feed
// uses it to fill the versions of a stream that the bus has not
// delivered (published before the consumer group existed, trimmed, or
// still in the hands of another consumer).
func (s *Source) LoadStream(ctx context.Context, streamID string, after int64) ([]projections.Event, error) {
	recs, err := s.store.Load(ctx, streamID, after)
	if err != nil {
		return nil, fmt.Errorf("load stream %s after version %d: %w", streamID, after, err)
	}
	out := make([]projections.Event, len(recs))
	for i := range recs {
		out[i] = FromRecorded(&recs[i])
	}
	return out, nil
}

// pendingQuery counts, up to $4, the committed events of the categories
// after the cursor (committed, as targetQuery reads them), on the index of
// each category as targetQuery does.
const pendingQuery = `SELECT count(*) FROM (SELECT 1 FROM unnest($1::text[]) AS c(category) CROSS JOIN LATERAL (
		SELECT 1 FROM booking_events b
		WHERE (b.category, b.transaction_id, b.position) > (c.category, $2, $3) AND b.category = c.category
		ORDER BY b.category, b.transaction_id, b.position
		LIMIT $4
	) x LIMIT $4) e`

// Pending returns how many committed events of the categories lie after
// the cursor, counting at most limit: a projection's lag when the cursor
// is its checkpoint. One query on PostgreSQL; a scan otherwise.
func (s *Source) Pending(ctx context.Context, after projections.Cursor, categories []string, limit int64) (int64, error) {
	if s.pool != nil {
		var n int64
		if err := s.pool.QueryRow(ctx, pendingQuery, postgres.Planned, categories, after.TransactionID, after.Position, limit).Scan(&n); err != nil {
			return 0, fmt.Errorf("count events after %s: %w", after, err)
		}
		return n, nil
	}
	var n int64
	for n < limit {
		evs, err := s.store.ReadAll(ctx, eventstore.Cursor{TransactionID: after.TransactionID, Position: after.Position},
			eventstore.Filter{Categories: categories, PayloadOnly: true}, int(min(limit-n, 10_000)))
		if err != nil {
			return 0, fmt.Errorf("count events after %s: %w", after, err)
		}
		n += int64(len(evs))
		if len(evs) == 0 {
			break
		}
		last := evs[len(evs)-1]
		after = projections.Cursor{TransactionID: last.TransactionID, Position: last.Position}
	}
	return n, nil
}
