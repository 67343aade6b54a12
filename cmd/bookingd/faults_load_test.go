package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/bookingengine/booking/domain"
	bhttp "github.com/bookingengine/booking/http"
	"github.com/bookingengine/booking/stream"
)

// faultLoad drives commands at bookingd while the fault tests break
// things: each worker owns a resource (so no command ever conflicts with
// another worker's) and creates two-hour bookings six hours apart (those
// at 23:00 UTC cross midnight, i.e. touch two schedule buckets),
// cancelling the last one every fourth command. Every command carries its own Idempotency-Key,
// and a worker retries a command with the same key and body until it is
// answered 2xx, never giving one up: after a transport error (the
// process died), a 5xx (the database is down) or a 409
// idempotency_in_progress (another process's claim on the key).
type faultLoad struct {
	f         loadFixture
	resources []uuid.UUID
	// target returns the API root a worker sends its next attempt to.
	target func(worker int) string
	// paused, while not nil, holds every attempt back until it is
	// closed (Pause, Resume).
	paused chan struct{}
	// giveUp bounds the retries of one command.
	giveUp time.Duration

	stop     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	ops      []*faultOp
	inFlight atomic.Int64
}

// faultOp is one command and every attempt at it.
type faultOp struct {
	worker   int
	key      string
	kind     string // "create" or "cancel"
	booking  uuid.UUID
	resource uuid.UUID
	start    time.Time
	end      time.Time
	attempts []faultAttempt
	done     bool
	// position is the X-Position of the successful answer.
	position int64
	// unreplayed is set when a cancel whose earlier attempt ended
	// without an outcome was answered 409 invalid_transition on retry:
	// its first attempt had committed, and the command side ran it again
	// against the cancelled booking instead of answering as the first
	// attempt would have. The contract forbids it: the fault tests fail
	// on any (see replayDefects).
	unreplayed bool
}

// faultAttempt is one try of a command: Status -1 is a transport error.
type faultAttempt struct {
	base     string
	sent, at time.Time
	status   int
	code     string
	problem  bool // Content-Type application/problem+json
	replayed bool
}

// newFaultLoad creates workers resources of capacity 1 through base.
func newFaultLoad(t *testing.T, f loadFixture, workers int, target func(int) string) *faultLoad {
	t.Helper()
	l := &faultLoad{f: f, target: target, stop: make(chan struct{}), giveUp: 90 * time.Second}
	for i := range workers {
		l.resources = append(l.resources, f.mustResource(t, fmt.Sprintf("fault room %d", i), 1))
	}
	return l
}

// Start starts the workers.
func (l *faultLoad) Start(t *testing.T) {
	for w := range l.resources {
		l.wg.Go(func() { l.work(t, w) })
	}
}

// Stop lets every worker finish its current command and waits for them.
func (l *faultLoad) Stop() {
	close(l.stop)
	l.wg.Wait()
}

// Ops returns every command so far.
func (l *faultLoad) Ops() []*faultOp {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*faultOp(nil), l.ops...)
}

// Completed returns how many commands were answered 2xx so far.
func (l *faultLoad) Completed() int {
	n := 0
	for _, op := range l.Ops() {
		l.mu.Lock()
		if op.done {
			n++
		}
		l.mu.Unlock()
	}
	return n
}

func (l *faultLoad) work(t *testing.T, w int) {
	day0 := dayStart(5)
	var created []*faultOp
	for i := 0; ; i++ {
		select {
		case <-l.stop:
			return
		default:
		}
		op := &faultOp{worker: w, key: fmt.Sprintf("fault-%d-%d-%s", w, i, uuid.NewString()[:8]), resource: l.resources[w]}
		if i%4 == 3 && len(created) > 0 {
			op.kind, op.booking = "cancel", created[len(created)-1].booking
			created = created[:len(created)-1]
		} else {
			op.kind = "create"
			op.start = day0.Add(time.Duration(6*i+23) * time.Hour)
			op.end = op.start.Add(2 * time.Hour)
		}
		l.mu.Lock()
		l.ops = append(l.ops, op)
		l.mu.Unlock()
		if !l.run(op) {
			t.Errorf("worker %d: %s %s not answered 2xx within %s: %s", w, op.kind, op.key, l.giveUp, op.describe())
			return
		}
		if op.kind == "create" {
			created = append(created, op)
		}
	}
}

