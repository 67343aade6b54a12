package storetest

import (
	"encoding/json"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/eventstore"
)

// requireSnapshot compares snapshots, the state as JSON.
func requireSnapshot(t *testing.T, want, got eventstore.Snapshot) {
	t.Helper()
	require.Equal(t, want.StreamID, got.StreamID)
	require.Equal(t, want.Version, got.Version)
	require.Equal(t, want.SchemaVersion, got.SchemaVersion)
	require.JSONEq(t, string(want.State), string(got.State))
}

func testSnapshots(t *testing.T, h Harness) {
	s := h.New(t)
	stream, other := streamOf("booking"), streamOf("booking")

	_, err := s.LoadSnapshot(t.Context(), stream)
	require.ErrorIs(t, err, eventstore.ErrNoSnapshot)

	first := eventstore.Snapshot{StreamID: stream, Version: 3, SchemaVersion: 1, State: json.RawMessage(`{"status": "pending", "seats": 1}`)}
	require.NoError(t, s.SaveSnapshot(t.Context(), first))
	got, err := s.LoadSnapshot(t.Context(), stream)
	require.NoError(t, err)
	requireSnapshot(t, first, got)

	// The caller's buffer and the loaded state are the caller's own.
	got.State[0] = ' '
	again, err := s.LoadSnapshot(t.Context(), stream)
	require.NoError(t, err)
	requireSnapshot(t, first, again)

	second := eventstore.Snapshot{StreamID: stream, Version: 7, SchemaVersion: 2, State: json.RawMessage(`{"status":"confirmed"}`)}
	require.NoError(t, s.SaveSnapshot(t.Context(), second))
	second.State[2] = 'X'
	got, err = s.LoadSnapshot(t.Context(), stream)
	require.NoError(t, err)
	second.State = json.RawMessage(`{"status":"confirmed"}`)
	requireSnapshot(t, second, got)

	// Saving the same snapshot again is harmless.
	require.NoError(t, s.SaveSnapshot(t.Context(), second))
	got, err = s.LoadSnapshot(t.Context(), stream)
	require.NoError(t, err)
	requireSnapshot(t, second, got)

	_, err = s.LoadSnapshot(t.Context(), other)
	require.ErrorIs(t, err, eventstore.ErrNoSnapshot, "snapshots are per stream")
}

func testSnapshotPlusTail(t *testing.T, h Harness) {
	s := h.New(t)
	stream := streamOf("booking")
	in := events("booking.updated", 5)
	mustAppend(t, s, appendTo(stream, uuid.New(), eventstore.NoStream, in[:3]...))
	require.NoError(t, s.SaveSnapshot(t.Context(), eventstore.Snapshot{StreamID: stream, Version: 3, SchemaVersion: 1, State: json.RawMessage(`{"n":2}`)}))
	mustAppend(t, s, appendTo(stream, uuid.New(), eventstore.Exact(3), in[3:]...))

	snap, err := s.LoadSnapshot(t.Context(), stream)
	require.NoError(t, err)
	tail, err := s.Load(t.Context(), stream, snap.Version)
	require.NoError(t, err)
	require.Equal(t, dataIDs(in[3:]), ids(tail))
	require.Equal(t, []int64{4, 5}, []int64{tail[0].StreamVersion, tail[1].StreamVersion})
}

func testCheckpoints(t *testing.T, h Harness) {
	s := h.New(t)

	c, err := s.Checkpoint(t.Context(), "projector.bookings")
	require.NoError(t, err)
	require.Equal(t, eventstore.Cursor{}, c, "an unknown subscriber starts at the beginning")

	cases := []struct {
		name    string
		cursors []eventstore.Cursor // saved in turn; the last one wins
	}{
		{"projector.bookings", []eventstore.Cursor{{TransactionID: 10, Position: 4}}},
		{"relay", []eventstore.Cursor{{TransactionID: 10, Position: 4}, {TransactionID: 12, Position: 9}}},
		{"webhooks", []eventstore.Cursor{{TransactionID: 1 << 40, Position: 1 << 50}}},
		{"rewound", []eventstore.Cursor{{TransactionID: 12, Position: 9}, {TransactionID: 3, Position: 2}}},
		{"reset", []eventstore.Cursor{{TransactionID: 12, Position: 9}, {}}},
	}
	t.Run("Cases", func(t *testing.T) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				for _, cur := range tc.cursors {
					require.NoError(t, s.SaveCheckpoint(t.Context(), tc.name, cur))
					got, err := s.Checkpoint(t.Context(), tc.name)
					require.NoError(t, err)
					require.Equal(t, cur, got)
				}
			})
		}
	})
	// Each name kept its own cursor.
	for _, tc := range cases {
		got, err := s.Checkpoint(t.Context(), tc.name)
		require.NoError(t, err)
		require.Equal(t, tc.cursors[len(tc.cursors)-1], got, tc.name)
	}
}
