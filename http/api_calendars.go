package http

import (
	"bytes"
	"context"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	ics "github.com/arran4/golang-ical"
	"github.com/google/uuid"
	"github.com/gorilla/mux"
	"github.com/teambition/rrule-go"

	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/queries"
)

// Calendars are the calendar use cases that RegisterCalendars serves.
type Calendars struct {
	Get   queries.CalendarHandler
	Feeds queries.CalendarFeedsHandler
}

// CalendarContentType is the media type of iCalendar responses.
const CalendarContentType = "text/calendar; charset=utf-8"

// calendarProductID is the PRODID of every iCalendar object served.
const calendarProductID = "-//Booking Engine//Calendars//EN"

// FeedPath returns the path of the public feed of a token.
func FeedPath(token string) string { return "/calendars/feeds/" + token + ".ics" }

// RegisterCalendars registers the calendar endpoints on s:
//
//   - GET /calendars/resources/{id} and GET /calendars/users/{id} (tenant
//     group, scope bookings:read): the calendar's entries in [from, to)
//     (both optional: 30 days back to 365 ahead) as JSON
//     {kind, id, name, from, to, entries: […]}, or as iCalendar (RFC
//     5545) with the .ics suffix or Accept: text/calendar. They honour
//     X-Min-Position.
//   - POST /calendars/{resources|users}/{id}/feed (scope bookings:read;
//     staff for a resource, the user itself or staff for a user), body
//     optionally {"details": "full"|"busy"}: 201 {"url":
//     "/calendars/feeds/<token>.ics", "details": …}, a new secret address
//     that replaces the previous one. DELETE on the same path revokes it
//     (204; 404 when there is none). The server keeps only the token's
//     hash, except that a POST sent with an Idempotency-Key has its
//     answer, address included, kept for replay for the key's lifetime.
//   - GET /calendars/feeds/{token}.ics (public: no token, no tenant
//     header): the feed's calendar as iCalendar for 30 days back to 365
//     ahead. An unknown or revoked token is 404.
//
// It must be called before s serves.
func RegisterCalendars(s *Server, c Calendars) {
	h := calendarAPI{c: c}
	t := s.Tenant()
	for _, k := range []struct {
		path string
		kind queries.CalendarKind
	}{{"resources", queries.CalendarResource}, {"users", queries.CalendarUser}} {
		base := "/calendars/" + k.path + "/{id}"
		t.HandleFunc(base+".ics", h.get(k.kind, true)).Methods(http.MethodGet)
		t.HandleFunc(base, h.get(k.kind, false)).Methods(http.MethodGet)
		t.HandleFunc(base+"/feed", s.AtHead(h.issue(k.kind))).Methods(http.MethodPost)
		t.HandleFunc(base+"/feed", s.AtHead(h.revoke(k.kind))).Methods(http.MethodDelete)
	}
	s.Public().HandleFunc("/calendars/feeds/{token}.ics", h.feed).Methods(http.MethodGet)
}

type calendarAPI struct{ c Calendars }

func (h calendarAPI) get(kind queries.CalendarKind, asICS bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		handle(w, r, func(ctx context.Context) error {
			if err := scope(r, ScopeBookingsRead); err != nil {
				return err
			}
			id, err := pathID(r)
			if err != nil {
				return err
			}
			p := &params{v: r.URL.Query()}
			q := queries.GetCalendar{Viewer: viewer(r), Kind: kind, ID: id, From: p.time("from"), To: p.time("to")}
			if q.MinPosition, err = p.err(r); err != nil {
				return err
			}
			cal, err := h.c.Get.Handle(ctx, q)
			if err != nil {
				return err
			}
			if asICS || wantsCalendar(r.Header.Get("Accept")) {
				return writeCalendar(w, cal)
			}
			return WriteJSON(w, http.StatusOK, cal)
		})
	}
}

// feedRequest is the optional body of POST …/feed.
type feedRequest struct {
	Details queries.CalendarDetail `json:"details"`
}

// feedResponse is the answer of POST …/feed.
type feedResponse struct {
	URL     string                 `json:"url"`
	Details queries.CalendarDetail `json:"details"`
}

