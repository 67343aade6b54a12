package http_test

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	bhttp "github.com/bookingengine/booking/http"
	"github.com/bookingengine/booking/http/idempotencytest"
)

func TestMemoryIdempotencyStoreContract(t *testing.T) {
	t.Parallel()
	idempotencytest.Run(t, func(_ *testing.T, opts bhttp.IdempotencyOptions) bhttp.IdempotencyStore {
		return bhttp.NewMemoryIdempotencyStore(opts)
	})
}

// bookingsAPI registers POST /bookings (and the platform's POST /tenants)
// answering 201 with a fresh id per run, so a replay is told from a rerun.
func bookingsAPI(t *testing.T, f *fixture) *atomic.Int64 {
	t.Helper()
	var runs atomic.Int64
	create := func(w http.ResponseWriter, r *http.Request) {
		runs.Add(1)
		var in struct {
			Title string `json:"title"`
		}
		if err := bhttp.DecodeJSON(r, &in); err != nil {
			bhttp.WriteError(w, r, err)
			return
		}
		id := uuid.New()
		w.Header().Set("Location", "/bookings/"+id.String())
		w.Header().Set("ETag", bhttp.ETag(1))
		w.Header().Set("X-Unrelated", "not replayed")
		bhttp.SetPosition(w, runs.Load())
		_ = bhttp.WriteJSON(w, http.StatusCreated, map[string]string{
			"id": id.String(), "title": in.Title, "key": bhttp.IdempotencyKeyFrom(r.Context()),
		})
	}
	f.srv.Tenant().HandleFunc("/bookings", create).Methods(http.MethodPost)
	f.srv.Authenticated().HandleFunc("/tenants", create).Methods(http.MethodPost)
	return &runs
}

func TestIdempotentReplay(t *testing.T) {
	t.Parallel()
	f := MustFixture(t)
	runs := bookingsAPI(t, f)
	tok := f.token(t, "u1", "client", tenantA)
	post := func(body string, opts ...reqOpt) *http.Request {
		return newReq(http.MethodPost, "/bookings", body,
			append([]reqOpt{bearer(tok), header("X-Tenant-ID", tenantA.String()), header("Idempotency-Key", "key-1")}, opts...)...)
	}

	first := f.do(post(`{"title":"Limpeza"}`, header("X-Request-ID", "first")))
	require.Equal(t, http.StatusCreated, first.Code, first.Body.String())
	require.Contains(t, first.Body.String(), `"key":"key-1"`, "commands see the key")

	second := f.do(post(`{"title":"Limpeza"}`, header("X-Request-ID", "second")))
	require.Equal(t, int64(1), runs.Load(), "the handler ran once")
	require.Equal(t, first.Code, second.Code)
	require.Equal(t, first.Body.String(), second.Body.String())
	for _, h := range []string{"Content-Type", "Location", "ETag", "X-Position"} {
		require.NotEmpty(t, first.Header().Get(h), h)
		require.Equal(t, first.Header().Get(h), second.Header().Get(h), h)
	}
	require.Equal(t, "true", second.Header().Get("Idempotent-Replayed"))
	require.Empty(t, first.Header().Get("Idempotent-Replayed"))
	require.Empty(t, second.Header().Get("X-Unrelated"))
	require.Equal(t, "second", second.Header().Get("X-Request-ID"), "the retry keeps its own request id")

	reused := f.do(post(`{"title":"Other"}`))
	mustProblem(t, reused, http.StatusUnprocessableEntity, "idempotency_key_reused")
	require.Equal(t, int64(1), runs.Load())
}

