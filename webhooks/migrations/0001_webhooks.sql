-- Webhook endpoints of each tenant, the deliveries of events to them and
-- every attempt of each delivery (package webhooks, PostgresStore).

CREATE TABLE webhook_endpoints (
    id                   uuid        PRIMARY KEY,
    tenant_id            uuid        NOT NULL,
    url                  text        NOT NULL,
    event_types          text[]      NOT NULL,
    description          text        NOT NULL DEFAULT '',
    secret               text        NOT NULL,
    enabled              boolean     NOT NULL,
    disabled_reason      text        NOT NULL DEFAULT '',
    disabled_at          timestamptz,
    consecutive_failures integer     NOT NULL DEFAULT 0,
    failing_since        timestamptz,
    version              bigint      NOT NULL CHECK (version > 0),
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL,
    created_by           text        NOT NULL DEFAULT '',
    updated_by           text        NOT NULL DEFAULT ''
);

CREATE INDEX webhook_endpoints_tenant_idx ON webhook_endpoints (tenant_id, created_at, id);

-- batch_id is the nil uuid for the delivery of a published event (so an
-- event reaches an endpoint once, whatever the stream redelivers) and a
-- fresh uuid for each redelivery request. queue_id orders the deliveries
-- of one endpoint and subject first in, first out.
CREATE TABLE webhook_deliveries (
    id              uuid        PRIMARY KEY,
    queue_id        bigint      GENERATED ALWAYS AS IDENTITY UNIQUE,
    tenant_id       uuid        NOT NULL,
    endpoint_id     uuid        NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id        uuid        NOT NULL,
    event_type      text        NOT NULL,
    subject         text        NOT NULL,
    sequence        bigint      NOT NULL,
    stream_version  bigint      NOT NULL,
    batch_id        uuid        NOT NULL,
    payload         bytea       NOT NULL,
    status          text        NOT NULL CHECK (status IN ('pending', 'failed', 'succeeded', 'dead')),
    tries           integer     NOT NULL DEFAULT 0,
    window_start    timestamptz,
    next_attempt_at timestamptz NOT NULL,
    claim_token     text,
    lease_until     timestamptz,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    UNIQUE (endpoint_id, event_id, batch_id)
);

CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at, queue_id)
    WHERE status IN ('pending', 'failed');
CREATE INDEX webhook_deliveries_queue_idx ON webhook_deliveries (endpoint_id, subject, queue_id)
    WHERE status IN ('pending', 'failed');
CREATE INDEX webhook_deliveries_list_idx ON webhook_deliveries (endpoint_id, queue_id);

CREATE TABLE webhook_attempts (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id  uuid        NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempted_at timestamptz NOT NULL,
    status_code  integer,
    duration_us  bigint      NOT NULL,
    error        text        NOT NULL DEFAULT ''
);

CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts (delivery_id, id);
