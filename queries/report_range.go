package queries

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/bookingengine/booking/domain"
)

// ReportGroup says how a report's rows are grouped. The string values are
// the contract's group_by.
type ReportGroup string

// Report groupings.
const (
	// GroupByResource gives one row per resource (key: its id).
	GroupByResource ReportGroup = "resource"
	// GroupByCategory gives one row per resource category (key: its id,
	// or UncategorizedKey for the resources without one), by the
	// category each resource has now.
	GroupByCategory ReportGroup = "category"
	// GroupByDay gives one row per local date in the tenant's zone (key:
	// YYYY-MM-DD), every date of the range included.
	GroupByDay ReportGroup = "day"
)

// Valid reports whether g is a known grouping.
func (g ReportGroup) Valid() bool {
	return g == GroupByResource || g == GroupByCategory || g == GroupByDay
}

// UncategorizedKey is the key of the category row that gathers the
// resources without a category.
const UncategorizedKey = "uncategorized"

// MaxReportRange bounds the [from, to) of one report.
const MaxReportRange = 366 * 24 * time.Hour

// ReportQuery asks for a report over the bookings that start in [From,
// To), grouped by GroupBy ("" means GroupByDay). Reports are for staff.
type ReportQuery struct {
	Viewer      Viewer
	From, To    time.Time
	GroupBy     ReportGroup
	MinPosition int64
}

// ReportDay is one local date of a report's range in the tenant's zone:
// the instants [Start, End) of that date that lie inside the range.
type ReportDay struct {
	Date       string
	Start, End time.Time
}

// ReportFilter is what ReportReadModel.BookingStats aggregates: the
// tenant's bookings that start in [From, To), grouped by GroupBy. For
// GroupByDay, Days are the local dates covering [From, To) in order, each
// starting where the one before ends, and a booking belongs to the day
// whose [Start, End) holds its start.
type ReportFilter struct {
	TenantID uuid.UUID
	From, To time.Time
	GroupBy  ReportGroup
	Days     []ReportDay
}

// BookingStats are the figures of one group's bookings.
//
//   - ByStatus counts the bookings by their current status.
//   - Confirmed counts those that were ever confirmed (created confirmed
//     or approved, whatever happened next).
//   - LateCancelled counts the cancellations after the deadline.
//   - BookedMinutes sums, over the bookings that hold or held their time
//     (every status but cancelled and rejected), duration × seats: seat
//     minutes, plain minutes on a one-seat resource.
//   - LeadSum sums, over every booking, the whole minutes from its
//     creation to its (current) start; LeadP50 and LeadP90 are
//     percentiles of the same values by nearest rank (the smallest value
//     with at least that share of the values at or below it, as
//     PostgreSQL's percentile_disc).
type BookingStats struct {
	Key              string
	ByStatus         map[domain.Status]int
	Confirmed        int
	LateCancelled    int
	BookedMinutes    int64
	LeadSum          int64
	LeadP50, LeadP90 int64
}

// Created returns how many bookings the group has.
func (s BookingStats) Created() int {
	n := 0
	for _, c := range s.ByStatus {
		n += c
	}
	return n
}

// ReportResource is a resource as reports list it. CategoryID is uuid.Nil
// for none.
type ReportResource struct {
	ID, CategoryID uuid.UUID
	Name           string
	Active         bool
}

// ReportCategory is a resource category as reports list it.
type ReportCategory struct {
	ID   uuid.UUID
	Name string
}

// ReportCatalog is what reports need to know of a tenant: its zone (the
// days of GroupByDay), its resources and its categories.
type ReportCatalog struct {
	Timezone   string
	Resources  []ReportResource
	Categories []ReportCategory
}

// ReportReadModel is the reports read model.
type ReportReadModel interface {
	// ReportCatalog returns the tenant's zone, resources and categories
	// (each ordered by id), or an error wrapping domain.ErrNotFound for
	// an unknown tenant.
	ReportCatalog(ctx context.Context, tenantID uuid.UUID) (ReportCatalog, error)
	// BookingStats returns one BookingStats per group of f that has
	// bookings, in no particular order. Keys are resource ids, category
	// ids (UncategorizedKey for a resource without a category or one the
	// model does not know) or ReportDay.Date.
	BookingStats(ctx context.Context, f ReportFilter) ([]BookingStats, error)
}

// reportRange is a validated report request with the tenant's zone,
// catalog and local days.
type reportRange struct {
	q       ReportQuery
	loc     *time.Location
	catalog ReportCatalog
	days    []ReportDay
}

// reportGroup is one row of a report: its key and name, and for a
// resource or category row the resources it sums.
type reportGroup struct {
	key, name string
	resources []uuid.UUID
}

