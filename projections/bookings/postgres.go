package bookings

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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
const migrationSet = "readmodel-bookings"

// Migrations returns the embedded migration set of table read_bookings,
// to pass to postgres.Migrate or postgres.Config.Migrations.
func Migrations() postgres.MigrationSet {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // the embedded directory is fixed at compile time
	}
	return postgres.MigrationSet{Name: migrationSet, FS: sub}
}

// Postgres is the bookings read model in table read_bookings. It
// implements projections.Projection (through pgprojection) and the
// read-model interfaces of queries.GetBookingHandler and
// queries.ListBookingsHandler. Safe for concurrent use.
type Postgres struct {
	*pgprojection.Projection
	pool *pgxpool.Pool
}

var (
	_ projections.Projection        = (*Postgres)(nil)
	_ queries.GetBookingReadModel   = (*Postgres)(nil)
	_ queries.ListBookingsReadModel = (*Postgres)(nil)
)

// NewPostgres returns the read model on pool; the tables must have been
// migrated (Migrations).
func NewPostgres(pool *pgxpool.Pool) *Postgres {
	p, err := pgprojection.New(pool, pgprojection.Definition{
		Name: Name, Categories: categories, Tables: []string{"read_bookings"}, Apply: applyBatch,
	})
	if err != nil {
		panic(err) // the definition is fixed at compile time
	}
	return &Postgres{Projection: p, pool: pool}
}

const columns = `id, tenant_id, resource_id, client_id, start_at, end_at, timezone, seats, title, notes,
	attributes, status, status_reason, cancelled_late, policy_version, buffer_before, buffer_after,
	version, created_at, updated_at, created_by, updated_by`

func scanRow(rows pgx.CollectableRow) (*row, error) {
	var (
		r      row
		status string
		attrs  []byte
	)
	err := rows.Scan(&r.ID, &r.TenantID, &r.ResourceID, &r.ClientID, &r.Start, &r.End, &r.Timezone, &r.Seats,
		&r.Title, &r.Notes, &attrs, &status, &r.StatusReason, &r.CancelledLate, &r.PolicyVersion,
		&r.BufferBefore, &r.BufferAfter, &r.Version, &r.CreatedAt, &r.UpdatedAt, &r.CreatedBy, &r.UpdatedBy)
	r.Status, r.Attributes = domain.Status(status), attrs
	r.Start, r.End, r.CreatedAt, r.UpdatedAt = r.Start.UTC(), r.End.UTC(), r.CreatedAt.UTC(), r.UpdatedAt.UTC()
	return &r, err
}

