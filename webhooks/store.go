package webhooks

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/bookingengine/booking/stream"
)

// Store keeps endpoints, deliveries and attempts. MemoryStore (embedded
// mode) and PostgresStore implement it and pass one contract suite
// (package webhookstest). Implementations are safe for concurrent use,
// by several dispatchers too.
type Store interface {
	// CreateEndpoint stores a new endpoint (its ID is unique).
	CreateEndpoint(ctx context.Context, ep Endpoint) error
	// Endpoint returns the tenant's endpoint id, or ErrNotFound (also
	// when it belongs to another tenant).
	Endpoint(ctx context.Context, tenant, id uuid.UUID) (Endpoint, error)
	// ListEndpoints returns up to limit of the tenant's endpoints in
	// creation order (CreatedAt, then ID), after the one named by after
	// (none: from the first).
	ListEndpoints(ctx context.Context, tenant uuid.UUID, after *EndpointCursor, limit int) ([]Endpoint, error)
	// EnableEndpoint re-enables a disabled endpoint as actor at now:
	// failure counters reset, Version grows, and every open delivery of
	// the endpoint becomes due at now with a fresh retry window (Tries 0).
	// An enabled endpoint is returned unchanged. expected, when not nil,
	// must equal the current Version (else ErrVersionMismatch). It
	// returns ErrNotFound as Endpoint does.
	EnableEndpoint(ctx context.Context, tenant, id uuid.UUID, expected *int64, actor string, now time.Time) (Endpoint, error)
	// Deliveries returns up to limit deliveries of the tenant's endpoint,
	// newest first (QueueID descending), with QueueID below before (0:
	// from the newest), each with its attempts. It returns ErrNotFound
	// as Endpoint does.
	Deliveries(ctx context.Context, tenant, endpoint uuid.UUID, before int64, limit int) ([]Delivery, error)

	// Enqueue creates, due at now, one pending delivery of e for each
	// enabled endpoint of e's tenant whose EventTypes match e.Type, and
	// returns how many it created. It is idempotent: an event is
	// enqueued once per endpoint however often it is passed. On
	// PostgreSQL, when it creates deliveries, it also marks e done for
	// the consumer group in the same transaction (subscriber.MarkDoneTx);
	// other stores ignore group.
	Enqueue(ctx context.Context, group string, e stream.Event, now time.Time) (int, error)
	// Redeliver creates, due at now, a new pending delivery to the
	// tenant's endpoint for each event, in the order given (which must
	// keep each stream's order), whatever was delivered before, and
	// returns how many. The events must be the tenant's. It returns
	// ErrNotFound as Endpoint does.
	Redeliver(ctx context.Context, tenant, endpoint uuid.UUID, events []stream.Event, now time.Time) (int, error)
	// Claim leases up to limit open deliveries that are due at now, of
	// enabled endpoints, each the oldest open delivery of its endpoint
	// and subject, until now+lease; the soonest due first. A claimed
	// delivery is claimed by no one else until its lease expires or
	// Record releases it.
	Claim(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Claim, error)
	// Record stores the attempt of a claimed delivery and, if the claim
	// still holds, applies o to the delivery (releasing the lease) and
	// o.Result to the endpoint's health under policy (which may disable
	// it), all at once. It reports whether this attempt disabled the
	// endpoint. When the lease was lost to another dispatcher it records
	// the attempt only and returns ErrClaimLost.
	Record(ctx context.Context, c Claim, o Outcome, policy DisablePolicy, now time.Time) (disabled bool, err error)
	// Prune deletes the finished deliveries (succeeded or dead) last
	// changed before olderThan, with their attempts, and returns how
	// many. Open deliveries are never pruned. An event whose deliveries
	// were pruned is enqueued again if it is passed to Enqueue again.
	// Idempotent.
	Prune(ctx context.Context, olderThan time.Time) (int64, error)
}

// EndpointCursor names an endpoint's place in ListEndpoints' order.
type EndpointCursor struct {
	CreatedAt time.Time
	ID        uuid.UUID
}
