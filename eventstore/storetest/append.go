package storetest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/eventstore"
)

// recordedAtSlack tolerates a store whose clock (the database server's) is
// not the test process's.
const recordedAtSlack = time.Minute

func testRoundTrip(t *testing.T, h Harness) {
	s := h.New(t)
	tenant := uuid.New()
	stream := streamOf("booking")
	meta := eventstore.Metadata{
		CorrelationID:  uuid.NewString(),
		CausationID:    uuid.NewString(),
		Actor:          uuid.NewString(),
		ActorRole:      "admin",
		IdempotencyKey: "key-1",
		RequestID:      "req-1",
	}
	in := []eventstore.EventData{
		{
			ID: uuid.New(), Type: "booking.created", Version: 1,
			// Odd spacing, key order and non-ASCII text: a store may
			// normalise the bytes but must keep the JSON value.
			Data:     json.RawMessage(`{ "title" : "Limpeza",  "seats":2, "nested": {"b": [1, 2.5, null], "a": "Clínica"}, "ok": true }`),
			Metadata: meta,
		},
		{
			ID: uuid.New(), Type: "booking.status_changed", Version: 2,
			Data:     json.RawMessage(`{"status":"confirmed"}`),
			Metadata: eventstore.Metadata{CorrelationID: meta.CorrelationID, Actor: "system"},
		},
	}

	before := time.Now()
	res := mustAppend(t, s, appendTo(stream, tenant, eventstore.NoStream, in...))
	after := time.Now()

	require.Equal(t, map[string]int64{stream: 2}, res.Versions)
	require.Positive(t, res.LastPosition)

	loaded := mustLoad(t, s, stream)
	require.Len(t, loaded, len(in))
	require.Equal(t, res.LastPosition, loaded[1].Position, "LastPosition is the position of the append's last event")
	require.Greater(t, loaded[1].Position, loaded[0].Position)

	for i, e := range loaded {
		want := in[i]
		require.Equal(t, want.ID, e.ID)
		require.Equal(t, want.Type, e.Type)
		require.Equal(t, want.Version, e.EventVersion)
		require.JSONEq(t, string(want.Data), string(e.Data))
		require.Equal(t, want.Metadata, e.Metadata)
		require.Equal(t, tenant, e.TenantID)
		require.Equal(t, stream, e.StreamID)
		require.Equal(t, "booking", e.Category)
		require.Equal(t, int64(i+1), e.StreamVersion)
		require.Positive(t, e.Position)
		require.NotZero(t, e.TransactionID)
		require.Len(t, e.Hash, 32, "hash is a SHA-256 digest")
		require.Equal(t, time.UTC, e.RecordedAt.Location(), "RecordedAt is in UTC")
		require.Zero(t, e.RecordedAt.Nanosecond()%1000, "RecordedAt has microsecond precision")
		require.WithinRange(t, e.RecordedAt, before.Add(-recordedAtSlack), after.Add(recordedAtSlack))
	}
	require.NotEqual(t, loaded[0].Hash, loaded[1].Hash, "each event has its own hash")

	// ReadAll returns the same events with the same fields.
	all := awaitVisible(t, s, len(in))
	require.Len(t, all, len(loaded))
	for i := range all {
		got, want := all[i], loaded[i]
		require.JSONEq(t, string(want.Data), string(got.Data))
		got.Data, want.Data = nil, nil
		require.True(t, want.RecordedAt.Equal(got.RecordedAt))
		got.RecordedAt, want.RecordedAt = time.Time{}, time.Time{}
		require.Equal(t, want, got)
	}
}

func testEmptyMetadataRoundTrip(t *testing.T, h Harness) {
	s := h.New(t)
	stream := streamOf("user")
	in := event("user.created", `{}`)
	mustAppend(t, s, appendTo(stream, uuid.Nil, eventstore.Any, in))

	loaded := mustLoad(t, s, stream)
	require.Len(t, loaded, 1)
	require.Equal(t, eventstore.Metadata{}, loaded[0].Metadata)
	require.Equal(t, uuid.Nil, loaded[0].TenantID, "a stream without tenant keeps uuid.Nil")
	require.JSONEq(t, `{}`, string(loaded[0].Data))
}

