package commands

import (
	"context"
	"fmt"

	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/eventstore"
	"github.com/google/uuid"
)

// isStaff reports whether the actor manages the tenant's catalogue
// (resources, categories, users): its admins and managers, and platform
// admins.
func isStaff(a domain.Actor) bool {
	return a.Role == domain.RoleAdmin || a.Role == domain.RoleManager || a.Role == domain.RolePlatformAdmin
}

// CreateResourceCategory creates a resource category in the caller's tenant.
type CreateResourceCategory struct {
	Input domain.ResourceCategoryInput
}

// CreateResourceCategory runs the command. Errors: domain.ErrForbidden,
// domain.ErrNotFound (tenant), *domain.ValidationError.
func (h *Handlers) CreateResourceCategory(ctx context.Context, meta Meta, cmd CreateResourceCategory) (Result, error) {
	if !isStaff(meta.Actor) {
		return Result{}, fmt.Errorf("create resource category: %w", domain.ErrForbidden)
	}
	if _, err := h.loadTenant(ctx, meta.TenantID); err != nil {
		return Result{}, err
	}
	id := DeriveID(meta, "resource-category")
	c, err := domain.NewResourceCategory(id, meta.TenantID, cmd.Input, meta.Actor, h.Now())
	if err != nil {
		return Result{}, err
	}
	return h.appendNew(ctx, meta, domain.ResourceCategoryStream(id), id, c, func() any { return c.View() })
}

// appendNew appends the creation events of a new aggregate with NoStream.
// The result carries view() unless the append was an idempotent replay,
// whose aggregate is the first attempt's, not this one.
func (h *Handlers) appendNew(ctx context.Context, meta Meta, stream string, id uuid.UUID, agg aggregate, view func() any) (Result, error) {
	b := &batch{meta: meta}
	if err := b.addExpect(stream, eventstore.NoStream, agg.Changes()); err != nil {
		return Result{}, err
	}
	res, err := h.commit(ctx, b)
	if err != nil {
		return Result{}, err
	}
	out := Result{ID: id, Version: res.Versions[stream], Position: res.LastPosition}
	if !res.Duplicate {
		out.View = view()
	}
	return out, nil
}

// appendChanges appends an existing aggregate's changes with the version
// it was loaded at; a concurrent change becomes *VersionMismatchError. The
// result carries view() unless the append was an idempotent replay.
func (h *Handlers) appendChanges(ctx context.Context, meta Meta, stream string, id uuid.UUID, agg aggregate, view func() any) (Result, error) {
	b := &batch{meta: meta}
	if err := b.add(stream, agg); err != nil {
		return Result{}, err
	}
	res, err := h.commit(ctx, b)
	if err != nil {
		return Result{}, asVersionMismatch(err)
	}
	out := Result{ID: id, Version: agg.Version(), Position: res.LastPosition}
	if !res.Duplicate {
		out.View = view()
	}
	return out, nil
}

// ResourceCategory loads a category of the caller's tenant.
func (h *Handlers) ResourceCategory(ctx context.Context, meta Meta, id uuid.UUID) (*domain.ResourceCategory, error) {
	c := &domain.ResourceCategory{}
	if err := h.load(ctx, domain.ResourceCategoryStream(id), c); err != nil {
		return nil, err
	}
	if c.TenantID() != meta.TenantID {
		return nil, fmt.Errorf("resource category %s: %w", id, domain.ErrNotFound)
	}
	return c, nil
}

// CreateResource creates a resource in the caller's tenant.
type CreateResource struct {
	Input domain.ResourceInput
}

// CreateResource runs the command. Errors: domain.ErrForbidden,
// domain.ErrNotFound (tenant), *domain.ValidationError (also for an unknown
// category_id).
func (h *Handlers) CreateResource(ctx context.Context, meta Meta, cmd CreateResource) (Result, error) {
	if !isStaff(meta.Actor) {
		return Result{}, fmt.Errorf("create resource: %w", domain.ErrForbidden)
	}
	t, err := h.loadTenant(ctx, meta.TenantID)
	if err != nil {
		return Result{}, err
	}
	if err := h.checkCategory(ctx, meta, cmd.Input.CategoryID); err != nil {
		return Result{}, err
	}
	id := DeriveID(meta, "resource")
	r, err := domain.NewResource(id, meta.TenantID, cmd.Input, t.Settings().FieldsFor(domain.EntityResource), meta.Actor, h.Now())
	if err != nil {
		return Result{}, err
	}
	return h.appendNew(ctx, meta, domain.ResourceStream(id), id, r, func() any { return r.View() })
}

