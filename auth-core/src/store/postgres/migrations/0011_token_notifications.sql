-- 10: every node's token cache remembers unknown tokens too (a negative cache), so a token
-- created on one node must reach every other node's cache at once, not at its next poll of
-- `token_generation`. The trigger notifies `auth_tokens` with the schema at commit (once per
-- transaction: PostgreSQL folds identical notifications), for every token write; each node's
-- listener then clears its cache (see `node_sessions`). The generation counter stays the
-- backstop for a node that is not listening.
CREATE FUNCTION notify_tokens_changed() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
    AS $$
    BEGIN
        PERFORM pg_notify('auth_tokens', current_schema());
        RETURN NULL;
    END;
    $$;
CREATE TRIGGER tokens_notify
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tokens
    FOR EACH STATEMENT EXECUTE FUNCTION notify_tokens_changed();
