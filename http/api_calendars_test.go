package http_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	ics "github.com/arran4/golang-ical"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/teambition/rrule-go"

	"github.com/bookingengine/booking/domain"
	bhttp "github.com/bookingengine/booking/http"
	"github.com/bookingengine/booking/queries"
)

// fakeCalendars is a calendars read model holding what a test puts in it.
type fakeCalendars struct {
	owners  []queries.CalendarOwner
	entries map[uuid.UUID][]queries.CalendarEntry // by tenant; UTC, ClientID set
	series  []queries.CalendarSeries              // of tenant A, without members
}

func (f *fakeCalendars) CalendarSeries(_ context.Context, tenant uuid.UUID, ids []uuid.UUID) ([]queries.CalendarSeries, error) {
	out := []queries.CalendarSeries{}
	for _, s := range f.series {
		if tenant != tenantA || !slices.Contains(ids, s.ID) {
			continue
		}
		for _, e := range f.entries[tenant] {
			if e.SeriesID != nil && *e.SeriesID == s.ID {
				s.Members = append(s.Members, e)
			}
		}
		slices.SortFunc(s.Members, func(a, b queries.CalendarEntry) int { return a.OccurrenceStart.Compare(*b.OccurrenceStart) })
		out = append(out, s)
	}
	return out, nil
}

func (f *fakeCalendars) CalendarOwner(_ context.Context, tenant uuid.UUID, kind queries.CalendarKind, id uuid.UUID) (queries.CalendarOwner, error) {
	for _, o := range f.owners {
		if o.TenantID == tenant && o.Kind == kind && o.ID == id {
			return o, nil
		}
	}
	return queries.CalendarOwner{}, fmt.Errorf("%s %s: %w", kind, id, domain.ErrNotFound)
}

func (f *fakeCalendars) CalendarEntries(_ context.Context, flt queries.CalendarFilter) ([]queries.CalendarEntry, error) {
	out := []queries.CalendarEntry{}
	for _, e := range f.entries[flt.TenantID] {
		side := (flt.ResourceID != uuid.Nil && e.ResourceID == flt.ResourceID) || (flt.ClientID != uuid.Nil && *e.ClientID == flt.ClientID)
		if side && e.End.After(flt.From) && e.Start.Before(flt.To) {
			out = append(out, e)
		}
	}
	return out, nil
}

// fakeFeeds is a feed store in a map.
type fakeFeeds struct {
	mu    sync.Mutex
	feeds map[string]queries.CalendarFeed // by hash
}

func (f *fakeFeeds) PutCalendarFeed(ctx context.Context, feed queries.CalendarFeed) error {
	_, _ = f.RevokeCalendarFeed(ctx, feed.TenantID, feed.Kind, feed.CalendarID)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.feeds[string(feed.TokenHash)] = feed
	return nil
}

func (f *fakeFeeds) RevokeCalendarFeed(_ context.Context, tenant uuid.UUID, kind queries.CalendarKind, id uuid.UUID) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for h, feed := range f.feeds {
		if feed.TenantID == tenant && feed.Kind == kind && feed.CalendarID == id {
			delete(f.feeds, h)
			return true, nil
		}
	}
	return false, nil
}

func (f *fakeFeeds) CalendarFeedByHash(_ context.Context, hash []byte) (queries.CalendarFeed, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if feed, ok := f.feeds[string(hash)]; ok {
		return feed, nil
	}
	return queries.CalendarFeed{}, fmt.Errorf("feed: %w", domain.ErrNotFound)
}

