package queries

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/bookingengine/booking/domain"
)

// CalendarDetail says how much of each booking a calendar feed shows. The
// string values are stored with feeds: never rename one.
type CalendarDetail string

// Calendar details.
const (
	// CalendarFull shows each booking's title and the client's and the
	// resource's names, as the calendar's owner sees them.
	CalendarFull CalendarDetail = "full"
	// CalendarBusy shows busy time only: times and status, the title
	// "Busy", no client. For feeds shared beyond the owner.
	CalendarBusy CalendarDetail = "busy"
)

// Valid reports whether d is a known detail level.
func (d CalendarDetail) Valid() bool { return d == CalendarFull || d == CalendarBusy }

// busyTitle is the title of every entry of a CalendarBusy calendar.
const busyTitle = "Busy"

// feedTokenBytes is the length of a feed token's random part: 256 bits.
const feedTokenBytes = 32

// CalendarFeed is the secret address of one calendar: whoever knows the
// token reads the calendar without a bearer token (calendar applications
// cannot send one). Only the token's SHA-256 is stored, so the store
// cannot give the address away.
type CalendarFeed struct {
	TokenHash  []byte
	TenantID   uuid.UUID
	Kind       CalendarKind
	CalendarID uuid.UUID
	Detail     CalendarDetail
	CreatedBy  string
	CreatedAt  time.Time
}

// CalendarFeedStore keeps calendar feeds. A feed is an access credential
// to the read side, not booking state: it lives beside the calendars read
// model, outside the event log, and survives a rebuild of the read model.
// Implementations are safe for concurrent use.
type CalendarFeedStore interface {
	// PutCalendarFeed stores f as the only feed of its calendar (tenant,
	// kind, calendar id): an earlier one stops working at once.
	PutCalendarFeed(ctx context.Context, f CalendarFeed) error
	// RevokeCalendarFeed deletes the calendar's feed and reports whether
	// there was one.
	RevokeCalendarFeed(ctx context.Context, tenantID uuid.UUID, kind CalendarKind, id uuid.UUID) (bool, error)
	// CalendarFeedByHash returns the feed whose token has this SHA-256,
	// or an error wrapping domain.ErrNotFound.
	CalendarFeedByHash(ctx context.Context, hash []byte) (CalendarFeed, error)
}

// IssueCalendarFeed asks for a (new) secret address of a calendar. Detail
// "" means CalendarFull.
type IssueCalendarFeed struct {
	Viewer Viewer
	Kind   CalendarKind
	ID     uuid.UUID
	Detail CalendarDetail
	// MinPosition lets a caller issue the feed of a resource or user it
	// has just created.
	MinPosition int64
}

// IssuedCalendarFeed is a new feed. Token is shown once: only its hash is
// kept.
type IssuedCalendarFeed struct {
	Token  string
	Detail CalendarDetail
}

// RevokeCalendarFeedQuery asks to revoke a calendar's feed.
type RevokeCalendarFeedQuery struct {
	Viewer      Viewer
	Kind        CalendarKind
	ID          uuid.UUID
	MinPosition int64
}

// CalendarFeedsHandler issues, revokes and serves calendar feeds.
type CalendarFeedsHandler struct {
	calendars CalendarHandler
	feeds     CalendarFeedStore
}

// NewCalendarFeedsHandler returns the handler: calendars reads the
// calendars (and owns the clock), feeds keeps the feeds.
func NewCalendarFeedsHandler(calendars CalendarHandler, feeds CalendarFeedStore) CalendarFeedsHandler {
	return CalendarFeedsHandler{calendars: calendars, feeds: feeds}
}

