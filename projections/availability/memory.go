package availability

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/bookingengine/booking/projections"
	"github.com/bookingengine/booking/queries"
)

// Memory is the in-memory availability read model of the embedded mode.
// It implements projections.Projection and queries.OccupancyReadModel.
// Safe for concurrent use.
type Memory struct {
	mu         sync.RWMutex
	rows       map[uuid.UUID]*row
	byResource map[uuid.UUID]map[uuid.UUID]*row // active rows only
	cp         projections.MemoryCheckpoint
}

var (
	_ projections.Projection     = (*Memory)(nil)
	_ queries.OccupancyReadModel = (*Memory)(nil)
)

// NewMemory returns an empty read model.
func NewMemory() *Memory {
	return &Memory{rows: map[uuid.UUID]*row{}, byResource: map[uuid.UUID]map[uuid.UUID]*row{}}
}

// Name returns Name.
func (m *Memory) Name() string { return Name }

// Categories returns the categories the projection reads.
func (m *Memory) Categories() []string { return categories }

// Apply folds the batch in atomically with its checkpoint.
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
		if old := m.rows[id]; old != nil {
			delete(m.byResource[old.ResourceID], id)
		}
		m.rows[id] = r
		if r.Active {
			res := m.byResource[r.ResourceID]
			if res == nil {
				res = map[uuid.UUID]*row{}
				m.byResource[r.ResourceID] = res
			}
			res[id] = r
		}
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
	m.byResource = map[uuid.UUID]map[uuid.UUID]*row{}
	m.cp.Reset()
	return nil
}

// Changed returns a channel closed at the next Apply or Reset.
func (m *Memory) Changed() <-chan struct{} { return m.cp.Changed() }

// Occupied returns the active holds of the tenant's resources that
// overlap [from, to), ordered by resource, occupied start and booking.
func (m *Memory) Occupied(_ context.Context, tenantID uuid.UUID, resourceIDs []uuid.UUID, from, to time.Time) ([]queries.OccupiedInterval, error) {
	m.mu.RLock()
	var out []queries.OccupiedInterval
	for _, rid := range resourceIDs {
		for _, r := range m.byResource[rid] {
			if r.TenantID == tenantID && r.OccupiedStart.Before(to) && from.Before(r.OccupiedEnd) {
				out = append(out, r.interval())
			}
		}
	}
	m.mu.RUnlock()
	sortIntervals(out)
	return out, nil
}

func sortIntervals(ivs []queries.OccupiedInterval) {
	slices.SortFunc(ivs, func(a, b queries.OccupiedInterval) int {
		if c := bytes.Compare(a.ResourceID[:], b.ResourceID[:]); c != 0 {
			return c
		}
		if c := a.OccupiedStart.Compare(b.OccupiedStart); c != 0 {
			return c
		}
		return bytes.Compare(a.BookingID[:], b.BookingID[:])
	})
}

// AppliedVersions returns the highest stream version applied of each of
// the streams that have one.
func (m *Memory) AppliedVersions(_ context.Context, streamIDs []string) (map[string]int64, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.cp.Versions(streamIDs), nil
}