// run tries op until it is answered 2xx or giveUp passes.
func (l *faultLoad) run(op *faultOp) bool {
	deadline := time.Now().Add(l.giveUp)
	var path string
	var body any
	if op.kind == "create" {
		path, body = "/bookings", l.f.bookingBody(op.resource, op.start, op.end)
	} else {
		path, body = "/bookings/"+op.booking.String()+"/cancel", map[string]any{"reason": "fault load"}
	}
	for time.Now().Before(deadline) {
		l.waitResume()
		base := l.target(op.worker)
		sent := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		l.inFlight.Add(1)
		res, err := l.f.as(base).do(ctx, http.MethodPost, path, body, map[string]string{bhttp.HeaderIdempotencyKey: op.key})
		cancel()
		a := faultAttempt{base: base, sent: sent, at: time.Now(), status: -1}
		if err == nil {
			a.status = res.Status
			a.problem = strings.HasPrefix(res.Header.Get("Content-Type"), bhttp.ProblemContentType)
			a.replayed = res.Header.Get(bhttp.HeaderIdempotentReplayed) == "true"
			if a.problem {
				var p apiProblem
				_ = json.Unmarshal(res.Body, &p)
				a.code = p.Code
			}
		}
		l.mu.Lock()
		op.attempts = append(op.attempts, a)
		l.mu.Unlock()
		l.inFlight.Add(-1) // after the attempt is recorded: a test that saw 0 sees the attempt
		if err == nil && op.kind == "cancel" && a.status == http.StatusConflict && a.code == bhttp.CodeInvalidTransition && op.outcomeLostBefore() {
			l.mu.Lock()
			op.done, op.unreplayed = true, true
			l.mu.Unlock()
			return true
		}
		if err == nil && res.Status/100 == 2 {
			var b struct {
				ID uuid.UUID `json:"id"`
			}
			if json.Unmarshal(res.Body, &b) == nil && op.kind == "create" {
				op.booking = b.ID
			}
			_, _ = fmt.Sscan(res.Header.Get("X-Position"), &op.position)
			l.mu.Lock()
			op.done = true
			l.mu.Unlock()
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// outcomeLostBefore reports whether an earlier attempt of op ended
// without telling whether it happened: a transport error (the process
// died) or a 5xx (the database went away around the commit). Called by
// op's worker only.
func (op *faultOp) outcomeLostBefore() bool {
	for _, a := range op.attempts[:len(op.attempts)-1] {
		if a.status == -1 || a.status >= 500 {
			return true
		}
	}
	return false
}

// replayDefects returns the commands whose retry was not replayed (see
// faultOp.unreplayed).
func replayDefects(ops []*faultOp) []*faultOp {
	var out []*faultOp
	for _, op := range ops {
		if op.unreplayed {
			out = append(out, op)
		}
	}
	return out
}

// isDone reports whether op was answered 2xx.
func (op *faultOp) isDone(l *faultLoad) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return op.done
}

// lastStatus returns the status of op's last attempt, 0 before the first.
func (op *faultOp) lastStatus(l *faultLoad) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(op.attempts) == 0 {
		return 0
	}
	return op.attempts[len(op.attempts)-1].status
}

// Pause holds every attempt not yet sent back until Resume; attempts in
// flight go on.
func (l *faultLoad) Pause() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.paused == nil {
		l.paused = make(chan struct{})
	}
}

// Resume lets the attempts held back by Pause go.
func (l *faultLoad) Resume() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.paused != nil {
		close(l.paused)
		l.paused = nil
	}
}

func (l *faultLoad) waitResume() {
	l.mu.Lock()
	p := l.paused
	l.mu.Unlock()
	if p != nil {
		<-p
	}
}