func (h calendarAPI) issue(kind queries.CalendarKind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		handle(w, r, func(ctx context.Context) error {
			if err := scope(r, ScopeBookingsRead); err != nil {
				return err
			}
			id, err := pathID(r)
			if err != nil {
				return err
			}
			var in feedRequest
			if err := DecodeOptionalJSON(r, &in); err != nil {
				return err
			}
			pos, _, err := MinPosition(r)
			if err != nil {
				return err
			}
			feed, err := h.c.Feeds.Issue(ctx, queries.IssueCalendarFeed{Viewer: viewer(r), Kind: kind, ID: id, Detail: in.Details, MinPosition: pos})
			if err != nil {
				return err
			}
			w.Header().Set("Cache-Control", "no-store")
			return WriteJSON(w, http.StatusCreated, feedResponse{URL: FeedPath(feed.Token), Details: feed.Detail})
		})
	}
}

func (h calendarAPI) revoke(kind queries.CalendarKind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		handle(w, r, func(ctx context.Context) error {
			if err := scope(r, ScopeBookingsRead); err != nil {
				return err
			}
			id, err := pathID(r)
			if err != nil {
				return err
			}
			pos, _, err := MinPosition(r)
			if err != nil {
				return err
			}
			if err := h.c.Feeds.Revoke(ctx, queries.RevokeCalendarFeedQuery{Viewer: viewer(r), Kind: kind, ID: id, MinPosition: pos}); err != nil {
				return err
			}
			w.WriteHeader(http.StatusNoContent)
			return nil
		})
	}
}

// redactedFeedPath stands for a feed's path in logs.
const redactedFeedPath = "/calendars/feeds/REDACTED.ics"

func (h calendarAPI) feed(w http.ResponseWriter, r *http.Request) {
	token := mux.Vars(r)["token"]
	// The token is a credential and the access log records the path: the
	// request's URL is shared with the middleware that logs it.
	r.URL.Path, r.URL.RawPath = redactedFeedPath, ""
	handle(w, r, func(ctx context.Context) error {
		pos, _, err := MinPosition(r)
		if err != nil {
			return err
		}
		cal, err := h.c.Feeds.Feed(ctx, token, pos)
		if err != nil {
			return err
		}
		// The address is the credential: keep the body out of shared
		// caches.
		w.Header().Set("Cache-Control", "private, no-cache")
		return writeCalendar(w, cal)
	})
}

// wantsCalendar reports whether an Accept header prefers text/calendar to
// JSON (by quality; on a tie, by order).
func wantsCalendar(accept string) bool {
	calQ, jsonQ := -1.0, -1.0
	for i, part := range strings.Split(accept, ",") {
		mt, ps, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if v, ok := ps["q"]; ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		q -= float64(i) * 1e-6 // earlier wins a tie
		switch mt {
		case "text/calendar":
			calQ = max(calQ, q)
		case "application/json", "application/*", "*/*":
			jsonQ = max(jsonQ, q)
		}
	}
	return calQ > 0 && calQ > jsonQ
}

// writeCalendar writes cal as an iCalendar object.
func writeCalendar(w http.ResponseWriter, cal queries.CalendarView) error {
	var b bytes.Buffer
	if err := ICalendar(cal).SerializeTo(&b, ics.WithNewLineWindows); err != nil {
		return fmt.Errorf("encode calendar: %w", err)
	}
	w.Header().Set("Content-Type", CalendarContentType)
	w.WriteHeader(http.StatusOK)
	// Once the status is out a failed write cannot be reported: the
	// client sees a short body.
	_, _ = w.Write(b.Bytes())
	return nil
}

