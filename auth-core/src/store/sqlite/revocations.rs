//! Logged-out access tokens: [`RevocationStore`] for [`SqliteStore`](super::SqliteStore).

use super::*;
use crate::account::RevocationStore;

impl RevocationStore for SqliteStore {
    fn revoke_access_token(&self, jti: &str, expires_at: Timestamp) -> Result<()> {
        let jti = jti.to_owned();
        self.writer
            .run(move |conn| ticketing::revoke_access_token(conn, &jti, expires_at))
    }

    fn access_token_revoked(&self, jti: &str) -> Result<bool> {
        ticketing::access_token_revoked(&*self.reader()?, jti)
    }
}
