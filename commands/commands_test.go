package commands_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bookingengine/booking/commands"
	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/eventstore"
	"github.com/bookingengine/booking/eventstore/memory"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// clock is a fixed time before the bookings the tests make.
var clock = time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)

var platform = domain.Actor{ID: "platform", Role: domain.RolePlatformAdmin}

type fixture struct {
	h        *commands.Handlers
	store    eventstore.Store
	tenant   uuid.UUID
	admin    commands.Meta
	resource uuid.UUID
	client   uuid.UUID
}

func intp(v int) *int { return &v }

// newFixture creates a tenant (open every day 00:00–24:00 in zone tz), a
// resource of the given capacity and a client.
func newFixture(t *testing.T, capacity int, settings domain.SettingsInput) fixture {
	t.Helper()
	ctx := context.Background()
	store := memory.New()
	t.Cleanup(store.Close)
	h := commands.New(store, commands.WithClock(func() time.Time { return clock }))
	if settings.BusinessHours == nil {
		day := []domain.TimeRange{{Start: "00:00", End: "24:00"}}
		w := domain.WeeklyHours{"mon": day, "tue": day, "wed": day, "thu": day, "fri": day, "sat": day, "sun": day}
		settings.BusinessHours = &w
	}
	res, err := h.CreateTenant(ctx, commands.Meta{Actor: platform}, commands.CreateTenant{Input: domain.TenantInput{
		Name: "Clinic", Domain: uuid.NewString()[:8] + ".example.com", Settings: &settings,
	}})
	require.NoError(t, err)
	admin := commands.Meta{TenantID: res.ID, Actor: domain.Actor{ID: uuid.NewString(), Role: domain.RoleAdmin}}
	r, err := h.CreateResource(ctx, admin, commands.CreateResource{Input: domain.ResourceInput{Name: "Room", Kind: domain.KindSpace, Capacity: capacity}})
	require.NoError(t, err)
	u, err := h.CreateUser(ctx, admin, commands.CreateUser{Input: domain.UserInput{Email: uuid.NewString()[:8] + "@example.com", Name: "Ana", Role: domain.RoleClient}})
	require.NoError(t, err)
	return fixture{h: h, store: store, tenant: res.ID, admin: admin, resource: r.ID, client: u.ID}
}

func (f fixture) book(ctx context.Context, m commands.Meta, start, end time.Time) (commands.Result, error) {
	return f.h.CreateBooking(ctx, m, commands.CreateBooking{Request: domain.BookingRequest{
		ResourceID: f.resource, ClientID: f.client, Start: start, End: end,
	}})
}

func at(day, hour, minute int) time.Time {
	return time.Date(2026, 12, day, hour, minute, 0, 0, time.UTC)
}

func TestConcurrentBookingsNeverExceedCapacity(t *testing.T) {
	t.Parallel()
	for _, capacity := range []int{1, 3} {
		t.Run(fmt.Sprintf("capacity %d", capacity), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, capacity, domain.SettingsInput{BufferAfterMinutes: intp(15)})
			ctx := context.Background()
			var ok, conflicts atomic.Int32
			var wg sync.WaitGroup
			for i := range 64 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					// Half the requests start at 23:30 and cross the UTC
					// day boundary, so two buckets are involved.
					start := at(2, 23, 0)
					if i%2 == 1 {
						start = at(2, 23, 30)
					}
					_, err := f.book(ctx, f.admin, start, start.Add(time.Hour))
					switch {
					case err == nil:
						ok.Add(1)
					case errors.Is(err, domain.ErrBookingConflict):
						conflicts.Add(1)
					default:
						t.Errorf("unexpected error: %v", err)
					}
				}()
			}
			wg.Wait()
			require.EqualValues(t, capacity, ok.Load())
			require.EqualValues(t, 64-capacity, conflicts.Load())
		})
	}
}

