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
mod tickets_memory;
mod tickets_postgres;
mod tickets_sqlite;
pub mod transfer;

pub use cached::CachedStore;
pub use memory::MemoryStore;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use crate::access_log::{AccessLogEntry, AccessLogRecord, AccessResult};
use crate::account::{Account, AccountId, AccountPatch, EventStanding, NewAccount};
use crate::clock::Timestamp;
use crate::error::Result;
use crate::event::{Event, EventFilter, EventId, EventPatch, NewEvent, RosterEntry, RosterRole};
use crate::secret::SecretDigest;
use crate::session::{Admission, Session, SessionClaim, SessionId};
use crate::signed_token::keys::StoredSigningKey;
use crate::ticket::{NewTicket, Ticket, TicketId, TicketUse};
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

    // --- Event tickets: accounts, events, rosters, tickets, revoked access tokens ---
    // (Wrappers forward all of these with `forward_ticket_store!`.)

    /// Fails with `Conflict` (field `username` or `email`) when either is taken.
    fn create_account(&self, account: NewAccount, now: Timestamp) -> Result<Account>;

    fn account(&self, id: AccountId) -> Result<Option<Account>>;

    /// `username` as stored (lower-case, see [`crate::account::validate_username`]).
    fn account_by_username(&self, username: &str) -> Result<Option<Account>>;

    /// `NotFound`, or `Conflict` (field `email`) when the new email is taken.
    fn update_account(&self, id: AccountId, patch: AccountPatch, now: Timestamp)
        -> Result<Account>;

    fn create_event(&self, event: NewEvent, now: Timestamp) -> Result<Event>;

    fn event(&self, id: EventId) -> Result<Option<Event>>;

    /// Ordered by start, then id.
    fn list_events(&self, filter: &EventFilter) -> Result<Page<Event>>;

    /// Applies `patch` ([`EventPatch::apply`]) to the current event atomically: a concurrent
    /// registration cannot slip under a lowered capacity.
    fn update_event(&self, id: EventId, patch: &EventPatch, now: Timestamp) -> Result<Event>;

    /// Puts the account on the roster; false when it already was. `NotFound` for a missing event
    /// or account; `Conflict` (field `capacity`) when the users roster is full: the count and the
    /// insert are one atomic step.
    fn add_to_roster(
        &self,
        event: EventId,
        account: AccountId,
        roster: RosterRole,
        now: Timestamp,
    ) -> Result<bool>;

    /// In the order added.
    fn roster(
        &self,
        event: EventId,
        roster: RosterRole,
        limit: u32,
        offset: u32,
    ) -> Result<Page<RosterEntry>>;

    /// Which of the event's rosters the account is on.
    fn roster_standing(&self, event: EventId, account: AccountId) -> Result<EventStanding>;

    /// Fails with `Conflict` (field `ticket`) when the holder has a live (unrevoked) ticket for
    /// the event.
    fn create_ticket(&self, ticket: NewTicket, now: Timestamp) -> Result<Ticket>;

    fn ticket(&self, id: TicketId) -> Result<Option<Ticket>>;

    /// False if there is no such ticket; revoking again keeps the first time.
    fn revoke_ticket(&self, id: TicketId, now: Timestamp) -> Result<bool>;

    /// One door check, atomically: refuses a (ticket, step) accepted before (`Reused`), records
    /// the step, then refuses a single-entry ticket already checked in, else records the first
    /// check-in (`now`, `by`). Consumed steps persist, and are shared by every node.
    fn use_ticket(
        &self,
        id: TicketId,
        step: i64,
        by: Option<AccountId>,
        single_entry: bool,
        now: Timestamp,
    ) -> Result<TicketUse>;

    /// Refuses the access token `jti` from now until `expires_at` (logout).
    fn revoke_access_token(&self, jti: &str, expires_at: Timestamp) -> Result<()>;

    fn access_token_revoked(&self, jti: &str) -> Result<bool>;

    /// Forgets revocations of tokens expired at `now` and consumed door steps old enough that no
    /// code of theirs can be accepted again; returns how many rows went.
    fn purge_ticket_state(&self, now: Timestamp) -> Result<u64>;
}

fn signing_key_conflict(kid: &str) -> crate::Error {
    crate::Error::Conflict {
        field: "kid",
        message: format!("a signing key with id `{kid}` exists (ids are never reused)"),
    }
}

/// Consumed door steps kept at least this long; codes are accepted only within a step either
/// side of now, so an older step can never match again.
pub const TICKET_USE_RETENTION: std::time::Duration = std::time::Duration::from_secs(600);

