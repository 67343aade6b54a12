package reports

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/eventstore/postgres"
	"github.com/bookingengine/booking/projections"
	"github.com/bookingengine/booking/projections/internal/pgcopy"
	"github.com/bookingengine/booking/projections/pgprojection"
	"github.com/bookingengine/booking/queries"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationSet names the read model's migrations in schema_migrations:
// never rename it.
const migrationSet = "readmodel-reports"

// Migrations returns the embedded migration set of tables read_report_*,
// to pass to postgres.Migrate or postgres.Config.Migrations.
func Migrations() postgres.MigrationSet {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // the embedded directory is fixed at compile time
	}
	return postgres.MigrationSet{Name: migrationSet, FS: sub}
}

// Postgres is the reports read model in tables read_report_bookings,
// _tenants, _resources and _categories. It implements
// projections.Projection (through pgprojection) and
// queries.ReportReadModel. Safe for concurrent use.
type Postgres struct {
	*pgprojection.Projection
	pool *pgxpool.Pool
}

var (
	_ projections.Projection  = (*Postgres)(nil)
	_ queries.ReportReadModel = (*Postgres)(nil)
)

// NewPostgres returns the read model on pool; the tables must have been
// migrated (Migrations).
func NewPostgres(pool *pgxpool.Pool) *Postgres {
	p, err := pgprojection.New(pool, pgprojection.Definition{
		Name: Name, Categories: categories,
		Tables: []string{"read_report_bookings", "read_report_tenants", "read_report_resources", "read_report_categories"},
		Apply:  applyBatch,
	})
	if err != nil {
		panic(err) // the definition is fixed at compile time
	}
	return &Postgres{Projection: p, pool: pool}
}

// table is how applyBatch reads and writes the rows of one kind.
type table[T any] struct {
	load   string // selects the rows whose id is in $1
	scan   func(pgx.CollectableRow) (*T, error)
	id     func(*T) uuid.UUID
	ver    func(*T) int64
	fold   func(*T, projections.Event) (bool, error)
	upsert func(ctx context.Context, tx pgx.Tx, rs []*T) error
	// copy, if set, writes the rows of streams created in the batch with
	// COPY (name, the columns and each row's values in their order); only
	// rows of streams whose first event in the batch is not their creation
	// are then read first.
	copy *copyTo[T]
}

// copyTo is how rows go in with COPY.
type copyTo[T any] struct {
	name    string
	columns []string
	values  func(*T) []any
}

// batch is the rows of one kind that a batch touches.
type batch[T any] struct {
	t       table[T]
	ids     []uuid.UUID // in the order of their first event in the batch
	load    []uuid.UUID // the ids whose stored rows are read
	loaded  map[uuid.UUID]bool
	rows    map[uuid.UUID]*T
	changed map[uuid.UUID]bool
}

func newBatch[T any](t table[T]) *batch[T] {
	return &batch[T]{t: t, loaded: map[uuid.UUID]bool{}, rows: map[uuid.UUID]*T{}, changed: map[uuid.UUID]bool{}}
}

// touch adds id on its event of stream version v. A stream whose batch
// starts at version 1 has no stored row, unless this is a redelivery,
// which the COPY's fallback to the upsert handles.
func (b *batch[T]) touch(id uuid.UUID, v int64) {
	if _, ok := b.changed[id]; !ok {
		b.changed[id] = false
		b.ids = append(b.ids, id)
		if b.t.copy == nil || v > 1 {
			b.load = append(b.load, id)
			b.loaded[id] = true
		}
	}
}

func (b *batch[T]) loadRows(ctx context.Context, tx pgx.Tx) error {
	if len(b.load) == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, b.t.load, b.load)
	if err != nil {
		return err
	}
	rs, err := pgx.CollectRows(rows, b.t.scan)
	if err != nil {
		return err
	}
	for _, r := range rs {
		b.rows[b.t.id(r)] = r
	}
	return nil
}

func (b *batch[T]) apply(id uuid.UUID, e projections.Event) error {
	r := b.rows[id]
	if r == nil {
		r = new(T)
		b.rows[id] = r
	}
	changed, err := b.t.fold(r, e)
	b.changed[id] = b.changed[id] || changed
	return err
}

