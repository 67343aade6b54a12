package domain

import (
	"strings"
	"time"

	"github.com/google/uuid"
)

// ResourceKind says what a resource is. The values are the contract's.
type ResourceKind string

// Resource kinds.
const (
	KindPerson    ResourceKind = "person"
	KindEquipment ResourceKind = "equipment"
	KindSpace     ResourceKind = "space"
	KindSoftware  ResourceKind = "software"
)

// Valid reports whether k is a known kind.
func (k ResourceKind) Valid() bool {
	switch k {
	case KindPerson, KindEquipment, KindSpace, KindSoftware:
		return true
	}
	return false
}

// ResourceCategoryInput creates a resource category.
type ResourceCategoryInput struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// ResourceCategory groups resources (e.g. "Dentists") so the free-slot query
// can search any resource of a category.
type ResourceCategory struct {
	root
	id          uuid.UUID
	tenantID    uuid.UUID
	name        string
	description string
	createdAt   time.Time
	createdBy   string
}

// NewResourceCategory validates in and records resource_category.created.
// It returns a *ValidationError for a missing or over-long name or an
// over-long description.
func NewResourceCategory(id, tenantID uuid.UUID, in ResourceCategoryInput, actor Actor, now time.Time) (*ResourceCategory, error) {
	var v ValidationError
	requireIDs(&v, id, tenantID)
	name := strings.TrimSpace(in.Name)
	validateName(&v, "name", name)
	if len(in.Description) > maxTextLen {
		v.Addf("description", FieldTooLong, "must be at most %d bytes", maxTextLen)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	c := &ResourceCategory{}
	err := c.record(c.apply, ResourceCategoryCreated{
		CategoryID: id, TenantID: tenantID, Name: name, Description: in.Description,
		CreatedBy: actor.ID, CreatedAt: now.UTC(),
	})
	return c, err
}

// Replay rebuilds the category from its stream.
func (c *ResourceCategory) Replay(events ...Event) error {
	return c.replay("resource category", c.apply, events)
}

func (c *ResourceCategory) apply(e Event) error {
	switch e := e.(type) {
	case ResourceCategoryCreated:
		if c.version > 0 {
			return alreadyCreated("resource category", e)
		}
		c.id, c.tenantID, c.name, c.description = e.CategoryID, e.TenantID, e.Name, e.Description
		c.createdAt, c.createdBy = e.CreatedAt, e.CreatedBy
	default:
		return foreignEvent("resource category", e)
	}
	return nil
}

// ID returns the category id.
func (c *ResourceCategory) ID() uuid.UUID { return c.id }

// TenantID returns the owning tenant.
func (c *ResourceCategory) TenantID() uuid.UUID { return c.tenantID }

// Name returns the display name.
func (c *ResourceCategory) Name() string { return c.name }

// ResourceCategoryView is the JSON shape of a category in API responses.
type ResourceCategoryView struct {
	ID          uuid.UUID `json:"id"`
	TenantID    uuid.UUID `json:"tenant_id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Version     int64     `json:"version"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	CreatedBy   string    `json:"created_by"`
	UpdatedBy   string    `json:"updated_by"`
}

// View returns the category as the API shows it.
func (c *ResourceCategory) View() ResourceCategoryView {
	return ResourceCategoryView{
		ID: c.id, TenantID: c.tenantID, Name: c.name, Description: c.description, Version: c.version,
		CreatedAt: c.createdAt, UpdatedAt: c.createdAt, CreatedBy: c.createdBy, UpdatedBy: c.createdBy,
	}
}

// ResourceInput creates a resource. Capacity 0 means the default of 1 seat.
// Timezone empty means the resource follows the tenant's zone. The domain
// cannot see whether CategoryID exists; the command side checks it.
type ResourceInput struct {
	CategoryID *uuid.UUID     `json:"category_id"`
	Name       string         `json:"name"`
	Kind       ResourceKind   `json:"kind"`
	Capacity   int            `json:"capacity"`
	Attributes map[string]any `json:"attributes"`
	Timezone   string         `json:"timezone"`
}

// ResourcePatch changes a resource; nil fields stay. CategoryID set to
// uuid.Nil and Timezone set to "" clear them. Attributes, when given,
// replace the old map whole and are validated again. Lowering Capacity does
// not revisit existing bookings; it applies to new ones.
type ResourcePatch struct {
	CategoryID *uuid.UUID      `json:"category_id,omitempty"`
	Name       *string         `json:"name,omitempty"`
	Kind       *ResourceKind   `json:"kind,omitempty"`
	Capacity   *int            `json:"capacity,omitempty"`
	Attributes *map[string]any `json:"attributes,omitempty"`
	Timezone   *string         `json:"timezone,omitempty"`
}

// Resource is something bookable: a person, a piece of equipment, a space or
// a software licence, with a capacity in seats (how many bookings, counted by
// seats, may overlap), an optional own zone and own availability, and an
// active flag.
type Resource struct {
	root
	id           uuid.UUID
	tenantID     uuid.UUID
	categoryID   *uuid.UUID
	name         string
	kind         ResourceKind
	capacity     int
	attributes   map[string]any
	timezone     string
	availability Availability
	active       bool
	createdAt    time.Time
	updatedAt    time.Time
	createdBy    string
	updatedBy    string
}

// NewResource validates in (attributes against the tenant's resource custom
// fields) and records resource.created. It returns a *ValidationError
// listing every bad field.
func NewResource(id, tenantID uuid.UUID, in ResourceInput, fields []CustomField, actor Actor, now time.Time) (*Resource, error) {
	var v ValidationError
	requireIDs(&v, id, tenantID)
	ev := ResourceCreated{
		ResourceID: id, TenantID: tenantID, CategoryID: nilIfZero(in.CategoryID),
		Name: strings.TrimSpace(in.Name), Kind: in.Kind, Capacity: in.Capacity,
		Attributes: cloneAttributes(in.Attributes), Timezone: strings.TrimSpace(in.Timezone),
		CreatedBy: actor.ID, CreatedAt: now.UTC(),
	}
	if ev.Capacity == 0 {
		ev.Capacity = 1
	}
	validateResource(&v, ev.Name, ev.Kind, ev.Capacity, ev.Timezone, ev.Attributes, fields)
	if err := v.Err(); err != nil {
		return nil, err
	}
	r := &Resource{}
	err := r.record(r.apply, ev)
	return r, err
}

func validateResource(v *ValidationError, name string, kind ResourceKind, capacity int, tz string, attrs map[string]any, fields []CustomField) {
	validateName(v, "name", name)
	if !kind.Valid() {
		v.Addf("kind", FieldInvalid, "must be person, equipment, space or software, got %q", kind)
	}
	if capacity < 1 {
		v.Add("capacity", FieldOutOfRange, "must be at least 1 seat")
	}
	if tz != "" {
		if _, err := loadLocation(tz); err != nil {
			v.Addf("timezone", FieldInvalid, "must be an IANA time zone such as Europe/Lisbon, got %q", tz)
		}
	}
	validateAttributes(v, "attributes", EntityResource, attrs, fields)
}

// Replay rebuilds the resource from its stream.
func (r *Resource) Replay(events ...Event) error { return r.replay("resource", r.apply, events) }

// Update applies a patch. It returns a *ValidationError listing every bad
// field and records nothing when the patch changes nothing (idempotent).
// An inactive resource may still be updated.
func (r *Resource) Update(p ResourcePatch, fields []CustomField, actor Actor, now time.Time) error {
	ev := ResourceUpdated{
		ResourceID: r.id, CategoryID: r.categoryID, Name: r.name, Kind: r.kind, Capacity: r.capacity,
		Attributes: cloneAttributes(r.attributes), Timezone: r.timezone, Actor: actor.ID, At: now.UTC(),
	}
	if p.CategoryID != nil {
		ev.CategoryID = nilIfZero(p.CategoryID)
	}
	if p.Name != nil {
		ev.Name = strings.TrimSpace(*p.Name)
	}
	if p.Kind != nil {
		ev.Kind = *p.Kind
	}
	if p.Capacity != nil {
		ev.Capacity = *p.Capacity
	}
	if p.Attributes != nil {
		ev.Attributes = cloneAttributes(*p.Attributes)
	}
	if p.Timezone != nil {
		ev.Timezone = strings.TrimSpace(*p.Timezone)
	}
	var v ValidationError
	validateResource(&v, ev.Name, ev.Kind, ev.Capacity, ev.Timezone, ev.Attributes, fields)
	if err := v.Err(); err != nil {
		return err
	}
	before := ResourceUpdated{ResourceID: r.id, CategoryID: r.categoryID, Name: r.name, Kind: r.kind,
		Capacity: r.capacity, Attributes: r.attributes, Timezone: r.timezone, Actor: ev.Actor, At: ev.At}
	if sameJSON(before, ev) {
		return nil
	}
	return r.record(r.apply, ev)
}

// SetAvailability replaces the resource's own availability whole (see
// Availability for what nil weekly and overrides mean). It returns a
// *ValidationError listing every problem and records nothing when the
// availability is unchanged.
func (r *Resource) SetAvailability(a Availability, actor Actor, now time.Time) error {
	var v ValidationError
	validateAvailability(&v, "", a)
	if err := v.Err(); err != nil {
		return err
	}
	a = cloneAvailability(a)
	if sameJSON(a, r.availability) {
		return nil
	}
	return r.record(r.apply, ResourceAvailabilityChanged{ResourceID: r.id, Availability: a, Actor: actor.ID, At: now.UTC()})
}

// Deactivate stops the resource from taking new bookings (the policy then
// refuses them with resource_inactive); existing bookings, including future
// ones, stay. Deactivating an inactive resource records nothing and returns
// nil, so DELETE is idempotent.
func (r *Resource) Deactivate(actor Actor, now time.Time) error {
	if !r.active {
		return nil
	}
	return r.record(r.apply, ResourceDeactivated{ResourceID: r.id, Actor: actor.ID, At: now.UTC()})
}

func (r *Resource) apply(e Event) error {
	switch e := e.(type) {
	case ResourceCreated:
		if r.version > 0 {
			return alreadyCreated("resource", e)
		}
		r.id, r.tenantID, r.categoryID = e.ResourceID, e.TenantID, nilIfZero(e.CategoryID)
		r.name, r.kind, r.capacity = e.Name, e.Kind, e.Capacity
		r.attributes, r.timezone, r.active = cloneAttributes(e.Attributes), e.Timezone, true
		r.createdAt, r.updatedAt, r.createdBy, r.updatedBy = e.CreatedAt, e.CreatedAt, e.CreatedBy, e.CreatedBy
	case ResourceUpdated:
		if r.version == 0 {
			return notCreated("resource", e)
		}
		r.categoryID, r.name, r.kind, r.capacity = nilIfZero(e.CategoryID), e.Name, e.Kind, e.Capacity
		r.attributes, r.timezone = cloneAttributes(e.Attributes), e.Timezone
		r.updatedAt, r.updatedBy = e.At, e.Actor
	case ResourceAvailabilityChanged:
		if r.version == 0 {
			return notCreated("resource", e)
		}
		r.availability = cloneAvailability(e.Availability)
		r.updatedAt, r.updatedBy = e.At, e.Actor
	case ResourceDeactivated:
		if r.version == 0 {
			return notCreated("resource", e)
		}
		r.active = false
		r.updatedAt, r.updatedBy = e.At, e.Actor
	default:
		return foreignEvent("resource", e)
	}
	return nil
}

// ID returns the resource id.
func (r *Resource) ID() uuid.UUID { return r.id }

// TenantID returns the owning tenant.
func (r *Resource) TenantID() uuid.UUID { return r.tenantID }

// Name returns the display name.
func (r *Resource) Name() string { return r.name }

// CategoryID returns the resource's category, or nil.
func (r *Resource) CategoryID() *uuid.UUID { return nilIfZero(r.categoryID) }

// Kind returns the resource kind.
func (r *Resource) Kind() ResourceKind { return r.kind }

// Capacity returns the seats that may be booked at once.
func (r *Resource) Capacity() int { return r.capacity }

// Active reports whether the resource takes new bookings.
func (r *Resource) Active() bool { return r.active }

// Timezone returns the resource's own zone, or "" when it follows the tenant.
func (r *Resource) Timezone() string { return r.timezone }

// Availability returns a copy of the resource's own availability (the zero
// value when it follows the tenant's hours only).
func (r *Resource) Availability() Availability { return cloneAvailability(r.availability) }

// ResourceView is the JSON shape of a resource in API responses.
type ResourceView struct {
	ID           uuid.UUID      `json:"id"`
	TenantID     uuid.UUID      `json:"tenant_id"`
	CategoryID   *uuid.UUID     `json:"category_id"`
	Name         string         `json:"name"`
	Kind         ResourceKind   `json:"kind"`
	Capacity     int            `json:"capacity"`
	Attributes   map[string]any `json:"attributes"`
	Timezone     string         `json:"timezone,omitempty"`
	Availability Availability   `json:"availability"`
	Active       bool           `json:"active"`
	Version      int64          `json:"version"`
	CreatedAt    time.Time      `json:"created_at"`
	UpdatedAt    time.Time      `json:"updated_at"`
	CreatedBy    string         `json:"created_by"`
	UpdatedBy    string         `json:"updated_by"`
}

// View returns the resource as the API shows it.
func (r *Resource) View() ResourceView {
	attrs := cloneAttributes(r.attributes)
	if attrs == nil {
		attrs = map[string]any{}
	}
	return ResourceView{
		ID: r.id, TenantID: r.tenantID, CategoryID: nilIfZero(r.categoryID), Name: r.name, Kind: r.kind,
		Capacity: r.capacity, Attributes: attrs, Timezone: r.timezone, Availability: r.Availability(),
		Active: r.active, Version: r.version, CreatedAt: r.createdAt, UpdatedAt: r.updatedAt,
		CreatedBy: r.createdBy, UpdatedBy: r.updatedBy,
	}
}

func requireIDs(v *ValidationError, id, tenantID uuid.UUID) {
	if id == uuid.Nil {
		v.Add("id", FieldRequired, "is required")
	}
	if tenantID == uuid.Nil {
		v.Add("tenant_id", FieldRequired, "is required")
	}
}

// nilIfZero copies an optional id, turning a pointer to uuid.Nil into nil.
func nilIfZero(id *uuid.UUID) *uuid.UUID {
	if id == nil || *id == uuid.Nil {
		return nil
	}
	c := *id
	return &c
}
