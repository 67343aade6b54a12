package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bookingengine/booking/commands"
	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/eventstore"
	"github.com/bookingengine/booking/eventstore/postgres"
	"github.com/bookingengine/booking/internal/testenv"
	"github.com/bookingengine/booking/projections"
	"github.com/bookingengine/booking/projections/availability"
	"github.com/bookingengine/booking/projections/bookings"
	"github.com/bookingengine/booking/projections/catalog"
	"github.com/bookingengine/booking/projections/eventsource"
	"github.com/bookingengine/booking/queries"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
)

// heads is a small PostgreSQL read model for the replay tests: per booking
// stream its tenant, last version and number of events. It keeps itself
// current like every read model (rows and checkpoint in one transaction,
// per-row versions for idempotency) and implements shadowRebuilder with a
// copy table, the protocol replay drives.
type heads struct {
	pool   *pgxpool.Pool
	signal projections.Signal
}

const (
	headsName   = "test-heads"
	headsTable  = "read_heads"
	headsShadow = "read_heads_shadow"
	// headsShadowName keys the copy's checkpoint.
	headsShadowName = headsName + ".shadow"
)

var _ shadowRebuilder = (*heads)(nil)

func newHeads(t *testing.T, pool *pgxpool.Pool) *heads {
	t.Helper()
	_, err := pool.Exec(context.Background(), `CREATE TABLE `+headsTable+` (
		stream_id text PRIMARY KEY, tenant_id uuid NOT NULL, version bigint NOT NULL, events bigint NOT NULL)`)
	require.NoError(t, err)
	return &heads{pool: pool}
}

func (h *heads) Name() string             { return headsName }
func (h *heads) Categories() []string     { return []string{"booking"} }
func (h *heads) Changed() <-chan struct{} { return h.signal.C() }
func (h *heads) lock(ctx context.Context, tx pgx.Tx, name string) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext($1))`, name)
	return err
}

func checkpointOf(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, name string) (projections.Cursor, error) {
	var c projections.Cursor
	err := q.QueryRow(ctx, `SELECT transaction_id, position FROM booking_checkpoints WHERE name = $1`, name).Scan(&c.TransactionID, &c.Position)
	if errors.Is(err, pgx.ErrNoRows) {
		return projections.Cursor{}, nil
	}
	return c, err
}

// apply folds a batch into table under name's lock and checkpoint.
func (h *heads) apply(ctx context.Context, name, table string, b projections.Batch) error {
	err := pgx.BeginFunc(ctx, h.pool, func(tx pgx.Tx) error {
		if err := h.lock(ctx, tx, name); err != nil {
			return err
		}
		if !b.FromBus {
			cur, err := checkpointOf(ctx, tx, name)
			if err != nil {
				return err
			}
			if cur != b.From {
				return fmt.Errorf("%w: stored %s, batch after %s", projections.ErrCheckpointMoved, cur, b.From)
			}
		}
		for _, e := range b.Events {
			if _, err := tx.Exec(ctx, `INSERT INTO `+table+` AS t (stream_id, tenant_id, version, events)
				VALUES ($1, $2, $3, 1)
				ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, events = t.events + 1
				WHERE t.version < excluded.version`, e.StreamID, e.TenantID, e.StreamVersion); err != nil {
				return err
			}
		}
		if b.FromBus {
			return nil
		}
		return postgres.SaveCheckpointTx(ctx, tx, name, eventstore.Cursor{TransactionID: b.To.TransactionID, Position: b.To.Position})
	})
	if err == nil {
		h.signal.Notify()
	}
	return err
}

func (h *heads) Apply(ctx context.Context, b projections.Batch) error {
	return h.apply(ctx, headsName, headsTable, b)
}

func (h *heads) AppliedVersions(ctx context.Context, streamIDs []string) (map[string]int64, error) {
	rows, err := h.pool.Query(ctx, `SELECT stream_id, version FROM `+headsTable+` WHERE stream_id = ANY($1)`, streamIDs)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	var (
		id string
		v  int64
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &v}, func() error { out[id] = v; return nil })
	return out, err
}

func (h *heads) Checkpoint(ctx context.Context) (projections.Cursor, error) {
	return checkpointOf(ctx, h.pool, headsName)
}

func (h *heads) Reset(ctx context.Context) error {
	return pgx.BeginFunc(ctx, h.pool, func(tx pgx.Tx) error {
		if err := h.lock(ctx, tx, headsName); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `TRUNCATE `+headsTable); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM booking_checkpoints WHERE name = $1`, headsName)
		return err
	})
}

