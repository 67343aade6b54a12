package http_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	bhttp "github.com/bookingengine/booking/http"
)

// unavailable is a store failure that asks for a retry.
type unavailable struct{ error }

func (unavailable) Unavailable() bool { return true }

func mustHeadFixture(tb testing.TB, head func(context.Context) (int64, error)) *opsFixture {
	tb.Helper()
	f := mustOpsFixture(tb)
	v, err := bhttp.NewVerifier(bhttp.AuthConfig{Secret: testSecret})
	require.NoError(tb, err)
	srv, err := bhttp.NewServer(bhttp.ServerConfig{
		Verifier:    v,
		Tenants:     fakeTenants{"sorriso.example.com": tenantA},
		Idempotency: bhttp.NewMemoryIdempotencyStore(bhttp.IdempotencyOptions{}),
		Logger:      slog.New(slog.DiscardHandler),
		Head:        head,
	})
	require.NoError(tb, err)
	srv.Tenant().HandleFunc("/hooks", srv.AtHead(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("fail") != "" {
			bhttp.WriteError(w, r, bhttp.Error(bhttp.CodeNotFound, 0, "no such hook"))
			return
		}
		_ = bhttp.WriteJSON(w, http.StatusCreated, map[string]string{"id": "h1"})
	})).Methods(http.MethodPost)
	srv.Tenant().HandleFunc("/hooks", srv.AtHead(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})).Methods(http.MethodDelete)
	f.srv, f.h = srv, srv.Handler()
	return f
}

func TestAtHeadAnswersCommandsWithoutEventsWithTheHeadPosition(t *testing.T) {
	t.Parallel()
	head := int64(41)
	f := mustHeadFixture(t, func(context.Context) (int64, error) { head++; return head, nil })

	w := f.do(f.tenantReq(t, http.MethodPost, "/hooks", `{}`))
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	require.Equal(t, "42", w.Header().Get("X-Position"))
	w = f.do(f.tenantReq(t, http.MethodDelete, "/hooks", ""))
	require.Equal(t, http.StatusNoContent, w.Code)
	require.Equal(t, "43", w.Header().Get("X-Position"))

	// A refused command carries none, as problems never do.
	w = f.do(f.tenantReq(t, http.MethodPost, "/hooks?fail=1", `{}`))
	require.Equal(t, http.StatusNotFound, w.Code)
	require.Empty(t, w.Header().Get("X-Position"))
}

func TestAtHeadWhenTheHeadCannotBeRead(t *testing.T) {
	t.Parallel()
	called := false
	f := mustHeadFixture(t, func(context.Context) (int64, error) {
		called = true
		return 0, unavailable{errors.New("connection refused")}
	})
	w := f.do(f.tenantReq(t, http.MethodPost, "/hooks", `{}`))
	require.True(t, called)
	mustProblem(t, w, http.StatusServiceUnavailable, bhttp.CodeServiceUnavailable)
	require.Empty(t, w.Header().Get("X-Position"))
}

func TestAtHeadWithoutHeadChangesNothing(t *testing.T) {
	t.Parallel()
	f := mustHeadFixture(t, nil)
	w := f.do(f.tenantReq(t, http.MethodPost, "/hooks", `{}`))
	require.Equal(t, http.StatusCreated, w.Code)
	require.Empty(t, w.Header().Get("X-Position"))
}
