package pgidempotency_test

import (
	"context"
	"testing"

	"github.com/bookingengine/booking/eventstore/postgres"
	bhttp "github.com/bookingengine/booking/http"
	"github.com/bookingengine/booking/http/idempotencytest"
	"github.com/bookingengine/booking/http/pgidempotency"
	"github.com/bookingengine/booking/internal/testenv"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
)

func TestContract(t *testing.T) {
	t.Parallel()
	idempotencytest.Run(t, func(t *testing.T, opts bhttp.IdempotencyOptions) bhttp.IdempotencyStore {
		ctx := context.Background()
		pool, err := pgxpool.New(ctx, testenv.NewDatabase(t))
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		require.NoError(t, postgres.Migrate(ctx, pool, pgidempotency.Migrations()))
		return pgidempotency.New(pool, opts)
	})
}

func TestMigrationsTwice(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, testenv.NewDatabase(t))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, postgres.Migrate(ctx, pool, pgidempotency.Migrations()))
	require.NoError(t, postgres.Migrate(ctx, pool, pgidempotency.Migrations()))
}
