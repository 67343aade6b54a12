package http_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/domain"
	bhttp "github.com/bookingengine/booking/http"
	"github.com/bookingengine/booking/queries"
)

// fakeReports is a reports read model that returns fixed figures and
// records the filters it was asked for.
type fakeReports struct {
	catalog queries.ReportCatalog
	stats   map[queries.ReportGroup][]queries.BookingStats

	mu      sync.Mutex
	filters []queries.ReportFilter
}

func (f *fakeReports) ReportCatalog(_ context.Context, tenant uuid.UUID) (queries.ReportCatalog, error) {
	if tenant != tenantA {
		return queries.ReportCatalog{}, fmt.Errorf("tenant: %w", domain.ErrNotFound)
	}
	return f.catalog, nil
}

func (f *fakeReports) BookingStats(_ context.Context, flt queries.ReportFilter) ([]queries.BookingStats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.filters = append(f.filters, flt)
	return f.stats[flt.GroupBy], nil
}

// fakePolicies builds real domain policies from a tenant's settings and
// its resources, as the catalog read model does.
type fakePolicies struct {
	tenant    *domain.Tenant
	resources map[uuid.UUID]*domain.Resource
}

func (f fakePolicies) ResourcePolicy(_ context.Context, tenant, id uuid.UUID) (domain.Policy, error) {
	r, ok := f.resources[id]
	if !ok || tenant != tenantA {
		return domain.Policy{}, fmt.Errorf("resource %s: %w", id, domain.ErrNotFound)
	}
	return domain.NewPolicy(f.tenant, r), nil
}

func (f fakePolicies) CategoryPolicies(context.Context, uuid.UUID, uuid.UUID) ([]queries.CategoryPolicy, error) {
	return nil, nil
}

var (
	repCat  = uuid.MustParse("dddddddd-0000-4000-8000-000000000001")
	repR1   = uuid.MustParse("eeeeeeee-0000-4000-8000-000000000001")
	repR2   = uuid.MustParse("eeeeeeee-0000-4000-8000-000000000002")
	repR3   = uuid.MustParse("eeeeeeee-0000-4000-8000-000000000003")
	repGone = uuid.MustParse("eeeeeeee-0000-4000-8000-000000000004")
)

