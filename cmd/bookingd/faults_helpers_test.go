package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// faultProc is a bookingd OS process of the fault suite: this test binary
// run as bookingd (runChildIfAsked) with an environment of the test's
// choosing, which the test may SIGKILL.
type faultProc struct {
	name string
	cmd  *exec.Cmd
	// Base is the API root, http://127.0.0.1:<port>.
	Base string

	mu     sync.Mutex
	log    bytes.Buffer
	exited chan struct{}
	err    error
}

// Log returns what the process wrote so far.
func (p *faultProc) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

func (p *faultProc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.Write(b)
}

// Kill9 sends SIGKILL and waits until the process is gone: nothing of it
// runs afterwards, no deferred cleanup, no shutdown.
func (p *faultProc) Kill9(tb testing.TB) {
	tb.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		tb.Fatalf("kill -9 %s: %v", p.name, err)
	}
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		tb.Fatalf("%s did not die within 30 s of SIGKILL", p.name)
	}
}

// waitLog waits until the process logged a JSON line whose msg is msg.
func (p *faultProc) waitLog(tb testing.TB, msg string, within time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if strings.Contains(p.Log(), `"msg":"`+msg+`"`) {
			return
		}
		select {
		case <-p.exited:
			tb.Fatalf("%s exited while the test waited for %q", p.name, msg)
		case <-time.After(50 * time.Millisecond):
		}
	}
	tb.Fatalf("%s did not log %q within %s\n%s", p.name, msg, within, lastLines(p.Log(), 50))
}

// startFaultProc starts this test binary (test names the test, which must
// call runChildIfAsked first) as bookingd with env (DATABASE_URL,
// REDIS_URL, JWT_SECRET, …) added to the environment, and waits until the
// process logged its address. The process is stopped (SIGINT, then
// SIGKILL after 15 s) when tb ends, and the end of its log is printed if
// tb failed.
func startFaultProc(tb testing.TB, test, name string, env ...string) *faultProc {
	tb.Helper()
	p := &faultProc{name: name, exited: make(chan struct{})}
	args := []string{"-test.run=^" + test + "$", "-test.count=1", "-test.timeout=0"}
	p.cmd = exec.Command(os.Args[0], args...)
	p.cmd.Env = append(os.Environ(), envChild+"=1", "HTTP_ADDR=127.0.0.1:0", "LOG_FORMAT=json")
	p.cmd.Env = append(p.cmd.Env, env...)
	stdin, err := p.cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	p.cmd.Stdout = p
	if err := p.cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", name, err)
	}
	addr := make(chan string, 1)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			line := sc.Bytes()
			_, _ = p.Write(append(line, '\n'))
			var rec struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(line, &rec) == nil && rec.Msg == "bookingd listening" && rec.Addr != "" {
				select {
				case addr <- rec.Addr:
				default:
				}
			}
		}
	}()
	go func() {
		<-copied
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	tb.Cleanup(func() {
		_ = stdin.Close()
		_ = p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.exited:
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if tb.Failed() {
			tb.Logf("log of %s (last 150 lines):\n%s", name, lastLines(p.Log(), 150))
		}
	})
	select {
	case a := <-addr:
		p.Base = "http://" + a
	case <-p.exited:
		tb.Fatalf("%s exited before listening: %v\n%s", name, p.err, p.Log())
	case <-time.After(60 * time.Second):
		tb.Fatalf("%s did not report its address within 60 s\n%s", name, p.Log())
	}
	return p
}

// faultFreePort returns a TCP port on 127.0.0.1 that nothing listened on a
// moment ago.
func faultFreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// ---- a PostgreSQL server of the test's own ----

// throwawayPG is a PostgreSQL server from the local binaries (initdb,
// pg_ctl) in a temporary folder, on a free port, that the test may stop
// and start. As root it runs as the user postgres (or nobody), since
// PostgreSQL refuses to run as root.
type throwawayPG struct {
	bin, dir, data, logFile string
	port                    int
	runAs                   *user.User
	// URL is a superuser URL of its postgres database.
	URL string
}

