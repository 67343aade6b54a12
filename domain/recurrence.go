package domain

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/google/uuid"
)

// SeriesPolicy says what creating a recurring series does when some of its
// occurrences cannot be booked. The string values are the contract's.
type SeriesPolicy string

// Series policies.
const (
	// SeriesAllOrNothing refuses the whole series when any occurrence
	// fails a rule or conflicts. It is the default.
	SeriesAllOrNothing SeriesPolicy = "all_or_nothing"
	// SeriesSkipConflicts books every occurrence that passes and reports
	// the others as skipped.
	SeriesSkipConflicts SeriesPolicy = "skip_conflicts"
)

// Valid reports whether p is a known policy ("" is not: resolve it first).
func (p SeriesPolicy) Valid() bool { return p == SeriesAllOrNothing || p == SeriesSkipConflicts }

// Scope says which occurrences of a series an edit (cancel, reschedule)
// applies to. The string values are the contract's and are stored in
// events.
type Scope string

// Edit scopes. The empty scope on a booking outside any series means
// ScopeOccurrence.
const (
	// ScopeOccurrence edits the one booking.
	ScopeOccurrence Scope = "occurrence"
	// ScopeFollowing edits the booking and every later occurrence of its
	// series; a reschedule splits the series there.
	ScopeFollowing Scope = "following"
	// ScopeAll edits every occurrence of the series that has not started.
	ScopeAll Scope = "all"
)

// Valid reports whether s is a known scope or empty.
func (s Scope) Valid() bool {
	return s == "" || s == ScopeOccurrence || s == ScopeFollowing || s == ScopeAll
}

// WallClock returns the wall-clock reading of instant t in loc as a naive
// date-time: a time.Time in UTC whose fields are the local ones. Recurrence
// rules are expanded on such values, so that "every Monday at 09:00" stays
// at 09:00 across daylight-saving changes.
func WallClock(t time.Time, loc *time.Location) time.Time {
	lt := t.In(loc)
	return time.Date(lt.Year(), lt.Month(), lt.Day(), lt.Hour(), lt.Minute(), lt.Second(), lt.Nanosecond(), time.UTC)
}

// WallInstant returns the instant at which the clocks of loc show the naive
// date-time wall (its fields read as in WallClock), resolving daylight-saving
// changes as RFC 5545 (section 3.3.5) does: a wall time repeated by a
// fall-back names its first occurrence, and a wall time skipped by a
// spring-forward is moved forward by the length of the gap (02:30 in a
// 02:00→03:00 gap is 03:30).
func WallInstant(wall time.Time, loc *time.Location) time.Time {
	naive := time.Date(wall.Year(), wall.Month(), wall.Day(), wall.Hour(), wall.Minute(), wall.Second(), wall.Nanosecond(), time.UTC)
	periods := zonePeriods(loc, naive.Add(-wallSlack), naive.Add(wallSlack))
	for _, zp := range periods {
		if t := naive.Add(-zp.offset); !t.Before(zp.start) && t.Before(zp.end) {
			return t
		}
	}
	// In a gap: read the wall time with the offset in force before it,
	// which lands after the transition by the same distance.
	for i := len(periods) - 1; i >= 0; i-- {
		if zp := periods[i]; !zp.start.After(naive.Add(-zp.offset)) {
			return naive.Add(-zp.offset)
		}
	}
	return naive
}

// Occurrence is one instance of a recurring series: OccurrenceStart is the
// start the rule gives it (its RECURRENCE-ID), Start and End the booked
// times, which differ once the occurrence alone was moved.
type Occurrence struct {
	BookingID       uuid.UUID `json:"booking_id"`
	OccurrenceStart time.Time `json:"occurrence_start"`
	Start           time.Time `json:"start"`
	End             time.Time `json:"end"`
}

// OccurrenceFailure names one occurrence of a series that could not be
// booked or changed, with the contract code of the rule it broke and, for
// booking_conflict, the bookings in the way.
type OccurrenceFailure struct {
	Start     time.Time  `json:"start"`
	End       time.Time  `json:"end"`
	Code      string     `json:"code"`
	Detail    string     `json:"detail"`
	Conflicts []Conflict `json:"conflicts,omitempty"`
}

// NewOccurrenceFailure describes err (a domain error) as the failure of the
// occurrence [start, end).
func NewOccurrenceFailure(start, end time.Time, err error) OccurrenceFailure {
	f := OccurrenceFailure{Start: start.UTC(), End: end.UTC(), Code: CodeValidationFailed, Detail: err.Error()}
	var coded Coded
	if errors.As(err, &coded) {
		f.Code = coded.Code()
	}
	var ce *ConflictError
	if errors.As(err, &ce) {
		f.Conflicts = append([]Conflict(nil), ce.Conflicts...)
	}
	return f
}

