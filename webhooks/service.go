package webhooks

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/bookingengine/booking/eventstore"
	"github.com/bookingengine/booking/stream"
)

// Group is the consumer group that enqueues deliveries. It is permanent:
// Redis keeps the group's position under this name and the dedupe store
// keys on it, so renaming it makes a new group that reads every retained
// event again (and enqueues what was delivered before anew).
const Group = "webhooks"

// Topics returns the category topics the Group consumes: every published
// event may interest a webhook.
func Topics() []string {
	return []string{stream.TopicBooking, stream.TopicResource, stream.TopicTenant, stream.TopicUser}
}

// Page sizes of List and Deliveries.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// MaxRedelivery bounds how many events one Redeliver enqueues.
const MaxRedelivery = 50_000

// EventReader reads the event store's log; eventstore.Store satisfies it.
type EventReader interface {
	ReadAll(ctx context.Context, after eventstore.Cursor, filter eventstore.Filter, limit int) ([]eventstore.RecordedEvent, error)
}

// ServiceConfig configures a Service.
type ServiceConfig struct {
	// Store keeps endpoints and deliveries. Required.
	Store Store
	// Events is read by Redeliver; nil makes Redeliver fail.
	Events EventReader
	// SourceBase prefixes the CloudEvents source of redelivered events,
	// as the relay's does for published ones (see stream.Source).
	SourceBase string
	// URLPolicy decides which endpoint URLs Create accepts.
	URLPolicy URLPolicy
	// Group is the consumer group whose done-mark Handle commits with the
	// deliveries (PostgresStore). Default Group.
	Group string
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Notify, when set, is called after Handle or Redeliver enqueued a
	// delivery, e.g. with Dispatcher.Wake, so that it need not wait for
	// its next poll.
	Notify func()
}

// Service is the webhooks use cases: the tenant admins' management of
// endpoints and the consumer's enqueueing of deliveries. Safe for
// concurrent use.
type Service struct {
	cfg      ServiceConfig
	enqueued atomic.Uint64
}

// NewService returns a Service; it fails without a Store.
func NewService(cfg ServiceConfig) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("webhooks: ServiceConfig.Store is required")
	}
	if cfg.Group == "" {
		cfg.Group = Group
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{cfg: cfg}, nil
}

// now is the clock at the precision PostgreSQL keeps, so that both
// stores return what they were given.
func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Microsecond) }

// Create validates in and stores a new enabled endpoint of tenant,
// created by actor. The returned endpoint carries its Secret (generated
// when in has none); later reads return it too, but the API shows it
// only here. It returns a *ValidationError naming every bad field.
func (s *Service) Create(ctx context.Context, tenant uuid.UUID, actor string, in Input) (Endpoint, error) {
	v, err := in.validate(s.cfg.URLPolicy)
	if err != nil {
		return Endpoint{}, err
	}
	now := s.now()
	ep := Endpoint{
		ID: uuid.New(), TenantID: tenant, URL: v.URL, EventTypes: v.EventTypes, Description: v.Description,
		Secret: v.Secret, Enabled: true, Version: 1, CreatedAt: now, UpdatedAt: now, CreatedBy: actor, UpdatedBy: actor,
	}
	if err := s.cfg.Store.CreateEndpoint(ctx, ep); err != nil {
		return Endpoint{}, err
	}
	return ep, nil
}

// Get returns the tenant's endpoint, or ErrNotFound.
func (s *Service) Get(ctx context.Context, tenant, id uuid.UUID) (Endpoint, error) {
	return s.cfg.Store.Endpoint(ctx, tenant, id)
}

func pageSize(limit int) (int, error) {
	switch {
	case limit == 0:
		return DefaultPageSize, nil
	case limit < 0 || limit > MaxPageSize:
		return 0, &ValidationError{Fields: []FieldError{{Field: "limit", Code: "invalid",
			Message: fmt.Sprintf("must be between 0 (the default, %d) and %d", DefaultPageSize, MaxPageSize)}}}
	}
	return limit, nil
}

var errBadCursor = &ValidationError{Fields: []FieldError{{Field: "cursor", Code: "invalid",
	Message: "is not a next_cursor this list returned"}}}

// List returns a page of the tenant's endpoints in creation order and the
// cursor of the next page ("" on the last). limit 0 means
// DefaultPageSize; more than MaxPageSize, or a cursor this list did not
// return, is a *ValidationError.
func (s *Service) List(ctx context.Context, tenant uuid.UUID, limit int, cursor string) ([]Endpoint, string, error) {
	n, err := pageSize(limit)
	if err != nil {
		return nil, "", err
	}
	var after *EndpointCursor
	if cursor != "" {
		c, ok := decodeEndpointCursor(cursor)
		if !ok {
			return nil, "", errBadCursor
		}
		after = &c
	}
	eps, err := s.cfg.Store.ListEndpoints(ctx, tenant, after, n+1)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(eps) > n {
		eps = eps[:n]
		last := eps[n-1]
		next = encodeCursor("e" + strconv.FormatInt(last.CreatedAt.UnixMicro(), 10) + "_" + last.ID.String())
	}
	return eps, next, nil
}

func encodeCursor(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func decodeCursor(c, prefix string) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return "", false
	}
	return strings.CutPrefix(string(b), prefix)
}

