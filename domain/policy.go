package domain

import (
	"time"

	"github.com/google/uuid"
)

// SlotRequest asks whether [Start, End) with Seats may be booked at Now.
// Now must be set: the notice and advance rules are relative to it.
type SlotRequest struct {
	Start time.Time
	End   time.Time
	Seats int
	Now   time.Time
}

// Policy is the one place that decides whether a time may be booked on a
// resource, built from the tenant's settings and the resource. The booking
// commands and the free-slot query both use it, so a slot that is shown is
// a slot that can be booked. It does not look at other bookings: that is
// Occupancy's job.
//
// Every wall-clock rule (business hours, closures, the resource's
// availability and overrides, the slot grid, the advance limit in days) is
// read in Location, on the local date of each instant, and converted to
// real instants zone period by zone period. Hence a spring-forward gap
// holds no bookable time and no slot starts in it, and the repeated
// fall-back hour is bookable once per real hour. A booking may cross from
// one range to the next (or over midnight) only when the ranges touch in
// real time.
//
// A Policy is an immutable value, safe for concurrent use.
type Policy struct {
	tenantID      uuid.UUID
	resourceID    uuid.UUID
	settings      Settings
	policyVersion int
	loc           *time.Location
	capacity      int
	active        bool

	hours    [7][]minuteRange // tenant business hours by time.Weekday
	closures map[civil]bool

	restricted bool             // the resource has weekly hours of its own
	weekly     [7][]minuteRange // resource weekly hours by time.Weekday
	overrides  map[civil][]minuteRange
}

// NewPolicy builds the policy for booking resource r of tenant t. A nil r
// gives a tenant-wide policy: capacity 1, always active, tenant hours only.
// The zone is the resource's own when it has one, else the tenant's.
func NewPolicy(t *Tenant, r *Resource) Policy {
	p := Policy{
		tenantID: t.id, settings: t.Settings(), policyVersion: t.policyVersion,
		loc: t.Location(), capacity: 1, active: true,
		closures: map[civil]bool{}, overrides: map[civil][]minuteRange{},
	}
	p.hours = parseWeekly(p.settings.BusinessHours)
	for _, c := range p.settings.Closures {
		if d, ok := parseDate(c.Date); ok {
			p.closures[d] = true
		}
	}
	if r == nil {
		return p
	}
	p.resourceID, p.capacity, p.active = r.id, r.capacity, r.active
	if r.timezone != "" {
		p.loc = mustLocation(r.timezone)
	}
	if r.availability.Weekly != nil {
		p.restricted = true
		p.weekly = parseWeekly(r.availability.Weekly)
	}
	for _, o := range r.availability.Overrides {
		if d, ok := parseDate(o.Date); ok {
			p.overrides[d] = parseRanges(o.Intervals)
		}
	}
	return p
}

func parseWeekly(w WeeklyHours) [7][]minuteRange {
	var out [7][]minuteRange
	for wd := time.Sunday; wd <= time.Saturday; wd++ {
		out[wd] = parseRanges(w[weekdayKey(wd)])
	}
	return out
}

func parseRanges(rs []TimeRange) []minuteRange {
	out := make([]minuteRange, 0, len(rs))
	for _, r := range rs {
		s, okS := parseClock(r.Start, false)
		e, okE := parseClock(r.End, true)
		if okS && okE && s < e {
			out = append(out, minuteRange{s, e})
		}
	}
	return out
}

// TenantID returns the tenant the policy belongs to.
func (p Policy) TenantID() uuid.UUID { return p.tenantID }

// ResourceID returns the resource the policy is for (uuid.Nil for a
// tenant-wide policy).
func (p Policy) ResourceID() uuid.UUID { return p.resourceID }

// Location returns the zone in which wall-clock rules are read: the
// resource's own zone, else the tenant's.
func (p Policy) Location() *time.Location {
	if p.loc == nil {
		return time.UTC
	}
	return p.loc
}

// PolicyVersion returns the tenant's policy version this policy applies;
// bookings record it.
func (p Policy) PolicyVersion() int { return p.policyVersion }

// Settings returns a copy of the tenant's settings.
func (p Policy) Settings() Settings { return p.settings.normalized() }

// Capacity returns the resource's seats (1 for a tenant-wide policy).
func (p Policy) Capacity() int { return p.capacity }

// Active reports whether the resource takes new bookings.
func (p Policy) Active() bool { return p.active }

