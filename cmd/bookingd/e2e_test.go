package main

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	bhttp "github.com/bookingengine/booking/http"
)

// TestE2EEndpoints walks every command-side endpoint through its success
// path against bookingd on PostgreSQL, checking the headers the contract
// promises (Location, ETag, X-Position) and the state each command leaves.
func TestE2EEndpoints(t *testing.T) {
	t.Parallel()
	srv := MustStartE2E(t)
	platform := srv.platformToken(t)

	// Tenants.
	created := srv.must(t, http.StatusCreated, e2eCall{method: http.MethodPost, path: "/tenants", token: platform, body: map[string]any{
		"name":     "Clínica Sorriso",
		"domain":   "Sorriso.Example.com",
		"branding": map[string]any{"logo_url": "https://sorriso.example.com/logo.png", "primary_color": "#0a7d5a"},
		"labels":   map[string]any{"resource": "Dentista", "booking": "Consulta", "client": "Paciente"},
		"settings": map[string]any{
			"timezone": "America/Sao_Paulo",
			"business_hours": map[string]any{
				"mon": []map[string]string{{"start": "08:00", "end": "12:00"}, {"start": "13:00", "end": "18:00"}},
				"sat": []any{}, "sun": []any{},
			},
			"closures":                 []map[string]string{{"date": "2026-12-25", "reason": "Natal"}},
			"slot_granularity_minutes": 15, "min_duration_minutes": 15, "max_duration_minutes": 240,
			"buffer_before_minutes": 0, "buffer_after_minutes": 10,
			"min_notice_minutes": 60, "max_advance_days": 90, "cancellation_deadline_minutes": 1440,
			"requires_approval": false, "max_bookings_per_client_per_day": 0,
			"custom_fields": []map[string]any{{
				"entity": "booking", "key": "reason", "label": "Motivo", "type": "select",
				"required": true, "options": []string{"rotina", "urgência"},
			}},
		},
	}})
	tenantID := created.str(t, "id")
	require.Equal(t, "/tenants/"+tenantID, created.Header.Get("Location"))
	require.Equal(t, `"1"`, created.Header.Get("ETag"))
	require.Greater(t, e2ePosition(t, created), int64(0))
	require.Equal(t, "sorriso.example.com", created.Doc["domain"])
	require.EqualValues(t, 1, created.Doc["policy_version"])
	require.EqualValues(t, 1, created.Doc["version"])

	got := srv.must(t, http.StatusOK, e2eCall{method: http.MethodGet, path: "/tenants/" + tenantID, token: platform})
	require.Equal(t, `"1"`, got.Header.Get("ETag"))
	require.Equal(t, "Clínica Sorriso", got.Doc["name"])
	require.Equal(t, "America/Sao_Paulo", got.Doc["settings"].(map[string]any)["timezone"])
	require.Equal(t, "Paciente", got.Doc["labels"].(map[string]any)["client"])

	// Settings: GET, PUT with If-Match bumps the policy version, a stale
	// If-Match is refused, the same document again changes nothing.
	f := MustE2EFixture(t, srv, "endpoints", nil)
	settingsPath := "/tenants/" + f.TenantID + "/settings"
	s := f.must(t, http.StatusOK, e2eAdmin, http.MethodGet, settingsPath, nil)
	require.EqualValues(t, 1, s.num(t, "policy_version"))
	require.Equal(t, "UTC", s.Doc["timezone"])
	require.EqualValues(t, 15, s.num(t, "slot_granularity_minutes"))
	etag := s.Header.Get("ETag")
	require.Equal(t, `"1"`, etag)

	newSettings := map[string]any{"timezone": "UTC", "buffer_after_minutes": 15, "min_notice_minutes": 0}
	put := f.must(t, http.StatusOK, e2eAdmin, http.MethodPut, settingsPath, newSettings, "If-Match", etag)
	require.EqualValues(t, 2, put.num(t, "policy_version"))
	require.EqualValues(t, 15, put.num(t, "buffer_after_minutes"))
	require.Equal(t, `"2"`, put.Header.Get("ETag"))
	require.Greater(t, e2ePosition(t, put), e2ePosition(t, created))

	stale := f.call(t, e2eAdmin, http.MethodPut, settingsPath, map[string]any{"buffer_after_minutes": 5}, "If-Match", etag)
	requireE2EProblem(t, stale, http.StatusPreconditionFailed, bhttp.CodeVersionMismatch)

	again := f.must(t, http.StatusOK, e2eAdmin, http.MethodPut, settingsPath, newSettings, "If-Match", `"2"`)
	require.EqualValues(t, 2, again.num(t, "policy_version"), "the same document must not bump the policy version")
	s = f.must(t, http.StatusOK, e2eManager, http.MethodGet, settingsPath, nil)
	require.EqualValues(t, 2, s.num(t, "policy_version"))
	require.EqualValues(t, 15, s.num(t, "buffer_after_minutes"))

	// Resource categories.
	cat := f.must(t, http.StatusCreated, e2eManager, http.MethodPost, "/resource-categories", map[string]any{"name": "Dentists", "description": "Chairs"})
	catID := cat.str(t, "id")
	require.Equal(t, "/resource-categories/"+catID, cat.Header.Get("Location"))
	require.Equal(t, `"1"`, cat.Header.Get("ETag"))
	require.Greater(t, e2ePosition(t, cat), int64(0))
	gotCat := f.must(t, http.StatusOK, e2eClient, http.MethodGet, "/resource-categories/"+catID, nil)
	require.Equal(t, "Dentists", gotCat.Doc["name"])
	require.Equal(t, f.TenantID, gotCat.Doc["tenant_id"])

	// Resources: create, read, patch (If-Match), availability, deactivate.
	res := f.must(t, http.StatusCreated, e2eAdmin, http.MethodPost, "/resources", map[string]any{
		"category_id": catID, "name": "Chair 1", "kind": "equipment", "capacity": 2, "attributes": map[string]any{"floor": 2},
	})
	resID := res.str(t, "id")
	require.Equal(t, "/resources/"+resID, res.Header.Get("Location"))
	require.Equal(t, `"1"`, res.Header.Get("ETag"))
	require.Greater(t, e2ePosition(t, res), e2ePosition(t, cat))
	require.Equal(t, true, res.Doc["active"])
	require.EqualValues(t, 2, res.num(t, "capacity"))

	gotRes := f.must(t, http.StatusOK, e2eProfessional, http.MethodGet, "/resources/"+resID, nil)
	require.Equal(t, `"1"`, gotRes.Header.Get("ETag"))
	require.Equal(t, catID, gotRes.Doc["category_id"])
	require.EqualValues(t, 2, gotRes.Doc["attributes"].(map[string]any)["floor"])

	patched := f.must(t, http.StatusOK, e2eManager, http.MethodPatch, "/resources/"+resID, map[string]any{"name": "Chair One"}, "If-Match", `"1"`)
	require.Equal(t, "Chair One", patched.Doc["name"])
	require.Equal(t, `"2"`, patched.Header.Get("ETag"))
	require.EqualValues(t, 2, patched.num(t, "version"))
	requireE2EProblem(t, f.call(t, e2eManager, http.MethodPatch, "/resources/"+resID, map[string]any{"name": "Chair 2"}, "If-Match", `"1"`),
		http.StatusPreconditionFailed, bhttp.CodeVersionMismatch)

	av := f.must(t, http.StatusOK, e2eClient, http.MethodGet, "/resources/"+resID+"/availability", nil)
	require.Nil(t, av.Doc["weekly"], "a new resource follows the tenant's hours")
	nextMonday := f.Day.AddDate(0, 0, 7).Format("2006-01-02")
	putAv := f.must(t, http.StatusOK, e2eAdmin, http.MethodPut, "/resources/"+resID+"/availability", map[string]any{
		"weekly":    map[string]any{"mon": []map[string]string{{"start": "10:00", "end": "12:00"}}},
		"overrides": []map[string]any{{"date": nextMonday, "intervals": []any{}}},
	}, "If-Match", `"2"`)
	require.Equal(t, `"3"`, putAv.Header.Get("ETag"))
	require.Greater(t, e2ePosition(t, putAv), e2ePosition(t, patched))
	av = f.must(t, http.StatusOK, e2eClient, http.MethodGet, "/resources/"+resID+"/availability", nil)
	require.Equal(t, `"3"`, av.Header.Get("ETag"))
	mon := av.Doc["weekly"].(map[string]any)["mon"].([]any)
	require.Equal(t, map[string]any{"start": "10:00", "end": "12:00"}, mon[0])
	require.Len(t, av.Doc["overrides"], 1)
	// Inside the weekly hours: bookable; outside or on the closed date: not.
	f.book(t, e2eAdmin, resID, f.Users[e2eClient], e2eAt(f.Day, 10, 0))
	requireE2EProblem(t, f.call(t, e2eAdmin, http.MethodPost, "/bookings", e2eBooking(resID, f.Users[e2eClient], e2eAt(f.Day, 13, 0), 30)),
		http.StatusUnprocessableEntity, bhttp.CodeOutsideResourceAvailability)
	requireE2EProblem(t, f.call(t, e2eAdmin, http.MethodPost, "/bookings", e2eBooking(resID, f.Users[e2eClient], e2eAt(f.Day.AddDate(0, 0, 7), 10, 0), 30)),
		http.StatusUnprocessableEntity, bhttp.CodeOutsideResourceAvailability)

	del := f.must(t, http.StatusOK, e2eAdmin, http.MethodDelete, "/resources/"+resID, nil)
	require.Equal(t, false, del.Doc["active"])
	require.Equal(t, `"4"`, del.Header.Get("ETag"))
	f.must(t, http.StatusOK, e2eAdmin, http.MethodDelete, "/resources/"+resID, nil) // deactivating twice is harmless
	require.Equal(t, false, f.must(t, http.StatusOK, e2eClient, http.MethodGet, "/resources/"+resID, nil).Doc["active"])
	requireE2EProblem(t, f.call(t, e2eAdmin, http.MethodPost, "/bookings", e2eBooking(resID, f.Users[e2eClient], e2eAt(f.Day, 10, 30), 30)),
		http.StatusUnprocessableEntity, bhttp.CodeResourceInactive)

	// Users.
	u := f.must(t, http.StatusCreated, e2eManager, http.MethodPost, "/users", map[string]any{
		"email": "Bia@Example.com", "name": "Bia", "role": "client", "attributes": map[string]any{"vip": true},
	})
	userID := u.str(t, "id")
	require.Equal(t, "/users/"+userID, u.Header.Get("Location"))
	require.Equal(t, `"1"`, u.Header.Get("ETag"))
	require.Greater(t, e2ePosition(t, u), int64(0))
	require.Equal(t, "bia@example.com", u.Doc["email"])
	gotUser := f.must(t, http.StatusOK, e2eAdmin, http.MethodGet, "/users/"+userID, nil)
	require.Equal(t, "Bia", gotUser.Doc["name"])
	require.Equal(t, "client", gotUser.Doc["role"])
	pu := f.must(t, http.StatusOK, e2eAdmin, http.MethodPatch, "/users/"+userID, map[string]any{"name": "Beatriz", "email": "beatriz@example.com"}, "If-Match", `"1"`)
	require.Equal(t, "Beatriz", pu.Doc["name"])
	require.Equal(t, "beatriz@example.com", pu.Doc["email"])
	require.Equal(t, `"2"`, pu.Header.Get("ETag"))
	// The old email is free again, the new one is taken.
	f.create(t, e2eAdmin, "/users", map[string]any{"email": "bia@example.com", "name": "Other Bia", "role": "client"})
	requireE2EProblem(t, f.call(t, e2eAdmin, http.MethodPost, "/users", map[string]any{"email": "BEATRIZ@example.com", "name": "Dup", "role": "client"}),
		http.StatusConflict, bhttp.CodeEmailTaken)

	// Bookings: create, read, reschedule, cancel, history.
	start := e2eAt(f.Day, 9, 0)
	b := f.must(t, http.StatusCreated, e2eAdmin, http.MethodPost, "/bookings", e2eBooking(f.Space, f.Users[e2eClient], start, 60))
	bookingID := b.str(t, "id")
	require.Equal(t, "/bookings/"+bookingID, b.Header.Get("Location"))
	require.Equal(t, `"1"`, b.Header.Get("ETag"))
	require.Greater(t, e2ePosition(t, b), e2ePosition(t, pu))
	require.Equal(t, "confirmed", b.Doc["status"])
	require.EqualValues(t, 2, b.num(t, "policy_version"), "the booking records the policy version that accepted it")
	require.EqualValues(t, 15, b.num(t, "buffer_after_minutes"))
	requireE2ETime(t, start, b.str(t, "start"))
	require.Equal(t, f.Users[e2eClient], b.Doc["client_id"])
	require.Equal(t, f.Users[e2eAdmin], b.Doc["created_by"])

	gb := f.must(t, http.StatusOK, e2eClient, http.MethodGet, "/bookings/"+bookingID, nil)
	require.Equal(t, `"1"`, gb.Header.Get("ETag"))
	require.Equal(t, "confirmed", gb.Doc["status"])
	require.EqualValues(t, 1, gb.num(t, "version"))
	require.NotEmpty(t, gb.Doc["created_at"])
	require.NotEmpty(t, gb.Doc["updated_at"])

	moved := e2eAt(f.Day, 14, 0)
	rs := f.must(t, http.StatusOK, e2eClient, http.MethodPost, "/bookings/"+bookingID+"/reschedule", map[string]any{
		"start": moved.Format(time.RFC3339), "end": moved.Add(time.Hour).Format(time.RFC3339), "reason": "later",
	}, "If-Match", `"1"`)
	requireE2ETime(t, moved, rs.str(t, "start"))
	requireE2ETime(t, moved.Add(time.Hour), rs.str(t, "end"))
	require.Equal(t, `"2"`, rs.Header.Get("ETag"))
	require.Greater(t, e2ePosition(t, rs), e2ePosition(t, b))
	require.Equal(t, f.Users[e2eClient], rs.Doc["updated_by"])
	// The old time is free again (buffer included), the new one is taken.
	f.book(t, e2eAdmin, f.Space, f.Users[e2eClient2], start)
	requireE2EProblem(t, f.call(t, e2eAdmin, http.MethodPost, "/bookings", e2eBooking(f.Space, f.Users[e2eClient2], moved.Add(time.Hour), 30)),
		http.StatusConflict, bhttp.CodeBookingConflict)

	cancelled := f.must(t, http.StatusOK, e2eClient, http.MethodPost, "/bookings/"+bookingID+"/cancel", map[string]any{"reason": "sick"})
	require.Equal(t, "cancelled", cancelled.Doc["status"])
	require.Equal(t, "sick", cancelled.Doc["status_reason"])
	require.Equal(t, `"3"`, cancelled.Header.Get("ETag"))
	require.Nil(t, cancelled.Doc["cancelled_late"])

	h := f.must(t, http.StatusOK, e2eClient, http.MethodGet, "/bookings/"+bookingID+"/history", nil)
	events := h.Doc["events"].([]any)
	require.Len(t, events, 3)
	wantTypes := []string{"booking.created", "booking.rescheduled", "booking.cancelled"}
	wantActors := []string{f.Users[e2eAdmin], f.Users[e2eClient], f.Users[e2eClient]}
	wantRoles := []string{"admin", "client", "client"}
	var lastPos float64
	for i, raw := range events {
		e := raw.(map[string]any)
		require.Equal(t, wantTypes[i], e["type"], "event %d", i)
		require.EqualValues(t, i+1, e["stream_version"], "event %d", i)
		require.Equal(t, wantActors[i], e["actor"], "event %d", i)
		require.Equal(t, wantRoles[i], e["actor_role"], "event %d", i)
		require.Greater(t, e["position"].(float64), lastPos, "events oldest first")
		lastPos = e["position"].(float64)
		require.NotEmpty(t, e["id"])
		require.NotEmpty(t, e["recorded_at"])
		require.NotEmpty(t, e["correlation_id"])
		require.IsType(t, map[string]any{}, e["data"])
	}
	require.Equal(t, bookingID, events[0].(map[string]any)["data"].(map[string]any)["booking_id"])
	require.GreaterOrEqual(t, float64(e2ePosition(t, cancelled)), lastPos, "X-Position covers the command's last event")

	// The lifecycle: confirmed → checked_in → completed.
	lb := f.book(t, e2eAdmin, f.Space, f.Users[e2eClient], e2eAt(f.Day.AddDate(0, 0, 1), 9, 0))
	ci := f.must(t, http.StatusOK, e2eManager, http.MethodPost, "/bookings/"+lb+"/check-in", nil)
	require.Equal(t, "checked_in", ci.Doc["status"])
	done := f.must(t, http.StatusOK, e2eManager, http.MethodPost, "/bookings/"+lb+"/complete", map[string]any{"reason": "all good"})
	require.Equal(t, "completed", done.Doc["status"])
	require.Equal(t, `"3"`, done.Header.Get("ETag"))
}

