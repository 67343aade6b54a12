package webhooks

import (
	"errors"
	"fmt"
	"strings"
)

// Machine codes of this package's errors; they are the contract's codes,
// so the HTTP adapter maps them without a table of its own.
const (
	codeNotFound         = "not_found"
	codeValidationFailed = "validation_failed"
	codeVersionMismatch  = "version_mismatch"
)

// ErrNotFound is returned (errors.Is) for an endpoint that does not exist
// or belongs to another tenant: the two are indistinguishable on purpose,
// so a tenant cannot probe another's ids. Its code is "not_found".
var ErrNotFound error = &codedError{code: codeNotFound, msg: "webhook endpoint not found"}

// ErrVersionMismatch is returned (errors.Is) when an If-Match expectation
// does not hold. Its code is "version_mismatch".
var ErrVersionMismatch error = &codedError{code: codeVersionMismatch, msg: "webhook endpoint version does not match"}

// ErrClaimLost is returned by Store.Record when the delivery's lease
// expired and another dispatcher claimed it meanwhile: the attempt is
// recorded, the delivery's state is left to the new holder.
var ErrClaimLost = errors.New("webhooks: delivery claim lost")

type codedError struct{ code, msg string }

// Error returns the message.
func (e *codedError) Error() string { return e.msg }

// Code returns the contract's machine code.
func (e *codedError) Code() string { return e.code }

// FieldError names one invalid field of an input.
type FieldError struct {
	// Field is the JSON name of the member, e.g. "event_types[1]".
	Field string
	// Code is "required" or "invalid".
	Code string
	// Message says what is wrong, for a person.
	Message string
}

// ValidationError lists every invalid field of an input at once. Its code
// is "validation_failed" (422); the HTTP adapter copies the fields into
// the problem's errors[].
type ValidationError struct {
	Fields []FieldError
}

// Error names every invalid field and what is wrong with it.
func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Message
	}
	return "invalid webhook: " + strings.Join(parts, "; ")
}

// Code returns "validation_failed".
func (e *ValidationError) Code() string { return codeValidationFailed }

// ProblemFields reports each invalid field (see package http's FieldLister).
func (e *ValidationError) ProblemFields(add func(field, code, message string)) {
	for _, f := range e.Fields {
		add(f.Field, f.Code, f.Message)
	}
}

type fieldErrors []FieldError

func (f *fieldErrors) add(field, code, format string, args ...any) {
	*f = append(*f, FieldError{Field: field, Code: code, Message: fmt.Sprintf(format, args...)})
}

func (f fieldErrors) err() error {
	if len(f) == 0 {
		return nil
	}
	return &ValidationError{Fields: f}
}
