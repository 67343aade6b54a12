package projections_test

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/commands"
	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/eventstore"
	"github.com/bookingengine/booking/eventstore/memory"
	"github.com/bookingengine/booking/eventstore/postgres"
	"github.com/bookingengine/booking/internal/testenv"
	"github.com/bookingengine/booking/projections"
	"github.com/bookingengine/booking/projections/calendars"
	"github.com/bookingengine/booking/projections/readside"
	"github.com/bookingengine/booking/projections/reports"
	"github.com/bookingengine/booking/queries"
)

// calendarsAndReports returns the calendars and reports read models of
// rs.
func calendarsAndReports(t *testing.T, rs *readside.ReadSide) (queries.CalendarReadModel, queries.ReportReadModel, []projections.Projection) {
	t.Helper()
	var (
		cal  queries.CalendarReadModel
		rep  queries.ReportReadModel
		mine []projections.Projection
	)
	for _, p := range rs.Projections {
		switch p.Name() {
		case calendars.Name:
			cal = p.(queries.CalendarReadModel)
			mine = append(mine, p)
		case reports.Name:
			rep = p.(queries.ReportReadModel)
			mine = append(mine, p)
		}
	}
	require.NotNil(t, cal, "the read side runs the calendars projection")
	require.NotNil(t, rep, "the read side runs the reports projection")
	return cal, rep, mine
}

// calendarsAndReportsState is everything the calendars and reports read
// models answer about the world.
func calendarsAndReportsState(t *testing.T, rs *readside.ReadSide, w *world) map[string]any {
	t.Helper()
	ctx := context.Background()
	cal, rep, mine := calendarsAndReports(t, rs)
	out := map[string]any{}
	from, to := w.base.AddDate(0, 0, -1), w.base.AddDate(0, 0, 5)
	for _, tn := range w.tenants {
		for _, r := range w.resources[tn] {
			o, err := cal.CalendarOwner(ctx, tn, queries.CalendarResource, r)
			require.NoError(t, err)
			es, err := cal.CalendarEntries(ctx, queries.CalendarFilter{TenantID: tn, ResourceID: r, From: from, To: to})
			require.NoError(t, err)
			out["resource calendar "+r.String()] = []any{o, es}
		}
		for _, c := range w.clients[tn] {
			o, err := cal.CalendarOwner(ctx, tn, queries.CalendarUser, c)
			require.NoError(t, err)
			es, err := cal.CalendarEntries(ctx, queries.CalendarFilter{TenantID: tn, ClientID: c, From: from, To: to})
			require.NoError(t, err)
			out["user calendar "+c.String()] = []any{o, es}
		}
		c, err := rep.ReportCatalog(ctx, tn)
		require.NoError(t, err)
		out["report catalog "+tn.String()] = c
		days := []queries.ReportDay{}
		for d := from; d.Before(to); d = d.AddDate(0, 0, 1) {
			days = append(days, queries.ReportDay{Date: d.Format(time.DateOnly), Start: d, End: d.AddDate(0, 0, 1)})
		}
		for _, g := range []queries.ReportGroup{queries.GroupByResource, queries.GroupByCategory, queries.GroupByDay} {
			s, err := rep.BookingStats(ctx, queries.ReportFilter{TenantID: tn, From: from, To: to, GroupBy: g, Days: days})
			require.NoError(t, err)
			sort.Slice(s, func(i, j int) bool { return s[i].Key < s[j].Key })
			out["stats "+tn.String()+string(g)] = s
		}
	}
	for _, p := range mine {
		cp, err := p.Checkpoint(ctx)
		require.NoError(t, err)
		out["checkpoint "+p.Name()] = cp
	}
	return out
}

// dumpCalendarAndReportTables returns every row of the calendars and
// reports tables as JSON.
func dumpCalendarAndReportTables(t *testing.T, pool *pgxpool.Pool) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, table := range []string{"read_calendar_entries", "read_calendar_owners", "read_report_bookings", "read_report_tenants",
		"read_report_resources", "read_report_categories"} {
		rows, err := pool.Query(context.Background(), `SELECT row_to_json(t)::text FROM `+table+` t`)
		require.NoError(t, err)
		for rows.Next() {
			var s string
			require.NoError(t, rows.Scan(&s))
			out[table] = append(out[table], s)
		}
		require.NoError(t, rows.Err())
		sort.Strings(out[table])
	}
	rows, err := pool.Query(context.Background(), `SELECT indexdef FROM pg_indexes
		WHERE tablename LIKE 'read\_calendar\_%' OR tablename LIKE 'read\_report\_%' ORDER BY 1`)
	require.NoError(t, err)
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		out["indexes"] = append(out["indexes"], s)
	}
	require.NoError(t, rows.Err())
	return out
}

