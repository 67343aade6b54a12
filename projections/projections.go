// Package projections builds the read models that queries serve from the
// event log, and keeps them current.
//
// # What a projection is
//
// A projection is a permanent name, the event-store categories it reads,
// and an apply function that folds a batch of events into its read model
// (Projection). The name is its checkpoint's key in booking_checkpoints
// and, when fed from the message bus, its consumer group: changing it makes
// the projection start again from the first event. Every read model has an
// in-memory implementation (the embedded mode) and a PostgreSQL one, and
// both pass one test suite.
//
// Every projection is
//
//   - idempotent: every apply records, in the same transaction as the
//     rows, what it applied: a store batch its read-all cursor (the
//     checkpoint), a bus batch the highest version of each stream (on
//     PostgreSQL table read_model_streams); a stream's applied version
//     (AppliedVersions) is the greater of the recorded one and its last
//     version at or below the checkpoint, and an apply skips every event
//     at or below it, so a redelivery, an old event arriving after a
//     newer one, or an event that both feeds deliver, leaves the read
//     model unchanged; each row also keeps the version that last changed
//     it;
//   - checkpointed: a batch read from the store is applied in one
//     transaction together with the read-all cursor after it (Batch.To), so
//     after a crash the projection resumes exactly after the last event it
//     applied;
//   - rebuildable: Rebuild empties the read model and its applied versions
//     and replays the store from the first event (ReadAll from the zero
//     cursor), which yields the same rows as the live projection.
//
// # Feeding
//
// The checkpoint always means the same: every event of the projection's
// categories up to this read-all cursor is applied. Two feeds keep it
// moving.
//
// The store feed: a Runner tails a Source (the event store, through
// package eventsource) from the checkpoint and applies each batch with
// its cursor. bookingctl and tests use it alone.
//
// The bus feed (package busfeed, the default of bookingd): the projection
// is a consumer group, named after it, on the category topics that carry
// its categories (Redis Streams, or the GoChannel in embedded mode). Each
// delivery is applied as a contiguous bus batch (FromBus, Contiguous): no
// cursor, the checkpoint stays, and the applied versions alone order and
// dedupe it; an event that follows versions the projection has not seen
// makes the feed load them from the store first. Beside it a Runner with
// a Grace is the watermark: it reads the store after the checkpoint and
// moves the checkpoint over the leading events that the projection has
// applied (one AppliedVersions lookup per read), and applies itself, from
// the store, the events still unapplied Grace after it first read them
// (the bus is down or slow, the events were published before the group
// existed, or trimmed). So the checkpoint never passes an event that is
// not applied, and never stalls for longer than Grace.
//
// # Read-your-writes: when a projection has applied a position
//
// Positions are handed out at insert time but become visible at commit, so
// a transaction holding a lower position can commit after one holding a
// higher position. The store's ReadAll therefore delivers events in
// (transaction id, position) order and never past the oldest running
// transaction, and a projection's checkpoint is the cursor of the last
// event delivered to it. The rule implemented by Waiter:
//
//	A projection has applied position n when its checkpoint is at or after
//	the read-all cursor of every event of its categories that has committed
//	with a position <= n.
//
// Waiter finds that target once, when the query arrives, as the greatest
// cursor among the committed events of the projection's categories with
// position <= n lying after the checkpoint (Source.Target; on PostgreSQL
// one query over the events newer than the checkpoint), then waits until
// the checkpoint reaches it. With either feed the checkpoint moves only
// over events that are applied, so the rule holds whichever feed applied
// them, and across processes: a query in an API process waits for the
// checkpoint that the projectors of another process move. Every write
// whose X-Position the client has
// received has committed before its query is sent, so the query sees it
// and waits for it: a client never misses its own writes, nor any write
// with a lower position that had committed by then, whichever order the
// transactions committed in. Writes still in flight when the query arrives
// are not waited for (the client cannot have seen them), and a position
// that never committed (a rolled-back transaction, or one beyond the head)
// does not block. Events of other categories never delay a projection.
//
// # Adding a projection
//
//  1. Choose a permanent name and the categories to read (the part of the
//     stream id before the first '-': "booking", "resource", "tenant",
//     "user", "schedule", …).
//  2. Write the fold: a function that applies one event to a row,
//     skipping events whose StreamVersion is not above the row's recorded
//     version, shared by both implementations. It receives only the
//     events above the projection's applied versions. Take the payload from
//     Event.Payload when the feed decoded it (package
//     projections/internal/decode does both).
//  3. PostgreSQL: embed a migration set for the tables and build the
//     projection with pgprojection.New from a Definition whose Apply folds
//     a whole batch inside the given transaction: load only the rows the
//     batch does not create, fold in Go, write new rows with COPY and
//     changed ones with one upsert guarded by the version (see package
//     bookings). pgprojection supplies the checkpoint, the applied
//     versions, the lock, Reset and the bulk load of rebuilds. Memory:
//     guard the rows and a MemoryCheckpoint with one mutex, fold the
//     events MemoryCheckpoint.Begin returns, stage a batch's changes so
//     that a failing event leaves nothing behind, and Commit.
//  4. Give the queries what they read through an interface of package
//     queries, implemented by both read models.
//  5. Run one contract suite over both implementations, with a
//     redelivery and an out-of-order case (package projectiontest helps),
//     and add the projection to package readside (Open, Migrations), which
//     bookingd and bookingctl wire, and to the rebuild-equals-live test.
package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Event is a stored event as a projection receives it. Data is the JSON
// payload at its current schema version (the store upcasts before
// delivery); decode it with domain.UnmarshalEvent.
type Event struct {
	// Position is the global position; TransactionID the appending
	// transaction (0 for an event delivered by the message bus).
	Position      int64
	TransactionID uint64
	ID            uuid.UUID
	Type          string
	EventVersion  int
	TenantID      uuid.UUID
	StreamID      string
	StreamVersion int64
	RecordedAt    time.Time
	Data          json.RawMessage
	// Payload, when not nil, is Data already decoded by the feed (package
	// eventsource decodes ahead of the apply, in parallel): the
	// domain.Event value that domain.UnmarshalEvent returns. Read models
	// must not modify it.
	Payload any
}

