//! Logged-out access tokens: [`RevocationStore`] for [`PostgresStore`](super::PostgresStore).

use super::*;
use crate::account::RevocationStore;

impl RevocationStore for PostgresStore {
    fn revoke_access_token(&self, jti: &str, expires_at: Timestamp) -> Result<()> {
        ticketing::revoke_access_token(&mut *self.conn()?, jti, expires_at)
    }

    fn access_token_revoked(&self, jti: &str) -> Result<bool> {
        ticketing::access_token_revoked(&mut *self.conn()?, jti)
    }
}