func TestBookingConflictNamesTheBooking(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 1, domain.SettingsInput{BufferAfterMinutes: intp(10)})
	ctx := context.Background()
	first, err := f.book(ctx, f.admin, at(3, 9, 0), at(3, 10, 0))
	require.NoError(t, err)
	// Back to back is refused because of the 10-minute buffer.
	_, err = f.book(ctx, f.admin, at(3, 10, 0), at(3, 11, 0))
	var ce *domain.ConflictError
	require.ErrorAs(t, err, &ce)
	require.Len(t, ce.Conflicts, 1)
	require.Equal(t, first.ID, ce.Conflicts[0].BookingID)
	// After the buffer it fits.
	_, err = f.book(ctx, f.admin, at(3, 10, 15), at(3, 11, 0))
	require.NoError(t, err)
}

func TestCancelAndRejectFreeTheSlot(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 1, domain.SettingsInput{RequiresApproval: boolp(true)})
	ctx := context.Background()
	b, err := f.book(ctx, f.admin, at(4, 9, 0), at(4, 10, 0))
	require.NoError(t, err)
	got, err := f.h.Booking(ctx, f.admin, b.ID)
	require.NoError(t, err)
	require.Equal(t, domain.StatusPending, got.Status())
	_, err = f.book(ctx, f.admin, at(4, 9, 30), at(4, 10, 0))
	require.ErrorIs(t, err, domain.ErrBookingConflict, "a pending booking holds its slot")

	_, err = f.h.ChangeBookingStatus(ctx, f.admin, commands.ChangeBookingStatus{BookingID: b.ID, To: domain.StatusRejected})
	require.NoError(t, err)
	c, err := f.book(ctx, f.admin, at(4, 9, 30), at(4, 10, 0))
	require.NoError(t, err, "rejecting freed the slot")

	_, err = f.h.ChangeBookingStatus(ctx, f.admin, commands.ChangeBookingStatus{BookingID: c.ID, To: domain.StatusCancelled, Reason: "sick"})
	require.NoError(t, err)
	_, err = f.book(ctx, f.admin, at(4, 9, 0), at(4, 10, 0))
	require.NoError(t, err, "cancelling freed the slot")

	_, err = f.h.ChangeBookingStatus(ctx, f.admin, commands.ChangeBookingStatus{BookingID: c.ID, To: domain.StatusConfirmed})
	require.ErrorIs(t, err, domain.ErrInvalidTransition)
}

func boolp(b bool) *bool { return &b }

func TestRescheduleAcrossDaysMovesTheReservation(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 1, domain.SettingsInput{})
	ctx := context.Background()
	b, err := f.book(ctx, f.admin, at(5, 9, 0), at(5, 10, 0))
	require.NoError(t, err)
	_, err = f.h.RescheduleBooking(ctx, f.admin, commands.RescheduleBooking{BookingID: b.ID, Start: at(7, 9, 0), End: at(7, 10, 0)})
	require.NoError(t, err)
	_, err = f.book(ctx, f.admin, at(5, 9, 0), at(5, 10, 0))
	require.NoError(t, err, "the old time is free")
	_, err = f.book(ctx, f.admin, at(7, 9, 30), at(7, 10, 30))
	require.ErrorIs(t, err, domain.ErrBookingConflict, "the new time is taken")
	// Moving within its own time does not conflict with itself.
	_, err = f.h.RescheduleBooking(ctx, f.admin, commands.RescheduleBooking{BookingID: b.ID, Start: at(7, 8, 30), End: at(7, 9, 30)})
	require.NoError(t, err)
}

func TestStaleIfMatchIsAVersionMismatch(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 1, domain.SettingsInput{})
	ctx := context.Background()
	b, err := f.book(ctx, f.admin, at(8, 9, 0), at(8, 10, 0))
	require.NoError(t, err)
	stale := int64(0)
	_, err = f.h.ChangeBookingStatus(ctx, f.admin, commands.ChangeBookingStatus{BookingID: b.ID, To: domain.StatusCancelled, ExpectedVersion: &stale})
	var vm *commands.VersionMismatchError
	require.ErrorAs(t, err, &vm)
	require.Equal(t, "version_mismatch", vm.Code())
}

