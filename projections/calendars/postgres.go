package calendars

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
const migrationSet = "readmodel-calendars"

// Migrations returns the embedded migration set of tables
// read_calendar_entries, read_calendar_series, read_calendar_owners and
// calendar_feeds, to pass to postgres.Migrate or
// postgres.Config.Migrations.
func Migrations() postgres.MigrationSet {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // the embedded directory is fixed at compile time
	}
	return postgres.MigrationSet{Name: migrationSet, FS: sub}
}

// Postgres is the calendars read model in tables read_calendar_entries,
// read_calendar_series and read_calendar_owners. It implements projections.Projection (through
// pgprojection) and queries.CalendarReadModel. Safe for concurrent use.
type Postgres struct {
	*pgprojection.Projection
	pool *pgxpool.Pool
}

var (
	_ projections.Projection    = (*Postgres)(nil)
	_ queries.CalendarReadModel = (*Postgres)(nil)
)

// NewPostgres returns the read model on pool; the tables must have been
// migrated (Migrations).
func NewPostgres(pool *pgxpool.Pool) *Postgres {
	p, err := pgprojection.New(pool, pgprojection.Definition{
		Name: Name, Categories: categories, Tables: []string{"read_calendar_entries", "read_calendar_series", "read_calendar_owners"},
		Apply: applyBatch,
	})
	if err != nil {
		panic(err) // the definition is fixed at compile time
	}
	return &Postgres{Projection: p, pool: pool}
}

const entryColumns = `id, tenant_id, resource_id, client_id, start_at, end_at, timezone, status, title, sequence,
	series_id, occurrence_start, created_at, updated_at, version`

var entryColumnNames = pgcopy.Columns(entryColumns)

func scanEntry(rows pgx.CollectableRow) (*entryRow, error) {
	var r entryRow
	return &r, scanEntryInto(rows.Scan, &r)
}

// scanEntryInto scans the entry columns, then extra, into r.
func scanEntryInto(scan func(dest ...any) error, r *entryRow, extra ...any) error {
	var (
		status string
		series pgtype.UUID
		occ    pgtype.Timestamptz
	)
	err := scan(append([]any{&r.ID, &r.TenantID, &r.ResourceID, &r.ClientID, &r.Start, &r.End, &r.Timezone, &status, &r.Title,
		&r.Sequence, &series, &occ, &r.CreatedAt, &r.UpdatedAt, &r.Version}, extra...)...)
	r.Status = domain.Status(status)
	if series.Valid {
		r.SeriesID = series.Bytes
	}
	if occ.Valid {
		r.OccurrenceStart = occ.Time.UTC()
	}
	r.Start, r.End, r.CreatedAt, r.UpdatedAt = r.Start.UTC(), r.End.UTC(), r.CreatedAt.UTC(), r.UpdatedAt.UTC()
	return err
}

const seriesColumns = `id, tenant_id, rrule, dtstart, timezone, duration_minutes, created_at, updated_at, version`

var seriesColumnNames = pgcopy.Columns(seriesColumns)

func scanSeries(rows pgx.CollectableRow) (*seriesRow, error) {
	var r seriesRow
	err := rows.Scan(&r.ID, &r.TenantID, &r.RRule, &r.DTStart, &r.Timezone, &r.Duration, &r.CreatedAt, &r.UpdatedAt, &r.Version)
	r.CreatedAt, r.UpdatedAt = r.CreatedAt.UTC(), r.UpdatedAt.UTC()
	return &r, err
}

const ownerColumns = `id, tenant_id, kind, name, linked_resource, version`

var ownerColumnNames = pgcopy.Columns(ownerColumns)

func scanOwner(rows pgx.CollectableRow) (*ownerRow, error) {
	var (
		r      ownerRow
		kind   string
		linked pgtype.UUID
	)
	err := rows.Scan(&r.ID, &r.TenantID, &kind, &r.Name, &linked, &r.Version)
	r.Kind = queries.CalendarKind(kind)
	if linked.Valid {
		r.LinkedResource = linked.Bytes
	}
	return &r, err
}

