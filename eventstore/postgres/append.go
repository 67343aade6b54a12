package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/bookingengine/booking/eventstore"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// PostgreSQL error codes this adapter translates.
const (
	// codeStale is raised by booking_events_append for a stale expectation.
	codeStale = "BE409"
	// codePartial is raised by booking_events_append for a stale append
	// some of whose event ids are stored already.
	codePartial = "BE422"
	// codeUnique is unique_violation: a concurrent writer took the version,
	// or the event id is stored already.
	codeUnique = "23505"

	constraintStreamVersion = "booking_events_stream_version_key"
)

// appendArgs are the parallel arrays booking_events_append takes. UUIDs go
// as [16]byte, which pgx encodes in binary directly; uuid.UUID would take
// the driver.Valuer detour through text on every call.
type appendArgs struct {
	streams  []string
	tenants  [][16]byte
	expected []int64
	counts   []int32
	ids      [][16]byte
	types    []string
	versions []int32
	data     []json.RawMessage
	metadata []json.RawMessage
}

func newAppendArgs(appends []eventstore.StreamAppend) (appendArgs, error) {
	n := 0
	for _, a := range appends {
		n += len(a.Events)
	}
	args := appendArgs{
		streams:  make([]string, 0, len(appends)),
		tenants:  make([][16]byte, 0, len(appends)),
		expected: make([]int64, 0, len(appends)),
		counts:   make([]int32, 0, len(appends)),
		ids:      make([][16]byte, 0, n),
		types:    make([]string, 0, n),
		versions: make([]int32, 0, n),
		data:     make([]json.RawMessage, 0, n),
		metadata: make([]json.RawMessage, 0, n),
	}
	for _, a := range appends {
		args.streams = append(args.streams, a.StreamID)
		args.tenants = append(args.tenants, a.TenantID)
		args.expected = append(args.expected, int64(a.Expected))
		args.counts = append(args.counts, int32(len(a.Events)))
		for _, e := range a.Events {
			md, err := json.Marshal(e.Metadata)
			if err != nil {
				return appendArgs{}, fmt.Errorf("%w: event %s: metadata: %v", eventstore.ErrInvalidAppend, e.ID, err)
			}
			args.ids = append(args.ids, e.ID)
			args.types = append(args.types, e.Type)
			args.versions = append(args.versions, int32(e.Version))
			args.data = append(args.data, e.Data)
			args.metadata = append(args.metadata, md)
		}
	}
	return args, nil
}