func (h *Handlers) checkCategory(ctx context.Context, meta Meta, id *uuid.UUID) error {
	if id == nil || *id == uuid.Nil {
		return nil
	}
	if _, err := h.ResourceCategory(ctx, meta, *id); err != nil {
		if isNotFound(err) {
			v := &domain.ValidationError{}
			v.Add("category_id", "not_found", "no such resource category")
			return v
		}
		return err
	}
	return nil
}

// Resource loads a resource of the caller's tenant.
func (h *Handlers) Resource(ctx context.Context, meta Meta, id uuid.UUID) (*domain.Resource, error) {
	r := &domain.Resource{}
	if err := h.load(ctx, domain.ResourceStream(id), r); err != nil {
		return nil, err
	}
	if r.TenantID() != meta.TenantID {
		return nil, fmt.Errorf("resource %s: %w", id, domain.ErrNotFound)
	}
	return r, nil
}

// UpdateResource patches a resource.
type UpdateResource struct {
	ResourceID      uuid.UUID
	Patch           domain.ResourcePatch
	ExpectedVersion *int64
}

// UpdateResource runs the command. Errors: domain.ErrForbidden,
// domain.ErrNotFound, *domain.ValidationError, *VersionMismatchError.
func (h *Handlers) UpdateResource(ctx context.Context, meta Meta, cmd UpdateResource) (Result, error) {
	if !isStaff(meta.Actor) {
		return Result{}, fmt.Errorf("update resource: %w", domain.ErrForbidden)
	}
	t, err := h.loadTenant(ctx, meta.TenantID)
	if err != nil {
		return Result{}, err
	}
	r, err := h.Resource(ctx, meta, cmd.ResourceID)
	if err != nil {
		return Result{}, err
	}
	if err := checkVersion(cmd.ExpectedVersion, r.Version()); err != nil {
		return Result{}, err
	}
	if err := h.checkCategory(ctx, meta, cmd.Patch.CategoryID); err != nil {
		return Result{}, err
	}
	if err := r.Update(cmd.Patch, t.Settings().FieldsFor(domain.EntityResource), meta.Actor, h.Now()); err != nil {
		return Result{}, err
	}
	return h.appendChanges(ctx, meta, domain.ResourceStream(r.ID()), r.ID(), r, func() any { return r.View() })
}

// SetResourceAvailability replaces a resource's weekly hours and overrides.
type SetResourceAvailability struct {
	ResourceID      uuid.UUID
	Availability    domain.Availability
	ExpectedVersion *int64
}

// SetResourceAvailability runs the command. Errors: domain.ErrForbidden,
// domain.ErrNotFound, *domain.ValidationError, *VersionMismatchError.
func (h *Handlers) SetResourceAvailability(ctx context.Context, meta Meta, cmd SetResourceAvailability) (Result, error) {
	if !isStaff(meta.Actor) {
		return Result{}, fmt.Errorf("set availability: %w", domain.ErrForbidden)
	}
	r, err := h.Resource(ctx, meta, cmd.ResourceID)
	if err != nil {
		return Result{}, err
	}
	if err := checkVersion(cmd.ExpectedVersion, r.Version()); err != nil {
		return Result{}, err
	}
	if err := r.SetAvailability(cmd.Availability, meta.Actor, h.Now()); err != nil {
		return Result{}, err
	}
	return h.appendChanges(ctx, meta, domain.ResourceStream(r.ID()), r.ID(), r, func() any { return r.View() })
}

// DeactivateResource stops a resource from taking new bookings; existing
// bookings stay.
type DeactivateResource struct {
	ResourceID      uuid.UUID
	ExpectedVersion *int64
}

// DeactivateResource runs the command. It is idempotent: deactivating an
// inactive resource changes nothing. Errors: domain.ErrForbidden,
// domain.ErrNotFound, *VersionMismatchError.
func (h *Handlers) DeactivateResource(ctx context.Context, meta Meta, cmd DeactivateResource) (Result, error) {
	if !isStaff(meta.Actor) {
		return Result{}, fmt.Errorf("deactivate resource: %w", domain.ErrForbidden)
	}
	r, err := h.Resource(ctx, meta, cmd.ResourceID)
	if err != nil {
		return Result{}, err
	}
	if err := checkVersion(cmd.ExpectedVersion, r.Version()); err != nil {
		return Result{}, err
	}
	if err := r.Deactivate(meta.Actor, h.Now()); err != nil {
		return Result{}, err
	}
	return h.appendChanges(ctx, meta, domain.ResourceStream(r.ID()), r.ID(), r, func() any { return r.View() })
}
