// Package webhookstest is the contract suite of webhooks.Store: one set of
// tests that every implementation (MemoryStore, PostgresStore) passes,
// covering the store on its own and the Service and Dispatcher on top of
// it, against a real HTTP receiver (httptest) that verifies signatures
// with the Standard Webhooks reference library.
package webhookstest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/eventstore"
	"github.com/bookingengine/booking/stream"
	"github.com/bookingengine/booking/webhooks"
)

// Harness is what one test gets: an empty Store and an event store for
// Redeliver to read (on PostgreSQL, the same database).
type Harness struct {
	Store  webhooks.Store
	Events eventstore.Store
	// Other is a second Store on the same data, as another process would
	// open it (PostgreSQL: another pool); nil means Store itself.
	Other webhooks.Store
}

// Run runs the whole suite; newHarness returns a fresh, empty harness for
// each test (they run in parallel).
func Run(t *testing.T, newHarness func(t *testing.T) Harness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"EndpointsAreValidatedAndTenantScoped", testEndpoints},
		{"EnqueueMatchesEventTypesOnce", testEnqueue},
		{"ClaimLeasesTheHeadOfEachStream", testClaim},
		{"FailedHeadHoldsItsStreamDeadOneReleasesIt", testHeadOfLine},
		{"GoneDisablesAndEnableResumes", testStoreEnable},
		{"FailuresForTheWindowDisable", testFailureWindow},
		{"DeliveriesNewestFirstWithAttempts", testDeliveries},
		{"SignatureVerifiesWithStandardWebhooks", testSignature},
		{"ServerErrorIsRetriedUntilSuccess", testRetry},
		{"GoneDisablesAtOnce", testGone},
		{"RunOfFailuresDisablesEnableResumes", testRunOfFailures},
		{"RetriesRunOutThenTheStreamGoesOn", testDead},
		{"RedeliverFromPositionResends", testRedeliver},
		{"OrderPerStreamWithFlakyReceiver", testOrder},
		{"TwoDispatchersNeverSendTwice", testTwoDispatchers},
		{"PruneDeletesOnlyOldFinishedDeliveries", testPrune},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newHarness(t))
		})
	}
}

var (
	tenantA = uuid.MustParse("aaaaaaaa-0000-4000-8000-000000000001")
	tenantB = uuid.MustParse("bbbbbbbb-0000-4000-8000-000000000002")
	ctx     = context.Background()
)

// loopback accepts the http:// URLs of httptest servers.
var loopback = webhooks.URLPolicy{LoopbackSchemes: []string{"http"}}

// now is a fixed time at the store's precision; store-level tests pass
// it explicitly instead of reading a clock.
var now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// MustService returns a Service on h with loopback http allowed.
func MustService(tb testing.TB, h Harness, notify func()) *webhooks.Service {
	tb.Helper()
	s, err := webhooks.NewService(webhooks.ServiceConfig{Store: h.Store, Events: h.Events, URLPolicy: loopback, Notify: notify})
	require.NoError(tb, err)
	return s
}

// MustEndpoint creates an endpoint of tenant for url and patterns.
func MustEndpoint(tb testing.TB, s *webhooks.Service, tenant uuid.UUID, url string, patterns ...string) webhooks.Endpoint {
	tb.Helper()
	ep, err := s.Create(ctx, tenant, "admin-1", webhooks.Input{URL: url, EventTypes: patterns})
	require.NoError(tb, err)
	return ep
}

// Event returns a published event of tenant on subject at stream version
// v, with global position seq.
func Event(tenant uuid.UUID, typ, subject string, seq, v int64) stream.Event {
	return stream.Event{
		ID: uuid.New(), Source: stream.Source("", tenant), Type: typ, StreamID: subject,
		Time: now, TenantID: tenant, EventVersion: 1, Sequence: seq, StreamVersion: v,
		Data: json.RawMessage(fmt.Sprintf(`{"subject":%q,"v":%d}`, subject, v)),
	}
}

func bookingSubject() string { return "booking-" + uuid.NewString() }

func requireCode(tb testing.TB, err error, code string) {
	tb.Helper()
	require.Error(tb, err)
	c, ok := err.(interface{ Code() string })
	require.True(tb, ok, "%v has no code", err)
	require.Equal(tb, code, c.Code())
}

