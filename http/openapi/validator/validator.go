// Package validator checks HTTP requests and responses against the API's
// OpenAPI document (package http/openapi) with kin-openapi. Tests put it
// in front of a server (Handler) or behind a client (Transport) so that
// every exchange they make also checks the document:
//
//   - a request the document routes nowhere must be answered 404 or 405
//     with a problem;
//   - a response must match the operation: a documented status, its
//     required headers, its media type and its schema, and say no more
//     than the document: no member its schema does not name, no header
//     of the API the response does not declare (strict.go);
//   - a request the document refuses (a missing required member, an
//     unknown one, a wrong type or format, no bearer token where one is
//     required, a query parameter it does not declare) must be refused
//     by the server too (4xx). A refusal of a request the document
//     accepts is fine: the server checks more than a schema can say
//     (conflicts, the tenant's policy).
//
// A test that must leave an exchange partly or wholly unchecked says so,
// with its reason, in the request's context (SkipRequest, SkipExchange).
//
// It is meant for tests: it buffers whole bodies and validates
// synchronously.
package validator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/gorilla/mux"

	"github.com/bookingengine/booking/http/openapi"
)

// registerDecoders teaches kin-openapi the media types of the document that
// it does not know: their bodies are checked as strings.
var registerDecoders = sync.OnceFunc(func() {
	for _, ct := range []string{"text/html", "text/css", "text/javascript", "text/calendar", "application/openmetrics-text"} {
		if openapi3filter.RegisteredBodyDecoder(ct) == nil {
			openapi3filter.RegisterBodyDecoder(ct, openapi3filter.PlainBodyDecoder)
		}
	}
})

// Load parses and validates an OpenAPI document.
func Load(ctx context.Context, data []byte) (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	loader.Context = ctx
	doc, err := loader.LoadFromData(data)
	if err != nil {
		return nil, fmt.Errorf("load the OpenAPI document: %w", err)
	}
	if err := doc.Validate(ctx); err != nil {
		return nil, fmt.Errorf("validate the OpenAPI document: %w", err)
	}
	return doc, nil
}

// Validator checks exchanges against one document. It is safe for
// concurrent use.
type Validator struct {
	doc     *openapi3.T
	router  routers.Router
	problem *openapi3.Schema
	// headers are the response headers the document declares somewhere.
	headers map[string]bool
	bodies  *bodies
}

// New returns a Validator for the API's document (openapi.Document).
func New() (*Validator, error) {
	return NewFor(context.Background(), openapi.Document())
}

// NewFor returns a Validator for the document data.
func NewFor(ctx context.Context, data []byte) (*Validator, error) {
	registerDecoders()
	doc, err := Load(ctx, data)
	if err != nil {
		return nil, err
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("route the OpenAPI document: %w", err)
	}
	problem := doc.Components.Schemas["Problem"]
	if problem == nil || problem.Value == nil {
		return nil, errors.New("the OpenAPI document has no Problem schema")
	}
	b, err := newBodies(data)
	if err != nil {
		return nil, err
	}
	return &Validator{doc: doc, router: router, problem: problem.Value, headers: documentHeaders(doc), bodies: b}, nil
}

// Document returns the parsed document. Callers must not modify it.
func (v *Validator) Document() *openapi3.T { return v.doc }

// Exchange is one request and the response it got, with whole bodies.
type Exchange struct {
	// Request is the request as sent; its Body is ignored (see
	// RequestBody).
	Request     *http.Request
	RequestBody []byte
	Status      int
	Header      http.Header
	Body        []byte
}

// String names the exchange in reports: method, target and status.
func (e Exchange) String() string {
	return fmt.Sprintf("%s %s → %d", e.Request.Method, e.Request.URL.RequestURI(), e.Status)
}

// options are the checks applied. Security is checked for presence only:
// whether a token is valid is the server's business, and its 401 is then
// checked as a response like any other.
func options() *openapi3filter.Options {
	return &openapi3filter.Options{
		IncludeResponseStatus: true,
		MultiError:            true,
		SkipSettingDefaults:   true,
		// Bodies are checked by checkRequestBody and checkResponseBody,
		// which compile each schema once.
		ExcludeRequestBody:  true,
		ExcludeResponseBody: true,
		// The formats kin-openapi does not check by itself.
		SchemaValidationOptions: formats(),
		AuthenticationFunc: func(_ context.Context, in *openapi3filter.AuthenticationInput) error {
			if in.SecurityScheme == nil || in.SecurityScheme.Type != "http" || !strings.EqualFold(in.SecurityScheme.Scheme, "bearer") {
				return fmt.Errorf("security scheme %s is not checked", in.SecuritySchemeName)
			}
			scheme, token, _ := strings.Cut(in.RequestValidationInput.Request.Header.Get("Authorization"), " ")
			if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
				return errors.New("no bearer token")
			}
			return nil
		},
	}
}

