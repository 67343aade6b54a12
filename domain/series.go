package domain

import (
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
)

// WallLayout formats the naive wall-clock times of a series (DTSTART in
// its zone).
const WallLayout = "2006-01-02T15:04:05"

// Series links the occurrences of a recurring booking (stream
// SeriesStream). Each occurrence is a normal booking carrying the series id
// and its occurrence start; the series records the rule they came from and
// every edit that applied to several of them, with its scope, so calendars
// can render one RRULE with EXDATEs and RECURRENCE-IDs. A reschedule of
// the following occurrences splits the series: the moved tail becomes a
// new series that links back to this one.
type Series struct {
	root
	id, tenantID, resourceID, clientID uuid.UUID
	rrule, dtstart, timezone           string
	duration                           int
	policy                             SeriesPolicy
	parentID                           uuid.UUID
	members                            map[uuid.UUID]Occurrence
	createdAt                          time.Time
	createdBy                          string
}

// NewSeries records series.created for the occurrences booked in the same
// append (and those skipped). plan gives the rule; loc is the zone the rule
// was expanded in. It returns a *ValidationError when no occurrence was
// booked.
func NewSeries(id, tenantID uuid.UUID, plan SeriesPlan, loc *time.Location, booked []Occurrence, skipped []OccurrenceFailure, excluded []time.Time, actor Actor, now time.Time) (*Series, error) {
	var v ValidationError
	if id == uuid.Nil {
		v.Add("id", FieldRequired, "is required")
	}
	if len(booked) == 0 {
		v.Add("recurrence", FieldInvalid, "no occurrence could be booked")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	occs := append([]Occurrence(nil), booked...)
	sort.Slice(occs, func(i, j int) bool { return occs[i].OccurrenceStart.Before(occs[j].OccurrenceStart) })
	ex := make([]time.Time, 0, len(excluded))
	for _, t := range excluded {
		ex = append(ex, t.UTC())
	}
	if skipped == nil {
		skipped = []OccurrenceFailure{}
	}
	policy := plan.Policy
	if policy == "" {
		policy = SeriesAllOrNothing
	}
	s := &Series{}
	err := s.record(s.apply, SeriesCreated{
		SeriesID: id, TenantID: tenantID, ResourceID: plan.Request.ResourceID, ClientID: plan.Request.ClientID,
		RRule: plan.RRule, DTStart: plan.DTStart.Format(WallLayout), Timezone: loc.String(),
		DurationMinutes: int(plan.Request.End.Sub(plan.Request.Start) / time.Minute),
		ExDates:         ex, Policy: policy, Occurrences: occs, Skipped: skipped,
		ParentSeriesID: optID(plan.ParentSeriesID), CreatedBy: actor.ID, CreatedAt: now.UTC(),
	})
	return s, err
}

var _ Aggregate = (*Series)(nil)

// Replay rebuilds the series from its stream.
func (s *Series) Replay(events ...Event) error { return s.replay("series", s.apply, events) }

// RecordCancelled records series.occurrences_cancelled for a cancellation
// with scope following or all of the given bookings, from the occurrence
// start from on. Bookings that are not members are ignored; when none is
// left it records nothing.
func (s *Series) RecordCancelled(scope Scope, from time.Time, bookingIDs []uuid.UUID, reason string, actor Actor, now time.Time) error {
	ids := s.membersOf(bookingIDs)
	if len(ids) == 0 {
		return nil
	}
	return s.record(s.apply, SeriesOccurrencesCancelled{
		SeriesID: s.id, Scope: scope, From: from.UTC(), BookingIDs: ids, Reason: strings.TrimSpace(reason),
		Actor: actor.ID, ActorRole: actor.Role, At: now.UTC(),
	})
}

// RecordRescheduled records series.rescheduled (scope all): the rule now
// starts at the naive wall-clock dtstart with the given duration, and the
// moved occurrences have the given occurrence starts and times.
func (s *Series) RecordRescheduled(rrule string, dtstart time.Time, durationMinutes int, moved []Occurrence, actor Actor, now time.Time) error {
	occs := append([]Occurrence(nil), moved...)
	sort.Slice(occs, func(i, j int) bool { return occs[i].OccurrenceStart.Before(occs[j].OccurrenceStart) })
	return s.record(s.apply, SeriesRescheduled{
		SeriesID: s.id, Scope: ScopeAll, RRule: rrule, DTStart: dtstart.Format(WallLayout), DurationMinutes: durationMinutes,
		Occurrences: occs, Actor: actor.ID, ActorRole: actor.Role, At: now.UTC(),
	})
}

// RecordSplit records series.split: the bookings from occurrence start from
// on left for series newID, and this series' rule became rrule.
func (s *Series) RecordSplit(newID uuid.UUID, from time.Time, rrule string, bookingIDs []uuid.UUID, actor Actor, now time.Time) error {
	if newID == uuid.Nil || newID == s.id {
		var v ValidationError
		v.Add("new_series_id", FieldInvalid, "must name another series")
		return v.Err()
	}
	return s.record(s.apply, SeriesSplit{
		SeriesID: s.id, NewSeriesID: newID, From: from.UTC(), RRule: rrule, BookingIDs: s.membersOf(bookingIDs),
		Actor: actor.ID, ActorRole: actor.Role, At: now.UTC(),
	})
}

func (s *Series) membersOf(ids []uuid.UUID) []uuid.UUID {
	var out []uuid.UUID
	for _, id := range ids {
		if _, ok := s.members[id]; ok {
			out = append(out, id)
		}
	}
	return out
}

func (s *Series) apply(e Event) error {
	switch e := e.(type) {
	case SeriesCreated:
		if s.version > 0 {
			return alreadyCreated("series", e)
		}
		s.id, s.tenantID, s.resourceID, s.clientID = e.SeriesID, e.TenantID, e.ResourceID, e.ClientID
		s.rrule, s.dtstart, s.timezone, s.duration, s.policy = e.RRule, e.DTStart, e.Timezone, e.DurationMinutes, e.Policy
		if e.ParentSeriesID != nil {
			s.parentID = *e.ParentSeriesID
		}
		s.members = map[uuid.UUID]Occurrence{}
		for _, o := range e.Occurrences {
			s.members[o.BookingID] = o
		}
		s.createdAt, s.createdBy = e.CreatedAt, e.CreatedBy
	case SeriesOccurrencesCancelled:
		if s.version == 0 {
			return notCreated("series", e)
		}
	case SeriesRescheduled:
		if s.version == 0 {
			return notCreated("series", e)
		}
		s.rrule, s.dtstart, s.duration = e.RRule, e.DTStart, e.DurationMinutes
		for _, o := range e.Occurrences {
			if _, ok := s.members[o.BookingID]; ok {
				s.members[o.BookingID] = o
			}
		}
	case SeriesSplit:
		if s.version == 0 {
			return notCreated("series", e)
		}
		s.rrule = e.RRule
		for _, id := range e.BookingIDs {
			delete(s.members, id)
		}
	default:
		return foreignEvent("series", e)
	}
	return nil
}

// ID returns the series id.
func (s *Series) ID() uuid.UUID { return s.id }

// TenantID returns the owning tenant.
func (s *Series) TenantID() uuid.UUID { return s.tenantID }

// ResourceID returns the resource every occurrence books.
func (s *Series) ResourceID() uuid.UUID { return s.resourceID }

// RRule returns the current RRULE value (no DTSTART).
func (s *Series) RRule() string { return s.rrule }

// DTStart returns the rule's first wall-clock start as a naive date-time
// (see WallClock).
func (s *Series) DTStart() time.Time {
	t, _ := time.Parse(WallLayout, s.dtstart)
	return t
}

// Location returns the zone the rule is expanded in.
func (s *Series) Location() *time.Location { return mustLocation(s.timezone) }

// ParentID returns the series this one was split off, uuid.Nil for none.
func (s *Series) ParentID() uuid.UUID { return s.parentID }

// Occurrences returns the bookings that belong to the series, by occurrence
// start.
func (s *Series) Occurrences() []Occurrence {
	out := make([]Occurrence, 0, len(s.members))
	for _, o := range s.members {
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].OccurrenceStart.Before(out[j].OccurrenceStart) })
	return out
}