// Occupied widens a booked interval by the tenant's buffers: the time the
// resource is actually taken and checked against capacity.
func (p Policy) Occupied(start, end time.Time) (time.Time, time.Time) {
	return start.Add(-minutes(p.settings.BufferBeforeMinutes)), end.Add(minutes(p.settings.BufferAfterMinutes))
}

// Check reports whether req may be booked, ignoring other bookings. It
// returns the first failing rule, in this order:
//
//   - a *ValidationError for seats below 1 or an end not after the start
//     (both reported together);
//   - ErrResourceInactive for a deactivated resource;
//   - ErrCapacityExceeded when Seats exceed the capacity;
//   - ErrDurationOutOfRange outside min/max_duration_minutes;
//   - ErrOffSlotGrid when the start's local wall-clock time is not a
//     multiple of slot_granularity_minutes after local midnight (with zero
//     seconds) or the duration is not a multiple of it;
//   - ErrTooShortNotice when the start is before Now, or before Now plus
//     min_notice_minutes (0 = only "not in the past");
//   - ErrTooFarInAdvance when the local start date is more than
//     max_advance_days calendar days after Now's local date (0 = no limit);
//   - ErrOutsideBusinessHours unless the whole interval lies inside the
//     tenant's business hours, on dates that are not closures;
//   - ErrOutsideResourceAvailability unless it also lies inside the
//     resource's own availability (weekly hours and dated overrides).
//
// The returned rule errors are *RuleError values matching the sentinels
// under errors.Is.
func (p Policy) Check(req SlotRequest) error {
	var v ValidationError
	if req.Seats < 1 {
		v.Add("seats", FieldOutOfRange, "must be at least 1")
	}
	switch {
	case req.Start.IsZero():
		v.Add("start", FieldRequired, "is required")
	case req.End.IsZero():
		v.Add("end", FieldRequired, "is required")
	case !req.Start.Before(req.End):
		v.Add("end", FieldInvalid, "must be after start")
	}
	if err := v.Err(); err != nil {
		return err
	}
	if err := p.checkShape(req.End.Sub(req.Start), req.Seats); err != nil {
		return err
	}
	if err := p.checkStart(req.Start, req.Now); err != nil {
		return err
	}
	from, to := localDate(req.Start, p.Location()).AddDate(0, 0, -1), localDate(req.End, p.Location()).AddDate(0, 0, 1)
	if !covers(p.tenantSet(from, to), req.Start, req.End) {
		return ruleErr(CodeOutsideBusinessHours, "%s – %s is outside business hours (%s)",
			p.wall(req.Start), p.wall(req.End), p.Location())
	}
	if !covers(p.resourceSet(from, to), req.Start, req.End) {
		return ruleErr(CodeOutsideResourceAvailability, "%s – %s is outside the resource's availability (%s)",
			p.wall(req.Start), p.wall(req.End), p.Location())
	}
	return nil
}

// checkShape applies the rules that do not depend on where the slot starts.
func (p Policy) checkShape(d time.Duration, seats int) error {
	if !p.active {
		return ruleErr(CodeResourceInactive, "the resource is inactive and takes no new bookings")
	}
	if seats > p.capacity {
		return ruleErr(CodeCapacityExceeded, "%d seats requested, the resource has %d", seats, p.capacity)
	}
	s := p.settings
	if d < minutes(s.MinDurationMinutes) || d > minutes(s.MaxDurationMinutes) {
		return ruleErr(CodeDurationOutOfRange, "duration %s is outside %d–%d minutes", d, s.MinDurationMinutes, s.MaxDurationMinutes)
	}
	if g := minutes(s.SlotGranularityMinutes); g <= 0 || d%g != 0 {
		return ruleErr(CodeOffSlotGrid, "duration %s is not a multiple of %d minutes", d, s.SlotGranularityMinutes)
	}
	return nil
}

// checkStart applies the grid, notice and advance rules to a start.
func (p Policy) checkStart(start, now time.Time) error {
	s := p.settings
	if !p.onGrid(start) {
		return ruleErr(CodeOffSlotGrid, "start %s is not on the %d-minute grid from local midnight", p.wall(start), s.SlotGranularityMinutes)
	}
	if start.Before(now) {
		return ruleErr(CodeTooShortNotice, "start %s is in the past", p.wall(start))
	}
	if n := minutes(s.MinNoticeMinutes); n > 0 && start.Before(now.Add(n)) {
		return ruleErr(CodeTooShortNotice, "start %s is less than %d minutes from now", p.wall(start), s.MinNoticeMinutes)
	}
	if s.MaxAdvanceDays > 0 {
		last := localDate(now, p.Location()).AddDate(0, 0, s.MaxAdvanceDays)
		if localDate(start, p.Location()).After(last) {
			return ruleErr(CodeTooFarInAdvance, "start %s is more than %d days ahead", p.wall(start), s.MaxAdvanceDays)
		}
	}
	return nil
}

