package queries

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/bookingengine/booking/domain"
)

// GetBooking asks for one booking.
type GetBooking struct {
	Viewer      Viewer
	BookingID   uuid.UUID
	MinPosition int64
}

// GetBookingReadModel finds one booking of a tenant.
type GetBookingReadModel interface {
	// Booking returns the booking, or an error wrapping domain.ErrNotFound
	// when the tenant has none with that id.
	Booking(ctx context.Context, tenantID, id uuid.UUID) (Booking, error)
}

// GetBookingHandler answers GetBooking from the bookings read model.
type GetBookingHandler struct {
	readModel GetBookingReadModel
	users     UserLinks
	wait      Waiter
}

// NewGetBookingHandler returns the handler. users resolves a
// professional's linked resource; wait covers both read models.
func NewGetBookingHandler(readModel GetBookingReadModel, users UserLinks, wait Waiter) GetBookingHandler {
	return GetBookingHandler{readModel: readModel, users: users, wait: wait}
}

// Handle returns the booking with the visibility rules of the command
// side's Handlers.Booking: staff see every booking of the tenant, a
// professional its own and its linked resource's, a client its own. A
// booking the viewer may not see is domain.ErrNotFound, like one that
// does not exist. Errors: ErrTimeout, domain.ErrNotFound,
// domain.ErrForbidden (an unknown role), the read model's.
func (h GetBookingHandler) Handle(ctx context.Context, q GetBooking) (Booking, error) {
	if err := waitFor(ctx, h.wait, q.MinPosition); err != nil {
		return Booking{}, err
	}
	vis, err := visibility(ctx, q.Viewer, h.users)
	if err != nil {
		return Booking{}, err
	}
	b, err := h.readModel.Booking(ctx, q.Viewer.TenantID, q.BookingID)
	if err != nil {
		return Booking{}, err
	}
	if !vis.Admits(b.ClientID, b.ResourceID) {
		return Booking{}, fmt.Errorf("booking %s: %w", q.BookingID, domain.ErrNotFound)
	}
	return b.present(), nil
}
