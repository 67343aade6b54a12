package domain_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/domain"
)

func TestPolicyCheck(t *testing.T) {
	t.Parallel()
	// t0 is Monday 2026-06-01 08:00 UTC; the default week is mon–fri 09–17 UTC.
	tue := func(h, m int) time.Time { return utc(2026, 6, 2, h, m) }
	tests := []struct {
		name     string
		settings domain.SettingsInput
		capacity int
		tz       string
		avail    domain.Availability
		inactive bool
		start    time.Time
		end      time.Time
		seats    int
		now      time.Time
		want     error
	}{
		{name: "inside hours", start: tue(10, 0), end: tue(11, 0), want: nil},
		{name: "whole business day", start: tue(9, 0), end: tue(17, 0), want: nil},
		{name: "seats below one", start: tue(10, 0), end: tue(11, 0), seats: -1, want: domain.ErrValidationFailed},
		{name: "end before start", start: tue(11, 0), end: tue(10, 0), want: domain.ErrValidationFailed},
		{name: "empty interval", start: tue(11, 0), end: tue(11, 0), want: domain.ErrValidationFailed},
		{name: "inactive resource", inactive: true, start: tue(10, 0), end: tue(11, 0), want: domain.ErrResourceInactive},
		{name: "more seats than capacity", capacity: 2, seats: 3, start: tue(10, 0), end: tue(11, 0), want: domain.ErrCapacityExceeded},
		{name: "seats up to capacity", capacity: 3, seats: 3, start: tue(10, 0), end: tue(11, 0), want: nil},
		{name: "shorter than min duration", settings: domain.SettingsInput{SlotGranularityMinutes: ptr(5)}, start: tue(10, 0), end: tue(10, 10), want: domain.ErrDurationOutOfRange},
		{name: "longer than max duration", settings: domain.SettingsInput{MaxDurationMinutes: ptr(60)}, start: tue(10, 0), end: tue(11, 15), want: domain.ErrDurationOutOfRange},
		{name: "start off the grid", start: tue(10, 5), end: tue(11, 5), want: domain.ErrOffSlotGrid},
		{name: "start with seconds", start: tue(10, 0).Add(time.Second), end: tue(11, 0).Add(time.Second), want: domain.ErrOffSlotGrid},
		{name: "duration off the grid", settings: domain.SettingsInput{MinDurationMinutes: ptr(10)}, start: tue(10, 0), end: tue(10, 20), want: domain.ErrOffSlotGrid},
		{name: "grid counted from local midnight", settings: domain.SettingsInput{SlotGranularityMinutes: ptr(25), MinDurationMinutes: ptr(25)},
			start: tue(10, 0), end: tue(10, 25), want: nil}, // 600 = 24×25
		{name: "grid counted from local midnight, off", settings: domain.SettingsInput{SlotGranularityMinutes: ptr(25), MinDurationMinutes: ptr(25)},
			start: tue(10, 10), end: tue(10, 35), want: domain.ErrOffSlotGrid},
		{name: "in the past", start: utc(2026, 5, 29, 10, 0), end: utc(2026, 5, 29, 11, 0), want: domain.ErrTooShortNotice},
		{name: "starting exactly now", settings: domain.SettingsInput{BusinessHours: allWeek(rng("00:00", "24:00"))}, start: t0, end: t0.Add(time.Hour), want: nil},
		{name: "min notice not met", settings: domain.SettingsInput{MinNoticeMinutes: ptr(120)}, start: utc(2026, 6, 1, 9, 45), end: utc(2026, 6, 1, 10, 45), want: domain.ErrTooShortNotice},
		{name: "min notice met exactly", settings: domain.SettingsInput{MinNoticeMinutes: ptr(120)}, start: utc(2026, 6, 1, 10, 0), end: utc(2026, 6, 1, 11, 0), want: nil},
		{name: "last day of max advance", settings: domain.SettingsInput{MaxAdvanceDays: ptr(30)}, start: utc(2026, 7, 1, 16, 0), end: utc(2026, 7, 1, 17, 0), want: nil},
		{name: "beyond max advance", settings: domain.SettingsInput{MaxAdvanceDays: ptr(30)}, start: utc(2026, 7, 2, 9, 0), end: utc(2026, 7, 2, 10, 0), want: domain.ErrTooFarInAdvance},
		{name: "zero max advance is no limit", settings: domain.SettingsInput{MaxAdvanceDays: ptr(0)}, start: utc(2036, 7, 1, 9, 0), end: utc(2036, 7, 1, 10, 0), want: nil},
		{name: "closed weekday", start: utc(2026, 6, 6, 10, 0), end: utc(2026, 6, 6, 11, 0), want: domain.ErrOutsideBusinessHours},
		{name: "runs past closing", start: tue(16, 30), end: tue(17, 30), want: domain.ErrOutsideBusinessHours},
		{name: "starts before opening", start: tue(8, 45), end: tue(9, 45), want: domain.ErrOutsideBusinessHours},
		{name: "closure date", settings: domain.SettingsInput{Closures: &[]domain.Closure{{Date: "2026-06-02", Reason: "holiday"}}},
			start: tue(10, 0), end: tue(11, 0), want: domain.ErrOutsideBusinessHours},
		{name: "touching ranges merge", settings: domain.SettingsInput{BusinessHours: allWeek(rng("11:00", "12:00"), rng("12:00", "13:00"))},
			start: tue(11, 0), end: tue(13, 0), want: nil},
		{name: "a gap between ranges", settings: domain.SettingsInput{BusinessHours: allWeek(rng("09:00", "12:00"), rng("13:00", "17:00"))},
			start: tue(11, 30), end: tue(13, 30), want: domain.ErrOutsideBusinessHours},
		{name: "over midnight when both days touch", settings: domain.SettingsInput{BusinessHours: allWeek(rng("00:00", "24:00"))},
			start: tue(23, 0), end: utc(2026, 6, 3, 1, 0), want: nil},
		{name: "over midnight into a closed day", settings: domain.SettingsInput{BusinessHours: &domain.WeeklyHours{"tue": {rng("20:00", "24:00")}}},
			start: tue(23, 0), end: utc(2026, 6, 3, 1, 0), want: domain.ErrOutsideBusinessHours},
		{name: "inside resource weekly hours", avail: domain.Availability{Weekly: domain.WeeklyHours{"tue": {rng("10:00", "12:00")}}},
			start: tue(10, 0), end: tue(12, 0), want: nil},
		{name: "outside resource weekly hours", avail: domain.Availability{Weekly: domain.WeeklyHours{"tue": {rng("12:00", "17:00")}}},
			start: tue(10, 0), end: tue(11, 0), want: domain.ErrOutsideResourceAvailability},
		{name: "weekday absent from resource weekly hours", avail: domain.Availability{Weekly: domain.WeeklyHours{"mon": {rng("09:00", "17:00")}}},
			start: tue(10, 0), end: tue(11, 0), want: domain.ErrOutsideResourceAvailability},
		{name: "empty weekly hours close the resource", avail: domain.Availability{Weekly: domain.WeeklyHours{}},
			start: tue(10, 0), end: tue(11, 0), want: domain.ErrOutsideResourceAvailability},
		{name: "tenant hours still apply", avail: domain.Availability{Weekly: domain.WeeklyHours{"tue": {rng("07:00", "20:00")}}},
			start: tue(8, 0), end: tue(9, 0), want: domain.ErrOutsideBusinessHours},
		{name: "override closes the day", avail: domain.Availability{Overrides: []domain.Override{{Date: "2026-06-02", Intervals: []domain.TimeRange{}}}},
			start: tue(10, 0), end: tue(11, 0), want: domain.ErrOutsideResourceAvailability},
		{name: "override with other hours", avail: domain.Availability{
			Weekly:    domain.WeeklyHours{"tue": {rng("09:00", "10:00")}},
			Overrides: []domain.Override{{Date: "2026-06-02", Intervals: []domain.TimeRange{rng("14:00", "16:00")}}}},
			start: tue(14, 0), end: tue(15, 0), want: nil},
		{name: "override replaces weekly hours", avail: domain.Availability{
			Weekly:    domain.WeeklyHours{"tue": {rng("09:00", "10:00")}},
			Overrides: []domain.Override{{Date: "2026-06-02", Intervals: []domain.TimeRange{rng("14:00", "16:00")}}}},
			start: tue(9, 0), end: tue(10, 0), want: domain.ErrOutsideResourceAvailability},
		{name: "overrides alone leave other days to the tenant", avail: domain.Availability{Overrides: []domain.Override{{Date: "2026-06-03", Intervals: nil}}},
			start: tue(9, 0), end: tue(17, 0), want: nil},
		{name: "resource zone applies to tenant hours", tz: "America/New_York",
			start: at(t, "America/New_York", 2026, 6, 2, 9, 0), end: at(t, "America/New_York", 2026, 6, 2, 10, 0), want: nil},
		{name: "resource zone, UTC clock time is not enough", tz: "America/New_York",
			start: tue(9, 0), end: tue(10, 0), want: domain.ErrOutsideBusinessHours},
		{name: "local date differs from UTC date",
			settings: domain.SettingsInput{Timezone: ptr("America/Sao_Paulo"), BusinessHours: &domain.WeeklyHours{"fri": {rng("20:00", "23:00")}}},
			start:    at(t, "America/Sao_Paulo", 2026, 6, 5, 22, 0), end: at(t, "America/Sao_Paulo", 2026, 6, 5, 23, 0), want: nil},
		{name: "local weekday decides, not the UTC one",
			settings: domain.SettingsInput{Timezone: ptr("America/Sao_Paulo"), BusinessHours: &domain.WeeklyHours{"sat": {rng("00:00", "03:00")}}},
			start:    utc(2026, 6, 6, 1, 0), end: utc(2026, 6, 6, 2, 0), want: domain.ErrOutsideBusinessHours},
		{name: "closure on the local date",
			settings: domain.SettingsInput{Timezone: ptr("America/Sao_Paulo"), BusinessHours: allWeek(rng("20:00", "23:00")),
				Closures: &[]domain.Closure{{Date: "2026-06-05"}}},
			start: utc(2026, 6, 6, 1, 0), end: utc(2026, 6, 6, 2, 0), want: domain.ErrOutsideBusinessHours},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			capacity := max(tt.capacity, 1)
			r := MustResource(t, capacity, tt.tz, tt.avail)
			if tt.inactive {
				require.NoError(t, r.Deactivate(admin, t0))
			}
			p := domain.NewPolicy(MustTenant(t, tt.settings), r)
			seats := tt.seats
			if seats == 0 {
				seats = 1
			}
			now := tt.now
			if now.IsZero() {
				now = t0
			}
			requireErrorIs(t, tt.want, p.Check(domain.SlotRequest{Start: tt.start, End: tt.end, Seats: seats, Now: now}))
		})
	}
}

