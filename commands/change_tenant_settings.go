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
	t, err := h.Tenant(ctx, meta, cmd.TenantID)
	if err != nil {
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

// Tenant loads a tenant the caller may see: platform admins see every
// tenant, everyone else only their own (another tenant is ErrNotFound).
func (h *Handlers) Tenant(ctx context.Context, meta Meta, id uuid.UUID) (*domain.Tenant, error) {
	if meta.Actor.Role != domain.RolePlatformAdmin && meta.TenantID != id {
		return nil, fmt.Errorf("tenant %s: %w", id, domain.ErrNotFound)
	}
	return h.loadTenant(ctx, id)
}

func (h *Handlers) loadTenant(ctx context.Context, id uuid.UUID) (*domain.Tenant, error) {
	t := &domain.Tenant{}
	if err := h.load(ctx, domain.TenantStream(id), t); err != nil {
		return nil, err
	}
	return t, nil
}

// TenantIDByDomain resolves a white-label domain to its tenant through the
// domain guard stream. Unknown domains return domain.ErrNotFound.
func (h *Handlers) TenantIDByDomain(ctx context.Context, d string) (uuid.UUID, error) {
	norm, err := domain.NormalizeDomain(d)
	if err != nil {
		return uuid.Nil, fmt.Errorf("domain %q: %w", d, domain.ErrNotFound)
	}
	g := domain.NewGuard()
	if err := h.loadMaybe(ctx, domain.DomainGuardStream(norm), g); err != nil {
		return uuid.Nil, err
	}
	if g.Owner() == uuid.Nil {
		return uuid.Nil, fmt.Errorf("domain %q: %w", d, domain.ErrNotFound)
	}
	return g.Owner(), nil
}
