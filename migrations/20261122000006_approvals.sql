-- Projection: durable waits for a person. A run with a pending approval is `waiting_for_human`.
CREATE TABLE approvals (
    id          TEXT PRIMARY KEY,
    run_id      TEXT    NOT NULL,
    stage_index INTEGER NOT NULL,
    kind        TEXT    NOT NULL CHECK (kind IN ('clarification', 'blocked', 'plan', 'budget', 'review')),
    question    TEXT    NOT NULL,
    context     TEXT    NOT NULL,
    -- JSON array of {id, label, needs_text}.
    options     TEXT    NOT NULL,
    detail      TEXT    NOT NULL DEFAULT 'null',
    created_at  TEXT    NOT NULL,
    deadline    TEXT,
    status      TEXT    NOT NULL CHECK (status IN ('pending', 'decided')),
    decided_by  TEXT,
    option      TEXT,
    text        TEXT,
    automatic   INTEGER NOT NULL DEFAULT 0,
    policy      TEXT,
    decided_at  TEXT,
    created_seq INTEGER NOT NULL
);
CREATE INDEX approvals_pending ON approvals (status, created_seq);
CREATE INDEX approvals_by_run ON approvals (run_id);

-- Projection: questions between teams (the clarification broker).
CREATE TABLE clarifications (
    id          TEXT PRIMARY KEY,
    run_id      TEXT    NOT NULL,
    stage_index INTEGER NOT NULL,
    asking_team TEXT    NOT NULL,
    target_team TEXT    NOT NULL,
    question    TEXT    NOT NULL,
    depth       INTEGER NOT NULL,
    parent      TEXT,
    status      TEXT    NOT NULL CHECK (status IN ('pending', 'answered', 'refused')),
    answer      TEXT,
    answered_by TEXT,
    reason      TEXT,
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL
);
CREATE INDEX clarifications_by_run ON clarifications (run_id);

-- Projection: escalation records (the Moose plan), one per blocked or budget approval.
CREATE TABLE escalations (
    id                 TEXT PRIMARY KEY,
    run_id             TEXT NOT NULL,
    severity           TEXT NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    error_type         TEXT NOT NULL CHECK (error_type IN ('validation', 'execution', 'api', 'budget', 'gate')),
    message            TEXT NOT NULL,
    resolution_options TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('open', 'resolved', 'ignored')),
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);

-- Projection: hard budget limits raised by a person (loaded into the budgets at start).
CREATE TABLE budget_raises (
    scope    TEXT PRIMARY KEY,
    hard_usd REAL NOT NULL,
    run_id   TEXT,
    seq      INTEGER NOT NULL
);