// Cursor names a place in the store's read-all order, (TransactionID,
// Position): the last event delivered. The zero Cursor lies before the
// first event.
type Cursor struct {
	TransactionID uint64
	Position      int64
}

// CursorOf returns the cursor that names e.
func CursorOf(e Event) Cursor { return Cursor{TransactionID: e.TransactionID, Position: e.Position} }

// Compare returns -1, 0 or +1 as c lies before, at or after d in read-all
// order.
func (c Cursor) Compare(d Cursor) int {
	switch {
	case c.TransactionID < d.TransactionID:
		return -1
	case c.TransactionID > d.TransactionID:
		return 1
	case c.Position < d.Position:
		return -1
	case c.Position > d.Position:
		return 1
	}
	return 0
}

// Before reports whether c lies before d in read-all order.
func (c Cursor) Before(d Cursor) bool { return c.Compare(d) < 0 }

// String renders the cursor for logs and errors.
func (c Cursor) String() string { return fmt.Sprintf("%d/%d", c.TransactionID, c.Position) }

// Batch is what a projection applies in one step.
type Batch struct {
	// Events are in read-all order (from the store) or in stream order per
	// stream (from the bus). Events of types the projection does not use
	// are skipped, but still move the checkpoint.
	Events []Event
	// From is the checkpoint the feeder read after and To the cursor of the
	// batch's last event. Apply stores To as the checkpoint together with
	// the rows. It refuses the batch with ErrCheckpointMoved when the
	// stored checkpoint is not From (another process applied it, or a
	// rebuild reset the projection); the feeder then re-reads the
	// checkpoint and carries on from there.
	From, To Cursor
	// FromBus marks a delivery of the message bus: it carries no cursor, so
	// From and To are ignored and the checkpoint stays where it is; the
	// applied stream versions alone make the delivery idempotent.
	FromBus bool
	// Contiguous, with FromBus, refuses the batch with a *GapError when a
	// stream's first unapplied event is not the version after the one
	// the projection applied: package busfeed sets it, and fills the gap
	// from the store, so that an applied version always means that every
	// version up to it is applied. Without it a bus batch may skip
	// versions, and the skipped ones are ignored when they come.
	Contiguous bool
}

// ErrCheckpointMoved is returned by Projection.Apply when the stored
// checkpoint is not the batch's From cursor. Nothing was applied.
var ErrCheckpointMoved = errors.New("projections: checkpoint moved")