// applyBatch folds the batch in Go and writes every changed row back.
// Only rows whose stream's first event in the batch is not its creation
// are read first: a row created in the batch is folded from nothing and
// goes in with COPY (falling back to the upsert if it is a redelivery of
// a row already stored); the rows read first are written back with one
// upsert per table, guarded by the version so that a row never moves
// back.
func applyBatch(ctx context.Context, tx pgx.Tx, events []projections.Event) error {
	var (
		entries = rowSet[entryRow]{rows: map[uuid.UUID]*entryRow{}}
		series  = rowSet[seriesRow]{rows: map[uuid.UUID]*seriesRow{}}
		owners  = rowSet[ownerRow]{rows: map[uuid.UUID]*ownerRow{}}
	)
	seen := map[uuid.UUID]bool{}
	for _, e := range events {
		kind, id, ok := stream(e.StreamID)
		if !ok || seen[id] {
			continue
		}
		seen[id] = true
		switch kind {
		case "booking":
			entries.touch(id, e.StreamVersion)
		case "series":
			series.touch(id, e.StreamVersion)
		default:
			owners.touch(id, e.StreamVersion)
		}
	}
	if err := entries.loadRows(ctx, tx, `SELECT `+entryColumns+` FROM read_calendar_entries WHERE id = ANY($1)`, scanEntry,
		func(r *entryRow) uuid.UUID { return r.ID }); err != nil {
		return fmt.Errorf("load calendar entries: %w", err)
	}
	if err := series.loadRows(ctx, tx, `SELECT `+seriesColumns+` FROM read_calendar_series WHERE id = ANY($1)`, scanSeries,
		func(r *seriesRow) uuid.UUID { return r.ID }); err != nil {
		return fmt.Errorf("load calendar series: %w", err)
	}
	if err := owners.loadRows(ctx, tx, `SELECT `+ownerColumns+` FROM read_calendar_owners WHERE id = ANY($1)`, scanOwner,
		func(r *ownerRow) uuid.UUID { return r.ID }); err != nil {
		return fmt.Errorf("load calendar owners: %w", err)
	}
	changed := map[uuid.UUID]bool{}
	for _, e := range events {
		kind, id, ok := stream(e.StreamID)
		if !ok {
			continue
		}
		var (
			c   bool
			err error
		)
		switch kind {
		case "booking":
			c, err = foldEntry(row(entries.rows, id), e)
		case "series":
			c, err = foldSeries(row(series.rows, id), e)
		default:
			c, err = foldOwner(row(owners.rows, id), e)
		}
		if err != nil {
			return err
		}
		changed[id] = changed[id] || c
	}
	fresh, known := entries.changedRows(changed, func(r *entryRow) int64 { return r.Version })
	if err := insertEntries(ctx, tx, fresh); err != nil {
		return err
	}
	if err := upsertEntries(ctx, tx, known); err != nil {
		return err
	}
	freshSeries, knownSeries := series.changedRows(changed, func(r *seriesRow) int64 { return r.Version })
	if err := insertSeries(ctx, tx, freshSeries); err != nil {
		return err
	}
	if err := upsertSeries(ctx, tx, knownSeries); err != nil {
		return err
	}
	freshOwners, knownOwners := owners.changedRows(changed, func(r *ownerRow) int64 { return r.Version })
	if err := insertOwners(ctx, tx, freshOwners); err != nil {
		return err
	}
	return upsertOwners(ctx, tx, knownOwners)
}

// rowSet is the rows of one table that a batch touches.
type rowSet[T any] struct {
	ids    []uuid.UUID // in the order of their first event in the batch
	load   []uuid.UUID // those whose first event in the batch is not their stream's first
	loaded map[uuid.UUID]bool
	rows   map[uuid.UUID]*T
}