func decodeEndpointCursor(c string) (EndpointCursor, bool) {
	s, ok := decodeCursor(c, "e")
	if !ok {
		return EndpointCursor{}, false
	}
	micros, id, ok := strings.Cut(s, "_")
	if !ok {
		return EndpointCursor{}, false
	}
	us, err := strconv.ParseInt(micros, 10, 64)
	if err != nil {
		return EndpointCursor{}, false
	}
	uid, err := uuid.Parse(id)
	if err != nil {
		return EndpointCursor{}, false
	}
	return EndpointCursor{CreatedAt: time.UnixMicro(us).UTC(), ID: uid}, true
}

// Deliveries returns a page of the endpoint's deliveries, newest first,
// each with its attempts, and the cursor of the next page ("" on the
// last). Errors as List, and ErrNotFound for another tenant's endpoint.
func (s *Service) Deliveries(ctx context.Context, tenant, endpoint uuid.UUID, limit int, cursor string) ([]Delivery, string, error) {
	n, err := pageSize(limit)
	if err != nil {
		return nil, "", err
	}
	var before int64
	if cursor != "" {
		q, ok := decodeCursor(cursor, "d")
		if ok {
			before, err = strconv.ParseInt(q, 10, 64)
		}
		if !ok || err != nil || before <= 0 {
			return nil, "", errBadCursor
		}
	}
	ds, err := s.cfg.Store.Deliveries(ctx, tenant, endpoint, before, n+1)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(ds) > n {
		ds = ds[:n]
		next = encodeCursor("d" + strconv.FormatInt(ds[n-1].QueueID, 10))
	}
	return ds, next, nil
}

// Enable re-enables the tenant's endpoint as actor and resumes its open
// deliveries with a fresh retry window (see Store.EnableEndpoint). It is
// idempotent: an enabled endpoint is returned unchanged. expected, when
// set, must match the endpoint's Version (ErrVersionMismatch). It returns
// ErrNotFound for another tenant's endpoint.
func (s *Service) Enable(ctx context.Context, tenant, id uuid.UUID, expected *int64, actor string) (Endpoint, error) {
	ep, err := s.cfg.Store.EnableEndpoint(ctx, tenant, id, expected, actor, s.now())
	if err == nil {
		s.notify()
	}
	return ep, err
}

// Redeliver enqueues anew, for the tenant's endpoint, every event of the
// tenant in the event store with a global position (sequence) of at least
// fromPosition whose type the endpoint subscribes to, oldest first, and
// returns how many. It reads what ReadAll returns now: an event committed
// a moment ago may not be readable yet (see eventstore.Store.ReadAll) and
// is left to the live subscription. The deliveries keep the original event ids (receivers
// dedupe by webhook-id and may see them again on purpose). A disabled
// endpoint gets them when enabled. It returns ErrNotFound for another
// tenant's endpoint and a *ValidationError for a negative fromPosition or
// more than MaxRedelivery events.
func (s *Service) Redeliver(ctx context.Context, tenant, endpoint uuid.UUID, fromPosition int64) (int, error) {
	if fromPosition < 0 {
		return 0, &ValidationError{Fields: []FieldError{{Field: "from_position", Code: "invalid", Message: "must not be negative"}}}
	}
	ep, err := s.cfg.Store.Endpoint(ctx, tenant, endpoint)
	if err != nil {
		return 0, err
	}
	if s.cfg.Events == nil {
		return 0, errors.New("webhooks: redeliver: no event store configured")
	}
	filter := eventstore.Filter{TenantID: tenant, Categories: []string{"tenant", "resource", "user", "booking", "hold", "waitlist"}}
	var (
		events []stream.Event
		cursor eventstore.Cursor
	)
	const page = 1000
	for {
		recs, err := s.cfg.Events.ReadAll(ctx, cursor, filter, page)
		if err != nil {
			return 0, fmt.Errorf("webhooks: redeliver: read events: %w", err)
		}
		for _, r := range recs {
			if r.Position >= fromPosition && r.TenantID == tenant && stream.Published(r.Category) && Match(ep.EventTypes, r.Type) {
				events = append(events, stream.FromRecorded(r, s.cfg.SourceBase))
			}
		}
		if len(events) > MaxRedelivery {
			return 0, &ValidationError{Fields: []FieldError{{Field: "from_position", Code: "invalid",
				Message: fmt.Sprintf("more than %d events match; choose a later position", MaxRedelivery)}}}
		}
		if len(recs) == 0 {
			break
		}
		cursor = eventstore.CursorOf(recs[len(recs)-1])
	}
	// Read-all order is commit order; a stream's events are in position
	// order, and sending them so keeps each stream's order.
	slices.SortFunc(events, func(a, b stream.Event) int { return cmp.Compare(a.Sequence, b.Sequence) })
	n, err := s.cfg.Store.Redeliver(ctx, tenant, endpoint, events, s.now())
	if n > 0 {
		s.notify()
	}
	return n, err
}

// Handle is the subscriber.Handler of Group: it enqueues e for every
// enabled endpoint of its tenant that subscribes to its type (see
// Store.Enqueue). It is idempotent, and fails only when the store does
// (the subscriber then retries).
func (s *Service) Handle(ctx context.Context, e stream.Event) error {
	n, err := s.cfg.Store.Enqueue(ctx, s.cfg.Group, e, s.now())
	if err != nil {
		return err
	}
	if n > 0 {
		s.enqueued.Add(uint64(n))
		s.notify()
	}
	return nil
}

// Enqueued counts the deliveries Handle created since NewService. Safe
// for concurrent use.
func (s *Service) Enqueued() uint64 { return s.enqueued.Load() }

func (s *Service) notify() {
	if s.cfg.Notify != nil {
		s.cfg.Notify()
	}
}
