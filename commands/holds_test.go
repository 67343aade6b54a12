package commands_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/commands"
	"github.com/bookingengine/booking/domain"
)

func (f zoneFixture) hold(ctx context.Context, m commands.Meta, start time.Time, minutes, ttl int) (commands.Result, error) {
	return f.h.PlaceHold(ctx, m, commands.PlaceHold{Request: domain.HoldRequest{
		ResourceID: f.resource, Start: start, End: start.Add(time.Duration(minutes) * time.Minute), TTLMinutes: ttl,
	}})
}

func TestHoldsCountInConflicts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newZoneFixture(t, "UTC", clock, 1, domain.SettingsInput{BufferAfterMinutes: intp(15)})
	me := f.clientMeta(f.client)
	start := at(3, 9, 0)
	res, err := f.hold(ctx, me, start, 60, 10)
	require.NoError(t, err)
	view := res.View.(domain.HoldView)
	require.Equal(t, domain.HoldStatusActive, view.Status)
	require.True(t, clock.Add(10*time.Minute).Equal(view.ExpiresAt))

	var ce *domain.ConflictError
	_, err = f.book(ctx, f.admin, start.Add(30*time.Minute), start.Add(90*time.Minute))
	require.ErrorAs(t, err, &ce)
	require.Equal(t, res.ID, ce.Conflicts[0].BookingID, "the hold is in the way")
	_, err = f.book(ctx, f.admin, start.Add(60*time.Minute), start.Add(120*time.Minute))
	require.ErrorIs(t, err, domain.ErrBookingConflict, "with the buffer, like a booking")
	_, err = f.hold(ctx, f.admin, start, 60, 10)
	require.ErrorIs(t, err, domain.ErrBookingConflict, "a hold conflicts with a hold")

	// Another client cannot see it nor release it; its owner can.
	other := f.clientMeta(f.newClient(t))
	_, err = f.h.ReleaseHold(ctx, other, commands.ReleaseHold{HoldID: res.ID})
	require.ErrorIs(t, err, domain.ErrNotFound)
	_, err = f.h.ReleaseHold(ctx, me, commands.ReleaseHold{HoldID: res.ID})
	require.NoError(t, err)
	_, err = f.h.ReleaseHold(ctx, me, commands.ReleaseHold{HoldID: res.ID})
	require.NoError(t, err, "releasing twice is a no-op")
	require.Len(t, events(t, f.store, "hold", domain.EventHoldReleased), 1)
	_, err = f.book(ctx, f.admin, start.Add(30*time.Minute), start.Add(90*time.Minute))
	require.NoError(t, err, "a released hold frees its time")
}

func TestBookingConsumesHold(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newZoneFixture(t, "UTC", clock, 1, domain.SettingsInput{})
	me := f.clientMeta(f.client)
	start := at(3, 9, 0)
	h, err := f.hold(ctx, me, start, 60, 10)
	require.NoError(t, err)

	// Someone else may not use it.
	other := f.newClient(t)
	_, err = f.h.CreateBooking(ctx, f.clientMeta(other), commands.CreateBooking{HoldID: h.ID, Request: domain.BookingRequest{
		ResourceID: f.resource, Start: start, End: start.Add(time.Hour)}})
	require.ErrorIs(t, err, domain.ErrForbidden)
	// Not outside its time.
	_, err = f.h.CreateBooking(ctx, me, commands.CreateBooking{HoldID: h.ID, Request: domain.BookingRequest{
		ResourceID: f.resource, Start: start, End: start.Add(2 * time.Hour)}})
	require.ErrorIs(t, err, domain.ErrValidationFailed)

	b, err := f.h.CreateBooking(ctx, me, commands.CreateBooking{HoldID: h.ID, Request: domain.BookingRequest{
		ResourceID: f.resource, Start: start, End: start.Add(time.Hour)}})
	require.NoError(t, err, "the hold's own seats do not count against its booking")
	require.Equal(t, h.ID, *b.View.(domain.BookingView).HoldID)
	hd, err := f.h.Hold(ctx, me, h.ID)
	require.NoError(t, err)
	require.Equal(t, domain.HoldStatusConsumed, hd.Status())
	require.Equal(t, b.ID, *hd.View().BookingID)
	// Consumed once only, and the booking holds the time now.
	_, err = f.h.CreateBooking(ctx, me, commands.CreateBooking{HoldID: h.ID, Request: domain.BookingRequest{
		ResourceID: f.resource, Start: start, End: start.Add(time.Hour)}})
	require.ErrorIs(t, err, domain.ErrInvalidTransition)
	_, err = f.book(ctx, f.admin, start, start.Add(time.Hour))
	require.ErrorIs(t, err, domain.ErrBookingConflict)
	_, err = f.h.ReleaseHold(ctx, me, commands.ReleaseHold{HoldID: h.ID})
	require.ErrorIs(t, err, domain.ErrInvalidTransition)
}