// applyBatch folds the batch in Go and writes every changed row back with
// one statement. Only bookings whose first event in the batch is not
// their creation are read first: a booking created in the batch is folded
// from nothing, and if it is a redelivery of rows already stored the
// upsert's version guard keeps the stored row.
func applyBatch(ctx context.Context, tx pgx.Tx, events []projections.Event) error {
	var (
		ids  []uuid.UUID
		load []uuid.UUID
	)
	seen := map[uuid.UUID]bool{}
	for _, e := range events {
		id, ok := bookingID(e.StreamID)
		if !ok || seen[id] {
			continue
		}
		seen[id] = true
		ids = append(ids, id)
		if e.StreamVersion > 1 {
			load = append(load, id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	byID := make(map[uuid.UUID]*row, len(ids))
	if len(load) > 0 {
		rows, err := tx.Query(ctx, `SELECT `+columns+` FROM read_bookings WHERE id = ANY($1)`, load)
		if err != nil {
			return fmt.Errorf("load bookings: %w", err)
		}
		existing, err := pgx.CollectRows(rows, scanRow)
		if err != nil {
			return fmt.Errorf("load bookings: %w", err)
		}
		for _, r := range existing {
			byID[r.ID] = r
		}
	}
	changed := make(map[uuid.UUID]bool, len(ids))
	for _, e := range events {
		id, ok := bookingID(e.StreamID)
		if !ok {
			continue
		}
		r := byID[id]
		if r == nil {
			r = &row{}
			byID[id] = r
		}
		ok, err := fold(r, e)
		if err != nil {
			return err
		}
		if ok {
			changed[id] = true
		}
	}
	var rs []*row
	for _, id := range ids {
		if r := byID[id]; changed[id] && r.Version > 0 {
			rs = append(rs, r)
		}
	}
	if len(rs) == 0 {
		return nil
	}
	loaded := make(map[uuid.UUID]bool, len(load))
	for _, id := range load {
		loaded[id] = true
	}
	var fresh, known []*row
	for _, r := range rs {
		if loaded[r.ID] {
			known = append(known, r)
		} else {
			fresh = append(fresh, r)
		}
	}
	if err := insertRows(ctx, tx, fresh); err != nil {
		return err
	}
	if len(known) > 0 {
		return upsertRows(ctx, tx, known)
	}
	return nil
}

// columnNames lists columns for COPY.
var columnNames = strings.Split(strings.Join(strings.Fields(columns), ""), ",")

// insertRows writes rows of bookings created in the batch with COPY, the
// fastest path, inside a savepoint: if one of them is stored already (a
// redelivery of its creation), the savepoint is rolled back and they are
// upserted instead, under the version guard.
func insertRows(ctx context.Context, tx pgx.Tx, rs []*row) error {
	if len(rs) == 0 {
		return nil
	}
	sp, err := tx.Begin(ctx)
	if err != nil {
		return fmt.Errorf("insert bookings: %w", err)
	}
	_, err = sp.CopyFrom(ctx, pgx.Identifier{"read_bookings"}, columnNames, pgx.CopyFromSlice(len(rs), func(i int) ([]any, error) {
		r := rs[i]
		return []any{[16]byte(r.ID), [16]byte(r.TenantID), [16]byte(r.ResourceID), [16]byte(r.ClientID), r.Start, r.End,
			r.Timezone, int32(r.Seats), r.Title, r.Notes, string(r.Attributes), string(r.Status), r.StatusReason,
			r.CancelledLate, int32(r.PolicyVersion), int32(r.BufferBefore), int32(r.BufferAfter), r.Version,
			r.CreatedAt, r.UpdatedAt, r.CreatedBy, r.UpdatedBy}, nil
	}))
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		return sp.Commit(ctx)
	case errors.As(err, &pgErr) && pgErr.Code == "23505":
		if err := sp.Rollback(ctx); err != nil {
			return fmt.Errorf("insert bookings: %w", err)
		}
		return upsertRows(ctx, tx, rs)
	}
	_ = sp.Rollback(ctx)
	return fmt.Errorf("insert bookings: %w", err)
}

// upsertSQL writes whole rows from parallel arrays, one per column, and
// never moves a row back to an older version.
const upsertSQL = `INSERT INTO read_bookings AS b (` + columns + `)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::timestamptz[], $6::timestamptz[],
	$7::text[], $8::integer[], $9::text[], $10::text[], $11::jsonb[], $12::text[], $13::text[],
	$14::boolean[], $15::integer[], $16::integer[], $17::integer[], $18::bigint[],
	$19::timestamptz[], $20::timestamptz[], $21::text[], $22::text[])
ON CONFLICT (id) DO UPDATE SET
	tenant_id = excluded.tenant_id, resource_id = excluded.resource_id, client_id = excluded.client_id,
	start_at = excluded.start_at, end_at = excluded.end_at, timezone = excluded.timezone, seats = excluded.seats,
	title = excluded.title, notes = excluded.notes, attributes = excluded.attributes, status = excluded.status,
	status_reason = excluded.status_reason, cancelled_late = excluded.cancelled_late,
	policy_version = excluded.policy_version, buffer_before = excluded.buffer_before, buffer_after = excluded.buffer_after,
	version = excluded.version, created_at = excluded.created_at, updated_at = excluded.updated_at,
	created_by = excluded.created_by, updated_by = excluded.updated_by
WHERE b.version < excluded.version`

// upsertRows writes whole rows with one statement.
func upsertRows(ctx context.Context, tx pgx.Tx, rs []*row) error {
	n := len(rs)
	var (
		ids, tenants, resources, clients = make([][16]byte, n), make([][16]byte, n), make([][16]byte, n), make([][16]byte, n)
		starts, ends, created, updated   = make([]time.Time, n), make([]time.Time, n), make([]time.Time, n), make([]time.Time, n)
		zones, titles, notes, statuses   = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		reasons, createdBy, updatedBy    = make([]string, n), make([]string, n), make([]string, n)
		seats, policies, before, after   = make([]int32, n), make([]int32, n), make([]int32, n), make([]int32, n)
		late                             = make([]bool, n)
		versions                         = make([]int64, n)
		attrs                            = make([]string, n)
	)
	for i, r := range rs {
		ids[i], tenants[i], resources[i], clients[i] = r.ID, r.TenantID, r.ResourceID, r.ClientID
		starts[i], ends[i], created[i], updated[i] = r.Start, r.End, r.CreatedAt, r.UpdatedAt
		zones[i], titles[i], notes[i], statuses[i] = r.Timezone, r.Title, r.Notes, string(r.Status)
		reasons[i], createdBy[i], updatedBy[i] = r.StatusReason, r.CreatedBy, r.UpdatedBy
		seats[i], policies[i], before[i], after[i] = int32(r.Seats), int32(r.PolicyVersion), int32(r.BufferBefore), int32(r.BufferAfter)
		late[i], versions[i], attrs[i] = r.CancelledLate, r.Version, string(r.Attributes)
	}
	_, err := tx.Exec(ctx, upsertSQL, ids, tenants, resources, clients, starts, ends, zones, seats, titles, notes,
		attrs, statuses, reasons, late, policies, before, after, versions, created, updated, createdBy, updatedBy)
	if err != nil {
		return fmt.Errorf("write bookings: %w", err)
	}
	return nil
}

// Booking returns one booking of the tenant, or domain.ErrNotFound.
func (p *Postgres) Booking(ctx context.Context, tenantID, id uuid.UUID) (queries.Booking, error) {
	rows, err := p.pool.Query(ctx, `SELECT `+columns+` FROM read_bookings WHERE id = $1 AND tenant_id = $2`, id, tenantID)
	if err != nil {
		return queries.Booking{}, fmt.Errorf("booking %s: %w", id, err)
	}
	r, err := pgx.CollectExactlyOneRow(rows, scanRow)
	if errors.Is(err, pgx.ErrNoRows) {
		return queries.Booking{}, fmt.Errorf("booking %s: %w", id, domain.ErrNotFound)
	}
	if err != nil {
		return queries.Booking{}, fmt.Errorf("booking %s: %w", id, err)
	}
	return r.booking()
}

// ListBookings returns at most f.Limit matching bookings ordered by start
// then id: one indexed query.
func (p *Postgres) ListBookings(ctx context.Context, f queries.BookingFilter) ([]queries.Booking, error) {
	var (
		where = []string{"tenant_id = $1"}
		args  = []any{f.TenantID}
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.ResourceID != uuid.Nil {
		where = append(where, "resource_id = "+arg(f.ResourceID))
	}
	if f.ClientID != uuid.Nil {
		where = append(where, "client_id = "+arg(f.ClientID))
	}
	if len(f.Statuses) > 0 {
		st := make([]string, len(f.Statuses))
		for i, s := range f.Statuses {
			st[i] = string(s)
		}
		where = append(where, "status = ANY("+arg(st)+")")
	}
	if !f.From.IsZero() {
		where = append(where, "end_at > "+arg(f.From))
	}
	if !f.To.IsZero() {
		where = append(where, "start_at < "+arg(f.To))
	}
	switch v := f.Visible; {
	case v.All:
	case v.ClientID != uuid.Nil && v.ResourceID != uuid.Nil:
		where = append(where, "(client_id = "+arg(v.ClientID)+" OR resource_id = "+arg(v.ResourceID)+")")
	case v.ClientID != uuid.Nil:
		where = append(where, "client_id = "+arg(v.ClientID))
	case v.ResourceID != uuid.Nil:
		where = append(where, "resource_id = "+arg(v.ResourceID))
	default:
		return []queries.Booking{}, nil
	}
	if f.After != nil {
		where = append(where, "(start_at, id) > ("+arg(f.After.Start)+", "+arg(f.After.ID)+")")
	}
	q := `SELECT ` + columns + ` FROM read_bookings WHERE ` + strings.Join(where, " AND ") + ` ORDER BY start_at, id`
	if f.Limit > 0 {
		q += ` LIMIT ` + arg(f.Limit)
	}
	rows, err := p.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list bookings: %w", err)
	}
	rs, err := pgx.CollectRows(rows, scanRow)
	if err != nil {
		return nil, fmt.Errorf("list bookings: %w", err)
	}
	out := make([]queries.Booking, 0, len(rs))
	for _, r := range rs {
		b, err := r.booking()
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}