func testCategory(t *testing.T, h Harness) {
	s := h.New(t)
	cases := []struct {
		stream   string
		category string
	}{
		{"booking-" + uuid.NewString(), "booking"},
		{"hold-" + uuid.NewString(), "hold"},
		{"nodash" + uuid.New().String()[:8], ""}, // the whole id
	}
	for _, tc := range cases {
		t.Run(tc.stream, func(t *testing.T) {
			t.Parallel()
			want := tc.category
			if want == "" {
				want = tc.stream
			}
			mustAppend(t, s, appendTo(tc.stream, uuid.New(), eventstore.NoStream, event("x.happened", `{}`)))
			loaded := mustLoad(t, s, tc.stream)
			require.Len(t, loaded, 1)
			require.Equal(t, want, loaded[0].Category)
			require.Equal(t, eventstore.Category(tc.stream), loaded[0].Category)
		})
	}
}

func testNoAliasing(t *testing.T, h Harness) {
	s := h.New(t)
	stream := streamOf("resource")
	data := []byte(`{"name":"Sala 1"}`)
	e := eventstore.EventData{ID: uuid.New(), Type: "resource.created", Version: 1, Data: data}
	mustAppend(t, s, appendTo(stream, uuid.New(), eventstore.NoStream, e))

	// The caller's buffer is reused after the append returns.
	for i := range data {
		data[i] = ' '
	}
	first := mustLoad(t, s, stream)
	require.Len(t, first, 1)
	require.JSONEq(t, `{"name":"Sala 1"}`, string(first[0].Data))

	// A reader scribbles over what it was given.
	for i := range first[0].Data {
		first[0].Data[i] = ' '
	}
	for i := range first[0].Hash {
		first[0].Hash[i] ^= 0xff
	}
	all := awaitVisible(t, s, 1)
	for i := range all[0].Data {
		all[0].Data[i] = ' '
	}

	again := mustLoad(t, s, stream)
	require.JSONEq(t, `{"name":"Sala 1"}`, string(again[0].Data))
	require.NotEqual(t, first[0].Hash, again[0].Hash)

	report, err := s.Verify(t.Context(), "", uuid.Nil)
	require.NoError(t, err)
	require.True(t, report.OK(), "breaks: %+v", report.Breaks)
}

func testExpectedVersion(t *testing.T, h Harness) {
	s := h.New(t)
	cases := []struct {
		name     string
		existing int // events stored before the append under test
		expected eventstore.ExpectedVersion
		conflict bool
	}{
		{"AnyOnNewStream", 0, eventstore.Any, false},
		{"AnyOnExistingStream", 2, eventstore.Any, false},
		{"NoStreamOnNewStream", 0, eventstore.NoStream, false},
		{"NoStreamOnExistingStream", 2, eventstore.NoStream, true},
		{"ExactZeroOnNewStream", 0, eventstore.Exact(0), false},
		{"ExactRight", 2, eventstore.Exact(2), false},
		{"ExactStale", 2, eventstore.Exact(1), true},
		{"ExactTooHigh", 2, eventstore.Exact(5), true},
		{"ExactOnNewStream", 0, eventstore.Exact(1), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tenant := uuid.New()
			stream := streamOf("booking")
			if tc.existing > 0 {
				mustAppend(t, s, appendTo(stream, tenant, eventstore.NoStream, events("booking.created", tc.existing)...))
			}
			in := events("booking.updated", 2)
			res, err := s.Append(t.Context(), appendTo(stream, tenant, tc.expected, in...))

			if tc.conflict {
				requireConflict(t, err, stream, tc.expected, int64(tc.existing))
				require.Equal(t, int64(tc.existing), mustStreamVersion(t, s, stream), "a conflicting append stores nothing")
				require.Len(t, mustLoad(t, s, stream), tc.existing)
				return
			}
			require.NoError(t, err)
			require.False(t, res.Duplicate)
			want := int64(tc.existing + len(in))
			require.Equal(t, map[string]int64{stream: want}, res.Versions)
			require.Equal(t, want, mustStreamVersion(t, s, stream))

			loaded := mustLoad(t, s, stream)
			require.Len(t, loaded, int(want))
			for i, e := range loaded {
				require.Equal(t, int64(i+1), e.StreamVersion, "versions are consecutive from 1")
			}
			require.Equal(t, dataIDs(in), ids(loaded[tc.existing:]))
			require.Equal(t, res.LastPosition, loaded[len(loaded)-1].Position)
		})
	}
}