func testEndpoints(t *testing.T, h Harness) {
	s := MustService(t, h, nil)
	a1 := MustEndpoint(t, s, tenantA, "https://a.example.com/hooks", "booking.*")
	require.True(t, a1.Enabled)
	require.EqualValues(t, 1, a1.Version)
	key, err := webhooks.SecretKey(a1.Secret)
	require.NoError(t, err, "generated secret %q", a1.Secret)
	require.Len(t, key, 32)
	a2 := MustEndpoint(t, s, tenantA, "http://127.0.0.1:9/x")
	require.Equal(t, []string{"*"}, a2.EventTypes, "no event types means every event")
	a3, err := s.Create(ctx, tenantA, "admin-1", webhooks.Input{
		URL: "https://c.example.com", EventTypes: []string{"booking.created", " booking.created", "user.*"},
		Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", Description: " billing ",
	})
	require.NoError(t, err)
	require.Equal(t, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", a3.Secret)
	require.Equal(t, []string{"booking.created", "user.*"}, a3.EventTypes)
	require.Equal(t, "billing", a3.Description)
	b1 := MustEndpoint(t, s, tenantB, "https://b.example.com/hooks")

	// Every bad field at once.
	_, err = s.Create(ctx, tenantA, "admin-1", webhooks.Input{
		URL: "http://example.com/hooks", EventTypes: []string{"booking.create", "", "schedule.*"}, Secret: "whsec_short",
	})
	var verr *webhooks.ValidationError
	require.ErrorAs(t, err, &verr)
	fields := map[string]bool{}
	for _, f := range verr.Fields {
		fields[f.Field] = true
	}
	require.Equal(t, map[string]bool{"url": true, "event_types[0]": true, "event_types[1]": true, "event_types[2]": true, "secret": true}, fields)
	requireCode(t, err, "validation_failed")
	for _, bad := range []string{"", "ftp://example.com", "/relative", "https://user:pw@example.com", "https://", "https://example.com/#frag"} {
		_, err := s.Create(ctx, tenantA, "admin-1", webhooks.Input{URL: bad})
		require.ErrorAs(t, err, &verr, "url %q", bad)
	}

	got, err := s.Get(ctx, tenantA, a1.ID)
	require.NoError(t, err)
	require.Equal(t, a1, got)
	_, err = s.Get(ctx, tenantB, a1.ID)
	require.ErrorIs(t, err, webhooks.ErrNotFound)
	requireCode(t, err, "not_found")
	_, _, err = s.Deliveries(ctx, tenantB, a1.ID, 0, "")
	require.ErrorIs(t, err, webhooks.ErrNotFound)
	_, err = s.Enable(ctx, tenantB, a1.ID, nil, "x")
	require.ErrorIs(t, err, webhooks.ErrNotFound)
	_, err = s.Redeliver(ctx, tenantB, a1.ID, 1)
	require.ErrorIs(t, err, webhooks.ErrNotFound)

	page, next, err := s.List(ctx, tenantA, 2, "")
	require.NoError(t, err)
	require.Len(t, page, 2)
	require.NotEmpty(t, next)
	rest, last, err := s.List(ctx, tenantA, 2, next)
	require.NoError(t, err)
	require.Empty(t, last)
	ids := map[uuid.UUID]bool{}
	for _, ep := range append(page, rest...) {
		ids[ep.ID] = true
	}
	require.Equal(t, map[uuid.UUID]bool{a1.ID: true, a2.ID: true, a3.ID: true}, ids)
	onlyB, _, err := s.List(ctx, tenantB, 0, "")
	require.NoError(t, err)
	require.Len(t, onlyB, 1)
	require.Equal(t, b1.ID, onlyB[0].ID)
	_, _, err = s.List(ctx, tenantA, 0, "not-a-cursor")
	requireCode(t, err, "validation_failed")
	_, _, err = s.List(ctx, tenantA, 501, "")
	requireCode(t, err, "validation_failed")
}

func testEnqueue(t *testing.T, h Harness) {
	s := MustService(t, h, nil)
	all := MustEndpoint(t, s, tenantA, "https://all.example.com", "*")
	fam := MustEndpoint(t, s, tenantA, "https://fam.example.com", "booking.*")
	cancelled := MustEndpoint(t, s, tenantA, "https://c.example.com", "booking.cancelled")
	MustEndpoint(t, s, tenantA, "https://users.example.com", "user.created", "resource.*")
	MustEndpoint(t, s, tenantB, "https://b.example.com", "*")
	off := webhooks.Endpoint{ID: uuid.New(), TenantID: tenantA, URL: "https://off.example.com", EventTypes: []string{"*"},
		Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", Enabled: false, DisabledReason: webhooks.DisabledFailing,
		Version: 2, CreatedAt: now, UpdatedAt: now}
	require.NoError(t, h.Store.CreateEndpoint(ctx, off))

	subject := bookingSubject()
	created := Event(tenantA, "booking.created", subject, 10, 1)
	n, err := h.Store.Enqueue(ctx, webhooks.Group, created, now)
	require.NoError(t, err)
	require.Equal(t, 2, n, "the * and booking.* endpoints")
	n, err = h.Store.Enqueue(ctx, webhooks.Group, created, now)
	require.NoError(t, err)
	require.Zero(t, n, "an event is enqueued once per endpoint")
	require.NoError(t, s.Handle(ctx, created), "Handle is idempotent too")
	n, err = h.Store.Enqueue(ctx, webhooks.Group, Event(tenantA, "booking.cancelled", subject, 11, 2), now)
	require.NoError(t, err)
	require.Equal(t, 3, n)
	n, err = h.Store.Enqueue(ctx, webhooks.Group, Event(tenantA, "resource_category.created", "resource-category-"+uuid.NewString(), 12, 1), now)
	require.NoError(t, err)
	require.Equal(t, 1, n, "resource.* does not match resource_category.*")

	counts := map[uuid.UUID]int{}
	for _, ep := range []webhooks.Endpoint{all, fam, cancelled, off} {
		ds, err := h.Store.Deliveries(ctx, tenantA, ep.ID, 0, 100)
		require.NoError(t, err)
		counts[ep.ID] = len(ds)
		for _, d := range ds {
			require.Equal(t, webhooks.StatusPending, d.Status)
			require.False(t, d.Redelivery)
			require.Empty(t, d.Attempts)
		}
	}
	require.Equal(t, map[uuid.UUID]int{all.ID: 3, fam.ID: 2, cancelled.ID: 1, off.ID: 0}, counts)
}

// enqueue enqueues events and fails tb unless each reached want
// endpoints.
func enqueue(tb testing.TB, st webhooks.Store, want int, at time.Time, events ...stream.Event) {
	tb.Helper()
	for _, e := range events {
		n, err := st.Enqueue(ctx, webhooks.Group, e, at)
		require.NoError(tb, err)
		require.Equal(tb, want, n, "event %s %s", e.Type, e.StreamID)
	}
}

func claimedIDs(cs []webhooks.Claim) []uuid.UUID {
	out := make([]uuid.UUID, len(cs))
	for i, c := range cs {
		out[i] = c.EventID
	}
	return out
}

func outcome(r webhooks.Result, status webhooks.Status, code int, next time.Time) webhooks.Outcome {
	return webhooks.Outcome{
		Attempt: webhooks.Attempt{At: now, StatusCode: code, Duration: 1500 * time.Microsecond, Error: map[bool]string{true: "", false: "boom"}[r == webhooks.Succeeded]},
		Result:  r, Status: status, Tries: 1, WindowStart: now, NextAttemptAt: next,
	}
}

func testClaim(t *testing.T, h Harness) {
	s := MustService(t, h, nil)
	ep := MustEndpoint(t, s, tenantA, "https://a.example.com", "booking.*")
	s1, s2 := bookingSubject(), bookingSubject()
	e11, e12, e21 := Event(tenantA, "booking.created", s1, 1, 1), Event(tenantA, "booking.cancelled", s1, 3, 2), Event(tenantA, "booking.created", s2, 2, 1)
	enqueue(t, h.Store, 1, now, e11, e21, e12)
	later := Event(tenantA, "booking.created", bookingSubject(), 4, 1)
	enqueue(t, h.Store, 1, now.Add(time.Hour), later)

	lease := time.Minute
	cs, err := h.Store.Claim(ctx, now, lease, 10)
	require.NoError(t, err)
	require.ElementsMatch(t, []uuid.UUID{e11.ID, e21.ID}, claimedIDs(cs), "the head of each stream, only what is due")
	for _, c := range cs {
		require.Equal(t, ep.URL, c.URL)
		require.Equal(t, ep.Secret, c.Secret)
		require.NotEmpty(t, c.Token)
		body, err := stream.Decode(c.Payload)
		require.NoError(t, err)
		require.Equal(t, c.EventID, body.ID)
	}
	again, err := h.Store.Claim(ctx, now.Add(30*time.Second), lease, 10)
	require.NoError(t, err)
	require.Empty(t, again, "leased deliveries are claimed by no one else")

	// The lease expires: another dispatcher takes over, and the first
	// one's record no longer applies.
	stolen, err := h.Store.Claim(ctx, now.Add(lease), lease, 10)
	require.NoError(t, err)
	require.ElementsMatch(t, []uuid.UUID{e11.ID, e21.ID}, claimedIDs(stolen))
	old := cs[0]
	_, err = h.Store.Record(ctx, old, outcome(webhooks.Succeeded, webhooks.StatusSucceeded, 200, now), webhooks.DisablePolicy{}, now)
	require.ErrorIs(t, err, webhooks.ErrClaimLost)
	for _, c := range stolen {
		_, err := h.Store.Record(ctx, c, outcome(webhooks.Succeeded, webhooks.StatusSucceeded, 200, now), webhooks.DisablePolicy{}, now)
		require.NoError(t, err)
	}
	next, err := h.Store.Claim(ctx, now.Add(lease), lease, 10)
	require.NoError(t, err)
	require.Equal(t, []uuid.UUID{e12.ID}, claimedIDs(next), "s1's second event once its first succeeded")

	ds, err := h.Store.Deliveries(ctx, tenantA, ep.ID, 0, 10)
	require.NoError(t, err)
	for _, d := range ds {
		if d.EventID == old.EventID {
			require.Len(t, d.Attempts, 2, "the lost claim's attempt is recorded too")
			require.Equal(t, webhooks.StatusSucceeded, d.Status)
		}
	}
}

func testHeadOfLine(t *testing.T, h Harness) {
	s := MustService(t, h, nil)
	MustEndpoint(t, s, tenantA, "https://a.example.com", "*")
	s1, s2 := bookingSubject(), bookingSubject()
	e11, e12, e21 := Event(tenantA, "booking.created", s1, 1, 1), Event(tenantA, "booking.cancelled", s1, 2, 2), Event(tenantA, "booking.created", s2, 3, 1)
	enqueue(t, h.Store, 1, now, e11, e12, e21)
	cs, err := h.Store.Claim(ctx, now, time.Minute, 1)
	require.NoError(t, err)
	require.Equal(t, []uuid.UUID{e11.ID}, claimedIDs(cs), "one at most, the oldest due")
	_, err = h.Store.Record(ctx, cs[0], outcome(webhooks.Failed, webhooks.StatusFailed, 500, now.Add(time.Hour)), webhooks.DisablePolicy{}, now)
	require.NoError(t, err)
	cs, err = h.Store.Claim(ctx, now.Add(time.Minute), 2*time.Hour, 10)
	require.NoError(t, err)
	require.Equal(t, []uuid.UUID{e21.ID}, claimedIDs(cs), "s1 waits behind its failed head")

	head, err := h.Store.Claim(ctx, now.Add(time.Hour), time.Minute, 10)
	require.NoError(t, err)
	require.Equal(t, []uuid.UUID{e11.ID}, claimedIDs(head))
	o := outcome(webhooks.Failed, webhooks.StatusDead, 500, now.Add(time.Hour))
	_, err = h.Store.Record(ctx, head[0], o, webhooks.DisablePolicy{}, now.Add(time.Hour))
	require.NoError(t, err)
	cs, err = h.Store.Claim(ctx, now.Add(time.Hour), time.Minute, 10)
	require.NoError(t, err)
	require.Contains(t, claimedIDs(cs), e12.ID, "a dead delivery no longer holds its stream")
}

func testPrune(t *testing.T, h Harness) {
	s := MustService(t, h, nil)
	ep := MustEndpoint(t, s, tenantA, "https://a.example.com", "*")
	epB := MustEndpoint(t, s, tenantB, "https://b.example.com", "*")
	done, dead, open := Event(tenantA, "booking.created", bookingSubject(), 1, 1),
		Event(tenantA, "booking.created", bookingSubject(), 2, 1), Event(tenantA, "booking.created", bookingSubject(), 3, 1)
	other := Event(tenantB, "booking.created", bookingSubject(), 4, 1)
	enqueue(t, h.Store, 1, now, done, dead, open, other)
	cs, err := h.Store.Claim(ctx, now, time.Minute, 10)
	require.NoError(t, err)
	require.Len(t, cs, 4)
	for _, c := range cs {
		o := outcome(webhooks.Succeeded, webhooks.StatusSucceeded, 200, now)
		switch c.EventID {
		case dead.ID:
			o = outcome(webhooks.Failed, webhooks.StatusDead, 500, now)
		case open.ID:
			o = outcome(webhooks.Failed, webhooks.StatusFailed, 500, now.Add(time.Hour))
		}
		_, err := h.Store.Record(ctx, c, o, webhooks.DisablePolicy{}, now)
		require.NoError(t, err)
	}

	n, err := h.Store.Prune(ctx, now)
	require.NoError(t, err)
	require.Zero(t, n, "nothing finished before now")
	n, err = h.Store.Prune(ctx, now.Add(time.Second))
	require.NoError(t, err)
	require.EqualValues(t, 3, n, "the succeeded and the dead deliveries of both tenants")
	ds, err := h.Store.Deliveries(ctx, tenantA, ep.ID, 0, 10)
	require.NoError(t, err)
	require.Len(t, ds, 1)
	require.Equal(t, open.ID, ds[0].EventID, "an open delivery is never pruned")
	require.Len(t, ds[0].Attempts, 1)
	ds, err = h.Store.Deliveries(ctx, tenantB, epB.ID, 0, 10)
	require.NoError(t, err)
	require.Empty(t, ds)
	n, err = h.Store.Prune(ctx, now.Add(time.Hour))
	require.NoError(t, err)
	require.Zero(t, n, "idempotent")
	// Past the retention, an event passed again is delivered again.
	enqueue(t, h.Store, 1, now.Add(time.Hour), done)
}

func testStoreEnable(t *testing.T, h Harness) {
	s := MustService(t, h, nil)
	ep := MustEndpoint(t, s, tenantA, "https://a.example.com", "*")
	e1, e2 := Event(tenantA, "booking.created", bookingSubject(), 1, 1), Event(tenantA, "user.created", "user-"+uuid.NewString(), 2, 1)
	enqueue(t, h.Store, 1, now, e1, e2)
	cs, err := h.Store.Claim(ctx, now, time.Minute, 1)
	require.NoError(t, err)
	require.Len(t, cs, 1)
	disabled, err := h.Store.Record(ctx, cs[0], outcome(webhooks.Gone, webhooks.StatusFailed, 410, now), webhooks.DisablePolicy{}, now)
	require.NoError(t, err)
	require.True(t, disabled)
	got, err := h.Store.Endpoint(ctx, tenantA, ep.ID)
	require.NoError(t, err)
	require.False(t, got.Enabled)
	require.Equal(t, webhooks.DisabledGone, got.DisabledReason)
	require.Equal(t, now, got.DisabledAt)
	require.EqualValues(t, 2, got.Version)
	none, err := h.Store.Claim(ctx, now.Add(time.Hour), time.Minute, 10)
	require.NoError(t, err)
	require.Empty(t, none, "nothing is sent to a disabled endpoint")
	n, err := h.Store.Enqueue(ctx, webhooks.Group, Event(tenantA, "booking.created", bookingSubject(), 3, 1), now)
	require.NoError(t, err)
	require.Zero(t, n, "a disabled endpoint gets no new deliveries")

	stale := int64(1)
	_, err = h.Store.EnableEndpoint(ctx, tenantA, ep.ID, &stale, "admin-2", now.Add(2*time.Hour))
	require.ErrorIs(t, err, webhooks.ErrVersionMismatch)
	_, err = h.Store.EnableEndpoint(ctx, tenantB, ep.ID, nil, "admin-2", now.Add(2*time.Hour))
	require.ErrorIs(t, err, webhooks.ErrNotFound)
	current := int64(2)
	at := now.Add(2 * time.Hour)
	en, err := h.Store.EnableEndpoint(ctx, tenantA, ep.ID, &current, "admin-2", at)
	require.NoError(t, err)
	require.True(t, en.Enabled)
	require.Empty(t, en.DisabledReason)
	require.Zero(t, en.ConsecutiveFailures)
	require.EqualValues(t, 3, en.Version)
	require.Equal(t, "admin-2", en.UpdatedBy)
	again, err := h.Store.EnableEndpoint(ctx, tenantA, ep.ID, nil, "admin-3", at.Add(time.Minute))
	require.NoError(t, err)
	require.Equal(t, en, again, "enabling an enabled endpoint changes nothing")

	resumed, err := h.Store.Claim(ctx, at, time.Minute, 10)
	require.NoError(t, err)
	require.ElementsMatch(t, []uuid.UUID{e1.ID, e2.ID}, claimedIDs(resumed))
	for _, c := range resumed {
		require.Zero(t, c.Tries, "a fresh retry window")
		require.True(t, c.WindowStart.IsZero())
		require.Equal(t, at, c.NextAttemptAt)
	}
}

func testFailureWindow(t *testing.T, h Harness) {
	s := MustService(t, h, nil)
	ep := MustEndpoint(t, s, tenantA, "https://a.example.com", "*")
	enqueue(t, h.Store, 1, now, Event(tenantA, "booking.created", bookingSubject(), 1, 1), Event(tenantA, "booking.created", bookingSubject(), 2, 1))
	policy := webhooks.DisablePolicy{MaxConsecutiveFailures: 100, FailureWindow: 24 * time.Hour}
	cs, err := h.Store.Claim(ctx, now, time.Minute, 2)
	require.NoError(t, err)
	require.Len(t, cs, 2)
	disabled, err := h.Store.Record(ctx, cs[0], outcome(webhooks.Failed, webhooks.StatusFailed, 500, now), policy, now)
	require.NoError(t, err)
	require.False(t, disabled)
	got, err := h.Store.Endpoint(ctx, tenantA, ep.ID)
	require.NoError(t, err)
	require.Equal(t, 1, got.ConsecutiveFailures)
	require.Equal(t, now, got.FailingSince)
	late := now.Add(24 * time.Hour)
	disabled, err = h.Store.Record(ctx, cs[1], outcome(webhooks.Failed, webhooks.StatusFailed, 500, late), policy, late)
	require.NoError(t, err)
	require.True(t, disabled, "failing for the whole window")
	got, err = h.Store.Endpoint(ctx, tenantA, ep.ID)
	require.NoError(t, err)
	require.False(t, got.Enabled)
	require.Equal(t, webhooks.DisabledFailing, got.DisabledReason)
}

func testDeliveries(t *testing.T, h Harness) {
	s := MustService(t, h, nil)
	ep := MustEndpoint(t, s, tenantA, "https://a.example.com", "*")
	var events []stream.Event
	for i := range 5 {
		events = append(events, Event(tenantA, "booking.created", bookingSubject(), int64(i+1), 1))
	}
	enqueue(t, h.Store, 1, now, events...)
	cs, err := h.Store.Claim(ctx, now, time.Minute, 1)
	require.NoError(t, err)
	o := outcome(webhooks.Failed, webhooks.StatusFailed, 503, now.Add(time.Minute))
	_, err = h.Store.Record(ctx, cs[0], o, webhooks.DisablePolicy{}, now)
	require.NoError(t, err)

	page, next, err := s.Deliveries(ctx, tenantA, ep.ID, 3, "")
	require.NoError(t, err)
	require.Len(t, page, 3)
	require.NotEmpty(t, next)
	rest, last, err := s.Deliveries(ctx, tenantA, ep.ID, 3, next)
	require.NoError(t, err)
	require.Len(t, rest, 2)
	require.Empty(t, last)
	all := append(page, rest...)
	for i := range all {
		require.Equal(t, events[len(events)-1-i].ID, all[i].EventID, "newest first")
		require.Equal(t, "booking.created", all[i].EventType)
		require.Equal(t, events[len(events)-1-i].Sequence, all[i].Sequence)
		require.Nil(t, all[i].Payload)
	}
	first := all[len(all)-1]
	require.Equal(t, webhooks.StatusFailed, first.Status)
	require.Equal(t, now.Add(time.Minute), first.NextAttemptAt)
	require.Equal(t, []webhooks.Attempt{o.Attempt}, first.Attempts)
	_, _, err = s.Deliveries(ctx, tenantA, ep.ID, 0, "bad")
	requireCode(t, err, "validation_failed")
}

// Receiver is an HTTP server that verifies every request's signature with
// the Standard Webhooks library and answers what Answer decides.
type Receiver struct {
	*httptest.Server
	// Answer returns the status for a request (verified or not) of the
	// event; nil answers 200.
	Answer func(r Request) int

	mu       sync.Mutex
	secret   string
	requests []Request
}

// Request is one request a Receiver got.
type Request struct {
	Header http.Header
	Body   []byte
	Event  stream.Event
	// Verified is true when the signature verified.
	Verified bool
	// Status is what the receiver answered.
	Status int
}

// NewReceiver starts a Receiver, closed when tb ends. Set its secret
// with SetSecret once the endpoint exists.
func NewReceiver(tb testing.TB, answer func(r Request) int) *Receiver {
	tb.Helper()
	rc := &Receiver{Answer: answer}
	rc.Server = httptest.NewServer(http.HandlerFunc(rc.serve))
	tb.Cleanup(rc.Close)
	return rc
}

// SetSecret sets the secret signatures are verified with.
func (rc *Receiver) SetSecret(s string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.secret = s
}

func (rc *Receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req := Request{Header: r.Header.Clone(), Body: body}
	req.Event, _ = stream.Decode(body)
	rc.mu.Lock()
	secret := rc.secret
	rc.mu.Unlock()
	if wh, err := standardwebhooks.NewWebhook(secret); err == nil {
		req.Verified = wh.Verify(body, r.Header) == nil
	}
	req.Status = http.StatusOK
	if rc.Answer != nil {
		req.Status = rc.Answer(req)
	}
	rc.mu.Lock()
	rc.requests = append(rc.requests, req)
	rc.mu.Unlock()
	w.WriteHeader(req.Status)
	_, _ = io.WriteString(w, http.StatusText(req.Status))
}

// Requests returns what the receiver got so far, in arrival order.
func (rc *Receiver) Requests() []Request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]Request(nil), rc.requests...)
}

