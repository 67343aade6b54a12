// Command bookingctl is the operator's tool for the booking engine: it
// migrates the database, shows the history of a booking, a resource or a
// tenant, reconstructs an aggregate as it stood at a past moment, verifies
// the event store's hash chains, mints tokens and rebuilds read models.
//
// It is configured like bookingd: DATABASE_URL (or --database-url) names the
// PostgreSQL database for every subcommand but token, which signs with
// JWT_SECRET (or --jwt-secret). Unlike bookingd it never falls back to an
// in-memory store: an operator's tool that silently looked at an empty
// store would answer audit questions wrongly.
//
// Exit status: 0 on success, 1 when the work failed (or verify found a
// break), 2 for a usage error. Errors are one line on stderr.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	// The binary carries the IANA zone database, so replayed policies read
	// business hours correctly on hosts without zone files.
	_ "time/tzdata"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := (&Main{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}).Run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// Main is one invocation of bookingctl. Tests run it in-process with their
// own writers and environment; main runs it with the process's.
type Main struct {
	// Stdout receives the requested output (events, state, tokens).
	Stdout io.Writer
	// Stderr receives errors and progress.
	Stderr io.Writer
	// Getenv reads the environment (os.Getenv in the binary).
	Getenv func(string) string
	// Now is the clock for token issue times and the default of --at;
	// nil means time.Now.
	Now func() time.Time
	// Terminal reports whether Stderr is a terminal, which switches the
	// replay progress from plain lines to a redrawn bar; nil detects it.
	Terminal func() bool
}

// command is one subcommand.
type command struct {
	name     string
	synopsis string
	run      func(ctx context.Context, m *Main, args []string) error
}

// subcommands lists the subcommands in the order the usage shows them.
func subcommands() []command {
	return []command{
		{"migrate", "apply every pending database migration (safe to run twice)", runMigrate},
		{"history", "print the events of a booking, a resource or a tenant", runHistory},
		{"state", "show a booking or a resource as it stood at a moment", runState},
		{"verify", "check the hash chain and version sequence of the event store", runVerify},
		{"token", "mint a bearer token signed with JWT_SECRET", runToken},
		{"replay", "rebuild read models from the event store and swap them in", runReplay},
		{"audit", "look for double bookings in the event store and the read model", runAudit},
	}
}

// Run executes the subcommand named by args[0] and returns the process exit
// status: 0 on success (and for --help), 1 when the work failed, 2 for a
// usage error. Every error is written to Stderr as one line.
func (m *Main) Run(ctx context.Context, args []string) int {
	if m.Getenv == nil {
		m.Getenv = func(string) string { return "" }
	}
	if len(args) == 0 {
		fmt.Fprintln(m.Stderr, "bookingctl: no command given (see bookingctl --help)")
		return 2
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help", "help":
		m.usage(m.Stdout)
		return 0
	}
	for _, c := range subcommands() {
		if c.name == name {
			return m.exit(name, c.run(ctx, m, args[1:]))
		}
	}
	fmt.Fprintf(m.Stderr, "bookingctl: unknown command %q (see bookingctl --help)\n", name)
	return 2
}

func (m *Main) usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: bookingctl <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range subcommands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.synopsis)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Environment: DATABASE_URL (all commands but token), JWT_SECRET (token).")
	fmt.Fprintln(w, "Run bookingctl <command> --help for the flags of a command.")
}

// exit turns a subcommand's error into the exit status and its one line.
func (m *Main) exit(name string, err error) int {
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, errHelpShown):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(m.Stderr, "bookingctl %s: %s (see bookingctl %s --help)\n", name, oneLine(ue.msg), name)
		return 2
	default:
		fmt.Fprintf(m.Stderr, "bookingctl %s: %s\n", name, oneLine(err.Error()))
		return 1
	}
}

// oneLine joins a multi-line message (errors.Join) so that every error
// stays one line on stderr.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}

func (m *Main) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// errHelpShown reports that --help printed the usage: exit 0.
var errHelpShown = errors.New("help shown")

// usageError is a mistake in the command line or the configuration: exit 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// flags is a subcommand's flag set. It prints nothing by itself: parse
// turns its errors into one-line usage errors and prints the help
// (synopsis, then the flags) to Stdout on --help.
type flags struct {
	*flag.FlagSet
	stdout   io.Writer
	synopsis string
}

func (m *Main) flagSet(name, synopsis string) *flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &flags{FlagSet: fs, stdout: m.Stdout, synopsis: synopsis}
}

// parse parses args and refuses positional arguments.
func (f *flags) parse(args []string) error {
	if err := f.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(f.stdout, "Usage: bookingctl %s\n\nFlags:\n", f.synopsis)
			f.SetOutput(f.stdout)
			f.PrintDefaults()
			f.SetOutput(io.Discard)
			return errHelpShown
		}
		return &usageError{msg: err.Error()}
	}
	if f.NArg() > 0 {
		return usagef("unexpected argument %q", f.Arg(0))
	}
	return nil
}

// given returns the names of the flags given on the command line.
func (f *flags) given() map[string]bool {
	set := map[string]bool{}
	f.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	return set
}

// exactlyOne fails unless exactly one of the named flags was given.
func (f *flags) exactlyOne(names ...string) error {
	set := f.given()
	n := 0
	for _, name := range names {
		if set[name] {
			n++
		}
	}
	if n != 1 {
		return usagef("give exactly one of --%s", strings.Join(names, ", --"))
	}
	return nil
}

// fromEnv returns the flag's value, or when the flag was not given the
// environment variable's. Defaults are not put into the flag itself so
// that --help never prints a secret or a password from the environment.
func (m *Main) fromEnv(v *string, env string) string {
	if *v != "" {
		return *v
	}
	return m.Getenv(env)
}
