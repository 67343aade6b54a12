package domain

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Weekdays are the keys of WeeklyHours, Monday first, as in the contract.
var Weekdays = []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}

// weekdayKey maps time.Weekday to its contract key.
func weekdayKey(d time.Weekday) string {
	return [...]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}[d]
}

// TimeRange is a wall-clock range [Start, End) on one local date, "HH:MM"
// in the zone that applies (the resource's, else the tenant's). End may be
// "24:00" to reach the next midnight; otherwise both lie in 00:00–23:59 and
// End is after Start. A range never wraps past midnight: split it over two
// weekdays, and the two halves merge when they touch in real time.
type TimeRange struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

// WeeklyHours maps a weekday key ("mon" … "sun") to its ranges. A weekday
// that is absent or has an empty list is closed. Ranges of one day must not
// overlap; ranges that touch (11:00–12:00, 12:00–13:00) merge.
type WeeklyHours map[string][]TimeRange

// Closure closes one local date (YYYY-MM-DD) for the whole tenant, e.g. a
// holiday: the date counts as outside business hours whatever its weekday.
type Closure struct {
	Date   string `json:"date"`
	Reason string `json:"reason,omitempty"`
}

// Override replaces a resource's weekly hours on one local date
// (YYYY-MM-DD). Empty Intervals close the resource that day.
type Override struct {
	Date      string      `json:"date"`
	Intervals []TimeRange `json:"intervals"`
}

// Availability is a resource's own opening hours, which apply on top of the
// tenant's business hours (a booking must satisfy both).
//
// Weekly nil means the resource adds no weekly restriction: on dates without
// an override only the tenant's hours apply. Weekly non-nil (even empty)
// lists the resource's hours and a weekday absent from it is closed for the
// resource. An override replaces the weekly hours on its date (empty
// intervals = closed). The zero Availability therefore restricts nothing,
// and setting it returns a resource to "follows the tenant's hours".
type Availability struct {
	Weekly    WeeklyHours `json:"weekly"`
	Overrides []Override  `json:"overrides"`
}

// IsZero reports whether a restricts nothing.
func (a Availability) IsZero() bool { return a.Weekly == nil && len(a.Overrides) == 0 }

// Interval is a half-open range of instants [Start, End).
type Interval struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Contains reports whether [start, end) lies inside i.
func (i Interval) Contains(start, end time.Time) bool {
	return !start.Before(i.Start) && !end.After(i.End)
}

// Overlaps reports whether [start, end) and i share an instant.
func (i Interval) Overlaps(start, end time.Time) bool {
	return start.Before(i.End) && i.Start.Before(end)
}

const dateLayout = "2006-01-02"

// parseClock parses "HH:MM" into minutes after midnight; "24:00" is allowed
// only when allow24 is set.
func parseClock(s string, allow24 bool) (int, bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	for _, i := range []int{0, 1, 3, 4} {
		if s[i] < '0' || s[i] > '9' {
			return 0, false // strconv.Atoi would take "+8" or "-0"
		}
	}
	h := int(s[0]-'0')*10 + int(s[1]-'0')
	m := int(s[3]-'0')*10 + int(s[4]-'0')
	if m > 59 {
		return 0, false
	}
	if h == 24 && m == 0 && allow24 {
		return 1440, true
	}
	if h > 23 {
		return 0, false
	}
	return h*60 + m, true
}

// parseDate parses a YYYY-MM-DD civil date strictly (no normalisation of
// 2026-02-30).
func parseDate(s string) (time.Time, bool) {
	d, err := time.Parse(dateLayout, s)
	if err != nil || d.Format(dateLayout) != s {
		return time.Time{}, false
	}
	return d, true
}

// minuteRange is a parsed TimeRange in minutes after midnight.
type minuteRange struct{ start, end int }

