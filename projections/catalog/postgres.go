package catalog

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/eventstore/postgres"
	"github.com/bookingengine/booking/projections"
	"github.com/bookingengine/booking/projections/pgprojection"
	"github.com/bookingengine/booking/queries"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationSet names the read model's migrations in schema_migrations:
// never rename it.
const migrationSet = "readmodel-catalog"

// Migrations returns the embedded migration set of tables read_catalog_*.
func Migrations() postgres.MigrationSet {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // the embedded directory is fixed at compile time
	}
	return postgres.MigrationSet{Name: migrationSet, FS: sub}
}

// Postgres is the catalog read model in tables read_catalog_tenants,
// _categories, _resources and _users. It implements
// projections.Projection (through pgprojection), queries.PolicyReadModel,
// queries.UserLinks and queries.CatalogReadModel. Safe for concurrent use.
type Postgres struct {
	*pgprojection.Projection
	pool *pgxpool.Pool
}

var (
	_ projections.Projection   = (*Postgres)(nil)
	_ queries.PolicyReadModel  = (*Postgres)(nil)
	_ queries.UserLinks        = (*Postgres)(nil)
	_ queries.CatalogReadModel = (*Postgres)(nil)
)

// NewPostgres returns the read model on pool; the tables must have been
// migrated (Migrations).
func NewPostgres(pool *pgxpool.Pool) *Postgres {
	p, err := pgprojection.New(pool, pgprojection.Definition{
		Name: Name, Categories: categories,
		Tables: []string{"read_catalog_tenants", "read_catalog_categories", "read_catalog_resources", "read_catalog_users"},
		Apply:  applyBatch,
	})
	if err != nil {
		panic(err) // the definition is fixed at compile time
	}
	return &Postgres{Projection: p, pool: pool}
}

