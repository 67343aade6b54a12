package migrations_test

import (
	"context"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/eventstore/postgres"
	"github.com/bookingengine/booking/internal/migrations"
	"github.com/bookingengine/booking/internal/testenv"
)

// files maps each *.sql file at the root of fsys to its contents.
func files(t *testing.T, fsys fs.FS) map[string]string {
	t.Helper()
	names, err := fs.Glob(fsys, "*.sql")
	require.NoError(t, err)
	out := map[string]string{}
	for _, n := range names {
		b, err := fs.ReadFile(fsys, n)
		require.NoError(t, err)
		out[n] = string(b)
	}
	return out
}

// moduleRoot returns the directory of go.mod above the test's directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, dir, parent, "no go.mod above the test")
		dir = parent
	}
}

// TestSetsNameEveryEmbeddedMigrationsDirectory: every directory of the
// module named migrations that holds SQL files is the event store's set
// or one of Sets, so a package that gains a set cannot be forgotten here
// (bookingctl migrate would then leave the database short of it).
func TestSetsNameEveryEmbeddedMigrationsDirectory(t *testing.T) {
	t.Parallel()
	sets := append([]postgres.MigrationSet{postgres.Migrations()}, migrations.Sets()...)
	names := map[string]bool{}
	for _, s := range sets {
		require.False(t, names[s.Name], "set %s listed twice", s.Name)
		names[s.Name] = true
		require.NotEmpty(t, files(t, s.FS), "set %s has no files", s.Name)
	}

	root := moduleRoot(t)
	var dirs []string
	require.NoError(t, filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() && d.Name() == "migrations" && path != filepath.Join(root, "internal", "migrations") {
			dirs = append(dirs, path)
		}
		return nil
	}))
	require.NotEmpty(t, dirs)
	for _, dir := range dirs {
		got := files(t, os.DirFS(dir))
		if len(got) == 0 {
			continue
		}
		rel, err := filepath.Rel(root, dir)
		require.NoError(t, err)
		found := slices.ContainsFunc(sets, func(s postgres.MigrationSet) bool {
			return maps.Equal(files(t, s.FS), got)
		})
		require.True(t, found, "%s holds migrations that no set of migrations.Sets applies: add its package's set there "+
			"(a read model's to readside.Migrations)", rel)
	}
}

// TestSetsMigrateAFreshDatabaseOnce: every file of every set is applied,
// and a second run applies nothing.
func TestSetsMigrateAFreshDatabaseOnce(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pool, err := pgxpool.New(ctx, testenv.NewDatabase(t))
	require.NoError(t, err)
	defer pool.Close()

	want := len(files(t, postgres.Migrations().FS))
	for _, s := range migrations.Sets() {
		want += len(files(t, s.FS))
	}
	count := func() int {
		var n int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n))
		return n
	}
	require.NoError(t, postgres.Migrate(ctx, pool, migrations.Sets()...))
	require.Equal(t, want, count())
	require.NoError(t, postgres.Migrate(ctx, pool, migrations.Sets()...))
	require.Equal(t, want, count())
}
