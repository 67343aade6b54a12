package queries

import (
	"bytes"
	"context"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/bookingengine/booking/domain"
)

// MaxSlotRange bounds the [from, to) of one free-slot query, so that one
// request cannot ask for years of slots.
const MaxSlotRange = 31 * 24 * time.Hour

// FreeSlots asks for the free slots of one resource, or of every active
// resource of a category: the starts in [From, To) at which a one-seat
// booking of Duration would be accepted now.
type FreeSlots struct {
	Viewer Viewer
	// Exactly one of ResourceID and CategoryID is set.
	ResourceID  uuid.UUID
	CategoryID  uuid.UUID
	From, To    time.Time
	Duration    time.Duration
	MinPosition int64
}

// Slot is one free slot. Start and End are in the resource's zone;
// SeatsLeft is the capacity minus the most seats taken at any instant of
// the slot's occupied interval (buffers included), at least 1.
type Slot struct {
	ResourceID uuid.UUID `json:"resource_id"`
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	SeatsLeft  int       `json:"seats_left"`
}

// FreeSlotsResult is the answer, slots ordered by start, then resource id.
type FreeSlotsResult struct {
	Slots []Slot `json:"slots"`
}

// PolicyReadModel gives the booking policy of resources: the very
// domain.Policy the booking commands check against, built from the
// tenant's settings and the resource as last projected.
type PolicyReadModel interface {
	// ResourcePolicy returns the policy of one resource of the tenant
	// (also an inactive one), or an error wrapping domain.ErrNotFound.
	ResourcePolicy(ctx context.Context, tenantID, resourceID uuid.UUID) (domain.Policy, error)
	// CategoryPolicies returns the policies of the category's active
	// resources (none for an empty category), or an error wrapping
	// domain.ErrNotFound when the tenant has no such category.
	CategoryPolicies(ctx context.Context, tenantID, categoryID uuid.UUID) ([]CategoryPolicy, error)
}

// CategoryPolicy is the policy of one resource of a category. Rules is
// equal for two resources of the tenant exactly when everything their
// policies are built from is equal but the resource id and the capacity
// (zone, availability, active flag): their policies then accept the same
// one-seat starts (domain.Policy.Candidates), which the query computes
// once per Rules value.
type CategoryPolicy struct {
	Policy domain.Policy
	Rules  string
}

// OccupiedInterval is an active booking's hold on its resource: the booked
// interval and the occupied one (buffers included, as recorded when the
// booking was accepted), with its seats.
type OccupiedInterval struct {
	BookingID     uuid.UUID
	ResourceID    uuid.UUID
	Start, End    time.Time
	OccupiedStart time.Time
	OccupiedEnd   time.Time
	Seats         int
}

// OccupancyReadModel is the availability read model.
type OccupancyReadModel interface {
	// Occupied returns the active (pending, confirmed, checked-in)
	// bookings of the tenant's resources whose occupied interval overlaps
	// [from, to).
	Occupied(ctx context.Context, tenantID uuid.UUID, resourceIDs []uuid.UUID, from, to time.Time) ([]OccupiedInterval, error)
}

// FreeSlotsHandler answers FreeSlots from the policy and availability read
// models.
type FreeSlotsHandler struct {
	policies  PolicyReadModel
	occupancy OccupancyReadModel
	wait      Waiter
	now       func() time.Time
}

// NewFreeSlotsHandler returns the handler. wait covers both read models;
// now is the clock the notice and advance rules are read against (the
// command side's clock: time.Now in production).
func NewFreeSlotsHandler(policies PolicyReadModel, occupancy OccupancyReadModel, wait Waiter, now func() time.Time) FreeSlotsHandler {
	if now == nil {
		now = time.Now
	}
	return FreeSlotsHandler{policies: policies, occupancy: occupancy, wait: wait, now: now}
}

