//! Logged-out access tokens: [`RevocationStore`] for [`SqliteStore`](super::SqliteStore).

use super::ticketing::exists;
use super::*;
use crate::account::RevocationStore;

impl RevocationStore for SqliteStore {
    fn revoke_access_token(&self, jti: &str, expires_at: Timestamp) -> Result<()> {
        let jti = jti.to_owned();
        self.writer
            .run(move |conn| revoke_access_token(conn, &jti, expires_at))
    }

    fn access_token_revoked(&self, jti: &str) -> Result<bool> {
        access_token_revoked(&*self.reader()?, jti)
    }
}

fn revoke_access_token(conn: &Connection, jti: &str, expires_at: Timestamp) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO revoked_access_tokens (jti, expires_at) VALUES (?1, ?2) \
         ON CONFLICT (jti) DO UPDATE SET expires_at = MAX(expires_at, excluded.expires_at)",
    )?
    .execute(params![jti, expires_at.unix_micros()])?;
    Ok(())
}

fn access_token_revoked(conn: &Connection, jti: &str) -> Result<bool> {
    exists(
        conn,
        "SELECT 1 FROM revoked_access_tokens WHERE jti = ?1",
        &jti,
    )
}
