// Command bookingbench measures a running bookingd under a realistic load
// and proves it kept its promise while doing so.
//
// It seeds tenants, resources and clients through the HTTP API of the
// bookingd at --target, then drives a mix of operations (create, cancel
// and reschedule bookings; free slots; the booking list; resource
// calendars when the API has them) from --concurrency clients, or at a
// fixed --rate, for --duration. It prints throughput and p50/p95/p99
// latency per operation, the share of commands refused with 409
// booking_conflict, and the projection lag: for a sample of commands, how
// long a GET /bookings with X-Min-Position set to the command's X-Position
// waits until the read side has applied it.
//
// In the same run it measures, on the database at --database-url (the one
// bookingd uses) and at the same concurrency, the cheapest way PostgreSQL
// can do the same work: an INSERT into a table whose tstzrange column is
// guarded by EXCLUDE USING gist (what refusing double bookings costs at
// the least), and a bare INSERT into a copy of booking_events (what
// storing an event costs at the least), and prints the ratios. It ends
// with `bookingctl audit` on every tenant it created.
//
// bookingbench does not start bookingd: run one (or several behind a
// gateway) with the same JWT_SECRET, e.g.
//
//	DATABASE_URL=postgres://… JWT_SECRET=bench HTTP_ADDR=127.0.0.1:8080 bookingd &
//	bookingbench --target http://127.0.0.1:8080 --database-url postgres://… --jwt-secret bench
//
// It sends traffic only where --target points and writes only to the
// tables it creates and drops (bench_*) besides what the API writes.
//
// Exit status: 0 when every request was answered as expected and the
// audit passed, 1 otherwise, 2 for a usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	// Zones of the seeded tenants must load on hosts without zone files.
	_ "time/tzdata"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// Config is one run's configuration, from flags (and DATABASE_URL and
// JWT_SECRET when the flags are not given).
type Config struct {
	Target      string
	DatabaseURL string
	JWTSecret   string

	Tenants   int
	Resources int // per tenant
	Users     int // per tenant

	Concurrency int
	Rate        float64 // operations per second; 0: closed loop
	Duration    time.Duration
	Mix         Mix
	// LagEvery measures the projection lag after every n-th command.
	LagEvery int
	// HorizonDays is how far ahead bookings are drawn.
	HorizonDays int
	Seed        uint64

	BaselineDuration time.Duration
	SkipBaselines    bool
	SkipAudit        bool
	// Bookingctl is the bookingctl binary; empty looks beside this
	// binary, then on PATH, then runs it with `go run`.
	Bookingctl string
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	if c.Target == "" {
		errs = append(errs, errors.New("--target is required: the root of a running bookingd's API, e.g. http://127.0.0.1:8080"))
	} else if u, err := url.Parse(c.Target); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("--target %q: want an http:// or https:// URL", c.Target))
	}
	if c.JWTSecret == "" {
		errs = append(errs, errors.New("--jwt-secret (or JWT_SECRET) is required: bookingd's HS256 secret, to mint the tokens of the seeded tenants"))
	}
	if c.DatabaseURL == "" && (!c.SkipBaselines || !c.SkipAudit) {
		errs = append(errs, errors.New("--database-url (or DATABASE_URL) is required for the baselines and the audit (or pass --skip-baselines --skip-audit)"))
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"tenants", c.Tenants}, {"resources", c.Resources}, {"users", c.Users}, {"concurrency", c.Concurrency}, {"lag-every", c.LagEvery}, {"horizon-days", c.HorizonDays}} {
		if f.v < 1 {
			errs = append(errs, fmt.Errorf("--%s must be at least 1", f.name))
		}
	}
	if c.Rate < 0 {
		errs = append(errs, errors.New("--rate must not be negative"))
	}
	if c.Duration <= 0 {
		errs = append(errs, errors.New("--duration must be positive"))
	}
	if !c.SkipBaselines && c.BaselineDuration <= 0 {
		errs = append(errs, errors.New("--baseline-duration must be positive"))
	}
	return errors.Join(errs...)
}

// Operations of the mix.
const (
	OpCreate       = "create"
	OpCancel       = "cancel"
	OpReschedule   = "reschedule"
	OpAvailability = "availability"
	OpList         = "list"
	OpCalendar     = "calendar"
)

// allOps lists the operations in the order the report shows them.
var allOps = []string{OpCreate, OpCancel, OpReschedule, OpAvailability, OpList, OpCalendar}

// Mix weighs the operations: each is drawn with probability weight/sum.
type Mix map[string]int

// DefaultMix is a booking site's day: mostly looking, some booking.
const DefaultMix = "create=30,cancel=8,reschedule=7,availability=25,list=20,calendar=10"

// ParseMix parses "create=30,cancel=8,…"; unknown operations, negative
// or missing weights and an all-zero mix are errors.
func ParseMix(s string) (Mix, error) {
	m := Mix{}
	total := 0
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, w, ok := strings.Cut(part, "=")
		name = strings.TrimSpace(name)
		if !ok {
			return nil, fmt.Errorf("mix %q: want op=weight", part)
		}
		known := false
		for _, op := range allOps {
			known = known || op == name
		}
		if !known {
			return nil, fmt.Errorf("mix: unknown operation %q (want %s)", name, strings.Join(allOps, ", "))
		}
		n, err := strconv.Atoi(strings.TrimSpace(w))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("mix: weight of %s must be a non-negative integer, got %q", name, w)
		}
		m[name] = n
		total += n
	}
	if total == 0 {
		return nil, errors.New("mix: every weight is zero")
	}
	return m, nil
}