// Append stores the events of every StreamAppend atomically, in one
// statement and one round trip (see the package doc); only an append that
// loses a race at the unique index needs one or two more queries to tell
// a conflict from a retry. It is safe for concurrent use.
//
// Errors: eventstore.ErrInvalidAppend for malformed input (nothing is sent);
// a *eventstore.VersionConflictError when an Exact or NoStream expectation
// is stale, whether the check or the unique index caught it, or when a
// stream expecting Any was overtaken by writers expecting Exact versions
// Config.AnyRetries times in a row; eventstore.ErrDuplicateEvent when some
// but not all event ids are stored already, or all of them but in other
// streams than named (nothing is written). Errors from PostgreSQL itself
// are wrapped, so errors.As finds the *pgconn.PgError.
//
// Idempotency: when every event id is stored already, in the streams named,
// Append writes nothing and returns the original last position and the
// versions those events got, with Duplicate set, even though the retried
// expectation is now stale.
func (s *Store) Append(ctx context.Context, appends ...eventstore.StreamAppend) (_ eventstore.AppendResult, err error) {
	defer markUnavailable(&err)
	if err := eventstore.ValidateAppends(appends); err != nil {
		return eventstore.AppendResult{}, err
	}
	// Sorted streams lock index entries in the same order in every append,
	// so two multi-stream appends cannot deadlock.
	sorted := slices.Clone(appends)
	slices.SortFunc(sorted, func(a, b eventstore.StreamAppend) int { return cmp.Compare(a.StreamID, b.StreamID) })
	args, err := newAppendArgs(sorted)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	single := len(sorted) == 1 && len(sorted[0].Events) == 1 && sorted[0].Expected >= 0
	for attempt := 0; ; attempt++ {
		var res eventstore.AppendResult
		if single {
			res, err = s.appendSingle(ctx, sorted[0], args.metadata[0])
		} else {
			res, err = s.appendOnce(ctx, args)
		}
		if err == nil {
			return res, nil
		}
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) {
			if errors.Is(err, eventstore.ErrVersionConflict) || errors.Is(err, eventstore.ErrDuplicateEvent) {
				return eventstore.AppendResult{}, err
			}
			return eventstore.AppendResult{}, fmt.Errorf("append: %w", err)
		}
		switch {
		case pgErr.Code == codeStale:
			// The function looked for a retry before raising this.
			return eventstore.AppendResult{}, staleError(sorted, pgErr)
		case pgErr.Code == codePartial:
			return eventstore.AppendResult{}, fmt.Errorf("append: %w: %s", eventstore.ErrDuplicateEvent, pgErr.Message)
		case pgErr.Code != codeUnique:
			return eventstore.AppendResult{}, fmt.Errorf("append: %w", err)
		}
		// The index fired: a concurrent writer took a version, or a retry
		// expecting Any met its own events. Look for the retry first.
		if res, stored, err := s.storedAlready(ctx, sorted, args.ids); err != nil || stored {
			return res, err
		}
		if pgErr.ConstraintName != constraintStreamVersion {
			return eventstore.AppendResult{}, fmt.Errorf("append: %w", err)
		}
		// The other writer committed before the index let this one fail,
		// so an Exact expectation is stale now; a stream expecting Any
		// (which an Exact writer overtook) tries again.
		conflict, err := s.staleStream(ctx, sorted, attempt >= s.cfg.AnyRetries)
		if err != nil {
			return eventstore.AppendResult{}, err
		}
		if conflict != nil {
			return eventstore.AppendResult{}, conflict
		}
	}
}

// appendSingleSQL appends one event to one stream with an Exact or NoStream
// expectation: the append almost every command makes. It does what
// booking_events_append does (the same head read, canonical bytes, hash
// chain and head row, so the two paths write identical chains) as one
// prepared statement, which costs PostgreSQL about a third less than the
// plpgsql call with nine array parameters. A stale expectation inserts
// nothing and returns the actual version, and then (the CASE evaluates
// its subqueries only on that path) where the event id is stored already,
// so a retry is recognised in the same round trip. The event insert is the
// statement's first write; the head row is written from its RETURNING.
const appendSingleSQL = `
WITH head AS (
    SELECT coalesce(h.stream_version, 0) AS v, coalesce(h.hash, '\x'::bytea) AS hash
      FROM (SELECT) one
      LEFT JOIN LATERAL (SELECT be.stream_version, be.hash FROM booking_events be
                          WHERE be.stream_id = $1::text
                          ORDER BY be.stream_version DESC LIMIT 1) h ON true
), ev AS (
    SELECT head.v + 1 AS v,
           sha256(head.hash || booking_events_canonical($1::text, head.v + 1, $4::uuid, $5::text,
                  $6::integer, $2::uuid, now(), $7::jsonb, $8::jsonb)) AS hash
      FROM head
     WHERE head.v = $3::bigint
), ins AS (
    INSERT INTO booking_events (tenant_id, stream_id, category, stream_version, event_id, type,
                                event_version, data, metadata, recorded_at, hash)
    SELECT $2::uuid, $1::text, $9::text, ev.v, $4::uuid, $5::text, $6::integer, $7::jsonb, $8::jsonb, now(), ev.hash
      FROM ev
    RETURNING stream_version, position, hash
), upd AS (
    INSERT INTO booking_streams AS bs (stream_id, tenant_id, version, last_position, hash)
    SELECT $1::text, $2::uuid, ins.stream_version, ins.position, ins.hash FROM ins
    ON CONFLICT (stream_id) DO UPDATE
       SET version = excluded.version, last_position = excluded.last_position, hash = excluded.hash
)
SELECT head.v, ins.stream_version, ins.position,
       CASE WHEN ins.position IS NULL THEN (SELECT d.stream_id FROM booking_events d WHERE d.event_id = $4::uuid) END,
       CASE WHEN ins.position IS NULL THEN (SELECT d.stream_version FROM booking_events d WHERE d.event_id = $4::uuid) END,
       CASE WHEN ins.position IS NULL THEN (SELECT d.position FROM booking_events d WHERE d.event_id = $4::uuid) END
  FROM head LEFT JOIN ins ON true`

