// Package memory is the embedded event store: the default when no
// DATABASE_URL is configured, and the store of fast tests.
//
// It honours the whole eventstore.Store contract that the PostgreSQL store
// honours (the shared suite in package storetest checks both), but keeps
// everything in the process's memory: a restart loses every event. It is
// meant for development, demos and tests, never for data that matters.
//
// # Positions and order
//
// Appends are serialised by one lock, so positions are consecutive from 1,
// commit in position order, and TransactionID equals Position. ReadAll can
// therefore return every stored event at once; there is no watermark to
// wait for.
//
// # Hash chain
//
// Each event's Hash is SHA-256 over the previous event's hash (nothing for
// version 1) followed by the event's canonical bytes, defined here as the
// concatenation of
//
//	tenant id            16 bytes
//	stream id            length-prefixed
//	stream version       8 bytes, big endian
//	event id             16 bytes
//	type                 length-prefixed
//	event version        8 bytes, big endian
//	data                 length-prefixed, the bytes as stored (compacted JSON)
//	correlation id, causation id, actor, actor role, idempotency key,
//	request id           each length-prefixed
//	recorded at          8 bytes, big endian, Unix microseconds
//
// where length-prefixed means an 8-byte big-endian length, then the bytes.
// The prefixes make the encoding injective: no two different events share
// canonical bytes. The store also keeps each stream's head (last version
// and hash) apart from its events, so Verify finds a deleted last event.
//
// # Waiting for events
//
// Notify returns a channel that is closed when events beyond a position
// are stored, so that a tailing reader (the relay, the projectors) waits
// instead of polling.
package memory

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/bookingengine/booking/eventstore"
)

// ErrClosed is returned by every operation on a store after Close.
var ErrClosed = errors.New("memory: event store closed")

// readChunk bounds how many stored events ReadAll scans while holding the
// read lock, so that a filtered read over a long history does not stall
// appends.
const readChunk = 1024

// closedChan is returned by Notify when there is no need to wait.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// Store is the in-memory eventstore.Store. The zero value is not usable;
// call New. It is safe for concurrent use. Appends take an exclusive lock
// for as long as it takes to check and link the new events (work in the
// number of events appended, never in the size of the history); reads take
// a shared lock and copy, and upcast outside it.
type Store struct {
	upcasters *eventstore.Upcasters

	mu          sync.RWMutex
	log         []record // index = position - 1
	streams     map[string]*stream
	ids         map[uuid.UUID]int64 // event id → position
	snapshots   map[string]eventstore.Snapshot
	checkpoints map[string]eventstore.Cursor
	appended    chan struct{} // closed, then replaced, on every append
	closed      bool
}

// record is a stored event. Its byte slices (Data, Hash) are never written
// to once stored, only replaced, so readers may copy them after releasing
// the lock.
type record struct {
	ev      eventstore.RecordedEvent
	deleted bool // removed behind the store's back (tamper tests only)
}

// stream is the per-stream index and head.
type stream struct {
	tenant uuid.UUID // tenant of the stream's first event
	rows   []int64   // positions of the stream's events, in version order
	// version and hash are the head: the last version appended and its
	// hash. They are kept apart from rows so that Verify can tell a
	// deleted last event from one that never existed.
	version int64
	hash    []byte
}

var _ eventstore.Store = (*Store)(nil)

// New returns an empty store with an empty upcaster registry.
func New() *Store {
	return &Store{
		upcasters:   eventstore.NewUpcasters(),
		streams:     map[string]*stream{},
		ids:         map[uuid.UUID]int64{},
		snapshots:   map[string]eventstore.Snapshot{},
		checkpoints: map[string]eventstore.Cursor{},
		appended:    make(chan struct{}),
	}
}

