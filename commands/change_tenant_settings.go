package commands

import (
	"context"
	"fmt"

	"github.com/bookingengine/booking/domain"
	"github.com/google/uuid"
)

// ChangeTenantSettings replaces a tenant's settings whole and bumps its
// policy version. Tenant admins of that tenant and platform admins may.
type ChangeTenantSettings struct {
	TenantID        uuid.UUID
	Settings        domain.SettingsInput
	ExpectedVersion *int64
}

// ChangeTenantSettings runs the command. Errors: domain.ErrNotFound,
// domain.ErrForbidden, *domain.ValidationError, *VersionMismatchError.
// Setting the same settings again changes nothing and returns the current
// version with position 0.
func (h *Handlers) ChangeTenantSettings(ctx context.Context, meta Meta, cmd ChangeTenantSettings) (Result, error) {
	if !canAdministerTenant(meta, cmd.TenantID) {
		return Result{}, fmt.Errorf("change settings: %w", domain.ErrForbidden)
	}
	if meta.Actor.Role != domain.RolePlatformAdmin && meta.TenantID != cmd.TenantID {
		return Result{}, fmt.Errorf("tenant %s: %w", cmd.TenantID, domain.ErrNotFound)
	}
	// A tenant of its own, since this one changes: the cached ones are
	// shared.
	t := &domain.Tenant{}
	if err := h.load(ctx, domain.TenantStream(cmd.TenantID), t); err != nil {
		return Result{}, err
	}
	if err := checkVersion(cmd.ExpectedVersion, t.Version()); err != nil {
		return Result{}, err
	}
	if err := t.ChangeSettings(cmd.Settings.Resolve(), meta.Actor, h.Now()); err != nil {
		return Result{}, err
	}
	meta.TenantID = cmd.TenantID
	b := &batch{meta: meta}
	if err := b.add(domain.TenantStream(cmd.TenantID), t); err != nil {
		return Result{}, err
	}
	res, err := h.commit(ctx, b)
	if err != nil {
		return Result{}, asVersionMismatch(err)
	}
	return Result{ID: cmd.TenantID, Version: t.Version(), Position: res.LastPosition}, nil
}

// canAdministerTenant reports whether the actor may change tenant-wide
// configuration: a platform admin, or an admin of that very tenant.
func canAdministerTenant(meta Meta, tenantID uuid.UUID) bool {
	switch meta.Actor.Role {
	case domain.RolePlatformAdmin:
		return true
	case domain.RoleAdmin:
		return meta.TenantID == tenantID
	}
	return false
}

// Tenant returns a tenant the caller may see: platform admins see every
// tenant, everyone else only their own (another tenant is ErrNotFound).
// It is a trusted read of the cache (see CacheConfig): within the cache's
// bounds it may not yet show a change another process just made. The
// tenant is shared: the caller must not change it.
func (h *Handlers) Tenant(ctx context.Context, meta Meta, id uuid.UUID) (*domain.Tenant, error) {
	if meta.Actor.Role != domain.RolePlatformAdmin && meta.TenantID != id {
		return nil, fmt.Errorf("tenant %s: %w", id, domain.ErrNotFound)
	}
	stream := domain.TenantStream(id)
	agg, err := h.readCached(ctx, stream, newTenant)
	if err != nil {
		return nil, err
	}
	if agg.Version() == 0 {
		return nil, fmt.Errorf("load %s: %w", stream, domain.ErrNotFound)
	}
	return agg.(*domain.Tenant), nil
}

// loadTenant returns the tenant as it is now, topped up from the cache.
// The tenant is shared: callers only read it.
func (h *Handlers) loadTenant(ctx context.Context, id uuid.UUID) (*domain.Tenant, error) {
	stream := domain.TenantStream(id)
	aggs, err := h.loadCached(ctx, map[string]func() aggregate{stream: newTenant}, nil)
	if err != nil {
		return nil, err
	}
	if aggs[stream].Version() == 0 {
		return nil, fmt.Errorf("load %s: %w", stream, domain.ErrNotFound)
	}
	return aggs[stream].(*domain.Tenant), nil
}

// TenantIDByDomain resolves a white-label domain to its tenant through the
// domain guard stream, a trusted read of the cache (see CacheConfig).
// Unknown domains return domain.ErrNotFound.
func (h *Handlers) TenantIDByDomain(ctx context.Context, d string) (uuid.UUID, error) {
	norm, err := domain.NormalizeDomain(d)
	if err != nil {
		return uuid.Nil, fmt.Errorf("domain %q: %w", d, domain.ErrNotFound)
	}
	agg, err := h.readCached(ctx, domain.DomainGuardStream(norm), newGuard)
	if err != nil {
		return uuid.Nil, err
	}
	g := agg.(*domain.Guard)
	if g.Owner() == uuid.Nil {
		return uuid.Nil, fmt.Errorf("domain %q: %w", d, domain.ErrNotFound)
	}
	return g.Owner(), nil
}
