package validator

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers"
)

// What kin-openapi leaves unchecked and a contract test must not: members
// and headers the document does not name, and the formats it does not
// know (uuid, email, uri). A document whose response schemas are open
// (no additionalProperties: false, as clients must ignore members they do
// not know) would otherwise never notice a member the server added.

// formats are the string formats of the document that kin-openapi does not
// check by itself (it checks date and date-time).
func formats() []openapi3.SchemaValidationOption {
	return []openapi3.SchemaValidationOption{
		openapi3.WithStringFormatValidator("uuid", openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForUUIDOfRFC9562)),
		openapi3.WithStringFormatValidator("email", openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForEmail)),
		openapi3.WithStringFormatValidator("uri", openapi3.NewCallbackValidator(func(s string) error {
			u, err := url.Parse(s)
			if err != nil {
				return err
			}
			if !u.IsAbs() {
				return errors.New("not an absolute URI")
			}
			return nil
		})),
	}
}

// documentHeaders lists, canonicalized, every response header the document
// declares on some response: the API's own headers (ETag, X-Position,
// Location, Retry-After, …), as opposed to those of HTTP itself
// (Content-Length, Date, Cache-Control, …).
func documentHeaders(doc *openapi3.T) map[string]bool {
	out := map[string]bool{}
	add := func(rs *openapi3.Responses) {
		if rs == nil {
			return
		}
		for _, r := range rs.Map() {
			if r == nil || r.Value == nil {
				continue
			}
			for name := range r.Value.Headers {
				out[http.CanonicalHeaderKey(name)] = true
			}
		}
	}
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			add(op.Responses)
		}
	}
	return out
}