// Append stores the events of every StreamAppend atomically, as
// eventstore.Store.Append states: ErrInvalidAppend for malformed input;
// for a retry whose event ids are all stored, the original positions with
// Duplicate set (checked before the expectations, since a retry's
// expectation is usually stale by then); ErrDuplicateEvent when only some
// are stored; a *VersionConflictError, naming the first stale stream, when
// an expectation fails; the context's error if ctx is done before the
// append begins; ErrClosed after Close. On any error nothing is stored.
// Data is copied (and compacted), so the caller may reuse its buffers.
func (s *Store) Append(ctx context.Context, appends ...eventstore.StreamAppend) (eventstore.AppendResult, error) {
	if err := eventstore.ValidateAppends(appends); err != nil {
		return eventstore.AppendResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("append: %w", err)
	}
	data := make([][]json.RawMessage, len(appends))
	for i, a := range appends {
		data[i] = make([]json.RawMessage, len(a.Events))
		for j, e := range a.Events {
			var buf bytes.Buffer
			buf.Grow(len(e.Data))
			if err := json.Compact(&buf, e.Data); err != nil {
				// ValidateAppends accepted it, so this cannot happen.
				return eventstore.AppendResult{}, fmt.Errorf("%w: stream %s: event %s: %w", eventstore.ErrInvalidAppend, a.StreamID, e.ID, err)
			}
			data[i][j] = buf.Bytes()
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return eventstore.AppendResult{}, ErrClosed
	}
	if res, dup, err := s.duplicateLocked(appends); dup || err != nil {
		return res, err
	}
	for _, a := range appends {
		var actual int64
		if st := s.streams[a.StreamID]; st != nil {
			actual = st.version
		}
		if a.Expected != eventstore.Any && int64(a.Expected) != actual {
			return eventstore.AppendResult{}, &eventstore.VersionConflictError{StreamID: a.StreamID, Expected: a.Expected, Actual: actual}
		}
	}

	// Like PostgreSQL's now(), one timestamp for the whole append.
	now := time.Now().UTC().Truncate(time.Microsecond)
	res := eventstore.AppendResult{Versions: make(map[string]int64, len(appends))}
	h := sha256.New()
	var scratch []byte
	for i, a := range appends {
		st := s.streams[a.StreamID]
		if st == nil {
			st = &stream{tenant: a.TenantID}
			s.streams[a.StreamID] = st
		}
		category := eventstore.Category(a.StreamID)
		for j, e := range a.Events {
			pos := int64(len(s.log)) + 1
			st.version++
			ev := eventstore.RecordedEvent{
				Position:      pos,
				TransactionID: uint64(pos),
				TenantID:      a.TenantID,
				StreamID:      a.StreamID,
				Category:      category,
				StreamVersion: st.version,
				ID:            e.ID,
				Type:          e.Type,
				EventVersion:  e.Version,
				Data:          data[i][j],
				Metadata:      e.Metadata,
				RecordedAt:    now,
			}
			scratch = chainHash(h, scratch, st.hash, &ev)
			ev.Hash = h.Sum(nil)
			st.hash = ev.Hash
			s.log = append(s.log, record{ev: ev})
			st.rows = append(st.rows, pos)
			s.ids[e.ID] = pos
		}
		res.Versions[a.StreamID] = st.version
	}
	res.LastPosition = int64(len(s.log))

	close(s.appended)
	s.appended = make(chan struct{})
	return res, nil
}

// duplicateLocked reports whether the append's event ids are stored: all
// of them (dup, with the original result), some (ErrDuplicateEvent) or none.
func (s *Store) duplicateLocked(appends []eventstore.StreamAppend) (eventstore.AppendResult, bool, error) {
	var found, total int
	var firstFound uuid.UUID
	for _, a := range appends {
		for _, e := range a.Events {
			total++
			if _, ok := s.ids[e.ID]; ok {
				if found == 0 {
					firstFound = e.ID
				}
				found++
			}
		}
	}
	switch {
	case found == 0:
		return eventstore.AppendResult{}, false, nil
	case found < total:
		return eventstore.AppendResult{}, false, fmt.Errorf("%w: %d of %d, e.g. %s", eventstore.ErrDuplicateEvent, found, total, firstFound)
	}
	res := eventstore.AppendResult{Duplicate: true, Versions: map[string]int64{}}
	for _, a := range appends {
		for _, e := range a.Events {
			ev := &s.log[s.ids[e.ID]-1].ev
			res.LastPosition = max(res.LastPosition, ev.Position)
			res.Versions[ev.StreamID] = max(res.Versions[ev.StreamID], ev.StreamVersion)
		}
	}
	return res, true, nil
}

// chainHash resets h and writes prev followed by the canonical bytes of e
// (see the package doc) into it, using scratch as a buffer; it returns the
// buffer for reuse.
func chainHash(h hash.Hash, scratch, prev []byte, e *eventstore.RecordedEvent) []byte {
	b := scratch[:0]
	b = append(b, prev...)
	b = append(b, e.TenantID[:]...)
	b = appendField(b, e.StreamID)
	b = binary.BigEndian.AppendUint64(b, uint64(e.StreamVersion))
	b = append(b, e.ID[:]...)
	b = appendField(b, e.Type)
	b = binary.BigEndian.AppendUint64(b, uint64(e.EventVersion))
	b = appendField(b, e.Data)
	m := &e.Metadata
	for _, f := range [...]string{m.CorrelationID, m.CausationID, m.Actor, m.ActorRole, m.IdempotencyKey, m.RequestID} {
		b = appendField(b, f)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(e.RecordedAt.UnixMicro()))
	h.Reset()
	h.Write(b)
	return b
}

func appendField[T string | []byte | json.RawMessage](b []byte, f T) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(len(f)))
	return append(b, f...)
}

