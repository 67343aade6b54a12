package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	bhttp "github.com/bookingengine/booking/http"
	"github.com/bookingengine/booking/internal/testenv"
)

// readSideSecret verifies the tokens of the read-side end-to-end tests.
const readSideSecret = "read-side-e2e-secret-0123456789abcdef-0123456789"

// readSideClient calls a bookingd started by startReadSideE2E, every
// exchange checked against the OpenAPI document.
type readSideClient struct {
	base   string
	minter *bhttp.Minter
	http   *http.Client
}

// startReadSideE2E starts bookingd on 127.0.0.1:0, over a database of its
// own when databaseURL is not empty, else on the embedded store, and stops
// it when tb ends.
func startReadSideE2E(tb testing.TB, databaseURL string) *readSideClient {
	tb.Helper()
	var logs bytes.Buffer
	var mu sync.Mutex
	m := NewMain(Config{DatabaseURL: databaseURL, HTTPAddr: "127.0.0.1:0", JWTSecret: readSideSecret,
		LogFormat: "text", ShutdownTimeout: 5 * time.Second})
	m.Logger = slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(tb, m.Run(ctx))
	minter, err := bhttp.NewMinter(readSideSecret)
	require.NoError(tb, err)
	hc, _ := newCheckedClient(tb, nil, 30*time.Second)
	c := &readSideClient{base: "http://" + m.Addr, minter: minter, http: hc}
	tb.Cleanup(func() {
		require.NoError(tb, m.Close())
		c.http.CloseIdleConnections()
		if tb.Failed() {
			mu.Lock()
			tb.Logf("bookingd log:\n%s", logs.String())
			mu.Unlock()
		}
	})
	return c
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (c *readSideClient) token(tb testing.TB, subject, role string, tenant uuid.UUID) string {
	tb.Helper()
	tok, err := c.minter.Mint(time.Now(), bhttp.TokenRequest{Subject: subject, TenantID: tenant, Role: role,
		Scopes: bhttp.AllScopes(), TTL: time.Hour})
	require.NoError(tb, err)
	return tok
}

// call sends one request and decodes a JSON object answer into doc.
func (c *readSideClient) call(tb testing.TB, method, path, token string, tenant uuid.UUID, minPos int64, body any) (int, http.Header, map[string]any) {
	tb.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		require.NoError(tb, err)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	require.NoError(tb, err)
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tenant != uuid.Nil {
		req.Header.Set(bhttp.HeaderTenantID, tenant.String())
	}
	if minPos > 0 {
		req.Header.Set("X-Min-Position", strconv.FormatInt(minPos, 10))
	}
	res, err := c.http.Do(req)
	require.NoError(tb, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(tb, err)
	var doc map[string]any
	if len(raw) > 0 && raw[0] == '{' {
		require.NoError(tb, json.Unmarshal(raw, &doc), "%s %s: %s", method, path, raw)
	}
	return res.StatusCode, res.Header, doc
}

// must sends a request that must answer want and returns its body and
// X-Position.
func (c *readSideClient) must(tb testing.TB, want int, method, path, token string, tenant uuid.UUID, minPos int64, body any) (map[string]any, int64) {
	tb.Helper()
	status, h, doc := c.call(tb, method, path, token, tenant, minPos, body)
	require.Equal(tb, want, status, "%s %s: %v", method, path, doc)
	pos, _ := strconv.ParseInt(h.Get("X-Position"), 10, 64)
	return doc, pos
}

// TestReadYourWritesE2E: every command followed by a query carrying its
// X-Position as X-Min-Position sees the write, on PostgreSQL and on the
// embedded store, for the booking list and the free slots, for staff and
// for the client who booked.
func TestReadYourWritesE2E(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		db   func(t *testing.T) string
	}{
		{"Postgres", func(t *testing.T) string { return testenv.NewDatabase(t) }},
		{"Memory", func(*testing.T) string { return "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			readYourWrites(t, startReadSideE2E(t, tc.db(t)))
		})
	}
}

func readYourWrites(t *testing.T, c *readSideClient) {
	platform := c.token(t, "platform-admin", bhttp.RolePlatformAdmin, uuid.Nil)
	allDay := []map[string]string{{"start": "00:00", "end": "24:00"}}
	doc, _ := c.must(t, http.StatusCreated, http.MethodPost, "/tenants", platform, uuid.Nil, 0, map[string]any{
		"name": "Read side", "domain": "rs-" + uuid.NewString()[:8] + ".example.com",
		"settings": map[string]any{
			"timezone":                 "America/Sao_Paulo",
			"business_hours":           map[string]any{"mon": allDay, "tue": allDay, "wed": allDay, "thu": allDay, "fri": allDay, "sat": allDay, "sun": allDay},
			"slot_granularity_minutes": 30, "min_duration_minutes": 30, "max_duration_minutes": 120,
			"buffer_after_minutes": 30, "max_advance_days": 0,
		},
	})
	tenant := uuid.MustParse(doc["id"].(string))
	admin := c.token(t, "admin-"+tenant.String()[:8], bhttp.RoleAdmin, tenant)

	doc, _ = c.must(t, http.StatusCreated, http.MethodPost, "/resource-categories", admin, tenant, 0, map[string]any{"name": "Rooms"})
	category := doc["id"].(string)
	doc, _ = c.must(t, http.StatusCreated, http.MethodPost, "/resources", admin, tenant, 0,
		map[string]any{"name": "Room", "kind": "space", "capacity": 1, "category_id": category})
	resource := doc["id"].(string)
	doc, _ = c.must(t, http.StatusCreated, http.MethodPost, "/users", admin, tenant, 0,
		map[string]any{"email": "client@example.com", "name": "Client", "role": "client"})
	clientID := doc["id"].(string)
	client := c.token(t, clientID, bhttp.RoleClient, tenant)

	loc, err := time.LoadLocation("America/Sao_Paulo")
	require.NoError(t, err)
	now := time.Now().In(loc)
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, loc).AddDate(0, 0, 10)
	window := "from=" + url.QueryEscape(day.Format(time.RFC3339)) + "&to=" + url.QueryEscape(day.AddDate(0, 0, 1).Format(time.RFC3339))
	slots := func(minPos int64) map[string]bool {
		doc, _ := c.must(t, http.StatusOK, http.MethodGet, "/availability?resource_id="+resource+"&duration=30&"+window, client, tenant, minPos, nil)
		out := map[string]bool{}
		for _, s := range doc["slots"].([]any) {
			start, err := time.Parse(time.RFC3339, s.(map[string]any)["start"].(string))
			require.NoError(t, err)
			out[start.UTC().Format(time.RFC3339)] = true
		}
		return out
	}
	listed := func(token string, minPos int64) map[string]string {
		doc, _ := c.must(t, http.StatusOK, http.MethodGet, "/bookings?resource_id="+resource+"&"+window, token, tenant, minPos, nil)
		out := map[string]string{}
		for _, b := range doc["bookings"].([]any) {
			out[b.(map[string]any)["id"].(string)] = b.(map[string]any)["status"].(string)
		}
		return out
	}

	// Book every other hour of the day, each followed at once by reads
	// that must see it.
	var ids []string
	for i := range 12 {
		start := day.Add(time.Duration(2*i) * time.Hour)
		doc, pos := c.must(t, http.StatusCreated, http.MethodPost, "/bookings", client, tenant, 0, map[string]any{
			"resource_id": resource, "client_id": clientID,
			"start": start.Format(time.RFC3339), "end": start.Add(30 * time.Minute).Format(time.RFC3339),
		})
		require.Positive(t, pos, "a command answers X-Position")
		id := doc["id"].(string)
		ids = append(ids, id)
		require.Equal(t, "confirmed", listed(admin, pos)[id], "booking %d listed to staff", i)
		require.Equal(t, "confirmed", listed(client, pos)[id], "booking %d listed to its client", i)
		free := slots(pos)
		for _, taken := range []time.Duration{-30 * time.Minute, 0, 30 * time.Minute} {
			require.False(t, free[start.Add(taken).UTC().Format(time.RFC3339)], "booking %d: slot %s still shown", i, taken)
		}
		require.True(t, free[start.Add(time.Hour).UTC().Format(time.RFC3339)], "booking %d: the slot after the buffer is free", i)
	}

	// Cancelling frees the slot at once for the next read.
	for i, id := range ids[:4] {
		_, pos := c.must(t, http.StatusOK, http.MethodPost, "/bookings/"+id+"/cancel", admin, tenant, 0, map[string]any{"reason": "test"})
		require.Equal(t, "cancelled", listed(admin, pos)[id])
		require.True(t, slots(pos)[day.Add(time.Duration(2*i)*time.Hour).UTC().Format(time.RFC3339)], "cancelled booking %d freed its slot", i)
	}

	// Another client sees none of them; the category query agrees with
	// the resource query.
	doc, _ = c.must(t, http.StatusCreated, http.MethodPost, "/users", admin, tenant, 0,
		map[string]any{"email": "other@example.com", "name": "Other", "role": "client"})
	other := c.token(t, doc["id"].(string), bhttp.RoleClient, tenant)
	_, pos := c.must(t, http.StatusOK, http.MethodGet, "/bookings", other, tenant, 0, nil)
	require.Empty(t, listed(other, pos))
	byCategory, _ := c.must(t, http.StatusOK, http.MethodGet, "/availability?category_id="+category+"&duration=30&"+window, client, tenant, 0, nil)
	require.Len(t, byCategory["slots"], len(slots(0)))

	// Malformed and out-of-range parameters are problems, not empty lists.
	status, _, problem := c.call(t, http.MethodGet, "/availability?resource_id=x&duration=30&"+window, client, tenant, 0, nil)
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, "validation_failed", problem["code"])
	status, _, problem = c.call(t, http.MethodGet, fmt.Sprintf("/availability?resource_id=%s&duration=30&from=%s&to=%s", resource,
		url.QueryEscape(day.Format(time.RFC3339)), url.QueryEscape(day.AddDate(0, 0, 32).Format(time.RFC3339))), client, tenant, 0, nil)
	require.Equal(t, http.StatusUnprocessableEntity, status)
	require.Equal(t, "validation_failed", problem["code"])
	status, _, problem = c.call(t, http.MethodGet, "/availability?resource_id="+uuid.NewString()+"&duration=30&"+window, client, tenant, 0, nil)
	require.Equal(t, http.StatusNotFound, status, "%v", problem)
}

