package queries_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"
	_ "time/tzdata" // DST cases must not depend on the host's zone files

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/commands"
	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/eventstore/memory"
	"github.com/bookingengine/booking/projections/readside"
	"github.com/bookingengine/booking/queries"
)

func ptr[T any](v T) *T { return &v }

// transitions are DST changes (and, for São Paulo and Kolkata, ordinary
// days) around which requests are placed, by zone.
var transitions = []struct {
	zone string
	day  time.Time // a UTC date near the change
}{
	{"America/New_York", date(2026, 3, 8)},
	{"America/New_York", date(2026, 11, 1)},
	{"Europe/Lisbon", date(2026, 3, 29)},
	{"Europe/Lisbon", date(2026, 10, 25)},
	{"Australia/Sydney", date(2026, 4, 5)},
	{"Australia/Sydney", date(2026, 10, 4)},
	{"Pacific/Chatham", date(2026, 4, 5)},
	{"Pacific/Chatham", date(2026, 9, 27)},
	{"America/Sao_Paulo", date(2026, 6, 10)},
	{"Asia/Kolkata", date(2026, 7, 1)},
}

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// randomRanges returns 0–2 non-overlapping wall-clock ranges on a grid of
// step minutes, sometimes the whole day.
func randomRanges(rng *rand.Rand, step int) []domain.TimeRange {
	clock := func(m int) string { return fmt.Sprintf("%02d:%02d", m/60, m%60) }
	switch rng.IntN(8) {
	case 0:
		return nil
	case 1:
		return []domain.TimeRange{{Start: "00:00", End: "24:00"}}
	}
	slots := 1440 / step
	var out []domain.TimeRange
	lo := 0
	for range 1 + rng.IntN(2) {
		if lo >= slots-1 {
			break
		}
		s := lo + rng.IntN((slots-lo)/2+1)
		e := s + 1 + rng.IntN(slots-s)
		out = append(out, domain.TimeRange{Start: clock(s * step), End: clock(e * step)})
		lo = e + rng.IntN(3)
	}
	return out
}

func randomWeek(rng *rand.Rand, step int) domain.WeeklyHours {
	w := domain.WeeklyHours{}
	for _, d := range domain.Weekdays {
		if rs := randomRanges(rng, step); rs != nil {
			w[d] = rs
		}
	}
	return w
}

// propertyCase is one random tenant, resource, history and request.
type propertyCase struct {
	settings   domain.SettingsInput
	resource   domain.ResourceInput
	avail      domain.Availability
	now        time.Time
	from, to   time.Time
	duration   time.Duration
	bookings   int
	laterBuf   *int // buffers changed after the bookings, when set
	cancelFrac int
}

func randomCase(rng *rand.Rand) propertyCase {
	tr := transitions[rng.IntN(len(transitions))]
	grids := []int{5, 10, 15, 20, 30, 60}
	g := grids[rng.IntN(len(grids))]
	minD := g * (1 + rng.IntN(3))
	maxD := minD + g*rng.IntN(6)
	loc, _ := time.LoadLocation(tr.zone)
	from := tr.day.Add(time.Duration(rng.IntN(48)-24) * time.Hour).Add(time.Duration(rng.IntN(60)) * time.Minute)
	to := from.Add(time.Duration(6+rng.IntN(42)) * time.Hour)
	c := propertyCase{
		settings: domain.SettingsInput{
			Timezone: ptr(tr.zone), BusinessHours: ptr(randomWeek(rng, []int{15, 30, 60}[rng.IntN(3)])),
			SlotGranularityMinutes: ptr(g), MinDurationMinutes: ptr(minD), MaxDurationMinutes: ptr(maxD),
			BufferBeforeMinutes: ptr(5 * rng.IntN(4)), BufferAfterMinutes: ptr(5 * rng.IntN(7)),
			MinNoticeMinutes: ptr([]int{0, 0, 30, 240, 1440}[rng.IntN(5)]), MaxAdvanceDays: ptr([]int{0, 0, 0, 3, 10}[rng.IntN(5)]),
			RequiresApproval: ptr(rng.IntN(3) == 0),
		},
		resource: domain.ResourceInput{Name: "R", Kind: domain.KindSpace, Capacity: 1 + rng.IntN(3)},
		now:      from.Add(-time.Duration(rng.IntN(72*60)) * time.Minute),
		from:     from, to: to,
		duration: time.Duration(minD+g*rng.IntN(maxD/g-minD/g+1)) * time.Minute,
		bookings: rng.IntN(25), cancelFrac: rng.IntN(4),
	}
	if rng.IntN(4) == 0 {
		c.now = from.Add(time.Duration(rng.IntN(int(to.Sub(from)/time.Minute))) * time.Minute) // the notice cuts into the range
	}
	if rng.IntN(4) == 0 {
		c.settings.Closures = &[]domain.Closure{{Date: from.Add(12 * time.Hour).In(loc).Format("2006-01-02")}}
	}
	if rng.IntN(4) == 0 {
		c.resource.Timezone = transitions[rng.IntN(len(transitions))].zone
	}
	if rng.IntN(3) == 0 {
		c.avail.Weekly = randomWeek(rng, 15)
	}
	if rng.IntN(3) == 0 {
		c.avail.Overrides = []domain.Override{{Date: from.Add(6 * time.Hour).In(loc).Format("2006-01-02"), Intervals: randomRanges(rng, 30)}}
	}
	if rng.IntN(5) == 0 {
		c.duration = time.Duration(1+rng.IntN(maxD)) * time.Minute // often refused by the policy
	}
	if rng.IntN(3) == 0 {
		c.laterBuf = ptr(5 * rng.IntN(5))
	}
	return c
}

