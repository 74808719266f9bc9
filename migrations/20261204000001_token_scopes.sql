-- Token scopes, project limits and revocation bookkeeping.
--
-- admin_tokens stays what 20261122000003_auth.sql made it: the one place a token's hash lives
-- (never in the log). The columns added here are derived from events, though: `token_scoped`
-- sets scope and projects, `token_revoked` sets revoked_at, `session_started` sets
-- last_sign_in_at; replaying the log (`factory audit rebuild`) writes the same values again.

-- viewer: read only; operator: also start/cancel runs and decide approvals; admin: everything.
-- Tokens issued before scopes existed could do everything, so they are admin tokens.
ALTER TABLE admin_tokens ADD COLUMN scope TEXT NOT NULL DEFAULT 'admin'
    CHECK (scope IN ('viewer', 'operator', 'admin'));

-- JSON array of project paths the token is limited to; '[]' means every project.
ALTER TABLE admin_tokens ADD COLUMN projects TEXT NOT NULL DEFAULT '[]';

-- Why the token was revoked (shown by `factory token list`); NULL while it is active.
ALTER TABLE admin_tokens ADD COLUMN revoked_reason TEXT;

-- When a browser session was last opened with the token (from `session_started`). Bearer use
-- is not recorded: that would be a write on every API request.
ALTER TABLE admin_tokens ADD COLUMN last_sign_in_at TEXT;

-- Revoking a token ends its sessions: they are found by token.
CREATE INDEX sessions_by_token ON sessions (token_id);
