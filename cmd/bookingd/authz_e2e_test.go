package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	bhttp "github.com/bookingengine/booking/http"
)

// TestE2EAuthorization runs the authorization matrix: every role against
// every endpoint family, with the status each must get. Requests that
// change something act on objects made for that role alone, so the rows do
// not depend on each other's order.
func TestE2EAuthorization(t *testing.T) {
	t.Parallel()
	srv := MustStartE2E(t)
	f := MustE2EFixture(t, srv, "authz", nil)
	client, client2 := f.Users[e2eClient], f.Users[e2eClient2]

	// Bookings the read rows look at: the client's and the other client's
	// on the space, and the other client's on the professional's person
	// resource.
	own := f.book(t, e2eAdmin, f.Space, client, f.nextSlot())
	others := f.book(t, e2eAdmin, f.Space, client2, f.nextSlot())
	linked := f.book(t, e2eAdmin, f.Person, client2, f.nextSlot())

	const (
		ok      = http.StatusOK
		created = http.StatusCreated
		denied  = http.StatusForbidden
		hidden  = http.StatusNotFound
	)
	staffOnly := func(success int) map[string]int {
		return map[string]int{e2ePlatform: success, e2eAdmin: success, e2eManager: success, e2eProfessional: denied, e2eClient: denied}
	}
	everyone := func(success int) map[string]int {
		return map[string]int{e2ePlatform: success, e2eAdmin: success, e2eManager: success, e2eProfessional: success, e2eClient: success}
	}
	freshResource := func(t *testing.T) string {
		return f.create(t, e2eAdmin, "/resources", map[string]any{"name": "Spare " + uuid.NewString()[:8], "kind": "space"})
	}
	fresh := func(t *testing.T, resource, forClient string) string {
		return f.book(t, e2eAdmin, resource, forClient, f.nextSlot())
	}
	static := func(p string) func(*testing.T, string) string { return func(*testing.T, string) string { return p } }

	rows := []struct {
		name   string
		method string
		path   func(t *testing.T, role string) string
		body   func(role string) any
		want   map[string]int // roles left out are not tried
	}{
		{name: "tenants create", method: http.MethodPost, path: static("/tenants"),
			body: func(role string) any {
				return map[string]any{"name": "New " + role, "domain": strings.ReplaceAll(role, "_", "-") + ".new.example.com"}
			},
			want: map[string]int{e2ePlatform: created, e2eAdmin: denied, e2eManager: denied, e2eProfessional: denied, e2eClient: denied}},
		{name: "tenants read", method: http.MethodGet, path: static("/tenants/" + f.TenantID), want: everyone(ok)},
		{name: "settings read", method: http.MethodGet, path: static("/tenants/" + f.TenantID + "/settings"), want: everyone(ok)},
		{name: "settings change", method: http.MethodPut, path: static("/tenants/" + f.TenantID + "/settings"),
			body: func(role string) any {
				// A closure far ahead: a real change that no booking here meets.
				far := f.Day.AddDate(2, 0, 0).Format("2006-01-02")
				return map[string]any{"closures": []map[string]string{{"date": far, "reason": "closed by " + role}}}
			},
			want: map[string]int{e2ePlatform: ok, e2eAdmin: ok, e2eManager: denied, e2eProfessional: denied, e2eClient: denied}},
		{name: "categories create", method: http.MethodPost, path: static("/resource-categories"),
			body: func(role string) any { return map[string]any{"name": "Category of " + role} }, want: staffOnly(created)},
		{name: "categories read", method: http.MethodGet, path: static("/resource-categories/" + f.Category), want: everyone(ok)},
		{name: "resources create", method: http.MethodPost, path: static("/resources"),
			body: func(role string) any { return map[string]any{"name": "Room of " + role, "kind": "space"} }, want: staffOnly(created)},
		{name: "resources read", method: http.MethodGet, path: static("/resources/" + f.Space), want: everyone(ok)},
		{name: "resources update", method: http.MethodPatch, path: func(t *testing.T, _ string) string { return "/resources/" + freshResource(t) },
			body: func(role string) any { return map[string]any{"name": "Renamed by " + role} }, want: staffOnly(ok)},
		{name: "resources deactivate", method: http.MethodDelete, path: func(t *testing.T, _ string) string { return "/resources/" + freshResource(t) },
			want: staffOnly(ok)},
		{name: "availability read", method: http.MethodGet, path: static("/resources/" + f.Space + "/availability"), want: everyone(ok)},
		{name: "availability change", method: http.MethodPut, path: func(t *testing.T, _ string) string { return "/resources/" + freshResource(t) + "/availability" },
			body: func(string) any {
				return map[string]any{"weekly": map[string]any{"tue": []map[string]string{{"start": "09:00", "end": "12:00"}}}}
			},
			want: staffOnly(ok)},
		{name: "users create", method: http.MethodPost, path: static("/users"),
			body: func(role string) any {
				return map[string]any{"email": "new-" + strings.ReplaceAll(role, "_", "-") + "@example.com", "name": "New", "role": "client"}
			},
			want: staffOnly(created)},
		{name: "users create an admin", method: http.MethodPost, path: static("/users"),
			body: func(role string) any {
				return map[string]any{"email": "admin-by-" + strings.ReplaceAll(role, "_", "-") + "@example.com", "name": "Boss", "role": "admin"}
			},
			want: map[string]int{e2ePlatform: created, e2eAdmin: created, e2eManager: denied, e2eProfessional: denied, e2eClient: denied}},
		{name: "users read another", method: http.MethodGet, path: static("/users/" + client2),
			want: map[string]int{e2ePlatform: ok, e2eAdmin: ok, e2eManager: ok, e2eProfessional: ok, e2eClient: hidden}},
		{name: "users read self", method: http.MethodGet, path: func(_ *testing.T, role string) string { return "/users/" + f.Users[role] },
			want: map[string]int{e2eAdmin: ok, e2eManager: ok, e2eProfessional: ok, e2eClient: ok}},
		{name: "users update another", method: http.MethodPatch, path: static("/users/" + client2),
			body: func(role string) any { return map[string]any{"name": "Renamed by " + role} },
			want: map[string]int{e2ePlatform: ok, e2eAdmin: ok, e2eManager: ok, e2eProfessional: hidden, e2eClient: hidden}},
		{name: "users update self", method: http.MethodPatch, path: func(_ *testing.T, role string) string { return "/users/" + f.Users[role] },
			body: func(role string) any { return map[string]any{"name": "Self " + role} },
			want: map[string]int{e2eAdmin: ok, e2eManager: ok, e2eProfessional: ok, e2eClient: ok}},
		{name: "users change own role", method: http.MethodPatch, path: func(_ *testing.T, role string) string { return "/users/" + f.Users[role] },
			body: func(string) any { return map[string]any{"role": "admin"} },
			want: map[string]int{e2eProfessional: denied, e2eClient: denied}},
		{name: "bookings create for the client", method: http.MethodPost, path: static("/bookings"),
			body: func(string) any { return e2eBooking(f.Space, client, f.nextSlot(), 30) },
			want: map[string]int{e2ePlatform: created, e2eAdmin: created, e2eManager: created, e2eProfessional: denied, e2eClient: created}},
		{name: "bookings create on the professional's own resource", method: http.MethodPost, path: static("/bookings"),
			body: func(string) any { return e2eBooking(f.Person, client, f.nextSlot(), 30) }, want: everyone(created)},
		{name: "bookings create for another client", method: http.MethodPost, path: static("/bookings"),
			body: func(string) any { return e2eBooking(f.Space, client2, f.nextSlot(), 30) },
			want: map[string]int{e2ePlatform: created, e2eAdmin: created, e2eManager: created, e2eProfessional: denied, e2eClient: denied}},
		{name: "bookings create for another client on the professional's resource", method: http.MethodPost, path: static("/bookings"),
			body: func(string) any { return e2eBooking(f.Person, client2, f.nextSlot(), 30) },
			want: map[string]int{e2ePlatform: created, e2eAdmin: created, e2eManager: created, e2eProfessional: created, e2eClient: denied}},
		{name: "bookings read own", method: http.MethodGet, path: static("/bookings/" + own),
			want: map[string]int{e2ePlatform: ok, e2eAdmin: ok, e2eManager: ok, e2eProfessional: hidden, e2eClient: ok}},
		{name: "bookings history own", method: http.MethodGet, path: static("/bookings/" + own + "/history"),
			want: map[string]int{e2ePlatform: ok, e2eAdmin: ok, e2eManager: ok, e2eProfessional: hidden, e2eClient: ok}},
		{name: "bookings read another client's", method: http.MethodGet, path: static("/bookings/" + others),
			want: map[string]int{e2ePlatform: ok, e2eAdmin: ok, e2eManager: ok, e2eProfessional: hidden, e2eClient: hidden}},
		{name: "bookings read on the linked resource", method: http.MethodGet, path: static("/bookings/" + linked),
			want: map[string]int{e2ePlatform: ok, e2eAdmin: ok, e2eManager: ok, e2eProfessional: ok, e2eClient: hidden}},
		{name: "bookings cancel own", method: http.MethodPost,
			path: func(t *testing.T, _ string) string { return "/bookings/" + fresh(t, f.Space, client) + "/cancel" },
			want: map[string]int{e2ePlatform: ok, e2eAdmin: ok, e2eManager: ok, e2eProfessional: hidden, e2eClient: ok}},
		{name: "bookings cancel another client's", method: http.MethodPost,
			path: func(t *testing.T, _ string) string { return "/bookings/" + fresh(t, f.Space, client2) + "/cancel" },
			want: map[string]int{e2ePlatform: ok, e2eAdmin: ok, e2eManager: ok, e2eProfessional: hidden, e2eClient: hidden}},
		{name: "bookings check in on the linked resource", method: http.MethodPost,
			path: func(t *testing.T, _ string) string { return "/bookings/" + fresh(t, f.Person, client) + "/check-in" },
			want: map[string]int{e2ePlatform: ok, e2eAdmin: ok, e2eManager: ok, e2eProfessional: ok, e2eClient: denied}},
		{name: "bookings check in elsewhere", method: http.MethodPost,
			path: func(t *testing.T, _ string) string { return "/bookings/" + fresh(t, f.Space, client) + "/check-in" },
			want: map[string]int{e2ePlatform: ok, e2eAdmin: ok, e2eManager: ok, e2eProfessional: hidden, e2eClient: denied}},
		{name: "bookings reschedule own", method: http.MethodPost,
			path: func(t *testing.T, _ string) string { return "/bookings/" + fresh(t, f.Space, client) + "/reschedule" },
			body: func(string) any {
				s := f.nextSlot()
				return map[string]any{"start": s.Format(time.RFC3339), "end": s.Add(30 * time.Minute).Format(time.RFC3339)}
			},
			want: map[string]int{e2ePlatform: ok, e2eAdmin: ok, e2eManager: ok, e2eProfessional: hidden, e2eClient: ok}},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			for _, role := range e2eRoles {
				want, tried := row.want[role]
				if !tried {
					continue
				}
				var body any
				if row.body != nil {
					body = row.body(role)
				}
				r := f.call(t, role, row.method, row.path(t, role), body)
				require.Equal(t, want, r.Status, "role %s: %s", role, r)
				switch want {
				case denied:
					requireE2EProblem(t, r, want, bhttp.CodeForbidden)
				case hidden:
					requireE2EProblem(t, r, want, bhttp.CodeNotFound)
				}
			}
		})
	}

	t.Run("missing or bad token", func(t *testing.T) {
		expired, err := srv.minter.Mint(time.Now().Add(-2*time.Hour), bhttp.TokenRequest{
			Subject: client, TenantID: uuid.MustParse(f.TenantID), Role: bhttp.RoleClient, Scopes: bhttp.AllScopes(), TTL: time.Hour,
		})
		require.NoError(t, err)
		foreignMinter, err := bhttp.NewMinter("another-secret-0123456789abcdef-0123456789")
		require.NoError(t, err)
		foreign, err := foreignMinter.Mint(time.Now(), bhttp.TokenRequest{
			Subject: client, TenantID: uuid.MustParse(f.TenantID), Role: bhttp.RoleClient, Scopes: bhttp.AllScopes(), TTL: time.Hour,
		})
		require.NoError(t, err)
		for _, tc := range []struct {
			name, authorization string
		}{
			{"missing", ""},
			{"not bearer", "Basic dXNlcjpwYXNz"},
			{"garbage", "Bearer not.a.token"},
			{"expired", "Bearer " + expired},
			{"signed with another key", "Bearer " + foreign},
		} {
			for _, c := range []e2eCall{
				{method: http.MethodGet, path: "/bookings/" + own, tenant: f.TenantID},
				{method: http.MethodPost, path: "/bookings", tenant: f.TenantID, body: e2eBooking(f.Space, client, f.nextSlot(), 30)},
				{method: http.MethodPost, path: "/tenants", body: map[string]any{"name": "X", "domain": "x.example.com"}},
				{method: http.MethodGet, path: "/tenants/" + f.TenantID},
			} {
				if tc.authorization != "" {
					c.header = map[string]string{"Authorization": tc.authorization}
				}
				r := srv.do(t, c)
				requireE2EProblem(t, r, http.StatusUnauthorized, bhttp.CodeUnauthorized)
				require.NotEmpty(t, r.Header.Get("WWW-Authenticate"), "%s: %s", tc.name, r)
			}
		}
	})

	t.Run("token lacking the scope", func(t *testing.T) {
		tenant := uuid.MustParse(f.TenantID)
		readOnlyClient := srv.token(t, client, bhttp.RoleClient, tenant, bhttp.ScopeBookingsRead)
		adminNoResources := srv.token(t, f.Users[e2eAdmin], bhttp.RoleAdmin, tenant, bhttp.ScopeBookingsRead, bhttp.ScopeBookingsWrite, bhttp.ScopeUsersRead)
		platformNoTenants := srv.token(t, "platform-admin-e2e", bhttp.RolePlatformAdmin, uuid.Nil, bhttp.ScopeBookingsRead)
		for _, c := range []e2eCall{
			{method: http.MethodPost, path: "/bookings", token: readOnlyClient, tenant: f.TenantID, body: e2eBooking(f.Space, client, f.nextSlot(), 30)},
			{method: http.MethodPost, path: "/bookings/" + own + "/cancel", token: readOnlyClient, tenant: f.TenantID},
			{method: http.MethodGet, path: "/resources/" + f.Space, token: readOnlyClient, tenant: f.TenantID},
			{method: http.MethodGet, path: "/users/" + client, token: readOnlyClient, tenant: f.TenantID},
			{method: http.MethodGet, path: "/tenants/" + f.TenantID, token: readOnlyClient},
			{method: http.MethodPost, path: "/resources", token: adminNoResources, tenant: f.TenantID, body: map[string]any{"name": "R", "kind": "space"}},
			{method: http.MethodPut, path: "/resources/" + f.Space + "/availability", token: adminNoResources, tenant: f.TenantID, body: map[string]any{}},
			{method: http.MethodPost, path: "/users", token: adminNoResources, tenant: f.TenantID, body: map[string]any{"email": "s@example.com", "name": "S", "role": "client"}},
			{method: http.MethodPut, path: "/tenants/" + f.TenantID + "/settings", token: adminNoResources, body: map[string]any{}},
			{method: http.MethodPost, path: "/tenants", token: platformNoTenants, body: map[string]any{"name": "X", "domain": "y.example.com"}},
		} {
			r := srv.do(t, c)
			requireE2EProblem(t, r, http.StatusForbidden, bhttp.CodeForbidden)
			require.Contains(t, r.Doc["detail"], "scope", "%s", r)
		}
		// The read the token does grant works.
		srv.must(t, http.StatusOK, e2eCall{method: http.MethodGet, path: "/bookings/" + own, token: readOnlyClient, tenant: f.TenantID})
	})

	t.Run("another tenant's objects", func(t *testing.T) {
		b := MustE2EFixture(t, srv, "authz-other", nil)
		bBooking := b.book(t, e2eAdmin, b.Space, b.Users[e2eClient], b.nextSlot())
		for _, role := range []string{e2eAdmin, e2eManager, e2eProfessional, e2eClient} {
			for _, tc := range []struct {
				method, path string
				body         any
			}{
				{http.MethodGet, "/bookings/" + bBooking, nil},
				{http.MethodGet, "/bookings/" + bBooking + "/history", nil},
				{http.MethodPost, "/bookings/" + bBooking + "/cancel", nil},
				{http.MethodPost, "/bookings/" + bBooking + "/reschedule", map[string]any{"start": f.nextSlot().Format(time.RFC3339), "end": f.nextSlot().Format(time.RFC3339)}},
				{http.MethodGet, "/resources/" + b.Space, nil},
				{http.MethodGet, "/resources/" + b.Space + "/availability", nil},
				{http.MethodGet, "/resource-categories/" + b.Category, nil},
				{http.MethodGet, "/users/" + b.Users[e2eClient], nil},
				{http.MethodGet, "/tenants/" + b.TenantID, nil},
				{http.MethodGet, "/tenants/" + b.TenantID + "/settings", nil},
			} {
				r := f.call(t, role, tc.method, tc.path, tc.body)
				requireE2EProblem(t, r, http.StatusNotFound, bhttp.CodeNotFound)
			}
		}
		for _, role := range []string{e2eAdmin, e2eManager} {
			for _, tc := range []struct {
				method, path string
				body         any
			}{
				{http.MethodPatch, "/resources/" + b.Space, map[string]any{"name": "Mine now"}},
				{http.MethodDelete, "/resources/" + b.Space, nil},
				{http.MethodPut, "/resources/" + b.Space + "/availability", map[string]any{}},
				{http.MethodPatch, "/users/" + b.Users[e2eClient], map[string]any{"name": "Mine now"}},
				{http.MethodPut, "/tenants/" + b.TenantID + "/settings", map[string]any{}},
			} {
				r := f.call(t, role, tc.method, tc.path, tc.body)
				requireE2EProblem(t, r, http.StatusNotFound, bhttp.CodeNotFound)
			}
		}
		// A body naming another tenant's resource or client is a field
		// that names nothing in this tenant.
		r := f.call(t, e2eAdmin, http.MethodPost, "/bookings", e2eBooking(b.Space, client, f.nextSlot(), 30))
		requireE2EProblem(t, r, http.StatusUnprocessableEntity, bhttp.CodeValidationFailed)
		require.Contains(t, problemFields(t, r), "resource_id")
		r = f.call(t, e2eAdmin, http.MethodPost, "/bookings", e2eBooking(f.Space, b.Users[e2eClient], f.nextSlot(), 30))
		requireE2EProblem(t, r, http.StatusUnprocessableEntity, bhttp.CodeValidationFailed)
		require.Contains(t, problemFields(t, r), "client_id")
		// Tenant B's objects are untouched.
		require.Equal(t, "confirmed", b.must(t, http.StatusOK, e2eAdmin, http.MethodGet, "/bookings/"+bBooking, nil).Doc["status"])
		require.Equal(t, true, b.must(t, http.StatusOK, e2eAdmin, http.MethodGet, "/resources/"+b.Space, nil).Doc["active"])
	})
}