// reportFixture serves the reports of tenant A, in New York, open around
// the clock every day, with r1 (one seat) and r2 (two seats) in category
// "Rooms", r3 (one seat, no category, open Mondays 09:00–12:00 only) and
// a deactivated r4 without bookings.
func reportFixture(t *testing.T) (*fixture, *fakeReports) {
	t.Helper()
	f := MustFixture(t)
	week := domain.WeeklyHours{}
	for _, d := range []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"} {
		week[d] = []domain.TimeRange{{Start: "00:00", End: "24:00"}}
	}
	settings := domain.DefaultSettings()
	settings.Timezone, settings.BusinessHours = "America/New_York", week
	tn := &domain.Tenant{}
	require.NoError(t, tn.Replay(domain.TenantCreated{TenantID: tenantA, Settings: settings, PolicyVersion: 1}))
	resource := func(id uuid.UUID, capacity int, evs ...domain.Event) *domain.Resource {
		r := &domain.Resource{}
		require.NoError(t, r.Replay(append([]domain.Event{domain.ResourceCreated{ResourceID: id, TenantID: tenantA, Name: "r",
			Kind: domain.KindSpace, Capacity: capacity}}, evs...)...))
		return r
	}
	policies := fakePolicies{tenant: tn, resources: map[uuid.UUID]*domain.Resource{
		repR1: resource(repR1, 1),
		repR2: resource(repR2, 2),
		repR3: resource(repR3, 1, domain.ResourceAvailabilityChanged{ResourceID: repR3,
			Availability: domain.Availability{Weekly: domain.WeeklyHours{"mon": {{Start: "09:00", End: "12:00"}}}}}),
		repGone: resource(repGone, 1, domain.ResourceDeactivated{ResourceID: repGone}),
	}}
	st := func(key string, booked int64, byStatus map[domain.Status]int) queries.BookingStats {
		return queries.BookingStats{Key: key, ByStatus: byStatus, Confirmed: byStatus[domain.StatusConfirmed] + byStatus[domain.StatusCompleted],
			BookedMinutes: booked, LeadSum: 600, LeadP50: 120, LeadP90: 300}
	}
	rm := &fakeReports{
		catalog: queries.ReportCatalog{Timezone: "America/New_York",
			Resources: []queries.ReportResource{
				{ID: repR1, CategoryID: repCat, Name: "Room A", Active: true},
				{ID: repR2, CategoryID: repCat, Name: "Hall", Active: true},
				{ID: repR3, Name: "Dr. Ana", Active: true},
				{ID: repGone, Name: "Old room"},
			},
			Categories: []queries.ReportCategory{{ID: repCat, Name: "Rooms"}}},
		stats: map[queries.ReportGroup][]queries.BookingStats{
			queries.GroupByResource: {
				st(repR1.String(), 600, map[domain.Status]int{domain.StatusCompleted: 2, domain.StatusCancelled: 1}),
				st(repR2.String(), 1200, map[domain.Status]int{domain.StatusConfirmed: 4}),
				st(repR3.String(), 90, map[domain.Status]int{domain.StatusNoShow: 1, domain.StatusRejected: 1}),
			},
			queries.GroupByCategory: {
				st(repCat.String(), 1800, map[domain.Status]int{domain.StatusCompleted: 2, domain.StatusCancelled: 1, domain.StatusConfirmed: 4}),
				st(queries.UncategorizedKey, 90, map[domain.Status]int{domain.StatusNoShow: 1, domain.StatusRejected: 1}),
			},
			queries.GroupByDay: {
				st("2026-11-01", 1500, map[domain.Status]int{domain.StatusConfirmed: 3}),
				st("2026-11-02", 390, map[domain.Status]int{domain.StatusCompleted: 2, domain.StatusCancelled: 2}),
			},
		},
	}
	bhttp.RegisterReports(f.srv, bhttp.Reports{
		Bookings:    queries.NewBookingsReportHandler(rm, nil),
		Utilization: queries.NewUtilizationReportHandler(rm, policies, nil),
	})
	return f, rm
}

// The range: three local days around New York's fall-back, 2026-10-31,
// 2026-11-01 (25 hours) and 2026-11-02 (a Monday).
const reportRange = "from=2026-10-31T00:00:00-04:00&to=2026-11-03T00:00:00-05:00"

func getReport(t *testing.T, f *fixture, path, tok string) *httptest.ResponseRecorder {
	t.Helper()
	return f.do(newReq(http.MethodGet, path, "", bearer(tok), header(bhttp.HeaderTenantID, tenantA.String())))
}

func decodeReport[T any](t *testing.T, w *httptest.ResponseRecorder) T {
	t.Helper()
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var v T
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &v))
	return v
}

func ratio(a, b int64) *float64 {
	r := float64(a) / float64(b)
	return &r
}