var (
	calRoom   = uuid.MustParse("aaaaaaaa-0000-4000-8000-000000000001")
	calPerson = uuid.MustParse("aaaaaaaa-0000-4000-8000-000000000002")
	calClient = uuid.MustParse("bbbbbbbb-0000-4000-8000-000000000001")
	calOther  = uuid.MustParse("bbbbbbbb-0000-4000-8000-000000000002")
	calPro    = uuid.MustParse("bbbbbbbb-0000-4000-8000-000000000003")
	calB1     = uuid.MustParse("cccccccc-0000-4000-8000-000000000001")
	calB2     = uuid.MustParse("cccccccc-0000-4000-8000-000000000002")
	calB3     = uuid.MustParse("cccccccc-0000-4000-8000-000000000003")
	calB4     = uuid.MustParse("cccccccc-0000-4000-8000-000000000004")
	calSeries = uuid.MustParse("dddddddd-0000-4000-8000-00000000000a")
	calS1     = uuid.MustParse("cccccccc-0000-4000-8000-0000000000a1")
	calS3     = uuid.MustParse("cccccccc-0000-4000-8000-0000000000a3")
	calS4     = uuid.MustParse("cccccccc-0000-4000-8000-0000000000a4")
	newYork   = mustLoad("America/New_York")
	// The clock of the calendar handlers: the feed window is 30 days
	// back to 365 ahead of it.
	calNow = time.Date(2026, 10, 20, 12, 0, 0, 0, time.UTC)
)

func mustLoad(name string) *time.Location {
	l, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return l
}

// calendarFixture serves the calendar endpoints over a fake read model:
// tenant A has a room, a person resource, a client, another client and a
// professional linked to the person; the client has a weekly 09:00
// booking in New York on both sides of the 2026-11-01 fall-back (the
// second one rescheduled twice), a cancelled one and a pending one on
// the person.
func calendarFixture(t *testing.T) *fixture {
	t.Helper()
	f := MustFixture(t)
	c1, c2 := calClient, calOther
	created := time.Date(2026, 10, 1, 8, 0, 0, 0, time.UTC)
	entry := func(id, resource uuid.UUID, client *uuid.UUID, start time.Time, minutes int, status domain.Status, seq int, title string) queries.CalendarEntry {
		return queries.CalendarEntry{BookingID: id, ResourceID: resource, ResourceName: "Room; 1, \"east\"", ClientID: client,
			ClientName: "Bea", Title: title, Start: start.UTC(), End: start.Add(time.Duration(minutes) * time.Minute).UTC(),
			Timezone: "America/New_York", Status: status, Sequence: seq, CreatedAt: created, UpdatedAt: created.Add(time.Duration(seq) * time.Hour)}
	}
	rm := &fakeCalendars{
		owners: []queries.CalendarOwner{
			{TenantID: tenantA, Kind: queries.CalendarResource, ID: calRoom, Name: "Room 1"},
			{TenantID: tenantA, Kind: queries.CalendarResource, ID: calPerson, Name: "Dr. Ana"},
			{TenantID: tenantA, Kind: queries.CalendarUser, ID: calClient, Name: "Bea"},
			{TenantID: tenantA, Kind: queries.CalendarUser, ID: calOther, Name: "Caio"},
			{TenantID: tenantA, Kind: queries.CalendarUser, ID: calPro, Name: "Ana", LinkedResource: calPerson},
			{TenantID: tenantB, Kind: queries.CalendarResource, ID: calRoom, Name: "Not yours"},
		},
		entries: map[uuid.UUID][]queries.CalendarEntry{tenantA: {
			entry(calB1, calRoom, &c1, time.Date(2026, 10, 26, 9, 0, 0, 0, newYork), 60, domain.StatusConfirmed, 0, "Weekly check-up"),
			entry(calB2, calRoom, &c1, time.Date(2026, 11, 2, 9, 0, 0, 0, newYork), 60, domain.StatusConfirmed, 2, "Weekly check-up"),
			entry(calB3, calRoom, &c1, time.Date(2026, 11, 3, 9, 0, 0, 0, newYork), 30, domain.StatusCancelled, 1, "Line one\nline two"),
			entry(calB4, calPerson, &c2, time.Date(2026, 11, 4, 15, 0, 0, 0, newYork), 30, domain.StatusPending, 0, "Therapy"),
			occurrence(entry(calS1, calPerson, &c2, time.Date(2026, 10, 19, 10, 0, 0, 0, newYork), 60, domain.StatusConfirmed, 0, "Physio"), 0),
			occurrence(entry(calS3, calPerson, &c2, time.Date(2026, 11, 2, 11, 0, 0, 0, newYork), 60, domain.StatusConfirmed, 1, "Physio"), -time.Hour),
			occurrence(entry(calS4, calPerson, &c2, time.Date(2026, 11, 9, 10, 0, 0, 0, newYork), 60, domain.StatusCancelled, 1, "Physio"), 0),
		}},
		// A weekly series of four at 10:00 in New York from 2026-10-19:
		// the second was excluded, the third moved alone to 11:00, the
		// fourth cancelled.
		series: []queries.CalendarSeries{{ID: calSeries, RRule: "FREQ=WEEKLY;COUNT=4", DTStart: "2026-10-19T10:00:00",
			Timezone: "America/New_York", DurationMinutes: 60, Sequence: 1, CreatedAt: created, UpdatedAt: created.Add(30 * time.Minute)}},
	}
	cal := queries.NewCalendarHandler(rm, nil, "bookings.example.com", func() time.Time { return calNow })
	bhttp.RegisterCalendars(f.srv, bhttp.Calendars{Get: cal,
		Feeds: queries.NewCalendarFeedsHandler(cal, &fakeFeeds{feeds: map[string]queries.CalendarFeed{}})})
	return f
}

