package domain_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/bookingengine/booking/domain"
)

// fuzzZones are the zones the policy fuzzer draws from: no daylight saving,
// the usual one-hour changes on both hemispheres, changes at midnight
// (Santiago, Havana), a 30-minute change (Lord Howe) and offsets of 45
// minutes (Kathmandu, Chatham).
var fuzzZones = []string{
	"UTC", "Europe/Lisbon", "America/New_York", "America/Sao_Paulo", "America/Santiago",
	"America/Havana", "Australia/Lord_Howe", "Asia/Kathmandu", "Pacific/Chatham", "Europe/London",
}

// fuzzGrids are the slot granularities it draws from.
var fuzzGrids = []int{1, 5, 10, 15, 20, 25, 30, 45, 60, 90, 120, 180, 1440}

// byteReader hands out the fuzzer's bytes as small numbers, zeros once
// they run out, so every input decodes to some scenario; draw reads a zero
// as the plain choice (open all day, active, a start on the grid).
type byteReader struct {
	b []byte
	i int
}

func (r *byteReader) next() int {
	if r.i >= len(r.b) {
		return 0
	}
	r.i++
	return int(r.b[r.i-1])
}

// n returns a number in [0, m), from as many bytes as m needs.
func (r *byteReader) n(m int) int {
	v := 0
	for span := 1; span < m; span <<= 8 {
		v = v<<8 | r.next()
	}
	return v % m
}

// minuteRange is an open wall-clock range [start, end) in minutes after
// local midnight; 1440 is the end of the day.
type minuteRange struct{ start, end int }

// ranges draws up to three sorted, disjoint (possibly touching) ranges.
func (r *byteReader) ranges() []minuteRange {
	k := r.n(4)
	cuts := make([]int, 0, 2*k)
	for range 2 * k {
		cuts = append(cuts, r.n(1441))
	}
	slices.Sort(cuts)
	var out []minuteRange
	for i := 0; i+1 < len(cuts); i += 2 {
		if cuts[i] < cuts[i+1] {
			out = append(out, minuteRange{cuts[i], cuts[i+1]})
		}
	}
	// Sometimes make two ranges touch, which the policy must merge.
	if len(out) == 2 && r.n(3) == 0 && out[0].end < out[1].start {
		out[1].start = out[0].end
	}
	return out
}

func clock(m int) string { return fmt.Sprintf("%02d:%02d", m/60, m%60) }

func timeRanges(rs []minuteRange) []domain.TimeRange {
	out := []domain.TimeRange{}
	for _, r := range rs {
		out = append(out, domain.TimeRange{Start: clock(r.start), End: clock(r.end)})
	}
	return out
}

// policyScenario is everything the brute-force checker needs, in plain
// values of its own: it shares no code with the policy.
type policyScenario struct {
	tenantZone, resourceZone string
	hours                    [7][]minuteRange // by time.Weekday
	closures                 map[string]bool  // YYYY-MM-DD
	restricted               bool             // the resource has weekly hours
	weekly                   [7][]minuteRange
	overrides                map[string][]minuteRange
	grid, minDur, maxDur     int
	notice, advance          int
	capacity                 int
	inactive                 bool
	now                      time.Time
}

