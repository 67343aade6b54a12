package queries

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"

	"github.com/google/uuid"

	"github.com/bookingengine/booking/domain"
)

// MaxCatalogPageSize caps a page of resource categories, resources or
// users. The default is DefaultPageSize.
const MaxCatalogPageSize = 200

// ListResourceCategories asks for one page of a tenant's resource
// categories, ordered by name (byte order) then id.
type ListResourceCategories struct {
	Viewer Viewer
	// Limit is the page size: 0 means DefaultPageSize, at most
	// MaxCatalogPageSize.
	Limit int
	// Cursor is the NextCursor of the previous page ("" for the first).
	Cursor      string
	MinPosition int64
}

// ListResources asks for one page of a tenant's resources, ordered by
// name (byte order) then id. Zero fields do not filter.
type ListResources struct {
	Viewer     Viewer
	CategoryID uuid.UUID
	Kind       domain.ResourceKind
	// Active, when set, admits only resources whose active flag equals it.
	Active      *bool
	Limit       int
	Cursor      string
	MinPosition int64
}

// ListUsers asks for one page of a tenant's users, ordered by name (byte
// order) then id. Zero fields do not filter.
type ListUsers struct {
	Viewer Viewer
	Role   domain.Role
	// Email admits the user with this address, compared as the domain
	// stores it (trimmed, lower case).
	Email       string
	Limit       int
	Cursor      string
	MinPosition int64
}

// ResourceCategoryPage is one page of categories, each the same JSON as
// GET /resource-categories/{id}. NextCursor is empty on the last page.
type ResourceCategoryPage struct {
	ResourceCategories []domain.ResourceCategoryView `json:"resource_categories"`
	NextCursor         string                        `json:"next_cursor,omitempty"`
}

// ResourcePage is one page of resources, each the same JSON as GET
// /resources/{id}. NextCursor is empty on the last page.
type ResourcePage struct {
	Resources  []domain.ResourceView `json:"resources"`
	NextCursor string                `json:"next_cursor,omitempty"`
}

// UserPage is one page of users, each the same JSON as GET /users/{id}.
// NextCursor is empty on the last page.
type UserPage struct {
	Users      []domain.UserView `json:"users"`
	NextCursor string            `json:"next_cursor,omitempty"`
}

// NameKey is the sort key of a catalog listing: name, then id.
type NameKey struct {
	Name string    `json:"n"`
	ID   uuid.UUID `json:"i"`
}

// CategoryFilter is what CatalogReadModel.ListResourceCategories filters
// by. After, when set, starts the page after that key.
type CategoryFilter struct {
	TenantID uuid.UUID
	After    *NameKey
	Limit    int
}

// ResourceFilter is what CatalogReadModel.ListResources filters by. Zero
// fields do not filter.
type ResourceFilter struct {
	TenantID   uuid.UUID
	CategoryID uuid.UUID
	Kind       domain.ResourceKind
	Active     *bool
	After      *NameKey
	Limit      int
}

// UserFilter is what CatalogReadModel.ListUsers filters by. Zero fields do
// not filter.
type UserFilter struct {
	TenantID uuid.UUID
	Role     domain.Role
	Email    string
	After    *NameKey
	Limit    int
}

// CatalogReadModel lists a tenant's categories, resources and users. Each
// method returns at most f.Limit items matching f, ordered by name
// (compared byte by byte) then id.
type CatalogReadModel interface {
	ListResourceCategories(ctx context.Context, f CategoryFilter) ([]domain.ResourceCategoryView, error)
	ListResources(ctx context.Context, f ResourceFilter) ([]domain.ResourceView, error)
	ListUsers(ctx context.Context, f UserFilter) ([]domain.UserView, error)
}

// ListCatalogHandler answers ListResourceCategories, ListResources and
// ListUsers from the catalog read model. Safe for concurrent use.
type ListCatalogHandler struct {
	readModel CatalogReadModel
	wait      Waiter
}

// NewListCatalogHandler returns the handler; wait covers the catalog read
// model.
func NewListCatalogHandler(readModel CatalogReadModel, wait Waiter) ListCatalogHandler {
	return ListCatalogHandler{readModel: readModel, wait: wait}
}

