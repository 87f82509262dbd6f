//! [`super::SqliteStore`]'s event-ticket tables. Writes run on the store's writer thread (one
//! transaction, strictly one job at a time), so every read-check-write below is atomic against
//! this process's other writes and, through SQLite's write lock, against other processes.

use rusqlite::{Connection, OptionalExtension, Row};

use crate::account::{Account, AccountId, Role};
use crate::clock::Timestamp;
use crate::error::Result;
use crate::event::{Event, EventId};

pub(super) fn corrupt(what: &str, detail: impl std::fmt::Display) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(
        format!("corrupt {what} in the database: {detail}").into(),
    )
}

pub(super) fn is_unique_violation(err: &rusqlite::Error) -> bool {
    matches!(err, rusqlite::Error::SqliteFailure(e, _)
        if e.code == rusqlite::ErrorCode::ConstraintViolation)
}

pub(super) const ACCOUNT_COLUMNS: &str =
    "id, username, email, first_name, last_name, role, password_hash, created_at, updated_at, \
     password_changed_at";

pub(super) fn account_from_row(row: &Row<'_>) -> rusqlite::Result<Account> {
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
        password_changed_at: row
            .get::<_, Option<i64>>(9)?
            .map(Timestamp::from_unix_micros),
    })
}

pub(super) fn account(conn: &Connection, id: AccountId) -> Result<Option<Account>> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([id], account_from_row)
        .optional()?)
}

pub(super) fn exists(conn: &Connection, sql: &str, value: &dyn rusqlite::ToSql) -> Result<bool> {
    Ok(conn
        .prepare_cached(sql)?
        .query_row([value], |_| Ok(()))
        .optional()?
        .is_some())
}

pub(super) const EVENT_COLUMNS: &str =
    "e.id, e.title, e.starts_at, e.ends_at, e.capacity, e.streams, \
     e.single_entry, e.created_at, e.updated_at, \
     (SELECT COUNT(*) FROM rosters r WHERE r.event_id = e.id AND r.roster = 'users')";

pub(super) fn event_from_row(row: &Row<'_>) -> rusqlite::Result<Event> {
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

pub(super) fn event(conn: &Connection, id: EventId) -> Result<Option<Event>> {
    let sql = format!("SELECT {EVENT_COLUMNS} FROM events e WHERE e.id = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([id], event_from_row)
        .optional()?)
}
