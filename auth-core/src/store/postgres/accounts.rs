//! Accounts: [`AccountStore`] for [`PostgresStore`](super::PostgresStore).

use super::*;
use crate::account::{Account, AccountId, AccountPatch, AccountStore, NewAccount};

impl AccountStore for PostgresStore {
    fn create_account(&self, account: NewAccount, now: Timestamp) -> Result<Account> {
        ticketing::create_account(&mut *self.conn()?, account, now)
    }

    fn account(&self, id: AccountId) -> Result<Option<Account>> {
        ticketing::account(&mut *self.conn()?, id, false)
    }

    fn account_by_username(&self, username: &str) -> Result<Option<Account>> {
        ticketing::account_by_username(&mut *self.conn()?, username)
    }

    fn update_account(
        &self,
        id: AccountId,
        patch: AccountPatch,
        now: Timestamp,
    ) -> Result<Account> {
        ticketing::update_account(&mut *self.conn()?, id, patch, now)
    }
}
