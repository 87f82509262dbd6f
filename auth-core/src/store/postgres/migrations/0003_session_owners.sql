-- 3 (signed tokens): a session belongs to an `owner`, the number admission counts and keys
-- by: a token's id, or (negative) a signed token's, which has no row. `token_id` keeps the
-- foreign key (and its cascade) for the sessions of stored tokens and is NULL for the others.
ALTER TABLE sessions ADD COLUMN owner BIGINT;
UPDATE sessions SET owner = token_id;
ALTER TABLE sessions ALTER COLUMN owner SET NOT NULL, ALTER COLUMN token_id DROP NOT NULL;
ALTER TABLE sessions DROP CONSTRAINT sessions_token_id_session_key_key;
ALTER TABLE sessions ADD CONSTRAINT sessions_owner_session_key UNIQUE (owner, session_key);
ALTER TABLE sessions ADD CONSTRAINT sessions_owner_is_token
    CHECK (CASE WHEN owner > 0 THEN token_id = owner ELSE token_id IS NULL END);
DROP INDEX sessions_token_expiry;
CREATE INDEX sessions_owner_expiry ON sessions (owner, expires_at);
CREATE INDEX sessions_token ON sessions (token_id);
