-- 5: every node remembers the sessions it has seen live and answers their re-checks from
-- memory (see `node_sessions`); a termination or removal made anywhere must reach them all at
-- once. The trigger notifies at commit; a purge of expired sessions stays quiet (every node
-- checks expiry itself), by setting `auth.quiet_purge` for its transaction.
CREATE FUNCTION notify_session_gone() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
    AS $$
    BEGIN
        IF current_setting('auth.quiet_purge', true) IS DISTINCT FROM 'on' THEN
            PERFORM pg_notify('auth_sessions', current_schema() || ':' || OLD.id);
        END IF;
        RETURN NULL;
    END;
    $$;
CREATE TRIGGER sessions_terminated AFTER UPDATE OF terminated_at ON sessions
    FOR EACH ROW WHEN (OLD.terminated_at IS NULL AND NEW.terminated_at IS NOT NULL)
    EXECUTE FUNCTION notify_session_gone();
CREATE TRIGGER sessions_removed AFTER DELETE ON sessions
    FOR EACH ROW EXECUTE FUNCTION notify_session_gone();
