package subscriber

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Progress is what a consumer group remembers of an event's id and
// stream, returned with the lease on the stream.
type Progress struct {
	// Seen is true when the event id was marked done by the group (within
	// the store's retention of ids).
	Seen bool
	// Known is true when the group remembers a version of the event's
	// stream; LastVersion is that version, the highest marked done.
	Known       bool
	LastVersion int64
	// Token identifies the lease Begin took; pass it to MarkDone or
	// Release.
	Token string
}

// ErrLeaseHeld is returned by DedupeStore.Begin while another consumer of
// the group holds the lease on the event's stream.
var ErrLeaseHeld = errors.New("subscriber: stream lease held by another consumer")

// DedupeStore remembers, per consumer group, which events were processed
// and the last processed version of each stream, durably enough to
// outlive the process (except MemoryStore, for embedded mode), and leases
// streams so that the consumers of a group handle one stream's events one
// at a time. Implementations are safe for concurrent use.
type DedupeStore interface {
	// Begin takes the group's lease on e's stream for leaseTTL and
	// returns what the group remembers of e, in one step. It returns
	// ErrLeaseHeld, and takes nothing, while another holder's lease on
	// the stream has not expired.
	Begin(ctx context.Context, group string, e Event, leaseTTL time.Duration) (Progress, error)
	// MarkDone records, in one atomic step, that the group processed e
	// (its id, and its stream's last version raised to e.StreamVersion,
	// never lowered) and releases the lease named by token if it is still
	// that holder's. It is idempotent. The subscriber calls it only after
	// the handler succeeded (or the event was parked in the dead-letter
	// stream) and acknowledges the message only after it.
	MarkDone(ctx context.Context, group string, e Event, token string) error
	// Release gives the lease named by token back without marking
	// anything. Idempotent; a lease that expired or changed hands is left
	// alone.
	Release(ctx context.Context, group string, e Event, token string) error
}

// DefaultDedupeTTL is how long RedisStore and MemoryStore remember a
// processed event id. Stream versions are kept without expiry unless a
// version TTL is set.
const DefaultDedupeTTL = 72 * time.Hour

// MemoryStore is the DedupeStore of embedded mode: process memory, lost
// on restart, which matches the embedded event store that loses every
// event on restart too. Event ids expire IDTTL after they were marked
// (DefaultDedupeTTL when zero); stream versions are kept for the life of
// the process. Safe for concurrent use; the zero value is ready to use.
type MemoryStore struct {
	// IDTTL is how long a processed event id is remembered.
	IDTTL time.Duration

	mu       sync.Mutex
	ids      map[memKey]time.Time
	versions map[memKey]int64
	leases   map[memKey]memLease
	tokens   uint64
	writes   int
}

type memKey struct{ group, key string }

type memLease struct {
	token   string
	expires time.Time
}

// NewMemoryStore returns an empty MemoryStore with the default TTL.
func NewMemoryStore() *MemoryStore { return &MemoryStore{} }

func (m *MemoryStore) initLocked() {
	if m.ids == nil {
		m.ids = map[memKey]time.Time{}
		m.versions = map[memKey]int64{}
		m.leases = map[memKey]memLease{}
	}
}

// Begin implements DedupeStore. It fails only with ErrLeaseHeld.
func (m *MemoryStore) Begin(_ context.Context, group string, e Event, leaseTTL time.Duration) (Progress, error) {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.initLocked()
	sk := memKey{group, e.StreamID}
	if l, ok := m.leases[sk]; ok && now.Before(l.expires) {
		return Progress{}, ErrLeaseHeld
	}
	m.tokens++
	p := Progress{Token: "m" + itoa(m.tokens)}
	m.leases[sk] = memLease{token: p.Token, expires: now.Add(leaseTTL)}
	if exp, ok := m.ids[memKey{group, e.ID.String()}]; ok && now.Before(exp) {
		p.Seen = true
	}
	if v, ok := m.versions[sk]; ok {
		p.Known, p.LastVersion = true, v
	}
	return p, nil
}

// MarkDone implements DedupeStore. It never fails.
func (m *MemoryStore) MarkDone(_ context.Context, group string, e Event, token string) error {
	now := time.Now()
	ttl := m.IDTTL
	if ttl <= 0 {
		ttl = DefaultDedupeTTL
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.initLocked()
	m.ids[memKey{group, e.ID.String()}] = now.Add(ttl)
	sk := memKey{group, e.StreamID}
	m.versions[sk] = max(m.versions[sk], e.StreamVersion)
	if l, ok := m.leases[sk]; ok && l.token == token {
		delete(m.leases, sk)
	}
	m.writes++
	if m.writes%4096 == 0 {
		for k, exp := range m.ids {
			if !now.Before(exp) {
				delete(m.ids, k)
			}
		}
	}
	return nil
}

// Release implements DedupeStore. It never fails.
func (m *MemoryStore) Release(_ context.Context, group string, e Event, token string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	sk := memKey{group, e.StreamID}
	if l, ok := m.leases[sk]; ok && l.token == token {
		delete(m.leases, sk)
	}
	return nil
}

func itoa(n uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}
