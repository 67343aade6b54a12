package domain_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/domain"
)

// The booking under test: Tuesday 2026-06-02 10:00–11:00 UTC, booked on
// Monday at t0 (08:00) with a 24-hour cancellation deadline (Monday 10:00).
var (
	bStart     = utc(2026, 6, 2, 10, 0)
	bEnd       = utc(2026, 6, 2, 11, 0)
	beforeDL   = utc(2026, 6, 1, 9, 0)  // before the deadline
	afterDL    = utc(2026, 6, 1, 11, 0) // after the deadline, before the start
	afterStart = utc(2026, 6, 2, 10, 30)
)

func bookingSettings() domain.SettingsInput {
	return domain.SettingsInput{CancellationDeadlineMinutes: ptr(1440), BufferAfterMinutes: ptr(15)}
}

func bookingPolicy(tb testing.TB) domain.Policy {
	tb.Helper()
	return MustPolicy(tb, bookingSettings())
}

func created(status domain.Status) domain.BookingCreated {
	return domain.BookingCreated{
		BookingID: bookingID, TenantID: tenantID, ResourceID: resourceID, ClientID: clientID,
		Start: bStart, End: bEnd, Seats: 1, Title: "Cleaning", Status: status, PolicyVersion: 1,
		BufferAfterMinutes: 15, Timezone: "UTC", CreatedBy: client.ID, CreatedAt: t0,
	}
}

func statusChanged(from, to domain.Status, actor domain.Actor, reason string, at time.Time) domain.BookingStatusChanged {
	return domain.BookingStatusChanged{BookingID: bookingID, From: from, To: to, Reason: reason, Actor: actor.ID, ActorRole: actor.Role, At: at}
}

func cancelled(from domain.Status, actor domain.Actor, reason string, late bool, at time.Time) domain.BookingCancelled {
	return domain.BookingCancelled{BookingID: bookingID, From: from, Reason: reason, Actor: actor.ID, ActorRole: actor.Role, Late: late, At: at}
}

// reserved is a schedule reservation of another booking.
func reserved(id uuid.UUID, start, end time.Time, seats int) domain.ScheduleReserved {
	return domain.ScheduleReserved{BookingID: id, ResourceID: resourceID, Start: start, End: end, OccupiedStart: start, OccupiedEnd: end.Add(15 * time.Minute), Seats: seats}
}

func occupancy(tb testing.TB, events ...domain.Event) *domain.Occupancy {
	tb.Helper()
	s := domain.NewSchedule()
	require.NoError(tb, s.Replay(events...))
	return domain.NewOccupancy(s)
}

