package http

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// HeaderIdempotencyKey names the header that makes a command safe to retry.
const HeaderIdempotencyKey = "Idempotency-Key"

// MaxIdempotencyKeyLength bounds Idempotency-Key; longer keys are a 400.
const MaxIdempotencyKeyLength = 255

// HeaderIdempotentReplayed marks a response replayed from the idempotency
// store rather than produced by running the command again.
const HeaderIdempotentReplayed = "Idempotent-Replayed"

// Defaults of IdempotencyOptions.
const (
	// DefaultIdempotencyTTL is how long a key is remembered: long enough
	// for any sane retry policy, short enough to bound the table.
	DefaultIdempotencyTTL = 24 * time.Hour
	// DefaultIdempotencyLease is how long a started request holds its key
	// before a retry may take it over. It must exceed the server's write
	// timeout, or a slow first attempt and its retry run side by side.
	DefaultIdempotencyLease = time.Minute
)

// Errors an IdempotencyStore returns from Begin. They are coded, so
// WriteError answers them 422 and 409.
var (
	// ErrIdempotencyKeyReused: the key was used for a different request
	// (method, path or body). The client has a bug; retrying cannot help.
	ErrIdempotencyKeyReused = Error(CodeIdempotencyKeyReused, 0,
		"this Idempotency-Key was used with a different request; use a new key for a new request")
	// ErrIdempotencyInProgress: the first request with this key is still
	// running. Retrying later returns its response.
	ErrIdempotencyInProgress = Error(CodeIdempotencyInProgress, 0,
		"a request with this Idempotency-Key is still in progress; retry later")
)

// replayedHeaders are the response headers stored and replayed: what a
// client needs to use the answer (where the object is, its version, the
// position to read it at). Request-specific ones such as X-Request-ID stay
// those of the retry.
var replayedHeaders = []string{"Content-Type", "Location", "ETag", headerPosition}

// StoredResponse is the response remembered for an idempotency key.
type StoredResponse struct {
	Status int
	// Header holds only the headers that are replayed (Content-Type,
	// Location, ETag, X-Position).
	Header http.Header
	Body   []byte
}

// IdempotencyStore remembers, per scope (tenant and caller) and key, the
// fingerprint of the first request and, once it finished, its response. It
// stores bytes and knows nothing about HTTP beyond StoredResponse, so a SQL
// table (idempotency_keys) implements it as well as memory does.
// Implementations must be safe for concurrent use, also across processes
// sharing the store: Begin must claim a key atomically.
//
// A record lives from Begin for a TTL (DefaultIdempotencyTTL), whatever
// happens; after that the key is free again.
type IdempotencyStore interface {
	// Begin claims key for a request with fingerprint (32 bytes, SHA-256).
	//   - No live record: it records the claim and returns (nil, nil); the
	//     caller runs the request and must then Complete or Abandon.
	//   - A record with another fingerprint: ErrIdempotencyKeyReused.
	//   - A completed record: a copy of its response, nil error.
	//   - A claim younger than the lease: ErrIdempotencyInProgress.
	//   - A claim older than the lease (its process died, or gave up
	//     without Abandon): the caller takes it over, (nil, nil). The
	//     request then runs a second time; commands make that safe by
	//     deriving event ids from the key, so the store's append dedupes.
	Begin(ctx context.Context, scope, key string, fingerprint []byte) (*StoredResponse, error)
	// Complete stores resp for a claimed key; later Begins replay it. It
	// is a no-op when the record has expired or been abandoned meanwhile.
	// If a takeover happened, the last Complete wins; both responses
	// describe the same outcome, since the second run appended nothing.
	Complete(ctx context.Context, scope, key string, resp StoredResponse) error
	// Abandon drops a claim so that a retry runs the request again at once
	// (used after a 5xx or a panic, where nothing durable is known to
	// have happened). It leaves a completed record alone and is a no-op
	// for an unknown key.
	Abandon(ctx context.Context, scope, key string) error
}

// IdempotencyKeyFrom returns the Idempotency-Key of the running command,
// or "" when the client sent none. Commands derive deterministic event ids
// from it (with the tenant and caller) and record it in event metadata, so
// that a retry which runs again appends nothing new.
func IdempotencyKeyFrom(ctx context.Context) string {
	k, _ := ctx.Value(idempotencyKeyKey).(string)
	return k
}

