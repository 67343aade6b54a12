package readside_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/commands"
	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/eventstore"
	"github.com/bookingengine/booking/eventstore/postgres"
	"github.com/bookingengine/booking/internal/testenv"
	"github.com/bookingengine/booking/projections"
	"github.com/bookingengine/booking/projections/eventsource"
	"github.com/bookingengine/booking/projections/readside"
	"github.com/bookingengine/booking/queries"
	"github.com/bookingengine/booking/stream"
	"github.com/bookingengine/booking/stream/relay"
	"github.com/bookingengine/booking/stream/streamtest"
	"github.com/bookingengine/booking/stream/subscriber"
)

func ptr[T any](v T) *T { return &v }

// benchBase is the Monday (in São Paulo) the seeded bookings start on;
// benchNow is the clock of the commands and queries, the Friday before.
var (
	benchZone, _ = time.LoadLocation("America/Sao_Paulo")
	benchBase    = time.Date(2027, 1, 4, 0, 0, 0, 0, benchZone)
	benchNow     = benchBase.AddDate(0, 0, -3)
)

// seedSQL writes booking.created events for bookings $3 … $4-1 straight
// into the store, valid and hash-chained as booking_events_append would:
// booking i is on resource ($2)[i % R], its k = i / R-th booking; four
// one-hour bookings per weekday (8, 10, 12, 14 h, or an hour later on odd
// days), so each resource has free hours in between.
const seedSQL = `
WITH b AS (
	SELECT i, gen_random_uuid() AS id, gen_random_uuid() AS event_id,
	       ($2::uuid[])[1 + i % cardinality($2::uuid[])] AS resource,
	       i / cardinality($2::uuid[]) AS k
	FROM generate_series($3::bigint, $4::bigint - 1) AS i
), t AS (
	SELECT b.*, ((timestamp '2027-01-04' + make_interval(days => ((k / 4) / 5 * 7 + (k / 4) % 5)::int,
	        hours => (8 + (k % 4) * 2 + (k / 4) % 2)::int)) AT TIME ZONE 'America/Sao_Paulo') AS start_at
	FROM b
), d AS (
	SELECT t.*, 'booking-' || t.id AS stream, jsonb_build_object(
		'booking_id', t.id, 'tenant_id', $1::uuid, 'resource_id', t.resource, 'client_id', $5::uuid,
		'start', to_char(t.start_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
		'end', to_char((t.start_at + interval '1 hour') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
		'seats', 1, 'title', 'Seeded', 'notes', '', 'attributes', '{}'::jsonb, 'status', 'confirmed',
		'policy_version', 1, 'buffer_before_minutes', 0, 'buffer_after_minutes', 10,
		'timezone', 'America/Sao_Paulo', 'created_by', 'seed', 'created_at', '2027-01-01T00:00:00Z') AS data
	FROM t
), ins AS (
	INSERT INTO booking_events (tenant_id, stream_id, category, stream_version, event_id, type, event_version,
	                            data, metadata, recorded_at, hash)
	SELECT $1, d.stream, 'booking', 1, d.event_id, 'booking.created', 1, d.data, '{}', now(),
	       sha256('\x'::bytea || booking_events_canonical(d.stream, 1, d.event_id, 'booking.created', 1, $1, now(), d.data, '{}'))
	FROM d
	RETURNING tenant_id, stream_id, stream_version, position, hash
)
INSERT INTO booking_streams (stream_id, tenant_id, version, last_position, hash)
SELECT stream_id, tenant_id, stream_version, position, hash FROM ins`

// cancelSQL cancels about one seeded booking in ten, as a second event of
// its stream.
const cancelSQL = `
WITH c AS (
	SELECT e.stream_id, e.tenant_id, e.hash AS prev, gen_random_uuid() AS event_id,
	       jsonb_build_object('booking_id', e.data->>'booking_id', 'from', 'confirmed', 'reason', 'seeded',
	           'actor', 'seed', 'actor_role', 'admin', 'late', false, 'at', '2027-01-01T00:00:00Z') AS data
	FROM booking_events e
	WHERE e.category = 'booking' AND e.stream_version = 1 AND get_byte(decode(md5(e.stream_id), 'hex'), 0) < 26
), ins AS (
	INSERT INTO booking_events (tenant_id, stream_id, category, stream_version, event_id, type, event_version,
	                            data, metadata, recorded_at, hash)
	SELECT c.tenant_id, c.stream_id, 'booking', 2, c.event_id, 'booking.cancelled', 1, c.data, '{}', now(),
	       sha256(c.prev || booking_events_canonical(c.stream_id, 2, c.event_id, 'booking.cancelled', 1, c.tenant_id, now(), c.data, '{}'))
	FROM c
	RETURNING stream_id, stream_version, position, hash
)
UPDATE booking_streams s SET version = ins.stream_version, last_position = ins.position, hash = ins.hash
FROM ins WHERE s.stream_id = ins.stream_id`

