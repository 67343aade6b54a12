package domain_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/domain"
)

var entryID = booking3ID

func TestWaitlist(t *testing.T) {
	t.Parallel()
	p := bookingPolicy(t)
	join := domain.WaitlistJoined{EntryID: entryID, TenantID: tenantID, ResourceID: resourceID, ClientID: clientID,
		Start: bStart, End: bEnd, Seats: 1, Timezone: "UTC", JoinedBy: client.ID, JoinedAt: t0}
	req := domain.WaitlistRequest{ResourceID: resourceID, Start: bStart, End: bEnd}
	tests := []struct {
		name  string
		given []domain.Event
		when  func(w *domain.Waitlist) error
		then  []domain.Event
		err   error
	}{
		{"client joins", nil,
			func(w *domain.Waitlist) error { return w.Join(entryID, req, p, client, t0) },
			[]domain.Event{join}, nil},
		{"the same client and time twice", []domain.Event{join},
			func(w *domain.Waitlist) error { return w.Join(bookingID, req, p, client, t0) },
			nil, domain.ErrValidationFailed},
		{"a time the policy refuses", nil,
			func(w *domain.Waitlist) error {
				r := req
				r.Start = bStart.Add(5 * time.Minute)
				return w.Join(entryID, r, p, client, t0)
			},
			nil, domain.ErrOffSlotGrid},
		{"a client joins only for itself", nil,
			func(w *domain.Waitlist) error {
				r := req
				r.ClientID = otherID
				return w.Join(entryID, r, p, client, t0)
			},
			nil, domain.ErrForbidden},
		{"promote to a hold", []domain.Event{join},
			func(w *domain.Waitlist) error { return w.Promote(entryID, domain.PromotedToHold, holdID, t0) },
			[]domain.Event{domain.WaitlistPromoted{EntryID: entryID, ClientID: clientID, Kind: domain.PromotedToHold, HoldID: ptr(holdID), At: t0}}, nil},
		{"promote twice", []domain.Event{join, domain.WaitlistPromoted{EntryID: entryID, Kind: domain.PromotedToHold, HoldID: ptr(holdID), At: t0}},
			func(w *domain.Waitlist) error { return w.Promote(entryID, domain.PromotedToBooking, bookingID, t0) },
			nil, domain.ErrInvalidTransition},
		{"leave", []domain.Event{join},
			func(w *domain.Waitlist) error { return w.Leave(entryID, client, t0) },
			[]domain.Event{domain.WaitlistLeft{EntryID: entryID, Actor: client.ID, ActorRole: domain.RoleClient, At: t0}}, nil},
		{"a stranger cannot see the entry", []domain.Event{join},
			func(w *domain.Waitlist) error { return w.Leave(entryID, stranger, t0) },
			nil, domain.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := domain.NewWaitlist()
			require.NoError(t, w.Replay(tt.given...))
			requireErrorIs(t, tt.err, tt.when(w))
			require.Equal(t, tt.then, w.Changes())
		})
	}
}

func TestWaitlistIsFirstComeFirstServed(t *testing.T) {
	t.Parallel()
	p := MustPolicy(t, domain.SettingsInput{BusinessHours: allWeek(rng("00:00", "24:00"))})
	w := domain.NewWaitlist()
	a := domain.Actor{ID: clientID.String(), Role: domain.RoleClient}
	b := domain.Actor{ID: otherID.String(), Role: domain.RoleClient}
	req := domain.WaitlistRequest{ResourceID: resourceID, Start: bStart, End: bEnd}
	require.NoError(t, w.Join(bookingID, req, p, a, t0))
	require.NoError(t, w.Join(booking2ID, req, p, b, t0.Add(time.Second)))
	require.NoError(t, w.Join(booking3ID, domain.WaitlistRequest{ResourceID: resourceID, Start: bEnd, End: bEnd.Add(time.Hour)}, p, a, t0))
	waiting := w.Waiting()
	require.Len(t, waiting, 3)
	require.Equal(t, bookingID, waiting[0].ID)
	require.Equal(t, 1, waiting[0].Position)
	require.NoError(t, w.Promote(bookingID, domain.PromotedToBooking, holdID, t0))
	e, ok := w.Entry(booking2ID)
	require.True(t, ok)
	require.Equal(t, 1, e.Position, "the next in line moves up")
	e, _ = w.Entry(bookingID)
	require.Equal(t, domain.WaitlistStatusPromoted, e.Status)
	require.EqualValues(t, 2, e.Version)
}
