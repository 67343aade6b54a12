// Package eventstore defines the append-only log of booking events that every
// command writes to and every projection reads from, and the contract that
// both of its implementations (package postgres, on the PostgreSQL table
// booking_events, and package memory, embedded) honour.
//
// # Guarantees
//
//   - Append writes events to one or more streams atomically: either every
//     stream's expectation holds and all events are stored, or nothing is.
//     A stale expectation fails the whole append with a *VersionConflictError
//     naming the stream, the expected and the actual version.
//   - An append whose event ids are all stored already returns the original
//     positions and changes nothing, so a retried command is harmless.
//   - Events of one stream carry consecutive versions starting at 1 and a
//     SHA-256 hash chain: each event's hash covers the previous event's hash
//     and the event's canonical bytes, so Verify finds an edited, inserted
//     or deleted row.
//   - ReadAll returns every committed event exactly once, in commit-safe
//     order, and never skips an event that committed late with a lower
//     position than one already read (see package postgres for the xid8
//     watermark that provides this on PostgreSQL).
package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// ExpectedVersion states what an append expects of a stream's current
// version. Use Any, NoStream or Exact.
type ExpectedVersion int64

const (
	// Any appends whatever the stream's current version is.
	Any ExpectedVersion = -1
	// NoStream appends only if the stream has no event yet.
	NoStream ExpectedVersion = 0
)

// Exact expects the stream to be at version v (v = 0 is the same as NoStream).
func Exact(v int64) ExpectedVersion { return ExpectedVersion(v) }

// String renders the expectation for error messages.
func (e ExpectedVersion) String() string {
	switch {
	case e == Any:
		return "any"
	case e == NoStream:
		return "no stream"
	default:
		return fmt.Sprintf("%d", int64(e))
	}
}

// Metadata travels with every event. It is stored as JSONB and hashed.
type Metadata struct {
	CorrelationID  string `json:"correlation_id,omitempty"`
	CausationID    string `json:"causation_id,omitempty"`
	Actor          string `json:"actor,omitempty"`
	ActorRole      string `json:"actor_role,omitempty"`
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	RequestID      string `json:"request_id,omitempty"`
}

// EventData is an event to append.
type EventData struct {
	// ID identifies the event globally. Callers choose it (uuid.New, or a
	// deterministic id derived from an idempotency key) so that a retry can
	// be recognised.
	ID uuid.UUID
	// Type is the schema name, e.g. "booking.created". Never rename one.
	Type string
	// Version is the schema version of Data for Type, starting at 1.
	Version int
	// Data is the JSON payload: an object.
	Data json.RawMessage
	// Metadata is stored beside the data.
	Metadata Metadata
}

// StreamAppend is the part of an Append that goes to one stream.
type StreamAppend struct {
	StreamID string
	TenantID uuid.UUID
	Expected ExpectedVersion
	Events   []EventData
}

// AppendResult reports where an append's events landed.
type AppendResult struct {
	// LastPosition is the global position of the last event appended (the
	// greatest position of the append). Commands return it as X-Position.
	LastPosition int64
	// Versions maps each stream id to its version after the append.
	Versions map[string]int64
	// Duplicate is true when every event id was already stored: nothing
	// was written and the result describes the original append.
	Duplicate bool
}

// RecordedEvent is an event as stored.
type RecordedEvent struct {
	// Position is the global position (PostgreSQL identity). Positions
	// increase with insertion but may commit out of order and have gaps.
	Position int64
	// TransactionID is the xid8 of the appending transaction (on the memory
	// store, equal to Position).
	TransactionID uint64
	TenantID      uuid.UUID
	StreamID      string
	// Category is the part of StreamID before the first '-' (see Category).
	Category      string
	StreamVersion int64
	ID            uuid.UUID
	Type          string
	EventVersion  int
	Data          json.RawMessage
	Metadata      Metadata
	RecordedAt    time.Time
	// Hash is SHA-256(previous event's Hash || canonical bytes of this event).
	Hash []byte
}

// StreamCursor names a stream and the version after which to read it.
type StreamCursor struct {
	StreamID     string
	AfterVersion int64
}

// Cursor is a resumable read-all position: events are ordered by
// (TransactionID, Position) and a cursor names the last event delivered.
// The zero Cursor starts at the beginning.
type Cursor struct {
	TransactionID uint64 `json:"transaction_id"`
	Position      int64  `json:"position"`
}

