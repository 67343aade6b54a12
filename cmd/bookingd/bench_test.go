package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bookingengine/booking/commands"
	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/eventstore/postgres"
	"github.com/bookingengine/booking/eventstore/postgres/changefeed"
	bhttp "github.com/bookingengine/booking/http"
	"github.com/bookingengine/booking/http/pgidempotency"
	"github.com/bookingengine/booking/internal/testenv"
)

// Benchmark settings. BOOKING_BENCH_FULL=1 selects the sizes recorded in
// docs/PERFORMANCE.md; the defaults keep `go test -run x -bench .` to a few
// minutes.
const (
	envBenchFull = "BOOKING_BENCH_FULL"
	// envBenchConns sets the PostgreSQL pool size of bookingd and of the
	// baseline alike (default 8).
	envBenchConns = "BOOKING_BENCH_CONNS"

	benchResources   = 1000
	benchConcurrency = 32
	// benchPhase is how many requests one variant sends in a row.
	benchPhase = 500
	// benchDays is how far ahead the throughput benchmark books.
	benchDays = 180
)

// benchEnv is a bookingd API in this process on a database of its own,
// with a tenant open around the clock. The access log is formatted as in
// production but discarded.
type benchEnv struct {
	dbURL  string
	secret string
	conns  int
	// base is the API root, http://127.0.0.1:<port>.
	base string
	hc   *http.Client
	f    loadFixture
	// noReadSide is set once the API turned out to serve no queries.
	noReadSide bool
}

// newDatabaseEnv creates the database and reads the pool size.
func newDatabaseEnv(b *testing.B) *benchEnv {
	b.Helper()
	e := &benchEnv{dbURL: testenv.NewDatabase(b), secret: newSecret(b), conns: 8, hc: newUncheckedHTTPClient()}
	if v := os.Getenv(envBenchConns); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("%s=%q: want a positive integer", envBenchConns, v)
		}
		e.conns = n
	}
	return e
}

func discardLogger() *slog.Logger { return slog.New(slog.NewJSONHandler(io.Discard, nil)) }

// newCommandEnv serves the command side alone: bookingd's HTTP stack
// (authentication, tenant resolution, PostgreSQL idempotency keys, the
// command endpoints) over the command handlers and the PostgreSQL event
// store, wired as Main.Run wires them (the tenant cache and its change
// feed included), without the read side and the relay that Main runs
// beside them. It stops when b ends.
func newCommandEnv(b *testing.B) *benchEnv {
	b.Helper()
	e := newDatabaseEnv(b)
	ctx := context.Background()
	store, err := postgres.Open(ctx, e.dbURL, postgres.Config{
		MaxConns:   int32(e.conns),
		Migrations: []postgres.MigrationSet{pgidempotency.Migrations(), changefeed.Migrations()},
	})
	if err != nil {
		b.Fatal(err)
	}
	verifier, err := bhttp.NewVerifier(bhttp.AuthConfig{Secret: e.secret})
	if err != nil {
		b.Fatal(err)
	}
	feed, err := changefeed.New(changefeed.Config{ConnConfig: store.Pool().Config().ConnConfig, Logger: discardLogger()})
	if err != nil {
		b.Fatal(err)
	}
	cmd := commands.New(store, commands.WithCache(commands.CacheConfig{MaxAge: commands.DefaultCacheMaxAge, Invalidations: feed}))
	feedCtx, stopFeed := context.WithCancel(context.Background())
	feedDone := make(chan error, 1)
	go func() { feedDone <- feed.Run(feedCtx, cmd) }()
	srv, err := bhttp.NewServer(bhttp.ServerConfig{
		Verifier:    verifier,
		Tenants:     bhttp.Resolver{Cmd: cmd},
		Idempotency: pgidempotency.New(store.Pool(), bhttp.IdempotencyOptions{}),
		Logger:      discardLogger(),
	})
	if err != nil {
		b.Fatal(err)
	}
	bhttp.RegisterAPI(srv, cmd)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := hs.Shutdown(ctx); err != nil {
			b.Error(err)
		}
		<-served
		stopFeed()
		if err := <-feedDone; err != nil {
			b.Error(err)
		}
		store.Close()
	})
	e.base = "http://" + ln.Addr().String()
	e.f = mustFixture(b, e.hc, e.base, e.secret)
	return e
}