// Projection is a read model kept current from the event log.
// Implementations are safe for concurrent use.
type Projection interface {
	// Name is the projection's permanent name: its checkpoint key and,
	// fed from the bus, its consumer group. Changing it replays history.
	Name() string
	// Categories are the event-store categories it reads.
	Categories() []string
	// Apply applies the batch atomically with its checkpoint (see Batch).
	// It is idempotent per stream version. It returns ErrCheckpointMoved
	// as Batch describes, or the read model's error, with nothing applied.
	Apply(ctx context.Context, b Batch) error
	// Checkpoint returns the cursor of the last event applied from the
	// store (the zero Cursor before the first).
	Checkpoint(ctx context.Context) (Cursor, error)
	// Reset empties the read model and its checkpoint, for a rebuild.
	Reset(ctx context.Context) error
	// Changed returns a channel closed at the next successful Apply or
	// Reset in this process, so a waiter in the same process wakes without
	// polling. Waiters in other processes poll Checkpoint.
	Changed() <-chan struct{}
	// AppliedVersions returns, for each of the streams that the
	// projection has applied events of, the highest stream version it
	// applied (recorded with the read model by every Apply, from the
	// store or the bus, and emptied by Reset); streams it has applied
	// nothing of are absent. Every version up to the returned one has
	// been applied, except when the store itself delivered a stream out
	// of order.
	AppliedVersions(ctx context.Context, streamIDs []string) (map[string]int64, error)
}

// GapError is returned by Projection.Apply for a contiguous bus batch
// (FromBus and Contiguous) whose first unapplied event of a stream is not the version after the
// stream's applied one: the versions in between have not reached the
// projection. Nothing was applied. The feeder loads the stream's events
// after Applied from the store and applies them first (package busfeed).
type GapError struct {
	StreamID string
	// Applied is the stream's applied version (0 when none) and Next the
	// version the batch offered.
	Applied, Next int64
}

func (e *GapError) Error() string {
	return fmt.Sprintf("projections: stream %s: version %d follows applied version %d", e.StreamID, e.Next, e.Applied)
}

// Unapplied returns the events of evs that are above the applied version
// of their stream, given the versions applied so far (which it raises as
// it goes, so a batch that repeats an event keeps one). When contiguous
// (Batch.Contiguous) it returns a *GapError, and no events, when a stream's
// first unapplied event is not the next version. The read models call it
// inside their apply, with the versions read in the same transaction or
// under the same lock.
func Unapplied(evs []Event, applied map[string]int64, contiguous bool) ([]Event, error) {
	out := make([]Event, 0, len(evs))
	for _, e := range evs {
		v := applied[e.StreamID]
		if e.StreamVersion <= v {
			continue
		}
		if contiguous && e.StreamVersion != v+1 {
			return nil, &GapError{StreamID: e.StreamID, Applied: v, Next: e.StreamVersion}
		}
		applied[e.StreamID] = e.StreamVersion
		out = append(out, e)
	}
	return out, nil
}

// StreamIDs returns the distinct stream ids of evs, in order of first
// appearance.
func StreamIDs(evs []Event) []string {
	seen := make(map[string]bool, len(evs))
	var out []string
	for _, e := range evs {
		if !seen[e.StreamID] {
			seen[e.StreamID] = true
			out = append(out, e.StreamID)
		}
	}
	return out
}

// BulkLoader is implemented by read models that load faster without their
// secondary indexes (PostgreSQL: each row then updates a heap page, not a
// handful of index pages at random). Rebuild calls BeginBulk right after
// Reset and EndBulk after the last batch, also when the rebuild fails, so
// the read model lacks its indexes only while it is incomplete anyway.
// Both are idempotent; EndBulk also repairs a rebuild that died half-way.
type BulkLoader interface {
	BeginBulk(ctx context.Context) error
	EndBulk(ctx context.Context) error
}

// Source is where a Runner reads events: the event store, through package
// eventsource. Implementations are safe for concurrent use.
type Source interface {
	// ReadAll returns up to limit events of the categories (all when
	// empty) after the cursor, in read-all order, only events that no later
	// commit can precede.
	ReadAll(ctx context.Context, after Cursor, categories []string, limit int) ([]Event, error)
	// Wait returns when events of the categories after the cursor may have
	// been stored, after at most the source's poll interval, or when ctx
	// ends.
	Wait(ctx context.Context, after Cursor, categories []string)
	// Target returns the greatest read-all cursor among the committed
	// events of the categories that lie after the cursor and have a
	// position <= position; ok is false when there is none (see the
	// package doc for why committed, not merely readable, events count).
	Target(ctx context.Context, after Cursor, categories []string, position int64) (target Cursor, ok bool, err error)
}
