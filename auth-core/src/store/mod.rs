//! Storage: one trait, several backends.
//!
//! [`Store`] is synchronous and every call is fallible, so a networked database fits behind it as
//! well as an embedded one; async callers run it on a blocking thread. Its one hard promise is
//! [`Store::admit_session`]: admission is a single atomic step, so that no interleaving of
//! concurrent requests (threads, processes, or nodes sharing a database) ever lets a token hold
//! more live sessions than it allows.
//!
//! - [`SqliteStore`]: the default; one file, WAL, versioned migrations.
//! - [`MemoryStore`]: everything in a mutex-guarded map; for tests and embedding.
//! - [`PostgresStore`]: several nodes on one PostgreSQL database; pooled, versioned migrations,
//!   admission atomic across nodes.
//! - [`CachedStore`]: wraps any store with a bounded in-process token cache.

mod cached;
mod group_commit;
mod live_index;
mod memory;
mod postgres;
mod sqlite;
pub mod transfer;

pub use cached::CachedStore;
pub use memory::MemoryStore;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use crate::access_log::{AccessLogEntry, AccessLogRecord, AccessResult};
use crate::clock::Timestamp;
use crate::error::Result;
use crate::secret::SecretDigest;
use crate::session::{Admission, Session, SessionClaim, SessionId};
use crate::signed_token::keys::StoredSigningKey;
use crate::token::{NewToken, Token, TokenId, TokenPatch, TokenStatus};

/// Largest page a listing returns.
pub const MAX_PAGE: u32 = 1000;

/// Which tokens to list.
#[derive(Debug, Clone, Default)]
pub struct TokenFilter {
    pub status: Option<TokenStatus>,
    /// Exact user id.
    pub user_id: Option<String>,
    /// User ids starting with this.
    pub user_id_prefix: Option<String>,
    pub limit: u32,
    pub offset: u32,
}

/// Which sessions to list. Only live ones (lease not run out) are ever listed.
#[derive(Debug, Clone, Default)]
pub struct SessionFilter {
    pub token_id: Option<TokenId>,
    pub user_id: Option<String>,
    pub stream: Option<String>,
}

/// Which access log records to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct AccessLogFilter {
    pub token_id: Option<TokenId>,
    /// `allowed` or `denied`.
    pub result: Option<AccessResult>,
    /// A deny reason code.
    pub reason: Option<String>,
    pub user_id: Option<String>,
    pub stream: Option<String>,
    /// Inclusive.
    pub since: Option<Timestamp>,
    /// Exclusive.
    pub until: Option<Timestamp>,
    pub limit: u32,
    pub offset: u32,
}

impl AccessLogFilter {
    pub(crate) fn matches(&self, e: &crate::access_log::StoredEntry) -> bool {
        self.token_id.is_none_or(|t| e.token_id == Some(t))
            && self.result.is_none_or(|r| e.result == r.as_str())
            && self
                .reason
                .as_deref()
                .is_none_or(|r| e.reason.as_deref() == Some(r))
            && self
                .user_id
                .as_deref()
                .is_none_or(|u| e.user_id.as_deref() == Some(u))
            && self.stream.as_deref().is_none_or(|s| e.stream == s)
            && self.since.is_none_or(|t| e.at >= t)
            && self.until.is_none_or(|t| e.at < t)
    }
}

/// Decisions over a time window, and the sessions live now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AccessStats {
    pub since: Timestamp,
    pub until: Timestamp,
    pub allowed: u64,
    pub denied: u64,
    /// Denied decisions per reason code.
    pub denied_by_reason: BTreeMap<String, u64>,
    pub live_sessions: u64,
    /// Live sessions (holding a slot) per stream.
    pub live_sessions_by_stream: BTreeMap<String, u64>,
}

/// One page of a listing, with the number of matches across all pages.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
}

/// What [`Store::upsert_token`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Upsert {
    Created,
    Updated,
    Unchanged,
}

