//! Tickets and door checks: [`TicketStore`] for [`SqliteStore`](super::SqliteStore).

use super::ticketing::{corrupt, exists, is_unique_violation};
use super::*;
use crate::account::AccountId;
use crate::ticket::store::{live_ticket, CodeState};
use crate::ticket::{
    step_of, CodeAttempt, CodeLock, NewTicket, Ticket, TicketId, TicketStore, TicketUse, SALT_LEN,
    TICKET_USE_RETENTION,
};
use crate::webhook::{Message, MessageKind};

impl TicketStore for SqliteStore {
    fn create_ticket(&self, ticket: NewTicket, now: Timestamp) -> Result<Ticket> {
        self.writer
            .run(move |conn| create_ticket(conn, ticket, now))
    }

    fn ticket(&self, id: TicketId) -> Result<Option<Ticket>> {
        ticket(&*self.reader()?, id)
    }

    fn holder_tickets(&self, holder: AccountId) -> Result<Vec<Ticket>> {
        let conn = self.reader()?;
        let sql = format!("SELECT {TICKET_COLUMNS} FROM tickets WHERE holder_id = ?1 ORDER BY id");
        let mut statement = conn.prepare_cached(&sql)?;
        let rows = statement.query_map([holder], ticket_from_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn revoke_ticket(&self, id: TicketId, now: Timestamp) -> Result<bool> {
        self.writer.run(move |conn| revoke_ticket(conn, id, now))
    }

    fn use_ticket(
        &self,
        id: TicketId,
        step: i64,
        by: Option<AccountId>,
        single_entry: bool,
        now: Timestamp,
    ) -> Result<TicketUse> {
        self.writer.run(move |conn| {
            let used = use_ticket(conn, id, step, by, single_entry, now)?;
            if let TicketUse::Accepted { first_entry } = used {
                outbox::queue_if_wanted(conn, MessageKind::TicketCheckedIn, || {
                    let ticket = ticket(conn, id)?.ok_or(Error::NotFound { what: "ticket" })?;
                    Message::ticket_checked_in(&ticket, first_entry, by, now)
                })?;
            }
            Ok(used)
        })
    }

    fn count_code_attempt(
        &self,
        id: TicketId,
        lock: CodeLock,
        now: Timestamp,
    ) -> Result<CodeAttempt> {
        self.writer
            .run(move |conn| count_code_attempt(conn, id, lock, now))
    }

    fn unlock_ticket(&self, id: TicketId) -> Result<bool> {
        self.writer.run(move |conn| {
            let changed = conn
                .prepare_cached(
                    "UPDATE tickets SET wrong_codes = 0, code_locked_until = NULL WHERE id = ?1",
                )?
                .execute([id])?;
            Ok(changed > 0)
        })
    }

    fn purge_ticket_state(&self, now: Timestamp) -> Result<u64> {
        self.writer.run(move |conn| purge(conn, now))
    }
}

/// Runs on the single writer: the read and the write cannot interleave with another attempt.
fn count_code_attempt(
    conn: &Connection,
    id: TicketId,
    lock: CodeLock,
    now: Timestamp,
) -> Result<CodeAttempt> {
    let state = conn
        .prepare_cached("SELECT wrong_codes, code_locked_until FROM tickets WHERE id = ?1")?
        .query_row([id], |row| {
            Ok(CodeState {
                wrong: row.get(0)?,
                locked_until: row
                    .get::<_, Option<i64>>(1)?
                    .map(Timestamp::from_unix_micros),
            })
        })
        .optional()?;
    let Some(state) = state else {
        return Ok(CodeAttempt::NotFound);
    };
    let (attempt, next) = state.attempt(lock, now);
    if next != state {
        conn.prepare_cached(
            "UPDATE tickets SET wrong_codes = ?2, code_locked_until = ?3 WHERE id = ?1",
        )?
        .execute(params![
            id,
            next.wrong,
            next.locked_until.map(Timestamp::unix_micros)
        ])?;
    }
    Ok(attempt)
}

fn create_ticket(conn: &Connection, new: NewTicket, now: Timestamp) -> Result<Ticket> {
    if !exists(conn, "SELECT 1 FROM events WHERE id = ?1", &new.event_id)? {
        return Err(Error::NotFound { what: "event" });
    }
    if !exists(conn, "SELECT 1 FROM accounts WHERE id = ?1", &new.holder_id)? {
        return Err(Error::NotFound { what: "account" });
    }
    let inserted = conn
        .prepare_cached(
            "INSERT INTO tickets (event_id, holder_id, salt, issued_at) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![
            new.event_id,
            new.holder_id,
            new.salt.to_vec(),
            now.unix_micros()
        ]);
    match inserted {
        Ok(_) => Ok(new.into_ticket(conn.last_insert_rowid(), now)),
        Err(err) if is_unique_violation(&err) => Err(live_ticket()),
        Err(err) => Err(err.into()),
    }
}

fn revoke_ticket(conn: &Connection, id: TicketId, now: Timestamp) -> Result<bool> {
    let changed = conn
        .prepare_cached("UPDATE tickets SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1")?
        .execute(params![id, now.unix_micros()])?;
    Ok(changed > 0)
}

fn use_ticket(
    conn: &Connection,
    id: TicketId,
    step: i64,
    by: Option<AccountId>,
    single_entry: bool,
    now: Timestamp,
) -> Result<TicketUse> {
    let Some(ticket) = ticket(conn, id)? else {
        return Ok(TicketUse::NotFound);
    };
    if ticket.revoked_at.is_some() {
        return Ok(TicketUse::Revoked);
    }
    let recorded = conn
        .prepare_cached(
            "INSERT INTO ticket_uses (ticket_id, step, used_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT DO NOTHING",
        )?
        .execute(params![id, step, now.unix_micros()])?;
    if recorded == 0 {
        return Ok(TicketUse::Reused);
    }
    if !(single_entry && ticket.checked_in_at.is_some()) {
        conn.prepare_cached(
            "UPDATE tickets SET wrong_codes = 0, code_locked_until = NULL WHERE id = ?1",
        )?
        .execute([id])?;
    }
    match ticket.checked_in_at {
        Some(at) if single_entry => Ok(TicketUse::AlreadyCheckedIn { at }),
        Some(_) => Ok(TicketUse::Accepted { first_entry: false }),
        None => {
            conn.prepare_cached(
                "UPDATE tickets SET checked_in_at = ?2, checked_in_by = ?3 WHERE id = ?1",
            )?
            .execute(params![id, now.unix_micros(), by])?;
            Ok(TicketUse::Accepted { first_entry: true })
        }
    }
}

const TICKET_COLUMNS: &str =
    "id, event_id, holder_id, salt, issued_at, revoked_at, checked_in_at, checked_in_by";

fn ticket_from_row(row: &Row<'_>) -> rusqlite::Result<Ticket> {
    let salt: Vec<u8> = row.get(3)?;
    let time = |i: usize| -> rusqlite::Result<Option<Timestamp>> {
        Ok(row
            .get::<_, Option<i64>>(i)?
            .map(Timestamp::from_unix_micros))
    };
    Ok(Ticket {
        id: row.get(0)?,
        event_id: row.get(1)?,
        holder_id: row.get(2)?,
        salt: <[u8; SALT_LEN]>::try_from(salt.as_slice()).map_err(|e| corrupt("salt", e))?,
        issued_at: Timestamp::from_unix_micros(row.get(4)?),
        revoked_at: time(5)?,
        checked_in_at: time(6)?,
        checked_in_by: row.get(7)?,
    })
}

fn ticket(conn: &Connection, id: TicketId) -> Result<Option<Ticket>> {
    let sql = format!("SELECT {TICKET_COLUMNS} FROM tickets WHERE id = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([id], ticket_from_row)
        .optional()?)
}

fn purge(conn: &Connection, now: Timestamp) -> Result<u64> {
    let tokens = conn
        .prepare_cached("DELETE FROM revoked_access_tokens WHERE expires_at <= ?1")?
        .execute([now.unix_micros()])?;
    let oldest = step_of(now.saturating_sub(TICKET_USE_RETENTION));
    let uses = conn
        .prepare_cached("DELETE FROM ticket_uses WHERE step < ?1")?
        .execute([oldest])?;
    Ok((tokens + uses) as u64)
}