// WithIdempotencyKey returns ctx carrying key, for tests and for callers
// other than HTTP that want the same deduplication.
func WithIdempotencyKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, idempotencyKeyKey, key)
}

// Idempotent is middleware that makes POST, PUT, PATCH and DELETE requests
// carrying Idempotency-Key safe to retry: it must run after Authenticate
// (and ResolveTenant, where there is a tenant), because keys are scoped by
// tenant and caller, so two users cannot collide or read each other's
// answers. The fingerprint is SHA-256 over method, path and body.
//
// A response below 500 is stored and replayed to retries with the same
// key and request (marked Idempotent-Replayed: true); a 5xx or a panic
// abandons the key so the retry runs again. A key longer than
// MaxIdempotencyKeyLength or with characters other than visible ASCII is a
// 400; errors of the store are answered as WriteError maps them. Requests
// without the header, and other methods, pass through untouched.
func Idempotent(store IdempotencyStore) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			key := r.Header.Get(HeaderIdempotencyKey)
			if key == "" || !isCommand(r.Method) {
				next.ServeHTTP(w, r)
				return
			}
			if len(key) > MaxIdempotencyKeyLength || !validKey(key) {
				WriteError(w, r, badRequest(HeaderIdempotencyKey, "invalid",
					"Idempotency-Key must be 1 to 255 visible ASCII characters"))
				return
			}
			body, err := readBody(r)
			if err != nil {
				WriteError(w, r, err)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))

			ctx := r.Context()
			p, _ := PrincipalFrom(ctx)
			scope := TenantFrom(ctx).String() + ":" + p.UserID
			fp := fingerprint(r.Method, r.URL.EscapedPath(), body)

			stored, err := store.Begin(ctx, scope, key, fp)
			if err != nil {
				WriteError(w, r, err)
				return
			}
			if stored != nil {
				replay(w, stored)
				return
			}

			ctx = WithIdempotencyKey(ctx, key)
			addLogAttrs(ctx, "idempotency_key", key)
			// The outcome is recorded even if the client hangs up.
			bg := context.WithoutCancel(ctx)
			cw := &captureWriter{ResponseWriter: w}
			finished := false
			defer func() {
				if finished {
					return
				}
				// A panic: nothing is known to have happened durably.
				if err := store.Abandon(bg, scope, key); err != nil {
					LoggerFrom(ctx).ErrorContext(ctx, "abandon idempotency key", slog.Any("error", err))
				}
			}()
			next.ServeHTTP(cw, r.WithContext(ctx))
			finished = true

			status := cw.status
			if status == 0 {
				status = http.StatusOK
			}
			if status >= http.StatusInternalServerError {
				if err := store.Abandon(bg, scope, key); err != nil {
					LoggerFrom(ctx).ErrorContext(ctx, "abandon idempotency key", slog.Any("error", err))
				}
				return
			}
			resp := StoredResponse{Status: status, Header: cw.header, Body: cw.body.Bytes()}
			if resp.Header == nil {
				resp.Header = selectHeaders(w.Header())
			}
			if err := store.Complete(bg, scope, key, resp); err != nil {
				// The client has its answer; a retry will see the claim
				// until the lease ends (409), then run again safely.
				LoggerFrom(ctx).ErrorContext(ctx, "complete idempotency key", slog.Any("error", err))
			}
		})
	}
}

