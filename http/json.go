package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
)

// DefaultMaxBodyBytes is the contract's request body limit (1 MiB); larger
// bodies are answered 413.
const DefaultMaxBodyBytes int64 = 1 << 20

// AnyVersion is what IfMatchVersion returns for "If-Match: *": the object
// must exist, whatever its version.
const AnyVersion int64 = -1

// DecodeJSON decodes the request body, a single JSON value, into v, strictly,
// because a field the server silently ignores is a bug the client never
// learns about. It returns:
//   - 415 unsupported_media_type unless Content-Type is application/json
//     (parameters such as charset are allowed);
//   - 413 payload_too_large when the body exceeds the server's limit
//     (DefaultMaxBodyBytes outside a Server);
//   - 400 validation_failed, with errors[] naming the field, for an empty
//     body, a top-level null, malformed JSON (the detail gives the byte
//     offset), an unknown field, a value of the wrong type, or trailing data
//     after the value;
//   - a coded error returned by a field's UnmarshalJSON, unchanged;
//   - any other error unchanged (an uncoded one is a 500: v was not a
//     pointer, a programming error).
//
// The body is consumed.
func DecodeJSON(r *http.Request, v any) error {
	if err := requireJSON(r); err != nil {
		return err
	}
	b, err := readBody(r)
	if err != nil {
		return err
	}
	return decode(b, v)
}

// DecodeOptionalJSON is DecodeJSON for endpoints whose body may be left out
// (POST /bookings/{id}/cancel may carry a reason, or nothing): an empty body
// returns nil and leaves v untouched, whatever the Content-Type. A non-empty
// body is held to every rule of DecodeJSON.
func DecodeOptionalJSON(r *http.Request, v any) error {
	b, err := readBody(r)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	if err := requireJSON(r); err != nil {
		return err
	}
	return decode(b, v)
}

func requireJSON(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return Error(CodeUnsupportedMediaType, 0, "Content-Type must be application/json")
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return Error(CodeUnsupportedMediaType, 0,
			fmt.Sprintf("Content-Type must be application/json, not %q", ct))
	}
	return nil
}

func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	limit := DefaultMaxBodyBytes
	if st := stateFrom(r.Context()); st != nil && st.maxBody > 0 {
		limit = st.maxBody
	}
	// Harmless when the server already limited the body; a guard when a
	// handler runs outside it.
	b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, Error(CodePayloadTooLarge, 0, fmt.Sprintf("request body exceeds %d bytes", tooLarge.Limit))
		}
		return nil, fmt.Errorf("read request body: %w", err)
	}
	return b, nil
}

func decode(b []byte, v any) error {
	trimmed := bytes.TrimSpace(b)
	switch {
	case len(trimmed) == 0:
		return badRequest("body", "required", "request body is empty; send a JSON value")
	case string(trimmed) == "null":
		return badRequest("body", "invalid", "request body must not be null")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		derr := decodeError(err)
		if field := failingField(b, v); field != "" {
			var ce *codedError
			if errors.As(derr, &ce) && len(ce.fields) == 1 && ce.fields[0].Field == "body" {
				return badRequest(field, ce.fields[0].Code, field+": "+ce.fields[0].Message)
			}
		}
		return derr
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badRequest("body", "malformed", "request body must hold a single JSON value; found data after it")
	}
	return nil
}

// decodeError translates encoding/json's errors into problems that name the
// field at fault.
func decodeError(err error) error {
	var (
		syntax    *json.SyntaxError
		typ       *json.UnmarshalTypeError
		invalid   *json.InvalidUnmarshalError
		coded     Coder
		unknownPx = "json: unknown field "
	)
	switch {
	case errors.As(err, &syntax):
		return badRequest("body", "malformed",
			fmt.Sprintf("malformed JSON at byte offset %d: %s", syntax.Offset, syntax.Error()))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("body", "malformed", "malformed JSON: unexpected end of input")
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "body"
		}
		return badRequest(field, "invalid_type",
			fmt.Sprintf("%s must be %s, not %s", field, jsonKind(typ.Type), typ.Value))
	case strings.HasPrefix(err.Error(), unknownPx):
		// encoding/json has no typed error for unknown fields; the message
		// format is stable and covered by a test.
		name, uerr := strconv.Unquote(strings.TrimPrefix(err.Error(), unknownPx))
		if uerr != nil {
			name = strings.TrimPrefix(err.Error(), unknownPx)
		}
		return badRequest(name, "unknown_field", fmt.Sprintf("unknown field %q", name))
	case errors.As(err, &invalid):
		return fmt.Errorf("decode request body: %w", err)
	case errors.As(err, &coded):
		return err
	default:
		// A field's UnmarshalJSON refused the value (a time that is not RFC
		// 3339, a malformed uuid); its message is about client input.
		return badRequest("body", "invalid", "invalid value: "+err.Error())
	}
}

