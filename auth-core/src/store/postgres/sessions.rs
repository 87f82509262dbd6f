//! Sessions: [`SessionStore`] for [`PostgresStore`](super::PostgresStore).

use super::*;
use crate::session::SessionStore;

impl SessionStore for PostgresStore {
    fn admit_session(
        &self,
        claim: &SessionClaim<'_>,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Admission> {
        if let Some(answer) = self.try_admit_without_blocking(claim, now, lease_until) {
            return answer;
        }
        let (now_us, until_us) = (now.unix_micros(), lease_until.unix_micros());
        let owner = claim.owner.raw();
        let epoch = self.node.epoch();
        let mut conn = self.conn()?;
        let key = nul_free(claim.key);
        // A re-check of a live session this node does not remember (seen first at another node,
        // or forgotten) is read, remembered, and its extension written behind with the others:
        // a read commits nothing, so it neither waits for a WAL flush nor queues on the row
        // behind another node's batch of extensions (both showed as the top waits under load
        // with two nodes). Only for a session whose stored lease outlasts the write-behind by a
        // margin (`MIN_LEASE_TO_LEARN`); otherwise, and when memory is not trusted, below.
        if self.node.trusted() {
            let live = conn.query_typed_opt(
                "SELECT id FROM sessions WHERE owner = $1 AND session_key = $2 \
                 AND expires_at > $3 AND terminated_at IS NULL",
                &[
                    (&owner, Type::INT8),
                    (&key, Type::TEXT),
                    (&now_us.saturating_add(MIN_LEASE_TO_LEARN), Type::INT8),
                ],
            )?;
            if let Some(row) = live {
                let session_id: SessionId = row.try_get(0)?;
                if self
                    .node
                    .learn_live(owner, claim.key, session_id, now_us, until_us, epoch)
                {
                    return Ok(Admission::Extended { session_id });
                }
            }
        }
        // Otherwise one conditional statement extends the lease without the token lock, so
        // re-checks never queue behind each other or behind admissions. Safe without the lock
        // because it only ever touches a session that already holds a slot, and its row lock
        // orders it with a concurrent terminate, end or purge of that session (the WHERE clause
        // is re-checked after them).
        let extended = conn.query_typed_opt(
            "UPDATE sessions SET last_seen = $3, expires_at = $4 \
             WHERE owner = $1 AND session_key = $2 AND expires_at > $3 \
             AND terminated_at IS NULL RETURNING id",
            &[
                (&claim.owner.raw(), Type::INT8),
                (&key, Type::TEXT),
                (&now_us, Type::INT8),
                (&until_us, Type::INT8),
            ],
        )?;
        if let Some(row) = extended {
            let admission = Admission::Extended {
                session_id: row.try_get(0)?,
            };
            self.node
                .learn(owner, claim.key, admission, until_us, epoch);
            return Ok(admission);
        }
        let mut tx = read_committed(&mut conn)?;
        let admission = Self::admit_locked(&mut tx, claim, now_us, until_us, &self.node)?;
        tx.commit()?;
        if let Admission::Evicted { evicted, .. } = admission {
            // Other nodes hear of it through the trigger; this one forgets it whatever `learn`
            // below does.
            self.node.forget(evicted);
        }
        self.node
            .learn(owner, claim.key, admission, until_us, epoch);
        Ok(admission)
    }

    /// From this node's memory of live sessions (see `node_sessions`).
    fn try_admit_without_blocking(
        &self,
        claim: &SessionClaim<'_>,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Option<Result<Admission>> {
        self.node
            .recheck(
                claim.owner.raw(),
                claim.key,
                now.unix_micros(),
                lease_until.unix_micros(),
            )
            .map(Ok)
    }

