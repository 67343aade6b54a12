package bookings

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/google/uuid"

	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/projections"
	"github.com/bookingengine/booking/queries"
)

// Memory is the in-memory bookings read model of the embedded mode. It
// implements projections.Projection and the read-model interfaces of
// queries.GetBookingHandler and queries.ListBookingsHandler. Safe for
// concurrent use; a listing scans the tenant's bookings.
type Memory struct {
	mu       sync.RWMutex
	rows     map[uuid.UUID]*row
	byTenant map[uuid.UUID]map[uuid.UUID]*row
	cp       projections.MemoryCheckpoint
}

var (
	_ projections.Projection        = (*Memory)(nil)
	_ queries.GetBookingReadModel   = (*Memory)(nil)
	_ queries.ListBookingsReadModel = (*Memory)(nil)
)

// NewMemory returns an empty read model.
func NewMemory() *Memory {
	return &Memory{rows: map[uuid.UUID]*row{}, byTenant: map[uuid.UUID]map[uuid.UUID]*row{}}
}

// Name returns Name.
func (m *Memory) Name() string { return Name }

// Categories returns the categories the projection reads.
func (m *Memory) Categories() []string { return categories }

// Apply folds the batch in atomically with its checkpoint: on an error
// nothing changes.
func (m *Memory) Apply(_ context.Context, b projections.Batch) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	events, err := m.cp.Begin(b)
	if err != nil {
		return err
	}
	staged := map[uuid.UUID]*row{}
	for _, e := range events {
		id, ok := bookingID(e.StreamID)
		if !ok {
			continue
		}
		r := staged[id]
		if r == nil {
			r = &row{}
			if old := m.rows[id]; old != nil {
				*r = *old
			}
			staged[id] = r
		}
		if _, err := fold(r, e); err != nil {
			return fmt.Errorf("projection %s: %w", Name, err)
		}
	}
	for id, r := range staged {
		if r.Version == 0 {
			continue
		}
		m.rows[id] = r
		t := m.byTenant[r.TenantID]
		if t == nil {
			t = map[uuid.UUID]*row{}
			m.byTenant[r.TenantID] = t
		}
		t[id] = r
	}
	m.cp.Commit(b)
	return nil
}

// Checkpoint returns the cursor of the last event applied from the store.
func (m *Memory) Checkpoint(context.Context) (projections.Cursor, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.cp.Cursor(), nil
}

// Reset empties the read model.
func (m *Memory) Reset(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rows = map[uuid.UUID]*row{}
	m.byTenant = map[uuid.UUID]map[uuid.UUID]*row{}
	m.cp.Reset()
	return nil
}

// Changed returns a channel closed at the next Apply or Reset.
func (m *Memory) Changed() <-chan struct{} { return m.cp.Changed() }

// Booking returns one booking of the tenant, or domain.ErrNotFound.
func (m *Memory) Booking(_ context.Context, tenantID, id uuid.UUID) (queries.Booking, error) {
	m.mu.RLock()
	r := m.rows[id]
	m.mu.RUnlock()
	if r == nil || r.TenantID != tenantID {
		return queries.Booking{}, fmt.Errorf("booking %s: %w", id, domain.ErrNotFound)
	}
	return r.booking()
}

// ListBookings returns at most f.Limit matching bookings ordered by start
// then id.
func (m *Memory) ListBookings(_ context.Context, f queries.BookingFilter) ([]queries.Booking, error) {
	m.mu.RLock()
	var hits []*row
	for _, r := range m.byTenant[f.TenantID] {
		if !r.matches(f) {
			continue
		}
		if f.After != nil && compareKey(r.Start, r.ID, f.After.Start, f.After.ID) <= 0 {
			continue
		}
		hits = append(hits, r)
	}
	m.mu.RUnlock()
	slices.SortFunc(hits, func(a, b *row) int { return compareKey(a.Start, a.ID, b.Start, b.ID) })
	if f.Limit > 0 && len(hits) > f.Limit {
		hits = hits[:f.Limit]
	}
	out := make([]queries.Booking, 0, len(hits))
	for _, r := range hits {
		b, err := r.booking()
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// AppliedVersions returns the highest stream version applied of each of
// the streams that have one.
func (m *Memory) AppliedVersions(_ context.Context, streamIDs []string) (map[string]int64, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.cp.Versions(streamIDs), nil
}
