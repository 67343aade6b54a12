-- The event store: the append-only log, the stream heads, snapshots and
-- subscriber checkpoints. Applied once, in one transaction, by Migrate.

CREATE TABLE booking_events (
    position       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The appending transaction's id, assigned by its first write. ReadAll
    -- orders by (transaction_id, position) and reads only below the oldest
    -- running transaction id, so a row that commits late is never skipped.
    transaction_id xid8        NOT NULL DEFAULT pg_current_xact_id(),
    tenant_id      uuid        NOT NULL,
    stream_id      text        NOT NULL CHECK (stream_id <> ''),
    category       text        NOT NULL,
    stream_version bigint      NOT NULL CHECK (stream_version > 0),
    event_id       uuid        NOT NULL,
    type           text        NOT NULL CHECK (type <> ''),
    event_version  integer     NOT NULL CHECK (event_version > 0),
    data           jsonb       NOT NULL CHECK (jsonb_typeof(data) = 'object'),
    metadata       jsonb       NOT NULL DEFAULT '{}',
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    -- sha256(previous event's hash || booking_events_canonical(this event))
    hash           bytea       NOT NULL,
    -- The constraint that rejects the second of two concurrent writers.
    CONSTRAINT booking_events_stream_version_key UNIQUE (stream_id, stream_version),
    -- The constraint that makes a retried append recognisable.
    CONSTRAINT booking_events_event_id_key UNIQUE (event_id)
);

CREATE INDEX booking_events_read_all_idx ON booking_events (transaction_id, position);
CREATE INDEX booking_events_category_idx ON booking_events (category, transaction_id, position);
CREATE INDEX booking_events_tenant_idx ON booking_events (tenant_id, transaction_id, position);

-- One row per stream, written by the same statement that appends, after the
-- events: its version lets Verify notice a deleted last event, which the
-- chain alone cannot (a truncated chain is still a valid chain).
CREATE TABLE booking_streams (
    stream_id     text   PRIMARY KEY,
    tenant_id     uuid   NOT NULL,
    version       bigint NOT NULL,
    last_position bigint NOT NULL,
    hash          bytea  NOT NULL
);

CREATE INDEX booking_streams_tenant_idx ON booking_streams (tenant_id);

CREATE TABLE booking_snapshots (
    stream_id      text        PRIMARY KEY,
    version        bigint      NOT NULL CHECK (version > 0),
    schema_version integer     NOT NULL,
    state          jsonb       NOT NULL,
    saved_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE booking_checkpoints (
    name           text        PRIMARY KEY,
    transaction_id xid8        NOT NULL,
    position       bigint      NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- The canonical bytes of an event, hashed into the chain. Every free-text
-- field is length-prefixed so no two events share a byte string; the time
-- is whole microseconds since the Unix epoch and jsonb's text output is
-- deterministic, so neither the session's TimeZone nor DateStyle nor the
-- client's JSON spelling changes a hash. Changing this function breaks
-- every stored chain: add a new one instead.
CREATE FUNCTION booking_events_canonical(
    p_stream_id text, p_stream_version bigint, p_event_id uuid, p_type text,
    p_event_version integer, p_tenant_id uuid, p_recorded_at timestamptz,
    p_data jsonb, p_metadata jsonb)
RETURNS bytea
LANGUAGE sql STABLE PARALLEL SAFE
RETURN convert_to(
    'booking_events/v1'
    || E'\n' || octet_length(p_stream_id)::text || ':' || p_stream_id
    || E'\n' || p_stream_version::text
    || E'\n' || p_event_id::text
    || E'\n' || octet_length(p_type)::text || ':' || p_type
    || E'\n' || p_event_version::text
    || E'\n' || p_tenant_id::text
    || E'\n' || (extract(epoch FROM p_recorded_at - to_timestamp(0)) * 1000000)::bigint::text
    || E'\n' || p_data::text
    || E'\n' || p_metadata::text,
    'UTF8');

-- booking_events_append appends the events of one or more streams in one
-- statement. Arrays are parallel: stream i has p_counts[i] events, taken in
-- order from the event arrays. It returns each stream's version after the
-- append (in the order given), the position of the last event and whether
-- the append was a retry of one already stored. Streams should come sorted
-- by id so that two multi-stream appends lock in the same order and cannot
-- deadlock.
--
-- Every stream's head is read and every expectation checked before the
-- first write, so a stale append never takes a transaction id; the event
-- insert is the first write, so the id is held only for the inserts and
-- the commit that follows. booking_streams is written after the events.
--
-- A stale expectation is usually a retry: if every event id is stored
-- already, in the streams named, the function writes nothing and returns
-- the original versions and last position with duplicate = true; if only
-- some are, it raises BE422. Otherwise it raises BE409 with DETAIL
-- {"stream_id": ..., "actual": n}. Two writers that both pass the check
-- meet at the unique (stream_id, stream_version) index, and the second
-- fails with 23505 once the first commits: the constraint decides.
--
-- Writers expecting Any have no expectation to fail, so they queue on a
-- transaction-scoped advisory lock per stream instead of racing for the
-- version (an advisory lock takes no transaction id).
--
-- Single-row statements in plain loops, rather than one INSERT … SELECT
-- FROM unnest(…) with RETURNING through CTEs, halve the function's cost
-- for the common append of one event.
CREATE FUNCTION booking_events_append(
    p_streams text[], p_tenants uuid[], p_expected bigint[], p_counts integer[],
    p_ids uuid[], p_types text[], p_event_versions integer[],
    p_data jsonb[], p_metadata jsonb[],
    OUT versions bigint[], OUT last_position bigint, OUT duplicate boolean)
LANGUAGE plpgsql AS $$
DECLARE
    n_streams  integer := coalesce(cardinality(p_streams), 0);
    n_events   integer := coalesce(cardinality(p_ids), 0);
    hashes     bytea[] := '{}';
    positions  bigint[] := '{}';
    ev_stream  integer[] := '{}';
    ts         timestamptz := now();
    v          bigint;
    h          bytea;
    pos        bigint;
    i          integer;
    j          integer;
    k          integer;
    e          integer := 0;
    n_found    bigint;
    n_same     bigint;
BEGIN
    versions := '{}';
    duplicate := false;
    IF n_streams = 0 OR n_events = 0
       OR coalesce(cardinality(p_tenants), 0) <> n_streams
       OR coalesce(cardinality(p_expected), 0) <> n_streams
       OR coalesce(cardinality(p_counts), 0) <> n_streams
       OR coalesce(cardinality(p_types), 0) <> n_events
       OR coalesce(cardinality(p_event_versions), 0) <> n_events
       OR coalesce(cardinality(p_data), 0) <> n_events
       OR coalesce(cardinality(p_metadata), 0) <> n_events THEN
        RAISE EXCEPTION 'booking_events_append: array lengths disagree' USING ERRCODE = '22023';
    END IF;
    FOR i IN 1 .. n_streams LOOP
        IF p_counts[i] IS NULL OR p_counts[i] < 1 THEN
            RAISE EXCEPTION 'booking_events_append: stream % has no events', p_streams[i] USING ERRCODE = '22023';
        END IF;
        e := e + p_counts[i];
    END LOOP;
    IF e <> n_events THEN
        RAISE EXCEPTION 'booking_events_append: counts sum to %, % events given', e, n_events USING ERRCODE = '22023';
    END IF;
    e := 0;

    FOR i IN 1 .. n_streams LOOP
        IF p_expected[i] = -1 THEN
            PERFORM pg_advisory_xact_lock(1651469163, hashtext(p_streams[i]));
        END IF;
        SELECT be.stream_version, be.hash INTO v, h
          FROM booking_events be
         WHERE be.stream_id = p_streams[i]
         ORDER BY be.stream_version DESC
         LIMIT 1;
        IF NOT FOUND THEN
            v := 0;
            h := '\x'::bytea;
        END IF;
        IF p_expected[i] <> -1 AND p_expected[i] <> v THEN
            FOR j IN 1 .. n_streams LOOP
                FOR k IN 1 .. p_counts[j] LOOP
                    e := e + 1;
                    ev_stream[e] := j;
                END LOOP;
            END LOOP;
            SELECT count(be.event_id), count(be.event_id) FILTER (WHERE be.stream_id = p_streams[u.s])
              INTO n_found, n_same
              FROM unnest(p_ids, ev_stream) AS u(id, s)
              LEFT JOIN booking_events be ON be.event_id = u.id;
            IF n_same = n_events THEN
                last_position := 0;
                FOR j IN 1 .. n_streams LOOP
                    SELECT max(be.stream_version), max(be.position) INTO v, pos
                      FROM booking_events be
                     WHERE be.event_id = ANY(p_ids) AND be.stream_id = p_streams[j];
                    versions[j] := v;
                    last_position := greatest(last_position, pos);
                END LOOP;
                duplicate := true;
                RETURN;
            END IF;
            IF n_found > 0 THEN
                RAISE EXCEPTION '% of % event ids already stored', n_found, n_events
                    USING ERRCODE = 'BE422';
            END IF;
            RAISE EXCEPTION 'stream %: expected version %, actual %', p_streams[i], p_expected[i], v
                USING ERRCODE = 'BE409',
                      DETAIL = json_build_object('stream_id', p_streams[i], 'actual', v)::text;
        END IF;
        versions[i] := v;
        hashes[i] := h;
    END LOOP;

    FOR i IN 1 .. n_streams LOOP
        v := versions[i];
        h := hashes[i];
        FOR k IN 1 .. p_counts[i] LOOP
            e := e + 1;
            v := v + 1;
            h := sha256(h || booking_events_canonical(
                    p_streams[i], v, p_ids[e], p_types[e], p_event_versions[e],
                    p_tenants[i], ts, p_data[e], p_metadata[e]));
            INSERT INTO booking_events
                (tenant_id, stream_id, category, stream_version, event_id, type,
                 event_version, data, metadata, recorded_at, hash)
            VALUES (p_tenants[i], p_streams[i], split_part(p_streams[i], '-', 1), v, p_ids[e], p_types[e],
                    p_event_versions[e], p_data[e], p_metadata[e], ts, h)
            RETURNING position INTO pos;
        END LOOP;
        versions[i] := v;
        hashes[i] := h;
        positions[i] := pos;
        last_position := pos;
    END LOOP;

    FOR i IN 1 .. n_streams LOOP
        INSERT INTO booking_streams AS bs (stream_id, tenant_id, version, last_position, hash)
        VALUES (p_streams[i], p_tenants[i], versions[i], positions[i], hashes[i])
        ON CONFLICT (stream_id) DO UPDATE
           SET version = excluded.version, last_position = excluded.last_position, hash = excluded.hash;
    END LOOP;
END;
$$;
