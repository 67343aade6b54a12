-- The availability read model: each booking's hold on its resource. The
-- occupied range includes the buffers recorded when the booking was
-- accepted; only active bookings (pending, confirmed, checked_in) take
-- time, the others stay to remember the stream version applied.

CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE read_availability (
    booking_id  uuid        PRIMARY KEY,
    tenant_id   uuid        NOT NULL,
    resource_id uuid        NOT NULL,
    start_at    timestamptz NOT NULL,
    end_at      timestamptz NOT NULL,
    occupied    tstzrange   NOT NULL,
    seats       integer     NOT NULL,
    active      boolean     NOT NULL,
    version     bigint      NOT NULL
);

-- A free-slot query asks, per resource, for the active holds overlapping a
-- range: resource_id by equality (btree_gist), occupied by &&.
CREATE INDEX read_availability_occupied_idx ON read_availability
    USING gist (resource_id, occupied) WHERE active;
