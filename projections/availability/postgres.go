package availability

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bookingengine/booking/eventstore/postgres"
	"github.com/bookingengine/booking/projections"
	"github.com/bookingengine/booking/projections/pgprojection"
	"github.com/bookingengine/booking/queries"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationSet names the read model's migrations in schema_migrations:
// never rename it.
const migrationSet = "readmodel-availability"

// Migrations returns the embedded migration set of table read_availability
// (it creates the btree_gist extension, trusted since PostgreSQL 13, so a
// database owner may apply it).
func Migrations() postgres.MigrationSet {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // the embedded directory is fixed at compile time
	}
	return postgres.MigrationSet{Name: migrationSet, FS: sub}
}

// Postgres is the availability read model in table read_availability. It
// implements projections.Projection (through pgprojection) and
// queries.OccupancyReadModel. Safe for concurrent use.
type Postgres struct {
	*pgprojection.Projection
	pool *pgxpool.Pool
}

var (
	_ projections.Projection     = (*Postgres)(nil)
	_ queries.OccupancyReadModel = (*Postgres)(nil)
)

// NewPostgres returns the read model on pool; the table must have been
// migrated (Migrations).
func NewPostgres(pool *pgxpool.Pool) *Postgres {
	p, err := pgprojection.New(pool, pgprojection.Definition{
		Name: Name, Categories: categories, Tables: []string{"read_availability"}, Apply: applyBatch,
	})
	if err != nil {
		panic(err) // the definition is fixed at compile time
	}
	return &Postgres{Projection: p, pool: pool}
}

// applyBatch folds the batch in Go and writes the changed rows back. Only
// bookings whose first event in the batch is not their creation are read
// first; rows of bookings created in the batch go in with COPY, falling
// back to the guarded upsert if one of them is a redelivery.
func applyBatch(ctx context.Context, tx pgx.Tx, events []projections.Event) error {
	var ids, load []uuid.UUID
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
		rows, err := tx.Query(ctx, `SELECT booking_id, tenant_id, resource_id, start_at, end_at,
			lower(occupied), upper(occupied), seats, active, version
			FROM read_availability WHERE booking_id = ANY($1)`, load)
		if err != nil {
			return fmt.Errorf("load holds: %w", err)
		}
		var r row
		_, err = pgx.ForEachRow(rows, []any{&r.BookingID, &r.TenantID, &r.ResourceID, &r.Start, &r.End,
			&r.OccupiedStart, &r.OccupiedEnd, &r.Seats, &r.Active, &r.Version}, func() error {
			c := r
			c.Start, c.End, c.OccupiedStart, c.OccupiedEnd = c.Start.UTC(), c.End.UTC(), c.OccupiedStart.UTC(), c.OccupiedEnd.UTC()
			byID[c.BookingID] = &c
			return nil
		})
		if err != nil {
			return fmt.Errorf("load holds: %w", err)
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
	loaded := make(map[uuid.UUID]bool, len(load))
	for _, id := range load {
		loaded[id] = true
	}
	var fresh, known []*row
	for _, id := range ids {
		r := byID[id]
		switch {
		case !changed[id] || r.Version == 0:
		case loaded[id]:
			known = append(known, r)
		default:
			fresh = append(fresh, r)
		}
	}
	if err := insertRows(ctx, tx, fresh); err != nil {
		return err
	}
	return upsertRows(ctx, tx, known)
}

var copyColumns = []string{"booking_id", "tenant_id", "resource_id", "start_at", "end_at", "occupied", "seats", "active", "version"}

// insertRows writes new rows with COPY inside a savepoint; if one is
// stored already (a redelivered creation) they are upserted instead.
func insertRows(ctx context.Context, tx pgx.Tx, rs []*row) error {
	if len(rs) == 0 {
		return nil
	}
	sp, err := tx.Begin(ctx)
	if err != nil {
		return fmt.Errorf("insert holds: %w", err)
	}
	_, err = sp.CopyFrom(ctx, pgx.Identifier{"read_availability"}, copyColumns, pgx.CopyFromSlice(len(rs), func(i int) ([]any, error) {
		r := rs[i]
		return []any{[16]byte(r.BookingID), [16]byte(r.TenantID), [16]byte(r.ResourceID), r.Start, r.End,
			pgtype.Range[time.Time]{Lower: r.OccupiedStart, Upper: r.OccupiedEnd, LowerType: pgtype.Inclusive,
				UpperType: pgtype.Exclusive, Valid: true},
			int32(r.Seats), r.Active, r.Version}, nil
	}))
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		return sp.Commit(ctx)
	case errors.As(err, &pgErr) && pgErr.Code == "23505":
		if err := sp.Rollback(ctx); err != nil {
			return fmt.Errorf("insert holds: %w", err)
		}
		return upsertRows(ctx, tx, rs)
	}
	_ = sp.Rollback(ctx)
	return fmt.Errorf("insert holds: %w", err)
}