func (h *heads) CheckShadow(context.Context, uuid.UUID) error { return nil }

func (h *heads) BeginShadow(ctx context.Context) error {
	if err := h.DropShadow(ctx); err != nil {
		return err
	}
	_, err := h.pool.Exec(ctx, `CREATE TABLE `+headsShadow+` (LIKE `+headsTable+` INCLUDING ALL)`)
	return err
}

func (h *heads) ApplyShadow(ctx context.Context, b projections.Batch) error {
	return h.apply(ctx, headsShadowName, headsShadow, b)
}

func (h *heads) SwapShadow(ctx context.Context, tenant uuid.UUID) (bool, error) {
	swapped := false
	err := pgx.BeginFunc(ctx, h.pool, func(tx pgx.Tx) error {
		if err := h.lock(ctx, tx, headsName); err != nil {
			return err
		}
		live, err := checkpointOf(ctx, tx, headsName)
		if err != nil {
			return err
		}
		shadow, err := checkpointOf(ctx, tx, headsShadowName)
		if err != nil {
			return err
		}
		if shadow.Before(live) {
			return nil
		}
		if tenant == uuid.Nil {
			if _, err := tx.Exec(ctx, `DROP TABLE `+headsTable); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `ALTER TABLE `+headsShadow+` RENAME TO `+headsTable); err != nil {
				return err
			}
			if err := postgres.SaveCheckpointTx(ctx, tx, headsName, eventstore.Cursor{TransactionID: shadow.TransactionID, Position: shadow.Position}); err != nil {
				return err
			}
		} else {
			if _, err := tx.Exec(ctx, `DELETE FROM `+headsTable+` WHERE tenant_id = $1`, tenant); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO `+headsTable+` SELECT * FROM `+headsShadow); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `DROP TABLE `+headsShadow); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM booking_checkpoints WHERE name = $1`, headsShadowName); err != nil {
			return err
		}
		swapped = true
		return nil
	})
	if err != nil {
		return false, err
	}
	if swapped {
		h.signal.Notify()
	}
	return swapped, nil
}

func (h *heads) DropShadow(ctx context.Context) error {
	if _, err := h.pool.Exec(ctx, `DROP TABLE IF EXISTS `+headsShadow); err != nil {
		return err
	}
	_, err := h.pool.Exec(ctx, `DELETE FROM booking_checkpoints WHERE name = $1`, headsShadowName)
	return err
}

type headRow struct {
	tenant          uuid.UUID
	version, events int64
}

// rows reads the live read model.
func (h *heads) rows(t *testing.T) map[string]headRow {
	t.Helper()
	return headRows(t, h.pool, `SELECT stream_id, tenant_id, version, events FROM `+headsTable)
}

// truth computes the read model from the log itself.
func truth(t *testing.T, pool *pgxpool.Pool) map[string]headRow {
	t.Helper()
	return headRows(t, pool, `SELECT stream_id, tenant_id, max(stream_version), count(*)
		FROM booking_events WHERE category = 'booking' GROUP BY stream_id, tenant_id`)
}

func headRows(t *testing.T, pool *pgxpool.Pool, q string) map[string]headRow {
	t.Helper()
	rows, err := pool.Query(context.Background(), q)
	require.NoError(t, err)
	out := map[string]headRow{}
	var (
		id string
		r  headRow
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &r.tenant, &r.version, &r.events}, func() error {
		out[id] = r
		return nil
	})
	require.NoError(t, err)
	return out
}

