package queries

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/bookingengine/booking/domain"
)

// Limits of a listing page.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// ListBookings asks for one page of a tenant's bookings, ordered by start
// then id. Zero fields do not filter.
type ListBookings struct {
	Viewer     Viewer
	ResourceID uuid.UUID
	ClientID   uuid.UUID
	// Statuses admits bookings in any of these statuses.
	Statuses []domain.Status
	// From and To admit bookings that overlap [From, To): End after From
	// and Start before To.
	From, To time.Time
	// Limit is the page size: 0 means DefaultPageSize, at most MaxPageSize.
	Limit int
	// Cursor is the NextCursor of the previous page ("" for the first).
	Cursor      string
	MinPosition int64
}

// BookingPage is one page of a listing. NextCursor is empty on the last
// page.
type BookingPage struct {
	Bookings   []Booking `json:"bookings"`
	NextCursor string    `json:"next_cursor,omitempty"`
}

// BookingFilter is what ListBookingsReadModel filters by. Zero fields do
// not filter; After, when set, starts the page after that (start, id).
type BookingFilter struct {
	TenantID   uuid.UUID
	ResourceID uuid.UUID
	ClientID   uuid.UUID
	Statuses   []domain.Status
	From, To   time.Time
	Visible    Visibility
	After      *PageKey
	Limit      int
}

// PageKey is the sort key of a listing: start, then id.
type PageKey struct {
	Start time.Time `json:"s"`
	ID    uuid.UUID `json:"i"`
}

// ListBookingsReadModel lists a tenant's bookings.
type ListBookingsReadModel interface {
	// ListBookings returns at most f.Limit bookings matching f, ordered by
	// start then id, with Start and End in UTC.
	ListBookings(ctx context.Context, f BookingFilter) ([]Booking, error)
}

// ListBookingsHandler answers ListBookings from the bookings read model.
type ListBookingsHandler struct {
	readModel ListBookingsReadModel
	users     UserLinks
	wait      Waiter
}

// NewListBookingsHandler returns the handler. users resolves a
// professional's linked resource; wait covers both read models.
func NewListBookingsHandler(readModel ListBookingsReadModel, users UserLinks, wait Waiter) ListBookingsHandler {
	return ListBookingsHandler{readModel: readModel, users: users, wait: wait}
}

// Handle returns the page, restricted to what the viewer may see (staff:
// the whole tenant; a professional: its own bookings and its linked
// resource's; a client: its own). Errors: *domain.ValidationError for a
// bad limit, cursor, status or range; ErrTimeout; domain.ErrForbidden for
// an unknown role; the read model's.
func (h ListBookingsHandler) Handle(ctx context.Context, q ListBookings) (BookingPage, error) {
	var v domain.ValidationError
	limit := q.Limit
	switch {
	case limit == 0:
		limit = DefaultPageSize
	case limit < 0 || limit > MaxPageSize:
		v.Addf("limit", domain.FieldOutOfRange, "must be between 1 and %d", MaxPageSize)
	}
	for _, s := range q.Statuses {
		if !s.Valid() {
			v.Addf("status", domain.FieldInvalid, "unknown status %q", s)
		}
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		v.Add("to", domain.FieldInvalid, "must be after from")
	}
	var after *PageKey
	if q.Cursor != "" {
		k, err := decodeCursor(q.Cursor)
		if err != nil {
			v.Add("cursor", domain.FieldInvalid, "is not a cursor this server issued")
		}
		after = k
	}
	if err := v.Err(); err != nil {
		return BookingPage{}, err
	}
	if err := waitFor(ctx, h.wait, q.MinPosition); err != nil {
		return BookingPage{}, err
	}
	vis, err := visibility(ctx, q.Viewer, h.users)
	if err != nil {
		return BookingPage{}, err
	}
	rows, err := h.readModel.ListBookings(ctx, BookingFilter{
		TenantID: q.Viewer.TenantID, ResourceID: q.ResourceID, ClientID: q.ClientID,
		Statuses: q.Statuses, From: q.From, To: q.To, Visible: vis, After: after, Limit: limit + 1,
	})
	if err != nil {
		return BookingPage{}, err
	}
	page := BookingPage{Bookings: make([]Booking, 0, min(len(rows), limit))}
	for i, b := range rows {
		if i == limit {
			last := rows[limit-1]
			page.NextCursor = encodeCursor(PageKey{Start: last.Start, ID: last.ID})
			break
		}
		page.Bookings = append(page.Bookings, b.present())
	}
	return page, nil
}

// encodeCursor makes a page key opaque to clients.
func encodeCursor(k PageKey) string {
	k.Start = k.Start.UTC()
	b, _ := json.Marshal(k) // a struct of a time and a uuid always encodes
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (*PageKey, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	var k PageKey
	if err := json.Unmarshal(b, &k); err != nil {
		return nil, err
	}
	return &k, nil
}
