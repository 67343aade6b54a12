package storetest

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/eventstore"
)

func testLoadAfterVersion(t *testing.T, h Harness) {
	s := h.New(t)
	stream := streamOf("booking")
	in := events("booking.updated", 5)
	mustAppend(t, s, appendTo(stream, uuid.New(), eventstore.NoStream, in...))

	cases := []struct {
		name  string
		after int64
		want  []uuid.UUID
	}{
		{"FromStart", 0, dataIDs(in)},
		{"AfterTwo", 2, dataIDs(in[2:])},
		{"AfterLast", 5, nil},
		{"BeyondLast", 10, nil},
		{"Negative", -1, dataIDs(in)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := s.Load(t.Context(), stream, tc.after)
			require.NoError(t, err)
			require.Len(t, got, len(tc.want))
			if len(tc.want) > 0 {
				require.Equal(t, tc.want, ids(got))
				require.Equal(t, max(tc.after, 0)+1, got[0].StreamVersion)
			}
		})
	}
}

func testLoadStreams(t *testing.T, h Harness) {
	s := h.New(t)
	a, b, unknown := streamOf("booking"), streamOf("schedule"), streamOf("booking")
	inA := events("booking.updated", 4)
	inB := events("schedule.reserved", 3)
	mustAppend(t, s, appendTo(a, uuid.New(), eventstore.NoStream, inA...), appendTo(b, uuid.New(), eventstore.NoStream, inB...))

	got, err := s.LoadStreams(t.Context(), []eventstore.StreamCursor{
		{StreamID: a, AfterVersion: 1}, {StreamID: b}, {StreamID: unknown},
	})
	require.NoError(t, err)
	require.Len(t, got, 2, "a stream without events is absent")
	require.Equal(t, dataIDs(inA[1:]), ids(got[a]))
	require.Equal(t, int64(2), got[a][0].StreamVersion)
	require.Equal(t, dataIDs(inB), ids(got[b]))
	require.Equal(t, mustLoad(t, s, b), got[b], "the same events as Load")

	got, err = s.LoadStreams(t.Context(), nil)
	require.NoError(t, err)
	require.Empty(t, got)

	_, err = s.LoadStreams(t.Context(), []eventstore.StreamCursor{{StreamID: a}, {StreamID: a}})
	require.ErrorIs(t, err, eventstore.ErrInvalidRead)
	_, err = s.LoadStreams(t.Context(), []eventstore.StreamCursor{{StreamID: ""}})
	require.ErrorIs(t, err, eventstore.ErrInvalidRead)
}

func testUnknownStream(t *testing.T, h Harness) {
	s := h.New(t)
	mustAppend(t, s, appendTo(streamOf("booking"), uuid.New(), eventstore.NoStream, event("booking.created", `{}`)))
	unknown := streamOf("booking")

	got, err := s.Load(t.Context(), unknown, 0)
	require.NoError(t, err, "an unknown stream is not an error")
	require.Empty(t, got)
	require.Zero(t, mustStreamVersion(t, s, unknown))

	report, err := s.Verify(t.Context(), unknown, uuid.Nil)
	require.NoError(t, err)
	require.True(t, report.OK())
	require.Zero(t, report.EventsChecked)
}

// seedStreams appends, in interleaved single-event appends, events to
// streams of several categories and two tenants, and returns every event
// as Load sees it, grouped per stream.
func seedStreams(t *testing.T, s eventstore.Store, tenants [2]uuid.UUID) map[string][]eventstore.RecordedEvent {
	t.Helper()
	type spec struct {
		id     string
		tenant uuid.UUID
	}
	streams := []spec{
		{streamOf("booking"), tenants[0]},
		{streamOf("booking"), tenants[1]},
		{streamOf("hold"), tenants[0]},
		{streamOf("resource"), tenants[1]},
		{streamOf("tenant"), uuid.Nil},
	}
	for round := range 4 {
		for i, st := range streams {
			if round > 0 && i%2 == 1 && round%2 == 1 {
				continue // uneven stream lengths
			}
			v := mustStreamVersion(t, s, st.id)
			mustAppend(t, s, appendTo(st.id, st.tenant, eventstore.Exact(v), event(eventstore.Category(st.id)+".happened", `{"round":1}`)))
		}
	}
	out := map[string][]eventstore.RecordedEvent{}
	for _, st := range streams {
		out[st.id] = mustLoad(t, s, st.id)
	}
	return out
}

