package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"

	bhttp "github.com/bookingengine/booking/http"
	"github.com/bookingengine/booking/stream"
	"github.com/bookingengine/booking/webhooks"
)

// mustStartWebhooksE2E is MustStartE2E with http:// webhook URLs allowed
// on loopback hosts, where the tests' receivers listen.
func mustStartWebhooksE2E(tb testing.TB) *e2eServer {
	tb.Helper()
	return mustStartE2EWith(tb, func(c *Config) { c.WebhookAllowLoopbackHTTP = true })
}

// e2eReceiver records the webhook requests it gets, each checked with the
// Standard Webhooks reference library, and answers 204.
type e2eReceiver struct {
	*httptest.Server
	mu       sync.Mutex
	secret   string
	received []e2eWebhook
}

type e2eWebhook struct {
	header   http.Header
	event    stream.Event
	verified error
}

func newE2EReceiver(tb testing.TB) *e2eReceiver {
	tb.Helper()
	rc := &e2eReceiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		got := e2eWebhook{header: r.Header.Clone()}
		wh, err := standardwebhooks.NewWebhook(rc.secret)
		if err == nil {
			err = wh.Verify(body, r.Header)
		}
		got.verified = err
		got.event, _ = stream.Decode(body)
		rc.received = append(rc.received, got)
		w.WriteHeader(http.StatusNoContent)
	}))
	tb.Cleanup(rc.Close)
	return rc
}

func (rc *e2eReceiver) setSecret(s string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.secret = s
}

func (rc *e2eReceiver) got() []e2eWebhook {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]e2eWebhook(nil), rc.received...)
}

