package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Report is a run's results.
type Report struct {
	Config            Config
	Started, Finished time.Time
	SeedTime          time.Duration
	World             *world
	Load              *LoadResult
	Baselines         []BaselineResult
	Audits            []AuditResult
	Notes             []string
}

// OK reports whether every request was answered as expected and every
// audit passed.
func (r *Report) OK() bool {
	if r.Load != nil {
		for _, s := range r.Load.Ops {
			if s.Failures > 0 {
				return false
			}
		}
	}
	for _, a := range r.Audits {
		if !a.Passed {
			return false
		}
	}
	return true
}

// percentile returns the p-th percentile (0 < p ≤ 100) of ds, nearest
// rank; ds is sorted in place.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(float64(len(ds))*p/100+0.999999) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond)) }

func perSecond(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// Write prints the report as Markdown.
func (r *Report) Write(w io.Writer) {
	c := r.Config
	mode := fmt.Sprintf("concurrency %d (closed loop)", c.Concurrency)
	if c.Rate > 0 {
		mode = fmt.Sprintf("rate %.0f ops/s (open loop, at most %d in flight)", c.Rate, c.Concurrency)
	}
	fmt.Fprintf(w, "## bookingbench %s\n\n", r.Started.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "target %s, %s, duration %s, mix %s, seed %d\n", c.Target, mode, c.Duration, c.Mix, c.Seed)
	if r.World != nil {
		res, users := 0, 0
		for _, t := range r.World.Tenants {
			res += len(t.Resources)
			users += len(t.Clients)
		}
		fmt.Fprintf(w, "seeded %d tenants, %d resources, %d clients through the API in %s\n", len(r.World.Tenants), res, users, r.SeedTime.Round(time.Millisecond))
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if r.Load == nil {
		return
	}
	l := r.Load
	fmt.Fprintf(w, "\n| operation | requests | per second | p50 ms | p95 ms | p99 ms | 409 conflict | failed |\n")
	fmt.Fprintf(w, "| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	var all []time.Duration
	total, conflicts, failed, writes, writeConflicts, commands := 0, 0, 0, 0, 0, 0
	for _, op := range allOps {
		s := l.Ops[op]
		if s == nil || len(s.Latencies) == 0 {
			continue
		}
		n := len(s.Latencies)
		all = append(all, s.Latencies...)
		total += n
		conflicts += s.Conflicts
		failed += s.Failures
		if op == OpCreate || op == OpReschedule {
			writes += n
			writeConflicts += s.Conflicts
		}
		if op == OpCreate || op == OpCancel || op == OpReschedule {
			commands += n
		}
		fmt.Fprintf(w, "| %s | %d | %.1f | %s | %s | %s | %d | %d |\n", op, n, perSecond(n, l.Elapsed),
			ms(percentile(s.Latencies, 50)), ms(percentile(s.Latencies, 95)), ms(percentile(s.Latencies, 99)), s.Conflicts, s.Failures)
	}
	fmt.Fprintf(w, "| **all** | %d | %.1f | %s | %s | %s | %d | %d |\n", total, perSecond(total, l.Elapsed),
		ms(percentile(all, 50)), ms(percentile(all, 95)), ms(percentile(all, 99)), conflicts, failed)
	fmt.Fprintln(w)
	if writes > 0 {
		fmt.Fprintf(w, "409 booking_conflict: %d of %d creates and reschedules (%.1f %%)\n", writeConflicts, writes, 100*float64(writeConflicts)/float64(writes))
	}
	fmt.Fprintf(w, "commands (create, cancel, reschedule): %.1f/s over %s\n", perSecond(commands, l.Elapsed), l.Elapsed.Round(time.Millisecond))
	if c.Rate > 0 {
		fmt.Fprintf(w, "operations not started on time (all clients busy): %d\n", l.Missed)
	}
	if n := len(l.Lag); n > 0 {
		fmt.Fprintf(w, "projection lag (GET /bookings with X-Min-Position after one command in %d, %d samples): p50 %s ms, p95 %s ms, p99 %s ms, max %s ms",
			c.LagEvery, n, ms(percentile(l.Lag, 50)), ms(percentile(l.Lag, 95)), ms(percentile(l.Lag, 99)), ms(percentile(l.Lag, 100)))
	} else {
		fmt.Fprint(w, "projection lag: no sample")
	}
	fmt.Fprintf(w, "; 504 after 5 s: %d, failed: %d, not sent (probers busy): %d\n", l.LagTimeouts, l.LagFailures, l.LagDropped)
	for _, op := range allOps {
		if s := l.Ops[op]; s != nil {
			for _, x := range s.Samples {
				fmt.Fprintf(w, "failure: %s\n", oneLine(x, 300))
			}
		}
	}

	if len(r.Baselines) > 0 {
		fmt.Fprintf(w, "\nPostgreSQL baselines, %d clients (one connection each), %s each, the load's slots over at least %d resources:\n\n",
			c.Concurrency, c.BaselineDuration, baselineResources)
		fmt.Fprintf(w, "| baseline | inserts | per second | p50 ms | p95 ms | p99 ms | conflicts | failed |\n")
		fmt.Fprintf(w, "| --- | --- | --- | --- | --- | --- | --- | --- |\n")
		for _, b := range r.Baselines {
			n := len(b.Latencies)
			fmt.Fprintf(w, "| %s | %d | %.1f | %s | %s | %s | %d | %d |\n", b.Name, n, perSecond(n, b.Elapsed),
				ms(percentile(b.Latencies, 50)), ms(percentile(b.Latencies, 95)), ms(percentile(b.Latencies, 99)), b.Conflicts, b.Failures)
		}
		fmt.Fprintln(w)
		for _, b := range r.Baselines {
			fmt.Fprintf(w, "- %s: %s\n", b.Name, b.What)
			for _, x := range b.Samples {
				fmt.Fprintf(w, "  failure: %s\n", oneLine(x, 300))
			}
		}
		create := l.Ops[OpCreate]
		fmt.Fprintln(w)
		for _, b := range r.Baselines {
			bps := perSecond(len(b.Latencies), b.Elapsed)
			if bps == 0 {
				continue
			}
			fmt.Fprintf(w, "ratio: API commands/s (in the mix above) ÷ %s/s = %.2f", b.Name, perSecond(commands, l.Elapsed)/bps)
			if create != nil && len(create.Latencies) > 0 {
				fmt.Fprintf(w, "; create p50 ÷ %s p50 = %.1f", b.Name,
					float64(percentile(create.Latencies, 50))/float64(max(percentile(b.Latencies, 50), 1)))
			}
			fmt.Fprintln(w)
		}
	}

	if len(r.Audits) > 0 {
		fmt.Fprintln(w)
		for _, a := range r.Audits {
			verdict := "passed"
			switch {
			case a.Err != nil:
				verdict = "could not run: " + a.Err.Error()
			case !a.Passed:
				verdict = "FAILED"
			}
			fmt.Fprintf(w, "audit: `%s`: %s\n", a.Command, verdict)
			for l := range strings.Lines(a.Output) {
				if !a.Passed || strings.HasPrefix(l, "audited ") {
					fmt.Fprintf(w, "  %s", l)
					if !strings.HasSuffix(l, "\n") {
						fmt.Fprintln(w)
					}
				}
			}
		}
	}
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}
