package postgres_test

import (
	"context"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/eventstore/postgres"
	"github.com/bookingengine/booking/internal/testenv"
)

func mustPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

func appliedMigrations(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	var names []string
	rows, err := pool.Query(t.Context(), `SELECT set_name || '/' || name FROM schema_migrations ORDER BY 1`)
	require.NoError(t, err)
	defer rows.Close()
	for rows.Next() {
		var n string
		require.NoError(t, rows.Scan(&n))
		names = append(names, n)
	}
	require.NoError(t, rows.Err())
	return names
}

var extraSet = postgres.MigrationSet{Name: "readmodels", FS: fstest.MapFS{
	"0001_things.sql": {Data: []byte(`CREATE TABLE things (id int PRIMARY KEY);`)},
	"0002_more.sql":   {Data: []byte(`ALTER TABLE things ADD COLUMN name text; INSERT INTO things VALUES (1, 'one');`)},
	"README.md":       {Data: []byte(`not a migration`)},
}}

// TestMigrateTwice checks that a second run finds nothing to do.
func TestMigrateTwice(t *testing.T) {
	t.Parallel()
	pool := mustPool(t, testenv.NewDatabase(t))
	for range 2 {
		require.NoError(t, postgres.Migrate(t.Context(), pool, extraSet))
	}
	require.Equal(t, []string{"eventstore/0001_event_store.sql", "readmodels/0001_things.sql", "readmodels/0002_more.sql"}, appliedMigrations(t, pool))
	var n int
	require.NoError(t, pool.QueryRow(t.Context(), `SELECT count(*) FROM things`).Scan(&n))
	require.Equal(t, 1, n, "a file ran once")
}

// TestMigrateConcurrently runs Migrate from several pools (so several
// sessions) at once against an empty database.
func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	url := testenv.NewDatabase(t)
	const runners = 4
	errs := make([]error, runners)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range runners {
		pool := mustPool(t, url)
		wg.Go(func() {
			<-start
			errs[i] = postgres.Migrate(t.Context(), pool, extraSet)
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	require.Len(t, appliedMigrations(t, mustPool(t, url)), 3)
}

// TestMigrateFailingFile checks that a failing file leaves nothing behind,
// names itself, and is tried again on the next run.
func TestMigrateFailingFile(t *testing.T) {
	t.Parallel()
	pool := mustPool(t, testenv.NewDatabase(t))
	bad := postgres.MigrationSet{Name: "broken", FS: fstest.MapFS{
		"0001_ok.sql":  {Data: []byte(`CREATE TABLE ok_table (id int);`)},
		"0002_bad.sql": {Data: []byte(`CREATE TABLE half (id int); SELECT no_such_function();`)},
	}}
	err := postgres.Migrate(t.Context(), pool, bad)
	require.ErrorContains(t, err, "broken/0002_bad.sql")
	require.Equal(t, []string{"broken/0001_ok.sql", "eventstore/0001_event_store.sql"}, appliedMigrations(t, pool))
	var exists bool
	require.NoError(t, pool.QueryRow(t.Context(), `SELECT to_regclass('half') IS NOT NULL`).Scan(&exists))
	require.False(t, exists, "the failed file's statements rolled back")

	// The lock was released: another run proceeds (and fails the same way).
	err = postgres.Migrate(t.Context(), pool, bad)
	require.ErrorContains(t, err, "broken/0002_bad.sql")
}

// TestMigrateInvalidSets checks that bad sets are refused before anything
// runs.
func TestMigrateInvalidSets(t *testing.T) {
	t.Parallel()
	pool := mustPool(t, testenv.NewDatabase(t))
	cases := []struct {
		name string
		sets []postgres.MigrationSet
		want string
	}{
		{"EmptyName", []postgres.MigrationSet{{FS: fstest.MapFS{}}}, "empty name"},
		{"Reserved", []postgres.MigrationSet{{Name: "eventstore", FS: fstest.MapFS{}}}, `"eventstore" used twice`},
		{"Twice", []postgres.MigrationSet{{Name: "a", FS: fstest.MapFS{}}, {Name: "a", FS: fstest.MapFS{}}}, `"a" used twice`},
		{"NilFS", []postgres.MigrationSet{{Name: "a"}}, "nil FS"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.ErrorContains(t, postgres.Migrate(t.Context(), pool, tc.sets...), tc.want)
		})
	}
	var exists bool
	require.NoError(t, pool.QueryRow(t.Context(), `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists))
	require.False(t, exists)
}

// TestMigrateCancelled checks that a cancelled context fails Migrate.
func TestMigrateCancelled(t *testing.T) {
	t.Parallel()
	pool := mustPool(t, testenv.NewDatabase(t))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.ErrorIs(t, postgres.Migrate(ctx, pool), context.Canceled)
}
