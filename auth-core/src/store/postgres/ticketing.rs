//! [`super::PostgresStore`]'s event-ticket tables. Every read-check-write runs in one READ
//! COMMITTED transaction that first locks the row it hinges on (the event for roster
//! additions and changes, the ticket for door checks), so concurrent requests from any node
//! queue on that row and each sees what the previous one committed.

use ::postgres::error::SqlState;
use ::postgres::{GenericClient, Row};

use super::read_committed;
use crate::account::store::taken;
use crate::account::{Account, AccountId, AccountPatch, EventStanding, NewAccount, Role};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::event::store::full;
use crate::event::{Event, EventFilter, EventId, EventPatch, NewEvent, RosterEntry, RosterRole};
use crate::page::{clamp_limit, Page};
use crate::ticket::store::live_ticket;
use crate::ticket::TICKET_USE_RETENTION;
use crate::ticket::{step_of, NewTicket, Ticket, TicketId, TicketUse, SALT_LEN};

fn corrupt(what: &str, detail: impl std::fmt::Display) -> Error {
    Error::storage(format!("corrupt {what} in the database: {detail}"))
}

fn unique_violation(err: &::postgres::Error) -> Option<&str> {
    let db = err.as_db_error()?;
    (*db.code() == SqlState::UNIQUE_VIOLATION).then(|| db.constraint().unwrap_or_default())
}

const ACCOUNT_COLUMNS: &str =
    "id, username, email, first_name, last_name, role, password_hash, created_at, updated_at";

fn account_from_row(row: &Row) -> Result<Account> {
    let role: String = row.try_get(5)?;
    Ok(Account {
        id: row.try_get(0)?,
        username: row.try_get(1)?,
        email: row.try_get(2)?,
        first_name: row.try_get(3)?,
        last_name: row.try_get(4)?,
        role: role.parse::<Role>().map_err(|e| corrupt("role", e))?,
        password_hash: row.try_get(6)?,
        created_at: Timestamp::from_unix_micros(row.try_get(7)?),
        updated_at: Timestamp::from_unix_micros(row.try_get(8)?),
    })
}

pub(super) fn account(
    client: &mut impl GenericClient,
    id: AccountId,
    lock: bool,
) -> Result<Option<Account>> {
    let sql = format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    client
        .query_opt(&sql, &[&id])?
        .map(|row| account_from_row(&row))
        .transpose()
}

pub(super) fn account_by_username(
    client: &mut impl GenericClient,
    username: &str,
) -> Result<Option<Account>> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE username = $1");
    client
        .query_opt(&sql, &[&username])?
        .map(|row| account_from_row(&row))
        .transpose()
}

fn account_conflict(constraint: &str) -> Error {
    taken(if constraint.contains("email") {
        "email"
    } else {
        "username"
    })
}

pub(super) fn create_account(
    client: &mut impl GenericClient,
    new: NewAccount,
    now: Timestamp,
) -> Result<Account> {
    let mut account = new.into_account(0, now);
    let inserted = client.query_one(
        "INSERT INTO accounts (username, email, first_name, last_name, role, password_hash, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id",
        &[
            &account.username,
            &account.email,
            &account.first_name,
            &account.last_name,
            &account.role.as_str(),
            &account.password_hash,
            &now.unix_micros(),
        ],
    );
    match inserted {
        Ok(row) => {
            account.id = row.try_get(0)?;
            Ok(account)
        }
        Err(err) => match unique_violation(&err) {
            Some(constraint) => Err(account_conflict(constraint)),
            None => Err(err.into()),
        },
    }
}

pub(super) fn update_account(
    client: &mut ::postgres::Client,
    id: AccountId,
    patch: AccountPatch,
    now: Timestamp,
) -> Result<Account> {
    let mut tx = read_committed(client)?;
    let mut account = account(&mut tx, id, true)?.ok_or(Error::NotFound { what: "account" })?;
    patch.apply(&mut account, now);
    let updated = tx.execute(
        "UPDATE accounts SET email = $1, first_name = $2, last_name = $3, role = $4, \
         password_hash = $5, updated_at = $6 WHERE id = $7",
        &[
            &account.email,
            &account.first_name,
            &account.last_name,
            &account.role.as_str(),
            &account.password_hash,
            &now.unix_micros(),
            &id,
        ],
    );
    if let Err(err) = updated {
        return Err(match unique_violation(&err) {
            Some(constraint) => account_conflict(constraint),
            None => err.into(),
        });
    }
    tx.commit()?;
    Ok(account)
}

const EVENT_COLUMNS: &str = "e.id, e.title, e.starts_at, e.ends_at, e.capacity, e.streams, \
     e.single_entry, e.created_at, e.updated_at, \
     (SELECT COUNT(*) FROM rosters r WHERE r.event_id = e.id AND r.roster = 'users')";

