package webhooks_test

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/webhooks"
)

// The Standard Webhooks specification's published test vector.
const (
	vectorSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTimestamp = 1614265330
	vectorBody      = `{"test": 2432232314}`
	vectorSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignMatchesTheSpecTestVector(t *testing.T) {
	t.Parallel()
	sig, err := webhooks.Sign(vectorSecret, vectorID, time.Unix(vectorTimestamp, 0), []byte(vectorBody))
	require.NoError(t, err)
	require.Equal(t, vectorSignature, sig)

	// And the reference library agrees, for a generated secret too.
	secret, err := webhooks.GenerateSecret()
	require.NoError(t, err)
	at := time.Now()
	body := []byte(`{"specversion":"1.0"}`)
	sig, err = webhooks.Sign(secret, "evt-1", at, body)
	require.NoError(t, err)
	wh, err := standardwebhooks.NewWebhook(secret)
	require.NoError(t, err)
	h := http.Header{}
	h.Set(webhooks.HeaderID, "evt-1")
	h.Set(webhooks.HeaderTimestamp, strconv.FormatInt(at.Unix(), 10))
	h.Set(webhooks.HeaderSignature, sig)
	require.NoError(t, wh.Verify(body, h))
	require.Error(t, wh.Verify([]byte(`{"specversion":"1.1"}`), h))
}

func TestSecretKeyBounds(t *testing.T) {
	t.Parallel()
	tooLong := "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 65))
	for _, bad := range []string{"", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_c2hvcnQ=", "whsec_not base64!", tooLong} {
		_, err := webhooks.SecretKey(bad)
		require.Error(t, err, "%q", bad)
	}
	key, err := webhooks.SecretKey(vectorSecret)
	require.NoError(t, err)
	require.Len(t, key, 24)
}

func TestMatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		patterns []string
		typ      string
		want     bool
	}{
		{[]string{"*"}, "user.created", true},
		{[]string{"booking.*"}, "booking.cancelled", true},
		{[]string{"booking.*"}, "bookings.cancelled", false},
		{[]string{"resource.*"}, "resource_category.created", false},
		{[]string{"booking.created"}, "booking.created", true},
		{[]string{"booking.created"}, "booking.cancelled", false},
		{[]string{"user.updated", "hold.*"}, "hold.expired", true},
		{nil, "booking.created", false},
	} {
		require.Equal(t, tc.want, webhooks.Match(tc.patterns, tc.typ), "%v %s", tc.patterns, tc.typ)
	}
}

func TestRetryPolicySchedulesWithinTheWindow(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 3, 29, 0, 30, 0, 0, time.UTC)
	p := webhooks.RetryPolicy{Jitter: -1}
	// The default schedule: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, then the
	// last try moved back to 24 h after the first, then dead.
	want := []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour}
	tries, window, at := 0, time.Time{}, start
	for i, wait := range want {
		st, n, w, next := p.Next(tries, window, at, webhooks.Failed)
		require.Equal(t, webhooks.StatusFailed, st, "try %d", i+1)
		require.Equal(t, i+1, n)
		require.Equal(t, start, w, "the window starts at the first attempt")
		require.Equal(t, at.Add(wait), next, "try %d", i+1)
		tries, window, at = n, w, next
	}
	st, n, _, next := p.Next(tries, window, at, webhooks.Failed)
	require.Equal(t, webhooks.StatusFailed, st)
	require.Equal(t, start.Add(24*time.Hour), next, "capped by 24 h since the first attempt")
	st, _, _, _ = p.Next(n, window, next, webhooks.Failed)
	require.Equal(t, webhooks.StatusDead, st)

	st, _, _, next = p.Next(3, start, start.Add(time.Hour), webhooks.Succeeded)
	require.Equal(t, webhooks.StatusSucceeded, st)
	require.Equal(t, start.Add(time.Hour), next)
	st, _, _, _ = p.Next(0, time.Time{}, start, webhooks.Gone)
	require.Equal(t, webhooks.StatusFailed, st, "410 waits for the endpoint to be enabled")

	short := webhooks.RetryPolicy{Schedule: []time.Duration{time.Second}, Jitter: -1}
	st, _, _, _ = short.Next(1, start, start.Add(time.Second), webhooks.Failed)
	require.Equal(t, webhooks.StatusDead, st, "past the schedule")

	jittered := webhooks.RetryPolicy{Schedule: []time.Duration{100 * time.Second}, Jitter: 0.2, Rand: func() float64 { return 0 }}
	_, _, _, next = jittered.Next(0, time.Time{}, start, webhooks.Failed)
	require.Equal(t, start.Add(80*time.Second), next)
	jittered.Rand = func() float64 { return 0.999999 }
	_, _, _, next = jittered.Next(0, time.Time{}, start, webhooks.Failed)
	require.InDelta(t, float64(start.Add(120*time.Second).UnixNano()), float64(next.UnixNano()), float64(time.Millisecond))
}

func TestURLPolicy(t *testing.T) {
	t.Parallel()
	s, err := webhooks.NewService(webhooks.ServiceConfig{Store: webhooks.NewMemoryStore()})
	require.NoError(t, err)
	dev, err := webhooks.NewService(webhooks.ServiceConfig{Store: webhooks.NewMemoryStore(),
		URLPolicy: webhooks.URLPolicy{LoopbackSchemes: []string{"http"}}})
	require.NoError(t, err)
	for _, tc := range []struct {
		url     string
		prod    bool
		dev     bool
		storeAs string
	}{
		{"https://hooks.example.com/in", true, true, "https://hooks.example.com/in"},
		{"HTTPS://hooks.example.com/in", true, true, "https://hooks.example.com/in"},
		{"http://hooks.example.com/in", false, false, ""},
		{"http://127.0.0.1:8080/in", false, true, "http://127.0.0.1:8080/in"},
		{"http://[::1]:8080/in", false, true, "http://[::1]:8080/in"},
		{"http://localhost/in", false, true, "http://localhost/in"},
		{"http://127.0.0.1.example.com/in", false, false, ""},
	} {
		ep, err := s.Create(t.Context(), [16]byte{1}, "a", webhooks.Input{URL: tc.url})
		require.Equal(t, tc.prod, err == nil, "production %s: %v", tc.url, err)
		if err == nil {
			require.Equal(t, tc.storeAs, ep.URL)
		}
		_, err = dev.Create(t.Context(), [16]byte{1}, "a", webhooks.Input{URL: tc.url})
		require.Equal(t, tc.dev, err == nil, "dev %s: %v", tc.url, err)
	}
}
