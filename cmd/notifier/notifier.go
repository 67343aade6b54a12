package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/eventstore"
	"github.com/bookingengine/booking/stream"
)

// Notification is one message a client would receive, written as a JSON
// line.
type Notification struct {
	// EventID and Type name the event that caused it; a sender passes
	// EventID to its provider as an idempotency key.
	EventID uuid.UUID `json:"event_id"`
	Type    string    `json:"type"`
	// TenantID, BookingID and ClientID say whose booking it is.
	TenantID  uuid.UUID `json:"tenant_id"`
	BookingID uuid.UUID `json:"booking_id"`
	ClientID  uuid.UUID `json:"client_id"`
	// To is the client's e-mail address.
	To string `json:"to"`
	// Message is the text, in the tenant's vocabulary.
	Message string `json:"message"`
	// Sequence and StreamVersion locate the event that caused it.
	Sequence      int64 `json:"sequence"`
	StreamVersion int64 `json:"stream_version"`
	// At is when the event was recorded.
	At time.Time `json:"at"`
}

// Notifier turns booking events into the messages their clients would
// get, worded with the tenant's labels ("Consulta", "Dentista"), and
// writes them to out as JSON lines. It reads the tenant, resource, client
// and booking by replaying their streams from the event store, keeping
// the aggregates it built (up to cacheLimit streams) and replaying only
// their new events on later use. Safe for concurrent use: calls are
// serialised.
type Notifier struct {
	store eventstore.Store

	mu    sync.Mutex
	out   io.Writer
	enc   *json.Encoder
	cache map[string]replayer
}

// cacheLimit bounds the aggregates kept; past it the cache starts over.
const cacheLimit = 10_000

type replayer interface {
	Replay(events ...domain.Event) error
	Version() int64
}

// NewNotifier returns a notifier that reads store and writes to out.
func NewNotifier(store eventstore.Store, out io.Writer) *Notifier {
	return &Notifier{store: store, out: out, enc: json.NewEncoder(out), cache: map[string]replayer{}}
}

// Handle is the subscriber.Handler: it writes the notification of e, if
// e calls for one (other events are ignored). It fails, so that the
// subscriber retries, when the store cannot be read or out cannot be
// written.
func (n *Notifier) Handle(ctx context.Context, e stream.Event) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	note, ok, err := n.compose(ctx, e)
	if err != nil || !ok {
		return err
	}
	if err := n.enc.Encode(note); err != nil {
		return fmt.Errorf("write notification: %w", err)
	}
	return nil
}

// compose builds the notification of e; ok is false for events that call
// for none.
func (n *Notifier) compose(ctx context.Context, e stream.Event) (Notification, bool, error) {
	if !strings.HasPrefix(e.Type, "booking.") || !strings.HasPrefix(e.StreamID, "booking-") {
		return Notification{}, false, nil
	}
	b, err := n.bookingAt(ctx, e.StreamID, e.StreamVersion)
	if err != nil {
		return Notification{}, false, err
	}
	var outcome string
	switch e.Type {
	case domain.EventBookingCreated:
		if b.Status() == domain.StatusPending {
			outcome = "is awaiting approval"
		} else {
			outcome = "is confirmed"
		}
	case domain.EventBookingStatusChanged:
		switch b.Status() {
		case domain.StatusConfirmed:
			outcome = "is confirmed"
		case domain.StatusRejected:
			outcome = "was declined"
		case domain.StatusNoShow:
			outcome = "was marked as missed"
		default:
			return Notification{}, false, nil // check-in and completion need no message
		}
	case domain.EventBookingCancelled:
		outcome = "was cancelled"
	case domain.EventBookingRescheduled:
		outcome = "was moved to this time"
	default:
		return Notification{}, false, nil
	}

	tenant, err := current(ctx, n, domain.TenantStream(b.TenantID()), func() *domain.Tenant { return &domain.Tenant{} })
	if err != nil {
		return Notification{}, false, err
	}
	resource, err := current(ctx, n, domain.ResourceStream(b.ResourceID()), func() *domain.Resource { return &domain.Resource{} })
	if err != nil {
		return Notification{}, false, err
	}
	client, err := current(ctx, n, domain.UserStream(b.ClientID()), func() *domain.User { return &domain.User{} })
	if err != nil {
		return Notification{}, false, err
	}

	labels := tenant.View().Labels
	what := labels["booking"]
	if what == "" {
		what = "booking"
	}
	with := resource.Name()
	if l := labels["resource"]; l != "" {
		with = l + " " + with
	}
	loc := b.Location()
	name := client.Name()
	if name == "" {
		name = "Hello"
	}
	msg := fmt.Sprintf("%s, your %s with %s on %s (%s) %s", name, what, with,
		b.Start().In(loc).Format("2006-01-02 15:04"), loc.String(), outcome)
	return Notification{
		EventID: e.ID, Type: e.Type, TenantID: b.TenantID(), BookingID: b.ID(), ClientID: b.ClientID(),
		To: client.Email(), Message: msg, Sequence: e.Sequence, StreamVersion: e.StreamVersion, At: e.Time,
	}, true, nil
}

// bookingAt replays the booking stream up to version, so the message
// describes the booking as this event left it, not as it is now.
func (n *Notifier) bookingAt(ctx context.Context, streamID string, version int64) (*domain.Booking, error) {
	recs, err := n.store.Load(ctx, streamID, 0)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", streamID, err)
	}
	if int64(len(recs)) < version {
		return nil, fmt.Errorf("load %s: version %d not in the store (have %d)", streamID, version, len(recs))
	}
	events, err := decode(recs[:version])
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", streamID, err)
	}
	b := &domain.Booking{}
	if err := b.Replay(events...); err != nil {
		return nil, fmt.Errorf("load %s: %w", streamID, err)
	}
	return b, nil
}

// current returns the cached aggregate of streamID brought up to date, or
// a new one (from fresh) replayed from the start. It must be called with
// n.mu held.
func current[T replayer](ctx context.Context, n *Notifier, streamID string, fresh func() T) (T, error) {
	agg, ok := n.cache[streamID].(T)
	if !ok {
		agg = fresh()
	}
	recs, err := n.store.Load(ctx, streamID, agg.Version())
	if err != nil {
		return agg, fmt.Errorf("load %s: %w", streamID, err)
	}
	events, err := decode(recs)
	if err == nil {
		err = agg.Replay(events...)
	}
	if err != nil {
		delete(n.cache, streamID)
		return agg, fmt.Errorf("load %s: %w", streamID, err)
	}
	if agg.Version() == 0 {
		return agg, fmt.Errorf("load %s: %w", streamID, domain.ErrNotFound)
	}
	if len(n.cache) >= cacheLimit {
		clear(n.cache)
	}
	n.cache[streamID] = agg
	return agg, nil
}

func decode(recs []eventstore.RecordedEvent) ([]domain.Event, error) {
	out := make([]domain.Event, 0, len(recs))
	for _, r := range recs {
		e, err := domain.UnmarshalEvent(r.Type, r.Data)
		if err != nil {
			if errors.Is(err, domain.ErrUnknownEventType) {
				return nil, fmt.Errorf("event %s: %w (is this notifier older than the events?)", r.ID, err)
			}
			return nil, fmt.Errorf("event %s: %w", r.ID, err)
		}
		out = append(out, e)
	}
	return out, nil
}
