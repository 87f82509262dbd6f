//! Accounts: [`AccountStore`] for [`SqliteStore`](super::SqliteStore).

use super::*;
use crate::account::{Account, AccountId, AccountPatch, AccountStore, NewAccount};

impl AccountStore for SqliteStore {
    fn create_account(&self, account: NewAccount, now: Timestamp) -> Result<Account> {
        self.writer
            .run(move |conn| ticketing::create_account(conn, account, now))
    }

    fn account(&self, id: AccountId) -> Result<Option<Account>> {
        ticketing::account(&*self.reader()?, id)
    }

    fn account_by_username(&self, username: &str) -> Result<Option<Account>> {
        ticketing::account_by_username(&*self.reader()?, username)
    }

    fn update_account(
        &self,
        id: AccountId,
        patch: AccountPatch,
        now: Timestamp,
    ) -> Result<Account> {
        self.writer
            .run(move |conn| ticketing::update_account(conn, id, patch, now))
    }
}
