package commands

import (
	"fmt"
	"strings"
	"time"

	"github.com/bookingengine/booking/domain"
	"github.com/google/uuid"
	"github.com/teambition/rrule-go"
)

// Recurrence is the recurrence member of POST /bookings.
//
// RRule is an RFC 5545 RRULE value ("FREQ=WEEKLY;COUNT=4", an "RRULE:"
// prefix is accepted) bounded by COUNT or UNTIL. It may carry EXDATE lines
// after it ("EXDATE;TZID=Europe/Lisbon:20261208T090000",
// "EXDATE:20261208T120000Z", "EXDATE;VALUE=DATE:20261208"), and ExDates may
// list further exclusions as RFC 3339 instants, local date-times
// ("2026-12-08T09:00:00", read in the resource's zone) or local dates
// ("2026-12-08": no occurrence that day). DTSTART is not accepted: the
// request's start is the first occurrence. Policy is all_or_nothing (the
// default) or skip_conflicts.
type Recurrence struct {
	RRule   string
	ExDates []string
	Policy  domain.SeriesPolicy
}

// expansionCap bounds how many rule instances are generated before the
// exclusions are applied, so a rule excluded almost entirely still ends.
const expansionCap = 4 * domain.MaxOccurrencesLimit

// expandedSeries is a recurrence expanded for one request.
type expandedSeries struct {
	plan      domain.SeriesPlan
	intervals []domain.Interval
	// excluded are the rule instances the exclusions removed.
	excluded []time.Time
}

// expandSeries parses rec and expands it from req's start on wall-clock
// times of loc: each instance's local date and time come from the rule,
// and only then become an instant, so a weekly 09:00 stays at 09:00 on
// both sides of a daylight-saving change. It returns a
// *domain.ValidationError naming the recurrence fields at fault, also when
// the rule is unbounded, does not start at req.Start, or yields more than
// max occurrences.
func expandSeries(req domain.BookingRequest, rec Recurrence, loc *time.Location, max int) (expandedSeries, error) {
	var v domain.ValidationError
	policy := rec.Policy
	if policy == "" {
		policy = domain.SeriesAllOrNothing
	}
	if !policy.Valid() {
		v.Addf("recurrence.policy", domain.FieldInvalid, "must be %q or %q, got %q", domain.SeriesAllOrNothing, domain.SeriesSkipConflicts, rec.Policy)
	}
	if req.Start.IsZero() || !req.Start.Before(req.End) {
		v.Add("end", domain.FieldInvalid, "must be after start")
	}
	var ex domain.Exclusions
	ruleLine := ""
	for _, line := range strings.FieldsFunc(rec.RRule, func(r rune) bool { return r == '\n' || r == '\r' }) {
		line = strings.TrimSpace(line)
		upper := strings.ToUpper(line)
		switch {
		case line == "":
		case strings.HasPrefix(upper, "EXDATE"):
			if err := parseExdateLine(line, loc, &ex); err != nil {
				v.Addf("recurrence.rrule", domain.FieldInvalid, "%v", err)
			}
		case strings.HasPrefix(upper, "DTSTART"):
			v.Add("recurrence.rrule", domain.FieldInvalid, "DTSTART is not accepted: the booking's start is the first occurrence")
		case ruleLine != "":
			v.Add("recurrence.rrule", domain.FieldInvalid, "must hold one RRULE")
		default:
			ruleLine = strings.TrimPrefix(line, "RRULE:")
		}
	}
	for i, s := range rec.ExDates {
		if err := parseExdate(strings.TrimSpace(s), loc, &ex); err != nil {
			v.Addf(fmt.Sprintf("recurrence.exdates[%d]", i), domain.FieldInvalid, "%v", err)
		}
	}
	if ruleLine == "" {
		v.Add("recurrence.rrule", domain.FieldRequired, "is required, e.g. FREQ=WEEKLY;COUNT=4")
	}
	if err := v.Err(); err != nil {
		return expandedSeries{}, err
	}
	opt, err := rrule.StrToROptionInLocation(ruleLine, loc)
	if err != nil {
		v.Addf("recurrence.rrule", domain.FieldInvalid, "not an RFC 5545 RRULE: %v", err)
		return expandedSeries{}, v.Err()
	}
	if opt.Count < 0 || (opt.Count == 0 && opt.Until.IsZero()) {
		v.Add("recurrence.rrule", domain.FieldInvalid, "must be bounded by COUNT or UNTIL")
		return expandedSeries{}, v.Err()
	}
	if opt.Freq >= rrule.HOURLY && (len(opt.Bysetpos)+len(opt.Bymonth)+len(opt.Bymonthday)+len(opt.Byyearday)+
		len(opt.Byweekno)+len(opt.Byweekday)+len(opt.Byhour)+len(opt.Byminute)+len(opt.Bysecond)+len(opt.Byeaster) > 0) {
		// A filter can make an hourly or finer rule match rarely or never,
		// and the expansion then scans every period up to centuries ahead
		// before it can answer: one request could hold a core for minutes.
		// Daily and coarser rules scan at most about 10^5 periods.
		v.Add("recurrence.rrule", domain.FieldInvalid, "HOURLY, MINUTELY and SECONDLY rules take no BY… parts; use a DAILY or coarser rule with BYHOUR/BYMINUTE")
		return expandedSeries{}, v.Err()
	}
	if opt.Interval < 0 {
		v.Add("recurrence.rrule", domain.FieldInvalid, "INTERVAL must be positive")
		return expandedSeries{}, v.Err()
	}
	dtstart := domain.WallClock(req.Start, loc)
	opt.Dtstart = dtstart
	if !opt.Until.IsZero() {
		opt.Until = untilWall(ruleLine, opt.Until, loc)
	}
	r, err := rrule.NewRRule(*opt)
	if err != nil {
		v.Addf("recurrence.rrule", domain.FieldInvalid, "not an RFC 5545 RRULE: %v", err)
		return expandedSeries{}, v.Err()
	}
	plan := domain.SeriesPlan{Request: req, DTStart: dtstart, Exclusions: ex, Policy: policy}
	next := r.Iterator()
	var excluded []time.Time
	kept := 0
	for n := 0; ; n++ {
		wall, ok := next()
		if !ok {
			break
		}
		if n == 0 && !wall.Equal(dtstart) {
			v.Addf("recurrence.rrule", domain.FieldInvalid, "the rule's first occurrence (%s) must be the booking's start (%s)",
				wall.Format(domain.WallLayout), dtstart.Format(domain.WallLayout))
			return expandedSeries{}, v.Err()
		}
		if n >= expansionCap || kept > max {
			v.Addf("recurrence.rrule", domain.FieldOutOfRange, "the rule yields more than %d occurrences (max_occurrences)", max)
			return expandedSeries{}, v.Err()
		}
		start := domain.WallInstant(wall, loc)
		plan.Starts = append(plan.Starts, start)
		if ex.Excludes(start, loc) {
			excluded = append(excluded, start)
		} else {
			kept++
		}
	}
	intervals, err := plan.Occurrences(loc, max)
	if err != nil {
		return expandedSeries{}, err
	}
	// Record the rule as calendars need it: UNTIL as a UTC instant, no
	// DTSTART (the series records it apart, with its zone).
	out := *opt
	out.Dtstart = time.Time{}
	if !out.Until.IsZero() {
		out.Until = domain.WallInstant(out.Until, loc)
	}
	plan.RRule = out.RRuleString()
	return expandedSeries{plan: plan, intervals: intervals, excluded: excluded}, nil
}

