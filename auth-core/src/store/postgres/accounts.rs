//! Accounts: [`AccountStore`] for [`PostgresStore`](super::PostgresStore).

use super::ticketing::{account_from_row, unique_violation, ACCOUNT_COLUMNS};
use super::*;
use crate::account::store::taken;
use crate::account::{Account, AccountId, AccountPatch, AccountStore, NewAccount};

impl AccountStore for PostgresStore {
    fn create_account(&self, account: NewAccount, now: Timestamp) -> Result<Account> {
        create_account(&mut *self.conn()?, account, now)
    }

    fn account(&self, id: AccountId) -> Result<Option<Account>> {
        account(&mut *self.conn()?, id, false)
    }

    fn account_by_username(&self, username: &str) -> Result<Option<Account>> {
        account_by_username(&mut *self.conn()?, username)
    }

    fn update_account(
        &self,
        id: AccountId,
        patch: AccountPatch,
        now: Timestamp,
    ) -> Result<Account> {
        update_account(&mut *self.conn()?, id, patch, now)
    }
}

fn account_by_username(client: &mut impl GenericClient, username: &str) -> Result<Option<Account>> {
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

fn create_account(
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

fn update_account(
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
         password_hash = $5, updated_at = $6, password_changed_at = $7 WHERE id = $8",
        &[
            &account.email,
            &account.first_name,
            &account.last_name,
            &account.role.as_str(),
            &account.password_hash,
            &now.unix_micros(),
            &account.password_changed_at.map(Timestamp::unix_micros),
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

fn account(client: &mut impl GenericClient, id: AccountId, lock: bool) -> Result<Option<Account>> {
    let sql = format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    client
        .query_opt(&sql, &[&id])?
        .map(|row| account_from_row(&row))
        .transpose()
}