// validate checks the query and fills in the default grouping.
func (q *ReportQuery) validate() error {
	if q.GroupBy == "" {
		q.GroupBy = GroupByDay
	}
	var v domain.ValidationError
	if !q.GroupBy.Valid() {
		v.Addf("group_by", domain.FieldUnknownOption, "must be %s, %s or %s", GroupByResource, GroupByCategory, GroupByDay)
	}
	if q.From.IsZero() {
		v.Add("from", domain.FieldRequired, "is required (RFC 3339 with offset)")
	}
	if q.To.IsZero() {
		v.Add("to", domain.FieldRequired, "is required (RFC 3339 with offset)")
	}
	if !q.From.IsZero() && !q.To.IsZero() {
		switch {
		case !q.From.Before(q.To):
			v.Add("to", domain.FieldInvalid, "must be after from")
		case q.To.Sub(q.From) > MaxReportRange:
			v.Addf("to", domain.FieldOutOfRange, "the range may span at most %d days", int(MaxReportRange/(24*time.Hour)))
		}
	}
	return v.Err()
}

// openReport checks that the viewer is staff, validates q, waits for its
// position and reads the tenant's catalog.
func openReport(ctx context.Context, q ReportQuery, rm ReportReadModel, wait Waiter) (*reportRange, error) {
	if !q.Viewer.isStaff() {
		return nil, fmt.Errorf("reports are for staff: %w", domain.ErrForbidden)
	}
	if err := q.validate(); err != nil {
		return nil, err
	}
	if err := waitFor(ctx, wait, q.MinPosition); err != nil {
		return nil, err
	}
	cat, err := rm.ReportCatalog(ctx, q.Viewer.TenantID)
	if err != nil {
		return nil, err
	}
	r := &reportRange{q: q, loc: zone(cat.Timezone), catalog: cat}
	r.days = localDays(q.From, q.To, r.loc)
	return r, nil
}

// stats reads the booking figures by key.
func (r *reportRange) stats(ctx context.Context, rm ReportReadModel) (map[string]BookingStats, error) {
	list, err := rm.BookingStats(ctx, ReportFilter{TenantID: r.q.Viewer.TenantID, From: r.q.From, To: r.q.To, GroupBy: r.q.GroupBy, Days: r.days})
	if err != nil {
		return nil, err
	}
	out := make(map[string]BookingStats, len(list))
	for _, s := range list {
		out[s.Key] = s
	}
	return out, nil
}

// rows returns the groups shown: every day of the range; every category
// (and the uncategorized resources when there are any with bookings or
// active); every resource that is active or has bookings. Resources and
// categories are ordered by name, then id; uncategorized comes last.
func (r *reportRange) rows(stats map[string]BookingStats) []reportGroup {
	switch r.q.GroupBy {
	case GroupByDay:
		out := make([]reportGroup, len(r.days))
		for i, d := range r.days {
			out[i] = reportGroup{key: d.Date}
		}
		return out
	case GroupByResource:
		var out []reportGroup
		known := map[string]bool{}
		for _, res := range r.catalog.Resources {
			key := res.ID.String()
			known[key] = true
			if _, booked := stats[key]; res.Active || booked {
				out = append(out, reportGroup{key: key, name: res.Name, resources: []uuid.UUID{res.ID}})
			}
		}
		for key := range stats {
			if !known[key] {
				id, _ := uuid.Parse(key)
				out = append(out, reportGroup{key: key, resources: []uuid.UUID{id}})
			}
		}
		sortGroups(out)
		return out
	}
	byCategory := map[uuid.UUID][]uuid.UUID{}
	activeUncategorized := false
	for _, res := range r.catalog.Resources {
		byCategory[res.CategoryID] = append(byCategory[res.CategoryID], res.ID)
		activeUncategorized = activeUncategorized || (res.Active && res.CategoryID == uuid.Nil)
	}
	var out []reportGroup
	for _, c := range r.catalog.Categories {
		out = append(out, reportGroup{key: c.ID.String(), name: c.Name, resources: byCategory[c.ID]})
	}
	sortGroups(out)
	if _, booked := stats[UncategorizedKey]; booked || activeUncategorized {
		out = append(out, reportGroup{key: UncategorizedKey, resources: byCategory[uuid.Nil]})
	}
	return out
}

func sortGroups(gs []reportGroup) {
	slices.SortFunc(gs, func(a, b reportGroup) int {
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		return strings.Compare(a.key, b.key)
	})
}

// localDays returns the local dates in loc that [from, to) touches, each
// clipped to [from, to). A date's midnight is read as RFC 5545 reads a
// wall-clock time (domain.WallInstant), so a date that starts in a
// daylight-saving gap starts when its clocks first show a time.
func localDays(from, to time.Time, loc *time.Location) []ReportDay {
	var out []ReportDay
	lf := from.In(loc)
	date := time.Date(lf.Year(), lf.Month(), lf.Day(), 0, 0, 0, 0, time.UTC)
	for {
		start := domain.WallInstant(date, loc)
		next := date.AddDate(0, 0, 1)
		end := domain.WallInstant(next, loc)
		if !start.Before(to) {
			break
		}
		out = append(out, ReportDay{Date: date.Format(time.DateOnly), Start: maxTime(start, from).UTC(), End: minTime(end, to).UTC()})
		date = next
	}
	return out
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
