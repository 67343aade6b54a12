package storetest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/eventstore"
)

// visibleTimeout bounds how long the suite waits for committed events to
// become readable by ReadAll. A store may hold back events while an older
// transaction is still open anywhere on the server (the xid8 watermark on
// PostgreSQL sees the whole cluster), so a read straight after an append
// may briefly come up short.
const visibleTimeout = 10 * time.Second

// readAllLimit is large enough to read every event a suite test appends in
// one call.
const readAllLimit = 100_000

// streamOf returns a fresh stream id in the given category.
func streamOf(category string) string { return category + "-" + uuid.NewString() }

// event returns an event of type typ (schema version 1) with the given JSON
// object as data.
func event(typ, data string) eventstore.EventData {
	return eventstore.EventData{ID: uuid.New(), Type: typ, Version: 1, Data: json.RawMessage(data)}
}

// events returns n events of type typ whose data names their index.
func events(typ string, n int) []eventstore.EventData {
	out := make([]eventstore.EventData, n)
	for i := range out {
		out[i] = event(typ, fmt.Sprintf(`{"n": %d}`, i))
	}
	return out
}

// appendTo builds the StreamAppend of evs to stream id of tenant.
func appendTo(id string, tenant uuid.UUID, expected eventstore.ExpectedVersion, evs ...eventstore.EventData) eventstore.StreamAppend {
	return eventstore.StreamAppend{StreamID: id, TenantID: tenant, Expected: expected, Events: evs}
}

// mustAppend appends and fails the test on error.
func mustAppend(tb testing.TB, s eventstore.Store, appends ...eventstore.StreamAppend) eventstore.AppendResult {
	tb.Helper()
	res, err := s.Append(tb.Context(), appends...)
	require.NoError(tb, err)
	require.False(tb, res.Duplicate, "a first append must not be reported as a duplicate")
	return res
}

// mustLoad loads a whole stream and fails the test on error.
func mustLoad(tb testing.TB, s eventstore.Store, streamID string) []eventstore.RecordedEvent {
	tb.Helper()
	evs, err := s.Load(tb.Context(), streamID, 0)
	require.NoError(tb, err)
	return evs
}

// mustStreamVersion returns the stream's version and fails the test on
// error.
func mustStreamVersion(tb testing.TB, s eventstore.Store, streamID string) int64 {
	tb.Helper()
	v, err := s.StreamVersion(tb.Context(), streamID)
	require.NoError(tb, err)
	return v
}

// mustHead returns the head position and fails the test on error.
func mustHead(tb testing.TB, s eventstore.Store) int64 {
	tb.Helper()
	p, err := s.HeadPosition(tb.Context())
	require.NoError(tb, err)
	return p
}

// awaitVisible waits until an unfiltered ReadAll from the beginning returns
// exactly n events and returns them. It fails the test if more than n show
// up or n do not show up within visibleTimeout.
func awaitVisible(tb testing.TB, s eventstore.Store, n int) []eventstore.RecordedEvent {
	tb.Helper()
	deadline := time.Now().Add(visibleTimeout)
	for {
		evs, err := s.ReadAll(tb.Context(), eventstore.Cursor{}, eventstore.Filter{}, readAllLimit)
		require.NoError(tb, err)
		require.LessOrEqual(tb, len(evs), n, "ReadAll returned more events than were appended")
		if len(evs) == n {
			return evs
		}
		if time.Now().After(deadline) {
			require.Failf(tb, "events not visible", "ReadAll returned %d of %d events after %s", len(evs), n, visibleTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// readPages reads every visible event after the cursor that matches the
// filter, pageSize at a time, checking that no page exceeds the limit and
// that the pages continue each other in read-all order.
func readPages(tb testing.TB, s eventstore.Store, after eventstore.Cursor, filter eventstore.Filter, pageSize int) []eventstore.RecordedEvent {
	tb.Helper()
	var out []eventstore.RecordedEvent
	for {
		page, err := s.ReadAll(tb.Context(), after, filter, pageSize)
		require.NoError(tb, err)
		require.LessOrEqual(tb, len(page), pageSize, "ReadAll exceeded its limit")
		if len(page) == 0 {
			return out
		}
		for _, e := range page {
			require.True(tb, after.After(e), "ReadAll returned event at position %d that is not after cursor %+v", e.Position, after)
			after = eventstore.CursorOf(e)
		}
		out = append(out, page...)
	}
}

// requireReadAllOrder checks that evs are strictly increasing in read-all
// order, that no event id repeats and that each stream's events appear in
// version order.
func requireReadAllOrder(tb testing.TB, evs []eventstore.RecordedEvent) {
	tb.Helper()
	seen := make(map[uuid.UUID]bool, len(evs))
	lastVersion := map[string]int64{}
	var cur eventstore.Cursor
	for i, e := range evs {
		require.True(tb, cur.After(e), "event %d (position %d, tx %d) is not after the previous one %+v", i, e.Position, e.TransactionID, cur)
		cur = eventstore.CursorOf(e)
		require.False(tb, seen[e.ID], "event %s returned twice", e.ID)
		seen[e.ID] = true
		require.Greater(tb, e.StreamVersion, lastVersion[e.StreamID], "stream %s out of version order", e.StreamID)
		lastVersion[e.StreamID] = e.StreamVersion
	}
}

// ids returns the event ids of evs, in order.
func ids(evs []eventstore.RecordedEvent) []uuid.UUID {
	out := make([]uuid.UUID, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

// dataIDs returns the ids of the events to append, in order.
func dataIDs(evs []eventstore.EventData) []uuid.UUID {
	out := make([]uuid.UUID, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

// maxPosition returns the greatest position of evs (0 when empty).
func maxPosition(evs []eventstore.RecordedEvent) int64 {
	var m int64
	for _, e := range evs {
		m = max(m, e.Position)
	}
	return m
}

// requireConflict checks that err is the typed version conflict with the
// given fields.
func requireConflict(tb testing.TB, err error, streamID string, expected eventstore.ExpectedVersion, actual int64) {
	tb.Helper()
	require.ErrorIs(tb, err, eventstore.ErrVersionConflict)
	var vc *eventstore.VersionConflictError
	require.ErrorAs(tb, err, &vc)
	require.Equal(tb, streamID, vc.StreamID, "conflict names the wrong stream")
	require.Equal(tb, expected, vc.Expected, "conflict reports the wrong expectation")
	require.Equal(tb, actual, vc.Actual, "conflict reports the wrong actual version")
}
