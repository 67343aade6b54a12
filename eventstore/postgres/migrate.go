package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// eventStoreSet names the event store's own migrations in schema_migrations.
// Renaming it would make Migrate apply them again: never change it.
const eventStoreSet = "eventstore"

// migrationLockKey is the pg_advisory_lock key that serialises Migrate
// across processes. Every package that migrates this database must go
// through Migrate so that it takes the same key.
const migrationLockKey int64 = 0x626f6f6b696e6700 // "booking\x00"

// MigrationSet is a named, ordered set of SQL migrations: every *.sql file
// at the root of FS, applied in lexical order of file name (so name them
// 0001_x.sql, 0002_y.sql, …). A file is applied once, in its own
// transaction together with its row in schema_migrations (set name, file
// name), so a failing file leaves nothing behind and is tried again on the
// next run. Files must therefore not contain statements that refuse to run
// in a transaction (CREATE INDEX CONCURRENTLY, VACUUM).
//
// Adapters that own tables in this database (idempotency keys, read models)
// embed their own set and pass it to Migrate or Config.Migrations:
//
//	//go:embed migrations/*.sql
//	var files embed.FS
//
//	func Migrations() postgres.MigrationSet {
//		sub, _ := fs.Sub(files, "migrations")
//		return postgres.MigrationSet{Name: "readmodels", FS: sub}
//	}
//
// Name is recorded with every applied file: renaming a set, or a file of
// it, makes Migrate run it again. Never edit an applied file; add one.
type MigrationSet struct {
	Name string
	FS   fs.FS
}

// Migrations returns the event store's own migration set, which Migrate
// always applies first.
func Migrations() MigrationSet {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // the embedded directory is fixed at compile time
	}
	return MigrationSet{Name: eventStoreSet, FS: sub}
}

// Migrate brings the database up to date: the event store's migrations,
// then each extra set in the order given. It holds a session advisory lock
// for the whole run, so it is safe to call twice and from several processes
// at once (the later callers wait, then find nothing left to do). It is
// idempotent. It returns the first error, naming the set and file; files
// applied before the error stay applied.
func Migrate(ctx context.Context, pool *pgxpool.Pool, extra ...MigrationSet) error {
	sets := append([]MigrationSet{Migrations()}, extra...)
	if err := (Config{Migrations: extra}).Validate(); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	type file struct{ set, name, sql string }
	var files []file
	for _, s := range sets {
		names, err := fs.Glob(s.FS, "*.sql")
		if err != nil {
			return fmt.Errorf("migrate: list set %s: %w", s.Name, err)
		}
		slices.Sort(names)
		for _, n := range names {
			b, err := fs.ReadFile(s.FS, n)
			if err != nil {
				return fmt.Errorf("migrate: read %s/%s: %w", s.Name, n, err)
			}
			files = append(files, file{s.Name, n, string(b)})
		}
	}

	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate: acquire connection: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLockKey); err != nil {
		return fmt.Errorf("migrate: take advisory lock: %w", err)
	}
	defer func() {
		// A cancelled ctx must not keep the lock: unlock on a fresh
		// context, and if even that fails close the session, which
		// releases every lock it holds.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock($1)`, migrationLockKey); err != nil {
			_ = conn.Hijack().Close(uctx)
		}
	}()

	const createTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
		set_name   text        NOT NULL,
		name       text        NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now(),
		PRIMARY KEY (set_name, name))`
	if _, err := conn.Exec(ctx, createTable); err != nil {
		return fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	rows, err := conn.Query(ctx, `SELECT set_name, name FROM schema_migrations`)
	if err != nil {
		return fmt.Errorf("migrate: read schema_migrations: %w", err)
	}
	applied := map[[2]string]bool{}
	var set, name string
	if _, err := pgx.ForEachRow(rows, []any{&set, &name}, func() error {
		applied[[2]string{set, name}] = true
		return nil
	}); err != nil {
		return fmt.Errorf("migrate: read schema_migrations: %w", err)
	}
	for _, f := range files {
		if applied[[2]string{f.set, f.name}] {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, f.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (set_name, name) VALUES ($1, $2)`, f.set, f.name)
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate: apply %s/%s: %w", f.set, f.name, err)
		}
	}
	return nil
}