// TestE2EWebhooks registers a webhook through the API, books and cancels,
// and expects the receiver to get booking.created then booking.cancelled,
// signed; other tenants see 404 and roles other than admin 403.
func TestE2EWebhooks(t *testing.T) {
	t.Parallel()
	srv := mustStartWebhooksE2E(t)
	f := MustE2EFixture(t, srv, "hooks", nil)
	other := MustE2EFixture(t, srv, "hooks-other", nil)
	rc := newE2EReceiver(t)

	created := f.must(t, http.StatusCreated, e2eAdmin, http.MethodPost, "/webhooks", map[string]any{
		"url": rc.URL + "/bookings", "event_types": []string{"booking.*"},
	})
	id := created.str(t, "id")
	secret := created.str(t, "secret")
	require.True(t, strings.HasPrefix(secret, "whsec_"), secret)
	require.Equal(t, true, created.Doc["enabled"])
	rc.setSecret(secret)
	shown := f.must(t, http.StatusOK, e2eAdmin, http.MethodGet, "/webhooks/"+id, nil)
	require.NotContains(t, string(shown.Body), secret)

	// Only admins (and platform admins) manage webhooks.
	for _, role := range []string{e2eManager, e2eProfessional, e2eClient} {
		requireE2EProblem(t, f.call(t, role, http.MethodPost, "/webhooks", map[string]any{"url": rc.URL}), http.StatusForbidden, bhttp.CodeForbidden)
		requireE2EProblem(t, f.call(t, role, http.MethodGet, "/webhooks", nil), http.StatusForbidden, bhttp.CodeForbidden)
		requireE2EProblem(t, f.call(t, role, http.MethodGet, "/webhooks/"+id+"/deliveries", nil), http.StatusForbidden, bhttp.CodeForbidden)
	}
	f.must(t, http.StatusOK, e2ePlatform, http.MethodGet, "/webhooks/"+id, nil)
	// Another tenant's webhook does not exist for its admin.
	requireE2EProblem(t, other.call(t, e2eAdmin, http.MethodGet, "/webhooks/"+id, nil), http.StatusNotFound, bhttp.CodeNotFound)
	requireE2EProblem(t, other.call(t, e2eAdmin, http.MethodGet, "/webhooks/"+id+"/deliveries", nil), http.StatusNotFound, bhttp.CodeNotFound)
	requireE2EProblem(t, other.call(t, e2eAdmin, http.MethodPost, "/webhooks/"+id+"/enable", nil), http.StatusNotFound, bhttp.CodeNotFound)
	require.Empty(t, other.must(t, http.StatusOK, e2eAdmin, http.MethodGet, "/webhooks", nil).Doc["webhooks"])

	booking := f.book(t, e2eAdmin, f.Space, f.Users[e2eClient], f.nextSlot())
	f.must(t, http.StatusOK, e2eClient, http.MethodPost, "/bookings/"+booking+"/cancel", map[string]any{"reason": "sick"})
	// The other tenant's booking reaches no webhook of this tenant.
	other.book(t, e2eAdmin, other.Space, other.Users[e2eClient], other.nextSlot())

	deadline := time.Now().Add(30 * time.Second)
	for len(rc.got()) < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // nothing more should come
	got := rc.got()
	require.Len(t, got, 2, "booking.created and booking.cancelled only")
	for i, want := range []string{"booking.created", "booking.cancelled"} {
		w := got[i]
		require.NoError(t, w.verified, "signature of %s", want)
		require.Equal(t, want, w.event.Type)
		require.Equal(t, "booking-"+booking, w.event.StreamID)
		require.EqualValues(t, i+1, w.event.StreamVersion)
		require.Equal(t, f.TenantID, w.event.TenantID.String())
		require.Equal(t, w.event.ID.String(), w.header.Get("webhook-id"))
	}

	// The deliveries, newest first, each with its one successful attempt.
	var list e2eReply
	deadline = time.Now().Add(10 * time.Second)
	for {
		list = f.must(t, http.StatusOK, e2eAdmin, http.MethodGet, "/webhooks/"+id+"/deliveries", nil)
		ds, _ := list.Doc["deliveries"].([]any)
		done := len(ds) == 2
		for _, d := range ds {
			done = done && d.(map[string]any)["status"] == "succeeded"
		}
		if done || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	ds := list.Doc["deliveries"].([]any)
	require.Len(t, ds, 2, "%s", list)
	for i, want := range []string{"booking.cancelled", "booking.created"} {
		d := ds[i].(map[string]any)
		require.Equal(t, want, d["event_type"])
		require.Equal(t, "succeeded", d["status"])
		attempts := d["attempts"].([]any)
		require.Len(t, attempts, 1)
		require.EqualValues(t, http.StatusNoContent, attempts[0].(map[string]any)["status_code"])
	}

	// Each attempt is counted by outcome, with its duration.
	metrics := string(srv.must(t, http.StatusOK, e2eCall{method: http.MethodGet, path: "/metrics"}).Body)
	require.Contains(t, metrics, `booking_webhook_deliveries_total{outcome="succeeded"} 2`+"\n")
	require.Contains(t, metrics, `booking_webhook_delivery_duration_seconds_count{outcome="succeeded"} 2`+"\n")

	// Enabling an enabled webhook and asking for a redelivery answer as
	// the document says (the exchanges are checked like every other).
	require.Equal(t, true, f.must(t, http.StatusOK, e2eAdmin, http.MethodPost, "/webhooks/"+id+"/enable", nil).Doc["enabled"])
	f.must(t, http.StatusAccepted, e2eAdmin, http.MethodPost, "/webhooks/"+id+"/redeliver", map[string]any{"from_position": 1})
}

func TestWebhookConfig(t *testing.T) {
	t.Parallel()
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	c, err := ConfigFromArgs(nil, env(nil))
	require.NoError(t, err)
	require.False(t, c.WebhookAllowLoopbackHTTP, "https only by default")
	c, err = ConfigFromArgs(nil, env(map[string]string{"WEBHOOK_ALLOW_LOOPBACK_HTTP": "1"}))
	require.NoError(t, err)
	require.True(t, c.WebhookAllowLoopbackHTTP)
	c, err = ConfigFromArgs([]string{"--webhook-allow-loopback-http=false"}, env(map[string]string{"WEBHOOK_ALLOW_LOOPBACK_HTTP": "true"}))
	require.NoError(t, err)
	require.False(t, c.WebhookAllowLoopbackHTTP, "the flag wins")
	_, err = ConfigFromArgs(nil, env(map[string]string{"WEBHOOK_ALLOW_LOOPBACK_HTTP": "maybe"}))
	require.ErrorContains(t, err, "WEBHOOK_ALLOW_LOOPBACK_HTTP")

	require.Equal(t, webhooks.DefaultRetention, c.WebhookRetention, "30 days by default")
	c, err = ConfigFromArgs(nil, env(map[string]string{"WEBHOOK_RETENTION": "168h"}))
	require.NoError(t, err)
	require.Equal(t, 7*24*time.Hour, c.WebhookRetention)
	c, err = ConfigFromArgs([]string{"--webhook-retention=-1s"}, env(map[string]string{"WEBHOOK_RETENTION": "168h"}))
	require.NoError(t, err)
	require.Negative(t, c.WebhookRetention, "the flag wins; negative keeps everything")
	_, err = ConfigFromArgs(nil, env(map[string]string{"WEBHOOK_RETENTION": "a week"}))
	require.ErrorContains(t, err, "WEBHOOK_RETENTION")
}

func TestCalendarUIDDomainConfig(t *testing.T) {
	t.Parallel()
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	c, err := ConfigFromArgs(nil, env(nil))
	require.NoError(t, err)
	require.Empty(t, c.CalendarUIDDomain, "the read side's default")
	c, err = ConfigFromArgs(nil, env(map[string]string{"CALENDAR_UID_DOMAIN": "bookings.example.com"}))
	require.NoError(t, err)
	require.Equal(t, "bookings.example.com", c.CalendarUIDDomain)
	c, err = ConfigFromArgs([]string{"--calendar-uid-domain=cal.example.org"}, env(map[string]string{"CALENDAR_UID_DOMAIN": "bookings.example.com"}))
	require.NoError(t, err)
	require.Equal(t, "cal.example.org", c.CalendarUIDDomain)
	for _, bad := range []string{"user@example.com", "example.com/x", "exa mple.com", ".example.com", "example.com.", "https://example.com"} {
		_, err = ConfigFromArgs(nil, env(map[string]string{"CALENDAR_UID_DOMAIN": bad}))
		require.ErrorContains(t, err, "calendar UID domain", bad)
	}
}
