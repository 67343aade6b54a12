package commands

import (
	"errors"
	"fmt"

	"github.com/bookingengine/booking/eventstore"
)

// VersionMismatchError reports that the caller's If-Match version is not
// the aggregate's current version, or that another writer changed the
// aggregate between load and append. Its code is the contract's
// version_mismatch (412).
type VersionMismatchError struct {
	Expected int64
	Actual   int64
}

func (e *VersionMismatchError) Error() string {
	return fmt.Sprintf("version mismatch: expected %d, current %d", e.Expected, e.Actual)
}

// Code returns "version_mismatch".
func (e *VersionMismatchError) Code() string { return "version_mismatch" }

// checkVersion compares an optional If-Match version with the current one.
func checkVersion(expected *int64, actual int64) error {
	if expected != nil && *expected != actual {
		return &VersionMismatchError{Expected: *expected, Actual: actual}
	}
	return nil
}

// asVersionMismatch turns a store version conflict on the aggregate's own
// stream into a VersionMismatchError; other errors pass through.
func asVersionMismatch(err error) error {
	var vc *eventstore.VersionConflictError
	if errors.As(err, &vc) {
		return fmt.Errorf("%w: %w", &VersionMismatchError{Expected: int64(vc.Expected), Actual: vc.Actual}, err)
	}
	return err
}
