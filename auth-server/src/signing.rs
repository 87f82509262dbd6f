//! Signed tokens in the server: the key ring loaded from the store and kept current, and minting
//! of playback tokens (shared by `POST /api/playback-tokens` and `auth-server sign`; `v1` or
//! JWT), of edge URL signatures (`POST /api/edge-urls` and `auth-server edge-url`), and of the
//! segment tokens or `secure_link` signatures nginx `auth_request` playlist answers carry
//! (`SEGMENT_TOKEN_TTL`, `SEGMENT_TOKEN_FORMAT`).
//!
//! The ring is read from the store at start and reloaded every [`RELOAD_INTERVAL`], so a key
//! generated or retired by the CLI or by another node takes effect here within that time; no
//! request ever waits for it. Secrets stay sealed in the store and are opened only here, in
//! memory (see `auth_core::signed_token::keys`); nothing in this module logs them.

use auth_core::signed_token::revocations::{Revocation, RevocationSet, Revoked};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use auth_core::edge_url::{secure_link, EdgeSecrets, EdgeUrl, EdgeUrlSpec};
use auth_core::signed_token::jwt::{JwtOptions, TokenFormat};
use auth_core::signed_token::keys::KeyVault;
use auth_core::signed_token::{Claims, KeyRing, PlaybackSpec, SharedKeyRing};
use auth_core::{SignedGrant, SigningKeyStore, Timestamp, TokenHasher};
use serde::Serialize;

use crate::config::{Config, SegmentFormat, MAX_PLAYBACK_TOKEN_TTL};

/// How often the ring is reloaded from the store.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(5);

pub struct Signing {
    vault: KeyVault,
    ring: Arc<SharedKeyRing>,
    /// Signed tokens refused before they expire, kept current by a background task.
    revocations: Arc<RevocationSet>,
    leeway: Duration,
    default_ttl: Duration,
    player_url_template: String,
    /// Zero: playlist answers carry no segment token.
    segment_ttl: Duration,
    /// Set once the lack of a key for segment tokens has been logged, so that it is logged once
    /// rather than per playlist request; cleared when a key is back.
    warned_no_key: AtomicBool,
    segment_format: SegmentFormat,
    jwt_issuer: Option<String>,
    jwt_audience: Option<String>,
    edge: EdgeSecrets,
}

