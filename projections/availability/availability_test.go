package availability_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/projections"
	"github.com/bookingengine/booking/projections/availability"
	"github.com/bookingengine/booking/projections/projectiontest"
	"github.com/bookingengine/booking/queries"
)

type model interface {
	projections.Projection
	queries.OccupancyReadModel
}

var implementations = []struct {
	name string
	new  func(t *testing.T) model
}{
	{"Memory", func(*testing.T) model { return availability.NewMemory() }},
	{"Postgres", func(t *testing.T) model {
		return availability.NewPostgres(projectiontest.MustPool(t, availability.Migrations()))
	}},
}

func forEach(t *testing.T, fn func(t *testing.T, m model)) {
	t.Helper()
	for _, impl := range implementations {
		t.Run(impl.name, func(t *testing.T) {
			t.Parallel()
			fn(t, impl.new(t))
		})
	}
}

var (
	tenant = uuid.MustParse("10000000-0000-0000-0000-000000000001")
	other  = uuid.MustParse("10000000-0000-0000-0000-000000000002")
	res1   = uuid.MustParse("20000000-0000-0000-0000-000000000001")
	res2   = uuid.MustParse("20000000-0000-0000-0000-000000000002")
	b1     = uuid.MustParse("40000000-0000-0000-0000-000000000001")
	b2     = uuid.MustParse("40000000-0000-0000-0000-000000000002")
	b3     = uuid.MustParse("40000000-0000-0000-0000-000000000003")
	b4     = uuid.MustParse("40000000-0000-0000-0000-000000000004")
	day    = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
)

func hour(h float64) time.Time { return day.Add(time.Duration(h * float64(time.Hour))) }

func created(id, resource uuid.UUID, start, end time.Time, seats int, status domain.Status) domain.BookingCreated {
	return domain.BookingCreated{BookingID: id, TenantID: tenant, ResourceID: resource, ClientID: uuid.New(),
		Start: start, End: end, Seats: seats, Status: status, BufferBeforeMinutes: 15, BufferAfterMinutes: 30,
		Timezone: "UTC", CreatedAt: day}
}

// history: b1 on res1 moved later; b2 on res1 pending then checked in;
// b3 on res2 cancelled; b4 on res1 completed.
func history(t *testing.T) []projections.Event {
	l := projectiontest.NewLog()
	ev := func(id uuid.UUID, e domain.Event) projections.Event {
		return l.Event(t, tenant, domain.BookingStream(id), e)
	}
	return []projections.Event{
		ev(b1, created(b1, res1, hour(0), hour(1), 1, domain.StatusConfirmed)),
		ev(b2, created(b2, res1, hour(3), hour(4), 2, domain.StatusPending)),
		ev(b3, created(b3, res2, hour(0), hour(2), 1, domain.StatusConfirmed)),
		ev(b1, domain.BookingRescheduled{BookingID: b1, Start: hour(5), End: hour(6), BufferBeforeMinutes: 0, BufferAfterMinutes: 10, Timezone: "UTC"}),
		ev(b2, domain.BookingStatusChanged{BookingID: b2, From: domain.StatusPending, To: domain.StatusConfirmed}),
		ev(b3, domain.BookingCancelled{BookingID: b3, From: domain.StatusConfirmed}),
		ev(b4, created(b4, res1, hour(8), hour(9), 1, domain.StatusConfirmed)),
		ev(b2, domain.BookingStatusChanged{BookingID: b2, From: domain.StatusConfirmed, To: domain.StatusCheckedIn}),
		ev(b4, domain.BookingStatusChanged{BookingID: b4, From: domain.StatusConfirmed, To: domain.StatusCheckedIn}),
		ev(b4, domain.BookingStatusChanged{BookingID: b4, From: domain.StatusCheckedIn, To: domain.StatusCompleted}),
	}
}

func occupied(t *testing.T, m model, tn uuid.UUID, from, to time.Time) []queries.OccupiedInterval {
	t.Helper()
	out, err := m.Occupied(context.Background(), tn, []uuid.UUID{res1, res2}, from, to)
	require.NoError(t, err)
	return out
}

func TestOccupiedFollowsTheLifecycle(t *testing.T) {
	t.Parallel()
	forEach(t, func(t *testing.T, m model) {
		evs := history(t)
		projectiontest.MustApply(t, m, projectiontest.Batch(projections.Cursor{}, evs...))
		got := occupied(t, m, tenant, hour(-24), hour(24))
		require.Equal(t, []queries.OccupiedInterval{
			{BookingID: b2, ResourceID: res1, Start: hour(3), End: hour(4), OccupiedStart: hour(2.75), OccupiedEnd: hour(4.5), Seats: 2},
			{BookingID: b1, ResourceID: res1, Start: hour(5), End: hour(6), OccupiedStart: hour(5), OccupiedEnd: hour(6).Add(10 * time.Minute), Seats: 1},
		}, got)
		require.Empty(t, occupied(t, m, other, hour(-24), hour(24)), "another tenant")

		// Half-open: a range ending where a hold starts, or starting where
		// it ends, does not see it.
		require.Empty(t, occupied(t, m, tenant, hour(0), hour(2.75)))
		require.Len(t, occupied(t, m, tenant, hour(4.5), hour(5.01)), 1)
		require.Equal(t, b1, occupied(t, m, tenant, hour(4.5), hour(5.01))[0].BookingID)

		only, err := m.Occupied(context.Background(), tenant, []uuid.UUID{res2}, hour(-24), hour(24))
		require.NoError(t, err)
		require.Empty(t, only, "the cancelled booking freed res2")
	})
}

