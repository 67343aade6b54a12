package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	bhttp "github.com/bookingengine/booking/http"
)

// opStats is what one operation measured.
type opStats struct {
	// Latencies of every answered request (2xx, 409 and failures alike).
	Latencies []time.Duration
	// OK counts 2xx answers, Conflicts 409 booking_conflict, Failures
	// everything else (5xx, transport errors, unexpected 4xx).
	OK, Conflicts, Failures int
	// Samples are the first failures, for the report.
	Samples []string
}

func (s *opStats) merge(o *opStats) {
	s.Latencies = append(s.Latencies, o.Latencies...)
	s.OK += o.OK
	s.Conflicts += o.Conflicts
	s.Failures += o.Failures
	for _, x := range o.Samples {
		if len(s.Samples) < 5 {
			s.Samples = append(s.Samples, x)
		}
	}
}

func (s *opStats) fail(format string, args ...any) {
	s.Failures++
	if len(s.Samples) < 5 {
		s.Samples = append(s.Samples, fmt.Sprintf(format, args...))
	}
}

// LoadResult is what the load phase measured.
type LoadResult struct {
	Elapsed time.Duration
	Ops     map[string]*opStats
	// Lag holds the waits of GET /bookings with X-Min-Position after a
	// sample of commands, from the command's answer to the query's.
	Lag []time.Duration
	// LagTimeouts counts 504s (the read side did not catch up within
	// bookingd's 5 s); LagFailures other failures of the probe;
	// LagDropped probes not sent because the probers were all busy.
	LagTimeouts, LagFailures, LagDropped int
	// Missed counts operations of an open-loop run (--rate) that were
	// not started because --concurrency requests were already in flight.
	Missed int
}

// booked is a booking a client made and may cancel or move.
type booked struct {
	t          *tenant
	id         uuid.UUID
	resource   uuid.UUID
	start, end time.Time
}

// lagProbe asks for the read side to reach position, from the moment the
// command was answered.
type lagProbe struct {
	t        *tenant
	position int64
	answered time.Time
}

// client is one simulated client: its random source, its own bookings and
// its statistics.
type client struct {
	a        *api
	w        *world
	cfg      Config
	rng      *rand.Rand
	mine     []booked
	stats    map[string]*opStats
	commands int
	probes   chan<- lagProbe
	dropped  int
	ops      []string
	weights  []int
	total    int
}

func newClient(a *api, w *world, cfg Config, n int, probes chan<- lagProbe) *client {
	c := &client{a: a, w: w, cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, uint64(n))), stats: map[string]*opStats{}, probes: probes}
	for _, op := range allOps {
		if op == OpCalendar && !w.Calendars {
			continue
		}
		if wt := cfg.Mix[op]; wt > 0 {
			c.ops, c.weights = append(c.ops, op), append(c.weights, wt)
			c.total += wt
		}
		c.stats[op] = &opStats{}
	}
	return c
}

// pick draws the next operation; cancel and reschedule fall back to
// create while the client has no booking of its own.
func (c *client) pick() string {
	n := c.rng.IntN(c.total)
	op := c.ops[len(c.ops)-1]
	for i, w := range c.weights {
		if n < w {
			op = c.ops[i]
			break
		}
		n -= w
	}
	if (op == OpCancel || op == OpReschedule) && len(c.mine) == 0 {
		op = OpCreate
	}
	return op
}

// slot draws a bookable slot of resource r: a local day of the horizon,
// inside the business hours, on the grid.
func (c *client) slot(t *tenant) (start, end time.Time) {
	dur := []int{30, 45, 60, 60, 90, 120}[c.rng.IntN(6)]
	steps := (closeMinute - openMinute - dur) / gridMinutes
	minute := openMinute + gridMinutes*c.rng.IntN(steps+1)
	now := time.Now().In(t.Zone)
	day := 1 + c.rng.IntN(c.cfg.HorizonDays)
	start = time.Date(now.Year(), now.Month(), now.Day()+day, 0, minute, 0, 0, t.Zone)
	return start, start.Add(time.Duration(dur) * time.Minute)
}

