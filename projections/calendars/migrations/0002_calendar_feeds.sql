-- Secret calendar feeds: the SHA-256 of each token, never the token. One
-- feed per calendar; a new one replaces it. Not part of the read model:
-- a rebuild leaves this table alone.
CREATE TABLE calendar_feeds (
    token_hash  bytea       PRIMARY KEY,
    tenant_id   uuid        NOT NULL,
    kind        text        NOT NULL,
    calendar_id uuid        NOT NULL,
    detail      text        NOT NULL,
    created_by  text        NOT NULL,
    created_at  timestamptz NOT NULL,
    UNIQUE (tenant_id, kind, calendar_id)
);
