-- Wakes the event relay when events commit. A statement-level trigger
-- sends one notification per appending statement (an append is one
-- statement), and PostgreSQL delivers it at commit, never for a statement
-- that rolled back. The payload is empty: the relay reads the events with
-- ReadAll, which alone decides what is safe to publish.
--
-- Cost: a committing transaction that notified takes the notification
-- queue's lock briefly at commit, so notifying commits are serialised at
-- that point. Listeners that stop reading let the queue fill (8 GB by
-- default) before NOTIFY fails; the relay listens on a dedicated
-- connection and drains it continuously.

CREATE FUNCTION booking_events_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('booking_events', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER booking_events_notify
    AFTER INSERT ON booking_events
    FOR EACH STATEMENT
    EXECUTE FUNCTION booking_events_notify();