// occurrence makes e an occurrence of calSeries whose rule start lies
// shift from its start.
func occurrence(e queries.CalendarEntry, shift time.Duration) queries.CalendarEntry {
	id, at := calSeries, e.Start.Add(shift)
	e.SeriesID, e.OccurrenceStart = &id, &at
	return e
}

func (f *fixture) calendarGet(t *testing.T, path, tok string, opts ...reqOpt) *httptest.ResponseRecorder {
	t.Helper()
	opts = append([]reqOpt{bearer(tok), header(bhttp.HeaderTenantID, tenantA.String())}, opts...)
	return f.do(newReq(http.MethodGet, path, "", opts...))
}

// parseICS parses an iCalendar body and checks what every one must have:
// CRLF line ends, lines of at most 75 octets, VERSION and PRODID.
func parseICS(t *testing.T, body string) *ics.Calendar {
	t.Helper()
	require.True(t, strings.HasPrefix(body, "BEGIN:VCALENDAR\r\n"), body)
	require.True(t, strings.HasSuffix(body, "END:VCALENDAR\r\n"), body)
	for _, line := range strings.Split(strings.TrimSuffix(body, "\r\n"), "\r\n") {
		require.NotContains(t, line, "\n", "bare LF in %q", line)
		require.LessOrEqual(t, len(line), 75, "line %q is not folded", line)
	}
	cal, err := ics.ParseCalendar(strings.NewReader(body))
	require.NoError(t, err)
	props := map[string]string{}
	for _, p := range cal.CalendarProperties {
		props[p.IANAToken] = p.Value
	}
	require.Equal(t, "2.0", props["VERSION"])
	require.Equal(t, "-//Booking Engine//Calendars//EN", props["PRODID"])
	return cal
}

func prop(c *ics.ComponentBase, name string) string {
	if p := c.GetProperty(ics.ComponentProperty(name)); p != nil {
		return p.Value
	}
	return ""
}

