package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	ics "github.com/arran4/golang-ical"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	bhttp "github.com/bookingengine/booking/http"
)

// rawCall sends a request to srv, through the OpenAPI validator like every
// other, and returns the whole response undecoded (an iCalendar body, a
// feed's JSON).
func rawCall(t *testing.T, srv *e2eServer, method, path, token, tenant string, body string, header ...string) (int, http.Header, []byte) {
	t.Helper()
	srv.mu.Lock()
	base := srv.base
	srv.mu.Unlock()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if tenant != "" {
		req.Header.Set(bhttp.HeaderTenantID, tenant)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := srv.client.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, res.Header, raw
}

// nextFallBack returns the first instant after t at which loc's clocks
// go back.
func nextFallBack(t *testing.T, after time.Time, loc *time.Location) time.Time {
	t.Helper()
	at := after.In(loc)
	for range 10 {
		_, end := at.ZoneBounds()
		require.False(t, end.IsZero(), "%s never changes its clocks", loc)
		_, before := at.Zone()
		_, next := end.In(loc).Zone()
		if next < before {
			return end
		}
		at = end.In(loc)
	}
	t.Fatalf("no fall-back in %s after %s", loc, after)
	return time.Time{}
}

// icsEvents parses an iCalendar body into its events by UID.
func icsEvents(t *testing.T, body []byte) map[string]*ics.VEvent {
	t.Helper()
	cal, err := ics.ParseCalendar(bytes.NewReader(body))
	require.NoError(t, err, "%s", body)
	out := map[string]*ics.VEvent{}
	for _, e := range cal.Events() {
		out[e.Id()] = e
	}
	return out
}

func icsProp(e *ics.VEvent, name string) string {
	if p := e.GetProperty(ics.ComponentProperty(name)); p != nil {
		return p.Value
	}
	return ""
}

// TestCalendarsAndReportsE2E drives calendars, feeds and reports through
// bookingd on PostgreSQL, every read with the X-Min-Position of the write
// before it, and every documented exchange checked against the OpenAPI
// document.
func TestCalendarsAndReportsE2E(t *testing.T) {
	t.Parallel()
	srv := MustStartE2E(t)
	f := MustE2EFixture(t, srv, "calendars", map[string]any{
		"timezone": "America/New_York", "business_hours": e2eAllDay(), "slot_granularity_minutes": 15,
		"max_advance_days": 0,
	})
	other := MustE2EFixture(t, srv, "calendars-other", nil)
	ny, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	client, client2 := f.Users[e2eClient], f.Users[e2eClient2]

	// The Mondays before and after New York's next fall-back.
	fallBack := nextFallBack(t, time.Now().AddDate(0, 0, 8), ny)
	local := fallBack.In(ny)
	m1 := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, ny)
	for m1.Weekday() != time.Monday || !m1.Before(fallBack) {
		m1 = m1.AddDate(0, 0, -1)
	}
	m2 := m1.AddDate(0, 0, 7)
	at := func(day time.Time, h int) time.Time {
		return time.Date(day.Year(), day.Month(), day.Day(), h, 0, 0, 0, ny)
	}
	book := func(resource, client string, start time.Time) string {
		return f.create(t, e2eAdmin, "/bookings", e2eBooking(resource, client, start, 60))
	}
	b1 := book(f.Space, client, at(m1, 9))
	b2 := book(f.Space, client, at(m2, 9))
	b3 := book(f.Space, client2, at(m1.AddDate(0, 0, 1), 11))
	b4 := book(f.Person, client, at(m1, 14))
	f.must(t, http.StatusOK, e2eAdmin, http.MethodPost, "/bookings/"+b3+"/reschedule", map[string]any{
		"start": at(m1.AddDate(0, 0, 1), 13).Format(time.RFC3339), "end": at(m1.AddDate(0, 0, 1), 14).Format(time.RFC3339)})
	r := f.must(t, http.StatusOK, e2eAdmin, http.MethodPost, "/bookings/"+b4+"/cancel", map[string]any{"reason": "ill"})
	pos := strconv.FormatInt(e2ePosition(t, r), 10)
	window := "?from=" + url.QueryEscape(m1.Format(time.RFC3339)) + "&to=" + url.QueryEscape(m2.AddDate(0, 0, 1).Format(time.RFC3339))

	t.Run("ics keeps 09:00 across the fall-back", func(t *testing.T) {
		r := f.must(t, http.StatusOK, e2eAdmin, http.MethodGet, "/calendars/resources/"+f.Space+".ics"+window, nil, "X-Min-Position", pos)
		require.Equal(t, bhttp.CalendarContentType, r.Header.Get("Content-Type"))
		body := string(r.Body)
		require.Contains(t, body, "DTSTART;TZID=America/New_York:"+m1.Format("20060102")+"T090000\r\n")
		require.Contains(t, body, "DTSTART;TZID=America/New_York:"+m2.Format("20060102")+"T090000\r\n")
		require.Contains(t, body, "BEGIN:VTIMEZONE\r\nTZID:America/New_York\r\n")
		require.Contains(t, body, "BEGIN:STANDARD\r\nDTSTART:"+fallBack.In(time.FixedZone("", -4*3600)).Format("20060102T150405")+
			"\r\nTZOFFSETFROM:-0400\r\nTZOFFSETTO:-0500\r\n")
		events := icsEvents(t, r.Body)
		require.Len(t, events, 3)
		for id, want := range map[string]time.Time{b1: at(m1, 9), b2: at(m2, 9)} {
			e := events[id+"@bookingengine.invalid"]
			require.NotNil(t, e, "booking %s", id)
			got, err := e.GetStartAt()
			require.NoError(t, err)
			require.True(t, want.Equal(got), "%s: %s, want %s", id, got, want)
			require.Equal(t, "0", icsProp(e, "SEQUENCE"))
			require.Equal(t, "CONFIRMED", icsProp(e, "STATUS"))
		}
		require.Equal(t, 13, at(m1, 9).UTC().Hour(), "09:00 EDT")
		require.Equal(t, 14, at(m2, 9).UTC().Hour(), "09:00 EST")
		moved := events[b3+"@bookingengine.invalid"]
		require.Equal(t, "1", icsProp(moved, "SEQUENCE"), "raised by the reschedule")
		require.Equal(t, m1.AddDate(0, 0, 1).Format("20060102")+"T130000", icsProp(moved, "DTSTART"))
	})

	t.Run("a cancelled booking stays with STATUS:CANCELLED", func(t *testing.T) {
		r := f.must(t, http.StatusOK, e2eProfessional, http.MethodGet, "/calendars/resources/"+f.Person+window, nil,
			"X-Min-Position", pos, "Accept", "text/calendar")
		e := icsEvents(t, r.Body)[b4+"@bookingengine.invalid"]
		require.NotNil(t, e)
		require.Equal(t, "CANCELLED", icsProp(e, "STATUS"))
		require.Equal(t, "1", icsProp(e, "SEQUENCE"))
	})

	t.Run("json entries and visibility", func(t *testing.T) {
		r := f.must(t, http.StatusOK, e2eClient, http.MethodGet, "/calendars/users/"+client+window, nil, "X-Min-Position", pos)
		var cal struct {
			Name    string `json:"name"`
			Entries []struct {
				BookingID    string `json:"booking_id"`
				Start        string `json:"start"`
				Status       string `json:"status"`
				Sequence     int    `json:"sequence"`
				ResourceName string `json:"resource_name"`
				ClientName   string `json:"client_name"`
			} `json:"entries"`
		}
		require.NoError(t, json.Unmarshal(r.Body, &cal))
		require.Equal(t, "User "+e2eClient, cal.Name)
		var ids []string
		for _, e := range cal.Entries {
			ids = append(ids, e.BookingID)
		}
		require.Equal(t, []string{b1, b4, b2}, ids, "ordered by start; the cancelled one included")
		require.Equal(t, at(m2, 9).Format(time.RFC3339), cal.Entries[2].Start)
		require.Equal(t, "Dr. Ana", cal.Entries[1].ResourceName)
		require.Equal(t, "cancelled", cal.Entries[1].Status)
		require.Equal(t, "User "+e2eClient, cal.Entries[0].ClientName)

		// The professional's own calendar shows its resource's bookings.
		r = f.must(t, http.StatusOK, e2eProfessional, http.MethodGet, "/calendars/users/"+f.Users[e2eProfessional]+window, nil, "X-Min-Position", pos)
		require.Contains(t, string(r.Body), b4)

		for _, c := range []struct{ role, path string }{
			{e2eClient, "/calendars/users/" + client2},
			{e2eClient, "/calendars/resources/" + f.Space},
			{e2eProfessional, "/calendars/resources/" + f.Space},
			{e2eProfessional, "/calendars/users/" + client},
		} {
			requireE2EProblem(t, f.call(t, c.role, http.MethodGet, c.path, nil), http.StatusNotFound, bhttp.CodeNotFound)
		}
		// Another tenant's staff cannot see this tenant's calendars.
		requireE2EProblem(t, other.call(t, e2eAdmin, http.MethodGet, "/calendars/resources/"+f.Space, nil), http.StatusNotFound, bhttp.CodeNotFound)
		requireE2EProblem(t, other.call(t, e2eAdmin, http.MethodGet, "/calendars/users/"+client+".ics", nil), http.StatusNotFound, bhttp.CodeNotFound)
	})

	t.Run("secret feed", func(t *testing.T) {
		status, _, body := rawCall(t, srv, http.MethodPost, "/calendars/users/"+client+"/feed", f.Tokens[e2eClient], f.TenantID, "")
		require.Equal(t, http.StatusCreated, status, "%s", body)
		var feed struct {
			URL string `json:"url"`
		}
		require.NoError(t, json.Unmarshal(body, &feed))
		token := strings.TrimSuffix(strings.TrimPrefix(feed.URL, "/calendars/feeds/"), ".ics")
		require.Len(t, token, 43, "256 random bits, base64url")

		// No bearer token, no tenant header.
		status, header, body := rawCall(t, srv, http.MethodGet, feed.URL, "", "", "", "X-Min-Position", pos)
		require.Equal(t, http.StatusOK, status, "%s", body)
		require.Equal(t, bhttp.CalendarContentType, header.Get("Content-Type"))
		events := icsEvents(t, body)
		require.Contains(t, events, b1+"@bookingengine.invalid")
		require.Contains(t, events, b2+"@bookingengine.invalid")
		require.Equal(t, "CANCELLED", icsProp(events[b4+"@bookingengine.invalid"], "STATUS"))

		// Only the token's hash is stored, and the feed survives a
		// restart.
		conn, err := pgx.Connect(context.Background(), srv.cfg.DatabaseURL)
		require.NoError(t, err)
		var stored []byte
		require.NoError(t, conn.QueryRow(context.Background(), `SELECT token_hash FROM calendar_feeds WHERE calendar_id = $1`, client).Scan(&stored))
		sum := sha256.Sum256([]byte(token))
		require.Equal(t, sum[:], stored, "the SHA-256 of the token, never the token")
		require.NoError(t, conn.Close(context.Background()))
		srv.restart(t)
		status, _, _ = rawCall(t, srv, http.MethodGet, feed.URL, "", "", "")
		require.Equal(t, http.StatusOK, status)

		// Revoked: 404.
		status, _, body = rawCall(t, srv, http.MethodDelete, "/calendars/users/"+client+"/feed", f.Tokens[e2eClient], f.TenantID, "")
		require.Equal(t, http.StatusNoContent, status, "%s", body)
		status, header, _ = rawCall(t, srv, http.MethodGet, feed.URL, "", "", "")
		require.Equal(t, http.StatusNotFound, status)
		require.Equal(t, bhttp.ProblemContentType, header.Get("Content-Type"))

		// A resource's feed is for staff.
		status, _, _ = rawCall(t, srv, http.MethodPost, "/calendars/resources/"+f.Person+"/feed", f.Tokens[e2eProfessional], f.TenantID, "")
		require.Equal(t, http.StatusForbidden, status)
		status, _, body = rawCall(t, srv, http.MethodPost, "/calendars/resources/"+f.Person+"/feed", f.Tokens[e2eManager], f.TenantID, `{"details":"busy"}`)
		require.Equal(t, http.StatusCreated, status, "%s", body)
		require.NoError(t, json.Unmarshal(body, &feed))
		status, _, body = rawCall(t, srv, http.MethodGet, feed.URL, "", "", "")
		require.Equal(t, http.StatusOK, status)
		require.Contains(t, string(body), "SUMMARY:Busy")
		require.NotContains(t, string(body), "Check-up")
	})

	t.Run("reports", func(t *testing.T) {
		get := func(path string) map[string]any {
			r := f.must(t, http.StatusOK, e2eManager, http.MethodGet, path, nil, "X-Min-Position", pos)
			return r.Doc
		}
		rows := func(doc map[string]any) map[string]map[string]any {
			out := map[string]map[string]any{}
			for _, row := range doc["rows"].([]any) {
				m := row.(map[string]any)
				out[m["key"].(string)] = m
			}
			return out
		}
		// Eight local days, one of them 25 hours long; every resource is
		// open around the clock with one seat.
		const open = (8*24 + 1) * 60
		range8 := window
		u := rows(get("/reports/utilization?group_by=resource&" + range8[1:]))
		require.Len(t, u, 2)
		require.EqualValues(t, 180, u[f.Space]["booked_minutes"])
		require.EqualValues(t, open, u[f.Space]["available_minutes"])
		require.InDelta(t, 180.0/open, u[f.Space]["utilization"], 1e-12)
		require.EqualValues(t, 0, u[f.Person]["booked_minutes"], "the cancelled booking frees its time")
		require.EqualValues(t, open, u[f.Person]["available_minutes"])

		days := rows(get("/reports/utilization?group_by=day&" + range8[1:]))
		require.Len(t, days, 8)
		sunday := fallBack.In(ny).Format(time.DateOnly)
		require.EqualValues(t, 2*25*60, days[sunday]["available_minutes"], "the fall-back day has 25 hours")
		require.EqualValues(t, 60, days[m1.Format(time.DateOnly)]["booked_minutes"])

		cats := rows(get("/reports/utilization?group_by=category&" + range8[1:]))
		require.EqualValues(t, 180, cats[f.Category]["booked_minutes"])
		require.EqualValues(t, open, cats["uncategorized"]["available_minutes"], "Dr. Ana has no category")

		b := rows(get("/reports/bookings?group_by=resource&" + range8[1:]))
		require.EqualValues(t, 3, b[f.Space]["total"])
		require.EqualValues(t, 3, b[f.Space]["confirmed"])
		require.EqualValues(t, 0, b[f.Space]["cancellation_rate"])
		require.EqualValues(t, 1, b[f.Person]["total"])
		require.EqualValues(t, 1, b[f.Person]["cancelled"])
		require.EqualValues(t, 1, b[f.Person]["cancellation_rate"])
		require.EqualValues(t, map[string]any{"pending": 0.0, "confirmed": 0.0, "checked_in": 0.0, "completed": 0.0, "no_show": 0.0,
			"cancelled": 1.0, "rejected": 0.0}, b[f.Person]["by_status"])
		lead := b[f.Space]["lead_time_minutes"].(map[string]any)
		require.Greater(t, lead["p90"].(float64), 7*24*60.0, "booked at least a week ahead")

		byDay := rows(get("/reports/bookings?" + range8[1:]))
		require.EqualValues(t, 2, byDay[m1.Format(time.DateOnly)]["total"], "b1 and the cancelled b4")
		require.EqualValues(t, 1, byDay[m1.AddDate(0, 0, 1).Format(time.DateOnly)]["total"], "b3, rescheduled within its day")

		requireE2EProblem(t, f.call(t, e2eManager, http.MethodGet, "/reports/bookings?group_by=week&"+range8[1:], nil),
			http.StatusUnprocessableEntity, bhttp.CodeValidationFailed)
		requireE2EProblem(t, f.call(t, e2eProfessional, http.MethodGet, "/reports/utilization?"+range8[1:], nil),
			http.StatusForbidden, bhttp.CodeForbidden)
	})

	t.Run("a recurring series is one RRULE with its EXDATE and instances", func(t *testing.T) {
		// Weekly at 16:00 from the Wednesday before the fall-back, three
		// times, the second excluded; then the third moved alone.
		wed := m1.AddDate(0, 0, 2)
		in := e2eBooking(f.Person, client2, at(wed, 16), 60)
		in["recurrence"] = map[string]any{"rrule": "FREQ=WEEKLY;COUNT=3", "policy": "all_or_nothing",
			"exdates": []string{at(wed.AddDate(0, 0, 7), 16).Format(time.RFC3339)}}
		raw, err := json.Marshal(in)
		require.NoError(t, err)
		status, _, body := rawCall(t, srv, http.MethodPost, "/bookings", f.Tokens[e2eAdmin], f.TenantID, string(raw))
		require.Equal(t, http.StatusCreated, status, "%s", body)
		var created struct {
			Series struct {
				ID       string `json:"id"`
				Bookings []struct {
					ID string `json:"id"`
				} `json:"bookings"`
			} `json:"series"`
		}
		require.NoError(t, json.Unmarshal(body, &created))
		require.Len(t, created.Series.Bookings, 2)
		third := created.Series.Bookings[1].ID
		r := f.must(t, http.StatusOK, e2eAdmin, http.MethodPost, "/bookings/"+third+"/reschedule", map[string]any{
			"start": at(wed.AddDate(0, 0, 14), 17).Format(time.RFC3339), "end": at(wed.AddDate(0, 0, 14), 18).Format(time.RFC3339)})
		pos := strconv.FormatInt(e2ePosition(t, r), 10)

		// A window around the first occurrence only: the series comes whole.
		w := "?from=" + url.QueryEscape(at(wed, 0).Format(time.RFC3339)) + "&to=" + url.QueryEscape(at(wed, 23).Format(time.RFC3339))
		r = f.must(t, http.StatusOK, e2eClient2, http.MethodGet, "/calendars/users/"+client2+".ics"+w, nil, "X-Min-Position", pos)
		ics := string(r.Body)
		uid := "series-" + created.Series.ID + "@bookingengine.invalid"
		cal, err := icsParse(r.Body)
		require.NoError(t, err)
		var masters, instances int
		for _, e := range cal.Events() {
			if e.Id() != uid {
				continue
			}
			if icsProp(e, "RECURRENCE-ID") == "" {
				masters++
				require.Equal(t, "FREQ=WEEKLY;COUNT=3", icsProp(e, "RRULE"))
				require.Equal(t, wed.Format("20060102")+"T160000", icsProp(e, "DTSTART"))
			} else {
				instances++
			}
		}
		require.Equal(t, 1, masters)
		require.Equal(t, 2, instances)
		require.Contains(t, ics, "EXDATE;TZID=America/New_York:"+wed.AddDate(0, 0, 7).Format("20060102")+"T160000\r\n")
		require.Contains(t, ics, "RECURRENCE-ID;TZID=America/New_York:"+wed.Format("20060102")+"T160000\r\n")
		require.Contains(t, ics, "RECURRENCE-ID;TZID=America/New_York:"+wed.AddDate(0, 0, 14).Format("20060102")+"T160000\r\n"+
			"DTSTART;TZID=America/New_York:"+wed.AddDate(0, 0, 14).Format("20060102")+"T170000\r\n", "after the fall-back, moved to 17:00")
	})
}

// icsParse parses an iCalendar body.
func icsParse(body []byte) (*ics.Calendar, error) { return ics.ParseCalendar(bytes.NewReader(body)) }