// writer books an hour after another on a resource until stop, as a
// steady stream of live writes, and reports how many it made.
func (w *world) writer(ctx context.Context, stop <-chan struct{}, tenantMeta commands.Meta, resource, client uuid.UUID, n *atomic.Int64) error {
	start := time.Date(2026, 12, 10, 0, 0, 0, 0, time.UTC)
	for i := 0; ; i++ {
		select {
		case <-stop:
			return nil
		default:
		}
		s := start.Add(time.Duration(i) * time.Hour)
		if _, err := w.h.CreateBooking(ctx, tenantMeta, commands.CreateBooking{Request: domain.BookingRequest{
			ResourceID: resource, ClientID: client, Start: s, End: s.Add(time.Hour),
		}}); err != nil {
			return err
		}
		n.Add(1)
	}
}

// startLive runs the live projector, as bookingd does, until the test ends.
func startLive(t *testing.T, w *world, p projections.Projection) {
	t.Helper()
	runLive(t, w, p)
}

// settle waits until the live read model has applied every committed
// event. It asks the table rather than ReadAll, whose watermark any
// transaction elsewhere in the cluster (another test's) holds back.
func settle(t *testing.T, w *world, p projections.Projection) {
	t.Helper()
	var last projections.Cursor
	require.NoError(t, w.store.Pool().QueryRow(w.ctx, `SELECT transaction_id, position FROM booking_events
		WHERE category = ANY($1) ORDER BY transaction_id DESC, position DESC LIMIT 1`, p.Categories()).
		Scan(&last.TransactionID, &last.Position))
	require.Eventually(t, func() bool {
		cp, err := p.Checkpoint(w.ctx)
		require.NoError(t, err)
		return cp == last
	}, 30*time.Second, 10*time.Millisecond)
}

func TestReplaySwapsARebuiltReadModelDuringWrites(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	for i := range 10 {
		w.book(fmt.Sprint("seed", i), w.other, 1+i, 9)
	}
	h := newHeads(t, w.store.Pool())
	startLive(t, w, h)
	settle(t, w, h)

	// Damage the live read model, as a bug in a fold would: the rebuild
	// must repair it.
	_, err := w.store.Pool().Exec(w.ctx, `UPDATE `+headsTable+` SET events = 99`)
	require.NoError(t, err)

	// Queries keep answering throughout, and never see an empty or
	// shrinking read model.
	stopRead := make(chan struct{})
	var readErr error
	var reads atomic.Int64
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		last := 0
		for {
			select {
			case <-stopRead:
				return
			default:
			}
			var n int
			if err := w.store.Pool().QueryRow(w.ctx, `SELECT count(*) FROM `+headsTable).Scan(&n); err != nil {
				readErr = err
				return
			}
			if n < last || n == 0 {
				readErr = fmt.Errorf("read model went from %d to %d rows", last, n)
				return
			}
			last = n
			reads.Add(1)
		}
	}()

	stop := make(chan struct{})
	var written atomic.Int64
	writeErr := make(chan error, 1)
	go func() { writeErr <- w.writer(w.ctx, stop, w.meta("live"), w.resource, w.client, &written) }()
	require.Eventually(t, func() bool { return written.Load() >= 5 }, 10*time.Second, time.Millisecond)

	var out bytes.Buffer
	prog := newProgress(&out, "replay "+headsName, false, time.Now)
	prog.interval = 0
	stats, err := replayReadModel(w.ctx, w.store, h, uuid.Nil, 7, prog.Update)
	require.NoError(t, err)
	prog.Finish(stats.Events, stats.Events)

	// Keep writing a little after the swap: the live projector carries on
	// from the swapped-in checkpoint.
	n := written.Load()
	require.Eventually(t, func() bool { return written.Load() >= n+5 }, 10*time.Second, time.Millisecond)
	close(stop)
	require.NoError(t, <-writeErr)
	close(stopRead)
	<-readDone
	require.NoError(t, readErr)
	require.Positive(t, reads.Load())

	settle(t, w, h)
	require.Equal(t, truth(t, w.store.Pool()), h.rows(t), "the rebuilt read model equals the log")
	require.Positive(t, stats.Events)

	var exists bool
	require.NoError(t, w.store.Pool().QueryRow(w.ctx, `SELECT to_regclass($1) IS NOT NULL`, headsShadow).Scan(&exists))
	require.False(t, exists, "the copy was swapped in, not left behind")

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.GreaterOrEqual(t, len(lines), 3, out.String())
	require.Regexp(t, `^replay test-heads: 0/\d+ +0%`, lines[0])
	require.Regexp(t, `^replay test-heads: \d+/\d+ +\d+%, \d+/s, (ETA .*|\?)$`, lines[1])
	require.Regexp(t, `^replay test-heads: \d+/\d+ 100%, \d+/s, done in `, lines[len(lines)-1])
}