// ICalendar renders a calendar as an RFC 5545 VCALENDAR: one VEVENT per
// entry, with the UID, SEQUENCE and STATUS of the entry, DTSTART and DTEND
// in the booking's zone (TZID, with one VTIMEZONE per zone used; UTC
// times carry no TZID), and DTSTAMP and LAST-MODIFIED at the entry's last
// change, so that the same calendar state always renders to the same
// bytes. Cancelled and rejected bookings stay, with STATUS:CANCELLED, so
// that subscribers remove them.
//
// A recurring series is rendered whole, under the series' own UID: a
// master VEVENT with its RRULE from the series' DTSTART (in its zone),
// EXDATEs for the rule's instances that no booking of the series holds
// (excluded, skipped, moved to another series), and one VEVENT per
// occurrence with its RECURRENCE-ID (the start the rule gave it) and its
// own times, status and sequence (the occurrence's plus the series'). An
// occurrence the current rule does not yield (one that had started when
// the series was moved) is rendered alone, as a booking outside any
// series is.
func ICalendar(cal queries.CalendarView) *ics.Calendar {
	c := ics.NewCalendarFor("Booking Engine")
	c.SetProductId(calendarProductID)
	c.SetCalscale("GREGORIAN")
	if cal.Name != "" {
		c.SetXWRCalName(cal.Name)
	}
	c.SetRefreshInterval("PT1H")
	c.SetXPublishedTTL("PT1H")

	var (
		events   []*ics.VEvent
		rendered = map[uuid.UUID]bool{}
		spans    = zoneSpans{}
	)
	for _, s := range cal.Series {
		evs, done := seriesEvents(s, spans)
		events = append(events, evs...)
		for id := range done {
			rendered[id] = true
		}
	}
	for _, s := range cal.Series {
		for _, m := range s.Members {
			if !rendered[m.BookingID] && (m.End.After(cal.From) && m.Start.Before(cal.To)) {
				events = append(events, entryEvent(m, spans))
				rendered[m.BookingID] = true
			}
		}
	}
	for _, e := range cal.Entries {
		if !rendered[e.BookingID] {
			events = append(events, entryEvent(e, spans))
			rendered[e.BookingID] = true
		}
	}
	for _, tz := range spans.timezones() {
		c.AddVTimezone(tz)
	}
	for _, ev := range events {
		c.AddVEvent(ev)
	}
	return c
}

// zoneSpans collects, per zone, the span of times the calendar expresses
// in it, for its VTIMEZONE.
type zoneSpans map[string][2]time.Time

func (z zoneSpans) add(zone string, from, to time.Time) {
	if utc(zone) {
		return
	}
	s, ok := z[zone]
	if !ok {
		s = [2]time.Time{from, to}
	}
	z[zone] = [2]time.Time{minTime(s[0], from), maxTime(s[1], to)}
}

// timezones returns a VTIMEZONE per zone, in the order of their names.
func (z zoneSpans) timezones() []*ics.VTimezone {
	names := make([]string, 0, len(z))
	for n := range z {
		names = append(names, n)
	}
	slices.Sort(names)
	var out []*ics.VTimezone
	for _, n := range names {
		if loc, err := time.LoadLocation(n); err == nil {
			out = append(out, VTimezone(loc, z[n][0], z[n][1]))
		}
	}
	return out
}

// entryEvent renders one booking alone, under its own UID.
func entryEvent(e queries.CalendarEntry, spans zoneSpans) *ics.VEvent {
	ev := ics.NewEvent(e.UID)
	ev.SetDtStampTime(e.UpdatedAt)
	ev.SetCreatedTime(e.CreatedAt)
	ev.SetModifiedAt(e.UpdatedAt)
	ev.SetSequence(e.Sequence)
	bookingProps(ev, e, spans)
	return ev
}

// bookingProps sets what a VEVENT shows of one booking: its times, title,
// resource, client and status.
func bookingProps(ev *ics.VEvent, e queries.CalendarEntry, spans zoneSpans) {
	spans.add(e.Timezone, e.Start, e.End)
	setLocalTime(&ev.ComponentBase, ics.ComponentPropertyDtStart, e.Start, e.Timezone)
	setLocalTime(&ev.ComponentBase, ics.ComponentPropertyDtEnd, e.End, e.Timezone)
	title := e.Title
	if title == "" {
		title = "Booking"
	}
	ev.SetSummary(clean(title))
	if e.ResourceName != "" {
		ev.SetLocation(clean(e.ResourceName))
	}
	var desc []string
	if e.ClientName != "" {
		desc = append(desc, "Client: "+clean(e.ClientName))
	}
	if e.ResourceName != "" {
		desc = append(desc, "Resource: "+clean(e.ResourceName))
	}
	desc = append(desc, "Status: "+string(e.Status))
	ev.SetDescription(strings.Join(desc, "\n"))
	status := queries.CalendarStatus(e.Status)
	ev.SetStatus(ics.ObjectStatus(status))
	if status == queries.ICalCancelled {
		ev.SetTimeTransparency(ics.TransparencyTransparent)
	} else {
		ev.SetTimeTransparency(ics.TransparencyOpaque)
	}
}