// exemptKey is the context key of an exemption.
type exemptKey struct{}

// exemption is what a request's context excuses from the check, and why.
type exemption struct {
	request bool // the request is not checked; the response still is
	all     bool // nothing is checked
	reason  string
}

// SkipRequest returns a context under which Check (and so Handler and
// Transport) does not check the request made with it, only the response:
// for a test that sends, on purpose, a request the document refuses and
// that the server nevertheless accepts (2xx/3xx). A request the document
// refuses and the server refuses (4xx) needs no exemption. reason must
// say why; it panics when reason is empty, so that every exception is
// explained where it is made.
func SkipRequest(ctx context.Context, reason string) context.Context {
	return exempt(ctx, exemption{request: true, reason: reason})
}

// SkipExchange returns a context under which Check does not check the
// exchange at all: for an answer that does not come from the API the
// document describes (a gateway in front of it that answers by itself).
// reason must say why; it panics when reason is empty.
func SkipExchange(ctx context.Context, reason string) context.Context {
	return exempt(ctx, exemption{all: true, reason: reason})
}

func exempt(ctx context.Context, e exemption) context.Context {
	if strings.TrimSpace(e.reason) == "" {
		panic("validator: an exemption needs a reason")
	}
	return context.WithValue(ctx, exemptKey{}, e)
}

// Check validates one exchange and returns every disagreement with the
// document, or nil. An exemption in the context of ex.Request
// (SkipRequest, SkipExchange) leaves out what it names.
func (v *Validator) Check(ctx context.Context, ex Exchange) error {
	skip, _ := ex.Request.Context().Value(exemptKey{}).(exemption)
	if skip.all {
		return nil
	}
	req := ex.Request.Clone(ctx)
	req.Body = io.NopCloser(bytes.NewReader(ex.RequestBody))
	req.ContentLength = int64(len(ex.RequestBody))

	route, pathParams, err := v.router.FindRoute(req)
	if err != nil {
		if (ex.Status == http.StatusNotFound || ex.Status == http.StatusMethodNotAllowed) && v.isProblem(ex) == nil {
			return nil
		}
		return fmt.Errorf("%s: the document has no operation for it (%v), yet the server answered %d", ex, err, ex.Status)
	}
	opts := options()
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: pathParams, Route: route, Options: opts}
	reqErr := errors.Join(openapi3filter.ValidateRequest(ctx, in), v.checkRequestBody(route, req.Header.Get("Content-Type"), ex.RequestBody))

	var errs []error
	resIn := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: ex.Status, Header: ex.Header,
		Body: io.NopCloser(bytes.NewReader(ex.Body)), Options: opts,
	}
	resErr := openapi3filter.ValidateResponse(ctx, resIn)
	body, bodyErr := v.checkResponseBody(route, ex)
	if err := errors.Join(resErr, bodyErr); err != nil {
		errs = append(errs, fmt.Errorf("%s (operation %s): the response does not match the document: %w\nbody: %s",
			ex, route.Operation.OperationID, err, clip(ex.Body)))
	}
	if err := v.strictResponse(route.Operation, ex, body); err != nil {
		errs = append(errs, fmt.Errorf("%s (operation %s): the response says more than the document: %w\nbody: %s",
			ex, route.Operation.OperationID, err, clip(ex.Body)))
	}
	if q := undeclaredQuery(route, req.URL); len(q) > 0 && ex.Status < 400 && !skip.request {
		reqErr = errors.Join(reqErr, fmt.Errorf("query parameters the document does not declare: %s", strings.Join(q, ", ")))
	}
	if reqErr != nil && ex.Status < 400 && !skip.request {
		errs = append(errs, fmt.Errorf("%s (operation %s): the document refuses the request, yet the server accepted it: %w\nrequest body: %s",
			ex, route.Operation.OperationID, reqErr, clip(ex.RequestBody)))
	}
	return errors.Join(errs...)
}

// isProblem checks that the response is a problem+json body.
func (v *Validator) isProblem(ex Exchange) error {
	if ct := ex.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		return fmt.Errorf("content type %q is not application/problem+json", ct)
	}
	var body any
	if err := json.Unmarshal(ex.Body, &body); err != nil {
		return err
	}
	return v.problem.VisitJSON(body, openapi3.EnableJSONSchema2020())
}

func clip(b []byte) string {
	const max = 2000
	if len(b) > max {
		return string(b[:max]) + "…"
	}
	return string(b)
}