// zone is where wall-clock rules are read: the resource's zone, else the
// tenant's.
func (s *policyScenario) zone() *time.Location {
	name := s.tenantZone
	if s.resourceZone != "" {
		name = s.resourceZone
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

func inRanges(rs []minuteRange, m int) bool {
	for _, r := range rs {
		if r.start <= m && m < r.end {
			return true
		}
	}
	return false
}

// bruteForce decides a request the slow, obvious way: the shape rules by
// arithmetic, then every real minute of [start, end) read on a wall clock
// in the zone, against the business hours of its local weekday, the
// closures of its local date and the resource's hours. It returns "" when
// the request may be booked, else the first rule it breaks.
func (s *policyScenario) bruteForce(start, end time.Time, seats int) string {
	loc := s.zone()
	d := end.Sub(start)
	switch {
	case seats < 1 || !start.Before(end):
		return "validation"
	case s.inactive:
		return "inactive"
	case seats > s.capacity:
		return "capacity"
	case d < time.Duration(s.minDur)*time.Minute || d > time.Duration(s.maxDur)*time.Minute:
		return "duration"
	case d%(time.Duration(s.grid)*time.Minute) != 0:
		return "grid"
	}
	ls := start.In(loc)
	if ls.Second() != 0 || ls.Nanosecond() != 0 || (ls.Hour()*60+ls.Minute())%s.grid != 0 {
		return "grid"
	}
	if start.Before(s.now) || start.Before(s.now.Add(time.Duration(s.notice)*time.Minute)) {
		return "notice"
	}
	if s.advance > 0 {
		ln := s.now.In(loc)
		last := time.Date(ln.Year(), ln.Month(), ln.Day()+s.advance, 0, 0, 0, 0, time.UTC)
		if time.Date(ls.Year(), ls.Month(), ls.Day(), 0, 0, 0, 0, time.UTC).After(last) {
			return "advance"
		}
	}
	for t := start; t.Before(end); t = t.Add(time.Minute) {
		lt := t.In(loc)
		date := lt.Format("2006-01-02")
		m := lt.Hour()*60 + lt.Minute()
		if s.closures[date] || !inRanges(s.hours[lt.Weekday()], m) {
			return "hours"
		}
		if o, ok := s.overrides[date]; ok {
			if !inRanges(o, m) {
				return "availability"
			}
		} else if s.restricted && !inRanges(s.weekly[lt.Weekday()], m) {
			return "availability"
		}
	}
	return ""
}

// draw decodes a scenario, the tenant and resource the domain builds from
// it, and a request. ok is false when the domain refuses the settings
// (which the drawing avoids, so that is rare).
func draw(r *byteReader) (s *policyScenario, p domain.Policy, start, end time.Time, seats int, ok bool) {
	s = &policyScenario{closures: map[string]bool{}, overrides: map[string][]minuteRange{}}
	s.tenantZone = fuzzZones[r.n(len(fuzzZones))]
	if r.n(2) == 0 {
		s.resourceZone = fuzzZones[r.n(len(fuzzZones))]
	}
	// Around every change of daylight saving time of 2026 in both
	// hemispheres, with seconds.
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s.now = base.Add(time.Duration(r.n(366*24*60))*time.Minute + time.Duration(r.n(60))*time.Second)
	loc := s.zone()
	nowLocal := s.now.In(loc)
	dateNear := func() string {
		return time.Date(nowLocal.Year(), nowLocal.Month(), nowLocal.Day()+r.n(12)-1, 0, 0, 0, 0, time.UTC).Format("2006-01-02")
	}

	week := domain.WeeklyHours{}
	allDay := r.n(4) == 0
	for wd := time.Sunday; wd <= time.Saturday; wd++ {
		if allDay {
			s.hours[wd] = []minuteRange{{0, 1440}}
		} else {
			s.hours[wd] = r.ranges()
		}
		week[[]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}[wd]] = timeRanges(s.hours[wd])
	}
	var closures []domain.Closure
	for range r.n(3) {
		d := dateNear()
		if !s.closures[d] {
			s.closures[d] = true
			closures = append(closures, domain.Closure{Date: d})
		}
	}
	s.grid = fuzzGrids[r.n(len(fuzzGrids))]
	s.minDur = s.grid * (1 + r.n(3))
	s.maxDur = min(s.minDur+s.grid*r.n(8), domain.MaxDurationLimitMinutes)
	if r.n(5) == 4 { // a minimum off the grid
		s.minDur = 1 + r.n(s.maxDur)
	}
	s.notice = []int{0, 0, 30, 60, 90, 1440}[r.n(6)]
	s.advance = []int{0, 0, 1, 2, 7, 30}[r.n(6)]
	s.capacity = 1 + r.n(3)
	settings := domain.SettingsInput{
		Timezone: &s.tenantZone, BusinessHours: &week, Closures: &closures,
		SlotGranularityMinutes: &s.grid, MinDurationMinutes: &s.minDur, MaxDurationMinutes: &s.maxDur,
		MinNoticeMinutes: &s.notice, MaxAdvanceDays: &s.advance,
	}
	tenant, err := domain.NewTenant(tenantID, domain.TenantInput{Name: "Fuzz", Domain: "fuzz.example.com", Settings: &settings}, admin, s.now)
	if err != nil {
		return s, p, start, end, 0, false
	}

	var avail domain.Availability
	if r.n(3) == 1 {
		s.restricted = true
		avail.Weekly = domain.WeeklyHours{}
		for wd := time.Sunday; wd <= time.Saturday; wd++ {
			if r.n(4) == 0 {
				continue // an absent weekday is closed
			}
			s.weekly[wd] = r.ranges()
			avail.Weekly[[]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}[wd]] = timeRanges(s.weekly[wd])
		}
	}
	for range r.n(3) {
		d := dateNear()
		if _, dup := s.overrides[d]; !dup {
			s.overrides[d] = r.ranges()
			avail.Overrides = append(avail.Overrides, domain.Override{Date: d, Intervals: timeRanges(s.overrides[d])})
		}
	}
	res, err := domain.NewResource(resourceID, tenantID, domain.ResourceInput{Name: "Room", Kind: domain.KindSpace,
		Capacity: s.capacity, Timezone: s.resourceZone}, nil, admin, s.now)
	if err != nil {
		return s, p, start, end, 0, false
	}
	if err := res.SetAvailability(avail, admin, s.now); err != nil {
		return s, p, start, end, 0, false
	}
	if r.n(10) == 9 {
		s.inactive = true
		if err := res.Deactivate(admin, s.now); err != nil {
			return s, p, start, end, 0, false
		}
	}
	p = domain.NewPolicy(tenant, res)

	// Mostly a start on the grid of a nearby local date, sometimes any
	// minute; durations mostly on the grid.
	if r.n(4) == 3 {
		start = s.now.Truncate(time.Minute).Add(time.Duration(r.n(3*24*60)-60) * time.Minute)
	} else {
		day := nowLocal.Day() + []int{1, 0, 2, 3, 4, 5, 6, 7, -1, 30}[r.n(10)] // zero: tomorrow
		start = time.Date(nowLocal.Year(), nowLocal.Month(), day, 0, (s.grid*r.n(1440/s.grid+1))%1440, 0, 0, loc)
	}
	if r.n(4) == 3 {
		end = start.Add(time.Duration(1+r.n(600)) * time.Minute)
	} else {
		end = start.Add(time.Duration(s.grid*(1+r.n(s.maxDur/s.grid+1))) * time.Minute)
	}
	seats = []int{1, 1, 1, 2, 3, 0, 4}[r.n(7)]
	return s, p, start, end, seats, true
}

