//! [`super::PostgresStore`]'s event-ticket tables. Every read-check-write runs in one READ
//! COMMITTED transaction that first locks the row it hinges on (the event for roster
//! additions and changes, the ticket for door checks), so concurrent requests from any node
//! queue on that row and each sees what the previous one committed.

use ::postgres::error::SqlState;
use ::postgres::Row;

use crate::account::{Account, Role};
use crate::clock::Timestamp;
use crate::error::{Error, Result};

pub(super) fn corrupt(what: &str, detail: impl std::fmt::Display) -> Error {
    Error::storage(format!("corrupt {what} in the database: {detail}"))
}

pub(super) fn unique_violation(err: &::postgres::Error) -> Option<&str> {
    let db = err.as_db_error()?;
    (*db.code() == SqlState::UNIQUE_VIOLATION).then(|| db.constraint().unwrap_or_default())
}

pub(super) const ACCOUNT_COLUMNS: &str =
    "id, username, email, first_name, last_name, role, password_hash, created_at, updated_at, \
     password_changed_at";

pub(super) fn account_from_row(row: &Row) -> Result<Account> {
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
        password_changed_at: row
            .try_get::<_, Option<i64>>(9)?
            .map(Timestamp::from_unix_micros),
    })
}