// Handler serves next and checks every exchange, handing each
// disagreement to report (with the request). report must be safe for
// concurrent use; the response reaches the client unchanged.
func (v *Validator) Handler(next http.Handler, report func(*http.Request, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := readAll(r.Body)
		if err != nil {
			report(r, fmt.Errorf("read request body: %w", err))
		}
		original := r.Clone(r.Context())
		r.Body = io.NopCloser(bytes.NewReader(body))
		tee := &teeWriter{ResponseWriter: w}
		next.ServeHTTP(tee, r)
		if tee.status == 0 {
			tee.status = http.StatusOK
		}
		ex := Exchange{Request: original, RequestBody: body, Status: tee.status, Header: w.Header().Clone(), Body: tee.body.Bytes()}
		if err := v.Check(r.Context(), ex); err != nil {
			report(original, err)
		}
	})
}

// teeWriter keeps a copy of the response.
type teeWriter struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

// WriteHeader notes the status and passes it on.
func (t *teeWriter) WriteHeader(code int) {
	if t.status == 0 && code >= 200 {
		t.status = code
	}
	t.ResponseWriter.WriteHeader(code)
}

// Write keeps a copy of b and passes it on.
func (t *teeWriter) Write(b []byte) (int, error) {
	if t.status == 0 {
		t.status = http.StatusOK
	}
	t.body.Write(b)
	return t.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (t *teeWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }

// Transport sends requests through next (http.DefaultTransport when nil)
// and checks every exchange, handing each disagreement to report. report
// must be safe for concurrent use; the caller gets the response unchanged.
func (v *Validator) Transport(next http.RoundTripper, report func(*http.Request, error)) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return roundTripper{v: v, next: next, report: report}
}

type roundTripper struct {
	v      *Validator
	next   http.RoundTripper
	report func(*http.Request, error)
}

// RoundTrip sends req, checks the exchange and returns the response with
// its body buffered.
func (t roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := readAll(req.Body)
	if err != nil {
		return nil, err
	}
	sent := req.Clone(req.Context())
	sent.Body = io.NopCloser(bytes.NewReader(body))
	if req.GetBody != nil || len(body) > 0 {
		sent.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	res, err := t.next.RoundTrip(sent)
	if err != nil {
		return nil, err
	}
	resBody, err := readAll(res.Body)
	if err != nil {
		return nil, err
	}
	res.Body = io.NopCloser(bytes.NewReader(resBody))
	ex := Exchange{Request: req, RequestBody: body, Status: res.StatusCode, Header: res.Header.Clone(), Body: resBody}
	if err := t.v.Check(req.Context(), ex); err != nil {
		t.report(req, err)
	}
	return res, nil
}

// CloseIdleConnections closes the idle connections of the wrapped
// transport, for http.Client.CloseIdleConnections.
func (t roundTripper) CloseIdleConnections() {
	if c, ok := t.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

func readAll(rc io.ReadCloser) ([]byte, error) {
	if rc == nil || rc == http.NoBody {
		return nil, nil
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// Operations lists the document's operations as "METHOD /path", e.g.
// "GET /bookings/{id}".
func (v *Validator) Operations() []string {
	var out []string
	for path, item := range v.doc.Paths.Map() {
		for method := range item.Operations() {
			out = append(out, strings.ToUpper(method)+" "+path)
		}
	}
	slices.Sort(out)
	return out
}

// Routes lists the routes a gorilla/mux router walks (pass
// (*mux.Router).Walk, or http.Server.Walk) as "METHOD /template", one per
// method. A variable whose pattern lists alternatives
// ({action:cancel|confirm}) is expanded into one route per alternative; any
// other pattern is dropped from the name ({id:[0-9]+} is listed as {id}).
// Routes without a path or methods (route groups) are left out.
func Routes(walk func(mux.WalkFunc) error) ([]string, error) {
	var out []string
	err := walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tmpl, err := route.GetPathTemplate()
		if err != nil {
			return nil // a group without a path
		}
		methods, err := route.GetMethods()
		if err != nil {
			return nil // a group or a route for any method
		}
		for _, path := range expand(tmpl) {
			for _, m := range methods {
				out = append(out, m+" "+path)
			}
		}
		return nil
	})
	slices.Sort(out)
	return slices.Compact(out), err
}

// expand expands a template's variables of alternatives.
func expand(tmpl string) []string {
	paths := []string{""}
	rest := tmpl
	for {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			break
		}
		closing := strings.IndexByte(rest[open:], '}')
		if closing < 0 {
			break
		}
		prefix, variable := rest[:open], rest[open+1:open+closing]
		rest = rest[open+closing+1:]
		name, pattern, hasPattern := strings.Cut(variable, ":")
		alts := []string{"{" + name + "}"}
		if hasPattern && regexp.QuoteMeta(strings.ReplaceAll(pattern, "|", "")) == strings.ReplaceAll(pattern, "|", "") {
			alts = strings.Split(pattern, "|")
		}
		var next []string
		for _, p := range paths {
			for _, a := range alts {
				next = append(next, p+prefix+a)
			}
		}
		paths = next
	}
	for i := range paths {
		paths[i] += rest
	}
	return paths
}
