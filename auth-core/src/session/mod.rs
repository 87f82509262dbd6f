//! Viewer sessions: leases on a token's concurrent-session slots.
//!
//! A session is recognised across re-checks by its [`session_key`]: the media server's own
//! session id when it sends one, else the (ip, stream, proto) triple. Each check extends the lease
//! to `now + auth_duration + grace`; a viewer whose re-checks stop (player closed, media server
//! crashed, a lost `*_done` call) frees its slot when the lease runs out. The grace margin exists
//! because the media server re-checks *about* every `auth_duration`: a slightly late re-check of a
//! live session must extend it, not count as a new one.

pub mod store;

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;
pub use store::{CountBy, Cut, SessionCount, SessionFilter, SessionStore};

use serde::Serialize;

use crate::clock::Timestamp;
use crate::token::TokenId;

/// Store-assigned identifier of a session.
pub type SessionId = i64;

/// The key that identifies one viewer session within a token.
pub fn session_key(session_id: Option<&str>, ip: IpAddr, stream: &str, proto: &str) -> String {
    match session_id.filter(|id| !id.is_empty()) {
        Some(id) => format!("id:{id}"),
        None => {
            let mut key = String::with_capacity(8 + stream.len() + proto.len() + 40);
            // Writing to a String cannot fail.
            let _ = write!(key, "addr:{ip}|{proto}|{stream}");
            key
        }
    }
}

/// How long a session lives after each check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// How long the media server may cache an answer before it re-checks (`X-AuthDuration`).
    pub auth_duration: Duration,
    /// Extra time a lease lives past `auth_duration`, so a late re-check still finds it.
    pub grace: Duration,
    /// The most live sessions a stored token without a limit (`max_sessions` 0) may hold; 0:
    /// none. Every new session key is a session (through nginx `auth_request`, every distinct
    /// path), so without a ceiling one token could fill memory and the database.
    pub unlimited_ceiling: u32,
}

impl SessionPolicy {
    /// The grace margin used when none is configured: late re-checks of a few seconds are common,
    /// half a minute covers a media server under load without holding dead slots for long.
    pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);

    pub fn new(auth_duration: Duration) -> Self {
        SessionPolicy {
            auth_duration,
            grace: Self::DEFAULT_GRACE,
            unlimited_ceiling: 0,
        }
    }

    pub fn lease_until(&self, now: Timestamp) -> Timestamp {
        now.saturating_add(self.auth_duration)
            .saturating_add(self.grace)
    }

    pub fn auth_duration_secs(&self) -> u32 {
        u32::try_from(self.auth_duration.as_secs()).unwrap_or(u32::MAX)
    }
}

/// Whose slots a session takes: a stored token's, or a signed token's.
///
/// A signed token has no row (it is checked by signature alone), so it is named by a number
/// derived from its signature, always negative so that it never meets a token id (those count
/// up from 1). Stores key sessions (uniqueness, counting, their in-memory index) by this one
/// number, so admission stays one code path, with one limit rule, for both kinds.
/// Two signed tokens sharing an owner would need a collision of 63 bits of SHA-256, unless they
/// name the same session group (`grp`), whose tokens share one owner on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionOwner(i64);

impl SessionOwner {
    pub fn token(id: TokenId) -> Self {
        SessionOwner(id)
    }

    /// The owner for the signed token whose signature (tag) is `signature`.
    pub fn signed(signature: &[u8]) -> Self {
        Self::from_digest(ring::digest::digest(&ring::digest::SHA256, signature))
    }

    /// The owner shared by every signed token naming the session group `group`. The hashed input
    /// starts with a NUL, which a tag (base64url text) never holds, so a group never meets a
    /// token's own owner.
    pub fn group(group: &str) -> Self {
        let mut context = ring::digest::Context::new(&ring::digest::SHA256);
        context.update(b"\0grp\0");
        context.update(group.as_bytes());
        Self::from_digest(context.finish())
    }

    fn from_digest(digest: ring::digest::Digest) -> Self {
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest.as_ref()[..8]);
        SessionOwner(i64::from_be_bytes(first) | i64::MIN)
    }

    /// As stored (the `owner` column).
    pub fn from_raw(raw: i64) -> Self {
        SessionOwner(raw)
    }

    pub fn raw(self) -> i64 {
        self.0
    }

    /// The stored token, when the owner is one.
    pub fn token_id(self) -> Option<TokenId> {
        (self.0 > 0).then_some(self.0)
    }
}

