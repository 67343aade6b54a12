package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/eventstore"
	"github.com/google/uuid"
)

// CreateUser creates a user in the caller's tenant and claims the email in
// the same append, so an email is unique within a tenant.
type CreateUser struct {
	Input domain.UserInput
}

// CreateUser runs the command. Errors: domain.ErrForbidden,
// domain.ErrNotFound (tenant), *domain.ValidationError (also for a linked
// resource that does not exist or is not a person), domain.ErrEmailTaken.
func (h *Handlers) CreateUser(ctx context.Context, meta Meta, cmd CreateUser) (Result, error) {
	if !isStaff(meta.Actor) {
		return Result{}, fmt.Errorf("create user: %w", domain.ErrForbidden)
	}
	if meta.Actor.Role == domain.RoleManager && cmd.Input.Role == domain.RoleAdmin {
		return Result{}, fmt.Errorf("a manager cannot create an admin: %w", domain.ErrForbidden)
	}
	t, err := h.loadTenant(ctx, meta.TenantID)
	if err != nil {
		return Result{}, err
	}
	if err := h.checkPersonResource(ctx, meta, cmd.Input.ResourceID); err != nil {
		return Result{}, err
	}
	id := DeriveID(meta, "user")
	u, err := domain.NewUser(id, meta.TenantID, cmd.Input, t.Settings().FieldsFor(domain.EntityUser), meta.Actor, h.Now())
	if err != nil {
		return Result{}, err
	}
	guardStream := domain.EmailGuardStream(meta.TenantID, u.Email())
	guard := domain.NewGuard()
	if err := h.loadMaybe(ctx, guardStream, guard); err != nil {
		return Result{}, err
	}
	if err := guard.Claim(id, u.Email(), domain.ErrEmailTaken); err != nil {
		return Result{}, err
	}
	b := &batch{meta: meta}
	if err := b.addExpect(domain.UserStream(id), eventstore.NoStream, u.Changes()); err != nil {
		return Result{}, err
	}
	if err := b.add(guardStream, guard); err != nil {
		return Result{}, err
	}
	res, err := h.commit(ctx, b)
	if err != nil {
		return Result{}, emailTaken(err, guardStream)
	}
	out := Result{ID: id, Version: res.Versions[domain.UserStream(id)], Position: res.LastPosition}
	if !res.Duplicate {
		out.View = u.View()
	}
	return out, nil
}

func emailTaken(err error, guardStream string) error {
	var vc *eventstore.VersionConflictError
	if errors.As(err, &vc) && vc.StreamID == guardStream {
		return fmt.Errorf("claim email: %w", domain.ErrEmailTaken)
	}
	return err
}

func (h *Handlers) checkPersonResource(ctx context.Context, meta Meta, id *uuid.UUID) error {
	if id == nil || *id == uuid.Nil {
		return nil
	}
	r, err := h.Resource(ctx, meta, *id)
	if err != nil {
		if isNotFound(err) {
			v := &domain.ValidationError{}
			v.Add("resource_id", "not_found", "no such resource")
			return v
		}
		return err
	}
	if r.Kind() != domain.KindPerson {
		v := &domain.ValidationError{}
		v.Add("resource_id", "invalid", "must be a resource of kind person")
		return v
	}
	return nil
}

// User loads a user of the caller's tenant. A client may load only itself;
// another user is ErrNotFound to it.
func (h *Handlers) User(ctx context.Context, meta Meta, id uuid.UUID) (*domain.User, error) {
	if meta.Actor.Role == domain.RoleClient && meta.Actor.ID != id.String() {
		return nil, fmt.Errorf("user %s: %w", id, domain.ErrNotFound)
	}
	return h.loadUser(ctx, meta.TenantID, id)
}