// TestUtilizationReport: available seat minutes come from the policies'
// bookable windows, split by the tenant's local days (the fall-back day
// has 25 hours), times capacity.
func TestUtilizationReport(t *testing.T) {
	t.Parallel()
	f, rm := reportFixture(t)
	tok := f.token(t, "admin-1", bhttp.RoleAdmin, tenantA, bhttp.ScopeReportsRead)
	const day, fallBack = 24 * 60, 25 * 60

	rep := decodeReport[queries.UtilizationReport](t, getReport(t, f, "/reports/utilization?group_by=resource&"+reportRange, tok))
	require.Equal(t, "America/New_York", rep.Timezone)
	require.Equal(t, queries.GroupByResource, rep.GroupBy)
	open := int64(day + fallBack + day) // 73 hours
	require.Equal(t, []queries.UtilizationRow{
		{Key: repR3.String(), Name: "Dr. Ana", BookedMinutes: 90, AvailableMinutes: 180, Utilization: ratio(90, 180)},
		{Key: repR2.String(), Name: "Hall", BookedMinutes: 1200, AvailableMinutes: 2 * open, Utilization: ratio(1200, 2*open)},
		{Key: repR1.String(), Name: "Room A", BookedMinutes: 600, AvailableMinutes: open, Utilization: ratio(600, open)},
	}, rep.Rows, "ordered by name; the deactivated resource without bookings is left out")

	rep = decodeReport[queries.UtilizationReport](t, getReport(t, f, "/reports/utilization?group_by=category&"+reportRange, tok))
	require.Equal(t, []queries.UtilizationRow{
		{Key: repCat.String(), Name: "Rooms", BookedMinutes: 1800, AvailableMinutes: 3 * open, Utilization: ratio(1800, 3*open)},
		{Key: queries.UncategorizedKey, BookedMinutes: 90, AvailableMinutes: 180, Utilization: ratio(90, 180)},
	}, rep.Rows)

	rep = decodeReport[queries.UtilizationReport](t, getReport(t, f, "/reports/utilization?group_by=day&"+reportRange, tok))
	require.Equal(t, []queries.UtilizationRow{
		{Key: "2026-10-31", BookedMinutes: 0, AvailableMinutes: 3 * day, Utilization: ratio(0, 3*day)},
		{Key: "2026-11-01", BookedMinutes: 1500, AvailableMinutes: 3 * fallBack, Utilization: ratio(1500, 3*fallBack)},
		{Key: "2026-11-02", BookedMinutes: 390, AvailableMinutes: 3*day + 180, Utilization: ratio(390, 3*day+180)},
	}, rep.Rows)

	// The days the read model was asked for: the tenant's local dates.
	last := rm.filters[len(rm.filters)-1]
	ny := mustLoad("America/New_York")
	require.Equal(t, []queries.ReportDay{
		{Date: "2026-10-31", Start: time.Date(2026, 10, 31, 0, 0, 0, 0, ny).UTC(), End: time.Date(2026, 11, 1, 0, 0, 0, 0, ny).UTC()},
		{Date: "2026-11-01", Start: time.Date(2026, 11, 1, 0, 0, 0, 0, ny).UTC(), End: time.Date(2026, 11, 2, 0, 0, 0, 0, ny).UTC()},
		{Date: "2026-11-02", Start: time.Date(2026, 11, 2, 0, 0, 0, 0, ny).UTC(), End: time.Date(2026, 11, 3, 0, 0, 0, 0, ny).UTC()},
	}, last.Days)
	require.Equal(t, 25*time.Hour, last.Days[1].End.Sub(last.Days[1].Start))
}

