//! Accounts: [`AccountStore`] for [`MemoryStore`](super::MemoryStore).

use super::*;
use crate::account::{Account, AccountId, AccountPatch, AccountStore, NewAccount};

impl AccountStore for MemoryStore {
    fn create_account(&self, account: NewAccount, now: Timestamp) -> Result<Account> {
        self.tickets()?.create_account(account, now)
    }

    fn account(&self, id: AccountId) -> Result<Option<Account>> {
        Ok(self.tickets()?.account(id))
    }

    fn account_by_username(&self, username: &str) -> Result<Option<Account>> {
        Ok(self.tickets()?.account_by_username(username))
    }

    fn update_account(
        &self,
        id: AccountId,
        patch: AccountPatch,
        now: Timestamp,
    ) -> Result<Account> {
        self.tickets()?.update_account(id, patch, now)
    }
}