func TestClientDailyLimit(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 5, domain.SettingsInput{MaxBookingsPerClientPerDay: intp(2)})
	ctx := context.Background()
	b1, err := f.book(ctx, f.admin, at(9, 9, 0), at(9, 10, 0))
	require.NoError(t, err)
	_, err = f.book(ctx, f.admin, at(9, 11, 0), at(9, 12, 0))
	require.NoError(t, err)
	_, err = f.book(ctx, f.admin, at(9, 13, 0), at(9, 14, 0))
	require.ErrorIs(t, err, domain.ErrClientDailyLimit)
	_, err = f.book(ctx, f.admin, at(10, 13, 0), at(10, 14, 0))
	require.NoError(t, err, "another day has its own count")
	_, err = f.h.ChangeBookingStatus(ctx, f.admin, commands.ChangeBookingStatus{BookingID: b1.ID, To: domain.StatusCancelled})
	require.NoError(t, err)
	_, err = f.book(ctx, f.admin, at(9, 13, 0), at(9, 14, 0))
	require.NoError(t, err, "a cancellation frees a place in the count")
}

func TestIdempotencyKeyMakesARetryHarmless(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 1, domain.SettingsInput{})
	ctx := context.Background()
	m := f.admin
	m.IdempotencyKey = "retry-1"
	first, err := f.book(ctx, m, at(11, 9, 0), at(11, 10, 0))
	require.NoError(t, err)
	head, err := f.store.HeadPosition(ctx)
	require.NoError(t, err)
	// Another booking lands in the same bucket meanwhile, so the retry's
	// bucket version differs from the first attempt's.
	_, err = f.book(ctx, f.admin, at(11, 12, 0), at(11, 13, 0))
	require.NoError(t, err)
	head2, err := f.store.HeadPosition(ctx)
	require.NoError(t, err)
	again, err := f.book(ctx, m, at(11, 9, 0), at(11, 10, 0))
	require.NoError(t, err)
	require.Equal(t, first.ID, again.ID)
	head3, err := f.store.HeadPosition(ctx)
	require.NoError(t, err)
	require.Equal(t, head2, head3, "the retry appended nothing")
	require.Greater(t, head2, head)

	// The same key from another caller is another request.
	other := f.admin
	other.Actor.ID = uuid.NewString()
	other.IdempotencyKey = "retry-1"
	_, err = f.book(ctx, other, at(11, 9, 0), at(11, 10, 0))
	require.ErrorIs(t, err, domain.ErrBookingConflict)
}

func TestUniqueDomainAndEmail(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 1, domain.SettingsInput{})
	ctx := context.Background()
	tn, err := f.h.Tenant(ctx, commands.Meta{Actor: platform}, f.tenant)
	require.NoError(t, err)
	_, err = f.h.CreateTenant(ctx, commands.Meta{Actor: platform}, commands.CreateTenant{Input: domain.TenantInput{Name: "Copy", Domain: tn.Domain()}})
	require.ErrorIs(t, err, domain.ErrDomainTaken)
	id, err := f.h.TenantIDByDomain(ctx, tn.Domain())
	require.NoError(t, err)
	require.Equal(t, f.tenant, id)

	_, err = f.h.CreateUser(ctx, f.admin, commands.CreateUser{Input: domain.UserInput{Email: "bob@example.com", Name: "Bob", Role: domain.RoleClient}})
	require.NoError(t, err)
	_, err = f.h.CreateUser(ctx, f.admin, commands.CreateUser{Input: domain.UserInput{Email: " BOB@example.com", Name: "Bob 2", Role: domain.RoleClient}})
	require.ErrorIs(t, err, domain.ErrEmailTaken)

	// Changing an email frees the old one.
	u, err := f.h.CreateUser(ctx, f.admin, commands.CreateUser{Input: domain.UserInput{Email: "carol@example.com", Name: "Carol", Role: domain.RoleClient}})
	require.NoError(t, err)
	email := "bob@example.com"
	_, err = f.h.UpdateUser(ctx, f.admin, commands.UpdateUser{UserID: u.ID, Patch: domain.UserPatch{Email: &email}})
	require.ErrorIs(t, err, domain.ErrEmailTaken)
	email = "caroline@example.com"
	_, err = f.h.UpdateUser(ctx, f.admin, commands.UpdateUser{UserID: u.ID, Patch: domain.UserPatch{Email: &email}})
	require.NoError(t, err)
	_, err = f.h.CreateUser(ctx, f.admin, commands.CreateUser{Input: domain.UserInput{Email: "carol@example.com", Name: "Carol 2", Role: domain.RoleClient}})
	require.NoError(t, err)
}