func countEvents(streams map[string][]eventstore.RecordedEvent) int {
	n := 0
	for _, evs := range streams {
		n += len(evs)
	}
	return n
}

func testReadAllOrder(t *testing.T, h Harness) {
	s := h.New(t)
	streams := seedStreams(t, s, [2]uuid.UUID{uuid.New(), uuid.New()})
	total := countEvents(streams)

	all := awaitVisible(t, s, total)
	requireReadAllOrder(t, all)

	// Every stored event, with the positions Load reported.
	byID := map[uuid.UUID]eventstore.RecordedEvent{}
	for _, evs := range streams {
		for _, e := range evs {
			byID[e.ID] = e
		}
	}
	for _, e := range all {
		want, ok := byID[e.ID]
		require.True(t, ok, "ReadAll returned an unknown event %s", e.ID)
		require.Equal(t, want.Position, e.Position)
		require.Equal(t, want.TransactionID, e.TransactionID)
		require.Equal(t, want.StreamVersion, e.StreamVersion)
		require.Equal(t, want.Hash, e.Hash)
	}

	// Appends that commit one after another read in that order.
	for i := 1; i < len(all); i++ {
		require.Greater(t, all[i].Position, all[i-1].Position, "sequential appends read in position order")
	}

	// From the cursor of any event, the rest follows.
	for _, k := range []int{0, 1, len(all) / 2, len(all) - 2, len(all) - 1} {
		rest, err := s.ReadAll(t.Context(), eventstore.CursorOf(all[k]), eventstore.Filter{}, readAllLimit)
		require.NoError(t, err)
		require.Equal(t, ids(all[k+1:]), ids(rest), "read after event %d", k)
	}
}

func testReadAllPaging(t *testing.T, h Harness) {
	s := h.New(t)
	streams := seedStreams(t, s, [2]uuid.UUID{uuid.New(), uuid.New()})
	all := awaitVisible(t, s, countEvents(streams))

	for _, size := range []int{1, 2, 3, 7, len(all) - 1, len(all), len(all) + 1} {
		paged := readPages(t, s, eventstore.Cursor{}, eventstore.Filter{}, size)
		require.Equal(t, ids(all), ids(paged), "page size %d repeats or skips events", size)
	}

	first, err := s.ReadAll(t.Context(), eventstore.Cursor{}, eventstore.Filter{}, 4)
	require.NoError(t, err)
	require.Equal(t, ids(all[:4]), ids(first), "a limit returns the first events")

	tail, err := s.ReadAll(t.Context(), eventstore.CursorOf(all[len(all)-1]), eventstore.Filter{}, 10)
	require.NoError(t, err)
	require.Empty(t, tail, "nothing after the last event")
}

