-- Projection: work orders delivered on their own branch (one row per run and work order).
CREATE TABLE work_orders (
    run_id        TEXT NOT NULL,
    work_order_id TEXT NOT NULL,
    title         TEXT NOT NULL,
    branch        TEXT NOT NULL,
    commit_id     TEXT NOT NULL,
    -- JSON arrays: changed files; gate summaries {command, sandbox, passed, exit_code, duration_ms}.
    files         TEXT NOT NULL,
    gates         TEXT NOT NULL,
    model         TEXT NOT NULL,
    cost_usd      REAL NOT NULL,
    delivered_at  TEXT NOT NULL,
    PRIMARY KEY (run_id, work_order_id)
);