// Count returns how many requests arrived.
func (rc *Receiver) Count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.requests)
}

// Eventually fails tb unless cond holds within timeout.
func Eventually(tb testing.TB, timeout time.Duration, cond func() bool, format string, args ...any) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("not within %s: "+format, append([]any{timeout}, args...)...)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fastRetry retries after 10 ms, 20 ms, ... (n entries), without jitter.
func fastRetry(n int) webhooks.RetryPolicy {
	p := webhooks.RetryPolicy{Jitter: -1}
	for i := range n {
		p.Schedule = append(p.Schedule, time.Duration(10*(i+1))*time.Millisecond)
	}
	return p
}

// StartDispatcher runs a dispatcher on st until tb ends; cfg.Store is set
// here, and zero durations get test-sized values.
func StartDispatcher(tb testing.TB, st webhooks.Store, cfg webhooks.DispatcherConfig) *webhooks.Dispatcher {
	tb.Helper()
	cfg.Store = st
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 10 * time.Millisecond
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if len(cfg.Retry.Schedule) == 0 {
		cfg.Retry = fastRetry(8)
	}
	d, err := webhooks.NewDispatcher(cfg)
	require.NoError(tb, err)
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = d.Run(runCtx)
	}()
	tb.Cleanup(func() {
		cancel()
		<-done
	})
	return d
}

