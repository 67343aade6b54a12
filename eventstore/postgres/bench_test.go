package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/eventstore"
	"github.com/bookingengine/booking/eventstore/postgres"
	"github.com/bookingengine/booking/internal/testenv"
)

// The benchmarks compare the store with the least PostgreSQL can do for
// the same job on the same server, in the same run, and log the ratio
// ours/baseline; wall-clock figures alone say little on a shared machine.
// Run them with (BENCH_READALL_EVENTS defaults to 100,000; docs/PERFORMANCE.md
// uses 1,000,000):
//
//	BENCH_READALL_EVENTS=1000000 go test -run '^$' -bench . -benchtime 3s ./eventstore/postgres/

// benchData is a payload of the size a booking event has.
var benchData = json.RawMessage(`{"resource_id":"5b0c4f43-4a3e-4bb9-9a3e-0c1f2c3d4e5f","client_id":"0e8c2c1c-5e1b-4a35-9a64-d2f0a4b1c2d3","start":"2026-12-01T09:00:00-03:00","end":"2026-12-01T10:00:00-03:00","seats":1,"title":"Limpeza"}`)

var benchMetadata = eventstore.Metadata{CorrelationID: "6f1d2c9e-0b8a-4c1e-9d5f-2a7b3c4d5e6f", Actor: "3c2b1a09-8f7e-4d6c-b5a4-0f1e2d3c4b5a", ActorRole: "client"}

// appendVariant is one way of appending an event, measured in phases.
type appendVariant struct {
	name    string
	op      func(worker int, seq int64) error
	seq     []int64 // per worker: events appended to its stream so far
	ops     int
	elapsed time.Duration
}

// phase runs ops calls of v.op spread over the variant's workers and adds
// the wall time to v.elapsed.
func (v *appendVariant) phase(ops int) error {
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		errs = make([]error, len(v.seq))
	)
	start := time.Now()
	for w := range v.seq {
		wg.Go(func() {
			for next.Add(1) <= int64(ops) {
				v.seq[w]++
				if err := v.op(w, v.seq[w]); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	v.elapsed += time.Since(start)
	v.ops += ops
	return errors.Join(errs...)
}

func (v *appendVariant) opsPerSec() float64 { return float64(v.ops) / v.elapsed.Seconds() }

// BenchmarkAppend appends one event with an Exact expectation, each
// goroutine to its own stream, at concurrency 1, 8 and 32, against
// baselines on tables identical to booking_events (same columns, indexes
// and constraints): bare_insert is one INSERT with no check at all;
// check_insert is the minimal optimistic transaction (BEGIN; SELECT max
// version; INSERT version+1; COMMIT). The machine is shared, so one
// benchmark op is a round in which each variant in turn (rotating the
// order) runs a phase of 20 appends per goroutine; the metrics are each
// variant's appends per second over all its phases and the ratios
// store/baseline. ns/op is the time of a round and means little.
func BenchmarkAppend(b *testing.B) {
	url := testenv.NewDatabase(b)
	ctx := context.Background()
	s, err := postgres.Open(ctx, url, postgres.Config{MaxConns: 32})
	require.NoError(b, err)
	defer s.Close()
	pool := s.Pool()
	_, err = pool.Exec(ctx, `
		CREATE TABLE bench_bare_events (LIKE booking_events INCLUDING ALL);
		CREATE TABLE bench_check_events (LIKE booking_events INCLUDING ALL);`)
	require.NoError(b, err)
	md, err := json.Marshal(benchMetadata)
	require.NoError(b, err)
	hash := make([]byte, 32)

	const insert = `INSERT INTO %s (tenant_id, stream_id, category, stream_version, event_id, type,
		event_version, data, metadata, recorded_at, hash)
		VALUES ($1, $2, 'booking', $3, $4, 'booking.created', 1, $5, $6, now(), $7)`
	bareInsert := fmt.Sprintf(insert, "bench_bare_events")
	checkInsert := fmt.Sprintf(insert, "bench_check_events")
	tenant := uuid.New()

	for _, workers := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("c%d", workers), func(b *testing.B) {
			ids := make([]string, workers)
			run := uuid.NewString()
			for w := range ids {
				ids[w] = fmt.Sprintf("booking-%s-%d", run, w)
			}
			variants := []*appendVariant{
				{name: "store", op: func(w int, seq int64) error {
					_, err := s.Append(ctx, eventstore.StreamAppend{StreamID: ids[w], TenantID: tenant, Expected: eventstore.Exact(seq - 1),
						Events: []eventstore.EventData{{ID: uuid.New(), Type: "booking.created", Version: 1, Data: benchData, Metadata: benchMetadata}}})
					return err
				}},
				{name: "bare_insert", op: func(w int, seq int64) error {
					_, err := pool.Exec(ctx, bareInsert, tenant, ids[w], seq, uuid.New(), []byte(benchData), md, hash)
					return err
				}},
				{name: "check_insert", op: func(w int, _ int64) error {
					return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
						var v int64
						if err := tx.QueryRow(ctx, `SELECT coalesce(max(stream_version), 0) FROM bench_check_events WHERE stream_id = $1`, ids[w]).Scan(&v); err != nil {
							return err
						}
						_, err := tx.Exec(ctx, checkInsert, tenant, ids[w], v+1, uuid.New(), []byte(benchData), md, hash)
						return err
					})
				}},
			}
			for _, v := range variants {
				// Warm up: open the connections, prepare the statements,
				// compile the function; then start counting.
				v.seq = make([]int64, workers)
				if err := v.phase(2 * workers); err != nil {
					b.Fatalf("%s: %v", v.name, err)
				}
				v.ops, v.elapsed = 0, 0
			}
			round := 0
			for b.Loop() {
				for i := range variants {
					v := variants[(round+i)%len(variants)]
					if err := v.phase(20 * workers); err != nil {
						b.Fatalf("%s: %v", v.name, err)
					}
				}
				round++
			}
			store, bare, check := variants[0].opsPerSec(), variants[1].opsPerSec(), variants[2].opsPerSec()
			b.ReportMetric(store, "store_ops/s")
			b.ReportMetric(bare, "bare_ops/s")
			b.ReportMetric(check, "check_ops/s")
			b.ReportMetric(store/bare, "store/bare")
			b.ReportMetric(store/check, "store/check")
		})
	}
}

