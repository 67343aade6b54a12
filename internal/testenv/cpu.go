package testenv

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// CPUMeter reads the CPU time this process and the PostgreSQL backends
// serving one database have used, from /proc: a cost per request that
// other load on the machine distorts far less than throughput. It needs
// Linux and a local server; elsewhere ok is false and nothing is reported.
type CPUMeter struct {
	Pool *pgxpool.Pool
}

// clockTick is USER_HZ, 100 on every Linux ABI Go supports.
const clockTick = 10 * time.Millisecond

// backendCPU returns the CPU time of a single-threaded process (a
// PostgreSQL backend) in nanoseconds from /proc/<pid>/schedstat, whose
// first field counts them for the thread group's leader; a backend uses a
// few milliseconds per phase, below the 10 ms resolution of
// /proc/<pid>/stat, which it falls back to.
func backendCPU(pid string) (time.Duration, bool) {
	b, err := os.ReadFile("/proc/" + pid + "/schedstat")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			if ns, err := strconv.ParseInt(f[0], 10, 64); err == nil {
				return time.Duration(ns), true
			}
		}
	}
	return procCPU(pid)
}

// procCPU returns utime+stime of a process, all threads, from
// /proc/<pid>/stat.
func procCPU(pid string) (time.Duration, bool) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, false
	}
	// The fields after the parenthesised command start with the state
	// (field 3 of proc(5)); utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, false
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(u+s) * clockTick, true
}

// sample returns the CPU used so far by this process and by the
// database's client backends, keyed by pid.
func (m CPUMeter) sample() (self time.Duration, backends map[int32]time.Duration, ok bool) {
	self, ok = procCPU("self")
	if !ok || m.Pool == nil {
		return 0, nil, false
	}
	rows, err := m.Pool.Query(context.Background(),
		`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend'`)
	if err != nil {
		return 0, nil, false
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return 0, nil, false
	}
	backends = map[int32]time.Duration{}
	for _, pid := range pids {
		if d, ok := backendCPU(strconv.Itoa(int(pid))); ok {
			backends[pid] = d
		}
	}
	return self, backends, len(backends) > 0
}

// CPUUsage is the CPU a run used: in this process (a benchmark's clients
// and whatever it runs in process) and in PostgreSQL. OK is false when it
// could not be read.
type CPUUsage struct {
	Self, Postgres time.Duration
	OK             bool
}

// Measure runs fn and returns the CPU it used.
func (m CPUMeter) Measure(fn func()) CPUUsage {
	self0, pg0, ok0 := m.sample()
	fn()
	self1, pg1, ok1 := m.sample()
	if !ok0 || !ok1 {
		return CPUUsage{}
	}
	u := CPUUsage{Self: self1 - self0, OK: true}
	for pid, d := range pg1 {
		u.Postgres += d - pg0[pid] // a backend started during the run counts whole
	}
	return u
}