// TestE2EErrors sends one bad request per error of the contract and checks
// the status, the problem code and the members that name what is wrong.
func TestE2EErrors(t *testing.T) {
	t.Parallel()
	srv := MustStartE2E(t)
	f := MustE2EFixture(t, srv, "errors", nil)
	f.must(t, http.StatusOK, e2eAdmin, http.MethodPut, "/tenants/"+f.TenantID+"/settings", map[string]any{
		"closures": []map[string]string{{"date": f.Day.AddDate(0, 0, 2).Format("2006-01-02"), "reason": "holiday"}},
	})
	// A tenant that limits bookings per client and day and closes
	// cancellation 30 days before the start.
	lim := MustE2EFixture(t, srv, "limits", map[string]any{
		"max_bookings_per_client_per_day": 1,
		"cancellation_deadline_minutes":   30 * 24 * 60,
	})
	client, client2 := f.Users[e2eClient], f.Users[e2eClient2]

	limited := f.create(t, e2eAdmin, "/resources", map[string]any{"name": "Mornings", "kind": "space", "capacity": 1})
	f.must(t, http.StatusOK, e2eAdmin, http.MethodPut, "/resources/"+limited+"/availability", map[string]any{
		"weekly":    map[string]any{"mon": []map[string]string{{"start": "10:00", "end": "12:00"}}},
		"overrides": []map[string]any{{"date": f.Day.AddDate(0, 0, 7).Format("2006-01-02"), "intervals": []any{}}},
	})
	taken := e2eAt(f.Day, 11, 0)
	held := f.book(t, e2eAdmin, f.Space, client, taken)
	cancelledID := f.book(t, e2eAdmin, f.Space, client, e2eAt(f.Day, 15, 0))
	f.must(t, http.StatusOK, e2eAdmin, http.MethodPost, "/bookings/"+cancelledID+"/cancel", nil)
	limBooking := lim.book(t, e2eClient, lim.Space, "", e2eAt(lim.Day, 10, 0))
	past := e2eMonday(time.Now(), -14)
	far := e2eMonday(time.Now(), 400)
	big := `{"title":"` + strings.Repeat("a", int(bhttp.DefaultMaxBodyBytes)) + `"}`

	cases := []struct {
		name   string
		fx     *e2eFixture
		role   string
		method string
		path   string
		body   any
		header []string
		status int
		code   string
		fields []string // errors[] must name at least these
		check  func(t *testing.T, r e2eReply)
	}{
		{name: "unknown field", method: http.MethodPost, path: "/bookings",
			body:   map[string]any{"resource_id": f.Space, "start": taken.Format(time.RFC3339), "end": taken.Add(time.Hour).Format(time.RFC3339), "colour": "red"},
			status: http.StatusBadRequest, code: bhttp.CodeValidationFailed, fields: []string{"colour"}},
		{name: "malformed JSON", method: http.MethodPost, path: "/bookings", body: `{"resource_id": "`,
			status: http.StatusBadRequest, code: bhttp.CodeValidationFailed, fields: []string{"body"}},
		{name: "wrong JSON type", method: http.MethodPost, path: "/bookings", body: `{"seats": "two"}`,
			status: http.StatusBadRequest, code: bhttp.CodeValidationFailed, fields: []string{"seats"}},
		{name: "empty body", method: http.MethodPost, path: "/users", body: ``, header: []string{"Content-Type", "application/json"},
			status: http.StatusBadRequest, code: bhttp.CodeValidationFailed, fields: []string{"body"}},
		{name: "not JSON", method: http.MethodPost, path: "/bookings", body: `resource_id=1`, header: []string{"Content-Type", "application/x-www-form-urlencoded"},
			status: http.StatusUnsupportedMediaType, code: bhttp.CodeUnsupportedMediaType},
		{name: "body over 1 MiB", method: http.MethodPost, path: "/bookings", body: big,
			status: http.StatusRequestEntityTooLarge, code: bhttp.CodePayloadTooLarge},
		{name: "chunked body over 1 MiB", method: http.MethodPost, path: "/bookings", body: io.MultiReader(strings.NewReader(big)),
			status: http.StatusRequestEntityTooLarge, code: bhttp.CodePayloadTooLarge},
		{name: "chunked body over 1 MiB with a key", method: http.MethodPost, path: "/bookings", body: io.MultiReader(strings.NewReader(big)),
			header: []string{"Idempotency-Key", "big"}, status: http.StatusRequestEntityTooLarge, code: bhttp.CodePayloadTooLarge},
		{name: "time without offset", method: http.MethodPost, path: "/bookings",
			body:   `{"resource_id": "` + f.Space + `", "start": "` + taken.Format("2006-01-02T15:04:05") + `", "end": "` + taken.Add(time.Hour).Format(time.RFC3339) + `"}`,
			status: http.StatusBadRequest, code: bhttp.CodeValidationFailed},
		{name: "booking fields invalid", method: http.MethodPost, path: "/bookings",
			body:   map[string]any{"resource_id": f.Space, "client_id": client, "seats": -1, "start": taken.Format(time.RFC3339), "end": taken.Add(-time.Hour).Format(time.RFC3339)},
			status: http.StatusUnprocessableEntity, code: bhttp.CodeValidationFailed, fields: []string{"seats", "end"}},
		{name: "booking times missing", method: http.MethodPost, path: "/bookings", body: map[string]any{"resource_id": f.Space, "client_id": client},
			status: http.StatusUnprocessableEntity, code: bhttp.CodeValidationFailed, fields: []string{"start", "end"}},
		{name: "booking of an unknown resource", method: http.MethodPost, path: "/bookings", body: e2eBooking(uuid.NewString(), client, taken, 30),
			status: http.StatusUnprocessableEntity, code: bhttp.CodeValidationFailed, fields: []string{"resource_id"}},
		{name: "booking for an unknown client", method: http.MethodPost, path: "/bookings", body: e2eBooking(f.Space, uuid.NewString(), taken, 30),
			status: http.StatusUnprocessableEntity, code: bhttp.CodeValidationFailed, fields: []string{"client_id"}},
		{name: "user fields invalid", method: http.MethodPost, path: "/users", body: map[string]any{"email": "not-an-email", "name": "", "role": "wizard"},
			status: http.StatusUnprocessableEntity, code: bhttp.CodeValidationFailed, fields: []string{"email", "name", "role"}},
		{name: "resource fields invalid", method: http.MethodPost, path: "/resources", body: map[string]any{"name": "X", "kind": "spaceship", "capacity": -1, "timezone": "Mars/Olympus"},
			status: http.StatusUnprocessableEntity, code: bhttp.CodeValidationFailed, fields: []string{"kind", "capacity", "timezone"}},
		{name: "tenant fields invalid", role: e2ePlatform, method: http.MethodPost, path: "/tenants",
			body:   map[string]any{"name": "", "domain": "not a domain", "settings": map[string]any{"timezone": "Mars/Olympus", "slot_granularity_minutes": 0, "business_hours": map[string]any{"mon": []map[string]string{{"start": "18:00", "end": "09:00"}}}}},
			status: http.StatusUnprocessableEntity, code: bhttp.CodeValidationFailed,
			fields: []string{"name", "domain", "settings.timezone", "settings.slot_granularity_minutes", "settings.business_hours.mon[0].end"}},
		{name: "settings invalid", method: http.MethodPut, path: "/tenants/" + f.TenantID + "/settings", body: map[string]any{"max_advance_days": -1, "min_duration_minutes": 60, "max_duration_minutes": 30},
			status: http.StatusUnprocessableEntity, code: bhttp.CodeValidationFailed, fields: []string{"max_advance_days", "max_duration_minutes"}},
		{name: "booking conflict", method: http.MethodPost, path: "/bookings", body: e2eBooking(f.Space, client2, taken.Add(15*time.Minute), 30),
			status: http.StatusConflict, code: bhttp.CodeBookingConflict,
			check: func(t *testing.T, r e2eReply) {
				require.Equal(t, []string{held}, problemConflicts(t, r))
				c := r.Doc["conflicts"].([]any)[0].(map[string]any)
				requireE2ETime(t, taken, c["start"].(string))
				requireE2ETime(t, taken.Add(30*time.Minute), c["end"].(string))
			}},
		{name: "before business hours", method: http.MethodPost, path: "/bookings", body: e2eBooking(f.Space, client, e2eAt(f.Day, 8, 0), 60),
			status: http.StatusUnprocessableEntity, code: bhttp.CodeOutsideBusinessHours},
		{name: "across the end of business hours", method: http.MethodPost, path: "/bookings", body: e2eBooking(f.Space, client, e2eAt(f.Day, 16, 30), 60),
			status: http.StatusUnprocessableEntity, code: bhttp.CodeOutsideBusinessHours},
		{name: "on a Saturday", method: http.MethodPost, path: "/bookings", body: e2eBooking(f.Space, client, e2eAt(f.Day.AddDate(0, 0, 5), 10, 0), 60),
			status: http.StatusUnprocessableEntity, code: bhttp.CodeOutsideBusinessHours},
		{name: "on a closure", method: http.MethodPost, path: "/bookings", body: e2eBooking(f.Space, client, e2eAt(f.Day.AddDate(0, 0, 2), 10, 0), 60),
			status: http.StatusUnprocessableEntity, code: bhttp.CodeOutsideBusinessHours},
		{name: "outside the resource's weekly hours", method: http.MethodPost, path: "/bookings", body: e2eBooking(limited, client, e2eAt(f.Day, 13, 0), 30),
			status: http.StatusUnprocessableEntity, code: bhttp.CodeOutsideResourceAvailability},
		{name: "on the resource's closed override", method: http.MethodPost, path: "/bookings", body: e2eBooking(limited, client, e2eAt(f.Day.AddDate(0, 0, 7), 10, 0), 30),
			status: http.StatusUnprocessableEntity, code: bhttp.CodeOutsideResourceAvailability},
		{name: "in the past", method: http.MethodPost, path: "/bookings", body: e2eBooking(f.Space, client, e2eAt(past, 10, 0), 30),
			status: http.StatusUnprocessableEntity, code: bhttp.CodeTooShortNotice},
		{name: "too far in advance", method: http.MethodPost, path: "/bookings", body: e2eBooking(f.Space, client, e2eAt(far, 10, 0), 30),
			status: http.StatusUnprocessableEntity, code: bhttp.CodeTooFarInAdvance},
		{name: "longer than the maximum duration", method: http.MethodPost, path: "/bookings", body: e2eBooking(f.Space, client, e2eAt(f.Day, 8, 0), 9*60),
			status: http.StatusUnprocessableEntity, code: bhttp.CodeDurationOutOfRange},
		{name: "start off the grid", method: http.MethodPost, path: "/bookings", body: e2eBooking(f.Space, client, e2eAt(f.Day, 13, 5), 30),
			status: http.StatusUnprocessableEntity, code: bhttp.CodeOffSlotGrid},
		{name: "duration off the grid", method: http.MethodPost, path: "/bookings", body: e2eBooking(f.Space, client, e2eAt(f.Day, 13, 0), 20),
			status: http.StatusUnprocessableEntity, code: bhttp.CodeOffSlotGrid},
		{name: "more seats than capacity", method: http.MethodPost, path: "/bookings",
			body: func() map[string]any {
				b := e2eBooking(f.Space, client, e2eAt(f.Day, 13, 0), 30)
				b["seats"] = 2
				return b
			}(),
			status: http.StatusUnprocessableEntity, code: bhttp.CodeCapacityExceeded},
		{name: "client daily limit", fx: lim, role: e2eClient, method: http.MethodPost, path: "/bookings", body: e2eBooking(lim.Space, "", e2eAt(lim.Day, 14, 0), 30),
			status: http.StatusUnprocessableEntity, code: bhttp.CodeClientDailyLimitReached},
		{name: "complete a confirmed booking", method: http.MethodPost, path: "/bookings/" + held + "/complete",
			status: http.StatusConflict, code: bhttp.CodeInvalidTransition},
		{name: "confirm a confirmed booking", method: http.MethodPost, path: "/bookings/" + held + "/confirm",
			status: http.StatusConflict, code: bhttp.CodeInvalidTransition},
		{name: "no-show before the start", method: http.MethodPost, path: "/bookings/" + held + "/no-show",
			status: http.StatusConflict, code: bhttp.CodeInvalidTransition},
		{name: "cancel a cancelled booking", method: http.MethodPost, path: "/bookings/" + cancelledID + "/cancel",
			status: http.StatusConflict, code: bhttp.CodeInvalidTransition},
		{name: "reschedule a cancelled booking", method: http.MethodPost, path: "/bookings/" + cancelledID + "/reschedule",
			body:   map[string]any{"start": e2eAt(f.Day, 16, 0).Format(time.RFC3339), "end": e2eAt(f.Day, 16, 30).Format(time.RFC3339)},
			status: http.StatusConflict, code: bhttp.CodeInvalidTransition},
		{name: "client cancels after the deadline", fx: lim, role: e2eClient, method: http.MethodPost, path: "/bookings/" + limBooking + "/cancel",
			status: http.StatusUnprocessableEntity, code: bhttp.CodeCancellationDeadlinePassed},
		{name: "client reschedules after the deadline", fx: lim, role: e2eClient, method: http.MethodPost, path: "/bookings/" + limBooking + "/reschedule",
			body:   map[string]any{"start": e2eAt(lim.Day, 15, 0).Format(time.RFC3339), "end": e2eAt(lim.Day, 15, 30).Format(time.RFC3339)},
			status: http.StatusUnprocessableEntity, code: bhttp.CodeCancellationDeadlinePassed},
		{name: "domain taken", role: e2ePlatform, method: http.MethodPost, path: "/tenants", body: map[string]any{"name": "Copy", "domain": strings.ToUpper(f.Domain)},
			status: http.StatusConflict, code: bhttp.CodeDomainTaken},
		{name: "email taken", method: http.MethodPost, path: "/users", body: map[string]any{"email": strings.ToUpper(e2eClient + "@" + f.Domain), "name": "Copy", "role": "client"},
			status: http.StatusConflict, code: bhttp.CodeEmailTaken},
		{name: "unknown booking", method: http.MethodGet, path: "/bookings/" + uuid.NewString(), status: http.StatusNotFound, code: bhttp.CodeNotFound},
		{name: "malformed booking id", method: http.MethodGet, path: "/bookings/42", status: http.StatusNotFound, code: bhttp.CodeNotFound},
		{name: "unknown booking history", method: http.MethodGet, path: "/bookings/" + uuid.NewString() + "/history", status: http.StatusNotFound, code: bhttp.CodeNotFound},
		{name: "cancel an unknown booking", method: http.MethodPost, path: "/bookings/" + uuid.NewString() + "/cancel", status: http.StatusNotFound, code: bhttp.CodeNotFound},
		{name: "unknown resource", method: http.MethodGet, path: "/resources/" + uuid.NewString(), status: http.StatusNotFound, code: bhttp.CodeNotFound},
		{name: "patch an unknown resource", method: http.MethodPatch, path: "/resources/" + uuid.NewString(), body: map[string]any{"name": "x"}, status: http.StatusNotFound, code: bhttp.CodeNotFound},
		{name: "unknown category", method: http.MethodGet, path: "/resource-categories/" + uuid.NewString(), status: http.StatusNotFound, code: bhttp.CodeNotFound},
		{name: "unknown user", method: http.MethodGet, path: "/users/" + uuid.NewString(), status: http.StatusNotFound, code: bhttp.CodeNotFound},
		{name: "unknown tenant", role: e2ePlatform, method: http.MethodGet, path: "/tenants/" + uuid.NewString(), status: http.StatusNotFound, code: bhttp.CodeNotFound},
		{name: "unknown route", method: http.MethodGet, path: "/no-such-thing", status: http.StatusNotFound, code: bhttp.CodeNotFound},
		{name: "method not allowed", method: http.MethodPut, path: "/bookings", body: map[string]any{}, status: http.StatusMethodNotAllowed, code: bhttp.CodeMethodNotAllowed,
			check: func(t *testing.T, r e2eReply) { require.Contains(t, r.Header.Get("Allow"), http.MethodPost) }},
		{name: "stale If-Match on a booking", method: http.MethodPost, path: "/bookings/" + held + "/check-in", header: []string{"If-Match", `"7"`},
			status: http.StatusPreconditionFailed, code: bhttp.CodeVersionMismatch},
		{name: "stale If-Match on a user", method: http.MethodPatch, path: "/users/" + client, body: map[string]any{"name": "x"}, header: []string{"If-Match", `"9"`},
			status: http.StatusPreconditionFailed, code: bhttp.CodeVersionMismatch},
		{name: "stale If-Match on availability", method: http.MethodPut, path: "/resources/" + limited + "/availability", body: map[string]any{}, header: []string{"If-Match", `"1"`},
			status: http.StatusPreconditionFailed, code: bhttp.CodeVersionMismatch},
		{name: "weak If-Match", method: http.MethodPatch, path: "/users/" + client, body: map[string]any{"name": "x"}, header: []string{"If-Match", `W/"1"`},
			status: http.StatusBadRequest, code: bhttp.CodeValidationFailed, fields: []string{"If-Match"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fx, role := tc.fx, tc.role
			if fx == nil {
				fx = f
			}
			if role == "" {
				role = e2eAdmin
			}
			r := fx.call(t, role, tc.method, tc.path, tc.body, tc.header...)
			requireE2EProblem(t, r, tc.status, tc.code)
			require.Empty(t, r.Header.Get("ETag"), "a problem carries no ETag")
			require.Empty(t, r.Header.Get("X-Position"), "a problem carries no X-Position")
			if len(tc.fields) > 0 {
				require.Subset(t, problemFields(t, r), tc.fields, "%s", r)
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}

	// Nothing above changed state: the held slot still has one booking.
	requireE2EProblem(t, f.call(t, e2eAdmin, http.MethodPost, "/bookings", e2eBooking(f.Space, client2, taken, 30)),
		http.StatusConflict, bhttp.CodeBookingConflict)
	// Staff may cancel after the deadline; the cancellation is recorded
	// as late.
	late := lim.must(t, http.StatusOK, e2eManager, http.MethodPost, "/bookings/"+limBooking+"/cancel", map[string]any{"reason": "clinic closed"})
	require.Equal(t, "cancelled", late.Doc["status"])
	require.Equal(t, true, late.Doc["cancelled_late"])
	hist := lim.must(t, http.StatusOK, e2eClient, http.MethodGet, "/bookings/"+limBooking+"/history", nil).Doc["events"].([]any)
	lastEvent := hist[len(hist)-1].(map[string]any)
	require.Equal(t, "booking.cancelled", lastEvent["type"])
	require.Equal(t, lim.Users[e2eManager], lastEvent["actor"])
	require.Equal(t, true, lastEvent["data"].(map[string]any)["late"])
	// Cancelling freed the client's day: the second booking now fits.
	lim.book(t, e2eClient, lim.Space, "", e2eAt(lim.Day, 14, 0))
}

// TestE2EIdempotency checks Idempotency-Key end to end: a retry replays
// the first answer and books nothing more, another body under the same key
// is refused, and both still hold after bookingd restarts on the same
// database.
func TestE2EIdempotency(t *testing.T) {
	t.Parallel()
	srv := MustStartE2E(t)
	f := MustE2EFixture(t, srv, "idem", nil)
	client := f.Users[e2eClient]
	slot := e2eAt(f.Day, 10, 0)
	body := e2eBooking(f.Space, client, slot, 30)

	first := f.must(t, http.StatusCreated, e2eAdmin, http.MethodPost, "/bookings", body, "Idempotency-Key", "book-1")
	require.Empty(t, first.Header.Get(bhttp.HeaderIdempotentReplayed))
	retry := f.must(t, http.StatusCreated, e2eAdmin, http.MethodPost, "/bookings", body, "Idempotency-Key", "book-1")
	requireE2EReplay(t, first, retry)

	// One booking: the slot conflicts with exactly the first one.
	conflict := f.call(t, e2eAdmin, http.MethodPost, "/bookings", e2eBooking(f.Space, f.Users[e2eClient2], slot, 30))
	requireE2EProblem(t, conflict, http.StatusConflict, bhttp.CodeBookingConflict)
	require.Equal(t, []string{first.str(t, "id")}, problemConflicts(t, conflict))

	other := e2eBooking(f.Space, client, e2eAt(f.Day, 12, 0), 30)
	requireE2EProblem(t, f.call(t, e2eAdmin, http.MethodPost, "/bookings", other, "Idempotency-Key", "book-1"),
		http.StatusUnprocessableEntity, bhttp.CodeIdempotencyKeyReused)
	// The same body on another path is another request too.
	requireE2EProblem(t, f.call(t, e2eAdmin, http.MethodPost, "/users", body, "Idempotency-Key", "book-1"),
		http.StatusUnprocessableEntity, bhttp.CodeIdempotencyKeyReused)
	// Keys are scoped per caller: the manager's "book-1" is a new request.
	requireE2EProblem(t, f.call(t, e2eManager, http.MethodPost, "/bookings", body, "Idempotency-Key", "book-1"),
		http.StatusConflict, bhttp.CodeBookingConflict)

	// A refusal is replayed as well: the retry does not run again.
	refused := f.call(t, e2eAdmin, http.MethodPost, "/bookings", e2eBooking(f.Space, client, e2eAt(f.Day, 8, 0), 30), "Idempotency-Key", "early")
	requireE2EProblem(t, refused, http.StatusUnprocessableEntity, bhttp.CodeOutsideBusinessHours)
	requireE2EReplay(t, refused, f.call(t, e2eAdmin, http.MethodPost, "/bookings", e2eBooking(f.Space, client, e2eAt(f.Day, 8, 0), 30), "Idempotency-Key", "early"))

	// A lifecycle command retried after it succeeded is not an invalid
	// transition.
	id := first.str(t, "id")
	cancel := f.must(t, http.StatusOK, e2eClient, http.MethodPost, "/bookings/"+id+"/cancel", map[string]any{"reason": "r"}, "Idempotency-Key", "cancel-1")
	requireE2EReplay(t, cancel, f.must(t, http.StatusOK, e2eClient, http.MethodPost, "/bookings/"+id+"/cancel", map[string]any{"reason": "r"}, "Idempotency-Key", "cancel-1"))
	require.Len(t, f.must(t, http.StatusOK, e2eAdmin, http.MethodGet, "/bookings/"+id+"/history", nil).Doc["events"], 2)

	// Tenant creation (no tenant header) honours keys too.
	platform := srv.platformToken(t)
	tenantBody := map[string]any{"name": "Idem Two", "domain": "idem-two.example.com"}
	tc := e2eCall{method: http.MethodPost, path: "/tenants", token: platform, body: tenantBody, header: map[string]string{"Idempotency-Key": "tenant-1"}}
	t1 := srv.must(t, http.StatusCreated, tc)
	requireE2EReplay(t, t1, srv.must(t, http.StatusCreated, tc))

	// Keys survive a restart: the new process answers from PostgreSQL.
	slot2 := e2eAt(f.Day, 14, 0)
	body2 := e2eBooking(f.Space, client, slot2, 60)
	before := f.must(t, http.StatusCreated, e2eClient, http.MethodPost, "/bookings", body2, "Idempotency-Key", "restart-1")
	srv.restart(t)
	after := f.must(t, http.StatusCreated, e2eClient, http.MethodPost, "/bookings", body2, "Idempotency-Key", "restart-1")
	requireE2EReplay(t, before, after)
	requireE2EProblem(t, f.call(t, e2eClient, http.MethodPost, "/bookings", e2eBooking(f.Space, client, slot2, 30), "Idempotency-Key", "restart-1"),
		http.StatusUnprocessableEntity, bhttp.CodeIdempotencyKeyReused)
	requireE2EReplay(t, t1, srv.must(t, http.StatusCreated, tc))
	// The booking itself survived, and there is still only one.
	g := f.must(t, http.StatusOK, e2eClient, http.MethodGet, "/bookings/"+before.str(t, "id"), nil)
	require.Equal(t, "confirmed", g.Doc["status"])
	conflict = f.call(t, e2eAdmin, http.MethodPost, "/bookings", e2eBooking(f.Space, f.Users[e2eClient2], slot2, 60))
	requireE2EProblem(t, conflict, http.StatusConflict, bhttp.CodeBookingConflict)
	require.Equal(t, []string{before.str(t, "id")}, problemConflicts(t, conflict))
	// And a new key after the restart runs as usual.
	f.must(t, http.StatusCreated, e2eClient, http.MethodPost, "/bookings", e2eBooking(f.Space, client, e2eAt(f.Day, 16, 0), 30), "Idempotency-Key", "restart-2")
}

// TestE2ETenantResolution checks how a tenant-scoped request names its
// tenant: by id or by domain, exactly one of them, and only its own.
func TestE2ETenantResolution(t *testing.T) {
	t.Parallel()
	srv := MustStartE2E(t)
	a := MustE2EFixture(t, srv, "alpha", nil)
	b := MustE2EFixture(t, srv, "beta", nil)
	admin := a.Tokens[e2eAdmin]
	res := "/resources/" + a.Space

	byDomain := srv.must(t, http.StatusOK, e2eCall{method: http.MethodGet, path: res, token: admin, domain: a.Domain})
	require.Equal(t, a.TenantID, byDomain.Doc["tenant_id"])
	srv.must(t, http.StatusOK, e2eCall{method: http.MethodGet, path: res, token: admin, domain: strings.ToUpper(a.Domain) + "."})
	booked := srv.must(t, http.StatusCreated, e2eCall{method: http.MethodPost, path: "/bookings", token: a.Tokens[e2eClient], domain: a.Domain,
		body: e2eBooking(a.Space, "", e2eAt(a.Day, 10, 0), 30)})
	require.Equal(t, a.TenantID, booked.Doc["tenant_id"])
	require.Equal(t, a.Users[e2eClient], booked.Doc["client_id"])

	cases := []struct {
		name   string
		call   e2eCall
		status int
		code   string
		field  string
	}{
		{"no tenant header", e2eCall{method: http.MethodGet, path: res, token: admin}, http.StatusBadRequest, bhttp.CodeValidationFailed, bhttp.HeaderTenantID},
		{"no tenant header for a platform admin", e2eCall{method: http.MethodGet, path: res, token: a.Tokens[e2ePlatform]}, http.StatusBadRequest, bhttp.CodeValidationFailed, bhttp.HeaderTenantID},
		{"both headers", e2eCall{method: http.MethodGet, path: res, token: admin, tenant: a.TenantID, domain: a.Domain}, http.StatusBadRequest, bhttp.CodeValidationFailed, bhttp.HeaderTenantDomain},
		{"malformed tenant id", e2eCall{method: http.MethodGet, path: res, token: admin, tenant: "alpha"}, http.StatusBadRequest, bhttp.CodeValidationFailed, bhttp.HeaderTenantID},
		{"unknown domain", e2eCall{method: http.MethodGet, path: res, token: admin, domain: "nobody.example.com"}, http.StatusNotFound, bhttp.CodeNotFound, ""},
		{"another tenant's id", e2eCall{method: http.MethodGet, path: res, token: admin, tenant: b.TenantID}, http.StatusForbidden, bhttp.CodeForbidden, ""},
		{"another tenant's domain", e2eCall{method: http.MethodGet, path: res, token: admin, domain: b.Domain}, http.StatusForbidden, bhttp.CodeForbidden, ""},
		{"another tenant's id for a booking", e2eCall{method: http.MethodPost, path: "/bookings", token: a.Tokens[e2eClient], tenant: b.TenantID,
			body: e2eBooking(b.Space, "", e2eAt(b.Day, 11, 0), 30)}, http.StatusForbidden, bhttp.CodeForbidden, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := srv.do(t, tc.call)
			requireE2EProblem(t, r, tc.status, tc.code)
			if tc.field != "" {
				require.Contains(t, problemFields(t, r), tc.field)
			}
		})
	}

	// A platform admin may name any tenant, by id or by domain.
	platform := a.Tokens[e2ePlatform]
	srv.must(t, http.StatusOK, e2eCall{method: http.MethodGet, path: "/resources/" + b.Space, token: platform, tenant: b.TenantID})
	srv.must(t, http.StatusOK, e2eCall{method: http.MethodGet, path: "/resources/" + b.Space, token: platform, domain: b.Domain})
	// Under tenant A's header, tenant B's resource does not exist.
	requireE2EProblem(t, srv.do(t, e2eCall{method: http.MethodGet, path: "/resources/" + b.Space, token: platform, tenant: a.TenantID}),
		http.StatusNotFound, bhttp.CodeNotFound)
}

// e2ePosition returns the X-Position of a command's response.
func e2ePosition(tb testing.TB, r e2eReply) int64 {
	tb.Helper()
	v := r.Header.Get("X-Position")
	require.NotEmpty(tb, v, "no X-Position in %s", r)
	n, err := strconv.ParseInt(v, 10, 64)
	require.NoError(tb, err)
	return n
}

// requireE2ETime checks that got (RFC 3339) is the instant want.
func requireE2ETime(tb testing.TB, want time.Time, got string) {
	tb.Helper()
	g, err := time.Parse(time.RFC3339, got)
	require.NoError(tb, err)
	require.True(tb, want.Equal(g), "time %s, want %s", got, want.Format(time.RFC3339))
}

// requireE2EReplay checks that retry is the replay of first: same status,
// body and replayed headers, marked Idempotent-Replayed.
func requireE2EReplay(tb testing.TB, first, retry e2eReply) {
	tb.Helper()
	require.Equal(tb, first.Status, retry.Status)
	require.Equal(tb, string(first.Body), string(retry.Body))
	for _, h := range []string{"Content-Type", "Location", "ETag", "X-Position"} {
		require.Equal(tb, first.Header.Get(h), retry.Header.Get(h), "header %s", h)
	}
	require.Equal(tb, "true", retry.Header.Get(bhttp.HeaderIdempotentReplayed))
}
