//! The signed-token key ring: [`SigningKeyStore`] for [`MemoryStore`](super::MemoryStore).

use super::*;
use crate::signed_token::keys::{SigningKeyStore, StoredSigningKey};
use crate::signed_token::revocations::Revocation;

impl SigningKeyStore for MemoryStore {
    fn insert_signing_key(&self, key: &StoredSigningKey) -> Result<()> {
        crate::signed_token::check_kid(&key.kid)?;
        let mut state = self.state()?;
        if state.signing_keys.iter().any(|k| k.kid == key.kid) {
            return Err(crate::signed_token::keys::signing_key_conflict(&key.kid));
        }
        state.signing_keys.push(key.clone());
        Ok(())
    }

    fn signing_keys(&self) -> Result<Vec<StoredSigningKey>> {
        let mut keys = self.state()?.signing_keys.clone();
        keys.sort_by(|a, b| (a.created_at, &a.kid).cmp(&(b.created_at, &b.kid)));
        Ok(keys)
    }

    fn retire_signing_key(&self, kid: &str, now: Timestamp) -> Result<bool> {
        let mut state = self.state()?;
        let key = state.signing_keys.iter_mut().find(|k| k.kid == kid);
        Ok(key.map(|k| k.retired_at.get_or_insert(now)).is_some())
    }

    fn revoke_signed(&self, revocation: &Revocation) -> Result<()> {
        let mut state = self.state()?;
        state.signed_revocations.push(revocation.clone());
        state.signed_revocation_count += 1;
        Ok(())
    }

    fn signed_revocation_mark(&self) -> Result<i64> {
        Ok(self.state()?.signed_revocation_count)
    }

    fn signed_revocations(&self, now: Timestamp) -> Result<Vec<Revocation>> {
        let state = self.state()?;
        let live = state.signed_revocations.iter().filter(|r| r.until > now);
        Ok(live.cloned().collect())
    }

    fn purge_signed_revocations(&self, now: Timestamp) -> Result<u64> {
        let mut state = self.state()?;
        let before = state.signed_revocations.len();
        state.signed_revocations.retain(|r| r.until > now);
        Ok((before - state.signed_revocations.len()) as u64)
    }
}
