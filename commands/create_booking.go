package commands

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/eventstore"
	"github.com/google/uuid"
)

// CreateBooking books seats of a resource for a client.
type CreateBooking struct {
	Request domain.BookingRequest
}

// CreateBooking runs the command: it loads the tenant's policy, the
// resource and the schedule buckets that the occupied interval (buffers
// included) touches, lets the domain check every rule and the capacity,
// and appends the booking together with a reservation in every bucket (and
// the client's day counter when the tenant limits bookings per day), each
// with the bucket version it read. Two bookings that could overlap share a
// bucket, so at most one of two racing appends succeeds; the loser re-reads
// and is checked again, which is why no two active bookings ever overlap
// beyond capacity, whatever the number of processes. The work per command
// depends on the bookings of the touched days, never on the resource's
// whole history.
//
// Errors: *domain.ValidationError, domain.ErrNotFound (resource or client of
// another tenant), domain.ErrForbidden, every rule error of the policy,
// *domain.ConflictError, domain.ErrClientDailyLimit.
func (h *Handlers) CreateBooking(ctx context.Context, meta Meta, cmd CreateBooking) (Result, error) {
	req := cmd.Request
	if req.ResourceID == uuid.Nil {
		v := &domain.ValidationError{}
		v.Add("resource_id", "required", "is required")
		return Result{}, v
	}
	switch meta.Actor.Role {
	case domain.RoleClient:
		if req.ClientID == uuid.Nil {
			if id, err := uuid.Parse(meta.Actor.ID); err == nil {
				req.ClientID = id
			}
		}
		if req.ClientID.String() != meta.Actor.ID {
			return Result{}, fmt.Errorf("a client books only for itself: %w", domain.ErrForbidden)
		}
	case domain.RoleProfessional:
		// A professional books on the resource that represents them, for
		// any client; the tenant's staff book on every resource.
		linked, err := h.linkedTo(ctx, meta, req.ResourceID)
		if err != nil {
			return Result{}, err
		}
		if !linked {
			return Result{}, fmt.Errorf("a professional books only on its own resource: %w", domain.ErrForbidden)
		}
	case domain.RoleAdmin, domain.RoleManager, domain.RolePlatformAdmin:
	default:
		return Result{}, fmt.Errorf("create booking: %w", domain.ErrForbidden)
	}
	id := DeriveID(meta, "booking")
	stream := domain.BookingStream(id)
	res, err := h.retry(ctx, func(s string) bool { return s != stream }, func() (Result, error) {
		return h.createBookingOnce(ctx, meta, id, req)
	})
	if errors.Is(err, eventstore.ErrDuplicateEvent) {
		// A retry under the same idempotency key whose first attempt
		// committed: the booking exists, the buckets moved on since.
		if b, lerr := h.loadBooking(ctx, meta.TenantID, id); lerr == nil {
			return Result{ID: id, Version: b.Version(), Position: 0}, nil
		}
	}
	return res, err
}

func (h *Handlers) createBookingOnce(ctx context.Context, meta Meta, id uuid.UUID, req domain.BookingRequest) (Result, error) {
	// One round trip loads the tenant, the resource, the client and the
	// schedule buckets a day either side of the request, which cover the
	// occupied interval unless the buffers exceed a day.
	t, r, client := &domain.Tenant{}, &domain.Resource{}, &domain.User{}
	loads := map[string]aggregate{
		domain.TenantStream(meta.TenantID):    t,
		domain.ResourceStream(req.ResourceID): r,
	}
	if req.ClientID != uuid.Nil {
		loads[domain.UserStream(req.ClientID)] = client
	}
	speculative := domain.ScheduleStreams(req.ResourceID, req.Start.Add(-24*time.Hour), req.End.Add(24*time.Hour))
	schedules := make(map[string]*domain.Schedule, len(speculative))
	for _, s := range speculative {
		schedules[s] = domain.NewSchedule()
		loads[s] = schedules[s]
	}
	if err := h.loadAll(ctx, loads); err != nil {
		return Result{}, err
	}
	if t.Version() == 0 {
		return Result{}, fmt.Errorf("tenant %s: %w", meta.TenantID, domain.ErrNotFound)
	}
	var v domain.ValidationError
	if r.Version() == 0 || r.TenantID() != meta.TenantID {
		v.Add("resource_id", "not_found", "no such resource")
	}
	if req.ClientID != uuid.Nil && (client.Version() == 0 || client.TenantID() != meta.TenantID) {
		v.Add("client_id", "not_found", "no such user")
	}
	if err := v.Err(); err != nil {
		return Result{}, err
	}
	p := domain.NewPolicy(t, r)
	now := h.Now()
	occStart, occEnd := p.Occupied(req.Start, req.End)
	buckets, occ, err := h.pickBuckets(ctx, schedules, domain.ScheduleStreams(req.ResourceID, occStart, occEnd))
	if err != nil {
		return Result{}, err
	}
	b, err := domain.NewBooking(id, req, p, occ, meta.Actor, now)
	if err != nil {
		return Result{}, err
	}
	bt := &batch{meta: meta}
	if err := bt.addExpect(domain.BookingStream(id), eventstore.NoStream, b.Changes()); err != nil {
		return Result{}, err
	}
	if err := h.reserve(bt, buckets, b); err != nil {
		return Result{}, err
	}
	if err := addBuckets(bt, buckets); err != nil {
		return Result{}, err
	}
	if limit := p.Settings().MaxBookingsPerClientPerDay; limit > 0 {
		stream := domain.ClientDayStream(meta.TenantID, b.ClientID(), b.LocalDate())
		day := domain.NewClientDay()
		if err := h.loadMaybe(ctx, stream, day); err != nil {
			return Result{}, err
		}
		if err := day.Count(id, limit); err != nil {
			return Result{}, err
		}
		if err := bt.add(stream, day); err != nil {
			return Result{}, err
		}
	}
	res, err := h.commit(ctx, bt)
	if err != nil {
		return Result{}, err
	}
	return Result{ID: id, Version: b.Version(), Position: res.LastPosition, View: b.View()}, nil
}

