package http_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	bhttp "github.com/bookingengine/booking/http"
)

const testSecret = "0123456789abcdef0123456789abcdef-test-secret"

var (
	tenantA = uuid.MustParse("11111111-1111-4111-8111-111111111111")
	tenantB = uuid.MustParse("22222222-2222-4222-8222-222222222222")
)

// notFoundErr mimics a domain sentinel with a code.
type notFoundErr struct{ what string }

func (e notFoundErr) Error() string { return e.what + " not found" }
func (e notFoundErr) Code() string  { return "not_found" }

// unavailableErr mimics a store error marked retryable by the adapter.
type unavailableErr struct{}

func (unavailableErr) Error() string     { return "dial tcp 10.0.0.7:5432: connection refused" }
func (unavailableErr) Unavailable() bool { return true }

// fakeTenants resolves a fixed set of domains.
type fakeTenants map[string]uuid.UUID

func (f fakeTenants) TenantIDByDomain(_ context.Context, domain string) (uuid.UUID, error) {
	if domain == "down.example.com" {
		return uuid.Nil, unavailableErr{}
	}
	id, ok := f[domain]
	if !ok {
		return uuid.Nil, notFoundErr{what: "tenant"}
	}
	return id, nil
}

// syncBuffer collects log output from concurrent requests.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the JSON log records written so far.
func (b *syncBuffer) lines(tb testing.TB) []map[string]any {
	tb.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		require.NoError(tb, json.Unmarshal([]byte(l), &m))
		out = append(out, m)
	}
	return out
}

type fixture struct {
	srv    *bhttp.Server
	h      http.Handler
	minter *bhttp.Minter
	store  *bhttp.MemoryIdempotencyStore
	logs   *syncBuffer
}

// MustFixture returns a server over a memory idempotency store, logging JSON
// into a buffer, with no endpoint but /healthz.
func MustFixture(tb testing.TB) *fixture {
	tb.Helper()
	v, err := bhttp.NewVerifier(bhttp.AuthConfig{Secret: testSecret})
	require.NoError(tb, err)
	m, err := bhttp.NewMinter(testSecret)
	require.NoError(tb, err)
	logs := &syncBuffer{}
	store := bhttp.NewMemoryIdempotencyStore(bhttp.IdempotencyOptions{})
	srv, err := bhttp.NewServer(bhttp.ServerConfig{
		Verifier:       v,
		Tenants:        fakeTenants{"sorriso.example.com": tenantA, "other.example.com": tenantB},
		Idempotency:    store,
		Logger:         slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		ProblemBaseURL: "https://errors.example.com/",
	})
	require.NoError(tb, err)
	return &fixture{srv: srv, h: srv.Handler(), minter: m, store: store, logs: logs}
}

// token mints a one-hour token.
func (f *fixture) token(tb testing.TB, user, role string, tenant uuid.UUID, scopes ...string) string {
	tb.Helper()
	tok, err := f.minter.Mint(time.Now(), bhttp.TokenRequest{
		Subject: user, TenantID: tenant, Role: role, Scopes: scopes, TTL: time.Hour,
	})
	require.NoError(tb, err)
	return tok
}

// do serves one request through the whole chain.
func (f *fixture) do(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return w
}

type reqOpt func(*http.Request)

func bearer(tok string) reqOpt {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

func header(k, v string) reqOpt {
	return func(r *http.Request) { r.Header.Set(k, v) }
}

func newReq(method, target, body string, opts ...reqOpt) *http.Request {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, target, rd)
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	for _, o := range opts {
		o(r)
	}
	return r
}

// mustProblem decodes a problem+json response and checks its invariant
// members.
func mustProblem(tb testing.TB, w *httptest.ResponseRecorder, status int, code string) bhttp.Problem {
	tb.Helper()
	require.Equal(tb, status, w.Code, "body: %s", w.Body.String())
	require.Equal(tb, bhttp.ProblemContentType, w.Header().Get("Content-Type"))
	var p bhttp.Problem
	dec := json.NewDecoder(bytes.NewReader(w.Body.Bytes()))
	dec.DisallowUnknownFields()
	require.NoError(tb, dec.Decode(&p))
	require.Equal(tb, status, p.Status)
	require.Equal(tb, code, p.Code)
	require.NotEmpty(tb, p.Title)
	require.True(tb, strings.HasSuffix(p.Type, "/problems/"+code), p.Type)
	return p
}
