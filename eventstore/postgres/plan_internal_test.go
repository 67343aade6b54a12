package postgres

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/internal/testenv"
)

// TestReadAllOfCategoriesUsesTheirIndex: the generic plans of the
// category-filtered ReadAll queries bound the cursor on the index of
// (category, transaction_id, position) (or, with a tenant, on the
// tenant's), never on the read-all index, so that a reader of a rare
// category does not walk past every event of the others; seeded with
// 20,000 events of one category and 20 of another, as a real log is.
func TestReadAllOfCategoriesUsesTheirIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := Open(ctx, testenv.NewDatabase(t), Config{})
	require.NoError(t, err)
	t.Cleanup(s.Close)
	conn := testenv.SkewedLog(t, s.Pool())

	cursor := []string{"xid8", "bigint", "integer"}
	for lean := range readAllQueries {
		for shape, types := range map[int][]string{
			shapeCategories:       {"text[]"},
			shapeCategoriesTenant: {"text[]", "uuid"},
			shapeCategory:         {"text"},
			shapeCategoryTenant:   {"text", "uuid"},
		} {
			args := []string{"'1'", "1", "100", "'{resource,tenant}'", "gen_random_uuid()"}[:3+len(types)]
			if types[0] == "text" {
				args[3] = "'resource'"
			}
			plan := testenv.GenericPlan(t, conn, readAllQueries[lean][shape], append(cursor, types...), args...)
			require.NotContains(t, plan, "booking_events_read_all_idx", plan)
			if len(types) == 1 {
				// With a tenant, its own index may serve as well.
				require.Contains(t, plan, "booking_events_category_idx", fmt.Sprintf("payload only %d, shape %d: %s", lean, shape, plan))
			}
		}
	}
}
