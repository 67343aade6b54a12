package domain

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Machine codes of domain errors. They are part of the external contract
// (problem+json "code") and must never be renamed.
const (
	CodeValidationFailed            = "validation_failed"
	CodeBookingConflict             = "booking_conflict"
	CodeOutsideBusinessHours        = "outside_business_hours"
	CodeOutsideResourceAvailability = "outside_resource_availability"
	CodeTooShortNotice              = "too_short_notice"
	CodeTooFarInAdvance             = "too_far_in_advance"
	CodeDurationOutOfRange          = "duration_out_of_range"
	CodeOffSlotGrid                 = "off_slot_grid"
	CodeCapacityExceeded            = "capacity_exceeded"
	CodeInvalidTransition           = "invalid_transition"
	CodeCancellationDeadlinePassed  = "cancellation_deadline_passed"
	CodeNotFound                    = "not_found"
	CodeForbidden                   = "forbidden"
	CodeResourceInactive            = "resource_inactive"
	CodeClientDailyLimitReached     = "client_daily_limit_reached"
	CodeDomainTaken                 = "domain_taken"
	CodeEmailTaken                  = "email_taken"
)

// Field-level codes used in FieldError.Code. They let a client highlight a
// form field without parsing the message.
const (
	FieldRequired      = "required"
	FieldInvalid       = "invalid"
	FieldTypeMismatch  = "type_mismatch"
	FieldOutOfRange    = "out_of_range"
	FieldDuplicate     = "duplicate"
	FieldUnknownOption = "unknown_option"
	FieldOverlap       = "overlap"
	FieldTooLong       = "too_long"
)

// Coded is implemented by every error the domain returns, so the HTTP layer
// can map any of them, however deeply wrapped, to a problem+json code with a
// single errors.As.
type Coded interface {
	error
	Code() string
}

// FieldError names one invalid input field. Field is a JSON path relative to
// the request body ("settings.business_hours.mon[0].end", "attributes.reason").
type FieldError struct {
	Field   string `json:"field"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// ValidationError reports every invalid field of an input at once, so a
// client can fix a form in one round trip instead of one field per request.
// It matches ErrValidationFailed under errors.Is.
//
// The zero value is an empty accumulator: call Add for each problem and
// return Err, which is nil when nothing was added. Not safe for concurrent
// use.
type ValidationError struct {
	Errors []FieldError `json:"errors"`
}

// Add records one problem.
func (v *ValidationError) Add(field, code, message string) {
	v.Errors = append(v.Errors, FieldError{Field: field, Code: code, Message: message})
}

// Addf records one problem with a formatted message.
func (v *ValidationError) Addf(field, code, format string, args ...any) {
	v.Add(field, code, fmt.Sprintf(format, args...))
}

// Merge appends the problems of err when it is a *ValidationError and
// reports whether it was; other errors (including nil) are left to the
// caller. A prefix, when not empty, is prepended to each field path with a
// dot so nested inputs keep full paths.
func (v *ValidationError) Merge(prefix string, err error) bool {
	var other *ValidationError
	if !errors.As(err, &other) {
		return false
	}
	for _, fe := range other.Errors {
		if prefix != "" {
			fe.Field = joinPath(prefix, fe.Field)
		}
		v.Errors = append(v.Errors, fe)
	}
	return true
}

// Err returns v as an error when it holds at least one problem, else nil.
// Returning a typed nil pointer as error is the classic Go trap this avoids.
func (v *ValidationError) Err() error {
	if v == nil || len(v.Errors) == 0 {
		return nil
	}
	return &ValidationError{Errors: append([]FieldError(nil), v.Errors...)}
}

// Error lists every problem in one line.
func (v *ValidationError) Error() string {
	parts := make([]string, 0, len(v.Errors))
	for _, fe := range v.Errors {
		parts = append(parts, fe.Field+": "+fe.Message)
	}
	return "validation failed: " + strings.Join(parts, "; ")
}

// Code returns "validation_failed".
func (v *ValidationError) Code() string { return CodeValidationFailed }

// Is makes errors.Is(err, ErrValidationFailed) true for every ValidationError.
func (v *ValidationError) Is(target error) bool { return target == ErrValidationFailed }

// Has reports whether a problem was recorded for field (exact path).
func (v *ValidationError) Has(field string) bool {
	for _, fe := range v.Errors {
		if fe.Field == field {
			return true
		}
	}
	return false
}

// ErrValidationFailed matches every *ValidationError under errors.Is. It is
// a sentinel for tests and mappings; return a *ValidationError with fields.
var ErrValidationFailed = &RuleError{Rule: CodeValidationFailed, Detail: "validation failed"}

// Conflict names one existing booking that occupies the requested time. Start
// and End are the booking's own times, not widened by buffers, because that
// is what the client saw when it booked.
type Conflict struct {
	BookingID uuid.UUID `json:"booking_id"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
}

// ConflictError reports that the requested seats do not fit beside the
// bookings listed in Conflicts. It matches ErrBookingConflict under errors.Is.
type ConflictError struct {
	Conflicts []Conflict `json:"conflicts"`
}