func TestBookingCommands(t *testing.T) {
	t.Parallel()
	pending, confirmed := created(domain.StatusPending), created(domain.StatusConfirmed)
	checkedIn := statusChanged(domain.StatusConfirmed, domain.StatusCheckedIn, manager, "", afterDL)
	tests := []struct {
		name  string
		given []domain.Event
		when  func(b *domain.Booking, p domain.Policy) error
		then  []domain.Event
		err   error
	}{
		// confirm and reject
		{"confirm pending", []domain.Event{pending},
			func(b *domain.Booking, p domain.Policy) error { return b.Confirm(manager, " ok ", beforeDL) },
			[]domain.Event{statusChanged(domain.StatusPending, domain.StatusConfirmed, manager, "ok", beforeDL)}, nil},
		{"confirm confirmed", []domain.Event{confirmed},
			func(b *domain.Booking, p domain.Policy) error { return b.Confirm(manager, "", beforeDL) },
			nil, &domain.TransitionError{From: domain.StatusConfirmed, To: domain.StatusConfirmed}},
		{"client may not confirm", []domain.Event{pending},
			func(b *domain.Booking, p domain.Policy) error { return b.Confirm(client, "", beforeDL) },
			nil, domain.ErrForbidden},
		{"reject pending", []domain.Event{pending},
			func(b *domain.Booking, p domain.Policy) error { return b.Reject(admin, "full", beforeDL) },
			[]domain.Event{statusChanged(domain.StatusPending, domain.StatusRejected, admin, "full", beforeDL)}, nil},
		{"reject confirmed", []domain.Event{confirmed},
			func(b *domain.Booking, p domain.Policy) error { return b.Reject(admin, "", beforeDL) },
			nil, &domain.TransitionError{From: domain.StatusConfirmed, To: domain.StatusRejected}},
		{"confirm rejected", []domain.Event{pending, statusChanged(domain.StatusPending, domain.StatusRejected, admin, "", beforeDL)},
			func(b *domain.Booking, p domain.Policy) error { return b.Confirm(admin, "", beforeDL) },
			nil, &domain.TransitionError{From: domain.StatusRejected, To: domain.StatusConfirmed}},

		// check-in, complete, no-show
		{"check in confirmed", []domain.Event{confirmed},
			func(b *domain.Booking, p domain.Policy) error { return b.CheckIn(pro, "", afterDL) },
			[]domain.Event{statusChanged(domain.StatusConfirmed, domain.StatusCheckedIn, pro, "", afterDL)}, nil},
		{"check in pending", []domain.Event{pending},
			func(b *domain.Booking, p domain.Policy) error { return b.CheckIn(manager, "", afterDL) },
			nil, &domain.TransitionError{From: domain.StatusPending, To: domain.StatusCheckedIn}},
		{"client may not check in", []domain.Event{confirmed},
			func(b *domain.Booking, p domain.Policy) error { return b.CheckIn(client, "", afterDL) },
			nil, domain.ErrForbidden},
		{"complete checked in", []domain.Event{confirmed, checkedIn},
			func(b *domain.Booking, p domain.Policy) error { return b.Complete(manager, "done", afterStart) },
			[]domain.Event{statusChanged(domain.StatusCheckedIn, domain.StatusCompleted, manager, "done", afterStart)}, nil},
		{"complete confirmed", []domain.Event{confirmed},
			func(b *domain.Booking, p domain.Policy) error { return b.Complete(manager, "", afterStart) },
			nil, &domain.TransitionError{From: domain.StatusConfirmed, To: domain.StatusCompleted}},
		{"no-show after start", []domain.Event{confirmed},
			func(b *domain.Booking, p domain.Policy) error { return b.NoShow(manager, "", afterStart) },
			[]domain.Event{statusChanged(domain.StatusConfirmed, domain.StatusNoShow, manager, "", afterStart)}, nil},
		{"no-show exactly at start", []domain.Event{confirmed},
			func(b *domain.Booking, p domain.Policy) error { return b.NoShow(manager, "", bStart) },
			[]domain.Event{statusChanged(domain.StatusConfirmed, domain.StatusNoShow, manager, "", bStart)}, nil},
		{"no-show before start", []domain.Event{confirmed},
			func(b *domain.Booking, p domain.Policy) error { return b.NoShow(manager, "", afterDL) },
			nil, &domain.TransitionError{From: domain.StatusConfirmed, To: domain.StatusNoShow}},
		{"no-show checked in", []domain.Event{confirmed, checkedIn},
			func(b *domain.Booking, p domain.Policy) error { return b.NoShow(manager, "", afterStart) },
			nil, &domain.TransitionError{From: domain.StatusCheckedIn, To: domain.StatusNoShow}},
		{"no-show pending", []domain.Event{pending},
			func(b *domain.Booking, p domain.Policy) error { return b.NoShow(manager, "", afterStart) },
			nil, &domain.TransitionError{From: domain.StatusPending, To: domain.StatusNoShow}},

		// cancel
		{"client cancels pending", []domain.Event{pending},
			func(b *domain.Booking, p domain.Policy) error { return b.Cancel(client, "changed plans", p, beforeDL) },
			[]domain.Event{cancelled(domain.StatusPending, client, "changed plans", false, beforeDL)}, nil},
		{"client cancels confirmed before the deadline", []domain.Event{confirmed},
			func(b *domain.Booking, p domain.Policy) error { return b.Cancel(client, "", p, beforeDL) },
			[]domain.Event{cancelled(domain.StatusConfirmed, client, "", false, beforeDL)}, nil},
		{"client cancels after the deadline", []domain.Event{confirmed},
			func(b *domain.Booking, p domain.Policy) error { return b.Cancel(client, "", p, afterDL) },
			nil, domain.ErrCancellationDeadlinePassed},
		{"professional is bound by the deadline", []domain.Event{confirmed},
			func(b *domain.Booking, p domain.Policy) error { return b.Cancel(pro, "", p, afterDL) },
			nil, domain.ErrCancellationDeadlinePassed},
		{"manager cancels late", []domain.Event{confirmed},
			func(b *domain.Booking, p domain.Policy) error { return b.Cancel(manager, "client called", p, afterDL) },
			[]domain.Event{cancelled(domain.StatusConfirmed, manager, "client called", true, afterDL)}, nil},
		{"admin cancels after the start", []domain.Event{confirmed},
			func(b *domain.Booking, p domain.Policy) error { return b.Cancel(admin, "", p, afterStart) },
			[]domain.Event{cancelled(domain.StatusConfirmed, admin, "", true, afterStart)}, nil},
		{"no deadline: client cancels any time", []domain.Event{confirmed},
			func(b *domain.Booking, p domain.Policy) error {
				return b.Cancel(client, "", MustPolicy(t, domain.SettingsInput{}), afterDL)
			},
			[]domain.Event{cancelled(domain.StatusConfirmed, client, "", false, afterDL)}, nil},
		{"another client may not cancel", []domain.Event{confirmed},
			func(b *domain.Booking, p domain.Policy) error { return b.Cancel(stranger, "", p, beforeDL) },
			nil, domain.ErrForbidden},
		{"cancel cancelled", []domain.Event{confirmed, cancelled(domain.StatusConfirmed, client, "", false, beforeDL)},
			func(b *domain.Booking, p domain.Policy) error { return b.Cancel(client, "", p, beforeDL) },
			nil, &domain.TransitionError{From: domain.StatusCancelled, To: domain.StatusCancelled}},
		{"cancel checked in", []domain.Event{confirmed, checkedIn},
			func(b *domain.Booking, p domain.Policy) error { return b.Cancel(manager, "", p, afterStart) },
			nil, &domain.TransitionError{From: domain.StatusCheckedIn, To: domain.StatusCancelled}},
		{"confirm cancelled", []domain.Event{pending, cancelled(domain.StatusPending, client, "", false, beforeDL)},
			func(b *domain.Booking, p domain.Policy) error { return b.Confirm(manager, "", beforeDL) },
			nil, &domain.TransitionError{From: domain.StatusCancelled, To: domain.StatusConfirmed}},

		// reschedule
		{"client reschedules before the deadline", []domain.Event{confirmed},
			func(b *domain.Booking, p domain.Policy) error {
				return b.Reschedule(utc(2026, 6, 3, 14, 0), utc(2026, 6, 3, 15, 0), "", p, nil, client, beforeDL)
			},
			[]domain.Event{domain.BookingRescheduled{BookingID: bookingID, Start: utc(2026, 6, 3, 14, 0), End: utc(2026, 6, 3, 15, 0),
				PreviousStart: bStart, PreviousEnd: bEnd, PolicyVersion: 1, BufferAfterMinutes: 15, Timezone: "UTC",
				Actor: client.ID, ActorRole: domain.RoleClient, At: beforeDL}}, nil},
		{"pending may be rescheduled", []domain.Event{pending},
			func(b *domain.Booking, p domain.Policy) error {
				return b.Reschedule(utc(2026, 6, 3, 14, 0), utc(2026, 6, 3, 15, 0), "", p, nil, manager, beforeDL)
			},
			[]domain.Event{domain.BookingRescheduled{BookingID: bookingID, Start: utc(2026, 6, 3, 14, 0), End: utc(2026, 6, 3, 15, 0),
				PreviousStart: bStart, PreviousEnd: bEnd, PolicyVersion: 1, BufferAfterMinutes: 15, Timezone: "UTC",
				Actor: manager.ID, ActorRole: domain.RoleManager, At: beforeDL}}, nil},
		{"client reschedules after the deadline", []domain.Event{confirmed},
			func(b *domain.Booking, p domain.Policy) error {
				return b.Reschedule(utc(2026, 6, 3, 14, 0), utc(2026, 6, 3, 15, 0), "", p, nil, client, afterDL)
			},
			nil, domain.ErrCancellationDeadlinePassed},
		{"manager reschedules after the deadline", []domain.Event{confirmed},
			func(b *domain.Booking, p domain.Policy) error {
				return b.Reschedule(utc(2026, 6, 3, 14, 0), utc(2026, 6, 3, 15, 0), "", p, nil, manager, afterDL)
			},
			[]domain.Event{domain.BookingRescheduled{BookingID: bookingID, Start: utc(2026, 6, 3, 14, 0), End: utc(2026, 6, 3, 15, 0),
				PreviousStart: bStart, PreviousEnd: bEnd, PolicyVersion: 1, BufferAfterMinutes: 15, Timezone: "UTC",
				Actor: manager.ID, ActorRole: domain.RoleManager, At: afterDL}}, nil},
		{"reschedule to the same time records nothing", []domain.Event{confirmed},
			func(b *domain.Booking, p domain.Policy) error {
				return b.Reschedule(bStart, bEnd, "", p, nil, client, afterDL)
			},
			nil, nil},
		{"reschedule overlapping itself", []domain.Event{confirmed},
			func(b *domain.Booking, p domain.Policy) error {
				occ := occupancy(t, reserved(bookingID, bStart, bEnd, 1))
				return b.Reschedule(bStart.Add(30*time.Minute), bEnd.Add(30*time.Minute), "", p, occ, client, beforeDL)
			},
			[]domain.Event{domain.BookingRescheduled{BookingID: bookingID, Start: bStart.Add(30 * time.Minute), End: bEnd.Add(30 * time.Minute),
				PreviousStart: bStart, PreviousEnd: bEnd, PolicyVersion: 1, BufferAfterMinutes: 15, Timezone: "UTC",
				Actor: client.ID, ActorRole: domain.RoleClient, At: beforeDL}}, nil},
		{"reschedule onto another booking", []domain.Event{confirmed},
			func(b *domain.Booking, p domain.Policy) error {
				occ := occupancy(t, reserved(bookingID, bStart, bEnd, 1), reserved(booking2ID, utc(2026, 6, 3, 14, 0), utc(2026, 6, 3, 15, 0), 1))
				return b.Reschedule(utc(2026, 6, 3, 14, 30), utc(2026, 6, 3, 15, 30), "", p, occ, client, beforeDL)
			},
			nil, domain.ErrBookingConflict},
		{"reschedule outside business hours", []domain.Event{confirmed},
			func(b *domain.Booking, p domain.Policy) error {
				return b.Reschedule(utc(2026, 6, 6, 10, 0), utc(2026, 6, 6, 11, 0), "", p, nil, client, beforeDL)
			},
			nil, domain.ErrOutsideBusinessHours},
		{"reschedule re-runs the notice rule", []domain.Event{confirmed},
			func(b *domain.Booking, p domain.Policy) error {
				return b.Reschedule(utc(2026, 6, 1, 8, 0), utc(2026, 6, 1, 9, 0), "", p, nil, manager, beforeDL)
			},
			nil, domain.ErrTooShortNotice},
		{"another client may not reschedule", []domain.Event{confirmed},
			func(b *domain.Booking, p domain.Policy) error {
				return b.Reschedule(utc(2026, 6, 3, 14, 0), utc(2026, 6, 3, 15, 0), "", p, nil, stranger, beforeDL)
			},
			nil, domain.ErrForbidden},
		{"reschedule cancelled", []domain.Event{confirmed, cancelled(domain.StatusConfirmed, client, "", false, beforeDL)},
			func(b *domain.Booking, p domain.Policy) error {
				return b.Reschedule(utc(2026, 6, 3, 14, 0), utc(2026, 6, 3, 15, 0), "", p, nil, manager, beforeDL)
			},
			nil, &domain.TransitionError{From: domain.StatusCancelled, To: domain.StatusCancelled}},
		{"reschedule checked in", []domain.Event{confirmed, checkedIn},
			func(b *domain.Booking, p domain.Policy) error {
				return b.Reschedule(utc(2026, 6, 3, 14, 0), utc(2026, 6, 3, 15, 0), "", p, nil, manager, beforeDL)
			},
			nil, &domain.TransitionError{From: domain.StatusCheckedIn, To: domain.StatusCheckedIn}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := &domain.Booking{}
			require.NoError(t, b.Replay(tt.given...))
			require.Equal(t, int64(len(tt.given)), b.Version())
			err := tt.when(b, bookingPolicy(t))
			requireErrorIs(t, tt.err, err)
			if tt.err != nil {
				require.Empty(t, b.Changes(), "a refused command records nothing")
				return
			}
			require.Equal(t, tt.then, nilIfEmpty(b.Changes()))
			require.Equal(t, int64(len(tt.given)+len(tt.then)), b.Version())
			require.Equal(t, int64(len(tt.given)), b.BaseVersion())

			// Replaying the full history reaches the same state.
			replayed := &domain.Booking{}
			require.NoError(t, replayed.Replay(append(append([]domain.Event{}, tt.given...), tt.then...)...))
			require.Equal(t, b.View(), replayed.View())
		})
	}
}

