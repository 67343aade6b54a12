package webhooks

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/bookingengine/booking/stream"
)

// MemoryStore is the Store of embedded mode: process memory, lost on
// restart, like the embedded event store. Safe for concurrent use; the
// zero value is not, use NewMemoryStore.
type MemoryStore struct {
	mu         sync.Mutex
	endpoints  map[uuid.UUID]*Endpoint
	deliveries []*memDelivery // by QueueID ascending
	live       map[[2]uuid.UUID]bool
	nextQueue  int64
}

type memDelivery struct {
	d          Delivery
	token      string
	leaseUntil time.Time
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{endpoints: map[uuid.UUID]*Endpoint{}, live: map[[2]uuid.UUID]bool{}}
}

var _ Store = (*MemoryStore)(nil)

func copyEndpoint(ep *Endpoint) Endpoint {
	out := *ep
	out.EventTypes = slices.Clone(ep.EventTypes)
	return out
}

// CreateEndpoint implements Store.
func (m *MemoryStore) CreateEndpoint(_ context.Context, ep Endpoint) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.endpoints[ep.ID]; ok {
		return fmt.Errorf("webhooks: endpoint %s exists", ep.ID)
	}
	c := copyEndpoint(&ep)
	m.endpoints[ep.ID] = &c
	return nil
}

func (m *MemoryStore) endpointLocked(tenant, id uuid.UUID) (*Endpoint, error) {
	ep, ok := m.endpoints[id]
	if !ok || ep.TenantID != tenant {
		return nil, ErrNotFound
	}
	return ep, nil
}

// Endpoint implements Store.
func (m *MemoryStore) Endpoint(_ context.Context, tenant, id uuid.UUID) (Endpoint, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ep, err := m.endpointLocked(tenant, id)
	if err != nil {
		return Endpoint{}, err
	}
	return copyEndpoint(ep), nil
}

func compareEndpoint(a Endpoint, b EndpointCursor) int {
	if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
		return c
	}
	return cmp.Compare(a.ID.String(), b.ID.String())
}

// ListEndpoints implements Store.
func (m *MemoryStore) ListEndpoints(_ context.Context, tenant uuid.UUID, after *EndpointCursor, limit int) ([]Endpoint, error) {
	m.mu.Lock()
	var all []Endpoint
	for _, ep := range m.endpoints {
		if ep.TenantID == tenant {
			all = append(all, copyEndpoint(ep))
		}
	}
	m.mu.Unlock()
	slices.SortFunc(all, func(a, b Endpoint) int { return compareEndpoint(a, EndpointCursor{b.CreatedAt, b.ID}) })
	out := make([]Endpoint, 0, min(limit, len(all)))
	for _, ep := range all {
		if after != nil && compareEndpoint(ep, *after) <= 0 {
			continue
		}
		if len(out) == limit {
			break
		}
		out = append(out, ep)
	}
	return out, nil
}

// EnableEndpoint implements Store.
func (m *MemoryStore) EnableEndpoint(_ context.Context, tenant, id uuid.UUID, expected *int64, actor string, now time.Time) (Endpoint, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ep, err := m.endpointLocked(tenant, id)
	if err != nil {
		return Endpoint{}, err
	}
	if expected != nil && *expected != ep.Version {
		return Endpoint{}, ErrVersionMismatch
	}
	if enable(ep, actor, now) {
		for _, md := range m.deliveries {
			if md.d.EndpointID == id && md.d.Status.Open() {
				md.d.NextAttemptAt, md.d.Tries, md.d.WindowStart, md.d.UpdatedAt = now, 0, time.Time{}, now
			}
		}
	}
	return copyEndpoint(ep), nil
}

// Deliveries implements Store.
func (m *MemoryStore) Deliveries(_ context.Context, tenant, endpoint uuid.UUID, before int64, limit int) ([]Delivery, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.endpointLocked(tenant, endpoint); err != nil {
		return nil, err
	}
	var out []Delivery
	for i := len(m.deliveries) - 1; i >= 0 && len(out) < limit; i-- {
		d := m.deliveries[i].d
		if d.EndpointID != endpoint || (before > 0 && d.QueueID >= before) {
			continue
		}
		d.Attempts = slices.Clone(d.Attempts)
		d.Payload = nil
		out = append(out, d)
	}
	return out, nil
}

func (m *MemoryStore) addLocked(ep *Endpoint, e stream.Event, payload []byte, redelivery bool, now time.Time) {
	m.nextQueue++
	m.deliveries = append(m.deliveries, &memDelivery{d: Delivery{
		ID: uuid.New(), QueueID: m.nextQueue, TenantID: ep.TenantID, EndpointID: ep.ID,
		EventID: e.ID, EventType: e.Type, Subject: e.StreamID, Sequence: e.Sequence, StreamVersion: e.StreamVersion,
		Redelivery: redelivery, Status: StatusPending, NextAttemptAt: now, CreatedAt: now, UpdatedAt: now,
		Payload: payload,
	}})
}