func TestPolicyAccessors(t *testing.T) {
	t.Parallel()
	tenant := MustTenant(t, domain.SettingsInput{Timezone: ptr("Europe/Lisbon"), BufferBeforeMinutes: ptr(5), BufferAfterMinutes: ptr(10)})
	require.NoError(t, tenant.ChangeSettings(domain.SettingsInput{Timezone: ptr("Europe/Lisbon"), BufferBeforeMinutes: ptr(5), BufferAfterMinutes: ptr(10), MinNoticeMinutes: ptr(1)}.Resolve(), admin, t0))

	p := domain.NewPolicy(tenant, MustResource(t, 4, "", domain.Availability{}))
	require.Equal(t, "Europe/Lisbon", p.Location().String())
	require.Equal(t, 2, p.PolicyVersion())
	require.Equal(t, 4, p.Capacity())
	require.Equal(t, tenantID, p.TenantID())
	require.Equal(t, resourceID, p.ResourceID())
	require.Equal(t, 1, p.Settings().MinNoticeMinutes)
	s, e := p.Occupied(utc(2026, 6, 2, 10, 0), utc(2026, 6, 2, 11, 0))
	require.Equal(t, utc(2026, 6, 2, 9, 55), s)
	require.Equal(t, utc(2026, 6, 2, 11, 10), e)

	own := domain.NewPolicy(tenant, MustResource(t, 1, "Asia/Tokyo", domain.Availability{}))
	require.Equal(t, "Asia/Tokyo", own.Location().String())

	tenantWide := domain.NewPolicy(tenant, nil)
	require.Equal(t, 1, tenantWide.Capacity())
	require.True(t, tenantWide.Active())
}

