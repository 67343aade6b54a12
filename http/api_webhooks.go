package http

import (
	"context"
	"net/http"
	"time"

	"github.com/google/uuid"
)

// WebhookInput is the body of POST /webhooks.
type WebhookInput struct {
	// URL receives the deliveries (https; http only where the
	// deployment allows it for loopback hosts).
	URL string `json:"url"`
	// EventTypes are event types ("booking.created"), family patterns
	// ("booking.*") or "*"; empty or absent means every event.
	EventTypes []string `json:"event_types,omitempty"`
	// Secret is the Standard Webhooks signing secret ("whsec_<base64 of
	// 24 to 64 bytes>"); absent: one is generated.
	Secret      string `json:"secret,omitempty"`
	Description string `json:"description,omitempty"`
}

// Webhook is a webhook subscription as the API shows it. Secret is set
// only in the answer to its creation.
type Webhook struct {
	ID          uuid.UUID `json:"id"`
	TenantID    uuid.UUID `json:"tenant_id"`
	URL         string    `json:"url"`
	EventTypes  []string  `json:"event_types"`
	Description string    `json:"description"`
	Enabled     bool      `json:"enabled"`
	// DisabledReason is "gone" (the receiver answered 410) or "failing"
	// (a run of failed attempts); absent while enabled.
	DisabledReason string     `json:"disabled_reason,omitempty"`
	DisabledAt     *time.Time `json:"disabled_at,omitempty"`
	Secret         string     `json:"secret,omitempty"`
	Version        int64      `json:"version"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
	CreatedBy      string     `json:"created_by,omitempty"`
	UpdatedBy      string     `json:"updated_by,omitempty"`
}

// WebhookPage is a page of GET /webhooks.
type WebhookPage struct {
	Webhooks   []Webhook `json:"webhooks"`
	NextCursor string    `json:"next_cursor,omitempty"`
}

// WebhookDelivery is one event sent (or to be sent) to a webhook, with
// every attempt.
type WebhookDelivery struct {
	ID        uuid.UUID `json:"id"`
	WebhookID uuid.UUID `json:"webhook_id"`
	// EventID is the webhook-id header of every attempt.
	EventID   uuid.UUID `json:"event_id"`
	EventType string    `json:"event_type"`
	Subject   string    `json:"subject"`
	Sequence  int64     `json:"sequence"`
	// Status is pending, failed (a retry is scheduled, or the webhook is
	// disabled), succeeded or dead (retries ran out).
	Status        string           `json:"status"`
	Redelivery    bool             `json:"redelivery"`
	Attempts      []WebhookAttempt `json:"attempts"`
	NextAttemptAt *time.Time       `json:"next_attempt_at,omitempty"`
	CreatedAt     time.Time        `json:"created_at"`
	UpdatedAt     time.Time        `json:"updated_at"`
}

// WebhookAttempt is one request of a delivery.
type WebhookAttempt struct {
	AttemptedAt time.Time `json:"attempted_at"`
	// StatusCode is the receiver's answer; absent when none came.
	StatusCode int    `json:"status_code,omitempty"`
	DurationMS int64  `json:"duration_ms"`
	Error      string `json:"error,omitempty"`
}

// WebhookDeliveryPage is a page of GET /webhooks/{id}/deliveries.
type WebhookDeliveryPage struct {
	Deliveries []WebhookDelivery `json:"deliveries"`
	NextCursor string            `json:"next_cursor,omitempty"`
}

// WebhookRedeliveryResult answers POST /webhooks/{id}/redeliver.
type WebhookRedeliveryResult struct {
	WebhookID    uuid.UUID `json:"webhook_id"`
	FromPosition int64     `json:"from_position"`
	Enqueued     int       `json:"enqueued"`
}

// Webhooks is the webhook management RegisterWebhooks serves, for one
// tenant at a time. Implementations are safe for concurrent use and
// report failures as coded errors: not_found for a webhook that does not
// exist or is another tenant's, validation_failed (with FieldLister) for
// bad input, version_mismatch for a stale If-Match.
type Webhooks interface {
	CreateWebhook(ctx context.Context, tenant uuid.UUID, actor string, in WebhookInput) (Webhook, error)
	ListWebhooks(ctx context.Context, tenant uuid.UUID, limit int, cursor string) (WebhookPage, error)
	Webhook(ctx context.Context, tenant, id uuid.UUID) (Webhook, error)
	WebhookDeliveries(ctx context.Context, tenant, id uuid.UUID, limit int, cursor string) (WebhookDeliveryPage, error)
	// EnableWebhook re-enables a disabled webhook; expected, when not
	// nil, is the If-Match version.
	EnableWebhook(ctx context.Context, tenant, id uuid.UUID, actor string, expected *int64) (Webhook, error)
	RedeliverWebhook(ctx context.Context, tenant, id uuid.UUID, fromPosition int64) (WebhookRedeliveryResult, error)
}

// RegisterWebhooks registers the webhook endpoints on s's tenant group.
// Every one needs scope webhooks:write and the role admin (or a platform
// admin): a webhook sees every event of the tenant.
//
//   - POST /webhooks {url, event_types, secret?, description?} → 201 with
//     the webhook, its secret shown this once, ETag and Location.
//   - GET /webhooks?limit&cursor → {"webhooks": […], "next_cursor"}.
//   - GET /webhooks/{id} → the webhook (without secret), ETag.
//   - GET /webhooks/{id}/deliveries?limit&cursor → {"deliveries": […],
//     "next_cursor"}, newest first, each with its attempts.
//   - POST /webhooks/{id}/enable → 200 with the webhook, re-enabled and
//     its waiting deliveries resumed; honours If-Match.
//   - POST /webhooks/{id}/redeliver {from_position} → 202 {enqueued}:
//     every matching event from that global position on is sent again.
//
// limit must be 0 (the default, 50) to 500. Another tenant's webhook is
// 404. It must be called before s serves.
func RegisterWebhooks(s *Server, w Webhooks) {
	h := webhookAPI{w: w}
	t := s.Tenant()
	t.HandleFunc("/webhooks", s.AtHead(h.create)).Methods(http.MethodPost)
	t.HandleFunc("/webhooks", h.list).Methods(http.MethodGet)
	t.HandleFunc("/webhooks/{id}", h.get).Methods(http.MethodGet)
	t.HandleFunc("/webhooks/{id}/deliveries", h.deliveries).Methods(http.MethodGet)
	t.HandleFunc("/webhooks/{id}/enable", s.AtHead(h.enable)).Methods(http.MethodPost)
	t.HandleFunc("/webhooks/{id}/redeliver", s.AtHead(h.redeliver)).Methods(http.MethodPost)
}

type webhookAPI struct{ w Webhooks }

// authorizeWebhooks lets through tenant admins and platform admins whose
// token grants webhooks:write.
func authorizeWebhooks(r *http.Request) error {
	p, _ := PrincipalFrom(r.Context())
	return Authorize(p, ScopeWebhooksWrite, RoleAdmin)
}

// pageParams parses limit and cursor.
func pageParams(r *http.Request) (int, string, error) {
	p := &params{v: r.URL.Query()}
	limit := p.int("limit")
	if len(p.problems) == 0 && (limit < 0 || limit > 500) {
		p.bad("limit", "must be between 0 (the default) and 500")
	}
	if len(p.problems) > 0 {
		return 0, "", Error(CodeValidationFailed, http.StatusBadRequest, "malformed query parameters", p.problems...)
	}
	return limit, p.v.Get("cursor"), nil
}

func writeWebhook(w http.ResponseWriter, r *http.Request, status int, wh Webhook, location string) {
	w.Header().Set("ETag", ETag(wh.Version))
	if location != "" {
		w.Header().Set("Location", location)
	}
	if err := WriteJSON(w, status, wh); err != nil {
		LoggerFrom(r.Context()).DebugContext(r.Context(), "write response", "error", err)
	}
}

func (h webhookAPI) create(w http.ResponseWriter, r *http.Request) {
	handle(w, r, func(ctx context.Context) error {
		if err := authorizeWebhooks(r); err != nil {
			return err
		}
		var in WebhookInput
		if err := DecodeJSON(r, &in); err != nil {
			return err
		}
		m := meta(r)
		wh, err := h.w.CreateWebhook(ctx, m.TenantID, m.Actor.ID, in)
		if err != nil {
			return err
		}
		writeWebhook(w, r, http.StatusCreated, wh, "/webhooks/"+wh.ID.String())
		return nil
	})
}

func (h webhookAPI) list(w http.ResponseWriter, r *http.Request) {
	handle(w, r, func(ctx context.Context) error {
		if err := authorizeWebhooks(r); err != nil {
			return err
		}
		limit, cursor, err := pageParams(r)
		if err != nil {
			return err
		}
		page, err := h.w.ListWebhooks(ctx, TenantFrom(ctx), limit, cursor)
		if err != nil {
			return err
		}
		if page.Webhooks == nil {
			page.Webhooks = []Webhook{}
		}
		return WriteJSON(w, http.StatusOK, page)
	})
}

func (h webhookAPI) get(w http.ResponseWriter, r *http.Request) {
	handle(w, r, func(ctx context.Context) error {
		if err := authorizeWebhooks(r); err != nil {
			return err
		}
		id, err := pathID(r)
		if err != nil {
			return err
		}
		wh, err := h.w.Webhook(ctx, TenantFrom(ctx), id)
		if err != nil {
			return err
		}
		writeWebhook(w, r, http.StatusOK, wh, "")
		return nil
	})
}

func (h webhookAPI) deliveries(w http.ResponseWriter, r *http.Request) {
	handle(w, r, func(ctx context.Context) error {
		if err := authorizeWebhooks(r); err != nil {
			return err
		}
		id, err := pathID(r)
		if err != nil {
			return err
		}
		limit, cursor, err := pageParams(r)
		if err != nil {
			return err
		}
		page, err := h.w.WebhookDeliveries(ctx, TenantFrom(ctx), id, limit, cursor)
		if err != nil {
			return err
		}
		if page.Deliveries == nil {
			page.Deliveries = []WebhookDelivery{}
		}
		return WriteJSON(w, http.StatusOK, page)
	})
}

func (h webhookAPI) enable(w http.ResponseWriter, r *http.Request) {
	handle(w, r, func(ctx context.Context) error {
		if err := authorizeWebhooks(r); err != nil {
			return err
		}
		id, err := pathID(r)
		if err != nil {
			return err
		}
		var none struct{}
		if err := DecodeOptionalJSON(r, &none); err != nil {
			return err
		}
		expected, err := ifMatch(r)
		if err != nil {
			return err
		}
		m := meta(r)
		wh, err := h.w.EnableWebhook(ctx, m.TenantID, id, m.Actor.ID, expected)
		if err != nil {
			return err
		}
		writeWebhook(w, r, http.StatusOK, wh, "")
		return nil
	})
}

func (h webhookAPI) redeliver(w http.ResponseWriter, r *http.Request) {
	handle(w, r, func(ctx context.Context) error {
		if err := authorizeWebhooks(r); err != nil {
			return err
		}
		id, err := pathID(r)
		if err != nil {
			return err
		}
		var in struct {
			FromPosition *int64 `json:"from_position"`
		}
		if err := DecodeJSON(r, &in); err != nil {
			return err
		}
		if in.FromPosition == nil {
			return Error(CodeValidationFailed, 0, "from_position is required",
				FieldProblem{Field: "from_position", Code: "required", Message: "the global position (X-Position, sequence) to redeliver from"})
		}
		res, err := h.w.RedeliverWebhook(ctx, TenantFrom(ctx), id, *in.FromPosition)
		if err != nil {
			return err
		}
		return WriteJSON(w, http.StatusAccepted, res)
	})
}
