//! Logged-out access tokens: [`RevocationStore`] for [`PostgresStore`](super::PostgresStore).

use super::*;
use crate::account::RevocationStore;

impl RevocationStore for PostgresStore {
    fn revoke_access_token(&self, jti: &str, expires_at: Timestamp) -> Result<()> {
        revoke_access_token(&mut *self.conn()?, jti, expires_at)
    }

    fn access_token_revoked(&self, jti: &str) -> Result<bool> {
        access_token_revoked(&mut *self.conn()?, jti)
    }
}

fn revoke_access_token(
    client: &mut impl GenericClient,
    jti: &str,
    expires_at: Timestamp,
) -> Result<()> {
    client.execute(
        "INSERT INTO revoked_access_tokens (jti, expires_at) VALUES ($1, $2) \
         ON CONFLICT (jti) DO UPDATE SET \
         expires_at = GREATEST(revoked_access_tokens.expires_at, excluded.expires_at)",
        &[&jti, &expires_at.unix_micros()],
    )?;
    Ok(())
}

fn access_token_revoked(client: &mut impl GenericClient, jti: &str) -> Result<bool> {
    Ok(client
        .query_opt(
            "SELECT 1 FROM revoked_access_tokens WHERE jti = $1",
            &[&jti],
        )?
        .is_some())
}