// After reports whether e comes after c in read-all order.
func (c Cursor) After(e RecordedEvent) bool {
	if e.TransactionID != c.TransactionID {
		return e.TransactionID > c.TransactionID
	}
	return e.Position > c.Position
}

// CursorOf returns the cursor that names e.
func CursorOf(e RecordedEvent) Cursor {
	return Cursor{TransactionID: e.TransactionID, Position: e.Position}
}

// Filter narrows ReadAll. Zero fields match everything.
type Filter struct {
	Categories []string
	TenantID   uuid.UUID
	// PayloadOnly leaves each event's Metadata and Hash empty, for a
	// reader that needs neither (a projection): less for the store to
	// send and for the client to decode. It selects nothing.
	PayloadOnly bool
}

// Snapshot is a serialized aggregate state at a stream version.
type Snapshot struct {
	StreamID string
	Version  int64
	// SchemaVersion lets the aggregate ignore snapshots of an old shape.
	SchemaVersion int
	State         json.RawMessage
}

// VerifyReport names the first broken event of each broken stream.
type VerifyReport struct {
	StreamsChecked int
	EventsChecked  int64
	Breaks         []Break
}

// OK reports whether no break was found.
func (r VerifyReport) OK() bool { return len(r.Breaks) == 0 }

// Break describes the first event at which a stream's chain fails.
type Break struct {
	StreamID string
	// Version is the stream version at which the break was found (the
	// version expected when a row is missing).
	Version  int64
	Position int64
	// Reason is "hash_mismatch", "version_gap" or "version_duplicate".
	Reason string
}

// Store is the event store. Implementations are safe for concurrent use.
type Store interface {
	// Append stores the events of every StreamAppend in one atomic step.
	// It returns a *VersionConflictError (errors.Is ErrVersionConflict)
	// when an expectation is stale and nothing was written; ErrInvalidAppend
	// for malformed input (empty stream id, no events, non-object data,
	// the same stream twice). If every event id is already stored it
	// returns the original positions with Duplicate set; if only some are,
	// it returns ErrDuplicateEvent.
	Append(ctx context.Context, appends ...StreamAppend) (AppendResult, error)

	// Load returns the events of a stream with StreamVersion > afterVersion,
	// oldest first, upcast. A stream that does not exist yields no events
	// and no error.
	Load(ctx context.Context, streamID string, afterVersion int64) ([]RecordedEvent, error)

	// LoadStreams returns, in one round trip, the events of each named
	// stream with StreamVersion > its AfterVersion, oldest first, upcast,
	// keyed by stream id. Streams without such events are absent from the
	// map. Naming a stream twice is ErrInvalidAppend's read twin:
	// ErrInvalidRead.
	LoadStreams(ctx context.Context, streams []StreamCursor) (map[string][]RecordedEvent, error)

	// StreamVersion returns the stream's current version (0 if none).
	StreamVersion(ctx context.Context, streamID string) (int64, error)

	// ReadAll returns up to limit events after the cursor that match the
	// filter, in (TransactionID, Position) order, upcast, and only events
	// whose position can no longer be preceded by a later commit.
	ReadAll(ctx context.Context, after Cursor, filter Filter, limit int) ([]RecordedEvent, error)

	// HeadPosition returns the greatest committed position (0 when empty).
	HeadPosition(ctx context.Context) (int64, error)

	// SaveSnapshot stores or replaces the stream's snapshot. LoadSnapshot
	// returns ErrNoSnapshot when none is stored.
	SaveSnapshot(ctx context.Context, s Snapshot) error
	LoadSnapshot(ctx context.Context, streamID string) (Snapshot, error)

	// Checkpoint returns the named subscriber's cursor (zero if none);
	// SaveCheckpoint stores it.
	Checkpoint(ctx context.Context, name string) (Cursor, error)
	SaveCheckpoint(ctx context.Context, name string, c Cursor) error

	// Verify checks the hash chain and version sequence of one stream, or
	// of every stream when streamID is empty (and of one tenant's streams
	// when tenantID is not uuid.Nil).
	Verify(ctx context.Context, streamID string, tenantID uuid.UUID) (VerifyReport, error)

	// Upcasters returns the registry applied on read; register upcasters
	// before the store is used concurrently.
	Upcasters() *Upcasters

	// Close releases the store's resources.
	Close()
}

