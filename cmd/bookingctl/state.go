package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/eventstore"
	"github.com/bookingengine/booking/eventstore/postgres"
	"github.com/google/uuid"
)

func runState(ctx context.Context, m *Main, args []string) error {
	fs := m.flagSet("state", "state (--booking ID | --resource ID) [--at TIME]\n\n"+
		"Prints, as JSON, the aggregate as it stood at TIME: its stream replayed through\n"+
		"the domain up to the last event recorded at or before TIME (recorded_at is the\n"+
		"appending transaction's start), with the tenant policy then in force.\n"+
		"--booking adds the policy version that accepted the booking's times and the\n"+
		"settings of that version. --resource adds the bookings of the resource that\n"+
		"held their slot at TIME (pending, confirmed, checked_in) and had not ended.")
	dbFlag := databaseFlag(fs)
	booking := fs.String("booking", "", "booking id")
	resource := fs.String("resource", "", "resource id")
	atFlag := fs.String("at", "", "RFC 3339 time (default: now)")
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.exactlyOne("booking", "resource"); err != nil {
		return err
	}
	var (
		id  uuid.UUID
		err error
	)
	isBooking := fs.given()["booking"]
	if isBooking {
		id, err = parseID("booking", *booking)
	} else {
		id, err = parseID("resource", *resource)
	}
	if err != nil {
		return err
	}
	at, err := parseTime("at", *atFlag)
	if err != nil {
		return err
	}
	if at.IsZero() {
		at = m.now().UTC().Truncate(time.Microsecond)
	}
	dbURL, err := m.databaseURL(dbFlag)
	if err != nil {
		return err
	}
	store, err := openStore(ctx, dbURL)
	if err != nil {
		return err
	}
	defer store.Close()

	var out any
	if isBooking {
		out, err = bookingStateAt(ctx, store, id, at)
	} else {
		out, err = resourceStateAt(ctx, store, id, at)
	}
	if err != nil {
		return err
	}
	enc := json.NewEncoder(m.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// BookingState is what state --booking prints: the booking as it stood at
// At, and the two tenant policies that explain it.
type BookingState struct {
	At        time.Time          `json:"at"`
	Stream    string             `json:"stream"`
	LastEvent EventRef           `json:"last_event"`
	Booking   domain.BookingView `json:"booking"`
	// AcceptedBy is the policy version that accepted the booking's current
	// times (at creation or at the last reschedule), with its settings.
	AcceptedBy *PolicyAt `json:"accepted_by"`
	// InForce is the tenant's policy at At.
	InForce *PolicyAt `json:"policy_in_force"`
}

// ResourceState is what state --resource prints.
type ResourceState struct {
	At        time.Time           `json:"at"`
	Stream    string              `json:"stream"`
	LastEvent EventRef            `json:"last_event"`
	Resource  domain.ResourceView `json:"resource"`
	InForce   *PolicyAt           `json:"policy_in_force"`
	// ActiveBookings are the resource's bookings that held their slot at
	// At and had not ended by then, by start.
	ActiveBookings []domain.BookingView `json:"active_bookings"`
}

// EventRef names the last event an aggregate state includes.
type EventRef struct {
	Position      int64     `json:"position"`
	StreamVersion int64     `json:"stream_version"`
	Type          string    `json:"type"`
	RecordedAt    time.Time `json:"recorded_at"`
}

// PolicyAt is one version of a tenant's policy: its settings and the event
// that started it.
type PolicyAt struct {
	TenantID      uuid.UUID       `json:"tenant_id"`
	PolicyVersion int             `json:"policy_version"`
	Since         time.Time       `json:"since"`
	Position      int64           `json:"position"`
	EventType     string          `json:"event_type"`
	Settings      domain.Settings `json:"settings"`
}

// errNotYet reports an aggregate whose first event came after --at.
var errNotYet = errors.New("did not exist yet")

// loadUntil returns the stream's events up to the first one recorded after
// at. It stops at that event rather than filtering, because a stream's
// recorded_at need not rise with its version (recorded_at is the append
// transaction's start; a writer that waited for the stream lock appends
// after a later-started one) and a replay cannot skip a version.
func loadUntil(ctx context.Context, store *postgres.Store, stream string, at time.Time) (all, upTo []eventstore.RecordedEvent, err error) {
	all, err = store.Load(ctx, stream, 0)
	if err != nil {
		return nil, nil, schemaHint(err)
	}
	n := 0
	for n < len(all) && !all[n].RecordedAt.After(at) {
		n++
	}
	return all, all[:n], nil
}

func decodeEvents(recs []eventstore.RecordedEvent) ([]domain.Event, error) {
	events := make([]domain.Event, 0, len(recs))
	for _, r := range recs {
		e, err := domain.UnmarshalEvent(r.Type, r.Data)
		if err != nil {
			return nil, fmt.Errorf("%s version %d: %w", r.StreamID, r.StreamVersion, err)
		}
		events = append(events, e)
	}
	return events, nil
}

// replayUntil loads stream up to at and replays it into agg. kind and id
// name the aggregate in errors: not found when the stream is empty,
// errNotYet when it begins after at.
func replayUntil(ctx context.Context, store *postgres.Store, kind string, id uuid.UUID, stream string, at time.Time, agg domain.Aggregate) (EventRef, error) {
	all, upTo, err := loadUntil(ctx, store, stream, at)
	if err != nil {
		return EventRef{}, err
	}
	if len(all) == 0 {
		return EventRef{}, fmt.Errorf("%s %s: %w", kind, id, domain.ErrNotFound)
	}
	if len(upTo) == 0 {
		return EventRef{}, fmt.Errorf("%s %s %w at %s: its first event was recorded at %s",
			kind, id, errNotYet, at.Format(time.RFC3339Nano), all[0].RecordedAt.Format(time.RFC3339Nano))
	}
	events, err := decodeEvents(upTo)
	if err != nil {
		return EventRef{}, err
	}
	if err := agg.Replay(events...); err != nil {
		return EventRef{}, fmt.Errorf("replay %s: %w", stream, err)
	}
	last := upTo[len(upTo)-1]
	return EventRef{Position: last.Position, StreamVersion: last.StreamVersion, Type: last.Type, RecordedAt: last.RecordedAt}, nil
}

// tenantPolicies replays the tenant's whole stream and returns every policy
// version it started (by version) and the one in force at at (nil when the
// tenant did not exist yet).
func tenantPolicies(ctx context.Context, store *postgres.Store, tenantID uuid.UUID, at time.Time) (map[int]*PolicyAt, *PolicyAt, error) {
	stream := domain.TenantStream(tenantID)
	all, upTo, err := loadUntil(ctx, store, stream, at)
	if err != nil {
		return nil, nil, err
	}
	events, err := decodeEvents(all)
	if err != nil {
		return nil, nil, err
	}
	var (
		t        domain.Tenant
		versions = map[int]*PolicyAt{}
		inForce  *PolicyAt
	)
	for i, e := range events {
		before := t.PolicyVersion()
		if err := t.Replay(e); err != nil {
			return nil, nil, fmt.Errorf("replay %s: %w", stream, err)
		}
		if v := t.PolicyVersion(); v != before {
			versions[v] = &PolicyAt{
				TenantID: tenantID, PolicyVersion: v, Since: all[i].RecordedAt,
				Position: all[i].Position, EventType: all[i].Type, Settings: t.Settings(),
			}
		}
		if i < len(upTo) {
			inForce = versions[t.PolicyVersion()]
		}
	}
	return versions, inForce, nil
}

func bookingStateAt(ctx context.Context, store *postgres.Store, id uuid.UUID, at time.Time) (BookingState, error) {
	stream := domain.BookingStream(id)
	var b domain.Booking
	last, err := replayUntil(ctx, store, "booking", id, stream, at, &b)
	if err != nil {
		return BookingState{}, err
	}
	versions, inForce, err := tenantPolicies(ctx, store, b.TenantID(), at)
	if err != nil {
		return BookingState{}, err
	}
	return BookingState{
		At: at, Stream: stream, LastEvent: last, Booking: b.View(),
		AcceptedBy: versions[b.PolicyVersion()], InForce: inForce,
	}, nil
}

func resourceStateAt(ctx context.Context, store *postgres.Store, id uuid.UUID, at time.Time) (ResourceState, error) {
	stream := domain.ResourceStream(id)
	var r domain.Resource
	last, err := replayUntil(ctx, store, "resource", id, stream, at, &r)
	if err != nil {
		return ResourceState{}, err
	}
	_, inForce, err := tenantPolicies(ctx, store, r.TenantID(), at)
	if err != nil {
		return ResourceState{}, err
	}
	active, err := activeBookings(ctx, store, id, at)
	if err != nil {
		return ResourceState{}, err
	}
	return ResourceState{
		At: at, Stream: stream, LastEvent: last, Resource: r.View(),
		InForce: inForce, ActiveBookings: active,
	}, nil
}

// activeBookingsQuery streams the events, recorded by $2, of every booking
// of resource $1, stream by stream.
const activeBookingsQuery = `SELECT ` + storedColumns + ` FROM booking_events
	WHERE stream_id IN (SELECT stream_id FROM booking_events
	                     WHERE category = 'booking' AND type = 'booking.created'
	                       AND data->>'resource_id' = $1 AND recorded_at <= $2)
	  AND recorded_at <= $2
	ORDER BY stream_id, stream_version`

// activeBookings replays every booking of the resource up to at, streaming
// the rows one booking at a time, and keeps those that held their slot at
// at and end after it.
func activeBookings(ctx context.Context, store *postgres.Store, resourceID uuid.UUID, at time.Time) ([]domain.BookingView, error) {
	out := []domain.BookingView{}
	var (
		cur     *domain.Booking
		stream  string
		stopped bool
	)
	flush := func() {
		if cur != nil && cur.IsActive() && cur.End().After(at) {
			out = append(out, cur.View())
		}
		cur = nil
	}
	err := forEachEvent(ctx, store.Pool(), activeBookingsQuery, []any{resourceID.String(), at}, func(se storedEvent) error {
		if se.StreamID != stream {
			flush()
			stream, stopped, cur = se.StreamID, false, &domain.Booking{}
		}
		// A version missing here was recorded after at, so the stream
		// stops before it (see loadUntil).
		if stopped || se.StreamVersion != cur.Version()+1 {
			stopped = true
			return nil
		}
		rec, err := se.recorded(store.Upcasters())
		if err != nil {
			return err
		}
		e, err := domain.UnmarshalEvent(rec.Type, rec.Data)
		if err != nil {
			return fmt.Errorf("%s version %d: %w", rec.StreamID, rec.StreamVersion, err)
		}
		if err := cur.Replay(e); err != nil {
			return fmt.Errorf("replay %s: %w", se.StreamID, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	flush()
	slices.SortFunc(out, func(a, b domain.BookingView) int {
		return cmp.Or(a.Start.Compare(b.Start), cmp.Compare(a.ID.String(), b.ID.String()))
	})
	return out, nil
}