// write writes the rows that changed and exist: those of streams created
// in the batch with COPY if the table has it, the others with the
// upsert.
func (b *batch[T]) write(ctx context.Context, tx pgx.Tx) error {
	var fresh, known []*T
	for _, id := range b.ids {
		r := b.rows[id]
		switch {
		case !b.changed[id] || b.t.ver(r) <= 0:
		case b.loaded[id]:
			known = append(known, r)
		default:
			fresh = append(fresh, r)
		}
	}
	if len(fresh) > 0 {
		c := b.t.copy
		err := pgcopy.Insert(ctx, tx, c.name, c.columns, len(fresh), func(i int) []any { return c.values(fresh[i]) },
			func(ctx context.Context, tx pgx.Tx) error { return b.t.upsert(ctx, tx, fresh) })
		if err != nil {
			return err
		}
	}
	if len(known) == 0 {
		return nil
	}
	return b.t.upsert(ctx, tx, known)
}

// applyBatch loads the rows the batch touches, folds the batch in Go and
// writes every changed row back with one upsert per table, guarded by the
// version so that a row never moves back. The bookings created in the
// batch are not read first: their rows go in with COPY, falling back to
// the upsert if one of them is a redelivery of a row already stored.
func applyBatch(ctx context.Context, tx pgx.Tx, events []projections.Event) error {
	bs, ts, rs, cs := newBatch(bookingTable), newBatch(tenantTable), newBatch(resourceTable), newBatch(categoryTable)
	for _, e := range events {
		switch k, id := streamKind(e.StreamID); k {
		case kindBooking:
			bs.touch(id, e.StreamVersion)
		case kindTenant:
			ts.touch(id, e.StreamVersion)
		case kindResource:
			rs.touch(id, e.StreamVersion)
		case kindCategory:
			cs.touch(id, e.StreamVersion)
		}
	}
	for _, load := range []func(context.Context, pgx.Tx) error{bs.loadRows, ts.loadRows, rs.loadRows, cs.loadRows} {
		if err := load(ctx, tx); err != nil {
			return fmt.Errorf("load report rows: %w", err)
		}
	}
	for _, e := range events {
		var err error
		switch k, id := streamKind(e.StreamID); k {
		case kindBooking:
			err = bs.apply(id, e)
		case kindTenant:
			err = ts.apply(id, e)
		case kindResource:
			err = rs.apply(id, e)
		case kindCategory:
			err = cs.apply(id, e)
		}
		if err != nil {
			return err
		}
	}
	for _, write := range []func(context.Context, pgx.Tx) error{bs.write, ts.write, rs.write, cs.write} {
		if err := write(ctx, tx); err != nil {
			return fmt.Errorf("write report rows: %w", err)
		}
	}
	return nil
}

const bookingColumns = `id, tenant_id, resource_id, start_at, end_at, minutes, lead_minutes, seats, status, confirmed, late, created_at, version`

