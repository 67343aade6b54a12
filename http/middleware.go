package http

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/mux"
)

// Header names this package reads or writes.
const (
	HeaderRequestID     = "X-Request-ID"
	HeaderCorrelationID = "X-Correlation-ID"
	headerPosition      = "X-Position"
	headerMinPosition   = "X-Min-Position"
)

// maxIDLength bounds request and correlation ids taken from clients, so a
// hostile header cannot bloat every log line of the request.
const maxIDLength = 128

type ctxKey int

const (
	stateKey ctxKey = iota
	principalKey
	tenantKey
	idempotencyKeyKey
)

// requestState is what the outermost middleware knows about a request and
// what inner layers add to it (route template, logger attributes). It lives
// in the request context as a pointer so that the access log, which runs
// outside the router, sees what was learnt inside.
type requestState struct {
	requestID     string
	correlationID string
	problemBase   string
	maxBody       int64

	mu     sync.Mutex
	logger *slog.Logger
	route  string

	written atomic.Bool
	status  int
	bytes   int64
}

func stateFrom(ctx context.Context) *requestState {
	st, _ := ctx.Value(stateKey).(*requestState)
	return st
}

// RequestIDFrom returns the request id of ctx: the client's X-Request-ID
// when it sent a usable one, else one generated for the request. It returns
// "" outside a request served by Server.
func RequestIDFrom(ctx context.Context) string {
	if st := stateFrom(ctx); st != nil {
		return st.requestID
	}
	return ""
}

// CorrelationIDFrom returns the correlation id of ctx: the client's
// X-Correlation-ID, else the request id. Commands record it in event
// metadata so that everything one user action caused can be traced. It
// returns "" outside a request served by Server.
func CorrelationIDFrom(ctx context.Context) string {
	if st := stateFrom(ctx); st != nil {
		return st.correlationID
	}
	return ""
}

// LoggerFrom returns the logger of the request in ctx, which adds the
// request id, the correlation id and, once known, the caller and tenant to
// every line. Outside a request it returns slog.Default(), so it never
// returns nil. Safe for concurrent use.
func LoggerFrom(ctx context.Context) *slog.Logger {
	if st := stateFrom(ctx); st != nil {
		st.mu.Lock()
		defer st.mu.Unlock()
		return st.logger
	}
	return slog.Default()
}

// addLogAttrs makes the request's logger (and so its access log line) carry
// args from now on.
func addLogAttrs(ctx context.Context, args ...any) {
	if st := stateFrom(ctx); st != nil {
		st.mu.Lock()
		st.logger = st.logger.With(args...)
		st.mu.Unlock()
	}
}

// validID accepts ids of visible ASCII only, so they are safe in headers
// and logs.
func validID(s string) bool {
	if s == "" || len(s) > maxIDLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// requestContext is the outermost layer: it fixes the request and
// correlation ids (echoing both), puts the request state and logger in the
// context and records the status for the access log.
func requestContext(logger *slog.Logger, problemBase string, maxBody int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqID := r.Header.Get(HeaderRequestID)
		if !validID(reqID) {
			reqID = uuid.NewString()
		}
		corrID := r.Header.Get(HeaderCorrelationID)
		if !validID(corrID) {
			corrID = reqID
		}
		w.Header().Set(HeaderRequestID, reqID)
		w.Header().Set(HeaderCorrelationID, corrID)

		st := &requestState{
			requestID:     reqID,
			correlationID: corrID,
			problemBase:   problemBase,
			maxBody:       maxBody,
			logger:        logger.With(slog.String("request_id", reqID), slog.String("correlation_id", corrID)),
		}
		ctx := context.WithValue(r.Context(), stateKey, st)
		next.ServeHTTP(&recorder{ResponseWriter: w, st: st}, r.WithContext(ctx))
	})
}

// accessLog writes one line per request once it is answered, with the route
// template rather than the path so lines of one endpoint group together.
func accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		defer func() {
			st := stateFrom(r.Context())
			if st == nil {
				return
			}
			st.mu.Lock()
			logger, route := st.logger, st.route
			st.mu.Unlock()
			if route == "" {
				route = "unmatched"
			}
			status := st.status
			if status == 0 {
				status = http.StatusOK // net/http's answer when a handler writes nothing
			}
			logger.LogAttrs(r.Context(), slog.LevelInfo, "http request",
				slog.String("method", r.Method),
				slog.String("route", route),
				slog.String("path", r.URL.Path),
				slog.Int("status", status),
				slog.Int64("bytes", st.bytes),
				slog.Duration("duration", time.Since(start)))
		}()
		next.ServeHTTP(w, r)
	})
}

// recordRoute is a router middleware: it runs after gorilla/mux matched a
// route and notes the route template for the access log.
func recordRoute(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if st := stateFrom(r.Context()); st != nil {
			if route := mux.CurrentRoute(r); route != nil {
				if tmpl, err := route.GetPathTemplate(); err == nil {
					st.mu.Lock()
					st.route = tmpl
					st.mu.Unlock()
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// recoverPanics turns a panicking handler into a 500 problem so that one bad
// request does not take the connection (or, without net/http's own recover,
// the process) down. http.ErrAbortHandler is re-raised: it is net/http's way
// of aborting a response on purpose.
func recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			WriteError(w, r, fmt.Errorf("panic: %v\n%s", v, debug.Stack()))
		}()
		next.ServeHTTP(w, r)
	})
}

// limitBody refuses bodies over limit: at once when Content-Length says so,
// else when a reader crosses the limit (DecodeJSON and the idempotency layer
// turn that into 413).
func limitBody(limit int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > limit {
			WriteError(w, r, &http.MaxBytesError{Limit: limit})
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, limit)
		}
		next.ServeHTTP(w, r)
	})
}

// recorder notes the status and size of the response for the access log
// and for WriteError, which must not start a second response.
type recorder struct {
	http.ResponseWriter
	st *requestState
}

func (rw *recorder) WriteHeader(code int) {
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		rw.ResponseWriter.WriteHeader(code)
		return
	}
	if rw.st.written.Swap(true) {
		return
	}
	rw.st.status = code
	rw.ResponseWriter.WriteHeader(code)
}

func (rw *recorder) Write(b []byte) (int, error) {
	if !rw.st.written.Load() {
		rw.WriteHeader(http.StatusOK)
	}
	n, err := rw.ResponseWriter.Write(b)
	rw.st.bytes += int64(n)
	return n, err
}

// Flush lets streaming handlers flush through the recorder.
func (rw *recorder) Flush() {
	if !rw.st.written.Load() {
		rw.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(rw.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (rw *recorder) Unwrap() http.ResponseWriter { return rw.ResponseWriter }