func (h *Handlers) loadUser(ctx context.Context, tenantID, id uuid.UUID) (*domain.User, error) {
	u := &domain.User{}
	if err := h.load(ctx, domain.UserStream(id), u); err != nil {
		return nil, err
	}
	if u.TenantID() != tenantID {
		return nil, fmt.Errorf("user %s: %w", id, domain.ErrNotFound)
	}
	return u, nil
}

// UpdateUser patches a user. Changing the email claims the new one and
// releases the old one in the same append.
type UpdateUser struct {
	UserID          uuid.UUID
	Patch           domain.UserPatch
	ExpectedVersion *int64
}

// UpdateUser runs the command. Staff may update anyone of their tenant
// (managers not into or out of admin); a user may update its own name,
// email and attributes but not its role or linked resource. Errors:
// domain.ErrForbidden, domain.ErrNotFound, *domain.ValidationError,
// domain.ErrEmailTaken, *VersionMismatchError.
func (h *Handlers) UpdateUser(ctx context.Context, meta Meta, cmd UpdateUser) (Result, error) {
	self := meta.Actor.ID == cmd.UserID.String()
	if !isStaff(meta.Actor) && !self {
		return Result{}, fmt.Errorf("update user: %w", domain.ErrNotFound)
	}
	if !isStaff(meta.Actor) && (cmd.Patch.Role != nil || cmd.Patch.ResourceID != nil) {
		return Result{}, fmt.Errorf("only staff change roles and links: %w", domain.ErrForbidden)
	}
	t, err := h.loadTenant(ctx, meta.TenantID)
	if err != nil {
		return Result{}, err
	}
	u, err := h.loadUser(ctx, meta.TenantID, cmd.UserID)
	if err != nil {
		return Result{}, err
	}
	if meta.Actor.Role == domain.RoleManager && (u.Role() == domain.RoleAdmin || (cmd.Patch.Role != nil && *cmd.Patch.Role == domain.RoleAdmin)) {
		return Result{}, fmt.Errorf("a manager cannot change an admin: %w", domain.ErrForbidden)
	}
	if err := checkVersion(cmd.ExpectedVersion, u.Version()); err != nil {
		return Result{}, err
	}
	if err := h.checkPersonResource(ctx, meta, cmd.Patch.ResourceID); err != nil {
		return Result{}, err
	}
	oldEmail := u.Email()
	if err := u.Update(cmd.Patch, t.Settings().FieldsFor(domain.EntityUser), meta.Actor, h.Now()); err != nil {
		return Result{}, err
	}
	b := &batch{meta: meta}
	if err := b.add(domain.UserStream(u.ID()), u); err != nil {
		return Result{}, err
	}
	var newGuardStream string
	if u.Email() != oldEmail {
		newGuardStream = domain.EmailGuardStream(meta.TenantID, u.Email())
		claim := domain.NewGuard()
		if err := h.loadMaybe(ctx, newGuardStream, claim); err != nil {
			return Result{}, err
		}
		if err := claim.Claim(u.ID(), u.Email(), domain.ErrEmailTaken); err != nil {
			return Result{}, err
		}
		oldStream := domain.EmailGuardStream(meta.TenantID, oldEmail)
		release := domain.NewGuard()
		if err := h.loadMaybe(ctx, oldStream, release); err != nil {
			return Result{}, err
		}
		if err := release.Release(u.ID()); err != nil {
			return Result{}, err
		}
		if err := b.add(newGuardStream, claim); err != nil {
			return Result{}, err
		}
		if err := b.add(oldStream, release); err != nil {
			return Result{}, err
		}
	}
	res, err := h.commit(ctx, b)
	if err != nil {
		if newGuardStream != "" {
			if e := emailTaken(err, newGuardStream); e != err {
				return Result{}, e
			}
		}
		return Result{}, asVersionMismatch(err)
	}
	out := Result{ID: u.ID(), Version: u.Version(), Position: res.LastPosition}
	if !res.Duplicate {
		out.View = u.View()
	}
	return out, nil
}
