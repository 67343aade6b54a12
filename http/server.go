package http

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/gorilla/mux"
)

// ServerConfig is what a Server needs. Verifier, Tenants and Idempotency are
// required; the rest have defaults.
type ServerConfig struct {
	Verifier    *Verifier
	Tenants     TenantResolver
	Idempotency IdempotencyStore
	// Logger receives the access log and every request's lines; nil means
	// slog.Default().
	Logger *slog.Logger
	// ProblemBaseURL prefixes problem types (<base>/problems/<code>); ""
	// means DefaultProblemBaseURL. Clients may match on the type, so
	// changing it is an API change.
	ProblemBaseURL string
	// MaxBodyBytes limits request bodies; 0 means DefaultMaxBodyBytes (the
	// contract's 1 MiB).
	MaxBodyBytes int64
	// Metrics, when set, instruments every request and serves GET
	// /metrics.
	Metrics *Metrics
	// Readiness, when set, serves GET /readyz.
	Readiness *Readiness
	// Head, when set, returns the event store's head position: the
	// commands that write no event (webhook and calendar-feed management)
	// answer X-Position with it, as every command does (see AtHead).
	Head func(ctx context.Context) (int64, error)
}

// Validate reports every problem of the configuration at once.
func (c ServerConfig) Validate() error {
	var errs []error
	if c.Verifier == nil {
		errs = append(errs, errors.New("http server: Verifier is required"))
	}
	if c.Tenants == nil {
		errs = append(errs, errors.New("http server: Tenants (a TenantResolver) is required"))
	}
	if c.Idempotency == nil {
		errs = append(errs, errors.New("http server: Idempotency (an IdempotencyStore) is required"))
	}
	if c.ProblemBaseURL != "" {
		u, err := url.Parse(c.ProblemBaseURL)
		if err != nil || u.Scheme == "" || u.Host == "" {
			errs = append(errs, fmt.Errorf("http server: ProblemBaseURL %q must be an absolute URL", c.ProblemBaseURL))
		}
	}
	if c.MaxBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("http server: MaxBodyBytes %d must not be negative", c.MaxBodyBytes))
	}
	return errors.Join(errs...)
}

// Server is the REST API's skeleton: the middleware chain every request
// passes (request and correlation ids, request logger, access log, panic
// recovery, body limit) and three groups of routes that differ in what they
// require. Endpoint handlers are registered into the groups before the
// server starts serving; gorilla/mux routers are not safe for registration
// while serving.
//
//   - Public: no authentication, no tenant (/healthz, /readyz, /metrics,
//     /openapi.json, /docs, /redoc).
//   - Authenticated: a bearer token, no tenant header (POST /tenants, GET
//     /tenants/{id}); Idempotency-Key is honoured.
//   - Tenant: a bearer token, a tenant header that agrees with it, and
//     Idempotency-Key honoured.
//
// Unknown paths are answered 404 not_found and known paths with another
// method 405 method_not_allowed (with Allow), both as problems. A path
// must be registered in one group only: groups are tried in the order
// above and the first that matches path and method wins.
type Server struct {
	router        *mux.Router
	public        *mux.Router
	authenticated *mux.Router
	tenant        *mux.Router
	handler       http.Handler
	head          func(ctx context.Context) (int64, error)
}

// NewServer builds a Server with /healthz registered. It fails when cfg is
// invalid.
func NewServer(cfg ServerConfig) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	base := strings.TrimSuffix(cfg.ProblemBaseURL, "/")
	if base == "" {
		base = DefaultProblemBaseURL
	}
	maxBody := cfg.MaxBodyBytes
	if maxBody == 0 {
		maxBody = DefaultMaxBodyBytes
	}

	s := &Server{router: mux.NewRouter(), head: cfg.Head}
	s.router.NotFoundHandler = http.HandlerFunc(notFound)
	s.router.MethodNotAllowedHandler = http.HandlerFunc(s.methodNotAllowed)
	s.router.Use(recordRoute)

	// Subrouters without matchers match any request their routes match;
	// they must not have their own NotFound/MethodNotAllowed handlers, or
	// the first group would answer for paths of the later ones.
	s.public = s.router.NewRoute().Subrouter()
	s.authenticated = s.router.NewRoute().Subrouter()
	s.authenticated.Use(mux.MiddlewareFunc(Authenticate(cfg.Verifier)), mux.MiddlewareFunc(Idempotent(cfg.Idempotency)))
	s.tenant = s.router.NewRoute().Subrouter()
	s.tenant.Use(
		mux.MiddlewareFunc(Authenticate(cfg.Verifier)),
		mux.MiddlewareFunc(ResolveTenant(cfg.Tenants)),
		mux.MiddlewareFunc(Idempotent(cfg.Idempotency)),
	)

	s.public.HandleFunc("/healthz", healthz).Methods(http.MethodGet, http.MethodHead)
	if cfg.Readiness != nil {
		s.public.Handle("/readyz", cfg.Readiness).Methods(http.MethodGet, http.MethodHead)
	}
	inner := accessLog(recoverPanics(limitBody(maxBody, s.router)))
	if cfg.Metrics != nil {
		s.public.Handle("/metrics", cfg.Metrics.Handler()).Methods(http.MethodGet)
		inner = cfg.Metrics.instrument(inner)
	}
	s.handler = requestContext(logger, base, maxBody, inner)
	return s, nil
}

