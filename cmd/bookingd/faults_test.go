package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/internal/testenv"
)

// The fault suite: bookingd under load while a process is killed, the
// database or Redis goes away, or the relay's leader dies. Each test ends
// with `bookingctl audit` (no instant above capacity, buckets and read
// model agreeing with the bookings) and a count of what the store holds
// against what the clients were told.

// waitCompleted waits until the load has completed n more commands, so a
// fault strikes a system under load.
func waitCompleted(t *testing.T, l *faultLoad, n int, within time.Duration) {
	t.Helper()
	target := l.Completed() + n
	deadline := time.Now().Add(within)
	for l.Completed() < target {
		if time.Now().After(deadline) {
			t.Fatalf("the load completed %d commands, want %d within %s", l.Completed(), target, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func mustConnect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// TestFaultPostgresDown stops a PostgreSQL server of the test's own under
// load and starts it again: while it is down every command is answered
// 503 service_unavailable as problem+json (never a 500), and once it is
// back every command the clients retried with its Idempotency-Key has
// happened exactly once, the read side and the relay have caught up, and
// the audit finds nothing.
func TestFaultPostgresDown(t *testing.T) {
	if runChildIfAsked() {
		return
	}
	const test = "TestFaultPostgresDown"
	pg := startThrowawayPG(t)
	secret := newSecret(t)
	proc := startFaultProc(t, test, "bookingd", "DATABASE_URL="+pg.URL, "JWT_SECRET="+secret)
	hc := newHTTPClient(t)
	f := mustFixture(t, hc, proc.Base, secret)
	load := newFaultLoad(t, f, 8, func(int) string { return proc.Base })
	load.Start(t)
	waitCompleted(t, load, 40, 30*time.Second)

	stopping := time.Now()
	pg.Stop(t, "fast")
	downAt := time.Now()
	t.Logf("PostgreSQL stopped under load in %s", downAt.Sub(stopping).Round(time.Millisecond))
	time.Sleep(3 * time.Second)
	upAt := time.Now()
	pg.Start(t)
	t.Logf("PostgreSQL started again after %s down", upAt.Sub(downAt).Round(time.Millisecond))
	// The commands in flight when the server went away hold claims on
	// their keys that their 5xx could not abandon (the database was
	// gone): retries are answered 409 idempotency_in_progress until the
	// one-minute lease ends. The test ages those claims instead of
	// waiting out the minute.
	conn := mustConnect(t, pg.URL)
	aged, err := conn.Exec(t.Context(), `UPDATE idempotency_keys SET claimed_at = claimed_at - interval '2 minutes'
		WHERE completed_at IS NULL AND claimed_at < $1`, upAt)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d claims left behind by the outage aged past their lease", aged.RowsAffected())
	waitCompleted(t, load, 40, 60*time.Second)
	load.Stop()
	ops := load.Ops()

	inside := func(a faultAttempt) bool { return a.sent.After(downAt) && a.at.Before(upAt) }
	straddling := func(a faultAttempt) bool {
		return !inside(a) && a.at.After(stopping) && a.sent.Before(upAt.Add(time.Second))
	}
	t.Logf("answers sent and received while PostgreSQL was down: %v", statusCounts(ops, inside))
	t.Logf("answers to requests that straddled the stop or the start: %v", statusCounts(ops, straddling))
	t.Logf("all answers: %v", statusCounts(ops, nil))
	logInternalErrors(t, proc)
	if statusCounts(ops, inside)["503 service_unavailable"] == 0 {
		t.Errorf("no command was answered 503 while PostgreSQL was down")
	}
	for _, op := range ops {
		for _, a := range op.attempts {
			switch {
			case a.status == -1:
				t.Errorf("%s %s: a transport error; bookingd must answer while its database is down", op.kind, op.key)
			case inside(a) && (a.status != http.StatusServiceUnavailable || !a.problem || a.code != "service_unavailable"):
				t.Errorf("%s %s: answered %d %q (problem+json %t) while PostgreSQL was down, want 503 service_unavailable", op.kind, op.key, a.status, a.code, a.problem)
			case a.status >= 500 && !a.problem:
				t.Errorf("%s %s: a %d that is not problem+json", op.kind, op.key, a.status)
			}
		}
	}
	for _, op := range replayDefects(ops) {
		t.Errorf("cancel %s of booking %s committed as PostgreSQL went away; its retry was answered 409 invalid_transition instead of the first answer (200)", op.key, op.booking)
	}
	readYourLastWrite(t, f, proc.Base, ops)
	checkExactlyOnce(t, conn, f.TenantID, ops)
	mustAudit(t, pg.URL, "--tenant", f.TenantID.String())
}

// logInternalErrors logs, once each, the errors behind the 500 answers
// the process logged.
func logInternalErrors(t *testing.T, p *faultProc) {
	t.Helper()
	seen := map[string]int{}
	for l := range strings.Lines(p.Log()) {
		var rec struct {
			Msg    string `json:"msg"`
			Status int    `json:"status"`
			Error  string `json:"error"`
		}
		if json.Unmarshal([]byte(l), &rec) == nil && rec.Msg == "request failed" && rec.Status == http.StatusInternalServerError {
			seen[rec.Error]++
		}
	}
	for e, n := range seen {
		t.Logf("%s: %d answers 500 internal: %s", p.name, n, e)
	}
}

// TestFaultKillBookingd kills a bookingd process with SIGKILL while it
// serves a load, then lets the clients retry what was in flight, with the
// same Idempotency-Key, against a second process on the same database.
// Right after the kill the store holds every in-flight command either
// whole (the booking or cancellation with all its bucket events) or not
// at all; in the end each command happened exactly once and the answer
// to the retry names the same booking as the store.
func TestFaultKillBookingd(t *testing.T) {
	if runChildIfAsked() {
		return
	}
	const test = "TestFaultKillBookingd"
	dbURL := testenv.NewDatabase(t)
	secret := newSecret(t)
	victim := startFaultProc(t, test, "bookingd-victim", "DATABASE_URL="+dbURL, "JWT_SECRET="+secret)
	survivor := startFaultProc(t, test, "bookingd-survivor", "DATABASE_URL="+dbURL, "JWT_SECRET="+secret)
	hc := newHTTPClient(t)
	f := mustFixture(t, hc, victim.Base, secret)
	var killed atomic.Bool
	load := newFaultLoad(t, f, 16, func(int) string {
		if killed.Load() {
			return survivor.Base
		}
		return victim.Base
	})
	load.Start(t)
	waitCompleted(t, load, 60, 30*time.Second)

	// No new attempt starts from here until the retries are let go, so
	// the commands in flight at the kill are exactly those that fail.
	load.Pause()
	inFlight := load.inFlight.Load()
	victim.Kill9(t)
	killed.Store(true)
	t.Logf("bookingd-victim killed with SIGKILL, %d requests in flight", inFlight)
	deadline := time.Now().Add(30 * time.Second)
	for load.inFlight.Load() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests to the dead process still in flight after 30 s", load.inFlight.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	var pending []*faultOp
	for _, op := range load.Ops() {
		if !op.isDone(load) && op.lastStatus(load) == -1 {
			pending = append(pending, op)
		}
	}
	if len(pending) == 0 {
		t.Fatal("no command was in flight when the process died")
	}
	// Nothing half done: the audit checks every booking against its
	// buckets, and each unanswered command is stored whole or not at all.
	mustAudit(t, dbURL, "--skip-read-model", "--tenant", f.TenantID.String())
	conn := mustConnect(t, dbURL)
	happened := map[string]bool{}
	keys := make([]string, 0, len(pending))
	for _, op := range pending {
		keys = append(keys, op.key)
		var n int
		if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM booking_events WHERE metadata->>'idempotency_key' = $1`, op.key).Scan(&n); err != nil {
			t.Fatal(err)
		}
		happened[op.key] = n > 0
	}
	committed := 0
	for _, h := range happened {
		if h {
			committed++
		}
	}
	t.Logf("after the kill: %d unanswered commands, %d of them committed whole, %d not at all", len(pending), committed, len(pending)-committed)
	// The dead process's claims on those keys would hold retries off
	// (409 idempotency_in_progress) for the one-minute lease: age them.
	aged, err := conn.Exec(t.Context(), `UPDATE idempotency_keys SET claimed_at = claimed_at - interval '2 minutes'
		WHERE completed_at IS NULL AND key = ANY($1)`, keys)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d claims of the dead process aged past their lease", aged.RowsAffected())
	load.Resume()
	waitCompleted(t, load, 60, 60*time.Second)
	load.Stop()
	ops := load.Ops()
	t.Logf("answers: %v", statusCounts(ops, nil))

	for _, op := range pending {
		last := op.attempts[len(op.attempts)-1]
		if last.base != survivor.Base || last.status/100 != 2 {
			t.Errorf("%s %s: last answer %d from %s, want 2xx from the survivor", op.kind, op.key, last.status, last.base)
		}
	}
	// A cancel whose first attempt committed but whose answer was lost
	// is answered on retry as the first attempt would have been (200),
	// as the contract promises for a retried Idempotency-Key, never
	// refused as a second cancellation.
	for _, op := range replayDefects(ops) {
		t.Errorf("cancel %s of booking %s committed before the kill; its retry was answered 409 invalid_transition instead of the first answer (200)", op.key, op.booking)
	}
	for _, op := range ops {
		for _, a := range op.attempts {
			if a.status >= 500 {
				t.Errorf("%s %s: answered %d %s", op.kind, op.key, a.status, a.code)
			}
		}
	}
	readYourLastWrite(t, f, survivor.Base, ops)
	checkExactlyOnce(t, conn, f.TenantID, ops)
	mustAudit(t, dbURL, "--tenant", f.TenantID.String())
}

// TestFaultRedisDown cuts bookingd off from Redis (a Redis server of the
// test's own behind a TCP proxy that drops every connection) under load,
// then lets it reconnect: commands keep succeeding throughout, since they
// touch only PostgreSQL, and the relay publishes everything it could not
// while Redis was away, in stream order.
func TestFaultRedisDown(t *testing.T) {
	if runChildIfAsked() {
		return
	}
	const test = "TestFaultRedisDown"
	dbURL := testenv.NewDatabase(t)
	redisAddr := startRedis(t)
	proxy := startProxy(t, redisAddr)
	secret := newSecret(t)
	proc := startFaultProc(t, test, "bookingd", "DATABASE_URL="+dbURL, "JWT_SECRET="+secret, "REDIS_URL=redis://"+proxy.Addr()+"/0")
	proc.waitLog(t, "relay: holding the publisher lock; publishing", 30*time.Second)
	hc := newHTTPClient(t)
	f := mustFixture(t, hc, proc.Base, secret)
	load := newFaultLoad(t, f, 8, func(int) string { return proc.Base })
	load.Start(t)
	waitCompleted(t, load, 40, 30*time.Second)

	proxy.Cut()
	cutAt := time.Now()
	t.Log("Redis cut off")
	waitCompleted(t, load, 40, 30*time.Second) // commands go on without Redis
	time.Sleep(time.Until(cutAt.Add(3 * time.Second)))
	during := load.Completed()
	// Redis stays away until the relay's circuit breaker opened: its
	// retries then fail at once.
	waitMetric(t, hc, proc.Base, `booking_publisher_circuit_state{publisher="relay"} 2`, 30*time.Second)
	require.NotContains(t, scrapeMetrics(t, hc, proc.Base), `booking_publisher_circuit_opened_total{publisher="relay"} 0`)
	proxy.Restore()
	t.Logf("Redis back after %s", time.Since(cutAt).Round(time.Millisecond))
	waitCompleted(t, load, 40, 30*time.Second)
	load.Stop()
	ops := load.Ops()
	t.Logf("answers: %v (%d commands completed by the end of the outage)", statusCounts(ops, nil), during)
	for _, op := range ops {
		for _, a := range op.attempts {
			if a.status/100 != 2 {
				t.Errorf("%s %s: answered %d %s; commands must not depend on Redis", op.kind, op.key, a.status, a.code)
			}
		}
	}
	if !strings.Contains(proc.Log(), `"msg":"relay: publish to booking.events failed; retrying"`) {
		t.Errorf("the relay never failed to publish: the cut did not reach it")
	}
	if !strings.Contains(proc.Log(), `"msg":"publisher circuit opened`) {
		t.Errorf("the relay's circuit breaker never opened")
	}
	waitMetric(t, hc, proc.Base, `booking_publisher_circuit_state{publisher="relay"} 0`, 30*time.Second)
	conn := mustConnect(t, dbURL)
	checkExactlyOnce(t, conn, f.TenantID, ops)
	checkRedisHasEverything(t, conn, redisAddr, 60*time.Second)
	mustAudit(t, dbURL, "--tenant", f.TenantID.String())
}

// TestFaultRelayTakeover kills (SIGKILL) the bookingd process whose relay
// holds the publisher lock while another process serves the load: the
// other's relay takes the lock over and publishes everything, the events
// the dead relay published but had not checkpointed at most twice, and
// every stream in order.
func TestFaultRelayTakeover(t *testing.T) {
	if runChildIfAsked() {
		return
	}
	const test = "TestFaultRelayTakeover"
	dbURL := testenv.NewDatabase(t)
	redisAddr := startRedis(t)
	secret := newSecret(t)
	env := []string{"DATABASE_URL=" + dbURL, "JWT_SECRET=" + secret, "REDIS_URL=redis://" + redisAddr + "/0"}
	leader := startFaultProc(t, test, "bookingd-leader", env...)
	leader.waitLog(t, "relay: holding the publisher lock; publishing", 30*time.Second)
	standby := startFaultProc(t, test, "bookingd-standby", env...)
	standby.waitLog(t, "relay: another relay holds the publisher lock; standing by", 30*time.Second)
	hc := newHTTPClient(t)
	f := mustFixture(t, hc, standby.Base, secret)
	load := newFaultLoad(t, f, 8, func(int) string { return standby.Base })
	load.Start(t)
	waitCompleted(t, load, 60, 30*time.Second)

	leader.Kill9(t)
	killedAt := time.Now()
	standby.waitLog(t, "relay: holding the publisher lock; publishing", 30*time.Second)
	t.Logf("the standby took the publisher lock over %s after the kill", time.Since(killedAt).Round(time.Millisecond))
	waitCompleted(t, load, 60, 30*time.Second)
	load.Stop()
	ops := load.Ops()
	t.Logf("answers: %v", statusCounts(ops, nil))
	for _, op := range ops {
		for _, a := range op.attempts {
			if a.status/100 != 2 {
				t.Errorf("%s %s: answered %d %s", op.kind, op.key, a.status, a.code)
			}
		}
	}
	conn := mustConnect(t, dbURL)
	checkExactlyOnce(t, conn, f.TenantID, ops)
	checkRedisHasEverything(t, conn, redisAddr, 60*time.Second)
	mustAudit(t, dbURL, "--tenant", f.TenantID.String())
}

// scrapeMetrics returns the text of base's /metrics.
func scrapeMetrics(t *testing.T, hc *http.Client, base string) string {
	t.Helper()
	res, err := hc.Get(base + "/metrics")
	require.NoError(t, err)
	defer func() { _ = res.Body.Close() }()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", body)
	return string(body)
}

// waitMetric waits until base's /metrics contains line.
func waitMetric(t *testing.T, hc *http.Client, base, line string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(scrapeMetrics(t, hc, base), line+"\n") {
		if time.Now().After(deadline) {
			t.Fatalf("/metrics never showed %s within %s", line, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
