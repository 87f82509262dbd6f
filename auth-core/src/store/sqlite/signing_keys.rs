//! The signed-token key ring: [`SigningKeyStore`] for [`SqliteStore`](super::SqliteStore).

use super::*;
use crate::signed_token::keys::{SigningKeyStore, StoredSigningKey};
use crate::signed_token::revocations::{Revocation, Revoked};

impl SigningKeyStore for SqliteStore {
    fn insert_signing_key(&self, key: &StoredSigningKey) -> Result<()> {
        crate::signed_token::check_kid(&key.kid)?;
        let key = key.clone();
        self.writer.run(move |conn| {
            let inserted = conn
                .prepare_cached(
                    "INSERT INTO signing_keys (kid, algorithm, public_key, sealed_secret, \
                     created_at, retired_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                     ON CONFLICT (kid) DO NOTHING",
                )?
                .execute(params![
                    key.kid,
                    key.algorithm.as_str(),
                    key.public_key,
                    key.sealed_secret,
                    key.created_at.unix_micros(),
                    key.retired_at.map(Timestamp::unix_micros),
                ])?;
            if inserted == 0 {
                return Err(crate::signed_token::keys::signing_key_conflict(&key.kid));
            }
            Ok(())
        })
    }

    fn signing_keys(&self) -> Result<Vec<StoredSigningKey>> {
        let conn = self.reader()?;
        let mut statement = conn.prepare_cached(
            "SELECT kid, algorithm, public_key, sealed_secret, created_at, retired_at \
             FROM signing_keys ORDER BY created_at, kid",
        )?;
        let rows = statement.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, Option<Vec<u8>>>(2)?,
                row.get::<_, Vec<u8>>(3)?,
                row.get::<_, i64>(4)?,
                row.get::<_, Option<i64>>(5)?,
            ))
        })?;
        rows.map(|row| {
            let (kid, algorithm, public_key, sealed_secret, created_at, retired_at) = row?;
            Ok(StoredSigningKey {
                kid,
                algorithm: Algorithm::parse(&algorithm).map_err(Error::storage)?,
                public_key,
                sealed_secret,
                created_at: Timestamp::from_unix_micros(created_at),
                retired_at: retired_at.map(Timestamp::from_unix_micros),
            })
        })
        .collect()
    }

    fn retire_signing_key(&self, kid: &str, now: Timestamp) -> Result<bool> {
        let kid = kid.to_owned();
        self.writer.run(move |conn| {
            let found = conn
                .prepare_cached(
                    "UPDATE signing_keys SET retired_at = COALESCE(retired_at, ?2) WHERE kid = ?1",
                )?
                .execute(params![kid, now.unix_micros()])?;
            Ok(found > 0)
        })
    }

    fn revoke_signed(&self, revocation: &Revocation) -> Result<()> {
        let (kind, value) = revocation.revoked.parts();
        let (value, until) = (value.to_owned(), revocation.until.unix_micros());
        self.writer.run(move |conn| {
            conn.prepare_cached(
                "INSERT INTO signed_revocations (kind, value, until) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![kind, value, until])?;
            Ok(())
        })
    }

    fn signed_revocation_mark(&self) -> Result<i64> {
        Ok(self.reader()?.query_row(
            "SELECT COALESCE(MAX(id), 0) FROM signed_revocations",
            [],
            |row| row.get(0),
        )?)
    }

    fn signed_revocations(&self, now: Timestamp) -> Result<Vec<Revocation>> {
        let conn = self.reader()?;
        let mut statement = conn.prepare_cached(
            "SELECT kind, value, until FROM signed_revocations WHERE until > ?1 ORDER BY id",
        )?;
        let rows = statement.query_map([now.unix_micros()], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
            ))
        })?;
        let mut revocations = Vec::new();
        for row in rows {
            let (kind, value, until) = row?;
            revocations.push(Revocation {
                revoked: Revoked::from_parts(&kind, value)?,
                until: Timestamp::from_unix_micros(until),
            });
        }
        Ok(revocations)
    }

    fn purge_signed_revocations(&self, now: Timestamp) -> Result<u64> {
        self.writer.run(move |conn| {
            let purged = conn
                .prepare_cached("DELETE FROM signed_revocations WHERE until <= ?1")?
                .execute([now.unix_micros()])?;
            Ok(purged as u64)
        })
    }
}
