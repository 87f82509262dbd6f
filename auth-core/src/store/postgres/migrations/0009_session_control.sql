-- 9 (session control): where each session is, so that a cut can be pushed to it: `source`
-- names the media server (`flussonic`, `nginx-rtmp`, `nginx-auth`, `mediamtx`, `srs`; '' when
-- unknown) and `media_session_id` is that server's own id of the session. `session_bans`
-- refuses new sessions of an owner on a stream until `banned_until` (unix micros) after an
-- operator's cut; expired bans are purged with expired sessions.
ALTER TABLE sessions ADD COLUMN source TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN media_session_id TEXT;
CREATE TABLE session_bans (
    owner        BIGINT  NOT NULL,
    stream       TEXT    NOT NULL,
    banned_until BIGINT  NOT NULL,
    PRIMARY KEY (owner, stream)
);
