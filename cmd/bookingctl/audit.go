package main

import (
	"container/heap"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// The overlap audit answers one question without any of the command
// side's code: does the event store, or the availability read model, hold
// an instant at which the seats of a resource's overlapping bookings and
// holds exceed its capacity? It also cross-checks the three places that
// must agree: the booking and hold streams, the schedule buckets (the
// command side's conflict boundary) and the read model.
//
// Store side. One REPEATABLE READ transaction snapshots the final state of
// every booking and hold stream into a temporary table (audit_occupants):
// the last placement (booking.created or booking.rescheduled, hold.placed)
// with its buffers, the last status, the seats and the position at which
// the placement was accepted. Bookings occupy their time unless cancelled
// or rejected (completed and no-show bookings keep their bucket
// reservations, as the command side does); holds until released or
// expired. A sweep line over the occupants, streamed ordered by resource
// and start, checks every instant where occupation grows: ordered by the
// position at which each occupant was accepted, the seats of the occupants
// accepted up to and including one must fit the capacity the resource had
// at that position (resource.created, resource.updated). Lowering a
// capacity therefore never condemns the bookings accepted before it, and a
// booking accepted after it must fit the lowered value. In the same
// snapshot, every occupant must be reserved, with the same times and
// seats, in every UTC day bucket its occupied interval touches, and every
// reservation must belong to such an occupant.
//
// Read side. read_availability holds a row per booking and per hold (keyed
// by the hold's id) and is compared with the snapshot row by row: a row at
// the stream version of the snapshot must carry the same resource, times,
// occupied range, seats and active flag (pending, confirmed and
// checked_in bookings and unreleased holds are active there). A row behind the
// snapshot (or missing) is waited for, up to --wait, since projections
// lag; a row ahead of it is newer than the snapshot and is not judged. A
// row without a booking or hold stream is an error. The read model's
// active rows are swept as well, against the largest capacity the
// resource ever had (the read model does not record when a booking was
// accepted).

// auditOccupantsDDL holds the snapshot of every booking and hold stream.
const auditOccupantsDDL = `CREATE TEMPORARY TABLE audit_occupants (
	tenant_id   uuid        NOT NULL,
	resource_id uuid        NOT NULL,
	id          uuid        NOT NULL,
	kind        text        NOT NULL,
	start_at    timestamptz NOT NULL,
	end_at      timestamptz NOT NULL,
	occ_start   timestamptz NOT NULL,
	occ_end     timestamptz NOT NULL,
	seats       integer     NOT NULL,
	accepted    bigint      NOT NULL,
	status      text        NOT NULL,
	holds_time  boolean     NOT NULL,
	active      boolean     NOT NULL,
	version     bigint      NOT NULL
)`

// auditOccupantsFill rebuilds the final state of each booking and hold
// stream from its events ($1: a tenant id, or NULL for every tenant). The
// category index serves both scans of booking_events.
const auditOccupantsFill = `INSERT INTO audit_occupants
WITH ev AS MATERIALIZED (
	SELECT tenant_id, stream_id, stream_version, position, type, data
	  FROM booking_events
	 WHERE category IN ('booking', 'hold') AND ($1::uuid IS NULL OR tenant_id = $1::uuid)
), opened AS (
	SELECT stream_id, tenant_id, type, data FROM ev WHERE type IN ('booking.created', 'hold.placed')
), placed AS (
	SELECT DISTINCT ON (stream_id) stream_id, position, data
	  FROM ev WHERE type IN ('booking.created', 'booking.rescheduled', 'hold.placed')
	 ORDER BY stream_id, stream_version DESC
), state AS (
	SELECT DISTINCT ON (stream_id) stream_id,
	       CASE type WHEN 'booking.created'        THEN data->>'status'
	                 WHEN 'booking.status_changed' THEN data->>'to'
	                 WHEN 'booking.cancelled'      THEN 'cancelled'
	                 WHEN 'hold.placed'            THEN 'held'
	                 WHEN 'hold.released'          THEN 'released'
	                 ELSE 'expired' END AS status
	  FROM ev
	 WHERE type IN ('booking.created', 'booking.status_changed', 'booking.cancelled',
	                'hold.placed', 'hold.released', 'hold.expired')
	 ORDER BY stream_id, stream_version DESC
), head AS (
	SELECT stream_id, max(stream_version) AS version FROM ev GROUP BY stream_id
)
SELECT o.tenant_id,
       (o.data->>'resource_id')::uuid,
       (CASE o.type WHEN 'hold.placed' THEN o.data->>'hold_id' ELSE o.data->>'booking_id' END)::uuid,
       CASE o.type WHEN 'hold.placed' THEN 'hold' ELSE 'booking' END,
       (p.data->>'start')::timestamptz,
       (p.data->>'end')::timestamptz,
       (p.data->>'start')::timestamptz - make_interval(mins => COALESCE((p.data->>'buffer_before_minutes')::int, 0)),
       (p.data->>'end')::timestamptz + make_interval(mins => COALESCE((p.data->>'buffer_after_minutes')::int, 0)),
       (o.data->>'seats')::int,
       p.position,
       s.status,
       s.status NOT IN ('cancelled', 'rejected', 'released', 'expired'),
       s.status IN ('pending', 'confirmed', 'checked_in', 'held'),
       h.version
  FROM opened o
  JOIN placed p USING (stream_id)
  JOIN state s USING (stream_id)
  JOIN head h USING (stream_id)`

// auditCapacities lists every capacity a resource had, by the position of
// the event that set it.
const auditCapacities = `SELECT (data->>'resource_id')::uuid, position, (data->>'capacity')::int
  FROM booking_events
 WHERE category = 'resource' AND type IN ('resource.created', 'resource.updated')
   AND ($1::uuid IS NULL OR tenant_id = $1::uuid)
 ORDER BY position`

// auditSweepStore streams the occupants that take time, in sweep order.
const auditSweepStore = `SELECT tenant_id, resource_id, id, kind, occ_start, occ_end, seats, accepted
  FROM audit_occupants WHERE holds_time ORDER BY resource_id, occ_start, accepted`

// auditBuckets compares what the buckets hold with what the occupants
// require, returning only disagreements. A bucket's last event per
// booking or hold tells whether it holds the reservation.
const auditBuckets = `WITH last AS (
	SELECT DISTINCT ON (stream_id, data->>'booking_id') stream_id AS bucket, data->>'booking_id' AS id, type, data
	  FROM booking_events
	 WHERE category = 'schedule' AND ($1::uuid IS NULL OR tenant_id = $1::uuid)
	 ORDER BY stream_id, data->>'booking_id', stream_version DESC
), held AS (
	SELECT bucket, id::uuid AS id,
	       (data->>'start')::timestamptz AS start_at, (data->>'end')::timestamptz AS end_at,
	       (data->>'occupied_start')::timestamptz AS occ_start, (data->>'occupied_end')::timestamptz AS occ_end,
	       (data->>'seats')::int AS seats
	  FROM last WHERE type = 'schedule.reserved'
), expected AS (
	SELECT 'schedule-' || o.resource_id || '-' || to_char(d, 'YYYYMMDD') AS bucket,
	       o.id, o.kind, o.start_at, o.end_at, o.occ_start, o.occ_end, o.seats
	  FROM audit_occupants o
	 CROSS JOIN LATERAL generate_series(date_trunc('day', o.occ_start AT TIME ZONE 'UTC'),
	                                    date_trunc('day', (o.occ_end - interval '1 microsecond') AT TIME ZONE 'UTC'),
	                                    interval '1 day') AS d
	 WHERE o.holds_time
)
SELECT COALESCE(e.bucket, h.bucket), COALESCE(e.id, h.id), COALESCE(e.kind, ''),
       CASE WHEN h.id IS NULL THEN 'missing' WHEN e.id IS NULL THEN 'extra' ELSE 'differs' END,
       (SELECT o.status FROM audit_occupants o WHERE o.id = h.id LIMIT 1)
  FROM expected e
  FULL JOIN held h ON h.bucket = e.bucket AND h.id = e.id
 WHERE h.id IS NULL OR e.id IS NULL
    OR h.start_at <> e.start_at OR h.end_at <> e.end_at
    OR h.occ_start <> e.occ_start OR h.occ_end <> e.occ_end OR h.seats <> e.seats
 ORDER BY 1, 2`

// auditReadModel compares read_availability with the snapshot, returning
// only rows that are not equal at the same version. A read row without a
// snapshot occupant counts only when no booking or hold stream of its id
// exists now (a stream created after the snapshot is not judged).
const auditReadModel = `SELECT COALESCE(o.id, r.booking_id), COALESCE(o.kind, ''), o.version, r.version,
       r.resource_id, o.resource_id, r.seats, o.seats, r.active, o.active,
       lower(r.occupied), upper(r.occupied), o.occ_start, o.occ_end
  FROM audit_occupants o
  FULL JOIN (SELECT * FROM read_availability WHERE $1::uuid IS NULL OR tenant_id = $1::uuid) r
    ON r.booking_id = o.id
 WHERE (o.id IS NULL AND NOT EXISTS (SELECT 1 FROM booking_streams s
                                      WHERE s.stream_id IN ('booking-' || r.booking_id, 'hold-' || r.booking_id)))
    OR (o.id IS NOT NULL AND (r.booking_id IS NULL OR r.version < o.version))
    OR (o.id IS NOT NULL AND r.booking_id IS NOT NULL AND r.version = o.version AND (
           r.resource_id <> o.resource_id OR r.start_at <> o.start_at OR r.end_at <> o.end_at
        OR lower(r.occupied) <> o.occ_start OR upper(r.occupied) <> o.occ_end
        OR r.seats <> o.seats OR r.active <> o.active))
 ORDER BY 1`

// auditSweepReadModel streams the read model's active rows in sweep order.
const auditSweepReadModel = `SELECT tenant_id, resource_id, booking_id, 'row', lower(occupied), upper(occupied), seats, 0::bigint
  FROM read_availability
 WHERE active AND ($1::uuid IS NULL OR tenant_id = $1::uuid)
 ORDER BY resource_id, lower(occupied)`

// auditCounts is what the audit looked at.
const auditCounts = `SELECT count(*) FILTER (WHERE kind = 'booking'), count(*) FILTER (WHERE kind = 'hold'),
       count(DISTINCT resource_id) FROM audit_occupants`

func runAudit(ctx context.Context, m *Main, args []string) error {
	fs := m.flagSet("audit", "audit [--tenant ID] [--wait 30s] [--skip-read-model]\n\n"+
		"Looks for double bookings without the command side's code. From booking_events\n"+
		"(one consistent snapshot) it rebuilds every booking and hold, and sweeps each\n"+
		"resource for an instant where the seats of overlapping bookings and holds exceed\n"+
		"the capacity in force when they were accepted (OVERLAP). It checks that the\n"+
		"schedule buckets reserve exactly those bookings and holds, with the same times\n"+
		"and seats (BUCKET), and that the availability read model agrees with the store\n"+
		"and shows no overlap either (READ_MODEL, OVERLAP source=read_model); read-model\n"+
		"rows that lag are waited for up to --wait. Exits 1 when it finds anything.")
	dbFlag := databaseFlag(fs)
	tenantFlag := fs.String("tenant", "", "audit only this tenant")
	wait := fs.Duration("wait", 30*time.Second, "how long to wait for the read model to catch up with the snapshot")
	skipRead := fs.Bool("skip-read-model", false, "audit the event store only")
	maxReport := fs.Int("max-report", 20, "print at most this many findings of each kind (all are counted)")
	if err := fs.parse(args); err != nil {
		return err
	}
	var tenant any // NULL: every tenant
	if fs.given()["tenant"] {
		id, err := parseID("tenant", *tenantFlag)
		if err != nil {
			return err
		}
		tenant = id.String()
	}
	if *wait < 0 {
		return usagef("--wait must not be negative")
	}
	if *maxReport < 0 {
		return usagef("--max-report must not be negative")
	}
	dbURL, err := m.databaseURL(dbFlag)
	if err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	a := &auditor{conn: conn, tenant: tenant, out: m.Stdout, maxReport: *maxReport, printed: map[string]int{}}
	if err := a.store(ctx); err != nil {
		return schemaHint(err)
	}
	if !*skipRead {
		if err := a.readModel(ctx, *wait); err != nil {
			return schemaHint(err)
		}
	}
	rm := "read model skipped"
	if !*skipRead {
		rm = fmt.Sprintf("%d read-model rows", a.readRows)
	}
	fmt.Fprintf(m.Stdout, "audited %d bookings and %d holds on %d resources, %d bucket reservations, %s: %d overlaps, %d bucket disagreements, %d read-model disagreements\n",
		a.bookings, a.holds, a.resources, a.reservations, rm, a.overlaps, a.bucketProblems, a.readProblems)
	if n := a.overlaps + a.bucketProblems + a.readProblems; n > 0 {
		return fmt.Errorf("%d problems found: %d overlaps, %d bucket disagreements, %d read-model disagreements",
			n, a.overlaps, a.bucketProblems, a.readProblems)
	}
	return nil
}

// auditor runs one audit on one connection (the snapshot lives in a
// temporary table of its session).
type auditor struct {
	conn      *pgx.Conn
	tenant    any
	out       io.Writer
	maxReport int
	printed   map[string]int

	caps map[uuid.UUID][]capacityAt

	bookings, holds, resources int64
	reservations               int64
	readRows                   int64

	overlaps, bucketProblems, readProblems int
}

// capacityAt is the capacity a resource has from position on.
type capacityAt struct {
	position int64
	capacity int
}

// report prints one finding unless maxReport findings of its kind were
// printed already.
func (a *auditor) report(kind, format string, args ...any) {
	a.printed[kind]++
	switch n := a.printed[kind]; {
	case n <= a.maxReport:
		fmt.Fprintf(a.out, kind+" "+format+"\n", args...)
	case n == a.maxReport+1:
		fmt.Fprintf(a.out, "%s ... (further findings of this kind are counted, not printed)\n", kind)
	}
}

// store audits the event store in one snapshot and leaves it in
// audit_occupants for the read-model comparison.
func (a *auditor) store(ctx context.Context) error {
	tx, err := a.conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, `DROP TABLE IF EXISTS audit_occupants`); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, auditOccupantsDDL); err != nil {
		return fmt.Errorf("create the snapshot table: %w", err)
	}
	if _, err := tx.Exec(ctx, auditOccupantsFill, a.tenant); err != nil {
		return fmt.Errorf("rebuild bookings and holds: %w", err)
	}
	if _, err := tx.Exec(ctx, `ANALYZE audit_occupants`); err != nil {
		return err
	}
	if err := tx.QueryRow(ctx, auditCounts).Scan(&a.bookings, &a.holds, &a.resources); err != nil {
		return err
	}
	if err := a.loadCapacities(ctx, tx); err != nil {
		return err
	}
	if err := a.sweep(ctx, tx, "store", a.capacityAt, auditSweepStore); err != nil {
		return err
	}
	if err := a.buckets(ctx, tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

func (a *auditor) loadCapacities(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, auditCapacities, a.tenant)
	if err != nil {
		return fmt.Errorf("read capacities: %w", err)
	}
	a.caps = map[uuid.UUID][]capacityAt{}
	var (
		id  uuid.UUID
		c   capacityAt
		cap *int
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &c.position, &cap}, func() error {
		if cap != nil {
			c.capacity = *cap
			a.caps[id] = append(a.caps[id], c)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read capacities: %w", err)
	}
	return nil
}

// capacityAt returns the capacity resource had at position, and false when
// no event of the resource is known.
func (a *auditor) capacityAt(resource uuid.UUID, position int64) (int, bool) {
	vs := a.caps[resource]
	if len(vs) == 0 {
		return 0, false
	}
	i, found := slices.BinarySearchFunc(vs, position, func(v capacityAt, p int64) int {
		switch {
		case v.position < p:
			return -1
		case v.position > p:
			return 1
		}
		return 0
	})
	if !found {
		i--
	}
	return vs[max(i, 0)].capacity, true
}

// maxCapacity returns the largest capacity resource ever had.
func (a *auditor) maxCapacity(resource uuid.UUID, _ int64) (int, bool) {
	vs := a.caps[resource]
	if len(vs) == 0 {
		return 0, false
	}
	best := 0
	for _, v := range vs {
		best = max(best, v.capacity)
	}
	return best, true
}

// querier runs a query on a connection or in a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// occupation is one booking, hold or read-model row on the sweep line.
type occupation struct {
	tenant, resource, id uuid.UUID
	kind                 string
	start, end           time.Time
	seats                int
	accepted             int64
}

// byEnd is a min-heap of the occupations open at the sweep line.
type byEnd []occupation

func (h byEnd) Len() int           { return len(h) }
func (h byEnd) Less(i, j int) bool { return h[i].end.Before(h[j].end) }
func (h byEnd) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *byEnd) Push(x any)        { *h = append(*h, x.(occupation)) }
func (h *byEnd) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// sweep streams occupations ordered by resource and start and checks the
// instant at which each group of equal starts begins. It keeps only the
// occupations open at the line, so memory is bounded by the most
// occupations one resource has at one instant.
func (a *auditor) sweep(ctx context.Context, q querier, source string, capacity func(uuid.UUID, int64) (int, bool),
	query string, args ...any) error {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("sweep %s: %w", source, err)
	}
	var (
		open      byEnd
		resource  uuid.UUID
		instant   time.Time
		unknown   = map[uuid.UUID]bool{}
		o         occupation
		scratch   []occupation
		haveFirst bool
	)
	check := func() {
		if len(open) < 2 && (len(open) == 0 || open[0].seats <= 1) {
			return
		}
		scratch = append(scratch[:0], open...)
		slices.SortFunc(scratch, func(x, y occupation) int {
			switch {
			case x.accepted < y.accepted:
				return -1
			case x.accepted > y.accepted:
				return 1
			}
			return strings.Compare(x.id.String(), y.id.String())
		})
		seats := 0
		for i, s := range scratch {
			seats += s.seats
			c, ok := capacity(s.resource, s.accepted)
			if !ok {
				if !unknown[s.resource] {
					unknown[s.resource] = true
					a.overlaps++
					a.report("OVERLAP", "source=%s resource=%s tenant=%s reason=unknown_resource (no resource.created; occupants cannot be checked)",
						source, s.resource, s.tenant)
				}
				return
			}
			if seats > c {
				a.overlaps++
				ids := make([]string, 0, i+1)
				for _, x := range scratch[:i+1] {
					ids = append(ids, x.kind+":"+x.id.String())
				}
				a.report("OVERLAP", "source=%s resource=%s tenant=%s at=%s seats=%d capacity=%d occupants=%s",
					source, s.resource, s.tenant, instant.UTC().Format(time.RFC3339), seats, c, strings.Join(ids, ","))
				return
			}
		}
	}
	_, err = pgx.ForEachRow(rows, []any{&o.tenant, &o.resource, &o.id, &o.kind, &o.start, &o.end, &o.seats, &o.accepted}, func() error {
		if !haveFirst || o.resource != resource {
			if haveFirst {
				check()
			}
			open, resource, instant, haveFirst = open[:0], o.resource, o.start, true
		} else if o.start.After(instant) {
			check()
			instant = o.start
		}
		for len(open) > 0 && !open[0].end.After(o.start) {
			heap.Pop(&open)
		}
		heap.Push(&open, o)
		return ctx.Err()
	})
	if err != nil {
		return fmt.Errorf("sweep %s: %w", source, err)
	}
	if haveFirst {
		check()
	}
	return nil
}