// percentiles returns the p50 and p99 of ds.
func percentiles(ds []time.Duration) (time.Duration, time.Duration) {
	slices.Sort(ds)
	at := func(p float64) time.Duration { return ds[min(len(ds)-1, int(p*float64(len(ds))))] }
	return at(0.50), at(0.99)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkReadSide measures the read side on PostgreSQL with
// READSIDE_BENCH_BOOKINGS seeded bookings (default 20,000; the figures in
// docs/PERFORMANCE.md use 1,000,000): the rebuild of the bookings and
// availability projections against a bare read-all of the same events,
// the free-slot query for one resource-week and for a 100-resource
// category-week, and the projection lag of a command under a concurrent
// command load. Run it once:
//
//	READSIDE_BENCH_BOOKINGS=1000000 go test -run '^$' -bench BenchmarkReadSide -benchtime 1x -timeout 2h ./projections/readside/
//
// READSIDE_BENCH_ONLY=rebuild stops after the rebuilds.
func BenchmarkReadSide(b *testing.B) {
	n := 20_000
	if s := os.Getenv("READSIDE_BENCH_BOOKINGS"); s != "" {
		var err error
		n, err = strconv.Atoi(s)
		require.NoError(b, err)
	}
	ctx := context.Background()
	store, err := postgres.Open(ctx, testenv.NewDatabase(b), postgres.Config{Migrations: append(readside.Migrations(), relay.Migrations()), MaxConns: 16})
	require.NoError(b, err)
	b.Cleanup(store.Close)
	pool := store.Pool()
	cmd := commands.New(store, commands.WithClock(func() time.Time { return benchNow }))

	// The catalog through the commands: one tenant, a category of 100
	// resources, and more resources so that each has about 500 bookings.
	start := time.Now()
	admin, category, distinct, resources, client := seedCatalog(b, cmd, max(200, n/500))
	b.Logf("catalog: %d resources in %s", len(resources), time.Since(start).Round(time.Millisecond))

	start = time.Now()
	const chunk = 100_000
	for lo := 0; lo < n; lo += chunk {
		_, err := pool.Exec(ctx, seedSQL, admin.TenantID, resources, lo, min(lo+chunk, n), client)
		require.NoError(b, err)
	}
	_, err = pool.Exec(ctx, cancelSQL)
	require.NoError(b, err)
	_, err = pool.Exec(ctx, `ANALYZE`)
	require.NoError(b, err)
	var events int64
	require.NoError(b, pool.QueryRow(ctx, `SELECT count(*) FROM booking_events WHERE category = 'booking'`).Scan(&events))
	b.Logf("seeded %d bookings (%d booking events) in %s", n, events, time.Since(start).Round(time.Millisecond))

	rs, err := readside.Open(ctx, store, readside.Config{SkipProjectors: true, Now: cmd.Now})
	require.NoError(b, err)
	b.Cleanup(func() { _ = rs.Close() })
	src := eventsource.New(store, 0)

	// Each rebuild against a bare read-all (the store's ReadAll, nothing
	// decoded) of the same events in the same batches, timed just before
	// and just after it (the host is shared, so the mean of the two is the
	// fair yardstick): of whole events, and of what a projection reads
	// (Filter.PayloadOnly: no metadata, no hash), the stricter yardstick.
	const batch = 10_000
	meter := testenv.CPUMeter{Pool: pool}
	readAll := func(categories []string, payloadOnly bool) (rate float64, cpu testenv.CPUUsage) {
		start := time.Now()
		var read int
		cpu = meter.Measure(func() {
			cur := eventstore.Cursor{}
			for {
				evs, err := store.ReadAll(ctx, cur, eventstore.Filter{Categories: categories, PayloadOnly: payloadOnly}, batch)
				require.NoError(b, err)
				read += len(evs)
				if len(evs) < batch {
					break
				}
				cur = eventstore.CursorOf(evs[len(evs)-1])
			}
		})
		return float64(read) / time.Since(start).Seconds(), cpu
	}
	perEvent := func(u testenv.CPUUsage, n int64) float64 {
		return float64((u.Self + u.Postgres).Nanoseconds()) / 1e3 / float64(n)
	}
	for _, p := range rs.Projections {
		before, readCPU := readAll(p.Categories(), false)
		beforeLean, _ := readAll(p.Categories(), true)
		var (
			st  projections.RebuildStats
			err error
		)
		cpu := meter.Measure(func() { st, err = projections.Rebuild(ctx, src, p, batch) })
		require.NoError(b, err)
		after, _ := readAll(p.Categories(), false)
		afterLean, _ := readAll(p.Categories(), true)
		bare, lean := (before+after)/2, (beforeLean+afterLean)/2
		rate := float64(st.Events) / st.Duration.Seconds()
		b.Logf("rebuild %-12s %8d events in %7s (indexes %6s): %6.0f events/s; bare read-all %6.0f events/s, ratio %.2f; payload only %6.0f events/s, ratio %.2f",
			p.Name(), st.Events, st.Duration.Round(time.Millisecond), st.IndexBuild.Round(time.Millisecond), rate, bare, rate/bare, lean, rate/lean)
		if cpu.OK && readCPU.OK && st.Events > 0 {
			// The rebuild cannot take less wall time than its CPU time
			// spread over every core, hence the bound on its ratio.
			rebuildCPU, bareCPU := perEvent(cpu, st.Events), perEvent(readCPU, st.Events)
			bound := float64(runtime.NumCPU()) * 1e6 / rebuildCPU / bare
			b.Logf("rebuild %-12s CPU per event: %.1f µs (this process %.1f, PostgreSQL %.1f); bare read-all %.1f µs; ratio bound on %d cores %.2f",
				p.Name(), rebuildCPU, perEvent(testenv.CPUUsage{Self: cpu.Self}, st.Events), perEvent(testenv.CPUUsage{Postgres: cpu.Postgres}, st.Events),
				bareCPU, runtime.NumCPU(), bound)
			if p.Name() != "catalog" {
				b.ReportMetric(rebuildCPU, "rebuild-"+p.Name()+"-cpu-us/event")
				b.ReportMetric(bareCPU, "readall-"+p.Name()+"-cpu-us/event")
				b.ReportMetric(bound, "rebuild-"+p.Name()+"/readall-bound")
			}
		}
		if p.Name() != "catalog" {
			b.ReportMetric(rate, "rebuild-"+p.Name()+"-events/s")
			b.ReportMetric(rate/bare, "rebuild-"+p.Name()+"/readall")
			b.ReportMetric(rate/lean, "rebuild-"+p.Name()+"/payloadread")
		}
	}
	if os.Getenv("READSIDE_BENCH_ONLY") == "rebuild" {
		return
	}
	// Queries run against read models in their steady state: vacuumed
	// (visibility map and hint bits set) and checkpointed, as a live
	// system's are; right after a bulk load every first read of a page
	// also writes it.
	start = time.Now()
	for _, q := range []string{`VACUUM ANALYZE`, `CHECKPOINT`} {
		_, err = pool.Exec(ctx, q)
		require.NoError(b, err)
	}
	b.Logf("vacuum and checkpoint: %s", time.Since(start).Round(time.Millisecond))

	// Free slots: random weeks inside the booked range.
	weeks := max(1, (n/len(resources))/20-1)
	viewer := queries.Viewer{TenantID: admin.TenantID, UserID: "admin", Role: domain.RoleAdmin}
	rng := rand.New(rand.NewPCG(1, 2))
	run := func(name string, count int, q func() queries.FreeSlots) {
		var lat []time.Duration
		slots := 0
		for i := range count + 10 {
			fq := q()
			t0 := time.Now()
			res, err := rs.FreeSlots.Handle(ctx, fq)
			d := time.Since(t0)
			require.NoError(b, err)
			if i >= 10 { // warm-up
				lat, slots = append(lat, d), slots+len(res.Slots)
			}
		}
		p50, p99 := percentiles(lat)
		b.ReportMetric(ms(p50), name+"-p50-ms")
		b.ReportMetric(ms(p99), name+"-p99-ms")
		b.Logf("free slots %-14s p50 %6.2f ms  p99 %6.2f ms  (%d queries, %.0f slots each)", name, ms(p50), ms(p99), count, float64(slots)/float64(count))
	}
	week := func() (time.Time, time.Time) {
		from := benchBase.AddDate(0, 0, 7*rng.IntN(weeks))
		return from, from.AddDate(0, 0, 7)
	}
	run("resource-week", 300, func() queries.FreeSlots {
		from, to := week()
		return queries.FreeSlots{Viewer: viewer, ResourceID: resources[rng.IntN(len(resources))], From: from, To: to, Duration: time.Hour}
	})
	run("category-week", 100, func() queries.FreeSlots {
		from, to := week()
		return queries.FreeSlots{Viewer: viewer, CategoryID: category, From: from, To: to, Duration: time.Hour}
	})
	run("category-week-distinct", 100, func() queries.FreeSlots {
		from, to := week()
		return queries.FreeSlots{Viewer: viewer, CategoryID: distinct, From: from, To: to, Duration: time.Hour}
	})

	// Lag under load: commands from 4 goroutines while the projectors
	// run; for each, the time from the command's answer until the
	// availability read model has applied its position (what a query with
	// X-Min-Position waits). First with the projectors tailing the store,
	// then fed by the bus: the relay publishing to Redis, each projection
	// a consumer group, the projectors moving the checkpoints.
	lagUnderLoad := func(name string, live *readside.ReadSide) {
		_, err := live.CatchUp(ctx)
		require.NoError(b, err)
		waiter := projections.NewWaiter(src, live.Projections[2])
		var (
			mu   sync.Mutex
			lags []time.Duration
			wg   sync.WaitGroup
		)
		deadline := time.Now().Add(10 * time.Second)
		start := time.Now()
		for g := range 4 {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(7, uint64(g)))
				for time.Now().Before(deadline) {
					day := benchBase.AddDate(0, 0, 7*(weeks+1)+rng.IntN(60))
					s := day.Add(time.Duration(8*4+rng.IntN(9*4)) * 15 * time.Minute)
					res, err := cmd.CreateBooking(ctx, admin, commands.CreateBooking{Request: domain.BookingRequest{
						ResourceID: resources[rng.IntN(len(resources))], ClientID: client, Start: s, End: s.Add(30 * time.Minute)}})
					if err != nil {
						continue // a conflict or a closed day
					}
					t0 := time.Now()
					wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
					err = waiter.WaitFor(wctx, res.Position)
					cancel()
					require.NoError(b, err)
					mu.Lock()
					lags = append(lags, time.Since(t0))
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		require.NotEmpty(b, lags)
		p50, p99 := percentiles(lags)
		b.ReportMetric(ms(p50), name+"-p50-ms")
		b.ReportMetric(ms(p99), name+"-p99-ms")
		b.ReportMetric(float64(len(lags))/time.Since(start).Seconds(), name+"-commands/s")
		b.Logf("projection lag under load (%s): %d commands in %s (%.0f/s), p50 %.2f ms, p99 %.2f ms", name,
			len(lags), time.Since(start).Round(time.Millisecond), float64(len(lags))/time.Since(start).Seconds(), ms(p50), ms(p99))
	}
	live, err := readside.Open(ctx, store, readside.Config{Now: cmd.Now})
	require.NoError(b, err)
	lagUnderLoad("lag", live)
	require.NoError(b, live.Close())

	rc, prefix := streamtest.MustRedis(b)
	streamtest.Cleanup(b, rc, prefix)
	naming := stream.Topics{Prefix: prefix}
	bus, err := readside.Open(ctx, store, readside.Config{Now: cmd.Now, Feed: readside.FeedBus})
	require.NoError(b, err)
	b.Cleanup(func() { _ = bus.Close() })
	require.NoError(b, bus.StartBus(ctx, subscriber.Config{Redis: rc, Naming: naming, Consumer: "bench"}))
	// The relay starts at the end of the log: the history is in the read
	// models already, and a new consumer group would otherwise spend the
	// run skipping it entry by entry.
	var end eventstore.Cursor
	require.NoError(b, pool.QueryRow(ctx, `SELECT transaction_id::text::bigint, position FROM booking_events
		ORDER BY transaction_id DESC, position DESC LIMIT 1`).Scan(&end.TransactionID, &end.Position))
	require.NoError(b, store.SaveCheckpoint(ctx, relay.DefaultName, end))
	pub, err := stream.NewRedisPublisher(rc, nil)
	require.NoError(b, err)
	r, err := relay.New(relay.Config{Store: store, Publisher: pub, Pool: pool, Topics: naming, PollInterval: 10 * time.Millisecond})
	require.NoError(b, err)
	relayCtx, stopRelay := context.WithCancel(ctx)
	relayDone := make(chan struct{})
	go func() {
		defer close(relayDone)
		_ = r.Run(relayCtx)
	}()
	b.Cleanup(func() {
		stopRelay()
		<-relayDone
	})
	for !r.Status().Leader {
		time.Sleep(50 * time.Millisecond)
	}
	lagUnderLoad("bus-lag", bus)
	var healed int64
	for _, run := range bus.Runners {
		healed += run.Healed()
	}
	b.ReportMetric(float64(healed), "bus-healed-events")
	b.Logf("bus feed: %d events applied by the projectors after their grace", healed)
}

// seedCatalog creates the tenant (São Paulo, weekdays 08:00–18:00, a
// 15-minute grid, 10 minutes of buffer after), a category of 100
// resources that follow the tenant's hours, a category of 100 resources
// with hours of their own, each different (so the free-slot query cannot
// share their candidate starts), more resources up to total, and a client.
func seedCatalog(b *testing.B, cmd *commands.Handlers, total int) (commands.Meta, uuid.UUID, uuid.UUID, []uuid.UUID, uuid.UUID) {
	ctx := context.Background()
	day := []domain.TimeRange{{Start: "08:00", End: "18:00"}}
	res, err := cmd.CreateTenant(ctx, commands.Meta{Actor: domain.Actor{ID: "platform", Role: domain.RolePlatformAdmin}},
		commands.CreateTenant{Input: domain.TenantInput{Name: "Bench", Domain: "bench.example.com", Settings: &domain.SettingsInput{
			Timezone:           ptr("America/Sao_Paulo"),
			BusinessHours:      &domain.WeeklyHours{"mon": day, "tue": day, "wed": day, "thu": day, "fri": day},
			BufferAfterMinutes: ptr(10), MaxAdvanceDays: ptr(0),
		}}})
	require.NoError(b, err)
	admin := commands.Meta{TenantID: res.ID, Actor: domain.Actor{ID: "admin", Role: domain.RoleAdmin}}
	shared, err := cmd.CreateResourceCategory(ctx, admin, commands.CreateResourceCategory{Input: domain.ResourceCategoryInput{Name: "Desks"}})
	require.NoError(b, err)
	own, err := cmd.CreateResourceCategory(ctx, admin, commands.CreateResourceCategory{Input: domain.ResourceCategoryInput{Name: "Dentists"}})
	require.NoError(b, err)
	resources := make([]uuid.UUID, total)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < total; i += 4 {
				in := domain.ResourceInput{Name: fmt.Sprintf("Desk %d", i), Kind: domain.KindSpace, Capacity: 1}
				switch {
				case i < 100:
					in.CategoryID = &shared.ID
				case i < 200:
					in.CategoryID = &own.ID
				}
				r, err := cmd.CreateResource(ctx, admin, commands.CreateResource{Input: in})
				if err != nil {
					panic(err)
				}
				resources[i] = r.ID
				if i >= 100 && i < 200 {
					end := fmt.Sprintf("%02d:%02d", 16+(i-100)/60, (i-100)%60)
					hours := []domain.TimeRange{{Start: "08:00", End: end}}
					_, err := cmd.SetResourceAvailability(ctx, admin, commands.SetResourceAvailability{ResourceID: r.ID,
						Availability: domain.Availability{Weekly: domain.WeeklyHours{"mon": hours, "tue": hours, "wed": hours, "thu": hours, "fri": hours}}})
					if err != nil {
						panic(err)
					}
				}
			}
		})
	}
	wg.Wait()
	u, err := cmd.CreateUser(ctx, admin, commands.CreateUser{Input: domain.UserInput{Email: "c@example.com", Name: "C", Role: domain.RoleClient}})
	require.NoError(b, err)
	return admin, shared.ID, own.ID, resources, u.ID
}