// validateRanges checks a list of ranges of one day, recording problems under
// path, and returns the parsed ranges sorted by start.
func validateRanges(v *ValidationError, path string, ranges []TimeRange) []minuteRange {
	parsed := make([]minuteRange, 0, len(ranges))
	type indexed struct {
		minuteRange
		i int
	}
	var ok []indexed
	for i, r := range ranges {
		p := fmt.Sprintf("%s[%d]", path, i)
		s, okS := parseClock(r.Start, false)
		e, okE := parseClock(r.End, true)
		if !okS {
			v.Addf(p+".start", FieldInvalid, "must be a time HH:MM between 00:00 and 23:59, got %q", r.Start)
		}
		if !okE {
			v.Addf(p+".end", FieldInvalid, "must be a time HH:MM between 00:01 and 24:00, got %q", r.End)
		}
		if !okS || !okE {
			continue
		}
		if e <= s {
			v.Addf(p+".end", FieldInvalid, "must be after start %s", r.Start)
			continue
		}
		ok = append(ok, indexed{minuteRange{s, e}, i})
	}
	sort.SliceStable(ok, func(a, b int) bool { return ok[a].start < ok[b].start })
	for k := range ok {
		if k > 0 && ok[k].start < ok[k-1].end {
			v.Addf(fmt.Sprintf("%s[%d]", path, ok[k].i), FieldOverlap,
				"overlaps %s[%d]", path, ok[k-1].i)
		}
		parsed = append(parsed, ok[k].minuteRange)
	}
	return parsed
}

// validateWeekly checks every weekday of w under path.
func validateWeekly(v *ValidationError, path string, w WeeklyHours) {
	keys := make([]string, 0, len(w))
	for k := range w {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !slices.Contains(Weekdays, k) {
			v.Addf(path+"."+k, FieldInvalid, "unknown weekday %q: use mon, tue, wed, thu, fri, sat or sun", k)
			continue
		}
		validateRanges(v, path+"."+k, w[k])
	}
}

// validateAvailability checks a resource availability under path.
func validateAvailability(v *ValidationError, path string, a Availability) {
	validateWeekly(v, joinPath(path, "weekly"), a.Weekly)
	seen := map[string]int{}
	for i, o := range a.Overrides {
		p := joinPath(path, fmt.Sprintf("overrides[%d]", i))
		if _, ok := parseDate(o.Date); !ok {
			v.Addf(p+".date", FieldInvalid, "must be a date YYYY-MM-DD, got %q", o.Date)
		} else if j, dup := seen[o.Date]; dup {
			v.Addf(p+".date", FieldDuplicate, "date %s is already overridden by overrides[%d]", o.Date, j)
		} else {
			seen[o.Date] = i
		}
		validateRanges(v, p+".intervals", o.Intervals)
	}
}

// cloneWeekly deep-copies w, keeping nil as nil (nil and empty differ for
// resource availability).
func cloneWeekly(w WeeklyHours) WeeklyHours {
	if w == nil {
		return nil
	}
	out := make(WeeklyHours, len(w))
	for k, rs := range w {
		out[k] = slices.Clone(rs)
	}
	return out
}

func cloneAvailability(a Availability) Availability {
	out := Availability{Weekly: cloneWeekly(a.Weekly)}
	for _, o := range a.Overrides {
		out.Overrides = append(out.Overrides, Override{Date: o.Date, Intervals: slices.Clone(o.Intervals)})
	}
	return out
}

// locations caches loaded zones: time.LoadLocation reads the zone database
// on every call, and policies are built for every command and query.
var locations sync.Map // string -> *time.Location

