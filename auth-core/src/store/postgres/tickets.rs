//! Tickets and door checks: [`TicketStore`] for [`PostgresStore`](super::PostgresStore).

use super::ticketing::{corrupt, unique_violation};
use super::*;
use crate::account::AccountId;
use crate::ticket::store::{live_ticket, CodeState};
use crate::ticket::{
    step_of, CodeAttempt, CodeLock, NewTicket, Ticket, TicketId, TicketStore, TicketUse, SALT_LEN,
    TICKET_USE_RETENTION,
};
use crate::webhook::{Message, MessageKind};

impl TicketStore for PostgresStore {
    fn create_ticket(&self, ticket: NewTicket, now: Timestamp) -> Result<Ticket> {
        create_ticket(&mut *self.conn()?, ticket, now)
    }

    fn ticket(&self, id: TicketId) -> Result<Option<Ticket>> {
        ticket(&mut *self.conn()?, id, false)
    }

    fn holder_tickets(&self, holder: AccountId) -> Result<Vec<Ticket>> {
        let sql = format!("SELECT {TICKET_COLUMNS} FROM tickets WHERE holder_id = $1 ORDER BY id");
        self.conn()?
            .query(sql.as_str(), &[&holder])?
            .iter()
            .map(ticket_from_row)
            .collect()
    }

    fn revoke_ticket(&self, id: TicketId, now: Timestamp) -> Result<bool> {
        revoke_ticket(&mut *self.conn()?, id, now)
    }

    fn use_ticket(
        &self,
        id: TicketId,
        step: i64,
        by: Option<AccountId>,
        single_entry: bool,
        now: Timestamp,
    ) -> Result<TicketUse> {
        use_ticket(&mut *self.conn()?, id, step, by, single_entry, now)
    }

    fn count_code_attempt(
        &self,
        id: TicketId,
        lock: CodeLock,
        now: Timestamp,
    ) -> Result<CodeAttempt> {
        count_code_attempt(&mut *self.conn()?, id, lock, now)
    }

    fn unlock_ticket(&self, id: TicketId) -> Result<bool> {
        let changed = self.conn()?.execute(
            "UPDATE tickets SET wrong_codes = 0, code_locked_until = NULL WHERE id = $1",
            &[&id],
        )?;
        Ok(changed > 0)
    }

    fn purge_ticket_state(&self, now: Timestamp) -> Result<u64> {
        purge(&mut *self.conn()?, now)
    }
}

fn count_code_attempt(
    client: &mut ::postgres::Client,
    id: TicketId,
    lock: CodeLock,
    now: Timestamp,
) -> Result<CodeAttempt> {
    let mut tx = read_committed(client)?;
    // Attempts on one ticket, from any node, queue here.
    let Some(row) = tx.query_opt(
        "SELECT wrong_codes, code_locked_until FROM tickets WHERE id = $1 FOR UPDATE",
        &[&id],
    )?
    else {
        return Ok(CodeAttempt::NotFound);
    };
    let state = CodeState {
        wrong: u32::try_from(row.try_get::<_, i32>(0)?).unwrap_or_default(),
        locked_until: row
            .try_get::<_, Option<i64>>(1)?
            .map(Timestamp::from_unix_micros),
    };
    let (attempt, next) = state.attempt(lock, now);
    if next != state {
        let wrong = i32::try_from(next.wrong).unwrap_or(i32::MAX);
        tx.execute(
            "UPDATE tickets SET wrong_codes = $2, code_locked_until = $3 WHERE id = $1",
            &[&id, &wrong, &next.locked_until.map(Timestamp::unix_micros)],
        )?;
    }
    tx.commit()?;
    Ok(attempt)
}

fn create_ticket(
    client: &mut impl GenericClient,
    new: NewTicket,
    now: Timestamp,
) -> Result<Ticket> {
    if client
        .query_opt("SELECT 1 FROM events WHERE id = $1", &[&new.event_id])?
        .is_none()
    {
        return Err(Error::NotFound { what: "event" });
    }
    if client
        .query_opt("SELECT 1 FROM accounts WHERE id = $1", &[&new.holder_id])?
        .is_none()
    {
        return Err(Error::NotFound { what: "account" });
    }
    let inserted = client.query_one(
        "INSERT INTO tickets (event_id, holder_id, salt, issued_at) VALUES ($1, $2, $3, $4) \
         RETURNING id",
        &[
            &new.event_id,
            &new.holder_id,
            &&new.salt[..],
            &now.unix_micros(),
        ],
    );
    match inserted {
        Ok(row) => Ok(new.into_ticket(row.try_get(0)?, now)),
        Err(err) if unique_violation(&err).is_some() => Err(live_ticket()),
        Err(err) => Err(err.into()),
    }
}