// Load returns the stream's events after afterVersion, oldest first,
// copied and upcast. An unknown stream yields no events and no error. It
// returns the upcaster's error (wrapped) if one fails, the context's error
// if ctx is done, ErrClosed after Close.
func (s *Store) Load(ctx context.Context, streamID string, afterVersion int64) ([]eventstore.RecordedEvent, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("load stream %s: %w", streamID, err)
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, ErrClosed
	}
	var out []eventstore.RecordedEvent
	if st := s.streams[streamID]; st != nil {
		i := sort.Search(len(st.rows), func(i int) bool {
			return s.log[st.rows[i]-1].ev.StreamVersion > afterVersion
		})
		if n := len(st.rows) - i; n > 0 {
			out = make([]eventstore.RecordedEvent, 0, n)
			for _, pos := range st.rows[i:] {
				out = append(out, s.log[pos-1].ev)
			}
		}
	}
	s.mu.RUnlock()

	if err := s.prepare(out); err != nil {
		return nil, fmt.Errorf("load stream %s: %w", streamID, err)
	}
	return out, nil
}

// LoadStreams returns the events of several streams at once; see
// eventstore.Store. The streams are read under one lock, so they form a
// consistent snapshot. Safe for concurrent use.
func (s *Store) LoadStreams(ctx context.Context, streams []eventstore.StreamCursor) (map[string][]eventstore.RecordedEvent, error) {
	if err := eventstore.ValidateStreamCursors(streams); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("load %d streams: %w", len(streams), err)
	}
	out := make(map[string][]eventstore.RecordedEvent, len(streams))
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, ErrClosed
	}
	for _, c := range streams {
		st := s.streams[c.StreamID]
		if st == nil {
			continue
		}
		i := sort.Search(len(st.rows), func(i int) bool {
			return s.log[st.rows[i]-1].ev.StreamVersion > c.AfterVersion
		})
		if n := len(st.rows) - i; n > 0 {
			evs := make([]eventstore.RecordedEvent, 0, n)
			for _, pos := range st.rows[i:] {
				evs = append(evs, s.log[pos-1].ev)
			}
			out[c.StreamID] = evs
		}
	}
	s.mu.RUnlock()
	for id, evs := range out {
		if err := s.prepare(evs); err != nil {
			return nil, fmt.Errorf("load stream %s: %w", id, err)
		}
	}
	return out, nil
}

// prepare gives the caller its own copies of the events' byte slices and
// upcasts them.
func (s *Store) prepare(evs []eventstore.RecordedEvent) error {
	for i := range evs {
		e := &evs[i]
		e.Data = bytes.Clone(e.Data)
		e.Hash = bytes.Clone(e.Hash)
		if err := s.upcasters.Upcast(e); err != nil {
			return err
		}
	}
	return nil
}

// StreamVersion returns the stream's current version, 0 for an unknown
// stream; ErrClosed after Close.
func (s *Store) StreamVersion(ctx context.Context, streamID string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("stream version %s: %w", streamID, err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, ErrClosed
	}
	if st := s.streams[streamID]; st != nil {
		return st.version, nil
	}
	return 0, nil
}