// Issue creates a new secret address for the calendar and revokes the
// previous one, as "reset the secret address" does in Google Calendar.
// Staff may issue the feed of any calendar of the tenant; a user the feed
// of its own user calendar. It is not idempotent: each call returns a new
// token (HTTP's Idempotency-Key makes a retry return the first one).
//
// Errors: *domain.ValidationError (unknown kind or detail); ErrTimeout;
// domain.ErrForbidden when a non-staff viewer asks for a resource's feed
// (or has an unknown role); domain.ErrNotFound for a calendar that does
// not exist or that the viewer may not see; the stores'.
func (h CalendarFeedsHandler) Issue(ctx context.Context, q IssueCalendarFeed) (IssuedCalendarFeed, error) {
	if q.Detail == "" {
		q.Detail = CalendarFull
	}
	var v domain.ValidationError
	if !q.Kind.Valid() {
		v.Addf("kind", domain.FieldInvalid, "unknown calendar kind %q", q.Kind)
	}
	if !q.Detail.Valid() {
		v.Addf("details", domain.FieldUnknownOption, "must be %q or %q", CalendarFull, CalendarBusy)
	}
	if err := v.Err(); err != nil {
		return IssuedCalendarFeed{}, err
	}
	owner, err := h.mayManage(ctx, q.Viewer, q.Kind, q.ID, q.MinPosition)
	if err != nil {
		return IssuedCalendarFeed{}, err
	}
	raw := make([]byte, feedTokenBytes)
	if _, err := rand.Read(raw); err != nil {
		return IssuedCalendarFeed{}, fmt.Errorf("feed token: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(raw)
	sum := sha256.Sum256([]byte(token))
	err = h.feeds.PutCalendarFeed(ctx, CalendarFeed{
		TokenHash: sum[:], TenantID: owner.TenantID, Kind: owner.Kind, CalendarID: owner.ID, Detail: q.Detail,
		CreatedBy: q.Viewer.UserID, CreatedAt: h.calendars.now().UTC(),
	})
	if err != nil {
		return IssuedCalendarFeed{}, err
	}
	return IssuedCalendarFeed{Token: token, Detail: q.Detail}, nil
}

// Revoke deletes the calendar's feed: its address answers 404 from then
// on. The same viewers as for Issue may revoke. Errors: those of Issue,
// and domain.ErrNotFound when the calendar has no feed.
func (h CalendarFeedsHandler) Revoke(ctx context.Context, q RevokeCalendarFeedQuery) error {
	if !q.Kind.Valid() {
		var v domain.ValidationError
		v.Addf("kind", domain.FieldInvalid, "unknown calendar kind %q", q.Kind)
		return v.Err()
	}
	owner, err := h.mayManage(ctx, q.Viewer, q.Kind, q.ID, q.MinPosition)
	if err != nil {
		return err
	}
	ok, err := h.feeds.RevokeCalendarFeed(ctx, owner.TenantID, owner.Kind, owner.ID)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%s calendar %s has no feed: %w", q.Kind, q.ID, domain.ErrNotFound)
	}
	return nil
}

// mayManage returns the calendar's owner when v may issue or revoke its
// feed.
func (h CalendarFeedsHandler) mayManage(ctx context.Context, v Viewer, kind CalendarKind, id uuid.UUID, minPosition int64) (CalendarOwner, error) {
	if kind == CalendarResource && !v.isStaff() {
		return CalendarOwner{}, fmt.Errorf("only staff may publish a resource's calendar: %w", domain.ErrForbidden)
	}
	if err := waitFor(ctx, h.calendars.wait, minPosition); err != nil {
		return CalendarOwner{}, err
	}
	return h.calendars.visibleOwner(ctx, v, kind, id)
}

// Feed returns the calendar behind a feed token for the window from
// DefaultCalendarBack before now to DefaultCalendarAhead after it, with
// the feed's detail level. It needs no viewer: the token is the
// credential. An unknown, malformed or revoked token, or a feed whose
// calendar no longer exists, is domain.ErrNotFound. Errors: ErrTimeout;
// domain.ErrNotFound; the stores'.
func (h CalendarFeedsHandler) Feed(ctx context.Context, token string, minPosition int64) (CalendarView, error) {
	notFound := fmt.Errorf("calendar feed: %w", domain.ErrNotFound)
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) != feedTokenBytes {
		return CalendarView{}, notFound
	}
	sum := sha256.Sum256([]byte(token))
	feed, err := h.feeds.CalendarFeedByHash(ctx, sum[:])
	if err != nil {
		return CalendarView{}, err
	}
	if err := waitFor(ctx, h.calendars.wait, minPosition); err != nil {
		return CalendarView{}, err
	}
	owner, err := h.calendars.readModel.CalendarOwner(ctx, feed.TenantID, feed.Kind, feed.CalendarID)
	if err != nil {
		return CalendarView{}, err
	}
	from, to, err := h.calendars.window(feed.Kind, time.Time{}, time.Time{})
	if err != nil {
		return CalendarView{}, err
	}
	cal, err := h.calendars.view(ctx, owner, from, to)
	if err != nil {
		return CalendarView{}, err
	}
	if feed.Detail == CalendarBusy {
		busy(cal.Entries)
		for _, s := range cal.Series {
			busy(s.Members)
		}
	}
	return cal, nil
}

// busy strips entries down to busy time.
func busy(entries []CalendarEntry) {
	for i := range entries {
		e := &entries[i]
		e.Title, e.ClientID, e.ClientName = busyTitle, nil, ""
	}
}
