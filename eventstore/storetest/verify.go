package storetest

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/eventstore"
)

// verifyFixture is a store with three streams in two tenants.
type verifyFixture struct {
	s       eventstore.Store
	tenants [2]uuid.UUID
	target  string // tenants[0], 3 events: the one the tamper tests break
	sibling string // tenants[0], 2 events
	other   string // tenants[1], 4 events
	events  map[string][]eventstore.RecordedEvent
}

func newVerifyFixture(t *testing.T, h Harness) verifyFixture {
	t.Helper()
	f := verifyFixture{
		s:       h.New(t),
		tenants: [2]uuid.UUID{uuid.New(), uuid.New()},
		target:  streamOf("booking"),
		sibling: streamOf("hold"),
		other:   streamOf("booking"),
		events:  map[string][]eventstore.RecordedEvent{},
	}
	mustAppend(t, f.s, appendTo(f.target, f.tenants[0], eventstore.NoStream, events("booking.created", 2)...))
	mustAppend(t, f.s,
		appendTo(f.sibling, f.tenants[0], eventstore.NoStream, events("hold.placed", 2)...),
		appendTo(f.target, f.tenants[0], eventstore.Exact(2), event("booking.updated", `{"n":9}`)),
	)
	mustAppend(t, f.s, appendTo(f.other, f.tenants[1], eventstore.NoStream, events("booking.created", 4)...))
	for _, id := range []string{f.target, f.sibling, f.other} {
		f.events[id] = mustLoad(t, f.s, id)
	}
	return f
}

func (f verifyFixture) verify(t *testing.T, streamID string, tenant uuid.UUID) eventstore.VerifyReport {
	t.Helper()
	r, err := f.s.Verify(t.Context(), streamID, tenant)
	require.NoError(t, err)
	return r
}

func testVerifyClean(t *testing.T, h Harness) {
	f := newVerifyFixture(t, h)

	cases := []struct {
		name    string
		stream  string
		tenant  uuid.UUID
		streams int
		events  int64
	}{
		{"All", "", uuid.Nil, 3, 9},
		{"OneStream", f.target, uuid.Nil, 1, 3},
		{"OtherStream", f.other, uuid.Nil, 1, 4},
		{"Tenant", "", f.tenants[0], 2, 5},
		{"OtherTenant", "", f.tenants[1], 1, 4},
		{"UnknownTenant", "", uuid.New(), 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := f.verify(t, tc.stream, tc.tenant)
			require.True(t, r.OK(), "breaks: %+v", r.Breaks)
			require.Empty(t, r.Breaks)
			require.Equal(t, tc.streams, r.StreamsChecked)
			require.Equal(t, tc.events, r.EventsChecked)
		})
	}

	empty := h.New(t)
	r, err := empty.Verify(t.Context(), "", uuid.Nil)
	require.NoError(t, err)
	require.True(t, r.OK())
	require.Zero(t, r.StreamsChecked)
}

// requireOneBreak checks that the only break of r is want (its Position
// only when want names one).
func requireOneBreak(t *testing.T, r eventstore.VerifyReport, want eventstore.Break) {
	t.Helper()
	require.False(t, r.OK(), "Verify missed the tampering")
	require.Len(t, r.Breaks, 1, "breaks: %+v", r.Breaks)
	got := r.Breaks[0]
	if want.Position == 0 {
		got.Position = 0
	}
	require.Equal(t, want, got)
}

// requireBreakScopes checks the break want of f.target through every
// scope of Verify that covers it, and that the scopes that do not cover it
// stay clean.
func requireBreakScopes(t *testing.T, f verifyFixture, want eventstore.Break) {
	t.Helper()
	requireOneBreak(t, f.verify(t, f.target, uuid.Nil), want)
	requireOneBreak(t, f.verify(t, "", uuid.Nil), want)
	requireOneBreak(t, f.verify(t, "", f.tenants[0]), want)
	for _, clean := range []struct {
		stream string
		tenant uuid.UUID
	}{{f.sibling, uuid.Nil}, {f.other, uuid.Nil}, {"", f.tenants[1]}} {
		r := f.verify(t, clean.stream, clean.tenant)
		require.True(t, r.OK(), "stream %q tenant %s: breaks %+v", clean.stream, clean.tenant, r.Breaks)
	}
}

func testVerifyEdited(t *testing.T, h Harness) {
	if h.EditData == nil {
		t.Skip("the harness cannot edit stored events")
	}
	for _, version := range []int64{1, 2, 3} {
		t.Run(versionName(version), func(t *testing.T) {
			t.Parallel()
			f := newVerifyFixture(t, h)
			h.EditData(t, f.s, f.target, version, json.RawMessage(`{"tampered":true}`))
			requireBreakScopes(t, f, eventstore.Break{
				StreamID: f.target,
				Version:  version,
				Position: f.events[f.target][version-1].Position,
				Reason:   "hash_mismatch",
			})
		})
	}
}

func testVerifyDeleted(t *testing.T, h Harness) {
	if h.Delete == nil {
		t.Skip("the harness cannot delete stored events")
	}
	versions := []int64{1, 2}
	if h.VerifiesHead {
		versions = append(versions, 3)
	}
	for _, version := range versions {
		t.Run(versionName(version), func(t *testing.T) {
			t.Parallel()
			f := newVerifyFixture(t, h)
			h.Delete(t, f.s, f.target, version)
			requireBreakScopes(t, f, eventstore.Break{
				StreamID: f.target,
				Version:  version, // the version expected where the row is missing
				Reason:   "version_gap",
			})
		})
	}
}

func versionName(v int64) string {
	return fmt.Sprintf("Version%d", v)
}
