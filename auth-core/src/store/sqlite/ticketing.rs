//! [`super::SqliteStore`]'s event-ticket tables. Writes run on the store's writer thread (one
//! transaction, strictly one job at a time), so every read-check-write below is atomic against
//! this process's other writes and, through SQLite's write lock, against other processes.

use rusqlite::{params, Connection, OptionalExtension, Row};

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

fn corrupt(what: &str, detail: impl std::fmt::Display) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(
        format!("corrupt {what} in the database: {detail}").into(),
    )
}

fn is_unique_violation(err: &rusqlite::Error) -> bool {
    matches!(err, rusqlite::Error::SqliteFailure(e, _)
        if e.code == rusqlite::ErrorCode::ConstraintViolation)
}

const ACCOUNT_COLUMNS: &str =
    "id, username, email, first_name, last_name, role, password_hash, created_at, updated_at";

fn account_from_row(row: &Row<'_>) -> rusqlite::Result<Account> {
    let role: String = row.get(5)?;
    Ok(Account {
        id: row.get(0)?,
        username: row.get(1)?,
        email: row.get(2)?,
        first_name: row.get(3)?,
        last_name: row.get(4)?,
        role: role.parse::<Role>().map_err(|e| corrupt("role", e))?,
        password_hash: row.get(6)?,
        created_at: Timestamp::from_unix_micros(row.get(7)?),
        updated_at: Timestamp::from_unix_micros(row.get(8)?),
    })
}

pub(super) fn account(conn: &Connection, id: AccountId) -> Result<Option<Account>> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([id], account_from_row)
        .optional()?)
}

pub(super) fn account_by_username(conn: &Connection, username: &str) -> Result<Option<Account>> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE username = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([username], account_from_row)
        .optional()?)
}

fn exists(conn: &Connection, sql: &str, value: &dyn rusqlite::ToSql) -> Result<bool> {
    Ok(conn
        .prepare_cached(sql)?
        .query_row([value], |_| Ok(()))
        .optional()?
        .is_some())
}

pub(super) fn create_account(
    conn: &Connection,
    new: NewAccount,
    now: Timestamp,
) -> Result<Account> {
    if exists(
        conn,
        "SELECT 1 FROM accounts WHERE username = ?1",
        &new.username,
    )? {
        return Err(taken("username"));
    }
    if exists(conn, "SELECT 1 FROM accounts WHERE email = ?1", &new.email)? {
        return Err(taken("email"));
    }
    let mut account = new.into_account(0, now);
    let inserted = conn
        .prepare_cached(
            "INSERT INTO accounts (username, email, first_name, last_name, role, password_hash, \
             created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
        )?
        .execute(params![
            account.username,
            account.email,
            account.first_name,
            account.last_name,
            account.role.as_str(),
            account.password_hash,
            now.unix_micros(),
        ]);
    match inserted {
        Ok(_) => {
            account.id = conn.last_insert_rowid();
            Ok(account)
        }
        // Another process won a race the checks above could not see.
        Err(err) if is_unique_violation(&err) => Err(taken(if err.to_string().contains("email") {
            "email"
        } else {
            "username"
        })),
        Err(err) => Err(err.into()),
    }
}

pub(super) fn update_account(
    conn: &Connection,
    id: AccountId,
    patch: AccountPatch,
    now: Timestamp,
) -> Result<Account> {
    let mut account = account(conn, id)?.ok_or(Error::NotFound { what: "account" })?;
    if let Some(email) = &patch.email {
        let other: Option<AccountId> = conn
            .prepare_cached("SELECT id FROM accounts WHERE email = ?1")?
            .query_row([email], |row| row.get(0))
            .optional()?;
        if other.is_some_and(|other| other != id) {
            return Err(taken("email"));
        }
    }
    patch.apply(&mut account, now);
    conn.prepare_cached(
        "UPDATE accounts SET email = ?1, first_name = ?2, last_name = ?3, role = ?4, \
         password_hash = ?5, updated_at = ?6 WHERE id = ?7",
    )?
    .execute(params![
        account.email,
        account.first_name,
        account.last_name,
        account.role.as_str(),
        account.password_hash,
        now.unix_micros(),
        id,
    ])?;
    Ok(account)
}