// do runs one operation and records it; started is when it was due.
func (c *client) do(ctx context.Context, op string, started time.Time) {
	s := c.stats[op]
	t := c.w.Tenants[c.rng.IntN(len(c.w.Tenants))]
	var (
		res  answer
		err  error
		want = http.StatusOK
		idem = map[string]string{bhttp.HeaderIdempotencyKey: uuid.NewString()}
		done func(answer)
		mine = -1
	)
	switch op {
	case OpCreate:
		r := t.Resources[c.rng.IntN(len(t.Resources))]
		start, end := c.slot(t)
		seats := 1
		if r.Capacity > 1 && c.rng.IntN(5) == 0 {
			seats = 2
		}
		want = http.StatusCreated
		res, err = c.a.call(ctx, http.MethodPost, "/bookings", t.Admin, t.ID, map[string]any{
			"resource_id": r.ID, "client_id": t.Clients[c.rng.IntN(len(t.Clients))],
			"start": start.Format(time.RFC3339), "end": end.Format(time.RFC3339), "seats": seats, "title": "bench",
		}, idem)
		done = func(res answer) {
			var b struct {
				ID uuid.UUID `json:"id"`
			}
			if jsonInto(res.body, &b) {
				c.mine = append(c.mine, booked{t: t, id: b.ID, resource: r.ID, start: start, end: end})
			}
		}
	case OpCancel:
		mine = c.rng.IntN(len(c.mine))
		b := c.mine[mine]
		t = b.t
		res, err = c.a.call(ctx, http.MethodPost, "/bookings/"+b.id.String()+"/cancel", t.Admin, t.ID, map[string]any{"reason": "bench"}, idem)
		done = func(answer) { c.forget(mine) }
	case OpReschedule:
		mine = c.rng.IntN(len(c.mine))
		b := c.mine[mine]
		t = b.t
		start, end := c.slot(t)
		res, err = c.a.call(ctx, http.MethodPost, "/bookings/"+b.id.String()+"/reschedule", t.Admin, t.ID, map[string]any{
			"start": start.Format(time.RFC3339), "end": end.Format(time.RFC3339),
		}, idem)
		done = func(answer) { c.mine[mine].start, c.mine[mine].end = start, end }
	case OpAvailability, OpList, OpCalendar:
		r := t.Resources[c.rng.IntN(len(t.Resources))]
		from, _ := c.slot(t)
		from = time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, t.Zone)
		q := url.Values{"from": {from.Format(time.RFC3339)}}
		path := ""
		switch op {
		case OpAvailability:
			q.Set("resource_id", r.ID.String())
			q.Set("to", from.AddDate(0, 0, 1).Format(time.RFC3339))
			q.Set("duration", "60")
			path = "/availability?"
		case OpList:
			q.Set("resource_id", r.ID.String())
			q.Set("to", from.AddDate(0, 0, 7).Format(time.RFC3339))
			q.Set("limit", "50")
			path = "/bookings?"
		default:
			q.Set("to", from.AddDate(0, 0, 7).Format(time.RFC3339))
			path = "/calendars/resources/" + r.ID.String() + "?"
		}
		res, err = c.a.call(ctx, http.MethodGet, path+q.Encode(), t.Admin, t.ID, nil, nil)
	}
	if ctx.Err() != nil {
		return // the run ended under the request: not a measurement
	}
	s.Latencies = append(s.Latencies, time.Since(started))
	switch {
	case err != nil:
		s.fail("%s: %v", op, err)
	case res.status == want:
		s.OK++
		if done != nil {
			done(res)
		}
		if op == OpCreate || op == OpCancel || op == OpReschedule {
			c.commands++
			if c.commands%c.cfg.LagEvery == 0 {
				select {
				case c.probes <- lagProbe{t: t, position: res.position(), answered: time.Now()}:
				default:
					c.dropped++
				}
			}
		}
	case res.status == http.StatusConflict && res.problemCode() == bhttp.CodeBookingConflict && (op == OpCreate || op == OpReschedule):
		s.Conflicts++
	default:
		s.fail("%s: %d %s", op, res.status, bytes.TrimSpace(res.body))
	}
}

// jsonInto decodes b into v and reports whether it could.
func jsonInto(b []byte, v any) bool { return json.Unmarshal(b, v) == nil }

// forget drops the client's booking i (cancelled).
func (c *client) forget(i int) {
	c.mine[i] = c.mine[len(c.mine)-1]
	c.mine = c.mine[:len(c.mine)-1]
}

// drive runs the mix for cfg.Duration and returns what it measured.
func drive(ctx context.Context, a *api, w *world, cfg Config) *LoadResult {
	res := &LoadResult{Ops: map[string]*opStats{}}
	probes := make(chan lagProbe, 1024)
	// Probes still queued when the load ends get ten seconds more.
	probeCtx, stopProbes := context.WithCancel(ctx)
	defer stopProbes()
	var lagMu sync.Mutex
	var probers sync.WaitGroup
	for range max(2, cfg.Concurrency/4) {
		probers.Go(func() {
			for p := range probes {
				if probeCtx.Err() != nil {
					continue
				}
				r, err := a.call(probeCtx, http.MethodGet, "/bookings?limit=1", p.t.Admin, p.t.ID, nil,
					map[string]string{"X-Min-Position": fmt.Sprint(p.position)})
				wait := time.Since(p.answered)
				lagMu.Lock()
				switch {
				case probeCtx.Err() != nil:
				case err == nil && r.status == http.StatusOK:
					res.Lag = append(res.Lag, wait)
				case err == nil && r.status == http.StatusGatewayTimeout:
					res.LagTimeouts++
				default:
					res.LagFailures++
				}
				lagMu.Unlock()
			}
		})
	}

	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	clients := make([]*client, cfg.Concurrency)
	for i := range clients {
		clients[i] = newClient(a, w, cfg, i, probes)
	}
	begin := time.Now()
	var wg sync.WaitGroup
	if cfg.Rate > 0 {
		due := make(chan time.Time, cfg.Concurrency)
		var missed atomic.Int64
		wg.Go(func() {
			defer close(due)
			interval := time.Duration(float64(time.Second) / cfg.Rate)
			for next := begin; runCtx.Err() == nil; next = next.Add(interval) {
				if d := time.Until(next); d > 0 {
					select {
					case <-runCtx.Done():
						return
					case <-time.After(d):
					}
				}
				select {
				case due <- next:
				default:
					missed.Add(1)
				}
			}
		})
		for _, c := range clients {
			wg.Go(func() {
				for at := range due {
					c.do(runCtx, c.pick(), at)
				}
			})
		}
		wg.Wait()
		res.Missed = int(missed.Load())
	} else {
		for _, c := range clients {
			wg.Go(func() {
				for runCtx.Err() == nil {
					c.do(runCtx, c.pick(), time.Now())
				}
			})
		}
		wg.Wait()
	}
	res.Elapsed = time.Since(begin)
	close(probes)
	late := time.AfterFunc(10*time.Second, stopProbes)
	probers.Wait()
	late.Stop()
	for _, c := range clients {
		for op, s := range c.stats {
			if res.Ops[op] == nil {
				res.Ops[op] = &opStats{}
			}
			res.Ops[op].merge(s)
		}
		res.LagDropped += c.dropped
	}
	return res
}
