package http_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	bhttp "github.com/bookingengine/booking/http"
)

type bookingIn struct {
	ResourceID uuid.UUID `json:"resource_id"`
	Start      time.Time `json:"start"`
	Seats      int       `json:"seats"`
	Settings   struct {
		Slot int `json:"slot_granularity_minutes"`
	} `json:"settings"`
	Weekday weekday `json:"weekday"`
}

// weekday refuses unknown days with a coded error, as a domain type would.
type weekday string

func (d *weekday) UnmarshalJSON(b []byte) error {
	if string(b) != `"mon"` {
		return bhttp.Error("validation_failed", 0, "weekday must be mon..sun",
			bhttp.FieldProblem{Field: "weekday", Code: "invalid", Message: "unknown weekday"})
	}
	*d = "mon"
	return nil
}

func TestDecodeJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		contentType string
		body        string
		status      int    // 0 = success
		code        string // problem code
		field       string // errors[0].field
		detail      string // substring of the detail
	}{
		{"valid", "application/json", `{"seats":2,"start":"2026-12-01T09:00:00-03:00"}`, 0, "", "", ""},
		{"charset allowed", "application/json; charset=utf-8", `{"seats":2}`, 0, "", "", ""},
		{"trailing whitespace allowed", "application/json", "{\"seats\":2}\n\n", 0, "", "", ""},
		{"no content type", "", `{"seats":2}`, 415, "unsupported_media_type", "", "application/json"},
		{"text/plain", "text/plain", `{"seats":2}`, 415, "unsupported_media_type", "", "text/plain"},
		{"json-ish type", "application/json-patch+json", `{"seats":2}`, 415, "unsupported_media_type", "", ""},
		{"empty", "application/json", "", 400, "validation_failed", "body", "empty"},
		{"blank", "application/json", "  \n", 400, "validation_failed", "body", "empty"},
		{"null", "application/json", "null", 400, "validation_failed", "body", "null"},
		{"unknown field", "application/json", `{"seats":1,"colour":"red"}`, 400, "validation_failed", "colour", `unknown field "colour"`},
		{"unknown nested field", "application/json", `{"settings":{"bogus":1}}`, 400, "validation_failed", "bogus", "unknown field"},
		{"syntax error", "application/json", `{"seats":1,}`, 400, "validation_failed", "body", "byte offset 12"},
		{"truncated", "application/json", `{"seats":`, 400, "validation_failed", "body", "unexpected end"},
		{"wrong type", "application/json", `{"seats":"two"}`, 400, "validation_failed", "seats", "seats must be an integer, not string"},
		{"wrong nested type", "application/json", `{"settings":{"slot_granularity_minutes":true}}`, 400, "validation_failed", "settings.slot_granularity_minutes", "must be an integer"},
		{"top-level array", "application/json", `[1,2]`, 400, "validation_failed", "body", "must be an object"},
		{"trailing data", "application/json", `{"seats":1} {"seats":2}`, 400, "validation_failed", "body", "data after it"},
		{"trailing garbage", "application/json", `{"seats":1} x`, 400, "validation_failed", "body", "data after it"},
		{"bad time", "application/json", `{"start":"tomorrow"}`, 400, "validation_failed", "start", "invalid value"},
		{"bad uuid", "application/json", `{"resource_id":"nope"}`, 400, "validation_failed", "resource_id", "invalid value"},
		{"coded error of a field type", "application/json", `{"weekday":"xyz"}`, 422, "validation_failed", "weekday", "weekday must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodPost, "/bookings", strings.NewReader(tt.body))
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			var in bookingIn
			err := bhttp.DecodeJSON(r, &in)
			if tt.status == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			w := httptest.NewRecorder()
			bhttp.WriteError(w, r, err)
			p := mustProblem(t, w, tt.status, tt.code)
			require.Contains(t, p.Detail, tt.detail)
			if tt.field != "" {
				require.NotEmpty(t, p.Errors)
				require.Equal(t, tt.field, p.Errors[0].Field)
			}
		})
	}
}

func TestDecodeJSONProgrammingError(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest(http.MethodPost, "/x", strings.NewReader(`{}`))
	r.Header.Set("Content-Type", "application/json")
	var in bookingIn
	err := bhttp.DecodeJSON(r, in) // not a pointer
	require.Error(t, err)
	require.Equal(t, "internal", bhttp.ErrorCode(err))
}

