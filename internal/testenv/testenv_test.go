package testenv_test

import (
	"bufio"
	"context"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bookingengine/booking/internal/testenv"
)

func TestNewDatabaseIsPrivateAndDroppedAfterTheTest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var name string
	t.Run("use", func(t *testing.T) {
		dbURL := testenv.NewDatabase(t)
		conn, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		defer conn.Close(ctx)
		if err := conn.QueryRow(ctx, "select current_database()").Scan(&name); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(name, "t_") {
			t.Fatalf("database %q is not one of testenv's", name)
		}
		var tables int
		err = conn.QueryRow(ctx, "select count(*) from information_schema.tables where table_schema = 'public'").Scan(&tables)
		if err != nil {
			t.Fatal(err)
		}
		if tables != 0 {
			t.Fatalf("new database has %d tables, want 0", tables)
		}
		if _, err := conn.Exec(ctx, "create table t (id int primary key)"); err != nil {
			t.Fatal(err)
		}
		// A connection left open must not keep the database alive.
	})
	admin, err := pgx.Connect(ctx, testenv.PostgresAdminURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var exists bool
	if err := admin.QueryRow(ctx, "select exists (select 1 from pg_database where datname = $1)", name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Fatalf("database %s still exists after its test ended", name)
	}
}

func TestNewDatabaseGivesEachCallItsOwn(t *testing.T) {
	t.Parallel()
	a, b := testenv.NewDatabase(t), testenv.NewDatabase(t)
	if a == b {
		t.Fatalf("two calls returned the same database %s", a)
	}
}

func TestRedisAnswersWithinAPrefix(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(testenv.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	key := testenv.KeyPrefix(t) + "probe"
	c, err := net.DialTimeout("tcp", u.Host, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	send := func(cmd string) string {
		t.Helper()
		if _, err := c.Write([]byte(cmd)); err != nil {
			t.Fatal(err)
		}
		reply, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(reply)
	}
	if got := send("SET " + key + " 1 EX 60\r\n"); got != "+OK" {
		t.Fatalf("SET: %q", got)
	}
	if got := send("DEL " + key + "\r\n"); got != ":1" {
		t.Fatalf("DEL: %q", got)
	}
}

func TestKeyPrefixIsUnique(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 100 {
		p := testenv.KeyPrefix(t)
		if seen[p] {
			t.Fatalf("prefix %q returned twice", p)
		}
		seen[p] = true
	}
}