// TestCalendarICSKeepsWallClockAcrossDST: a weekly 09:00 booking in New
// York before and after the fall-back of 2026-11-01 is 09:00 local both
// times (13:00 and 14:00 UTC), as a parser resolving the TZID with the
// IANA database reads it and as one resolving it with the served
// VTIMEZONE alone reads it.
func TestCalendarICSKeepsWallClockAcrossDST(t *testing.T) {
	t.Parallel()
	f := calendarFixture(t)
	admin := f.token(t, "admin-1", bhttp.RoleAdmin, tenantA, bhttp.ScopeBookingsRead)
	w := f.calendarGet(t, "/calendars/resources/"+calRoom.String()+".ics?from=2026-10-01T00:00:00Z&to=2026-12-01T00:00:00Z", admin)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Equal(t, bhttp.CalendarContentType, w.Header().Get("Content-Type"))
	body := w.Body.String()
	require.Contains(t, body, "\r\nDTSTART;TZID=America/New_York:20261026T090000\r\n")
	require.Contains(t, body, "\r\nDTSTART;TZID=America/New_York:20261102T090000\r\n")

	cal := parseICS(t, body)
	events := cal.Events()
	require.Len(t, events, 3)
	starts := map[string]time.Time{}
	for _, e := range events {
		s, err := e.GetStartAt()
		require.NoError(t, err)
		starts[prop(&e.ComponentBase, "UID")] = s
	}
	require.True(t, starts[calB1.String()+"@bookings.example.com"].Equal(time.Date(2026, 10, 26, 13, 0, 0, 0, time.UTC)))
	require.True(t, starts[calB2.String()+"@bookings.example.com"].Equal(time.Date(2026, 11, 2, 14, 0, 0, 0, time.UTC)))

	// The VTIMEZONE: daylight time since the spring-forward of
	// 2026-03-08, standard time from the fall-back.
	tzs := cal.Timezones()
	require.Len(t, tzs, 1)
	require.Equal(t, "America/New_York", prop(&tzs[0].ComponentBase, "TZID"))
	var got []observance
	for _, c := range tzs[0].Components {
		switch o := c.(type) {
		case *ics.Daylight:
			got = append(got, observance{"DAYLIGHT", prop(&o.ComponentBase, "DTSTART"), prop(&o.ComponentBase, "TZOFFSETFROM"),
				prop(&o.ComponentBase, "TZOFFSETTO"), prop(&o.ComponentBase, "TZNAME")})
		case *ics.Standard:
			got = append(got, observance{"STANDARD", prop(&o.ComponentBase, "DTSTART"), prop(&o.ComponentBase, "TZOFFSETFROM"),
				prop(&o.ComponentBase, "TZOFFSETTO"), prop(&o.ComponentBase, "TZNAME")})
		}
	}
	require.Equal(t, []observance{
		{"DAYLIGHT", "20260308T020000", "-0500", "-0400", "EDT"},
		{"STANDARD", "20261101T020000", "-0400", "-0500", "EST"},
	}, got)
	for uid, want := range starts {
		var local string
		for _, e := range events {
			if prop(&e.ComponentBase, "UID") == uid {
				local = prop(&e.ComponentBase, "DTSTART")
			}
		}
		require.True(t, resolve(t, got, local).Equal(want), "%s: %s", uid, local)
	}
}

// observance is one STANDARD or DAYLIGHT component of a VTIMEZONE.
type observance struct{ kind, start, from, to, name string }

// resolve reads a local DATE-TIME with the observances of a VTIMEZONE
// only: the latest observance whose onset (its DTSTART, in the offset
// before it) is not after the time gives the offset.
func resolve(t *testing.T, obs []observance, local string) time.Time {
	t.Helper()
	naive, err := time.Parse("20060102T150405", local)
	require.NoError(t, err)
	offset := func(s string) time.Duration {
		v, err := time.Parse("-0700", s)
		require.NoError(t, err)
		_, secs := v.Zone()
		return time.Duration(secs) * time.Second
	}
	var at time.Time
	for _, o := range obs {
		onset, err := time.Parse("20060102T150405", o.start)
		require.NoError(t, err)
		onset = onset.Add(-offset(o.from))
		if candidate := naive.Add(-offset(o.to)); !candidate.Before(onset) {
			at = candidate
		}
	}
	require.False(t, at.IsZero(), "no observance covers %s", local)
	return at
}

