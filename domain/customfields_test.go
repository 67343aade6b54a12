package domain_test

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/domain"
)

func TestValidateAttributes(t *testing.T) {
	t.Parallel()
	fields := []domain.CustomField{
		{Entity: domain.EntityBooking, Key: "note", Label: "Note", Type: domain.FieldText},
		{Entity: domain.EntityBooking, Key: "age", Label: "Age", Type: domain.FieldNumber, Required: true},
		{Entity: domain.EntityBooking, Key: "first", Label: "First visit", Type: domain.FieldBoolean},
		{Entity: domain.EntityBooking, Key: "since", Label: "Since", Type: domain.FieldDate},
		{Entity: domain.EntityBooking, Key: "reason", Label: "Reason", Type: domain.FieldSelect, Options: []string{"routine", "urgent"}},
		{Entity: domain.EntityUser, Key: "vip", Label: "VIP", Type: domain.FieldBoolean, Required: true},
	}
	tests := []struct {
		name  string
		attrs string // JSON, as the API receives it
		want  map[string]string
	}{
		{"all valid", `{"note":"hi","age":42,"first":true,"since":"2020-02-29","reason":"urgent"}`, nil},
		{"only the required field", `{"age":0}`, nil},
		{"unknown keys are free attributes", `{"age":1,"color":"blue","nested":{"a":[1,2]}}`, nil},
		{"null optional values are absent", `{"age":1,"note":null,"reason":null}`, nil},
		{"missing required", `{}`, map[string]string{"attributes.age": "required"}},
		{"null required", `{"age":null}`, map[string]string{"attributes.age": "required"}},
		{"every mismatch at once", `{"note":5,"age":"42","first":"yes","since":20200101,"reason":"later"}`, map[string]string{
			"attributes.note": "type_mismatch", "attributes.age": "type_mismatch", "attributes.first": "type_mismatch",
			"attributes.since": "type_mismatch", "attributes.reason": "unknown_option"}},
		{"bad date", `{"age":1,"since":"2021-02-29"}`, map[string]string{"attributes.since": "invalid"}},
		{"select needs a string", `{"age":1,"reason":1}`, map[string]string{"attributes.reason": "type_mismatch"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var attrs map[string]any
			require.NoError(t, json.Unmarshal([]byte(tt.attrs), &attrs))
			err := domain.ValidateAttributes(domain.EntityBooking, attrs, fields)
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			requireErrorIs(t, domain.ErrValidationFailed, err)
			var verr *domain.ValidationError
			require.ErrorAs(t, err, &verr)
			got := map[string]string{}
			for _, fe := range verr.Errors {
				got[fe.Field] = fe.Code
			}
			require.Equal(t, tt.want, got)
		})
	}
}

func TestValidateAttributesGoValues(t *testing.T) {
	t.Parallel()
	fields := []domain.CustomField{{Entity: domain.EntityResource, Key: "n", Label: "N", Type: domain.FieldNumber}}
	for _, v := range []any{1, int64(2), 3.5, float32(1), json.Number("12")} {
		require.NoError(t, domain.ValidateAttributes(domain.EntityResource, map[string]any{"n": v}, fields), "%T", v)
	}
	for _, v := range []any{math.NaN(), math.Inf(1), json.Number("x"), []any{1}} {
		require.Error(t, domain.ValidateAttributes(domain.EntityResource, map[string]any{"n": v}, fields), "%T %v", v, v)
	}
	require.NoError(t, domain.ValidateAttributes(domain.EntityResource, nil, fields))
}

func TestSettingsFieldsFor(t *testing.T) {
	t.Parallel()
	s := domain.SettingsInput{CustomFields: &[]domain.CustomField{
		{Entity: domain.EntityBooking, Key: "a", Label: "A", Type: domain.FieldText},
		{Entity: domain.EntityUser, Key: "b", Label: "B", Type: domain.FieldText},
		{Entity: domain.EntityBooking, Key: "c", Label: "C", Type: domain.FieldText},
	}}.Resolve()
	require.NoError(t, s.Validate())
	got := s.FieldsFor(domain.EntityBooking)
	require.Len(t, got, 2)
	require.Equal(t, "a", got[0].Key)
	require.Equal(t, "c", got[1].Key)
	require.Empty(t, s.FieldsFor(domain.EntityResource))
}
