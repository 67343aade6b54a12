package queries_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/commands"
	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/eventstore/memory"
	"github.com/bookingengine/booking/projections"
	"github.com/bookingengine/booking/projections/bookings"
	"github.com/bookingengine/booking/projections/catalog"
	"github.com/bookingengine/booking/projections/eventsource"
	"github.com/bookingengine/booking/queries"
)

// TestMinPositionTimesOut: a query waits for its read model to apply the
// position it names and gives up after MaxWait with ErrTimeout (504
// "timeout"); once the projector runs, the same query answers at once.
func TestMinPositionTimesOut(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := memory.New()
	t.Cleanup(store.Close)
	cmd := commands.New(store)
	res, err := cmd.CreateTenant(ctx, commands.Meta{Actor: domain.Actor{ID: "p", Role: domain.RolePlatformAdmin}},
		commands.CreateTenant{Input: domain.TenantInput{Name: "T", Domain: "t.example.com"}})
	require.NoError(t, err)

	src := eventsource.New(store, 0)
	bm, cm := bookings.NewMemory(), catalog.NewMemory()
	list := queries.NewListBookingsHandler(bm, cm, projections.NewWaiter(src, bm, cm))
	q := queries.ListBookings{Viewer: queries.Viewer{TenantID: res.ID, UserID: uuid.NewString(), Role: domain.RoleAdmin}, MinPosition: res.Position}

	start := time.Now()
	_, err = list.Handle(ctx, q)
	require.ErrorIs(t, err, queries.ErrTimeout)
	require.GreaterOrEqual(t, time.Since(start), queries.MaxWait)
	var coded interface{ Code() string }
	require.ErrorAs(t, err, &coded)
	require.Equal(t, "timeout", coded.Code())

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = list.Handle(cancelled, q)
	require.ErrorIs(t, err, context.Canceled, "the caller's own cancellation is not a timeout")

	_, err = projections.NewRunner(src, cm, projections.RunnerConfig{}).CatchUp(ctx)
	require.NoError(t, err)
	page, err := list.Handle(ctx, q)
	require.NoError(t, err)
	require.Empty(t, page.Bookings)
}
