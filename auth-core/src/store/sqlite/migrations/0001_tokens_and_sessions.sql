-- 1: tokens and sessions.
CREATE TABLE tokens (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash      BLOB    NOT NULL UNIQUE, -- HMAC-SHA256 of the secret; never the secret
    token_prefix    TEXT    NOT NULL,
    user_id         TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('active', 'suspended', 'expired')),
    max_sessions    INTEGER NOT NULL DEFAULT 0 CHECK (max_sessions >= 0),
    allowed_ips     TEXT    NOT NULL DEFAULT '[]',
    allowed_streams TEXT    NOT NULL DEFAULT '[]',
    valid_from      INTEGER,
    valid_until     INTEGER,
    meta            TEXT    NOT NULL DEFAULT '{}',
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX tokens_user_id ON tokens (user_id);
CREATE INDEX tokens_status ON tokens (status);

CREATE TABLE sessions (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    token_id      INTEGER NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
    session_key   TEXT    NOT NULL,
    user_id       TEXT    NOT NULL,
    stream        TEXT    NOT NULL,
    ip            TEXT    NOT NULL,
    proto         TEXT    NOT NULL,
    started_at    INTEGER NOT NULL,
    last_seen     INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    terminated_at INTEGER,
    UNIQUE (token_id, session_key)
);
CREATE INDEX sessions_token_expiry ON sessions (token_id, expires_at);
CREATE INDEX sessions_expiry ON sessions (expires_at);
