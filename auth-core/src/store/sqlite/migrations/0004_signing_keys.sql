-- 4 (signed tokens): the key ring. Secrets are sealed (see `signed_token::keys`): a copy of
-- the file alone does not let anyone mint tokens.
CREATE TABLE signing_keys (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    kid           TEXT    NOT NULL UNIQUE,
    algorithm     TEXT    NOT NULL CHECK (algorithm IN ('hs256', 'ed25519')),
    public_key    BLOB,
    sealed_secret BLOB    NOT NULL,
    created_at    INTEGER NOT NULL,
    retired_at    INTEGER
);
