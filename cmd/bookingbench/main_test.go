package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/internal/testenv"
)

func TestParseMix(t *testing.T) {
	t.Parallel()
	m, err := ParseMix(DefaultMix)
	require.NoError(t, err)
	require.Equal(t, DefaultMix, m.String())
	m, err = ParseMix(" create = 3 , list=0 ")
	require.NoError(t, err)
	require.Equal(t, Mix{OpCreate: 3, OpList: 0}, m)
	for _, bad := range []string{"", "create", "create=-1", "create=x", "delete=1", "list=0"} {
		_, err := ParseMix(bad)
		require.Error(t, err, bad)
	}
}

func TestConfigFromArgs(t *testing.T) {
	t.Parallel()
	env := map[string]string{"DATABASE_URL": "postgres://db", "JWT_SECRET": "s"}
	c, err := ConfigFromArgs([]string{"--target", "http://127.0.0.1:8080/", "--rate", "50"}, func(k string) string { return env[k] }, &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, "http://127.0.0.1:8080", c.Target)
	require.Equal(t, "postgres://db", c.DatabaseURL)
	require.Equal(t, 50.0, c.Rate)
	require.NotZero(t, c.Seed)

	_, err = ConfigFromArgs([]string{"--target", "127.0.0.1:8080", "--concurrency", "0", "--duration", "0s"}, func(string) string { return "" }, &bytes.Buffer{})
	require.Error(t, err)
	for _, want := range []string{"--target", "--jwt-secret", "--database-url", "--concurrency", "--duration"} {
		require.Contains(t, err.Error(), want)
	}
	var out bytes.Buffer
	require.Equal(t, 2, run(context.Background(), []string{"--nope"}, &out, &out, func(string) string { return "" }))
	require.Equal(t, 0, run(context.Background(), []string{"--help"}, &out, &out, func(string) string { return "" }))
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	ds := []time.Duration{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}
	require.Equal(t, time.Duration(5), percentile(ds, 50))
	require.Equal(t, time.Duration(10), percentile(ds, 95))
	require.Equal(t, time.Duration(10), percentile(ds, 100))
	require.Equal(t, time.Duration(1), percentile(ds, 1))
	require.Zero(t, percentile(nil, 50))
}

// buildCmd builds a command of this module into dir.
func buildCmd(t *testing.T, dir, name string) string {
	t.Helper()
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", out, "github.com/bookingengine/booking/cmd/"+name)
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build %s: %s", name, b)
	return out
}

// TestBenchAgainstBookingd runs a short benchmark against a real bookingd
// process on a database of its own: every operation of the mix succeeds,
// the report has its tables, the baselines ran and the audit passed.
func TestBenchAgainstBookingd(t *testing.T) {
	dir := t.TempDir()
	bookingd := buildCmd(t, dir, "bookingd")
	bookingctl := buildCmd(t, dir, "bookingctl")
	dbURL := testenv.NewDatabase(t)
	secret := "bookingbench-test-secret-0123456789abcdef"

	cmd := exec.Command(bookingd)
	cmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL, "JWT_SECRET="+secret, "HTTP_ADDR=127.0.0.1:0", "LOG_FORMAT=json")
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	addr := make(chan string, 1)
	var logs bytes.Buffer
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			logs.Write(append(sc.Bytes(), '\n'))
			var rec struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "bookingd listening" {
				addr <- rec.Addr
			}
		}
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("bookingd log:\n%s", logs.String())
		}
	})
	var target string
	select {
	case a := <-addr:
		target = "http://" + a
	case <-exited:
		t.Fatal("bookingd exited before listening")
	case <-time.After(60 * time.Second):
		t.Fatal("bookingd did not listen within 60 s")
	}

	var stdout, progress bytes.Buffer
	code := run(t.Context(), []string{
		"--target", target, "--database-url", dbURL, "--jwt-secret", secret, "--bookingctl", bookingctl,
		"--tenants", "2", "--resources", "4", "--users", "3", "--concurrency", "4", "--duration", "3s",
		"--baseline-duration", "1s", "--lag-every", "1", "--seed", "7",
	}, &stdout, &progress, func(string) string { return "" })
	out := stdout.String()
	t.Logf("bookingbench:\n%s%s", out, progress.String())
	require.Equal(t, 0, code)
	for _, op := range []string{OpCreate, OpCancel, OpReschedule, OpAvailability, OpList} {
		require.Regexp(t, regexp.MustCompile(`(?m)^\| `+op+` \| [1-9]\d* \|.* \| 0 \|$`), out, "operation %s ran without failures", op)
	}
	require.Regexp(t, `projection lag \(GET /bookings with X-Min-Position after one command in 1, [1-9]\d* samples\)`, out)
	require.Regexp(t, `(?m)^\| exclusion INSERT \| [1-9]\d* \|`, out)
	require.Regexp(t, `(?m)^\| bare event INSERT \| [1-9]\d* \|`, out)
	require.Equal(t, 2, strings.Count(out, ": passed\n"), "an audit per tenant")
	require.Contains(t, out, "0 overlaps, 0 bucket disagreements, 0 read-model disagreements")
}
