package domain_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/domain"
)

func TestNewTenant(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		in     domain.TenantInput
		fields []string
		check  func(t *testing.T, ev domain.TenantCreated)
	}{
		{name: "without settings takes the defaults",
			in: domain.TenantInput{Name: " Clínica Sorriso ", Domain: " Sorriso.Example.COM "},
			check: func(t *testing.T, ev domain.TenantCreated) {
				require.Equal(t, "Clínica Sorriso", ev.Name)
				require.Equal(t, "sorriso.example.com", ev.Domain)
				require.Equal(t, domain.SettingsInput{}.Resolve(), ev.Settings)
				require.Equal(t, 1, ev.PolicyVersion)
				require.Equal(t, admin.ID, ev.CreatedBy)
				require.Equal(t, t0, ev.CreatedAt)
			}},
		{name: "partial settings fill from the defaults",
			in: domain.TenantInput{Name: "A", Domain: "a.example.com", Branding: domain.Branding{LogoURL: "https://a.example.com/l.png", PrimaryColor: "#0a7d5a"},
				Labels: map[string]string{"resource": "Dentista"}, Settings: &domain.SettingsInput{Timezone: ptr("America/Sao_Paulo"), BufferAfterMinutes: ptr(10)}},
			check: func(t *testing.T, ev domain.TenantCreated) {
				require.Equal(t, "America/Sao_Paulo", ev.Settings.Timezone)
				require.Equal(t, 10, ev.Settings.BufferAfterMinutes)
				require.Equal(t, 480, ev.Settings.MaxDurationMinutes)
				require.Equal(t, "Dentista", ev.Labels["resource"])
			}},
		{name: "every problem at once",
			in: domain.TenantInput{Name: " ", Domain: "not a domain", Branding: domain.Branding{LogoURL: "ftp://x", PrimaryColor: "green"},
				Labels: map[string]string{"": "x", "long": strings.Repeat("y", 201)}, Settings: &domain.SettingsInput{Timezone: ptr("Nowhere/City"), MinNoticeMinutes: ptr(-5)}},
			fields: []string{"name", "domain", "branding.logo_url", "branding.primary_color", "labels", "labels.long", "settings.timezone", "settings.min_notice_minutes"}},
		{name: "missing domain", in: domain.TenantInput{Name: "A"}, fields: []string{"domain"}},
		{name: "domain label with a leading hyphen", in: domain.TenantInput{Name: "A", Domain: "-a.example.com"}, fields: []string{"domain"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tenant, err := domain.NewTenant(tenantID, tt.in, admin, t0)
			if tt.fields != nil {
				requireErrorIs(t, domain.ErrValidationFailed, err)
				require.ElementsMatch(t, tt.fields, fieldsOf(t, err))
				return
			}
			require.NoError(t, err)
			changes := tenant.Changes()
			require.Len(t, changes, 1)
			ev, ok := changes[0].(domain.TenantCreated)
			require.True(t, ok)
			require.Equal(t, tenantID, ev.TenantID)
			tt.check(t, ev)
			require.Equal(t, int64(1), tenant.Version())
		})
	}
}

func fieldsOf(tb testing.TB, err error) []string {
	tb.Helper()
	var verr *domain.ValidationError
	require.ErrorAs(tb, err, &verr)
	var out []string
	for _, fe := range verr.Errors {
		out = append(out, fe.Field)
	}
	return out
}