func testReadAllFilters(t *testing.T, h Harness) {
	s := h.New(t)
	tenants := [2]uuid.UUID{uuid.New(), uuid.New()}
	streams := seedStreams(t, s, tenants)
	all := awaitVisible(t, s, countEvents(streams))

	cases := []struct {
		name   string
		filter eventstore.Filter
	}{
		{"Nothing", eventstore.Filter{}},
		{"OneCategory", eventstore.Filter{Categories: []string{"booking"}}},
		{"TwoCategories", eventstore.Filter{Categories: []string{"hold", "booking"}}},
		{"UnknownCategory", eventstore.Filter{Categories: []string{"nothing"}}},
		{"Tenant", eventstore.Filter{TenantID: tenants[0]}},
		{"OtherTenant", eventstore.Filter{TenantID: tenants[1]}},
		{"UnknownTenant", eventstore.Filter{TenantID: uuid.New()}},
		{"TenantAndCategory", eventstore.Filter{TenantID: tenants[1], Categories: []string{"booking"}}},
		{"TenantAndCategories", eventstore.Filter{TenantID: tenants[1], Categories: []string{"booking", "hold"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var want []eventstore.RecordedEvent
			for _, e := range all {
				if matches(tc.filter, e) {
					want = append(want, e)
				}
			}

			got, err := s.ReadAll(t.Context(), eventstore.Cursor{}, tc.filter, readAllLimit)
			require.NoError(t, err)
			require.Equal(t, ids(want), ids(got))
			for _, e := range got {
				require.True(t, matches(tc.filter, e))
			}

			// PayloadOnly selects the same events, without their metadata
			// and hash.
			lean := tc.filter
			lean.PayloadOnly = true
			bare, err := s.ReadAll(t.Context(), eventstore.Cursor{}, lean, readAllLimit)
			require.NoError(t, err)
			require.Len(t, bare, len(got))
			for i, e := range got {
				e.Metadata, e.Hash = eventstore.Metadata{}, nil
				require.Equal(t, e, bare[i])
			}
			require.Equal(t, ids(want), ids(readPages(t, s, eventstore.Cursor{}, lean, 2)))

			// Paging a filtered read finds the same events: the limit
			// counts matching events, and the cursor of the last one
			// continues past the events it filtered out.
			require.Equal(t, ids(want), ids(readPages(t, s, eventstore.Cursor{}, tc.filter, 2)))
			if len(want) > 2 {
				page, err := s.ReadAll(t.Context(), eventstore.Cursor{}, tc.filter, 2)
				require.NoError(t, err)
				require.Len(t, page, 2, "a filtered read fills its limit when enough events match")
			}
		})
	}
}

func matches(f eventstore.Filter, e eventstore.RecordedEvent) bool {
	if f.TenantID != uuid.Nil && f.TenantID != e.TenantID {
		return false
	}
	if len(f.Categories) == 0 {
		return true
	}
	for _, c := range f.Categories {
		if c == e.Category {
			return true
		}
	}
	return false
}

func testHeadPosition(t *testing.T, h Harness) {
	s := h.New(t)
	require.Zero(t, mustHead(t, s), "an empty store has head 0")

	tenant := uuid.New()
	stream := streamOf("booking")
	in := appendTo(stream, tenant, eventstore.NoStream, events("booking.created", 2)...)
	res := mustAppend(t, s, in)
	require.Equal(t, res.LastPosition, mustHead(t, s))

	res2 := mustAppend(t, s, appendTo(streamOf("hold"), tenant, eventstore.NoStream, event("hold.placed", `{}`)))
	require.Greater(t, res2.LastPosition, res.LastPosition)
	require.Equal(t, res2.LastPosition, mustHead(t, s))

	// Neither a duplicate nor a conflict moves the head.
	dup, err := s.Append(t.Context(), in)
	require.NoError(t, err)
	require.True(t, dup.Duplicate)
	_, err = s.Append(t.Context(), appendTo(stream, tenant, eventstore.NoStream, event("booking.created", `{}`)))
	require.ErrorIs(t, err, eventstore.ErrVersionConflict)
	require.Equal(t, res2.LastPosition, mustHead(t, s))

	all := awaitVisible(t, s, 3)
	require.Equal(t, maxPosition(all), mustHead(t, s))
}

const widgetType = "widget.renamed"

// registerWidgetUpcasters registers a v1→v2→v3 chain: v2 renames "name" to
// "title", v3 adds "unit".
func registerWidgetUpcasters(t *testing.T, s eventstore.Store) {
	t.Helper()
	u := s.Upcasters()
	require.NotNil(t, u)
	require.Same(t, u, s.Upcasters(), "the store keeps one registry")
	u.Register(widgetType, 1, func(data json.RawMessage) (json.RawMessage, error) {
		var v1 map[string]any
		if err := json.Unmarshal(data, &v1); err != nil {
			return nil, err
		}
		v1["title"] = v1["name"]
		delete(v1, "name")
		return json.Marshal(v1)
	})
	u.Register(widgetType, 2, func(data json.RawMessage) (json.RawMessage, error) {
		var v2 map[string]any
		if err := json.Unmarshal(data, &v2); err != nil {
			return nil, err
		}
		v2["unit"] = "pcs"
		return json.Marshal(v2)
	})
}

func testUpcastOnRead(t *testing.T, h Harness) {
	s := h.New(t)
	registerWidgetUpcasters(t, s)
	stream := streamOf("widget")
	v1 := eventstore.EventData{ID: uuid.New(), Type: widgetType, Version: 1, Data: json.RawMessage(`{"name":"a"}`)}
	v2 := eventstore.EventData{ID: uuid.New(), Type: widgetType, Version: 2, Data: json.RawMessage(`{"title":"b"}`)}
	v3 := eventstore.EventData{ID: uuid.New(), Type: widgetType, Version: 3, Data: json.RawMessage(`{"title":"c","unit":"kg"}`)}
	other := eventstore.EventData{ID: uuid.New(), Type: "widget.other", Version: 1, Data: json.RawMessage(`{"name":"d"}`)}
	mustAppend(t, s, appendTo(stream, uuid.New(), eventstore.NoStream, v1, v2, v3, other))

	check := func(t *testing.T, evs []eventstore.RecordedEvent) {
		t.Helper()
		require.Len(t, evs, 4)
		wants := []struct {
			version int
			data    string
		}{
			{3, `{"title":"a","unit":"pcs"}`},
			{3, `{"title":"b","unit":"pcs"}`},
			{3, `{"title":"c","unit":"kg"}`},
			{1, `{"name":"d"}`}, // no upcaster for its type
		}
		for i, w := range wants {
			require.Equal(t, w.version, evs[i].EventVersion, "event %d", i)
			require.JSONEq(t, w.data, string(evs[i].Data), "event %d", i)
		}
	}
	t.Run("Load", func(t *testing.T) {
		check(t, mustLoad(t, s, stream))
		check(t, mustLoad(t, s, stream)) // reading twice upcasts from the stored data again
	})
	t.Run("ReadAll", func(t *testing.T) {
		check(t, awaitVisible(t, s, 4))
	})
	t.Run("StoredDataUnchanged", func(t *testing.T) {
		// The hash covers the data as appended; upcasting on read must not
		// have rewritten it.
		report, err := s.Verify(t.Context(), stream, uuid.Nil)
		require.NoError(t, err)
		require.True(t, report.OK(), "breaks: %+v", report.Breaks)
		require.Equal(t, int64(4), report.EventsChecked)
	})
}

var errBrokenUpcast = errors.New("storetest: broken upcaster")

func testUpcastError(t *testing.T, h Harness) {
	s := h.New(t)
	s.Upcasters().Register("broken.thing", 1, func(json.RawMessage) (json.RawMessage, error) {
		return nil, errBrokenUpcast
	})
	stream := streamOf("broken")
	mustAppend(t, s, appendTo(stream, uuid.New(), eventstore.NoStream, event("broken.thing", `{}`)))

	_, err := s.Load(t.Context(), stream, 0)
	require.ErrorIs(t, err, errBrokenUpcast, "Load reports a failed upcast, keeping its cause")

	// ReadAll may hold the event back for a moment (see awaitVisible);
	// once it reads it, it must fail.
	deadline := time.Now().Add(visibleTimeout)
	for {
		evs, err := s.ReadAll(t.Context(), eventstore.Cursor{}, eventstore.Filter{}, 10)
		if err != nil {
			require.ErrorIs(t, err, errBrokenUpcast, "ReadAll reports a failed upcast, keeping its cause")
			return
		}
		require.Empty(t, evs, "ReadAll returned an event whose upcast failed")
		require.False(t, time.Now().After(deadline), "the event never became visible to ReadAll")
		time.Sleep(10 * time.Millisecond)
	}
}
