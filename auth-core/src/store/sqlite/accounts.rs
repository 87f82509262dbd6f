//! Accounts: [`AccountStore`] for [`SqliteStore`](super::SqliteStore).

use super::ticketing::{account, account_from_row, exists, is_unique_violation, ACCOUNT_COLUMNS};
use super::*;
use crate::account::store::taken;
use crate::account::{Account, AccountId, AccountPatch, AccountStore, NewAccount};

impl AccountStore for SqliteStore {
    fn create_account(&self, account: NewAccount, now: Timestamp) -> Result<Account> {
        self.writer
            .run(move |conn| create_account(conn, account, now))
    }

    fn account(&self, id: AccountId) -> Result<Option<Account>> {
        ticketing::account(&*self.reader()?, id)
    }

    fn account_by_username(&self, username: &str) -> Result<Option<Account>> {
        account_by_username(&*self.reader()?, username)
    }

    fn update_account(
        &self,
        id: AccountId,
        patch: AccountPatch,
        now: Timestamp,
    ) -> Result<Account> {
        self.writer
            .run(move |conn| update_account(conn, id, patch, now))
    }
}

fn account_by_username(conn: &Connection, username: &str) -> Result<Option<Account>> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE username = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([username], account_from_row)
        .optional()?)
}

fn create_account(conn: &Connection, new: NewAccount, now: Timestamp) -> Result<Account> {
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

fn update_account(
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
         password_hash = ?5, updated_at = ?6, password_changed_at = ?7 WHERE id = ?8",
    )?
    .execute(params![
        account.email,
        account.first_name,
        account.last_name,
        account.role.as_str(),
        account.password_hash,
        now.unix_micros(),
        account.password_changed_at.map(Timestamp::unix_micros),
        id,
    ])?;
    Ok(account)
}