// TestListPagesE2E walks a listing page by page with the opaque cursor.
func TestListPagesE2E(t *testing.T) {
	t.Parallel()
	c := startReadSideE2E(t, "")
	platform := c.token(t, "platform-admin", bhttp.RolePlatformAdmin, uuid.Nil)
	allDay := []map[string]string{{"start": "00:00", "end": "24:00"}}
	doc, _ := c.must(t, http.StatusCreated, http.MethodPost, "/tenants", platform, uuid.Nil, 0, map[string]any{
		"name": "Pages", "domain": "pages.example.com",
		"settings": map[string]any{"timezone": "UTC", "max_advance_days": 0, "business_hours": map[string]any{
			"mon": allDay, "tue": allDay, "wed": allDay, "thu": allDay, "fri": allDay, "sat": allDay, "sun": allDay}},
	})
	tenant := uuid.MustParse(doc["id"].(string))
	admin := c.token(t, "admin", bhttp.RoleAdmin, tenant)
	doc, _ = c.must(t, http.StatusCreated, http.MethodPost, "/resources", admin, tenant, 0, map[string]any{"name": "R", "kind": "space", "capacity": 5})
	resource := doc["id"].(string)
	doc, _ = c.must(t, http.StatusCreated, http.MethodPost, "/users", admin, tenant, 0, map[string]any{"email": "c@example.com", "name": "C", "role": "client"})
	clientID := doc["id"].(string)
	start := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, 3)
	var last int64
	want := []string{}
	for i := range 7 {
		s := start.Add(time.Duration(i) * time.Hour)
		doc, pos := c.must(t, http.StatusCreated, http.MethodPost, "/bookings", admin, tenant, 0, map[string]any{
			"resource_id": resource, "client_id": clientID, "start": s.Format(time.RFC3339), "end": s.Add(time.Hour).Format(time.RFC3339)})
		want, last = append(want, doc["id"].(string)), pos
	}
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 5)
		doc, _ := c.must(t, http.StatusOK, http.MethodGet, "/bookings?limit=2&cursor="+url.QueryEscape(cursor), admin, tenant, last, nil)
		for _, b := range doc["bookings"].([]any) {
			got = append(got, b.(map[string]any)["id"].(string))
		}
		next, _ := doc["next_cursor"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	require.Equal(t, want, got)
	status, _, problem := c.call(t, http.MethodGet, "/bookings?cursor=garbage", admin, tenant, 0, nil)
	require.Equal(t, http.StatusUnprocessableEntity, status)
	require.Equal(t, "validation_failed", problem["code"])
}
