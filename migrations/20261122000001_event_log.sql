-- The append-only, hash-chained event log: the single source of truth.
-- Every other table that is a projection of it can be rebuilt by replaying it.
CREATE TABLE events (
    -- Global, gap-free sequence number, assigned by the writer (part of the hash).
    seq       INTEGER PRIMARY KEY CHECK (seq > 0),
    -- The run the event belongs to, if any (indexed for per-run paging).
    run_id    TEXT,
    -- UTC, RFC 3339 with milliseconds, e.g. 2026-11-22T05:01:08.123Z.
    ts        TEXT    NOT NULL,
    -- snake_case name of the event variant, e.g. run_created.
    kind      TEXT    NOT NULL,
    -- Who caused it: api, cli, system, or a team name.
    actor     TEXT    NOT NULL,
    -- The variant's fields as JSON text; hashed exactly as stored.
    payload   TEXT    NOT NULL,
    -- Hash of the previous event (64 zeros for the first).
    prev_hash TEXT    NOT NULL,
    -- SHA-256 over prev_hash and the canonical encoding of this row (see store/chain.rs).
    hash      TEXT    NOT NULL
);

CREATE INDEX events_by_run ON events (run_id, seq) WHERE run_id IS NOT NULL;

-- Facts are never changed or removed: refuse it in the database itself.
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only: UPDATE is not allowed');
END;

CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only: DELETE is not allowed');
END;