// dstCase names a DST day and the slots a policy must offer on it.
type dstCase struct {
	name     string
	zone     string
	hours    domain.WeeklyHours
	grid     int
	duration time.Duration
	day      [3]int // local date whose slots are listed
	want     []string
}

func TestPolicyDST(t *testing.T) {
	t.Parallel()
	tests := []dstCase{
		{
			name: "Sao Paulo spring forward at midnight: no slot in the missing hour",
			zone: "America/Sao_Paulo", hours: domain.WeeklyHours{"sun": {rng("00:00", "02:00")}},
			grid: 30, duration: 30 * time.Minute, day: [3]int{2018, 11, 4},
			want: []string{"2018-11-04T01:00:00-02:00", "2018-11-04T01:30:00-02:00"},
		},
		{
			name: "Sao Paulo fall back at midnight: the repeated hour twice, once per real hour",
			zone: "America/Sao_Paulo", hours: domain.WeeklyHours{"sat": {rng("22:00", "24:00")}},
			grid: 60, duration: time.Hour, day: [3]int{2019, 2, 16},
			want: []string{"2019-02-16T22:00:00-02:00", "2019-02-16T23:00:00-02:00", "2019-02-16T23:00:00-03:00"},
		},
		{
			name: "Sao Paulo after DST was abolished: an ordinary November",
			zone: "America/Sao_Paulo", hours: domain.WeeklyHours{"sun": {rng("00:00", "02:00")}},
			grid: 60, duration: time.Hour, day: [3]int{2019, 11, 3},
			want: []string{"2019-11-03T00:00:00-03:00", "2019-11-03T01:00:00-03:00"},
		},
		{
			name: "New York spring forward: 02:00-03:00 does not exist",
			zone: "America/New_York", hours: domain.WeeklyHours{"sun": {rng("01:00", "04:00")}},
			grid: 30, duration: 30 * time.Minute, day: [3]int{2026, 3, 8},
			want: []string{"2026-03-08T01:00:00-05:00", "2026-03-08T01:30:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-08T03:30:00-04:00"},
		},
		{
			name: "New York spring forward: a one-hour slot spans the gap in one real hour",
			zone: "America/New_York", hours: domain.WeeklyHours{"sun": {rng("01:00", "04:00")}},
			grid: 30, duration: time.Hour, day: [3]int{2026, 3, 8},
			want: []string{"2026-03-08T01:00:00-05:00", "2026-03-08T01:30:00-05:00", "2026-03-08T03:00:00-04:00"},
		},
		{
			name: "New York fall back: 01:00 offered in EDT and in EST",
			zone: "America/New_York", hours: domain.WeeklyHours{"sun": {rng("00:00", "03:00")}},
			grid: 60, duration: time.Hour, day: [3]int{2026, 11, 1},
			want: []string{"2026-11-01T00:00:00-04:00", "2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00", "2026-11-01T02:00:00-05:00"},
		},
		{
			name: "New York fall back: hours starting inside the repeated hour",
			zone: "America/New_York", hours: domain.WeeklyHours{"sun": {rng("01:30", "03:00")}},
			grid: 30, duration: 30 * time.Minute, day: [3]int{2026, 11, 1},
			want: []string{"2026-11-01T01:30:00-04:00", "2026-11-01T01:30:00-05:00", "2026-11-01T02:00:00-05:00", "2026-11-01T02:30:00-05:00"},
		},
		{
			name: "Lisbon spring forward at 01:00",
			zone: "Europe/Lisbon", hours: domain.WeeklyHours{"sun": {rng("00:00", "03:00")}},
			grid: 60, duration: time.Hour, day: [3]int{2026, 3, 29},
			want: []string{"2026-03-29T00:00:00Z", "2026-03-29T02:00:00+01:00"},
		},
		{
			name: "Lisbon fall back at 02:00",
			zone: "Europe/Lisbon", hours: domain.WeeklyHours{"sun": {rng("00:00", "03:00")}},
			grid: 60, duration: time.Hour, day: [3]int{2026, 10, 25},
			want: []string{"2026-10-25T00:00:00+01:00", "2026-10-25T01:00:00+01:00", "2026-10-25T01:00:00Z", "2026-10-25T02:00:00Z"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := dstPolicy(t, tt)
			loc := p.Location()
			from := time.Date(tt.day[0], time.Month(tt.day[1]), tt.day[2], 0, 0, 0, 0, loc)
			to := time.Date(tt.day[0], time.Month(tt.day[1]), tt.day[2]+1, 0, 0, 0, 0, loc)
			now := from.AddDate(0, 0, -7)
			var got []string
			for _, s := range p.Candidates(from.Add(-3*time.Hour), to.Add(3*time.Hour), tt.duration, now) {
				// Not from.Format: midnight itself may not exist that day.
				if domain.LocalDate(s, loc) == fmt.Sprintf("%04d-%02d-%02d", tt.day[0], tt.day[1], tt.day[2]) {
					got = append(got, s.In(loc).Format(time.RFC3339))
				}
			}
			require.Equal(t, tt.want, got)
			for _, s := range tt.want {
				start := mustTime(t, s)
				require.NoError(t, p.Check(domain.SlotRequest{Start: start, End: start.Add(tt.duration), Seats: 1, Now: now}), s)
			}
		})
	}
}