    fn sessions(&self, filter: &SessionFilter, now: Timestamp) -> Result<Vec<Session>> {
        let mut conn = self.conn()?;
        // Leases as given, not as last written.
        self.node.write_pending(&mut *conn, None)?;
        let mut filters = Where::default();
        filters.integer("expires_at > $?", Some(now.unix_micros()));
        filters.integer("id = $?", filter.id);
        filters.integer("token_id = $?", filter.token_id);
        filters.text("user_id = $?", filter.user_id.as_deref());
        filters.text("stream = $?", filter.stream.as_deref());
        filters.text("proto = $?", filter.proto.as_deref());
        filters.text("source = $?", filter.source.as_deref());
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions {} ORDER BY id",
            filters.sql()
        );
        conn.query_typed(&sql, &filters.params())?
            .iter()
            .map(session_from_row)
            .collect()
    }

    fn terminate_session(
        &self,
        id: SessionId,
        reason: CloseReason,
        now: Timestamp,
    ) -> Result<bool> {
        let now_us = now.unix_micros();
        let mut conn = self.conn()?;
        let mut tx = read_committed(&mut conn)?;
        let newly = tx.execute_typed(
            "UPDATE sessions SET terminated_at = $2 \
             WHERE id = $1 AND expires_at > $2 AND terminated_at IS NULL",
            &[(&id, Type::INT8), (&now_us, Type::INT8)],
        )?;
        let live = if newly > 0 {
            closed(&mut tx, id, reason, now)?;
            true
        } else {
            // Terminated before: still true while its lease runs.
            tx.query_typed_one(
                "SELECT EXISTS (SELECT 1 FROM sessions WHERE id = $1 AND expires_at > $2)",
                &[(&id, Type::INT8), (&now_us, Type::INT8)],
            )?
            .try_get(0)?
        };
        tx.commit()?;
        // Other nodes hear of it through the trigger; this one needs no round trip.
        self.node.forget(id);
        Ok(live)
    }

    fn end_session(&self, id: SessionId, now: Timestamp) -> Result<bool> {
        let mut conn = self.conn()?;
        let mut tx = read_committed(&mut conn)?;
        let ended = delete_sessions(&mut tx, "id = $1", &[(&id, Type::INT8)])?;
        closed_all(&mut tx, &ended, CloseReason::Done, now)?;
        tx.commit()?;
        self.node.forget(id);
        Ok(!ended.is_empty())
    }

    fn end_session_by_key(&self, owner: SessionOwner, key: &str, now: Timestamp) -> Result<bool> {
        let mut conn = self.conn()?;
        // Leases as given, not as last written: a live session must not look expired.
        self.node.write_pending(&mut *conn, Some(owner.raw()))?;
        let now_us = now.unix_micros();
        let mut tx = read_committed(&mut conn)?;
        let ended = delete_sessions(
            &mut tx,
            "owner = $1 AND session_key = $2 AND expires_at > $3",
            &[
                (&owner.raw(), Type::INT8),
                (&nul_free(key).as_ref(), Type::TEXT),
                (&now_us, Type::INT8),
            ],
        )?;
        closed_all(&mut tx, &ended, CloseReason::Done, now)?;
        tx.commit()?;
        for session in &ended {
            self.node.forget(session.id);
        }
        Ok(!ended.is_empty())
    }

    fn ban(&self, owner: SessionOwner, stream: &str, until: Timestamp) -> Result<()> {
        self.conn()?.execute_typed(
            "INSERT INTO session_bans (owner, stream, banned_until) VALUES ($1, $2, $3) \
             ON CONFLICT (owner, stream) DO UPDATE SET \
             banned_until = GREATEST(session_bans.banned_until, excluded.banned_until)",
            &[
                (&owner.raw(), Type::INT8),
                (&nul_free(stream).as_ref(), Type::TEXT),
                (&until.unix_micros(), Type::INT8),
            ],
        )?;
        Ok(())
    }

    fn purge_expired_sessions(&self, now: Timestamp) -> Result<u64> {
        let now_us = now.unix_micros();
        let mut conn = self.conn()?;
        // Leases given from memory first, or a session live here could be purged as expired.
        self.node.write_pending(&mut *conn, None)?;
        let mut tx = read_committed(&mut conn)?;
        tx.batch_execute("SET LOCAL auth.quiet_purge = 'on'")?;
        let purged = if outbox::wanted(&mut tx, MessageKind::SessionClosed)? {
            let ended = delete_sessions(&mut tx, "expires_at <= $1", &[(&now_us, Type::INT8)])?;
            closed_all(&mut tx, &ended, CloseReason::Expired, now)?;
            ended.len() as u64
        } else {
            tx.execute_typed(
                "DELETE FROM sessions WHERE expires_at <= $1",
                &[(&now_us, Type::INT8)],
            )?
        };
        tx.execute_typed(
            "DELETE FROM session_bans WHERE banned_until <= $1",
            &[(&now_us, Type::INT8)],
        )?;
        tx.commit()?;
        self.node.purge(now_us);
        Ok(purged)
    }
}

/// Deletes the sessions `condition` selects, returning them as they were.
fn delete_sessions(
    client: &mut impl GenericClient,
    condition: &str,
    params: &[(&(dyn ToSql + Sync), Type)],
) -> Result<Vec<Session>> {
    client
        .query_typed(
            &format!("DELETE FROM sessions WHERE {condition} RETURNING {SESSION_COLUMNS}"),
            params,
        )?
        .iter()
        .map(session_from_row)
        .collect()
}

/// Queues `session.closed` for session `id`, read as it is now.
pub(super) fn closed(
    client: &mut impl GenericClient,
    id: SessionId,
    reason: CloseReason,
    now: Timestamp,
) -> Result<()> {
    outbox::queue_if_wanted(client, MessageKind::SessionClosed, |client| {
        let row = client.query_typed_one(
            &format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1"),
            &[(&id, Type::INT8)],
        )?;
        Message::session_closed(&SessionFacts::from(&session_from_row(&row)?), reason, now)
    })
}

/// Queues `session.closed` for each of `ended` that still held its slot.
fn closed_all(
    client: &mut impl GenericClient,
    ended: &[Session],
    reason: CloseReason,
    now: Timestamp,
) -> Result<()> {
    let holding = ended.iter().any(|session| session.terminated_at.is_none());
    if holding && outbox::wanted(client, MessageKind::SessionClosed)? {
        for message in Message::sessions_closed(ended, reason, now) {
            outbox::queue(client, &message?)?;
        }
    }
    Ok(())
}

const SESSION_COLUMNS: &str = "id, owner, session_key, user_id, stream, ip, proto, \
     started_at, last_seen, expires_at, terminated_at, source, media_session_id";

fn session_from_row(row: &Row) -> Result<Session> {
    let owner = SessionOwner::from_raw(row.try_get(1)?);
    Ok(Session {
        id: row.try_get(0)?,
        token_id: owner.token_id(),
        owner,
        key: row.try_get(2)?,
        user_id: row.try_get(3)?,
        stream: row.try_get(4)?,
        ip: row.try_get(5)?,
        proto: row.try_get(6)?,
        started_at: Timestamp::from_unix_micros(row.try_get(7)?),
        last_seen: Timestamp::from_unix_micros(row.try_get(8)?),
        expires_at: Timestamp::from_unix_micros(row.try_get(9)?),
        terminated_at: row
            .try_get::<_, Option<i64>>(10)?
            .map(Timestamp::from_unix_micros),
        source: row.try_get(11)?,
        media_session_id: row.try_get(12)?,
    })
}