// touch adds id, whose first event in the batch has stream version v. A
// stream whose batch starts at version 1 has no stored row, unless this
// is a redelivery, which the writes handle.
func (s *rowSet[T]) touch(id uuid.UUID, v int64) {
	s.ids = append(s.ids, id)
	if v > 1 {
		s.load = append(s.load, id)
	}
}

// loadRows reads the stored rows of the ids to load.
func (s *rowSet[T]) loadRows(ctx context.Context, tx pgx.Tx, q string, scan pgx.RowToFunc[*T], id func(*T) uuid.UUID) error {
	s.loaded = make(map[uuid.UUID]bool, len(s.load))
	for _, id := range s.load {
		s.loaded[id] = true
	}
	if len(s.load) == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, q, s.load)
	if err != nil {
		return err
	}
	rs, err := pgx.CollectRows(rows, scan)
	if err != nil {
		return err
	}
	for _, r := range rs {
		s.rows[id(r)] = r
	}
	return nil
}

// changedRows returns, in the order of the ids, the rows that changed and
// exist: fresh ones, folded from their creation in the batch, and known
// ones, whose stored row was read first.
func (s *rowSet[T]) changedRows(changed map[uuid.UUID]bool, version func(*T) int64) (fresh, known []*T) {
	for _, id := range s.ids {
		r := s.rows[id]
		switch {
		case !changed[id] || version(r) <= 0:
		case s.loaded[id]:
			known = append(known, r)
		default:
			fresh = append(fresh, r)
		}
	}
	return fresh, known
}

// row returns the row of id in m, adding an empty one.
func row[T any](m map[uuid.UUID]*T, id uuid.UUID) *T {
	r := m[id]
	if r == nil {
		r = new(T)
		m[id] = r
	}
	return r
}

// insertEntries writes the entries of bookings created in the batch with
// COPY, falling back to upsertEntries if one of them is stored already.
func insertEntries(ctx context.Context, tx pgx.Tx, rs []*entryRow) error {
	return pgcopy.Insert(ctx, tx, "read_calendar_entries", entryColumnNames, len(rs), func(i int) []any {
		r := rs[i]
		return []any{[16]byte(r.ID), [16]byte(r.TenantID), [16]byte(r.ResourceID), [16]byte(r.ClientID), r.Start, r.End,
			r.Timezone, string(r.Status), r.Title, int32(r.Sequence),
			pgtype.UUID{Bytes: r.SeriesID, Valid: r.SeriesID != uuid.Nil},
			pgtype.Timestamptz{Time: r.OccurrenceStart, Valid: !r.OccurrenceStart.IsZero()},
			r.CreatedAt, r.UpdatedAt, r.Version}
	}, func(ctx context.Context, tx pgx.Tx) error { return upsertEntries(ctx, tx, rs) })
}

const upsertEntriesSQL = `INSERT INTO read_calendar_entries AS c (` + entryColumns + `)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::timestamptz[], $6::timestamptz[],
	$7::text[], $8::text[], $9::text[], $10::integer[], $11::uuid[], $12::timestamptz[],
	$13::timestamptz[], $14::timestamptz[], $15::bigint[])
ON CONFLICT (id) DO UPDATE SET
	tenant_id = excluded.tenant_id, resource_id = excluded.resource_id, client_id = excluded.client_id,
	start_at = excluded.start_at, end_at = excluded.end_at, timezone = excluded.timezone, status = excluded.status,
	title = excluded.title, sequence = excluded.sequence, series_id = excluded.series_id,
	occurrence_start = excluded.occurrence_start, created_at = excluded.created_at, updated_at = excluded.updated_at,
	version = excluded.version
WHERE c.version < excluded.version`