func TestDecodeJSONBodyLimit(t *testing.T) {
	t.Parallel()
	f := MustFixture(t)
	f.srv.Public().HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		var in map[string]string
		if err := bhttp.DecodeJSON(r, &in); err != nil {
			bhttp.WriteError(w, r, err)
			return
		}
		_ = bhttp.WriteJSON(w, http.StatusOK, map[string]int{"len": len(in["s"])})
	}).Methods(http.MethodPost)

	fits := `{"s":"` + strings.Repeat("x", 1<<20-len(`{"s":""}`)) + `"}`
	tooBig := `{"s":"` + strings.Repeat("x", 1<<20) + `"}`
	tests := []struct {
		name    string
		body    string
		chunked bool
		status  int
	}{
		{"exactly 1 MiB", fits, false, 200},
		{"over, by Content-Length", tooBig, false, 413},
		{"over, chunked", tooBig, true, 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newReq(http.MethodPost, "/echo", tt.body)
			if tt.chunked {
				r.ContentLength = -1
			}
			w := f.do(r)
			if tt.status == 413 {
				mustProblem(t, w, 413, "payload_too_large")
				return
			}
			require.Equal(t, tt.status, w.Code, w.Body.String())
		})
	}

	// Outside a Server, DecodeJSON still refuses more than 1 MiB.
	r := httptest.NewRequest(http.MethodPost, "/echo", strings.NewReader(tooBig))
	r.Header.Set("Content-Type", "application/json")
	var in map[string]string
	require.Equal(t, "payload_too_large", bhttp.ErrorCode(bhttp.DecodeJSON(r, &in)))
}

func TestDecodeOptionalJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		contentType string
		body        string
		wantReason  string
		code        string
	}{
		{"no body, no type", "", "", "", ""},
		{"body", "application/json", `{"reason":"sick"}`, "sick", ""},
		{"body without type", "", `{"reason":"sick"}`, "", "unsupported_media_type"},
		{"unknown field", "application/json", `{"why":"sick"}`, "", "validation_failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodPost, "/bookings/1/cancel", strings.NewReader(tt.body))
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			var in struct {
				Reason string `json:"reason"`
			}
			err := bhttp.DecodeOptionalJSON(r, &in)
			if tt.code != "" {
				require.Equal(t, tt.code, bhttp.ErrorCode(err))
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.wantReason, in.Reason)
		})
	}
}

func TestIfMatchVersion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		values  []string
		version int64
		present bool
		bad     bool
	}{
		{"absent", nil, 0, false, false},
		{"strong tag", []string{`"3"`}, 3, true, false},
		{"round trip", []string{bhttp.ETag(42)}, 42, true, false},
		{"star", []string{"*"}, bhttp.AnyVersion, true, false},
		{"unquoted", []string{"3"}, 0, true, true},
		{"weak", []string{`W/"3"`}, 0, true, true},
		{"not a number", []string{`"abc"`}, 0, true, true},
		{"negative", []string{`"-1"`}, 0, true, true},
		{"empty tag", []string{`""`}, 0, true, true},
		{"list", []string{`"1", "2"`}, 0, true, true},
		{"two headers", []string{`"1"`, `"2"`}, 0, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodPatch, "/resources/1", nil)
			for _, v := range tt.values {
				r.Header.Add("If-Match", v)
			}
			v, present, err := bhttp.IfMatchVersion(r)
			require.Equal(t, tt.present, present)
			if tt.bad {
				w := httptest.NewRecorder()
				bhttp.WriteError(w, r, err)
				p := mustProblem(t, w, 400, "validation_failed")
				require.Equal(t, "If-Match", p.Errors[0].Field)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.version, v)
		})
	}
}

func TestETag(t *testing.T) {
	t.Parallel()
	require.Equal(t, `"1"`, bhttp.ETag(1))
	require.Equal(t, `"9223372036854775807"`, bhttp.ETag(1<<63-1))
}

func TestPositions(t *testing.T) {
	t.Parallel()
	w := httptest.NewRecorder()
	bhttp.SetPosition(w, 1234)
	require.Equal(t, "1234", w.Header().Get("X-Position"))

	tests := []struct {
		name    string
		value   string
		pos     int64
		present bool
		bad     bool
	}{
		{"absent", "", 0, false, false},
		{"zero", "0", 0, true, false},
		{"position", "1234", 1234, true, false},
		{"negative", "-1", 0, true, true},
		{"not a number", "latest", 0, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodGet, "/bookings", nil)
			if tt.value != "" {
				r.Header.Set("X-Min-Position", tt.value)
			}
			pos, present, err := bhttp.MinPosition(r)
			require.Equal(t, tt.present, present)
			if tt.bad {
				var coded bhttp.Coder
				require.True(t, errors.As(err, &coded))
				w := httptest.NewRecorder()
				bhttp.WriteError(w, r, err)
				p := mustProblem(t, w, 400, "validation_failed")
				require.Equal(t, "X-Min-Position", p.Errors[0].Field)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.pos, pos)
		})
	}
}

func TestDecodeNamesTheFieldARefusedValueBelongsTo(t *testing.T) {
	t.Parallel()
	type in struct {
		Start time.Time `json:"start"`
		ID    uuid.UUID `json:"resource_id"`
	}
	for body, field := range map[string]string{
		`{"start":"2026-12-07T10:00:00"}`: "start",
		`{"resource_id":"nope"}`:          "resource_id",
	} {
		r := httptest.NewRequest(http.MethodPost, "/x", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		var v in
		err := bhttp.DecodeJSON(r, &v)
		var fl bhttp.FieldLister
		require.ErrorAs(t, err, &fl, body)
		var got []string
		fl.ProblemFields(func(f, _, _ string) { got = append(got, f) })
		require.Equal(t, []string{field}, got, body)
	}
}
