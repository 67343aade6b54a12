package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	bhttp "github.com/bookingengine/booking/http"
	"github.com/bookingengine/booking/http/openapi/validator"
	"github.com/bookingengine/booking/internal/testenv"
)

// nginxConf is the gateway's configuration, relative to this package.
const nginxConf = "../../infra/nginx/nginx.conf"

// nginxBinary finds nginx: on PATH or where Debian installs it. The test
// fails without it: .ci/run installs the Debian package nginx.
func nginxBinary(tb testing.TB) string {
	tb.Helper()
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	tb.Fatal("nginx is not installed (apt-get install nginx): the gateway test needs the real nginx")
	return ""
}

// gatewayConfig derives a runnable configuration from infra/nginx/nginx.conf:
// the lines marked "test: replaced" point at the test's upstreams, listen
// address and files under prefix; every location block stays as written.
func gatewayConfig(tb testing.TB, prefix, listen string, upstreams []string) string {
	tb.Helper()
	raw, err := os.ReadFile(nginxConf)
	require.NoError(tb, err)
	var out []string
	servers := 0
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.Contains(line, "# test: replaced") {
			out = append(out, line)
			continue
		}
		directive := strings.Fields(line)[0]
		switch directive {
		case "user":
			out = append(out, "user root;")
		case "pid":
			out = append(out, "pid "+filepath.Join(prefix, "nginx.pid")+";")
		case "error_log":
			out = append(out, "error_log "+filepath.Join(prefix, "error.log")+" info;")
		case "access_log":
			out = append(out, "    access_log "+filepath.Join(prefix, "access.log")+" booking;")
			// Debian's nginx keeps temporary files under /var/lib/nginx;
			// keep the test's under its prefix.
			for _, t := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
				out = append(out, fmt.Sprintf("    %s_temp_path %s;", t, filepath.Join(prefix, t)))
			}
		case "server":
			if servers == 0 {
				for _, u := range upstreams {
					out = append(out, "        server "+u+" max_fails=3 fail_timeout=10s;")
				}
			}
			servers++
		case "listen":
			out = append(out, "        listen "+listen+";")
		default:
			tb.Fatalf("%s: no replacement for %q", nginxConf, strings.TrimSpace(line))
		}
	}
	require.Equal(tb, 2, servers, "the upstream of %s lists two replicas", nginxConf)
	return strings.Join(out, "\n")
}

// freePort returns a loopback address no one listens on right now.
func freePort(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	addr := l.Addr().String()
	require.NoError(tb, l.Close())
	return addr
}

// nginxProc is nginx run by a test in the foreground.
type nginxProc struct {
	Base   string
	prefix string
	mu     sync.Mutex
	out    bytes.Buffer
}

func (p *nginxProc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

// accessLog returns the JSON lines of nginx's access log.
func (p *nginxProc) accessLog(tb testing.TB) []map[string]any {
	tb.Helper()
	f, err := os.Open(filepath.Join(p.prefix, "access.log"))
	require.NoError(tb, err)
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec map[string]any
		require.NoError(tb, json.Unmarshal(sc.Bytes(), &rec), "%s", sc.Text())
		out = append(out, rec)
	}
	require.NoError(tb, sc.Err())
	return out
}

