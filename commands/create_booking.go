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

// CreateBooking books seats of a resource for a client. HoldID, when set,
// names a hold whose time the booking takes over in the same append.
type CreateBooking struct {
	Request domain.BookingRequest
	HoldID  uuid.UUID
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
// With HoldID the hold is consumed atomically: hold.released (reason
// consumed) on the hold stream, its reservation released and the
// booking's taken in the same bucket appends, so the hold's seats never
// count against the booking that replaces it; what of the hold the
// booking leaves free (a shorter time, fewer seats) goes to the
// resource's waitlist in the same append.
//
// Errors: *domain.ValidationError (also for an unknown hold, or a booking
// that does not fit inside the hold), domain.ErrNotFound (resource or
// client of another tenant), domain.ErrForbidden, every rule error of the
// policy, *domain.ConflictError, domain.ErrClientDailyLimit,
// domain.ErrInvalidTransition for a hold that is no longer active or has
// expired.
func (h *Handlers) CreateBooking(ctx context.Context, meta Meta, cmd CreateBooking) (Result, error) {
	req, err := h.authorizeBooking(ctx, meta, cmd.Request)
	if err != nil {
		return Result{}, err
	}
	req.HoldID = cmd.HoldID
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

// authorizeBooking checks that the actor may book req and fills the client
// of a client booking for itself.
func (h *Handlers) authorizeBooking(ctx context.Context, meta Meta, req domain.BookingRequest) (domain.BookingRequest, error) {
	if req.ResourceID == uuid.Nil {
		v := &domain.ValidationError{}
		v.Add("resource_id", "required", "is required")
		return req, v
	}
	switch meta.Actor.Role {
	case domain.RoleClient:
		if req.ClientID == uuid.Nil {
			if id, err := uuid.Parse(meta.Actor.ID); err == nil {
				req.ClientID = id
			}
		}
		if req.ClientID.String() != meta.Actor.ID {
			return req, fmt.Errorf("a client books only for itself: %w", domain.ErrForbidden)
		}
	case domain.RoleProfessional:
		// A professional books on the resource that represents them, for
		// any client; the tenant's staff book on every resource.
		linked, err := h.linkedTo(ctx, meta, req.ResourceID)
		if err != nil {
			return req, err
		}
		if !linked {
			return req, fmt.Errorf("a professional books only on its own resource: %w", domain.ErrForbidden)
		}
	case domain.RoleAdmin, domain.RoleManager, domain.RolePlatformAdmin:
	default:
		return req, fmt.Errorf("create booking: %w", domain.ErrForbidden)
	}
	return req, nil
}

func (h *Handlers) createBookingOnce(ctx context.Context, meta Meta, id uuid.UUID, req domain.BookingRequest) (Result, error) {
	// One round trip loads the tenant, the resource, the client, the hold
	// and the schedule buckets of the occupied interval: the interval the
	// cached tenant's buffers give, or, without a cached tenant, a day
	// either side of the request, which covers it unless the buffers
	// exceed a day. (A bucket the loaded policy needs beyond those is
	// loaded when the workset meets it.) The tenant, resource and client
	// come from the cache, topped up with whatever was appended to them
	// since, in that same round trip (see CacheConfig): exact, in every
	// process.
	hold := &domain.Hold{}
	cached := map[string]func() aggregate{
		domain.TenantStream(meta.TenantID):    newTenant,
		domain.ResourceStream(req.ResourceID): newResource,
	}
	if req.ClientID != uuid.Nil {
		cached[domain.UserStream(req.ClientID)] = newUser
	}
	loads := map[string]aggregate{}
	if req.HoldID != uuid.Nil {
		loads[domain.HoldStream(req.HoldID)] = hold
	}
	ws := newWorkset(h)
	before, after := 24*time.Hour, 24*time.Hour
	if e := h.cache.get(domain.TenantStream(meta.TenantID)); e != nil {
		st := e.agg.(*domain.Tenant).Settings()
		before, after = time.Duration(st.BufferBeforeMinutes)*time.Minute, time.Duration(st.BufferAfterMinutes)*time.Minute
	}
	speculative := domain.ScheduleStreams(req.ResourceID, req.Start.Add(-before), req.End.Add(after))
	for _, s := range speculative {
		sch := domain.NewSchedule()
		loads[s] = sch
		ws.track(s, sch)
	}
	aggs, err := h.loadCached(ctx, cached, loads)
	if err != nil {
		return Result{}, err
	}
	// Shared with other commands: read, never changed.
	t := aggs[domain.TenantStream(meta.TenantID)].(*domain.Tenant)
	r := aggs[domain.ResourceStream(req.ResourceID)].(*domain.Resource)
	client := &domain.User{}
	if req.ClientID != uuid.Nil {
		client = aggs[domain.UserStream(req.ClientID)].(*domain.User)
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
	if req.HoldID != uuid.Nil && (hold.Version() == 0 || hold.TenantID() != meta.TenantID) {
		v.Add("hold_id", "not_found", "no such hold")
	}
	if err := v.Err(); err != nil {
		return Result{}, err
	}
	p := domain.NewPolicy(t, r)
	now := h.Now()
	if req.HoldID != uuid.Nil {
		if err := hold.Consume(id, req, meta.Actor, now); err != nil {
			return Result{}, err
		}
		holdStart, holdEnd := hold.OccupiedInterval()
		if err := ws.release(ctx, hold.ID(), hold.ResourceID(), holdStart, holdEnd); err != nil {
			return Result{}, err
		}
		ws.track(domain.HoldStream(hold.ID()), hold)
	}
	occStart, occEnd := p.Occupied(req.Start, req.End)
	_, occ, err := ws.occupancy(ctx, req.ResourceID, occStart, occEnd)
	if err != nil {
		return Result{}, err
	}
	b, err := domain.NewBooking(id, req, p, occ, meta.Actor, now)
	if err != nil {
		return Result{}, err
	}
	ws.track(domain.BookingStream(id), b)
	if err := ws.reserve(ctx, id, b.ResourceID(), b.Start(), b.End(), occStart, occEnd, b.Seats()); err != nil {
		return Result{}, err
	}
	if err := ws.countBooking(ctx, meta.TenantID, b, p.Settings().MaxBookingsPerClientPerDay); err != nil {
		return Result{}, err
	}
	if req.HoldID != uuid.Nil {
		// The part of the hold the booking does not take (a shorter time,
		// fewer seats) is free again: serve the line, as releasing the
		// hold would.
		holdStart, holdEnd := hold.OccupiedInterval()
		if err := h.promoteWaitlist(ctx, ws, p, []domain.Interval{{Start: holdStart, End: holdEnd}}, now); err != nil {
			return Result{}, err
		}
	}
	bt := &batch{meta: meta}
	if err := ws.addTo(bt); err != nil {
		return Result{}, err
	}
	res, err := h.commit(ctx, bt)
	if err != nil {
		return Result{}, err
	}
	return Result{ID: id, Version: b.Version(), Position: res.LastPosition, View: b.View()}, nil
}

// bucket is one loaded schedule bucket stream.
type bucket struct {
	stream   string
	schedule *domain.Schedule
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

// policy loads the tenant and the resource, in one round trip topped up
// from the cache, and builds the booking policy.
func (h *Handlers) policy(ctx context.Context, tenantID, resourceID uuid.UUID) (domain.Policy, error) {
	ts, rs := domain.TenantStream(tenantID), domain.ResourceStream(resourceID)
	aggs, err := h.loadCached(ctx, map[string]func() aggregate{ts: newTenant, rs: newResource}, nil)
	if err != nil {
		return domain.Policy{}, err
	}
	t, r := aggs[ts].(*domain.Tenant), aggs[rs].(*domain.Resource)
	if t.Version() == 0 {
		return domain.Policy{}, fmt.Errorf("load %s: %w", ts, domain.ErrNotFound)
	}
	if r.Version() == 0 {
		return domain.Policy{}, fmt.Errorf("%w: load %s: %w", errResourceNotFound, rs, domain.ErrNotFound)
	}
	if r.TenantID() != tenantID {
		return domain.Policy{}, fmt.Errorf("%w: resource %s: %w", errResourceNotFound, resourceID, domain.ErrNotFound)
	}
	return domain.NewPolicy(t, r), nil
}
