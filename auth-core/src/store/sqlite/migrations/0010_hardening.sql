-- 10: door code locks, signed token revocations, password changes.
--
-- Door code locks: wrong door codes a ticket took in a row, and until when (unix micros) it
-- takes no code after too many (see `TicketStore::count_code_attempt`).
ALTER TABLE tickets ADD COLUMN wrong_codes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tickets ADD COLUMN code_locked_until INTEGER;

-- Signed tokens refused before they expire, by session group (`grp`) or token id (`jti`),
-- until `until` (unix micros). Ids only grow: nodes poll the largest to notice new rows.
CREATE TABLE signed_revocations (
    id    INTEGER PRIMARY KEY AUTOINCREMENT,
    kind  TEXT    NOT NULL CHECK (kind IN ('grp', 'jti')),
    value TEXT    NOT NULL,
    until INTEGER NOT NULL
);
CREATE INDEX signed_revocations_until ON signed_revocations (until);

-- When an account's password last changed (unix micros): access tokens issued before it are
-- refused.
ALTER TABLE accounts ADD COLUMN password_changed_at INTEGER;
