package testenv

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// GenericPlan returns the generic plan, as EXPLAIN prints it, that
// PostgreSQL makes of q for the parameter types, the plan a statement
// that pgx caches ends up with.
func GenericPlan(t testing.TB, conn *pgx.Conn, q string, types []string, args ...string) string {
	t.Helper()
	ctx := context.Background()
	_, err := conn.Exec(ctx, `SET plan_cache_mode = force_generic_plan`)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `DEALLOCATE ALL`)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `PREPARE plan_probe (`+strings.Join(types, ", ")+`) AS `+q)
	require.NoError(t, err)
	rows, err := conn.Query(ctx, `EXPLAIN EXECUTE plan_probe (`+strings.Join(args, ", ")+`)`, pgx.QueryExecModeSimpleProtocol)
	require.NoError(t, err)
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return strings.Join(lines, "\n")
}