// String renders the mix in ParseMix's syntax, operations in report
// order.
func (m Mix) String() string {
	var parts []string
	for _, op := range allOps {
		if w, ok := m[op]; ok {
			parts = append(parts, fmt.Sprintf("%s=%d", op, w))
		}
	}
	return strings.Join(parts, ",")
}

// ConfigFromArgs reads flags, with DATABASE_URL and JWT_SECRET from getenv
// as defaults.
func ConfigFromArgs(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	c := Config{}
	fs := flag.NewFlagSet("bookingbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Target, "target", "", "root of the bookingd API under test, e.g. http://127.0.0.1:8080 (required)")
	fs.StringVar(&c.DatabaseURL, "database-url", "", "PostgreSQL of that bookingd, for the baselines and the audit (default: env DATABASE_URL)")
	fs.StringVar(&c.JWTSecret, "jwt-secret", "", "bookingd's HS256 secret, to mint tokens (default: env JWT_SECRET)")
	fs.IntVar(&c.Tenants, "tenants", 2, "tenants to seed")
	fs.IntVar(&c.Resources, "resources", 50, "resources per tenant (four in five of capacity 1, the rest 3)")
	fs.IntVar(&c.Users, "users", 20, "clients per tenant")
	fs.IntVar(&c.Concurrency, "concurrency", 16, "concurrent clients (with --rate: the most requests in flight)")
	fs.Float64Var(&c.Rate, "rate", 0, "operations per second, open loop (latency counted from the scheduled start); 0: each client sends as fast as it is answered")
	fs.DurationVar(&c.Duration, "duration", 30*time.Second, "how long to drive the mix")
	mix := fs.String("mix", DefaultMix, "operation weights")
	fs.IntVar(&c.LagEvery, "lag-every", 5, "measure the projection lag after every n-th command")
	fs.IntVar(&c.HorizonDays, "horizon-days", 60, "bookings fall on the next n days")
	fs.Uint64Var(&c.Seed, "seed", 0, "random seed (0: from the clock)")
	fs.DurationVar(&c.BaselineDuration, "baseline-duration", 10*time.Second, "how long each PostgreSQL baseline runs")
	fs.BoolVar(&c.SkipBaselines, "skip-baselines", false, "do not measure the PostgreSQL baselines")
	fs.BoolVar(&c.SkipAudit, "skip-audit", false, "do not run bookingctl audit at the end")
	fs.StringVar(&c.Bookingctl, "bookingctl", "", "bookingctl binary for the audit (default: beside this binary, on PATH, else go run)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if c.DatabaseURL == "" {
		c.DatabaseURL = getenv("DATABASE_URL")
	}
	if c.JWTSecret == "" {
		c.JWTSecret = getenv("JWT_SECRET")
	}
	c.Target = strings.TrimRight(c.Target, "/")
	m, err := ParseMix(*mix)
	if err != nil {
		return c, err
	}
	c.Mix = m
	if c.Seed == 0 {
		c.Seed = uint64(time.Now().UnixNano())
	}
	return c, c.Validate()
}

// run is the whole command; it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	cfg, err := ConfigFromArgs(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "bookingbench:", strings.ReplaceAll(err.Error(), "\n", "; "))
		return 2
	}
	rep, err := Bench(ctx, cfg, stderr)
	if rep != nil {
		rep.Write(stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "bookingbench:", err)
		return 1
	}
	if !rep.OK() {
		return 1
	}
	return 0
}

// Bench runs the whole measurement: seed, load, baselines, audit. The
// report is returned even when a later step failed, with what was
// measured; progress goes to log.
func Bench(ctx context.Context, cfg Config, log io.Writer) (*Report, error) {
	rep := &Report{Config: cfg, Started: time.Now()}
	api, err := newAPI(cfg)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "seeding %d tenants × %d resources and %d clients through %s\n", cfg.Tenants, cfg.Resources, cfg.Users, cfg.Target)
	t0 := time.Now()
	world, err := seed(ctx, api, cfg)
	if err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	rep.SeedTime = time.Since(t0)
	rep.World = world
	if cfg.Mix[OpCalendar] > 0 && !world.Calendars {
		rep.Notes = append(rep.Notes, fmt.Sprintf("calendar: skipped, the API has no resource calendars (%s)", world.CalendarProbe))
	}
	fmt.Fprintf(log, "seeded in %s; driving %s for %s\n", rep.SeedTime.Round(time.Millisecond), cfg.Mix, cfg.Duration)
	rep.Load = drive(ctx, api, world, cfg)
	if ctx.Err() != nil {
		return rep, ctx.Err()
	}
	if !cfg.SkipBaselines {
		fmt.Fprintf(log, "baselines: %s each at concurrency %d\n", cfg.BaselineDuration, cfg.Concurrency)
		rep.Baselines, err = runBaselines(ctx, cfg, world)
		if err != nil {
			return rep, fmt.Errorf("baselines: %w", err)
		}
	}
	if !cfg.SkipAudit {
		fmt.Fprintln(log, "audit: bookingctl audit on every seeded tenant")
		rep.Audits = runAudits(ctx, cfg, world)
	}
	rep.Finished = time.Now()
	return rep, nil
}