/// Forwards every event-ticket method of [`Store`] to `self.$inner`: for wrappers (caches,
/// fault injectors) that leave those methods alone.
#[macro_export]
macro_rules! forward_ticket_store {
    ($inner:ident) => {
        fn create_account(
            &self,
            a: $crate::account::NewAccount,
            now: $crate::Timestamp,
        ) -> $crate::Result<$crate::account::Account> {
            self.$inner.create_account(a, now)
        }
        fn account(
            &self,
            id: $crate::account::AccountId,
        ) -> $crate::Result<Option<$crate::account::Account>> {
            self.$inner.account(id)
        }
        fn account_by_username(&self, u: &str) -> $crate::Result<Option<$crate::account::Account>> {
            self.$inner.account_by_username(u)
        }
        fn update_account(
            &self,
            id: $crate::account::AccountId,
            p: $crate::account::AccountPatch,
            now: $crate::Timestamp,
        ) -> $crate::Result<$crate::account::Account> {
            self.$inner.update_account(id, p, now)
        }
        fn create_event(
            &self,
            e: $crate::event::NewEvent,
            now: $crate::Timestamp,
        ) -> $crate::Result<$crate::event::Event> {
            self.$inner.create_event(e, now)
        }
        fn event(
            &self,
            id: $crate::event::EventId,
        ) -> $crate::Result<Option<$crate::event::Event>> {
            self.$inner.event(id)
        }
        fn list_events(
            &self,
            f: &$crate::event::EventFilter,
        ) -> $crate::Result<$crate::store::Page<$crate::event::Event>> {
            self.$inner.list_events(f)
        }
        fn update_event(
            &self,
            id: $crate::event::EventId,
            p: &$crate::event::EventPatch,
            now: $crate::Timestamp,
        ) -> $crate::Result<$crate::event::Event> {
            self.$inner.update_event(id, p, now)
        }
        fn add_to_roster(
            &self,
            e: $crate::event::EventId,
            a: $crate::account::AccountId,
            r: $crate::event::RosterRole,
            now: $crate::Timestamp,
        ) -> $crate::Result<bool> {
            self.$inner.add_to_roster(e, a, r, now)
        }
        fn roster(
            &self,
            e: $crate::event::EventId,
            r: $crate::event::RosterRole,
            limit: u32,
            offset: u32,
        ) -> $crate::Result<$crate::store::Page<$crate::event::RosterEntry>> {
            self.$inner.roster(e, r, limit, offset)
        }
        fn roster_standing(
            &self,
            e: $crate::event::EventId,
            a: $crate::account::AccountId,
        ) -> $crate::Result<$crate::account::EventStanding> {
            self.$inner.roster_standing(e, a)
        }
        fn create_ticket(
            &self,
            t: $crate::ticket::NewTicket,
            now: $crate::Timestamp,
        ) -> $crate::Result<$crate::ticket::Ticket> {
            self.$inner.create_ticket(t, now)
        }
        fn ticket(
            &self,
            id: $crate::ticket::TicketId,
        ) -> $crate::Result<Option<$crate::ticket::Ticket>> {
            self.$inner.ticket(id)
        }
        fn revoke_ticket(
            &self,
            id: $crate::ticket::TicketId,
            now: $crate::Timestamp,
        ) -> $crate::Result<bool> {
            self.$inner.revoke_ticket(id, now)
        }
        fn use_ticket(
            &self,
            id: $crate::ticket::TicketId,
            step: i64,
            by: Option<$crate::account::AccountId>,
            single: bool,
            now: $crate::Timestamp,
        ) -> $crate::Result<$crate::ticket::TicketUse> {
            self.$inner.use_ticket(id, step, by, single, now)
        }
        fn revoke_access_token(&self, jti: &str, exp: $crate::Timestamp) -> $crate::Result<()> {
            self.$inner.revoke_access_token(jti, exp)
        }
        fn access_token_revoked(&self, jti: &str) -> $crate::Result<bool> {
            self.$inner.access_token_revoked(jti)
        }
        fn purge_ticket_state(&self, now: $crate::Timestamp) -> $crate::Result<u64> {
            self.$inner.purge_ticket_state(now)
        }
    };
}

pub(crate) fn clamp_limit(limit: u32) -> u32 {
    match limit {
        0 => 50,
        n => n.min(MAX_PAGE),
    }
}

#[cfg(test)]
pub(crate) mod conformance;