func testMultiStreamAppend(t *testing.T, h Harness) {
	s := h.New(t)
	tenant := uuid.New()
	booking, hold := streamOf("booking"), streamOf("hold")
	mustAppend(t, s, appendTo(hold, tenant, eventstore.NoStream, event("hold.placed", `{}`)))

	bookingEvents := events("booking.created", 2)
	holdEvents := []eventstore.EventData{event("hold.released", `{"reason":"consumed"}`)}
	res := mustAppend(t, s,
		appendTo(booking, tenant, eventstore.NoStream, bookingEvents...),
		appendTo(hold, tenant, eventstore.Exact(1), holdEvents...),
	)
	require.Equal(t, map[string]int64{booking: 2, hold: 2}, res.Versions)

	b, hl := mustLoad(t, s, booking), mustLoad(t, s, hold)
	require.Equal(t, dataIDs(bookingEvents), ids(b))
	require.Equal(t, dataIDs(holdEvents), ids(hl[1:]))
	require.Equal(t, max(maxPosition(b), maxPosition(hl)), res.LastPosition, "LastPosition is the greatest position of the append")

	all := awaitVisible(t, s, 4)
	requireReadAllOrder(t, all)
}

func testMultiStreamAtomicity(t *testing.T, h Harness) {
	s := h.New(t)
	tenant := uuid.New()
	existing, fresh, stale := streamOf("resource"), streamOf("booking"), streamOf("hold")
	mustAppend(t, s, appendTo(existing, tenant, eventstore.NoStream, event("resource.created", `{}`)))
	setup := mustAppend(t, s, appendTo(stale, tenant, eventstore.NoStream, events("hold.placed", 2)...))

	_, err := s.Append(t.Context(),
		appendTo(existing, tenant, eventstore.Exact(1), event("resource.updated", `{}`)),
		appendTo(fresh, tenant, eventstore.NoStream, event("booking.created", `{}`)),
		appendTo(stale, tenant, eventstore.Exact(1), event("hold.released", `{}`)),
	)
	requireConflict(t, err, stale, eventstore.Exact(1), 2)

	require.Equal(t, int64(1), mustStreamVersion(t, s, existing), "no event of the failed append is stored")
	require.Zero(t, mustStreamVersion(t, s, fresh), "no event of the failed append is stored")
	require.Equal(t, int64(2), mustStreamVersion(t, s, stale))
	require.Empty(t, mustLoad(t, s, fresh))
	require.Equal(t, setup.LastPosition, mustHead(t, s))
	awaitVisible(t, s, 3)

	// The same append with a right expectation succeeds in full.
	res := mustAppend(t, s,
		appendTo(existing, tenant, eventstore.Exact(1), event("resource.updated", `{}`)),
		appendTo(fresh, tenant, eventstore.NoStream, event("booking.created", `{}`)),
		appendTo(stale, tenant, eventstore.Exact(2), event("hold.released", `{}`)),
	)
	require.Equal(t, map[string]int64{existing: 2, fresh: 1, stale: 3}, res.Versions)
	awaitVisible(t, s, 6)
}