// appendSingle runs appendSingleSQL. It returns the typed conflict or
// ErrDuplicateEvent itself; a *pgconn.PgError (23505 when a concurrent
// writer won at the index) goes back to Append.
func (s *Store) appendSingle(ctx context.Context, a eventstore.StreamAppend, metadata json.RawMessage) (eventstore.AppendResult, error) {
	e := a.Events[0]
	var (
		actual                  int64
		version, position       *int64
		dupStream               *string
		dupVersion, dupPosition *int64
	)
	err := s.pool.QueryRow(ctx, appendSingleSQL, a.StreamID, [16]byte(a.TenantID), int64(a.Expected),
		[16]byte(e.ID), e.Type, int32(e.Version), []byte(e.Data), []byte(metadata), eventstore.Category(a.StreamID)).
		Scan(&actual, &version, &position, &dupStream, &dupVersion, &dupPosition)
	switch {
	case err != nil:
		return eventstore.AppendResult{}, err
	case position != nil:
		return eventstore.AppendResult{LastPosition: *position, Versions: map[string]int64{a.StreamID: *version}}, nil
	case dupStream != nil && *dupStream == a.StreamID:
		return eventstore.AppendResult{LastPosition: *dupPosition, Versions: map[string]int64{a.StreamID: *dupVersion}, Duplicate: true}, nil
	case dupStream != nil:
		return eventstore.AppendResult{}, fmt.Errorf("append: %w: event %s is stored in stream %s, not %s",
			eventstore.ErrDuplicateEvent, e.ID, *dupStream, a.StreamID)
	default:
		return eventstore.AppendResult{}, &eventstore.VersionConflictError{StreamID: a.StreamID, Expected: a.Expected, Actual: actual}
	}
}

func (s *Store) appendOnce(ctx context.Context, a appendArgs) (eventstore.AppendResult, error) {
	const q = `SELECT versions, last_position, duplicate
		FROM booking_events_append($1, $2, $3, $4, $5, $6, $7, $8, $9)`
	var (
		versions []int64
		res      eventstore.AppendResult
	)
	err := s.pool.QueryRow(ctx, q, a.streams, a.tenants, a.expected, a.counts,
		a.ids, a.types, a.versions, a.data, a.metadata).Scan(&versions, &res.LastPosition, &res.Duplicate)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	if len(versions) != len(a.streams) {
		return eventstore.AppendResult{}, fmt.Errorf("append function returned %d versions for %d streams", len(versions), len(a.streams))
	}
	res.Versions = make(map[string]int64, len(a.streams))
	for i, id := range a.streams {
		res.Versions[id] = versions[i]
	}
	return res, nil
}

