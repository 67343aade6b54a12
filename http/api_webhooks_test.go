package http_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/eventstore"
	"github.com/bookingengine/booking/eventstore/memory"
	bhttp "github.com/bookingengine/booking/http"
	"github.com/bookingengine/booking/webhooks"
	"github.com/bookingengine/booking/webhooks/httpapi"
	"github.com/bookingengine/booking/webhooks/webhookstest"
)

// webhookFixture is the server with the webhook endpoints on a memory
// store, a dispatcher, and tokens of every role of tenant A.
type webhookFixture struct {
	*fixture
	svc    *webhooks.Service
	store  *webhooks.MemoryStore
	events eventstore.Store
	tokens map[string]string
}

func mustWebhookFixture(t *testing.T) *webhookFixture {
	t.Helper()
	f := MustFixture(t)
	st := webhooks.NewMemoryStore()
	es := memory.New()
	t.Cleanup(es.Close)
	d := webhookstest.StartDispatcher(t, st, webhooks.DispatcherConfig{})
	svc, err := webhooks.NewService(webhooks.ServiceConfig{
		Store: st, Events: es, URLPolicy: webhooks.URLPolicy{LoopbackSchemes: []string{"http"}}, Notify: d.Wake,
	})
	require.NoError(t, err)
	bhttp.RegisterWebhooks(f.srv, httpapi.New(svc))
	wf := &webhookFixture{fixture: f, svc: svc, store: st, events: es, tokens: map[string]string{}}
	for _, role := range []string{bhttp.RoleAdmin, bhttp.RoleManager, bhttp.RoleProfessional, bhttp.RoleClient} {
		wf.tokens[role] = f.token(t, role+"-1", role, tenantA, bhttp.AllScopes()...)
	}
	wf.tokens[bhttp.RolePlatformAdmin] = f.token(t, "platform-1", bhttp.RolePlatformAdmin, uuid.Nil, bhttp.AllScopes()...)
	wf.tokens["admin-b"] = f.token(t, "admin-b", bhttp.RoleAdmin, tenantB, bhttp.AllScopes()...)
	wf.tokens["admin-noscope"] = f.token(t, "admin-2", bhttp.RoleAdmin, tenantA, bhttp.ScopeBookingsRead)
	return wf
}

// call sends method path as role in tenant (tenant A unless role is
// admin-b).
func (f *webhookFixture) call(method, path, role, body string, opts ...reqOpt) *httptest.ResponseRecorder {
	tenant := tenantA
	if role == "admin-b" {
		tenant = tenantB
	}
	opts = append([]reqOpt{bearer(f.tokens[role]), header(bhttp.HeaderTenantID, tenant.String())}, opts...)
	return f.do(newReq(method, path, body, opts...))
}

func decodeBody[T any](t *testing.T, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &v), w.Body.String())
	return v
}

