package main

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	bhttp "github.com/bookingengine/booking/http"
	"github.com/bookingengine/booking/internal/testenv"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

const testSecret = "0123456789abcdef0123456789abcdef-test"

func TestHelpOnEveryCommand(t *testing.T) {
	t.Parallel()
	for _, c := range subcommands() {
		for _, flag := range []string{"--help", "-h"} {
			r := run(t, nil, c.name, flag)
			require.Equal(t, 0, r.code, c.name)
			require.Empty(t, r.stderr, c.name)
			require.Contains(t, r.stdout, "Usage: bookingctl "+c.name, c.name)
			require.Contains(t, r.stdout, "-", c.name, "the flags are listed")
		}
	}
	r := run(t, nil, "--help")
	require.Equal(t, 0, r.code)
	for _, c := range subcommands() {
		require.Contains(t, r.stdout, c.name)
	}
}

func TestUsageErrorsExitTwoWithOneLine(t *testing.T) {
	t.Parallel()
	db := map[string]string{"DATABASE_URL": "postgres://nobody@127.0.0.1:1/none"}
	secret := map[string]string{"JWT_SECRET": testSecret}
	id := uuid.NewString()
	cases := []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"no command", nil, nil},
		{"unknown command", db, []string{"frobnicate"}},
		{"unknown flag", db, []string{"history", "--nope"}},
		{"positional argument", db, []string{"history", "--booking", id, "extra"}},
		{"history without selector", db, []string{"history"}},
		{"history with two selectors", db, []string{"history", "--booking", id, "--tenant", id}},
		{"history bad id", db, []string{"history", "--booking", "not-a-uuid"}},
		{"history empty id", db, []string{"history", "--resource", ""}},
		{"history bad format", db, []string{"history", "--tenant", id, "--format", "xml"}},
		{"history bad from", db, []string{"history", "--tenant", id, "--from", "yesterday"}},
		{"history from after to", db, []string{"history", "--tenant", id, "--from", "2026-12-02T00:00:00Z", "--to", "2026-12-01T00:00:00Z"}},
		{"history without database", nil, []string{"history", "--tenant", id}},
		{"state without selector", db, []string{"state", "--at", "2026-12-01T00:00:00Z"}},
		{"state bad at", db, []string{"state", "--booking", id, "--at", "09:58"}},
		{"verify bad tenant", db, []string{"verify", "--tenant", "x"}},
		{"verify without database", nil, []string{"verify"}},
		{"migrate without database", nil, []string{"migrate"}},
		{"token without role", secret, []string{"token", "--tenant", id}},
		{"token unknown role", secret, []string{"token", "--role", "root", "--tenant", id}},
		{"token admin without tenant", secret, []string{"token", "--role", "admin"}},
		{"token platform admin with tenant", secret, []string{"token", "--role", "platform_admin", "--tenant", id}},
		{"token unknown scope", secret, []string{"token", "--role", "admin", "--tenant", id, "--scope", "bookings:read everything"}},
		{"token bad ttl", secret, []string{"token", "--role", "admin", "--tenant", id, "--ttl", "-1h"}},
		{"token without secret", nil, []string{"token", "--role", "admin", "--tenant", id}},
		{"token short secret", map[string]string{"JWT_SECRET": "short"}, []string{"token", "--role", "admin", "--tenant", id}},
		{"replay unknown projection", db, []string{"replay", "--projection", "no-such-projection"}},
		{"replay bad tenant", db, []string{"replay", "--tenant", "x"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := run(t, c.env, c.args...)
			require.Equal(t, 2, r.code, "stderr: %q", r.stderr)
			require.Equal(t, 1, strings.Count(r.stderr, "\n"), "one line on stderr: %q", r.stderr)
			require.True(t, strings.HasPrefix(r.stderr, "bookingctl"), r.stderr)
			require.Empty(t, r.stdout)
		})
	}
}

func TestFailureExitsOneWithOneLine(t *testing.T) {
	t.Parallel()
	// Nothing listens on port 1.
	r := run(t, map[string]string{"DATABASE_URL": "postgres://nobody@127.0.0.1:1/none?connect_timeout=2"}, "verify")
	require.Equal(t, 1, r.code)
	require.Equal(t, 1, strings.Count(r.stderr, "\n"), r.stderr)
	require.Contains(t, r.stderr, "bookingctl verify: ")
}

