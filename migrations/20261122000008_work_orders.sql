-- Projection: the work orders of a run — planned by solution architecture, then delivered on
-- their own branch (one row per run and work order; a revised plan replaces the planned rows).
CREATE TABLE work_orders (
    run_id        TEXT NOT NULL,
    work_order_id TEXT NOT NULL,
    title         TEXT NOT NULL,
    -- JSON of the planned work order (description, risk, files, criteria, dependencies).
    spec          TEXT NOT NULL DEFAULT 'null',
    status        TEXT NOT NULL CHECK (status IN ('planned', 'delivered')),
    branch        TEXT,
    commit_id     TEXT,
    -- JSON arrays: changed files; gate summaries {command, sandbox, passed, exit_code, duration_ms}.
    files         TEXT NOT NULL DEFAULT '[]',
    gates         TEXT NOT NULL DEFAULT '[]',
    model         TEXT,
    cost_usd      REAL NOT NULL DEFAULT 0,
    pushed        INTEGER NOT NULL DEFAULT 0,
    pull_request  TEXT,
    updated_at    TEXT NOT NULL,
    PRIMARY KEY (run_id, work_order_id)
);
