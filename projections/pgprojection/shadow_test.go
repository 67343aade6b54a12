package pgprojection_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/projections"
	"github.com/bookingengine/booking/projections/availability"
	"github.com/bookingengine/booking/projections/bookings"
	"github.com/bookingengine/booking/projections/catalog"
	"github.com/bookingengine/booking/projections/pgprojection"
	"github.com/bookingengine/booking/projections/projectiontest"
)

var (
	tenantA = uuid.MustParse("10000000-0000-0000-0000-00000000000a")
	tenantB = uuid.MustParse("10000000-0000-0000-0000-00000000000b")
	day     = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
)

// shadowed is what the shadow tests need of a PostgreSQL read model.
type shadowed interface {
	projections.Projection
	CheckShadow(ctx context.Context, tenant uuid.UUID) error
	BeginShadow(ctx context.Context) error
	ApplyShadow(ctx context.Context, b projections.Batch) error
	SwapShadow(ctx context.Context, tenant uuid.UUID) (bool, error)
	DropShadow(ctx context.Context) error
	ShadowSchema() string
	ShadowCheckpointName() string
}

var (
	_ shadowed = (*bookings.Postgres)(nil)
	_ shadowed = (*availability.Postgres)(nil)
	_ shadowed = (*catalog.Postgres)(nil)
	_ shadowed = (*pgprojection.Projection)(nil)
)

// twoTenants is a log of both tenants: each tenant's own stream, then
// bookings of both, some of them changed later.
func twoTenants(t *testing.T) []projections.Event {
	t.Helper()
	l := projectiontest.NewLog()
	var out []projections.Event
	for _, tn := range []uuid.UUID{tenantA, tenantB} {
		tt, err := domain.NewTenant(tn, domain.TenantInput{Name: "T", Domain: tn.String()[:8] + ".example.com"},
			domain.Actor{ID: "platform", Role: domain.RolePlatformAdmin}, day)
		require.NoError(t, err)
		for _, e := range tt.Changes() {
			out = append(out, l.Event(t, tn, domain.TenantStream(tn), e))
		}
	}
	for i := range 6 {
		tn := []uuid.UUID{tenantA, tenantB}[i%2]
		id := uuid.MustParse(fmt.Sprintf("40000000-0000-0000-0000-%012d", i))
		start := day.Add(time.Duration(i) * time.Hour)
		out = append(out, l.Event(t, tn, domain.BookingStream(id), domain.BookingCreated{
			BookingID: id, TenantID: tn, ResourceID: uuid.MustParse("20000000-0000-0000-0000-000000000001"),
			ClientID: uuid.MustParse("30000000-0000-0000-0000-000000000001"), Start: start, End: start.Add(time.Hour),
			Seats: 1, Title: "Visit", Status: domain.StatusConfirmed, Timezone: "UTC", CreatedBy: "admin", CreatedAt: day,
		}))
		if i%3 == 0 {
			out = append(out, l.Event(t, tn, domain.BookingStream(id), domain.BookingCancelled{
				BookingID: id, From: domain.StatusConfirmed, Reason: "ill", Actor: "admin", At: day.Add(time.Minute),
			}))
		}
	}
	return out
}