// ReadAll returns up to limit events after the cursor that match the
// filter, in position order (which is read-all order here), copied and
// upcast. Every stored event is safe to read at once, since appends commit
// in position order. A limit below 1 returns no events. It returns the
// upcaster's error (wrapped) if one fails, the context's error if ctx is
// done, ErrClosed after Close.
func (s *Store) ReadAll(ctx context.Context, after eventstore.Cursor, filter eventstore.Filter, limit int) ([]eventstore.RecordedEvent, error) {
	var out []eventstore.RecordedEvent
	// With TransactionID = Position, the first event after the cursor is
	// at position after.TransactionID or the next one.
	next := uint64(0)
	if after.TransactionID > 0 {
		next = after.TransactionID - 1
	}
	for limit > len(out) {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("read all: %w", err)
		}
		s.mu.RLock()
		if s.closed {
			s.mu.RUnlock()
			return nil, ErrClosed
		}
		end := uint64(len(s.log))
		if next >= end {
			s.mu.RUnlock()
			break
		}
		stop := min(end, next+readChunk)
		for ; next < stop && limit > len(out); next++ {
			r := &s.log[next]
			if r.deleted || !after.After(r.ev) || !matches(filter, &r.ev) {
				continue
			}
			out = append(out, r.ev)
		}
		s.mu.RUnlock()
	}

	if err := s.prepare(out); err != nil {
		return nil, fmt.Errorf("read all: %w", err)
	}
	if filter.PayloadOnly {
		for i := range out {
			out[i].Metadata, out[i].Hash = eventstore.Metadata{}, nil
		}
	}
	return out, nil
}

func matches(f eventstore.Filter, e *eventstore.RecordedEvent) bool {
	if f.TenantID != uuid.Nil && f.TenantID != e.TenantID {
		return false
	}
	return len(f.Categories) == 0 || slices.Contains(f.Categories, e.Category)
}

// HeadPosition returns the greatest stored position, 0 when empty;
// ErrClosed after Close.
func (s *Store) HeadPosition(ctx context.Context) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("head position: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, ErrClosed
	}
	return int64(len(s.log)), nil
}

// Notify returns a channel that is closed once the store holds an event
// with a position greater than after, or once the store is closed; a
// channel already closed when that holds now. It lets a tailing reader
// wait instead of polling:
//
//	for {
//		evs, err := s.ReadAll(ctx, cur, filter, 100)
//		// handle err, deliver evs, advance cur
//		if len(evs) == 0 {
//			select {
//			case <-s.Notify(cur.Position):
//			case <-ctx.Done():
//			}
//		}
//	}
//
// A filtered reader is woken by every append, matching or not, and reads
// again. Safe for concurrent use; the channel is shared by every waiter,
// so the caller must not close it.
func (s *Store) Notify(after int64) <-chan struct{} {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed || int64(len(s.log)) > after {
		return closedChan
	}
	return s.appended
}

// SaveSnapshot stores or replaces the stream's snapshot, a copy of s. It
// returns an error when the state is not valid JSON (the PostgreSQL store
// keeps it as jsonb), the context's error, or ErrClosed after Close.
// Saving the same snapshot twice is harmless.
func (s *Store) SaveSnapshot(ctx context.Context, snap eventstore.Snapshot) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("save snapshot %s: %w", snap.StreamID, err)
	}
	if !json.Valid(snap.State) {
		return fmt.Errorf("memory: save snapshot %s: state is not valid JSON", snap.StreamID)
	}
	snap.State = bytes.Clone(snap.State)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.snapshots[snap.StreamID] = snap
	return nil
}

// LoadSnapshot returns a copy of the stream's snapshot, ErrNoSnapshot when
// none is stored, or ErrClosed after Close.
func (s *Store) LoadSnapshot(ctx context.Context, streamID string) (eventstore.Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return eventstore.Snapshot{}, fmt.Errorf("load snapshot %s: %w", streamID, err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return eventstore.Snapshot{}, ErrClosed
	}
	snap, ok := s.snapshots[streamID]
	if !ok {
		return eventstore.Snapshot{}, fmt.Errorf("load snapshot %s: %w", streamID, eventstore.ErrNoSnapshot)
	}
	snap.State = bytes.Clone(snap.State)
	return snap, nil
}

