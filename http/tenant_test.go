package http_test

import (
	"net/http"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	bhttp "github.com/bookingengine/booking/http"
)

func TestResolveTenant(t *testing.T) {
	t.Parallel()
	f := MustFixture(t)
	f.srv.Tenant().HandleFunc("/resources", func(w http.ResponseWriter, r *http.Request) {
		_ = bhttp.WriteJSON(w, http.StatusOK, map[string]string{"tenant": bhttp.TenantFrom(r.Context()).String()})
	}).Methods(http.MethodGet)

	clientA := f.token(t, "u", "client", tenantA)
	platform := f.token(t, "root", "platform_admin", uuid.Nil)

	tests := []struct {
		name       string
		token      string
		headers    map[string]string
		status     int
		code       string
		field      string // errors[0].field for 400s
		wantTenant string
	}{
		{"by id", clientA, map[string]string{"X-Tenant-ID": tenantA.String()}, 200, "", "", tenantA.String()},
		{"by domain, case and trailing dot ignored", clientA, map[string]string{"X-Tenant-Domain": "Sorriso.Example.com."}, 200, "", "", tenantA.String()},
		{"missing", clientA, nil, 400, "validation_failed", "X-Tenant-ID", ""},
		{"both", clientA, map[string]string{"X-Tenant-ID": tenantA.String(), "X-Tenant-Domain": "sorriso.example.com"}, 400, "validation_failed", "X-Tenant-Domain", ""},
		{"bad uuid", clientA, map[string]string{"X-Tenant-ID": "acme"}, 400, "validation_failed", "X-Tenant-ID", ""},
		{"nil uuid", clientA, map[string]string{"X-Tenant-ID": "00000000-0000-0000-0000-000000000000"}, 400, "validation_failed", "X-Tenant-ID", ""},
		{"urn form is not accepted", clientA, map[string]string{"X-Tenant-ID": "urn:uuid:" + tenantA.String()}, 400, "validation_failed", "X-Tenant-ID", ""},
		{"unknown domain", clientA, map[string]string{"X-Tenant-Domain": "nowhere.example.com"}, 404, "not_found", "", ""},
		{"resolver down", clientA, map[string]string{"X-Tenant-Domain": "down.example.com"}, 503, "service_unavailable", "", ""},
		{"other tenant by id", clientA, map[string]string{"X-Tenant-ID": tenantB.String()}, 403, "forbidden", "", ""},
		{"other tenant by domain", clientA, map[string]string{"X-Tenant-Domain": "other.example.com"}, 403, "forbidden", "", ""},
		{"platform admin names any tenant", platform, map[string]string{"X-Tenant-ID": tenantB.String()}, 200, "", "", tenantB.String()},
		{"platform admin by domain", platform, map[string]string{"X-Tenant-Domain": "sorriso.example.com"}, 200, "", "", tenantA.String()},
		{"platform admin without header", platform, nil, 400, "validation_failed", "X-Tenant-ID", ""},
		{"no token comes first", "", map[string]string{"X-Tenant-ID": tenantA.String()}, 401, "unauthorized", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newReq(http.MethodGet, "/resources", "")
			if tt.token != "" {
				r.Header.Set("Authorization", "Bearer "+tt.token)
			}
			for k, v := range tt.headers {
				r.Header.Set(k, v)
			}
			w := f.do(r)
			if tt.code == "" {
				require.Equal(t, tt.status, w.Code, w.Body.String())
				require.JSONEq(t, `{"tenant":"`+tt.wantTenant+`"}`, w.Body.String())
				return
			}
			p := mustProblem(t, w, tt.status, tt.code)
			if tt.field != "" {
				require.NotEmpty(t, p.Errors)
				require.Equal(t, tt.field, p.Errors[0].Field)
			}
		})
	}
}

func TestTenantLoggedOnRequestLines(t *testing.T) {
	t.Parallel()
	f := MustFixture(t)
	f.srv.Tenant().HandleFunc("/resources", func(w http.ResponseWriter, r *http.Request) {
		bhttp.LoggerFrom(r.Context()).InfoContext(r.Context(), "listing resources")
		w.WriteHeader(http.StatusNoContent)
	})
	w := f.do(newReq(http.MethodGet, "/resources", "",
		bearer(f.token(t, "u-7", "client", tenantA)), header("X-Tenant-ID", tenantA.String()), header("X-Request-ID", "rid-7")))
	require.Equal(t, http.StatusNoContent, w.Code)

	var seen int
	for _, l := range f.logs.lines(t) {
		if l["msg"] == "listing resources" || l["msg"] == "http request" {
			seen++
			require.Equal(t, "rid-7", l["request_id"])
			require.Equal(t, tenantA.String(), l["tenant_id"])
			require.Equal(t, "u-7", l["user_id"])
		}
	}
	require.Equal(t, 2, seen)
}
