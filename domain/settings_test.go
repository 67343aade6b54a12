package domain_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/domain"
)

func TestDefaultSettings(t *testing.T) {
	t.Parallel()
	s := domain.DefaultSettings()
	require.NoError(t, s.Validate())
	require.Equal(t, "UTC", s.Timezone)
	require.Equal(t, []domain.TimeRange{rng("09:00", "17:00")}, s.BusinessHours["mon"])
	require.Equal(t, []domain.TimeRange{rng("09:00", "17:00")}, s.BusinessHours["fri"])
	require.Empty(t, s.BusinessHours["sat"])
	require.Empty(t, s.BusinessHours["sun"])
	require.Equal(t, 15, s.SlotGranularityMinutes)
	require.Equal(t, 15, s.MinDurationMinutes)
	require.Equal(t, 480, s.MaxDurationMinutes)
	require.Equal(t, 365, s.MaxAdvanceDays)
	require.Zero(t, s.MinNoticeMinutes)
	require.Zero(t, s.CancellationDeadlineMinutes)
	require.Zero(t, s.MaxBookingsPerClientPerDay)
	require.False(t, s.RequiresApproval)
}

func TestSettingsInputResolve(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		input string
		check func(t *testing.T, s domain.Settings)
	}{
		{"empty document is the defaults", `{}`, func(t *testing.T, s domain.Settings) {
			require.Equal(t, domain.SettingsInput{}.Resolve(), s)
			require.Equal(t, domain.DefaultSettings().BusinessHours, s.BusinessHours)
		}},
		{"given fields replace, others default", `{"timezone":"Europe/Lisbon","min_notice_minutes":60}`, func(t *testing.T, s domain.Settings) {
			require.Equal(t, "Europe/Lisbon", s.Timezone)
			require.Equal(t, 60, s.MinNoticeMinutes)
			require.Equal(t, 15, s.SlotGranularityMinutes)
		}},
		{"explicit zero is kept, not defaulted", `{"max_advance_days":0,"buffer_after_minutes":0}`, func(t *testing.T, s domain.Settings) {
			require.Zero(t, s.MaxAdvanceDays)
		}},
		{"business hours replace the default week whole", `{"business_hours":{"sat":[{"start":"10:00","end":"12:00"}]}}`, func(t *testing.T, s domain.Settings) {
			require.Equal(t, domain.WeeklyHours{"sat": {rng("10:00", "12:00")}}, s.BusinessHours)
		}},
		{"empty weekdays are dropped (closed either way)", `{"business_hours":{"mon":[{"start":"10:00","end":"12:00"}],"sun":[]}}`, func(t *testing.T, s domain.Settings) {
			require.Equal(t, domain.WeeklyHours{"mon": {rng("10:00", "12:00")}}, s.BusinessHours)
		}},
		{"empty business hours close the week", `{"business_hours":{}}`, func(t *testing.T, s domain.Settings) {
			require.Empty(t, s.BusinessHours)
			require.NotNil(t, s.BusinessHours)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var in domain.SettingsInput
			require.NoError(t, json.Unmarshal([]byte(tt.input), &in))
			s := in.Resolve()
			require.NoError(t, s.Validate())
			tt.check(t, s)
		})
	}
}

func TestSettingsValidateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	s := domain.Settings{
		Timezone: "Mars/Olympus_Mons",
		BusinessHours: domain.WeeklyHours{
			"mon": {rng("9:00", "12:00"), rng("13:00", "25:00")},
			"tue": {rng("12:00", "12:00")},
			"wed": {rng("09:00", "12:00"), rng("11:00", "13:00")},
			"thu": {rng("09:00", "12:00"), rng("12:00", "13:00")}, // touching is fine
			"fri": {rng("00:00", "24:00")},                        // whole day is fine
			"sat": {rng("24:00", "24:00")},
			"xyz": {rng("09:00", "10:00")},
		},
		Closures:                    []domain.Closure{{Date: "2026-02-30"}, {Date: "2026-12-25"}, {Date: "2026-12-25"}},
		SlotGranularityMinutes:      0,
		MinDurationMinutes:          60,
		MaxDurationMinutes:          30,
		BufferBeforeMinutes:         -1,
		BufferAfterMinutes:          -5,
		MinNoticeMinutes:            -1,
		MaxAdvanceDays:              -1,
		CancellationDeadlineMinutes: -1,
		MaxBookingsPerClientPerDay:  -1,
		CustomFields: []domain.CustomField{
			{Entity: "order", Key: "Bad Key", Label: "", Type: "color"},
			{Entity: domain.EntityBooking, Key: "reason", Label: "Reason", Type: domain.FieldSelect},
			{Entity: domain.EntityBooking, Key: "reason", Label: "Again", Type: domain.FieldText, Options: []string{"x"}},
			{Entity: domain.EntityUser, Key: "reason", Label: "Same key, other entity", Type: domain.FieldText},
			{Entity: domain.EntityUser, Key: "size", Label: "Size", Type: domain.FieldSelect, Options: []string{"s", "s", ""}},
		},
	}
	err := s.Validate()
	requireErrorIs(t, domain.ErrValidationFailed, err)
	var verr *domain.ValidationError
	require.ErrorAs(t, err, &verr)
	var fields []string
	for _, fe := range verr.Errors {
		fields = append(fields, fe.Field+" "+fe.Code)
	}
	require.ElementsMatch(t, []string{
		"business_hours.mon[0].start invalid",
		"business_hours.mon[1].end invalid",
		"business_hours.sat[0].start invalid",
		"business_hours.tue[0].end invalid",
		"business_hours.wed[1] overlap",
		"business_hours.xyz invalid",
		"buffer_after_minutes out_of_range",
		"buffer_before_minutes out_of_range",
		"cancellation_deadline_minutes out_of_range",
		"closures[0].date invalid",
		"closures[2].date duplicate",
		"custom_fields[0].entity invalid",
		"custom_fields[0].key invalid",
		"custom_fields[0].label required",
		"custom_fields[0].type invalid",
		"custom_fields[1].options required",
		"custom_fields[2].key duplicate",
		"custom_fields[2].options invalid",
		"custom_fields[4].options[1] duplicate",
		"custom_fields[4].options[2] required",
		"max_advance_days out_of_range",
		"max_bookings_per_client_per_day out_of_range",
		"max_duration_minutes out_of_range",
		"min_notice_minutes out_of_range",
		"slot_granularity_minutes out_of_range",
		"timezone invalid",
	}, fields)
}

func TestSettingsValidateLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		patch func(s *domain.Settings)
		field string
	}{
		{"granularity above a day", func(s *domain.Settings) { s.SlotGranularityMinutes = 1441 }, "slot_granularity_minutes"},
		{"min duration zero", func(s *domain.Settings) { s.MinDurationMinutes = 0 }, "min_duration_minutes"},
		{"max duration above a week", func(s *domain.Settings) { s.MaxDurationMinutes = 7*24*60 + 1 }, "max_duration_minutes"},
		{"Local is not an IANA zone", func(s *domain.Settings) { s.Timezone = "Local" }, "timezone"},
		{"empty zone", func(s *domain.Settings) { s.Timezone = "" }, "timezone"},
		{"bad minutes", func(s *domain.Settings) { s.BusinessHours = domain.WeeklyHours{"mon": {rng("09:60", "10:00")}} }, "business_hours.mon[0].start"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := domain.DefaultSettings()
			tt.patch(&s)
			var verr *domain.ValidationError
			require.ErrorAs(t, s.Validate(), &verr)
			require.True(t, verr.Has(tt.field), "%v", verr.Errors)
			require.Len(t, verr.Errors, 1)
		})
	}
}

func TestBusinessHoursAcceptOnlyTwoDigitClockTimes(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		start, end string
		ok         bool
	}{
		{"08:00", "12:30", true},
		{"00:00", "24:00", true},
		{"+8:00", "12:00", false},
		{"-0:00", "12:00", false},
		{"08:00", "1+:00", false},
		{"08:00", "12:+5", false},
		{"08:00", "12:-5", false},
		{" 8:00", "12:00", false},
		{"08:00", "12:60", false},
		{"24:00", "24:00", false},
		{"08:00", "24:01", false},
		{"08h00", "12:00", false},
		{"８:00", "12:00", false},
	} {
		s := domain.DefaultSettings()
		s.BusinessHours = domain.WeeklyHours{"mon": {rng(tt.start, tt.end)}}
		err := s.Validate()
		if tt.ok {
			require.NoError(t, err, "%s-%s", tt.start, tt.end)
			continue
		}
		requireErrorIs(t, domain.ErrValidationFailed, err)
		var verr *domain.ValidationError
		require.ErrorAs(t, err, &verr)
		require.Len(t, verr.Errors, 1, "%s-%s: %v", tt.start, tt.end, err)
		require.Contains(t, verr.Errors[0].Field, "business_hours.mon[0]", "%s-%s", tt.start, tt.end)
	}
}
