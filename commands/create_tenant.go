package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/eventstore"
)

// CreateTenant creates a tenant and claims its white-label domain in one
// append, so two tenants can never hold the same domain. Only platform
// admins may create tenants.
type CreateTenant struct {
	Input domain.TenantInput
}

// CreateTenant runs the command. Errors: domain.ErrForbidden,
// *domain.ValidationError, domain.ErrDomainTaken.
func (h *Handlers) CreateTenant(ctx context.Context, meta Meta, cmd CreateTenant) (Result, error) {
	if meta.Actor.Role != domain.RolePlatformAdmin {
		return Result{}, fmt.Errorf("create tenant: %w", domain.ErrForbidden)
	}
	id := DeriveID(meta, "tenant")
	meta.TenantID = id
	t, err := domain.NewTenant(id, cmd.Input, meta.Actor, h.Now())
	if err != nil {
		return Result{}, err
	}
	guardStream := domain.DomainGuardStream(t.Domain())
	guard := domain.NewGuard()
	if err := h.loadMaybe(ctx, guardStream, guard); err != nil {
		return Result{}, err
	}
	if err := guard.Claim(id, t.Domain(), domain.ErrDomainTaken); err != nil {
		return Result{}, err
	}
	b := &batch{meta: meta}
	if err := b.addExpect(domain.TenantStream(id), eventstore.NoStream, t.Changes()); err != nil {
		return Result{}, err
	}
	if err := b.add(guardStream, guard); err != nil {
		return Result{}, err
	}
	res, err := h.commit(ctx, b)
	if err != nil {
		var vc *eventstore.VersionConflictError
		if errors.As(err, &vc) && vc.StreamID == guardStream {
			return Result{}, fmt.Errorf("create tenant: %w", domain.ErrDomainTaken)
		}
		return Result{}, err
	}
	return Result{ID: id, Version: res.Versions[domain.TenantStream(id)], Position: res.LastPosition}, nil
}
