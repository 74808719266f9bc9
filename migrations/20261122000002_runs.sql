-- Projection: one row per run, maintained from run_* events in the same transaction
-- that appends them. Rebuildable from the log at any time.
CREATE TABLE runs (
    id          TEXT PRIMARY KEY,
    -- Caller-chosen idempotency key of POST /supervisor/start; same key, same run.
    request_id  TEXT UNIQUE,
    goal        TEXT    NOT NULL,
    project     TEXT,
    status      TEXT    NOT NULL CHECK (status IN
                    ('queued', 'running', 'waiting_for_human', 'succeeded', 'failed', 'canceled')),
    created_at  TEXT    NOT NULL,
    -- seq of the run_created event: a total, stable order for "newest first".
    created_seq INTEGER NOT NULL,
    updated_at  TEXT    NOT NULL,
    -- seq of the last event that changed this row.
    last_seq    INTEGER NOT NULL
);

CREATE INDEX runs_newest_first ON runs (created_seq DESC);
