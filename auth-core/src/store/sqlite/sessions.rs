//! Sessions: [`SessionStore`] for [`SqliteStore`](super::SqliteStore).

use super::*;
use crate::session::{CloseReason, SessionStore};
use crate::store::Queued;
use crate::webhook::{Message, MessageKind, SessionFacts};

impl SessionStore for SqliteStore {
    fn admit_session(
        &self,
        claim: &SessionClaim<'_>,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Admission> {
        if let Some(answer) = self.try_admit_without_blocking(claim, now, lease_until) {
            return answer;
        }
        self.queue_admission(claim, now, lease_until).map_or_else(
            || Err(Error::storage("the writer takes no admissions")),
            Queued::wait,
        )
    }

    /// On the writer thread, committed with whatever else is queued (see `group_commit`); the
    /// answer, and the live index's update, come only after the commit.
    fn queue_admission(
        &self,
        claim: &SessionClaim<'_>,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Option<Queued<Admission>> {
        let claim = OwnedClaim::from(claim);
        let (owner, key) = (claim.owner.raw(), claim.key.clone());
        let pending = Arc::clone(&self.pending);
        let live = Arc::clone(&self.live);
        let until_us = lease_until.unix_micros();
        let on_commit = move |admission: &Admission| {
            let mut index = lock_live(&live);
            match *admission {
                Admission::Admitted { session_id } | Admission::Extended { session_id } => {
                    index.insert(owner, &key, session_id, until_us, false)
                }
                Admission::Evicted {
                    session_id,
                    evicted,
                } => {
                    index.terminate(evicted);
                    index.insert(owner, &key, session_id, until_us, false)
                }
                Admission::Terminated { session_id } => {
                    index.insert(owner, &key, session_id, until_us, true)
                }
                Admission::LimitReached { .. } | Admission::Banned { .. } => {}
            }
        };
        Some(self.writer.queue_then(move |conn| {
            pending.apply(conn, Some(owner))?;
            let (now_us, until_us) = (now.unix_micros(), lease_until.unix_micros());
            let existing: Option<(SessionId, i64, Option<i64>)> = conn
                .prepare_cached(
                    "SELECT id, expires_at, terminated_at FROM sessions WHERE owner = ?1 AND session_key = ?2",
                )?
                .query_row(params![owner, claim.key], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
                .optional()?;
            let admission = match existing {
                Some((session_id, expires_at, terminated)) if expires_at > now_us => {
                    if terminated.is_some() {
                        Admission::Terminated { session_id }
                    } else {
                        conn.prepare_cached(
                            "UPDATE sessions SET last_seen = ?1, expires_at = ?2 WHERE id = ?3",
                        )?
                        .execute(params![now_us, until_us, session_id])?;
                        Admission::Extended { session_id }
                    }
                }
                _ if !token_exists(conn, claim.owner.token_id())? => {
                    // Deleted since the caller looked it up: it holds no slot. Not the foreign key
                    // error the insert would raise: a server failing open would allow an error.
                    Admission::LimitReached { live: 0 }
                }
                _ => 'admit: {
                    if let Some(until) = banned_until(conn, owner, &claim.stream, now_us)? {
                        break 'admit Admission::Banned {
                            until: Timestamp::from_unix_micros(until),
                        };
                    }
                    let live: i64 = if claim.max_sessions == 0 {
                        0
                    } else {
                        conn.prepare_cached(
                            "SELECT COUNT(*) FROM sessions \
                             WHERE owner = ?1 AND expires_at > ?2 AND terminated_at IS NULL",
                        )?
                        .query_row(params![owner, now_us], |row| row.get(0))?
                    };
                    let full = claim.max_sessions > 0 && live >= i64::from(claim.max_sessions);
                    let evicted = if full && claim.evict_oldest && live == i64::from(claim.max_sessions) {
                        evict_oldest(conn, owner, now_us)?
                    } else {
                        None
                    };
                    if full && evicted.is_none() {
                        Admission::LimitReached {
                            live: u32::try_from(live).unwrap_or(u32::MAX),
                        }
                    } else {
                        // A dead lease under the same key is replaced by the new session.
                        let session_id: SessionId = conn
                            .prepare_cached(
                                "INSERT INTO sessions (owner, token_id, session_key, user_id, stream, ip, proto, \
                                 started_at, last_seen, expires_at, terminated_at, source, media_session_id) \
                                 VALUES (?1, ?9, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, NULL, ?10, ?11) \
                                 ON CONFLICT (owner, session_key) DO UPDATE SET \
                                 user_id = excluded.user_id, stream = excluded.stream, ip = excluded.ip, \
                                 proto = excluded.proto, started_at = excluded.started_at, \
                                 source = excluded.source, media_session_id = excluded.media_session_id, \
                                 last_seen = excluded.last_seen, expires_at = excluded.expires_at, \
                                 terminated_at = NULL \
                                 RETURNING id",
                            )?
                            .query_row(
                                params![
                                    owner,
                                    claim.key,
                                    claim.user_id,
                                    claim.stream,
                                    claim.ip,
                                    claim.proto,
                                    now_us,
                                    until_us,
                                    claim.owner.token_id(),
                                    claim.source,
                                    claim.media_session_id
                                ],
                                |row| row.get(0),
                            )?;
                        outbox::queue_if_wanted(conn, MessageKind::SessionOpened, || {
                            Message::session_opened(&claim.facts(session_id, now), now)
                        })?;
                        match evicted {
                            Some(evicted) => {
                                closed(conn, evicted, CloseReason::Evicted, now)?;
                                Admission::Evicted { session_id, evicted }
                            }
                            None => Admission::Admitted { session_id },
                        }
                    }
                }
            };
            Ok(admission)
        }, on_commit))
    }

    fn try_admit_without_blocking(
        &self,
        claim: &SessionClaim<'_>,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Option<Result<Admission>> {
        let (now_us, until_us) = (now.unix_micros(), lease_until.unix_micros());
        let admission = self
            .live()
            .recheck(claim.owner.raw(), claim.key, now_us, until_us)?;
        if let Admission::Extended { session_id } = admission {
            self.pending
                .add(claim.owner.raw(), session_id, now_us, until_us);
        }
        Some(Ok(admission))
    }

    fn sessions(&self, filter: &SessionFilter, now: Timestamp) -> Result<Vec<Session>> {
        let mut filters = Where::default();
        filters.integer("expires_at > ?", Some(now.unix_micros()));
        filters.integer("id = ?", filter.id);
        filters.integer("token_id = ?", filter.token_id);
        filters.text("user_id = ?", filter.user_id.as_deref());
        filters.text("stream = ?", filter.stream.as_deref());
        filters.text("proto = ?", filter.proto.as_deref());
        filters.text("source = ?", filter.source.as_deref());
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions {} ORDER BY id",
            filters.sql()
        );
        let conn = self.reader()?;
        let sessions = conn
            .prepare_cached(&sql)?
            .query_map(params_from_iter(filters.values.iter()), session_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(sessions)
    }

    fn terminate_session(
        &self,
        id: SessionId,
        reason: CloseReason,
        now: Timestamp,
    ) -> Result<bool> {
        let live = Arc::clone(&self.live);
        self.writer.run_then(
            move |conn| {
                let now_us = now.unix_micros();
                let newly = conn
                    .prepare_cached(
                        "UPDATE sessions SET terminated_at = ?2 \
                         WHERE id = ?1 AND expires_at > ?2 AND terminated_at IS NULL RETURNING id",
                    )?
                    .query_row(params![id, now_us], |row| row.get::<_, SessionId>(0))
                    .optional()?;
                if newly.is_some() {
                    closed(conn, id, reason, now)?;
                    return Ok(true);
                }
                // Terminated before: still true while its lease runs.
                Ok(conn
                    .prepare_cached(
                        "SELECT EXISTS (SELECT 1 FROM sessions WHERE id = ?1 AND expires_at > ?2)",
                    )?
                    .query_row(params![id, now_us], |row| row.get(0))?)
            },
            move |&terminated| {
                if terminated {
                    lock_live(&live).terminate(id);
                }
            },
        )
    }

    fn end_session(&self, id: SessionId, now: Timestamp) -> Result<bool> {
        let live = Arc::clone(&self.live);
        self.writer.run_then(
            move |conn| {
                let ended = delete_sessions(conn, "id = ?1", params![id])?;
                closed_all(conn, &ended, CloseReason::Done, now)?;
                Ok(!ended.is_empty())
            },
            move |_| lock_live(&live).remove(id),
        )
    }

    fn end_session_by_key(&self, owner: SessionOwner, key: &str, now: Timestamp) -> Result<bool> {
        let (pending, live) = (Arc::clone(&self.pending), Arc::clone(&self.live));
        let key = key.to_owned();
        self.writer
            .run_then(
                move |conn| {
                    // Leases as given, not as last written: a live session must not look expired.
                    pending.apply(conn, Some(owner.raw()))?;
                    let ended = delete_sessions(
                        conn,
                        "owner = ?1 AND session_key = ?2 AND expires_at > ?3",
                        params![owner.raw(), key, now.unix_micros()],
                    )?;
                    closed_all(conn, &ended, CloseReason::Done, now)?;
                    Ok(ended.first().map(|session| session.id))
                },
                move |ended| {
                    if let Some(id) = *ended {
                        lock_live(&live).remove(id);
                    }
                },
            )
            .map(|ended| ended.is_some())
    }

    fn ban(&self, owner: SessionOwner, stream: &str, until: Timestamp) -> Result<()> {
        let stream = stream.to_owned();
        self.writer.run(move |conn| {
            conn.prepare_cached(
                "INSERT INTO session_bans (owner, stream, banned_until) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (owner, stream) DO UPDATE SET \
                 banned_until = MAX(banned_until, excluded.banned_until)",
            )?
            .execute(params![owner.raw(), stream, until.unix_micros()])?;
            Ok(())
        })
    }

    fn purge_expired_sessions(&self, now: Timestamp) -> Result<u64> {
        let pending = Arc::clone(&self.pending);
        let live = Arc::clone(&self.live);
        self.writer.run_then(
            move |conn| {
                pending.apply(conn, None)?;
                let purged = if outbox::wanted(conn, MessageKind::SessionClosed)? {
                    let ended =
                        delete_sessions(conn, "expires_at <= ?1", params![now.unix_micros()])?;
                    closed_all(conn, &ended, CloseReason::Expired, now)?;
                    ended.len()
                } else {
                    conn.prepare_cached("DELETE FROM sessions WHERE expires_at <= ?1")?
                        .execute([now.unix_micros()])?
                };
                conn.prepare_cached("DELETE FROM session_bans WHERE banned_until <= ?1")?
                    .execute([now.unix_micros()])?;
                Ok(purged as u64)
            },
            move |_| lock_live(&live).purge(now.unix_micros()),
        )
    }
}

