package postgres

import (
	"context"
	"fmt"

	"github.com/bookingengine/booking/eventstore"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// eventColumns is the select list that scanEvent reads.
const eventColumns = `position, transaction_id, tenant_id, stream_id, category, stream_version,
	event_id, type, event_version, data, metadata, recorded_at, hash`

// scanEvent reads one row of eventColumns. Data is scanned as raw bytes,
// not through encoding/json, because it is handed on unparsed; UUIDs as
// [16]byte, because uuid.UUID's sql.Scanner would go through text.
func scanEvent(row pgx.CollectableRow) (eventstore.RecordedEvent, error) {
	var e eventstore.RecordedEvent
	err := row.Scan(&e.Position, &e.TransactionID, (*[16]byte)(&e.TenantID), &e.StreamID, &e.Category,
		&e.StreamVersion, (*[16]byte)(&e.ID), &e.Type, &e.EventVersion, (*[]byte)(&e.Data), &e.Metadata,
		&e.RecordedAt, &e.Hash)
	e.RecordedAt = e.RecordedAt.UTC()
	return e, err
}

// payloadColumns are eventColumns without metadata and hash
// (Filter.PayloadOnly).
const payloadColumns = `position, transaction_id, tenant_id, stream_id, category, stream_version,
	event_id, type, event_version, data, recorded_at`

// scanPayload reads one row of payloadColumns.
func scanPayload(row pgx.CollectableRow) (eventstore.RecordedEvent, error) {
	var e eventstore.RecordedEvent
	err := row.Scan(&e.Position, &e.TransactionID, (*[16]byte)(&e.TenantID), &e.StreamID, &e.Category,
		&e.StreamVersion, (*[16]byte)(&e.ID), &e.Type, &e.EventVersion, (*[]byte)(&e.Data), &e.RecordedAt)
	e.RecordedAt = e.RecordedAt.UTC()
	return e, err
}

// collectEvents reads rows of eventColumns and upcasts each event.
func (s *Store) collectEvents(rows pgx.Rows, capacity int) ([]eventstore.RecordedEvent, error) {
	return s.collect(rows, capacity, scanEvent)
}

// collect reads rows with scan and upcasts each event.
func (s *Store) collect(rows pgx.Rows, capacity int, scan pgx.RowToFunc[eventstore.RecordedEvent]) ([]eventstore.RecordedEvent, error) {
	events := make([]eventstore.RecordedEvent, 0, capacity)
	events, err := pgx.AppendRows(events, rows, scan)
	if err != nil {
		return nil, err
	}
	for i := range events {
		if err := s.cfg.Upcasters.Upcast(&events[i]); err != nil {
			return nil, err
		}
	}
	return events, nil
}

// Load returns the stream's events with a version above afterVersion,
// oldest first, upcast. A stream that does not exist yields no events and
// no error. Safe for concurrent use.
func (s *Store) Load(ctx context.Context, streamID string, afterVersion int64) (_ []eventstore.RecordedEvent, err error) {
	defer markUnavailable(&err)
	const q = `SELECT ` + eventColumns + ` FROM booking_events
		WHERE stream_id = $1 AND stream_version > $2 ORDER BY stream_version`
	rows, err := s.pool.Query(ctx, q, Planned, streamID, afterVersion)
	if err != nil {
		return nil, fmt.Errorf("load stream %s: %w", streamID, err)
	}
	events, err := s.collectEvents(rows, 16)
	if err != nil {
		return nil, fmt.Errorf("load stream %s: %w", streamID, err)
	}
	return events, nil
}

// LoadStreams returns the events of several streams in one query; see
// eventstore.Store. Safe for concurrent use.
func (s *Store) LoadStreams(ctx context.Context, streams []eventstore.StreamCursor) (_ map[string][]eventstore.RecordedEvent, err error) {
	defer markUnavailable(&err)
	if err := eventstore.ValidateStreamCursors(streams); err != nil {
		return nil, err
	}
	out := make(map[string][]eventstore.RecordedEvent, len(streams))
	if len(streams) == 0 {
		return out, nil
	}
	ids := make([]string, len(streams))
	after := make([]int64, len(streams))
	for i, c := range streams {
		ids[i] = c.StreamID
		after[i] = c.AfterVersion
	}
	// A plain = ANY over the unique (stream_id, stream_version) index: a
	// join with unnest of (stream, version) pairs reads the same rows but
	// costs more to plan than to run, on every call. The versions filter
	// the rows the index finds, before PostgreSQL decodes and sends them:
	// a caller that holds a stream's aggregate already (a cache topped up
	// in the round trip that loads the rest) pays for no event twice.
	const q = `SELECT ` + eventColumns + ` FROM booking_events
		WHERE stream_id = ANY($1::text[])
		  AND stream_version > coalesce(($2::bigint[])[array_position($1::text[], stream_id)], 0)
		ORDER BY stream_id, stream_version`
	rows, err := s.pool.Query(ctx, q, Planned, ids, after)
	if err != nil {
		return nil, fmt.Errorf("load %d streams: %w", len(streams), err)
	}
	events, err := s.collectEvents(rows, 16)
	if err != nil {
		return nil, fmt.Errorf("load %d streams: %w", len(streams), err)
	}
	for _, e := range events {
		out[e.StreamID] = append(out[e.StreamID], e)
	}
	return out, nil
}

// StreamVersion returns the stream's current version, 0 when it has no
// event. Safe for concurrent use.
func (s *Store) StreamVersion(ctx context.Context, streamID string) (_ int64, err error) {
	defer markUnavailable(&err)
	const q = `SELECT coalesce(max(stream_version), 0) FROM booking_events WHERE stream_id = $1`
	var v int64
	if err := s.pool.QueryRow(ctx, q, streamID).Scan(&v); err != nil {
		return 0, fmt.Errorf("stream version %s: %w", streamID, err)
	}
	return v, nil
}

// The ReadAll queries, one per filter shape, so that each gets a plan of
// its own (a generic plan for "$3 IS NULL OR …" would use no filter index).
// The watermark is STABLE, hence evaluated once per query, and bounds the
// index scan on (transaction_id, position).
const (
	readAllWhere = `
		WHERE (transaction_id, position) > ($1, $2)
		  AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())`
	readAllTail = `
		ORDER BY transaction_id, position
		LIMIT $3`
)

// Filter shapes of the ReadAll queries.
const (
	shapeAll = iota
	shapeCategories
	shapeTenant
	shapeCategoriesTenant
	shapeCategory
	shapeCategoryTenant
	shapes
)

// readAllQueries holds the ReadAll queries, indexed by PayloadOnly (1)
// and then by the filter's shape.
//
// A category filter reads each category from the index on (category,
// transaction_id, position), in order, merging several: the cursor is
// compared as (category, transaction_id, position), which only that index
// can bound. Compared as (transaction_id, position), the generic plan that
// pgx's cached statements get walks the read-all index and filters the
// categories out, reading every event of the other categories after the
// cursor: a projector of a rare category (the catalog among a million
// bookings) paid for the whole log on every poll.
var readAllQueries = func() (q [2][shapes]string) {
	for lean, columns := range []string{eventColumns, payloadColumns} {
		head := `SELECT ` + columns + ` FROM booking_events` + readAllWhere
		inCategory := func(category, tenant string) string {
			return `SELECT ` + columns + ` FROM booking_events b
				WHERE (b.category, b.transaction_id, b.position) > (` + category + `, $1, $2) AND b.category = ` + category + `
				  AND b.transaction_id < pg_snapshot_xmin(pg_current_snapshot())` + tenant + `
				ORDER BY b.category, b.transaction_id, b.position
				LIMIT $3`
		}
		perCategory := func(tenant string) string {
			return `SELECT e.* FROM unnest($4::text[]) AS c(category) CROSS JOIN LATERAL (` + inCategory("c.category", tenant) + `) e
				ORDER BY e.transaction_id, e.position
				LIMIT $3`
		}
		q[lean] = [shapes]string{
			shapeAll:              head + readAllTail,
			shapeCategories:       perCategory(""),
			shapeTenant:           head + ` AND tenant_id = $4` + readAllTail,
			shapeCategoriesTenant: perCategory(` AND b.tenant_id = $5`),
			shapeCategory:         inCategory("$4::text", ""),
			shapeCategoryTenant:   inCategory("$4::text", ` AND b.tenant_id = $5`),
		}
	}
	return q
}()

// ReadAll returns up to limit committed events after the cursor that match
// the filter, in (TransactionID, Position) order, upcast. It returns only
// events below the xid8 watermark (see the package doc), so an event that
// commits late is delivered later, after the cursor, never skipped; a long
// transaction elsewhere delays it. A limit above Config.MaxReadAll is
// lowered to it and a limit below 1 returns no events, so a page shorter
// than the limit does not mean the end: read until a page comes back
// empty. Safe for concurrent use.
func (s *Store) ReadAll(ctx context.Context, after eventstore.Cursor, filter eventstore.Filter, limit int) (_ []eventstore.RecordedEvent, err error) {
	defer markUnavailable(&err)
	if limit < 1 {
		return nil, nil
	}
	limit = min(limit, s.cfg.MaxReadAll)
	lean, scan := 0, scanEvent
	if filter.PayloadOnly {
		lean, scan = 1, scanPayload
	}
	queries := readAllQueries[lean]
	var rows pgx.Rows
	tenant := filter.TenantID != uuid.Nil
	switch {
	case len(filter.Categories) == 1 && tenant:
		rows, err = s.pool.Query(ctx, queries[shapeCategoryTenant], Planned, after.TransactionID, after.Position, limit, filter.Categories[0], filter.TenantID)
	case len(filter.Categories) == 1:
		rows, err = s.pool.Query(ctx, queries[shapeCategory], Planned, after.TransactionID, after.Position, limit, filter.Categories[0])
	case len(filter.Categories) > 0 && tenant:
		rows, err = s.pool.Query(ctx, queries[shapeCategoriesTenant], Planned, after.TransactionID, after.Position, limit, filter.Categories, filter.TenantID)
	case len(filter.Categories) > 0:
		rows, err = s.pool.Query(ctx, queries[shapeCategories], Planned, after.TransactionID, after.Position, limit, filter.Categories)
	case tenant:
		rows, err = s.pool.Query(ctx, queries[shapeTenant], Planned, after.TransactionID, after.Position, limit, filter.TenantID)
	default:
		rows, err = s.pool.Query(ctx, queries[shapeAll], Planned, after.TransactionID, after.Position, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("read all after %d/%d: %w", after.TransactionID, after.Position, err)
	}
	events, err := s.collect(rows, min(limit, 1024), scan)
	if err != nil {
		return nil, fmt.Errorf("read all after %d/%d: %w", after.TransactionID, after.Position, err)
	}
	return events, nil
}

// HeadPosition returns the greatest committed position, 0 when the store
// is empty. A later ReadAll may still withhold that event for a while (the
// watermark). Safe for concurrent use.
func (s *Store) HeadPosition(ctx context.Context) (_ int64, err error) {
	defer markUnavailable(&err)
	var p int64
	if err := s.pool.QueryRow(ctx, `SELECT coalesce(max(position), 0) FROM booking_events`).Scan(&p); err != nil {
		return 0, fmt.Errorf("head position: %w", err)
	}
	return p, nil
}
