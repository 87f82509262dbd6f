//! Signed tokens in the server: the key ring loaded from the store and kept current, and minting
//! of playback tokens (shared by `POST /api/playback-tokens` and `auth-server sign`).
//!
//! The ring is read from the store at start and reloaded every [`RELOAD_INTERVAL`], so a key
//! generated or retired by the CLI or by another node takes effect here within that time; no
//! request ever waits for it. Secrets stay sealed in the store and are opened only here, in
//! memory (see `auth_core::signed_token::keys`); nothing in this module logs them.

use std::sync::Arc;
use std::time::Duration;

use auth_core::signed_token::keys::KeyVault;
use auth_core::signed_token::{Claims, KeyRing, PlaybackSpec, SharedKeyRing};
use auth_core::{Store, Timestamp, TokenHasher};
use serde::Serialize;

use crate::config::{Config, MAX_PLAYBACK_TOKEN_TTL};

/// How often the ring is reloaded from the store.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(5);

pub struct Signing {
    vault: KeyVault,
    ring: Arc<SharedKeyRing>,
    leeway: Duration,
    default_ttl: Duration,
    player_url_template: String,
}

/// A minted playback token, as the API and the CLI show it.
#[derive(Debug, Clone, Serialize)]
pub struct Minted {
    pub token: String,
    pub kid: String,
    pub expires_at: Timestamp,
    /// The player URL with the token filled in (and the stream, when there is exactly one).
    pub player_url: String,
    pub claims: Claims,
}

impl Signing {
    /// Loads the ring from `store`. Blocking: call it at start-up or off the reactor.
    pub fn load(
        config: &Config,
        hasher: &TokenHasher,
        store: &dyn Store,
    ) -> auth_core::Result<Self> {
        let signing = Signing {
            vault: KeyVault::new(hasher)?,
            ring: Arc::default(),
            leeway: config.signed_token_leeway,
            default_ttl: config.playback_token_ttl,
            player_url_template: config.player_url_template.clone(),
        };
        signing.reload(store)?;
        Ok(signing)
    }

    /// Re-reads every key; on failure the current ring stays in use.
    pub fn reload(&self, store: &dyn Store) -> auth_core::Result<()> {
        let mut ring = self.vault.ring(&store.signing_keys()?)?;
        ring.leeway = self.leeway;
        self.ring.replace(ring);
        Ok(())
    }

    pub fn ring(&self) -> &Arc<SharedKeyRing> {
        &self.ring
    }

    pub fn current(&self) -> Arc<KeyRing> {
        self.ring.current()
    }

    /// The lifetime of a playback token whose request names none.
    pub fn default_ttl(&self) -> Duration {
        self.default_ttl
    }

    pub fn vault(&self) -> &KeyVault {
        &self.vault
    }

    /// Signs a playback token for `spec`, issued at `now`.
    pub fn mint(&self, spec: &PlaybackSpec, now: Timestamp) -> auth_core::Result<Minted> {
        let claims = spec.claims(
            now,
            self.default_ttl,
            Duration::from_secs(MAX_PLAYBACK_TOKEN_TTL),
        )?;
        let (token, kid) = self.current().mint(spec.kid.as_deref(), &claims)?;
        Ok(Minted {
            player_url: player_url(&self.player_url_template, &token, &claims.streams),
            expires_at: Timestamp::from_unix_seconds(claims.exp),
            token,
            kid,
            claims,
        })
    }
}

/// Fills `{token}` (signed tokens are URL-safe as they are) and, when the token unlocks exactly
/// one stream named without a glob, `{stream}`; otherwise `{stream}` stays for the player to fill.
pub fn player_url(template: &str, token: &str, streams: &[String]) -> String {
    let url = template.replace("{token}", token);
    match streams {
        [stream] if !stream.contains('*') => url.replace("{stream}", stream),
        _ => url,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn player_urls_fill_what_is_known() {
        let t = "/{stream}/index.m3u8?token={token}";
        assert_eq!(
            player_url(t, "v1.k.c.s", &["conf/main".into()]),
            "/conf/main/index.m3u8?token=v1.k.c.s"
        );
        assert_eq!(
            player_url(t, "v1.k.c.s", &["conf/*".into()]),
            "/{stream}/index.m3u8?token=v1.k.c.s"
        );
        assert_eq!(
            player_url(t, "v1.k.c.s", &[]),
            "/{stream}/index.m3u8?token=v1.k.c.s"
        );
    }
}
