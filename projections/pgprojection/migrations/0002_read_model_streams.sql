-- The highest stream version each projection has applied of each stream,
-- written in the transaction that applies the events, whether they came
-- from the event store or the message bus. An event at or below it is
-- skipped, so redeliveries and events arriving by both feeds are applied
-- once; a projector moves its checkpoint over the events recorded here.
-- Reset deletes a projection's rows; a shadow rebuild keeps its own under
-- the shadow checkpoint's name until the swap.
CREATE TABLE read_model_streams (
    projection text   NOT NULL,
    stream_id  text   NOT NULL,
    tenant_id  uuid   NOT NULL,
    version    bigint NOT NULL CHECK (version > 0),
    PRIMARY KEY (projection, stream_id)
);

CREATE INDEX read_model_streams_tenant_idx ON read_model_streams (projection, tenant_id);