func isCommand(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

func validKey(k string) bool {
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// fingerprint hashes what makes two requests "the same": method, path and
// body. The separators cannot occur in a method or an escaped path.
func fingerprint(method, path string, body []byte) []byte {
	h := sha256.New()
	io.WriteString(h, method)
	io.WriteString(h, " ")
	io.WriteString(h, path)
	io.WriteString(h, "\n")
	h.Write(body)
	return h.Sum(nil)
}

func selectHeaders(h http.Header) http.Header {
	out := http.Header{}
	for _, k := range replayedHeaders {
		if vs := h.Values(k); len(vs) > 0 {
			out[k] = append([]string(nil), vs...)
		}
	}
	return out
}

func replay(w http.ResponseWriter, s *StoredResponse) {
	h := w.Header()
	for k, vs := range s.Header {
		h[http.CanonicalHeaderKey(k)] = append([]string(nil), vs...)
	}
	h.Set(HeaderIdempotentReplayed, "true")
	w.WriteHeader(s.Status)
	_, _ = w.Write(s.Body)
}

// captureWriter tees the response to the client and to memory, and keeps
// the replayed headers as they were when the status was sent.
type captureWriter struct {
	http.ResponseWriter
	status int
	header http.Header
	body   bytes.Buffer
}

func (c *captureWriter) WriteHeader(code int) {
	if code >= 100 && code < 200 {
		c.ResponseWriter.WriteHeader(code)
		return
	}
	if c.status == 0 {
		c.status = code
		c.header = selectHeaders(c.ResponseWriter.Header())
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *captureWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.WriteHeader(http.StatusOK)
	}
	c.body.Write(b)
	return c.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (c *captureWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// IdempotencyOptions tune an IdempotencyStore. Zero values take the
// defaults.
type IdempotencyOptions struct {
	TTL   time.Duration
	Lease time.Duration
	// Now is the clock; nil means time.Now. Tests move it to expire
	// records and leases.
	Now func() time.Time
}

func (o IdempotencyOptions) withDefaults() IdempotencyOptions {
	if o.TTL <= 0 {
		o.TTL = DefaultIdempotencyTTL
	}
	if o.Lease <= 0 {
		o.Lease = DefaultIdempotencyLease
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// MemoryIdempotencyStore is the embedded IdempotencyStore, for the
// in-memory mode and tests. It forgets everything on restart, so it gives
// no protection across processes. Safe for concurrent use.
type MemoryIdempotencyStore struct {
	opts IdempotencyOptions

	mu        sync.Mutex
	records   map[memKey]*memRecord
	lastSweep time.Time
}

type memKey struct{ scope, key string }

type memRecord struct {
	fingerprint []byte
	created     time.Time
	claimed     time.Time
	resp        *StoredResponse
}

// NewMemoryIdempotencyStore returns an empty store.
func NewMemoryIdempotencyStore(opts IdempotencyOptions) *MemoryIdempotencyStore {
	return &MemoryIdempotencyStore{opts: opts.withDefaults(), records: map[memKey]*memRecord{}}
}

// Begin implements IdempotencyStore. It never returns other errors than the
// two sentinels.
func (s *MemoryIdempotencyStore) Begin(_ context.Context, scope, key string, fp []byte) (*StoredResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	s.sweep(now)

	k := memKey{scope, key}
	rec, ok := s.records[k]
	if !ok || now.Sub(rec.created) >= s.opts.TTL {
		s.records[k] = &memRecord{fingerprint: bytes.Clone(fp), created: now, claimed: now}
		return nil, nil
	}
	switch {
	case !bytes.Equal(rec.fingerprint, fp):
		return nil, ErrIdempotencyKeyReused
	case rec.resp != nil:
		return cloneResponse(rec.resp), nil
	case now.Sub(rec.claimed) < s.opts.Lease:
		return nil, ErrIdempotencyInProgress
	default:
		rec.claimed = now
		return nil, nil
	}
}

// Complete implements IdempotencyStore.
func (s *MemoryIdempotencyStore) Complete(_ context.Context, scope, key string, resp StoredResponse) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rec, ok := s.records[memKey{scope, key}]; ok {
		rec.resp = cloneResponse(&resp)
	}
	return nil
}

// Abandon implements IdempotencyStore.
func (s *MemoryIdempotencyStore) Abandon(_ context.Context, scope, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := memKey{scope, key}
	if rec, ok := s.records[k]; ok && rec.resp == nil {
		delete(s.records, k)
	}
	return nil
}

// sweep drops expired records, at most once a minute so Begin stays cheap.
func (s *MemoryIdempotencyStore) sweep(now time.Time) {
	if now.Sub(s.lastSweep) < time.Minute {
		return
	}
	s.lastSweep = now
	for k, rec := range s.records {
		if now.Sub(rec.created) >= s.opts.TTL {
			delete(s.records, k)
		}
	}
}

func cloneResponse(r *StoredResponse) *StoredResponse {
	return &StoredResponse{Status: r.Status, Header: r.Header.Clone(), Body: bytes.Clone(r.Body)}
}

var _ IdempotencyStore = (*MemoryIdempotencyStore)(nil)