func TestVisibility(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 1, domain.SettingsInput{})
	ctx := context.Background()
	b, err := f.book(ctx, f.admin, at(14, 9, 0), at(14, 10, 0))
	require.NoError(t, err)
	owner := commands.Meta{TenantID: f.tenant, Actor: domain.Actor{ID: f.client.String(), Role: domain.RoleClient}}
	_, err = f.h.Booking(ctx, owner, b.ID)
	require.NoError(t, err)
	stranger := commands.Meta{TenantID: f.tenant, Actor: domain.Actor{ID: uuid.NewString(), Role: domain.RoleClient}}
	_, err = f.h.Booking(ctx, stranger, b.ID)
	require.ErrorIs(t, err, domain.ErrNotFound)
	otherTenant := commands.Meta{TenantID: uuid.New(), Actor: domain.Actor{ID: "x", Role: domain.RoleAdmin}}
	_, err = f.h.Booking(ctx, otherTenant, b.ID)
	require.ErrorIs(t, err, domain.ErrNotFound)
	// A client cannot book for someone else, nor confirm.
	_, err = f.book(ctx, stranger, at(14, 11, 0), at(14, 12, 0))
	require.ErrorIs(t, err, domain.ErrForbidden)
	_, err = f.h.ChangeBookingStatus(ctx, owner, commands.ChangeBookingStatus{BookingID: b.ID, To: domain.StatusCheckedIn})
	require.ErrorIs(t, err, domain.ErrForbidden)
	_, err = f.h.ChangeBookingStatus(ctx, owner, commands.ChangeBookingStatus{BookingID: b.ID, To: domain.StatusCancelled})
	require.NoError(t, err)
}

// contendedStore loses every append that touches a schedule bucket, as if
// another writer always got there first.
type contendedStore struct {
	eventstore.Store
	attempts atomic.Int32
}

func (s *contendedStore) Append(ctx context.Context, appends ...eventstore.StreamAppend) (eventstore.AppendResult, error) {
	for _, a := range appends {
		if eventstore.Category(a.StreamID) == "schedule" {
			s.attempts.Add(1)
			return eventstore.AppendResult{}, &eventstore.VersionConflictError{StreamID: a.StreamID, Expected: a.Expected, Actual: int64(a.Expected) + 1}
		}
	}
	return s.Store.Append(ctx, appends...)
}