// dump renders a table's rows (only tenant's, unless uuid.Nil) in a
// stable order, to compare read models across databases.
func dump(t *testing.T, pool *pgxpool.Pool, table string, tenant uuid.UUID) string {
	t.Helper()
	var s string
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT coalesce(jsonb_agg(to_jsonb(x) ORDER BY to_jsonb(x)::text), '[]')::text
		FROM `+table+` x WHERE $1 = '00000000-0000-0000-0000-000000000000'::uuid OR x.tenant_id = $1`, tenant).Scan(&s))
	return s
}

// tables are the tables the tests compare: one of bookings and one of
// catalog, in the order of the read models they test.
var tables = []string{"read_bookings", "read_catalog_tenants"}

// structure lists the definitions of the read models' indexes and
// constraints, and the tables' grants.
func structure(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `
		SELECT indexdef FROM pg_indexes WHERE tablename = ANY($1)
		UNION ALL SELECT conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint
		  WHERE conrelid::regclass::text = ANY($1)
		UNION ALL SELECT relname || ' ' || coalesce(relacl::text, '') FROM pg_class WHERE relname = ANY($1) AND relkind = 'r'
		ORDER BY 1`, tables)
	require.NoError(t, err)
	var out []string
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		out = append(out, s)
	}
	require.NoError(t, rows.Err())
	return out
}

// fixture is a live bookings and catalog read model that has applied the
// log, and a reference database that applied it too, untouched.
type fixture struct {
	pool, ref    *pgxpool.Pool
	bm           *bookings.Postgres
	catalogModel *catalog.Postgres
	events       []projections.Event
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{
		pool:   projectiontest.MustPool(t, bookings.Migrations(), catalog.Migrations()),
		ref:    projectiontest.MustPool(t, bookings.Migrations(), catalog.Migrations()),
		events: twoTenants(t),
	}
	f.bm, f.catalogModel = bookings.NewPostgres(f.pool), catalog.NewPostgres(f.pool)
	for _, pool := range []*pgxpool.Pool{f.pool, f.ref} {
		for _, p := range []projections.Projection{bookings.NewPostgres(pool), catalog.NewPostgres(pool)} {
			projectiontest.MustApply(t, p, projectiontest.Batch(projections.Cursor{}, f.events...))
		}
	}
	return f
}

// damage changes every live row, as a bug in a fold would.
func (f *fixture) damage(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	_, err := f.pool.Exec(ctx, `UPDATE read_bookings SET title = 'damaged'`)
	require.NoError(t, err)
	_, err = f.pool.Exec(ctx, `UPDATE read_catalog_tenants SET policy_version = 99`)
	require.NoError(t, err)
}

func schemaExists(t *testing.T, pool *pgxpool.Pool, name string) bool {
	t.Helper()
	var ok bool
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, name).Scan(&ok))
	return ok
}

func TestShadowRebuildSwapsInTheCopies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	_, err := f.pool.Exec(ctx, `GRANT SELECT ON read_bookings, read_catalog_tenants TO PUBLIC`)
	require.NoError(t, err)
	before := structure(t, f.pool)
	f.damage(t)
	liveCP, err := f.bm.Checkpoint(ctx)
	require.NoError(t, err)

	for i, p := range []shadowed{f.bm, f.catalogModel} {
		damaged := dump(t, f.pool, tables[i], uuid.Nil)
		require.NoError(t, p.BeginShadow(ctx))
		require.True(t, schemaExists(t, f.pool, p.ShadowSchema()))
		// The first half only: behind the live read model.
		half := len(f.events) / 2
		require.NoError(t, p.ApplyShadow(ctx, projectiontest.Batch(projections.Cursor{}, f.events[:half]...)))
		require.ErrorIs(t, p.ApplyShadow(ctx, projectiontest.Batch(projections.Cursor{}, f.events[:half]...)), projections.ErrCheckpointMoved)
		swapped, err := p.SwapShadow(ctx, uuid.Nil)
		require.NoError(t, err)
		require.False(t, swapped, "the copies are behind the live checkpoint")
		require.True(t, schemaExists(t, f.pool, p.ShadowSchema()), "a refused swap keeps the copies")
		require.Equal(t, damaged, dump(t, f.pool, tables[i], uuid.Nil), "the live tables are untouched")

		require.NoError(t, p.ApplyShadow(ctx, projectiontest.Batch(projections.CursorOf(f.events[half-1]), f.events[half:]...)))
		require.Equal(t, damaged, dump(t, f.pool, tables[i], uuid.Nil), "the live tables are untouched")
		swapped, err = p.SwapShadow(ctx, uuid.Nil)
		require.NoError(t, err)
		require.True(t, swapped)
		require.False(t, schemaExists(t, f.pool, p.ShadowSchema()), "the copies' schema is gone")
		var n int
		require.NoError(t, f.pool.QueryRow(ctx, `SELECT count(*) FROM booking_checkpoints WHERE name = $1`, p.ShadowCheckpointName()).Scan(&n))
		require.Zero(t, n, "the copies' checkpoint is gone")
		cp, err := p.Checkpoint(ctx)
		require.NoError(t, err)
		require.Equal(t, liveCP, cp)
	}
	for _, table := range tables {
		require.Equal(t, dump(t, f.ref, table, uuid.Nil), dump(t, f.pool, table, uuid.Nil), table)
	}
	require.Equal(t, before, structure(t, f.pool), "same indexes and constraints under the same names, same grants")

	// The read model answers from the new table, and the live projection
	// carries on applying into it.
	b, err := f.bm.Booking(ctx, tenantA, uuid.MustParse("40000000-0000-0000-0000-000000000002"))
	require.NoError(t, err)
	require.Equal(t, "Visit", b.Title)
	require.ErrorIs(t, f.bm.Apply(ctx, projections.Batch{}), projections.ErrCheckpointMoved)
	require.NoError(t, f.bm.Apply(ctx, projections.Batch{From: liveCP, To: projections.Cursor{TransactionID: 1000, Position: 1000}}))
}

func TestShadowSwapOfOneTenantReplacesOnlyItsRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	f.damage(t)
	damagedB := map[string]string{}
	for _, table := range tables {
		damagedB[table] = dump(t, f.pool, table, tenantB)
	}
	liveCP, err := f.bm.Checkpoint(ctx)
	require.NoError(t, err)

	for _, p := range []shadowed{f.bm, f.catalogModel} {
		require.NoError(t, p.BeginShadow(ctx))
		var mine []projections.Event
		for _, e := range f.events {
			if e.TenantID == tenantA {
				mine = append(mine, e)
			}
		}
		b := projectiontest.Batch(projections.Cursor{}, mine...)
		b.To = projections.CursorOf(f.events[len(f.events)-1])
		require.NoError(t, p.ApplyShadow(ctx, b))
		swapped, err := p.SwapShadow(ctx, tenantA)
		require.NoError(t, err)
		require.True(t, swapped)
		require.False(t, schemaExists(t, f.pool, p.ShadowSchema()))
		cp, err := p.Checkpoint(ctx)
		require.NoError(t, err)
		require.Equal(t, liveCP, cp, "a tenant's swap leaves the live checkpoint")
	}
	for _, table := range tables {
		require.Equal(t, dump(t, f.ref, table, tenantA), dump(t, f.pool, table, tenantA), "%s: the tenant's rows are rebuilt", table)
		require.Equal(t, damagedB[table], dump(t, f.pool, table, tenantB), "%s: the other tenant's rows are untouched", table)
	}
	var tenants int
	require.NoError(t, f.pool.QueryRow(ctx, `SELECT count(*) FROM read_catalog_tenants WHERE tenant_id = id`).Scan(&tenants))
	require.Equal(t, 2, tenants)
}

func TestShadowRefusesWithoutCopiesAndDropsThem(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	f.damage(t)
	damaged := dump(t, f.pool, "read_bookings", uuid.Nil)

	// Without copies the fold would find the live tables: refused.
	err := f.bm.ApplyShadow(ctx, projectiontest.Batch(projections.Cursor{}, f.events...))
	require.ErrorContains(t, err, "no shadow copy of read_bookings")
	_, err = f.bm.SwapShadow(ctx, uuid.Nil)
	require.ErrorContains(t, err, "no shadow copy of read_bookings")
	require.Equal(t, damaged, dump(t, f.pool, "read_bookings", uuid.Nil))

	// Dropped copies: the same, and DropShadow is idempotent.
	require.NoError(t, f.bm.BeginShadow(ctx))
	require.NoError(t, f.bm.ApplyShadow(ctx, projectiontest.Batch(projections.Cursor{}, f.events...)))
	require.NoError(t, f.bm.DropShadow(ctx))
	require.NoError(t, f.bm.DropShadow(ctx))
	require.False(t, schemaExists(t, f.pool, f.bm.ShadowSchema()))
	require.Error(t, f.bm.ApplyShadow(ctx, projectiontest.Batch(projections.CursorOf(f.events[len(f.events)-1]))))
	require.Equal(t, damaged, dump(t, f.pool, "read_bookings", uuid.Nil))

	// BeginShadow starts over from copies an interrupted rebuild left.
	require.NoError(t, f.bm.BeginShadow(ctx))
	require.NoError(t, f.bm.ApplyShadow(ctx, projectiontest.Batch(projections.Cursor{}, f.events[:3]...)))
	require.NoError(t, f.bm.BeginShadow(ctx))
	require.NoError(t, f.bm.ApplyShadow(ctx, projectiontest.Batch(projections.Cursor{}, f.events...)))

	// A migration during the rebuild: the copies no longer fit.
	_, err = f.pool.Exec(ctx, `ALTER TABLE read_bookings ADD COLUMN extra text`)
	require.NoError(t, err)
	_, err = f.bm.SwapShadow(ctx, uuid.Nil)
	require.ErrorContains(t, err, "columns changed during the rebuild")
	require.True(t, schemaExists(t, f.pool, f.bm.ShadowSchema()))
	var title string
	require.NoError(t, f.pool.QueryRow(ctx, `SELECT DISTINCT title FROM read_bookings`).Scan(&title))
	require.Equal(t, "damaged", title)
	require.NoError(t, f.bm.DropShadow(ctx))
}

func TestShadowNeedsUnqualifiedTables(t *testing.T) {
	t.Parallel()
	pool := projectiontest.MustPool(t, bookings.Migrations())
	p, err := pgprojection.New(pool, pgprojection.Definition{
		Name: "qualified", Categories: []string{"booking"}, Tables: []string{"public.read_bookings"},
		Apply: func(context.Context, pgx.Tx, []projections.Event) error { return nil },
	})
	require.NoError(t, err)
	require.ErrorContains(t, p.CheckShadow(context.Background(), uuid.Nil), "unqualified")
	require.ErrorContains(t, p.BeginShadow(context.Background()), "unqualified")
	require.False(t, schemaExists(t, pool, p.ShadowSchema()))
}

// TestCheckShadowOfOneTenantNeedsATenantColumn: a table without tenant_id
// can be rebuilt whole, not for one tenant, and CheckShadow says so before
// anything changes; the registered read models have the column everywhere.
func TestCheckShadowOfOneTenantNeedsATenantColumn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := projectiontest.MustPool(t, bookings.Migrations(), availability.Migrations(), catalog.Migrations())
	_, err := pool.Exec(ctx, `CREATE TABLE read_plain (id uuid PRIMARY KEY, version bigint NOT NULL)`)
	require.NoError(t, err)
	p, err := pgprojection.New(pool, pgprojection.Definition{
		Name: "plain", Categories: []string{"booking"}, Tables: []string{"read_plain", "read_missing"},
		Apply: func(context.Context, pgx.Tx, []projections.Event) error { return nil },
	})
	require.NoError(t, err)
	require.ErrorContains(t, p.CheckShadow(ctx, uuid.Nil), "table read_missing does not exist")

	p, err = pgprojection.New(pool, pgprojection.Definition{
		Name: "plain", Categories: []string{"booking"}, Tables: []string{"read_plain"},
		Apply: func(context.Context, pgx.Tx, []projections.Event) error { return nil },
	})
	require.NoError(t, err)
	require.NoError(t, p.CheckShadow(ctx, uuid.Nil))
	require.ErrorContains(t, p.CheckShadow(ctx, tenantA), "table read_plain has no uuid column tenant_id")
	require.NoError(t, p.BeginShadow(ctx))
	require.NoError(t, p.ApplyShadow(ctx, projectiontest.Batch(projections.Cursor{})))
	_, err = p.SwapShadow(ctx, tenantA)
	require.ErrorContains(t, err, "tenant_id")
	require.True(t, schemaExists(t, pool, p.ShadowSchema()), "a failed swap changes nothing")
	require.NoError(t, p.DropShadow(ctx))

	for _, m := range []shadowed{bookings.NewPostgres(pool), availability.NewPostgres(pool), catalog.NewPostgres(pool)} {
		require.NoError(t, m.CheckShadow(ctx, tenantA), m.Name())
	}
}