// undeclaredQuery returns the query parameters of target that neither the
// operation nor its path declares, sorted.
func undeclaredQuery(route *routers.Route, target *url.URL) []string {
	declared := map[string]bool{}
	for _, ps := range []openapi3.Parameters{route.PathItem.Parameters, route.Operation.Parameters} {
		for _, p := range ps {
			if p != nil && p.Value != nil && p.Value.In == openapi3.ParameterInQuery {
				declared[p.Value.Name] = true
			}
		}
	}
	var out []string
	for name := range target.Query() {
		if !declared[name] {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// undeclaredHeaders returns the headers of h that the document knows (or
// that start with X-, the API's prefix) and that response does not
// declare, sorted.
func undeclaredHeaders(response *openapi3.Response, h http.Header, known map[string]bool) []string {
	declared := map[string]bool{}
	for name := range response.Headers {
		declared[http.CanonicalHeaderKey(name)] = true
	}
	var out []string
	for name := range h {
		name = http.CanonicalHeaderKey(name)
		if (known[name] || strings.HasPrefix(name, "X-")) && !declared[name] {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// responseFor returns the response object the document gives for status,
// or nil.
func responseFor(op *openapi3.Operation, status int) *openapi3.Response {
	if op.Responses == nil {
		return nil
	}
	r := op.Responses.Status(status)
	if r == nil {
		r = op.Responses.Default()
	}
	if r == nil {
		return nil
	}
	return r.Value
}

// bodySchema returns the schema of the response body of media type
// contentType, or nil when the document gives none or the type is not
// JSON.
func bodySchema(response *openapi3.Response, contentType string) *openapi3.Schema {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return nil
	}
	c := response.Content.Get(contentType)
	if c == nil || c.Schema == nil {
		return nil
	}
	return c.Schema.Value
}

// undocumentedMembers returns the JSON pointers of the object members in
// value that schema does not name, sorted. A member is named when the
// schema, one of its allOf parts or one of its anyOf/oneOf branches lists
// it under properties; an object whose schema allows additional
// properties, or says nothing of its members, may hold any.
func undocumentedMembers(schema *openapi3.Schema, value any) []string {
	var out []string
	walkMembers(schema, value, "", &out, 0)
	slices.Sort(out)
	return out
}

// maxDepth stops a walk down a recursive schema.
const maxDepth = 64

func walkMembers(schema *openapi3.Schema, value any, at string, out *[]string, depth int) {
	if schema == nil || depth > maxDepth {
		return
	}
	switch v := value.(type) {
	case map[string]any:
		m := objectMembers(schema, map[*openapi3.Schema]bool{})
		for name, member := range v {
			ptr := at + "/" + escapePointer(name)
			if s, ok := m.named[name]; ok {
				walkMembers(s, member, ptr, out, depth+1)
				continue
			}
			switch {
			case m.extra != nil:
				walkMembers(m.extra, member, ptr, out, depth+1)
			case !m.open:
				*out = append(*out, ptr)
			}
		}
	case []any:
		items := arrayItems(schema, map[*openapi3.Schema]bool{})
		for i, item := range v {
			walkMembers(items, item, at+"/"+strconv.Itoa(i), out, depth+1)
		}
	}
}

// members is what an object schema says of its members.
type members struct {
	named map[string]*openapi3.Schema
	// extra is the schema of the members not named (additionalProperties
	// as a schema).
	extra *openapi3.Schema
	// open: any member may appear (additionalProperties true, or a
	// schema that names no member at all).
	open bool
}

func objectMembers(s *openapi3.Schema, seen map[*openapi3.Schema]bool) members {
	m := members{named: map[string]*openapi3.Schema{}}
	if s == nil || seen[s] {
		m.open = true
		return m
	}
	seen[s] = true
	for name, p := range s.Properties {
		if p != nil {
			m.named[name] = p.Value
		}
	}
	closed := len(s.Properties) > 0
	switch {
	case s.AdditionalProperties.Has != nil && !*s.AdditionalProperties.Has:
		closed = true
	case s.AdditionalProperties.Schema != nil:
		m.extra = s.AdditionalProperties.Schema.Value
	case s.AdditionalProperties.Has != nil && *s.AdditionalProperties.Has:
		m.open = true
	}
	var branches []*openapi3.Schema
	for _, refs := range []openapi3.SchemaRefs{s.AllOf, s.AnyOf, s.OneOf} {
		for _, r := range refs {
			if r != nil && r.Value != nil && (r.Value.Type == nil || r.Value.Type.Is("object") || len(r.Value.Properties) > 0) {
				branches = append(branches, r.Value)
			}
		}
	}
	for _, b := range branches {
		bm := objectMembers(b, seen)
		for name, p := range bm.named {
			if _, ok := m.named[name]; !ok {
				m.named[name] = p
			}
		}
		if bm.extra != nil && m.extra == nil {
			m.extra = bm.extra
		}
		if !bm.open {
			closed = true
		} else if len(bm.named) == 0 && bm.extra == nil && b.Type != nil && b.Type.Is("object") {
			m.open = true // a branch that is any object
		}
	}
	if !closed && m.extra == nil {
		m.open = true
	}
	return m
}

func arrayItems(s *openapi3.Schema, seen map[*openapi3.Schema]bool) *openapi3.Schema {
	if s == nil || seen[s] {
		return nil
	}
	seen[s] = true
	if s.Items != nil {
		return s.Items.Value
	}
	for _, refs := range []openapi3.SchemaRefs{s.AllOf, s.AnyOf, s.OneOf} {
		for _, r := range refs {
			if r != nil {
				if items := arrayItems(r.Value, seen); items != nil {
					return items
				}
			}
		}
	}
	return nil
}

func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// strictResponse reports what kin-openapi does not about a response the
// document describes: headers the response object does not declare and
// members of a JSON body that its schema does not name.
func (v *Validator) strictResponse(op *openapi3.Operation, ex Exchange, body any) error {
	response := responseFor(op, ex.Status)
	if response == nil {
		return nil
	}
	var errs []error
	if hs := undeclaredHeaders(response, ex.Header, v.headers); len(hs) > 0 {
		errs = append(errs, fmt.Errorf("headers the document does not declare for %d: %s", ex.Status, strings.Join(hs, ", ")))
	}
	if schema := bodySchema(response, ex.Header.Get("Content-Type")); schema != nil && body != nil {
		if ms := undocumentedMembers(schema, body); len(ms) > 0 {
			errs = append(errs, fmt.Errorf("members the document does not name: %s", strings.Join(ms, ", ")))
		}
	}
	return errors.Join(errs...)
}