func testIdempotentRetry(t *testing.T, h Harness) {
	s := h.New(t)
	tenant := uuid.New()
	stream := streamOf("booking")
	append1 := appendTo(stream, tenant, eventstore.NoStream, events("booking.created", 3)...)
	first := mustAppend(t, s, append1)
	head := mustHead(t, s)

	again, err := s.Append(t.Context(), append1)
	require.NoError(t, err)
	require.True(t, again.Duplicate)
	require.Equal(t, first.LastPosition, again.LastPosition, "a retry reports the original positions")
	require.Equal(t, first.Versions, again.Versions)

	require.Equal(t, head, mustHead(t, s), "a retry stores nothing")
	require.Len(t, mustLoad(t, s, stream), 3)
	awaitVisible(t, s, 3)

	// The same ids under Any: still the original append.
	append1.Expected = eventstore.Any
	third, err := s.Append(t.Context(), append1)
	require.NoError(t, err)
	require.True(t, third.Duplicate)
	require.Equal(t, first.LastPosition, third.LastPosition)
	require.Len(t, mustLoad(t, s, stream), 3)
}

func testIdempotentRetryStale(t *testing.T, h Harness) {
	s := h.New(t)
	tenant := uuid.New()
	stream := streamOf("booking")
	created := appendTo(stream, tenant, eventstore.NoStream, event("booking.created", `{}`))
	first := mustAppend(t, s, created)
	mustAppend(t, s, appendTo(stream, tenant, eventstore.Exact(1), event("booking.cancelled", `{}`)))

	// The first command is retried after another one moved the stream on:
	// its expectation is stale, but its events are stored, so it succeeded.
	retry, err := s.Append(t.Context(), created)
	require.NoError(t, err, "the duplicate check comes before the version check")
	require.True(t, retry.Duplicate)
	require.Equal(t, first.LastPosition, retry.LastPosition)
	require.Equal(t, map[string]int64{stream: 1}, retry.Versions, "a duplicate describes the original append")
	require.Equal(t, int64(2), mustStreamVersion(t, s, stream))
	awaitVisible(t, s, 2)
}

func testIdempotentMultiStreamRetry(t *testing.T, h Harness) {
	s := h.New(t)
	tenant := uuid.New()
	a, b := streamOf("booking"), streamOf("hold")
	appends := []eventstore.StreamAppend{
		appendTo(a, tenant, eventstore.NoStream, events("booking.created", 2)...),
		appendTo(b, tenant, eventstore.NoStream, events("hold.placed", 1)...),
	}
	first := mustAppend(t, s, appends...)
	mustAppend(t, s, appendTo(a, tenant, eventstore.Exact(2), event("booking.cancelled", `{}`)))

	retry, err := s.Append(t.Context(), appends...)
	require.NoError(t, err)
	require.True(t, retry.Duplicate)
	require.Equal(t, first.LastPosition, retry.LastPosition)
	require.Equal(t, map[string]int64{a: 2, b: 1}, retry.Versions)
	awaitVisible(t, s, 4)
}

func testPartialDuplicate(t *testing.T, h Harness) {
	s := h.New(t)
	tenant := uuid.New()
	stream, other := streamOf("booking"), streamOf("hold")
	stored := event("booking.created", `{}`)
	mustAppend(t, s, appendTo(stream, tenant, eventstore.NoStream, stored))
	head := mustHead(t, s)

	cases := []struct {
		name    string
		appends []eventstore.StreamAppend
	}{
		{"SameStream", []eventstore.StreamAppend{
			appendTo(stream, tenant, eventstore.Any, stored, event("booking.updated", `{}`)),
		}},
		{"OtherStream", []eventstore.StreamAppend{
			appendTo(other, tenant, eventstore.NoStream, event("hold.placed", `{}`), stored),
		}},
		{"AcrossStreams", []eventstore.StreamAppend{
			appendTo(other, tenant, eventstore.NoStream, event("hold.placed", `{}`)),
			appendTo(stream, tenant, eventstore.Exact(1), stored),
		}},
	}
	// The group returns once its parallel cases have finished.
	t.Run("Cases", func(t *testing.T) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				_, err := s.Append(t.Context(), tc.appends...)
				require.ErrorIs(t, err, eventstore.ErrDuplicateEvent)
				require.NotErrorIs(t, err, eventstore.ErrVersionConflict)
			})
		}
	})
	require.Equal(t, head, mustHead(t, s), "a partly duplicate append stores nothing")
	require.Equal(t, int64(1), mustStreamVersion(t, s, stream))
	require.Zero(t, mustStreamVersion(t, s, other))
}

