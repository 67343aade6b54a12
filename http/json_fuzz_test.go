package http_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/bookingengine/booking/domain"
	bhttp "github.com/bookingengine/booking/http"
)

// fuzzContentTypes are the Content-Type headers the fuzzer picks from.
var fuzzContentTypes = []string{
	"application/json",
	"application/json; charset=utf-8",
	"Application/JSON",
	"text/plain",
	"",
	"application/json; charset",
	"application/problem+json",
	"multipart/form-data; boundary=x",
}

// fuzzNested is a request shape with everything encoding/json treats
// specially: embedded structs, pointers, times, uuids, maps, slices and
// raw values.
type fuzzNested struct {
	fuzzEmbedded
	ID      uuid.UUID         `json:"id"`
	At      *time.Time        `json:"at"`
	Count   int8              `json:"count"`
	Ratio   float32           `json:"ratio"`
	Tags    []string          `json:"tags"`
	Attrs   map[string]any    `json:"attrs"`
	Inner   *fuzzNested       `json:"inner"`
	Raw     json.RawMessage   `json:"raw"`
	Ignored string            `json:"-"`
	Labels  map[string]string `json:"labels,omitempty"`
}

type fuzzEmbedded struct {
	Name string `json:"name"`
	On   bool   `json:"on"`
}

// fuzzTargets returns a fresh value of each request type the API decodes.
func fuzzTargets() []func() any {
	return []func() any{
		func() any { return new(domain.TenantInput) },
		func() any { return new(domain.SettingsInput) },
		func() any { return new(domain.ResourceInput) },
		func() any { return new(domain.ResourcePatch) },
		func() any { return new(domain.Availability) },
		func() any { return new(domain.UserInput) },
		func() any { return new(domain.BookingRequest) },
		func() any { return new(fuzzNested) },
		func() any { return new(map[string]any) },
		func() any { return new([]int) },
	}
}

// FuzzDecodeJSON feeds DecodeJSON random bodies and Content-Types for
// every request type: it never panics, a body it accepts is one valid JSON
// value, and every refusal is a coded problem the client can act on (400,
// 413, 415 or 422 as problem+json), never a 500.
func FuzzDecodeJSON(f *testing.F) {
	seeds := []string{
		`{"name": "Clínica", "domain": "a.example.com", "settings": {"timezone": "Europe/Lisbon"}}`,
		`{"resource_id": "6f1c6a0e-8a4f-4a55-9d3b-0d5b7c0f9c11", "client_id": "x", "start": "2026-12-01T09:00:00-03:00", "end": "2026-12-01T10:00:00"}`,
		`{"business_hours": {"mon": [{"start": "08:00", "end": "12:00"}]}, "slot_granularity_minutes": "15"}`,
		`{"weekly": {"xyz": []}, "overrides": [{"date": "2026-02-30", "intervals": null}]}`,
		`{"id": "00000000-0000-0000-0000-000000000000", "inner": {"inner": {"count": 300}}, "raw": [1,2,{}]}`,
		`{"name": "a"} {"name": "b"}`,
		`{"unknown": 1}`,
		`null`, ``, `   `, `[`, `{"a":`, `"\ud800"`, `1e400`, `{"count": -129}`, `{"at": "yesterday"}`,
		`{"name": "a", "name": "b"}`, "\xef\xbb\xbf{}", `{"tags": [null, 1]}`, `{"attrs": {"": {"": [[[[]]]]}}}`,
	}
	for i, s := range seeds {
		f.Add(uint8(i%len(fuzzContentTypes)), uint8(i), []byte(s))
	}
	targets := fuzzTargets()
	f.Fuzz(func(t *testing.T, ct, target uint8, body []byte) {
		contentType := fuzzContentTypes[int(ct)%len(fuzzContentTypes)]
		v := targets[int(target)%len(targets)]()
		r := httptest.NewRequest(http.MethodPost, "/fuzz", bytes.NewReader(body))
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		err := bhttp.DecodeJSON(r, v)
		if err == nil {
			if !json.Valid(bytes.TrimSpace(body)) {
				t.Fatalf("accepted a body that is not one JSON value: %q", body)
			}
			return
		}
		code := bhttp.ErrorCode(err)
		switch code {
		case bhttp.CodeValidationFailed, bhttp.CodePayloadTooLarge, bhttp.CodeUnsupportedMediaType:
		default:
			t.Fatalf("body %q (Content-Type %q) into %T: error %q has code %q", body, contentType, v, err, code)
		}
		w := httptest.NewRecorder()
		bhttp.WriteError(w, r, err)
		if w.Code < 400 || w.Code >= 500 {
			t.Fatalf("body %q into %T: answered %d", body, v, w.Code)
		}
		if got := w.Header().Get("Content-Type"); !strings.HasPrefix(got, bhttp.ProblemContentType) {
			t.Fatalf("answered with Content-Type %q", got)
		}
		var p bhttp.Problem
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
			t.Fatalf("problem is not JSON: %v: %s", err, w.Body.Bytes())
		}
		if p.Code != code || p.Status != w.Code || p.Title == "" || p.Detail == "" {
			t.Fatalf("incomplete problem %+v for %q", p, err)
		}
		if code == bhttp.CodeValidationFailed && w.Code == http.StatusBadRequest && len(p.Errors) == 0 {
			t.Fatalf("a 400 validation_failed without errors[]: %+v", p)
		}
	})
}