var (
	// ErrVersionConflict is matched by every *VersionConflictError.
	ErrVersionConflict = errors.New("eventstore: stream version conflict")
	// ErrInvalidAppend reports a malformed append.
	ErrInvalidAppend = errors.New("eventstore: invalid append")
	// ErrDuplicateEvent reports an append in which some, but not all,
	// event ids were already stored.
	ErrDuplicateEvent = errors.New("eventstore: some event ids already stored")
	// ErrInvalidRead reports a malformed read (a stream named twice, an
	// empty stream id).
	ErrInvalidRead = errors.New("eventstore: invalid read")
	// ErrNoSnapshot reports that a stream has no snapshot.
	ErrNoSnapshot = errors.New("eventstore: no snapshot")
)

// VersionConflictError reports a stale expectation.
type VersionConflictError struct {
	StreamID string
	Expected ExpectedVersion
	Actual   int64
}

func (e *VersionConflictError) Error() string {
	return fmt.Sprintf("eventstore: stream %s: expected version %s, actual %d", e.StreamID, e.Expected, e.Actual)
}

// Is makes errors.Is(err, ErrVersionConflict) true.
func (e *VersionConflictError) Is(target error) bool { return target == ErrVersionConflict }

// Category returns the category of a stream id: the part before the first
// '-' ("booking-<uuid>" → "booking"), or the whole id when it has none.
func Category(streamID string) string {
	if i := strings.IndexByte(streamID, '-'); i >= 0 {
		return streamID[:i]
	}
	return streamID
}

// ValidateAppends checks the shape of an append; stores call it first.
func ValidateAppends(appends []StreamAppend) error {
	if len(appends) == 0 {
		return fmt.Errorf("%w: nothing to append", ErrInvalidAppend)
	}
	seenStreams := make(map[string]bool, len(appends))
	seenIDs := make(map[uuid.UUID]bool)
	for _, a := range appends {
		if a.StreamID == "" {
			return fmt.Errorf("%w: empty stream id", ErrInvalidAppend)
		}
		if seenStreams[a.StreamID] {
			return fmt.Errorf("%w: stream %s named twice", ErrInvalidAppend, a.StreamID)
		}
		seenStreams[a.StreamID] = true
		if a.Expected < Any {
			return fmt.Errorf("%w: stream %s: bad expected version %d", ErrInvalidAppend, a.StreamID, int64(a.Expected))
		}
		if len(a.Events) == 0 {
			return fmt.Errorf("%w: stream %s: no events", ErrInvalidAppend, a.StreamID)
		}
		for _, e := range a.Events {
			if e.ID == uuid.Nil {
				return fmt.Errorf("%w: stream %s: event without id", ErrInvalidAppend, a.StreamID)
			}
			if seenIDs[e.ID] {
				return fmt.Errorf("%w: event id %s twice", ErrInvalidAppend, e.ID)
			}
			seenIDs[e.ID] = true
			if e.Type == "" {
				return fmt.Errorf("%w: stream %s: event %s without type", ErrInvalidAppend, a.StreamID, e.ID)
			}
			if e.Version < 1 {
				return fmt.Errorf("%w: stream %s: event %s: version %d < 1", ErrInvalidAppend, a.StreamID, e.ID, e.Version)
			}
			if !isJSONObject(e.Data) {
				return fmt.Errorf("%w: stream %s: event %s: data is not a JSON object", ErrInvalidAppend, a.StreamID, e.ID)
			}
		}
	}
	return nil
}

// ValidateStreamCursors checks the shape of a LoadStreams request.
func ValidateStreamCursors(streams []StreamCursor) error {
	seen := make(map[string]bool, len(streams))
	for _, c := range streams {
		if c.StreamID == "" {
			return fmt.Errorf("%w: empty stream id", ErrInvalidRead)
		}
		if seen[c.StreamID] {
			return fmt.Errorf("%w: stream %s named twice", ErrInvalidRead, c.StreamID)
		}
		seen[c.StreamID] = true
	}
	return nil
}

func isJSONObject(b json.RawMessage) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '{':
			return json.Valid(b)
		default:
			return false
		}
	}
	return false
}