func TestEndlessContentionIsATemporaryError(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 1, domain.SettingsInput{})
	store := &contendedStore{Store: f.store}
	h := commands.New(store, commands.WithClock(func() time.Time { return clock }), commands.WithMaxRetries(3))
	_, err := h.CreateBooking(context.Background(), f.admin, commands.CreateBooking{Request: domain.BookingRequest{
		ResourceID: f.resource, ClientID: f.client, Start: at(15, 9, 0), End: at(15, 10, 0),
	}})
	var ce *commands.ContentionError
	require.ErrorAs(t, err, &ce)
	require.True(t, ce.Unavailable())
	require.ErrorIs(t, err, eventstore.ErrVersionConflict)
	require.EqualValues(t, 4, store.attempts.Load(), "the first attempt and three retries")
	head, err := f.store.HeadPosition(context.Background())
	require.NoError(t, err)
	events, err := f.store.ReadAll(context.Background(), eventstore.Cursor{}, eventstore.Filter{Categories: []string{"booking"}}, 100)
	require.NoError(t, err)
	require.Empty(t, events, "nothing was written")
	require.NotZero(t, head)
}

func TestRetriedStateChangeUnderTheSameKeyAnswersAsTheFirst(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 1, domain.SettingsInput{})
	ctx := context.Background()
	b, err := f.book(ctx, f.admin, at(16, 9, 0), at(16, 10, 0))
	require.NoError(t, err)
	m := f.admin
	m.IdempotencyKey = "cancel-1"
	first, err := f.h.ChangeBookingStatus(ctx, m, commands.ChangeBookingStatus{BookingID: b.ID, To: domain.StatusCancelled})
	require.NoError(t, err)
	head, err := f.store.HeadPosition(ctx)
	require.NoError(t, err)

	// The answer was lost; the client retries with the same key.
	again, err := f.h.ChangeBookingStatus(ctx, m, commands.ChangeBookingStatus{BookingID: b.ID, To: domain.StatusCancelled})
	require.NoError(t, err)
	require.Equal(t, first.Version, again.Version)
	// The position of the booking's own event of that append: what a
	// read-your-writes query on the booking needs to wait for.
	require.Positive(t, again.Position)
	require.LessOrEqual(t, again.Position, first.Position)
	after, err := f.store.HeadPosition(ctx)
	require.NoError(t, err)
	require.Equal(t, head, after, "nothing appended")

	// Without the key, or with another, the change is refused as before.
	_, err = f.h.ChangeBookingStatus(ctx, f.admin, commands.ChangeBookingStatus{BookingID: b.ID, To: domain.StatusCancelled})
	require.ErrorIs(t, err, domain.ErrInvalidTransition)
	m.IdempotencyKey = "cancel-2"
	_, err = f.h.RescheduleBooking(ctx, m, commands.RescheduleBooking{BookingID: b.ID, Start: at(17, 9, 0), End: at(17, 10, 0)})
	require.ErrorIs(t, err, domain.ErrInvalidTransition)
}

func TestWritesCarryTheirViewExceptOnReplay(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 1, domain.SettingsInput{})
	ctx := context.Background()
	m := f.admin
	m.IdempotencyKey = "res-1"
	in := commands.CreateResource{Input: domain.ResourceInput{Name: "Desk", Kind: domain.KindSpace}}
	first, err := f.h.CreateResource(ctx, m, in)
	require.NoError(t, err)
	view, ok := first.View.(domain.ResourceView)
	require.True(t, ok, "a create answers with the resource it wrote")
	require.Equal(t, "Desk", view.Name)
	require.Equal(t, first.Version, view.Version)

	again, err := f.h.CreateResource(ctx, m, in)
	require.NoError(t, err)
	require.Equal(t, first.ID, again.ID)
	require.Nil(t, again.View, "a replay does not invent a view of this attempt; the caller reads the stored one")

	name := "Desk 2"
	upd, err := f.h.UpdateResource(ctx, f.admin, commands.UpdateResource{ResourceID: first.ID, Patch: domain.ResourcePatch{Name: &name}})
	require.NoError(t, err)
	require.Equal(t, "Desk 2", upd.View.(domain.ResourceView).Name)

	u, err := f.h.UpdateUser(ctx, f.admin, commands.UpdateUser{UserID: f.client, Patch: domain.UserPatch{Name: &name}})
	require.NoError(t, err)
	require.Equal(t, "Desk 2", u.View.(domain.UserView).Name)
}