// SeriesView is the JSON shape of a series as POST /bookings answers a
// recurring request: the series and the bookings it made.
type SeriesView struct {
	ID             uuid.UUID           `json:"id"`
	SeriesID       uuid.UUID           `json:"series_id"`
	TenantID       uuid.UUID           `json:"tenant_id"`
	ResourceID     uuid.UUID           `json:"resource_id"`
	ClientID       uuid.UUID           `json:"client_id"`
	RRule          string              `json:"rrule"`
	DTStart        string              `json:"dtstart"`
	Timezone       string              `json:"timezone"`
	Policy         SeriesPolicy        `json:"policy"`
	ParentSeriesID *uuid.UUID          `json:"parent_series_id,omitempty"`
	Bookings       []BookingView       `json:"bookings"`
	Skipped        []OccurrenceFailure `json:"skipped"`
	Version        int64               `json:"version"`
	CreatedAt      time.Time           `json:"created_at"`
	CreatedBy      string              `json:"created_by"`
}

// View returns the series with the given bookings (its occurrences as just
// created) and skipped occurrences.
func (s *Series) View(bookings []BookingView, skipped []OccurrenceFailure) SeriesView {
	if skipped == nil {
		skipped = []OccurrenceFailure{}
	}
	return SeriesView{
		ID: s.id, SeriesID: s.id, TenantID: s.tenantID, ResourceID: s.resourceID, ClientID: s.clientID,
		RRule: s.rrule, DTStart: s.dtstart, Timezone: s.timezone, Policy: s.policy, ParentSeriesID: optID(s.parentID),
		Bookings: bookings, Skipped: skipped, Version: s.version, CreatedAt: s.createdAt, CreatedBy: s.createdBy,
	}
}