// applyBatch applies the events one by one: catalog streams are few and
// short, so a load and an upsert per event is cheap.
func applyBatch(ctx context.Context, tx pgx.Tx, events []projections.Event) error {
	for _, e := range events {
		var err error
		switch k, id := streamKind(e.StreamID); k {
		case kindTenant:
			err = applyTenant(ctx, tx, id, e)
		case kindCategory:
			err = applyCategory(ctx, tx, id, e)
		case kindResource:
			err = applyResource(ctx, tx, id, e)
		case kindUser:
			err = applyUser(ctx, tx, id, e)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func loadTenant(ctx context.Context, db querier, id uuid.UUID) (*tenantRow, error) {
	r := &tenantRow{}
	var settings []byte
	err := db.QueryRow(ctx, `SELECT id, settings, policy_version, version FROM read_catalog_tenants WHERE id = $1`, id).
		Scan(&r.ID, &settings, &r.PolicyVersion, &r.Version)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load tenant %s: %w", id, err)
	}
	if err := json.Unmarshal(settings, &r.Settings); err != nil {
		return nil, fmt.Errorf("load tenant %s: settings: %w", id, err)
	}
	return r, nil
}

func applyTenant(ctx context.Context, tx pgx.Tx, id uuid.UUID, e projections.Event) error {
	r, err := loadTenant(ctx, tx, id)
	if err != nil {
		return err
	}
	if r == nil {
		r = &tenantRow{}
	}
	if ok, err := foldTenant(r, e); err != nil || !ok || r.Version == 0 {
		return err
	}
	settings, err := json.Marshal(r.Settings)
	if err != nil {
		return fmt.Errorf("tenant %s: settings: %w", id, err)
	}
	_, err = tx.Exec(ctx, `INSERT INTO read_catalog_tenants AS t (id, settings, policy_version, version)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (id) DO UPDATE SET settings = excluded.settings, policy_version = excluded.policy_version,
			version = excluded.version
		WHERE t.version < excluded.version`, id, settings, r.PolicyVersion, r.Version)
	if err != nil {
		return fmt.Errorf("write tenant %s: %w", id, err)
	}
	return nil
}

func applyCategory(ctx context.Context, tx pgx.Tx, id uuid.UUID, e projections.Event) error {
	r := &categoryRow{}
	err := tx.QueryRow(ctx, `SELECT id, tenant_id, name, view, version FROM read_catalog_categories WHERE id = $1`, id).
		Scan(&r.ID, &r.TenantID, &r.Name, &r.View, &r.Version)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("load category %s: %w", id, err)
	}
	if ok, err := foldCategory(r, e); err != nil || !ok || r.Version == 0 {
		return err
	}
	view, err := json.Marshal(r.View)
	if err != nil {
		return fmt.Errorf("category %s: view: %w", id, err)
	}
	_, err = tx.Exec(ctx, `INSERT INTO read_catalog_categories AS c (id, tenant_id, name, view, version)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (id) DO UPDATE SET tenant_id = excluded.tenant_id, name = excluded.name, view = excluded.view,
			version = excluded.version
		WHERE c.version < excluded.version`, id, r.TenantID, r.Name, view, r.Version)
	if err != nil {
		return fmt.Errorf("write category %s: %w", id, err)
	}
	return nil
}

const resourceColumns = `id, tenant_id, coalesce(category_id, '00000000-0000-0000-0000-000000000000'), name, kind,
	capacity, timezone, availability, active, view, version`

func scanResource(row pgx.CollectableRow) (*resourceRow, error) {
	r := &resourceRow{}
	var (
		kind  string
		avail []byte
	)
	if err := row.Scan(&r.ID, &r.TenantID, &r.CategoryID, &r.Name, &kind, &r.Capacity, &r.Timezone, &avail, &r.Active,
		&r.View, &r.Version); err != nil {
		return nil, err
	}
	r.Kind = domain.ResourceKind(kind)
	if err := json.Unmarshal(avail, &r.Availability); err != nil {
		return nil, fmt.Errorf("resource %s: availability: %w", r.ID, err)
	}
	return r, nil
}

func applyResource(ctx context.Context, tx pgx.Tx, id uuid.UUID, e projections.Event) error {
	rows, err := tx.Query(ctx, `SELECT `+resourceColumns+` FROM read_catalog_resources WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("load resource %s: %w", id, err)
	}
	r, err := pgx.CollectExactlyOneRow(rows, scanResource)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		r = &resourceRow{}
	case err != nil:
		return fmt.Errorf("load resource %s: %w", id, err)
	}
	if ok, err := foldResource(r, e); err != nil || !ok || r.Version == 0 {
		return err
	}
	avail, err := json.Marshal(r.Availability)
	if err != nil {
		return fmt.Errorf("resource %s: availability: %w", id, err)
	}
	view, err := json.Marshal(r.View)
	if err != nil {
		return fmt.Errorf("resource %s: view: %w", id, err)
	}
	_, err = tx.Exec(ctx, `INSERT INTO read_catalog_resources AS r
			(id, tenant_id, category_id, name, kind, capacity, timezone, availability, active, view, version)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (id) DO UPDATE SET tenant_id = excluded.tenant_id, category_id = excluded.category_id,
			name = excluded.name, kind = excluded.kind, capacity = excluded.capacity, timezone = excluded.timezone,
			availability = excluded.availability, active = excluded.active, view = excluded.view, version = excluded.version
		WHERE r.version < excluded.version`,
		id, r.TenantID, nullable(r.CategoryID), r.Name, string(r.Kind), r.Capacity, r.Timezone, avail, r.Active, view, r.Version)
	if err != nil {
		return fmt.Errorf("write resource %s: %w", id, err)
	}
	return nil
}

func applyUser(ctx context.Context, tx pgx.Tx, id uuid.UUID, e projections.Event) error {
	r := &userRow{}
	var (
		role     string
		resource *uuid.UUID
	)
	err := tx.QueryRow(ctx, `SELECT id, tenant_id, role, resource_id, view, version FROM read_catalog_users WHERE id = $1`, id).
		Scan(&r.ID, &r.TenantID, &role, &resource, &r.View, &r.Version)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("load user %s: %w", id, err)
	}
	r.Role, r.ResourceID = domain.Role(role), orNil(resource)
	if ok, err := foldUser(r, e); err != nil || !ok || r.Version == 0 {
		return err
	}
	view, err := json.Marshal(r.View)
	if err != nil {
		return fmt.Errorf("user %s: view: %w", id, err)
	}
	_, err = tx.Exec(ctx, `INSERT INTO read_catalog_users AS u (id, tenant_id, role, resource_id, name, email, view, version)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (id) DO UPDATE SET tenant_id = excluded.tenant_id, role = excluded.role,
			resource_id = excluded.resource_id, name = excluded.name, email = excluded.email, view = excluded.view,
			version = excluded.version
		WHERE u.version < excluded.version`, id, r.TenantID, string(r.Role), nullable(r.ResourceID), r.View.Name, r.View.Email,
		view, r.Version)
	if err != nil {
		return fmt.Errorf("write user %s: %w", id, err)
	}
	return nil
}

// ResourcePolicy returns the policy of one resource of the tenant, or
// domain.ErrNotFound.
func (p *Postgres) ResourcePolicy(ctx context.Context, tenantID, resourceID uuid.UUID) (domain.Policy, error) {
	t, err := loadTenant(ctx, p.pool, tenantID)
	if err != nil {
		return domain.Policy{}, err
	}
	rows, err := p.pool.Query(ctx, `SELECT `+resourceColumns+` FROM read_catalog_resources WHERE id = $1 AND tenant_id = $2`, resourceID, tenantID)
	if err != nil {
		return domain.Policy{}, fmt.Errorf("resource %s: %w", resourceID, err)
	}
	r, err := pgx.CollectExactlyOneRow(rows, scanResource)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && t == nil) {
		return domain.Policy{}, fmt.Errorf("resource %s: %w", resourceID, domain.ErrNotFound)
	}
	if err != nil {
		return domain.Policy{}, fmt.Errorf("resource %s: %w", resourceID, err)
	}
	return policy(t, r)
}

// CategoryPolicies returns the policies of the category's active
// resources ordered by resource id, or domain.ErrNotFound for a category
// the tenant does not have.
func (p *Postgres) CategoryPolicies(ctx context.Context, tenantID, categoryID uuid.UUID) ([]queries.CategoryPolicy, error) {
	var exists bool
	err := p.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM read_catalog_categories WHERE id = $1 AND tenant_id = $2)`,
		categoryID, tenantID).Scan(&exists)
	if err != nil {
		return nil, fmt.Errorf("resource category %s: %w", categoryID, err)
	}
	t, err := loadTenant(ctx, p.pool, tenantID)
	if err != nil {
		return nil, err
	}
	if !exists || t == nil {
		return nil, fmt.Errorf("resource category %s: %w", categoryID, domain.ErrNotFound)
	}
	rows, err := p.pool.Query(ctx, `SELECT `+resourceColumns+` FROM read_catalog_resources
		WHERE tenant_id = $1 AND category_id = $2 AND active ORDER BY id`, tenantID, categoryID)
	if err != nil {
		return nil, fmt.Errorf("resource category %s: %w", categoryID, err)
	}
	rs, err := pgx.CollectRows(rows, scanResource)
	if err != nil {
		return nil, fmt.Errorf("resource category %s: %w", categoryID, err)
	}
	out := make([]queries.CategoryPolicy, 0, len(rs))
	for _, r := range rs {
		pol, err := categoryPolicy(t, r)
		if err != nil {
			return nil, err
		}
		out = append(out, pol)
	}
	return out, nil
}

// LinkedResource returns the resource the user is linked to.
func (p *Postgres) LinkedResource(ctx context.Context, tenantID, userID uuid.UUID) (uuid.UUID, bool, error) {
	var rid *uuid.UUID
	err := p.pool.QueryRow(ctx, `SELECT resource_id FROM read_catalog_users WHERE id = $1 AND tenant_id = $2`, userID, tenantID).Scan(&rid)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && rid == nil) {
		return uuid.Nil, false, nil
	}
	if err != nil {
		return uuid.Nil, false, fmt.Errorf("user %s: %w", userID, err)
	}
	return *rid, true, nil
}

