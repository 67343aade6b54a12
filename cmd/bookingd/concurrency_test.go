package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/bookingengine/booking/domain"
	bhttp "github.com/bookingengine/booking/http"
	"github.com/bookingengine/booking/internal/testenv"
)

// TestCreateBookingTwoProcesses starts two bookingd processes on one
// database and fires crowds of simultaneous POST /bookings at both: the
// same slot, randomly overlapping slots around UTC midnight (so bookings
// span two schedule buckets), and one request retried under one
// Idempotency-Key. The answers must be 201 or 409 and never 5xx, the
// accepted bookings must never exceed the capacity at any instant, and an
// audit that rebuilds the bookings and the schedule buckets from
// booking_events with SQL must agree with the answers.
func TestCreateBookingTwoProcesses(t *testing.T) {
	if runChildIfAsked() {
		return
	}
	const test = "TestCreateBookingTwoProcesses"
	dbURL := testenv.NewDatabase(t)
	secret := newSecret(t)
	procs := []*bookingdProc{
		startBookingd(t, test, "bookingd-0", dbURL, secret),
		startBookingd(t, test, "bookingd-1", dbURL, secret),
	}
	hc := newHTTPClient(t)
	f := mustFixture(t, hc, procs[0].Base, secret)
	bases := []string{procs[0].Base, procs[1].Base}

	conn, err := pgx.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })

	for _, capacity := range []int{1, 3} {
		t.Run(fmt.Sprintf("same_slot/capacity=%d", capacity), func(t *testing.T) {
			resource := f.mustResource(t, fmt.Sprintf("same slot %d", capacity), capacity)
			start := dayStart(30).Add(10 * time.Hour)
			shots := make([]shot, 100)
			for i := range shots {
				shots[i] = shot{start: start, end: start.Add(time.Hour)}
			}
			outs := fire(t, f, bases, resource, shots)
			created := checkOutcomes(t, outs, capacity)
			if len(created) != capacity {
				t.Fatalf("%d bookings of one slot accepted, want exactly the capacity %d", len(created), capacity)
			}
			audit(t, conn, resource, capacity, created)
		})
	}

	// Random crowds in a 4-hour window from 22:00 to 02:00 UTC, so that
	// bookings touch one or two schedule buckets.
	window := dayStart(31).Add(22 * time.Hour)
	crowds := []struct {
		name string
		draw func(rng *rand.Rand) (start, end time.Time)
		// overlapAll: every two requests overlap, so exactly the
		// capacity must be accepted.
		overlapAll bool
	}{
		// 15 minutes to 2 hours anywhere in the window: a quarter to two
		// fifths straddle midnight.
		{"random_overlapping", func(rng *rand.Rand) (time.Time, time.Time) {
			slots := 1 + rng.IntN(8)
			s := window.Add(time.Duration(rng.IntN(16-slots+1)) * 15 * time.Minute)
			return s, s.Add(time.Duration(slots) * 15 * time.Minute)
		}, false},
		// From 22:00–23:45 to 00:15–02:00: every request holds both
		// buckets and 23:45–00:15.
		{"across_midnight", func(rng *rand.Rand) (time.Time, time.Time) {
			return window.Add(time.Duration(rng.IntN(8)) * 15 * time.Minute),
				window.Add(time.Duration(9+rng.IntN(8)) * 15 * time.Minute)
		}, true},
	}
	for _, crowd := range crowds {
		for _, capacity := range []int{1, 3} {
			t.Run(fmt.Sprintf("%s/capacity=%d", crowd.name, capacity), func(t *testing.T) {
				resource := f.mustResource(t, fmt.Sprintf("%s %d", crowd.name, capacity), capacity)
				seed := uint64(time.Now().UnixNano())
				rng := rand.New(rand.NewPCG(seed, uint64(capacity)))
				t.Logf("shots drawn with seed %d", seed)
				shots := make([]shot, 100)
				straddling := 0
				for i := range shots {
					shots[i].start, shots[i].end = crowd.draw(rng)
					if len(domain.ScheduleStreams(resource, shots[i].start, shots[i].end)) > 1 {
						straddling++
					}
				}
				outs := fire(t, f, bases, resource, shots)
				created := checkOutcomes(t, outs, capacity)
				if crowd.overlapAll && len(created) != capacity {
					t.Errorf("%d of 100 mutually overlapping bookings accepted, want exactly the capacity %d", len(created), capacity)
				}
				// A refusal is justified by the bookings accepted in the
				// end: nothing was cancelled, so whatever filled the slot
				// when the request was refused is still among them.
				var accepted []seatInterval
				for _, b := range created {
					accepted = append(accepted, seatInterval{b.Start, b.End, 1})
				}
				for _, o := range outs {
					if o.res.Status == http.StatusConflict {
						if peak := peakSeats(accepted, o.start, o.end); peak+1 <= capacity {
							t.Errorf("%s–%s refused, but the accepted bookings leave a seat free (peak %d of %d)",
								o.start.Format(time.RFC3339), o.end.Format(time.RFC3339), peak, capacity)
						}
					}
				}
				spans := 0
				for _, b := range created {
					if len(domain.ScheduleStreams(resource, b.Start, b.End)) > 1 {
						spans++
					}
				}
				t.Logf("capacity %d: %d of 100 accepted (%d of them span two buckets); %d requests straddled midnight",
					capacity, len(created), spans, straddling)
				audit(t, conn, resource, capacity, created)
			})
		}
	}

	t.Run("idempotent_retries", func(t *testing.T) {
		resource := f.mustResource(t, "idempotent", 1)
		start := dayStart(32).Add(23 * time.Hour) // crosses midnight: two buckets
		end := start.Add(2 * time.Hour)
		key := "retry-" + uuid.NewString()
		shots := make([]shot, 20)
		for i := range shots {
			shots[i] = shot{start: start, end: end, key: key}
		}
		outs := fire(t, f, bases, resource, shots)
		var ids []uuid.UUID
		pending := 0
		for _, o := range outs {
			switch {
			case o.res.Status == http.StatusCreated:
				ids = append(ids, mustBookingID(t, o.res))
			case o.res.Status == http.StatusConflict && problemOf(t, o.res).Code == bhttp.CodeIdempotencyInProgress:
				pending++
			default:
				t.Fatalf("request %d to %s: %s; want 201 or 409 idempotency_in_progress", o.n, o.base, describeResponse(o.res))
			}
		}
		// The ones that raced the first run retry until its answer is stored.
		for i := range pending {
			c := f.as(bases[i%2])
			deadline := time.Now().Add(10 * time.Second)
			for {
				res, err := c.do(t.Context(), http.MethodPost, "/bookings", f.bookingBody(resource, start, end),
					map[string]string{bhttp.HeaderIdempotencyKey: key})
				if err != nil {
					t.Fatal(err)
				}
				if res.Status == http.StatusCreated {
					if res.Header.Get(bhttp.HeaderIdempotentReplayed) != "true" {
						t.Errorf("a late retry ran the command again instead of replaying: %s", describeResponse(res))
					}
					ids = append(ids, mustBookingID(t, res))
					break
				}
				if res.Status != http.StatusConflict || problemOf(t, res).Code != bhttp.CodeIdempotencyInProgress || time.Now().After(deadline) {
					t.Fatalf("retry: %s", describeResponse(res))
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		if len(ids) != len(shots) {
			t.Fatalf("%d answers with an id, want %d", len(ids), len(shots))
		}
		for _, id := range ids[1:] {
			if id != ids[0] {
				t.Fatalf("one Idempotency-Key answered two bookings: %s and %s", ids[0], id)
			}
		}
		t.Logf("20 requests under one key: %d answered 201 at once, %d were in progress and got the 201 on retry", len(shots)-pending, pending)
		active := audit(t, conn, resource, 1, nil)
		if len(active) != 1 || active[ids[0]] == nil {
			t.Fatalf("store holds %d active bookings on the resource, want exactly %s", len(active), ids[0])
		}
		var events int
		if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM booking_events WHERE stream_id = $1`,
			domain.BookingStream(ids[0])).Scan(&events); err != nil {
			t.Fatal(err)
		}
		if events != 1 {
			t.Fatalf("booking stream has %d events, want the single booking.created", events)
		}
		var reserved int
		if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM booking_events
			WHERE type = 'schedule.reserved' AND data->>'booking_id' = $1`, ids[0].String()).Scan(&reserved); err != nil {
			t.Fatal(err)
		}
		if want := len(domain.ScheduleStreams(resource, start, end)); reserved != want {
			t.Fatalf("%d schedule.reserved events for the booking, want one per bucket (%d)", reserved, want)
		}
	})
}

// shot is one POST /bookings of a crowd.
type shot struct {
	start, end time.Time
	// key is the Idempotency-Key, if any.
	key string
}

// shotOutcome is a shot with the process it went to and the answer.
type shotOutcome struct {
	shot
	n    int
	base string
	res  apiResponse
}

// fire sends every shot at once, alternating between the processes: each
// request is built first, then all are released together.
func fire(t *testing.T, f loadFixture, bases []string, resource uuid.UUID, shots []shot) []shotOutcome {
	t.Helper()
	outs := make([]shotOutcome, len(shots))
	reqs := make([]*http.Request, len(shots))
	for i, s := range shots {
		base := bases[i%len(bases)]
		var hdr map[string]string
		if s.key != "" {
			hdr = map[string]string{bhttp.HeaderIdempotencyKey: s.key}
		}
		req, err := f.as(base).request(t.Context(), http.MethodPost, "/bookings", f.bookingBody(resource, s.start, s.end), hdr)
		if err != nil {
			t.Fatal(err)
		}
		reqs[i] = req
		outs[i] = shotOutcome{shot: s, n: i, base: base}
	}
	var ready, done sync.WaitGroup
	release := make(chan struct{})
	errs := make([]error, len(shots))
	for i := range reqs {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			ready.Done()
			<-release
			outs[i].res, errs[i] = f.Admin.send(reqs[i])
		}()
	}
	ready.Wait()
	close(release)
	done.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("request %d to %s: %v", i, outs[i].base, err)
		}
	}
	return outs
}