func TestReplayOneTenantReplacesOnlyItsRows(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.book("mine", w.resource, 1, 9)
	w.book("mine2", w.other, 1, 9)

	// A second tenant in the same store.
	other := *w
	res, err := w.h.CreateTenant(w.ctx, commands.Meta{Actor: domain.Actor{ID: "platform", Role: domain.RolePlatformAdmin}},
		commands.CreateTenant{Input: domain.TenantInput{Name: "Other", Domain: uuid.NewString()[:8] + ".example.com"}})
	require.NoError(t, err)
	other.tenant = res.ID
	r, err := w.h.CreateResource(w.ctx, other.meta("r"), commands.CreateResource{Input: domain.ResourceInput{Name: "R", Kind: domain.KindSpace}})
	require.NoError(t, err)
	u, err := w.h.CreateUser(w.ctx, other.meta("u"), commands.CreateUser{Input: domain.UserInput{Email: "bo@example.com", Name: "Bo", Role: domain.RoleClient}})
	require.NoError(t, err)
	_, err = w.h.CreateBooking(w.ctx, other.meta("b"), commands.CreateBooking{Request: domain.BookingRequest{
		ResourceID: r.ID, ClientID: u.ID, Start: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC), End: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}})
	require.NoError(t, err)

	h := newHeads(t, w.store.Pool())
	startLive(t, w, h)
	settle(t, w, h)
	_, err = w.store.Pool().Exec(w.ctx, `UPDATE `+headsTable+` SET events = 99`)
	require.NoError(t, err)

	stats, err := replayReadModel(w.ctx, w.store, h, w.tenant, 1000, func(int64, int64) {})
	require.NoError(t, err)
	require.Positive(t, stats.Events)

	want := truth(t, w.store.Pool())
	for id, row := range h.rows(t) {
		if row.tenant == w.tenant {
			require.Equal(t, want[id], row, "the tenant's rows are rebuilt")
		} else {
			require.EqualValues(t, 99, row.events, "another tenant's rows are not touched")
		}
	}
	require.Len(t, h.rows(t), len(want))
}

func TestReplayFailureLeavesTheLiveReadModel(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.book("one", w.resource, 1, 9)
	h := newHeads(t, w.store.Pool())
	startLive(t, w, h)
	settle(t, w, h)
	before := h.rows(t)

	ctx, cancel := context.WithCancel(w.ctx)
	cancel()
	_, err := replayReadModel(ctx, w.store, h, uuid.Nil, 1000, func(int64, int64) {})
	require.Error(t, err)
	require.Equal(t, before, h.rows(t))
	var exists bool
	require.NoError(t, w.store.Pool().QueryRow(w.ctx, `SELECT to_regclass($1) IS NOT NULL`, headsShadow).Scan(&exists))
	require.False(t, exists, "the copy is dropped")
}

func TestReplayRunsOnceAtATime(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	h := newHeads(t, w.store.Pool())
	conn, err := w.store.Pool().Acquire(w.ctx)
	require.NoError(t, err)
	defer conn.Release()
	_, err = conn.Exec(w.ctx, `SELECT pg_advisory_lock($1, hashtext($2))`, replayLockClass, headsName)
	require.NoError(t, err)

	_, err = replayReadModel(w.ctx, w.store, h, uuid.Nil, 1000, func(int64, int64) {})
	require.ErrorContains(t, err, "another replay of it is running")

	_, err = conn.Exec(w.ctx, `SELECT pg_advisory_unlock($1, hashtext($2))`, replayLockClass, headsName)
	require.NoError(t, err)
	_, err = replayReadModel(w.ctx, w.store, h, uuid.Nil, 1000, func(int64, int64) {})
	require.NoError(t, err)
}

