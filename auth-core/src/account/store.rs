//! Where accounts and logged-out access tokens are kept.

use super::{Account, AccountId, AccountPatch, NewAccount};
use crate::clock::Timestamp;
use crate::error::{Error, Result};

/// People who log in.
pub trait AccountStore: Send + Sync {
    /// Fails with `Conflict` (field `username` or `email`) when either is taken.
    fn create_account(&self, account: NewAccount, now: Timestamp) -> Result<Account>;

    fn account(&self, id: AccountId) -> Result<Option<Account>>;

    /// `username` as stored (lower-case, see [`super::validate_username`]).
    fn account_by_username(&self, username: &str) -> Result<Option<Account>>;

    /// `NotFound`, or `Conflict` (field `email`) when the new email is taken.
    fn update_account(&self, id: AccountId, patch: AccountPatch, now: Timestamp)
        -> Result<Account>;
}

/// Access tokens refused before they expire (logout), shared by every node.
pub trait RevocationStore: Send + Sync {
    /// Refuses the access token `jti` from now until `expires_at`.
    fn revoke_access_token(&self, jti: &str, expires_at: Timestamp) -> Result<()>;

    fn access_token_revoked(&self, jti: &str) -> Result<bool>;
}

/// The answer of every backend to a username or email that is taken.
pub(crate) fn taken(field: &'static str) -> Error {
    Error::Conflict {
        field,
        message: format!("this {field} is already taken"),
    }
}
