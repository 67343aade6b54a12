package domain_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/domain"
)

// sampleEvents holds one populated value of every event type.
func sampleEvents() []domain.Event {
	start, end := utc(2026, 6, 2, 12, 0), utc(2026, 6, 2, 13, 0)
	cat := categoryID
	settings := domain.SettingsInput{
		Timezone:     ptr("America/Sao_Paulo"),
		Closures:     &[]domain.Closure{{Date: "2026-12-25", Reason: "Natal"}},
		CustomFields: &[]domain.CustomField{{Entity: domain.EntityBooking, Key: "reason", Label: "Motivo", Type: domain.FieldSelect, Required: true, Options: []string{"rotina", "urgência"}}},
	}.Resolve()
	attrs := map[string]any{"floor": 2.0, "tags": []any{"a", "b"}, "ok": true, "nested": map[string]any{"x": "y"}}
	return []domain.Event{
		domain.TenantCreated{TenantID: tenantID, Name: "Clínica", Domain: "a.example.com",
			Branding: domain.Branding{LogoURL: "https://a.example.com/l.png", PrimaryColor: "#0a7d5a"},
			Labels:   map[string]string{"resource": "Dentista"}, Settings: settings, PolicyVersion: 1, CreatedBy: admin.ID, CreatedAt: t0},
		domain.TenantSettingsChanged{TenantID: tenantID, Settings: settings, PolicyVersion: 2, Actor: admin.ID, At: t0},
		domain.TenantUpdated{TenantID: tenantID, Name: "New", Branding: domain.Branding{SecondaryColor: "#fff"}, Labels: map[string]string{"a": "b"}, Actor: admin.ID, At: t0},
		domain.ResourceCategoryCreated{CategoryID: cat, TenantID: tenantID, Name: "Rooms", Description: "d", CreatedBy: admin.ID, CreatedAt: t0},
		domain.ResourceCreated{ResourceID: resourceID, TenantID: tenantID, CategoryID: &cat, Name: "Sala", Kind: domain.KindSpace, Capacity: 3, Attributes: attrs, Timezone: "Europe/Lisbon", CreatedBy: admin.ID, CreatedAt: t0},
		domain.ResourceUpdated{ResourceID: resourceID, Name: "Sala 2", Kind: domain.KindEquipment, Capacity: 1, Attributes: attrs, Actor: admin.ID, At: t0},
		domain.ResourceAvailabilityChanged{ResourceID: resourceID, Availability: domain.Availability{
			Weekly:    domain.WeeklyHours{"mon": {rng("09:00", "17:00")}},
			Overrides: []domain.Override{{Date: "2026-12-24", Intervals: []domain.TimeRange{}}}}, Actor: admin.ID, At: t0},
		domain.ResourceDeactivated{ResourceID: resourceID, Actor: admin.ID, At: t0},
		domain.UserCreated{UserID: clientID, TenantID: tenantID, Email: "ana@example.com", Name: "Ana", Role: domain.RoleProfessional, Attributes: attrs, ResourceID: &cat, CreatedBy: admin.ID, CreatedAt: t0},
		domain.UserUpdated{UserID: clientID, Email: "ana@example.com", Name: "Ana B", Role: domain.RoleClient, Attributes: map[string]any{}, Actor: admin.ID, At: t0},
		domain.BookingCreated{BookingID: bookingID, TenantID: tenantID, ResourceID: resourceID, ClientID: clientID, Start: start, End: end, Seats: 2,
			Title: "Limpeza", Notes: "n", Attributes: attrs, Status: domain.StatusPending, PolicyVersion: 3, BufferBeforeMinutes: 5, BufferAfterMinutes: 10,
			Timezone: "America/Sao_Paulo", CreatedBy: client.ID, CreatedAt: t0},
		domain.BookingRescheduled{BookingID: bookingID, Start: end, End: end.Add(60 * 60e9), PreviousStart: start, PreviousEnd: end, PolicyVersion: 4,
			BufferAfterMinutes: 10, Timezone: "UTC", Reason: "moved", Actor: client.ID, ActorRole: domain.RoleClient, At: t0},
		domain.BookingStatusChanged{BookingID: bookingID, From: domain.StatusPending, To: domain.StatusConfirmed, Reason: "ok", Actor: manager.ID, ActorRole: domain.RoleManager, At: t0},
		domain.BookingCancelled{BookingID: bookingID, From: domain.StatusConfirmed, Reason: "sick", Actor: manager.ID, ActorRole: domain.RoleManager, Late: true, At: t0},
		domain.ScheduleReserved{BookingID: bookingID, ResourceID: resourceID, Start: start, End: end, OccupiedStart: start.Add(-5 * 60e9), OccupiedEnd: end.Add(10 * 60e9), Seats: 2},
		domain.ScheduleReleased{BookingID: bookingID},
		domain.GuardClaimed{OwnerID: tenantID, Value: "a.example.com"},
		domain.GuardReleased{OwnerID: tenantID, Value: "a.example.com"},
		domain.ClientDayCounted{BookingID: bookingID},
		domain.ClientDayReleased{BookingID: bookingID},
		domain.HoldPlaced{HoldID: booking2ID, TenantID: tenantID, ResourceID: resourceID, ClientID: clientID, Start: start, End: end, Seats: 1,
			ExpiresAt: t0.Add(15 * 60e9), PolicyVersion: 2, BufferAfterMinutes: 10, Timezone: "Europe/Lisbon", WaitlistEntryID: ptr(booking3ID),
			PlacedBy: client.ID, PlacedAt: t0},
		domain.HoldReleased{HoldID: booking2ID, Reason: domain.HoldConsumed, BookingID: ptr(bookingID), Actor: client.ID, ActorRole: domain.RoleClient, At: t0},
		domain.HoldExpired{HoldID: booking2ID, ExpiresAt: t0, At: t0},
		domain.WaitlistJoined{EntryID: booking3ID, TenantID: tenantID, ResourceID: resourceID, ClientID: clientID, Start: start, End: end, Seats: 1,
			Timezone: "UTC", JoinedBy: client.ID, JoinedAt: t0},
		domain.WaitlistPromoted{EntryID: booking3ID, ClientID: clientID, Kind: domain.PromotedToHold, HoldID: ptr(booking2ID), At: t0},
		domain.WaitlistLeft{EntryID: booking3ID, Actor: client.ID, ActorRole: domain.RoleClient, At: t0},
		domain.SeriesCreated{SeriesID: categoryID, TenantID: tenantID, ResourceID: resourceID, ClientID: clientID, RRule: "FREQ=WEEKLY;COUNT=3",
			DTStart: "2026-06-02T12:00:00", Timezone: "UTC", DurationMinutes: 60, ExDates: []time.Time{end}, Policy: domain.SeriesSkipConflicts,
			Occurrences: []domain.Occurrence{{BookingID: bookingID, OccurrenceStart: start, Start: start, End: end}},
			Skipped: []domain.OccurrenceFailure{{Start: start, End: end, Code: domain.CodeBookingConflict, Detail: "taken",
				Conflicts: []domain.Conflict{{BookingID: booking2ID, Start: start, End: end}}}},
			ParentSeriesID: ptr(resourceID), CreatedBy: admin.ID, CreatedAt: t0},
		domain.SeriesOccurrencesCancelled{SeriesID: categoryID, Scope: domain.ScopeAll, From: start, BookingIDs: []uuid.UUID{bookingID},
			Reason: "r", Actor: admin.ID, ActorRole: domain.RoleAdmin, At: t0},
		domain.SeriesRescheduled{SeriesID: categoryID, Scope: domain.ScopeAll, RRule: "FREQ=WEEKLY;COUNT=3", DTStart: "2026-06-02T13:00:00",
			DurationMinutes: 30, Occurrences: []domain.Occurrence{{BookingID: bookingID, OccurrenceStart: end, Start: end, End: end.Add(30 * 60e9)}},
			Actor: admin.ID, ActorRole: domain.RoleAdmin, At: t0},
		domain.SeriesSplit{SeriesID: categoryID, NewSeriesID: booking3ID, From: start, RRule: "FREQ=WEEKLY;UNTIL=20260601T115959Z",
			BookingIDs: []uuid.UUID{bookingID}, Actor: admin.ID, ActorRole: domain.RoleAdmin, At: t0},
	}
}