// pgBinDir returns the folder of initdb and pg_ctl: PATH, else the newest
// /usr/lib/postgresql/*/bin.
func pgBinDir() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if _, err := exec.LookPath("initdb"); err == nil {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	best, bestV := "", -1
	for _, d := range dirs {
		v, err := strconv.Atoi(filepath.Base(filepath.Dir(d)))
		if err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil && v > bestV {
			best, bestV = d, v
		}
	}
	if best == "" {
		return "", errors.New("initdb and pg_ctl are neither on PATH nor under /usr/lib/postgresql/*/bin (apt-get install postgresql)")
	}
	return best, nil
}

// startThrowawayPG initialises and starts a server; it is stopped and its
// folder removed when tb ends.
func startThrowawayPG(tb testing.TB) *throwawayPG {
	tb.Helper()
	bin, err := pgBinDir()
	if err != nil {
		tb.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "booking-faults-pg-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = os.RemoveAll(dir) })
	pg := &throwawayPG{bin: bin, dir: dir, data: filepath.Join(dir, "data"), logFile: filepath.Join(dir, "postgres.log")}
	if os.Geteuid() == 0 {
		for _, name := range []string{"postgres", "nobody"} {
			if u, err := user.Lookup(name); err == nil {
				pg.runAs = u
				break
			}
		}
		if pg.runAs == nil {
			tb.Fatal("running as root and neither user postgres nor nobody exists to run PostgreSQL")
		}
		uid, _ := strconv.Atoi(pg.runAs.Uid)
		gid, _ := strconv.Atoi(pg.runAs.Gid)
		if err := os.Chmod(dir, 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.Chown(dir, uid, gid); err != nil {
			tb.Fatal(err)
		}
	}
	if out, err := pg.run("initdb", "-D", pg.data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync"); err != nil {
		tb.Fatalf("initdb: %v\n%s", err, out)
	}
	pg.port = faultFreePort(tb)
	pg.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", pg.port)
	tb.Cleanup(func() {
		if _, err := pg.run("pg_ctl", "-D", pg.data, "-m", "immediate", "-w", "-t", "30", "stop"); err != nil {
			if b, err := os.ReadFile(filepath.Join(pg.data, "postmaster.pid")); err == nil {
				if pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0])); err == nil {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
	})
	pg.Start(tb)
	return pg
}

// run runs a PostgreSQL program as the server's user.
func (pg *throwawayPG) run(prog string, args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(pg.bin, prog), args...)
	cmd.Dir = "/"
	if pg.runAs != nil {
		uid, _ := strconv.Atoi(pg.runAs.Uid)
		gid, _ := strconv.Atoi(pg.runAs.Gid)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		cmd.Env = append(os.Environ(), "HOME="+pg.dir)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Start starts the server on its port and waits until it accepts
// connections.
func (pg *throwawayPG) Start(tb testing.TB) {
	tb.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
		pg.port, pg.dir)
	if out, err := pg.run("pg_ctl", "-D", pg.data, "-l", pg.logFile, "-w", "-t", "60", "-o", opts, "start"); err != nil {
		b, _ := os.ReadFile(pg.logFile)
		tb.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, b)
	}
}

// Stop stops the server: mode "fast" disconnects every session and shuts
// down cleanly, "immediate" is a crash.
func (pg *throwawayPG) Stop(tb testing.TB, mode string) {
	tb.Helper()
	if out, err := pg.run("pg_ctl", "-D", pg.data, "-m", mode, "-w", "-t", "60", "stop"); err != nil {
		tb.Fatalf("pg_ctl stop: %v\n%s", err, out)
	}
}

// ---- a Redis server of the test's own, behind a proxy it can cut ----

// startRedis starts redis-server on a free port without persistence; it is
// stopped when tb ends. It returns the server's address.
func startRedis(tb testing.TB) string {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		for _, p := range []string{"/usr/bin/redis-server", "/usr/sbin/redis-server", "/usr/local/bin/redis-server"} {
			if _, err := os.Stat(p); err == nil {
				bin = p
				break
			}
		}
	}
	if bin == "" {
		tb.Fatal("redis-server is not installed (apt-get install redis-server)")
	}
	dir := tb.TempDir()
	for attempt := 0; attempt < 3; attempt++ {
		port := faultFreePort(tb)
		cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", dir, "--daemonize", "no")
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		if err := cmd.Start(); err != nil {
			tb.Fatal(err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		for i := 0; i < 100; i++ {
			if redisPing(addr) == nil {
				tb.Cleanup(func() {
					_ = cmd.Process.Kill()
					<-done
				})
				return addr
			}
			select {
			case <-done:
				i = 100
			case <-time.After(50 * time.Millisecond):
			}
		}
		_ = cmd.Process.Kill()
		<-done
	}
	tb.Fatal("redis-server did not start")
	return ""
}

func redisPing(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// tcpProxy forwards 127.0.0.1:<port> to a target. Cut closes every
// forwarded connection and refuses new ones (accepting and closing them
// at once, as a dead server's host would reset them) until Restore.
type tcpProxy struct {
	target string
	ln     net.Listener

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// startProxy listens on a free port; it stops when tb ends.
func startProxy(tb testing.TB, target string) *tcpProxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &tcpProxy{target: target, ln: ln, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	tb.Cleanup(func() {
		_ = ln.Close()
		p.Cut()
		p.wg.Wait()
	})
	return p
}

// Addr is the address clients dial.
func (p *tcpProxy) Addr() string { return p.ln.Addr().String() }

func (p *tcpProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		up, err := net.DialTimeout("tcp", p.target, 2*time.Second)
		if err != nil {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		pipe := func(dst, src net.Conn) {
			defer p.wg.Done()
			_, _ = io.Copy(dst, src)
			_ = dst.Close()
			_ = src.Close()
			p.mu.Lock()
			delete(p.conns, dst)
			delete(p.conns, src)
			p.mu.Unlock()
		}
		go pipe(up, c)
		go pipe(c, up)
	}
}

// Cut drops every connection and refuses new ones.
func (p *tcpProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		_ = c.Close()
	}
}

// Restore forwards new connections again.
func (p *tcpProxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}

// ---- bookingctl ----

// bookingctlPath builds cmd/bookingctl into a temporary folder of tb (the
// go command's cache makes that a link step) and returns the binary; the
// folder goes when tb ends.
func bookingctlPath(tb testing.TB) string {
	tb.Helper()
	if p, ok := builtBookingctl.Load(tb); ok {
		return p.(string)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		tb.Fatalf("the go command builds bookingctl for the audit: %v", err)
	}
	bin := filepath.Join(tb.TempDir(), "bookingctl")
	if out, err := exec.Command(goBin, "build", "-o", bin, "github.com/bookingengine/booking/cmd/bookingctl").CombinedOutput(); err != nil {
		tb.Fatalf("go build ./cmd/bookingctl: %v\n%s", err, out)
	}
	builtBookingctl.Store(tb, bin)
	tb.Cleanup(func() { builtBookingctl.Delete(tb) })
	return bin
}

// builtBookingctl maps a running test to its bookingctl binary.
var builtBookingctl sync.Map

// runBookingctl runs the bookingctl binary on dbURL and returns its
// output and exit status.
func runBookingctl(tb testing.TB, dbURL string, args ...string) (stdout, stderr string, code int) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bookingctlPath(tb), args...)
	cmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		tb.Fatalf("bookingctl %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errb.String(), code
}

// mustAudit runs `bookingctl audit` and fails tb unless it finds nothing.
func mustAudit(tb testing.TB, dbURL string, args ...string) string {
	tb.Helper()
	out, errOut, code := runBookingctl(tb, dbURL, append([]string{"audit"}, args...)...)
	if code != 0 {
		tb.Fatalf("bookingctl audit exited %d:\n%s%s", code, out, errOut)
	}
	tb.Logf("bookingctl audit: %s", strings.TrimSpace(out))
	return out
}