func TestReplayCommandOnTheRegisteredReadModels(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.book("one", w.resource, 1, 9)
	for _, rm := range readModels() {
		r := run(t, w.env, "replay", "--projection", rm.name)
		if _, ok := rm.open(w.store.Pool()).(shadowRebuilder); ok {
			require.Equal(t, 0, r.code, r.stderr)
			require.Contains(t, r.stdout, rm.name+": rebuilt from ")
			continue
		}
		require.Equal(t, 1, r.code)
		require.Equal(t, 1, strings.Count(r.stderr, "\n"), r.stderr)
		require.Contains(t, r.stderr, "read model "+rm.name+" cannot be rebuilt beside its live tables yet")
		require.Contains(t, r.stderr, "nothing was changed")
	}
}

func TestProgressOnATerminalAndInALog(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }

	var log bytes.Buffer
	p := newProgress(&log, "replay x", false, clock)
	p.Update(0, 1000)
	now = now.Add(time.Second)
	p.Update(100, 1000) // within the interval: not written
	now = now.Add(5 * time.Second)
	p.Update(600, 1000)
	now = now.Add(2 * time.Second)
	p.Finish(1000, 1000)
	require.Equal(t, "replay x: 0/1000   0%, 0/s, ?\n"+
		"replay x: 600/1000  60%, 100/s, ETA 4s\n"+
		"replay x: 1000/1000 100%, 125/s, done in 8s\n", log.String())

	var tty bytes.Buffer
	now = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p = newProgress(&tty, "replay x", true, clock)
	now = now.Add(time.Second)
	p.Update(50, 100)
	require.Equal(t, "\rreplay x ["+strings.Repeat("█", 15)+strings.Repeat("░", 15)+"] 50/100  50%, 50/s, ETA 1s\x1b[K", tty.String())
	now = now.Add(time.Second)
	p.Finish(100, 100)
	require.True(t, strings.HasSuffix(tty.String(), "done in 2s\x1b[K\n"), "%q", tty.String())
	require.False(t, isTerminal(&tty))
}

// runLive runs the live projector of p on the world's store, as bookingd
// does, until stop (or the end of the test).
func runLive(t *testing.T, w *world, p projections.Projection) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	runner := projections.NewRunner(eventsource.New(w.store, 5*time.Millisecond), p, projections.RunnerConfig{BatchSize: 50})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = runner.Run(ctx)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	t.Cleanup(stop)
	return stop
}

// registered opens every registered read model on pool.
func registered(t *testing.T, pool *pgxpool.Pool) []shadowRebuilder {
	t.Helper()
	var out []shadowRebuilder
	for _, rm := range readModels() {
		p, ok := rm.open(pool).(shadowRebuilder)
		require.True(t, ok, "%s cannot be rebuilt beside its live tables", rm.name)
		out = append(out, p)
	}
	return out
}

// referenceDB is a second database, migrated like the world's, whose read
// models are fed from the world's store by their own live projectors,
// never replayed: the read models as the live projectors alone make them.
func referenceDB(t *testing.T, w *world) (*pgxpool.Pool, []shadowRebuilder, []func()) {
	t.Helper()
	pool, err := pgxpool.New(w.ctx, testenv.NewDatabase(t))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, postgres.Migrate(w.ctx, pool, migrationSets()...))
	models := registered(t, pool)
	var stops []func()
	for _, p := range models {
		stops = append(stops, runLive(t, w, p))
	}
	return pool, models, stops
}

// tablesOf lists the tables of the read models.
func tablesOf(t *testing.T, models []shadowRebuilder) []string {
	t.Helper()
	var out []string
	for _, p := range models {
		tp, ok := p.(interface{ Tables() []string })
		require.True(t, ok, "%s does not list its tables", p.Name())
		out = append(out, tp.Tables()...)
	}
	require.Contains(t, out, "read_bookings")
	return out
}