fn revoke_ticket(client: &mut impl GenericClient, id: TicketId, now: Timestamp) -> Result<bool> {
    let changed = client.execute(
        "UPDATE tickets SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1",
        &[&id, &now.unix_micros()],
    )?;
    Ok(changed > 0)
}

fn use_ticket(
    client: &mut ::postgres::Client,
    id: TicketId,
    step: i64,
    by: Option<AccountId>,
    single_entry: bool,
    now: Timestamp,
) -> Result<TicketUse> {
    let mut tx = read_committed(client)?;
    // Concurrent checks of one ticket, from any node, queue here.
    let Some(ticket) = ticket(&mut tx, id, true)? else {
        return Ok(TicketUse::NotFound);
    };
    if ticket.revoked_at.is_some() {
        return Ok(TicketUse::Revoked);
    }
    let recorded = tx.execute(
        "INSERT INTO ticket_uses (ticket_id, step, used_at) VALUES ($1, $2, $3) \
         ON CONFLICT DO NOTHING",
        &[&id, &step, &now.unix_micros()],
    )?;
    let outcome = if recorded == 0 {
        TicketUse::Reused
    } else {
        if !(single_entry && ticket.checked_in_at.is_some()) {
            tx.execute(
                "UPDATE tickets SET wrong_codes = 0, code_locked_until = NULL WHERE id = $1",
                &[&id],
            )?;
        }
        match ticket.checked_in_at {
            Some(at) if single_entry => TicketUse::AlreadyCheckedIn { at },
            Some(_) => TicketUse::Accepted { first_entry: false },
            None => {
                tx.execute(
                    "UPDATE tickets SET checked_in_at = $2, checked_in_by = $3 WHERE id = $1",
                    &[&id, &now.unix_micros(), &by],
                )?;
                TicketUse::Accepted { first_entry: true }
            }
        }
    };
    if let TicketUse::Accepted { first_entry } = outcome {
        outbox::queue_if_wanted(&mut tx, MessageKind::TicketCheckedIn, |_| {
            Message::ticket_checked_in(&ticket, first_entry, by, now)
        })?;
    }
    tx.commit()?;
    Ok(outcome)
}

const TICKET_COLUMNS: &str =
    "id, event_id, holder_id, salt, issued_at, revoked_at, checked_in_at, checked_in_by";

fn ticket_from_row(row: &Row) -> Result<Ticket> {
    let salt: Vec<u8> = row.try_get(3)?;
    let time = |i: usize| -> Result<Option<Timestamp>> {
        Ok(row
            .try_get::<_, Option<i64>>(i)?
            .map(Timestamp::from_unix_micros))
    };
    Ok(Ticket {
        id: row.try_get(0)?,
        event_id: row.try_get(1)?,
        holder_id: row.try_get(2)?,
        salt: <[u8; SALT_LEN]>::try_from(salt.as_slice()).map_err(|e| corrupt("salt", e))?,
        issued_at: Timestamp::from_unix_micros(row.try_get(4)?),
        revoked_at: time(5)?,
        checked_in_at: time(6)?,
        checked_in_by: row.try_get(7)?,
    })
}

fn ticket(client: &mut impl GenericClient, id: TicketId, lock: bool) -> Result<Option<Ticket>> {
    let sql = format!(
        "SELECT {TICKET_COLUMNS} FROM tickets WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    client
        .query_opt(&sql, &[&id])?
        .map(|row| ticket_from_row(&row))
        .transpose()
}

fn purge(client: &mut impl GenericClient, now: Timestamp) -> Result<u64> {
    let tokens = client.execute(
        "DELETE FROM revoked_access_tokens WHERE expires_at <= $1",
        &[&now.unix_micros()],
    )?;
    let oldest = step_of(now.saturating_sub(TICKET_USE_RETENTION));
    let uses = client.execute("DELETE FROM ticket_uses WHERE step < $1", &[&oldest])?;
    Ok(tokens + uses)
}