var bookingTable = table[bookingRow]{
	load: `SELECT ` + bookingColumns + ` FROM read_report_bookings WHERE id = ANY($1)`,
	scan: func(row pgx.CollectableRow) (*bookingRow, error) {
		var (
			r      bookingRow
			status string
		)
		err := row.Scan(&r.ID, &r.TenantID, &r.ResourceID, &r.Start, &r.End, &r.Minutes, &r.Lead, &r.Seats, &status,
			&r.Confirmed, &r.Late, &r.CreatedAt, &r.Version)
		r.Status, r.Start, r.End, r.CreatedAt = domain.Status(status), r.Start.UTC(), r.End.UTC(), r.CreatedAt.UTC()
		return &r, err
	},
	id:   func(r *bookingRow) uuid.UUID { return r.ID },
	ver:  func(r *bookingRow) int64 { return r.Version },
	fold: foldBooking,
	copy: &copyTo[bookingRow]{name: "read_report_bookings", columns: pgcopy.Columns(bookingColumns), values: func(r *bookingRow) []any {
		return []any{[16]byte(r.ID), [16]byte(r.TenantID), [16]byte(r.ResourceID), r.Start, r.End, r.Minutes, r.Lead,
			int32(r.Seats), string(r.Status), r.Confirmed, r.Late, r.CreatedAt, r.Version}
	}},
	upsert: func(ctx context.Context, tx pgx.Tx, rs []*bookingRow) error {
		n := len(rs)
		var (
			ids, tenants, resources = make([]uuid.UUID, n), make([]uuid.UUID, n), make([]uuid.UUID, n)
			starts, ends, created   = make([]time.Time, n), make([]time.Time, n), make([]time.Time, n)
			minutes, leads, vers    = make([]int64, n), make([]int64, n), make([]int64, n)
			seats                   = make([]int32, n)
			statuses                = make([]string, n)
			confirmed, late         = make([]bool, n), make([]bool, n)
		)
		for i, r := range rs {
			ids[i], tenants[i], resources[i] = r.ID, r.TenantID, r.ResourceID
			starts[i], ends[i], created[i] = r.Start, r.End, r.CreatedAt
			minutes[i], leads[i], vers[i], seats[i] = r.Minutes, r.Lead, r.Version, int32(r.Seats)
			statuses[i], confirmed[i], late[i] = string(r.Status), r.Confirmed, r.Late
		}
		_, err := tx.Exec(ctx, `INSERT INTO read_report_bookings AS b (`+bookingColumns+`)
			SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::timestamptz[], $5::timestamptz[], $6::bigint[],
				$7::bigint[], $8::integer[], $9::text[], $10::boolean[], $11::boolean[], $12::timestamptz[], $13::bigint[])
			ON CONFLICT (id) DO UPDATE SET
				tenant_id = excluded.tenant_id, resource_id = excluded.resource_id, start_at = excluded.start_at,
				end_at = excluded.end_at, minutes = excluded.minutes, lead_minutes = excluded.lead_minutes,
				seats = excluded.seats, status = excluded.status, confirmed = excluded.confirmed, late = excluded.late,
				created_at = excluded.created_at, version = excluded.version
			WHERE b.version < excluded.version`,
			ids, tenants, resources, starts, ends, minutes, leads, seats, statuses, confirmed, late, created, vers)
		return err
	},
}

var tenantTable = table[tenantRow]{
	load: `SELECT id, timezone, version FROM read_report_tenants WHERE id = ANY($1)`,
	scan: func(row pgx.CollectableRow) (*tenantRow, error) {
		var r tenantRow
		return &r, row.Scan(&r.ID, &r.Timezone, &r.Version)
	},
	id:   func(r *tenantRow) uuid.UUID { return r.ID },
	ver:  func(r *tenantRow) int64 { return r.Version },
	fold: foldTenant,
	upsert: func(ctx context.Context, tx pgx.Tx, rs []*tenantRow) error {
		ids, zones, vers := make([]uuid.UUID, len(rs)), make([]string, len(rs)), make([]int64, len(rs))
		for i, r := range rs {
			ids[i], zones[i], vers[i] = r.ID, r.Timezone, r.Version
		}
		_, err := tx.Exec(ctx, `INSERT INTO read_report_tenants AS t (id, timezone, version)
			SELECT * FROM unnest($1::uuid[], $2::text[], $3::bigint[])
			ON CONFLICT (id) DO UPDATE SET timezone = excluded.timezone, version = excluded.version
			WHERE t.version < excluded.version`, ids, zones, vers)
		return err
	},
}

