// Package pgprojection turns a read model's batch fold into a
// projections.Projection on PostgreSQL: each batch is applied in one
// transaction together with the projection's checkpoint (a row of the
// event store's booking_checkpoints, written with postgres.SaveCheckpointTx)
// or, for a bus batch, the stream versions it applied (table
// read_model_streams), appliers of one projection are serialised across
// processes, and Reset empties the tables, the versions and the
// checkpoint at once.
//
// A stream's applied version is the greater of two: the version recorded
// in read_model_streams (what the bus applied, possibly ahead of the
// checkpoint), and the last version of the stream at or below the
// checkpoint in the event store's booking_events (what the checkpoint
// says is applied). So a store batch, a rebuild's above all, records
// nothing per stream: moving the checkpoint is the record.
//
// A read model package embeds its own migration set for its tables and
// passes it to postgres.Migrate (or Config.Migrations) next to the event
// store's and this package's (Migrations); the checkpoint table belongs to
// the event store's set.
//
// Every projection can also be rebuilt beside its live tables (shadow.go):
// BeginShadow creates empty copies in a schema of their own, ApplyShadow
// folds batches into them with the same Apply (the copies' schema first
// on the search_path) against a checkpoint of their own, and SwapShadow
// replaces the live tables, or one tenant's rows, atomically, so that
// queries keep answering from the live tables until the swap commits.
package pgprojection

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strings"

	"github.com/bookingengine/booking/eventstore"
	"github.com/bookingengine/booking/eventstore/postgres"
	"github.com/bookingengine/booking/projections"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationSet names this package's migrations in schema_migrations:
// never rename it.
const migrationSet = "readmodel-projections"

// Migrations returns the migration set of the tables every projection
// shares: the applied stream versions, and the indexes a rebuild dropped.
// Apply it before the read models' sets.
func Migrations() postgres.MigrationSet {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // the embedded directory is fixed at compile time
	}
	return postgres.MigrationSet{Name: migrationSet, FS: sub}
}

// lockClass is the first key of the transaction-scoped advisory lock that
// serialises appliers of one projection (the second key is a hash of its
// name). It differs from the event store's append lock class.
const lockClass int32 = 0x70726f6a // "proj"

// Definition is a projection on PostgreSQL.
type Definition struct {
	// Name is permanent: it keys the checkpoint, and changing it replays
	// the whole log into the tables.
	Name string
	// Categories are the event-store categories the projection reads.
	Categories []string
	// Tables are the read model's tables, emptied by Reset. Only names
	// made of letters, digits, '_' and '.' are accepted. A shadow rebuild
	// (BeginShadow) further needs them unqualified, resolved through the
	// search_path as Apply uses them, and a uuid column tenant_id in each
	// to replace one tenant's rows.
	Tables []string
	// Apply folds a batch into the read model inside tx, which also
	// stores the checkpoint and the applied versions. Events come in
	// read-all order (from the bus: in stream order per stream), only
	// those above the applied versions, and include types the projection
	// does not use. It must skip an event whose stream version is not above
	// the version recorded in the row it changes, so that a redelivery
	// or an old event arriving late changes nothing. It must name the
	// tables unqualified and touch no table outside Tables: ApplyShadow
	// runs it with the shadow copies first on the search_path.
	Apply func(ctx context.Context, tx pgx.Tx, events []projections.Event) error
}

var tableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]*$`)

// Validate reports every problem of d at once.
func (d Definition) Validate() error {
	var errs []error
	if d.Name == "" {
		errs = append(errs, errors.New("empty name"))
	}
	if len(d.Categories) == 0 {
		errs = append(errs, errors.New("no categories"))
	}
	for _, t := range d.Tables {
		if !tableName.MatchString(t) {
			errs = append(errs, fmt.Errorf("bad table name %q", t))
		}
	}
	if d.Apply == nil {
		errs = append(errs, errors.New("nil Apply"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("pgprojection: definition %q: %w", d.Name, errors.Join(errs...))
	}
	return nil
}

// Projection is a Definition running on a pool. It implements
// projections.Projection and is safe for concurrent use.
type Projection struct {
	pool   *pgxpool.Pool
	def    Definition
	signal projections.Signal
}

var (
	_ projections.Projection = (*Projection)(nil)
	_ projections.BulkLoader = (*Projection)(nil)
)

// New returns the projection, or the definition's problems.
func New(pool *pgxpool.Pool, def Definition) (*Projection, error) {
	if err := def.Validate(); err != nil {
		return nil, err
	}
	return &Projection{pool: pool, def: def}, nil
}

// Name returns the permanent name.
func (p *Projection) Name() string { return p.def.Name }

// Categories returns the categories the projection reads.
func (p *Projection) Categories() []string { return p.def.Categories }

// Pool returns the pool the read model lives in.
func (p *Projection) Pool() *pgxpool.Pool { return p.pool }

// Tables returns the read model's tables, as Definition.Tables names them.
func (p *Projection) Tables() []string { return slices.Clone(p.def.Tables) }

// Apply implements projections.Projection.Apply: one transaction holding
// the projection's advisory lock checks the stored checkpoint against
// b.From, runs the fold and stores b.To. The lock takes no transaction
// id; the fold's first write does, and holds the event store's read-all
// watermark back until the commit, so keep batches modest while other
// readers tail the log.
func (p *Projection) Apply(ctx context.Context, b projections.Batch) error {
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		if err := p.lock(ctx, tx); err != nil {
			return err
		}
		return p.applyTx(ctx, tx, p.def.Name, b)
	})
	if err != nil {
		return fmt.Errorf("projection %s: %w", p.def.Name, err)
	}
	p.signal.Notify()
	return nil
}

// applyTx checks the checkpoint stored under name against b.From, runs
// the fold and stores b.To under name, inside tx, which holds the lock
// that guards that checkpoint.
func (p *Projection) applyTx(ctx context.Context, tx pgx.Tx, name string, b projections.Batch) error {
	if !b.FromBus {
		cur, err := checkpoint(ctx, tx, name)
		if err != nil {
			return err
		}
		if cur != b.From {
			return fmt.Errorf("%w: stored %s, batch after %s", projections.ErrCheckpointMoved, cur, b.From)
		}
	}
	evs, err := unapplied(ctx, tx, name, b)
	if err != nil {
		return err
	}
	if len(evs) > 0 {
		if err := p.def.Apply(ctx, tx, evs); err != nil {
			return err
		}
	}
	if b.FromBus {
		if len(evs) == 0 {
			return nil
		}
		return recordVersions(ctx, tx, name, evs)
	}
	return postgres.SaveCheckpointTx(ctx, tx, name, eventstore.Cursor{TransactionID: b.To.TransactionID, Position: b.To.Position})
}

// unapplied reads the applied versions under name of the batch's streams
// and returns the events above them (projections.Unapplied). A store
// batch follows the checkpoint (applyTx checked), so only the bus can
// have applied its events: the recorded versions suffice. A bus batch may
// hold events at or below the checkpoint.
func unapplied(ctx context.Context, tx pgx.Tx, name string, b projections.Batch) ([]projections.Event, error) {
	if len(b.Events) == 0 {
		return nil, nil
	}
	ids := projections.StreamIDs(b.Events)
	var (
		applied map[string]int64
		err     error
	)
	if b.FromBus {
		applied, err = appliedVersions(ctx, tx, name, ids)
	} else {
		applied, err = recordedVersions(ctx, tx, name, ids)
	}
	if err != nil {
		return nil, err
	}
	return projections.Unapplied(b.Events, applied, b.FromBus && b.Contiguous)
}

type rowsQueryer interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// recordedVersionsQuery reads the versions recorded under $1.
const recordedVersionsQuery = `SELECT stream_id, version FROM read_model_streams WHERE projection = $1 AND stream_id = ANY($2)`

// recordedVersions reads the versions recorded under name.
func recordedVersions(ctx context.Context, db rowsQueryer, name string, streamIDs []string) (map[string]int64, error) {
	return versions(ctx, db, recordedVersionsQuery, name, streamIDs)
}

// appliedVersionsQuery gives each stream the greater of its recorded
// version and its last version at or below the checkpoint of $1, which
// the unique index on (stream_id, stream_version) finds by walking the
// stream's versions down from the newest. The recorded versions are read
// first, on the primary key with both of its columns, so that no plan
// joins the streams asked about against every stream of the projection.
const appliedVersionsQuery = `
	WITH r AS MATERIALIZED (
		SELECT stream_id, version FROM read_model_streams WHERE projection = $1 AND stream_id = ANY($2)
	)
	SELECT s.id, greatest(r.version, e.version)
	FROM unnest($2::text[]) AS s(id)
	LEFT JOIN booking_checkpoints c ON c.name = $1
	LEFT JOIN r ON r.stream_id = s.id
	LEFT JOIN LATERAL (
		SELECT be.stream_version AS version FROM booking_events be
		WHERE be.stream_id = s.id AND (be.transaction_id, be.position) <= (c.transaction_id, c.position)
		ORDER BY be.stream_version DESC LIMIT 1
	) e ON true
	WHERE r.version IS NOT NULL OR e.version IS NOT NULL`

// appliedVersions reads the applied versions under name (see the package
// doc).
func appliedVersions(ctx context.Context, db rowsQueryer, name string, streamIDs []string) (map[string]int64, error) {
	return versions(ctx, db, appliedVersionsQuery, name, streamIDs)
}

// versions runs a lookup of applied versions, planned for its arguments
// (postgres.Planned): read_model_streams grows without bound.
func versions(ctx context.Context, db rowsQueryer, q, name string, streamIDs []string) (map[string]int64, error) {
	rows, err := db.Query(ctx, q, postgres.Planned, name, streamIDs)
	if err != nil {
		return nil, fmt.Errorf("read applied versions: %w", err)
	}
	out := make(map[string]int64, len(streamIDs))
	var (
		id string
		v  int64
	)
	if _, err := pgx.ForEachRow(rows, []any{&id, &v}, func() error {
		out[id] = v
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read applied versions: %w", err)
	}
	return out, nil
}

// recordVersions raises the recorded version of each stream of evs (a bus
// batch, in stream order) to its last event's, with one upsert.
func recordVersions(ctx context.Context, tx pgx.Tx, name string, evs []projections.Event) error {
	last := make(map[string]int, len(evs))
	var ids []string
	for i, e := range evs {
		if _, ok := last[e.StreamID]; !ok {
			ids = append(ids, e.StreamID)
		}
		last[e.StreamID] = i
	}
	tenants := make([]uuid.UUID, len(ids))
	versions := make([]int64, len(ids))
	for i, id := range ids {
		e := evs[last[id]]
		tenants[i], versions[i] = e.TenantID, e.StreamVersion
	}
	const q = `INSERT INTO read_model_streams AS s (projection, stream_id, tenant_id, version)
		SELECT $1, * FROM unnest($2::text[], $3::uuid[], $4::bigint[])
		ON CONFLICT (projection, stream_id) DO UPDATE SET version = GREATEST(s.version, excluded.version)`
	if _, err := tx.Exec(ctx, q, name, ids, tenants, versions); err != nil {
		return fmt.Errorf("record applied versions: %w", err)
	}
	return nil
}

// AppliedVersions implements projections.Projection: one query (see the
// package doc).
func (p *Projection) AppliedVersions(ctx context.Context, streamIDs []string) (map[string]int64, error) {
	out, err := appliedVersions(ctx, p.pool, p.def.Name, streamIDs)
	if err != nil {
		return nil, fmt.Errorf("projection %s: %w", p.def.Name, err)
	}
	return out, nil
}

// lock takes the projection's advisory lock for the transaction and turns
// off synchronous commit for it: a read model and its checkpoint commit
// together, so a crash that loses the last commits only moves both back,
// and the projection applies those events again. It saves a WAL flush per
// batch, which is most of a small batch's commit time.
func (p *Projection) lock(ctx context.Context, tx pgx.Tx) error {
	const q = `SELECT pg_advisory_xact_lock($1, hashtext($2)), set_config('synchronous_commit', 'off', true)`
	if _, err := tx.Exec(ctx, q, lockClass, p.def.Name); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	return nil
}

// Checkpoint returns the stored cursor, the zero Cursor when none.
func (p *Projection) Checkpoint(ctx context.Context) (projections.Cursor, error) {
	c, err := checkpoint(ctx, p.pool, p.def.Name)
	if err != nil {
		return projections.Cursor{}, fmt.Errorf("projection %s: %w", p.def.Name, err)
	}
	return c, nil
}

type queryer interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func checkpoint(ctx context.Context, db queryer, name string) (projections.Cursor, error) {
	var c projections.Cursor
	err := db.QueryRow(ctx, `SELECT transaction_id, position FROM booking_checkpoints WHERE name = $1`, name).
		Scan(&c.TransactionID, &c.Position)
	if errors.Is(err, pgx.ErrNoRows) {
		return projections.Cursor{}, nil
	}
	if err != nil {
		return projections.Cursor{}, fmt.Errorf("read checkpoint: %w", err)
	}
	return c, nil
}

// Reset empties the tables and deletes the checkpoint in one transaction
// under the projection's lock, so no batch lands half before and half
// after it.
func (p *Projection) Reset(ctx context.Context) error {
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		if err := p.lock(ctx, tx); err != nil {
			return err
		}
		for _, t := range p.def.Tables {
			if _, err := tx.Exec(ctx, `TRUNCATE `+t); err != nil {
				return fmt.Errorf("truncate %s: %w", t, err)
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM read_model_streams WHERE projection = $1`, p.def.Name); err != nil {
			return fmt.Errorf("forget applied versions: %w", err)
		}
		_, err := tx.Exec(ctx, `DELETE FROM booking_checkpoints WHERE name = $1`, p.def.Name)
		return err
	})
	if err != nil {
		return fmt.Errorf("projection %s: reset: %w", p.def.Name, err)
	}
	p.signal.Notify()
	return nil
}

