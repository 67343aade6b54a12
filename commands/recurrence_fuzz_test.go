package commands

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/teambition/rrule-go"

	"github.com/bookingengine/booking/domain"
)

// fuzzSeriesZones are the zones the recurrence fuzzer expands rules in.
var fuzzSeriesZones = []string{"UTC", "Europe/Lisbon", "America/Sao_Paulo", "America/Santiago", "Australia/Lord_Howe", "Asia/Kathmandu"}

// FuzzExpandSeries expands random RRULE values (with EXDATE lines and
// exdates) from random starts in zones with and without daylight saving:
// it never panics and returns promptly; a refusal is a
// validation_failed naming a recurrence field; an accepted rule gives
// between one and max occurrences, oldest first, none twice, none
// excluded, none before the request's start, each as long as the request,
// and records a rule without DTSTART that parses again.
func FuzzExpandSeries(f *testing.F) {
	seeds := []string{
		"FREQ=WEEKLY;COUNT=4",
		"RRULE:FREQ=DAILY;INTERVAL=2;UNTIL=20261231T235959Z",
		"FREQ=WEEKLY;BYDAY=MO,WE,FR;COUNT=10\nEXDATE;TZID=Europe/Lisbon:20261209T090000",
		"FREQ=MONTHLY;BYMONTHDAY=31;COUNT=3",
		"FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;COUNT=2",
		"FREQ=DAILY;UNTIL=20261210",
		"FREQ=HOURLY;COUNT=5000",
		"FREQ=DAILY",
		"DTSTART:20261201T090000Z\nFREQ=DAILY;COUNT=2",
		"FREQ=WEEKLY;COUNT=2\nFREQ=DAILY;COUNT=2",
		"FREQ=MINUTELY;INTERVAL=0;COUNT=3",
		"FREQ=DAILY;COUNT=3\nEXDATE;VALUE=DATE:20261202",
		"FREQ=WEEKLY;BYDAY=-1SU;COUNT=3",
		"FREQ=MONTHLY;BYSETPOS=-1;BYDAY=MO,TU,WE,TH,FR;COUNT=3",
	}
	for i, s := range seeds {
		f.Add(s, "2026-12-08|20261209T090000Z", uint8(i), int64(1796126400+i*86400), int32(60), uint16(365))
	}
	f.Fuzz(func(t *testing.T, rule, exdates string, zone uint8, startUnix int64, minutes int32, maxOcc uint16) {
		loc, err := time.LoadLocation(fuzzSeriesZones[int(zone)%len(fuzzSeriesZones)])
		if err != nil {
			t.Fatal(err)
		}
		// Starts from 1971 to 2100, on the minute.
		start := time.Unix(31536000+(startUnix%(129*365*86400)+129*365*86400)%(129*365*86400), 0).UTC().Truncate(time.Minute)
		d := time.Duration(minutes%(7*24*60)) * time.Minute
		req := domain.BookingRequest{ResourceID: uuid.New(), ClientID: uuid.New(), Start: start, End: start.Add(d), Seats: 1}
		max := 1 + int(maxOcc)%domain.MaxOccurrencesLimit
		var ex []string
		if exdates != "" {
			ex = strings.Split(exdates, "|")
		}
		done := make(chan struct{})
		timer := time.AfterFunc(5*time.Second, func() {
			select {
			case <-done:
			default:
				panic("expandSeries ran for more than 5 s on rule " + strings.ReplaceAll(rule, "\n", `\n`))
			}
		})
		got, err := expandSeries(req, Recurrence{RRule: rule, ExDates: ex}, loc, max)
		close(done)
		timer.Stop()
		if err != nil {
			var v *domain.ValidationError
			if !errors.As(err, &v) || v.Code() != domain.CodeValidationFailed {
				t.Fatalf("rule %q: error %T %v is not a validation failure", rule, err, err)
			}
			v.ProblemFields(func(field, _, _ string) {
				if field != "end" && !strings.HasPrefix(field, "recurrence.") {
					t.Fatalf("rule %q: error names field %q", rule, field)
				}
			})
			return
		}
		iv := got.intervals
		if len(iv) == 0 || len(iv) > max {
			t.Fatalf("rule %q: %d occurrences, max %d", rule, len(iv), max)
		}
		for i, o := range iv {
			if o.End.Sub(o.Start) != d {
				t.Fatalf("rule %q: occurrence %s lasts %s, want %s", rule, o.Start, o.End.Sub(o.Start), d)
			}
			if o.Start.Before(start) {
				t.Fatalf("rule %q: occurrence %s before the start %s", rule, o.Start, start)
			}
			if i > 0 && !iv[i-1].Start.Before(o.Start) {
				t.Fatalf("rule %q: occurrences out of order or repeated: %s then %s", rule, iv[i-1].Start, o.Start)
			}
			if got.plan.Exclusions.Excludes(o.Start, loc) {
				t.Fatalf("rule %q: occurrence %s is excluded", rule, o.Start)
			}
		}
		if strings.Contains(strings.ToUpper(got.plan.RRule), "DTSTART") {
			t.Fatalf("recorded rule %q carries DTSTART", got.plan.RRule)
		}
		if _, err := rrule.StrToROption(got.plan.RRule); err != nil {
			t.Fatalf("recorded rule %q (from %q) does not parse: %v", got.plan.RRule, rule, err)
		}
	})
}
