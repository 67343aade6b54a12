-- What each consumer group of package subscriber has processed, for
-- PostgresStore: event ids (dedupe) and the last processed version of each
-- stream (ordering). Rows are written only after the handler succeeded.

CREATE TABLE stream_subscriber_events (
    group_name   text        NOT NULL,
    event_id     uuid        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_name, event_id)
);

CREATE INDEX stream_subscriber_events_processed_idx ON stream_subscriber_events (processed_at);

CREATE TABLE stream_subscriber_streams (
    group_name text        NOT NULL,
    stream_id  text        NOT NULL,
    version    bigint      NOT NULL CHECK (version > 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_name, stream_id)
);

-- A consumer's lease on a stream while it handles one of its events, so
-- that two consumers of a group never handle events of one stream at the
-- same time. An expired lease may be taken over.
CREATE TABLE stream_subscriber_leases (
    group_name text        NOT NULL,
    stream_id  text        NOT NULL,
    token      text        NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (group_name, stream_id)
);
