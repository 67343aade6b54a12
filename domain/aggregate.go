package domain

import (
	"fmt"
	"slices"
)

// root holds what every aggregate tracks about its stream: how many events
// it has applied and which of them were recorded since it was loaded. It is
// embedded, so its methods are part of each aggregate's API.
type root struct {
	version int64
	changes []Event
}

// Version returns the number of events applied, replayed or recorded: the
// stream version the aggregate is at. The stream version before the
// recorded changes (the expected version to append them with) is
// Version() - len(Changes()), also given by BaseVersion.
func (r *root) Version() int64 { return r.version }

// BaseVersion returns the stream version the aggregate was loaded at, the
// expected version when appending Changes.
func (r *root) BaseVersion() int64 { return r.version - int64(len(r.changes)) }

// Changes returns the events recorded since load (or the last ClearChanges),
// oldest first. The slice is a copy.
func (r *root) Changes() []Event { return slices.Clone(r.changes) }

// ClearChanges forgets the recorded events after they were appended, keeping
// the version, so the aggregate can take another command.
func (r *root) ClearChanges() { r.changes = nil }

// replay applies history with apply, counting versions but not recording
// changes. It stops at the first event apply refuses.
func (r *root) replay(name string, apply func(Event) error, events []Event) error {
	for _, e := range events {
		if e == nil {
			return fmt.Errorf("replay %s at version %d: nil event", name, r.version+1)
		}
		if err := apply(derefEvent(e)); err != nil {
			return fmt.Errorf("replay %s at version %d: %w", name, r.version+1, err)
		}
		r.version++
	}
	return nil
}

// record applies a new event and keeps it as a change.
func (r *root) record(apply func(Event) error, e Event) error {
	if err := apply(e); err != nil {
		return err
	}
	r.version++
	r.changes = append(r.changes, e)
	return nil
}

func foreignEvent(aggregate string, e Event) error {
	return fmt.Errorf("%s cannot apply %s: %w", aggregate, e.EventType(), ErrUnknownEventType)
}

func notCreated(aggregate string, e Event) error {
	return fmt.Errorf("%s: %s before the stream was created", aggregate, e.EventType())
}

func alreadyCreated(aggregate string, e Event) error {
	return fmt.Errorf("%s: %s on a stream that already exists", aggregate, e.EventType())
}

// Aggregate is what a repository needs of every aggregate in this package:
// rebuild from a stream with Replay, append Changes with the expected
// version BaseVersion, then ClearChanges. A repository can thus load any
// stream, run a command on the aggregate, and append in one generic
// function. Implementations are not safe for concurrent use.
type Aggregate interface {
	Replay(events ...Event) error
	Version() int64
	BaseVersion() int64
	Changes() []Event
	ClearChanges()
}

var (
	_ Aggregate = (*Tenant)(nil)
	_ Aggregate = (*ResourceCategory)(nil)
	_ Aggregate = (*Resource)(nil)
	_ Aggregate = (*User)(nil)
	_ Aggregate = (*Booking)(nil)
	_ Aggregate = (*Schedule)(nil)
	_ Aggregate = (*ClientDay)(nil)
	_ Aggregate = (*Guard)(nil)
)
