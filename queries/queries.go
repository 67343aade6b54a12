// Package queries holds the read side of the engine: one query per use
// case, each a small struct, a handler with a constructor, and the
// read-model interface it needs. Read models are built by package
// projections from the event log; a query never touches the event store
// or an aggregate, and never replays history.
//
// Every query takes a MinPosition: when it is above zero the handler first
// waits, at most MaxWait, until its read models have applied that position
// (the X-Position a command returned), so a client reads its own writes.
// When the wait times out the handler returns ErrTimeout (problem code
// "timeout", 504).
package queries

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/bookingengine/booking/domain"
)

// Viewer is who asks: the tenant the request names and the caller's id and
// role (from the token). Visibility rules depend on it.
type Viewer struct {
	TenantID uuid.UUID
	UserID   string
	Role     domain.Role
}

// isStaff reports whether the viewer sees every booking of the tenant.
func (v Viewer) isStaff() bool {
	return v.Role == domain.RoleAdmin || v.Role == domain.RoleManager || v.Role == domain.RolePlatformAdmin
}

// Waiter waits until the read models a query reads have applied a global
// position (see projections.Waiter for the rule). It returns the context's
// error when the context ends first.
type Waiter interface {
	WaitFor(ctx context.Context, position int64) error
}

// MaxWait is how long a query waits for X-Min-Position before it gives up
// with ErrTimeout.
const MaxWait = 5 * time.Second

// ErrTimeout is returned when the read models did not apply the requested
// minimum position within MaxWait. Its problem code is "timeout" (504).
var ErrTimeout error = timeoutError{}

type timeoutError struct{}

func (timeoutError) Error() string {
	return fmt.Sprintf("the read model did not reach the requested position within %s; retry", MaxWait)
}

// Code returns "timeout".
func (timeoutError) Code() string { return "timeout" }

// waitFor waits for position (nothing to do when it is 0 or w is nil), at
// most MaxWait. The caller's own cancellation is returned as it is.
func waitFor(ctx context.Context, w Waiter, position int64) error {
	if position <= 0 || w == nil {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, MaxWait)
	defer cancel()
	err := w.WaitFor(wctx, position)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("wait for position %d: %w", position, ErrTimeout)
	}
	return fmt.Errorf("wait for position %d: %w", position, err)
}

// Booking is a booking as the read side shows it (GET /bookings/{id} and
// the items of GET /bookings): the same JSON as the command side's
// domain.BookingView. Read models return Start and End in UTC; the
// handlers present them in the booking's zone.
type Booking struct {
	ID                  uuid.UUID      `json:"id"`
	TenantID            uuid.UUID      `json:"tenant_id"`
	ResourceID          uuid.UUID      `json:"resource_id"`
	ClientID            uuid.UUID      `json:"client_id"`
	Start               time.Time      `json:"start"`
	End                 time.Time      `json:"end"`
	Timezone            string         `json:"timezone"`
	Seats               int            `json:"seats"`
	Title               string         `json:"title"`
	Notes               string         `json:"notes"`
	Attributes          map[string]any `json:"attributes"`
	Status              domain.Status  `json:"status"`
	StatusReason        string         `json:"status_reason,omitempty"`
	CancelledLate       bool           `json:"cancelled_late,omitempty"`
	PolicyVersion       int            `json:"policy_version"`
	BufferBeforeMinutes int            `json:"buffer_before_minutes"`
	BufferAfterMinutes  int            `json:"buffer_after_minutes"`
	Version             int64          `json:"version"`
	CreatedAt           time.Time      `json:"created_at"`
	UpdatedAt           time.Time      `json:"updated_at"`
	CreatedBy           string         `json:"created_by"`
	UpdatedBy           string         `json:"updated_by"`
}

// present puts the times in the booking's zone and never shows null
// attributes.
func (b Booking) present() Booking {
	loc := zone(b.Timezone)
	b.Start, b.End = b.Start.In(loc), b.End.In(loc)
	if b.Attributes == nil {
		b.Attributes = map[string]any{}
	}
	return b
}

// UserLinks tells which resource a professional user is linked to.
type UserLinks interface {
	// LinkedResource returns the resource the user is linked to; ok is
	// false for an unknown user or one without a link.
	LinkedResource(ctx context.Context, tenantID, userID uuid.UUID) (resourceID uuid.UUID, ok bool, err error)
}

// visibility returns the rule that limits what v sees of the tenant's
// bookings: staff see all; a client its own; a professional its own and
// those of its linked resource.
func visibility(ctx context.Context, v Viewer, users UserLinks) (Visibility, error) {
	if v.isStaff() {
		return Visibility{All: true}, nil
	}
	if v.Role != domain.RoleClient && v.Role != domain.RoleProfessional {
		return Visibility{}, fmt.Errorf("role %q: %w", v.Role, domain.ErrForbidden)
	}
	uid, err := uuid.Parse(v.UserID)
	if err != nil {
		// A subject that is not a user id owns no booking.
		return Visibility{ClientID: uuid.Nil}, nil
	}
	vis := Visibility{ClientID: uid}
	if v.Role == domain.RoleProfessional && users != nil {
		rid, ok, err := users.LinkedResource(ctx, v.TenantID, uid)
		if err != nil {
			return Visibility{}, err
		}
		if ok {
			vis.ResourceID = rid
		}
	}
	return vis, nil
}

// Visibility limits a listing to what its viewer may see.
type Visibility struct {
	// All admits every booking of the tenant.
	All bool
	// ClientID admits the bookings of this client (uuid.Nil: none).
	ClientID uuid.UUID
	// ResourceID admits the bookings of this resource (uuid.Nil: none).
	ResourceID uuid.UUID
}

// Admits reports whether a booking of that client and resource is visible.
func (v Visibility) Admits(clientID, resourceID uuid.UUID) bool {
	return v.All || (v.ClientID != uuid.Nil && clientID == v.ClientID) ||
		(v.ResourceID != uuid.Nil && resourceID == v.ResourceID)
}

var zones sync.Map // name → *time.Location

// zone loads an IANA zone once per process; an unknown name (which the
// command side never records) falls back to UTC.
func zone(name string) *time.Location {
	if l, ok := zones.Load(name); ok {
		return l.(*time.Location)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		loc = time.UTC
	}
	zones.Store(name, loc)
	return loc
}