func upsertEntries(ctx context.Context, tx pgx.Tx, rs []*entryRow) error {
	if len(rs) == 0 {
		return nil
	}
	n := len(rs)
	var (
		ids, tenants, resources, clients = make([]uuid.UUID, n), make([]uuid.UUID, n), make([]uuid.UUID, n), make([]uuid.UUID, n)
		starts, ends, created, updated   = make([]time.Time, n), make([]time.Time, n), make([]time.Time, n), make([]time.Time, n)
		zones, statuses, titles          = make([]string, n), make([]string, n), make([]string, n)
		sequences                        = make([]int32, n)
		series                           = make([]pgtype.UUID, n)
		occurrences                      = make([]pgtype.Timestamptz, n)
		versions                         = make([]int64, n)
	)
	for i, r := range rs {
		ids[i], tenants[i], resources[i], clients[i] = r.ID, r.TenantID, r.ResourceID, r.ClientID
		starts[i], ends[i], created[i], updated[i] = r.Start, r.End, r.CreatedAt, r.UpdatedAt
		zones[i], statuses[i], titles[i] = r.Timezone, string(r.Status), r.Title
		sequences[i], versions[i] = int32(r.Sequence), r.Version
		series[i] = pgtype.UUID{Bytes: r.SeriesID, Valid: r.SeriesID != uuid.Nil}
		occurrences[i] = pgtype.Timestamptz{Time: r.OccurrenceStart, Valid: !r.OccurrenceStart.IsZero()}
	}
	_, err := tx.Exec(ctx, upsertEntriesSQL, ids, tenants, resources, clients, starts, ends, zones, statuses, titles,
		sequences, series, occurrences, created, updated, versions)
	if err != nil {
		return fmt.Errorf("write calendar entries: %w", err)
	}
	return nil
}

// insertSeries writes the series created in the batch with COPY, falling
// back to upsertSeries if one of them is stored already.
func insertSeries(ctx context.Context, tx pgx.Tx, rs []*seriesRow) error {
	return pgcopy.Insert(ctx, tx, "read_calendar_series", seriesColumnNames, len(rs), func(i int) []any {
		r := rs[i]
		return []any{[16]byte(r.ID), [16]byte(r.TenantID), r.RRule, r.DTStart, r.Timezone, int32(r.Duration),
			r.CreatedAt, r.UpdatedAt, r.Version}
	}, func(ctx context.Context, tx pgx.Tx) error { return upsertSeries(ctx, tx, rs) })
}

const upsertSeriesSQL = `INSERT INTO read_calendar_series AS s (` + seriesColumns + `)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::integer[],
	$7::timestamptz[], $8::timestamptz[], $9::bigint[])
ON CONFLICT (id) DO UPDATE SET
	tenant_id = excluded.tenant_id, rrule = excluded.rrule, dtstart = excluded.dtstart, timezone = excluded.timezone,
	duration_minutes = excluded.duration_minutes, created_at = excluded.created_at, updated_at = excluded.updated_at,
	version = excluded.version
WHERE s.version < excluded.version`

func upsertSeries(ctx context.Context, tx pgx.Tx, rs []*seriesRow) error {
	if len(rs) == 0 {
		return nil
	}
	n := len(rs)
	ids, tenants := make([]uuid.UUID, n), make([]uuid.UUID, n)
	rules, starts, zones := make([]string, n), make([]string, n), make([]string, n)
	durations, created, updated, versions := make([]int32, n), make([]time.Time, n), make([]time.Time, n), make([]int64, n)
	for i, r := range rs {
		ids[i], tenants[i], rules[i], starts[i], zones[i] = r.ID, r.TenantID, r.RRule, r.DTStart, r.Timezone
		durations[i], created[i], updated[i], versions[i] = int32(r.Duration), r.CreatedAt, r.UpdatedAt, r.Version
	}
	if _, err := tx.Exec(ctx, upsertSeriesSQL, ids, tenants, rules, starts, zones, durations, created, updated, versions); err != nil {
		return fmt.Errorf("write calendar series: %w", err)
	}
	return nil
}