func TestExpiredHoldCannotBeConsumed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newZoneFixture(t, "UTC", clock, 1, domain.SettingsInput{})
	me := f.clientMeta(f.client)
	start := at(3, 9, 0)
	h, err := f.hold(ctx, me, start, 60, 10)
	require.NoError(t, err)
	f.clock.Advance(10 * time.Minute)
	_, err = f.h.CreateBooking(ctx, me, commands.CreateBooking{HoldID: h.ID, Request: domain.BookingRequest{
		ResourceID: f.resource, Start: start, End: start.Add(time.Hour)}})
	require.ErrorIs(t, err, domain.ErrInvalidTransition, "past expires_at, even before the scheduler ran")
	expired, err := f.h.ExpireHold(ctx, f.tenant, h.ID)
	require.NoError(t, err)
	require.True(t, expired)
	_, err = f.h.CreateBooking(ctx, me, commands.CreateBooking{HoldID: h.ID, Request: domain.BookingRequest{
		ResourceID: f.resource, Start: start, End: start.Add(time.Hour)}})
	require.ErrorIs(t, err, domain.ErrInvalidTransition)
	_, err = f.book(ctx, me, start, start.Add(time.Hour))
	require.NoError(t, err, "the expired hold's time is free")
}

// TestHoldExpirySurvivesRestart expires holds with a scheduler that was
// not running when they were placed: it finds them from the store.
func TestHoldExpirySurvivesRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newZoneFixture(t, "UTC", clock, 1, domain.SettingsInput{})
	first := commands.NewHoldExpirer(f.h, commands.HoldExpirerConfig{})
	h1, err := f.hold(ctx, f.admin, at(3, 9, 0), 60, 10)
	require.NoError(t, err)
	n, err := first.Tick(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "not due yet")
	// The process stops; another hold is placed meanwhile; time passes.
	h2, err := f.hold(ctx, f.admin, at(3, 11, 0), 60, 20)
	require.NoError(t, err)
	f.clock.Advance(15 * time.Minute)
	restarted := commands.NewHoldExpirer(f.h, commands.HoldExpirerConfig{})
	n, err = restarted.Tick(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	f.clock.Advance(10 * time.Minute)
	again := commands.NewHoldExpirer(f.h, commands.HoldExpirerConfig{})
	n, err = again.Tick(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n, "the checkpoint did not move past the open hold")
	for _, id := range []uuid.UUID{h1.ID, h2.ID} {
		hd, err := f.h.Hold(ctx, f.admin, id)
		require.NoError(t, err)
		require.Equal(t, domain.HoldStatusExpired, hd.Status())
	}
	n, err = again.Tick(ctx)
	require.NoError(t, err)
	require.Zero(t, n)
	require.Len(t, events(t, f.store, "hold", domain.EventHoldExpired), 2)
	_, err = f.book(ctx, f.admin, at(3, 9, 0), at(3, 12, 0))
	require.NoError(t, err, "expiry freed the time")
}

// TestHoldExpiryTwoProcesses runs two schedulers (two sets of handlers on
// one store, as two processes) at once: each hold expires exactly once.
func TestHoldExpiryTwoProcesses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newZoneFixture(t, "UTC", clock, 1, domain.SettingsInput{})
	const holds = 12
	for i := range holds {
		_, err := f.hold(ctx, f.admin, at(4, 0, 0).Add(time.Duration(i)*time.Hour), 60, 5)
		require.NoError(t, err)
	}
	f.clock.Advance(time.Hour)
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for range 2 {
		other := commands.New(f.store, commands.WithClock(f.clock.Now))
		exp := commands.NewHoldExpirer(other, commands.HoldExpirerConfig{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				n, err := exp.Tick(ctx)
				if err != nil {
					t.Errorf("tick: %v", err)
				}
				mu.Lock()
				total += n
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	require.Equal(t, holds, total)
	require.Len(t, events(t, f.store, "hold", domain.EventHoldExpired), holds, "exactly one hold.expired per hold")
}