// Error names the conflicting bookings.
func (c *ConflictError) Error() string {
	ids := make([]string, 0, len(c.Conflicts))
	for _, x := range c.Conflicts {
		ids = append(ids, x.BookingID.String())
	}
	return "booking conflict with " + strings.Join(ids, ", ")
}

// Code returns "booking_conflict".
func (c *ConflictError) Code() string { return CodeBookingConflict }

// Is makes errors.Is(err, ErrBookingConflict) true for every ConflictError.
func (c *ConflictError) Is(target error) bool { return target == ErrBookingConflict }

// ErrBookingConflict matches every *ConflictError under errors.Is.
var ErrBookingConflict = &RuleError{Rule: CodeBookingConflict, Detail: "booking conflict"}

// RuleError is a refusal by a business rule, identified by its contract code
// (Rule) with a human Detail. Two RuleErrors are the same error under
// errors.Is when their codes match, so a detailed error returned by a
// command still matches the package sentinel (ErrTooShortNotice, ...).
type RuleError struct {
	Rule   string
	Detail string
}

// NewRuleError returns a RuleError with a formatted detail. Outer packages
// use it for detailed not_found and forbidden errors that still match
// ErrNotFound and ErrForbidden.
func NewRuleError(code, format string, args ...any) *RuleError {
	return &RuleError{Rule: code, Detail: fmt.Sprintf(format, args...)}
}

// Error returns the detail, or the code when there is none.
func (e *RuleError) Error() string {
	if e.Detail == "" {
		return e.Rule
	}
	return e.Detail
}

// Code returns the contract code.
func (e *RuleError) Code() string { return e.Rule }

// Is matches any *RuleError with the same code.
func (e *RuleError) Is(target error) bool {
	t, ok := target.(*RuleError)
	return ok && t.Rule == e.Rule
}

// Sentinels for errors.Is. Commands return detailed *RuleError values with
// the same code; compare with errors.Is, never with ==.
var (
	ErrOutsideBusinessHours        = &RuleError{Rule: CodeOutsideBusinessHours, Detail: "outside business hours"}
	ErrOutsideResourceAvailability = &RuleError{Rule: CodeOutsideResourceAvailability, Detail: "outside resource availability"}
	ErrTooShortNotice              = &RuleError{Rule: CodeTooShortNotice, Detail: "too short notice"}
	ErrTooFarInAdvance             = &RuleError{Rule: CodeTooFarInAdvance, Detail: "too far in advance"}
	ErrDurationOutOfRange          = &RuleError{Rule: CodeDurationOutOfRange, Detail: "duration out of range"}
	ErrOffSlotGrid                 = &RuleError{Rule: CodeOffSlotGrid, Detail: "off the slot grid"}
	ErrCapacityExceeded            = &RuleError{Rule: CodeCapacityExceeded, Detail: "capacity exceeded"}
	ErrCancellationDeadlinePassed  = &RuleError{Rule: CodeCancellationDeadlinePassed, Detail: "cancellation deadline passed"}
	ErrResourceInactive            = &RuleError{Rule: CodeResourceInactive, Detail: "resource inactive"}
	ErrClientDailyLimit            = &RuleError{Rule: CodeClientDailyLimitReached, Detail: "client daily booking limit reached"}
	ErrDomainTaken                 = &RuleError{Rule: CodeDomainTaken, Detail: "domain already taken"}
	ErrEmailTaken                  = &RuleError{Rule: CodeEmailTaken, Detail: "email already taken"}
	ErrNotFound                    = &RuleError{Rule: CodeNotFound, Detail: "not found"}
	ErrForbidden                   = &RuleError{Rule: CodeForbidden, Detail: "forbidden"}
	// ErrInvalidTransition matches every *TransitionError.
	ErrInvalidTransition = &RuleError{Rule: CodeInvalidTransition, Detail: "invalid transition"}
)

// TransitionError refuses a booking status change that the lifecycle does
// not allow, naming both ends so the client knows where the booking stands.
// Reason, when set, says why an otherwise legal edge is closed right now
// (e.g. no_show before the start). It matches ErrInvalidTransition.
type TransitionError struct {
	From   Status
	To     Status
	Reason string
}

// Error names the refused transition.
func (e *TransitionError) Error() string {
	msg := fmt.Sprintf("invalid transition from %s to %s", e.From, e.To)
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	return msg
}

// Code returns "invalid_transition".
func (e *TransitionError) Code() string { return CodeInvalidTransition }

// Is makes errors.Is(err, ErrInvalidTransition) true.
func (e *TransitionError) Is(target error) bool {
	t, ok := target.(*RuleError)
	return ok && t.Rule == CodeInvalidTransition
}

func ruleErr(code, format string, args ...any) error {
	return NewRuleError(code, format, args...)
}

func joinPath(prefix, field string) string {
	if prefix == "" {
		return field
	}
	if field == "" {
		return prefix
	}
	if strings.HasPrefix(field, "[") {
		return prefix + field
	}
	return prefix + "." + field
}