// FuzzPolicyAgainstBruteForce builds random settings (zones with and
// without daylight saving, business hours, closures, grids, durations,
// notice, advance) and resources (their own zone, weekly hours, dated
// overrides, capacity, deactivation), and random requests: Policy.Check
// never panics and agrees with an independent brute-force checker that
// walks the request minute by minute on the zone's wall clock; every
// start Policy.Candidates offers passes the checker, and every start the
// checker accepts near the request is offered.
func FuzzPolicyAgainstBruteForce(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x01\x00\x12\x34\x56\x00\x10\x20\x30\x40\x50\x60\x70\x80\x90\xa0\xb0\xc0\xd0\xe0\xf0\x03\x02\x01"))
	f.Add([]byte("\x02\x01\x06\x80\x00\x00\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09"))
	f.Add([]byte("\x06\x00\x2e\x10\x00\x00\xff\xff\xff\xff\x00\x04\x01\x01\x00\x00\x02\x00\x05\x03"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &byteReader{b: data}
		s, p, start, end, seats, ok := draw(r)
		if !ok {
			return
		}
		err := p.Check(domain.SlotRequest{Start: start, End: end, Seats: seats, Now: s.now})
		want := s.bruteForce(start, end, seats)
		if err == nil && want != "" {
			t.Fatalf("the policy accepts %s – %s (%s), seats %d, now %s, which breaks the %s rule; scenario %+v",
				start.UTC(), end.UTC(), s.zone(), seats, s.now, want, *s)
		}
		if err != nil && want == "" {
			t.Fatalf("the policy refuses %s – %s (%s), seats %d, now %s: %v; the brute force accepts it; scenario %+v",
				start.UTC(), end.UTC(), s.zone(), seats, s.now, err, *s)
		}
		var coded domain.Coded
		if err != nil && !asCoded(err, &coded) {
			t.Fatalf("an uncoded refusal: %v", err)
		}

		// The free-slot side: candidates around the request.
		d := end.Sub(start)
		if d <= 0 || d%time.Minute != 0 {
			return
		}
		from, to := start.Add(-3*time.Hour), start.Add(3*time.Hour)
		offered := map[int64]bool{}
		for _, c := range p.Candidates(from, to, d, s.now) {
			offered[c.Unix()] = true
			if why := s.bruteForce(c, c.Add(d), 1); why != "" {
				t.Fatalf("Candidates offers %s for %s, which breaks the %s rule; scenario %+v", c, d, why, *s)
			}
		}
		for c := from.Truncate(time.Minute); c.Before(to); c = c.Add(time.Minute) {
			if !c.Before(from) && s.bruteForce(c, c.Add(d), 1) == "" && !offered[c.Unix()] {
				t.Fatalf("Candidates misses %s for %s, which the brute force accepts; scenario %+v", c, d, *s)
			}
		}
	})
}

