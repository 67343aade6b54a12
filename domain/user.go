package domain

import (
	"net/mail"
	"strings"
	"time"

	"github.com/google/uuid"
)

// NormalizeEmail trims and lower-cases an email and checks it is a bare
// address (local@domain, no display name). Emails are unique per tenant in
// this form, so "Ana@Example.com " and "ana@example.com" are the same user.
// It returns a *ValidationError on field "email".
func NormalizeEmail(email string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(email))
	var v ValidationError
	if e == "" {
		v.Add("email", FieldRequired, "is required")
		return e, v.Err()
	}
	addr, err := mail.ParseAddress(e)
	at := strings.LastIndexByte(e, '@')
	if err != nil || addr.Address != e || addr.Name != "" || at <= 0 || at == len(e)-1 || len(e) > 254 {
		v.Addf("email", FieldInvalid, "must be an email address such as ana@example.com, got %q", email)
	}
	return e, v.Err()
}

// UserInput creates a user. ResourceID links a professional to the person
// resource that represents them; only professionals may have one, and the
// command side checks that the resource exists and is a person.
type UserInput struct {
	Email      string         `json:"email"`
	Name       string         `json:"name"`
	Role       Role           `json:"role"`
	Attributes map[string]any `json:"attributes"`
	ResourceID *uuid.UUID     `json:"resource_id"`
}

// UserPatch changes a user; nil fields stay. ResourceID set to uuid.Nil
// unlinks. Attributes, when given, replace the map whole. Changing Email
// requires the command side to claim the new email guard and release the
// old one in the same append.
type UserPatch struct {
	Email      *string         `json:"email,omitempty"`
	Name       *string         `json:"name,omitempty"`
	Role       *Role           `json:"role,omitempty"`
	Attributes *map[string]any `json:"attributes,omitempty"`
	ResourceID *uuid.UUID      `json:"resource_id,omitempty"`
}

// User is a person who uses a tenant: staff (admin, manager, professional)
// or a client.
type User struct {
	root
	id         uuid.UUID
	tenantID   uuid.UUID
	email      string
	name       string
	role       Role
	attributes map[string]any
	resourceID *uuid.UUID
	createdAt  time.Time
	updatedAt  time.Time
	createdBy  string
	updatedBy  string
}

// NewUser validates in (attributes against the tenant's user custom fields)
// and records user.created with the normalised email. It returns a
// *ValidationError listing every bad field. Email uniqueness is the command
// side's job (EmailGuardStream).
func NewUser(id, tenantID uuid.UUID, in UserInput, fields []CustomField, actor Actor, now time.Time) (*User, error) {
	var v ValidationError
	requireIDs(&v, id, tenantID)
	email, err := NormalizeEmail(in.Email)
	v.Merge("", err)
	ev := UserCreated{
		UserID: id, TenantID: tenantID, Email: email, Name: strings.TrimSpace(in.Name), Role: in.Role,
		Attributes: cloneAttributes(in.Attributes), ResourceID: nilIfZero(in.ResourceID),
		CreatedBy: actor.ID, CreatedAt: now.UTC(),
	}
	validateUser(&v, ev.Name, ev.Role, ev.ResourceID, ev.Attributes, fields)
	if err := v.Err(); err != nil {
		return nil, err
	}
	u := &User{}
	err = u.record(u.apply, ev)
	return u, err
}

func validateUser(v *ValidationError, name string, role Role, resourceID *uuid.UUID, attrs map[string]any, fields []CustomField) {
	validateName(v, "name", name)
	if !role.Valid() {
		v.Addf("role", FieldInvalid, "must be admin, manager, professional or client, got %q", role)
	}
	if resourceID != nil && role != RoleProfessional {
		v.Add("resource_id", FieldInvalid, "only a professional may be linked to a resource")
	}
	validateAttributes(v, "attributes", EntityUser, attrs, fields)
}

// Replay rebuilds the user from its stream.
func (u *User) Replay(events ...Event) error { return u.replay("user", u.apply, events) }

