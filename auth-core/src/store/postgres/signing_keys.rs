//! The signed-token key ring: [`SigningKeyStore`] for [`PostgresStore`](super::PostgresStore).

use super::*;
use crate::signed_token::keys::{SigningKeyStore, StoredSigningKey};
use crate::signed_token::revocations::{Revocation, Revoked};

impl SigningKeyStore for PostgresStore {
    fn insert_signing_key(&self, key: &StoredSigningKey) -> Result<()> {
        crate::signed_token::check_kid(&key.kid)?;
        let created_at = key.created_at.unix_micros();
        let retired_at = key.retired_at.map(Timestamp::unix_micros);
        let inserted = self.conn()?.execute_typed(
            "INSERT INTO signing_keys (kid, algorithm, public_key, sealed_secret, created_at, \
             retired_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (kid) DO NOTHING",
            &[
                (&key.kid, Type::TEXT),
                (&key.algorithm.as_str(), Type::TEXT),
                (&key.public_key, Type::BYTEA),
                (&key.sealed_secret, Type::BYTEA),
                (&created_at, Type::INT8),
                (&retired_at, Type::INT8),
            ],
        )?;
        if inserted == 0 {
            return Err(crate::signed_token::keys::signing_key_conflict(&key.kid));
        }
        Ok(())
    }

    fn signing_keys(&self) -> Result<Vec<StoredSigningKey>> {
        self.conn()?
            .query_typed(
                "SELECT kid, algorithm, public_key, sealed_secret, created_at, retired_at \
                 FROM signing_keys ORDER BY created_at, kid",
                &[],
            )?
            .iter()
            .map(|row| {
                Ok(StoredSigningKey {
                    kid: row.try_get(0)?,
                    algorithm: Algorithm::parse(row.try_get(1)?).map_err(Error::storage)?,
                    public_key: row.try_get(2)?,
                    sealed_secret: row.try_get(3)?,
                    created_at: Timestamp::from_unix_micros(row.try_get(4)?),
                    retired_at: row
                        .try_get::<_, Option<i64>>(5)?
                        .map(Timestamp::from_unix_micros),
                })
            })
            .collect()
    }

    fn retire_signing_key(&self, kid: &str, now: Timestamp) -> Result<bool> {
        let now = now.unix_micros();
        let found = self.conn()?.execute_typed(
            "UPDATE signing_keys SET retired_at = COALESCE(retired_at, $2) WHERE kid = $1",
            &[(&nul_free(kid), Type::TEXT), (&now, Type::INT8)],
        )?;
        Ok(found > 0)
    }

    fn revoke_signed(&self, revocation: &Revocation) -> Result<()> {
        let (kind, value) = revocation.revoked.parts();
        self.conn()?.execute(
            "INSERT INTO signed_revocations (kind, value, until) VALUES ($1, $2, $3)",
            &[&kind, &nul_free(value), &revocation.until.unix_micros()],
        )?;
        Ok(())
    }

    fn signed_revocation_mark(&self) -> Result<i64> {
        let row = self.conn()?.query_one(
            "SELECT COALESCE(MAX(id), 0)::BIGINT FROM signed_revocations",
            &[],
        )?;
        Ok(row.try_get(0)?)
    }

    fn signed_revocations(&self, now: Timestamp) -> Result<Vec<Revocation>> {
        self.conn()?
            .query(
                "SELECT kind, value, until FROM signed_revocations WHERE until > $1 ORDER BY id",
                &[&now.unix_micros()],
            )?
            .iter()
            .map(|row| {
                Ok(Revocation {
                    revoked: Revoked::from_parts(row.try_get(0)?, row.try_get(1)?)?,
                    until: Timestamp::from_unix_micros(row.try_get(2)?),
                })
            })
            .collect()
    }

    fn purge_signed_revocations(&self, now: Timestamp) -> Result<u64> {
        Ok(self.conn()?.execute(
            "DELETE FROM signed_revocations WHERE until <= $1",
            &[&now.unix_micros()],
        )?)
    }
}