func TestUnmigratedDatabaseSaysToMigrate(t *testing.T) {
	t.Parallel()
	env := map[string]string{"DATABASE_URL": testenv.NewDatabase(t)}
	r := run(t, env, "history", "--tenant", uuid.NewString())
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "bookingctl migrate")
	require.Equal(t, 1, strings.Count(r.stderr, "\n"), r.stderr)
}

func TestMigrateTwiceIsANoOp(t *testing.T) {
	t.Parallel()
	url := testenv.NewDatabase(t)
	env := map[string]string{"DATABASE_URL": url}
	out := mustRun(t, env, "migrate")
	require.Contains(t, out, "applied eventstore/0001_event_store.sql")
	for _, s := range migrationSets() {
		require.Contains(t, out, "applied "+s.Name+"/", "set %s is applied", s.Name)
	}
	applied := countMigrations(t, url)

	out = mustRun(t, env, "migrate")
	require.Equal(t, "database is up to date: nothing to apply\n", out)
	require.Equal(t, applied, countMigrations(t, url))

	// Two at once: the advisory lock serialises them, both succeed.
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range codes {
		wg.Go(func() { codes[i] = run(t, env, "migrate").code })
	}
	wg.Wait()
	require.Equal(t, []int{0, 0}, codes)
	require.Equal(t, applied, countMigrations(t, url))

	// The flag overrides the environment.
	out = mustRun(t, nil, "migrate", "--database-url", url)
	require.Contains(t, out, "nothing to apply")
}

func countMigrations(t *testing.T, url string) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var n int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n))
	return n
}

func TestTokenVerifies(t *testing.T) {
	t.Parallel()
	verifier, err := bhttp.NewVerifier(bhttp.AuthConfig{Secret: testSecret})
	require.NoError(t, err)
	env := map[string]string{"JWT_SECRET": testSecret}
	tenant := uuid.New()

	out := mustRun(t, env, "token", "--role", "admin", "--tenant", tenant.String(), "--sub", "ana")
	require.Equal(t, 1, strings.Count(out, "\n"), "the token alone on one line")
	p, err := verifier.Verify(strings.TrimSpace(out))
	require.NoError(t, err)
	require.Equal(t, "ana", p.UserID)
	require.Equal(t, tenant, p.TenantID)
	require.Equal(t, bhttp.RoleAdmin, p.Role)
	for _, s := range bhttp.AllScopes() {
		require.True(t, p.HasScope(s), "default scopes are all: %s", s)
	}

	out = mustRun(t, env, "token", "--role", "platform_admin", "--scope", "tenants:read reports:read")
	p, err = verifier.Verify(strings.TrimSpace(out))
	require.NoError(t, err)
	require.True(t, p.IsPlatformAdmin())
	require.Equal(t, uuid.Nil, p.TenantID)
	require.True(t, p.HasScope(bhttp.ScopeTenantsRead))
	require.True(t, p.HasScope(bhttp.ScopeReportsRead))
	require.False(t, p.HasScope(bhttp.ScopeBookingsWrite))

	// Another secret does not verify it.
	other, err := bhttp.NewVerifier(bhttp.AuthConfig{Secret: testSecret + "-other"})
	require.NoError(t, err)
	_, err = other.Verify(strings.TrimSpace(out))
	require.Error(t, err)

	// --ttl bounds the lifetime: a token minted two hours ago with one hour
	// to live is refused.
	var buf strings.Builder
	m := &Main{Stdout: &buf, Stderr: &buf, Getenv: func(k string) string { return env[k] },
		Now: func() time.Time { return time.Now().Add(-2 * time.Hour) }}
	require.Equal(t, 0, m.Run(context.Background(), []string{"token", "--role", "client", "--tenant", tenant.String(), "--ttl", "1h"}))
	_, err = verifier.Verify(strings.TrimSpace(buf.String()))
	require.Error(t, err)

	// The flag mirrors the environment.
	out = mustRun(t, nil, "token", "--jwt-secret", testSecret, "--role", "manager", "--tenant", tenant.String())
	_, err = verifier.Verify(strings.TrimSpace(out))
	require.NoError(t, err)
}
