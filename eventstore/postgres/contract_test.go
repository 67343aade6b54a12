package postgres_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/eventstore"
	"github.com/bookingengine/booking/eventstore/postgres"
	"github.com/bookingengine/booking/eventstore/storetest"
)

func TestContract(t *testing.T) {
	t.Parallel()
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T) eventstore.Store {
			s, _ := mustOpen(t, postgres.Config{})
			return s
		},
		EditData: func(t *testing.T, s eventstore.Store, streamID string, version int64, data json.RawMessage) {
			pool := s.(*postgres.Store).Pool()
			tag, err := pool.Exec(t.Context(),
				`UPDATE booking_events SET data = $3 WHERE stream_id = $1 AND stream_version = $2`,
				streamID, version, []byte(data))
			require.NoError(t, err)
			require.EqualValues(t, 1, tag.RowsAffected())
		},
		Delete: func(t *testing.T, s eventstore.Store, streamID string, version int64) {
			pool := s.(*postgres.Store).Pool()
			tag, err := pool.Exec(t.Context(),
				`DELETE FROM booking_events WHERE stream_id = $1 AND stream_version = $2`, streamID, version)
			require.NoError(t, err)
			require.EqualValues(t, 1, tag.RowsAffected())
		},
		VerifiesHead: true,
	})
}
