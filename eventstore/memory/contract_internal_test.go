package memory

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"slices"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/eventstore"
	"github.com/bookingengine/booking/eventstore/storetest"
)

func TestContract(t *testing.T) {
	t.Parallel()
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T) eventstore.Store {
			s := New()
			t.Cleanup(s.Close)
			return s
		},
		EditData:     editData,
		Delete:       deleteEvent,
		VerifiesHead: true,
	})
}

// rowIndex returns the index in st.rows of the stream's event at version.
func rowIndex(t *testing.T, s *Store, streamID string, version int64) (*stream, int) {
	t.Helper()
	st := s.streams[streamID]
	require.NotNil(t, st, "no stream %s", streamID)
	i := slices.IndexFunc(st.rows, func(pos int64) bool { return s.log[pos-1].ev.StreamVersion == version })
	require.NotEqual(t, -1, i, "stream %s has no version %d", streamID, version)
	return st, i
}

// editData replaces an event's data behind the store's back, as an UPDATE
// on the table would.
func editData(t *testing.T, es eventstore.Store, streamID string, version int64, data json.RawMessage) {
	t.Helper()
	s := es.(*Store)
	s.mu.Lock()
	defer s.mu.Unlock()
	st, i := rowIndex(t, s, streamID, version)
	s.log[st.rows[i]-1].ev.Data = bytes.Clone(data)
}

// deleteEvent removes an event behind the store's back, as a DELETE on the
// table would; the stream's head is left alone.
func deleteEvent(t *testing.T, es eventstore.Store, streamID string, version int64) {
	t.Helper()
	s := es.(*Store)
	s.mu.Lock()
	defer s.mu.Unlock()
	st, i := rowIndex(t, s, streamID, version)
	pos := st.rows[i]
	st.rows = slices.Delete(st.rows, i, i+1)
	r := &s.log[pos-1]
	r.deleted = true
	delete(s.ids, r.ev.ID)
}

// TestVerifyForgeries covers breaks that the contract suite cannot stage
// through its hooks: a duplicated row, and rows forged with hashes that
// chain correctly, which only the stream's head gives away.
func TestVerifyForgeries(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		tamper func(t *testing.T, s *Store, streamID string)
		want   eventstore.Break // StreamID filled in by the test
	}{
		{
			name: "DuplicatedRow",
			tamper: func(t *testing.T, s *Store, streamID string) {
				st, i := rowIndex(t, s, streamID, 2)
				st.rows = slices.Insert(st.rows, i+1, st.rows[i])
			},
			want: eventstore.Break{Version: 2, Position: 2, Reason: "version_duplicate"},
		},
		{
			name: "RehashedLastRow",
			tamper: func(t *testing.T, s *Store, streamID string) {
				st, i := rowIndex(t, s, streamID, 3)
				prev := s.log[st.rows[i-1]-1].ev.Hash
				ev := &s.log[st.rows[i]-1].ev
				ev.Data = json.RawMessage(`{"forged":true}`)
				ev.Hash = forgeHash(prev, ev)
			},
			want: eventstore.Break{Version: 3, Position: 3, Reason: "hash_mismatch"},
		},
		{
			name: "AppendedRowBeyondHead",
			tamper: func(t *testing.T, s *Store, streamID string) {
				st, i := rowIndex(t, s, streamID, 3)
				ev := s.log[st.rows[i]-1].ev
				prev := ev.Hash
				ev.ID, ev.StreamVersion = uuid.New(), 4
				ev.Position = int64(len(s.log)) + 1
				ev.TransactionID = uint64(ev.Position)
				ev.Hash = forgeHash(prev, &ev)
				s.log = append(s.log, record{ev: ev})
				st.rows = append(st.rows, ev.Position)
			},
			want: eventstore.Break{Version: 4, Position: 4, Reason: "hash_mismatch"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := New()
			t.Cleanup(s.Close)
			streamID := "booking-" + uuid.NewString()
			evs := make([]eventstore.EventData, 3)
			for i := range evs {
				evs[i] = eventstore.EventData{ID: uuid.New(), Type: "booking.updated", Version: 1, Data: json.RawMessage(`{}`)}
			}
			_, err := s.Append(t.Context(), eventstore.StreamAppend{StreamID: streamID, Expected: eventstore.NoStream, Events: evs})
			require.NoError(t, err)

			func() {
				s.mu.Lock()
				defer s.mu.Unlock()
				tc.tamper(t, s, streamID)
			}()

			report, err := s.Verify(t.Context(), streamID, uuid.Nil)
			require.NoError(t, err)
			want := tc.want
			want.StreamID = streamID
			require.Equal(t, []eventstore.Break{want}, report.Breaks)
		})
	}
}

func forgeHash(prev []byte, ev *eventstore.RecordedEvent) []byte {
	h := sha256.New()
	chainHash(h, nil, prev, ev)
	return h.Sum(nil)
}
