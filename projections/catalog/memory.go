package catalog

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/google/uuid"

	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/projections"
	"github.com/bookingengine/booking/projections/internal/stage"
	"github.com/bookingengine/booking/queries"
)

// Memory is the in-memory catalog read model of the embedded mode. It
// implements projections.Projection, queries.PolicyReadModel,
// queries.UserLinks and queries.CatalogReadModel. Safe for concurrent use.
type Memory struct {
	mu         sync.RWMutex
	tenants    map[uuid.UUID]*tenantRow
	categories map[uuid.UUID]*categoryRow
	resources  map[uuid.UUID]*resourceRow
	users      map[uuid.UUID]*userRow
	cp         projections.MemoryCheckpoint
}

var (
	_ projections.Projection   = (*Memory)(nil)
	_ queries.PolicyReadModel  = (*Memory)(nil)
	_ queries.UserLinks        = (*Memory)(nil)
	_ queries.CatalogReadModel = (*Memory)(nil)
)

// NewMemory returns an empty read model.
func NewMemory() *Memory {
	m := &Memory{}
	m.clear()
	return m
}

func (m *Memory) clear() {
	m.tenants = map[uuid.UUID]*tenantRow{}
	m.categories = map[uuid.UUID]*categoryRow{}
	m.resources = map[uuid.UUID]*resourceRow{}
	m.users = map[uuid.UUID]*userRow{}
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
	var (
		tenants   = map[uuid.UUID]*tenantRow{}
		cats      = map[uuid.UUID]*categoryRow{}
		resources = map[uuid.UUID]*resourceRow{}
		users     = map[uuid.UUID]*userRow{}
	)
	for _, e := range events {
		switch k, id := streamKind(e.StreamID); k {
		case kindTenant:
			_, err = foldTenant(stage.Row(tenants, m.tenants, id), e)
		case kindCategory:
			_, err = foldCategory(stage.Row(cats, m.categories, id), e)
		case kindResource:
			_, err = foldResource(stage.Row(resources, m.resources, id), e)
		case kindUser:
			_, err = foldUser(stage.Row(users, m.users, id), e)
		}
		if err != nil {
			return fmt.Errorf("projection %s: %w", Name, err)
		}
	}
	commit(m.tenants, tenants, func(r *tenantRow) int64 { return r.Version })
	commit(m.categories, cats, func(r *categoryRow) int64 { return r.Version })
	commit(m.resources, resources, func(r *resourceRow) int64 { return r.Version })
	commit(m.users, users, func(r *userRow) int64 { return r.Version })
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

// ResourcePolicy returns the policy of one resource of the tenant, or
// domain.ErrNotFound.
func (m *Memory) ResourcePolicy(_ context.Context, tenantID, resourceID uuid.UUID) (domain.Policy, error) {
	m.mu.RLock()
	r, t := m.resources[resourceID], m.tenants[tenantID]
	m.mu.RUnlock()
	if r == nil || t == nil || r.TenantID != tenantID {
		return domain.Policy{}, fmt.Errorf("resource %s: %w", resourceID, domain.ErrNotFound)
	}
	return policy(t, r)
}

// CategoryPolicies returns the policies of the category's active
// resources ordered by resource id, or domain.ErrNotFound for a category
// the tenant does not have.
func (m *Memory) CategoryPolicies(_ context.Context, tenantID, categoryID uuid.UUID) ([]queries.CategoryPolicy, error) {
	m.mu.RLock()
	c, t := m.categories[categoryID], m.tenants[tenantID]
	var rs []*resourceRow
	for _, r := range m.resources {
		if r.TenantID == tenantID && r.CategoryID == categoryID && r.Active {
			rs = append(rs, r)
		}
	}
	m.mu.RUnlock()
	if c == nil || t == nil || c.TenantID != tenantID {
		return nil, fmt.Errorf("resource category %s: %w", categoryID, domain.ErrNotFound)
	}
	slices.SortFunc(rs, func(a, b *resourceRow) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	out := make([]queries.CategoryPolicy, 0, len(rs))
	for _, r := range rs {
		p, err := categoryPolicy(t, r)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// LinkedResource returns the resource the user is linked to.
func (m *Memory) LinkedResource(_ context.Context, tenantID, userID uuid.UUID) (uuid.UUID, bool, error) {
	m.mu.RLock()
	u := m.users[userID]
	m.mu.RUnlock()
	if u == nil || u.TenantID != tenantID || u.ResourceID == uuid.Nil {
		return uuid.Nil, false, nil
	}
	return u.ResourceID, true, nil
}

// after reports whether (name, id) sorts after k: by name byte by byte,
// then by id.
func after(name string, id uuid.UUID, k *queries.NameKey) bool {
	if k == nil {
		return true
	}
	if c := strings.Compare(name, k.Name); c != 0 {
		return c > 0
	}
	return bytes.Compare(id[:], k.ID[:]) > 0
}

// page sorts the matching views by name then id and keeps at most limit.
func page[T any](views []T, key func(T) (string, uuid.UUID), limit int) []T {
	slices.SortFunc(views, func(a, b T) int {
		an, ai := key(a)
		bn, bi := key(b)
		if c := strings.Compare(an, bn); c != 0 {
			return c
		}
		return bytes.Compare(ai[:], bi[:])
	})
	if limit > 0 && len(views) > limit {
		views = views[:limit]
	}
	return views
}

// ListResourceCategories returns the tenant's categories matching f.
func (m *Memory) ListResourceCategories(_ context.Context, f queries.CategoryFilter) ([]domain.ResourceCategoryView, error) {
	m.mu.RLock()
	var out []domain.ResourceCategoryView
	for _, c := range m.categories {
		if c.TenantID == f.TenantID && after(c.Name, c.ID, f.After) {
			out = append(out, c.View)
		}
	}
	m.mu.RUnlock()
	return page(out, func(v domain.ResourceCategoryView) (string, uuid.UUID) { return v.Name, v.ID }, f.Limit), nil
}

// ListResources returns the tenant's resources matching f.
func (m *Memory) ListResources(_ context.Context, f queries.ResourceFilter) ([]domain.ResourceView, error) {
	m.mu.RLock()
	var out []domain.ResourceView
	for _, r := range m.resources {
		if r.TenantID != f.TenantID || !after(r.Name, r.ID, f.After) ||
			(f.CategoryID != uuid.Nil && r.CategoryID != f.CategoryID) ||
			(f.Kind != "" && r.Kind != f.Kind) || (f.Active != nil && r.Active != *f.Active) {
			continue
		}
		out = append(out, r.View)
	}
	m.mu.RUnlock()
	return page(out, func(v domain.ResourceView) (string, uuid.UUID) { return v.Name, v.ID }, f.Limit), nil
}

// ListUsers returns the tenant's users matching f.
func (m *Memory) ListUsers(_ context.Context, f queries.UserFilter) ([]domain.UserView, error) {
	m.mu.RLock()
	var out []domain.UserView
	for _, u := range m.users {
		if u.TenantID != f.TenantID || !after(u.View.Name, u.ID, f.After) ||
			(f.Role != "" && u.Role != f.Role) || (f.Email != "" && u.View.Email != f.Email) {
			continue
		}
		out = append(out, u.View)
	}
	m.mu.RUnlock()
	return page(out, func(v domain.UserView) (string, uuid.UUID) { return v.Name, v.ID }, f.Limit), nil
}

// AppliedVersions returns the highest stream version applied of each of
// the streams that have one.
func (m *Memory) AppliedVersions(_ context.Context, streamIDs []string) (map[string]int64, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.cp.Versions(streamIDs), nil
}