// Update applies a patch. It returns a *ValidationError listing every bad
// field and records nothing when the patch changes nothing (idempotent).
func (u *User) Update(p UserPatch, fields []CustomField, actor Actor, now time.Time) error {
	var v ValidationError
	ev := UserUpdated{
		UserID: u.id, Email: u.email, Name: u.name, Role: u.role, Attributes: cloneAttributes(u.attributes),
		ResourceID: u.resourceID, Actor: actor.ID, At: now.UTC(),
	}
	if p.Email != nil {
		email, err := NormalizeEmail(*p.Email)
		v.Merge("", err)
		ev.Email = email
	}
	if p.Name != nil {
		ev.Name = strings.TrimSpace(*p.Name)
	}
	if p.Role != nil {
		ev.Role = *p.Role
	}
	if p.Attributes != nil {
		ev.Attributes = cloneAttributes(*p.Attributes)
	}
	if p.ResourceID != nil {
		ev.ResourceID = nilIfZero(p.ResourceID)
	}
	validateUser(&v, ev.Name, ev.Role, ev.ResourceID, ev.Attributes, fields)
	if err := v.Err(); err != nil {
		return err
	}
	before := UserUpdated{UserID: u.id, Email: u.email, Name: u.name, Role: u.role, Attributes: u.attributes,
		ResourceID: u.resourceID, Actor: ev.Actor, At: ev.At}
	if sameJSON(before, ev) {
		return nil
	}
	return u.record(u.apply, ev)
}

func (u *User) apply(e Event) error {
	switch e := e.(type) {
	case UserCreated:
		if u.version > 0 {
			return alreadyCreated("user", e)
		}
		u.id, u.tenantID, u.email, u.name, u.role = e.UserID, e.TenantID, e.Email, e.Name, e.Role
		u.attributes, u.resourceID = cloneAttributes(e.Attributes), nilIfZero(e.ResourceID)
		u.createdAt, u.updatedAt, u.createdBy, u.updatedBy = e.CreatedAt, e.CreatedAt, e.CreatedBy, e.CreatedBy
	case UserUpdated:
		if u.version == 0 {
			return notCreated("user", e)
		}
		u.email, u.name, u.role = e.Email, e.Name, e.Role
		u.attributes, u.resourceID = cloneAttributes(e.Attributes), nilIfZero(e.ResourceID)
		u.updatedAt, u.updatedBy = e.At, e.Actor
	default:
		return foreignEvent("user", e)
	}
	return nil
}

// ID returns the user id.
func (u *User) ID() uuid.UUID { return u.id }

// TenantID returns the owning tenant.
func (u *User) TenantID() uuid.UUID { return u.tenantID }

// Email returns the normalised email.
func (u *User) Email() string { return u.email }

// Name returns the display name.
func (u *User) Name() string { return u.name }

// Role returns the user's role.
func (u *User) Role() Role { return u.role }

// ResourceID returns the linked person resource, or nil.
func (u *User) ResourceID() *uuid.UUID { return nilIfZero(u.resourceID) }

// UserView is the JSON shape of a user in API responses.
type UserView struct {
	ID         uuid.UUID      `json:"id"`
	TenantID   uuid.UUID      `json:"tenant_id"`
	Email      string         `json:"email"`
	Name       string         `json:"name"`
	Role       Role           `json:"role"`
	Attributes map[string]any `json:"attributes"`
	ResourceID *uuid.UUID     `json:"resource_id,omitempty"`
	Version    int64          `json:"version"`
	CreatedAt  time.Time      `json:"created_at"`
	UpdatedAt  time.Time      `json:"updated_at"`
	CreatedBy  string         `json:"created_by"`
	UpdatedBy  string         `json:"updated_by"`
}

// View returns the user as the API shows it.
func (u *User) View() UserView {
	attrs := cloneAttributes(u.attributes)
	if attrs == nil {
		attrs = map[string]any{}
	}
	return UserView{
		ID: u.id, TenantID: u.tenantID, Email: u.email, Name: u.name, Role: u.role, Attributes: attrs,
		ResourceID: u.ResourceID(), Version: u.version, CreatedAt: u.createdAt, UpdatedAt: u.updatedAt,
		CreatedBy: u.createdBy, UpdatedBy: u.updatedBy,
	}
}