func TestIdempotencyScopes(t *testing.T) {
	t.Parallel()
	f := MustFixture(t)
	runs := bookingsAPI(t, f)
	send := func(user, role string, tenant uuid.UUID, path string) *http.Request {
		opts := []reqOpt{bearer(f.token(t, user, role, tenant)), header("Idempotency-Key", "shared")}
		if tenant != uuid.Nil {
			opts = append(opts, header("X-Tenant-ID", tenant.String()))
		}
		return newReq(http.MethodPost, path, `{"title":"x"}`, opts...)
	}

	tests := []struct {
		name string
		req  *http.Request
		runs int64
	}{
		{"user 1 in tenant A", send("u1", "client", tenantA, "/bookings"), 1},
		{"user 2 in tenant A", send("u2", "client", tenantA, "/bookings"), 2},
		{"user 1 in tenant B", send("u1", "client", tenantB, "/bookings"), 3},
		{"user 1 in tenant A again", send("u1", "client", tenantA, "/bookings"), 3},
		{"platform route", send("root", "platform_admin", uuid.Nil, "/tenants"), 4},
		{"platform route again", send("root", "platform_admin", uuid.Nil, "/tenants"), 4},
	}
	for _, tt := range tests { // in order: each step depends on the previous ones
		w := f.do(tt.req)
		require.Equal(t, http.StatusCreated, w.Code, "%s: %s", tt.name, w.Body.String())
		require.Equal(t, tt.runs, runs.Load(), tt.name)
	}

	// Same scope, key and body on another path: another request.
	f.srv.Tenant().HandleFunc("/holds", func(http.ResponseWriter, *http.Request) {
		t.Error("must not run")
	}).Methods(http.MethodPost)
	other := f.do(newReq(http.MethodPost, "/holds", `{"title":"x"}`, bearer(f.token(t, "u1", "client", tenantA)),
		header("X-Tenant-ID", tenantA.String()), header("Idempotency-Key", "shared")))
	mustProblem(t, other, http.StatusUnprocessableEntity, "idempotency_key_reused")
}

func TestIdempotentInProgress(t *testing.T) {
	t.Parallel()
	f := MustFixture(t)
	entered := make(chan struct{})
	release := make(chan struct{})
	var runs atomic.Int64
	f.srv.Tenant().HandleFunc("/holds", func(w http.ResponseWriter, _ *http.Request) {
		if runs.Add(1) == 1 {
			close(entered)
			<-release
		}
		_ = bhttp.WriteJSON(w, http.StatusCreated, map[string]int64{"run": runs.Load()})
	}).Methods(http.MethodPost)
	tok := f.token(t, "u1", "client", tenantA)
	post := func() *http.Request {
		return newReq(http.MethodPost, "/holds", `{"seats":1}`, bearer(tok),
			header("X-Tenant-ID", tenantA.String()), header("Idempotency-Key", "slow"))
	}

	var wg sync.WaitGroup
	wg.Add(1)
	var firstBody string
	go func() {
		defer wg.Done()
		firstBody = f.do(post()).Body.String()
	}()
	<-entered

	const n = 8
	codes := make(chan *result, n)
	var concurrent sync.WaitGroup
	for range n {
		concurrent.Add(1)
		go func() {
			defer concurrent.Done()
			w := f.do(post())
			codes <- &result{status: w.Code, body: w.Body.String(), ct: w.Header().Get("Content-Type")}
		}()
	}
	concurrent.Wait()
	close(codes)
	for res := range codes {
		require.Equal(t, http.StatusConflict, res.status, res.body)
		require.Equal(t, bhttp.ProblemContentType, res.ct)
		require.Contains(t, res.body, `"code":"idempotency_in_progress"`)
	}

	close(release)
	wg.Wait()
	after := f.do(post())
	require.Equal(t, http.StatusCreated, after.Code)
	require.Equal(t, firstBody, after.Body.String())
	require.Equal(t, int64(1), runs.Load())
}

type result struct {
	status int
	body   string
	ct     string
}

func TestIdempotencyFailuresAreNotStored(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		fail    func(w http.ResponseWriter, r *http.Request)
		status  int
		problem string
	}{
		{"5xx", func(w http.ResponseWriter, r *http.Request) {
			bhttp.WriteError(w, r, unavailableErr{})
		}, http.StatusServiceUnavailable, "service_unavailable"},
		{"panic", func(http.ResponseWriter, *http.Request) {
			panic("store exploded")
		}, http.StatusInternalServerError, "internal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := MustFixture(t)
			var runs atomic.Int64
			f.srv.Tenant().HandleFunc("/bookings", func(w http.ResponseWriter, r *http.Request) {
				if runs.Add(1) == 1 {
					tt.fail(w, r)
					return
				}
				_ = bhttp.WriteJSON(w, http.StatusCreated, map[string]string{"ok": "yes"})
			}).Methods(http.MethodPost)
			tok := f.token(t, "u1", "client", tenantA)
			post := func() *http.Request {
				return newReq(http.MethodPost, "/bookings", `{"title":"x"}`, bearer(tok),
					header("X-Tenant-ID", tenantA.String()), header("Idempotency-Key", "k"))
			}

			mustProblem(t, f.do(post()), tt.status, tt.problem)
			w := f.do(post())
			require.Equal(t, http.StatusCreated, w.Code, "the retry runs again")
			w = f.do(post())
			require.Equal(t, http.StatusCreated, w.Code)
			require.Equal(t, "true", w.Header().Get("Idempotent-Replayed"))
			require.Equal(t, int64(2), runs.Load())
		})
	}
}