// AtHead wraps the handler of a command that writes no event (webhook and
// calendar-feed management) so that its success answer carries
// X-Position like every command's: the store's head when the request
// arrived. Every read model reaches it, so a client may send it back as
// X-Min-Position like any other. A failure to read the head is answered
// as the store's failure (503 when it is unreachable). Without
// ServerConfig.Head it returns h unchanged.
func (s *Server) AtHead(h http.HandlerFunc) http.HandlerFunc {
	if s.head == nil {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		handle(w, r, func(ctx context.Context) error {
			pos, err := s.head(ctx)
			if err != nil {
				return err
			}
			h(&positionWriter{ResponseWriter: w, pos: pos}, r)
			return nil
		})
	}
}

// positionWriter sets X-Position on a 2xx answer that has none.
type positionWriter struct {
	http.ResponseWriter
	pos     int64
	written bool
}

func (p *positionWriter) WriteHeader(code int) {
	if !p.written && code/100 == 2 && p.Header().Get(headerPosition) == "" {
		SetPosition(p.ResponseWriter, p.pos)
	}
	p.written = true
	p.ResponseWriter.WriteHeader(code)
}

func (p *positionWriter) Write(b []byte) (int, error) {
	if !p.written {
		p.WriteHeader(http.StatusOK)
	}
	return p.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the writer underneath.
func (p *positionWriter) Unwrap() http.ResponseWriter { return p.ResponseWriter }

// Public returns the group of routes that need neither token nor tenant.
func (s *Server) Public() *mux.Router { return s.public }

// Authenticated returns the group of routes that need a token but no
// tenant header: platform operations such as creating a tenant.
func (s *Server) Authenticated() *mux.Router { return s.authenticated }

// Tenant returns the group of tenant-scoped routes; handlers find the
// caller with PrincipalFrom and the tenant with TenantFrom.
func (s *Server) Tenant() *mux.Router { return s.tenant }

// Walk walks every route registered so far, in the order they are tried,
// as mux.Router.Walk does (tests use it to compare the routes with the
// OpenAPI document).
func (s *Server) Walk(fn mux.WalkFunc) error { return s.router.Walk(fn) }

// Handler returns the whole API as one handler, for an http.Server or
// httptest. Routes registered after the call are served too.
func (s *Server) Handler() http.Handler { return s.handler }

func healthz(w http.ResponseWriter, r *http.Request) {
	if err := WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"}); err != nil {
		LoggerFrom(r.Context()).DebugContext(r.Context(), "write healthz", slog.Any("error", err))
	}
}

func notFound(w http.ResponseWriter, r *http.Request) {
	WriteError(w, r, Error(CodeNotFound, 0, fmt.Sprintf("no route for %s", r.URL.Path)))
}

// candidateMethods are the methods probed to fill Allow on a 405.
var candidateMethods = []string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
	http.MethodPatch, http.MethodDelete, http.MethodOptions,
}

func (s *Server) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	var allowed []string
	for _, m := range candidateMethods {
		probe := r.Clone(r.Context())
		probe.Method = m
		var match mux.RouteMatch
		if s.router.Match(probe, &match) && match.MatchErr == nil {
			allowed = append(allowed, m)
		}
	}
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	WriteError(w, r, Error(CodeMethodNotAllowed, 0,
		fmt.Sprintf("%s is not allowed on %s", r.Method, r.URL.Path)))
}
