package main

import (
	"context"
	"fmt"
	"slices"

	"github.com/bookingengine/booking/eventstore/postgres"
	"github.com/bookingengine/booking/internal/migrations"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrationSets lists, in order, the migration sets applied after the
// event store's own (which postgres.Migrate always applies first): the
// very list bookingd applies (migrations.Sets), so that a database
// migrated by bookingctl is one bookingd can run on without migrating.
func migrationSets() []postgres.MigrationSet { return migrations.Sets() }

func runMigrate(ctx context.Context, m *Main, args []string) error {
	fs := m.flagSet("migrate", "migrate [--database-url URL]\n\n"+
		"Applies every pending migration of the event store and of the adapters that\n"+
		"keep tables in the same database, under the advisory lock bookingd takes, so\n"+
		"it is safe to run twice and beside a starting bookingd. Prints each file applied.")
	dbFlag := databaseFlag(fs)
	if err := fs.parse(args); err != nil {
		return err
	}
	dbURL, err := m.databaseURL(dbFlag)
	if err != nil {
		return err
	}
	pool, err := openPool(ctx, dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()

	before, err := appliedMigrations(ctx, pool)
	if err != nil {
		return err
	}
	if err := postgres.Migrate(ctx, pool, migrationSets()...); err != nil {
		return err
	}
	after, err := appliedMigrations(ctx, pool)
	if err != nil {
		return err
	}
	n := 0
	for _, name := range after {
		if !slices.Contains(before, name) {
			fmt.Fprintf(m.Stdout, "applied %s\n", name)
			n++
		}
	}
	if n == 0 {
		fmt.Fprintln(m.Stdout, "database is up to date: nothing to apply")
	}
	return nil
}

// appliedMigrations returns "set/file" for every applied migration, in the
// order applied; none when schema_migrations does not exist yet.
func appliedMigrations(ctx context.Context, pool *pgxpool.Pool) ([]string, error) {
	var exists bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	if !exists {
		return nil, nil
	}
	rows, err := pool.Query(ctx, `SELECT set_name || '/' || name FROM schema_migrations ORDER BY applied_at, set_name, name`)
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	return names, nil
}