func TestTenantCommands(t *testing.T) {
	t.Parallel()
	createdEv := domain.TenantCreated{TenantID: tenantID, Name: "Clinic", Domain: "clinic.example.com", Settings: domain.DefaultSettings(),
		PolicyVersion: 1, CreatedBy: admin.ID, CreatedAt: t0}
	later := t0.Add(time.Hour)
	lisbon := domain.SettingsInput{Timezone: ptr("Europe/Lisbon")}.Resolve()
	settingsChanged := domain.TenantSettingsChanged{TenantID: tenantID, Settings: lisbon, PolicyVersion: 2, Actor: manager.ID, At: later}
	tests := []struct {
		name   string
		given  []domain.Event
		when   func(tn *domain.Tenant) error
		then   []domain.Event
		err    error
		fields []string
	}{
		{name: "change settings bumps the policy version", given: []domain.Event{createdEv},
			when: func(tn *domain.Tenant) error { return tn.ChangeSettings(lisbon, manager, later) },
			then: []domain.Event{settingsChanged}},
		{name: "each change bumps again", given: []domain.Event{createdEv, settingsChanged},
			when: func(tn *domain.Tenant) error { return tn.ChangeSettings(domain.DefaultSettings(), manager, later) },
			then: []domain.Event{domain.TenantSettingsChanged{TenantID: tenantID, Settings: domain.DefaultSettings(), PolicyVersion: 3, Actor: manager.ID, At: later}}},
		{name: "same settings again records nothing", given: []domain.Event{createdEv, settingsChanged},
			when: func(tn *domain.Tenant) error { return tn.ChangeSettings(lisbon, manager, later) }},
		{name: "invalid settings", given: []domain.Event{createdEv},
			when: func(tn *domain.Tenant) error {
				s := domain.DefaultSettings()
				s.Timezone, s.MinDurationMinutes, s.MaxDurationMinutes = "Bad/Zone", 60, 30
				return tn.ChangeSettings(s, manager, later)
			},
			err: domain.ErrValidationFailed, fields: []string{"timezone", "max_duration_minutes"}},
		{name: "update name and branding", given: []domain.Event{createdEv},
			when: func(tn *domain.Tenant) error {
				return tn.Update(domain.TenantPatch{Name: ptr("New name"), Branding: &domain.Branding{PrimaryColor: "#abc"}}, admin, later)
			},
			then: []domain.Event{domain.TenantUpdated{TenantID: tenantID, Name: "New name", Branding: domain.Branding{PrimaryColor: "#abc"}, Actor: admin.ID, At: later}}},
		{name: "update labels", given: []domain.Event{createdEv},
			when: func(tn *domain.Tenant) error {
				return tn.Update(domain.TenantPatch{Labels: &map[string]string{"client": "Paciente"}}, admin, later)
			},
			then: []domain.Event{domain.TenantUpdated{TenantID: tenantID, Name: "Clinic", Labels: map[string]string{"client": "Paciente"}, Actor: admin.ID, At: later}}},
		{name: "empty patch records nothing", given: []domain.Event{createdEv},
			when: func(tn *domain.Tenant) error { return tn.Update(domain.TenantPatch{Name: ptr("Clinic")}, admin, later) }},
		{name: "invalid patch", given: []domain.Event{createdEv},
			when: func(tn *domain.Tenant) error {
				return tn.Update(domain.TenantPatch{Name: ptr(""), Branding: &domain.Branding{FaviconURL: "nope"}}, admin, later)
			},
			err: domain.ErrValidationFailed, fields: []string{"name", "branding.favicon_url"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tn := &domain.Tenant{}
			require.NoError(t, tn.Replay(tt.given...))
			err := tt.when(tn)
			if tt.err != nil {
				requireErrorIs(t, tt.err, err)
				require.ElementsMatch(t, tt.fields, fieldsOf(t, err))
				require.Empty(t, tn.Changes())
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.then, nilIfEmpty(tn.Changes()))
		})
	}
}

func TestTenantView(t *testing.T) {
	t.Parallel()
	tn := MustTenant(t, domain.SettingsInput{Timezone: ptr("America/New_York")})
	require.NoError(t, tn.ChangeSettings(domain.SettingsInput{Timezone: ptr("Europe/Lisbon")}.Resolve(), manager, t0.Add(time.Minute)))
	v := tn.View()
	require.Equal(t, tenantID, v.ID)
	require.Equal(t, "clinic.example.com", v.Domain)
	require.Equal(t, 2, v.PolicyVersion)
	require.Equal(t, int64(2), v.Version)
	require.Equal(t, "Europe/Lisbon", v.Settings.Timezone)
	require.Equal(t, "Europe/Lisbon", tn.Location().String())
	require.Equal(t, admin.ID, v.CreatedBy)
	require.Equal(t, manager.ID, v.UpdatedBy)
	require.Equal(t, t0.Add(time.Minute), v.UpdatedAt)
	require.Equal(t, map[string]string{}, v.Labels)

	// Settings() hands out a copy.
	s := tn.Settings()
	s.BusinessHours["mon"][0].Start = "00:00"
	require.Equal(t, "09:00", tn.Settings().BusinessHours["mon"][0].Start)

	require.Error(t, (&domain.Tenant{}).Replay(domain.TenantUpdated{}), "an update before creation")
	require.Error(t, (&domain.Tenant{}).Replay(domain.BookingCreated{}), "a foreign event")
}
