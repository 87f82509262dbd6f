-- 2: a counter bumped by every token write, so that every node's token cache notices writes
-- made by other nodes (see `Store::token_generation`).
-- 
-- A trigger rather than a bump in each of this file's token writes: it also counts writes
-- this code never sees (an operator's psql session, an import tool, a future code path), in
-- the same transaction as the write, exactly as SQLite's triggers do. Statement-level, so a
-- bulk write bumps the counter once instead of once per row (a statement that changes no row
-- bumps it too: harmless, a cache refill). `SET search_path FROM CURRENT` pins the function
-- to this schema, so writes through a session with another search_path still find the
-- counter. Row locks (`SELECT ... FOR UPDATE`, taken by every admission) fire no trigger.
CREATE TABLE token_generation (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    value BIGINT  NOT NULL
);
INSERT INTO token_generation (id, value) VALUES (1, 0);
CREATE FUNCTION bump_token_generation() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
    AS $$
    BEGIN
        UPDATE token_generation SET value = value + 1 WHERE id = 1;
        RETURN NULL;
    END;
    $$;
CREATE TRIGGER tokens_generation
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tokens
    FOR EACH STATEMENT EXECUTE FUNCTION bump_token_generation();