// Handle lists the free slots. The rules are the command side's own:
// domain.Policy.Candidates gives every start that Policy.Check accepts for
// one seat (hours, closures, resource availability, grid, duration,
// notice, advance, active resource), and a domain.Occupancy built from
// the availability read model's intervals gives each one's seats left
// (Occupancy.SeatsLeft, the capacity rule of Occupancy.Check); a start is
// shown when at least one seat is left. So every slot shown is one that
// CreateBooking accepts on the same state, except for limits that depend
// on who books (max_bookings_per_client_per_day, required custom fields).
//
// Errors: *domain.ValidationError (422 validation_failed: missing or both
// of resource_id and category_id, from/to missing or not ordered, a range
// over MaxSlotRange, a duration that is not a positive whole number of
// minutes up to a week); ErrTimeout; domain.ErrNotFound for an unknown
// resource or category; the read models'. A duration the tenant's policy
// refuses (out of range, off the grid) and an inactive resource have no
// slots.
func (h FreeSlotsHandler) Handle(ctx context.Context, q FreeSlots) (FreeSlotsResult, error) {
	if err := q.validate(); err != nil {
		return FreeSlotsResult{}, err
	}
	if err := waitFor(ctx, h.wait, q.MinPosition); err != nil {
		return FreeSlotsResult{}, err
	}
	var policies []CategoryPolicy
	if q.ResourceID != uuid.Nil {
		p, err := h.policies.ResourcePolicy(ctx, q.Viewer.TenantID, q.ResourceID)
		if err != nil {
			return FreeSlotsResult{}, err
		}
		policies = []CategoryPolicy{{Policy: p}}
	} else {
		ps, err := h.policies.CategoryPolicies(ctx, q.Viewer.TenantID, q.CategoryID)
		if err != nil {
			return FreeSlotsResult{}, err
		}
		policies = ps
	}
	out := FreeSlotsResult{Slots: []Slot{}}
	if len(policies) == 0 {
		return out, nil
	}
	// Every candidate's occupied interval lies in [from - buffer before,
	// to + duration + buffer after); the buffers are the tenant's, the
	// same for every resource.
	occFrom, occTo := policies[0].Policy.Occupied(q.From, q.To.Add(q.Duration))
	ids := make([]uuid.UUID, len(policies))
	for i, p := range policies {
		ids[i] = p.Policy.ResourceID()
	}
	intervals, err := h.occupancy.Occupied(ctx, q.Viewer.TenantID, ids, occFrom, occTo)
	if err != nil {
		return FreeSlotsResult{}, err
	}
	byResource := make(map[uuid.UUID][]domain.Reservation, len(policies))
	for _, iv := range intervals {
		byResource[iv.ResourceID] = append(byResource[iv.ResourceID], domain.Reservation{
			BookingID: iv.BookingID, ResourceID: iv.ResourceID, Start: iv.Start, End: iv.End,
			OccupiedStart: iv.OccupiedStart, OccupiedEnd: iv.OccupiedEnd, Seats: iv.Seats})
	}
	now := h.now()
	// Candidate starts once per group of resources with the same rules
	// (an empty Rules shares with nobody).
	groupOf := make([]int, len(policies))
	index := map[string]int{}
	var firsts []int
	for i, p := range policies {
		key := "=" + p.Rules
		if p.Rules == "" {
			key = "#" + strconv.Itoa(i)
		}
		g, ok := index[key]
		if !ok {
			g = len(firsts)
			index[key] = g
			firsts = append(firsts, i)
		}
		groupOf[i] = g
	}
	candidates := make([][]time.Time, len(firsts))
	forEach(len(firsts), func(g int) {
		candidates[g] = policies[firsts[g]].Policy.Candidates(q.From, q.To, q.Duration, now)
	})
	perResource := make([][]Slot, len(policies))
	forEach(len(policies), func(i int) {
		p := policies[i].Policy
		perResource[i] = slotsOf(p, candidates[groupOf[i]], byResource[p.ResourceID()], q.Duration)
	})
	for _, s := range perResource {
		out.Slots = append(out.Slots, s...)
	}
	if len(policies) > 1 {
		slices.SortFunc(out.Slots, func(a, b Slot) int {
			if c := a.Start.Compare(b.Start); c != 0 {
				return c
			}
			return bytes.Compare(a.ResourceID[:], b.ResourceID[:])
		})
	}
	return out, nil
}

