//! Logged-out access tokens: [`RevocationStore`] for [`MemoryStore`](super::MemoryStore).

use super::*;
use crate::account::RevocationStore;

impl RevocationStore for MemoryStore {
    fn revoke_access_token(&self, jti: &str, expires_at: Timestamp) -> Result<()> {
        self.tickets()?.revoke_access_token(jti, expires_at);
        Ok(())
    }

    fn access_token_revoked(&self, jti: &str) -> Result<bool> {
        Ok(self.tickets()?.access_token_revoked(jti))
    }
}