// SeriesError refuses a whole series (or a series edit) because of the
// occurrences it lists, every failing one with its own code. Its code is
// booking_conflict when any occurrence conflicts, else the code of the
// first failure, so the HTTP status matches the single-booking case. It
// matches the sentinel of that code under errors.Is.
type SeriesError struct {
	Occurrences []OccurrenceFailure
	// Reason, when set, explains a refusal that is not about single
	// occurrences (e.g. every occurrence was skipped).
	Reason string
}

// Error names how many occurrences failed and the first one.
func (e *SeriesError) Error() string {
	if len(e.Occurrences) == 0 {
		return "series refused: " + e.Reason
	}
	first := e.Occurrences[0]
	msg := fmt.Sprintf("%d occurrence(s) cannot be booked; first at %s: %s", len(e.Occurrences),
		first.Start.Format(time.RFC3339), first.Detail)
	if e.Reason != "" {
		msg = e.Reason + ": " + msg
	}
	return msg
}

// Code returns booking_conflict when any occurrence conflicts, else the
// first failure's code.
func (e *SeriesError) Code() string {
	for _, o := range e.Occurrences {
		if o.Code == CodeBookingConflict {
			return CodeBookingConflict
		}
	}
	if len(e.Occurrences) > 0 {
		return e.Occurrences[0].Code
	}
	return CodeValidationFailed
}

// Is matches the sentinel of Code.
func (e *SeriesError) Is(target error) bool {
	t, ok := target.(*RuleError)
	return ok && t.Rule == e.Code()
}

// ProblemConflicts lists every booking in the way of any occurrence once,
// so a client that reads only conflicts[] still sees them.
func (e *SeriesError) ProblemConflicts(add func(bookingID uuid.UUID, start, end time.Time)) {
	seen := map[uuid.UUID]bool{}
	for _, o := range e.Occurrences {
		for _, c := range o.Conflicts {
			if !seen[c.BookingID] {
				seen[c.BookingID] = true
				add(c.BookingID, c.Start, c.End)
			}
		}
	}
}

// Exclusions are the EXDATEs of a series: exact occurrence starts, and
// whole local dates on which no occurrence is booked.
type Exclusions struct {
	Instants []time.Time
	Dates    []string // YYYY-MM-DD in the series' zone
}

// Excludes reports whether the occurrence starting at start (in zone loc)
// is excluded.
func (x Exclusions) Excludes(start time.Time, loc *time.Location) bool {
	for _, t := range x.Instants {
		if t.Equal(start) {
			return true
		}
	}
	if len(x.Dates) > 0 {
		d := LocalDate(start, loc)
		for _, e := range x.Dates {
			if e == d {
				return true
			}
		}
	}
	return false
}

// SeriesPlan is a recurring booking request after its rule was expanded:
// the first occurrence's request, the occurrence starts the rule gives
// (already converted to instants in the policy's zone), and the rule text
// to record.
type SeriesPlan struct {
	Request BookingRequest
	// RRule is the RRULE value (without DTSTART and EXDATE) as recorded.
	RRule string
	// DTStart is the first occurrence's wall-clock start in Timezone.
	DTStart time.Time
	// Starts are the instants the rule yields, oldest first, before
	// exclusions.
	Starts     []time.Time
	Exclusions Exclusions
	Policy     SeriesPolicy
	// ParentSeriesID links a series split off another one.
	ParentSeriesID uuid.UUID
}

// Occurrences returns the booked intervals of the plan: every start not
// excluded, each lasting as long as the request (an exact duration, as RFC
// 5545 gives events whose end is a DTEND), deduplicated and sorted. It
// returns a *ValidationError when no occurrence is left or more than max
// are.
func (sp SeriesPlan) Occurrences(loc *time.Location, max int) ([]Interval, error) {
	d := sp.Request.End.Sub(sp.Request.Start)
	seen := map[time.Time]bool{}
	var out []Interval
	for _, s := range sp.Starts {
		s = s.UTC()
		if seen[s] || sp.Exclusions.Excludes(s, loc) {
			continue
		}
		seen[s] = true
		out = append(out, Interval{Start: s, End: s.Add(d)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	var v ValidationError
	switch {
	case len(out) == 0:
		v.Add("recurrence.rrule", FieldInvalid, "the rule and its exclusions leave no occurrence")
	case max > 0 && len(out) > max:
		v.Addf("recurrence.rrule", FieldOutOfRange, "the rule yields %d occurrences, the tenant allows at most %d (max_occurrences)", len(out), max)
	}
	return out, v.Err()
}