// TestFreeSlotsAreExactlyTheBookableStarts is the free-slot query's
// contract, checked on random tenants: every slot it shows is accepted by
// commands.Handlers.CreateBooking on the same state (also with all the
// seats it says are left, and refused with one more), and every start that
// CreateBooking accepts, found by trying every minute of the range, is
// shown. FREE_SLOTS_CASES sets the number of cases (default 16, 4 under
// the race detector, which slows the brute force tenfold); FREE_SLOTS_SEED
// replays a run.
func TestFreeSlotsAreExactlyTheBookableStarts(t *testing.T) {
	t.Parallel()
	cases := 16
	if raceEnabled {
		cases = 4
	}
	if s := os.Getenv("FREE_SLOTS_CASES"); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(t, err)
		cases = n
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("FREE_SLOTS_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		require.NoError(t, err)
		seed = n
	}
	t.Logf("FREE_SLOTS_SEED=%d", seed)
	for i := range cases {
		rng := rand.New(rand.NewPCG(seed, uint64(i)))
		c := randomCase(rng)
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			t.Parallel()
			checkCase(t, c, rng)
		})
	}
}

func checkCase(t *testing.T, c propertyCase, rng *rand.Rand) {
	ctx := context.Background()
	store := memory.New()
	t.Cleanup(store.Close)
	now := c.now.Truncate(time.Microsecond)
	cmd := commands.New(store, commands.WithClock(func() time.Time { return now }))
	platform := commands.Meta{Actor: domain.Actor{ID: "platform", Role: domain.RolePlatformAdmin}}
	tr, err := cmd.CreateTenant(ctx, platform, commands.CreateTenant{Input: domain.TenantInput{Name: "T", Domain: "t.example.com", Settings: &c.settings}})
	require.NoError(t, err, "settings %+v", c.settings)
	admin := commands.Meta{TenantID: tr.ID, Actor: domain.Actor{ID: "admin", Role: domain.RoleAdmin}}
	rr, err := cmd.CreateResource(ctx, admin, commands.CreateResource{Input: c.resource})
	require.NoError(t, err)
	resource := rr.ID
	if c.avail.Weekly != nil || c.avail.Overrides != nil {
		_, err = cmd.SetResourceAvailability(ctx, admin, commands.SetResourceAvailability{ResourceID: resource, Availability: c.avail})
		require.NoError(t, err)
	}
	ur, err := cmd.CreateUser(ctx, admin, commands.CreateUser{Input: domain.UserInput{Email: "c@example.com", Name: "C", Role: domain.RoleClient}})
	require.NoError(t, err)
	client := ur.ID

	// A random history: bookings around the range, some cancelled, and
	// maybe new buffers afterwards (existing bookings keep theirs).
	book := func(start, end time.Time, seats int) (uuid.UUID, error) {
		res, err := cmd.CreateBooking(ctx, admin, commands.CreateBooking{Request: domain.BookingRequest{
			ResourceID: resource, ClientID: client, Start: start, End: end, Seats: seats}})
		return res.ID, err
	}
	cancel := func(id uuid.UUID) {
		t.Helper()
		_, err := cmd.ChangeBookingStatus(ctx, admin, commands.ChangeBookingStatus{BookingID: id, To: domain.StatusCancelled})
		require.NoError(t, err)
	}
	// Starts that the policy accepts, from the query itself over a wider
	// range, so that most attempts land; CreateBooking decides.
	rs, err := readside.Open(ctx, store, readside.Config{Now: cmd.Now})
	require.NoError(t, err)
	t.Cleanup(func() { _ = rs.Close() })
	_, err = rs.CatchUp(ctx)
	require.NoError(t, err)
	viewer := queries.Viewer{TenantID: tr.ID, UserID: client.String(), Role: domain.RoleClient}
	minD := time.Duration(*c.settings.MinDurationMinutes) * time.Minute
	around, err := rs.FreeSlots.Handle(ctx, queries.FreeSlots{Viewer: viewer, ResourceID: resource,
		From: c.from.Add(-6 * time.Hour), To: c.to.Add(6 * time.Hour), Duration: minD})
	require.NoError(t, err)
	booked := 0
	for range c.bookings {
		if len(around.Slots) == 0 {
			break
		}
		s := around.Slots[rng.IntN(len(around.Slots))]
		id, err := book(s.Start, s.Start.Add(minD*time.Duration(1+rng.IntN(2))), 1+rng.IntN(c.resource.Capacity))
		if err != nil {
			continue
		}
		booked++
		if c.cancelFrac > 0 && rng.IntN(4) < c.cancelFrac-1 {
			cancel(id)
		}
	}
	if c.laterBuf != nil {
		s := c.settings
		s.BufferAfterMinutes, s.BufferBeforeMinutes = c.laterBuf, ptr(*c.laterBuf/2)
		_, err := cmd.ChangeTenantSettings(ctx, admin, commands.ChangeTenantSettings{TenantID: tr.ID, Settings: s})
		require.NoError(t, err)
	}

	// The query, from read models caught up with the store.
	_, err = rs.CatchUp(ctx)
	require.NoError(t, err)
	res, err := rs.FreeSlots.Handle(ctx, queries.FreeSlots{Viewer: viewer, ResourceID: resource, From: c.from, To: c.to, Duration: c.duration})
	require.NoError(t, err)
	shown := map[time.Time]queries.Slot{}
	for _, s := range res.Slots {
		require.Equal(t, c.duration, s.End.Sub(s.Start))
		require.False(t, s.Start.Before(c.from) || !s.Start.Before(c.to), "slot %s outside the range", s.Start)
		shown[s.Start.UTC()] = s
	}
	detail := fmt.Sprintf("case %+v; settings %s", c, describe(c.settings))

	// Every slot shown is bookable, with exactly the seats it says.
	for _, s := range res.Slots {
		id, err := book(s.Start, s.End, s.SeatsLeft)
		require.NoError(t, err, "shown slot %s with %d seats refused; %s", s.Start, s.SeatsLeft, detail)
		cancel(id)
		if s.SeatsLeft < c.resource.Capacity {
			_, err := book(s.Start, s.End, s.SeatsLeft+1)
			var conflict *domain.ConflictError
			require.True(t, errors.As(err, &conflict), "slot %s: %d seats should conflict, got %v; %s", s.Start, s.SeatsLeft+1, err, detail)
		}
	}
	// Every start the command accepts, minute by minute, is shown.
	accepted := 0
	for start := c.from.Truncate(time.Minute); start.Before(c.to); start = start.Add(time.Minute) {
		if start.Before(c.from) {
			continue
		}
		id, err := book(start, start.Add(c.duration), 1)
		if err != nil {
			continue
		}
		accepted++
		_, ok := shown[start.UTC()]
		require.True(t, ok, "start %s is bookable but not shown; %s", start, detail)
		cancel(id)
	}
	require.Equal(t, len(shown), accepted, "%s", detail)
	t.Logf("%d slots shown and bookable, %d bookings before; %s", accepted, booked, detail)
}