fn event_from_row(row: &Row) -> Result<Event> {
    let streams: String = row.try_get(5)?;
    Ok(Event {
        id: row.try_get(0)?,
        title: row.try_get(1)?,
        starts_at: Timestamp::from_unix_micros(row.try_get(2)?),
        ends_at: Timestamp::from_unix_micros(row.try_get(3)?),
        capacity: u32::try_from(row.try_get::<_, i64>(4)?).map_err(|e| corrupt("capacity", e))?,
        streams: serde_json::from_str(&streams).map_err(|e| corrupt("streams", e))?,
        single_entry: row.try_get(6)?,
        created_at: Timestamp::from_unix_micros(row.try_get(7)?),
        updated_at: Timestamp::from_unix_micros(row.try_get(8)?),
        registered: u64::try_from(row.try_get::<_, i64>(9)?).unwrap_or_default(),
    })
}

fn streams_json(streams: &[String]) -> Result<String> {
    serde_json::to_string(streams).map_err(|e| Error::storage(format!("encoding JSON: {e}")))
}

pub(super) fn create_event(
    client: &mut impl GenericClient,
    new: NewEvent,
    now: Timestamp,
) -> Result<Event> {
    let row = client.query_one(
        "INSERT INTO events (title, title_key, starts_at, ends_at, capacity, streams, \
         single_entry, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
         RETURNING id",
        &[
            &new.title,
            &new.title_key(),
            &new.starts_at.unix_micros(),
            &new.ends_at.unix_micros(),
            &i64::from(new.capacity),
            &streams_json(&new.streams)?,
            &new.single_entry,
            &now.unix_micros(),
        ],
    )?;
    Ok(new.into_event(row.try_get(0)?, now))
}

/// The event; with `lock`, its row stays locked until the caller's transaction ends.
///
/// The lock is its own statement: under READ COMMITTED a statement that waited for a lock still
/// evaluates its subqueries (the registered count) in the snapshot it started with, which would
/// miss the registration it waited for. The read after it takes a fresh snapshot.
pub(super) fn event(
    client: &mut impl GenericClient,
    id: EventId,
    lock: bool,
) -> Result<Option<Event>> {
    if lock
        && client
            .query_opt("SELECT id FROM events WHERE id = $1 FOR UPDATE", &[&id])?
            .is_none()
    {
        return Ok(None);
    }
    let sql = format!("SELECT {EVENT_COLUMNS} FROM events e WHERE e.id = $1");
    client
        .query_opt(&sql, &[&id])?
        .map(|row| event_from_row(&row))
        .transpose()
}

pub(super) fn list_events(
    client: &mut impl GenericClient,
    filter: &EventFilter,
) -> Result<Page<Event>> {
    let needle = filter.title.as_deref().unwrap_or_default().to_lowercase();
    let total: i64 = client
        .query_one(
            "SELECT COUNT(*) FROM events WHERE strpos(title_key, $1) > 0",
            &[&needle],
        )?
        .try_get(0)?;
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events e WHERE strpos(e.title_key, $1) > 0 \
         ORDER BY e.starts_at, e.id LIMIT $2 OFFSET $3"
    );
    let items = client
        .query(
            &sql,
            &[
                &needle,
                &i64::from(clamp_limit(filter.limit)),
                &i64::from(filter.offset),
            ],
        )?
        .iter()
        .map(event_from_row)
        .collect::<Result<Vec<_>>>()?;
    Ok(Page {
        items,
        total: u64::try_from(total).unwrap_or_default(),
    })
}

pub(super) fn update_event(
    client: &mut ::postgres::Client,
    id: EventId,
    patch: &EventPatch,
    now: Timestamp,
) -> Result<Event> {
    let mut tx = read_committed(client)?;
    let current = event(&mut tx, id, true)?.ok_or(Error::NotFound { what: "event" })?;
    let next = patch.apply(&current, now)?;
    tx.execute(
        "UPDATE events SET title = $1, title_key = $2, starts_at = $3, ends_at = $4, \
         capacity = $5, streams = $6, single_entry = $7, updated_at = $8 WHERE id = $9",
        &[
            &next.title,
            &next.title.to_lowercase(),
            &next.starts_at.unix_micros(),
            &next.ends_at.unix_micros(),
            &i64::from(next.capacity),
            &streams_json(&next.streams)?,
            &next.single_entry,
            &now.unix_micros(),
            &id,
        ],
    )?;
    tx.commit()?;
    Ok(next)
}