// dumpTable renders a table's rows, only tenant's unless uuid.Nil, in a
// stable order, to compare read models across databases.
func dumpTable(t *testing.T, pool *pgxpool.Pool, table string, tenant uuid.UUID) string {
	t.Helper()
	var s string
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT coalesce(jsonb_agg(to_jsonb(x) ORDER BY to_jsonb(x)::text), '[]')::text
		FROM `+table+` x WHERE $1 = '00000000-0000-0000-0000-000000000000'::uuid OR x.tenant_id = $1`, tenant).Scan(&s))
	return s
}

// requireSameReadModels fails unless both databases hold the same rows
// in every read model table.
func requireSameReadModels(t *testing.T, want, got *pgxpool.Pool, tables []string, msg string) {
	t.Helper()
	for _, table := range tables {
		require.Equal(t, dumpTable(t, want, table, uuid.Nil), dumpTable(t, got, table, uuid.Nil), "%s: %s", table, msg)
	}
}

// damage changes a column of every row of the registered read models that
// no event will change again, as a bug in a fold would.
func damage(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	for _, q := range []string{
		`UPDATE read_bookings SET title = 'damaged'`,
		`UPDATE read_availability SET seats = seats + 100`,
		`UPDATE read_catalog_tenants SET policy_version = policy_version + 100`,
		`UPDATE read_catalog_categories SET name = 'damaged'`,
		`UPDATE read_catalog_resources SET name = 'damaged'`,
		`UPDATE read_catalog_users SET role = 'damaged'`,
	} {
		_, err := pool.Exec(context.Background(), q)
		require.NoError(t, err, q)
	}
}

// requireNoCopies fails if a replay left copies or their checkpoints.
func requireNoCopies(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	var schemas, checkpoints int
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT
		(SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'shadow\_%'),
		(SELECT count(*) FROM booking_checkpoints WHERE name LIKE '%.shadow')`).Scan(&schemas, &checkpoints))
	require.Zero(t, schemas, "shadow schemas left behind")
	require.Zero(t, checkpoints, "shadow checkpoints left behind")
}

