package pgprojection

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/bookingengine/booking/eventstore"
	"github.com/bookingengine/booking/eventstore/postgres"
	"github.com/bookingengine/booking/projections"
)

// shadowLockClass is the first key of the transaction-scoped advisory lock
// that serialises the writers of a projection's shadow copies (the second
// key is a hash of its name). It differs from lockClass so that filling
// the copies never waits for the live appliers, nor they for it.
const shadowLockClass int32 = 0x73686477 // "shdw"

// ShadowSchema returns the schema that holds the projection's shadow
// copies while a rebuild runs: "shadow_" and the name (a hash of the name
// when that would exceed PostgreSQL's 63-byte identifiers). Nothing else
// may live in it: DropShadow drops it with everything inside.
func (p *Projection) ShadowSchema() string {
	s := "shadow_" + p.def.Name
	if len(s) > 63 {
		sum := sha256.Sum256([]byte(p.def.Name))
		s = "shadow_" + hex.EncodeToString(sum[:16])
	}
	return s
}

// ShadowCheckpointName returns the key of the shadow copies' checkpoint in
// booking_checkpoints: the projection's name and ".shadow".
func (p *Projection) ShadowCheckpointName() string { return p.def.Name + ".shadow" }

// liveTable is one of Definition.Tables as the search_path resolves it.
type liveTable struct {
	name   string // pg_class.relname: Definition.Tables folded to lower case
	schema string
	oid    uint32
}

// liveTables resolves the projection's tables, which must exist and be
// unqualified. db must not have the shadow schema on its search_path.
func (p *Projection) liveTables(ctx context.Context, db pgx.Tx) ([]liveTable, error) {
	for _, t := range p.def.Tables {
		if strings.Contains(t, ".") {
			return nil, fmt.Errorf("table %s: a shadow rebuild needs unqualified table names", t)
		}
	}
	rows, err := db.Query(ctx, `SELECT lower(t.name), n.nspname, c.oid
		FROM unnest($1::text[]) WITH ORDINALITY AS t(name, i)
		LEFT JOIN pg_class c ON c.oid = to_regclass(t.name)
		LEFT JOIN pg_namespace n ON n.oid = c.relnamespace
		ORDER BY t.i`, p.def.Tables)
	if err != nil {
		return nil, fmt.Errorf("resolve tables: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (liveTable, error) {
		var (
			t      liveTable
			schema *string
			oid    *uint32
		)
		if err := r.Scan(&t.name, &schema, &oid); err != nil {
			return t, err
		}
		if schema == nil || oid == nil {
			return t, fmt.Errorf("table %s does not exist", t.name)
		}
		t.schema, t.oid = *schema, *oid
		return t, nil
	})
	if err != nil {
		return nil, fmt.Errorf("resolve tables: %w", err)
	}
	return out, nil
}

// lockShadow takes the shadow copies' advisory lock for the transaction.
func (p *Projection) lockShadow(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, shadowLockClass, p.def.Name); err != nil {
		return fmt.Errorf("lock copies: %w", err)
	}
	return nil
}

// relnames returns Definition.Tables as pg_class names them: unquoted
// identifiers fold to lower case.
func (p *Projection) relnames() []string {
	out := make([]string, len(p.def.Tables))
	for i, t := range p.def.Tables {
		out[i] = strings.ToLower(t)
	}
	return out
}

// shadowTables returns the oids of the copies by relname; a table without
// a copy is missing from the map.
func (p *Projection) shadowTables(ctx context.Context, tx pgx.Tx) (map[string]uint32, error) {
	rows, err := tx.Query(ctx, `SELECT c.relname, c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relname = ANY($2) AND c.relkind IN ('r', 'p')`, p.ShadowSchema(), p.relnames())
	if err != nil {
		return nil, fmt.Errorf("find copies: %w", err)
	}
	out := map[string]uint32{}
	var (
		name string
		oid  uint32
	)
	if _, err := pgx.ForEachRow(rows, []any{&name, &oid}, func() error {
		out[name] = oid
		return nil
	}); err != nil {
		return nil, fmt.Errorf("find copies: %w", err)
	}
	return out, nil
}

