// Package testenv gives integration tests their own PostgreSQL database and
// Redis key space on the servers the test command provides.
//
// The servers come from TEST_DATABASE_URL and TEST_REDIS_URL, else from the
// local ports (PostgreSQL on 127.0.0.1:5432 as user postgres or root, Redis
// on 127.0.0.1:6379; TEST_PG_PORT and TEST_REDIS_PORT change the ports, as
// they do for ./scripts/test, which always exports the URLs it chose).
// Tests never skip when a server is missing: they fail with a message that
// says how to provide one, so a green run always means the integration
// tests ran.
package testenv

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

var (
	adminOnce sync.Once
	adminURL  string
	adminErr  error
)

// PostgresAdminURL returns a URL of the test PostgreSQL server with rights
// to create databases. It fails tb when no server answers. The server is
// looked up once per test binary; safe for concurrent use.
func PostgresAdminURL(tb testing.TB) string {
	tb.Helper()
	adminOnce.Do(func() { adminURL, adminErr = findPostgres() })
	if adminErr != nil {
		tb.Fatalf("testenv: no PostgreSQL for integration tests: %v\n"+
			"Run the suite with ./scripts/test (it starts a throwaway server from initdb/pg_ctl), "+
			"set TEST_DATABASE_URL, or install PostgreSQL (apt-get install postgresql).", adminErr)
	}
	return adminURL
}

func findPostgres() (string, error) {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u, ping(u)
	}
	port := envOr("TEST_PG_PORT", "5432")
	var errs []error
	for _, user := range []string{"postgres", "root"} {
		u := fmt.Sprintf("postgres://%s@127.0.0.1:%s/postgres?sslmode=disable", user, port)
		err := ping(u)
		if err == nil {
			return u, nil
		}
		errs = append(errs, err)
	}
	return "", fmt.Errorf("TEST_DATABASE_URL unset and 127.0.0.1:%s refused: %v", port, errs)
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

func ping(u string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return conn.Ping(ctx)
}

// NewDatabase creates an empty database for this test, drops it (closing
// any connection still open) when the test ends, and returns its URL. It
// fails tb when no server answers; safe for concurrent use, each call gets
// a database of its own.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	admin := PostgresAdminURL(tb)
	name := "t_" + randomHex(8)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		tb.Fatalf("testenv: connect %s: %v", redact(admin), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("testenv: create database %s: %v", name, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			tb.Logf("testenv: drop database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Logf("testenv: drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		tb.Fatalf("testenv: parse %s: %v", redact(admin), err)
	}
	u.Path = "/" + name
	return u.String()
}

var (
	redisOnce sync.Once
	redisURL  string
	redisErr  error
)

// RedisURL returns the URL of the test Redis server, failing tb when none
// answers PING. Tests share the server: name keys and streams with
// KeyPrefix. Safe for concurrent use.
func RedisURL(tb testing.TB) string {
	tb.Helper()
	redisOnce.Do(func() {
		redisURL = os.Getenv("TEST_REDIS_URL")
		if redisURL == "" {
			redisURL = "redis://127.0.0.1:" + envOr("TEST_REDIS_PORT", "6379") + "/0"
		}
		u, err := url.Parse(redisURL)
		if err != nil {
			redisErr = err
			return
		}
		redisErr = redisAnswers(u.Host)
	})
	if redisErr != nil {
		tb.Fatalf("testenv: no Redis for integration tests at %s: %v\n"+
			"Run the suite with ./scripts/test (it starts a throwaway redis-server), "+
			"set TEST_REDIS_URL, or install Redis (apt-get install redis-server).", redisURL, redisErr)
	}
	return redisURL
}

// redisAnswers sends PING and accepts any RESP reply: a server that wants a
// password answers -NOAUTH, and the client will authenticate from the URL.
func redisAnswers(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(3 * time.Second)); err != nil {
		return err
	}
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return fmt.Errorf("ping %s: %w", addr, err)
	}
	reply, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("ping %s: %w", addr, err)
	}
	if !strings.HasPrefix(reply, "+") && !strings.HasPrefix(reply, "-") {
		return fmt.Errorf("ping %s: %q is not a Redis reply", addr, reply)
	}
	return nil
}

// KeyPrefix returns a prefix unique to this call for Redis keys, streams
// and consumer groups, so tests can share one Redis server in parallel.
// It needs no server.
func KeyPrefix(tb testing.TB) string {
	tb.Helper()
	return "t" + randomHex(6) + ":"
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparseable URL)"
	}
	return p.Redacted()
}