/// Persistent state behind decisions and management.
pub trait Store: Send + Sync + 'static {
    /// Fails with `Conflict` when a token with the same secret (digest) exists.
    fn create_token(&self, token: NewToken, now: Timestamp) -> Result<Token>;

    /// Creates the token, or brings the token with the same digest to these settings; touches
    /// nothing (not even `updated_at`) when they already match.
    fn upsert_token(&self, token: NewToken, now: Timestamp) -> Result<(Token, Upsert)>;

    fn token(&self, id: TokenId) -> Result<Option<Token>>;

    /// The hot-path lookup: one indexed read. Shared (`Arc`) so that a cache can hand out the
    /// same token to every request without copying it.
    fn token_by_digest(&self, digest: &SecretDigest) -> Result<Option<Arc<Token>>>;

    /// The token lookup, answered only if that needs no blocking (an in-memory cache hit);
    /// `None` means "call [`Store::token_by_digest`] on a thread that may block". Async servers
    /// call this on their reactor threads, so it must take nothing but short in-memory locks.
    fn try_token_without_blocking(&self, _digest: &SecretDigest) -> Option<Option<Arc<Token>>> {
        None
    }

    /// [`Store::admit_session`], answered only if that needs no blocking (a re-check of a live
    /// session known in memory); `None` means "call `admit_session` on a thread that may block".
    /// Same rule as [`Store::try_token_without_blocking`]: short in-memory locks only.
    fn try_admit_without_blocking(
        &self,
        _claim: &SessionClaim<'_>,
        _now: Timestamp,
        _lease_until: Timestamp,
    ) -> Option<Result<Admission>> {
        None
    }

    /// A number that changes whenever any token is created, changed or deleted, by any process
    /// or node sharing this store: what [`CachedStore`] polls to notice writes it did not make.
    fn token_generation(&self) -> Result<u64>;

    fn list_tokens(&self, filter: &TokenFilter) -> Result<Page<Token>>;

    /// Applies `patch` atomically (read, validate, write); `NotFound` if there is no such token.
    fn update_token(&self, id: TokenId, patch: TokenPatch, now: Timestamp) -> Result<Token>;

    /// Deletes the token and its sessions; false if there was no such token.
    fn delete_token(&self, id: TokenId) -> Result<bool>;

    /// Atomically: extends the claim's session if it is live, refuses it if it was terminated,
    /// otherwise admits it as new only while the token's other live sessions number fewer than
    /// `claim.max_sessions` (0 = unlimited). Every extended or admitted lease runs to
    /// `lease_until`.
    fn admit_session(
        &self,
        claim: &SessionClaim<'_>,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Admission>;

    /// Live sessions, oldest first.
    fn sessions(&self, filter: &SessionFilter, now: Timestamp) -> Result<Vec<Session>>;

    /// Marks a live session terminated: its slot is freed and its next check is refused until its
    /// lease runs out. False if there is no such live session.
    fn terminate_session(&self, id: SessionId, now: Timestamp) -> Result<bool>;

    /// Removes a session at once, freeing its slot with no after-effect: for a viewer known to be
    /// gone (a media server's "done" call, or an admission whose answer never reached it). False
    /// if there is no such session.
    fn end_session(&self, id: SessionId) -> Result<bool>;

    /// Deletes sessions whose lease ran out; returns how many.
    fn purge_expired_sessions(&self, now: Timestamp) -> Result<u64>;

    /// Writes a batch of access log entries in one transaction.
    fn append_access_logs(&self, entries: &[AccessLogEntry]) -> Result<()>;

    fn access_logs(&self, filter: &AccessLogFilter) -> Result<Page<AccessLogRecord>>;

    /// Counts of decisions logged in `[since, until)` and the sessions holding a slot at `now`.
    fn access_stats(
        &self,
        since: Timestamp,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<AccessStats>;

    /// Cheap round trip proving the store answers (health checks).
    fn ping(&self) -> Result<()>;

    // --- Signed tokens: the key ring (see `signed_token::keys` for why it lives here) ---

    /// Adds a signing key; `Conflict` when its id is taken, retired or not (an id is never
    /// reused, so a token signed under a retired key can never verify again).
    fn insert_signing_key(&self, key: &StoredSigningKey) -> Result<()>;

    /// Every signing key, retired ones included, oldest first (by creation, then id).
    fn signing_keys(&self) -> Result<Vec<StoredSigningKey>>;

    /// Marks the key retired at `now`; false if there is no such key. Retiring a retired key
    /// keeps its first retirement time.
    fn retire_signing_key(&self, kid: &str, now: Timestamp) -> Result<bool>;
}

fn signing_key_conflict(kid: &str) -> crate::Error {
    crate::Error::Conflict {
        field: "kid",
        message: format!("a signing key with id `{kid}` exists (ids are never reused)"),
    }
}

pub(crate) fn clamp_limit(limit: u32) -> u32 {
    match limit {
        0 => 50,
        n => n.min(MAX_PAGE),
    }
}

#[cfg(test)]
pub(crate) mod conformance;
