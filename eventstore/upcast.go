package eventstore

import (
	"encoding/json"
	"fmt"
	"sync"
)

// UpcastFunc turns the data of an event of one type from schema version n
// into version n+1.
type UpcastFunc func(data json.RawMessage) (json.RawMessage, error)

// Upcasters holds the registered upcasters. Register before concurrent use;
// Upcast is safe for concurrent use.
type Upcasters struct {
	mu  sync.RWMutex
	fns map[upcastKey]UpcastFunc
}

type upcastKey struct {
	eventType string
	from      int
}

// NewUpcasters returns an empty registry.
func NewUpcasters() *Upcasters { return &Upcasters{fns: map[upcastKey]UpcastFunc{}} }

// Register adds the upcaster that turns eventType version from into
// from+1. Registering the same pair twice panics: it is a programming error.
func (u *Upcasters) Register(eventType string, from int, fn UpcastFunc) {
	u.mu.Lock()
	defer u.mu.Unlock()
	k := upcastKey{eventType, from}
	if _, ok := u.fns[k]; ok {
		panic(fmt.Sprintf("eventstore: upcaster for %s v%d registered twice", eventType, from))
	}
	u.fns[k] = fn
}

// Upcast applies every registered step to e, in place, until no upcaster
// matches its (type, version).
func (u *Upcasters) Upcast(e *RecordedEvent) error {
	if u == nil {
		return nil
	}
	u.mu.RLock()
	defer u.mu.RUnlock()
	for {
		fn, ok := u.fns[upcastKey{e.Type, e.EventVersion}]
		if !ok {
			return nil
		}
		data, err := fn(e.Data)
		if err != nil {
			return fmt.Errorf("upcast %s v%d (stream %s version %d): %w", e.Type, e.EventVersion, e.StreamID, e.StreamVersion, err)
		}
		e.Data = data
		e.EventVersion++
	}
}
