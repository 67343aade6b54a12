package domain_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/domain"
)

var (
	holdID      = booking2ID
	holdExpires = t0.Add(15 * time.Minute)
)

func placed() domain.HoldPlaced {
	return domain.HoldPlaced{
		HoldID: holdID, TenantID: tenantID, ResourceID: resourceID, ClientID: clientID,
		Start: bStart, End: bEnd, Seats: 1, ExpiresAt: holdExpires, PolicyVersion: 1,
		BufferAfterMinutes: 15, Timezone: "UTC", PlacedBy: client.ID, PlacedAt: t0,
	}
}

func TestPlaceHold(t *testing.T) {
	t.Parallel()
	p := bookingPolicy(t)
	tests := []struct {
		name  string
		given []domain.Event // the bucket
		req   domain.HoldRequest
		actor domain.Actor
		then  []domain.Event
		err   error
	}{
		{"client holds for itself", nil,
			domain.HoldRequest{ResourceID: resourceID, Start: bStart, End: bEnd}, client,
			[]domain.Event{placed()}, nil},
		{"a hold passes the policy", nil,
			domain.HoldRequest{ResourceID: resourceID, Start: bStart.Add(7 * time.Minute), End: bEnd}, client,
			nil, domain.ErrOffSlotGrid},
		{"a booking in the way", []domain.Event{reserved(bookingID, bStart, bEnd, 1)},
			domain.HoldRequest{ResourceID: resourceID, Start: bStart, End: bEnd}, client,
			nil, domain.ErrBookingConflict},
		{"a client holds only for itself", nil,
			domain.HoldRequest{ResourceID: resourceID, ClientID: otherID, Start: bStart, End: bEnd}, client,
			nil, domain.ErrForbidden},
		{"ttl out of range", nil,
			domain.HoldRequest{ResourceID: resourceID, Start: bStart, End: bEnd, TTLMinutes: domain.MaxHoldMinutes + 1}, admin,
			nil, domain.ErrValidationFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, err := domain.PlaceHold(holdID, tt.req, p, occupancy(t, tt.given...), tt.actor, t0)
			requireErrorIs(t, tt.err, err)
			if err == nil {
				require.Equal(t, tt.then, h.Changes())
				require.Equal(t, domain.HoldStatusActive, h.Status())
			}
		})
	}
}

func TestHoldLifecycle(t *testing.T) {
	t.Parallel()
	consume := domain.BookingRequest{ResourceID: resourceID, ClientID: clientID, Start: bStart, End: bEnd}
	released := domain.HoldReleased{HoldID: holdID, Reason: domain.HoldReleasedByCaller, Actor: client.ID, ActorRole: domain.RoleClient, At: t0}
	tests := []struct {
		name   string
		given  []domain.Event
		when   func(h *domain.Hold) error
		then   []domain.Event
		status domain.HoldStatus
		err    error
	}{
		{"release", []domain.Event{placed()},
			func(h *domain.Hold) error { return h.Release(client, t0) },
			[]domain.Event{released}, domain.HoldStatusReleased, nil},
		{"release twice is a no-op", []domain.Event{placed(), released},
			func(h *domain.Hold) error { return h.Release(client, t0) },
			nil, domain.HoldStatusReleased, nil},
		{"a stranger may not release", []domain.Event{placed()},
			func(h *domain.Hold) error { return h.Release(stranger, t0) },
			nil, domain.HoldStatusActive, domain.ErrForbidden},
		{"consume", []domain.Event{placed()},
			func(h *domain.Hold) error { return h.Consume(bookingID, consume, client, t0) },
			[]domain.Event{domain.HoldReleased{HoldID: holdID, Reason: domain.HoldConsumed, BookingID: ptr(bookingID), Actor: client.ID, ActorRole: domain.RoleClient, At: t0}},
			domain.HoldStatusConsumed, nil},
		{"consume a part of the hold", []domain.Event{placed()},
			func(h *domain.Hold) error {
				r := consume
				r.End = bStart.Add(30 * time.Minute)
				return h.Consume(bookingID, r, admin, t0)
			},
			[]domain.Event{domain.HoldReleased{HoldID: holdID, Reason: domain.HoldConsumed, BookingID: ptr(bookingID), Actor: admin.ID, ActorRole: domain.RoleAdmin, At: t0}},
			domain.HoldStatusConsumed, nil},
		{"a booking outside the hold", []domain.Event{placed()},
			func(h *domain.Hold) error {
				r := consume
				r.End = bEnd.Add(time.Hour)
				return h.Consume(bookingID, r, client, t0)
			},
			nil, domain.HoldStatusActive, domain.ErrValidationFailed},
		{"an expired hold cannot be consumed, even before the scheduler ran", []domain.Event{placed()},
			func(h *domain.Hold) error { return h.Consume(bookingID, consume, client, holdExpires) },
			nil, domain.HoldStatusActive, domain.ErrInvalidTransition},
		{"a released hold cannot be consumed", []domain.Event{placed(), released},
			func(h *domain.Hold) error { return h.Consume(bookingID, consume, client, t0) },
			nil, domain.HoldStatusReleased, domain.ErrInvalidTransition},
		{"expire when due", []domain.Event{placed()},
			func(h *domain.Hold) error { return h.Expire(holdExpires) },
			[]domain.Event{domain.HoldExpired{HoldID: holdID, ExpiresAt: holdExpires, At: holdExpires}}, domain.HoldStatusExpired, nil},
		{"not due yet", []domain.Event{placed()},
			func(h *domain.Hold) error { return h.Expire(holdExpires.Add(-time.Second)) },
			nil, domain.HoldStatusActive, domain.ErrInvalidTransition},
		{"expire an ended hold records nothing", []domain.Event{placed(), released},
			func(h *domain.Hold) error { return h.Expire(holdExpires) },
			nil, domain.HoldStatusReleased, nil},
		{"a consumed hold cannot be released", []domain.Event{placed(),
			domain.HoldReleased{HoldID: holdID, Reason: domain.HoldConsumed, BookingID: ptr(bookingID), At: t0}},
			func(h *domain.Hold) error { return h.Release(admin, t0) },
			nil, domain.HoldStatusConsumed, domain.ErrInvalidTransition},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := &domain.Hold{}
			require.NoError(t, h.Replay(tt.given...))
			requireErrorIs(t, tt.err, tt.when(h))
			require.Equal(t, tt.then, h.Changes())
			require.Equal(t, tt.status, h.Status())
		})
	}
}