// insertOwners writes the resources and users created in the batch with
// COPY, falling back to upsertOwners if one of them is stored already.
func insertOwners(ctx context.Context, tx pgx.Tx, rs []*ownerRow) error {
	return pgcopy.Insert(ctx, tx, "read_calendar_owners", ownerColumnNames, len(rs), func(i int) []any {
		r := rs[i]
		return []any{[16]byte(r.ID), [16]byte(r.TenantID), string(r.Kind), r.Name,
			pgtype.UUID{Bytes: r.LinkedResource, Valid: r.LinkedResource != uuid.Nil}, r.Version}
	}, func(ctx context.Context, tx pgx.Tx) error { return upsertOwners(ctx, tx, rs) })
}

const upsertOwnersSQL = `INSERT INTO read_calendar_owners AS o (` + ownerColumns + `)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::uuid[], $6::bigint[])
ON CONFLICT (id) DO UPDATE SET
	tenant_id = excluded.tenant_id, kind = excluded.kind, name = excluded.name,
	linked_resource = excluded.linked_resource, version = excluded.version
WHERE o.version < excluded.version`

func upsertOwners(ctx context.Context, tx pgx.Tx, rs []*ownerRow) error {
	if len(rs) == 0 {
		return nil
	}
	n := len(rs)
	ids, tenants, kinds, names := make([]uuid.UUID, n), make([]uuid.UUID, n), make([]string, n), make([]string, n)
	linked, versions := make([]pgtype.UUID, n), make([]int64, n)
	for i, r := range rs {
		ids[i], tenants[i], kinds[i], names[i], versions[i] = r.ID, r.TenantID, string(r.Kind), r.Name, r.Version
		linked[i] = pgtype.UUID{Bytes: r.LinkedResource, Valid: r.LinkedResource != uuid.Nil}
	}
	if _, err := tx.Exec(ctx, upsertOwnersSQL, ids, tenants, kinds, names, linked, versions); err != nil {
		return fmt.Errorf("write calendar owners: %w", err)
	}
	return nil
}

// CalendarOwner returns the tenant's resource or user, or
// domain.ErrNotFound.
func (p *Postgres) CalendarOwner(ctx context.Context, tenantID uuid.UUID, kind queries.CalendarKind, id uuid.UUID) (queries.CalendarOwner, error) {
	rows, err := p.pool.Query(ctx, `SELECT `+ownerColumns+` FROM read_calendar_owners WHERE id = $1 AND tenant_id = $2 AND kind = $3`,
		id, tenantID, string(kind))
	if err != nil {
		return queries.CalendarOwner{}, fmt.Errorf("%s %s: %w", kind, id, err)
	}
	r, err := pgx.CollectExactlyOneRow(rows, scanOwner)
	if errors.Is(err, pgx.ErrNoRows) {
		return queries.CalendarOwner{}, fmt.Errorf("%s %s: %w", kind, id, domain.ErrNotFound)
	}
	if err != nil {
		return queries.CalendarOwner{}, fmt.Errorf("%s %s: %w", kind, id, err)
	}
	return r.owner(), nil
}

// maxBooking bounds a booking's length (the policy refuses longer ones),
// so that a calendar's range reads one index range of start_at.
const maxBooking = time.Duration(domain.MaxDurationLimitMinutes) * time.Minute

