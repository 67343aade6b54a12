-- The reports read model: one fact row per booking, and what reports need
-- of tenants (zone), resources and categories. version is each stream's
-- version of the last event applied; the projection ignores events at or
-- below it. minutes is the booking's length, lead_minutes the whole
-- minutes from its creation to its start.

CREATE TABLE read_report_bookings (
    id           uuid        PRIMARY KEY,
    tenant_id    uuid        NOT NULL,
    resource_id  uuid        NOT NULL,
    start_at     timestamptz NOT NULL,
    end_at       timestamptz NOT NULL,
    minutes      bigint      NOT NULL,
    lead_minutes bigint      NOT NULL,
    seats        integer     NOT NULL,
    status       text        NOT NULL,
    confirmed    boolean     NOT NULL,
    late         boolean     NOT NULL,
    created_at   timestamptz NOT NULL,
    version      bigint      NOT NULL
);

-- A report reads one range of start_at of one tenant.
CREATE INDEX read_report_bookings_tenant_start_idx ON read_report_bookings (tenant_id, start_at);

CREATE TABLE read_report_tenants (
    id       uuid   PRIMARY KEY,
    timezone text   NOT NULL,
    version  bigint NOT NULL
);

CREATE TABLE read_report_resources (
    id          uuid    PRIMARY KEY,
    tenant_id   uuid    NOT NULL,
    category_id uuid,
    name        text    NOT NULL,
    active      boolean NOT NULL,
    version     bigint  NOT NULL
);

CREATE INDEX read_report_resources_tenant_idx ON read_report_resources (tenant_id, id);

CREATE TABLE read_report_categories (
    id        uuid   PRIMARY KEY,
    tenant_id uuid   NOT NULL,
    name      text   NOT NULL,
    version   bigint NOT NULL
);

CREATE INDEX read_report_categories_tenant_idx ON read_report_categories (tenant_id, id);