// TestCalendarsAndReportsRebuildEqualsLive: after a random concurrent
// workload through the commands, with the projectors running live,
// rebuilding the calendars and reports projections from the store yields
// the very same read models; and they agree with the command side (each
// entry's times and status are the booking's) and with the bookings read
// model (the reports' counts by resource and status).
func TestCalendarsAndReportsRebuildEqualsLive(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		open func(t *testing.T) eventstore.Store
	}{
		{"Memory", func(*testing.T) eventstore.Store { return memory.New() }},
		{"Postgres", func(t *testing.T) eventstore.Store {
			s, err := postgres.Open(context.Background(), testenv.NewDatabase(t), postgres.Config{})
			require.NoError(t, err)
			return s
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			store := tc.open(t)
			t.Cleanup(store.Close)
			cmd := commands.New(store)
			rs, err := readside.Open(ctx, store, readside.Config{BatchSize: 7, PollInterval: time.Millisecond})
			require.NoError(t, err)
			t.Cleanup(func() { _ = rs.Close() })

			w := setup(t, cmd)
			workload(t, cmd, w, 4, 60, 7)
			_, err = rs.CatchUp(ctx)
			require.NoError(t, err)
			live := calendarsAndReportsState(t, rs, w)
			var liveTables map[string][]string
			pg, isPG := store.(*postgres.Store)
			if isPG {
				liveTables = dumpCalendarAndReportTables(t, pg.Pool())
				require.NotEmpty(t, liveTables["read_calendar_entries"])
				require.NotEmpty(t, liveTables["read_report_bookings"])
			}

			cal, rep, _ := calendarsAndReports(t, rs)
			bm := rs.Projections[1].(queries.ListBookingsReadModel)
			n := 0
			for _, tn := range w.tenants {
				// Every booking's entry on its resource's calendar shows
				// the command side's times and status.
				entries := map[uuid.UUID]queries.CalendarEntry{}
				for _, r := range w.resources[tn] {
					es, err := cal.CalendarEntries(ctx, queries.CalendarFilter{TenantID: tn, ResourceID: r,
						From: time.Unix(0, 0), To: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)})
					require.NoError(t, err)
					for _, e := range es {
						entries[e.BookingID] = e
					}
				}
				for _, id := range w.bookings[tn] {
					b, err := cmd.Booking(ctx, adminOf(tn), id)
					require.NoError(t, err)
					v := b.View()
					e, ok := entries[id]
					require.True(t, ok, "booking %s has a calendar entry", id)
					require.True(t, e.Start.Equal(v.Start) && e.End.Equal(v.End), "booking %s", id)
					require.Equal(t, v.Status, e.Status)
					require.Equal(t, v.ClientID, *e.ClientID)
					n++
				}
				// The report's counts by resource and status are the
				// bookings read model's.
				from, to := w.base.AddDate(0, 0, -1), w.base.AddDate(0, 0, 5)
				all, err := bm.ListBookings(ctx, queries.BookingFilter{TenantID: tn, Visible: queries.Visibility{All: true}})
				require.NoError(t, err)
				want := map[string]map[domain.Status]int{}
				for _, b := range all {
					if b.Start.Before(from) || !b.Start.Before(to) {
						continue
					}
					if want[b.ResourceID.String()] == nil {
						want[b.ResourceID.String()] = map[domain.Status]int{}
					}
					want[b.ResourceID.String()][b.Status]++
				}
				stats, err := rep.BookingStats(ctx, queries.ReportFilter{TenantID: tn, From: from, To: to, GroupBy: queries.GroupByResource})
				require.NoError(t, err)
				got := map[string]map[domain.Status]int{}
				for _, s := range stats {
					got[s.Key] = s.ByStatus
				}
				require.Equal(t, want, got)
			}
			require.Greater(t, n, 20, "the workload booked something")

			require.NoError(t, rs.Close())
			stats, err := rs.Rebuild(ctx, 50)
			require.NoError(t, err)
			require.Len(t, stats, len(rs.Projections))
			require.Equal(t, live, calendarsAndReportsState(t, rs, w))
			if isPG {
				require.Equal(t, liveTables, dumpCalendarAndReportTables(t, pg.Pool()))
			}
		})
	}
}