pub(super) fn add_to_roster(
    client: &mut ::postgres::Client,
    event_id: EventId,
    account_id: AccountId,
    roster: RosterRole,
    now: Timestamp,
) -> Result<bool> {
    let mut tx = read_committed(client)?;
    // The lock queues every addition to this event; the count below then sees them all.
    let event = event(&mut tx, event_id, true)?.ok_or(Error::NotFound { what: "event" })?;
    if tx
        .query_opt("SELECT 1 FROM accounts WHERE id = $1", &[&account_id])?
        .is_none()
    {
        return Err(Error::NotFound { what: "account" });
    }
    let already = tx
        .query_opt(
            "SELECT 1 FROM rosters WHERE event_id = $1 AND roster = $2 AND account_id = $3",
            &[&event_id, &roster.as_str(), &account_id],
        )?
        .is_some();
    if already {
        return Ok(false);
    }
    if roster == RosterRole::Users && event.registered >= u64::from(event.capacity) {
        return Err(full());
    }
    tx.execute(
        "INSERT INTO rosters (event_id, account_id, roster, added_at) VALUES ($1, $2, $3, $4)",
        &[&event_id, &account_id, &roster.as_str(), &now.unix_micros()],
    )?;
    tx.commit()?;
    Ok(true)
}

pub(super) fn roster(
    client: &mut impl GenericClient,
    event_id: EventId,
    roster: RosterRole,
    limit: u32,
    offset: u32,
) -> Result<Page<RosterEntry>> {
    if client
        .query_opt("SELECT 1 FROM events WHERE id = $1", &[&event_id])?
        .is_none()
    {
        return Err(Error::NotFound { what: "event" });
    }
    let total: i64 = client
        .query_one(
            "SELECT COUNT(*) FROM rosters WHERE event_id = $1 AND roster = $2",
            &[&event_id, &roster.as_str()],
        )?
        .try_get(0)?;
    let items = client
        .query(
            "SELECT a.id, a.username, a.first_name, a.last_name, r.added_at \
             FROM rosters r JOIN accounts a ON a.id = r.account_id \
             WHERE r.event_id = $1 AND r.roster = $2 ORDER BY r.id LIMIT $3 OFFSET $4",
            &[
                &event_id,
                &roster.as_str(),
                &i64::from(clamp_limit(limit)),
                &i64::from(offset),
            ],
        )?
        .iter()
        .map(|row| {
            Ok(RosterEntry {
                account_id: row.try_get(0)?,
                username: row.try_get(1)?,
                first_name: row.try_get(2)?,
                last_name: row.try_get(3)?,
                added_at: Timestamp::from_unix_micros(row.try_get(4)?),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Page {
        items,
        total: u64::try_from(total).unwrap_or_default(),
    })
}

pub(super) fn roster_standing(
    client: &mut impl GenericClient,
    event_id: EventId,
    account_id: AccountId,
) -> Result<EventStanding> {
    let mut standing = EventStanding::default();
    for row in client.query(
        "SELECT roster FROM rosters WHERE event_id = $1 AND account_id = $2",
        &[&event_id, &account_id],
    )? {
        match row.try_get::<_, String>(0)?.as_str() {
            "users" => standing.attendee = true,
            "agents" => standing.agent = true,
            "admins" => standing.admin = true,
            _ => {}
        }
    }
    Ok(standing)
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

pub(super) fn ticket(
    client: &mut impl GenericClient,
    id: TicketId,
    lock: bool,
) -> Result<Option<Ticket>> {
    let sql = format!(
        "SELECT {TICKET_COLUMNS} FROM tickets WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    client
        .query_opt(&sql, &[&id])?
        .map(|row| ticket_from_row(&row))
        .transpose()
}

pub(super) fn create_ticket(
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

pub(super) fn revoke_ticket(
    client: &mut impl GenericClient,
    id: TicketId,
    now: Timestamp,
) -> Result<bool> {
    let changed = client.execute(
        "UPDATE tickets SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1",
        &[&id, &now.unix_micros()],
    )?;
    Ok(changed > 0)
}

pub(super) fn use_ticket(
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
    tx.commit()?;
    Ok(outcome)
}

pub(super) fn revoke_access_token(
    client: &mut impl GenericClient,
    jti: &str,
    expires_at: Timestamp,
) -> Result<()> {
    client.execute(
        "INSERT INTO revoked_access_tokens (jti, expires_at) VALUES ($1, $2) \
         ON CONFLICT (jti) DO UPDATE SET \
         expires_at = GREATEST(revoked_access_tokens.expires_at, excluded.expires_at)",
        &[&jti, &expires_at.unix_micros()],
    )?;
    Ok(())
}

pub(super) fn access_token_revoked(client: &mut impl GenericClient, jti: &str) -> Result<bool> {
    Ok(client
        .query_opt(
            "SELECT 1 FROM revoked_access_tokens WHERE jti = $1",
            &[&jti],
        )?
        .is_some())
}

pub(super) fn purge(client: &mut impl GenericClient, now: Timestamp) -> Result<u64> {
    let tokens = client.execute(
        "DELETE FROM revoked_access_tokens WHERE expires_at <= $1",
        &[&now.unix_micros()],
    )?;
    let oldest = step_of(now.saturating_sub(TICKET_USE_RETENTION));
    let uses = client.execute("DELETE FROM ticket_uses WHERE step < $1", &[&oldest])?;
    Ok(tokens + uses)
}