// maxInstances bounds the expansion of a series' rule (the command side
// allows a few hundred occurrences).
const maxInstances = 5000

// seriesEvents renders a series as a master VEVENT and one instance per
// occurrence, and returns them with the bookings it rendered. It renders
// nothing when the rule does not parse or no occurrence matches it.
func seriesEvents(s queries.CalendarSeries, spans zoneSpans) ([]*ics.VEvent, map[uuid.UUID]bool) {
	loc, err := time.LoadLocation(s.Timezone)
	if err != nil || len(s.Members) == 0 {
		return nil, nil
	}
	dtstart, err := time.Parse(domain.WallLayout, s.DTStart)
	if err != nil {
		return nil, nil
	}
	opt, err := rrule.StrToROptionInLocation(s.RRule, time.UTC)
	if err != nil {
		return nil, nil
	}
	// The rule runs on naive wall-clock times, as the command side
	// expanded it; UNTIL is recorded as an instant.
	opt.Dtstart = dtstart
	if !opt.Until.IsZero() {
		opt.Until = domain.WallClock(opt.Until, loc)
	}
	rule, err := rrule.NewRRule(*opt)
	if err != nil {
		return nil, nil
	}
	held := map[time.Time]bool{}
	last := time.Time{}
	for _, m := range s.Members {
		if m.OccurrenceStart != nil {
			held[m.OccurrenceStart.UTC()] = true
			last = maxTime(last, m.OccurrenceStart.UTC())
		}
	}
	instances := map[time.Time]bool{}
	var exdates []time.Time
	next := rule.Iterator()
	for range maxInstances {
		wall, ok := next()
		if !ok {
			break
		}
		at := domain.WallInstant(wall, loc).UTC()
		instances[at] = true
		if !held[at] {
			exdates = append(exdates, at)
		}
		if at.After(last) && (opt.Count == 0 && opt.Until.IsZero()) {
			break // an unbounded rule: nothing after the last occurrence
		}
	}
	var members []queries.CalendarEntry
	for _, m := range s.Members {
		if m.OccurrenceStart != nil && instances[m.OccurrenceStart.UTC()] {
			members = append(members, m)
		}
	}
	if len(members) == 0 {
		return nil, nil
	}

	first := domain.WallInstant(dtstart, loc)
	spans.add(s.Timezone, first, first)
	master := ics.NewEvent(s.UID)
	master.SetDtStampTime(s.UpdatedAt)
	master.SetCreatedTime(s.CreatedAt)
	master.SetModifiedAt(s.UpdatedAt)
	master.SetSequence(s.Sequence)
	proto := members[0]
	proto.Status = seriesStatus(members)
	bookingProps(master, proto, zoneSpans{})
	// The master's times are the rule's: DTSTART and DURATION, not the
	// first occurrence's DTEND.
	master.RemoveProperty(ics.ComponentPropertyDtEnd)
	setLocalTime(&master.ComponentBase, ics.ComponentPropertyDtStart, first, s.Timezone)
	master.SetProperty(ics.ComponentPropertyDuration, fmt.Sprintf("PT%dM", s.DurationMinutes))
	master.AddRrule(s.RRule)
	for _, x := range exdates {
		spans.add(s.Timezone, x, x)
		v, params := localTime(x, s.Timezone)
		master.AddProperty(ics.ComponentPropertyExdate, v, params...)
	}

	out := []*ics.VEvent{master}
	done := map[uuid.UUID]bool{}
	for _, m := range members {
		ev := ics.NewEvent(s.UID)
		ev.SetDtStampTime(maxTime(m.UpdatedAt, s.UpdatedAt))
		ev.SetCreatedTime(m.CreatedAt)
		ev.SetModifiedAt(maxTime(m.UpdatedAt, s.UpdatedAt))
		ev.SetSequence(m.Sequence + s.Sequence)
		spans.add(s.Timezone, *m.OccurrenceStart, *m.OccurrenceStart)
		setLocalTime(&ev.ComponentBase, ics.ComponentPropertyRecurrenceId, *m.OccurrenceStart, s.Timezone)
		bookingProps(ev, m, spans)
		out = append(out, ev)
		done[m.BookingID] = true
	}
	return out, done
}

