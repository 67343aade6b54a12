package calendars

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/google/uuid"

	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/projections"
	"github.com/bookingengine/booking/projections/internal/stage"
	"github.com/bookingengine/booking/queries"
)

// Memory is the in-memory calendars read model of the embedded mode. It
// implements projections.Projection and queries.CalendarReadModel. Safe
// for concurrent use; a calendar scans its tenant's entries.
type Memory struct {
	mu       sync.RWMutex
	entries  map[uuid.UUID]*entryRow
	byTenant map[uuid.UUID]map[uuid.UUID]*entryRow
	owners   map[uuid.UUID]*ownerRow
	series   map[uuid.UUID]*seriesRow
	cp       projections.MemoryCheckpoint
}

var (
	_ projections.Projection    = (*Memory)(nil)
	_ queries.CalendarReadModel = (*Memory)(nil)
)

// NewMemory returns an empty read model.
func NewMemory() *Memory {
	m := &Memory{}
	m.clear()
	return m
}

func (m *Memory) clear() {
	m.entries = map[uuid.UUID]*entryRow{}
	m.byTenant = map[uuid.UUID]map[uuid.UUID]*entryRow{}
	m.owners = map[uuid.UUID]*ownerRow{}
	m.series = map[uuid.UUID]*seriesRow{}
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
	entries, owners, series := map[uuid.UUID]*entryRow{}, map[uuid.UUID]*ownerRow{}, map[uuid.UUID]*seriesRow{}
	for _, e := range events {
		kind, id, ok := stream(e.StreamID)
		if !ok {
			continue
		}
		var err error
		switch kind {
		case "booking":
			_, err = foldEntry(stage.Row(entries, m.entries, id), e)
		case "series":
			_, err = foldSeries(stage.Row(series, m.series, id), e)
		default:
			_, err = foldOwner(stage.Row(owners, m.owners, id), e)
		}
		if err != nil {
			return fmt.Errorf("projection %s: %w", Name, err)
		}
	}
	for id, r := range entries {
		if r.Version == 0 {
			continue
		}
		m.entries[id] = r
		t := m.byTenant[r.TenantID]
		if t == nil {
			t = map[uuid.UUID]*entryRow{}
			m.byTenant[r.TenantID] = t
		}
		t[id] = r
	}
	for id, r := range owners {
		if r.Version > 0 {
			m.owners[id] = r
		}
	}
	for id, r := range series {
		if r.Version > 0 {
			m.series[id] = r
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

// Reset empties the read model. Calendar feeds are kept elsewhere
// (MemoryFeeds) and survive it.
func (m *Memory) Reset(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.clear()
	m.cp.Reset()
	return nil
}

// Changed returns a channel closed at the next Apply or Reset.
func (m *Memory) Changed() <-chan struct{} { return m.cp.Changed() }

// CalendarOwner returns the tenant's resource or user, or
// domain.ErrNotFound.
func (m *Memory) CalendarOwner(_ context.Context, tenantID uuid.UUID, kind queries.CalendarKind, id uuid.UUID) (queries.CalendarOwner, error) {
	m.mu.RLock()
	r := m.owners[id]
	m.mu.RUnlock()
	if r == nil || r.TenantID != tenantID || r.Kind != kind {
		return queries.CalendarOwner{}, fmt.Errorf("%s %s: %w", kind, id, domain.ErrNotFound)
	}
	return r.owner(), nil
}

// CalendarEntries returns the entries f selects ordered by start then
// booking id.
func (m *Memory) CalendarEntries(_ context.Context, f queries.CalendarFilter) ([]queries.CalendarEntry, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var hits []*entryRow
	for _, r := range m.byTenant[f.TenantID] {
		if r.matches(f) {
			hits = append(hits, r)
		}
	}
	slices.SortFunc(hits, func(a, b *entryRow) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return bytes.Compare(a.ID[:], b.ID[:])
	})
	out := make([]queries.CalendarEntry, 0, len(hits))
	for _, r := range hits {
		out = append(out, r.entry(m.name(r.TenantID, r.ResourceID), m.name(r.TenantID, r.ClientID)))
	}
	return out, nil
}

// name returns the current name of the tenant's resource or user id, ""
// when unknown. The caller holds the lock.
func (m *Memory) name(tenantID, id uuid.UUID) string {
	if o := m.owners[id]; o != nil && o.TenantID == tenantID {
		return o.Name
	}
	return ""
}

// CalendarSeries returns the tenant's series among ids with their members
// ordered by occurrence start.
func (m *Memory) CalendarSeries(_ context.Context, tenantID uuid.UUID, ids []uuid.UUID) ([]queries.CalendarSeries, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := []queries.CalendarSeries{}
	for _, id := range ids {
		s := m.series[id]
		if s == nil || s.TenantID != tenantID {
			continue
		}
		var members []*entryRow
		for _, r := range m.byTenant[tenantID] {
			if r.SeriesID == id {
				members = append(members, r)
			}
		}
		slices.SortFunc(members, compareOccurrence)
		entries := make([]queries.CalendarEntry, 0, len(members))
		for _, r := range members {
			entries = append(entries, r.entry(m.name(r.TenantID, r.ResourceID), m.name(r.TenantID, r.ClientID)))
		}
		out = append(out, s.series(entries))
	}
	return out, nil
}

// compareOccurrence orders a series' members by occurrence start, then
// booking id.
func compareOccurrence(a, b *entryRow) int {
	if c := a.OccurrenceStart.Compare(b.OccurrenceStart); c != 0 {
		return c
	}
	return bytes.Compare(a.ID[:], b.ID[:])
}

// AppliedVersions returns the highest stream version applied of each of
// the streams that have one.
func (m *Memory) AppliedVersions(_ context.Context, streamIDs []string) (map[string]int64, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.cp.Versions(streamIDs), nil
}
