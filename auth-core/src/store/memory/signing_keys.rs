//! The signed-token key ring: [`SigningKeyStore`] for [`MemoryStore`](super::MemoryStore).

use super::*;
use crate::signed_token::keys::{SigningKeyStore, StoredSigningKey};

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
}