// failingField finds the top-level field of a JSON object whose value the
// target struct refuses, so that an error raised inside a field's own
// UnmarshalJSON (a time without offset, a malformed uuid) names the field
// rather than the body. It returns "" when it cannot tell.
func failingField(body []byte, v any) string {
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) != nil {
		return ""
	}
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return ""
	}
	fields := map[string]reflect.Type{}
	collectJSONFields(t, fields)
	for name, raw := range obj {
		ft, ok := fields[name]
		if !ok {
			continue
		}
		if json.Unmarshal(raw, reflect.New(ft).Interface()) != nil {
			return name
		}
	}
	return ""
}

// collectJSONFields maps the JSON names of t's fields (with embedded
// structs flattened, as encoding/json does) to their types.
func collectJSONFields(t reflect.Type, out map[string]reflect.Type) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				collectJSONFields(ft, out)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
}

// jsonKind names the JSON type a Go type accepts, for error messages.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "a valid value"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	default:
		return "a valid value"
	}
}

// ETag renders an object's version as a strong entity tag ("3"). Versions
// change with every event of the object, so equal tags mean equal objects.
func ETag(version int64) string {
	return `"` + strconv.FormatInt(version, 10) + `"`
}

// IfMatchVersion reads If-Match. Absent: present is false. "*": AnyVersion
// and present. One strong tag as written by ETag ("3"): its version. Anything
// else (several tags, a weak tag, a tag this server never issued) is a 400
// validation_failed naming If-Match, since it can only be a client bug.
func IfMatchVersion(r *http.Request) (version int64, present bool, err error) {
	vals := r.Header.Values("If-Match")
	if len(vals) == 0 {
		return 0, false, nil
	}
	bad := func(msg string) (int64, bool, error) {
		return 0, true, badRequest("If-Match", "invalid", msg)
	}
	if len(vals) > 1 || strings.Contains(vals[0], ",") {
		return bad("If-Match must hold one entity tag")
	}
	v := strings.TrimSpace(vals[0])
	if v == "*" {
		return AnyVersion, true, nil
	}
	if len(v) < 3 || v[0] != '"' || v[len(v)-1] != '"' {
		return bad(`If-Match must be a strong entity tag such as "3", as sent in ETag`)
	}
	n, perr := strconv.ParseInt(v[1:len(v)-1], 10, 64)
	if perr != nil || n < 0 {
		return bad(`If-Match must be a strong entity tag such as "3", as sent in ETag`)
	}
	return n, true, nil
}

// SetPosition sets X-Position, the global position of the last event a
// command wrote. A client sends it back as X-Min-Position to read its own
// writes. Call it before the status is written.
func SetPosition(w http.ResponseWriter, pos int64) {
	w.Header().Set(headerPosition, strconv.FormatInt(pos, 10))
}

// MinPosition reads X-Min-Position: absent, present is false; a
// non-negative integer is returned; anything else is a 400
// validation_failed naming the header. Waiting for the position (and the 504
// timeout problem) is the query handler's business.
func MinPosition(r *http.Request) (pos int64, present bool, err error) {
	v := r.Header.Get(headerMinPosition)
	if v == "" {
		return 0, false, nil
	}
	n, perr := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if perr != nil || n < 0 {
		return 0, true, badRequest(headerMinPosition, "invalid", "X-Min-Position must be a non-negative integer")
	}
	return n, true, nil
}