func TestBookingsReport(t *testing.T) {
	t.Parallel()
	f, _ := reportFixture(t)
	tok := f.token(t, "manager-1", bhttp.RoleManager, tenantA, bhttp.ScopeReportsRead)
	rep := decodeReport[queries.BookingsReport](t, getReport(t, f, "/reports/bookings?group_by=resource&"+reportRange, tok))
	require.Len(t, rep.Rows, 3)
	r1 := rep.Rows[2]
	require.Equal(t, repR1.String(), r1.Key)
	require.Equal(t, 3, r1.Total)
	require.Equal(t, 3, r1.Created)
	require.Equal(t, 2, r1.Completed)
	require.Equal(t, 1, r1.Cancelled)
	require.Equal(t, ratio(1, 3), r1.CancellationRate)
	require.Equal(t, &queries.LeadTime{Avg: 200, P50: 120, P90: 300}, r1.LeadTime)
	require.Equal(t, map[domain.Status]int{domain.StatusPending: 0, domain.StatusConfirmed: 0, domain.StatusCheckedIn: 0,
		domain.StatusCompleted: 2, domain.StatusNoShow: 0, domain.StatusCancelled: 1, domain.StatusRejected: 0}, r1.ByStatus)

	// Every day of the range has a row; a day without bookings has no
	// rate or lead time.
	w := getReport(t, f, "/reports/bookings?"+reportRange, tok)
	rep = decodeReport[queries.BookingsReport](t, w)
	require.Equal(t, queries.GroupByDay, rep.GroupBy, "the default")
	require.Len(t, rep.Rows, 3)
	require.Equal(t, "2026-10-31", rep.Rows[0].Key)
	require.Zero(t, rep.Rows[0].Total)
	require.Nil(t, rep.Rows[0].CancellationRate)
	var raw struct {
		Rows []map[string]any `json:"rows"`
	}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &raw))
	require.NotContains(t, raw.Rows[0], "lead_time_minutes")
	require.NotContains(t, raw.Rows[0], "cancellation_rate")
	require.Contains(t, raw.Rows[1], "lead_time_minutes")
	require.Equal(t, ratio(2, 4), rep.Rows[2].CancellationRate)
}

func TestReportsValidationAndAccess(t *testing.T) {
	t.Parallel()
	f, _ := reportFixture(t)
	tok := f.token(t, "admin-1", bhttp.RoleAdmin, tenantA, bhttp.ScopeReportsRead)
	for _, path := range []string{"/reports/bookings", "/reports/utilization"} {
		fields := func(w *httptest.ResponseRecorder, status int) []string {
			t.Helper()
			p := mustProblem(t, w, status, bhttp.CodeValidationFailed)
			var out []string
			for _, e := range p.Errors {
				out = append(out, e.Field)
			}
			return out
		}
		require.Equal(t, []string{"group_by"}, fields(getReport(t, f, path+"?group_by=week&"+reportRange, tok), http.StatusUnprocessableEntity))
		require.Equal(t, []string{"from", "to"}, fields(getReport(t, f, path, tok), http.StatusUnprocessableEntity))
		require.Equal(t, []string{"to"}, fields(getReport(t, f, path+"?from=2026-01-01T00:00:00Z&to=2027-01-02T00:00:01Z", tok), http.StatusUnprocessableEntity))
		require.Equal(t, []string{"to"}, fields(getReport(t, f, path+"?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", tok), http.StatusUnprocessableEntity))
		require.Equal(t, []string{"from"}, fields(getReport(t, f, path+"?from=2026-01-01&to=2026-01-02T00:00:00Z", tok), http.StatusBadRequest))
		require.Equal(t, http.StatusOK, getReport(t, f, path+"?from=2026-01-01T00:00:00Z&to=2027-01-02T00:00:00Z", tok).Code, "366 days")

		// Staff only, with reports:read.
		for _, role := range []string{bhttp.RoleProfessional, bhttp.RoleClient} {
			other := f.token(t, uuid.NewString(), role, tenantA, bhttp.ScopeReportsRead)
			mustProblem(t, getReport(t, f, path+"?"+reportRange, other), http.StatusForbidden, bhttp.CodeForbidden)
		}
		noScope := f.token(t, "admin-1", bhttp.RoleAdmin, tenantA, bhttp.ScopeBookingsRead)
		mustProblem(t, getReport(t, f, path+"?"+reportRange, noScope), http.StatusForbidden, bhttp.CodeForbidden)
		platform := f.token(t, "root", bhttp.RolePlatformAdmin, uuid.Nil, bhttp.ScopeReportsRead)
		w := f.do(newReq(http.MethodGet, path+"?"+reportRange, "", bearer(platform), header(bhttp.HeaderTenantID, tenantB.String())))
		mustProblem(t, w, http.StatusNotFound, bhttp.CodeNotFound)
	}
}
