// Package storetest is the contract suite that every eventstore.Store
// implementation passes.
//
// An implementation's own tests call Run with a Harness; the suite then
// checks, against fresh stores from Harness.New, everything that package
// eventstore promises: expected versions, atomic multi-stream appends,
// idempotent event ids, reads in commit-safe order, upcasting, snapshots,
// checkpoints, the hash chain that Verify checks, and the behaviour under
// concurrent writers. The suite asserts only what the contract states, so
// that the memory and PostgreSQL stores are held to the same rules: positions
// increase but may have gaps, data is compared as JSON (jsonb normalises
// whitespace and key order), and events become visible to ReadAll once the
// store says they are safe to read (the suite waits for that, briefly).
package storetest

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/eventstore"
)

// Harness adapts one implementation to the suite.
type Harness struct {
	// New returns a fresh, empty store for one (sub)test. It may be called
	// by parallel subtests. It should register the store's Close with
	// t.Cleanup; the suite does not close stores itself.
	New func(t *testing.T) eventstore.Store
	// EditData replaces the stored data of one event behind the store's
	// back (for the tamper tests). When nil, the tamper tests are skipped.
	EditData func(t *testing.T, s eventstore.Store, streamID string, version int64, data json.RawMessage)
	// Delete removes one stored event behind the store's back. When nil,
	// the deletion tests are skipped.
	Delete func(t *testing.T, s eventstore.Store, streamID string, version int64)
	// VerifiesHead states that the store records each stream's head
	// (version and hash) apart from its rows, so that Verify also finds a
	// deleted last event. A store without such a record cannot tell a
	// deleted last event from a stream that never had it; when false the
	// suite skips that case.
	VerifiesHead bool
}

// contractTest is one named part of the suite.
type contractTest struct {
	name string
	run  func(t *testing.T, h Harness)
}

// Run runs the whole contract suite as parallel subtests of t. Each subtest
// takes its own store (or stores) from h.New, so a failure in one cannot
// leak into another. Run fails at once when h.New is nil.
func Run(t *testing.T, h Harness) {
	t.Helper()
	require.NotNil(t, h.New, "storetest: Harness.New is required")

	tests := []contractTest{
		{"RoundTrip", testRoundTrip},
		{"EmptyMetadataRoundTrip", testEmptyMetadataRoundTrip},
		{"CategoryOfStream", testCategory},
		{"CallerCannotMutateStoredEvents", testNoAliasing},
		{"ExpectedVersion", testExpectedVersion},
		{"MultiStreamAppend", testMultiStreamAppend},
		{"MultiStreamAtomicity", testMultiStreamAtomicity},
		{"IdempotentRetry", testIdempotentRetry},
		{"IdempotentRetryWithStaleExpectation", testIdempotentRetryStale},
		{"IdempotentMultiStreamRetry", testIdempotentMultiStreamRetry},
		{"PartialDuplicate", testPartialDuplicate},
		{"InvalidAppend", testInvalidAppend},
		{"CancelledContext", testCancelledContext},
		{"LoadAfterVersion", testLoadAfterVersion},
		{"LoadStreams", testLoadStreams},
		{"UnknownStream", testUnknownStream},
		{"ReadAllOrder", testReadAllOrder},
		{"ReadAllPaging", testReadAllPaging},
		{"ReadAllFilters", testReadAllFilters},
		{"HeadPosition", testHeadPosition},
		{"UpcastOnRead", testUpcastOnRead},
		{"UpcastError", testUpcastError},
		{"Snapshots", testSnapshots},
		{"SnapshotPlusTail", testSnapshotPlusTail},
		{"Checkpoints", testCheckpoints},
		{"VerifyClean", testVerifyClean},
		{"VerifyEditedEvent", testVerifyEdited},
		{"VerifyDeletedEvent", testVerifyDeleted},
		{"ConcurrentAppendsToOneStream", testConcurrentOneStream},
		{"ConcurrentAppendsToDistinctStreams", testConcurrentDistinctStreams},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, h)
		})
	}
}