func deliveriesOf(tb testing.TB, s *webhooks.Service, ep webhooks.Endpoint) []webhooks.Delivery {
	tb.Helper()
	ds, _, err := s.Deliveries(ctx, ep.TenantID, ep.ID, webhooks.MaxPageSize, "")
	require.NoError(tb, err)
	return ds
}

func testSignature(t *testing.T, h Harness) {
	rc := NewReceiver(t, nil)
	d := StartDispatcher(t, h.Store, webhooks.DispatcherConfig{})
	s := MustService(t, h, d.Wake)
	ep := MustEndpoint(t, s, tenantA, rc.URL+"/hooks?x=1", "booking.*")
	rc.SetSecret(ep.Secret)
	e := Event(tenantA, "booking.created", bookingSubject(), 42, 1)
	require.NoError(t, s.Handle(ctx, e))
	Eventually(t, 10*time.Second, func() bool { return rc.Count() == 1 }, "one request")
	req := rc.Requests()[0]
	require.True(t, req.Verified, "signature verifies with the Standard Webhooks library: %v", req.Header)
	require.Equal(t, e.ID.String(), req.Header.Get("webhook-id"))
	ts, err := strconv.ParseInt(req.Header.Get("webhook-timestamp"), 10, 64)
	require.NoError(t, err)
	require.InDelta(t, time.Now().Unix(), ts, 5)
	require.Equal(t, webhooks.ContentType, req.Header.Get("Content-Type"))
	want, err := e.Encode()
	require.NoError(t, err)
	require.JSONEq(t, string(want), string(req.Body), "the body is the event's CloudEvents envelope")
	require.Equal(t, e.ID, req.Event.ID)
	sig, err := webhooks.Sign(ep.Secret, e.ID.String(), time.Unix(ts, 0), req.Body)
	require.NoError(t, err)
	require.Equal(t, sig, req.Header.Get("webhook-signature"))

	// A wrong secret does not verify.
	other, err := webhooks.GenerateSecret()
	require.NoError(t, err)
	wh, err := standardwebhooks.NewWebhook(other)
	require.NoError(t, err)
	require.Error(t, wh.Verify(req.Body, req.Header))
	Eventually(t, 5*time.Second, func() bool { return deliveriesOf(t, s, ep)[0].Status == webhooks.StatusSucceeded }, "succeeded")
	require.EqualValues(t, 1, d.Stats().Succeeded)
}

