-- Projection: the cost ledger, one row per model call (keyed by its idempotency key, so a call
-- issued again after a restart is counted once). Maintained from model_call_* events.
CREATE TABLE model_calls (
    call_id        TEXT PRIMARY KEY,
    run_id         TEXT,
    project        TEXT,
    team           TEXT,
    objective_id   TEXT,
    work_order_id  TEXT,
    target         TEXT    NOT NULL,
    provider       TEXT,
    model          TEXT,
    status         TEXT    NOT NULL CHECK (status IN ('running', 'ok', 'failed')),
    input_tokens   INTEGER NOT NULL DEFAULT 0,
    output_tokens  INTEGER NOT NULL DEFAULT 0,
    cost_usd       REAL    NOT NULL DEFAULT 0,
    reserved_usd   REAL    NOT NULL DEFAULT 0,
    latency_ms     INTEGER,
    path           TEXT    NOT NULL DEFAULT '[]',
    error          TEXT,
    started_at     TEXT    NOT NULL,
    finished_at    TEXT,
    -- UTC calendar day and month of the start, for totals per day and monthly budgets.
    day            TEXT    NOT NULL,
    month          TEXT    NOT NULL,
    last_seq       INTEGER NOT NULL
);

CREATE INDEX model_calls_run ON model_calls (run_id);
CREATE INDEX model_calls_month ON model_calls (month);

-- Projection: the decision log of the complexity router.
CREATE TABLE routing_decisions (
    seq            INTEGER PRIMARY KEY,
    run_id         TEXT,
    work_order_id  TEXT,
    alias          TEXT NOT NULL,
    complexity     REAL NOT NULL,
    reason         TEXT NOT NULL,
    decision       TEXT NOT NULL,
    ts             TEXT NOT NULL
);