// requireShadow fails unless every table has its copy: without them,
// the fold would find the live tables on the search_path and write there.
func (p *Projection) requireShadow(ctx context.Context, tx pgx.Tx) (map[string]uint32, error) {
	copies, err := p.shadowTables(ctx, tx)
	if err != nil {
		return nil, err
	}
	for _, t := range p.relnames() {
		if _, ok := copies[t]; !ok {
			return nil, fmt.Errorf("no shadow copy of %s in schema %s (call BeginShadow first)", t, p.ShadowSchema())
		}
	}
	return copies, nil
}

// BeginShadow creates empty copies of the projection's tables in
// ShadowSchema, after dropping copies an interrupted rebuild left behind,
// and leaves their checkpoint at the zero cursor. A copy has the live
// table's columns, defaults, checks and storage (LIKE … INCLUDING ALL),
// and its constraints and indexes under the very same names (LIKE would
// generate new ones, and a later migration that names an index must
// still find it after the swap), its owner and its grants.
// The secondary indexes are built now, on empty tables, and kept up to
// date while the copies fill, rather than built at the end: building them
// would be one long transaction, which holds back the read-all watermark
// of every live projector meanwhile. It does not wait for the live
// appliers. The live tables must exist and be named unqualified.
func (p *Projection) BeginShadow(ctx context.Context) error {
	if err := p.DropShadow(ctx); err != nil {
		return err
	}
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		if err := p.lockShadow(ctx, tx); err != nil {
			return err
		}
		tables, err := p.liveTables(ctx, tx)
		if err != nil {
			return err
		}
		schema := pgx.Identifier{p.ShadowSchema()}.Sanitize()
		if _, err := tx.Exec(ctx, `CREATE SCHEMA `+schema); err != nil {
			return fmt.Errorf("create schema %s: %w", schema, err)
		}
		for _, t := range tables {
			if err := copyTable(ctx, tx, t, p.ShadowSchema()); err != nil {
				return fmt.Errorf("copy %s: %w", t.name, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("projection %s: begin shadow: %w", p.def.Name, err)
	}
	return nil
}

// copyTable creates the empty copy of t in schema.
func copyTable(ctx context.Context, tx pgx.Tx, t liveTable, schema string) error {
	live := pgx.Identifier{t.schema, t.name}.Sanitize()
	shadow := pgx.Identifier{schema, t.name}.Sanitize()
	if _, err := tx.Exec(ctx, `CREATE TABLE `+shadow+` (LIKE `+live+` INCLUDING ALL EXCLUDING INDEXES)`); err != nil {
		return err
	}

	// Primary keys, unique and exclusion constraints, by name.
	rows, err := tx.Query(ctx, `SELECT quote_ident(conname), pg_get_constraintdef(oid) FROM pg_constraint
		WHERE conrelid = $1 AND contype IN ('p', 'u', 'x') ORDER BY conname`, t.oid)
	if err != nil {
		return err
	}
	type definition struct{ name, def string }
	collect := func(r pgx.CollectableRow) (definition, error) {
		var d definition
		return d, r.Scan(&d.name, &d.def)
	}
	constraints, err := pgx.CollectRows(rows, collect)
	if err != nil {
		return err
	}
	for _, c := range constraints {
		if _, err := tx.Exec(ctx, `ALTER TABLE `+shadow+` ADD CONSTRAINT `+c.name+` `+c.def); err != nil {
			return fmt.Errorf("constraint %s: %w", c.name, err)
		}
	}

	// The other indexes, by name. pg_get_indexdef always qualifies the
	// table, so the statement is the live one with the copy's table.
	rows, err = tx.Query(ctx, `SELECT quote_ident(ic.relname), pg_get_indexdef(i.indexrelid),
			'CREATE ' || CASE WHEN i.indisunique THEN 'UNIQUE ' ELSE '' END || 'INDEX ' || quote_ident(ic.relname),
			' ON ' || quote_ident($2) || '.' || quote_ident($3) || ' '
		FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
		WHERE i.indrelid = $1
		  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conrelid = i.indrelid AND c.conindid = i.indexrelid)
		ORDER BY ic.relname`, t.oid, t.schema, t.name)
	if err != nil {
		return err
	}
	// def is create, on and the rest (method, columns, predicate).
	type index struct{ name, def, create, on string }
	indexes, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (index, error) {
		var i index
		return i, r.Scan(&i.name, &i.def, &i.create, &i.on)
	})
	if err != nil {
		return err
	}
	for _, i := range indexes {
		rest, ok := strings.CutPrefix(i.def, i.create+i.on)
		if !ok {
			return fmt.Errorf("index %s: unexpected definition %q", i.name, i.def)
		}
		if _, err := tx.Exec(ctx, i.create+` ON `+shadow+` `+rest); err != nil {
			return fmt.Errorf("index %s: %w", i.name, err)
		}
	}

	// The live table's owner and grants, so that whoever reads or writes
	// the live table still may after the swap.
	var owner string
	var mine bool
	if err := tx.QueryRow(ctx, `SELECT quote_ident(pg_get_userbyid(relowner)), pg_get_userbyid(relowner) = current_user
		FROM pg_class WHERE oid = $1`, t.oid).Scan(&owner, &mine); err != nil {
		return fmt.Errorf("owner: %w", err)
	}
	if !mine {
		if _, err := tx.Exec(ctx, `ALTER TABLE `+shadow+` OWNER TO `+owner); err != nil {
			return fmt.Errorf("owner: %w", err)
		}
	}
	rows, err = tx.Query(ctx, `SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END,
			a.privilege_type, a.is_grantable
		FROM pg_class c, aclexplode(c.relacl) a
		WHERE c.oid = $1 AND a.grantee <> c.relowner
		ORDER BY 1, 2`, t.oid)
	if err != nil {
		return fmt.Errorf("grants: %w", err)
	}
	type grant struct {
		grantee, privilege string
		grantable          bool
	}
	grants, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (grant, error) {
		var g grant
		return g, r.Scan(&g.grantee, &g.privilege, &g.grantable)
	})
	if err != nil {
		return fmt.Errorf("grants: %w", err)
	}
	for _, g := range grants {
		q := `GRANT ` + g.privilege + ` ON ` + shadow + ` TO ` + g.grantee
		if g.grantable {
			q += ` WITH GRANT OPTION`
		}
		if _, err := tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("grant: %w", err)
		}
	}
	return nil
}