const EVENT_COLUMNS: &str = "e.id, e.title, e.starts_at, e.ends_at, e.capacity, e.streams, \
     e.single_entry, e.created_at, e.updated_at, \
     (SELECT COUNT(*) FROM rosters r WHERE r.event_id = e.id AND r.roster = 'users')";

fn event_from_row(row: &Row<'_>) -> rusqlite::Result<Event> {
    let streams: String = row.get(5)?;
    Ok(Event {
        id: row.get(0)?,
        title: row.get(1)?,
        starts_at: Timestamp::from_unix_micros(row.get(2)?),
        ends_at: Timestamp::from_unix_micros(row.get(3)?),
        capacity: row.get(4)?,
        streams: serde_json::from_str(&streams).map_err(|e| corrupt("streams", e))?,
        single_entry: row.get(6)?,
        created_at: Timestamp::from_unix_micros(row.get(7)?),
        updated_at: Timestamp::from_unix_micros(row.get(8)?),
        registered: u64::try_from(row.get::<_, i64>(9)?).unwrap_or_default(),
    })
}

fn streams_json(streams: &[String]) -> Result<String> {
    serde_json::to_string(streams).map_err(|e| Error::storage(format!("encoding JSON: {e}")))
}

pub(super) fn create_event(conn: &Connection, new: NewEvent, now: Timestamp) -> Result<Event> {
    let title_key = new.title_key();
    let streams = streams_json(&new.streams)?;
    conn.prepare_cached(
        "INSERT INTO events (title, title_key, starts_at, ends_at, capacity, streams, \
         single_entry, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
    )?
    .execute(params![
        new.title,
        title_key,
        new.starts_at.unix_micros(),
        new.ends_at.unix_micros(),
        new.capacity,
        streams,
        new.single_entry,
        now.unix_micros(),
    ])?;
    Ok(new.into_event(conn.last_insert_rowid(), now))
}

pub(super) fn event(conn: &Connection, id: EventId) -> Result<Option<Event>> {
    let sql = format!("SELECT {EVENT_COLUMNS} FROM events e WHERE e.id = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([id], event_from_row)
        .optional()?)
}

pub(super) fn list_events(conn: &Connection, filter: &EventFilter) -> Result<Page<Event>> {
    let needle = filter.title.as_deref().unwrap_or_default().to_lowercase();
    let total: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM events WHERE instr(title_key, ?1) > 0")?
        .query_row([&needle], |row| row.get(0))?;
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events e WHERE instr(e.title_key, ?1) > 0 \
         ORDER BY e.starts_at, e.id LIMIT ?2 OFFSET ?3"
    );
    let items = conn
        .prepare_cached(&sql)?
        .query_map(
            params![needle, clamp_limit(filter.limit), filter.offset],
            event_from_row,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Page {
        items,
        total: u64::try_from(total).unwrap_or_default(),
    })
}

pub(super) fn update_event(
    conn: &Connection,
    id: EventId,
    patch: &EventPatch,
    now: Timestamp,
) -> Result<Event> {
    let current = event(conn, id)?.ok_or(Error::NotFound { what: "event" })?;
    let next = patch.apply(&current, now)?;
    conn.prepare_cached(
        "UPDATE events SET title = ?1, title_key = ?2, starts_at = ?3, ends_at = ?4, \
         capacity = ?5, streams = ?6, single_entry = ?7, updated_at = ?8 WHERE id = ?9",
    )?
    .execute(params![
        next.title,
        next.title.to_lowercase(),
        next.starts_at.unix_micros(),
        next.ends_at.unix_micros(),
        next.capacity,
        streams_json(&next.streams)?,
        next.single_entry,
        now.unix_micros(),
        id,
    ])?;
    Ok(next)
}

pub(super) fn add_to_roster(
    conn: &Connection,
    event_id: EventId,
    account_id: AccountId,
    roster: RosterRole,
    now: Timestamp,
) -> Result<bool> {
    let event = event(conn, event_id)?.ok_or(Error::NotFound { what: "event" })?;
    if !exists(conn, "SELECT 1 FROM accounts WHERE id = ?1", &account_id)? {
        return Err(Error::NotFound { what: "account" });
    }
    let already = conn
        .prepare_cached(
            "SELECT 1 FROM rosters WHERE event_id = ?1 AND roster = ?2 AND account_id = ?3",
        )?
        .query_row(params![event_id, roster.as_str(), account_id], |_| Ok(()))
        .optional()?
        .is_some();
    if already {
        return Ok(false);
    }
    if roster == RosterRole::Users && event.registered >= u64::from(event.capacity) {
        return Err(full());
    }
    conn.prepare_cached(
        "INSERT INTO rosters (event_id, account_id, roster, added_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        event_id,
        account_id,
        roster.as_str(),
        now.unix_micros()
    ])?;
    Ok(true)
}