// TestCalendarICSEvents: UID, SEQUENCE, STATUS (a cancelled booking stays
// in the feed), DTSTAMP, LAST-MODIFIED and escaped text.
func TestCalendarICSEvents(t *testing.T) {
	t.Parallel()
	f := calendarFixture(t)
	admin := f.token(t, "admin-1", bhttp.RoleAdmin, tenantA, bhttp.ScopeBookingsRead)
	w := f.calendarGet(t, "/calendars/users/"+calClient.String()+"?from=2026-10-01T00:00:00Z&to=2026-12-01T00:00:00Z", admin,
		header("Accept", "text/calendar"))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	cal := parseICS(t, w.Body.String())
	byUID := map[string]*ics.VEvent{}
	for _, e := range cal.Events() {
		byUID[e.Id()] = e
	}
	require.Len(t, byUID, 3)
	moved := byUID[calB2.String()+"@bookings.example.com"]
	require.Equal(t, "2", prop(&moved.ComponentBase, "SEQUENCE"))
	require.Equal(t, "CONFIRMED", prop(&moved.ComponentBase, "STATUS"))
	require.Equal(t, "20261001T100000Z", prop(&moved.ComponentBase, "DTSTAMP"))
	require.Equal(t, "20261001T100000Z", prop(&moved.ComponentBase, "LAST-MODIFIED"))
	require.Equal(t, "20261001T080000Z", prop(&moved.ComponentBase, "CREATED"))
	require.Equal(t, "OPAQUE", prop(&moved.ComponentBase, "TRANSP"))
	require.Equal(t, "Room; 1, \"east\"", ics.FromText(prop(&moved.ComponentBase, "LOCATION")))
	require.Contains(t, w.Body.String(), `LOCATION:Room\; 1\, "east"`)

	cancelled := byUID[calB3.String()+"@bookings.example.com"]
	require.Equal(t, "CANCELLED", prop(&cancelled.ComponentBase, "STATUS"))
	require.Equal(t, "TRANSPARENT", prop(&cancelled.ComponentBase, "TRANSP"))
	require.Equal(t, "1", prop(&cancelled.ComponentBase, "SEQUENCE"))
	require.Equal(t, "Line one line two", prop(&cancelled.ComponentBase, "SUMMARY"))

	// The same state renders to the same bytes.
	again := f.calendarGet(t, "/calendars/users/"+calClient.String()+".ics?from=2026-10-01T00:00:00Z&to=2026-12-01T00:00:00Z", admin)
	require.Equal(t, w.Body.String(), again.Body.String())
}

func TestCalendarJSONAndNegotiation(t *testing.T) {
	t.Parallel()
	f := calendarFixture(t)
	admin := f.token(t, "admin-1", bhttp.RoleAdmin, tenantA, bhttp.ScopeBookingsRead)
	path := "/calendars/resources/" + calRoom.String() + "?from=2026-10-27T00:00:00Z&to=2026-12-01T00:00:00Z"
	for _, accept := range []string{"", "application/json", "*/*", "application/json, text/calendar;q=0.5", "text/html, */*;q=0.8"} {
		w := f.calendarGet(t, path, admin, header("Accept", accept))
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		require.Equal(t, "application/json", w.Header().Get("Content-Type"), "Accept %q", accept)
	}
	for _, accept := range []string{"text/calendar", "application/json;q=0.4, text/calendar", "text/calendar, application/json"} {
		w := f.calendarGet(t, path, admin, header("Accept", accept))
		require.Equal(t, bhttp.CalendarContentType, w.Header().Get("Content-Type"), "Accept %q", accept)
	}

	w := f.calendarGet(t, path, admin)
	var got struct {
		Kind    string                  `json:"kind"`
		ID      uuid.UUID               `json:"id"`
		Name    string                  `json:"name"`
		From    time.Time               `json:"from"`
		Entries []queries.CalendarEntry `json:"entries"`
	}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &got))
	require.Equal(t, "resource", got.Kind)
	require.Equal(t, "Room 1", got.Name)
	require.Len(t, got.Entries, 2, "b1 ends before from")
	e := got.Entries[0]
	require.Equal(t, calB2, e.BookingID)
	require.Equal(t, calB2.String()+"@bookings.example.com", e.UID)
	require.Equal(t, "2026-11-02T09:00:00-05:00", e.Start.Format(time.RFC3339), "in the booking's zone")
	require.Equal(t, 2, e.Sequence)
	require.Equal(t, domain.StatusCancelled, got.Entries[1].Status, "cancelled bookings stay")

	// Default window: 30 days back to 365 ahead of the clock.
	w = f.calendarGet(t, "/calendars/resources/"+calRoom.String(), admin)
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &got))
	require.True(t, got.From.Equal(calNow.Add(-30*24*time.Hour)), got.From)
	require.Len(t, got.Entries, 3)
}