func TestWebhooksAPI(t *testing.T) {
	t.Parallel()
	f := mustWebhookFixture(t)
	got := make(chan *http.Request, 10)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(receiver.Close)

	// Create: 201, the secret shown once, ETag, Location.
	w := f.call(http.MethodPost, "/webhooks", bhttp.RoleAdmin,
		`{"url": "`+receiver.URL+`/in", "event_types": ["booking.*"], "description": "CRM"}`)
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	created := decodeBody[bhttp.Webhook](t, w)
	require.True(t, strings.HasPrefix(created.Secret, "whsec_"))
	require.True(t, created.Enabled)
	require.Equal(t, []string{"booking.*"}, created.EventTypes)
	require.Equal(t, tenantA, created.TenantID)
	require.Equal(t, "admin-1", created.CreatedBy)
	require.Equal(t, `"1"`, w.Header().Get("ETag"))
	require.Equal(t, "/webhooks/"+created.ID.String(), w.Header().Get("Location"))

	w = f.call(http.MethodGet, "/webhooks/"+created.ID.String(), bhttp.RoleAdmin, "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.NotContains(t, w.Body.String(), "whsec_", "the secret is shown only on creation")
	require.NotContains(t, w.Body.String(), created.Secret)

	// A platform admin may manage any tenant's webhooks.
	w = f.call(http.MethodPost, "/webhooks", bhttp.RolePlatformAdmin, `{"url": "https://crm.example.com/hooks"}`)
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	second := decodeBody[bhttp.Webhook](t, w)
	require.Equal(t, []string{"*"}, second.EventTypes)

	// Other roles and scopes: 403; another tenant: 404.
	for _, role := range []string{bhttp.RoleManager, bhttp.RoleProfessional, bhttp.RoleClient, "admin-noscope"} {
		for _, c := range []struct{ method, path, body string }{
			{http.MethodPost, "/webhooks", `{"url": "https://x.example.com"}`},
			{http.MethodGet, "/webhooks", ""},
			{http.MethodGet, "/webhooks/" + created.ID.String(), ""},
			{http.MethodGet, "/webhooks/" + created.ID.String() + "/deliveries", ""},
			{http.MethodPost, "/webhooks/" + created.ID.String() + "/enable", ""},
			{http.MethodPost, "/webhooks/" + created.ID.String() + "/redeliver", `{"from_position": 1}`},
		} {
			mustProblem(t, f.call(c.method, c.path, role, c.body), http.StatusForbidden, bhttp.CodeForbidden)
		}
	}
	for _, c := range []struct{ method, path, body string }{
		{http.MethodGet, "/webhooks/" + created.ID.String(), ""},
		{http.MethodGet, "/webhooks/" + created.ID.String() + "/deliveries", ""},
		{http.MethodPost, "/webhooks/" + created.ID.String() + "/enable", ""},
		{http.MethodPost, "/webhooks/" + created.ID.String() + "/redeliver", `{"from_position": 1}`},
		{http.MethodGet, "/webhooks/not-a-uuid", ""},
	} {
		mustProblem(t, f.call(c.method, c.path, "admin-b", c.body), http.StatusNotFound, bhttp.CodeNotFound)
	}
	w = f.call(http.MethodGet, "/webhooks", "admin-b", "")
	require.Equal(t, http.StatusOK, w.Code)
	require.JSONEq(t, `{"webhooks": []}`, w.Body.String())

	// Validation: every bad field at once (422); malformed input 400.
	p := mustProblem(t, f.call(http.MethodPost, "/webhooks", bhttp.RoleAdmin,
		`{"url": "http://example.com/in", "event_types": ["booking.exploded", "booking.*"], "secret": "nope"}`),
		http.StatusUnprocessableEntity, bhttp.CodeValidationFailed)
	var fields []string
	for _, e := range p.Errors {
		fields = append(fields, e.Field)
	}
	require.ElementsMatch(t, []string{"url", "event_types[0]", "secret"}, fields)
	mustProblem(t, f.call(http.MethodPost, "/webhooks", bhttp.RoleAdmin, `{"url": "https://x.example.com", "colour": "red"}`),
		http.StatusBadRequest, bhttp.CodeValidationFailed)
	mustProblem(t, f.call(http.MethodGet, "/webhooks?limit=501", bhttp.RoleAdmin, ""), http.StatusBadRequest, bhttp.CodeValidationFailed)
	mustProblem(t, f.call(http.MethodGet, "/webhooks?limit=x", bhttp.RoleAdmin, ""), http.StatusBadRequest, bhttp.CodeValidationFailed)
	mustProblem(t, f.call(http.MethodGet, "/webhooks?cursor=zzz", bhttp.RoleAdmin, ""), http.StatusUnprocessableEntity, bhttp.CodeValidationFailed)
	mustProblem(t, f.call(http.MethodPost, "/webhooks/"+created.ID.String()+"/redeliver", bhttp.RoleAdmin, `{}`),
		http.StatusUnprocessableEntity, bhttp.CodeValidationFailed)

	// List, one per page.
	w = f.call(http.MethodGet, "/webhooks?limit=1", bhttp.RoleAdmin, "")
	require.Equal(t, http.StatusOK, w.Code)
	page := decodeBody[bhttp.WebhookPage](t, w)
	require.Len(t, page.Webhooks, 1)
	require.Equal(t, created.ID, page.Webhooks[0].ID)
	require.Empty(t, page.Webhooks[0].Secret)
	require.NotEmpty(t, page.NextCursor)
	w = f.call(http.MethodGet, "/webhooks?limit=1&cursor="+page.NextCursor, bhttp.RoleAdmin, "")
	page = decodeBody[bhttp.WebhookPage](t, w)
	require.Len(t, page.Webhooks, 1)
	require.Equal(t, second.ID, page.Webhooks[0].ID)
	require.Empty(t, page.NextCursor)

	// A delivery, listed with its attempt.
	e := webhookstest.Event(tenantA, "booking.created", "booking-"+uuid.NewString(), 5, 1)
	require.NoError(t, f.svc.Handle(context.Background(), e))
	select {
	case r := <-got:
		require.Equal(t, e.ID.String(), r.Header.Get("webhook-id"))
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery")
	}
	var dpage bhttp.WebhookDeliveryPage
	webhookstest.Eventually(t, 10*time.Second, func() bool {
		w = f.call(http.MethodGet, "/webhooks/"+created.ID.String()+"/deliveries", bhttp.RoleAdmin, "")
		dpage = decodeBody[bhttp.WebhookDeliveryPage](t, w)
		return len(dpage.Deliveries) == 1 && dpage.Deliveries[0].Status == "succeeded"
	}, "delivery succeeded: %s", w.Body.String())
	dl := dpage.Deliveries[0]
	require.Equal(t, e.ID, dl.EventID)
	require.Equal(t, created.ID, dl.WebhookID)
	require.Equal(t, "booking.created", dl.EventType)
	require.EqualValues(t, 5, dl.Sequence)
	require.Nil(t, dl.NextAttemptAt)
	require.Len(t, dl.Attempts, 1)
	require.Equal(t, http.StatusNoContent, dl.Attempts[0].StatusCode)
	require.Empty(t, dl.Attempts[0].Error)

	// Enable honours If-Match and is a no-op on an enabled webhook.
	mustProblem(t, f.call(http.MethodPost, "/webhooks/"+created.ID.String()+"/enable", bhttp.RoleAdmin, "", header("If-Match", `"7"`)),
		http.StatusPreconditionFailed, bhttp.CodeVersionMismatch)
	w = f.call(http.MethodPost, "/webhooks/"+created.ID.String()+"/enable", bhttp.RoleAdmin, "", header("If-Match", `"1"`))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.True(t, decodeBody[bhttp.Webhook](t, w).Enabled)

	// Redeliver from a position of the event store.
	var last int64
	for range 3 {
		res, err := f.events.Append(context.Background(), eventstore.StreamAppend{
			StreamID: "booking-" + uuid.NewString(), TenantID: tenantA, Expected: eventstore.NoStream,
			Events: []eventstore.EventData{{ID: uuid.New(), Type: "booking.created", Version: 1, Data: json.RawMessage(`{}`)}},
		})
		require.NoError(t, err)
		last = res.LastPosition
	}
	w = f.call(http.MethodPost, "/webhooks/"+created.ID.String()+"/redeliver", bhttp.RoleAdmin, `{"from_position": `+jsonInt(last-1)+`}`)
	require.Equal(t, http.StatusAccepted, w.Code, w.Body.String())
	res := decodeBody[bhttp.WebhookRedeliveryResult](t, w)
	require.Equal(t, 2, res.Enqueued)
	for range 2 {
		select {
		case <-got:
		case <-time.After(10 * time.Second):
			t.Fatal("redelivery not sent")
		}
	}
}

func jsonInt(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