/// What the decision asks the store to admit or extend, atomically.
#[derive(Debug, Clone, Copy)]
pub struct SessionClaim<'a> {
    pub owner: SessionOwner,
    pub key: &'a str,
    /// 0 means unlimited.
    pub max_sessions: u32,
    pub user_id: &'a str,
    pub stream: &'a str,
    pub ip: IpAddr,
    pub proto: &'a str,
    /// Which media server asked (`flussonic`, `nginx-rtmp`, `nginx-auth`, `mediamtx`, `srs`);
    /// empty when not known. Kept with the session so that a cut can be pushed to it.
    pub source: &'a str,
    /// The media server's own id of the session (Flussonic's `session_id`, nginx-rtmp's
    /// `clientid`, SRS's `client_id`, MediaMTX's `id`), what its control API names it by.
    pub media_session_id: Option<&'a str>,
    /// The token's `on_limit` is `evict_oldest`: when every slot is taken, the owner's oldest
    /// live session is terminated to make room ([`Admission::Evicted`]) instead of refusing.
    pub evict_oldest: bool,
}

/// The store's answer to a [`SessionClaim`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// A new session took a free slot.
    Admitted { session_id: SessionId },
    /// Every slot was taken: the owner's oldest live session (`evicted`, by start) was
    /// terminated, in the same atomic step, and the new session took its slot. Only when the
    /// owner held exactly `max_sessions` (one eviction makes room); above that (the limit was
    /// lowered) it is [`Admission::LimitReached`].
    Evicted {
        session_id: SessionId,
        evicted: SessionId,
    },
    /// The session was already live; its lease was extended.
    Extended { session_id: SessionId },
    /// Every slot is held by another live session.
    LimitReached { live: u32 },
    /// The session was ended by an operator; it stays refused until its lease runs out.
    Terminated { session_id: SessionId },
    /// An operator cut a session of this owner on this stream and banned it until `until`: no
    /// new session of the owner is admitted on the stream before then.
    Banned { until: Timestamp },
}

/// A session as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Session {
    pub id: SessionId,
    /// The stored token holding the session; `None` for a signed token's session.
    pub token_id: Option<TokenId>,
    #[serde(skip)]
    pub owner: SessionOwner,
    #[serde(skip)]
    pub key: String,
    pub user_id: String,
    pub stream: String,
    pub ip: String,
    pub proto: String,
    /// Which media server the session is on (see [`SessionClaim::source`]); empty if unknown.
    pub source: String,
    /// The media server's own id of the session, when it sent one.
    pub media_session_id: Option<String>,
    pub started_at: Timestamp,
    pub last_seen: Timestamp,
    pub expires_at: Timestamp,
    pub terminated_at: Option<Timestamp>,
}

impl Session {
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.expires_at > now
    }

    /// Whether this session holds one of its token's slots.
    pub fn holds_slot(&self, now: Timestamp) -> bool {
        self.is_live(now) && self.terminated_at.is_none()
    }
}

/// Why a session ended, as the `session.closed` webhook tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// The media server said the viewer left (or the answer admitting it never reached it).
    Done,
    /// Its lease ran out with no re-check: the viewer went away unannounced.
    Expired,
    /// An operator ended it.
    Terminated,
    /// An operator ended it and banned its owner from the stream for a while.
    Kicked,
    /// A newer session of its owner took its slot (`on_limit: evict_oldest`).
    Evicted,
}

impl CloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Done => "done",
            CloseReason::Expired => "expired",
            CloseReason::Terminated => "terminated",
            CloseReason::Kicked => "kicked",
            CloseReason::Evicted => "evicted",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_prefers_the_media_server_session_id() {
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(session_key(Some("abc"), ip, "s", "hls"), "id:abc");
        assert_eq!(session_key(None, ip, "s", "hls"), "addr:10.0.0.1|hls|s");
        assert_eq!(session_key(Some(""), ip, "s", "hls"), "addr:10.0.0.1|hls|s");
    }

    #[test]
    fn owners_of_tokens_and_signed_tokens_never_meet() {
        assert_eq!(SessionOwner::token(7).token_id(), Some(7));
        let signed = SessionOwner::signed(b"tag");
        assert!(signed.raw() < 0);
        assert_eq!(signed.token_id(), None);
        assert_eq!(signed, SessionOwner::signed(b"tag"));
        assert_ne!(signed, SessionOwner::signed(b"tah"));
        assert_eq!(SessionOwner::from_raw(signed.raw()), signed);
        let group = SessionOwner::group("ticket:9");
        assert!(group.raw() < 0);
        assert_eq!(group, SessionOwner::group("ticket:9"));
        assert_ne!(group, SessionOwner::group("ticket:90"));
        assert_ne!(group, SessionOwner::signed(b"ticket:9"));
    }

    #[test]
    fn lease_covers_duration_plus_grace() {
        let policy = SessionPolicy::new(Duration::from_secs(180));
        let now = Timestamp::from_unix_seconds(1000);
        assert_eq!(policy.lease_until(now).unix_seconds(), 1000 + 180 + 30);
    }
}