// untilWall turns the parsed UNTIL into a naive wall-clock time of loc: a
// UTC instant ("…Z") is converted, a floating date-time kept, and a date
// covers its whole local day.
func untilWall(ruleLine string, until time.Time, loc *time.Location) time.Time {
	raw := ""
	for _, part := range strings.Split(ruleLine, ";") {
		if k, val, ok := strings.Cut(part, "="); ok && strings.EqualFold(k, "UNTIL") {
			raw = val
		}
	}
	wall := domain.WallClock(until, loc)
	if len(raw) == len(rrule.DateFormat) {
		return wall.Add(24*time.Hour - time.Second)
	}
	return wall
}

// parseExdate reads one member of recurrence.exdates.
func parseExdate(s string, loc *time.Location, ex *domain.Exclusions) error {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		ex.Instants = append(ex.Instants, t.UTC())
		return nil
	}
	if t, err := time.Parse(domain.WallLayout, s); err == nil {
		ex.Instants = append(ex.Instants, domain.WallInstant(t, loc))
		return nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		ex.Dates = append(ex.Dates, t.Format(time.DateOnly))
		return nil
	}
	return fmt.Errorf("%q is not an RFC 3339 instant, a local date-time 2006-01-02T15:04:05 or a date 2006-01-02", s)
}

// parseExdateLine reads an iCalendar EXDATE line: values in UTC ("…Z"), in
// its TZID (else the series' zone), or dates (VALUE=DATE).
func parseExdateLine(line string, loc *time.Location, ex *domain.Exclusions) error {
	head, values, ok := strings.Cut(line, ":")
	if !ok || values == "" {
		return fmt.Errorf("EXDATE line %q has no value", line)
	}
	zone := loc
	for _, param := range strings.Split(head, ";")[1:] {
		k, val, _ := strings.Cut(param, "=")
		if strings.EqualFold(k, "TZID") {
			l, err := time.LoadLocation(val)
			if err != nil {
				return fmt.Errorf("EXDATE TZID %q is not an IANA zone", val)
			}
			zone = l
		}
	}
	for _, val := range strings.Split(values, ",") {
		val = strings.TrimSpace(val)
		switch len(val) {
		case len(rrule.DateFormat):
			d, err := time.Parse(rrule.DateFormat, val)
			if err != nil {
				return fmt.Errorf("EXDATE value %q: %v", val, err)
			}
			ex.Dates = append(ex.Dates, d.Format(time.DateOnly))
		case len(rrule.DateTimeFormat):
			t, err := time.Parse(rrule.DateTimeFormat, val)
			if err != nil {
				return fmt.Errorf("EXDATE value %q: %v", val, err)
			}
			ex.Instants = append(ex.Instants, t.UTC())
		case len(rrule.LocalDateTimeFormat):
			t, err := time.Parse(rrule.LocalDateTimeFormat, val)
			if err != nil {
				return fmt.Errorf("EXDATE value %q: %v", val, err)
			}
			ex.Instants = append(ex.Instants, domain.WallInstant(t, zone))
		default:
			return fmt.Errorf("EXDATE value %q is not a DATE or DATE-TIME", val)
		}
	}
	return nil
}

