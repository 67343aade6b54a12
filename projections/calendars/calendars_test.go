package calendars_test

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/projections"
	"github.com/bookingengine/booking/projections/calendars"
	"github.com/bookingengine/booking/projections/projectiontest"
	"github.com/bookingengine/booking/queries"
)

// model is what both implementations offer.
type model interface {
	projections.Projection
	queries.CalendarReadModel
}

var implementations = []struct {
	name string
	new  func(t *testing.T) model
}{
	{"Memory", func(*testing.T) model { return calendars.NewMemory() }},
	{"Postgres", func(t *testing.T) model {
		return calendars.NewPostgres(projectiontest.MustPool(t, calendars.Migrations()))
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
	pro     = uuid.MustParse("30000000-0000-0000-0000-000000000003")
	b1      = uuid.MustParse("40000000-0000-0000-0000-000000000001")
	b2      = uuid.MustParse("40000000-0000-0000-0000-000000000002")
	b3      = uuid.MustParse("40000000-0000-0000-0000-000000000003")
	series  = uuid.MustParse("50000000-0000-0000-0000-000000000001")
	day     = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	at      = time.Date(2026, 11, 20, 10, 0, 0, 123000, time.UTC)
	ids     = []uuid.UUID{res1, res2, client1, client2, pro}
)

func created(id, resource, client uuid.UUID, start time.Time, minutes int, status domain.Status) domain.BookingCreated {
	return domain.BookingCreated{
		BookingID: id, TenantID: tenant, ResourceID: resource, ClientID: client,
		Start: start, End: start.Add(time.Duration(minutes) * time.Minute), Seats: 1, Title: "Visit " + id.String()[:2],
		Status: status, PolicyVersion: 1, Timezone: "America/Sao_Paulo", CreatedBy: "admin-1", CreatedAt: at,
	}
}

// history is a small log: two resources, two clients and a professional
// linked to res1; three bookings, one of them an occurrence of a series,
// rescheduled, approved, checked in and cancelled; a rename.
func history(t *testing.T) []projections.Event {
	l := projectiontest.NewLog()
	ev := func(stream string, e domain.Event) projections.Event { return l.Event(t, tenant, stream, e) }
	occ := day.Add(24 * time.Hour)
	b3Created := created(b3, res1, client2, occ, 45, domain.StatusConfirmed)
	b3Created.SeriesID, b3Created.OccurrenceStart = &series, &occ
	return []projections.Event{
		ev(domain.ResourceStream(res1), domain.ResourceCreated{ResourceID: res1, TenantID: tenant, Name: "Dr. Ana", Kind: domain.KindPerson, Capacity: 1}),
		ev(domain.ResourceStream(res2), domain.ResourceCreated{ResourceID: res2, TenantID: tenant, Name: "Room 2", Kind: domain.KindSpace, Capacity: 1}),
		ev(domain.ResourceCategoryStream(uuid.New()), domain.ResourceCategoryCreated{TenantID: tenant, Name: "Rooms"}),
		ev(domain.UserStream(client1), domain.UserCreated{UserID: client1, TenantID: tenant, Name: "Bea", Role: domain.RoleClient}),
		ev(domain.UserStream(client2), domain.UserCreated{UserID: client2, TenantID: tenant, Name: "Caio", Role: domain.RoleClient}),
		ev(domain.UserStream(pro), domain.UserCreated{UserID: pro, TenantID: tenant, Name: "Ana", Role: domain.RoleProfessional, ResourceID: &res1}),
		ev(domain.BookingStream(b1), created(b1, res1, client1, day, 60, domain.StatusPending)),
		ev(domain.BookingStream(b2), created(b2, res2, client2, day.Add(2*time.Hour), 30, domain.StatusConfirmed)),
		ev(domain.BookingStream(b1), domain.BookingRescheduled{BookingID: b1, Start: day.Add(4 * time.Hour), End: day.Add(5 * time.Hour),
			PreviousStart: day, PreviousEnd: day.Add(time.Hour), Timezone: "Europe/Lisbon", Actor: "manager-1", At: at.Add(time.Minute)}),
		ev(domain.BookingStream(b1), domain.BookingStatusChanged{BookingID: b1, From: domain.StatusPending, To: domain.StatusConfirmed,
			Actor: "admin-1", At: at.Add(2 * time.Minute)}),
		ev(domain.BookingStream(b2), domain.BookingStatusChanged{BookingID: b2, From: domain.StatusConfirmed, To: domain.StatusCheckedIn,
			Actor: "admin-1", At: at.Add(3 * time.Minute)}),
		ev(domain.BookingStream(b3), b3Created),
		ev(domain.BookingStream(b3), domain.BookingCancelled{BookingID: b3, From: domain.StatusConfirmed, Reason: "ill", Actor: "admin-1",
			At: at.Add(4 * time.Minute)}),
		ev(domain.UserStream(client2), domain.UserUpdated{UserID: client2, Name: "Caio Lima", Role: domain.RoleClient}),
		ev(domain.SeriesStream(series), domain.SeriesCreated{SeriesID: series, TenantID: tenant, ResourceID: res1, ClientID: client2,
			RRule: "FREQ=WEEKLY;COUNT=2", DTStart: "2026-12-02T09:00:00", Timezone: "America/Sao_Paulo", DurationMinutes: 45,
			CreatedAt: at}),
		ev(domain.SeriesStream(series), domain.SeriesOccurrencesCancelled{SeriesID: series, Scope: domain.ScopeAll,
			BookingIDs: []uuid.UUID{b3}, At: at.Add(5 * time.Minute)}),
	}
}

var everything = [2]time.Time{time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)}

// state is everything the read model shows of the tenants, and its
// checkpoint.
func state(t *testing.T, m model) (map[string]any, projections.Cursor) {
	t.Helper()
	ctx := context.Background()
	out := map[string]any{}
	for _, tn := range []uuid.UUID{tenant, other} {
		for _, id := range ids {
			for _, kind := range []queries.CalendarKind{queries.CalendarResource, queries.CalendarUser} {
				o, err := m.CalendarOwner(ctx, tn, kind, id)
				if err != nil {
					require.ErrorIs(t, err, domain.ErrNotFound)
				}
				out["owner "+tn.String()+string(kind)+id.String()] = o
			}
			for _, f := range []queries.CalendarFilter{{ResourceID: id}, {ClientID: id}} {
				f.TenantID, f.From, f.To = tn, everything[0], everything[1]
				es, err := m.CalendarEntries(ctx, f)
				require.NoError(t, err)
				out["entries "+tn.String()+f.ResourceID.String()+f.ClientID.String()] = es
			}
		}
	}
	for _, tn := range []uuid.UUID{tenant, other} {
		s, err := m.CalendarSeries(ctx, tn, []uuid.UUID{series, uuid.Nil})
		require.NoError(t, err)
		out["series "+tn.String()] = s
	}
	cp, err := m.Checkpoint(ctx)
	require.NoError(t, err)
	return out, cp
}

func entries(t *testing.T, m model, f queries.CalendarFilter) []queries.CalendarEntry {
	t.Helper()
	if f.TenantID == uuid.Nil {
		f.TenantID = tenant
	}
	if f.From.IsZero() {
		f.From, f.To = everything[0], everything[1]
	}
	es, err := m.CalendarEntries(context.Background(), f)
	require.NoError(t, err)
	return es
}

func bookingIDs(es []queries.CalendarEntry) []uuid.UUID {
	out := []uuid.UUID{}
	for _, e := range es {
		out = append(out, e.BookingID)
	}
	return out
}

func TestApplyShowsTheLifecycle(t *testing.T) {
	t.Parallel()
	forEach(t, func(t *testing.T, m model) {
		evs := history(t)
		projectiontest.MustApply(t, m, projectiontest.Batch(projections.Cursor{}, evs...))

		c1, c2 := client1, client2
		occ := day.Add(24 * time.Hour)
		got := entries(t, m, queries.CalendarFilter{ResourceID: res1})
		require.Equal(t, []queries.CalendarEntry{
			{BookingID: b1, ResourceID: res1, ResourceName: "Dr. Ana", ClientID: &c1, ClientName: "Bea", Title: "Visit 40",
				Start: day.Add(4 * time.Hour), End: day.Add(5 * time.Hour), Timezone: "Europe/Lisbon", Status: domain.StatusConfirmed,
				Sequence: 2, CreatedAt: at, UpdatedAt: at.Add(2 * time.Minute)},
			{BookingID: b3, ResourceID: res1, ResourceName: "Dr. Ana", ClientID: &c2, ClientName: "Caio Lima", Title: "Visit 40",
				Start: occ, End: occ.Add(45 * time.Minute), Timezone: "America/Sao_Paulo", Status: domain.StatusCancelled,
				Sequence: 1, SeriesID: &series, OccurrenceStart: &occ, CreatedAt: at, UpdatedAt: at.Add(4 * time.Minute)},
		}, got)

		// A check-in keeps the iCalendar status, so the sequence stays.
		got = entries(t, m, queries.CalendarFilter{ResourceID: res2})
		require.Len(t, got, 1)
		require.Equal(t, domain.StatusCheckedIn, got[0].Status)
		require.Equal(t, 0, got[0].Sequence)

		o, err := m.CalendarOwner(context.Background(), tenant, queries.CalendarUser, pro)
		require.NoError(t, err)
		require.Equal(t, queries.CalendarOwner{TenantID: tenant, Kind: queries.CalendarUser, ID: pro, Name: "Ana", LinkedResource: res1}, o)
		o, err = m.CalendarOwner(context.Background(), tenant, queries.CalendarResource, res2)
		require.NoError(t, err)
		require.Equal(t, "Room 2", o.Name)
		_, err = m.CalendarOwner(context.Background(), tenant, queries.CalendarUser, res2)
		require.ErrorIs(t, err, domain.ErrNotFound, "a resource is no user")
		_, err = m.CalendarOwner(context.Background(), other, queries.CalendarResource, res2)
		require.ErrorIs(t, err, domain.ErrNotFound, "another tenant's resource")

		ss, err := m.CalendarSeries(context.Background(), tenant, []uuid.UUID{series})
		require.NoError(t, err)
		require.Equal(t, []queries.CalendarSeries{{ID: series, RRule: "FREQ=WEEKLY;COUNT=2", DTStart: "2026-12-02T09:00:00",
			Timezone: "America/Sao_Paulo", DurationMinutes: 45, Sequence: 1, CreatedAt: at, UpdatedAt: at.Add(5 * time.Minute),
			Members: entries(t, m, queries.CalendarFilter{ResourceID: res1})[1:]}}, ss)
		ss, err = m.CalendarSeries(context.Background(), other, []uuid.UUID{series})
		require.NoError(t, err)
		require.Empty(t, ss, "another tenant's series")

		_, cp := state(t, m)
		require.Equal(t, projections.CursorOf(evs[len(evs)-1]), cp)
	})
}

func TestEntriesFilter(t *testing.T) {
	t.Parallel()
	forEach(t, func(t *testing.T, m model) {
		projectiontest.MustApply(t, m, projectiontest.Batch(projections.Cursor{}, history(t)...))
		// b2 at day+2h (30 min) on res2 for client2, b1 at day+4h on res1
		// for client1, b3 at day+24h on res1 for client2.
		require.Equal(t, []uuid.UUID{b2, b3}, bookingIDs(entries(t, m, queries.CalendarFilter{ClientID: client2})))
		require.Equal(t, []uuid.UUID{b2, b1, b3}, bookingIDs(entries(t, m, queries.CalendarFilter{ClientID: client2, ResourceID: res1})),
			"a professional's calendar: its own bookings and its resource's")
		window := func(from, to int) []uuid.UUID {
			return bookingIDs(entries(t, m, queries.CalendarFilter{ClientID: client2, ResourceID: res1,
				From: day.Add(time.Duration(from) * time.Minute), To: day.Add(time.Duration(to) * time.Minute)}))
		}
		require.Equal(t, []uuid.UUID{b2, b1}, window(149, 241), "b2 ends after from, b1 starts before to")
		require.Equal(t, []uuid.UUID{b1}, window(150, 241), "half-open: b2 ends at from")
		require.Equal(t, []uuid.UUID{b2}, window(149, 240), "half-open: b1 starts at to")
		require.Equal(t, []uuid.UUID{}, bookingIDs(entries(t, m, queries.CalendarFilter{ResourceID: res1, TenantID: other})))
		require.Equal(t, []uuid.UUID{}, bookingIDs(entries(t, m, queries.CalendarFilter{})), "no side selects nothing")
	})
}

// TestApplyIsIdempotent: the same events twice, an old event after a newer
// one, and a whole redelivery out of order leave the read model as it was.
func TestApplyIsIdempotent(t *testing.T) {
	t.Parallel()
	forEach(t, func(t *testing.T, m model) {
		evs := history(t)
		projectiontest.MustApply(t, m, projectiontest.Batch(projections.Cursor{}, evs[:9]...))
		projectiontest.MustApply(t, m, projectiontest.Batch(projections.CursorOf(evs[8]), evs[9:]...))
		want, cp := state(t, m)

		projectiontest.MustApply(t, m, projectiontest.Bus(evs...))
		projectiontest.MustApply(t, m, projectiontest.Bus(evs[6]))
		projectiontest.MustApply(t, m, projectiontest.Bus(evs[8], evs[6], evs[4]))
		for i := len(evs) - 1; i >= 0; i-- {
			projectiontest.MustApply(t, m, projectiontest.Bus(evs[i]))
		}
		got, gotCP := state(t, m)
		require.Equal(t, want, got)
		require.Equal(t, cp, gotCP, "bus deliveries leave the checkpoint alone")

		err := m.Apply(context.Background(), projectiontest.Batch(projections.Cursor{}, evs...))
		require.ErrorIs(t, err, projections.ErrCheckpointMoved)
		got, gotCP = state(t, m)
		require.Equal(t, want, got)
		require.Equal(t, cp, gotCP)
	})
}

// dump returns the rows of the PostgreSQL read model's tables as text,
// table by table in id order.
func dump(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	return projectiontest.Dump(t, pool, "read_calendar_entries", "read_calendar_series", "read_calendar_owners")
}

// TestPostgresRedeliveredCreations: rows created in a batch go in with
// COPY; a batch that delivers their creations again (the events are not
// in this test's event store, so the projection cannot tell they are
// applied and folds them) falls back to the version-guarded upsert,
// which keeps the stored rows and still writes the streams new to the
// model, also one created and changed in the same batch.
func TestPostgresRedeliveredCreations(t *testing.T) {
	t.Parallel()
	evs := history(t)
	wantPool := projectiontest.MustPool(t, calendars.Migrations())
	projectiontest.MustApply(t, calendars.NewPostgres(wantPool), projectiontest.Batch(projections.Cursor{}, evs...))
	want := dump(t, wantPool)

	pool := projectiontest.MustPool(t, calendars.Migrations())
	m := calendars.NewPostgres(pool)
	// The owners, b1 (created and rescheduled) and b2 (created).
	projectiontest.MustApply(t, m, projectiontest.Batch(projections.Cursor{}, evs[:9]...))
	// res1's, b1's and b2's creations again, with b3's creation and
	// cancellation.
	projectiontest.MustApply(t, m, projectiontest.Bus(evs[0], evs[6], evs[7], evs[11], evs[12]))
	projectiontest.MustApply(t, m, projectiontest.Batch(projections.CursorOf(evs[8]), evs[9:]...))
	require.Equal(t, want, dump(t, pool))

	// Everything again, and the creations alone.
	projectiontest.MustApply(t, m, projectiontest.Bus(evs...))
	projectiontest.MustApply(t, m, projectiontest.Bus(evs[1], evs[3], evs[7], evs[11], evs[14]))
	require.Equal(t, want, dump(t, pool))
}

// TestApplyOldEventAfterNewer: an older event arriving after a newer one
// of its stream is ignored; the sequence does not rise twice.
func TestApplyOldEventAfterNewer(t *testing.T) {
	t.Parallel()
	forEach(t, func(t *testing.T, m model) {
		evs := history(t)
		projectiontest.MustApply(t, m, projectiontest.Bus(evs[:10]...))
		before, _ := state(t, m)
		// b1's reschedule (version 2) after its approval (version 3), and
		// its creation again.
		projectiontest.MustApply(t, m, projectiontest.Bus(evs[8]))
		projectiontest.MustApply(t, m, projectiontest.Bus(evs[6]))
		after, _ := state(t, m)
		require.Equal(t, before, after)
		got := entries(t, m, queries.CalendarFilter{ResourceID: res1})
		require.Len(t, got, 1)
		require.Equal(t, 2, got[0].Sequence)
		require.Equal(t, domain.StatusConfirmed, got[0].Status)
	})
}

// TestApplyIsAtomic: a batch with an event the model refuses changes
// nothing, not even its valid events or the checkpoint.
func TestApplyIsAtomic(t *testing.T) {
	t.Parallel()
	forEach(t, func(t *testing.T, m model) {
		evs := history(t)
		projectiontest.MustApply(t, m, projectiontest.Batch(projections.Cursor{}, evs[:7]...))
		before, cp := state(t, m)
		orphan := projectiontest.NewLog().Event(t, tenant, domain.BookingStream(b3),
			domain.BookingCancelled{BookingID: b3, From: domain.StatusConfirmed, At: at})
		orphan.StreamVersion = 2 // a cancellation of a booking the model never saw created
		require.Error(t, m.Apply(context.Background(), projectiontest.Batch(cp, evs[7], orphan)))
		after, cpAfter := state(t, m)
		require.Equal(t, before, after)
		require.Equal(t, cp, cpAfter)
	})
}

func TestResetEmptiesTheModel(t *testing.T) {
	t.Parallel()
	forEach(t, func(t *testing.T, m model) {
		evs := history(t)
		projectiontest.MustApply(t, m, projectiontest.Batch(projections.Cursor{}, evs...))
		want, _ := state(t, m)
		changed := m.Changed()
		require.NoError(t, m.Reset(context.Background()))
		select {
		case <-changed:
		default:
			t.Fatal("Reset did not signal")
		}
		require.Empty(t, entries(t, m, queries.CalendarFilter{ResourceID: res1}))
		_, cp := state(t, m)
		require.Equal(t, projections.Cursor{}, cp)
		projectiontest.MustApply(t, m, projectiontest.Batch(projections.Cursor{}, evs...))
		got, _ := state(t, m)
		require.Equal(t, want, got)
	})
}

// TestFeedStores runs the feed stores' contract over both.
func TestFeedStores(t *testing.T) {
	t.Parallel()
	for _, impl := range []struct {
		name string
		new  func(t *testing.T) queries.CalendarFeedStore
	}{
		{"Memory", func(*testing.T) queries.CalendarFeedStore { return calendars.NewMemoryFeeds() }},
		{"Postgres", func(t *testing.T) queries.CalendarFeedStore {
			return calendars.NewPostgresFeeds(projectiontest.MustPool(t, calendars.Migrations()))
		}},
	} {
		t.Run(impl.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := impl.new(t)
			hash := func(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }
			feed := queries.CalendarFeed{TokenHash: hash("a"), TenantID: tenant, Kind: queries.CalendarResource, CalendarID: res1,
				Detail: queries.CalendarFull, CreatedBy: "admin-1", CreatedAt: at.Truncate(time.Microsecond)}
			require.NoError(t, s.PutCalendarFeed(ctx, feed))
			got, err := s.CalendarFeedByHash(ctx, hash("a"))
			require.NoError(t, err)
			require.Equal(t, feed, got)

			// Another calendar's feed is independent; a new feed of the
			// same calendar replaces the old one.
			userFeed := feed
			userFeed.TokenHash, userFeed.Kind, userFeed.CalendarID = hash("u"), queries.CalendarUser, client1
			require.NoError(t, s.PutCalendarFeed(ctx, userFeed))
			busy := feed
			busy.TokenHash, busy.Detail = hash("b"), queries.CalendarBusy
			require.NoError(t, s.PutCalendarFeed(ctx, busy))
			_, err = s.CalendarFeedByHash(ctx, hash("a"))
			require.ErrorIs(t, err, domain.ErrNotFound, "the replaced token")
			got, err = s.CalendarFeedByHash(ctx, hash("b"))
			require.NoError(t, err)
			require.Equal(t, busy, got)

			ok, err := s.RevokeCalendarFeed(ctx, tenant, queries.CalendarResource, res1)
			require.NoError(t, err)
			require.True(t, ok)
			_, err = s.CalendarFeedByHash(ctx, hash("b"))
			require.ErrorIs(t, err, domain.ErrNotFound, "the revoked token")
			ok, err = s.RevokeCalendarFeed(ctx, tenant, queries.CalendarResource, res1)
			require.NoError(t, err)
			require.False(t, ok, "nothing left to revoke")
			_, err = s.CalendarFeedByHash(ctx, hash("u"))
			require.NoError(t, err, "the user's feed stays")
		})
	}
}