func testRetry(t *testing.T, h Harness) {
	var mu sync.Mutex
	calls := 0
	rc := NewReceiver(t, func(Request) int {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls <= 2 {
			return http.StatusServiceUnavailable
		}
		return http.StatusNoContent
	})
	var obs Outcomes
	d := StartDispatcher(t, h.Store, webhooks.DispatcherConfig{Observe: obs.Observe})
	s := MustService(t, h, d.Wake)
	ep := MustEndpoint(t, s, tenantA, rc.URL, "booking.*")
	rc.SetSecret(ep.Secret)
	e := Event(tenantA, "booking.created", bookingSubject(), 7, 1)
	require.NoError(t, s.Handle(ctx, e))
	Eventually(t, 10*time.Second, func() bool { return deliveriesOf(t, s, ep)[0].Status == webhooks.StatusSucceeded }, "succeeded after retries")
	dl := deliveriesOf(t, s, ep)[0]
	require.Len(t, dl.Attempts, 3)
	for i, code := range []int{503, 503, 204} {
		a := dl.Attempts[i]
		require.Equal(t, code, a.StatusCode)
		require.Positive(t, a.Duration)
		require.False(t, a.At.IsZero())
		if code == 503 {
			require.Contains(t, a.Error, "503")
		} else {
			require.Empty(t, a.Error)
		}
	}
	require.Equal(t, 3, dl.Tries)
	for _, r := range rc.Requests() {
		require.True(t, r.Verified)
		require.Equal(t, e.ID.String(), r.Header.Get("webhook-id"), "webhook-id is stable across retries")
	}
	got, err := s.Get(ctx, tenantA, ep.ID)
	require.NoError(t, err)
	require.True(t, got.Enabled)
	require.Zero(t, got.ConsecutiveFailures, "a success resets the run of failures")
	st := d.Stats()
	require.EqualValues(t, 3, st.Attempts)
	require.EqualValues(t, 2, st.AttemptsFailed)
	require.EqualValues(t, 1, st.Succeeded)
	obs.RequireEventually(t, map[string]int{webhooks.OutcomeRetrying: 2, webhooks.OutcomeSucceeded: 1})
}