// CalendarEntries returns the entries f selects ordered by start then
// booking id, with the current names: one indexed query per side of the
// filter.
func (p *Postgres) CalendarEntries(ctx context.Context, f queries.CalendarFilter) ([]queries.CalendarEntry, error) {
	args := []any{f.TenantID, f.From, f.To, f.From.Add(-maxBooking)}
	var sides []string
	if f.ResourceID != uuid.Nil {
		args = append(args, f.ResourceID)
		sides = append(sides, "e.resource_id = $"+strconv.Itoa(len(args)))
	}
	if f.ClientID != uuid.Nil {
		args = append(args, f.ClientID)
		sides = append(sides, "e.client_id = $"+strconv.Itoa(len(args)))
	}
	if len(sides) == 0 {
		return []queries.CalendarEntry{}, nil
	}
	q := `SELECT ` + prefixed("e.", entryColumns) + `, coalesce(r.name, ''), coalesce(u.name, '')
		FROM read_calendar_entries e
		LEFT JOIN read_calendar_owners r ON r.id = e.resource_id AND r.tenant_id = e.tenant_id
		LEFT JOIN read_calendar_owners u ON u.id = e.client_id AND u.tenant_id = e.tenant_id
		WHERE e.tenant_id = $1 AND e.end_at > $2 AND e.start_at < $3 AND e.start_at > $4
		  AND (` + strings.Join(sides, " OR ") + `)
		ORDER BY e.start_at, e.id`
	rows, err := p.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("calendar entries: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (queries.CalendarEntry, error) {
		var (
			r                    entryRow
			resource, clientName string
		)
		if err := scanEntryInto(row.Scan, &r, &resource, &clientName); err != nil {
			return queries.CalendarEntry{}, err
		}
		return r.entry(resource, clientName), nil
	})
	if err != nil {
		return nil, fmt.Errorf("calendar entries: %w", err)
	}
	return out, nil
}

// prefixed qualifies every column of a column list.
func prefixed(prefix, columns string) string {
	fields := strings.Split(columns, ",")
	for i, f := range fields {
		fields[i] = prefix + strings.TrimSpace(f)
	}
	return strings.Join(fields, ", ")
}

// CalendarSeries returns the tenant's series among ids with their members
// ordered by occurrence start: two queries.
func (p *Postgres) CalendarSeries(ctx context.Context, tenantID uuid.UUID, ids []uuid.UUID) ([]queries.CalendarSeries, error) {
	rows, err := p.pool.Query(ctx, `SELECT `+seriesColumns+` FROM read_calendar_series WHERE tenant_id = $1 AND id = ANY($2)`, tenantID, ids)
	if err != nil {
		return nil, fmt.Errorf("calendar series: %w", err)
	}
	series, err := pgx.CollectRows(rows, scanSeries)
	if err != nil {
		return nil, fmt.Errorf("calendar series: %w", err)
	}
	out := []queries.CalendarSeries{}
	if len(series) == 0 {
		return out, nil
	}
	rows, err = p.pool.Query(ctx, `SELECT `+prefixed("e.", entryColumns)+`, coalesce(r.name, ''), coalesce(u.name, '')
		FROM read_calendar_entries e
		LEFT JOIN read_calendar_owners r ON r.id = e.resource_id AND r.tenant_id = e.tenant_id
		LEFT JOIN read_calendar_owners u ON u.id = e.client_id AND u.tenant_id = e.tenant_id
		WHERE e.series_id = ANY($1) AND e.tenant_id = $2
		ORDER BY e.occurrence_start, e.id`, ids, tenantID)
	if err != nil {
		return nil, fmt.Errorf("calendar series members: %w", err)
	}
	members := map[uuid.UUID][]queries.CalendarEntry{}
	_, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (struct{}, error) {
		var (
			r                    entryRow
			resource, clientName string
		)
		if err := scanEntryInto(row.Scan, &r, &resource, &clientName); err != nil {
			return struct{}{}, err
		}
		members[r.SeriesID] = append(members[r.SeriesID], r.entry(resource, clientName))
		return struct{}{}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("calendar series members: %w", err)
	}
	byID := map[uuid.UUID]*seriesRow{}
	for _, s := range series {
		byID[s.ID] = s
	}
	for _, id := range ids {
		if s := byID[id]; s != nil {
			m := members[id]
			if m == nil {
				m = []queries.CalendarEntry{}
			}
			out = append(out, s.series(m))
		}
	}
	return out, nil
}