/// Until when a revocation made at `now` must last: as long as any playback token it names can
/// still be accepted (the longest lifetime, plus the clock leeway).
pub fn revocation_until(leeway: Duration, now: Timestamp) -> Timestamp {
    now.saturating_add(Duration::from_secs(MAX_PLAYBACK_TOKEN_TTL) + leeway)
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
        store: &dyn SigningKeyStore,
    ) -> auth_core::Result<Self> {
        let signing = Signing {
            vault: KeyVault::new(hasher)?,
            ring: Arc::default(),
            revocations: Arc::new(RevocationSet::new()),
            leeway: config.signed_token_leeway,
            default_ttl: config.playback_token_ttl,
            player_url_template: config.player_url_template.clone(),
            segment_ttl: config.segment_token_ttl,
            warned_no_key: AtomicBool::new(false),
            segment_format: config.segment_token_format,
            jwt_issuer: config.jwt_issuer.clone(),
            jwt_audience: config.jwt_audience.clone(),
            edge: edge_secrets(config),
        };
        signing.reload(store)?;
        Ok(signing)
    }

    /// Re-reads every key; on failure the current ring stays in use.
    pub fn reload(&self, store: &dyn SigningKeyStore) -> auth_core::Result<()> {
        let mut ring = self.vault.ring(&store.signing_keys()?)?;
        ring.leeway = self.leeway;
        self.ring.replace(ring);
        Ok(())
    }

    pub fn ring(&self) -> &Arc<SharedKeyRing> {
        &self.ring
    }

    pub fn revocations(&self) -> &Arc<RevocationSet> {
        &self.revocations
    }

    /// Reloads the revocations if the store's mark moved (another node revoked something).
    pub fn refresh_revocations(
        &self,
        store: &dyn SigningKeyStore,
        now: Timestamp,
    ) -> auth_core::Result<()> {
        self.revocations.refresh(store, now)
    }

    /// Refuses every signed token `revoked` names from now on, on this node at once and on the
    /// others at their next refresh.
    pub fn revoke(
        &self,
        store: &dyn SigningKeyStore,
        revoked: Revoked,
        now: Timestamp,
    ) -> auth_core::Result<()> {
        let revocation = Revocation {
            revoked,
            until: revocation_until(self.leeway, now),
        };
        store.revoke_signed(&revocation)?;
        self.revocations.add(revocation);
        Ok(())
    }

    /// Until when a revocation made at `now` must last (see [`revocation_until`]).
    pub fn revocation_until(&self, now: Timestamp) -> Timestamp {
        revocation_until(self.leeway, now)
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
        let ring = self.current();
        let (token, kid) = match spec.format {
            TokenFormat::V1 => ring.mint(spec.kid.as_deref(), &claims)?,
            TokenFormat::Jwt => {
                let options = JwtOptions {
                    issuer: self.jwt_issuer.as_deref(),
                    audience: spec.aud.as_deref().or(self.jwt_audience.as_deref()),
                    profile: spec.profile,
                };
                ring.mint_jwt(spec.kid.as_deref(), &claims, &options)?
            }
        };
        Ok(Minted {
            player_url: player_url(&self.player_url_template, &token, &claims.streams),
            expires_at: Timestamp::from_unix_seconds(claims.exp),
            token,
            kid,
            claims,
        })
    }

    /// Signs an edge URL or token for `spec`, at `now`.
    pub fn edge_url(&self, spec: &EdgeUrlSpec, now: Timestamp) -> auth_core::Result<EdgeUrl> {
        sign_edge_url(&self.edge, spec, now)
    }

    /// Whether allowed playlist answers carry a segment token (`SEGMENT_TOKEN_TTL` > 0).
    pub fn segment_tokens(&self) -> bool {
        !self.segment_ttl.is_zero()
    }

    pub fn segment_format(&self) -> SegmentFormat {
        self.segment_format
    }

    /// With `SEGMENT_TOKEN_FORMAT=nginx_secure_link`: the `md5=..&expires=..` arguments an
    /// allowed playlist answer carries (`X-Segment-Link`) so that nginx's `secure_link` checks
    /// that playlist's segments itself, with no subrequest (see
    /// `auth_core::edge_url::secure_link::segment_args` for the signed string). For the one
    /// `stream` and client address `ip`, for `SEGMENT_TOKEN_TTL`, never past the signed token
    /// the playlist was allowed with (`parent`). `None` for a glob or a stream nginx could not
    /// name alike.
    pub fn segment_link(
        &self,
        stream: &str,
        ip: IpAddr,
        parent: Option<&SignedGrant>,
        now: Timestamp,
    ) -> Option<String> {
        let secret = self.edge.secure_link.as_ref()?;
        if stream.contains('*') {
            return None;
        }
        let ttl = i64::try_from(self.segment_ttl.as_secs()).unwrap_or(i64::MAX);
        let mut expires = now.unix_seconds().saturating_add(ttl);
        if let Some(parent) = parent {
            expires = expires.min(parent.expires_at);
            if expires < now.unix_seconds() {
                return None;
            }
        }
        secure_link::segment_args(secret, stream, ip, expires)
    }

    /// The token an allowed playlist answer carries so that its segments, which nginx-rtmp lists
    /// without the viewer's token, are decided by signature alone: for `user_id`, the one
    /// `stream` and the client address `ip` the playlist was allowed for, taking no session slot
    /// (the playlist's session is the viewer's one), for `SEGMENT_TOKEN_TTL`. It is marked
    /// (`seg`): taking no slot, it must never be what opens a session, so everything but a
    /// segment refuses it (a playlist too, so it cannot renew itself).
    ///
    /// `parent` is what the signed token the playlist was allowed with said of itself (the
    /// grant's, so the token is not verified twice): a segment token derived from a signed token
    /// never outlives it and keeps its event.
    ///
    /// `None` when there is nothing to sign with (logged once), or the stream is a glob (the
    /// token would unlock more than what was decided). Never logs the token.
    pub fn segment_token(
        &self,
        user_id: &str,
        stream: &str,
        ip: IpAddr,
        parent: Option<&SignedGrant>,
        now: Timestamp,
    ) -> Option<String> {
        if stream.contains('*') {
            return None;
        }
        let ring = self.current();
        if ring.default_kid().is_none() {
            if !self.warned_no_key.swap(true, Ordering::Relaxed) {
                log::warn!(
                    "SEGMENT_TOKEN_TTL is set but there is no active signing key: playlists are \
                     answered without X-Segment-Token (create one with `auth-server keys generate`)"
                );
            }
            return None;
        }
        if self.warned_no_key.load(Ordering::Relaxed) {
            self.warned_no_key.store(false, Ordering::Relaxed);
        }
        let mut claims = Claims {
            streams: vec![stream.to_owned()],
            ip: Some(ip),
            seg: true,
            ..Claims::new(user_id, now, self.segment_ttl)
        };
        if let Some(parent) = parent {
            claims.exp = claims.exp.min(parent.expires_at);
            claims.evt.clone_from(&parent.event);
            if claims.exp < claims.iat {
                return None;
            }
        }
        match ring.mint(None, &claims) {
            Ok((token, _kid)) => Some(token),
            Err(err) => {
                log::warn!("could not mint a segment token for user `{user_id}`: {err}");
                None
            }
        }
    }
}

/// The edge secrets of `config` (`NGINX_SECURE_LINK_SECRET`, `AKAMAI_EDGEAUTH_KEY`).
pub fn edge_secrets(config: &Config) -> EdgeSecrets {
    EdgeSecrets {
        secure_link: config.nginx_secure_link_secret.clone(),
        akamai: config.akamai_edgeauth_key.clone(),
    }
}

/// Signs an edge URL for `spec` at `now`; the longest lifetime is a playback token's.
pub fn sign_edge_url(
    secrets: &EdgeSecrets,
    spec: &EdgeUrlSpec,
    now: Timestamp,
) -> auth_core::Result<EdgeUrl> {
    spec.sign(secrets, now, Duration::from_secs(MAX_PLAYBACK_TOKEN_TTL))
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