// upsertRows writes whole rows with one statement, never moving a row back
// to an older version.
func upsertRows(ctx context.Context, tx pgx.Tx, rs []*row) error {
	if len(rs) == 0 {
		return nil
	}
	n := len(rs)
	var (
		bookings, tenants, resources    = make([][16]byte, n), make([][16]byte, n), make([][16]byte, n)
		starts, ends, occStart, occEnds = make([]time.Time, n), make([]time.Time, n), make([]time.Time, n), make([]time.Time, n)
		seats                           = make([]int32, n)
		active                          = make([]bool, n)
		versions                        = make([]int64, n)
	)
	for i, r := range rs {
		bookings[i], tenants[i], resources[i] = r.BookingID, r.TenantID, r.ResourceID
		starts[i], ends[i], occStart[i], occEnds[i] = r.Start, r.End, r.OccupiedStart, r.OccupiedEnd
		seats[i], active[i], versions[i] = int32(r.Seats), r.Active, r.Version
	}
	const upsert = `INSERT INTO read_availability AS a
		(booking_id, tenant_id, resource_id, start_at, end_at, occupied, seats, active, version)
		SELECT u.b, u.t, u.r, u.s, u.e, tstzrange(u.os, u.oe, '[)'), u.seats, u.active, u.version
		FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::timestamptz[], $5::timestamptz[],
		            $6::timestamptz[], $7::timestamptz[], $8::integer[], $9::boolean[], $10::bigint[])
		     AS u(b, t, r, s, e, os, oe, seats, active, version)
		ON CONFLICT (booking_id) DO UPDATE SET
			tenant_id = excluded.tenant_id, resource_id = excluded.resource_id,
			start_at = excluded.start_at, end_at = excluded.end_at, occupied = excluded.occupied,
			seats = excluded.seats, active = excluded.active, version = excluded.version
		WHERE a.version < excluded.version`
	if _, err := tx.Exec(ctx, upsert, bookings, tenants, resources, starts, ends, occStart, occEnds, seats, active, versions); err != nil {
		return fmt.Errorf("write holds: %w", err)
	}
	return nil
}

// occupiedQuery runs one GiST index scan per resource.
const occupiedQuery = `SELECT a.booking_id, a.resource_id, a.start_at, a.end_at,
		lower(a.occupied), upper(a.occupied), a.seats
	FROM unnest($1::uuid[]) AS r(id)
	CROSS JOIN LATERAL (
		SELECT * FROM read_availability x
		WHERE x.resource_id = r.id AND x.active AND x.occupied && tstzrange($2, $3, '[)') AND x.tenant_id = $4
	) a
	ORDER BY a.resource_id, lower(a.occupied), a.booking_id`

// Occupied returns the active holds of the tenant's resources that
// overlap [from, to), ordered by resource, occupied start and booking.
func (p *Postgres) Occupied(ctx context.Context, tenantID uuid.UUID, resourceIDs []uuid.UUID, from, to time.Time) ([]queries.OccupiedInterval, error) {
	if len(resourceIDs) == 0 {
		return nil, nil
	}
	rows, err := p.pool.Query(ctx, occupiedQuery, resourceIDs, from, to, tenantID)
	if err != nil {
		return nil, fmt.Errorf("occupied intervals: %w", err)
	}
	var (
		out []queries.OccupiedInterval
		iv  queries.OccupiedInterval
	)
	_, err = pgx.ForEachRow(rows, []any{&iv.BookingID, &iv.ResourceID, &iv.Start, &iv.End, &iv.OccupiedStart, &iv.OccupiedEnd, &iv.Seats},
		func() error {
			c := iv
			c.Start, c.End, c.OccupiedStart, c.OccupiedEnd = c.Start.UTC(), c.End.UTC(), c.OccupiedStart.UTC(), c.OccupiedEnd.UTC()
			out = append(out, c)
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("occupied intervals: %w", err)
	}
	return out, nil
}
