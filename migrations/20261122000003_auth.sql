-- Authentication state. Not projections: secrets are never written to the event log, only
-- their ids (admin_token_created, session_started events record who and when).

-- Admin tokens: only the SHA-256 of each token is kept (tokens carry 256 random bits,
-- so a fast hash is enough; the plaintext is shown once and never stored).
CREATE TABLE admin_tokens (
    id         TEXT PRIMARY KEY,
    label      TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);

-- Browser sessions opened on /login; the cookie holds the secret, this table its hash.
CREATE TABLE sessions (
    id_hash    TEXT PRIMARY KEY,
    token_id   TEXT NOT NULL REFERENCES admin_tokens (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

CREATE INDEX sessions_by_expiry ON sessions (expires_at);
