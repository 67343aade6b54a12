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

func (f zoneFixture) join(t *testing.T, client uuid.UUID, start time.Time, minutes int) domain.WaitlistEntry {
	t.Helper()
	res, err := f.h.JoinWaitlist(context.Background(), f.clientMeta(client), commands.JoinWaitlist{Request: domain.WaitlistRequest{
		ResourceID: f.resource, Start: start, End: start.Add(time.Duration(minutes) * time.Minute)}})
	require.NoError(t, err)
	return res.View.(domain.WaitlistEntry)
}

func (f zoneFixture) entry(t *testing.T, id uuid.UUID) domain.WaitlistEntry {
	t.Helper()
	e, err := f.h.WaitlistEntry(context.Background(), f.admin, id)
	require.NoError(t, err)
	return e
}

func TestWaitlistPromotesToAHoldOnCancel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newZoneFixture(t, "UTC", clock, 1, domain.SettingsInput{})
	start := at(3, 9, 0)
	b, err := f.book(ctx, f.admin, start, start.Add(time.Hour))
	require.NoError(t, err)
	first := f.join(t, f.newClient(t), start, 60)
	second := f.join(t, f.newClient(t), start, 60)
	require.Equal(t, domain.WaitlistStatusWaiting, first.Status)
	require.Equal(t, 2, second.Position)

	_, err = f.h.ChangeBookingStatus(ctx, f.admin, commands.ChangeBookingStatus{BookingID: b.ID, To: domain.StatusCancelled})
	require.NoError(t, err)
	e := f.entry(t, first.ID)
	require.Equal(t, domain.WaitlistStatusPromoted, e.Status, "first in line first")
	require.NotNil(t, e.HoldID)
	require.Equal(t, domain.WaitlistStatusWaiting, f.entry(t, second.ID).Status)
	hd, err := f.h.Hold(ctx, f.admin, *e.HoldID)
	require.NoError(t, err)
	require.Equal(t, first.ClientID, hd.ClientID())
	require.True(t, clock.Add(60*time.Minute).Equal(hd.ExpiresAt()), "waitlist_hold_minutes defaults to 60")
	_, err = f.book(ctx, f.admin, start, start.Add(time.Hour))
	require.ErrorIs(t, err, domain.ErrBookingConflict, "the promoted hold takes the time")
	require.Len(t, events(t, f.store, "waitlist", domain.EventWaitlistPromoted), 1)

	// The client books with the hold; the hold expiring instead would
	// have promoted the second in line.
	_, err = f.h.CreateBooking(ctx, f.clientMeta(first.ClientID), commands.CreateBooking{HoldID: hd.ID(), Request: domain.BookingRequest{
		ResourceID: f.resource, Start: start, End: start.Add(time.Hour)}})
	require.NoError(t, err)
}

func TestWaitlistPromotesToABookingAndOnHoldExpiry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newZoneFixture(t, "UTC", clock, 1, domain.SettingsInput{WaitlistPromotion: ptr(domain.WaitlistPromoteBooking)})
	start := at(3, 9, 0)
	h, err := f.hold(ctx, f.admin, start, 60, 5)
	require.NoError(t, err)
	entry := f.join(t, f.client, start.Add(30*time.Minute), 30)
	f.clock.Advance(5 * time.Minute)
	expired, err := f.h.ExpireHold(ctx, f.tenant, h.ID)
	require.NoError(t, err)
	require.True(t, expired)
	e := f.entry(t, entry.ID)
	require.Equal(t, domain.WaitlistStatusPromoted, e.Status)
	require.NotNil(t, e.BookingID)
	b := f.booking(t, *e.BookingID)
	require.Equal(t, f.client, b.ClientID())
	require.True(t, b.Start().Equal(start.Add(30*time.Minute)))
	require.Equal(t, domain.StatusConfirmed, b.Status())

	// Joining for a time that is free promotes at once.
	now := f.join(t, f.client, at(4, 9, 0), 60)
	require.Equal(t, domain.WaitlistStatusPromoted, now.Status)

	// Leaving: the client's own entry only; twice is a no-op.
	b2, err := f.book(ctx, f.admin, at(5, 9, 0), at(5, 10, 0))
	require.NoError(t, err)
	wait := f.join(t, f.client, at(5, 9, 0), 60)
	_, err = f.h.LeaveWaitlist(ctx, f.clientMeta(f.newClient(t)), commands.LeaveWaitlist{EntryID: wait.ID})
	require.ErrorIs(t, err, domain.ErrNotFound)
	_, err = f.h.LeaveWaitlist(ctx, f.clientMeta(f.client), commands.LeaveWaitlist{EntryID: wait.ID})
	require.NoError(t, err)
	_, err = f.h.LeaveWaitlist(ctx, f.clientMeta(f.client), commands.LeaveWaitlist{EntryID: wait.ID})
	require.NoError(t, err)
	_, err = f.h.ChangeBookingStatus(ctx, f.admin, commands.ChangeBookingStatus{BookingID: b2.ID, To: domain.StatusCancelled})
	require.NoError(t, err)
	require.Equal(t, domain.WaitlistStatusCancelled, f.entry(t, wait.ID).Status, "a cancelled entry is not promoted")

	list, err := f.h.Waitlist(ctx, f.admin, f.resource, true)
	require.NoError(t, err)
	require.Len(t, list, 3)
}