// CheckShadow reports, changing nothing, why BeginShadow or a
// SwapShadow for tenant would fail for the shape of the live tables: a
// table that is missing or named qualified, or, unless tenant is
// uuid.Nil, one without a uuid column tenant_id. Call it for every read
// model before rebuilding any, so that a rebuild of several does not stop
// half-way through.
func (p *Projection) CheckShadow(ctx context.Context, tenant uuid.UUID) error {
	err := pgx.BeginTxFunc(ctx, p.pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		tables, err := p.liveTables(ctx, tx)
		if err != nil || tenant == uuid.Nil {
			return err
		}
		var errs []error
		for _, t := range tables {
			if _, err := insertColumns(ctx, tx, t); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	})
	if err != nil {
		return fmt.Errorf("projection %s: %w", p.def.Name, err)
	}
	return nil
}

// ApplyShadow applies b to the shadow copies exactly as Apply applies a
// batch to the live tables: in one transaction, checked against the
// copies' checkpoint (ShadowCheckpointName), which it moves to b.To also
// when b.Events is empty, with the fold finding the copies first on the
// search_path. It holds the copies' lock, not the live one, so it neither
// waits for the live appliers nor delays them. It returns
// projections.ErrCheckpointMoved as Apply does, and fails, changing
// nothing, when the copies do not exist (BeginShadow was not called, or
// DropShadow or SwapShadow ran since). It does not signal Changed: the
// live read model did not change.
func (p *Projection) ApplyShadow(ctx context.Context, b projections.Batch) error {
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		if err := p.lockShadow(ctx, tx); err != nil {
			return err
		}
		if _, err := p.requireShadow(ctx, tx); err != nil {
			return err
		}
		const q = `SELECT set_config('synchronous_commit', 'off', true),
			set_config('search_path', quote_ident($1) || ', ' || current_setting('search_path'), true)`
		if _, err := tx.Exec(ctx, q, p.ShadowSchema()); err != nil {
			return fmt.Errorf("search path: %w", err)
		}
		return p.applyTx(ctx, tx, p.ShadowCheckpointName(), b)
	})
	if err != nil {
		return fmt.Errorf("projection %s: shadow: %w", p.def.Name, err)
	}
	return nil
}

