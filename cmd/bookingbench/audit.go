package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
)

// AuditResult is `bookingctl audit --tenant` of one seeded tenant.
type AuditResult struct {
	Tenant  uuid.UUID
	Command string
	// Passed is true when bookingctl exited 0.
	Passed bool
	Output string
	Err    error
}

// bookingctlCommand returns the command that runs bookingctl: --bookingctl,
// else a bookingctl beside this binary, else one on PATH, else `go run`
// of the module's cmd/bookingctl (which works inside the repository).
func bookingctlCommand(cfg Config) []string {
	if cfg.Bookingctl != "" {
		return []string{cfg.Bookingctl}
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "bookingctl")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return []string{p}
		}
	}
	if p, err := exec.LookPath("bookingctl"); err == nil {
		return []string{p}
	}
	return []string{"go", "run", "github.com/bookingengine/booking/cmd/bookingctl"}
}

// runAudits runs the overlap audit on every seeded tenant, waiting up to a
// minute for the read side to catch up.
func runAudits(ctx context.Context, cfg Config, w *world) []AuditResult {
	base := bookingctlCommand(cfg)
	var out []AuditResult
	for _, t := range w.Tenants {
		args := append(append([]string{}, base[1:]...), "audit", "--tenant", t.ID.String(), "--wait", "60s")
		cctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		cmd := exec.CommandContext(cctx, base[0], args...)
		cmd.Env = append(os.Environ(), "DATABASE_URL="+cfg.DatabaseURL)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		cancel()
		r := AuditResult{Tenant: t.ID, Command: "bookingctl audit --tenant " + t.ID.String(),
			Output: strings.TrimSpace(stdout.String() + stderr.String())}
		var ee *exec.ExitError
		switch {
		case err == nil:
			r.Passed = true
		case errors.As(err, &ee):
		default:
			r.Err = err
		}
		out = append(out, r)
	}
	return out
}