func describe(s domain.SettingsInput) string {
	return fmt.Sprintf("zone=%s grid=%d dur=%d..%d buf=%d/%d notice=%d advance=%d approval=%v hours=%v closures=%v",
		*s.Timezone, *s.SlotGranularityMinutes, *s.MinDurationMinutes, *s.MaxDurationMinutes, *s.BufferBeforeMinutes,
		*s.BufferAfterMinutes, *s.MinNoticeMinutes, *s.MaxAdvanceDays, *s.RequiresApproval, *s.BusinessHours, s.Closures)
}

// TestCategorySlotsAreTheUnionOfResourceSlots: the free slots of a
// category are exactly those of its active resources, asked one by one,
// whether resources share their rules (and so their candidate starts) or
// not.
func TestCategorySlotsAreTheUnionOfResourceSlots(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	for i := range 24 {
		rng := rand.New(rand.NewPCG(seed, uint64(i)))
		c := randomCase(rng)
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			store := memory.New()
			t.Cleanup(store.Close)
			now := c.now.Truncate(time.Microsecond)
			cmd := commands.New(store, commands.WithClock(func() time.Time { return now }))
			tr, err := cmd.CreateTenant(ctx, commands.Meta{Actor: domain.Actor{ID: "p", Role: domain.RolePlatformAdmin}},
				commands.CreateTenant{Input: domain.TenantInput{Name: "T", Domain: "t.example.com", Settings: &c.settings}})
			require.NoError(t, err)
			admin := commands.Meta{TenantID: tr.ID, Actor: domain.Actor{ID: "admin", Role: domain.RoleAdmin}}
			cat, err := cmd.CreateResourceCategory(ctx, admin, commands.CreateResourceCategory{Input: domain.ResourceCategoryInput{Name: "C"}})
			require.NoError(t, err)
			u, err := cmd.CreateUser(ctx, admin, commands.CreateUser{Input: domain.UserInput{Email: "c@example.com", Name: "C", Role: domain.RoleClient}})
			require.NoError(t, err)
			var resources []uuid.UUID
			for j := range 6 {
				in := domain.ResourceInput{CategoryID: &cat.ID, Name: "R", Kind: domain.KindSpace, Capacity: 1 + j%2}
				if j == 3 {
					in.Timezone = "Asia/Kolkata"
				}
				r, err := cmd.CreateResource(ctx, admin, commands.CreateResource{Input: in})
				require.NoError(t, err)
				resources = append(resources, r.ID)
			}
			_, err = cmd.SetResourceAvailability(ctx, admin, commands.SetResourceAvailability{ResourceID: resources[4],
				Availability: domain.Availability{Weekly: randomWeek(rng, 30)}})
			require.NoError(t, err)
			_, err = cmd.DeactivateResource(ctx, admin, commands.DeactivateResource{ResourceID: resources[5]})
			require.NoError(t, err)

			rs, err := readside.Open(ctx, store, readside.Config{Now: cmd.Now})
			require.NoError(t, err)
			t.Cleanup(func() { _ = rs.Close() })
			viewer := queries.Viewer{TenantID: tr.ID, UserID: "admin", Role: domain.RoleAdmin}
			slotsOf := func(q queries.FreeSlots) []queries.Slot {
				t.Helper()
				_, err := rs.CatchUp(ctx)
				require.NoError(t, err)
				q.Viewer, q.From, q.To, q.Duration = viewer, c.from, c.to, c.duration
				res, err := rs.FreeSlots.Handle(ctx, q)
				require.NoError(t, err)
				return res.Slots
			}
			// Some bookings on each resource, at starts it offers.
			for _, r := range resources[:5] {
				free := slotsOf(queries.FreeSlots{ResourceID: r})
				for range min(len(free), 3) {
					s := free[rng.IntN(len(free))]
					_, _ = cmd.CreateBooking(ctx, admin, commands.CreateBooking{Request: domain.BookingRequest{
						ResourceID: r, ClientID: u.ID, Start: s.Start, End: s.End, Seats: 1}})
				}
			}
			var union []queries.Slot
			for _, r := range resources {
				union = append(union, slotsOf(queries.FreeSlots{ResourceID: r})...)
			}
			got := slotsOf(queries.FreeSlots{CategoryID: cat.ID})
			t.Logf("%d category slots", len(got))
			require.Len(t, got, len(union))
			want := map[string]queries.Slot{}
			for _, s := range union {
				want[s.ResourceID.String()+s.Start.Format(time.RFC3339)] = s
			}
			for i, s := range got {
				require.Equal(t, want[s.ResourceID.String()+s.Start.Format(time.RFC3339)], s)
				if i > 0 {
					require.False(t, s.Start.Before(got[i-1].Start), "ordered by start")
				}
			}
		})
	}
}
