-- Announces every event appended to a stream that processes cache for
-- reads without a round trip: tenants (settings, policy) and the domain
-- guards (X-Tenant-Domain -> tenant). One notification per row, the
-- stream id as payload, delivered at commit to every session that
-- LISTENs on booking_cache_invalidation, never for a rolled-back append.
--
-- The WHEN clause is evaluated for every inserted row; bookings and
-- schedule buckets, nearly all of them, queue no trigger event at all.
-- PostgreSQL folds identical notifications of one transaction into one.

CREATE FUNCTION booking_cache_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('booking_cache_invalidation', NEW.stream_id);
    RETURN NULL;
END;
$$;

CREATE TRIGGER booking_cache_notify
    AFTER INSERT ON booking_events
    FOR EACH ROW
    WHEN (NEW.category = 'tenant' OR NEW.stream_id LIKE 'guard-domain-%')
    EXECUTE FUNCTION booking_cache_notify();