func TestEventRoundTrip(t *testing.T) {
	t.Parallel()
	samples := sampleEvents()
	covered := map[string]bool{}
	for _, e := range samples {
		t.Run(e.EventType(), func(t *testing.T) {
			t.Parallel()
			data, err := domain.MarshalEvent(e)
			require.NoError(t, err)
			var obj map[string]any
			require.NoError(t, json.Unmarshal(data, &obj), "payload is a JSON object")
			got, err := domain.UnmarshalEvent(e.EventType(), data)
			require.NoError(t, err)
			require.Equal(t, e, got)
			require.Equal(t, 1, domain.EventVersion(got))
		})
		covered[e.EventType()] = true
	}
	for _, typ := range domain.EventTypes() {
		require.True(t, covered[typ], "no round-trip sample for %s", typ)
	}
	require.Len(t, domain.EventTypes(), len(samples))
}

func TestEventJSONNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		event domain.Event
		keys  []string
	}{
		{domain.BookingCreated{}, []string{"booking_id", "tenant_id", "resource_id", "client_id", "start", "end", "seats", "title", "notes",
			"attributes", "status", "policy_version", "buffer_before_minutes", "buffer_after_minutes", "timezone", "created_by"}},
		{domain.BookingRescheduled{}, []string{"start", "end", "previous_start", "previous_end", "policy_version", "reason", "actor"}},
		{domain.BookingStatusChanged{}, []string{"from", "to", "reason", "actor"}},
		{domain.BookingCancelled{}, []string{"reason", "actor", "actor_role", "late"}},
		{domain.ScheduleReserved{}, []string{"booking_id", "resource_id", "start", "end", "occupied_start", "occupied_end", "seats"}},
		{domain.ScheduleReleased{}, []string{"booking_id"}},
		{domain.GuardClaimed{}, []string{"owner_id", "value"}},
		{domain.ClientDayCounted{}, []string{"booking_id"}},
		{domain.TenantSettingsChanged{}, []string{"settings", "policy_version"}},
	}
	for _, tt := range tests {
		t.Run(tt.event.EventType(), func(t *testing.T) {
			t.Parallel()
			data, err := domain.MarshalEvent(tt.event)
			require.NoError(t, err)
			var obj map[string]any
			require.NoError(t, json.Unmarshal(data, &obj))
			for _, k := range tt.keys {
				require.Contains(t, obj, k)
			}
		})
	}
}

func TestUnmarshalEventErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, typ, data string
		unknown         bool
	}{
		{"unknown type", "booking.teleported", `{}`, true},
		{"malformed payload", domain.EventBookingCreated, `{"seats": "two"}`, false},
		{"not json", domain.EventGuardClaimed, `nope`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := domain.UnmarshalEvent(tt.typ, []byte(tt.data))
			require.Error(t, err)
			if tt.unknown {
				require.ErrorIs(t, err, domain.ErrUnknownEventType)
			}
		})
	}
	_, err := domain.MarshalEvent(nil)
	require.Error(t, err)
}

func TestUnmarshalEventIgnoresUnknownFields(t *testing.T) {
	t.Parallel()
	e, err := domain.UnmarshalEvent(domain.EventClientDayCounted, []byte(`{"booking_id":"`+bookingID.String()+`","added_later":1}`))
	require.NoError(t, err)
	require.Equal(t, domain.ClientDayCounted{BookingID: bookingID}, e)
}