func testInvalidAppend(t *testing.T, h Harness) {
	s := h.New(t)
	tenant := uuid.New()
	ok := func() eventstore.EventData { return event("x.happened", `{}`) }
	withData := func(d string) eventstore.EventData {
		e := ok()
		e.Data = json.RawMessage(d)
		return e
	}
	dup := ok()
	cases := []struct {
		name    string
		appends []eventstore.StreamAppend
	}{
		{"NothingToAppend", nil},
		{"EmptyStreamID", []eventstore.StreamAppend{appendTo("", tenant, eventstore.Any, ok())}},
		{"NoEvents", []eventstore.StreamAppend{appendTo(streamOf("x"), tenant, eventstore.Any)}},
		{"NilEventID", []eventstore.StreamAppend{appendTo(streamOf("x"), tenant, eventstore.Any, eventstore.EventData{Type: "x.happened", Version: 1, Data: json.RawMessage(`{}`)})}},
		{"EmptyType", []eventstore.StreamAppend{appendTo(streamOf("x"), tenant, eventstore.Any, eventstore.EventData{ID: uuid.New(), Version: 1, Data: json.RawMessage(`{}`)})}},
		{"VersionZero", []eventstore.StreamAppend{appendTo(streamOf("x"), tenant, eventstore.Any, eventstore.EventData{ID: uuid.New(), Type: "x.happened", Data: json.RawMessage(`{}`)})}},
		{"NilData", []eventstore.StreamAppend{appendTo(streamOf("x"), tenant, eventstore.Any, withData(""))}},
		{"ArrayData", []eventstore.StreamAppend{appendTo(streamOf("x"), tenant, eventstore.Any, withData(`[1,2]`))}},
		{"StringData", []eventstore.StreamAppend{appendTo(streamOf("x"), tenant, eventstore.Any, withData(`"text"`))}},
		{"NullData", []eventstore.StreamAppend{appendTo(streamOf("x"), tenant, eventstore.Any, withData(`null`))}},
		{"MalformedData", []eventstore.StreamAppend{appendTo(streamOf("x"), tenant, eventstore.Any, withData(`{"a":`))}},
		{"BadExpectedVersion", []eventstore.StreamAppend{appendTo(streamOf("x"), tenant, eventstore.ExpectedVersion(-2), ok())}},
		{"SameStreamTwice", func() []eventstore.StreamAppend {
			id := streamOf("x")
			return []eventstore.StreamAppend{appendTo(id, tenant, eventstore.Any, ok()), appendTo(id, tenant, eventstore.Any, ok())}
		}()},
		{"SameEventIDTwice", []eventstore.StreamAppend{appendTo(streamOf("x"), tenant, eventstore.Any, dup, dup)}},
		{"SameEventIDInTwoStreams", []eventstore.StreamAppend{
			appendTo(streamOf("x"), tenant, eventstore.Any, dup),
			appendTo(streamOf("y"), tenant, eventstore.Any, dup),
		}},
		{"OneBadStreamAmongGood", []eventstore.StreamAppend{
			appendTo(streamOf("x"), tenant, eventstore.NoStream, ok()),
			appendTo(streamOf("y"), tenant, eventstore.NoStream, withData(`[]`)),
		}},
	}
	// The group returns once its parallel cases have finished.
	t.Run("Cases", func(t *testing.T) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				res, err := s.Append(t.Context(), tc.appends...)
				require.ErrorIs(t, err, eventstore.ErrInvalidAppend)
				require.Equal(t, eventstore.AppendResult{}, res)
			})
		}
	})
	require.Zero(t, mustHead(t, s), "an invalid append stores nothing")
}

func testCancelledContext(t *testing.T, h Harness) {
	s := h.New(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	stream := streamOf("booking")
	_, err := s.Append(ctx, appendTo(stream, uuid.New(), eventstore.NoStream, event("booking.created", `{}`)))
	require.Error(t, err, "an append under a cancelled context fails")
	require.Zero(t, mustStreamVersion(t, s, stream))
	require.Zero(t, mustHead(t, s))
}