func (op *faultOp) describe() string {
	var parts []string
	for _, a := range op.attempts {
		s := fmt.Sprint(a.status)
		if a.code != "" {
			s += " " + a.code
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

// statusCounts counts the attempts by status (and problem code), e.g.
// "503 service_unavailable": 12.
func statusCounts(ops []*faultOp, keep func(faultAttempt) bool) map[string]int {
	out := map[string]int{}
	for _, op := range ops {
		for _, a := range op.attempts {
			if keep != nil && !keep(a) {
				continue
			}
			k := fmt.Sprint(a.status)
			if a.status == -1 {
				k = "transport error"
			}
			if a.code != "" {
				k += " " + a.code
			}
			out[k]++
		}
	}
	return out
}

// checkExactlyOnce fails t unless every command of ops happened exactly
// once in the store, as answered: one booking.created per create key
// (carrying the key in its metadata) with the booking id the client was
// given, one booking.cancelled per cancel key, nothing else in the tenant's
// booking streams, and schedule events that account for exactly those
// bookings and cancellations bucket by bucket.
func checkExactlyOnce(t *testing.T, conn *pgx.Conn, tenant uuid.UUID, ops []*faultOp) {
	t.Helper()
	ctx := t.Context()
	type stored struct {
		typ, key string
		id       uuid.UUID
	}
	rows, err := conn.Query(ctx, `SELECT type, COALESCE(metadata->>'idempotency_key', ''), (data->>'booking_id')::uuid
		FROM booking_events WHERE tenant_id = $1 AND category = 'booking'`, tenant.String())
	if err != nil {
		t.Fatal(err)
	}
	events, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (stored, error) {
		var s stored
		return s, r.Scan(&s.typ, &s.key, &s.id)
	})
	if err != nil {
		t.Fatal(err)
	}
	byKey := map[string][]stored{}
	for _, e := range events {
		byKey[e.key] = append(byKey[e.key], e)
	}
	wantReserved, wantReleased := 0, 0
	buckets := map[uuid.UUID]int{}
	creates, cancels := 0, 0
	for _, op := range ops {
		if !op.done {
			t.Errorf("%s %s never answered 2xx: %s", op.kind, op.key, op.describe())
			continue
		}
		got := byKey[op.key]
		want := domain.EventBookingCreated
		if op.kind == "cancel" {
			want = domain.EventBookingCancelled
			cancels++
		} else {
			creates++
			buckets[op.booking] = len(domain.ScheduleStreams(op.resource, op.start, op.end))
			wantReserved += buckets[op.booking]
		}
		if len(got) != 1 || got[0].typ != want || got[0].id != op.booking {
			t.Errorf("%s %s (booking %s, attempts %s): the store holds %+v, want exactly one %s", op.kind, op.key, op.booking, op.describe(), got, want)
		}
	}
	for _, op := range ops {
		if op.kind == "cancel" && op.done {
			wantReleased += buckets[op.booking]
		}
	}
	counts := map[string]int{}
	rows, err = conn.Query(ctx, `SELECT type, count(*) FROM booking_events WHERE tenant_id = $1 GROUP BY type`, tenant.String())
	if err != nil {
		t.Fatal(err)
	}
	var (
		typ string
		n   int
	)
	if _, err := pgx.ForEachRow(rows, []any{&typ, &n}, func() error { counts[typ] = n; return nil }); err != nil {
		t.Fatal(err)
	}
	for typ, want := range map[string]int{
		domain.EventBookingCreated:   creates,
		domain.EventBookingCancelled: cancels,
		domain.EventScheduleReserved: wantReserved,
		domain.EventScheduleReleased: wantReleased,
	} {
		if counts[typ] != want {
			t.Errorf("%d %s events in the store, want %d", counts[typ], typ, want)
		}
	}
	t.Logf("store: %d creates and %d cancels answered, each stored once; event counts %v", creates, cancels, counts)
}

// checkRedisHasEverything waits (up to within) until every event of a
// published category in the database is in the Redis streams at
// redisAddr, then fails t unless each stream's events first appear in
// stream order. Duplicates (published again after a relay's restart or a
// takeover) are allowed and counted.
func checkRedisHasEverything(t *testing.T, conn *pgx.Conn, redisAddr string, within time.Duration) {
	t.Helper()
	ctx := t.Context()
	type ev struct {
		stream  string
		version int64
	}
	rows, err := conn.Query(ctx, `SELECT event_id::text, stream_id, stream_version FROM booking_events WHERE category = ANY($1)`,
		[]string{"tenant", "resource", "user", "booking", "hold", "waitlist"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]ev{}
	var (
		id string
		e  ev
	)
	if _, err := pgx.ForEachRow(rows, []any{&id, &e.stream, &e.version}, func() error { want[id] = e; return nil }); err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(&redis.Options{Addr: redisAddr})
	defer rc.Close()
	deadline := time.Now().Add(within)
	for {
		seen := map[string]int{}
		var order []string // event ids in the order of each topic, topics one after the other
		for _, topic := range stream.CategoryTopics() {
			msgs, err := rc.XRange(ctx, topic, "-", "+").Result()
			if err != nil {
				t.Fatalf("XRANGE %s: %v", topic, err)
			}
			for _, m := range msgs {
				id, _ := m.Values["_watermill_message_uuid"].(string)
				if seen[id] == 0 {
					order = append(order, id)
				}
				seen[id]++
			}
		}
		missing := 0
		for id := range want {
			if seen[id] == 0 {
				missing++
			}
		}
		if missing == 0 {
			dups := 0
			for _, n := range seen {
				dups += n - 1
			}
			last := map[string]int64{}
			for _, id := range order {
				e, ok := want[id]
				if !ok {
					t.Errorf("Redis holds event %s, which the store does not", id)
					continue
				}
				if e.version <= last[e.stream] {
					t.Errorf("stream %s: version %d published before %d", e.stream, last[e.stream], e.version)
				}
				last[e.stream] = e.version
			}
			t.Logf("Redis: all %d published events present, %d duplicates", len(want), dups)
			return
		}
		if time.Now().After(deadline) {
			var some []string
			for id := range want {
				if seen[id] == 0 && len(some) < 5 {
					some = append(some, id+" ("+want[id].stream+")")
				}
			}
			sort.Strings(some)
			t.Fatalf("%d of %d published events are not in Redis %s after the relay had time to catch up, e.g. %s",
				missing, len(want), within, strings.Join(some, ", "))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// readYourLastWrite waits until base's read side has applied position
// (GET /bookings with X-Min-Position): the projectors caught up with
// everything the load wrote.
func readYourLastWrite(t *testing.T, f loadFixture, base string, ops []*faultOp) {
	t.Helper()
	var pos int64
	for _, op := range ops {
		pos = max(pos, op.position)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := f.as(base).do(t.Context(), http.MethodGet, "/bookings?limit=1", nil, map[string]string{"X-Min-Position": fmt.Sprint(pos)})
		if err == nil && res.Status == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			if err != nil {
				t.Fatalf("read side of %s at position %d: %v", base, pos, err)
			}
			t.Fatalf("read side of %s at position %d: %s", base, pos, describeResponse(res))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