// TestReplayOfTheRegisteredReadModelsDuringWrites: bookingctl replay
// rebuilds every PostgreSQL read model while commands append and the live
// projectors apply; readers never see a table shrink or fail, and in the
// end the tables equal both those of read models the live projectors
// alone kept (in another database) and a fresh rebuild.
func TestReplayOfTheRegisteredReadModelsDuringWrites(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	for i := range 60 {
		w.book(fmt.Sprint("seed", i), w.other, 1+i/20, i%20)
	}
	live := registered(t, w.store.Pool())
	for _, p := range live {
		runLive(t, w, p)
		settle(t, w, p)
	}
	refPool, refModels, refStops := referenceDB(t, w)
	damage(t, w.store.Pool())

	// Readers on a pool of their own, with pgx's statement cache, as
	// bookingd's queries: counts per table, and the read models' queries.
	readPool, err := pgxpool.New(w.ctx, w.env["DATABASE_URL"])
	require.NoError(t, err)
	defer readPool.Close()
	tables := tablesOf(t, live)
	stopRead := make(chan struct{})
	var reads atomic.Int64
	readErrs := make(chan error, 2)
	go func() {
		last := map[string]int{}
		for {
			select {
			case <-stopRead:
				readErrs <- nil
				return
			default:
			}
			for _, table := range tables {
				var n int
				if err := readPool.QueryRow(w.ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil {
					readErrs <- fmt.Errorf("count %s: %w", table, err)
					return
				}
				if n < last[table] {
					readErrs <- fmt.Errorf("%s went from %d to %d rows", table, last[table], n)
					return
				}
				last[table] = n
			}
			reads.Add(1)
		}
	}()
	go func() {
		bm, am, cm := bookings.NewPostgres(readPool), availability.NewPostgres(readPool), catalog.NewPostgres(readPool)
		from, to := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 12, 1, 0, 0, 0, 0, time.UTC)
		lastListed, lastOccupied := 0, 0
		for {
			select {
			case <-stopRead:
				readErrs <- nil
				return
			default:
			}
			bs, err := bm.ListBookings(w.ctx, queries.BookingFilter{TenantID: w.tenant, Visible: queries.Visibility{All: true}})
			if err == nil && len(bs) < lastListed {
				err = fmt.Errorf("listed %d bookings after %d", len(bs), lastListed)
			}
			if err != nil {
				readErrs <- fmt.Errorf("list bookings: %w", err)
				return
			}
			occ, err := am.Occupied(w.ctx, w.tenant, []uuid.UUID{w.resource, w.other}, from, to)
			if err == nil && len(occ) < lastOccupied {
				err = fmt.Errorf("%d holds after %d", len(occ), lastOccupied)
			}
			if err != nil {
				readErrs <- fmt.Errorf("occupied: %w", err)
				return
			}
			if _, err := cm.ResourcePolicy(w.ctx, w.tenant, w.resource); err != nil {
				readErrs <- fmt.Errorf("resource policy: %w", err)
				return
			}
			lastListed, lastOccupied = len(bs), len(occ)
			reads.Add(1)
		}
	}()

	stop := make(chan struct{})
	var written atomic.Int64
	writeErr := make(chan error, 1)
	go func() { writeErr <- w.writer(w.ctx, stop, w.meta("live"), w.resource, w.client, &written) }()
	require.Eventually(t, func() bool { return written.Load() >= 5 }, 10*time.Second, time.Millisecond)

	readsBefore := reads.Load()
	r := run(t, w.env, "replay", "--batch-size", "3")
	require.Equal(t, 0, r.code, r.stderr)
	for _, p := range live {
		require.Contains(t, r.stdout, p.Name()+": rebuilt from ")
	}
	require.Greater(t, reads.Load(), readsBefore, "queries answered during the replay")

	n := written.Load()
	require.Eventually(t, func() bool { return written.Load() >= n+5 }, 10*time.Second, time.Millisecond)
	close(stop)
	require.NoError(t, <-writeErr)
	close(stopRead)
	require.NoError(t, <-readErrs)
	require.NoError(t, <-readErrs)
	requireNoCopies(t, w.store.Pool())

	for i, p := range live {
		settle(t, w, p)
		settle(t, w, refModels[i])
	}
	requireSameReadModels(t, refPool, w.store.Pool(), tables, "the replayed read model equals the live one")

	// A fresh rebuild of the reference read models gives the same rows.
	for i, p := range refModels {
		refStops[i]()
		_, err := projections.Rebuild(w.ctx, eventsource.New(w.store, 5*time.Millisecond), p, 100)
		require.NoError(t, err)
		runLive(t, w, p)
		settle(t, w, p)
	}
	requireSameReadModels(t, refPool, w.store.Pool(), tables, "the replayed read model equals a fresh rebuild")
}

