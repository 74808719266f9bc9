-- The runs projection becomes the seed plan's `supervisor_runs`: the plan (steps) and what was
-- delivered (artifacts) live beside the status. Rebuildable from the log like every projection.
ALTER TABLE runs RENAME TO supervisor_runs;
ALTER TABLE supervisor_runs ADD COLUMN pipeline TEXT;
-- Name of the stage running now (NULL when none is).
ALTER TABLE supervisor_runs ADD COLUMN current_stage TEXT;
-- JSON array, one object per planned stage: {name, team, status, attempts, error?, started_at?,
-- finished_at?, cost_usd}. Status: pending | running | complete | needs_clarification | blocked.
ALTER TABLE supervisor_runs ADD COLUMN steps TEXT NOT NULL DEFAULT '[]';
-- JSON array of {stage, team, name, path, bytes}.
ALTER TABLE supervisor_runs ADD COLUMN artifacts TEXT NOT NULL DEFAULT '[]';
-- Why the run ended (failed, canceled) or what it waits for.
ALTER TABLE supervisor_runs ADD COLUMN reason TEXT;

-- Projection: memory items per bank (team banks and `factory-shared-world`), searched with
-- FTS5 (BM25).
CREATE TABLE memory_items (
    rowid      INTEGER PRIMARY KEY,
    item_id    TEXT NOT NULL UNIQUE,
    bank       TEXT NOT NULL,
    project    TEXT,
    run_id     TEXT,
    kind       TEXT NOT NULL,
    text       TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX memory_by_bank ON memory_items (bank, project);

CREATE VIRTUAL TABLE memory_fts USING fts5 (
    text,
    content = 'memory_items',
    content_rowid = 'rowid',
    tokenize = 'porter unicode61'
);
CREATE TRIGGER memory_items_ai AFTER INSERT ON memory_items BEGIN
    INSERT INTO memory_fts (rowid, text) VALUES (new.rowid, new.text);
END;
CREATE TRIGGER memory_items_ad AFTER DELETE ON memory_items BEGIN
    INSERT INTO memory_fts (memory_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
END;

-- Not a projection: a cache of embedding vectors (little-endian f32) of memory items, filled
-- when a local embedding model is configured (`local/embed`). Keyed by the item's stable id, so
-- it survives a rebuild of the projections; recomputable at any time.
CREATE TABLE memory_vectors (
    item_id TEXT NOT NULL,
    model   TEXT NOT NULL,
    vector  BLOB NOT NULL,
    PRIMARY KEY (item_id, model)
);