// newMainEnv runs bookingd as Main runs it by default: the API, the read
// side's projectors and the relay (to in-process consumers) in one
// process. It stops when b ends.
func newMainEnv(b *testing.B) *benchEnv {
	b.Helper()
	e := newDatabaseEnv(b)
	m := NewMain(Config{
		DatabaseURL: e.dbURL, HTTPAddr: "127.0.0.1:0", JWTSecret: e.secret, LogFormat: "json",
		ShutdownTimeout: 10 * time.Second, DatabaseMaxConns: e.conns,
	})
	m.Logger = discardLogger()
	if err := m.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := m.Close(); err != nil {
			b.Error(err)
		}
	})
	e.base = "http://" + m.Addr
	e.f = mustFixture(b, e.hc, e.base, e.secret)
	return e
}

// resources creates n resources of capacity 1, eight at a time.
func (e *benchEnv) resources(b *testing.B, n int) []uuid.UUID {
	b.Helper()
	ids := make([]uuid.UUID, n)
	errs := make([]error, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				res, err := e.f.Admin.do(context.Background(), http.MethodPost, "/resources",
					map[string]any{"name": fmt.Sprintf("room %d", i), "kind": "space", "capacity": 1}, nil)
				if err == nil && res.Status != http.StatusCreated {
					err = errors.New(describeResponse(res))
				}
				if err == nil {
					var r struct {
						ID uuid.UUID `json:"id"`
					}
					err = json.Unmarshal(res.Body, &r)
					ids[i] = r.ID
				}
				errs[i] = err
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		b.Fatal(err)
	}
	return ids
}

// benchSlot is one create-booking request of a benchmark.
type benchSlot struct {
	resource   uuid.UUID
	start, end time.Time
}

// slotGen draws the throughput benchmark's requests: a random resource, a
// random day of the next benchDays, a random quarter hour of that day and
// one hour, so a few requests collide and about one in 25 crosses UTC
// midnight (two schedule buckets). Two generators over resources in the
// same order draw the same sequence. Not safe for concurrent use.
type slotGen struct {
	rng       *rand.Rand
	resources []uuid.UUID
	today     time.Time
}

func newSlotGen(resources []uuid.UUID, today time.Time) *slotGen {
	return &slotGen{rng: rand.New(rand.NewPCG(20260101, 7)), resources: resources, today: today}
}

func (g *slotGen) draw(n int) []benchSlot {
	out := make([]benchSlot, n)
	for i := range out {
		r := g.resources[g.rng.IntN(len(g.resources))]
		start := g.today.AddDate(0, 0, 1+g.rng.IntN(benchDays)).Add(time.Duration(g.rng.IntN(96)) * 15 * time.Minute)
		out[i] = benchSlot{resource: r, start: start, end: start.Add(time.Hour)}
	}
	return out
}

// Outcomes of one request.
const (
	outcomeCreated = iota
	outcomeConflicted
)

// loadResult is what one or more runs of a load produced.
type loadResult struct {
	created, conflicts int
	elapsed            time.Duration
	latencies          []time.Duration
	cpu                testenv.CPUUsage
}

func (r loadResult) throughput() float64 { return float64(r.created) / r.elapsed.Seconds() }

func (r *loadResult) add(o loadResult) {
	r.created += o.created
	r.conflicts += o.conflicts
	r.elapsed += o.elapsed
	r.latencies = append(r.latencies, o.latencies...)
	r.cpu.Self += o.cpu.Self
	r.cpu.Postgres += o.cpu.Postgres
}

// percentile returns the p-th percentile (0 < p ≤ 100) of ds, nearest rank.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// runLoad sends the n requests with workers concurrent senders, timing the
// run and each request. send returns outcomeCreated or outcomeConflicted;
// any error stops the run and is returned.
func runLoad(n, workers int, send func(i int) (int, error)) (loadResult, error) {
	lat := make([]time.Duration, n)
	kinds := make([]int, n)
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	begin := time.Now()
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				t0 := time.Now()
				k, err := send(i)
				lat[i] = time.Since(t0)
				if err != nil {
					once.Do(func() { firstErr = err })
					next.Store(int64(n))
					return
				}
				kinds[i] = k
			}
		})
	}
	wg.Wait()
	r := loadResult{elapsed: time.Since(begin), latencies: lat}
	for _, k := range kinds {
		if k == outcomeCreated {
			r.created++
		} else {
			r.conflicts++
		}
	}
	return r, firstErr
}

