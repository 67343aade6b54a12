// Package domain is the heart of the booking engine: the aggregates (tenant,
// resource category, resource, user, booking, and the schedule buckets,
// uniqueness guards and per-client day counters that enforce cross-aggregate
// rules), their events, the booking policy and the errors with their
// contract codes.
//
// The package is pure: it imports only the standard library and uuid, never
// reads the clock (callers pass now) and never performs I/O. Aggregates are
// rebuilt by replaying their stream (zero value plus Replay) and change only
// by recording past-tense events through one apply method, so the state a
// command sees is exactly the state any replay of the log will see.
//
// Aggregates are not safe for concurrent use; each command loads its own
// copy and the event store's expected version rejects the slower writer.
package domain

import "slices"

// Role is what a user or token may do. The string values are the contract's
// JWT role claims.
type Role string

// Roles. RolePlatformAdmin exists for tokens only; no tenant user has it.
const (
	RolePlatformAdmin Role = "platform_admin"
	RoleAdmin         Role = "admin"
	RoleManager       Role = "manager"
	RoleProfessional  Role = "professional"
	RoleClient        Role = "client"
)

// userRoles are the roles a tenant user may hold.
var userRoles = []Role{RoleAdmin, RoleManager, RoleProfessional, RoleClient}

// Valid reports whether r is one of the roles a tenant user may hold
// (platform_admin is not).
func (r Role) Valid() bool { return slices.Contains(userRoles, r) }

// Actor is who issues a command: the token's subject and role. ID is a
// string because a platform admin or a system process need not be a user of
// the tenant.
type Actor struct {
	ID   string
	Role Role
}

// CanOverride reports whether the actor may override client-facing limits
// such as the cancellation deadline: tenant admins, managers and platform
// admins may; professionals and clients may not.
func (a Actor) CanOverride() bool {
	return a.Role == RoleAdmin || a.Role == RoleManager || a.Role == RolePlatformAdmin
}

// Status is a booking's lifecycle state. The string values are the
// contract's and are stored in events: never rename one.
type Status string

// Booking statuses. Pending, confirmed and checked_in hold their slot; the
// others are terminal and free it (completed and no_show lie in the past).
const (
	StatusPending   Status = "pending"
	StatusConfirmed Status = "confirmed"
	StatusRejected  Status = "rejected"
	StatusCancelled Status = "cancelled"
	StatusCheckedIn Status = "checked_in"
	StatusCompleted Status = "completed"
	StatusNoShow    Status = "no_show"
)

// Active reports whether a booking in status s holds its slot.
func (s Status) Active() bool {
	return s == StatusPending || s == StatusConfirmed || s == StatusCheckedIn
}

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	switch s {
	case StatusPending, StatusConfirmed, StatusRejected, StatusCancelled,
		StatusCheckedIn, StatusCompleted, StatusNoShow:
		return true
	}
	return false
}