// pickBuckets returns the buckets named by streams from those already
// loaded, loading the ones that are missing (very long buffers), and
// merges them.
func (h *Handlers) pickBuckets(ctx context.Context, loaded map[string]*domain.Schedule, streams []string) ([]bucket, *domain.Occupancy, error) {
	missing := map[string]aggregate{}
	for _, s := range streams {
		if _, ok := loaded[s]; !ok {
			loaded[s] = domain.NewSchedule()
			missing[s] = loaded[s]
		}
	}
	if err := h.loadAll(ctx, missing); err != nil {
		return nil, nil, err
	}
	buckets := make([]bucket, 0, len(streams))
	schedules := make([]*domain.Schedule, 0, len(streams))
	for _, s := range streams {
		buckets = append(buckets, bucket{stream: s, schedule: loaded[s]})
		schedules = append(schedules, loaded[s])
	}
	return buckets, domain.NewOccupancy(schedules...), nil
}

// bucket is one loaded schedule bucket stream.
type bucket struct {
	stream   string
	schedule *domain.Schedule
}

// loadBuckets loads the named bucket streams and merges them.
func (h *Handlers) loadBuckets(ctx context.Context, streams []string) ([]bucket, *domain.Occupancy, error) {
	buckets := make([]bucket, 0, len(streams))
	schedules := make([]*domain.Schedule, 0, len(streams))
	for _, s := range streams {
		sch := domain.NewSchedule()
		if err := h.loadMaybe(ctx, s, sch); err != nil {
			return nil, nil, err
		}
		buckets = append(buckets, bucket{stream: s, schedule: sch})
		schedules = append(schedules, sch)
	}
	return buckets, domain.NewOccupancy(schedules...), nil
}

// reserve records the booking's occupied interval in every bucket and
// queues the buckets with the versions they were loaded at.
func (h *Handlers) reserve(bt *batch, buckets []bucket, b *domain.Booking) error {
	occStart, occEnd := b.OccupiedInterval()
	for _, bk := range buckets {
		if err := bk.schedule.Reserve(b.ID(), b.ResourceID(), b.Start(), b.End(), occStart, occEnd, b.Seats()); err != nil {
			return err
		}
	}
	return nil
}

// addBuckets queues the changes of every bucket, once per stream.
func addBuckets(bt *batch, buckets []bucket) error {
	for _, bk := range buckets {
		if err := bt.add(bk.stream, bk.schedule); err != nil {
			return err
		}
	}
	return nil
}

// linkedTo reports whether the acting user is linked to the resource.
// A caller that is no user of the tenant is linked to nothing.
func (h *Handlers) linkedTo(ctx context.Context, meta Meta, resourceID uuid.UUID) (bool, error) {
	uid, err := uuid.Parse(meta.Actor.ID)
	if err != nil {
		return false, nil
	}
	u, err := h.loadUser(ctx, meta.TenantID, uid)
	if isNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return u.ResourceID() != nil && *u.ResourceID() == resourceID, nil
}

// errResourceNotFound marks a missing resource apart from a missing tenant.
var errResourceNotFound = errors.New("resource not found")

// policy loads the tenant and the resource and builds the booking policy.
func (h *Handlers) policy(ctx context.Context, tenantID, resourceID uuid.UUID) (domain.Policy, error) {
	t, err := h.loadTenant(ctx, tenantID)
	if err != nil {
		return domain.Policy{}, err
	}
	r := &domain.Resource{}
	if err := h.load(ctx, domain.ResourceStream(resourceID), r); err != nil {
		if isNotFound(err) {
			return domain.Policy{}, fmt.Errorf("%w: %w", errResourceNotFound, err)
		}
		return domain.Policy{}, err
	}
	if r.TenantID() != tenantID {
		return domain.Policy{}, fmt.Errorf("%w: resource %s: %w", errResourceNotFound, resourceID, domain.ErrNotFound)
	}
	return domain.NewPolicy(t, r), nil
}