// onGrid reports whether the local wall-clock time of t is a whole number
// of grid steps after local midnight.
func (p Policy) onGrid(t time.Time) bool {
	lt := t.In(p.Location())
	if lt.Second() != 0 || lt.Nanosecond() != 0 || p.settings.SlotGranularityMinutes <= 0 {
		return false
	}
	return (lt.Hour()*60+lt.Minute())%p.settings.SlotGranularityMinutes == 0
}

// Windows returns the bookable time in [from, to) as sorted, disjoint UTC
// intervals: tenant business hours minus closures, intersected with
// the resource's availability. It ignores grid, duration, notice and
// advance rules and other bookings. An inactive resource has no windows.
// A booking passes the hours rules of Check exactly when it lies inside one
// window (computed over a range that contains it).
func (p Policy) Windows(from, to time.Time) []Interval {
	if !p.active || !from.Before(to) {
		return nil
	}
	from, to = from.UTC(), to.UTC()
	return clip(p.windows(from, to), from, to)
}

// windows returns the bookable instants of every local date that [from, to)
// touches, plus a day each side, unclipped.
func (p Policy) windows(from, to time.Time) []Interval {
	df, dt := localDate(from, p.Location()).AddDate(0, 0, -1), localDate(to, p.Location()).AddDate(0, 0, 1)
	return intersect(p.tenantSet(df, dt), p.resourceSet(df, dt))
}

// Candidates returns, oldest first and in UTC, every start in [from, to) at which a
// one-seat booking of the given duration passes Check at now. Other
// bookings are ignored; the free-slot query subtracts them with Occupancy.
// It returns nil when the duration itself is refused (out of range, off the
// grid) or the resource is inactive.
func (p Policy) Candidates(from, to time.Time, duration time.Duration, now time.Time) []time.Time {
	if !from.Before(to) || duration <= 0 || p.checkShape(duration, 1) != nil {
		return nil
	}
	from, to = from.UTC(), to.UTC()
	var out []time.Time
	for _, w := range p.windows(from, to.Add(duration)) {
		// A start must lie in [from, to) and its slot inside the window.
		first := maxTime(w.Start, from)
		if t := first.Truncate(time.Minute); t.Before(first) {
			first = t.Add(time.Minute)
		} else {
			first = t
		}
		for s := first; s.Before(to) && !s.Add(duration).After(w.End); s = s.Add(time.Minute) {
			if p.onGrid(s) && p.checkStart(s, now) == nil {
				out = append(out, s)
			}
		}
	}
	return out
}

// tenantSet returns the instants inside business hours on the local dates
// from..to (inclusive), closures removed.
func (p Policy) tenantSet(from, to civil) []Interval {
	periods := periodsFor(p.Location(), from, to)
	var out []Interval
	for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
		if p.closures[d] {
			continue
		}
		out = append(out, dayInstants(periods, d, p.hours[d.Weekday()])...)
	}
	return normalize(out)
}

// resourceSet returns the instants inside the resource's availability on
// the local dates from..to (inclusive). A date without an override and a
// resource without weekly hours is open all day, so the tenant's hours
// alone decide.
func (p Policy) resourceSet(from, to civil) []Interval {
	periods := periodsFor(p.Location(), from, to)
	var out []Interval
	for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
		ranges, ok := p.overrides[d]
		switch {
		case ok:
		case p.restricted:
			ranges = p.weekly[d.Weekday()]
		default:
			ranges = []minuteRange{{0, 1440}}
		}
		out = append(out, dayInstants(periods, d, ranges)...)
	}
	return normalize(out)
}

// dayInstants converts wall-clock ranges of civil date d into instants.
func dayInstants(periods []zonePeriod, d civil, ranges []minuteRange) []Interval {
	var out []Interval
	for _, r := range ranges {
		out = append(out, wallInstants(periods, d.Add(minutes(r.start)), d.Add(minutes(r.end)))...)
	}
	return out
}

func (p Policy) wall(t time.Time) string {
	return t.In(p.Location()).Format("2006-01-02 15:04 MST")
}

func minutes(n int) time.Duration { return time.Duration(n) * time.Minute }