// SwapShadow puts the shadow copies in place of the live read model, in
// one transaction that holds the live appliers' lock and the copies'. When
// the copies' checkpoint is behind the live one it changes nothing and
// returns false: apply more to the copies, then try again. Otherwise,
// for tenant uuid.Nil, it drops every live table, moves its copy into the
// live table's schema and sets the live checkpoint to the copies'; for
// one tenant, it deletes that tenant's live rows, inserts the copies'
// rows of that tenant and leaves the live checkpoint alone (the live
// appliers then apply the events between the two checkpoints again,
// which the per-row stream versions make no-ops). Either way it deletes
// the copies and their checkpoint and returns true. Readers see the old
// rows until the commit and the new ones after it; a reader that queued
// behind the swap's lock finds the new table by its name.
//
// A whole swap analyzes the copies first, so that the planner knows the
// new tables from the first query; that holds up the live appliers (not
// the readers) for as long. It refuses, changing nothing, when the copies
// are missing or a live table's columns no longer match its copy's (a
// migration ran during the rebuild: begin again).
func (p *Projection) SwapShadow(ctx context.Context, tenant uuid.UUID) (swapped bool, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("projection %s: swap shadow: %w", p.def.Name, err)
		}
	}()
	err = pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, lockClass, p.def.Name); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		if err := p.lockShadow(ctx, tx); err != nil {
			return err
		}
		copies, err := p.requireShadow(ctx, tx)
		if err != nil {
			return err
		}
		live, err := checkpoint(ctx, tx, p.def.Name)
		if err != nil {
			return err
		}
		shadow, err := checkpoint(ctx, tx, p.ShadowCheckpointName())
		if err != nil {
			return err
		}
		if shadow.Before(live) {
			return nil
		}
		tables, err := p.liveTables(ctx, tx)
		if err != nil {
			return err
		}
		for _, t := range tables {
			if err := sameColumns(ctx, tx, t.oid, copies[t.name]); err != nil {
				return fmt.Errorf("table %s: %w", t.name, err)
			}
		}
		if tenant == uuid.Nil {
			err = p.swapTables(ctx, tx, tables, shadow)
		} else {
			err = p.swapTenant(ctx, tx, tables, tenant)
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DROP SCHEMA `+pgx.Identifier{p.ShadowSchema()}.Sanitize()+` CASCADE`); err != nil {
			return fmt.Errorf("drop copies: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM booking_checkpoints WHERE name = $1`, p.ShadowCheckpointName()); err != nil {
			return fmt.Errorf("delete the copies' checkpoint: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM read_model_streams WHERE projection = $1`, p.ShadowCheckpointName()); err != nil {
			return fmt.Errorf("delete the copies' applied versions: %w", err)
		}
		swapped = true
		return nil
	})
	if err != nil {
		return false, err
	}
	if swapped {
		p.signal.Notify()
	}
	return swapped, nil
}

// swapTables analyzes the copies, replaces every live table by its copy,
// which keeps its indexes' and constraints' names, and moves the live
// checkpoint to the copies'.
func (p *Projection) swapTables(ctx context.Context, tx pgx.Tx, tables []liveTable, to projections.Cursor) error {
	for _, t := range tables {
		if _, err := tx.Exec(ctx, `ANALYZE `+pgx.Identifier{p.ShadowSchema(), t.name}.Sanitize()); err != nil {
			return fmt.Errorf("analyze the copy of %s: %w", t.name, err)
		}
	}
	for _, t := range tables {
		live := pgx.Identifier{t.schema, t.name}.Sanitize()
		if _, err := tx.Exec(ctx, `DROP TABLE `+live); err != nil {
			return fmt.Errorf("drop %s: %w", live, err)
		}
		q := `ALTER TABLE ` + pgx.Identifier{p.ShadowSchema(), t.name}.Sanitize() + ` SET SCHEMA ` + pgx.Identifier{t.schema}.Sanitize()
		if _, err := tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("move the copy of %s: %w", t.name, err)
		}
	}
	// The copies' applied versions become the live ones: events the live
	// appliers took beyond the copies' checkpoint are not in the new
	// tables, and must not count as applied.
	if _, err := tx.Exec(ctx, `DELETE FROM read_model_streams WHERE projection = $1`, p.def.Name); err != nil {
		return fmt.Errorf("replace applied versions: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE read_model_streams SET projection = $1 WHERE projection = $2`, p.def.Name, p.ShadowCheckpointName()); err != nil {
		return fmt.Errorf("replace applied versions: %w", err)
	}
	return postgres.SaveCheckpointTx(ctx, tx, p.def.Name, eventstore.Cursor{TransactionID: to.TransactionID, Position: to.Position})
}

