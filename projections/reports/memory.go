package reports

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/projections"
	"github.com/bookingengine/booking/projections/internal/stage"
	"github.com/bookingengine/booking/queries"
)

// Memory is the in-memory reports read model of the embedded mode. It
// implements projections.Projection and queries.ReportReadModel. Safe for
// concurrent use; a report scans its tenant's bookings.
type Memory struct {
	mu         sync.RWMutex
	bookings   map[uuid.UUID]*bookingRow
	byTenant   map[uuid.UUID]map[uuid.UUID]*bookingRow
	tenants    map[uuid.UUID]*tenantRow
	resources  map[uuid.UUID]*resourceRow
	categories map[uuid.UUID]*categoryRow
	cp         projections.MemoryCheckpoint
}

var (
	_ projections.Projection  = (*Memory)(nil)
	_ queries.ReportReadModel = (*Memory)(nil)
)

// NewMemory returns an empty read model.
func NewMemory() *Memory {
	m := &Memory{}
	m.clear()
	return m
}

func (m *Memory) clear() {
	m.bookings = map[uuid.UUID]*bookingRow{}
	m.byTenant = map[uuid.UUID]map[uuid.UUID]*bookingRow{}
	m.tenants = map[uuid.UUID]*tenantRow{}
	m.resources = map[uuid.UUID]*resourceRow{}
	m.categories = map[uuid.UUID]*categoryRow{}
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
	var (
		bookings   = map[uuid.UUID]*bookingRow{}
		tenants    = map[uuid.UUID]*tenantRow{}
		resources  = map[uuid.UUID]*resourceRow{}
		categories = map[uuid.UUID]*categoryRow{}
	)
	for _, e := range events {
		switch k, id := streamKind(e.StreamID); k {
		case kindBooking:
			_, err = foldBooking(stage.Row(bookings, m.bookings, id), e)
		case kindTenant:
			_, err = foldTenant(stage.Row(tenants, m.tenants, id), e)
		case kindResource:
			_, err = foldResource(stage.Row(resources, m.resources, id), e)
		case kindCategory:
			_, err = foldCategory(stage.Row(categories, m.categories, id), e)
		}
		if err != nil {
			return fmt.Errorf("projection %s: %w", Name, err)
		}
	}
	for id, r := range bookings {
		if r.Version == 0 {
			continue
		}
		m.bookings[id] = r
		t := m.byTenant[r.TenantID]
		if t == nil {
			t = map[uuid.UUID]*bookingRow{}
			m.byTenant[r.TenantID] = t
		}
		t[id] = r
	}
	commit(m.tenants, tenants, func(r *tenantRow) int64 { return r.Version })
	commit(m.resources, resources, func(r *resourceRow) int64 { return r.Version })
	commit(m.categories, categories, func(r *categoryRow) int64 { return r.Version })
	m.cp.Commit(b)
	return nil
}

func commit[T any](stored, work map[uuid.UUID]*T, version func(*T) int64) {
	for id, r := range work {
		if version(r) > 0 {
			stored[id] = r
		}
	}
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
	m.clear()
	m.cp.Reset()
	return nil
}

// Changed returns a channel closed at the next Apply or Reset.
func (m *Memory) Changed() <-chan struct{} { return m.cp.Changed() }

// ReportCatalog returns the tenant's zone, resources and categories, or
// domain.ErrNotFound.
func (m *Memory) ReportCatalog(_ context.Context, tenantID uuid.UUID) (queries.ReportCatalog, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	t := m.tenants[tenantID]
	if t == nil || t.ID != tenantID {
		return queries.ReportCatalog{}, fmt.Errorf("tenant %s: %w", tenantID, domain.ErrNotFound)
	}
	out := queries.ReportCatalog{Timezone: t.Timezone, Resources: []queries.ReportResource{}, Categories: []queries.ReportCategory{}}
	for _, r := range m.resources {
		if r.TenantID == tenantID {
			out.Resources = append(out.Resources, queries.ReportResource{ID: r.ID, CategoryID: r.CategoryID, Name: r.Name, Active: r.Active})
		}
	}
	for _, c := range m.categories {
		if c.TenantID == tenantID {
			out.Categories = append(out.Categories, queries.ReportCategory{ID: c.ID, Name: c.Name})
		}
	}
	slices.SortFunc(out.Resources, func(a, b queries.ReportResource) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	slices.SortFunc(out.Categories, func(a, b queries.ReportCategory) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	return out, nil
}

// BookingStats aggregates the tenant's bookings that start in [f.From,
// f.To) by f.GroupBy.
func (m *Memory) BookingStats(_ context.Context, f queries.ReportFilter) ([]queries.BookingStats, error) {
	m.mu.RLock()
	groups := map[string]*statsBuilder{}
	for _, r := range m.byTenant[f.TenantID] {
		if r.Start.Before(f.From) || !r.Start.Before(f.To) {
			continue
		}
		key, ok := m.key(f, r)
		if !ok {
			continue
		}
		g := groups[key]
		if g == nil {
			g = &statsBuilder{s: queries.BookingStats{Key: key}}
			groups[key] = g
		}
		g.add(r)
	}
	m.mu.RUnlock()
	out := make([]queries.BookingStats, 0, len(groups))
	for _, g := range groups {
		slices.Sort(g.leads)
		g.s.LeadP50, g.s.LeadP90 = percentile(g.leads, 0.5), percentile(g.leads, 0.9)
		out = append(out, g.s)
	}
	return out, nil
}

// key returns the group of r under f; ok is false for a start outside
// every day of a day grouping. The caller holds the lock.
func (m *Memory) key(f queries.ReportFilter, r *bookingRow) (string, bool) {
	switch f.GroupBy {
	case queries.GroupByResource:
		return r.ResourceID.String(), true
	case queries.GroupByCategory:
		if res := m.resources[r.ResourceID]; res != nil && res.TenantID == r.TenantID && res.CategoryID != uuid.Nil {
			return res.CategoryID.String(), true
		}
		return queries.UncategorizedKey, true
	}
	i, found := slices.BinarySearchFunc(f.Days, r.Start, func(d queries.ReportDay, t time.Time) int {
		switch {
		case !d.End.After(t):
			return -1
		case d.Start.After(t):
			return 1
		}
		return 0
	})
	if !found {
		return "", false
	}
	return f.Days[i].Date, true
}

// AppliedVersions returns the highest stream version applied of each of
// the streams that have one.
func (m *Memory) AppliedVersions(_ context.Context, streamIDs []string) (map[string]int64, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.cp.Versions(streamIDs), nil
}