func asCoded(err error, target *domain.Coded) bool { return errors.As(err, target) }

// FuzzPolicySettingsDocument decodes random settings and availability
// documents as a client could send them: whatever the domain accepts
// builds a policy whose Check, Windows and Candidates never panic and
// whose refusals are coded.
func FuzzPolicySettingsDocument(f *testing.F) {
	f.Add([]byte(`{"timezone":"Europe/Lisbon","business_hours":{"mon":[{"start":"08:00","end":"12:00"},{"start":"12:00","end":"24:00"}]},"slot_granularity_minutes":7,"min_duration_minutes":7,"max_duration_minutes":700}`),
		[]byte(`{"weekly":{"mon":[{"start":"00:00","end":"24:00"}]},"overrides":[{"date":"2026-03-29","intervals":[{"start":"01:00","end":"03:00"}]}]}`),
		"Australia/Lord_Howe", int64(1774800000), int32(60), int32(120))
	f.Add([]byte(`{"timezone":"America/Santiago","closures":[{"date":"2026-04-05"}],"max_advance_days":3,"min_notice_minutes":1}`),
		[]byte(`{}`), "", int64(1775000000), int32(-30), int32(15))
	f.Add([]byte(`{"business_hours":{"sun":[{"start":"+1:00","end":"-0:30"}]}}`), []byte(`{"weekly":{}}`), "UTC", int64(0), int32(0), int32(0))
	f.Fuzz(func(t *testing.T, settingsDoc, availDoc []byte, zone string, nowUnix int64, offsetMinutes, durationMinutes int32) {
		var in domain.SettingsInput
		if json.Unmarshal(settingsDoc, &in) != nil {
			return
		}
		now := time.Unix(nowUnix%(200*365*86400), 0).UTC()
		tenant, err := domain.NewTenant(uuid.New(), domain.TenantInput{Name: "Fuzz", Domain: "fuzz.example.com", Settings: &in}, admin, now)
		if err != nil {
			return
		}
		res, err := domain.NewResource(uuid.New(), tenantID, domain.ResourceInput{Name: "Room", Kind: domain.KindSpace, Timezone: zone}, nil, admin, now)
		if err != nil {
			res = nil
		}
		var avail domain.Availability
		if res != nil && json.Unmarshal(availDoc, &avail) == nil {
			_ = res.SetAvailability(avail, admin, now)
		}
		p := domain.NewPolicy(tenant, res)
		start := now.Add(time.Duration(offsetMinutes) * time.Minute)
		d := time.Duration(durationMinutes%(2*domain.MaxDurationLimitMinutes)) * time.Minute
		if err := p.Check(domain.SlotRequest{Start: start, End: start.Add(d), Seats: 1, Now: now}); err != nil {
			var coded domain.Coded
			if !asCoded(err, &coded) {
				t.Fatalf("an uncoded refusal: %v", err)
			}
		}
		_ = p.Windows(start.Add(-24*time.Hour), start.Add(48*time.Hour))
		_ = p.Candidates(start, start.Add(24*time.Hour), d, now)
	})
}
