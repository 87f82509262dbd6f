-- 9 (session control): where each session is, so that a cut can be pushed to it: `source`
-- names the media server (`flussonic`, `nginx-rtmp`, `nginx-auth`, `mediamtx`, `srs`; '' when
-- unknown) and `media_session_id` is that server's own id of the session. `session_bans`
-- refuses new sessions of an owner on a stream until `banned_until` (unix micros) after an
-- operator's cut; expired bans are purged with expired sessions. `tokens.on_limit` says what a
-- new session finds when every slot is taken: `reject_new` (refused) or `evict_oldest` (admitted,
-- and the oldest live session cut).
ALTER TABLE tokens ADD COLUMN on_limit TEXT NOT NULL DEFAULT 'reject_new';
ALTER TABLE sessions ADD COLUMN source TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN media_session_id TEXT;
CREATE TABLE session_bans (
    owner        BIGINT  NOT NULL,
    stream       TEXT    NOT NULL,
    banned_until BIGINT  NOT NULL,
    PRIMARY KEY (owner, stream)
);
