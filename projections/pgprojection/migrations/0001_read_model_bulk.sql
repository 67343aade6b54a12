-- Secondary indexes that a rebuild dropped to bulk-load its read model,
-- with the statement that builds each again. A rebuild builds them at its
-- end and deletes the rows; a row left behind (the process died) is built
-- by the next start.
CREATE TABLE read_model_dropped_indexes (
    projection text NOT NULL,
    name       text NOT NULL,
    definition text NOT NULL,
    dropped_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, name)
);