// variant is one contender of the throughput benchmark.
type variant struct {
	name  string
	gen   *slotGen
	meter testenv.CPUMeter
	// prepare builds the requests of a phase before the clock starts.
	prepare func(slots []benchSlot) (func(i int) (int, error), error)
	// settle, if set, runs after each phase, timed with it: the
	// all-in-one process waits there until its read side has caught up.
	settle func() error
	total  loadResult
	// cpuMissed is set when a phase could not be metered.
	cpuMissed bool
}

// phase sends n requests of v at benchConcurrency and adds them to its
// total.
func (v *variant) phase(n int) error {
	send, err := v.prepare(v.gen.draw(n))
	if err != nil {
		return err
	}
	var r loadResult
	r.cpu = v.meter.Measure(func() {
		begin := time.Now()
		r, err = runLoad(n, benchConcurrency, send)
		if err == nil && v.settle != nil {
			err = v.settle()
		}
		r.elapsed = time.Since(begin)
	})
	if err != nil {
		return fmt.Errorf("%s: %w", v.name, err)
	}
	v.total.add(r)
	v.cpuMissed = v.cpuMissed || !r.cpu.OK
	return nil
}

// BenchmarkCreateBooking measures create-booking throughput at
// concurrency 32 over 1,000 resources of capacity 1. Contenders, each on
// the same PostgreSQL with the same pool size and the same sequence of
// requests:
//
//   - base: the raw baseline, each request a single INSERT into a table
//     with an exclusion constraint (an exclusion violation is a collision);
//   - api: the command side alone (newCommandEnv) through HTTP, on the
//     baseline's database;
//   - aio: bookingd as Main runs it by default, with the read side's
//     projectors and the relay, on a database of its own; each of its
//     phases ends when its read side has caught up (a query with
//     X-Min-Position), so that its figure is a sustained one.
//
// One op is a round in which each contender in turn (the order rotates)
// sends a phase of benchPhase requests, so that all see the same
// background load. Per contender it reports created/s (201s, or inserted
// rows, over the contender's time), the collision rate, p50 and p99
// latency, and, where /proc allows, the CPU one request cost in this
// process (the load generator, plus bookingd for the API) and in
// PostgreSQL, which other load on the machine distorts far less than
// throughput; and ratio = created/s over the baseline's.
func BenchmarkCreateBooking(b *testing.B) {
	today := dayStart(0)
	aio := newMainEnv(b)
	aioResources := aio.resources(b, benchResources)
	aioPool, err := pgxpool.New(context.Background(), aio.dbURL)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(aioPool.Close)

	api := newCommandEnv(b)
	resources := api.resources(b, benchResources)
	pc, err := pgxpool.ParseConfig(api.dbURL)
	if err != nil {
		b.Fatal(err)
	}
	pc.MaxConns = int32(api.conns)
	pool, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	if _, err := pool.Exec(context.Background(), `
		CREATE EXTENSION IF NOT EXISTS btree_gist;
		CREATE TABLE bench_bookings (
			id          uuid NOT NULL,
			resource_id uuid NOT NULL,
			during      tstzrange NOT NULL,
			EXCLUDE USING gist (resource_id WITH =, during WITH &&)
		)`); err != nil {
		b.Fatal(err)
	}

	var aioPosition atomic.Int64
	variants := []*variant{
		{name: "base", gen: newSlotGen(resources, today), meter: testenv.CPUMeter{Pool: pool},
			prepare: func(slots []benchSlot) (func(int) (int, error), error) { return sendInsert(pool, slots), nil }},
		{name: "api", gen: newSlotGen(resources, today), meter: testenv.CPUMeter{Pool: pool},
			prepare: func(slots []benchSlot) (func(int) (int, error), error) { return api.sendCreate(slots, nil) }},
		{name: "aio", gen: newSlotGen(aioResources, today), meter: testenv.CPUMeter{Pool: aioPool},
			prepare: func(slots []benchSlot) (func(int) (int, error), error) { return aio.sendCreate(slots, &aioPosition) },
			settle:  func() error { return aio.awaitReadSide(aioPosition.Load()) }},
	}
	b.ResetTimer()
	for round := range b.N {
		for k := range variants {
			if err := variants[(round+k)%len(variants)].phase(benchPhase); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()

	base := variants[0].total.throughput()
	for _, v := range variants {
		t := v.total
		b.ReportMetric(t.throughput(), v.name+"-created/s")
		b.ReportMetric(millis(percentile(t.latencies, 50)), v.name+"-p50-ms")
		b.ReportMetric(millis(percentile(t.latencies, 99)), v.name+"-p99-ms")
		n := float64(t.created + t.conflicts)
		if !v.cpuMissed {
			b.ReportMetric(float64(t.cpu.Self.Microseconds())/n, v.name+"-go-cpu-us/req")
			b.ReportMetric(float64(t.cpu.Postgres.Microseconds())/n, v.name+"-pg-cpu-us/req")
		}
		if v != variants[0] {
			b.ReportMetric(t.throughput()/base, v.name+"-ratio")
		}
		b.Logf("%s: %d requests, %d created, %d collisions (%.2f%%)", v.name, t.created+t.conflicts, t.created, t.conflicts, 100*float64(t.conflicts)/n)
	}
}

// sendInsert returns the baseline's request: one INSERT of slots[i], an
// exclusion violation counting as a collision.
func sendInsert(pool *pgxpool.Pool, slots []benchSlot) func(i int) (int, error) {
	const q = `INSERT INTO bench_bookings (id, resource_id, during) VALUES ($1, $2, tstzrange($3, $4, '[)'))`
	return func(i int) (int, error) {
		s := slots[i]
		_, err := pool.Exec(context.Background(), q, uuid.New(), s.resource, s.start, s.end)
		var pgErr *pgconn.PgError
		switch {
		case err == nil:
			return outcomeCreated, nil
		case errors.As(err, &pgErr) && pgErr.Code == "23P01":
			return outcomeConflicted, nil
		default:
			return 0, err
		}
	}
}

// sendCreate returns the API's request: POST /bookings of slots[i] as the
// tenant's admin, a 409 counting as a collision. The bodies are encoded
// before the clock starts. When position is not nil it keeps the highest
// X-Position answered.
func (e *benchEnv) sendCreate(slots []benchSlot, position *atomic.Int64) (func(i int) (int, error), error) {
	bodies := make([][]byte, len(slots))
	for i, s := range slots {
		body, err := json.Marshal(e.f.bookingBody(s.resource, s.start, s.end))
		if err != nil {
			return nil, err
		}
		bodies[i] = body
	}
	c := e.f.as(e.base)
	return func(i int) (int, error) {
		req, err := c.request(context.Background(), http.MethodPost, "/bookings", nil, nil)
		if err != nil {
			return 0, err
		}
		req.Body = io.NopCloser(bytes.NewReader(bodies[i]))
		req.ContentLength = int64(len(bodies[i]))
		req.Header.Set("Content-Type", "application/json")
		res, err := c.send(req)
		switch {
		case err != nil:
			return 0, err
		case res.Status == http.StatusCreated:
			if position != nil {
				p, _ := strconv.ParseInt(res.Header.Get("X-Position"), 10, 64)
				for old := position.Load(); p > old && !position.CompareAndSwap(old, p); old = position.Load() {
				}
			}
			return outcomeCreated, nil
		case res.Status == http.StatusConflict:
			return outcomeConflicted, nil
		default:
			return 0, fmt.Errorf("POST /bookings: %s", describeResponse(res))
		}
	}, nil
}

// awaitReadSide returns once the read side has applied position: GET
// /bookings with X-Min-Position, repeated while it answers 504. A build
// without that query (405 or 404) has nothing to wait for.
func (e *benchEnv) awaitReadSide(position int64) error {
	if position == 0 || e.noReadSide {
		return nil
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		res, err := e.f.as(e.base).do(context.Background(), http.MethodGet, "/bookings?limit=1", nil,
			map[string]string{"X-Min-Position": strconv.FormatInt(position, 10)})
		switch {
		case err != nil:
			return err
		case res.Status == http.StatusOK:
			return nil
		case res.Status == http.StatusMethodNotAllowed || res.Status == http.StatusNotFound:
			e.noReadSide = true
			return nil
		case res.Status != http.StatusGatewayTimeout || time.Now().After(deadline):
			return fmt.Errorf("read side at position %d: %s", position, describeResponse(res))
		}
	}
}

// BenchmarkCreateBookingHistory compares the latency of create-booking on
// a resource with a long history (100,000 past bookings with
// BOOKING_BENCH_FULL=1, else 10,000) with that on a resource without any,
// through the command side's HTTP API (newCommandEnv). The history is
// real: bookings of 15 minutes filling whole past days, created through
// the command handlers with a clock set before them. The requests are
// sent one at a time, alternating between the two resources, each for a
// free future hour; an op is one request to each. It reports p50 and p99
// per resource and p99-ratio = busy p99 / empty p99.
func BenchmarkCreateBookingHistory(b *testing.B) {
	e := newCommandEnv(b)
	ids := e.resources(b, 2)
	busy, empty := ids[0], ids[1]
	history := 10_000
	if os.Getenv(envBenchFull) == "1" {
		history = 100_000
	}
	seeded := time.Now()
	seedHistory(b, e, busy, history)
	b.Logf("seeded %d past bookings in %s", history, time.Since(seeded).Round(time.Second))

	next := map[uuid.UUID]int{}
	today := dayStart(0)
	c := e.f.as(e.base)
	b.Run(fmt.Sprintf("history=%d", history), func(b *testing.B) {
		lat := map[uuid.UUID][]time.Duration{}
		b.ResetTimer()
		for i := range 2 * b.N {
			r := busy
			if i%2 == 1 {
				r = empty
			}
			k := next[r]
			next[r]++
			start := today.AddDate(0, 0, 1+k/24).Add(time.Duration(k%24) * time.Hour)
			t0 := time.Now()
			res, err := c.do(context.Background(), http.MethodPost, "/bookings", e.f.bookingBody(r, start, start.Add(time.Hour)), nil)
			lat[r] = append(lat[r], time.Since(t0))
			if err != nil {
				b.Fatal(err)
			}
			if res.Status != http.StatusCreated {
				b.Fatalf("POST /bookings: %s", describeResponse(res))
			}
		}
		b.StopTimer()
		b.ReportMetric(millis(percentile(lat[busy], 50)), "busy-p50-ms")
		b.ReportMetric(millis(percentile(lat[busy], 99)), "busy-p99-ms")
		b.ReportMetric(millis(percentile(lat[empty], 50)), "empty-p50-ms")
		b.ReportMetric(millis(percentile(lat[empty], 99)), "empty-p99-ms")
		b.ReportMetric(float64(percentile(lat[busy], 99))/float64(percentile(lat[empty], 99)), "p99-ratio")
	})
}

// seedHistory books n 15-minute slots of resource, filling whole UTC days
// backwards from yesterday, through the command handlers (the same code
// the API runs) with a clock set before the first of them, eight days at a
// time. It checks that the store holds them and then vacuums and analyzes
// it, as autovacuum would after such a load.
func seedHistory(b *testing.B, e *benchEnv, resource uuid.UUID, n int) {
	b.Helper()
	const perDay = 96
	days := (n + perDay - 1) / perDay
	first := dayStart(-days)
	ctx := context.Background()
	store, err := postgres.Open(ctx, e.dbURL, postgres.Config{SkipMigrations: true, MaxConns: int32(e.conns)})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	h := commands.New(store, commands.WithClock(func() time.Time { return first.Add(-time.Hour) }))
	meta := commands.Meta{TenantID: e.f.TenantID, Actor: domain.Actor{ID: uuid.NewString(), Role: domain.RoleAdmin}}

	var next atomic.Int64
	errs := make([]error, days)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for d := int(next.Add(1) - 1); d < days; d = int(next.Add(1) - 1) {
				day := first.AddDate(0, 0, d)
				for k := range min(perDay, n-d*perDay) {
					start := day.Add(time.Duration(k) * 15 * time.Minute)
					_, err := h.CreateBooking(ctx, meta, commands.CreateBooking{Request: domain.BookingRequest{
						ResourceID: resource, ClientID: e.f.ClientID, Start: start, End: start.Add(15 * time.Minute), Seats: 1, Title: "past",
					}})
					if err != nil {
						errs[d] = fmt.Errorf("seed %s: %w", start.Format(time.RFC3339), err)
						break
					}
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		b.Fatal(err)
	}
	var stored, buckets int
	if err := store.Pool().QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE type = 'booking.created' AND data->>'resource_id' = $1),
		       count(DISTINCT stream_id) FILTER (WHERE stream_id LIKE 'schedule-' || $1 || '-%')
		  FROM booking_events`, resource.String()).Scan(&stored, &buckets); err != nil {
		b.Fatal(err)
	}
	if stored != n || buckets != days {
		b.Fatalf("store holds %d bookings in %d buckets of the resource, want %d in %d", stored, buckets, n, days)
	}
	for _, table := range []string{"booking_events", "booking_streams"} {
		if _, err := store.Pool().Exec(ctx, "VACUUM ANALYZE "+table); err != nil {
			b.Fatal(err)
		}
	}
}