// secondaryIndexes lists the indexes of the tables that back no
// constraint (so not the primary key, which the folds' upserts need).
const secondaryIndexes = `SELECT i.indexname, i.indexdef FROM pg_indexes i
	WHERE i.schemaname = current_schema() AND i.tablename = ANY($1)
	  AND NOT EXISTS (SELECT 1 FROM pg_constraint c
	                  WHERE c.conindid = (quote_ident(i.schemaname) || '.' || quote_ident(i.indexname))::regclass)
	ORDER BY i.indexname`

// BeginBulk implements projections.BulkLoader: it drops the tables'
// secondary indexes, remembering each one's definition in
// read_model_dropped_indexes in the same transaction.
func (p *Projection) BeginBulk(ctx context.Context) error {
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		if err := p.lock(ctx, tx); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, secondaryIndexes, p.def.Tables)
		if err != nil {
			return err
		}
		type index struct{ name, def string }
		idx, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (index, error) {
			var i index
			return i, r.Scan(&i.name, &i.def)
		})
		if err != nil {
			return err
		}
		for _, i := range idx {
			if _, err := tx.Exec(ctx, `INSERT INTO read_model_dropped_indexes (projection, name, definition)
				VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, p.def.Name, i.name, i.def); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `DROP INDEX `+pgx.Identifier{i.name}.Sanitize()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("projection %s: drop indexes for the rebuild: %w", p.def.Name, err)
	}
	return nil
}

// EndBulk implements projections.BulkLoader: it builds every index that a
// rebuild of this projection dropped (one that is there already is left
// alone) and forgets it. Call it at start to repair a rebuild that died.
func (p *Projection) EndBulk(ctx context.Context) error {
	rows, err := p.pool.Query(ctx, `SELECT name, definition FROM read_model_dropped_indexes WHERE projection = $1 ORDER BY name`, p.def.Name)
	if err != nil {
		return fmt.Errorf("projection %s: build indexes: %w", p.def.Name, err)
	}
	type index struct{ name, def string }
	idx, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (index, error) {
		var i index
		return i, r.Scan(&i.name, &i.def)
	})
	if err != nil {
		return fmt.Errorf("projection %s: build indexes: %w", p.def.Name, err)
	}
	for _, i := range idx {
		def, ok := strings.CutPrefix(i.def, "CREATE INDEX ")
		if !ok {
			return fmt.Errorf("projection %s: build index %s: unexpected definition %q", p.def.Name, i.name, i.def)
		}
		if _, err := p.pool.Exec(ctx, "CREATE INDEX IF NOT EXISTS "+def); err != nil {
			return fmt.Errorf("projection %s: build index %s: %w", p.def.Name, i.name, err)
		}
		if _, err := p.pool.Exec(ctx, `DELETE FROM read_model_dropped_indexes WHERE projection = $1 AND name = $2`, p.def.Name, i.name); err != nil {
			return fmt.Errorf("projection %s: build index %s: %w", p.def.Name, i.name, err)
		}
	}
	return nil
}

// Changed returns a channel closed at the next Apply or Reset of this
// value.
func (p *Projection) Changed() <-chan struct{} { return p.signal.C() }