var resourceTable = table[resourceRow]{
	load: `SELECT id, tenant_id, category_id, name, active, version FROM read_report_resources WHERE id = ANY($1)`,
	scan: func(row pgx.CollectableRow) (*resourceRow, error) {
		var (
			r   resourceRow
			cat pgtype.UUID
		)
		err := row.Scan(&r.ID, &r.TenantID, &cat, &r.Name, &r.Active, &r.Version)
		if cat.Valid {
			r.CategoryID = cat.Bytes
		}
		return &r, err
	},
	id:   func(r *resourceRow) uuid.UUID { return r.ID },
	ver:  func(r *resourceRow) int64 { return r.Version },
	fold: foldResource,
	upsert: func(ctx context.Context, tx pgx.Tx, rs []*resourceRow) error {
		n := len(rs)
		ids, tenants, cats := make([]uuid.UUID, n), make([]uuid.UUID, n), make([]pgtype.UUID, n)
		names, active, vers := make([]string, n), make([]bool, n), make([]int64, n)
		for i, r := range rs {
			ids[i], tenants[i], names[i], active[i], vers[i] = r.ID, r.TenantID, r.Name, r.Active, r.Version
			cats[i] = pgtype.UUID{Bytes: r.CategoryID, Valid: r.CategoryID != uuid.Nil}
		}
		_, err := tx.Exec(ctx, `INSERT INTO read_report_resources AS r (id, tenant_id, category_id, name, active, version)
			SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::boolean[], $6::bigint[])
			ON CONFLICT (id) DO UPDATE SET tenant_id = excluded.tenant_id, category_id = excluded.category_id,
				name = excluded.name, active = excluded.active, version = excluded.version
			WHERE r.version < excluded.version`, ids, tenants, cats, names, active, vers)
		return err
	},
}

var categoryTable = table[categoryRow]{
	load: `SELECT id, tenant_id, name, version FROM read_report_categories WHERE id = ANY($1)`,
	scan: func(row pgx.CollectableRow) (*categoryRow, error) {
		var r categoryRow
		return &r, row.Scan(&r.ID, &r.TenantID, &r.Name, &r.Version)
	},
	id:   func(r *categoryRow) uuid.UUID { return r.ID },
	ver:  func(r *categoryRow) int64 { return r.Version },
	fold: foldCategory,
	upsert: func(ctx context.Context, tx pgx.Tx, rs []*categoryRow) error {
		n := len(rs)
		ids, tenants, names, vers := make([]uuid.UUID, n), make([]uuid.UUID, n), make([]string, n), make([]int64, n)
		for i, r := range rs {
			ids[i], tenants[i], names[i], vers[i] = r.ID, r.TenantID, r.Name, r.Version
		}
		_, err := tx.Exec(ctx, `INSERT INTO read_report_categories AS c (id, tenant_id, name, version)
			SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::bigint[])
			ON CONFLICT (id) DO UPDATE SET tenant_id = excluded.tenant_id, name = excluded.name, version = excluded.version
			WHERE c.version < excluded.version`, ids, tenants, names, vers)
		return err
	},
}

// ReportCatalog returns the tenant's zone, resources and categories, or
// domain.ErrNotFound.
func (p *Postgres) ReportCatalog(ctx context.Context, tenantID uuid.UUID) (queries.ReportCatalog, error) {
	out := queries.ReportCatalog{Resources: []queries.ReportResource{}, Categories: []queries.ReportCategory{}}
	err := p.pool.QueryRow(ctx, `SELECT timezone FROM read_report_tenants WHERE id = $1`, tenantID).Scan(&out.Timezone)
	if errors.Is(err, pgx.ErrNoRows) {
		return queries.ReportCatalog{}, fmt.Errorf("tenant %s: %w", tenantID, domain.ErrNotFound)
	}
	if err != nil {
		return queries.ReportCatalog{}, fmt.Errorf("tenant %s: %w", tenantID, err)
	}
	rows, err := p.pool.Query(ctx, `SELECT id, category_id, name, active FROM read_report_resources WHERE tenant_id = $1 ORDER BY id`, tenantID)
	if err != nil {
		return queries.ReportCatalog{}, fmt.Errorf("report resources: %w", err)
	}
	out.Resources, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (queries.ReportResource, error) {
		var (
			r   queries.ReportResource
			cat pgtype.UUID
		)
		err := row.Scan(&r.ID, &cat, &r.Name, &r.Active)
		if cat.Valid {
			r.CategoryID = cat.Bytes
		}
		return r, err
	})
	if err != nil {
		return queries.ReportCatalog{}, fmt.Errorf("report resources: %w", err)
	}
	rows, err = p.pool.Query(ctx, `SELECT id, name FROM read_report_categories WHERE tenant_id = $1 ORDER BY id`, tenantID)
	if err != nil {
		return queries.ReportCatalog{}, fmt.Errorf("report categories: %w", err)
	}
	out.Categories, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (queries.ReportCategory, error) {
		var c queries.ReportCategory
		return c, row.Scan(&c.ID, &c.Name)
	})
	if err != nil {
		return queries.ReportCatalog{}, fmt.Errorf("report categories: %w", err)
	}
	return out, nil
}