pub(super) fn roster(
    conn: &Connection,
    event_id: EventId,
    roster: RosterRole,
    limit: u32,
    offset: u32,
) -> Result<Page<RosterEntry>> {
    if !exists(conn, "SELECT 1 FROM events WHERE id = ?1", &event_id)? {
        return Err(Error::NotFound { what: "event" });
    }
    let total: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM rosters WHERE event_id = ?1 AND roster = ?2")?
        .query_row(params![event_id, roster.as_str()], |row| row.get(0))?;
    let items = conn
        .prepare_cached(
            "SELECT a.id, a.username, a.first_name, a.last_name, r.added_at \
             FROM rosters r JOIN accounts a ON a.id = r.account_id \
             WHERE r.event_id = ?1 AND r.roster = ?2 ORDER BY r.id LIMIT ?3 OFFSET ?4",
        )?
        .query_map(
            params![event_id, roster.as_str(), clamp_limit(limit), offset],
            |row| {
                Ok(RosterEntry {
                    account_id: row.get(0)?,
                    username: row.get(1)?,
                    first_name: row.get(2)?,
                    last_name: row.get(3)?,
                    added_at: Timestamp::from_unix_micros(row.get(4)?),
                })
            },
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Page {
        items,
        total: u64::try_from(total).unwrap_or_default(),
    })
}

pub(super) fn roster_standing(
    conn: &Connection,
    event_id: EventId,
    account_id: AccountId,
) -> Result<EventStanding> {
    let mut standing = EventStanding::default();
    let mut rows =
        conn.prepare_cached("SELECT roster FROM rosters WHERE event_id = ?1 AND account_id = ?2")?;
    let rosters = rows.query_map(params![event_id, account_id], |row| row.get::<_, String>(0))?;
    for roster in rosters {
        match roster?.as_str() {
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

pub(super) fn ticket(conn: &Connection, id: TicketId) -> Result<Option<Ticket>> {
    let sql = format!("SELECT {TICKET_COLUMNS} FROM tickets WHERE id = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([id], ticket_from_row)
        .optional()?)
}

pub(super) fn create_ticket(conn: &Connection, new: NewTicket, now: Timestamp) -> Result<Ticket> {
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

pub(super) fn revoke_ticket(conn: &Connection, id: TicketId, now: Timestamp) -> Result<bool> {
    let changed = conn
        .prepare_cached("UPDATE tickets SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1")?
        .execute(params![id, now.unix_micros()])?;
    Ok(changed > 0)
}

pub(super) fn use_ticket(
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

pub(super) fn revoke_access_token(
    conn: &Connection,
    jti: &str,
    expires_at: Timestamp,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO revoked_access_tokens (jti, expires_at) VALUES (?1, ?2) \
         ON CONFLICT (jti) DO UPDATE SET expires_at = MAX(expires_at, excluded.expires_at)",
    )?
    .execute(params![jti, expires_at.unix_micros()])?;
    Ok(())
}

pub(super) fn access_token_revoked(conn: &Connection, jti: &str) -> Result<bool> {
    exists(
        conn,
        "SELECT 1 FROM revoked_access_tokens WHERE jti = ?1",
        &jti,
    )
}

pub(super) fn purge(conn: &Connection, now: Timestamp) -> Result<u64> {
    let tokens = conn
        .prepare_cached("DELETE FROM revoked_access_tokens WHERE expires_at <= ?1")?
        .execute([now.unix_micros()])?;
    let oldest = step_of(now.saturating_sub(TICKET_USE_RETENTION));
    let uses = conn
        .prepare_cached("DELETE FROM ticket_uses WHERE step < ?1")?
        .execute([oldest])?;
    Ok((tokens + uses) as u64)
}
