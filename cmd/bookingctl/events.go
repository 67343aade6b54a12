package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/bookingengine/booking/eventstore"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

// storedEvent is one row of booking_events as stored. Data and Metadata
// are the database's own text of the JSONB values, byte for byte, which is
// what the hash chain covers (booking_events_canonical hashes data::text),
// so an export keeps every byte an auditor needs to recompute a hash.
type storedEvent struct {
	Position      int64
	TransactionID uint64
	TenantID      uuid.UUID
	StreamID      string
	StreamVersion int64
	EventID       uuid.UUID
	Type          string
	EventVersion  int
	Data          []byte
	Metadata      []byte
	RecordedAt    time.Time
	Hash          []byte
}

// storedColumns is the select list forEachEvent scans.
const storedColumns = `position, transaction_id, tenant_id, stream_id, stream_version,
	event_id, type, event_version, data, metadata, recorded_at, hash`

// forEachEvent runs query (which selects storedColumns) and calls fn for
// each row as it arrives, so a tenant's whole history streams through
// without being held in memory. fn's error stops the iteration and is
// returned.
func forEachEvent(ctx context.Context, pool *pgxpool.Pool, query string, args []any, fn func(storedEvent) error) error {
	rows, err := pool.Query(ctx, query, args...)
	if err != nil {
		return schemaHint(fmt.Errorf("query events: %w", err))
	}
	defer rows.Close()
	for rows.Next() {
		var e storedEvent
		if err := rows.Scan(&e.Position, &e.TransactionID, &e.TenantID, &e.StreamID, &e.StreamVersion,
			&e.EventID, &e.Type, &e.EventVersion, &e.Data, &e.Metadata, &e.RecordedAt, &e.Hash); err != nil {
			return fmt.Errorf("read events: %w", err)
		}
		e.RecordedAt = e.RecordedAt.UTC()
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return schemaHint(fmt.Errorf("read events: %w", err))
	}
	return nil
}

// recorded converts e into the event store's shape, with its metadata
// decoded and its data upcast by u, ready for the domain.
func (e storedEvent) recorded(u *eventstore.Upcasters) (eventstore.RecordedEvent, error) {
	r := eventstore.RecordedEvent{
		Position: e.Position, TransactionID: e.TransactionID, TenantID: e.TenantID,
		StreamID: e.StreamID, Category: eventstore.Category(e.StreamID), StreamVersion: e.StreamVersion,
		ID: e.EventID, Type: e.Type, EventVersion: e.EventVersion, Data: e.Data,
		RecordedAt: e.RecordedAt, Hash: e.Hash,
	}
	if err := json.Unmarshal(e.Metadata, &r.Metadata); err != nil {
		return r, fmt.Errorf("event %s: metadata: %w", e.EventID, err)
	}
	if err := u.Upcast(&r); err != nil {
		return r, err
	}
	return r, nil
}