// listViews runs a listing whose only column is the view JSON and decodes
// each row into a T.
func listViews[T any](ctx context.Context, pool *pgxpool.Pool, what, sql string, args ...any) ([]T, error) {
	rows, err := pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", what, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[T])
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", what, err)
	}
	return out, nil
}

// afterKey returns the name and id a page starts after, and whether there
// is one.
func afterKey(k *queries.NameKey) (string, uuid.UUID, bool) {
	if k == nil {
		return "", uuid.Nil, false
	}
	return k.Name, k.ID, true
}

// limitOrAll maps a zero limit to SQL's LIMIT ALL (NULL).
func limitOrAll(n int) *int {
	if n <= 0 {
		return nil
	}
	return &n
}

// ListResourceCategories returns the tenant's categories matching f.
func (p *Postgres) ListResourceCategories(ctx context.Context, f queries.CategoryFilter) ([]domain.ResourceCategoryView, error) {
	name, id, paged := afterKey(f.After)
	return listViews[domain.ResourceCategoryView](ctx, p.pool, "resource categories", `SELECT view FROM read_catalog_categories
		WHERE tenant_id = $1 AND (NOT $2 OR (name COLLATE "C", id) > ($3 COLLATE "C", $4))
		ORDER BY name COLLATE "C", id LIMIT $5`, f.TenantID, paged, name, id, limitOrAll(f.Limit))
}

// ListResources returns the tenant's resources matching f.
func (p *Postgres) ListResources(ctx context.Context, f queries.ResourceFilter) ([]domain.ResourceView, error) {
	name, id, paged := afterKey(f.After)
	return listViews[domain.ResourceView](ctx, p.pool, "resources", `SELECT view FROM read_catalog_resources
		WHERE tenant_id = $1 AND (NOT $2 OR (name COLLATE "C", id) > ($3 COLLATE "C", $4))
			AND ($5::uuid IS NULL OR category_id = $5) AND ($6 = '' OR kind = $6) AND ($7::boolean IS NULL OR active = $7)
		ORDER BY name COLLATE "C", id LIMIT $8`,
		f.TenantID, paged, name, id, nullable(f.CategoryID), string(f.Kind), f.Active, limitOrAll(f.Limit))
}

// ListUsers returns the tenant's users matching f.
func (p *Postgres) ListUsers(ctx context.Context, f queries.UserFilter) ([]domain.UserView, error) {
	name, id, paged := afterKey(f.After)
	return listViews[domain.UserView](ctx, p.pool, "users", `SELECT view FROM read_catalog_users
		WHERE tenant_id = $1 AND (NOT $2 OR (name COLLATE "C", id) > ($3 COLLATE "C", $4))
			AND ($5 = '' OR role = $5) AND ($6 = '' OR email = $6)
		ORDER BY name COLLATE "C", id LIMIT $7`,
		f.TenantID, paged, name, id, string(f.Role), f.Email, limitOrAll(f.Limit))
}
