package domain

import (
	"time"

	"github.com/google/uuid"
)

// ProblemFields lists the fields at fault through add, so that an adapter
// can render them (as problem+json errors[]) without the domain knowing
// its types.
func (v *ValidationError) ProblemFields(add func(field, code, message string)) {
	for _, f := range v.Errors {
		add(f.Field, f.Code, f.Message)
	}
}

// ProblemConflicts lists the bookings in the way through add, so that an
// adapter can render them (as problem+json conflicts[]).
func (c *ConflictError) ProblemConflicts(add func(bookingID uuid.UUID, start, end time.Time)) {
	for _, x := range c.Conflicts {
		add(x.BookingID, x.Start, x.End)
	}
}