func TestCalendarValidation(t *testing.T) {
	t.Parallel()
	f := calendarFixture(t)
	admin := f.token(t, "admin-1", bhttp.RoleAdmin, tenantA, bhttp.ScopeBookingsRead)
	base := "/calendars/resources/" + calRoom.String()
	p := mustProblem(t, f.calendarGet(t, base+"?from=yesterday", admin), http.StatusBadRequest, bhttp.CodeValidationFailed)
	require.Equal(t, "from", p.Errors[0].Field)
	p = mustProblem(t, f.calendarGet(t, base+"?from=2026-12-01T00:00:00Z&to=2026-11-01T00:00:00Z", admin), http.StatusUnprocessableEntity, bhttp.CodeValidationFailed)
	require.Equal(t, "to", p.Errors[0].Field)
	p = mustProblem(t, f.calendarGet(t, base+"?from=2026-01-01T00:00:00Z&to=2027-12-01T00:00:00Z", admin), http.StatusUnprocessableEntity, bhttp.CodeValidationFailed)
	require.Equal(t, "to", p.Errors[0].Field)
	mustProblem(t, f.calendarGet(t, "/calendars/resources/not-a-uuid.ics", admin), http.StatusNotFound, bhttp.CodeNotFound)
	mustProblem(t, f.calendarGet(t, base, admin, header("X-Min-Position", "x")), http.StatusBadRequest, bhttp.CodeValidationFailed)
}

// TestCalendarVisibility: staff see every calendar of the tenant; a
// professional its own and its linked resource's; a client its own;
// anything else, and another tenant's, is 404.
func TestCalendarVisibility(t *testing.T) {
	t.Parallel()
	f := calendarFixture(t)
	read := bhttp.ScopeBookingsRead
	tokens := map[string]string{
		"admin":    f.token(t, "admin-1", bhttp.RoleAdmin, tenantA, read),
		"manager":  f.token(t, "manager-1", bhttp.RoleManager, tenantA, read),
		"platform": f.token(t, "root", bhttp.RolePlatformAdmin, uuid.Nil, read),
		"pro":      f.token(t, calPro.String(), bhttp.RoleProfessional, tenantA, read),
		"client":   f.token(t, calClient.String(), bhttp.RoleClient, tenantA, read),
	}
	room, person := "resources/"+calRoom.String(), "resources/"+calPerson.String()
	client, other, pro := "users/"+calClient.String(), "users/"+calOther.String(), "users/"+calPro.String()
	known := []string{room, person, client, other, pro}
	visible := map[string][]string{
		"admin": known, "manager": known, "platform": known,
		"pro":    {person, pro},
		"client": {client},
	}
	unknown := []string{"resources/" + uuid.NewString(), "users/" + uuid.NewString(), "users/" + calRoom.String()}
	for who, tok := range tokens {
		for _, cal := range append(slices.Clone(known), unknown...) {
			w := f.calendarGet(t, "/calendars/"+cal, tok)
			if slices.Contains(visible[who], cal) {
				require.Equal(t, http.StatusOK, w.Code, "%s GET %s: %s", who, cal, w.Body.String())
			} else {
				mustProblem(t, w, http.StatusNotFound, bhttp.CodeNotFound)
			}
		}
	}

	// The professional's user calendar holds its linked resource's
	// bookings; the client's only its own.
	w := f.calendarGet(t, "/calendars/users/"+calPro.String()+"?from=2026-10-01T00:00:00Z&to=2026-12-01T00:00:00Z", tokens["pro"])
	require.Contains(t, w.Body.String(), calB4.String())
	w = f.calendarGet(t, "/calendars/users/"+calClient.String()+"?from=2026-10-01T00:00:00Z&to=2026-12-01T00:00:00Z", tokens["client"])
	require.NotContains(t, w.Body.String(), calB4.String())

	// Tenant B's room has the same id: tenant A's admin cannot reach it
	// by naming tenant B, and tenant B's calendar of it is empty.
	w = f.do(newReq(http.MethodGet, "/calendars/resources/"+calRoom.String(), "", bearer(tokens["admin"]), header(bhttp.HeaderTenantID, tenantB.String())))
	mustProblem(t, w, http.StatusForbidden, bhttp.CodeForbidden)
	w = f.do(newReq(http.MethodGet, "/calendars/resources/"+calRoom.String()+"?from=2026-10-01T00:00:00Z&to=2026-12-01T00:00:00Z", "",
		bearer(tokens["platform"]), header(bhttp.HeaderTenantID, tenantB.String())))
	require.Equal(t, http.StatusOK, w.Code)
	require.NotContains(t, w.Body.String(), calB1.String())

	// Without bookings:read: 403.
	noScope := f.token(t, "admin-1", bhttp.RoleAdmin, tenantA, bhttp.ScopeReportsRead)
	mustProblem(t, f.calendarGet(t, "/calendars/resources/"+calRoom.String(), noScope), http.StatusForbidden, bhttp.CodeForbidden)
}