// slotsOf returns the free slots of one resource among its candidate
// starts, in its zone. held are the resource's reservations overlapping
// the range.
func slotsOf(p domain.Policy, candidates []time.Time, held []domain.Reservation, d time.Duration) []Slot {
	loc := p.Location()
	w := newOverlaps(held)
	var out []Slot
	for _, s := range candidates {
		occStart, occEnd := p.Occupied(s, s.Add(d))
		left := p.Capacity() // no reservation overlaps: every seat is left
		if occ := w.at(occStart, occEnd); occ != nil {
			left = occ.SeatsLeft(p.Capacity(), occStart, occEnd, uuid.Nil)
		}
		if left >= 1 {
			out = append(out, Slot{ResourceID: p.ResourceID(), Start: s.In(loc), End: s.Add(d).In(loc), SeatsLeft: left})
		}
	}
	return out
}

// overlaps hands out, for occupied intervals of increasing start and end,
// a domain.Occupancy holding just the reservations that overlap each one,
// so that each seat count looks at a few reservations rather than at the
// whole range's. The seat arithmetic stays Occupancy's.
type overlaps struct {
	held   []domain.Reservation // by occupied start
	lo, hi int
	ids    []uuid.UUID
	occ    *domain.Occupancy
}

func newOverlaps(held []domain.Reservation) *overlaps {
	slices.SortFunc(held, func(a, b domain.Reservation) int { return a.OccupiedStart.Compare(b.OccupiedStart) })
	return &overlaps{held: held, occ: &domain.Occupancy{}}
}

// at returns the occupancy of the reservations overlapping [start, end),
// nil when none does. Successive calls must not move start or end back.
func (o *overlaps) at(start, end time.Time) *domain.Occupancy {
	for o.hi < len(o.held) && o.held[o.hi].OccupiedStart.Before(end) {
		o.hi++
	}
	for o.lo < o.hi && !o.held[o.lo].OccupiedEnd.After(start) {
		o.lo++
	}
	var ids []uuid.UUID
	for _, r := range o.held[o.lo:o.hi] {
		if r.OccupiedEnd.After(start) {
			ids = append(ids, r.BookingID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	if !slices.Equal(ids, o.ids) {
		o.ids, o.occ = ids, &domain.Occupancy{}
		for _, r := range o.held[o.lo:o.hi] {
			if r.OccupiedEnd.After(start) {
				o.occ.Add(r)
			}
		}
	}
	return o.occ
}

// forEach runs fn(0..n-1) on up to GOMAXPROCS goroutines.
func forEach(n int, fn func(i int)) {
	workers := min(n, runtime.GOMAXPROCS(0))
	if workers <= 1 {
		for i := range n {
			fn(i)
		}
		return
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		next int
	)
	for range workers {
		wg.Go(func() {
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n {
					return
				}
				fn(i)
			}
		})
	}
	wg.Wait()
}

func (q FreeSlots) validate() error {
	var v domain.ValidationError
	switch {
	case q.ResourceID == uuid.Nil && q.CategoryID == uuid.Nil:
		v.Add("resource_id", domain.FieldRequired, "resource_id or category_id is required")
	case q.ResourceID != uuid.Nil && q.CategoryID != uuid.Nil:
		v.Add("category_id", domain.FieldInvalid, "give resource_id or category_id, not both")
	}
	if q.From.IsZero() {
		v.Add("from", domain.FieldRequired, "is required (RFC 3339 with offset)")
	}
	if q.To.IsZero() {
		v.Add("to", domain.FieldRequired, "is required (RFC 3339 with offset)")
	}
	if !q.From.IsZero() && !q.To.IsZero() {
		switch {
		case !q.From.Before(q.To):
			v.Add("to", domain.FieldInvalid, "must be after from")
		case q.To.Sub(q.From) > MaxSlotRange:
			v.Addf("to", domain.FieldOutOfRange, "the range may span at most %d days", int(MaxSlotRange/(24*time.Hour)))
		}
	}
	if q.Duration <= 0 || q.Duration%time.Minute != 0 || q.Duration > time.Duration(domain.MaxDurationLimitMinutes)*time.Minute {
		v.Addf("duration", domain.FieldOutOfRange, "must be a whole number of minutes from 1 to %d", domain.MaxDurationLimitMinutes)
	}
	return v.Err()
}
