-- The catalog read model: what the read side needs to know of tenants,
-- resource categories, resources and users to apply the booking policy
-- and the visibility rules. version is each stream's version of the last
-- event applied; the projection ignores events at or below it.

CREATE TABLE read_catalog_tenants (
    id             uuid    PRIMARY KEY,
    settings       jsonb   NOT NULL,
    policy_version integer NOT NULL,
    version        bigint  NOT NULL
);

CREATE TABLE read_catalog_categories (
    id        uuid   PRIMARY KEY,
    tenant_id uuid   NOT NULL,
    name      text   NOT NULL,
    version   bigint NOT NULL
);

CREATE TABLE read_catalog_resources (
    id           uuid    PRIMARY KEY,
    tenant_id    uuid    NOT NULL,
    category_id  uuid,
    name         text    NOT NULL,
    kind         text    NOT NULL,
    capacity     integer NOT NULL,
    timezone     text    NOT NULL,
    availability jsonb   NOT NULL,
    active       boolean NOT NULL,
    version      bigint  NOT NULL
);

CREATE INDEX read_catalog_resources_category_idx ON read_catalog_resources (tenant_id, category_id, id);

CREATE TABLE read_catalog_users (
    id          uuid   PRIMARY KEY,
    tenant_id   uuid   NOT NULL,
    role        text   NOT NULL,
    resource_id uuid,
    version     bigint NOT NULL
);