// ResourceCategories returns the page. Every role of the tenant may list
// categories: clients need them to book. Errors: *domain.ValidationError
// for a bad limit or cursor; ErrTimeout; the read model's.
func (h ListCatalogHandler) ResourceCategories(ctx context.Context, q ListResourceCategories) (ResourceCategoryPage, error) {
	limit, after, err := h.prepare(ctx, q.Limit, q.Cursor, q.MinPosition, nil)
	if err != nil {
		return ResourceCategoryPage{}, err
	}
	rows, err := h.readModel.ListResourceCategories(ctx, CategoryFilter{TenantID: q.Viewer.TenantID, After: after, Limit: limit + 1})
	if err != nil {
		return ResourceCategoryPage{}, err
	}
	items, next := pageOf(rows, limit, func(c domain.ResourceCategoryView) NameKey { return NameKey{Name: c.Name, ID: c.ID} })
	return ResourceCategoryPage{ResourceCategories: items, NextCursor: next}, nil
}

// Resources returns the page. Every role of the tenant may list
// resources: clients need them to book. Errors: *domain.ValidationError
// for a bad limit, cursor or kind; ErrTimeout; the read model's.
func (h ListCatalogHandler) Resources(ctx context.Context, q ListResources) (ResourcePage, error) {
	limit, after, err := h.prepare(ctx, q.Limit, q.Cursor, q.MinPosition, func(v *domain.ValidationError) {
		if q.Kind != "" && !q.Kind.Valid() {
			v.Addf("kind", domain.FieldInvalid, "unknown kind %q", q.Kind)
		}
	})
	if err != nil {
		return ResourcePage{}, err
	}
	rows, err := h.readModel.ListResources(ctx, ResourceFilter{TenantID: q.Viewer.TenantID, CategoryID: q.CategoryID,
		Kind: q.Kind, Active: q.Active, After: after, Limit: limit + 1})
	if err != nil {
		return ResourcePage{}, err
	}
	items, next := pageOf(rows, limit, func(r domain.ResourceView) NameKey { return NameKey{Name: r.Name, ID: r.ID} })
	return ResourcePage{Resources: items, NextCursor: next}, nil
}

// Users returns the page. Only staff (admin, manager, platform admin) may
// list users: domain.ErrForbidden for anyone else. Other errors:
// *domain.ValidationError for a bad limit, cursor or role; ErrTimeout;
// the read model's.
func (h ListCatalogHandler) Users(ctx context.Context, q ListUsers) (UserPage, error) {
	if !q.Viewer.isStaff() {
		return UserPage{}, domain.ErrForbidden
	}
	limit, after, err := h.prepare(ctx, q.Limit, q.Cursor, q.MinPosition, func(v *domain.ValidationError) {
		if q.Role != "" && !q.Role.Valid() {
			v.Addf("role", domain.FieldInvalid, "unknown role %q", q.Role)
		}
	})
	if err != nil {
		return UserPage{}, err
	}
	rows, err := h.readModel.ListUsers(ctx, UserFilter{TenantID: q.Viewer.TenantID, Role: q.Role,
		Email: strings.ToLower(strings.TrimSpace(q.Email)), After: after, Limit: limit + 1})
	if err != nil {
		return UserPage{}, err
	}
	items, next := pageOf(rows, limit, func(u domain.UserView) NameKey { return NameKey{Name: u.Name, ID: u.ID} })
	return UserPage{Users: items, NextCursor: next}, nil
}

// prepare validates the paging parameters (and whatever more asks), then
// waits for the minimum position.
func (h ListCatalogHandler) prepare(ctx context.Context, limit int, cursor string, minPosition int64,
	more func(*domain.ValidationError)) (int, *NameKey, error) {
	var v domain.ValidationError
	switch {
	case limit == 0:
		limit = DefaultPageSize
	case limit < 0 || limit > MaxCatalogPageSize:
		v.Addf("limit", domain.FieldOutOfRange, "must be between 1 and %d", MaxCatalogPageSize)
	}
	var after *NameKey
	if cursor != "" {
		k, err := decodeNameCursor(cursor)
		if err != nil {
			v.Add("cursor", domain.FieldInvalid, "is not a cursor this server issued")
		}
		after = k
	}
	if more != nil {
		more(&v)
	}
	if err := v.Err(); err != nil {
		return 0, nil, err
	}
	if err := waitFor(ctx, h.wait, minPosition); err != nil {
		return 0, nil, err
	}
	return limit, after, nil
}

// pageOf cuts rows (fetched with limit+1) to a page and the cursor of the
// next one.
func pageOf[T any](rows []T, limit int, key func(T) NameKey) ([]T, string) {
	if len(rows) <= limit {
		if rows == nil {
			rows = []T{}
		}
		return rows, ""
	}
	b, _ := json.Marshal(key(rows[limit-1])) // a string and a uuid always encode
	return rows[:limit], base64.RawURLEncoding.EncodeToString(b)
}

func decodeNameCursor(s string) (*NameKey, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	var k NameKey
	if err := json.Unmarshal(b, &k); err != nil {
		return nil, err
	}
	return &k, nil
}