// BenchmarkLoad loads whole streams of 50 and 5,000 events, and a 5,000
// event stream through a snapshot at version 4,950 plus its 50-event tail.
func BenchmarkLoad(b *testing.B) {
	url := testenv.NewDatabase(b)
	ctx := context.Background()
	s, err := postgres.Open(ctx, url, postgres.Config{})
	require.NoError(b, err)
	defer s.Close()
	tenant := uuid.New()
	seed := func(n int) string {
		id := "booking-" + uuid.NewString()
		for v := 0; v < n; v += 500 {
			evs := make([]eventstore.EventData, min(500, n-v))
			for i := range evs {
				evs[i] = eventstore.EventData{ID: uuid.New(), Type: "booking.updated", Version: 1, Data: benchData, Metadata: benchMetadata}
			}
			_, err := s.Append(ctx, eventstore.StreamAppend{StreamID: id, TenantID: tenant, Expected: eventstore.Exact(int64(v)), Events: evs})
			require.NoError(b, err)
		}
		return id
	}
	small, large := seed(50), seed(5000)
	require.NoError(b, s.SaveSnapshot(ctx, eventstore.Snapshot{StreamID: large, Version: 4950, SchemaVersion: 1, State: benchData}))
	_, err = s.Pool().Exec(ctx, `ANALYZE`)
	require.NoError(b, err)

	load := func(id string, want int) func(b *testing.B) {
		return func(b *testing.B) {
			for b.Loop() {
				evs, err := s.Load(ctx, id, 0)
				if err != nil || len(evs) != want {
					b.Fatalf("load: %d events, %v", len(evs), err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
		}
	}
	b.Run("events50", load(small, 50))
	b.Run("events5000", load(large, 5000))
	b.Run("snapshot_plus_tail50", func(b *testing.B) {
		for b.Loop() {
			snap, err := s.LoadSnapshot(ctx, large)
			if err != nil {
				b.Fatal(err)
			}
			tail, err := s.Load(ctx, large, snap.Version)
			if err != nil || len(tail) != 50 {
				b.Fatalf("tail: %d events, %v", len(tail), err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	})
}

// seedReadAll fills booking_events with n events in streams of 50, hash
// chains included, computed in SQL (a recursive CTE per chunk of 200
// streams, one transaction each), and the matching stream heads.
func seedReadAll(b *testing.B, pool *pgxpool.Pool, n int) {
	b.Helper()
	const perStream, chunk = 50, 200
	const q = `
	WITH RECURSIVE chain (s, v, id, d, h) AS (
	    SELECT x.s, 1::bigint, x.id, x.d,
	           sha256('\x'::bytea || booking_events_canonical('booking-' || x.s, 1, x.id, 'booking.updated', 1,
	                  ('00000000-0000-4000-8000-' || lpad((x.s % 10)::text, 12, '0'))::uuid, $3, x.d, $4))
	      FROM (SELECT s, md5(s || '/1')::uuid AS id, $5::jsonb || jsonb_build_object('n', 1) AS d
	              FROM generate_series($1::bigint, $2::bigint) s) x
	    UNION ALL
	    SELECT y.s, y.v, y.id, y.d,
	           sha256(y.h || booking_events_canonical('booking-' || y.s, y.v, y.id, 'booking.updated', 1,
	                  ('00000000-0000-4000-8000-' || lpad((y.s % 10)::text, 12, '0'))::uuid, $3, y.d, $4))
	      FROM (SELECT c.s, c.v + 1 AS v, md5(c.s || '/' || (c.v + 1))::uuid AS id,
	                   $5::jsonb || jsonb_build_object('n', c.v + 1) AS d, c.h
	              FROM chain c WHERE c.v < $6) y
	), ins AS (
	    INSERT INTO booking_events (tenant_id, stream_id, category, stream_version, event_id, type,
	                                event_version, data, metadata, recorded_at, hash)
	    SELECT ('00000000-0000-4000-8000-' || lpad((s % 10)::text, 12, '0'))::uuid, 'booking-' || s, 'booking',
	           v, id, 'booking.updated', 1, d, $4, $3, h
	      FROM chain ORDER BY v, s
	    RETURNING tenant_id, stream_id, stream_version, position, hash
	)
	INSERT INTO booking_streams (stream_id, tenant_id, version, last_position, hash)
	SELECT stream_id, tenant_id, stream_version, position, hash FROM ins WHERE stream_version = $6`
	ctx := context.Background()
	md, err := json.Marshal(benchMetadata)
	require.NoError(b, err)
	recorded := time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)
	streams := (n + perStream - 1) / perStream
	for first := 1; first <= streams; first += chunk {
		last := min(first+chunk-1, streams)
		_, err := pool.Exec(ctx, q, first, last, recorded, md, []byte(benchData), perStream)
		require.NoError(b, err)
	}
	_, err = pool.Exec(ctx, `VACUUM ANALYZE booking_events`)
	require.NoError(b, err)
}

// BenchmarkReadAll reads every event, 1,000 per call, through ReadAll
// (the xid8 watermark, ordered by (transaction_id, position)) and through
// the bare baseline: a keyset cursor on position that selects the same
// columns and decodes them the same way. After a CHECKPOINT and a warm-up
// pass of each, one benchmark op is a round of one full pass of each, in
// alternating order, so neither pays alone for a cold cache or another
// process's load; the metrics are events per second over all passes and
// the ratio store/bare.
func BenchmarkReadAll(b *testing.B) {
	n := 100_000
	if v := os.Getenv("BENCH_READALL_EVENTS"); v != "" {
		var err error
		n, err = strconv.Atoi(v)
		require.NoError(b, err)
	}
	url := testenv.NewDatabase(b)
	ctx := context.Background()
	s, err := postgres.Open(ctx, url, postgres.Config{})
	require.NoError(b, err)
	defer s.Close()
	started := time.Now()
	seedReadAll(b, s.Pool(), n)
	b.Logf("seeded %d events in %s", n, time.Since(started).Round(time.Millisecond))
	_, err = s.Pool().Exec(ctx, `CHECKPOINT`)
	require.NoError(b, err)

	const page = 1000
	store := func() (int, error) {
		var cur eventstore.Cursor
		total := 0
		for {
			evs, err := s.ReadAll(ctx, cur, eventstore.Filter{}, page)
			if err != nil || len(evs) == 0 {
				return total, err
			}
			total += len(evs)
			cur = eventstore.CursorOf(evs[len(evs)-1])
		}
	}
	const bareQuery = `SELECT position, transaction_id, tenant_id, stream_id, category, stream_version,
		event_id, type, event_version, data, metadata, recorded_at, hash
		FROM booking_events WHERE position > $1 ORDER BY position LIMIT $2`
	bare := func() (int, error) {
		var after int64
		total := 0
		for {
			rows, err := s.Pool().Query(ctx, bareQuery, after, page)
			if err != nil {
				return total, err
			}
			evs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (eventstore.RecordedEvent, error) {
				var e eventstore.RecordedEvent
				err := row.Scan(&e.Position, &e.TransactionID, (*[16]byte)(&e.TenantID), &e.StreamID, &e.Category,
					&e.StreamVersion, (*[16]byte)(&e.ID), &e.Type, &e.EventVersion, (*[]byte)(&e.Data), &e.Metadata,
					&e.RecordedAt, &e.Hash)
				return e, err
			})
			if err != nil || len(evs) == 0 {
				return total, err
			}
			total += len(evs)
			after = evs[len(evs)-1].Position
		}
	}

	b.Run("rounds", func(b *testing.B) {
		readers := []struct {
			name    string
			read    func() (int, error)
			elapsed time.Duration
			events  int
		}{{name: "store", read: store}, {name: "bare_cursor", read: bare}}
		for i := range readers {
			if got, err := readers[i].read(); err != nil || got != n {
				b.Fatalf("%s warm-up: %d of %d events, %v", readers[i].name, got, n, err)
			}
		}
		round := 0
		for b.Loop() {
			for i := range readers {
				r := &readers[(round+i)%len(readers)]
				start := time.Now()
				got, err := r.read()
				r.elapsed += time.Since(start)
				if err != nil || got != n {
					b.Fatalf("%s: %d of %d events, %v", r.name, got, n, err)
				}
				r.events += got
			}
			round++
		}
		ours := float64(readers[0].events) / readers[0].elapsed.Seconds()
		base := float64(readers[1].events) / readers[1].elapsed.Seconds()
		b.ReportMetric(ours, "store_events/s")
		b.ReportMetric(base, "bare_events/s")
		b.ReportMetric(ours/base, "store/bare")
	})

	b.Run("verify_all", func(b *testing.B) {
		for b.Loop() {
			r, err := s.Verify(ctx, "", uuid.Nil)
			if err != nil || !r.OK() || r.EventsChecked != int64(n) {
				b.Fatalf("verify: %+v, %v", r, err)
			}
		}
		b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
	})
}