// buckets reports every reservation that is missing, surplus or differs.
func (a *auditor) buckets(ctx context.Context, tx pgx.Tx) error {
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM (
		SELECT DISTINCT ON (stream_id, data->>'booking_id') type FROM booking_events
		 WHERE category = 'schedule' AND ($1::uuid IS NULL OR tenant_id = $1::uuid)
		 ORDER BY stream_id, data->>'booking_id', stream_version DESC) r
		 WHERE type = 'schedule.reserved'`, a.tenant).Scan(&a.reservations); err != nil {
		return fmt.Errorf("count reservations: %w", err)
	}
	rows, err := tx.Query(ctx, auditBuckets, a.tenant)
	if err != nil {
		return fmt.Errorf("compare buckets: %w", err)
	}
	var (
		bucket, kind, what string
		id                 uuid.UUID
		status             *string
	)
	_, err = pgx.ForEachRow(rows, []any{&bucket, &id, &kind, &what, &status}, func() error {
		a.bucketProblems++
		switch what {
		case "missing":
			a.report("BUCKET", "missing bucket=%s %s=%s (the %s takes time the bucket does not reserve)", bucket, kind, id, kind)
		case "extra":
			why := "no booking or hold of that id"
			if status != nil {
				why = "its booking or hold is " + *status + " or does not touch the day"
			}
			a.report("BUCKET", "extra bucket=%s id=%s (%s)", bucket, id, why)
		default:
			a.report("BUCKET", "differs bucket=%s %s=%s (times or seats differ from the %s's)", bucket, kind, id, kind)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("compare buckets: %w", err)
	}
	return nil
}

// readDiff is one disagreement between read_availability and the snapshot.
type readDiff struct {
	id                        uuid.UUID
	kind                      string
	storeVersion, readVersion *int64
	readResource, resource    *uuid.UUID
	readSeats, seats          *int
	readActive, active        *bool
	readOcc, occ              [2]*time.Time
}

func (d readDiff) behind() bool {
	return d.storeVersion != nil && (d.readVersion == nil || *d.readVersion < *d.storeVersion)
}

// readModel compares read_availability with the snapshot, waiting up to
// wait for rows that lag, then sweeps its active rows.
func (a *auditor) readModel(ctx context.Context, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	var diffs []readDiff
	for {
		var err error
		if diffs, err = a.readDiffs(ctx); err != nil {
			return err
		}
		behind := 0
		for _, d := range diffs {
			if d.behind() {
				behind++
			}
		}
		if behind == 0 || !time.Now().Before(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	if err := a.conn.QueryRow(ctx, `SELECT count(*) FROM read_availability WHERE $1::uuid IS NULL OR tenant_id = $1::uuid`,
		a.tenant).Scan(&a.readRows); err != nil {
		return fmt.Errorf("count read-model rows: %w", err)
	}
	for _, d := range diffs {
		a.readProblems++
		switch {
		case d.storeVersion == nil:
			a.report("READ_MODEL", "extra booking=%s (a row with no booking or hold stream)", d.id)
		case d.readVersion == nil:
			a.report("READ_MODEL", "missing %s=%s version=%d (not applied within %s)", d.kind, d.id, *d.storeVersion, wait)
		case d.behind():
			a.report("READ_MODEL", "behind %s=%s store_version=%d read_version=%d (not caught up within %s)",
				d.kind, d.id, *d.storeVersion, *d.readVersion, wait)
		default:
			a.report("READ_MODEL", "differs %s=%s version=%d: %s", d.kind, d.id, *d.storeVersion, d.describe())
		}
	}
	return a.sweep(ctx, a.conn, "read_model", a.maxCapacity, auditSweepReadModel, a.tenant)
}

func (a *auditor) readDiffs(ctx context.Context) ([]readDiff, error) {
	rows, err := a.conn.Query(ctx, auditReadModel, a.tenant)
	if err != nil {
		return nil, fmt.Errorf("compare the read model: %w", err)
	}
	var d readDiff
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (readDiff, error) {
		d = readDiff{}
		err := r.Scan(&d.id, &d.kind, &d.storeVersion, &d.readVersion,
			&d.readResource, &d.resource, &d.readSeats, &d.seats, &d.readActive, &d.active,
			&d.readOcc[0], &d.readOcc[1], &d.occ[0], &d.occ[1])
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("compare the read model: %w", err)
	}
	return out, nil
}

// describe names the fields in which a row at the snapshot's version
// differs.
func (d readDiff) describe() string {
	var parts []string
	if d.readResource != nil && d.resource != nil && *d.readResource != *d.resource {
		parts = append(parts, fmt.Sprintf("resource %s, store %s", *d.readResource, *d.resource))
	}
	if d.readSeats != nil && d.seats != nil && *d.readSeats != *d.seats {
		parts = append(parts, fmt.Sprintf("seats %d, store %d", *d.readSeats, *d.seats))
	}
	if d.readActive != nil && d.active != nil && *d.readActive != *d.active {
		parts = append(parts, fmt.Sprintf("active %t, store %t", *d.readActive, *d.active))
	}
	if !sameTime(d.readOcc[0], d.occ[0]) || !sameTime(d.readOcc[1], d.occ[1]) {
		parts = append(parts, fmt.Sprintf("occupied %s – %s, store %s – %s",
			fmtTime(d.readOcc[0]), fmtTime(d.readOcc[1]), fmtTime(d.occ[0]), fmtTime(d.occ[1])))
	}
	if len(parts) == 0 {
		parts = append(parts, "booked times differ")
	}
	return strings.Join(parts, "; ")
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
