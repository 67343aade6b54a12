package domain_test

import (
	"testing"
	"time"
	_ "time/tzdata" // the DST cases must not depend on the host's zone database

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/domain"
)

var (
	tenantID   = uuid.MustParse("00000000-0000-0000-0000-0000000000a1")
	resourceID = uuid.MustParse("00000000-0000-0000-0000-0000000000b1")
	clientID   = uuid.MustParse("00000000-0000-0000-0000-0000000000c1")
	otherID    = uuid.MustParse("00000000-0000-0000-0000-0000000000c2")
	categoryID = uuid.MustParse("00000000-0000-0000-0000-0000000000f1")
	bookingID  = uuid.MustParse("00000000-0000-0000-0000-0000000000d1")
	booking2ID = uuid.MustParse("00000000-0000-0000-0000-0000000000d2")
	booking3ID = uuid.MustParse("00000000-0000-0000-0000-0000000000d3")

	admin    = domain.Actor{ID: "00000000-0000-0000-0000-0000000000e1", Role: domain.RoleAdmin}
	manager  = domain.Actor{ID: "00000000-0000-0000-0000-0000000000e2", Role: domain.RoleManager}
	pro      = domain.Actor{ID: "00000000-0000-0000-0000-0000000000e3", Role: domain.RoleProfessional}
	client   = domain.Actor{ID: clientID.String(), Role: domain.RoleClient}
	stranger = domain.Actor{ID: otherID.String(), Role: domain.RoleClient}

	// t0 is "now" in most tests: Monday 2026-06-01 08:00 UTC.
	t0 = time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)
)

func ptr[T any](v T) *T { return &v }

// at builds an instant from a wall-clock time in zone name.
func at(tb testing.TB, name string, y int, mo time.Month, d, h, mi int) time.Time {
	tb.Helper()
	loc, err := time.LoadLocation(name)
	require.NoError(tb, err)
	return time.Date(y, mo, d, h, mi, 0, 0, loc)
}

func utc(y int, mo time.Month, d, h, mi int) time.Time {
	return time.Date(y, mo, d, h, mi, 0, 0, time.UTC)
}

// MustTenant creates a tenant with the given settings document.
func MustTenant(tb testing.TB, s domain.SettingsInput) *domain.Tenant {
	tb.Helper()
	t, err := domain.NewTenant(tenantID, domain.TenantInput{Name: "Clinic", Domain: "clinic.example.com", Settings: &s}, admin, t0)
	require.NoError(tb, err)
	t.ClearChanges()
	return t
}

// MustResource creates an active resource with the given capacity, zone and
// availability (zero availability = follows the tenant).
func MustResource(tb testing.TB, capacity int, tz string, a domain.Availability) *domain.Resource {
	tb.Helper()
	r, err := domain.NewResource(resourceID, tenantID, domain.ResourceInput{Name: "Room 1", Kind: domain.KindSpace, Capacity: capacity, Timezone: tz}, nil, admin, t0)
	require.NoError(tb, err)
	require.NoError(tb, r.SetAvailability(a, admin, t0))
	r.ClearChanges()
	return r
}

// MustPolicy is the policy of MustTenant(s) and MustResource(capacity 1,
// tenant zone, no availability).
func MustPolicy(tb testing.TB, s domain.SettingsInput) domain.Policy {
	tb.Helper()
	return domain.NewPolicy(MustTenant(tb, s), MustResource(tb, 1, "", domain.Availability{}))
}

// allWeek opens every weekday with the same ranges.
func allWeek(ranges ...domain.TimeRange) *domain.WeeklyHours {
	w := domain.WeeklyHours{}
	for _, d := range domain.Weekdays {
		w[d] = ranges
	}
	return &w
}

func rng(start, end string) domain.TimeRange { return domain.TimeRange{Start: start, End: end} }

// requireErrorIs checks err against want: nil means no error; a
// *domain.TransitionError is compared by From and To.
func requireErrorIs(tb testing.TB, want, err error) {
	tb.Helper()
	if want == nil {
		require.NoError(tb, err)
		return
	}
	require.Error(tb, err)
	var coded domain.Coded
	require.ErrorAs(tb, err, &coded)
	if wt, ok := want.(*domain.TransitionError); ok {
		require.ErrorIs(tb, err, domain.ErrInvalidTransition)
		var got *domain.TransitionError
		require.ErrorAs(tb, err, &got)
		require.Equal(tb, wt.From, got.From, "from")
		require.Equal(tb, wt.To, got.To, "to")
		return
	}
	require.ErrorIs(tb, err, want)
}

func mustTime(tb testing.TB, s string) time.Time {
	tb.Helper()
	v, err := time.Parse(time.RFC3339, s)
	require.NoError(tb, err)
	return v
}
