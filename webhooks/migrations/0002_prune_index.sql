-- Prune deletes finished deliveries by age; this keeps it from reading the
-- whole table every time it runs.
CREATE INDEX webhook_deliveries_finished_idx ON webhook_deliveries (updated_at)
    WHERE status IN ('succeeded', 'dead');