func testGone(t *testing.T, h Harness) {
	var mu sync.Mutex
	status := http.StatusGone
	rc := NewReceiver(t, func(Request) int {
		mu.Lock()
		defer mu.Unlock()
		return status
	})
	var obs Outcomes
	d := StartDispatcher(t, h.Store, webhooks.DispatcherConfig{Observe: obs.Observe})
	s := MustService(t, h, d.Wake)
	ep := MustEndpoint(t, s, tenantA, rc.URL, "*")
	rc.SetSecret(ep.Secret)
	subject := bookingSubject()
	e1, e2 := Event(tenantA, "booking.created", subject, 1, 1), Event(tenantA, "booking.cancelled", subject, 2, 2)
	require.NoError(t, s.Handle(ctx, e1))
	require.NoError(t, s.Handle(ctx, e2))
	Eventually(t, 10*time.Second, func() bool {
		got, err := s.Get(ctx, tenantA, ep.ID)
		return err == nil && !got.Enabled
	}, "disabled by 410")
	time.Sleep(100 * time.Millisecond)
	require.Equal(t, 1, rc.Count(), "nothing more is sent to a disabled endpoint")
	got, err := s.Get(ctx, tenantA, ep.ID)
	require.NoError(t, err)
	require.Equal(t, webhooks.DisabledGone, got.DisabledReason)
	require.EqualValues(t, 1, d.Stats().EndpointsDisabled)
	require.NoError(t, s.Handle(ctx, Event(tenantA, "booking.created", bookingSubject(), 3, 1)))
	require.Len(t, deliveriesOf(t, s, ep), 2, "no new deliveries while disabled")
	for _, dl := range deliveriesOf(t, s, ep) {
		require.True(t, dl.Status.Open(), "deliveries wait, open")
	}

	mu.Lock()
	status = http.StatusOK
	mu.Unlock()
	_, err = s.Enable(ctx, tenantA, ep.ID, nil, "admin-2")
	require.NoError(t, err)
	Eventually(t, 10*time.Second, func() bool { return rc.Count() == 3 }, "both resumed")
	reqs := rc.Requests()
	require.Equal(t, e1.ID, reqs[1].Event.ID)
	require.Equal(t, e2.ID, reqs[2].Event.ID, "in stream order")
	obs.RequireEventually(t, map[string]int{webhooks.OutcomeGone: 1, webhooks.OutcomeSucceeded: 2})
}