// seriesStatus is the STATUS of a series' master: CANCELLED when every
// occurrence is, TENTATIVE when none is confirmed and some await
// approval, CONFIRMED otherwise.
func seriesStatus(members []queries.CalendarEntry) domain.Status {
	cancelled, pending := 0, 0
	for _, m := range members {
		switch queries.CalendarStatus(m.Status) {
		case queries.ICalCancelled:
			cancelled++
		case queries.ICalTentative:
			pending++
		}
	}
	switch {
	case cancelled == len(members):
		return domain.StatusCancelled
	case pending+cancelled == len(members):
		return domain.StatusPending
	}
	return domain.StatusConfirmed
}

// utc reports whether a zone name means UTC.
func utc(zone string) bool { return zone == "" || zone == "UTC" || zone == "Etc/UTC" }

// setLocalTime sets (replaces) a DATE-TIME property to t in zone.
func setLocalTime(c *ics.ComponentBase, p ics.ComponentProperty, t time.Time, zone string) {
	v, params := localTime(t, zone)
	c.SetProperty(p, v, params...)
}

// localTime returns the DATE-TIME value of t in zone: local time with a
// TZID parameter, or UTC ("Z") for UTC or a zone this build does not know.
func localTime(t time.Time, zone string) (string, []ics.PropertyParameter) {
	if !utc(zone) {
		if loc, err := time.LoadLocation(zone); err == nil {
			return t.In(loc).Format("20060102T150405"), []ics.PropertyParameter{ics.WithTZID(zone)}
		}
	}
	return t.UTC().Format("20060102T150405Z"), nil
}

// clean removes carriage returns and newlines from a one-line text value.
func clean(s string) string {
	return strings.Join(strings.Fields(strings.NewReplacer("\r", " ", "\n", " ").Replace(s)), " ")
}

// VTimezone returns an RFC 5545 VTIMEZONE for loc (TZID: its IANA name)
// built from Go's zone data, valid for the local times of [from, to]: one
// observance for the zone period in force at from, with its true onset
// (the start of time when the zone never changed before), and one per
// transition up to to. Each observance is STANDARD or DAYLIGHT as the
// period observes daylight saving time, with DTSTART in the local time
// before the transition, TZOFFSETFROM, TZOFFSETTO and TZNAME, so a client
// without the IANA database resolves every local time as Go does.
func VTimezone(loc *time.Location, from, to time.Time) *ics.VTimezone {
	tz := ics.NewTimezone(loc.String())
	at := from.In(loc)
	onset, _ := at.ZoneBounds()
	addObservance(tz, onset, at)
	for {
		_, end := at.ZoneBounds()
		if end.IsZero() || end.After(to) {
			break
		}
		at = end.In(loc)
		addObservance(tz, end, at)
	}
	return tz
}

// addObservance adds the observance that starts at onset (zero: it has
// always been in force) and is in force at at.
func addObservance(tz *ics.VTimezone, onset, at time.Time) {
	name, offset := at.Zone()
	before := offset
	start := "19700101T000000"
	if !onset.IsZero() {
		_, before = onset.Add(-time.Second).In(at.Location()).Zone()
		start = onset.In(time.FixedZone("", before)).Format("20060102T150405")
	}
	var c *ics.ComponentBase
	if at.IsDST() {
		d := &ics.Daylight{}
		tz.Components = append(tz.Components, d)
		c = &d.ComponentBase
	} else {
		c = &tz.AddStandard().ComponentBase
	}
	c.SetProperty(ics.ComponentPropertyDtStart, start)
	c.SetProperty(ics.ComponentProperty(ics.PropertyTzoffsetfrom), utcOffset(before))
	c.SetProperty(ics.ComponentProperty(ics.PropertyTzoffsetto), utcOffset(offset))
	c.SetProperty(ics.ComponentProperty(ics.PropertyTzname), name)
}

// utcOffset formats seconds east of UTC as an RFC 5545 UTC-OFFSET:
// ±hhmm, or ±hhmmss when there are seconds.
func utcOffset(secs int) string {
	sign := "+"
	if secs < 0 {
		sign, secs = "-", -secs
	}
	s := fmt.Sprintf("%s%02d%02d", sign, secs/3600, secs/60%60)
	if secs%60 != 0 {
		s += fmt.Sprintf("%02d", secs%60)
	}
	return s
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