func nilIfEmpty(events []domain.Event) []domain.Event {
	if len(events) == 0 {
		return nil
	}
	return events
}

func TestNewBooking(t *testing.T) {
	t.Parallel()
	reasonField := domain.CustomField{Entity: domain.EntityBooking, Key: "reason", Label: "Reason", Type: domain.FieldSelect, Required: true, Options: []string{"routine", "urgent"}}
	valid := domain.BookingRequest{ResourceID: resourceID, ClientID: clientID, Start: bStart, End: bEnd, Seats: 1, Title: " Cleaning ", Attributes: map[string]any{"reason": "routine"}}
	with := func(f func(r *domain.BookingRequest)) domain.BookingRequest {
		r := valid
		f(&r)
		return r
	}
	tests := []struct {
		name     string
		settings domain.SettingsInput
		req      domain.BookingRequest
		actor    domain.Actor
		given    []domain.Event // schedule history of the bucket
		status   domain.Status
		err      error
		fields   []string
	}{
		{name: "confirmed without approval", req: valid, actor: client, status: domain.StatusConfirmed},
		{name: "pending with approval", settings: domain.SettingsInput{RequiresApproval: ptr(true)}, req: valid, actor: client, status: domain.StatusPending},
		{name: "client defaults to the acting client", req: with(func(r *domain.BookingRequest) { r.ClientID = uuid.Nil }), actor: client, status: domain.StatusConfirmed},
		{name: "resource defaults to the policy's", req: with(func(r *domain.BookingRequest) { r.ResourceID = uuid.Nil }), actor: client, status: domain.StatusConfirmed},
		{name: "seats default to one", req: with(func(r *domain.BookingRequest) { r.Seats = 0 }), actor: client, status: domain.StatusConfirmed},
		{name: "staff books for a client", req: valid, actor: manager, status: domain.StatusConfirmed},
		{name: "client books for someone else", req: valid, actor: stranger, err: domain.ErrForbidden},
		{name: "every input problem at once", actor: manager, err: domain.ErrValidationFailed,
			req: domain.BookingRequest{ResourceID: otherID, Start: bStart, End: bStart, Seats: -2, Title: strings.Repeat("x", 201),
				Notes: strings.Repeat("n", 5001), Attributes: map[string]any{"reason": "other"}},
			fields: []string{"resource_id", "client_id", "title", "notes", "attributes.reason", "seats", "end"}},
		{name: "missing required attribute", req: with(func(r *domain.BookingRequest) { r.Attributes = nil }), actor: client,
			err: domain.ErrValidationFailed, fields: []string{"attributes.reason"}},
		{name: "policy refusal", req: with(func(r *domain.BookingRequest) { r.Start, r.End = utc(2026, 6, 6, 10, 0), utc(2026, 6, 6, 11, 0) }),
			actor: client, err: domain.ErrOutsideBusinessHours},
		{name: "conflict", req: valid, actor: client, given: []domain.Event{reserved(booking2ID, bStart.Add(-30*time.Minute), bStart.Add(30*time.Minute), 1)},
			err: domain.ErrBookingConflict},
		{name: "buffer of the other booking conflicts", req: valid, actor: client,
			given: []domain.Event{reserved(booking2ID, bStart.Add(-time.Hour), bStart, 1)}, err: domain.ErrBookingConflict},
		{name: "back to back with the buffer", req: valid, actor: client,
			given: []domain.Event{reserved(booking2ID, bStart.Add(-75*time.Minute), bStart.Add(-15*time.Minute), 1)}, status: domain.StatusConfirmed},
		{name: "own buffer conflicts with the next booking", req: valid, actor: client,
			given: []domain.Event{reserved(booking2ID, bEnd, bEnd.Add(time.Hour), 1)}, err: domain.ErrBookingConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := bookingSettings()
			in.RequiresApproval = tt.settings.RequiresApproval
			in.CustomFields = &[]domain.CustomField{reasonField}
			p := MustPolicy(t, in)
			b, err := domain.NewBooking(bookingID, tt.req, p, occupancy(t, tt.given...), tt.actor, t0)
			requireErrorIs(t, tt.err, err)
			if tt.err != nil {
				require.Nil(t, b)
				if tt.fields != nil {
					var verr *domain.ValidationError
					require.ErrorAs(t, err, &verr)
					var got []string
					for _, fe := range verr.Errors {
						got = append(got, fe.Field)
					}
					require.ElementsMatch(t, tt.fields, got)
				}
				return
			}
			require.Equal(t, []domain.Event{domain.BookingCreated{
				BookingID: bookingID, TenantID: tenantID, ResourceID: resourceID, ClientID: clientID,
				Start: bStart, End: bEnd, Seats: 1, Title: "Cleaning", Attributes: map[string]any{"reason": "routine"},
				Status: tt.status, PolicyVersion: 1, BufferAfterMinutes: 15, Timezone: "UTC",
				CreatedBy: tt.actor.ID, CreatedAt: t0,
			}}, b.Changes())
			require.Equal(t, int64(1), b.Version())
			require.Zero(t, b.BaseVersion())
			require.True(t, b.IsActive())
		})
	}
}