func testRunOfFailures(t *testing.T, h Harness) {
	var mu sync.Mutex
	status := http.StatusInternalServerError
	rc := NewReceiver(t, func(Request) int {
		mu.Lock()
		defer mu.Unlock()
		return status
	})
	d := StartDispatcher(t, h.Store, webhooks.DispatcherConfig{Disable: webhooks.DisablePolicy{MaxConsecutiveFailures: 4}})
	s := MustService(t, h, d.Wake)
	ep := MustEndpoint(t, s, tenantA, rc.URL, "*")
	rc.SetSecret(ep.Secret)
	events := []stream.Event{
		Event(tenantA, "booking.created", bookingSubject(), 1, 1),
		Event(tenantA, "user.created", "user-"+uuid.NewString(), 2, 1),
	}
	for _, e := range events {
		require.NoError(t, s.Handle(ctx, e))
	}
	Eventually(t, 10*time.Second, func() bool {
		got, err := s.Get(ctx, tenantA, ep.ID)
		return err == nil && !got.Enabled
	}, "disabled after a run of failures")
	got, err := s.Get(ctx, tenantA, ep.ID)
	require.NoError(t, err)
	require.Equal(t, webhooks.DisabledFailing, got.DisabledReason)
	require.GreaterOrEqual(t, got.ConsecutiveFailures, 4)
	// An attempt already in flight when the endpoint was disabled may
	// still land; none starts afterwards.
	time.Sleep(50 * time.Millisecond)
	sent := rc.Count()
	require.GreaterOrEqual(t, sent, 4)
	time.Sleep(100 * time.Millisecond)
	require.Equal(t, sent, rc.Count(), "no attempt after disabling")
	for _, dl := range deliveriesOf(t, s, ep) {
		require.Equal(t, webhooks.StatusFailed, dl.Status, "stays failed until enabled")
	}

	mu.Lock()
	status = http.StatusAccepted
	mu.Unlock()
	en, err := s.Enable(ctx, tenantA, ep.ID, &got.Version, "admin-2")
	require.NoError(t, err)
	require.True(t, en.Enabled)
	Eventually(t, 10*time.Second, func() bool {
		for _, dl := range deliveriesOf(t, s, ep) {
			if dl.Status != webhooks.StatusSucceeded {
				return false
			}
		}
		return true
	}, "pending deliveries resume")
}

func testDead(t *testing.T, h Harness) {
	var poison uuid.UUID
	var mu sync.Mutex
	rc := NewReceiver(t, func(r Request) int {
		mu.Lock()
		defer mu.Unlock()
		if r.Event.ID == poison {
			return http.StatusBadRequest
		}
		return http.StatusOK
	})
	var obs Outcomes
	d := StartDispatcher(t, h.Store, webhooks.DispatcherConfig{Retry: fastRetry(2), Observe: obs.Observe})
	s := MustService(t, h, d.Wake)
	ep := MustEndpoint(t, s, tenantA, rc.URL, "booking.*")
	rc.SetSecret(ep.Secret)
	subject := bookingSubject()
	e1, e2 := Event(tenantA, "booking.created", subject, 1, 1), Event(tenantA, "booking.cancelled", subject, 2, 2)
	mu.Lock()
	poison = e1.ID
	mu.Unlock()
	require.NoError(t, s.Handle(ctx, e1))
	require.NoError(t, s.Handle(ctx, e2))
	Eventually(t, 10*time.Second, func() bool { return deliveriesOf(t, s, ep)[0].Status == webhooks.StatusSucceeded }, "the next event goes on")
	ds := deliveriesOf(t, s, ep)
	require.Equal(t, webhooks.StatusDead, ds[1].Status)
	require.Len(t, ds[1].Attempts, 3, "the first attempt and the two of the schedule")
	reqs := rc.Requests()
	require.Len(t, reqs, 4)
	require.Equal(t, e2.ID, reqs[3].Event.ID, "sent only after e1 was dead")
	require.EqualValues(t, 1, d.Stats().Dead)
	obs.RequireEventually(t, map[string]int{webhooks.OutcomeRetrying: 2, webhooks.OutcomeDead: 1, webhooks.OutcomeSucceeded: 1})
}

// Outcomes counts what a dispatcher reports through
// DispatcherConfig.Observe. The zero value is ready; safe for concurrent
// use.
type Outcomes struct {
	mu sync.Mutex
	n  map[string]int
}

// Observe is a DispatcherConfig.Observe.
func (o *Outcomes) Observe(outcome string, took time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.n == nil {
		o.n = map[string]int{}
	}
	if took < 0 {
		outcome += " (negative duration)"
	}
	o.n[outcome]++
}

// RequireEventually fails the test unless the counts become want within
// 10 s (Observe runs just after the attempt is recorded, so a test that
// saw the record may look before it).
func (o *Outcomes) RequireEventually(tb testing.TB, want map[string]int) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && !maps.Equal(o.Counts(), want) {
		time.Sleep(5 * time.Millisecond)
	}
	require.Equal(tb, want, o.Counts(), "outcomes observed")
}

// Counts returns a copy of the counts by outcome.
func (o *Outcomes) Counts() map[string]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make(map[string]int, len(o.n))
	for k, v := range o.n {
		out[k] = v
	}
	return out
}

// appendEvent appends one event to the event store and returns it as
// published.
func appendEvent(tb testing.TB, es eventstore.Store, tenant uuid.UUID, streamID, typ string) stream.Event {
	tb.Helper()
	id := uuid.New()
	res, err := es.Append(ctx, eventstore.StreamAppend{StreamID: streamID, TenantID: tenant, Expected: eventstore.Any,
		Events: []eventstore.EventData{{ID: id, Type: typ, Version: 1, Data: json.RawMessage(`{"x":1}`)}}})
	require.NoError(tb, err)
	return stream.Event{ID: id, Type: typ, StreamID: streamID, TenantID: tenant, Sequence: res.LastPosition, StreamVersion: res.Versions[streamID]}
}