// statsSelect aggregates the rows of b (the bookings) grouped by key; the
// FROM clause and the key expression are added per grouping.
const statsSelect = `SELECT %s AS key,
	count(*) FILTER (WHERE b.status = 'pending'),
	count(*) FILTER (WHERE b.status = 'confirmed'),
	count(*) FILTER (WHERE b.status = 'checked_in'),
	count(*) FILTER (WHERE b.status = 'completed'),
	count(*) FILTER (WHERE b.status = 'no_show'),
	count(*) FILTER (WHERE b.status = 'cancelled'),
	count(*) FILTER (WHERE b.status = 'rejected'),
	count(*) FILTER (WHERE b.confirmed),
	count(*) FILTER (WHERE b.late AND b.status = 'cancelled'),
	coalesce(sum(b.minutes * b.seats) FILTER (WHERE b.status NOT IN ('cancelled', 'rejected')), 0)::bigint,
	sum(b.lead_minutes)::bigint,
	percentile_disc(0.5) WITHIN GROUP (ORDER BY b.lead_minutes),
	percentile_disc(0.9) WITHIN GROUP (ORDER BY b.lead_minutes)
FROM read_report_bookings b %s
WHERE b.tenant_id = $1 AND b.start_at >= $2 AND b.start_at < $3
GROUP BY 1`

// BookingStats aggregates the tenant's bookings that start in [f.From,
// f.To) by f.GroupBy: one query over the range of the (tenant_id,
// start_at) index.
func (p *Postgres) BookingStats(ctx context.Context, f queries.ReportFilter) ([]queries.BookingStats, error) {
	args := []any{f.TenantID, f.From, f.To}
	var q string
	switch f.GroupBy {
	case queries.GroupByResource:
		q = fmt.Sprintf(statsSelect, `b.resource_id::text`, ``)
	case queries.GroupByCategory:
		q = fmt.Sprintf(statsSelect, `coalesce(r.category_id::text, '`+queries.UncategorizedKey+`')`,
			`LEFT JOIN read_report_resources r ON r.id = b.resource_id AND r.tenant_id = b.tenant_id`)
	default:
		// The days are contiguous: a binary search among their starts
		// (width_bucket) finds each booking's day, where a join on the
		// ranges would compare every booking with every day.
		if len(f.Days) == 0 {
			return []queries.BookingStats{}, nil
		}
		dates, starts := make([]string, len(f.Days)), make([]time.Time, len(f.Days))
		for i, d := range f.Days {
			dates[i], starts[i] = d.Date, d.Start
		}
		args[1], args[2] = f.Days[0].Start, f.Days[len(f.Days)-1].End
		args = append(args, dates, starts)
		q = fmt.Sprintf(statsSelect, `($4::text[])[width_bucket(b.start_at, $5::timestamptz[])]`, ``)
	}
	rows, err := p.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("booking stats: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (queries.BookingStats, error) {
		var (
			s      queries.BookingStats
			counts [7]int
		)
		err := row.Scan(&s.Key, &counts[0], &counts[1], &counts[2], &counts[3], &counts[4], &counts[5], &counts[6],
			&s.Confirmed, &s.LateCancelled, &s.BookedMinutes, &s.LeadSum, &s.LeadP50, &s.LeadP90)
		s.ByStatus = map[domain.Status]int{}
		for i, st := range []domain.Status{domain.StatusPending, domain.StatusConfirmed, domain.StatusCheckedIn,
			domain.StatusCompleted, domain.StatusNoShow, domain.StatusCancelled, domain.StatusRejected} {
			if counts[i] > 0 {
				s.ByStatus[st] = counts[i]
			}
		}
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("booking stats: %w", err)
	}
	return out, nil
}
