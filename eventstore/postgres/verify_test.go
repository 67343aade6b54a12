package postgres_test

import (
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/eventstore"
	"github.com/bookingengine/booking/eventstore/postgres"
)

// TestVerifyTampering covers the edits that reach past the contract
// suite's hooks: the hash column, several rows, the head table, a whole
// stream.
func TestVerifyTampering(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		tamper string // SQL, $1 = stream id
		want   eventstore.Break
	}{
		{"HashEdited", `UPDATE booking_events SET hash = sha256('x') WHERE stream_id = $1 AND stream_version = 2`,
			eventstore.Break{Version: 2, Reason: "hash_mismatch"}},
		{"MetadataEdited", `UPDATE booking_events SET metadata = '{"actor":"mallory"}' WHERE stream_id = $1 AND stream_version = 3`,
			eventstore.Break{Version: 3, Reason: "hash_mismatch"}},
		{"TypeEdited", `UPDATE booking_events SET type = 'booking.cancelled' WHERE stream_id = $1 AND stream_version = 1`,
			eventstore.Break{Version: 1, Reason: "hash_mismatch"}},
		{"TwoLastDeleted", `DELETE FROM booking_events WHERE stream_id = $1 AND stream_version >= 3`,
			eventstore.Break{Version: 3, Reason: "version_gap"}},
		{"AllDeleted", `DELETE FROM booking_events WHERE stream_id = $1`,
			eventstore.Break{Version: 1, Reason: "version_gap"}},
		{"FirstBreakWins", `DELETE FROM booking_events WHERE stream_id = $1 AND stream_version IN (2, 4)`,
			eventstore.Break{Version: 2, Reason: "version_gap"}},
		{"HeadHashEdited", `UPDATE booking_streams SET hash = sha256('x') WHERE stream_id = $1`,
			eventstore.Break{Version: 4, Reason: "hash_mismatch"}},
		{"RowAppendedBehindHead", `INSERT INTO booking_events (tenant_id, stream_id, category, stream_version, event_id, type, event_version, data, hash)
			SELECT tenant_id, stream_id, category, 5, gen_random_uuid(), type, 1, '{}', sha256('x') FROM booking_events WHERE stream_id = $1 AND stream_version = 4`,
			eventstore.Break{Version: 5, Reason: "hash_mismatch"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, url := mustOpen(t, postgres.Config{})
			tenant := uuid.New()
			target, other := "booking-"+uuid.NewString(), "booking-"+uuid.NewString()
			for _, id := range []string{target, other} {
				evs := []eventstore.EventData{ev("a.b", `{"n":1}`), ev("a.c", `{"n":2}`), ev("a.d", `{"n":3}`), ev("a.e", `{"n":4}`)}
				evs[1].Metadata.Actor = "alice"
				_, err := s.Append(t.Context(), eventstore.StreamAppend{StreamID: id, TenantID: tenant, Expected: eventstore.NoStream, Events: evs})
				require.NoError(t, err)
			}
			mustExec(t, url, tc.tamper, target)
			report, err := s.Verify(t.Context(), "", uuid.Nil)
			require.NoError(t, err)
			require.Equal(t, 2, report.StreamsChecked)
			require.Len(t, report.Breaks, 1, "%+v", report.Breaks)
			got := report.Breaks[0]
			got.Position = 0
			tc.want.StreamID = target
			require.Equal(t, tc.want, got)

			clean, err := s.Verify(t.Context(), other, tenant)
			require.NoError(t, err)
			require.True(t, clean.OK())
			require.Equal(t, int64(4), clean.EventsChecked)
		})
	}
}
