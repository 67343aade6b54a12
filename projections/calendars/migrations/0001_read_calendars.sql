-- The calendars read model: one entry per booking, as calendars show it,
-- and the resources and users calendars belong to. version is each
-- stream's version of the last event applied; the projection ignores
-- events at or below it.

CREATE TABLE read_calendar_entries (
    id               uuid        PRIMARY KEY,
    tenant_id        uuid        NOT NULL,
    resource_id      uuid        NOT NULL,
    client_id        uuid        NOT NULL,
    start_at         timestamptz NOT NULL,
    end_at           timestamptz NOT NULL,
    timezone         text        NOT NULL,
    status           text        NOT NULL,
    title            text        NOT NULL,
    sequence         integer     NOT NULL,
    series_id        uuid,
    occurrence_start timestamptz,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    version          bigint      NOT NULL
);

-- A resource's calendar, and a user's (its bookings as a client, and its
-- linked resource's), each a range of start_at.
CREATE INDEX read_calendar_entries_resource_idx ON read_calendar_entries (tenant_id, resource_id, start_at);
CREATE INDEX read_calendar_entries_client_idx ON read_calendar_entries (tenant_id, client_id, start_at);

-- Occurrences of a recurring series are entries with its series_id.
CREATE INDEX read_calendar_entries_series_idx ON read_calendar_entries (series_id) WHERE series_id IS NOT NULL;

-- A recurring series: its rule as recorded, expanded from the wall-clock
-- dtstart (YYYY-MM-DDTHH:MM:SS) in timezone; each occurrence lasts
-- duration_minutes.
CREATE TABLE read_calendar_series (
    id               uuid        PRIMARY KEY,
    tenant_id        uuid        NOT NULL,
    rrule            text        NOT NULL,
    dtstart          text        NOT NULL,
    timezone         text        NOT NULL,
    duration_minutes integer     NOT NULL,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    version          bigint      NOT NULL
);

-- kind is 'resource' or 'user'; linked_resource is a professional's
-- person resource.
CREATE TABLE read_calendar_owners (
    id              uuid   PRIMARY KEY,
    tenant_id       uuid   NOT NULL,
    kind            text   NOT NULL,
    name            text   NOT NULL,
    linked_resource uuid,
    version         bigint NOT NULL
);