func dstPolicy(tb testing.TB, c dstCase) domain.Policy {
	tb.Helper()
	return MustPolicy(tb, domain.SettingsInput{
		Timezone: ptr(c.zone), BusinessHours: &c.hours, SlotGranularityMinutes: ptr(c.grid),
		MinDurationMinutes: ptr(c.grid), MaxDurationMinutes: ptr(600), MaxAdvanceDays: ptr(0),
	})
}

func TestPolicyDSTWindows(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		zone  string
		hours domain.WeeklyHours
		day   [3]int
		want  []domain.Interval
	}{
		{"New York spring forward: 01:00-04:00 is two real hours", "America/New_York", domain.WeeklyHours{"sun": {rng("01:00", "04:00")}}, [3]int{2026, 3, 8},
			[]domain.Interval{{Start: utc(2026, 3, 8, 6, 0), End: utc(2026, 3, 8, 8, 0)}}},
		{"New York fall back: 00:00-03:00 is four real hours", "America/New_York", domain.WeeklyHours{"sun": {rng("00:00", "03:00")}}, [3]int{2026, 11, 1},
			[]domain.Interval{{Start: utc(2026, 11, 1, 4, 0), End: utc(2026, 11, 1, 8, 0)}}},
		{"New York fall back: 01:30-03:00 is two pieces in real time", "America/New_York", domain.WeeklyHours{"sun": {rng("01:30", "03:00")}}, [3]int{2026, 11, 1},
			[]domain.Interval{{Start: utc(2026, 11, 1, 5, 30), End: utc(2026, 11, 1, 6, 0)}, {Start: utc(2026, 11, 1, 6, 30), End: utc(2026, 11, 1, 8, 0)}}},
		{"Sao Paulo spring forward: the day starts at 01:00", "America/Sao_Paulo", domain.WeeklyHours{"sun": {rng("00:00", "24:00")}}, [3]int{2018, 11, 4},
			[]domain.Interval{{Start: utc(2018, 11, 4, 3, 0), End: utc(2018, 11, 5, 2, 0)}}},
		{"Sao Paulo fall back: Saturday lasts 25 hours", "America/Sao_Paulo", domain.WeeklyHours{"sat": {rng("00:00", "24:00")}}, [3]int{2019, 2, 16},
			[]domain.Interval{{Start: utc(2019, 2, 16, 2, 0), End: utc(2019, 2, 17, 3, 0)}}},
		{"Lisbon spring forward: 00:00-03:00 is two real hours", "Europe/Lisbon", domain.WeeklyHours{"sun": {rng("00:00", "03:00")}}, [3]int{2026, 3, 29},
			[]domain.Interval{{Start: utc(2026, 3, 29, 0, 0), End: utc(2026, 3, 29, 2, 0)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := MustPolicy(t, domain.SettingsInput{Timezone: ptr(tt.zone), BusinessHours: &tt.hours})
			from := time.Date(tt.day[0], time.Month(tt.day[1]), tt.day[2], 0, 0, 0, 0, time.UTC).Add(-36 * time.Hour)
			require.Equal(t, tt.want, p.Windows(from, from.Add(96*time.Hour)))
		})
	}
}