// TestReplayOfOneTenantOnTheRegisteredReadModels: replay --tenant
// rebuilds that tenant's rows of every read model and leaves the other
// tenants' rows alone.
func TestReplayOfOneTenantOnTheRegisteredReadModels(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.book("mine", w.resource, 1, 9)
	w.book("mine2", w.other, 1, 9)
	other := *w
	res, err := w.h.CreateTenant(w.ctx, commands.Meta{Actor: domain.Actor{ID: "platform", Role: domain.RolePlatformAdmin}},
		commands.CreateTenant{Input: domain.TenantInput{Name: "Other", Domain: uuid.NewString()[:8] + ".example.com"}})
	require.NoError(t, err)
	other.tenant = res.ID
	cat, err := w.h.CreateResourceCategory(w.ctx, other.meta("c"), commands.CreateResourceCategory{Input: domain.ResourceCategoryInput{Name: "Rooms"}})
	require.NoError(t, err)
	r, err := w.h.CreateResource(w.ctx, other.meta("r"), commands.CreateResource{Input: domain.ResourceInput{
		CategoryID: &cat.ID, Name: "R", Kind: domain.KindSpace}})
	require.NoError(t, err)
	u, err := w.h.CreateUser(w.ctx, other.meta("u"), commands.CreateUser{Input: domain.UserInput{Email: "bo@example.com", Name: "Bo", Role: domain.RoleClient}})
	require.NoError(t, err)
	_, err = w.h.CreateBooking(w.ctx, other.meta("b"), commands.CreateBooking{Request: domain.BookingRequest{
		ResourceID: r.ID, ClientID: u.ID, Start: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC), End: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}})
	require.NoError(t, err)

	live := registered(t, w.store.Pool())
	for _, p := range live {
		runLive(t, w, p)
		settle(t, w, p)
	}
	refPool, refModels, _ := referenceDB(t, w)
	for _, p := range refModels {
		settle(t, w, p)
	}
	damage(t, w.store.Pool())
	tables := tablesOf(t, live)
	damaged := map[string]string{}
	withRows := 0
	for _, table := range tables {
		damaged[table] = dumpTable(t, w.store.Pool(), table, other.tenant)
		if damaged[table] != "[]" {
			withRows++ // a table this workload leaves empty (series) proves nothing either way
		}
	}
	require.GreaterOrEqual(t, withRows, len(tables)-1, "the other tenant has rows in the tables")

	out := mustRun(t, w.env, "replay", "--tenant", w.tenant.String())
	for _, p := range live {
		require.Contains(t, out, p.Name()+": rebuilt from ")
		settle(t, w, p)
	}
	requireNoCopies(t, w.store.Pool())
	for _, table := range tables {
		require.Equal(t, dumpTable(t, refPool, table, w.tenant), dumpTable(t, w.store.Pool(), table, w.tenant),
			"%s: the tenant's rows are rebuilt", table)
		require.Equal(t, damaged[table], dumpTable(t, w.store.Pool(), table, other.tenant),
			"%s: the other tenant's rows are untouched", table)
	}
}

// TestReplayFailureLeavesTheRegisteredReadModels: a replay cancelled, or
// failing, half-way leaves the live tables and checkpoints as they were
// and drops its copies.
func TestReplayFailureLeavesTheRegisteredReadModels(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	for i := range 5 {
		w.book(fmt.Sprint("b", i), w.other, 1, 9+i)
	}
	live := registered(t, w.store.Pool())
	for _, p := range live {
		runLive(t, w, p)
		settle(t, w, p)
	}
	damage(t, w.store.Pool())
	snapshot := func() map[string]string {
		out := map[string]string{}
		for _, table := range tablesOf(t, live) {
			out[table] = dumpTable(t, w.store.Pool(), table, uuid.Nil)
		}
		for _, p := range live {
			cp, err := p.Checkpoint(w.ctx)
			require.NoError(t, err)
			out[p.Name()+" checkpoint"] = cp.String()
		}
		return out
	}
	before := snapshot()

	for _, p := range live {
		// Cancelled after the first batch.
		ctx, cancel := context.WithCancel(w.ctx)
		_, err := replayReadModel(ctx, w.store, p, uuid.Nil, 1, func(done, _ int64) {
			if done > 0 {
				cancel()
			}
		})
		cancel()
		require.ErrorIs(t, err, context.Canceled, p.Name())
		requireNoCopies(t, w.store.Pool())
		require.Equal(t, before, snapshot(), p.Name())

		// Failing after the first batch: the copies vanish under it.
		schema := p.(interface{ ShadowSchema() string }).ShadowSchema()
		_, err = replayReadModel(w.ctx, w.store, p, uuid.Nil, 1, func(done, _ int64) {
			if done == 1 {
				_, err := w.store.Pool().Exec(w.ctx, `DROP SCHEMA `+pgx.Identifier{schema}.Sanitize()+` CASCADE`)
				require.NoError(t, err)
			}
		})
		require.ErrorContains(t, err, "no shadow copy", p.Name())
		requireNoCopies(t, w.store.Pool())
		require.Equal(t, before, snapshot(), p.Name())
	}
}