func TestApplyIsIdempotent(t *testing.T) {
	t.Parallel()
	forEach(t, func(t *testing.T, m model) {
		evs := history(t)
		projectiontest.MustApply(t, m, projectiontest.Batch(projections.Cursor{}, evs[:4]...))
		projectiontest.MustApply(t, m, projectiontest.Batch(projections.CursorOf(evs[3]), evs[4:]...))
		want := occupied(t, m, tenant, hour(-24), hour(24))
		cp, err := m.Checkpoint(context.Background())
		require.NoError(t, err)

		projectiontest.MustApply(t, m, projectiontest.Bus(evs...))
		for i := len(evs) - 1; i >= 0; i-- {
			projectiontest.MustApply(t, m, projectiontest.Bus(evs[i]))
		}
		// The creation of the cancelled b3 arrives again after its cancellation.
		projectiontest.MustApply(t, m, projectiontest.Bus(evs[2]))
		require.Equal(t, want, occupied(t, m, tenant, hour(-24), hour(24)))

		require.ErrorIs(t, m.Apply(context.Background(), projectiontest.Batch(projections.Cursor{}, evs...)), projections.ErrCheckpointMoved)
		require.Equal(t, want, occupied(t, m, tenant, hour(-24), hour(24)))
		cp2, err := m.Checkpoint(context.Background())
		require.NoError(t, err)
		require.Equal(t, cp, cp2)
	})
}

func TestApplyOldEventAfterNewer(t *testing.T) {
	t.Parallel()
	forEach(t, func(t *testing.T, m model) {
		evs := history(t)
		// b1 created and moved, then its creation (the old time) again.
		projectiontest.MustApply(t, m, projectiontest.Bus(evs[0], evs[3]))
		before := occupied(t, m, tenant, hour(-24), hour(24))
		projectiontest.MustApply(t, m, projectiontest.Bus(evs[0]))
		require.Equal(t, before, occupied(t, m, tenant, hour(-24), hour(24)))
		require.Equal(t, hour(5), before[0].Start)
	})
}

func TestResetEmptiesTheModel(t *testing.T) {
	t.Parallel()
	forEach(t, func(t *testing.T, m model) {
		evs := history(t)
		projectiontest.MustApply(t, m, projectiontest.Batch(projections.Cursor{}, evs...))
		require.NoError(t, m.Reset(context.Background()))
		require.Empty(t, occupied(t, m, tenant, hour(-24), hour(24)))
		cp, err := m.Checkpoint(context.Background())
		require.NoError(t, err)
		require.Equal(t, projections.Cursor{}, cp)
	})
}

func TestHoldsOccupyUntilReleasedExpiredOrConsumed(t *testing.T) {
	t.Parallel()
	forEach(t, func(t *testing.T, m model) {
		l := projectiontest.NewLog()
		h1, h2, h3, b5 := uuid.New(), uuid.New(), uuid.New(), uuid.New()
		hold := func(id uuid.UUID, start, end time.Time) projections.Event {
			return l.Event(t, tenant, domain.HoldStream(id), domain.HoldPlaced{HoldID: id, TenantID: tenant, ResourceID: res2,
				Start: start, End: end, Seats: 1, ExpiresAt: day.Add(time.Hour), BufferAfterMinutes: 5, Timezone: "UTC"})
		}
		placed := []projections.Event{hold(h1, hour(0), hour(1)), hold(h2, hour(2), hour(3)), hold(h3, hour(4), hour(5))}
		projectiontest.MustApply(t, m, projectiontest.Bus(placed...))
		got, err := m.Occupied(context.Background(), tenant, []uuid.UUID{res2}, hour(-24), hour(24))
		require.NoError(t, err)
		require.Len(t, got, 3, "every hold occupies its time")
		require.Equal(t, hour(1).Add(5*time.Minute), got[0].OccupiedEnd, "with the buffers in force")

		consumed := b5
		projectiontest.MustApply(t, m, projectiontest.Bus(
			l.Event(t, tenant, domain.HoldStream(h1), domain.HoldReleased{HoldID: h1, Reason: domain.HoldReleasedByCaller}),
			l.Event(t, tenant, domain.HoldStream(h2), domain.HoldExpired{HoldID: h2}),
			l.Event(t, tenant, domain.HoldStream(h3), domain.HoldReleased{HoldID: h3, Reason: domain.HoldConsumed, BookingID: &consumed}),
			l.Event(t, tenant, domain.BookingStream(b5), domain.BookingCreated{BookingID: b5, TenantID: tenant, ResourceID: res2,
				ClientID: uuid.New(), Start: hour(4), End: hour(5), Seats: 1, Status: domain.StatusConfirmed, Timezone: "UTC"}),
		))
		got, err = m.Occupied(context.Background(), tenant, []uuid.UUID{res2}, hour(-24), hour(24))
		require.NoError(t, err)
		require.Len(t, got, 1, "released and expired holds free their time; the consuming booking takes it over")
		require.Equal(t, b5, got[0].BookingID)

		// A redelivered hold.placed after its release changes nothing.
		projectiontest.MustApply(t, m, projectiontest.Bus(placed[0]))
		again, err := m.Occupied(context.Background(), tenant, []uuid.UUID{res2}, hour(-24), hour(24))
		require.NoError(t, err)
		require.Equal(t, got, again)
	})
}