func TestBookingView(t *testing.T) {
	t.Parallel()
	p := MustPolicy(t, domain.SettingsInput{Timezone: ptr("America/Sao_Paulo"), BufferBeforeMinutes: ptr(5), BufferAfterMinutes: ptr(10)})
	start := at(t, "America/Sao_Paulo", 2026, 6, 2, 10, 0)
	b, err := domain.NewBooking(bookingID, domain.BookingRequest{ClientID: clientID, Start: start, End: start.Add(time.Hour)}, p, nil, manager, t0)
	require.NoError(t, err)
	require.NoError(t, b.Cancel(manager, "sick", p, t0.Add(time.Hour)))

	v := b.View()
	require.Equal(t, bookingID, v.ID)
	require.Equal(t, domain.StatusCancelled, v.Status)
	require.Equal(t, "sick", v.StatusReason)
	require.Equal(t, int64(2), v.Version)
	require.Equal(t, "America/Sao_Paulo", v.Timezone)
	require.Equal(t, "2026-06-02T10:00:00-03:00", v.Start.Format(time.RFC3339), "shown in the booking's zone")
	require.Equal(t, manager.ID, v.CreatedBy)
	require.Equal(t, manager.ID, v.UpdatedBy)
	require.Equal(t, t0.Add(time.Hour), v.UpdatedAt)
	require.Equal(t, map[string]any{}, v.Attributes)
	require.False(t, b.IsActive())

	occStart, occEnd := b.OccupiedInterval()
	require.Equal(t, start.Add(-5*time.Minute).UTC(), occStart)
	require.Equal(t, start.Add(70*time.Minute).UTC(), occEnd)
	require.Equal(t, "2026-06-02", b.LocalDate())
}