// TestPolicyAgreement checks by brute force that Candidates and Windows agree
// with Check at every minute of a week, in several zones and across DST
// changes, so the free-slot query never shows a slot that cannot be booked.
func TestPolicyAgreement(t *testing.T) {
	t.Parallel()
	oddHours := domain.WeeklyHours{
		"mon": {rng("00:00", "01:30"), rng("08:00", "12:00"), rng("12:00", "13:00"), rng("22:00", "24:00")},
		"tue": {rng("00:00", "03:00"), rng("09:15", "17:45")},
		"wed": {rng("01:00", "04:00"), rng("23:00", "24:00")},
		"thu": {rng("00:00", "24:00")},
		"fri": {rng("00:30", "02:30"), rng("10:00", "11:00"), rng("11:30", "12:30")},
		"sat": {rng("00:00", "02:00"), rng("22:00", "24:00")},
		"sun": {rng("00:00", "03:00"), rng("21:00", "24:00")},
	}
	resourceHours := domain.Availability{
		Weekly: domain.WeeklyHours{
			"mon": {rng("00:00", "24:00")}, "tue": {rng("02:00", "12:00")}, "wed": {rng("00:00", "03:30")},
			"thu": {rng("00:00", "12:00"), rng("13:00", "24:00")}, "fri": {rng("00:00", "24:00")},
			"sat": {rng("01:00", "24:00")}, "sun": {rng("00:00", "02:30"), rng("22:00", "24:00")},
		},
	}
	weeks := []struct {
		zone  string
		start [3]int // the brute force covers the 7 local days from there
	}{
		{"America/Sao_Paulo", [3]int{2018, 11, 1}},
		{"America/Sao_Paulo", [3]int{2019, 2, 14}},
		{"America/New_York", [3]int{2026, 3, 5}},
		{"America/New_York", [3]int{2026, 10, 29}},
		{"Europe/Lisbon", [3]int{2026, 3, 26}},
		{"Europe/Lisbon", [3]int{2026, 10, 22}},
		{"Asia/Kolkata", [3]int{2026, 6, 1}},
		{"Australia/Lord_Howe", [3]int{2026, 4, 2}}, // a 30-minute DST shift
	}
	shapes := []struct {
		name      string
		grid      int
		durations []int
		avail     domain.Availability
		closure   bool
	}{
		{"grid 15, tenant hours", 15, []int{15, 150}, domain.Availability{}, false},
		{"grid 30, resource hours and closure", 30, []int{90}, resourceHours, true},
		{"grid 1, every minute", 1, []int{45}, domain.Availability{}, false},
	}
	for _, w := range weeks {
		for _, sh := range shapes {
			t.Run(w.zone+" "+sh.name, func(t *testing.T) {
				t.Parallel()
				loc, err := time.LoadLocation(w.zone)
				require.NoError(t, err)
				from := time.Date(w.start[0], time.Month(w.start[1]), w.start[2], 0, 0, 0, 0, loc)
				to := from.AddDate(0, 0, 7)
				in := domain.SettingsInput{
					Timezone: ptr(w.zone), BusinessHours: &oddHours, SlotGranularityMinutes: ptr(sh.grid),
					MinDurationMinutes: ptr(sh.grid), MaxDurationMinutes: ptr(600), MaxAdvanceDays: ptr(6),
					MinNoticeMinutes: ptr(90),
				}
				if sh.closure {
					in.Closures = &[]domain.Closure{{Date: from.AddDate(0, 0, 3).Format("2006-01-02")}}
				}
				p := domain.NewPolicy(MustTenant(t, in), MustResource(t, 1, "", sh.avail))
				now := from.Add(25*time.Hour + 7*time.Minute)
				// Windows computed over a wide range contain every checked slot.
				windows := p.Windows(from.Add(-48*time.Hour), to.Add(48*time.Hour))
				for _, dm := range sh.durations {
					d := time.Duration(dm) * time.Minute
					// An odd query range checks the edges too.
					qFrom, qTo := from.Add(7*time.Minute), to.Add(-53*time.Minute)
					cands := map[int64]bool{}
					for _, c := range p.Candidates(qFrom, qTo, d, now) {
						cands[c.UnixNano()] = true
					}
					checked := 0
					for s := from.Truncate(time.Minute); s.Before(to); s = s.Add(time.Minute) {
						err := p.Check(domain.SlotRequest{Start: s, End: s.Add(d), Seats: 1, Now: now})
						inRange := !s.Before(qFrom) && s.Before(qTo)
						if inRange {
							if (err == nil) != cands[s.UnixNano()] {
								t.Fatalf("candidate %s (%s) for %s: listed %v, check says %v", s.In(loc), s.UTC(), d, cands[s.UnixNano()], err)
							}
							checked++
						}
						hoursErr := errors.Is(err, domain.ErrOutsideBusinessHours) || errors.Is(err, domain.ErrOutsideResourceAvailability)
						if err == nil || hoursErr {
							inWindow := false
							for _, win := range windows {
								if win.Contains(s, s.Add(d)) {
									inWindow = true
								}
							}
							if (err == nil) != inWindow {
								t.Fatalf("window for %s (%s) for %s: inside %v, check says %v", s.In(loc), s.UTC(), d, inWindow, err)
							}
						}
					}
					require.Positive(t, checked)
					require.NotEmpty(t, cands, "the week offers slots")
				}
			})
		}
	}
}