// TestCalendarFeeds: a secret address works without a token, shows busy
// time only when asked to, is replaced by a new one and answers 404 once
// revoked.
func TestCalendarFeeds(t *testing.T) {
	t.Parallel()
	f := calendarFixture(t)
	read := bhttp.ScopeBookingsRead
	admin := f.token(t, "admin-1", bhttp.RoleAdmin, tenantA, read)
	client := f.token(t, calClient.String(), bhttp.RoleClient, tenantA, read)
	tenantHeader := header(bhttp.HeaderTenantID, tenantA.String())
	issue := func(tok, path, body string) *httptest.ResponseRecorder {
		return f.do(newReq(http.MethodPost, path, body, bearer(tok), tenantHeader))
	}
	feedURL := func(w *httptest.ResponseRecorder) string {
		t.Helper()
		require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
		var got struct {
			URL     string `json:"url"`
			Details string `json:"details"`
		}
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &got))
		require.Regexp(t, `^/calendars/feeds/[A-Za-z0-9_-]{43}\.ics$`, got.URL)
		return got.URL
	}
	public := func(url string) *httptest.ResponseRecorder { return f.do(newReq(http.MethodGet, url, "")) }

	userFeed := "/calendars/users/" + calClient.String() + "/feed"
	first := feedURL(issue(client, userFeed, ""))
	w := public(first)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Equal(t, bhttp.CalendarContentType, w.Header().Get("Content-Type"))
	cal := parseICS(t, w.Body.String())
	require.Len(t, cal.Events(), 3, "the feed window holds the client's three bookings")
	require.Contains(t, w.Body.String(), "SUMMARY:Weekly check-up")
	require.Contains(t, w.Body.String(), "Client: Bea")

	// A new address replaces the first; staff may issue it too.
	second := feedURL(issue(admin, userFeed, `{"details":"busy"}`))
	require.NotEqual(t, first, second)
	mustProblem(t, public(first), http.StatusNotFound, bhttp.CodeNotFound)
	w = public(second)
	require.Equal(t, http.StatusOK, w.Code)
	require.NotContains(t, w.Body.String(), "Weekly check-up")
	require.NotContains(t, w.Body.String(), "Client:")
	require.Contains(t, w.Body.String(), "SUMMARY:Busy")
	require.Contains(t, w.Body.String(), "X-WR-CALNAME:Bea", "whose busy time it is")

	// Revoked: 404, and revoking again is 404 too.
	w = f.do(newReq(http.MethodDelete, userFeed, "", bearer(client), tenantHeader))
	require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
	mustProblem(t, public(second), http.StatusNotFound, bhttp.CodeNotFound)
	mustProblem(t, f.do(newReq(http.MethodDelete, userFeed, "", bearer(client), tenantHeader)), http.StatusNotFound, bhttp.CodeNotFound)

	// Who may publish what.
	resourceFeed := "/calendars/resources/" + calRoom.String() + "/feed"
	mustProblem(t, issue(client, resourceFeed, ""), http.StatusForbidden, bhttp.CodeForbidden)
	mustProblem(t, issue(client, "/calendars/users/"+calOther.String()+"/feed", ""), http.StatusNotFound, bhttp.CodeNotFound)
	mustProblem(t, issue(admin, "/calendars/users/"+uuid.NewString()+"/feed", ""), http.StatusNotFound, bhttp.CodeNotFound)
	p := mustProblem(t, issue(admin, resourceFeed, `{"details":"everything"}`), http.StatusUnprocessableEntity, bhttp.CodeValidationFailed)
	require.Equal(t, "details", p.Errors[0].Field)
	room := feedURL(issue(admin, resourceFeed, ""))
	require.Equal(t, http.StatusOK, public(room).Code)

	// The access log never shows a token.
	f.logs.mu.Lock()
	logged := f.logs.buf.String()
	f.logs.mu.Unlock()
	for _, url := range []string{first, second, room} {
		require.NotContains(t, logged, strings.TrimSuffix(strings.TrimPrefix(url, "/calendars/feeds/"), ".ics"))
	}
	require.Contains(t, logged, "/calendars/feeds/REDACTED.ics")

	// Tokens that were never issued.
	for _, bad := range []string{"/calendars/feeds/abc.ics", "/calendars/feeds/" + strings.Repeat("A", 43) + ".ics", "/calendars/feeds/" + strings.Repeat("%25", 3) + ".ics", "/calendars/feeds/" + strings.Repeat("A", 43)} {
		w := public(bad)
		require.Equal(t, http.StatusNotFound, w.Code, bad)
	}
}