func TestBookingReplayRejectsBadHistory(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		history []domain.Event
	}{
		{"event before creation", []domain.Event{statusChanged(domain.StatusPending, domain.StatusConfirmed, admin, "", t0)}},
		{"created twice", []domain.Event{created(domain.StatusPending), created(domain.StatusPending)}},
		{"foreign event", []domain.Event{created(domain.StatusPending), domain.UserCreated{}}},
		{"nil event", []domain.Event{nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Error(t, (&domain.Booking{}).Replay(tt.history...))
		})
	}
	ev := created(domain.StatusConfirmed)
	b := &domain.Booking{}
	require.NoError(t, b.Replay(&ev), "pointers to events replay like values")
	require.Equal(t, domain.StatusConfirmed, b.Status())
	require.Empty(t, b.Changes())
}

func TestStatusActive(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status domain.Status
		active bool
	}{
		{domain.StatusPending, true}, {domain.StatusConfirmed, true}, {domain.StatusCheckedIn, true},
		{domain.StatusRejected, false}, {domain.StatusCancelled, false}, {domain.StatusCompleted, false}, {domain.StatusNoShow, false},
	}
	for _, tt := range tests {
		require.Equal(t, tt.active, tt.status.Active(), tt.status)
		require.True(t, tt.status.Valid())
	}
	require.False(t, domain.Status("lost").Valid())
}
