package webhooks_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/eventstore/memory"
	"github.com/bookingengine/booking/eventstore/postgres"
	"github.com/bookingengine/booking/internal/testenv"
	"github.com/bookingengine/booking/stream/subscriber"
	"github.com/bookingengine/booking/webhooks"
	"github.com/bookingengine/booking/webhooks/webhookstest"
)

func TestMemoryStore(t *testing.T) {
	t.Parallel()
	webhookstest.Run(t, func(t *testing.T) webhookstest.Harness {
		return webhookstest.Harness{Store: webhooks.NewMemoryStore(), Events: memory.New()}
	})
}

func TestPostgresStore(t *testing.T) {
	t.Parallel()
	webhookstest.Run(t, func(t *testing.T) webhookstest.Harness {
		es, url := MustPostgres(t)
		other, err := pgxpool.New(context.Background(), url)
		require.NoError(t, err)
		t.Cleanup(other.Close)
		return webhookstest.Harness{
			Store:  webhooks.NewPostgresStore(es.Pool()),
			Events: es,
			Other:  webhooks.NewPostgresStore(other),
		}
	})
}

// MustPostgres opens an event store on a database of its own, migrated
// with the subscriber's and the webhooks' tables, closed when tb ends.
func MustPostgres(tb testing.TB) (*postgres.Store, string) {
	tb.Helper()
	url := testenv.NewDatabase(tb)
	es, err := postgres.Open(context.Background(), url, postgres.Config{
		MaxConns:   8,
		Migrations: []postgres.MigrationSet{subscriber.Migrations(), webhooks.Migrations()},
	})
	require.NoError(tb, err)
	tb.Cleanup(es.Close)
	return es, url
}
