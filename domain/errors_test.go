package domain_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/domain"
)

func TestErrorCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		code string
	}{
		{&domain.ValidationError{Errors: []domain.FieldError{{Field: "x", Code: "required", Message: "is required"}}}, "validation_failed"},
		{&domain.ConflictError{}, "booking_conflict"},
		{domain.ErrOutsideBusinessHours, "outside_business_hours"},
		{domain.ErrOutsideResourceAvailability, "outside_resource_availability"},
		{domain.ErrTooShortNotice, "too_short_notice"},
		{domain.ErrTooFarInAdvance, "too_far_in_advance"},
		{domain.ErrDurationOutOfRange, "duration_out_of_range"},
		{domain.ErrOffSlotGrid, "off_slot_grid"},
		{domain.ErrCapacityExceeded, "capacity_exceeded"},
		{&domain.TransitionError{From: domain.StatusCancelled, To: domain.StatusConfirmed}, "invalid_transition"},
		{domain.ErrInvalidTransition, "invalid_transition"},
		{domain.ErrCancellationDeadlinePassed, "cancellation_deadline_passed"},
		{domain.ErrNotFound, "not_found"},
		{domain.ErrForbidden, "forbidden"},
		{domain.ErrResourceInactive, "resource_inactive"},
		{domain.ErrClientDailyLimit, "client_daily_limit_reached"},
		{domain.ErrDomainTaken, "domain_taken"},
		{domain.ErrEmailTaken, "email_taken"},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			t.Parallel()
			wrapped := fmt.Errorf("command: %w", tt.err)
			var coded domain.Coded
			require.ErrorAs(t, wrapped, &coded)
			require.Equal(t, tt.code, coded.Code())
			require.NotEmpty(t, tt.err.Error())
		})
	}
}

func TestRuleErrorMatchesSentinelByCode(t *testing.T) {
	t.Parallel()
	detailed := fmt.Errorf("book: %w", domain.NewRuleError(domain.CodeTooShortNotice, "start is in %d minutes", 5))
	require.ErrorIs(t, detailed, domain.ErrTooShortNotice)
	require.NotErrorIs(t, detailed, domain.ErrTooFarInAdvance)
	require.Equal(t, "book: start is in 5 minutes", detailed.Error())

	notFound := domain.NewRuleError(domain.CodeNotFound, "booking %s not found", bookingID)
	require.ErrorIs(t, notFound, domain.ErrNotFound)

	te := fmt.Errorf("x: %w", &domain.TransitionError{From: domain.StatusPending, To: domain.StatusCompleted})
	require.ErrorIs(t, te, domain.ErrInvalidTransition)
	require.Contains(t, te.Error(), "from pending to completed")

	require.ErrorIs(t, &domain.ConflictError{}, domain.ErrBookingConflict)
	require.ErrorIs(t, &domain.ValidationError{}, domain.ErrValidationFailed)
}

func TestValidationErrorAccumulates(t *testing.T) {
	t.Parallel()
	var v domain.ValidationError
	require.NoError(t, v.Err(), "an empty accumulator is no error (not a typed nil)")
	v.Add("name", domain.FieldRequired, "is required")
	v.Addf("seats", domain.FieldOutOfRange, "must be at least %d", 1)
	var inner domain.ValidationError
	inner.Add("start", domain.FieldInvalid, "bad")
	require.True(t, v.Merge("settings.business_hours", inner.Err()))
	require.False(t, v.Merge("", errors.New("other")))
	require.False(t, v.Merge("", nil))

	err := v.Err()
	var got *domain.ValidationError
	require.ErrorAs(t, err, &got)
	require.Equal(t, []domain.FieldError{
		{Field: "name", Code: "required", Message: "is required"},
		{Field: "seats", Code: "out_of_range", Message: "must be at least 1"},
		{Field: "settings.business_hours.start", Code: "invalid", Message: "bad"},
	}, got.Errors)
	require.True(t, got.Has("seats"))
	require.Contains(t, err.Error(), "name: is required")
}