// Checkpoint returns the named subscriber's cursor, the zero Cursor when
// none is saved; ErrClosed after Close.
func (s *Store) Checkpoint(ctx context.Context, name string) (eventstore.Cursor, error) {
	if err := ctx.Err(); err != nil {
		return eventstore.Cursor{}, fmt.Errorf("checkpoint %s: %w", name, err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return eventstore.Cursor{}, ErrClosed
	}
	return s.checkpoints[name], nil
}

// SaveCheckpoint stores the named subscriber's cursor, replacing any
// earlier one (also a later one: rewinding is allowed). Idempotent;
// ErrClosed after Close.
func (s *Store) SaveCheckpoint(ctx context.Context, name string, c eventstore.Cursor) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("save checkpoint %s: %w", name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.checkpoints[name] = c
	return nil
}

// Verify checks the version sequence and hash chain of one stream, or of
// every stream (of one tenant, when tenantID is not uuid.Nil, judged by the
// tenant of the stream's first event), and reports the first break of each
// broken stream, streams in id order. Besides the rows, it checks each
// stream's head, so a deleted last event is a "version_gap" at the missing
// version. It takes the read lock one stream at a time, so appends go on
// meanwhile (a stream appended to during the check is checked as it was
// when its turn came). An unknown stream is reported clean with nothing
// checked. It returns the context's error if ctx ends, ErrClosed after
// Close.
func (s *Store) Verify(ctx context.Context, streamID string, tenantID uuid.UUID) (eventstore.VerifyReport, error) {
	var report eventstore.VerifyReport
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return report, ErrClosed
	}
	var names []string
	if streamID != "" {
		if st := s.streams[streamID]; st != nil && (tenantID == uuid.Nil || st.tenant == tenantID) {
			names = append(names, streamID)
		}
	} else {
		for id, st := range s.streams {
			if tenantID == uuid.Nil || st.tenant == tenantID {
				names = append(names, id)
			}
		}
	}
	s.mu.RUnlock()
	slices.Sort(names)

	h := sha256.New()
	var scratch []byte
	for _, id := range names {
		if err := ctx.Err(); err != nil {
			return report, fmt.Errorf("verify: %w", err)
		}
		s.mu.RLock()
		st := s.streams[id]
		evs := make([]eventstore.RecordedEvent, len(st.rows))
		for i, pos := range st.rows {
			evs[i] = s.log[pos-1].ev
		}
		headVersion, headHash := st.version, st.hash
		s.mu.RUnlock()

		report.StreamsChecked++
		report.EventsChecked += int64(len(evs))
		var brk *eventstore.Break
		brk, scratch = checkStream(h, scratch, id, evs, headVersion, headHash)
		if brk != nil {
			report.Breaks = append(report.Breaks, *brk)
		}
	}
	return report, nil
}

// checkStream returns the first break of one stream's events (in row
// order) against its head, or nil.
func checkStream(h hash.Hash, scratch []byte, id string, evs []eventstore.RecordedEvent, headVersion int64, headHash []byte) (*eventstore.Break, []byte) {
	var prev []byte
	var lastPos int64
	want := int64(1)
	for i := range evs {
		e := &evs[i]
		switch {
		case e.StreamVersion < want:
			return &eventstore.Break{StreamID: id, Version: e.StreamVersion, Position: e.Position, Reason: "version_duplicate"}, scratch
		case e.StreamVersion > want:
			return &eventstore.Break{StreamID: id, Version: want, Position: e.Position, Reason: "version_gap"}, scratch
		case e.StreamVersion > headVersion:
			// A row the store never appended, however well it chains.
			return &eventstore.Break{StreamID: id, Version: e.StreamVersion, Position: e.Position, Reason: "hash_mismatch"}, scratch
		}
		scratch = chainHash(h, scratch, prev, e)
		if !bytes.Equal(h.Sum(nil), e.Hash) {
			return &eventstore.Break{StreamID: id, Version: e.StreamVersion, Position: e.Position, Reason: "hash_mismatch"}, scratch
		}
		prev, lastPos = e.Hash, e.Position
		want++
	}
	switch {
	case headVersion >= want:
		// The last events are gone; the head remembers them.
		return &eventstore.Break{StreamID: id, Version: want, Position: lastPos, Reason: "version_gap"}, scratch
	case headVersion == want-1 && !bytes.Equal(prev, headHash):
		// The last event was replaced by one with a self-consistent hash.
		return &eventstore.Break{StreamID: id, Version: headVersion, Position: lastPos, Reason: "hash_mismatch"}, scratch
	}
	return nil, scratch
}

// Upcasters returns the registry applied by Load and ReadAll. Register
// before the store is used concurrently.
func (s *Store) Upcasters() *eventstore.Upcasters { return s.upcasters }

// Close makes every later operation return ErrClosed and wakes every
// Notify waiter, so that tailing readers stop. The events stay in memory
// until the Store itself is unreachable. Idempotent and safe for
// concurrent use.
func (s *Store) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.appended)
	}
}
