package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	bhttp "github.com/bookingengine/booking/http"
	"github.com/bookingengine/booking/internal/testenv"
)

// e2eSecret verifies the tokens of every end-to-end test; each test has its
// own database, so sharing the secret shares nothing else.
const e2eSecret = "e2e-secret-0123456789abcdef-0123456789abcdef"

// e2eServer is a bookingd (Main) started on port 0 over its own PostgreSQL
// database, and the means to call it. Every exchange through client is
// checked against the OpenAPI document (newCheckedClient).
type e2eServer struct {
	cfg    Config
	minter *bhttp.Minter
	client *http.Client
	sent   *countingTransport
	logs   *e2eLog

	mu   sync.Mutex
	main *Main
	base string
}

// e2eLog collects the server's log lines and prints them when the test
// fails, so a passing run stays quiet.
type e2eLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *e2eLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *e2eLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// MustStartE2E creates a database for tb, starts bookingd on it and stops
// it when tb ends. Every request sent through it is checked against the
// OpenAPI document.
func MustStartE2E(tb testing.TB) *e2eServer {
	tb.Helper()
	return mustStartE2EWith(tb, func(*Config) {})
}

// mustStartE2EWith is MustStartE2E with the configuration changed by edit
// before bookingd starts.
func mustStartE2EWith(tb testing.TB, edit func(*Config)) *e2eServer {
	tb.Helper()
	minter, err := bhttp.NewMinter(e2eSecret)
	require.NoError(tb, err)
	client, sent := newCheckedClient(tb, nil, 30*time.Second)
	s := &e2eServer{
		cfg: Config{
			DatabaseURL:     testenv.NewDatabase(tb),
			HTTPAddr:        "127.0.0.1:0",
			JWTSecret:       e2eSecret,
			LogFormat:       "text",
			ShutdownTimeout: 5 * time.Second,
		},
		minter: minter,
		client: client,
		sent:   sent,
		logs:   &e2eLog{},
	}
	edit(&s.cfg)
	tb.Cleanup(func() {
		s.stop(tb)
		s.client.CloseIdleConnections()
		if tb.Failed() {
			tb.Logf("bookingd log:\n%s", s.logs.String())
		}
	})
	s.start(tb)
	return s
}

