-- 1: access logs.
CREATE TABLE access_logs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           INTEGER NOT NULL,
    token_id     INTEGER,
    token_prefix TEXT,
    user_id      TEXT,
    stream       TEXT    NOT NULL,
    ip           TEXT    NOT NULL,
    proto        TEXT    NOT NULL,
    request_type TEXT    NOT NULL,
    session_id   TEXT,
    result       TEXT    NOT NULL,
    reason       TEXT,
    latency_us   INTEGER NOT NULL
);
CREATE INDEX access_logs_at ON access_logs (at);
CREATE INDEX access_logs_token ON access_logs (token_id, id);