// Enqueue implements Store; group is ignored.
func (m *MemoryStore) Enqueue(_ context.Context, _ string, e stream.Event, now time.Time) (int, error) {
	payload, err := e.Encode()
	if err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var eps []*Endpoint
	for _, ep := range m.endpoints {
		if ep.TenantID == e.TenantID && ep.Enabled && Match(ep.EventTypes, e.Type) && !m.live[[2]uuid.UUID{ep.ID, e.ID}] {
			eps = append(eps, ep)
		}
	}
	slices.SortFunc(eps, func(a, b *Endpoint) int { return cmp.Compare(a.ID.String(), b.ID.String()) })
	for _, ep := range eps {
		m.live[[2]uuid.UUID{ep.ID, e.ID}] = true
		m.addLocked(ep, e, payload, false, now)
	}
	return len(eps), nil
}

// Redeliver implements Store.
func (m *MemoryStore) Redeliver(_ context.Context, tenant, endpoint uuid.UUID, events []stream.Event, now time.Time) (int, error) {
	payloads := make([][]byte, len(events))
	for i, e := range events {
		if e.TenantID != tenant {
			return 0, fmt.Errorf("webhooks: redeliver event %s of another tenant", e.ID)
		}
		p, err := e.Encode()
		if err != nil {
			return 0, err
		}
		payloads[i] = p
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ep, err := m.endpointLocked(tenant, endpoint)
	if err != nil {
		return 0, err
	}
	for i, e := range events {
		m.addLocked(ep, e, payloads[i], true, now)
	}
	return len(events), nil
}

// Claim implements Store.
func (m *MemoryStore) Claim(_ context.Context, now time.Time, lease time.Duration, limit int) ([]Claim, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	type key struct {
		ep      uuid.UUID
		subject string
	}
	heads := map[key]bool{}
	var due []*memDelivery
	for _, md := range m.deliveries {
		if !md.d.Status.Open() {
			continue
		}
		k := key{md.d.EndpointID, md.d.Subject}
		if heads[k] {
			continue // an earlier open delivery of the stream holds the queue
		}
		heads[k] = true
		ep := m.endpoints[md.d.EndpointID]
		if ep == nil || !ep.Enabled || md.d.NextAttemptAt.After(now) || md.leaseUntil.After(now) {
			continue
		}
		due = append(due, md)
	}
	slices.SortStableFunc(due, func(a, b *memDelivery) int { return a.d.NextAttemptAt.Compare(b.d.NextAttemptAt) })
	out := make([]Claim, 0, min(limit, len(due)))
	for _, md := range due[:min(limit, len(due))] {
		md.token, md.leaseUntil = newToken(), now.Add(lease)
		ep := m.endpoints[md.d.EndpointID]
		d := md.d
		d.Attempts = nil
		out = append(out, Claim{Delivery: d, URL: ep.URL, Secret: ep.Secret, Token: md.token})
	}
	return out, nil
}

// Record implements Store.
func (m *MemoryStore) Record(_ context.Context, c Claim, o Outcome, policy DisablePolicy, now time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	i, ok := slices.BinarySearchFunc(m.deliveries, c.QueueID, func(md *memDelivery, q int64) int { return cmp.Compare(md.d.QueueID, q) })
	if !ok {
		return false, fmt.Errorf("webhooks: record: delivery %s not found", c.ID)
	}
	md := m.deliveries[i]
	md.d.Attempts = append(md.d.Attempts, o.Attempt)
	if md.token != c.Token {
		return false, ErrClaimLost
	}
	md.token, md.leaseUntil = "", time.Time{}
	md.d.Status, md.d.Tries, md.d.WindowStart, md.d.NextAttemptAt, md.d.UpdatedAt = o.Status, o.Tries, o.WindowStart, o.NextAttemptAt, now
	ep := m.endpoints[md.d.EndpointID]
	if ep == nil {
		return false, nil
	}
	_, disabled := policy.apply(ep, o.Result, now)
	return disabled, nil
}

func newToken() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Prune implements Store.
func (m *MemoryStore) Prune(_ context.Context, olderThan time.Time) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	kept := m.deliveries[:0]
	var n int64
	for _, d := range m.deliveries {
		if (d.d.Status == StatusSucceeded || d.d.Status == StatusDead) && d.d.UpdatedAt.Before(olderThan) {
			if !d.d.Redelivery {
				delete(m.live, [2]uuid.UUID{d.d.EndpointID, d.d.EventID})
			}
			n++
			continue
		}
		kept = append(kept, d)
	}
	clear(m.deliveries[len(kept):])
	m.deliveries = kept
	return n, nil
}