// startGateway runs nginx on the gateway configuration in front of
// upstreams (host:port) and returns once it answers /healthz.
func startGateway(tb testing.TB, upstreams []string) *nginxProc {
	tb.Helper()
	bin := nginxBinary(tb)
	prefix := tb.TempDir()
	for _, t := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi", "logs"} {
		require.NoError(tb, os.MkdirAll(filepath.Join(prefix, t), 0o755))
	}
	listen := freePort(tb)
	conf := filepath.Join(prefix, "nginx.conf")
	require.NoError(tb, os.WriteFile(conf, []byte(gatewayConfig(tb, prefix, listen, upstreams)), 0o644))
	args := []string{"-p", prefix, "-c", conf, "-e", filepath.Join(prefix, "error.log"), "-g", "daemon off;"}

	check, err := exec.Command(bin, append([]string{"-t", "-q"}, args...)...).CombinedOutput()
	require.NoError(tb, err, "nginx -t refuses the configuration derived from %s:\n%s", nginxConf, check)

	p := &nginxProc{Base: "http://" + listen, prefix: prefix}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = p, p
	require.NoError(tb, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	tb.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt) // SIGINT: fast shutdown
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if tb.Failed() {
			errLog, _ := os.ReadFile(filepath.Join(prefix, "error.log"))
			p.mu.Lock()
			tb.Logf("nginx output:\n%s\nnginx error log (last 50 lines):\n%s", p.out.String(), lastLines(string(errLog), 50))
			p.mu.Unlock()
		}
	})
	hc, _ := newCheckedClient(tb, nil, 5*time.Second)
	deadline := time.Now().Add(15 * time.Second)
	for {
		res, err := hc.Get(p.Base + "/healthz")
		if err == nil {
			_ = res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case err := <-exited:
			tb.Fatalf("nginx exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("nginx did not answer /healthz within 15 s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestNginxGateway runs the gateway of infra/nginx/nginx.conf in front of
// two bookingd processes on one database and drives bookings and queries
// through it.
func TestNginxGateway(t *testing.T) {
	if runChildIfAsked() {
		return
	}
	t.Parallel()
	nginxBinary(t)
	dbURL := testenv.NewDatabase(t)
	secret := newSecret(t)
	a := startBookingd(t, "TestNginxGateway", "bookingd-1", dbURL, secret)
	b := startBookingd(t, "TestNginxGateway", "bookingd-2", dbURL, secret)
	upstreams := []string{strings.TrimPrefix(a.Base, "http://"), strings.TrimPrefix(b.Base, "http://")}
	gw := startGateway(t, upstreams)
	hc := newHTTPClient(t)
	t.Cleanup(hc.CloseIdleConnections)

	// Tenant, resource and client through the gateway.
	f := mustFixture(t, hc, gw.Base, secret)
	room := f.mustResource(t, "Room", 1)
	api := f.as(gw.Base)
	day := dayStart(8)

	// Bookings: sequential requests are spread over both replicas.
	var ids []uuid.UUID
	for i := range 8 {
		start := day.Add(time.Duration(9+i) * time.Hour)
		res, err := api.do(context.Background(), http.MethodPost, "/bookings", f.bookingBody(room, start, start.Add(time.Hour)), nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusCreated, res.Status, describeResponse(res))
		require.Regexp(t, `^"[0-9]+"$`, res.Header.Get("ETag"), "the gateway keeps the strong ETag")
		require.NotEmpty(t, res.Header.Get("X-Position"))
		require.NotEmpty(t, res.Header.Get("X-Request-ID"))
		require.Contains(t, res.Header.Get("Access-Control-Expose-Headers"), "X-Position")
		var bk struct {
			ID uuid.UUID `json:"id"`
		}
		require.NoError(t, json.Unmarshal(res.Body, &bk))
		ids = append(ids, bk.ID)
	}

	// A conflict, as a problem with conflicts[].
	start := day.Add(9*time.Hour + 30*time.Minute)
	res, err := api.do(context.Background(), http.MethodPost, "/bookings", f.bookingBody(room, start, start.Add(time.Hour)), nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusConflict, res.Status, describeResponse(res))
	require.Equal(t, bhttp.ProblemContentType, res.Header.Get("Content-Type"))
	var p apiProblem
	require.NoError(t, json.Unmarshal(res.Body, &p))
	require.Equal(t, bhttp.CodeBookingConflict, p.Code)
	require.Len(t, p.Conflicts, 2)

	// The same conflict sent to both replicas at once: one booking wins.
	contested := day.Add(20 * time.Hour)
	var wg sync.WaitGroup
	statuses := make([]int, 6)
	for i := range statuses {
		wg.Go(func() {
			r, err := api.do(context.Background(), http.MethodPost, "/bookings", f.bookingBody(room, contested, contested.Add(time.Hour)), nil)
			if err == nil {
				statuses[i] = r.Status
			}
		})
	}
	wg.Wait()
	created := 0
	for _, s := range statuses {
		require.Contains(t, []int{http.StatusCreated, http.StatusConflict}, s)
		if s == http.StatusCreated {
			created++
		}
	}
	require.Equal(t, 1, created, "statuses %v", statuses)

	// Headers pass both ways: Idempotency-Key replays, If-Match guards,
	// X-Min-Position reads the writes on whichever replica answers.
	key := map[string]string{"Idempotency-Key": "gw-" + uuid.NewString()}
	late := day.Add(22 * time.Hour)
	body := f.bookingBody(room, late, late.Add(time.Hour))
	first, err := api.do(context.Background(), http.MethodPost, "/bookings", body, key)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, first.Status, describeResponse(first))
	for range 3 {
		again, err := api.do(context.Background(), http.MethodPost, "/bookings", body, key)
		require.NoError(t, err)
		require.Equal(t, http.StatusCreated, again.Status)
		require.Equal(t, "true", again.Header.Get(bhttp.HeaderIdempotentReplayed))
		require.Equal(t, first.Body, again.Body)
	}
	stale, err := api.do(context.Background(), http.MethodPost, "/bookings/"+ids[0].String()+"/cancel", nil, map[string]string{"If-Match": `"9"`})
	require.NoError(t, err)
	require.Equal(t, http.StatusPreconditionFailed, stale.Status, describeResponse(stale))
	got, err := api.do(context.Background(), http.MethodGet, "/bookings/"+ids[0].String(), nil, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, got.Status)
	cancelled, err := api.do(context.Background(), http.MethodPost, "/bookings/"+ids[0].String()+"/cancel", map[string]any{"reason": "gateway"},
		map[string]string{"If-Match": got.Header.Get("ETag")})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, cancelled.Status, describeResponse(cancelled))
	lastPosition := cancelled.Header.Get("X-Position")
	for range 4 {
		var page struct {
			Bookings []struct {
				ID     uuid.UUID `json:"id"`
				Status string    `json:"status"`
			} `json:"bookings"`
		}
		r := minPositionGet(t, api, "/bookings?resource_id="+room.String()+"&limit=100", lastPosition)
		require.NoError(t, json.Unmarshal(r.Body, &page))
		require.Len(t, page.Bookings, 10, "eight, the contested one and the idempotent one")
		require.Equal(t, ids[0], page.Bookings[0].ID)
		require.Equal(t, "cancelled", page.Bookings[0].Status, "X-Min-Position reached the replica that answered")
	}
	minPositionGet(t, api, "/availability?resource_id="+room.String()+
		"&from="+day.Format(time.RFC3339)+"&to="+day.AddDate(0, 0, 1).Format(time.RFC3339)+"&duration=60", lastPosition)

	// Tenant by domain, documentation and probes pass; /metrics and
	// unknown paths stop at the gateway; an oversized body is refused there.
	var tenant struct {
		Domain string `json:"domain"`
	}
	platform := apiClient{http: hc, base: gw.Base, token: mustToken(t, secret, bhttp.TokenRequest{Subject: "platform", Role: bhttp.RolePlatformAdmin})}
	platform.mustDo(t, http.MethodGet, "/tenants/"+f.TenantID.String(), nil, http.StatusOK, &tenant)
	byDomain := apiClient{http: hc, base: gw.Base, token: f.Admin.token}
	r, err := byDomain.do(context.Background(), http.MethodGet, "/bookings/"+ids[1].String(), nil, map[string]string{bhttp.HeaderTenantDomain: tenant.Domain})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, r.Status, describeResponse(r))
	for _, path := range []string{"/openapi.json", "/docs", "/docs/swagger-ui.css", "/redoc", "/healthz", "/readyz"} {
		res, err := hc.Get(gw.Base + path)
		require.NoError(t, err)
		require.NoError(t, res.Body.Close())
		require.Equal(t, http.StatusOK, res.StatusCode, path)
	}
	for _, path := range []string{"/metrics", "/nothing", "/metrics/x"} {
		ctx := context.Background()
		if path == "/metrics" {
			ctx = validator.SkipExchange(ctx, "the gateway answers GET /metrics itself (404) to keep the metrics inside; "+
				"the document describes bookingd, which serves them")
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, gw.Base+path, nil)
		require.NoError(t, err)
		res, err := hc.Do(req)
		require.NoError(t, err)
		require.NoError(t, res.Body.Close())
		require.Equal(t, http.StatusNotFound, res.StatusCode, path)
		require.Equal(t, bhttp.ProblemContentType, res.Header.Get("Content-Type"), path)
	}
	direct, err := hc.Get(a.Base + "/metrics")
	require.NoError(t, err)
	require.NoError(t, direct.Body.Close())
	require.Equal(t, http.StatusOK, direct.StatusCode, "each replica serves /metrics to the inside")

	big := `{"title":"` + strings.Repeat("a", int(bhttp.DefaultMaxBodyBytes)) + `"}`
	req, err := api.request(context.Background(), http.MethodPost, "/bookings", nil, map[string]string{"Content-Type": "application/json"})
	require.NoError(t, err)
	req.Body, req.ContentLength = io.NopCloser(strings.NewReader(big)), int64(len(big))
	tooLarge, err := api.send(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusRequestEntityTooLarge, tooLarge.Status, describeResponse(tooLarge))
	require.Contains(t, string(tooLarge.Body), `"code":"payload_too_large"`)

	// nginx's access log shows that both replicas served bookings.
	served := map[string]int{}
	refused := 0
	for _, rec := range gw.accessLog(t) {
		if rec["method"] != http.MethodPost || rec["uri"] != "/bookings" {
			continue
		}
		if rec["status"] == float64(http.StatusRequestEntityTooLarge) {
			require.Empty(t, rec["upstream"], "nginx refuses the oversized body itself")
			refused++
			continue
		}
		served[rec["upstream"].(string)]++
	}
	require.Equal(t, 1, refused)
	require.Positive(t, served[upstreams[0]], "bookings served by %v", served)
	require.Positive(t, served[upstreams[1]], "bookings served by %v", served)
	requireLogged(t, a, b)
}

// minPositionGet GETs path with X-Min-Position pos through c and expects
// 200. A 504 timeout, which the contract tells clients to retry, is retried
// twice: the read side's watermark is cluster-wide, so another test's slow
// transaction on the same PostgreSQL server can hold it back for seconds.
func minPositionGet(tb testing.TB, c apiClient, path, pos string) apiResponse {
	tb.Helper()
	var r apiResponse
	for range 3 {
		var err error
		r, err = c.do(context.Background(), http.MethodGet, path, nil, map[string]string{"X-Min-Position": pos})
		require.NoError(tb, err)
		if r.Status != http.StatusGatewayTimeout {
			break
		}
	}
	require.Equal(tb, http.StatusOK, r.Status, describeResponse(r))
	return r
}

// requireLogged checks that each bookingd logged requests with the
// request id the gateway passed on.
func requireLogged(tb testing.TB, procs ...*bookingdProc) {
	tb.Helper()
	id := regexp.MustCompile(`"request_id":"[0-9a-f]{32}"`)
	for _, p := range procs {
		require.Regexp(tb, id, p.Log(), "%s logs nginx's request ids", p.name)
	}
}
