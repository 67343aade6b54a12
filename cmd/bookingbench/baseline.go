package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// BaselineResult is what one PostgreSQL baseline measured.
type BaselineResult struct {
	Name      string
	What      string
	Elapsed   time.Duration
	Latencies []time.Duration
	// OK counts rows inserted, Conflicts exclusion violations.
	OK, Conflicts, Failures int
	Samples                 []string
}

// baselineResources is the least number of resources the baselines
// book.
const baselineResources = 1000

// baseline is one contender: setup creates its table and returns the
// statement a worker runs once per operation.
type baseline struct {
	name, what string
	table      string
	ddl        string
	insert     func(ctx context.Context, pool *pgxpool.Pool, rng *mrand.Rand) error
}

// runBaselines measures the baselines one after the other, each at the
// same concurrency as the load, on tables of their own that are dropped
// afterwards.
func runBaselines(ctx context.Context, cfg Config, w *world) ([]BaselineResult, error) {
	pc, err := pgxpool.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("database url: %w", err)
	}
	pc.MaxConns = int32(cfg.Concurrency)
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, err
	}
	defer pool.Close()

	// The baselines insert only, thousands a second: over the seeded
	// resources alone they would fill the horizon within seconds and
	// measure refusals. They draw from at least baselineResources
	// resources instead (the seeded ones and made-up ones), so that they
	// stay mostly inserts, as the API's mix does.
	var resources []uuid.UUID
	var tenants []uuid.UUID
	for _, t := range w.Tenants {
		tenants = append(tenants, t.ID)
		for _, r := range t.Resources {
			resources = append(resources, r.ID)
		}
	}
	for len(resources) < baselineResources {
		resources = append(resources, uuid.New())
	}
	suffix := strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	drawSlot := func(rng *mrand.Rand) (uuid.UUID, time.Time, time.Time) {
		// The load's distribution, in UTC: a day of the horizon, a
		// quarter hour of the open hours, 30 minutes to 2 hours, plus
		// the 5-minute buffer the seeded tenants keep after a booking.
		dur := []int{30, 45, 60, 60, 90, 120}[rng.IntN(6)]
		minute := openMinute + gridMinutes*rng.IntN((closeMinute-openMinute-dur)/gridMinutes+1)
		day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, 1+rng.IntN(cfg.HorizonDays))
		start := day.Add(time.Duration(minute) * time.Minute)
		return resources[rng.IntN(len(resources))], start, start.Add(time.Duration(dur+5) * time.Minute)
	}
	contenders := []baseline{
		{
			name:  "exclusion INSERT",
			what:  "INSERT into (id, resource_id, during tstzrange) with EXCLUDE USING gist (resource_id WITH =, during WITH &&); a violation is a conflict",
			table: "bench_exclusion_" + suffix,
			ddl: `CREATE TABLE bench_exclusion_` + suffix + ` (id uuid PRIMARY KEY, resource_id uuid NOT NULL,
				during tstzrange NOT NULL, EXCLUDE USING gist (resource_id WITH =, during WITH &&))`,
			insert: func(ctx context.Context, pool *pgxpool.Pool, rng *mrand.Rand) error {
				r, s, e := drawSlot(rng)
				_, err := pool.Exec(ctx, `INSERT INTO bench_exclusion_`+suffix+` (id, resource_id, during) VALUES ($1, $2, tstzrange($3, $4))`,
					uuid.New().String(), r.String(), s, e)
				return err
			},
		},
		{
			name:  "bare event INSERT",
			what:  "one INSERT of a booking.created row into a copy of booking_events (same columns, indexes and constraints), no check, no hash chain",
			table: "bench_events_" + suffix,
			ddl:   `CREATE TABLE bench_events_` + suffix + ` (LIKE booking_events INCLUDING ALL)`,
			insert: func(ctx context.Context, pool *pgxpool.Pool, rng *mrand.Rand) error {
				r, s, e := drawSlot(rng)
				id := uuid.New()
				data, _ := json.Marshal(map[string]any{
					"booking_id": id, "tenant_id": tenants[0], "resource_id": r, "client_id": uuid.New(),
					"start": s, "end": e, "seats": 1, "title": "bench", "notes": "", "attributes": map[string]any{},
					"status": "confirmed", "policy_version": 1, "buffer_before_minutes": 0, "buffer_after_minutes": 5,
					"timezone": "UTC", "created_by": uuid.NewString(), "created_at": time.Now().UTC(),
				})
				meta, _ := json.Marshal(map[string]any{"correlation_id": uuid.NewString(), "actor": uuid.NewString(), "actor_role": "admin", "idempotency_key": uuid.NewString()})
				hash := make([]byte, 32)
				_, _ = rand.Read(hash)
				_, err := pool.Exec(ctx, `INSERT INTO bench_events_`+suffix+` (tenant_id, stream_id, category, stream_version, event_id, type, event_version, data, metadata, hash)
					VALUES ($1, $2, 'booking', 1, $3, 'booking.created', 1, $4, $5, $6)`,
					tenants[0].String(), "booking-"+id.String(), uuid.NewString(), data, meta, hash)
				return err
			},
		},
	}
	var out []BaselineResult
	for i, b := range contenders {
		if _, err := pool.Exec(ctx, b.ddl); err != nil {
			return out, fmt.Errorf("%s: create table: %w", b.name, err)
		}
		r := measureBaseline(ctx, pool, cfg, b, uint64(i))
		if _, err := pool.Exec(context.WithoutCancel(ctx), `DROP TABLE IF EXISTS `+b.table); err != nil {
			return out, fmt.Errorf("%s: drop table: %w", b.name, err)
		}
		out = append(out, r)
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
	}
	return out, nil
}

// measureBaseline runs b from cfg.Concurrency workers for
// cfg.BaselineDuration.
func measureBaseline(ctx context.Context, pool *pgxpool.Pool, cfg Config, b baseline, salt uint64) BaselineResult {
	runCtx, cancel := context.WithTimeout(ctx, cfg.BaselineDuration)
	defer cancel()
	var mu sync.Mutex
	res := BaselineResult{Name: b.name, What: b.what}
	var wg sync.WaitGroup
	begin := time.Now()
	for n := range cfg.Concurrency {
		wg.Go(func() {
			rng := mrand.New(mrand.NewPCG(cfg.Seed^salt, uint64(n)+1000))
			var lat []time.Duration
			ok, conflicts, failures := 0, 0, 0
			var samples []string
			for runCtx.Err() == nil {
				t0 := time.Now()
				err := b.insert(runCtx, pool, rng)
				// Concurrent inserts into a GiST exclusion constraint can
				// deadlock; an application would retry, and so does this.
				for try := 0; try < 3 && isDeadlock(err); try++ {
					err = b.insert(runCtx, pool, rng)
				}
				if runCtx.Err() != nil {
					break
				}
				lat = append(lat, time.Since(t0))
				var pgErr *pgconn.PgError
				switch {
				case err == nil:
					ok++
				case errors.As(err, &pgErr) && pgErr.Code == "23P01":
					conflicts++
				default:
					failures++
					if len(samples) < 3 {
						samples = append(samples, err.Error())
					}
				}
			}
			mu.Lock()
			res.Latencies = append(res.Latencies, lat...)
			res.OK += ok
			res.Conflicts += conflicts
			res.Failures += failures
			res.Samples = append(res.Samples, samples...)
			mu.Unlock()
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(begin)
	return res
}

func isDeadlock(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "40P01"
}
