// Package httpapi serves a webhooks.Service through package http's
// Webhooks interface: it translates between the API's shapes and the
// use cases' types, so that neither package imports the other.
package httpapi

import (
	"context"
	"time"

	"github.com/google/uuid"

	bhttp "github.com/bookingengine/booking/http"
	"github.com/bookingengine/booking/webhooks"
)

// API implements bhttp.Webhooks on a Service. Safe for concurrent use.
type API struct {
	s *webhooks.Service
}

var _ bhttp.Webhooks = API{}

// New returns the API of s; register it with bhttp.RegisterWebhooks.
func New(s *webhooks.Service) API { return API{s: s} }

func view(ep webhooks.Endpoint) bhttp.Webhook {
	v := bhttp.Webhook{
		ID: ep.ID, TenantID: ep.TenantID, URL: ep.URL, EventTypes: ep.EventTypes, Description: ep.Description,
		Enabled: ep.Enabled, DisabledReason: ep.DisabledReason, Version: ep.Version,
		CreatedAt: ep.CreatedAt, UpdatedAt: ep.UpdatedAt, CreatedBy: ep.CreatedBy, UpdatedBy: ep.UpdatedBy,
	}
	if v.EventTypes == nil {
		v.EventTypes = []string{}
	}
	if !ep.DisabledAt.IsZero() {
		at := ep.DisabledAt
		v.DisabledAt = &at
	}
	return v
}

// CreateWebhook implements bhttp.Webhooks; the answer carries the secret.
func (a API) CreateWebhook(ctx context.Context, tenant uuid.UUID, actor string, in bhttp.WebhookInput) (bhttp.Webhook, error) {
	ep, err := a.s.Create(ctx, tenant, actor, webhooks.Input{
		URL: in.URL, EventTypes: in.EventTypes, Secret: in.Secret, Description: in.Description,
	})
	if err != nil {
		return bhttp.Webhook{}, err
	}
	v := view(ep)
	v.Secret = ep.Secret
	return v, nil
}

// ListWebhooks implements bhttp.Webhooks.
func (a API) ListWebhooks(ctx context.Context, tenant uuid.UUID, limit int, cursor string) (bhttp.WebhookPage, error) {
	eps, next, err := a.s.List(ctx, tenant, limit, cursor)
	if err != nil {
		return bhttp.WebhookPage{}, err
	}
	page := bhttp.WebhookPage{Webhooks: make([]bhttp.Webhook, len(eps)), NextCursor: next}
	for i, ep := range eps {
		page.Webhooks[i] = view(ep)
	}
	return page, nil
}

// Webhook implements bhttp.Webhooks.
func (a API) Webhook(ctx context.Context, tenant, id uuid.UUID) (bhttp.Webhook, error) {
	ep, err := a.s.Get(ctx, tenant, id)
	if err != nil {
		return bhttp.Webhook{}, err
	}
	return view(ep), nil
}

// WebhookDeliveries implements bhttp.Webhooks.
func (a API) WebhookDeliveries(ctx context.Context, tenant, id uuid.UUID, limit int, cursor string) (bhttp.WebhookDeliveryPage, error) {
	ds, next, err := a.s.Deliveries(ctx, tenant, id, limit, cursor)
	if err != nil {
		return bhttp.WebhookDeliveryPage{}, err
	}
	page := bhttp.WebhookDeliveryPage{Deliveries: make([]bhttp.WebhookDelivery, len(ds)), NextCursor: next}
	for i, d := range ds {
		v := bhttp.WebhookDelivery{
			ID: d.ID, WebhookID: d.EndpointID, EventID: d.EventID, EventType: d.EventType, Subject: d.Subject,
			Sequence: d.Sequence, Status: string(d.Status), Redelivery: d.Redelivery,
			Attempts: make([]bhttp.WebhookAttempt, len(d.Attempts)), CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt,
		}
		if d.Status.Open() {
			at := d.NextAttemptAt
			v.NextAttemptAt = &at
		}
		for j, at := range d.Attempts {
			v.Attempts[j] = bhttp.WebhookAttempt{
				AttemptedAt: at.At, StatusCode: at.StatusCode, Error: at.Error,
				DurationMS: at.Duration.Round(time.Millisecond).Milliseconds(),
			}
		}
		page.Deliveries[i] = v
	}
	return page, nil
}

// EnableWebhook implements bhttp.Webhooks.
func (a API) EnableWebhook(ctx context.Context, tenant, id uuid.UUID, actor string, expected *int64) (bhttp.Webhook, error) {
	ep, err := a.s.Enable(ctx, tenant, id, expected, actor)
	if err != nil {
		return bhttp.Webhook{}, err
	}
	return view(ep), nil
}

// RedeliverWebhook implements bhttp.Webhooks.
func (a API) RedeliverWebhook(ctx context.Context, tenant, id uuid.UUID, fromPosition int64) (bhttp.WebhookRedeliveryResult, error) {
	n, err := a.s.Redeliver(ctx, tenant, id, fromPosition)
	if err != nil {
		return bhttp.WebhookRedeliveryResult{}, err
	}
	return bhttp.WebhookRedeliveryResult{WebhookID: id, FromPosition: fromPosition, Enqueued: n}, nil
}