func testRedeliver(t *testing.T, h Harness) {
	rc := NewReceiver(t, nil)
	d := StartDispatcher(t, h.Store, webhooks.DispatcherConfig{})
	s := MustService(t, h, d.Wake)
	ep := MustEndpoint(t, s, tenantA, rc.URL, "booking.*")
	rc.SetSecret(ep.Secret)
	b1, b2 := bookingSubject(), bookingSubject()
	var evs []stream.Event
	evs = append(evs, appendEvent(t, h.Events, tenantA, b1, "booking.created"))
	evs = append(evs, appendEvent(t, h.Events, tenantA, b2, "booking.created"))
	appendEvent(t, h.Events, tenantA, "user-"+uuid.NewString(), "user.created")
	appendEvent(t, h.Events, tenantB, bookingSubject(), "booking.created")
	evs = append(evs, appendEvent(t, h.Events, tenantA, b1, "booking.cancelled"))
	evs = append(evs, appendEvent(t, h.Events, tenantA, b2, "booking.rescheduled"))
	// ReadAll withholds an event until no older transaction of the
	// server can still commit before it; wait until all are readable.
	Eventually(t, 10*time.Second, func() bool {
		recs, err := h.Events.ReadAll(ctx, eventstore.Cursor{}, eventstore.Filter{}, 100)
		return err == nil && len(recs) == 6
	}, "events readable")

	n, err := s.Redeliver(ctx, tenantA, ep.ID, evs[1].Sequence)
	require.NoError(t, err)
	require.Equal(t, 3, n, "the tenant's booking events from the position on")
	Eventually(t, 10*time.Second, func() bool { return rc.Count() == 3 }, "three sent")
	got := map[uuid.UUID]bool{}
	for _, r := range rc.Requests() {
		require.True(t, r.Verified)
		require.Equal(t, r.Event.ID.String(), r.Header.Get("webhook-id"))
		got[r.Event.ID] = true
	}
	require.Equal(t, map[uuid.UUID]bool{evs[1].ID: true, evs[2].ID: true, evs[3].ID: true}, got)
	for _, dl := range deliveriesOf(t, s, ep) {
		require.True(t, dl.Redelivery)
	}

	// Again, from the start: everything once more, with new deliveries.
	n, err = s.Redeliver(ctx, tenantA, ep.ID, 0)
	require.NoError(t, err)
	require.Equal(t, 4, n)
	Eventually(t, 10*time.Second, func() bool { return rc.Count() == 7 }, "four more sent")
	require.Len(t, deliveriesOf(t, s, ep), 7)
	_, err = s.Redeliver(ctx, tenantA, ep.ID, -1)
	requireCode(t, err, "validation_failed")
}

func testOrder(t *testing.T, h Harness) {
	const streams, perStream = 4, 25
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(1, 2))
	delivered := map[string]int64{} // subject → last version acknowledged
	var violations []string
	rc := NewReceiver(t, func(r Request) int {
		mu.Lock()
		defer mu.Unlock()
		subject, v := r.Event.StreamID, r.Event.StreamVersion
		if v > delivered[subject]+1 {
			violations = append(violations, fmt.Sprintf("%s v%d arrived while v%d was the last acknowledged", subject, v, delivered[subject]))
		}
		if rng.IntN(100) < 35 {
			return http.StatusBadGateway
		}
		delivered[subject] = max(delivered[subject], v)
		return http.StatusOK
	})
	s := MustService(t, h, nil)
	ep := MustEndpoint(t, s, tenantA, rc.URL, "booking.*")
	rc.SetSecret(ep.Secret)
	subjects := make([]string, streams)
	for i := range subjects {
		subjects[i] = bookingSubject()
	}
	seq := int64(0)
	for v := int64(1); v <= perStream; v++ {
		for _, subject := range subjects {
			seq++
			require.NoError(t, s.Handle(ctx, Event(tenantA, "booking.status_changed", subject, seq, v)))
		}
	}
	StartDispatcher(t, h.Store, webhooks.DispatcherConfig{
		Concurrency: 8, Retry: webhooks.RetryPolicy{Schedule: []time.Duration{time.Millisecond, 2 * time.Millisecond, 3 * time.Millisecond, 5 * time.Millisecond, 5 * time.Millisecond, 5 * time.Millisecond, 5 * time.Millisecond, 5 * time.Millisecond, 5 * time.Millisecond, 5 * time.Millisecond, 5 * time.Millisecond, 5 * time.Millisecond}},
		Disable: webhooks.DisablePolicy{MaxConsecutiveFailures: 1000},
	})
	Eventually(t, 60*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, subject := range subjects {
			if delivered[subject] < perStream {
				return false
			}
		}
		return true
	}, "every stream delivered")
	mu.Lock()
	defer mu.Unlock()
	require.Empty(t, violations)
	for _, r := range rc.Requests() {
		require.True(t, r.Verified)
	}
}

func testTwoDispatchers(t *testing.T, h Harness) {
	const events = 120
	var mu sync.Mutex
	inFlight := map[uuid.UUID]bool{}
	got := map[uuid.UUID]int{}
	var overlaps int
	rc := NewReceiver(t, func(r Request) int {
		mu.Lock()
		if inFlight[r.Event.ID] {
			overlaps++
		}
		inFlight[r.Event.ID] = true
		got[r.Event.ID]++
		mu.Unlock()
		time.Sleep(2 * time.Millisecond)
		mu.Lock()
		delete(inFlight, r.Event.ID)
		mu.Unlock()
		return http.StatusOK
	})
	s := MustService(t, h, nil)
	ep := MustEndpoint(t, s, tenantA, rc.URL, "*")
	rc.SetSecret(ep.Secret)
	want := map[uuid.UUID]int{}
	for i := range events {
		e := Event(tenantA, "booking.created", bookingSubject(), int64(i+1), 1)
		want[e.ID] = 1
		require.NoError(t, s.Handle(ctx, e))
	}
	d1 := StartDispatcher(t, h.Store, webhooks.DispatcherConfig{Concurrency: 4, PollInterval: time.Millisecond})
	other := h.Other
	if other == nil {
		other = h.Store
	}
	d2 := StartDispatcher(t, other, webhooks.DispatcherConfig{Concurrency: 4, PollInterval: time.Millisecond})
	Eventually(t, 60*time.Second, func() bool { return d1.Stats().Succeeded+d2.Stats().Succeeded == events }, "all sent")
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	require.Zero(t, overlaps)
	require.Equal(t, want, got, "each delivery sent exactly once")
	require.Positive(t, d1.Stats().Attempts, "both dispatchers worked")
	require.Positive(t, d2.Stats().Attempts, "both dispatchers worked")
}