// storedAlready reports whether the append's events are all stored, and
// then the original result. Some but not all stored, or stored in other
// streams than named, is ErrDuplicateEvent: not a retry of the same append.
func (s *Store) storedAlready(ctx context.Context, appends []eventstore.StreamAppend, ids [][16]byte) (eventstore.AppendResult, bool, error) {
	const q = `SELECT event_id, stream_id, stream_version, position
		FROM booking_events WHERE event_id = ANY($1)`
	rows, err := s.pool.Query(ctx, q, ids)
	if err != nil {
		return eventstore.AppendResult{}, false, fmt.Errorf("append: look up event ids: %w", err)
	}
	type stored struct {
		stream   string
		version  int64
		position int64
	}
	found := make(map[uuid.UUID]stored, len(ids))
	var (
		id  uuid.UUID
		row stored
	)
	if _, err := pgx.ForEachRow(rows, []any{&id, &row.stream, &row.version, &row.position}, func() error {
		found[id] = row
		return nil
	}); err != nil {
		return eventstore.AppendResult{}, false, fmt.Errorf("append: look up event ids: %w", err)
	}
	if len(found) == 0 {
		return eventstore.AppendResult{}, false, nil
	}
	if len(found) < len(ids) {
		return eventstore.AppendResult{}, false, fmt.Errorf("append: %w: %d of %d event ids", eventstore.ErrDuplicateEvent, len(found), len(ids))
	}
	res := eventstore.AppendResult{Versions: make(map[string]int64, len(appends)), Duplicate: true}
	for _, a := range appends {
		for _, e := range a.Events {
			f := found[e.ID]
			if f.stream != a.StreamID {
				return eventstore.AppendResult{}, false, fmt.Errorf("append: %w: event %s is stored in stream %s, not %s",
					eventstore.ErrDuplicateEvent, e.ID, f.stream, a.StreamID)
			}
			res.Versions[a.StreamID] = max(res.Versions[a.StreamID], f.version)
			res.LastPosition = max(res.LastPosition, f.position)
		}
	}
	return res, true, nil
}

// staleError turns booking_events_append's BE409 into the typed conflict.
func staleError(appends []eventstore.StreamAppend, pgErr *pgconn.PgError) error {
	var d struct {
		StreamID string `json:"stream_id"`
		Actual   int64  `json:"actual"`
	}
	if err := json.Unmarshal([]byte(pgErr.Detail), &d); err != nil {
		return fmt.Errorf("append: unreadable conflict detail %q: %w", pgErr.Detail, pgErr)
	}
	for _, a := range appends {
		if a.StreamID == d.StreamID {
			return &eventstore.VersionConflictError{StreamID: d.StreamID, Expected: a.Expected, Actual: d.Actual}
		}
	}
	return fmt.Errorf("append: conflict on unknown stream %q: %w", d.StreamID, pgErr)
}

// staleStream reads the streams' versions after a lost race and returns the
// conflict of the first stream whose Exact or NoStream expectation is stale.
// When none is and giveUp is set it returns the conflict of the first
// stream expecting Any; otherwise nil, and the append is tried again.
func (s *Store) staleStream(ctx context.Context, appends []eventstore.StreamAppend, giveUp bool) (*eventstore.VersionConflictError, error) {
	streams := make([]string, len(appends))
	for i, a := range appends {
		streams[i] = a.StreamID
	}
	const q = `SELECT coalesce((SELECT max(be.stream_version) FROM booking_events be WHERE be.stream_id = s), 0)
		FROM unnest($1::text[]) WITH ORDINALITY AS u(s, ord) ORDER BY ord`
	rows, err := s.pool.Query(ctx, q, streams)
	if err != nil {
		return nil, fmt.Errorf("append: read stream versions: %w", err)
	}
	actual, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("append: read stream versions: %w", err)
	}
	var firstAny *eventstore.VersionConflictError
	for i, a := range appends {
		if a.Expected == eventstore.Any {
			if firstAny == nil {
				firstAny = &eventstore.VersionConflictError{StreamID: a.StreamID, Expected: a.Expected, Actual: actual[i]}
			}
			continue
		}
		if int64(a.Expected) != actual[i] {
			return &eventstore.VersionConflictError{StreamID: a.StreamID, Expected: a.Expected, Actual: actual[i]}, nil
		}
	}
	if !giveUp {
		return nil, nil
	}
	if firstAny == nil {
		// Only when rows vanished behind the store's back: stop anyway.
		firstAny = &eventstore.VersionConflictError{StreamID: appends[0].StreamID, Expected: appends[0].Expected, Actual: actual[0]}
	}
	return firstAny, nil
}
