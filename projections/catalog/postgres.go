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
// projections.Projection (through pgprojection), queries.PolicyReadModel
// and queries.UserLinks. Safe for concurrent use.
type Postgres struct {
	*pgprojection.Projection
	pool *pgxpool.Pool
}

var (
	_ projections.Projection  = (*Postgres)(nil)
	_ queries.PolicyReadModel = (*Postgres)(nil)
	_ queries.UserLinks       = (*Postgres)(nil)
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
	err := tx.QueryRow(ctx, `SELECT id, tenant_id, name, version FROM read_catalog_categories WHERE id = $1`, id).
		Scan(&r.ID, &r.TenantID, &r.Name, &r.Version)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("load category %s: %w", id, err)
	}
	if ok, err := foldCategory(r, e); err != nil || !ok || r.Version == 0 {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO read_catalog_categories AS c (id, tenant_id, name, version)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (id) DO UPDATE SET tenant_id = excluded.tenant_id, name = excluded.name, version = excluded.version
		WHERE c.version < excluded.version`, id, r.TenantID, r.Name, r.Version)
	if err != nil {
		return fmt.Errorf("write category %s: %w", id, err)
	}
	return nil
}

const resourceColumns = `id, tenant_id, coalesce(category_id, '00000000-0000-0000-0000-000000000000'), name, kind,
	capacity, timezone, availability, active, version`

func scanResource(row pgx.CollectableRow) (*resourceRow, error) {
	r := &resourceRow{}
	var (
		kind  string
		avail []byte
	)
	if err := row.Scan(&r.ID, &r.TenantID, &r.CategoryID, &r.Name, &kind, &r.Capacity, &r.Timezone, &avail, &r.Active, &r.Version); err != nil {
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
	_, err = tx.Exec(ctx, `INSERT INTO read_catalog_resources AS r
			(id, tenant_id, category_id, name, kind, capacity, timezone, availability, active, version)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (id) DO UPDATE SET tenant_id = excluded.tenant_id, category_id = excluded.category_id,
			name = excluded.name, kind = excluded.kind, capacity = excluded.capacity, timezone = excluded.timezone,
			availability = excluded.availability, active = excluded.active, version = excluded.version
		WHERE r.version < excluded.version`,
		id, r.TenantID, nullable(r.CategoryID), r.Name, string(r.Kind), r.Capacity, r.Timezone, avail, r.Active, r.Version)
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
	err := tx.QueryRow(ctx, `SELECT id, tenant_id, role, resource_id, version FROM read_catalog_users WHERE id = $1`, id).
		Scan(&r.ID, &r.TenantID, &role, &resource, &r.Version)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("load user %s: %w", id, err)
	}
	r.Role, r.ResourceID = domain.Role(role), orNil(resource)
	if ok, err := foldUser(r, e); err != nil || !ok || r.Version == 0 {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO read_catalog_users AS u (id, tenant_id, role, resource_id, version)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (id) DO UPDATE SET tenant_id = excluded.tenant_id, role = excluded.role,
			resource_id = excluded.resource_id, version = excluded.version
		WHERE u.version < excluded.version`, id, r.TenantID, string(r.Role), nullable(r.ResourceID), r.Version)
	if err != nil {
		return fmt.Errorf("write user %s: %w", id, err)
	}
	return nil
}

func nullable(id uuid.UUID) *uuid.UUID {
	if id == uuid.Nil {
		return nil
	}
	return &id
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
