package validator

import (
	"bytes"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers"
	"github.com/google/uuid"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// bodies checks JSON bodies against the document's schemas (JSON Schema
// 2020-12, as OpenAPI 3.1 says), each schema compiled once and kept:
// kin-openapi compiles the schema again for every body it checks, which
// costs tens of milliseconds a body under the race detector and made an
// end-to-end suite that checks every exchange several times slower. It is
// safe for concurrent use.
type bodies struct {
	mu       sync.Mutex
	compiler *jsonschema.Compiler
	compiled map[string]*jsonschema.Schema
}

// documentURL names the document inside the compiler.
const documentURL = "mem:///openapi.json"

func newBodies(data []byte) (*bodies, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("read the OpenAPI document as JSON: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	for name, check := range map[string]func(string) error{
		"uuid": func(s string) error { _, err := uuid.Parse(s); return notCanonical(err, len(s) == 36) },
		"email": func(s string) error {
			_, err := mail.ParseAddress(s)
			return err
		},
		"uri": func(s string) error {
			u, err := url.Parse(s)
			if err == nil && !u.IsAbs() {
				err = errors.New("not an absolute URI")
			}
			return err
		},
	} {
		c.RegisterFormat(&jsonschema.Format{Name: name, Validate: func(v any) error {
			s, ok := v.(string)
			if !ok {
				return nil
			}
			return check(s)
		}})
	}
	if err := c.AddResource(documentURL, doc); err != nil {
		return nil, fmt.Errorf("add the OpenAPI document to the schema compiler: %w", err)
	}
	return &bodies{compiler: c, compiled: map[string]*jsonschema.Schema{}}, nil
}

func notCanonical(err error, canonical bool) error {
	if err == nil && !canonical {
		return errors.New("not the canonical 8-4-4-4-12 form")
	}
	return err
}

// check validates the JSON value (decoded with jsonschema.UnmarshalJSON)
// against the schema at pointer, a JSON pointer into the document.
func (b *bodies) check(pointer string, value any) error {
	s, err := b.schema(pointer)
	if err != nil {
		return err
	}
	return s.Validate(value)
}

func (b *bodies) schema(pointer string) (*jsonschema.Schema, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s, ok := b.compiled[pointer]; ok {
		return s, nil
	}
	s, err := b.compiler.Compile(documentURL + "#" + pointer)
	if err != nil {
		return nil, fmt.Errorf("compile the schema at %s: %w", pointer, err)
	}
	b.compiled[pointer] = s
	return s, nil
}

// pointerEscape escapes one JSON pointer token.
func pointerEscape(s string) string { return escapePointer(s) }

// mediaSchema returns the JSON pointer of the schema of content's media
// type that matches contentType (as kin-openapi's Content.Get matches
// it), given the pointer of content itself, or "" when content has no such
// media type or it has no schema.
func mediaSchema(content openapi3.Content, at, contentType string) (string, bool) {
	mt := content.Get(contentType)
	if mt == nil {
		return "", false
	}
	for name, m := range content {
		if m == mt {
			if m.Schema == nil {
				return "", true
			}
			return at + "/" + pointerEscape(name) + "/schema", true
		}
	}
	return "", false
}

// isJSON tells whether a media type carries JSON.
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// componentPointer returns the pointer of what ref names
// ("#/components/responses/Conflict" → "/components/responses/Conflict"),
// or fallback when ref is empty.
func componentPointer(ref, fallback string) string {
	if strings.HasPrefix(ref, "#") {
		return ref[1:]
	}
	return fallback
}

// operationPointer is the JSON pointer of route's operation.
func operationPointer(route *routers.Route) string {
	return "/paths/" + pointerEscape(route.Path) + "/" + strings.ToLower(route.Method)
}

// checkRequestBody checks a request body against the operation's
// requestBody: present when required, of a declared media type, and, when
// JSON, valid against its schema.
func (v *Validator) checkRequestBody(route *routers.Route, contentType string, body []byte) error {
	rb := route.Operation.RequestBody
	if rb == nil || rb.Value == nil {
		return nil
	}
	if len(body) == 0 {
		if rb.Value.Required {
			return errors.New("request body has an error: value is required but missing")
		}
		return nil
	}
	at := componentPointer(rb.Ref, operationPointer(route)+"/requestBody")
	schema, ok := mediaSchema(rb.Value.Content, at+"/content", contentType)
	if !ok {
		return fmt.Errorf("request body has an error: header Content-Type has unexpected value %q", contentType)
	}
	if schema == "" || !isJSON(contentType) {
		return nil
	}
	value, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("request body is no JSON: %w", err)
	}
	if err := v.bodies.check(schema, value); err != nil {
		return fmt.Errorf("request body doesn't match schema: %w", err)
	}
	return nil
}

// checkResponseBody checks a response body against the response the
// document gives for its status: of a declared media type and, when JSON,
// valid against its schema. It returns the decoded JSON body (nil when
// none). An undocumented status is kin-openapi's to report.
func (v *Validator) checkResponseBody(route *routers.Route, ex Exchange) (any, error) {
	if route.Operation.Responses == nil {
		return nil, nil
	}
	code := strconv.Itoa(ex.Status)
	ref := route.Operation.Responses.Value(code)
	if ref == nil {
		code = strconv.Itoa(ex.Status/100) + "XX"
		ref = route.Operation.Responses.Value(code)
	}
	if ref == nil {
		code = "default"
		ref = route.Operation.Responses.Value(code)
	}
	if ref == nil || ref.Value == nil || len(ref.Value.Content) == 0 {
		return nil, nil
	}
	if ex.Request.Method == http.MethodHead && len(ex.Body) == 0 {
		return nil, nil
	}
	contentType := ex.Header.Get("Content-Type")
	at := componentPointer(ref.Ref, operationPointer(route)+"/responses/"+pointerEscape(code))
	schema, ok := mediaSchema(ref.Value.Content, at+"/content", contentType)
	if !ok {
		return nil, fmt.Errorf("response header Content-Type has unexpected value: %q", contentType)
	}
	if !isJSON(contentType) {
		return nil, nil
	}
	value, err := jsonschema.UnmarshalJSON(bytes.NewReader(ex.Body))
	if err != nil {
		return nil, fmt.Errorf("response body is no JSON: %w", err)
	}
	if schema == "" {
		return value, nil
	}
	if err := v.bodies.check(schema, value); err != nil {
		return value, fmt.Errorf("response body doesn't match schema: %w", err)
	}
	return value, nil
}