func TestPolicyCandidatesRefusedShapes(t *testing.T) {
	t.Parallel()
	p := MustPolicy(t, domain.SettingsInput{})
	from, to := utc(2026, 6, 2, 0, 0), utc(2026, 6, 3, 0, 0)
	require.Len(t, p.Candidates(from, to, time.Hour, t0), 29, "09:00 … 16:00 every 15 minutes")
	require.Nil(t, p.Candidates(from, to, 10*time.Minute, t0), "below min duration")
	require.Nil(t, p.Candidates(from, to, 20*time.Minute, t0), "off grid")
	require.Nil(t, p.Candidates(to, from, time.Hour, t0), "empty range")

	r := MustResource(t, 1, "", domain.Availability{})
	require.NoError(t, r.Deactivate(admin, t0))
	inactive := domain.NewPolicy(MustTenant(t, domain.SettingsInput{}), r)
	require.Nil(t, inactive.Candidates(from, to, time.Hour, t0))
	require.Nil(t, inactive.Windows(from, to))
	require.Equal(t, []domain.Interval{{Start: utc(2026, 6, 2, 9, 0), End: utc(2026, 6, 2, 17, 0)}}, p.Windows(from, to))
}

// TestPolicyHoursAcrossDST checks that "09:00–17:00" means 09:00 local on
// both sides of a DST change, on the booking's local date.
func TestPolicyHoursAcrossDST(t *testing.T) {
	t.Parallel()
	tests := []struct {
		zone  string
		start string
		hours time.Duration
		ok    bool
	}{
		{"America/New_York", "2026-03-06T09:00:00-05:00", 8, true},  // Friday, EST
		{"America/New_York", "2026-03-09T09:00:00-04:00", 8, true},  // Monday, EDT
		{"America/New_York", "2026-03-09T09:00:00-05:00", 8, false}, // 09:00 EST is 10:00 EDT: ends at 18:00
		{"America/New_York", "2026-03-09T08:00:00-05:00", 8, true},  // the same instant as 09:00 EDT
		{"America/New_York", "2026-11-02T16:00:00-05:00", 1, true},  // Monday after fall back
		{"America/New_York", "2026-11-02T09:00:00-04:00", 1, false}, // 08:00 EST
		{"Europe/Lisbon", "2026-03-27T09:00:00Z", 8, true},
		{"Europe/Lisbon", "2026-03-30T09:00:00+01:00", 8, true},
		{"Europe/Lisbon", "2026-03-30T09:00:00Z", 8, false},
		{"America/Sao_Paulo", "2018-11-05T09:00:00-02:00", 8, true},
		{"America/Sao_Paulo", "2018-11-05T09:00:00-03:00", 8, false}, // 10:00 local: ends 18:00
		{"America/Sao_Paulo", "2019-02-18T16:00:00-03:00", 1, true},
		{"America/Sao_Paulo", "2019-02-18T16:00:00-02:00", 1, true},  // 15:00 local
		{"America/Sao_Paulo", "2019-02-18T08:00:00-02:00", 1, false}, // 07:00 local
	}
	for _, tt := range tests {
		t.Run(tt.zone+" "+tt.start, func(t *testing.T) {
			t.Parallel()
			p := MustPolicy(t, domain.SettingsInput{Timezone: ptr(tt.zone), MaxAdvanceDays: ptr(0)})
			start := mustTime(t, tt.start)
			err := p.Check(domain.SlotRequest{Start: start, End: start.Add(tt.hours * time.Hour), Seats: 1, Now: start.AddDate(0, 0, -30)})
			if tt.ok {
				require.NoError(t, err)
				return
			}
			requireErrorIs(t, domain.ErrOutsideBusinessHours, err)
		})
	}
}
