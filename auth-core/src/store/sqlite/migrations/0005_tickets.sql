-- 5: Schema migration: accounts, events, rosters, tickets, consumed door steps, revoked access tokens.
CREATE TABLE accounts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT    NOT NULL UNIQUE,
    email         TEXT    NOT NULL UNIQUE,
    first_name    TEXT    NOT NULL,
    last_name     TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('user', 'agent', 'admin')),
    password_hash TEXT    NOT NULL, -- Argon2id PHC string; never the password
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    title        TEXT    NOT NULL,
    title_key    TEXT    NOT NULL, -- lower-cased title, for searches
    starts_at    INTEGER NOT NULL,
    ends_at      INTEGER NOT NULL,
    capacity     INTEGER NOT NULL CHECK (capacity > 0),
    streams      TEXT    NOT NULL DEFAULT '[]',
    single_entry INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX events_start ON events (starts_at, id);

CREATE TABLE rosters (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id   INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    roster     TEXT    NOT NULL CHECK (roster IN ('users', 'agents', 'admins')),
    added_at   INTEGER NOT NULL,
    UNIQUE (event_id, roster, account_id)
);
CREATE INDEX rosters_account ON rosters (account_id, event_id);

CREATE TABLE tickets (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id      INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    holder_id     INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    salt          BLOB    NOT NULL, -- the secret is HMAC(server key, holder, event, salt)
    issued_at     INTEGER NOT NULL,
    revoked_at    INTEGER,
    checked_in_at INTEGER,
    checked_in_by INTEGER
);
CREATE UNIQUE INDEX tickets_live ON tickets (event_id, holder_id) WHERE revoked_at IS NULL;

CREATE TABLE ticket_uses (
    ticket_id INTEGER NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    step      INTEGER NOT NULL,
    used_at   INTEGER NOT NULL,
    PRIMARY KEY (ticket_id, step)
) WITHOUT ROWID;

CREATE TABLE revoked_access_tokens (
    jti        TEXT    PRIMARY KEY,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX revoked_access_tokens_expiry ON revoked_access_tokens (expires_at);