// occurrenceID names the booking of a series' occurrence: derived from the
// series id and the occurrence start, so a retried series names the same
// bookings.
func occurrenceID(seriesID uuid.UUID, start time.Time) uuid.UUID {
	return uuid.NewSHA1(eventNamespace, fmt.Appendf(nil, "occurrence\x00%s\x00%d", seriesID, start.UnixNano()))
}

// weekdays indexes rrule weekdays Monday first, as rrule numbers them.
var weekdays = []rrule.Weekday{rrule.MO, rrule.TU, rrule.WE, rrule.TH, rrule.FR, rrule.SA, rrule.SU}

// shiftRule returns rule (an RRULE value) for a series whose occurrences
// all moved by the wall-clock offset: plain BYDAY weekdays move with a
// change of day. Rules whose other BY parts pin dates or times cannot
// follow such a move; they return a *domain.ValidationError on field scope.
// until, when not zero, replaces COUNT and UNTIL.
func shiftRule(rule string, offset time.Duration, until time.Time) (string, error) {
	opt, err := rrule.StrToROption(rule)
	if err != nil {
		return "", fmt.Errorf("stored rule %q: %w", rule, err)
	}
	days := int(offset / (24 * time.Hour))
	clock := offset % (24 * time.Hour)
	if clock < 0 {
		clock += 24 * time.Hour
		days--
	}
	var v domain.ValidationError
	if days%7 != 0 && (len(opt.Bymonthday) > 0 || len(opt.Byyearday) > 0 || len(opt.Byweekno) > 0 ||
		len(opt.Bysetpos) > 0 || len(opt.Byeaster) > 0 || hasOrdinal(opt.Byweekday)) {
		v.Add("scope", domain.FieldInvalid, "the series' rule pins its dates; move its occurrences one by one")
	}
	if clock != 0 && (len(opt.Byhour) > 0 || len(opt.Byminute) > 0 || len(opt.Bysecond) > 0) {
		v.Add("scope", domain.FieldInvalid, "the series' rule pins its times; move its occurrences one by one")
	}
	if err := v.Err(); err != nil {
		return "", err
	}
	if d := ((days % 7) + 7) % 7; d != 0 {
		for i, wd := range opt.Byweekday {
			opt.Byweekday[i] = weekdays[(wd.Day()+d)%7]
		}
	}
	if !until.IsZero() {
		opt.Count, opt.Until = 0, until.UTC()
	}
	return opt.RRuleString(), nil
}

// truncateRule returns rule ending before the instant from.
func truncateRule(rule string, from time.Time) (string, error) {
	opt, err := rrule.StrToROption(rule)
	if err != nil {
		return "", fmt.Errorf("stored rule %q: %w", rule, err)
	}
	opt.Count, opt.Until = 0, from.UTC().Add(-time.Second)
	return opt.RRuleString(), nil
}

// ruleGaps returns the instants a recorded rule yields from dtstart (a
// wall-clock time in loc) that none of held starts at: the EXDATEs of a
// series made of those occurrences. It expands the rule as calendars do
// (UNTIL recorded as an instant).
func ruleGaps(rule string, dtstart time.Time, loc *time.Location, held []domain.Occurrence) ([]time.Time, error) {
	opt, err := rrule.StrToROptionInLocation(rule, time.UTC)
	if err != nil {
		return nil, fmt.Errorf("rule %q: %w", rule, err)
	}
	opt.Dtstart = dtstart
	if !opt.Until.IsZero() {
		opt.Until = domain.WallClock(opt.Until, loc)
	}
	r, err := rrule.NewRRule(*opt)
	if err != nil {
		return nil, fmt.Errorf("rule %q: %w", rule, err)
	}
	holds := make(map[time.Time]bool, len(held))
	for _, o := range held {
		holds[o.OccurrenceStart.UTC()] = true
	}
	var gaps []time.Time
	next := r.Iterator()
	for range expansionCap {
		wall, ok := next()
		if !ok {
			break
		}
		if at := domain.WallInstant(wall, loc).UTC(); !holds[at] {
			gaps = append(gaps, at)
		}
	}
	return gaps, nil
}

func hasOrdinal(wds []rrule.Weekday) bool {
	for _, wd := range wds {
		if wd.N() != 0 {
			return true
		}
	}
	return false
}
