package domain_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/domain"
)

func TestStreamIDs(t *testing.T) {
	t.Parallel()
	id := resourceID.String()
	tests := []struct{ got, want string }{
		{domain.TenantStream(tenantID), "tenant-" + tenantID.String()},
		{domain.ResourceStream(resourceID), "resource-" + id},
		{domain.ResourceCategoryStream(categoryID), "resource-category-" + categoryID.String()},
		{domain.UserStream(clientID), "user-" + clientID.String()},
		{domain.BookingStream(bookingID), "booking-" + bookingID.String()},
		{domain.DomainGuardStream(" Clinic.Example.COM "), "guard-domain-clinic.example.com"},
		{domain.EmailGuardStream(tenantID, "Ana@Example.com"), "guard-email-" + tenantID.String() + "-ana@example.com"},
		{domain.ClientDayStream(tenantID, clientID, "2026-06-01"), "clientday-" + tenantID.String() + "-" + clientID.String() + "-20260601"},
		{domain.ClientDayStream(tenantID, clientID, "20260601"), "clientday-" + tenantID.String() + "-" + clientID.String() + "-20260601"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, tt.got)
	}
}

func TestScheduleStreams(t *testing.T) {
	t.Parallel()
	b := func(day string) string { return "schedule-" + resourceID.String() + "-" + day }
	tests := []struct {
		name       string
		start, end string
		want       []string
	}{
		{"inside one day", "2026-06-01T09:00:00Z", "2026-06-01T10:00:00Z", []string{b("20260601")}},
		{"ends at midnight", "2026-06-01T23:00:00Z", "2026-06-02T00:00:00Z", []string{b("20260601")}},
		{"crosses midnight", "2026-06-01T23:00:00Z", "2026-06-02T00:30:00Z", []string{b("20260601"), b("20260602")}},
		{"UTC day, not local day", "2026-06-01T22:00:00-03:00", "2026-06-01T23:00:00-03:00", []string{b("20260602")}},
		{"three days", "2026-06-01T12:00:00Z", "2026-06-03T12:00:00Z", []string{b("20260601"), b("20260602"), b("20260603")}},
		{"empty interval", "2026-06-01T12:00:00Z", "2026-06-01T12:00:00Z", []string{b("20260601")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, domain.ScheduleStreams(resourceID, mustTime(t, tt.start), mustTime(t, tt.end)))
		})
	}
}

func TestLocalDate(t *testing.T) {
	t.Parallel()
	instant := mustTime(t, "2026-06-02T01:30:00Z")
	require.Equal(t, "2026-06-02", domain.LocalDate(instant, at(t, "UTC", 2026, 1, 1, 0, 0).Location()))
	require.Equal(t, "2026-06-01", domain.LocalDate(instant, at(t, "America/Sao_Paulo", 2026, 1, 1, 0, 0).Location()))
}
