package reports_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/projections"
	"github.com/bookingengine/booking/projections/projectiontest"
	"github.com/bookingengine/booking/projections/reports"
	"github.com/bookingengine/booking/queries"
)

// model is what both implementations offer.
type model interface {
	projections.Projection
	queries.ReportReadModel
}

var implementations = []struct {
	name string
	new  func(t *testing.T) model
}{
	{"Memory", func(*testing.T) model { return reports.NewMemory() }},
	{"Postgres", func(t *testing.T) model {
		return reports.NewPostgres(projectiontest.MustPool(t, reports.Migrations()))
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
	cat1   = uuid.MustParse("60000000-0000-0000-0000-000000000001")
	res1   = uuid.MustParse("20000000-0000-0000-0000-000000000001")
	res2   = uuid.MustParse("20000000-0000-0000-0000-000000000002")
	res3   = uuid.MustParse("20000000-0000-0000-0000-000000000003")
	client = uuid.MustParse("30000000-0000-0000-0000-000000000001")
	at     = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	sp     = mustZone("America/Sao_Paulo") // UTC-3 all year
	// d1 and d2 are two local dates; the report covers both.
	d1 = time.Date(2026, 12, 1, 0, 0, 0, 0, sp)
	d2 = d1.AddDate(0, 0, 1)
	d3 = d2.AddDate(0, 0, 1)
)

func mustZone(name string) *time.Location {
	l, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return l
}

func booking(l *projectiontest.Log, t *testing.T, tn, id, resource uuid.UUID, start time.Time, minutes, seats int, status domain.Status) projections.Event {
	return l.Event(t, tn, domain.BookingStream(id), domain.BookingCreated{
		BookingID: id, TenantID: tn, ResourceID: resource, ClientID: client, Start: start.UTC(),
		End: start.Add(time.Duration(minutes) * time.Minute).UTC(), Seats: seats, Status: status, Timezone: "America/Sao_Paulo",
		CreatedAt: at, CreatedBy: "admin",
	})
}

func status(l *projectiontest.Log, t *testing.T, id uuid.UUID, from, to domain.Status) projections.Event {
	return l.Event(t, tenant, domain.BookingStream(id), domain.BookingStatusChanged{BookingID: id, From: from, To: to, At: at})
}

var (
	bA, bB, bC, bD = uuid.MustParse("40000000-0000-0000-0000-00000000000a"), uuid.MustParse("40000000-0000-0000-0000-00000000000b"),
		uuid.MustParse("40000000-0000-0000-0000-00000000000c"), uuid.MustParse("40000000-0000-0000-0000-00000000000d")
	bE, bF, bG, bH = uuid.MustParse("40000000-0000-0000-0000-00000000000e"), uuid.MustParse("40000000-0000-0000-0000-00000000000f"),
		uuid.MustParse("40000000-0000-0000-0000-000000000010"), uuid.MustParse("40000000-0000-0000-0000-000000000011")
)

// history is a known workload over two local days in São Paulo (all
// bookings created at `at`, 2026-11-20 10:00 UTC):
//
//	bA res1 d1 09:00 60 min 1 seat  confirmed → completed       lead 15960
//	bB res1 d1 23:30 60 min 2 seats pending → confirmed → checked_in (ends on d2) lead 16830
//	bC res2 d2 10:00 30 min         confirmed → cancelled late lead 17460
//	bD res3 d2 11:00 45 min         pending → rejected         lead 17520
//	bE res3 d2 12:00 60 min         confirmed → no_show        lead 17580
//	bF res2 d1 08:00 → d2 08:00 30 min confirmed               lead 17340
//	bG res1 d3 09:00: after the range; bH: another tenant's.
func history(t *testing.T) []projections.Event {
	l := projectiontest.NewLog()
	at9 := func(day time.Time, h, m int) time.Time {
		return day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute)
	}
	utc := domain.DefaultSettings()
	saoPaulo := domain.DefaultSettings()
	saoPaulo.Timezone = "America/Sao_Paulo"
	return []projections.Event{
		l.Event(t, tenant, domain.TenantStream(tenant), domain.TenantCreated{TenantID: tenant, Settings: utc, PolicyVersion: 1}),
		l.Event(t, tenant, domain.TenantStream(tenant), domain.TenantSettingsChanged{TenantID: tenant, Settings: saoPaulo, PolicyVersion: 2}),
		l.Event(t, other, domain.TenantStream(other), domain.TenantCreated{TenantID: other, Settings: utc, PolicyVersion: 1}),
		l.Event(t, tenant, domain.ResourceCategoryStream(cat1), domain.ResourceCategoryCreated{CategoryID: cat1, TenantID: tenant, Name: "Rooms"}),
		l.Event(t, tenant, domain.ResourceStream(res1), domain.ResourceCreated{ResourceID: res1, TenantID: tenant, CategoryID: &cat1, Name: "Room A", Capacity: 2}),
		l.Event(t, tenant, domain.ResourceStream(res2), domain.ResourceCreated{ResourceID: res2, TenantID: tenant, CategoryID: &cat1, Name: "Room B", Capacity: 1}),
		l.Event(t, tenant, domain.ResourceStream(res3), domain.ResourceCreated{ResourceID: res3, TenantID: tenant, Name: "Dr. Ana", Capacity: 1}),
		l.Event(t, tenant, domain.ResourceStream(res2), domain.ResourceUpdated{ResourceID: res2, CategoryID: &cat1, Name: "Room B2", Capacity: 1}),
		booking(l, t, tenant, bA, res1, at9(d1, 9, 0), 60, 1, domain.StatusConfirmed),
		booking(l, t, tenant, bB, res1, at9(d1, 23, 30), 60, 2, domain.StatusPending),
		booking(l, t, tenant, bC, res2, at9(d2, 10, 0), 30, 1, domain.StatusConfirmed),
		booking(l, t, tenant, bD, res3, at9(d2, 11, 0), 45, 1, domain.StatusPending),
		booking(l, t, tenant, bE, res3, at9(d2, 12, 0), 60, 1, domain.StatusConfirmed),
		booking(l, t, tenant, bF, res2, at9(d1, 8, 0), 30, 1, domain.StatusConfirmed),
		booking(l, t, tenant, bG, res1, at9(d3, 9, 0), 60, 1, domain.StatusConfirmed),
		booking(l, t, other, bH, res1, at9(d1, 9, 0), 60, 1, domain.StatusConfirmed),
		status(l, t, bA, domain.StatusConfirmed, domain.StatusCheckedIn),
		status(l, t, bA, domain.StatusCheckedIn, domain.StatusCompleted),
		status(l, t, bB, domain.StatusPending, domain.StatusConfirmed),
		status(l, t, bB, domain.StatusConfirmed, domain.StatusCheckedIn),
		l.Event(t, tenant, domain.BookingStream(bC), domain.BookingCancelled{BookingID: bC, From: domain.StatusConfirmed, Late: true, At: at}),
		status(l, t, bD, domain.StatusPending, domain.StatusRejected),
		status(l, t, bE, domain.StatusConfirmed, domain.StatusNoShow),
		l.Event(t, tenant, domain.BookingStream(bF), domain.BookingRescheduled{BookingID: bF, Start: at9(d2, 8, 0).UTC(),
			End: at9(d2, 8, 30).UTC(), Timezone: "America/Sao_Paulo", At: at}),
	}
}

// days are d1 and d2 as BookingStats wants them.
var days = []queries.ReportDay{
	{Date: "2026-12-01", Start: d1.UTC(), End: d2.UTC()},
	{Date: "2026-12-02", Start: d2.UTC(), End: d3.UTC()},
}

func stats(t *testing.T, m model, tn uuid.UUID, g queries.ReportGroup) []queries.BookingStats {
	t.Helper()
	out, err := m.BookingStats(context.Background(), queries.ReportFilter{TenantID: tn, From: d1, To: d3, GroupBy: g, Days: days})
	require.NoError(t, err)
	slices.SortFunc(out, func(a, b queries.BookingStats) int { return strings.Compare(a.Key, b.Key) })
	return out
}

type statusCount = map[domain.Status]int

var (
	wantRes1 = queries.BookingStats{Key: res1.String(), ByStatus: statusCount{domain.StatusCompleted: 1, domain.StatusCheckedIn: 1},
		Confirmed: 2, BookedMinutes: 60 + 120, LeadSum: 15960 + 16830, LeadP50: 15960, LeadP90: 16830}
	wantRes2 = queries.BookingStats{Key: res2.String(), ByStatus: statusCount{domain.StatusCancelled: 1, domain.StatusConfirmed: 1},
		Confirmed: 2, LateCancelled: 1, BookedMinutes: 30, LeadSum: 17460 + 17340, LeadP50: 17340, LeadP90: 17460}
	wantRes3 = queries.BookingStats{Key: res3.String(), ByStatus: statusCount{domain.StatusRejected: 1, domain.StatusNoShow: 1},
		Confirmed: 1, BookedMinutes: 60, LeadSum: 17520 + 17580, LeadP50: 17520, LeadP90: 17580}
)

func TestBookingStatsOfAKnownWorkload(t *testing.T) {
	t.Parallel()
	forEach(t, func(t *testing.T, m model) {
		projectiontest.MustApply(t, m, projectiontest.Batch(projections.Cursor{}, history(t)...))

		require.Equal(t, []queries.BookingStats{wantRes1, wantRes2, wantRes3}, stats(t, m, tenant, queries.GroupByResource))

		cat := wantRes1
		cat.Key, cat.ByStatus = cat1.String(), statusCount{domain.StatusCompleted: 1, domain.StatusCheckedIn: 1,
			domain.StatusCancelled: 1, domain.StatusConfirmed: 1}
		cat.Confirmed, cat.LateCancelled, cat.BookedMinutes = 4, 1, 210
		cat.LeadSum, cat.LeadP50, cat.LeadP90 = 15960+16830+17340+17460, 16830, 17460
		uncategorized := wantRes3
		uncategorized.Key = queries.UncategorizedKey
		require.Equal(t, []queries.BookingStats{cat, uncategorized}, stats(t, m, tenant, queries.GroupByCategory))

		day1 := wantRes1
		day1.Key = "2026-12-01" // bB starts on d1 and ends on d2: it counts on d1
		day2 := queries.BookingStats{Key: "2026-12-02", ByStatus: statusCount{domain.StatusCancelled: 1, domain.StatusConfirmed: 1,
			domain.StatusRejected: 1, domain.StatusNoShow: 1}, Confirmed: 3, LateCancelled: 1, BookedMinutes: 90,
			LeadSum: 17340 + 17460 + 17520 + 17580, LeadP50: 17460, LeadP90: 17580}
		require.Equal(t, []queries.BookingStats{day1, day2}, stats(t, m, tenant, queries.GroupByDay))

		// The other tenant sees only its own booking.
		require.Len(t, stats(t, m, other, queries.GroupByResource), 1)
		require.Empty(t, stats(t, m, uuid.New(), queries.GroupByDay))

		cat0, err := m.ReportCatalog(context.Background(), tenant)
		require.NoError(t, err)
		require.Equal(t, queries.ReportCatalog{Timezone: "America/Sao_Paulo",
			Resources: []queries.ReportResource{{ID: res1, CategoryID: cat1, Name: "Room A", Active: true},
				{ID: res2, CategoryID: cat1, Name: "Room B2", Active: true}, {ID: res3, Name: "Dr. Ana", Active: true}},
			Categories: []queries.ReportCategory{{ID: cat1, Name: "Rooms"}}}, cat0)
		_, err = m.ReportCatalog(context.Background(), uuid.New())
		require.ErrorIs(t, err, domain.ErrNotFound)
	})
}

// state is everything the read model shows, and its checkpoint.
func state(t *testing.T, m model) (map[string]any, projections.Cursor) {
	t.Helper()
	out := map[string]any{}
	for _, tn := range []uuid.UUID{tenant, other} {
		for _, g := range []queries.ReportGroup{queries.GroupByResource, queries.GroupByCategory, queries.GroupByDay} {
			out[tn.String()+string(g)] = stats(t, m, tn, g)
		}
		c, err := m.ReportCatalog(context.Background(), tn)
		if err != nil {
			require.ErrorIs(t, err, domain.ErrNotFound)
		}
		out["catalog "+tn.String()] = c
	}
	cp, err := m.Checkpoint(context.Background())
	require.NoError(t, err)
	return out, cp
}

// TestApplyIsIdempotent: the same events twice, old events after newer
// ones and a backwards redelivery leave the read model as it was.
func TestApplyIsIdempotent(t *testing.T) {
	t.Parallel()
	forEach(t, func(t *testing.T, m model) {
		evs := history(t)
		projectiontest.MustApply(t, m, projectiontest.Batch(projections.Cursor{}, evs[:12]...))
		projectiontest.MustApply(t, m, projectiontest.Batch(projections.CursorOf(evs[11]), evs[12:]...))
		want, cp := state(t, m)

		projectiontest.MustApply(t, m, projectiontest.Bus(evs...))
		projectiontest.MustApply(t, m, projectiontest.Bus(evs[16], evs[8], evs[1], evs[4]))
		for i := len(evs) - 1; i >= 0; i-- {
			projectiontest.MustApply(t, m, projectiontest.Bus(evs[i]))
		}
		got, gotCP := state(t, m)
		require.Equal(t, want, got)
		require.Equal(t, cp, gotCP, "bus deliveries leave the checkpoint alone")

		err := m.Apply(context.Background(), projectiontest.Batch(projections.Cursor{}, evs...))
		require.ErrorIs(t, err, projections.ErrCheckpointMoved)
		got, _ = state(t, m)
		require.Equal(t, want, got)
	})
}

// dump returns the rows of the PostgreSQL read model's tables as text,
// table by table in id order.
func dump(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	return projectiontest.Dump(t, pool, "read_report_bookings", "read_report_tenants", "read_report_resources", "read_report_categories")
}

// TestPostgresRedeliveredCreations: bookings created in a batch go in
// with COPY; a batch that delivers their creations again (the events are
// not in this test's event store, so the projection cannot tell they are
// applied and folds them) falls back to the version-guarded upsert,
// which keeps the stored rows, moves on one changed in the same batch
// and still writes the bookings new to the model.
func TestPostgresRedeliveredCreations(t *testing.T) {
	t.Parallel()
	evs := history(t)
	wantPool := projectiontest.MustPool(t, reports.Migrations())
	projectiontest.MustApply(t, reports.NewPostgres(wantPool), projectiontest.Batch(projections.Cursor{}, evs...))
	want := dump(t, wantPool)

	pool := projectiontest.MustPool(t, reports.Migrations())
	m := reports.NewPostgres(pool)
	// The catalog and the creations of bA to bG.
	projectiontest.MustApply(t, m, projectiontest.Batch(projections.Cursor{}, evs[:15]...))
	// bA's creation again with its check-in, bB's creation again, and
	// bH's creation.
	projectiontest.MustApply(t, m, projectiontest.Bus(evs[8], evs[16], evs[9], evs[15]))
	projectiontest.MustApply(t, m, projectiontest.Batch(projections.CursorOf(evs[14]), evs[15:]...))
	require.Equal(t, want, dump(t, pool))

	// Everything again, and the creations alone.
	projectiontest.MustApply(t, m, projectiontest.Bus(evs...))
	projectiontest.MustApply(t, m, projectiontest.Bus(evs[8], evs[10], evs[13], evs[14], evs[15]))
	require.Equal(t, want, dump(t, pool))
}

// TestApplyOldEventAfterNewer: bA's check-in (version 2) arriving after
// its completion (version 3) leaves it completed.
func TestApplyOldEventAfterNewer(t *testing.T) {
	t.Parallel()
	forEach(t, func(t *testing.T, m model) {
		evs := history(t)
		var withoutCheckIn []projections.Event
		for i, e := range evs {
			if i != 16 {
				withoutCheckIn = append(withoutCheckIn, e)
			}
		}
		// The feed skipped version 2 of bA; version 3 (completed) applies
		// on top of version 1.
		projectiontest.MustApply(t, m, projectiontest.Bus(withoutCheckIn...))
		before, _ := state(t, m)
		projectiontest.MustApply(t, m, projectiontest.Bus(evs[16]))
		after, _ := state(t, m)
		require.Equal(t, before, after)
		require.Equal(t, wantRes1, stats(t, m, tenant, queries.GroupByResource)[0])
	})
}

func TestApplyIsAtomic(t *testing.T) {
	t.Parallel()
	forEach(t, func(t *testing.T, m model) {
		evs := history(t)
		projectiontest.MustApply(t, m, projectiontest.Batch(projections.Cursor{}, evs[:8]...))
		before, cp := state(t, m)
		orphan := projectiontest.NewLog().Event(t, tenant, domain.BookingStream(bB),
			domain.BookingCancelled{BookingID: bB, From: domain.StatusConfirmed, At: at})
		orphan.StreamVersion = 2 // a cancellation of a booking the model never saw created
		require.Error(t, m.Apply(context.Background(), projectiontest.Batch(cp, evs[8], orphan)))
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
		require.NoError(t, m.Reset(context.Background()))
		_, err := m.ReportCatalog(context.Background(), tenant)
		require.ErrorIs(t, err, domain.ErrNotFound)
		require.Empty(t, stats(t, m, tenant, queries.GroupByDay))
		projectiontest.MustApply(t, m, projectiontest.Batch(projections.Cursor{}, evs...))
		got, _ := state(t, m)
		require.Equal(t, want, got)
	})
}
