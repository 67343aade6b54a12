package domain

import (
	"strings"
	"time"

	"github.com/google/uuid"
)

// Stream ids. They are stored with every event and name the consistency
// boundary of each aggregate: changing a format orphans existing streams.
// The part before the first '-' is the event store's category.

// TenantStream returns "tenant-<id>".
func TenantStream(id uuid.UUID) string { return "tenant-" + id.String() }

// ResourceStream returns "resource-<id>".
func ResourceStream(id uuid.UUID) string { return "resource-" + id.String() }

// ResourceCategoryStream returns "resource-category-<id>". Its event-store
// category is "resource", so categories travel with resource events.
func ResourceCategoryStream(id uuid.UUID) string { return "resource-category-" + id.String() }

// UserStream returns "user-<id>".
func UserStream(id uuid.UUID) string { return "user-" + id.String() }

// BookingStream returns "booking-<id>".
func BookingStream(id uuid.UUID) string { return "booking-" + id.String() }

// HoldStream returns "hold-<id>".
func HoldStream(id uuid.UUID) string { return "hold-" + id.String() }

// SeriesStream returns "series-<id>", the stream of a recurring series.
func SeriesStream(id uuid.UUID) string { return "series-" + id.String() }

// WaitlistStream returns "waitlist-<resource>": the resource's line, whose
// stream order is the order of the line, so two promotions of one entry
// (or two entries for one freed slot) serialise on it.
func WaitlistStream(resourceID uuid.UUID) string { return "waitlist-" + resourceID.String() }

// WaitlistEntryGuardStream returns "guard-waitlist-<entry>", a guard whose
// owner is the resource of the entry: it finds an entry's line from the
// entry id alone.
func WaitlistEntryGuardStream(entryID uuid.UUID) string { return "guard-waitlist-" + entryID.String() }

// ScheduleStream returns the bucket "schedule-<resource>-<YYYYMMDD>" of the
// UTC day of t.
func ScheduleStream(resourceID uuid.UUID, t time.Time) string {
	return "schedule-" + resourceID.String() + "-" + t.UTC().Format("20060102")
}

// ScheduleStreams returns one bucket stream per UTC day that the occupied
// interval [occStart, occEnd) touches, oldest first. Two reservations that
// overlap share at least one instant and therefore one bucket, so appending
// to every bucket with its expected version serialises every pair of
// bookings that could conflict. An empty interval yields the bucket of
// occStart.
func ScheduleStreams(resourceID uuid.UUID, occStart, occEnd time.Time) []string {
	first := occStart.UTC().Truncate(24 * time.Hour)
	last := first
	if occEnd.After(occStart) {
		last = occEnd.Add(-time.Nanosecond).UTC().Truncate(24 * time.Hour)
	}
	var out []string
	for d := first; !d.After(last); d = d.Add(24 * time.Hour) {
		out = append(out, ScheduleStream(resourceID, d))
	}
	return out
}

// DomainGuardStream returns "guard-domain-<domain>" for the lower-cased,
// trimmed domain, the stream whose single claim makes a white-label domain
// unique across tenants.
func DomainGuardStream(domain string) string {
	return "guard-domain-" + strings.ToLower(strings.TrimSpace(domain))
}

// EmailGuardStream returns "guard-email-<tenant>-<email>" for the
// lower-cased, trimmed email, the stream that makes an email unique within
// a tenant.
func EmailGuardStream(tenantID uuid.UUID, email string) string {
	return "guard-email-" + tenantID.String() + "-" + strings.ToLower(strings.TrimSpace(email))
}

// ClientDayStream returns "clientday-<tenant>-<client>-<YYYYMMDD>". localDate
// may be given as YYYY-MM-DD (as LocalDate returns it) or YYYYMMDD; it must
// be the booking's local start date in the policy's zone.
func ClientDayStream(tenantID, clientID uuid.UUID, localDate string) string {
	return "clientday-" + tenantID.String() + "-" + clientID.String() + "-" + strings.ReplaceAll(localDate, "-", "")
}
