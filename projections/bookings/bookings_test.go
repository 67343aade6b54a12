package bookings_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/projections"
	"github.com/bookingengine/booking/projections/bookings"
	"github.com/bookingengine/booking/projections/projectiontest"
	"github.com/bookingengine/booking/queries"
)

// model is what both implementations offer.
type model interface {
	projections.Projection
	queries.GetBookingReadModel
	queries.ListBookingsReadModel
}

// implementations runs the suite against the memory and the PostgreSQL
// read model.
var implementations = []struct {
	name string
	new  func(t *testing.T) model
}{
	{"Memory", func(*testing.T) model { return bookings.NewMemory() }},
	{"Postgres", func(t *testing.T) model {
		return bookings.NewPostgres(projectiontest.MustPool(t, bookings.Migrations()))
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
	tenant  = uuid.MustParse("10000000-0000-0000-0000-000000000001")
	other   = uuid.MustParse("10000000-0000-0000-0000-000000000002")
	res1    = uuid.MustParse("20000000-0000-0000-0000-000000000001")
	res2    = uuid.MustParse("20000000-0000-0000-0000-000000000002")
	client1 = uuid.MustParse("30000000-0000-0000-0000-000000000001")
	client2 = uuid.MustParse("30000000-0000-0000-0000-000000000002")
	b1      = uuid.MustParse("40000000-0000-0000-0000-000000000001")
	b2      = uuid.MustParse("40000000-0000-0000-0000-000000000002")
	b3      = uuid.MustParse("40000000-0000-0000-0000-000000000003")
	day     = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	at      = time.Date(2026, 11, 20, 10, 0, 0, 123000, time.UTC)
)

func created(id, resource, client uuid.UUID, start time.Time, minutes int) domain.BookingCreated {
	return domain.BookingCreated{
		BookingID: id, TenantID: tenant, ResourceID: resource, ClientID: client,
		Start: start, End: start.Add(time.Duration(minutes) * time.Minute), Seats: 1, Title: "Visit " + id.String()[:2],
		Notes: "note", Attributes: map[string]any{"reason": "rotina", "n": 2.0}, Status: domain.StatusConfirmed,
		PolicyVersion: 3, BufferBeforeMinutes: 5, BufferAfterMinutes: 10, Timezone: "America/Sao_Paulo",
		CreatedBy: "admin-1", CreatedAt: at,
	}
}

// history is a small log: three bookings, a reschedule, a check-in, a late
// cancellation.
func history(t *testing.T) []projections.Event {
	l := projectiontest.NewLog()
	ev := func(id uuid.UUID, e domain.Event) projections.Event {
		return l.Event(t, tenant, domain.BookingStream(id), e)
	}
	return []projections.Event{
		ev(b1, created(b1, res1, client1, day, 60)),
		ev(b2, created(b2, res2, client2, day.Add(2*time.Hour), 30)),
		ev(b1, domain.BookingRescheduled{BookingID: b1, Start: day.Add(4 * time.Hour), End: day.Add(5 * time.Hour),
			PreviousStart: day, PreviousEnd: day.Add(time.Hour), PolicyVersion: 4, BufferBeforeMinutes: 0,
			BufferAfterMinutes: 15, Timezone: "Europe/Lisbon", Actor: "manager-1", At: at.Add(time.Minute)}),
		ev(b2, domain.BookingStatusChanged{BookingID: b2, From: domain.StatusConfirmed, To: domain.StatusCheckedIn,
			Reason: "arrived", Actor: "admin-1", At: at.Add(2 * time.Minute)}),
		ev(b3, created(b3, res1, client2, day.Add(24*time.Hour), 45)),
		ev(b3, domain.BookingCancelled{BookingID: b3, From: domain.StatusConfirmed, Reason: "ill", Actor: "admin-1",
			Late: true, At: at.Add(3 * time.Minute)}),
	}
}

var all = queries.Visibility{All: true}

// state is everything the read model shows of the tenants, and its
// checkpoint.
func state(t *testing.T, m model) ([]queries.Booking, projections.Cursor) {
	t.Helper()
	ctx := context.Background()
	var out []queries.Booking
	for _, tn := range []uuid.UUID{tenant, other} {
		bs, err := m.ListBookings(ctx, queries.BookingFilter{TenantID: tn, Visible: all})
		require.NoError(t, err)
		out = append(out, bs...)
	}
	cp, err := m.Checkpoint(ctx)
	require.NoError(t, err)
	return out, cp
}

func TestApplyShowsTheLifecycle(t *testing.T) {
	t.Parallel()
	forEach(t, func(t *testing.T, m model) {
		evs := history(t)
		projectiontest.MustApply(t, m, projectiontest.Batch(projections.Cursor{}, evs...))

		got, err := m.Booking(context.Background(), tenant, b1)
		require.NoError(t, err)
		require.Equal(t, queries.Booking{
			ID: b1, TenantID: tenant, ResourceID: res1, ClientID: client1,
			Start: day.Add(4 * time.Hour), End: day.Add(5 * time.Hour), Timezone: "Europe/Lisbon", Seats: 1,
			Title: "Visit 40", Notes: "note", Attributes: map[string]any{"reason": "rotina", "n": 2.0},
			Status: domain.StatusConfirmed, PolicyVersion: 4, BufferBeforeMinutes: 0, BufferAfterMinutes: 15,
			Version: 2, CreatedAt: at, UpdatedAt: at.Add(time.Minute), CreatedBy: "admin-1", UpdatedBy: "manager-1",
		}, got)

		got, err = m.Booking(context.Background(), tenant, b2)
		require.NoError(t, err)
		require.Equal(t, domain.StatusCheckedIn, got.Status)
		require.Equal(t, "arrived", got.StatusReason)

		got, err = m.Booking(context.Background(), tenant, b3)
		require.NoError(t, err)
		require.Equal(t, domain.StatusCancelled, got.Status)
		require.True(t, got.CancelledLate)
		require.Equal(t, int64(2), got.Version)

		_, err = m.Booking(context.Background(), other, b1)
		require.ErrorIs(t, err, domain.ErrNotFound, "another tenant's booking")
		_, err = m.Booking(context.Background(), tenant, uuid.New())
		require.ErrorIs(t, err, domain.ErrNotFound)

		_, cp := state(t, m)
		require.Equal(t, projections.CursorOf(evs[len(evs)-1]), cp)
	})
}

// TestApplyIsIdempotent: the same events twice, an old event after a newer
// one, and a whole redelivery out of order leave the read model as it was.
func TestApplyIsIdempotent(t *testing.T) {
	t.Parallel()
	forEach(t, func(t *testing.T, m model) {
		evs := history(t)
		projectiontest.MustApply(t, m, projectiontest.Batch(projections.Cursor{}, evs[:3]...))
		projectiontest.MustApply(t, m, projectiontest.Batch(projections.CursorOf(evs[2]), evs[3:]...))
		want, cp := state(t, m)

		// The bus redelivers everything, then single old events, then all
		// of it backwards.
		projectiontest.MustApply(t, m, projectiontest.Bus(evs...))
		projectiontest.MustApply(t, m, projectiontest.Bus(evs[0]))
		projectiontest.MustApply(t, m, projectiontest.Bus(evs[2], evs[0]))
		for i := len(evs) - 1; i >= 0; i-- {
			projectiontest.MustApply(t, m, projectiontest.Bus(evs[i]))
		}
		got, gotCP := state(t, m)
		require.Equal(t, want, got)
		require.Equal(t, cp, gotCP, "bus deliveries leave the checkpoint alone")

		// A store batch after a stale cursor is refused whole.
		err := m.Apply(context.Background(), projectiontest.Batch(projections.Cursor{}, evs...))
		require.ErrorIs(t, err, projections.ErrCheckpointMoved)
		got, gotCP = state(t, m)
		require.Equal(t, want, got)
		require.Equal(t, cp, gotCP)
	})
}

// TestApplyOldEventAfterNewer: a feed that applies a newer event first
// ignores the older one when it arrives.
func TestApplyOldEventAfterNewer(t *testing.T) {
	t.Parallel()
	forEach(t, func(t *testing.T, m model) {
		evs := history(t)
		projectiontest.MustApply(t, m, projectiontest.Bus(evs[0], evs[1], evs[3]))
		before, _ := state(t, m)
		// b2's creation again (version 1) after its check-in (version 2).
		projectiontest.MustApply(t, m, projectiontest.Bus(evs[1]))
		after, _ := state(t, m)
		require.Equal(t, before, after)
		got, err := m.Booking(context.Background(), tenant, b2)
		require.NoError(t, err)
		require.Equal(t, domain.StatusCheckedIn, got.Status)
	})
}

// TestApplyIsAtomic: a batch with an event the model refuses changes
// nothing, not even its valid events or the checkpoint.
func TestApplyIsAtomic(t *testing.T) {
	t.Parallel()
	forEach(t, func(t *testing.T, m model) {
		evs := history(t)
		projectiontest.MustApply(t, m, projectiontest.Batch(projections.Cursor{}, evs[0]))
		before, cp := state(t, m)
		orphan := projectiontest.NewLog().Event(t, tenant, domain.BookingStream(b2),
			domain.BookingCancelled{BookingID: b2, From: domain.StatusConfirmed, At: at})
		orphan.StreamVersion = 2 // a cancellation of a booking the model never saw created
		bad := projectiontest.Batch(cp, evs[2], orphan)
		require.Error(t, m.Apply(context.Background(), bad))
		after, cpAfter := state(t, m)
		require.Equal(t, before, after)
		require.Equal(t, cp, cpAfter)
	})
}

func TestListFiltersAndPages(t *testing.T) {
	t.Parallel()
	forEach(t, func(t *testing.T, m model) {
		ctx := context.Background()
		evs := history(t)
		projectiontest.MustApply(t, m, projectiontest.Batch(projections.Cursor{}, evs...))
		ids := func(f queries.BookingFilter) []uuid.UUID {
			t.Helper()
			f.TenantID = tenant
			bs, err := m.ListBookings(ctx, f)
			require.NoError(t, err)
			out := []uuid.UUID{}
			for _, b := range bs {
				out = append(out, b.ID)
			}
			return out
		}
		// b2 at day+2h, b1 at day+4h, b3 at day+24h.
		require.Equal(t, []uuid.UUID{b2, b1, b3}, ids(queries.BookingFilter{Visible: all}))
		require.Equal(t, []uuid.UUID{b1, b3}, ids(queries.BookingFilter{Visible: all, ResourceID: res1}))
		require.Equal(t, []uuid.UUID{b2, b3}, ids(queries.BookingFilter{Visible: all, ClientID: client2}))
		require.Equal(t, []uuid.UUID{b2, b3}, ids(queries.BookingFilter{Visible: all,
			Statuses: []domain.Status{domain.StatusCheckedIn, domain.StatusCancelled}}))
		// Overlap with [day+2h15, day+4h30): b2 ends at day+2h30, b1 starts at day+4h.
		require.Equal(t, []uuid.UUID{b2, b1}, ids(queries.BookingFilter{Visible: all,
			From: day.Add(135 * time.Minute), To: day.Add(270 * time.Minute)}))
		require.Equal(t, []uuid.UUID{b1}, ids(queries.BookingFilter{Visible: all,
			From: day.Add(150 * time.Minute), To: day.Add(241 * time.Minute)}), "half-open on both sides")

		// Visibility: a client its own; a professional its resource's too.
		require.Equal(t, []uuid.UUID{b1}, ids(queries.BookingFilter{Visible: queries.Visibility{ClientID: client1}}))
		require.Equal(t, []uuid.UUID{b2, b1, b3}, ids(queries.BookingFilter{Visible: queries.Visibility{ClientID: client2, ResourceID: res1}}))
		require.Equal(t, []uuid.UUID{}, ids(queries.BookingFilter{Visible: queries.Visibility{ClientID: uuid.New()}}))
		require.Equal(t, []uuid.UUID{}, ids(queries.BookingFilter{}), "no visibility sees nothing")

		// Pages of one.
		var got []uuid.UUID
		var after *queries.PageKey
		for range 4 {
			bs, err := m.ListBookings(ctx, queries.BookingFilter{TenantID: tenant, Visible: all, After: after, Limit: 1})
			require.NoError(t, err)
			if len(bs) == 0 {
				break
			}
			require.Len(t, bs, 1)
			got = append(got, bs[0].ID)
			after = &queries.PageKey{Start: bs[0].Start, ID: bs[0].ID}
		}
		require.Equal(t, []uuid.UUID{b2, b1, b3}, got)

		bs, err := m.ListBookings(ctx, queries.BookingFilter{TenantID: other, Visible: all})
		require.NoError(t, err)
		require.Empty(t, bs)
	})
}

func TestResetEmptiesTheModel(t *testing.T) {
	t.Parallel()
	forEach(t, func(t *testing.T, m model) {
		evs := history(t)
		projectiontest.MustApply(t, m, projectiontest.Batch(projections.Cursor{}, evs...))
		changed := m.Changed()
		require.NoError(t, m.Reset(context.Background()))
		select {
		case <-changed:
		default:
			t.Fatal("Reset did not signal")
		}
		got, cp := state(t, m)
		require.Empty(t, got)
		require.Equal(t, projections.Cursor{}, cp)
		projectiontest.MustApply(t, m, projectiontest.Batch(projections.Cursor{}, evs...))
		got, _ = state(t, m)
		require.Len(t, got, 3)
	})
}
