package eventsource

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/eventstore/postgres"
	"github.com/bookingengine/booking/internal/testenv"
)

// TestTargetAndPendingUseTheCategoryIndex: the generic plans of the
// queries behind X-Min-Position (Target) and the lag (Pending) bound the
// cursor on the index of (category, transaction_id, position), never on
// the read-all index, so that a projection of a rare category does not
// walk past every event of the others; seeded with 20,000 events of one
// category and 20 of another, as a real log is.
func TestTargetAndPendingUseTheCategoryIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := postgres.Open(ctx, testenv.NewDatabase(t), postgres.Config{})
	require.NoError(t, err)
	t.Cleanup(s.Close)
	conn := testenv.SkewedLog(t, s.Pool())

	for name, q := range map[string]string{"target": targetQuery, "pending": pendingQuery} {
		plan := testenv.GenericPlan(t, conn, q, []string{"text[]", "xid8", "bigint", "bigint"}, "'{resource,tenant}'", "'1'", "1", "100000")
		require.Contains(t, plan, "booking_events_category_idx", "%s: %s", name, plan)
		require.NotContains(t, plan, "booking_events_read_all_idx", "%s: %s", name, plan)
	}
}