// insertColumns returns the quoted columns of a table that an INSERT
// writes (not the generated ones, such as a tenant's own tenant_id), and
// fails unless the table has a uuid column tenant_id.
func insertColumns(ctx context.Context, tx pgx.Tx, t liveTable) ([]string, error) {
	var cols []string
	var tenantColumn bool
	err := tx.QueryRow(ctx, `SELECT coalesce(array_agg(quote_ident(attname) ORDER BY attnum) FILTER (WHERE attgenerated = ''), '{}'),
			coalesce(bool_or(attname = 'tenant_id' AND atttypid = 'uuid'::regtype), false)
		FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped`, t.oid).Scan(&cols, &tenantColumn)
	if err != nil {
		return nil, fmt.Errorf("columns of %s: %w", t.name, err)
	}
	if !tenantColumn {
		return nil, fmt.Errorf("table %s has no uuid column tenant_id: it cannot be rebuilt for one tenant", t.name)
	}
	return cols, nil
}

// swapTenant replaces the tenant's rows of every live table by its copy's,
// and the tenant's applied versions by the copies' (see swapTables).
func (p *Projection) swapTenant(ctx context.Context, tx pgx.Tx, tables []liveTable, tenant uuid.UUID) error {
	if _, err := tx.Exec(ctx, `DELETE FROM read_model_streams WHERE projection = $1 AND tenant_id = $2`, p.def.Name, tenant); err != nil {
		return fmt.Errorf("replace the tenant's applied versions: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO read_model_streams (projection, stream_id, tenant_id, version)
		SELECT $1, stream_id, tenant_id, version FROM read_model_streams WHERE projection = $2 AND tenant_id = $3`,
		p.def.Name, p.ShadowCheckpointName(), tenant); err != nil {
		return fmt.Errorf("replace the tenant's applied versions: %w", err)
	}
	for _, t := range tables {
		cols, err := insertColumns(ctx, tx, t)
		if err != nil {
			return err
		}
		live := pgx.Identifier{t.schema, t.name}.Sanitize()
		shadow := pgx.Identifier{p.ShadowSchema(), t.name}.Sanitize()
		list := strings.Join(cols, ", ")
		if _, err := tx.Exec(ctx, `DELETE FROM `+live+` WHERE tenant_id = $1`, tenant); err != nil {
			return fmt.Errorf("delete the tenant's rows of %s: %w", t.name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+live+` (`+list+`) SELECT `+list+` FROM `+shadow+` WHERE tenant_id = $1`, tenant); err != nil {
			return fmt.Errorf("insert the tenant's rows of %s: %w", t.name, err)
		}
	}
	return nil
}

// sameColumns fails unless the two tables have the same columns, in
// order, of the same types and generation.
func sameColumns(ctx context.Context, tx pgx.Tx, live, shadow uint32) error {
	const q = `SELECT coalesce(array_agg(attname || ' ' || format_type(atttypid, atttypmod) || ' ' || attgenerated::text
		ORDER BY attnum), '{}') FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped`
	var a, b []string
	if err := tx.QueryRow(ctx, q, live).Scan(&a); err != nil {
		return fmt.Errorf("columns: %w", err)
	}
	if err := tx.QueryRow(ctx, q, shadow).Scan(&b); err != nil {
		return fmt.Errorf("columns: %w", err)
	}
	if !slices.Equal(a, b) {
		return fmt.Errorf("its columns changed during the rebuild (live %v, copy %v): rebuild again", a, b)
	}
	return nil
}

// DropShadow drops the shadow copies and their checkpoint, after a failed
// rebuild; the live read model is untouched. It is idempotent, and waits
// for a running ApplyShadow.
func (p *Projection) DropShadow(ctx context.Context) error {
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		if err := p.lockShadow(ctx, tx); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{p.ShadowSchema()}.Sanitize()+` CASCADE`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM read_model_streams WHERE projection = $1`, p.ShadowCheckpointName()); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM booking_checkpoints WHERE name = $1`, p.ShadowCheckpointName())
		return err
	})
	if err != nil {
		return fmt.Errorf("projection %s: drop shadow: %w", p.def.Name, err)
	}
	return nil
}
