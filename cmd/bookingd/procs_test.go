package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	bhttp "github.com/bookingengine/booking/http"
)

// envChild turns this test binary into a bookingd process: a test that
// finds it set runs main() instead of testing. The parent starts the child
// with -test.run naming that test, so only main() runs.
const envChild = "BOOKINGD_TEST_CHILD"

// runChildIfAsked runs bookingd's main() and reports true when this binary
// was started as a child by startBookingd. The child stops when its stdin
// closes, so a parent that dies without cleaning up leaves no server
// behind.
func runChildIfAsked() bool {
	if os.Getenv(envChild) == "" {
		return false
	}
	os.Args = []string{"bookingd"}
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		if p, err := os.FindProcess(os.Getpid()); err == nil {
			_ = p.Signal(os.Interrupt)
		}
	}()
	main()
	return true
}

// bookingdProc is a bookingd OS process started by a test.
type bookingdProc = faultProc

// startBookingd starts this test binary as a bookingd process (test names
// the test that calls runChildIfAsked first) on database dbURL, verifying
// tokens with secret, listening on a port the kernel picks. It returns once
// the process logged its address. The process is stopped (SIGINT, then
// SIGKILL after 15 s) when tb ends, and its log is printed if tb failed.
func startBookingd(tb testing.TB, test, name, dbURL, secret string) *bookingdProc {
	tb.Helper()
	return startFaultProc(tb, test, name, "DATABASE_URL="+dbURL, "JWT_SECRET="+secret)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// newSecret returns a random HS256 secret (64 hex characters).
func newSecret(tb testing.TB) string {
	tb.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// mustToken mints a token with every scope, valid for twelve hours unless
// req.TTL says otherwise.
func mustToken(tb testing.TB, secret string, req bhttp.TokenRequest) string {
	tb.Helper()
	m, err := bhttp.NewMinter(secret)
	if err != nil {
		tb.Fatal(err)
	}
	req.Scopes = bhttp.AllScopes()
	if req.TTL == 0 {
		req.TTL = 12 * time.Hour
	}
	tok, err := m.Mint(time.Now(), req)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// newHTTPClient returns a client that keeps enough idle connections per
// host for the tests' concurrency, so requests reuse connections, and that
// checks every exchange against the OpenAPI document (newCheckedClient),
// failing tb on a disagreement.
func newHTTPClient(tb testing.TB) *http.Client {
	tb.Helper()
	c, _ := newCheckedClient(tb, pooledTransport(), 60*time.Second)
	return c
}

// newUncheckedHTTPClient is newHTTPClient without the OpenAPI check, for
// the benchmarks only: checking costs CPU in the process that measures,
// and the benchmarks report that CPU per request as bookingd's. Their
// requests (the fixture, create-booking, the list with X-Min-Position) are
// the ones the tests send through the check.
func newUncheckedHTTPClient() *http.Client {
	return &http.Client{Transport: pooledTransport(), Timeout: 60 * time.Second}
}

func pooledTransport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 512
	tr.MaxIdleConnsPerHost = 256
	return tr
}

// apiClient calls one bookingd as one principal in one tenant.
type apiClient struct {
	http   *http.Client
	base   string
	token  string
	tenant uuid.UUID
}

// apiResponse is a decoded answer of the API.
type apiResponse struct {
	Status int
	Header http.Header
	Body   []byte
}

// apiProblem is the part of a problem+json body the tests look at.
type apiProblem struct {
	Code      string `json:"code"`
	Status    int    `json:"status"`
	Conflicts []struct {
		BookingID uuid.UUID `json:"booking_id"`
		Start     time.Time `json:"start"`
		End       time.Time `json:"end"`
	} `json:"conflicts"`
}

// request builds a request with a JSON body and the client's headers.
func (c apiClient) request(ctx context.Context, method, path string, body any, header map[string]string) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if c.tenant != uuid.Nil {
		req.Header.Set(bhttp.HeaderTenantID, c.tenant.String())
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return req, nil
}

// send runs req and reads the whole answer.
func (c apiClient) send(req *http.Request) (apiResponse, error) {
	res, err := c.http.Do(req)
	if err != nil {
		return apiResponse{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return apiResponse{}, err
	}
	return apiResponse{Status: res.StatusCode, Header: res.Header, Body: b}, nil
}

// do sends one request.
func (c apiClient) do(ctx context.Context, method, path string, body any, header map[string]string) (apiResponse, error) {
	req, err := c.request(ctx, method, path, body, header)
	if err != nil {
		return apiResponse{}, err
	}
	return c.send(req)
}

// mustDo sends one request, fails tb unless the status is want, and
// decodes the body into out (when not nil).
func (c apiClient) mustDo(tb testing.TB, method, path string, body any, want int, out any) {
	tb.Helper()
	res, err := c.do(context.Background(), method, path, body, nil)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	if res.Status != want {
		tb.Fatalf("%s %s: status %d, want %d: %s", method, path, res.Status, want, res.Body)
	}
	if out != nil {
		if err := json.Unmarshal(res.Body, out); err != nil {
			tb.Fatalf("%s %s: decode %s: %v", method, path, res.Body, err)
		}
	}
}

// loadFixture is a tenant open every day around the clock, with no notice or
// advance limits, a 15-minute grid and bookings of 15 minutes to 8 hours,
// plus an admin and a client of it.
type loadFixture struct {
	TenantID uuid.UUID
	ClientID uuid.UUID
	// Admin calls the API as the tenant's admin.
	Admin apiClient
}

// openAllDaySettings opens every weekday 00:00–24:00 and lifts the notice
// and advance limits, so any grid-aligned future slot is bookable.
func openAllDaySettings() map[string]any {
	day := []map[string]string{{"start": "00:00", "end": "24:00"}}
	hours := map[string]any{}
	for _, d := range []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"} {
		hours[d] = day
	}
	return map[string]any{
		"timezone":                 "UTC",
		"business_hours":           hours,
		"slot_granularity_minutes": 15,
		"min_duration_minutes":     15,
		"max_duration_minutes":     480,
		"min_notice_minutes":       0,
		"max_advance_days":         0,
	}
}

// mustFixture creates the tenant, its admin principal and a client user
// through the API at base.
func mustFixture(tb testing.TB, hc *http.Client, base, secret string) loadFixture {
	tb.Helper()
	platform := apiClient{http: hc, base: base, token: mustToken(tb, secret, bhttp.TokenRequest{
		Subject: "platform-admin", Role: bhttp.RolePlatformAdmin,
	})}
	var tenant struct {
		ID uuid.UUID `json:"id"`
	}
	platform.mustDo(tb, http.MethodPost, "/tenants", map[string]any{
		"name":     "Concurrency Clinic",
		"domain":   "t" + uuid.NewString()[:8] + ".example.com",
		"settings": openAllDaySettings(),
	}, http.StatusCreated, &tenant)
	f := loadFixture{TenantID: tenant.ID}
	f.Admin = apiClient{http: hc, base: base, tenant: tenant.ID, token: mustToken(tb, secret, bhttp.TokenRequest{
		Subject: uuid.NewString(), TenantID: tenant.ID, Role: bhttp.RoleAdmin,
	})}
	var user struct {
		ID uuid.UUID `json:"id"`
	}
	f.Admin.mustDo(tb, http.MethodPost, "/users", map[string]any{
		"email": "client-" + uuid.NewString()[:8] + "@example.com", "name": "Client", "role": "client",
	}, http.StatusCreated, &user)
	f.ClientID = user.ID
	return f
}

// mustResource creates a resource of the given capacity.
func (f loadFixture) mustResource(tb testing.TB, name string, capacity int) uuid.UUID {
	tb.Helper()
	var r struct {
		ID uuid.UUID `json:"id"`
	}
	f.Admin.mustDo(tb, http.MethodPost, "/resources", map[string]any{
		"name": name, "kind": "space", "capacity": capacity,
	}, http.StatusCreated, &r)
	return r.ID
}

// as returns the admin client pointed at another process.
func (f loadFixture) as(base string) apiClient {
	c := f.Admin
	c.base = base
	return c
}

// bookingBody is the body of POST /bookings.
func (f loadFixture) bookingBody(resourceID uuid.UUID, start, end time.Time) map[string]any {
	return map[string]any{
		"resource_id": resourceID.String(),
		"client_id":   f.ClientID.String(),
		"start":       start.Format(time.RFC3339),
		"end":         end.Format(time.RFC3339),
		"seats":       1,
		"title":       "load",
	}
}

// dayStart returns 00:00 UTC of the day days after today.
func dayStart(days int) time.Time {
	return time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, days)
}

func describeResponse(r apiResponse) string {
	return fmt.Sprintf("%d %s", r.Status, bytes.TrimSpace(r.Body))
}
