package projections

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Waiter answers X-Min-Position: it waits until a set of projections has
// applied a position, under the rule of the package doc. It is safe for
// concurrent use.
type Waiter struct {
	src   Source
	projs []Projection
	// MaxPoll bounds the pause between two reads of a checkpoint that no
	// in-process signal announced (a projection run by another process).
	maxPoll time.Duration
}

// NewWaiter returns a Waiter over the projections that a query reads.
func NewWaiter(src Source, projs ...Projection) *Waiter {
	return &Waiter{src: src, projs: projs, maxPoll: 20 * time.Millisecond}
}

// WaitFor returns nil once every projection of w has applied position n:
// its checkpoint has reached the cursor of every committed event of its
// categories with a position <= n. It returns at once when nothing of
// theirs at or below n lies past their checkpoints. It returns ctx's error
// (wrapped) when ctx ends first: the caller sets the deadline.
func (w *Waiter) WaitFor(ctx context.Context, n int64) error {
	for _, p := range w.projs {
		if err := w.waitOne(ctx, p, n); err != nil {
			return err
		}
	}
	return nil
}

func (w *Waiter) waitOne(ctx context.Context, p Projection, n int64) error {
	cp, err := p.Checkpoint(ctx)
	if err != nil {
		return fmt.Errorf("wait for %s: %w", p.Name(), err)
	}
	target, ok, err := w.src.Target(ctx, cp, p.Categories(), n)
	if err != nil {
		return fmt.Errorf("wait for %s: position %d: %w", p.Name(), n, err)
	}
	if !ok {
		return nil
	}
	pause := time.Millisecond
	for {
		// Take the signal before reading the checkpoint, so an apply that
		// lands in between still wakes us.
		changed := p.Changed()
		cp, err := p.Checkpoint(ctx)
		if err != nil {
			return fmt.Errorf("wait for %s: %w", p.Name(), err)
		}
		if !cp.Before(target) {
			return nil
		}
		t := time.NewTimer(pause)
		select {
		case <-changed:
		case <-t.C:
			pause = min(2*pause, w.maxPoll)
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("wait for %s to apply position %d (at %s, need %s): %w", p.Name(), n, cp, target, ctx.Err())
		}
		t.Stop()
	}
}

// Signal wakes every goroutine waiting on its channel: Notify closes the
// current channel and installs a new one. The zero value is ready to use
// and safe for concurrent use.
type Signal struct {
	mu sync.Mutex
	ch chan struct{}
}

// C returns the channel the next Notify closes.
func (s *Signal) C() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

// Notify wakes everyone waiting on a channel returned by C.
func (s *Signal) Notify() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
}

// MemoryCheckpoint is the checkpoint of an in-memory read model, and the
// stream versions it applied: guarded by the read model's own lock, so
// that rows, versions and checkpoint change together. Its methods must be
// called with that lock held, except Changed.
type MemoryCheckpoint struct {
	cursor   Cursor
	versions map[string]int64
	staged   map[string]int64
	signal   Signal
}

// Check returns ErrCheckpointMoved unless b comes from the bus or starts
// at the stored cursor.
func (m *MemoryCheckpoint) Check(b Batch) error {
	if b.FromBus || b.From == m.cursor {
		return nil
	}
	return fmt.Errorf("%w: stored %s, batch after %s", ErrCheckpointMoved, m.cursor, b.From)
}

// Begin checks b as Check does and returns the events of b that are not
// applied yet, for the read model to fold (see Unapplied: a bus batch
// that skips a version is refused with a *GapError when Contiguous). Commit then records
// their versions.
func (m *MemoryCheckpoint) Begin(b Batch) ([]Event, error) {
	if err := m.Check(b); err != nil {
		return nil, err
	}
	m.staged = make(map[string]int64)
	for _, e := range b.Events {
		if _, ok := m.staged[e.StreamID]; !ok {
			m.staged[e.StreamID] = m.versions[e.StreamID]
		}
	}
	evs, err := Unapplied(b.Events, m.staged, b.FromBus && b.Contiguous)
	if err != nil {
		m.staged = nil
		return nil, err
	}
	return evs, nil
}

// Commit records b.To (unless b came from the bus) and the stream
// versions staged by Begin, and wakes waiters.
func (m *MemoryCheckpoint) Commit(b Batch) {
	if !b.FromBus {
		m.cursor = b.To
	}
	if m.versions == nil {
		m.versions = make(map[string]int64)
	}
	for id, v := range m.staged {
		if v > m.versions[id] {
			m.versions[id] = v
		}
	}
	m.staged = nil
	m.signal.Notify()
}

// Cursor returns the stored cursor.
func (m *MemoryCheckpoint) Cursor() Cursor { return m.cursor }

// Versions returns the applied versions of the streams that have one
// (see Projection.AppliedVersions).
func (m *MemoryCheckpoint) Versions(streamIDs []string) map[string]int64 {
	out := make(map[string]int64, len(streamIDs))
	for _, id := range streamIDs {
		if v, ok := m.versions[id]; ok {
			out[id] = v
		}
	}
	return out
}

// Reset returns the cursor to the start, forgets the versions and wakes
// waiters.
func (m *MemoryCheckpoint) Reset() {
	m.cursor = Cursor{}
	m.versions = nil
	m.signal.Notify()
}

// Changed returns a channel closed at the next Commit or Reset.
func (m *MemoryCheckpoint) Changed() <-chan struct{} { return m.signal.C() }
