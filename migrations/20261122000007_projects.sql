-- Projection: registered projects (repositories Factory may deliver into).
CREATE TABLE projects (
    name          TEXT PRIMARY KEY,
    path          TEXT    NOT NULL UNIQUE,
    remote        TEXT,
    github        TEXT,
    -- JSON array of gate commands given at registration.
    gates         TEXT    NOT NULL DEFAULT '[]',
    require_clean INTEGER NOT NULL DEFAULT 0,
    active        INTEGER NOT NULL DEFAULT 1,
    created_at    TEXT    NOT NULL
);
