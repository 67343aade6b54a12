// Package catalog is the catalog read model: each tenant's booking
// settings and policy version, its resource categories, its resources
// (category, capacity, zone, availability, active) and its users' roles
// and linked resources. From it the read side builds the very
// domain.Policy the booking commands check against, without replaying any
// history at query time, and finds a professional's resource. It has an
// in-memory implementation (Memory) and a PostgreSQL one (Postgres,
// tables read_catalog_*); one test suite runs against both.
//
// Each row records its stream's version of the last event applied, so a
// redelivery or an old event arriving late changes nothing.
package catalog

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/google/uuid"

	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/projections"
	"github.com/bookingengine/booking/projections/internal/decode"
	"github.com/bookingengine/booking/queries"
)

// Name is the projection's permanent name: the key of its checkpoint in
// booking_checkpoints and its consumer group on the message bus. Changing
// it makes the projection replay the whole log.
const Name = "catalog"

var categories = []string{"tenant", "resource", "user"}

// kind tells which entity a stream holds.
type kind int

const (
	kindNone kind = iota
	kindTenant
	kindCategory
	kindResource
	kindUser
)

// streamKind parses "tenant-<id>", "resource-category-<id>",
// "resource-<id>" and "user-<id>".
func streamKind(streamID string) (kind, uuid.UUID) {
	for _, p := range []struct {
		prefix string
		k      kind
	}{{"tenant-", kindTenant}, {"resource-category-", kindCategory}, {"resource-", kindResource}, {"user-", kindUser}} {
		if rest, ok := strings.CutPrefix(streamID, p.prefix); ok {
			if id, err := uuid.Parse(rest); err == nil {
				return p.k, id
			}
			return kindNone, uuid.Nil
		}
	}
	return kindNone, uuid.Nil
}

type tenantRow struct {
	ID            uuid.UUID
	Settings      domain.Settings
	PolicyVersion int
	Version       int64
}

type categoryRow struct {
	ID, TenantID uuid.UUID
	Name         string
	View         domain.ResourceCategoryView
	Version      int64
}

type resourceRow struct {
	ID, TenantID uuid.UUID
	CategoryID   uuid.UUID // uuid.Nil: none
	Name         string
	Kind         domain.ResourceKind
	Capacity     int
	Timezone     string
	Availability domain.Availability
	Active       bool
	View         domain.ResourceView
	Version      int64
}

type userRow struct {
	ID, TenantID uuid.UUID
	Role         domain.Role
	ResourceID   uuid.UUID // uuid.Nil: none
	View         domain.UserView
	Version      int64
}

// payload returns the event, nil for a type this build does not know (it
// only advances the version), or an error for a malformed payload.
func payload(e projections.Event) (domain.Event, error) {
	ev, err := decode.Event(e)
	if errors.Is(err, domain.ErrUnknownEventType) {
		return nil, nil
	}
	return ev, err
}

func notCreated(e projections.Event) error {
	return fmt.Errorf("stream %s version %d: %s before the stream's creation", e.StreamID, e.StreamVersion, e.Type)
}

func foldTenant(r *tenantRow, e projections.Event) (bool, error) {
	if e.StreamVersion <= r.Version {
		return false, nil
	}
	ev, err := payload(e)
	if err != nil {
		return false, err
	}
	switch ev := ev.(type) {
	case domain.TenantCreated:
		*r = tenantRow{ID: ev.TenantID, Settings: ev.Settings, PolicyVersion: ev.PolicyVersion}
	case domain.TenantSettingsChanged:
		if r.Version == 0 {
			return false, notCreated(e)
		}
		r.Settings, r.PolicyVersion = ev.Settings, ev.PolicyVersion
	}
	r.Version = e.StreamVersion
	return true, nil
}

func foldCategory(r *categoryRow, e projections.Event) (bool, error) {
	if e.StreamVersion <= r.Version {
		return false, nil
	}
	ev, err := payload(e)
	if err != nil {
		return false, err
	}
	if ev, ok := ev.(domain.ResourceCategoryCreated); ok {
		*r = categoryRow{ID: ev.CategoryID, TenantID: ev.TenantID, Name: ev.Name, View: domain.ResourceCategoryView{
			ID: ev.CategoryID, TenantID: ev.TenantID, Name: ev.Name, Description: ev.Description,
			CreatedAt: ev.CreatedAt, UpdatedAt: ev.CreatedAt, CreatedBy: ev.CreatedBy, UpdatedBy: ev.CreatedBy,
		}}
	}
	r.Version = e.StreamVersion
	r.View.Version = e.StreamVersion
	return true, nil
}

