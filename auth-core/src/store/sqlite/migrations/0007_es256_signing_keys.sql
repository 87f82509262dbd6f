-- 7: ES256 (ECDSA P-256) signing keys, published in the JWKS beside Ed25519 ones. SQLite cannot
-- change a CHECK in place, so the table is rebuilt with the same columns, ids kept.
CREATE TABLE signing_keys_v7 (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    kid           TEXT    NOT NULL UNIQUE,
    algorithm     TEXT    NOT NULL CHECK (algorithm IN ('hs256', 'ed25519', 'es256')),
    public_key    BLOB,
    sealed_secret BLOB    NOT NULL,
    created_at    INTEGER NOT NULL,
    retired_at    INTEGER
);
INSERT INTO signing_keys_v7 (id, kid, algorithm, public_key, sealed_secret, created_at, retired_at)
    SELECT id, kid, algorithm, public_key, sealed_secret, created_at, retired_at FROM signing_keys;
DROP TABLE signing_keys;
ALTER TABLE signing_keys_v7 RENAME TO signing_keys;