// loadLocation loads an IANA zone, refusing "" and "Local" (which would make
// results depend on the host).
func loadLocation(name string) (*time.Location, error) {
	if name == "" || strings.EqualFold(name, "Local") {
		return nil, fmt.Errorf("time zone %q is not an IANA zone name", name)
	}
	if l, ok := locations.Load(name); ok {
		return l.(*time.Location), nil
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	locations.Store(name, l)
	return l, nil
}

// mustLocation loads a zone that validation already accepted; it falls back
// to UTC so that replaying an old event never panics if the host's zone
// database lost a name.
func mustLocation(name string) *time.Location {
	if name == "" {
		return time.UTC
	}
	l, err := loadLocation(name)
	if err != nil {
		return time.UTC
	}
	return l
}

// civil is a calendar date without a zone, held as midnight UTC.
type civil = time.Time

// localDate returns the civil date of t in loc.
func localDate(t time.Time, loc *time.Location) civil {
	y, m, d := t.In(loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// LocalDate returns the calendar date (YYYY-MM-DD) of instant t in loc. It is
// the key of per-day rules such as the client daily limit, so it must be
// computed in the policy's zone, never in UTC.
func LocalDate(t time.Time, loc *time.Location) string {
	return localDate(t, loc).Format(dateLayout)
}

// zonePeriod is a span of instants [start, end) during which a zone keeps
// one UTC offset, so wall time = instant + offset is monotonic inside it.
type zonePeriod struct {
	start, end time.Time
	offset     time.Duration
}

// wallSlack bounds how far a wall-clock time can lie from the instant it
// names: offsets stay within ±26 h on every zone ever recorded.
const wallSlack = 26 * time.Hour

// zonePeriods splits the instants [from, to) into periods of constant offset
// in loc, all in UTC.
func zonePeriods(loc *time.Location, from, to time.Time) []zonePeriod {
	var out []zonePeriod
	cur, limit := from.UTC(), to.UTC()
	for cur.Before(limit) {
		lt := cur.In(loc)
		_, off := lt.Zone()
		_, end := lt.ZoneBounds()
		// ZoneBounds answers in loc, and zero when the zone never changes again.
		end = end.UTC()
		if end.IsZero() || end.After(limit) {
			end = limit
		}
		if !end.After(cur) {
			break
		}
		out = append(out, zonePeriod{start: cur, end: end, offset: time.Duration(off) * time.Second})
		cur = end
	}
	return out
}

// periodsFor returns the zone periods that can hold wall-clock times of the
// civil dates from..to inclusive.
func periodsFor(loc *time.Location, from, to civil) []zonePeriod {
	return zonePeriods(loc, from.Add(-wallSlack), to.Add(24*time.Hour+wallSlack))
}

// wallInstants returns the instants whose local wall clock lies in
// [from, to), where from and to are wall-clock times encoded as UTC (a naive
// date-time) and periods cover them. Working per zone period, where the
// offset is constant, makes this exact around DST: a wall time inside a
// spring-forward gap yields no instant, and the repeated fall-back hour
// yields both real hours. The result is sorted and merged.
func wallInstants(periods []zonePeriod, from, to time.Time) []Interval {
	if !from.Before(to) {
		return nil
	}
	var out []Interval
	for _, zp := range periods {
		s, e := maxTime(from.Add(-zp.offset), zp.start), minTime(to.Add(-zp.offset), zp.end)
		if s.Before(e) {
			out = appendMerged(out, Interval{Start: s, End: e})
		}
	}
	return out
}

// appendMerged appends iv to a sorted, merged list whose last element starts
// no later than iv.
func appendMerged(list []Interval, iv Interval) []Interval {
	if n := len(list); n > 0 && !iv.Start.After(list[n-1].End) {
		if iv.End.After(list[n-1].End) {
			list[n-1].End = iv.End
		}
		return list
	}
	return append(list, iv)
}

// normalize sorts and merges intervals (touching ones merge).
func normalize(list []Interval) []Interval {
	slices.SortFunc(list, func(a, b Interval) int { return a.Start.Compare(b.Start) })
	var out []Interval
	for _, iv := range list {
		if iv.Start.Before(iv.End) {
			out = appendMerged(out, iv)
		}
	}
	return out
}

// intersect returns the intersection of two sorted, merged lists.
func intersect(a, b []Interval) []Interval {
	var out []Interval
	for i, j := 0, 0; i < len(a) && j < len(b); {
		s, e := maxTime(a[i].Start, b[j].Start), minTime(a[i].End, b[j].End)
		if s.Before(e) {
			out = append(out, Interval{Start: s, End: e})
		}
		if a[i].End.Before(b[j].End) {
			i++
		} else {
			j++
		}
	}
	return out
}

// clip restricts a sorted list to [from, to).
func clip(list []Interval, from, to time.Time) []Interval {
	return intersect(list, []Interval{{Start: from, End: to}})
}

// covers reports whether [start, end) lies inside one interval of a sorted,
// merged list.
func covers(list []Interval, start, end time.Time) bool {
	i := sort.Search(len(list), func(i int) bool { return list[i].End.After(start) })
	return i < len(list) && list[i].Contains(start, end)
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
