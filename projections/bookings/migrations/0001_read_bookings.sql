-- The bookings read model: one row per booking, as GET /bookings/{id}
-- shows it. version is the booking stream's version of the last event
-- applied; the projection ignores events at or below it.

CREATE TABLE read_bookings (
    id             uuid        PRIMARY KEY,
    tenant_id      uuid        NOT NULL,
    resource_id    uuid        NOT NULL,
    client_id      uuid        NOT NULL,
    start_at       timestamptz NOT NULL,
    end_at         timestamptz NOT NULL,
    timezone       text        NOT NULL,
    seats          integer     NOT NULL,
    title          text        NOT NULL,
    notes          text        NOT NULL,
    attributes     jsonb       NOT NULL,
    status         text        NOT NULL,
    status_reason  text        NOT NULL,
    cancelled_late boolean     NOT NULL,
    policy_version integer     NOT NULL,
    buffer_before  integer     NOT NULL,
    buffer_after   integer     NOT NULL,
    version        bigint      NOT NULL,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    created_by     text        NOT NULL,
    updated_by     text        NOT NULL
);

-- Listings page by (start_at, id) within a tenant, optionally narrowed to
-- a resource or a client.
CREATE INDEX read_bookings_tenant_start_idx ON read_bookings (tenant_id, start_at, id);
CREATE INDEX read_bookings_resource_start_idx ON read_bookings (tenant_id, resource_id, start_at, id);
CREATE INDEX read_bookings_client_start_idx ON read_bookings (tenant_id, client_id, start_at, id);