// TestCalendarICSSeries: a recurring series is one master event (RRULE
// from its DTSTART, EXDATE for the excluded instance) and one instance
// per occurrence with its RECURRENCE-ID, also outside the window; the
// rule minus the EXDATEs yields exactly the instances.
func TestCalendarICSSeries(t *testing.T) {
	t.Parallel()
	f := calendarFixture(t)
	admin := f.token(t, "admin-1", bhttp.RoleAdmin, tenantA, bhttp.ScopeBookingsRead)
	// A window that holds the third occurrence only.
	w := f.calendarGet(t, "/calendars/users/"+calOther.String()+".ics?from=2026-11-02T00:00:00-05:00&to=2026-11-03T00:00:00-05:00", admin)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	body := w.Body.String()
	cal := parseICS(t, body)
	uid := "series-" + calSeries.String() + "@bookings.example.com"
	var master *ics.VEvent
	instances := map[string]*ics.VEvent{}
	for _, e := range cal.Events() {
		require.Equal(t, uid, e.Id(), "only the series' events are in the window")
		if rid := prop(&e.ComponentBase, "RECURRENCE-ID"); rid != "" {
			instances[rid] = e
		} else {
			require.Nil(t, master, "one master")
			master = e
		}
	}
	require.NotNil(t, master)
	require.Contains(t, body, "\r\nDTSTART;TZID=America/New_York:20261019T100000\r\n")
	require.Contains(t, body, "\r\nEXDATE;TZID=America/New_York:20261026T100000\r\n")
	require.Equal(t, "FREQ=WEEKLY;COUNT=4", prop(&master.ComponentBase, "RRULE"))
	require.Equal(t, "PT60M", prop(&master.ComponentBase, "DURATION"))
	require.Equal(t, "1", prop(&master.ComponentBase, "SEQUENCE"))
	require.Equal(t, "CONFIRMED", prop(&master.ComponentBase, "STATUS"))
	require.Empty(t, prop(&master.ComponentBase, "DTEND"))

	require.Len(t, instances, 3)
	moved := instances["20261102T100000"]
	require.NotNil(t, moved)
	require.Equal(t, "20261102T110000", prop(&moved.ComponentBase, "DTSTART"), "moved alone, an hour later")
	require.Equal(t, "2", prop(&moved.ComponentBase, "SEQUENCE"), "its own sequence plus the series'")
	require.Equal(t, "CANCELLED", prop(&instances["20261109T100000"].ComponentBase, "STATUS"))
	require.Contains(t, body, "\r\nRECURRENCE-ID;TZID=America/New_York:20261019T100000\r\n")

	// A client expanding the rule with the served EXDATEs finds exactly
	// the instances' RECURRENCE-IDs, at 10:00 New York time on both sides
	// of the fall-back.
	opt, err := rrule.StrToROptionInLocation(prop(&master.ComponentBase, "RRULE"), newYork)
	require.NoError(t, err)
	opt.Dtstart = time.Date(2026, 10, 19, 10, 0, 0, 0, newYork)
	rule, err := rrule.NewRRule(*opt)
	require.NoError(t, err)
	set := rrule.Set{}
	set.RRule(rule)
	for _, x := range master.GetProperties(ics.ComponentPropertyExdate) {
		at, err := time.ParseInLocation("20060102T150405", x.Value, newYork)
		require.NoError(t, err)
		set.ExDate(at)
	}
	var got []string
	for _, at := range set.All() {
		got = append(got, at.In(newYork).Format("20060102T150405"))
	}
	var want []string
	for rid := range instances {
		want = append(want, rid)
	}
	slices.Sort(want)
	require.Equal(t, want, got)
}
