-- 3 (signed tokens): a session belongs to an `owner`, the number admission counts and keys
-- by: a token's id, or (negative) a signed token's, which has no row. `token_id` keeps the
-- foreign key (and its cascade) for the sessions of stored tokens and is NULL for the others.
-- SQLite cannot drop a NOT NULL or a UNIQUE in place, so the table is rebuilt; `owner` comes
-- last, where PostgreSQL's ADD COLUMN puts it, so exports of both list the same columns.
CREATE TABLE sessions_v3 (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    token_id      INTEGER REFERENCES tokens (id) ON DELETE CASCADE,
    session_key   TEXT    NOT NULL,
    user_id       TEXT    NOT NULL,
    stream        TEXT    NOT NULL,
    ip            TEXT    NOT NULL,
    proto         TEXT    NOT NULL,
    started_at    INTEGER NOT NULL,
    last_seen     INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    terminated_at INTEGER,
    owner         INTEGER NOT NULL,
    CHECK (CASE WHEN owner > 0 THEN token_id = owner ELSE token_id IS NULL END),
    UNIQUE (owner, session_key)
);
INSERT INTO sessions_v3 (id, token_id, session_key, user_id, stream, ip, proto,
                         started_at, last_seen, expires_at, terminated_at, owner)
    SELECT id, token_id, session_key, user_id, stream, ip, proto,
           started_at, last_seen, expires_at, terminated_at, token_id FROM sessions;
DROP TABLE sessions;
ALTER TABLE sessions_v3 RENAME TO sessions;
CREATE INDEX sessions_owner_expiry ON sessions (owner, expires_at);
CREATE INDEX sessions_token ON sessions (token_id);
CREATE INDEX sessions_expiry ON sessions (expires_at);