func TestIdempotencyStoresClientErrors(t *testing.T) {
	t.Parallel()
	f := MustFixture(t)
	var runs atomic.Int64
	f.srv.Tenant().HandleFunc("/bookings", func(w http.ResponseWriter, r *http.Request) {
		runs.Add(1)
		bhttp.WriteError(w, r, codeOnly("booking_conflict"))
	}).Methods(http.MethodPost)
	tok := f.token(t, "u1", "client", tenantA)
	post := func() *http.Request {
		return newReq(http.MethodPost, "/bookings", `{"title":"x"}`, bearer(tok),
			header("X-Tenant-ID", tenantA.String()), header("Idempotency-Key", "k"))
	}
	first := f.do(post())
	mustProblem(t, first, http.StatusConflict, "booking_conflict")
	second := f.do(post())
	mustProblem(t, second, http.StatusConflict, "booking_conflict")
	require.Equal(t, first.Body.String(), second.Body.String())
	require.Equal(t, int64(1), runs.Load(), "a conflict is an answer, replayed like a success")
}

func TestIdempotencyHeaderRules(t *testing.T) {
	t.Parallel()
	f := MustFixture(t)
	var runs atomic.Int64
	h := func(w http.ResponseWriter, r *http.Request) {
		runs.Add(1)
		_ = bhttp.WriteJSON(w, http.StatusOK, map[string]string{"key": bhttp.IdempotencyKeyFrom(r.Context())})
	}
	f.srv.Tenant().HandleFunc("/bookings", h).Methods(http.MethodGet, http.MethodPost, http.MethodDelete)
	tok := f.token(t, "u1", "client", tenantA)
	req := func(method, key string) *http.Request {
		r := newReq(method, "/bookings", "", bearer(tok), header("X-Tenant-ID", tenantA.String()))
		if key != "" {
			r.Header.Set("Idempotency-Key", key)
		}
		return r
	}

	tests := []struct {
		name     string
		req      *http.Request
		status   int
		wantRuns int64 // runs added by this request
	}{
		{"too long", req(http.MethodPost, strings.Repeat("k", 256)), 400, 0},
		{"longest allowed", req(http.MethodPost, strings.Repeat("k", 255)), 200, 1},
		{"control character", req(http.MethodPost, "a\x01b"), 400, 0},
		{"GET ignores the key", req(http.MethodGet, "g"), 200, 1},
		{"GET ignores the key again", req(http.MethodGet, "g"), 200, 1},
		{"no key runs every time", req(http.MethodPost, ""), 200, 1},
		{"no key runs every time again", req(http.MethodPost, ""), 200, 1},
		{"DELETE honours the key", req(http.MethodDelete, "d"), 200, 1},
		{"DELETE replays", req(http.MethodDelete, "d"), 200, 0},
	}
	for _, tt := range tests { // sequential: counts accumulate
		before := runs.Load()
		w := f.do(tt.req)
		if tt.status == 400 {
			p := mustProblem(t, w, 400, "validation_failed")
			require.Equal(t, "Idempotency-Key", p.Errors[0].Field, tt.name)
		} else {
			require.Equal(t, tt.status, w.Code, tt.name)
		}
		require.Equal(t, tt.wantRuns, runs.Load()-before, tt.name)
	}
}

func TestIdempotencyBodyTooLarge(t *testing.T) {
	t.Parallel()
	f := MustFixture(t)
	runs := bookingsAPI(t, f)
	body := `{"title":"` + strings.Repeat("x", 1<<20) + `"}`
	r := newReq(http.MethodPost, "/bookings", body, bearer(f.token(t, "u1", "client", tenantA)),
		header("X-Tenant-ID", tenantA.String()), header("Idempotency-Key", "big"))
	r.ContentLength = -1 // chunked: the limit is found while reading
	mustProblem(t, f.do(r), http.StatusRequestEntityTooLarge, "payload_too_large")
	require.Equal(t, int64(0), runs.Load())
}
