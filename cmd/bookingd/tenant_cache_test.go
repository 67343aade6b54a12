package main

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/commands"
	"github.com/bookingengine/booking/eventstore/postgres/changefeed"
	bhttp "github.com/bookingengine/booking/http"
	"github.com/bookingengine/booking/internal/testenv"
	"github.com/jackc/pgx/v5/pgxpool"
)

func TestTenantCacheConfig(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	c, err := ConfigFromArgs(nil, env(nil))
	require.NoError(t, err)
	require.Equal(t, commands.DefaultCacheMaxAge, c.TenantCacheMaxAge)
	c, err = ConfigFromArgs(nil, env(map[string]string{"TENANT_CACHE_MAX_AGE": "5s"}))
	require.NoError(t, err)
	require.Equal(t, 5*time.Second, c.TenantCacheMaxAge)
	c, err = ConfigFromArgs([]string{"--tenant-cache-max-age=0"}, env(map[string]string{"TENANT_CACHE_MAX_AGE": "5s"}))
	require.NoError(t, err)
	require.Zero(t, c.TenantCacheMaxAge)
	_, err = ConfigFromArgs(nil, env(map[string]string{"TENANT_CACHE_MAX_AGE": "soon"}))
	require.ErrorContains(t, err, "TENANT_CACHE_MAX_AGE")
	_, err = ConfigFromArgs([]string{"--tenant-cache-max-age=-1s"}, env(nil))
	require.ErrorContains(t, err, "tenant cache max age must not be negative")
}

// TestTenantSettingsAcrossProcesses runs two bookingd processes on one
// database, whose cached tenants may answer for ten minutes without an
// invalidation. Settings changed through one process reach the other:
//   - a booking sent to the other right after the change is checked
//     against the new policy (the command tops its cached tenant up);
//   - GET of the settings there shows them once the invalidation arrived
//     (polled with a deadline far below the ten minutes);
//   - with the change feeds' sessions killed, a change made meanwhile
//     still shows there, as the feed that lost its session reads through
//     and, listening again, drops its whole cache.
//
// Resolution by X-Tenant-Domain is served by the cache in between.
func TestTenantSettingsAcrossProcesses(t *testing.T) {
	if runChildIfAsked() {
		return
	}
	const test = "TestTenantSettingsAcrossProcesses"
	t.Setenv("TENANT_CACHE_MAX_AGE", "10m")
	t.Setenv("RELAY", "off")
	dbURL := testenv.NewDatabase(t)
	secret := newSecret(t)
	a := startBookingd(t, test, "bookingd-a", dbURL, secret)
	b := startBookingd(t, test, "bookingd-b", dbURL, secret)
	hc := newHTTPClient(t)
	ctx := context.Background()

	platform := apiClient{http: hc, base: a.Base, token: mustToken(t, secret, bhttp.TokenRequest{Subject: "platform-admin", Role: bhttp.RolePlatformAdmin})}
	domainName := "c" + uuid.NewString()[:8] + ".example.com"
	var tenant struct {
		ID uuid.UUID `json:"id"`
	}
	platform.mustDo(t, http.MethodPost, "/tenants", map[string]any{"name": "Cache Clinic", "domain": domainName, "settings": openAllDaySettings()}, http.StatusCreated, &tenant)
	admin := apiClient{http: hc, base: a.Base, tenant: tenant.ID, token: mustToken(t, secret, bhttp.TokenRequest{
		Subject: uuid.NewString(), TenantID: tenant.ID, Role: bhttp.RoleAdmin,
	})}
	var resource struct {
		ID uuid.UUID `json:"id"`
	}
	admin.mustDo(t, http.MethodPost, "/resources", map[string]any{"name": "Room", "kind": "space", "capacity": 1}, http.StatusCreated, &resource)
	var client struct {
		ID uuid.UUID `json:"id"`
	}
	admin.mustDo(t, http.MethodPost, "/users", map[string]any{"email": "c-" + uuid.NewString()[:8] + "@example.com", "name": "Client", "role": "client"}, http.StatusCreated, &client)
	onA, onB := admin, admin
	onB.base = b.Base
	byDomain := onB
	byDomain.tenant = uuid.Nil

	settingsPath := "/tenants/" + tenant.ID.String() + "/settings"
	policyVersion := func(c apiClient) int {
		t.Helper()
		var s struct {
			PolicyVersion int `json:"policy_version"`
		}
		c.mustDo(t, http.MethodGet, settingsPath, nil, http.StatusOK, &s)
		return s.PolicyVersion
	}
	awaitVersion := func(c apiClient, want int, what string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for policyVersion(c) != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s: bookingd-b still shows policy version %d after 15 s, want %d", what, policyVersion(c), want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	change := func(maxMinutes int) {
		t.Helper()
		s := openAllDaySettings()
		s["max_duration_minutes"] = maxMinutes
		onA.mustDo(t, http.MethodPut, settingsPath, s, http.StatusOK, nil)
	}
	resolves := func() {
		t.Helper()
		res, err := byDomain.do(ctx, http.MethodGet, "/resources/"+resource.ID.String(), nil, map[string]string{bhttp.HeaderTenantDomain: domainName})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, res.Status, describeResponse(res))
	}

	require.Equal(t, 1, policyVersion(onB))
	resolves()
	start := dayStart(2).Add(9 * time.Hour)
	body := map[string]any{"resource_id": resource.ID, "client_id": client.ID, "start": start.Format(time.RFC3339), "end": start.Add(time.Hour).Format(time.RFC3339), "seats": 1}

	change(30)
	res, err := onB.do(ctx, http.MethodPost, "/bookings", body, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusUnprocessableEntity, res.Status, "booked under the superseded policy: %s", describeResponse(res))
	var p struct {
		Code string `json:"code"`
	}
	require.NoError(t, json.Unmarshal(res.Body, &p))
	require.Equal(t, "duration_out_of_range", p.Code, describeResponse(res))
	awaitVersion(onB, 2, "after the invalidation")
	resolves()

	// The feeds lose their sessions; a change made now is announced to
	// no one.
	pool, err := pgxpool.New(ctx, dbURL)
	require.NoError(t, err)
	defer pool.Close()
	var killed int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = $1`, changefeed.ApplicationName).Scan(&killed))
	require.Equal(t, 2, killed, "one change feed session per process")
	change(60)
	awaitVersion(onB, 3, "after the feed lost its session")
	resolves()
	res, err = onB.do(ctx, http.MethodPost, "/bookings", body, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, res.Status, describeResponse(res))
}