// TestConcurrentCancellationsPromoteOncePerSlot cancels three bookings of
// one three-seat slot at once with five clients in line: exactly three
// entries are promoted, the first three in line.
func TestConcurrentCancellationsPromoteOncePerSlot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newZoneFixture(t, "UTC", clock, 3, domain.SettingsInput{})
	start := at(3, 9, 0)
	var bookings []uuid.UUID
	for range 3 {
		b, err := f.book(ctx, f.admin, start, start.Add(time.Hour))
		require.NoError(t, err)
		bookings = append(bookings, b.ID)
	}
	var line []domain.WaitlistEntry
	for range 5 {
		line = append(line, f.join(t, f.newClient(t), start, 60))
	}
	var wg sync.WaitGroup
	for _, id := range bookings {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.h.ChangeBookingStatus(ctx, f.admin, commands.ChangeBookingStatus{BookingID: id, To: domain.StatusCancelled})
			if err != nil {
				t.Errorf("cancel: %v", err)
			}
		}()
	}
	wg.Wait()
	for i, e := range line {
		want := domain.WaitlistStatusWaiting
		if i < 3 {
			want = domain.WaitlistStatusPromoted
		}
		require.Equal(t, want, f.entry(t, e.ID).Status, "entry %d", i)
	}
	require.Len(t, events(t, f.store, "waitlist", domain.EventWaitlistPromoted), 3)
	require.Len(t, events(t, f.store, "hold", domain.EventHoldPlaced), 3)
	_, err := f.hold(ctx, f.admin, start, 60, 5)
	require.ErrorIs(t, err, domain.ErrBookingConflict, "the promotions took every freed seat, no more")
}

// TestBookingPartOfAHoldServesTheLine: a booking that takes only part of
// the hold it consumes (the first hour of two) frees the rest, and the
// client waiting for that rest is promoted in the same append, as the
// hold's release or expiry would have promoted them.
func TestBookingPartOfAHoldServesTheLine(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newZoneFixture(t, "UTC", clock, 1, domain.SettingsInput{})
	start := at(3, 9, 0)
	hd, err := f.hold(ctx, f.admin, start, 120, 30)
	require.NoError(t, err)
	later := f.join(t, f.newClient(t), start.Add(time.Hour), 60)
	during := f.join(t, f.newClient(t), start, 60)
	require.Equal(t, domain.WaitlistStatusWaiting, later.Status)

	before, err := f.store.HeadPosition(ctx)
	require.NoError(t, err)
	res, err := f.h.CreateBooking(ctx, f.admin, commands.CreateBooking{HoldID: hd.ID, Request: domain.BookingRequest{
		ResourceID: f.resource, ClientID: f.client, Start: start, End: start.Add(time.Hour)}})
	require.NoError(t, err)
	e := f.entry(t, later.ID)
	require.Equal(t, domain.WaitlistStatusPromoted, e.Status, "the hour the booking left free")
	require.NotNil(t, e.HoldID)
	require.Equal(t, domain.WaitlistStatusWaiting, f.entry(t, during.ID).Status, "the booked hour is not free")
	promoted := events(t, f.store, "waitlist", domain.EventWaitlistPromoted)
	require.Len(t, promoted, 1)
	require.Greater(t, promoted[0].Position, before, "in the booking's own append")
	require.LessOrEqual(t, promoted[0].Position, res.Position)
}