func foldResource(r *resourceRow, e projections.Event) (bool, error) {
	if e.StreamVersion <= r.Version {
		return false, nil
	}
	ev, err := payload(e)
	if err != nil {
		return false, err
	}
	if _, created := ev.(domain.ResourceCreated); !created && ev != nil && r.Version == 0 {
		return false, notCreated(e)
	}
	switch ev := ev.(type) {
	case domain.ResourceCreated:
		*r = resourceRow{ID: ev.ResourceID, TenantID: ev.TenantID, CategoryID: orNil(ev.CategoryID), Name: ev.Name,
			Kind: ev.Kind, Capacity: ev.Capacity, Timezone: ev.Timezone, Active: true}
		r.View = domain.ResourceView{ID: ev.ResourceID, TenantID: ev.TenantID,
			CreatedAt: ev.CreatedAt, CreatedBy: ev.CreatedBy}
		r.View.UpdatedAt, r.View.UpdatedBy, r.View.Attributes = ev.CreatedAt, ev.CreatedBy, attributes(ev.Attributes)
	case domain.ResourceUpdated:
		r.CategoryID, r.Name, r.Kind, r.Capacity, r.Timezone = orNil(ev.CategoryID), ev.Name, ev.Kind, ev.Capacity, ev.Timezone
		r.View.UpdatedAt, r.View.UpdatedBy, r.View.Attributes = ev.At, ev.Actor, attributes(ev.Attributes)
	case domain.ResourceAvailabilityChanged:
		r.Availability = ev.Availability
		r.View.UpdatedAt, r.View.UpdatedBy = ev.At, ev.Actor
	case domain.ResourceDeactivated:
		r.Active = false
		r.View.UpdatedAt, r.View.UpdatedBy = ev.At, ev.Actor
	}
	r.Version = e.StreamVersion
	if r.ID != uuid.Nil {
		r.View.CategoryID, r.View.Name, r.View.Kind, r.View.Capacity = nullable(r.CategoryID), r.Name, r.Kind, r.Capacity
		r.View.Timezone, r.View.Availability, r.View.Active = r.Timezone, r.Availability, r.Active
		if len(r.View.Availability.Overrides) == 0 {
			r.View.Availability.Overrides = nil // as the aggregate's view shows none
		}
		r.View.Version = r.Version
	}
	return true, nil
}

func foldUser(r *userRow, e projections.Event) (bool, error) {
	if e.StreamVersion <= r.Version {
		return false, nil
	}
	ev, err := payload(e)
	if err != nil {
		return false, err
	}
	switch ev := ev.(type) {
	case domain.UserCreated:
		*r = userRow{ID: ev.UserID, TenantID: ev.TenantID, Role: ev.Role, ResourceID: orNil(ev.ResourceID)}
		r.View = domain.UserView{ID: ev.UserID, TenantID: ev.TenantID, Email: ev.Email, Name: ev.Name,
			Attributes: attributes(ev.Attributes), CreatedAt: ev.CreatedAt, UpdatedAt: ev.CreatedAt,
			CreatedBy: ev.CreatedBy, UpdatedBy: ev.CreatedBy}
	case domain.UserUpdated:
		if r.Version == 0 {
			return false, notCreated(e)
		}
		r.Role, r.ResourceID = ev.Role, orNil(ev.ResourceID)
		r.View.Email, r.View.Name, r.View.Attributes = ev.Email, ev.Name, attributes(ev.Attributes)
		r.View.UpdatedAt, r.View.UpdatedBy = ev.At, ev.Actor
	}
	r.Version = e.StreamVersion
	if r.ID != uuid.Nil {
		r.View.Role, r.View.ResourceID, r.View.Version = r.Role, nullable(r.ResourceID), r.Version
	}
	return true, nil
}

// attributes is the view's copy of an event's attributes: never nil, as
// the aggregates' views never show null.
func attributes(a map[string]any) map[string]any {
	if a == nil {
		return map[string]any{}
	}
	return maps.Clone(a)
}

func nullable(id uuid.UUID) *uuid.UUID {
	if id == uuid.Nil {
		return nil
	}
	return &id
}

func orNil(id *uuid.UUID) uuid.UUID {
	if id == nil {
		return uuid.Nil
	}
	return *id
}

// rules returns the CategoryPolicy.Rules of r: every field of the row
// that policy passes to the domain, except the id and the capacity. Keep
// it in step with policy.
func rules(r *resourceRow) (string, error) {
	avail, err := json.Marshal(r.Availability)
	if err != nil {
		return "", fmt.Errorf("resource %s: availability: %w", r.ID, err)
	}
	return fmt.Sprintf("%s|%t|%s", r.Timezone, r.Active, avail), nil
}

// categoryPolicy returns r's policy tagged with its rules.
func categoryPolicy(t *tenantRow, r *resourceRow) (queries.CategoryPolicy, error) {
	p, err := policy(t, r)
	if err != nil {
		return queries.CategoryPolicy{}, err
	}
	key, err := rules(r)
	if err != nil {
		return queries.CategoryPolicy{}, err
	}
	return queries.CategoryPolicy{Policy: p, Rules: key}, nil
}

// policy builds the booking policy of resource r of tenant t. The
// aggregates are restored from their projected state by replaying the
// creation events that state amounts to, so domain.NewPolicy, the one
// place that decides what may be booked, sees exactly what the command
// side's replay of the full streams sees.
func policy(t *tenantRow, r *resourceRow) (domain.Policy, error) {
	tn := &domain.Tenant{}
	if err := tn.Replay(domain.TenantCreated{TenantID: t.ID, Settings: t.Settings, PolicyVersion: t.PolicyVersion}); err != nil {
		return domain.Policy{}, fmt.Errorf("tenant %s: %w", t.ID, err)
	}
	var category *uuid.UUID
	if r.CategoryID != uuid.Nil {
		c := r.CategoryID
		category = &c
	}
	evs := []domain.Event{
		domain.ResourceCreated{ResourceID: r.ID, TenantID: r.TenantID, CategoryID: category, Name: r.Name,
			Kind: r.Kind, Capacity: r.Capacity, Timezone: r.Timezone},
		domain.ResourceAvailabilityChanged{ResourceID: r.ID, Availability: r.Availability},
	}
	if !r.Active {
		evs = append(evs, domain.ResourceDeactivated{ResourceID: r.ID})
	}
	rs := &domain.Resource{}
	if err := rs.Replay(evs...); err != nil {
		return domain.Policy{}, fmt.Errorf("resource %s: %w", r.ID, err)
	}
	return domain.NewPolicy(tn, rs), nil
}