// createdBooking is what the tests read from a 201.
type createdBooking struct {
	ID     uuid.UUID `json:"id"`
	Status string    `json:"status"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
}

// checkOutcomes fails t unless every answer is a 201 with a confirmed
// booking or a 409 booking_conflict problem naming bookings that were
// accepted, and the accepted bookings never exceed capacity. It returns
// the accepted bookings by id.
func checkOutcomes(t *testing.T, outs []shotOutcome, capacity int) map[uuid.UUID]createdBooking {
	t.Helper()
	created := map[uuid.UUID]createdBooking{}
	perBase := map[string][2]int{}
	var conflicts []apiProblem
	for _, o := range outs {
		n := perBase[o.base]
		switch o.res.Status {
		case http.StatusCreated:
			var b createdBooking
			if err := json.Unmarshal(o.res.Body, &b); err != nil {
				t.Fatalf("decode 201 %s: %v", o.res.Body, err)
			}
			if b.Status != "confirmed" || !b.Start.Equal(o.start) || !b.End.Equal(o.end) {
				t.Errorf("201 for %s–%s shows %+v", o.start, o.end, b)
			}
			if _, dup := created[b.ID]; dup {
				t.Errorf("booking %s answered twice", b.ID)
			}
			created[b.ID] = b
			n[0]++
		case http.StatusConflict:
			p := problemOf(t, o.res)
			if p.Code != bhttp.CodeBookingConflict || p.Status != http.StatusConflict || len(p.Conflicts) == 0 {
				t.Errorf("request %d to %s: %s; want a booking_conflict naming the bookings in the way", o.n, o.base, describeResponse(o.res))
			}
			conflicts = append(conflicts, p)
			n[1]++
		default:
			t.Errorf("request %d to %s: %s; want 201 or 409", o.n, o.base, describeResponse(o.res))
		}
		perBase[o.base] = n
	}
	if t.Failed() {
		t.FailNow()
	}
	for _, p := range conflicts {
		for _, c := range p.Conflicts {
			if _, ok := created[c.BookingID]; !ok {
				t.Errorf("a 409 names booking %s, which no request was told was created", c.BookingID)
			}
		}
	}
	var accepted []seatInterval
	for _, b := range created {
		accepted = append(accepted, seatInterval{b.Start, b.End, 1})
	}
	if peak := peakSeats(accepted, time.Time{}, time.Time{}); peak > capacity {
		t.Errorf("accepted bookings take %d seats at one instant, capacity %d", peak, capacity)
	}
	for base, n := range perBase {
		t.Logf("%s: %d created, %d conflicts", base, n[0], n[1])
	}
	return created
}

func problemOf(t *testing.T, r apiResponse) apiProblem {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, bhttp.ProblemContentType) {
		t.Fatalf("%d with Content-Type %q, want %s: %s", r.Status, ct, bhttp.ProblemContentType, r.Body)
	}
	var p apiProblem
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatalf("decode problem %s: %v", r.Body, err)
	}
	return p
}

func mustBookingID(t *testing.T, r apiResponse) uuid.UUID {
	t.Helper()
	var b createdBooking
	if err := json.Unmarshal(r.Body, &b); err != nil || b.ID == uuid.Nil {
		t.Fatalf("decode booking %s: %v", r.Body, err)
	}
	return b.ID
}

// seatInterval is a half-open occupation [start, end) of some seats.
type seatInterval struct {
	start, end time.Time
	seats      int
}

// peakSeats returns the most seats the intervals take at one instant
// within [from, to); zero from and to mean everywhere. Ends sort before
// starts at the same instant (half-open intervals).
func peakSeats(ivs []seatInterval, from, to time.Time) int {
	type edge struct {
		at    time.Time
		delta int
	}
	var edges []edge
	for _, iv := range ivs {
		s, e := iv.start, iv.end
		if !from.IsZero() {
			if !s.Before(to) || !from.Before(e) {
				continue
			}
			if s.Before(from) {
				s = from
			}
			if e.After(to) {
				e = to
			}
		}
		edges = append(edges, edge{s, iv.seats}, edge{e, -iv.seats})
	}
	sort.Slice(edges, func(i, j int) bool {
		if !edges[i].at.Equal(edges[j].at) {
			return edges[i].at.Before(edges[j].at)
		}
		return edges[i].delta < edges[j].delta
	})
	peak, cur := 0, 0
	for _, e := range edges {
		cur += e.delta
		peak = max(peak, cur)
	}
	return peak
}

// storedBooking is a booking as the audit rebuilds it from its events.
type storedBooking struct {
	ID                         uuid.UUID
	Start, End                 time.Time
	Seats                      int
	BufferBefore               int
	BufferAfter                int
	Status                     string
	OccupiedStart, OccupiedEnd time.Time
}

// audit rebuilds from booking_events, with SQL and nothing of the command
// side, the resource's active bookings (booking.created, moved by
// booking.rescheduled, minus cancelled and rejected ones) and its schedule
// buckets. It fails t when the active bookings exceed capacity at some
// instant, when a stream's versions are not 1…n, when a bucket holds a
// reservation that is not an active booking's or misses one an active
// booking's occupied time touches, or (created not nil) when the active
// bookings are not exactly those the API answered 201 for. It returns the
// active bookings by id.
func audit(t *testing.T, conn *pgx.Conn, resource uuid.UUID, capacity int, created map[uuid.UUID]createdBooking) map[uuid.UUID]*storedBooking {
	t.Helper()
	ctx := t.Context()
	type row struct {
		Stream  string
		Version int64
		Type    string
		Data    []byte
	}
	collect := func(q string, args ...any) []row {
		rows, err := conn.Query(ctx, q, args...)
		if err != nil {
			t.Fatal(err)
		}
		out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
			var x row
			err := r.Scan(&x.Stream, &x.Version, &x.Type, &x.Data)
			return x, err
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	checkVersions := func(rows []row) {
		var prev row
		for _, r := range rows {
			want := int64(1)
			if r.Stream == prev.Stream {
				want = prev.Version + 1
			}
			if r.Version != want {
				t.Errorf("stream %s: version %d follows %d", r.Stream, r.Version, prev.Version)
			}
			prev = r
		}
	}

	bookingRows := collect(`
		SELECT e.stream_id, e.stream_version, e.type, e.data
		  FROM booking_events e
		 WHERE e.stream_id IN (SELECT c.stream_id FROM booking_events c
		                        WHERE c.type = 'booking.created' AND c.data->>'resource_id' = $1)
		 ORDER BY e.stream_id, e.stream_version`, resource.String())
	checkVersions(bookingRows)
	all := map[uuid.UUID]*storedBooking{}
	byStream := map[string]*storedBooking{}
	for _, r := range bookingRows {
		var d struct {
			BookingID    uuid.UUID `json:"booking_id"`
			Start        time.Time `json:"start"`
			End          time.Time `json:"end"`
			Seats        int       `json:"seats"`
			Status       string    `json:"status"`
			To           string    `json:"to"`
			BufferBefore int       `json:"buffer_before_minutes"`
			BufferAfter  int       `json:"buffer_after_minutes"`
		}
		if err := json.Unmarshal(r.Data, &d); err != nil {
			t.Fatalf("%s v%d: %v", r.Stream, r.Version, err)
		}
		b := byStream[r.Stream]
		switch r.Type {
		case domain.EventBookingCreated:
			b = &storedBooking{ID: d.BookingID, Start: d.Start, End: d.End, Seats: d.Seats, Status: d.Status,
				BufferBefore: d.BufferBefore, BufferAfter: d.BufferAfter}
			byStream[r.Stream], all[d.BookingID] = b, b
		case domain.EventBookingRescheduled:
			b.Start, b.End, b.BufferBefore, b.BufferAfter = d.Start, d.End, d.BufferBefore, d.BufferAfter
		case domain.EventBookingCancelled:
			b.Status = "cancelled"
		case domain.EventBookingStatusChanged:
			b.Status = d.To
		}
	}
	active := map[uuid.UUID]*storedBooking{}
	var occupied []seatInterval
	for id, b := range all {
		if b.Status == "cancelled" || b.Status == "rejected" {
			continue
		}
		b.OccupiedStart = b.Start.Add(-time.Duration(b.BufferBefore) * time.Minute)
		b.OccupiedEnd = b.End.Add(time.Duration(b.BufferAfter) * time.Minute)
		active[id] = b
		occupied = append(occupied, seatInterval{b.OccupiedStart, b.OccupiedEnd, b.Seats})
	}
	if peak := peakSeats(occupied, time.Time{}, time.Time{}); peak > capacity {
		t.Errorf("store: active bookings take %d seats at one instant, capacity %d", peak, capacity)
	}
	if created != nil {
		if len(active) != len(created) {
			t.Errorf("store holds %d active bookings, the API accepted %d", len(active), len(created))
		}
		for id, c := range created {
			b := active[id]
			if b == nil || !b.Start.Equal(c.Start) || !b.End.Equal(c.End) {
				t.Errorf("accepted booking %s (%s–%s) is not stored as such: %+v", id, c.Start, c.End, b)
			}
		}
	}

	bucketRows := collect(`
		SELECT stream_id, stream_version, type, data FROM booking_events
		 WHERE stream_id LIKE 'schedule-' || $1 || '-%'
		 ORDER BY stream_id, stream_version`, resource.String())
	checkVersions(bucketRows)
	buckets := map[string]map[uuid.UUID]domain.Reservation{}
	for _, r := range bucketRows {
		if buckets[r.Stream] == nil {
			buckets[r.Stream] = map[uuid.UUID]domain.Reservation{}
		}
		var res domain.Reservation
		if err := json.Unmarshal(r.Data, &res); err != nil {
			t.Fatalf("%s v%d: %v", r.Stream, r.Version, err)
		}
		switch r.Type {
		case domain.EventScheduleReserved:
			buckets[r.Stream][res.BookingID] = res
		case domain.EventScheduleReleased:
			delete(buckets[r.Stream], res.BookingID)
		default:
			t.Errorf("%s v%d: unexpected %s in a bucket", r.Stream, r.Version, r.Type)
		}
	}
	for stream, held := range buckets {
		var ivs []seatInterval
		for id, res := range held {
			b := active[id]
			if b == nil {
				t.Errorf("bucket %s holds %s, which is not an active booking", stream, id)
				continue
			}
			if !slices.Contains(domain.ScheduleStreams(resource, b.OccupiedStart, b.OccupiedEnd), stream) {
				t.Errorf("bucket %s holds %s, whose occupied time does not touch its day", stream, id)
			}
			if !res.Start.Equal(b.Start) || !res.End.Equal(b.End) || res.Seats != b.Seats ||
				!res.OccupiedStart.Equal(b.OccupiedStart) || !res.OccupiedEnd.Equal(b.OccupiedEnd) {
				t.Errorf("bucket %s disagrees with booking %s: %+v vs %+v", stream, id, res, b)
			}
			ivs = append(ivs, seatInterval{res.OccupiedStart, res.OccupiedEnd, res.Seats})
		}
		if peak := peakSeats(ivs, time.Time{}, time.Time{}); peak > capacity {
			t.Errorf("bucket %s: reservations take %d seats at one instant, capacity %d", stream, peak, capacity)
		}
	}
	for id, b := range active {
		for _, stream := range domain.ScheduleStreams(resource, b.OccupiedStart, b.OccupiedEnd) {
			if _, ok := buckets[stream][id]; !ok {
				t.Errorf("active booking %s is missing from bucket %s", id, stream)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return active
}