func (s *e2eServer) start(tb testing.TB) {
	tb.Helper()
	m := NewMain(s.cfg)
	m.Logger = slog.New(slog.NewTextHandler(s.logs, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(tb, m.Run(ctx))
	s.mu.Lock()
	s.main, s.base = m, "http://"+m.Addr
	s.mu.Unlock()
}

func (s *e2eServer) stop(tb testing.TB) {
	tb.Helper()
	s.mu.Lock()
	m := s.main
	s.main = nil
	s.mu.Unlock()
	if m != nil {
		require.NoError(tb, m.Close())
	}
}

// restart stops this bookingd and starts a new one on the same database,
// as a deployment or a crash followed by a restart would.
func (s *e2eServer) restart(tb testing.TB) {
	tb.Helper()
	s.stop(tb)
	s.client.CloseIdleConnections()
	s.start(tb)
}

// token mints a one-hour token with the given scopes (every scope when none
// is named).
func (s *e2eServer) token(tb testing.TB, subject, role string, tenant uuid.UUID, scopes ...string) string {
	tb.Helper()
	if len(scopes) == 0 {
		scopes = bhttp.AllScopes()
	}
	tok, err := s.minter.Mint(time.Now(), bhttp.TokenRequest{
		Subject: subject, TenantID: tenant, Role: role, Scopes: scopes, TTL: time.Hour,
	})
	require.NoError(tb, err)
	return tok
}

// platformToken is a platform admin's token with every scope.
func (s *e2eServer) platformToken(tb testing.TB) string {
	tb.Helper()
	return s.token(tb, "platform-admin-e2e", bhttp.RolePlatformAdmin, uuid.Nil)
}

// e2eCall is one HTTP request.
type e2eCall struct {
	method string
	path   string
	token  string
	// tenant and domain set X-Tenant-ID and X-Tenant-Domain when not
	// empty.
	tenant string
	domain string
	// body is sent as JSON; a []byte or string is sent as it is, and an
	// io.Reader chunked.
	body any
	// header holds further headers; a Content-Type here replaces
	// application/json.
	header map[string]string
}

// e2eReply is a whole response, with its body decoded when it is a JSON
// object.
type e2eReply struct {
	call   e2eCall
	Status int
	Header http.Header
	Body   []byte
	Doc    map[string]any
}

func (r e2eReply) String() string {
	return fmt.Sprintf("%s %s → %d %s", r.call.method, r.call.path, r.Status, bytes.TrimSpace(r.Body))
}

// do sends c and reads the whole response.
func (s *e2eServer) do(tb testing.TB, c e2eCall) e2eReply {
	tb.Helper()
	var body io.Reader
	switch b := c.body.(type) {
	case nil:
	case []byte:
		body = bytes.NewReader(b)
	case string:
		body = strings.NewReader(b)
	case io.Reader:
		body = b // no length known: sent chunked
	default:
		raw, err := json.Marshal(b)
		require.NoError(tb, err)
		body = bytes.NewReader(raw)
	}
	s.mu.Lock()
	base := s.base
	s.mu.Unlock()
	req, err := http.NewRequest(c.method, base+c.path, body)
	require.NoError(tb, err)
	if c.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.tenant != "" {
		req.Header.Set(bhttp.HeaderTenantID, c.tenant)
	}
	if c.domain != "" {
		req.Header.Set(bhttp.HeaderTenantDomain, c.domain)
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	res, err := s.client.Do(req)
	require.NoError(tb, err, "%s %s", c.method, c.path)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(tb, err)
	r := e2eReply{call: c, Status: res.StatusCode, Header: res.Header, Body: raw}
	if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '{' {
		require.NoError(tb, json.Unmarshal(raw, &r.Doc), "%s %s: %s", c.method, c.path, raw)
	}
	return r
}

// must sends c and fails tb unless the status is want.
func (s *e2eServer) must(tb testing.TB, want int, c e2eCall) e2eReply {
	tb.Helper()
	r := s.do(tb, c)
	require.Equal(tb, want, r.Status, "%s", r)
	return r
}

// str returns the string member key of the body.
func (r e2eReply) str(tb testing.TB, key string) string {
	tb.Helper()
	v, ok := r.Doc[key].(string)
	require.True(tb, ok, "member %q is not a string in %s", key, r)
	return v
}

// num returns the number member key of the body.
func (r e2eReply) num(tb testing.TB, key string) float64 {
	tb.Helper()
	v, ok := r.Doc[key].(float64)
	require.True(tb, ok, "member %q is not a number in %s", key, r)
	return v
}

// requireE2EProblem checks that r is an RFC 9457 problem with status and
// code, and returns its body.
func requireE2EProblem(tb testing.TB, r e2eReply, status int, code string) map[string]any {
	tb.Helper()
	require.Equal(tb, status, r.Status, "%s", r)
	require.Equal(tb, bhttp.ProblemContentType, r.Header.Get("Content-Type"), "%s", r)
	require.Equal(tb, code, r.Doc["code"], "%s", r)
	require.EqualValues(tb, status, r.Doc["status"], "%s", r)
	require.NotEmpty(tb, r.Doc["title"], "%s", r)
	require.NotEmpty(tb, r.Doc["detail"], "%s", r)
	typ, _ := r.Doc["type"].(string)
	require.True(tb, strings.HasSuffix(typ, "/problems/"+code), "type %q", typ)
	return r.Doc
}

// problemFields lists the field names of a problem's errors[].
func problemFields(tb testing.TB, r e2eReply) []string {
	tb.Helper()
	list, _ := r.Doc["errors"].([]any)
	require.NotEmpty(tb, list, "no errors[] in %s", r)
	var out []string
	for _, e := range list {
		m, ok := e.(map[string]any)
		require.True(tb, ok, "errors[] entry %v", e)
		f, _ := m["field"].(string)
		require.NotEmpty(tb, f, "errors[] entry without field: %v", m)
		require.NotEmpty(tb, m["code"], "errors[] entry without code: %v", m)
		out = append(out, f)
	}
	return out
}

// problemConflicts lists the booking ids of a problem's conflicts[].
func problemConflicts(tb testing.TB, r e2eReply) []string {
	tb.Helper()
	list, _ := r.Doc["conflicts"].([]any)
	require.NotEmpty(tb, list, "no conflicts[] in %s", r)
	var out []string
	for _, c := range list {
		m, ok := c.(map[string]any)
		require.True(tb, ok, "conflicts[] entry %v", c)
		id, _ := m["booking_id"].(string)
		require.NotEmpty(tb, id, "conflicts[] entry without booking_id: %v", m)
		require.NotEmpty(tb, m["start"], "conflicts[] entry without start: %v", m)
		require.NotEmpty(tb, m["end"], "conflicts[] entry without end: %v", m)
		out = append(out, id)
	}
	return out
}

// Roles of the fixture's principals; e2eClient2 is a second client.
const (
	e2ePlatform     = bhttp.RolePlatformAdmin
	e2eAdmin        = bhttp.RoleAdmin
	e2eManager      = bhttp.RoleManager
	e2eProfessional = bhttp.RoleProfessional
	e2eClient       = bhttp.RoleClient
	e2eClient2      = "client2"
)

// e2eRoles are the five roles of the authorization matrix.
var e2eRoles = []string{e2ePlatform, e2eAdmin, e2eManager, e2eProfessional, e2eClient}

// e2eFixture is a tenant with a category, a one-seat space, a person
// resource, and users (admin, manager, a professional linked to the person
// resource, two clients), each with a token carrying every scope.
type e2eFixture struct {
	srv      *e2eServer
	TenantID string
	Domain   string
	Category string
	Space    string
	Person   string
	// Users maps a role (or e2eClient2) to its user id; the platform
	// admin is no user of the tenant.
	Users  map[string]string
	Tokens map[string]string
	// Day is a Monday at least a week ahead (UTC midnight): inside the
	// default business hours and advance limit.
	Day time.Time

	mu   sync.Mutex
	slot int
}

// MustE2EFixture creates a tenant (name and domain from name) with the
// given settings document (nil: the defaults) and its objects, through the
// API as a platform admin.
func MustE2EFixture(tb testing.TB, srv *e2eServer, name string, settings map[string]any) *e2eFixture {
	tb.Helper()
	platform := srv.platformToken(tb)
	body := map[string]any{
		"name":     "Clinic " + name,
		"domain":   name + ".e2e.example.com",
		"branding": map[string]any{"primary_color": "#0a7d5a"},
		"labels":   map[string]any{"resource": "Room"},
	}
	if settings != nil {
		body["settings"] = settings
	}
	t := srv.must(tb, http.StatusCreated, e2eCall{method: http.MethodPost, path: "/tenants", token: platform, body: body})
	f := &e2eFixture{
		srv:      srv,
		TenantID: t.str(tb, "id"),
		Domain:   name + ".e2e.example.com",
		Users:    map[string]string{},
		Tokens:   map[string]string{e2ePlatform: platform},
		Day:      e2eMonday(time.Now(), 7),
	}
	tenant := uuid.MustParse(f.TenantID)
	f.Category = f.create(tb, e2ePlatform, "/resource-categories", map[string]any{"name": "Rooms", "description": "All rooms"})
	f.Space = f.create(tb, e2ePlatform, "/resources", map[string]any{
		"category_id": f.Category, "name": "Room 1", "kind": "space", "capacity": 1, "attributes": map[string]any{"floor": 2},
	})
	f.Person = f.create(tb, e2ePlatform, "/resources", map[string]any{"name": "Dr. Ana", "kind": "person", "capacity": 1})
	for _, u := range []struct{ key, role string }{
		{e2eAdmin, "admin"}, {e2eManager, "manager"}, {e2eProfessional, "professional"},
		{e2eClient, "client"}, {e2eClient2, "client"},
	} {
		in := map[string]any{"email": u.key + "@" + f.Domain, "name": "User " + u.key, "role": u.role}
		if u.key == e2eProfessional {
			in["resource_id"] = f.Person
		}
		id := f.create(tb, e2ePlatform, "/users", in)
		f.Users[u.key] = id
		f.Tokens[u.key] = srv.token(tb, id, u.role, tenant)
	}
	return f
}

// call sends a tenant-scoped request as role, naming the tenant by id.
func (f *e2eFixture) call(tb testing.TB, role, method, path string, body any, header ...string) e2eReply {
	tb.Helper()
	c := e2eCall{method: method, path: path, token: f.Tokens[role], tenant: f.TenantID, body: body}
	if len(header) > 0 {
		c.header = map[string]string{}
		for i := 0; i+1 < len(header); i += 2 {
			c.header[header[i]] = header[i+1]
		}
	}
	return f.srv.do(tb, c)
}

// must is call that fails tb unless the status is want.
func (f *e2eFixture) must(tb testing.TB, want int, role, method, path string, body any, header ...string) e2eReply {
	tb.Helper()
	r := f.call(tb, role, method, path, body, header...)
	require.Equal(tb, want, r.Status, "%s", r)
	return r
}

// create POSTs body to path as role, expects 201 and returns the new id.
func (f *e2eFixture) create(tb testing.TB, role, path string, body any) string {
	tb.Helper()
	return f.must(tb, http.StatusCreated, role, http.MethodPost, path, body).str(tb, "id")
}

// nextSlot returns a fresh hour on a weekday within the default business
// hours (09:00–17:00 UTC), never handed out before by this fixture.
func (f *e2eFixture) nextSlot() time.Time {
	f.mu.Lock()
	n := f.slot
	f.slot++
	f.mu.Unlock()
	week, day, hour := n/40, n%40/8, n%8
	return f.Day.AddDate(0, 0, 7*week+day).Add(time.Duration(9+hour) * time.Hour)
}

// e2eBooking is the body of POST /bookings for client on resource from start,
// lasting minutes.
func e2eBooking(resource, client string, start time.Time, minutes int) map[string]any {
	b := map[string]any{
		"resource_id": resource,
		"start":       start.Format(time.RFC3339),
		"end":         start.Add(time.Duration(minutes) * time.Minute).Format(time.RFC3339),
		"seats":       1,
		"title":       "Check-up",
		"notes":       "",
		"attributes":  map[string]any{},
	}
	if client != "" {
		b["client_id"] = client
	}
	return b
}

// book creates a 30-minute booking for client on resource at start, as
// role, and returns its id.
func (f *e2eFixture) book(tb testing.TB, role, resource, client string, start time.Time) string {
	tb.Helper()
	return f.create(tb, role, "/bookings", e2eBooking(resource, client, start, 30))
}

// e2eMonday returns 00:00 UTC of the first Monday at least days after now.
func e2eMonday(now time.Time, days int) time.Time {
	d := now.UTC().Truncate(24*time.Hour).AddDate(0, 0, days)
	for d.Weekday() != time.Monday {
		d = d.AddDate(0, 0, 1)
	}
	return d
}

// e2eAt returns the instant of wall-clock hh:mm on day's date in day's zone.
func e2eAt(day time.Time, hh, mm int) time.Time {
	y, m, d := day.Date()
	return time.Date(y, m, d, hh, mm, 0, 0, day.Location())
}

// e2eAllDay is a business_hours document that opens every weekday around
// the clock.
func e2eAllDay() map[string]any {
	day := []map[string]string{{"start": "00:00", "end": "24:00"}}
	out := map[string]any{}
	for _, d := range []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"} {
		out[d] = day
	}
	return out
}