const SESSION_COLUMNS: &str = "id, owner, session_key, user_id, stream, ip, proto, started_at, \
     last_seen, expires_at, terminated_at, source, media_session_id";

fn session_from_row(row: &Row<'_>) -> rusqlite::Result<Session> {
    let owner = SessionOwner::from_raw(row.get(1)?);
    Ok(Session {
        id: row.get(0)?,
        token_id: owner.token_id(),
        owner,
        key: row.get(2)?,
        user_id: row.get(3)?,
        stream: row.get(4)?,
        ip: row.get(5)?,
        proto: row.get(6)?,
        started_at: Timestamp::from_unix_micros(row.get(7)?),
        last_seen: Timestamp::from_unix_micros(row.get(8)?),
        expires_at: Timestamp::from_unix_micros(row.get(9)?),
        terminated_at: row
            .get::<_, Option<i64>>(10)?
            .map(Timestamp::from_unix_micros),
        source: row.get(11)?,
        media_session_id: row.get(12)?,
    })
}

/// Deletes the sessions `condition` selects, returning them as they were.
fn delete_sessions(
    conn: &Connection,
    condition: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<Session>> {
    Ok(conn
        .prepare_cached(&format!(
            "DELETE FROM sessions WHERE {condition} RETURNING {SESSION_COLUMNS}"
        ))?
        .query_map(params, session_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Queues `session.closed` for session `id`, read as it is now.
pub(super) fn closed(
    conn: &Connection,
    id: SessionId,
    reason: CloseReason,
    now: Timestamp,
) -> Result<()> {
    outbox::queue_if_wanted(conn, MessageKind::SessionClosed, || {
        let session = conn
            .prepare_cached(&format!(
                "SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?1"
            ))?
            .query_row([id], session_from_row)?;
        Message::session_closed(&SessionFacts::from(&session), reason, now)
    })
}

/// Queues `session.closed` for each of `ended` that still held its slot.
fn closed_all(
    conn: &Connection,
    ended: &[Session],
    reason: CloseReason,
    now: Timestamp,
) -> Result<()> {
    let holding = ended.iter().any(|session| session.terminated_at.is_none());
    if holding && outbox::wanted(conn, MessageKind::SessionClosed)? {
        for message in Message::sessions_closed(ended, reason, now) {
            outbox::queue(conn, &message?)?;
        }
    }
    Ok(())
}

/// Terminates the oldest (by start) live session of `owner` that holds a slot; its id.
fn evict_oldest(conn: &Connection, owner: i64, now_us: i64) -> Result<Option<SessionId>> {
    Ok(conn
        .prepare_cached(
            "UPDATE sessions SET terminated_at = ?2 WHERE id = \
             (SELECT id FROM sessions WHERE owner = ?1 AND expires_at > ?2 \
              AND terminated_at IS NULL ORDER BY started_at, id LIMIT 1) RETURNING id",
        )?
        .query_row(params![owner, now_us], |row| row.get(0))
        .optional()?)
}

/// Until when `owner` is banned from `stream` at `now_us`, if it is.
fn banned_until(conn: &Connection, owner: i64, stream: &str, now_us: i64) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached(
            "SELECT banned_until FROM session_bans \
             WHERE owner = ?1 AND stream = ?2 AND banned_until > ?3",
        )?
        .query_row(params![owner, stream, now_us], |row| row.get(0))
        .optional()?)
}

/// Whether the stored token `id` exists; true for a signed token's owner (`None`), which has no row.
fn token_exists(conn: &Connection, id: Option<TokenId>) -> Result<bool> {
    let Some(id) = id else { return Ok(true) };
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM tokens WHERE id = ?1)")?
        .query_row([id], |row| row.get(0))?)
}
