//! Where sessions are kept: [`SessionStore`], whose one hard promise is atomic admission.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Admission, CloseReason, Session, SessionClaim, SessionId, SessionOwner};
use crate::clock::Timestamp;
use crate::error::Result;
use crate::store::Queued;
use crate::token::TokenId;

/// Which sessions to list. Only live ones (lease not run out) are ever listed.
#[derive(Debug, Clone, Default)]
pub struct SessionFilter {
    /// One session, by its id.
    pub id: Option<SessionId>,
    pub token_id: Option<TokenId>,
    pub user_id: Option<String>,
    pub stream: Option<String>,
    pub proto: Option<String>,
    /// The media server the session is on (see [`SessionClaim::source`]).
    pub source: Option<String>,
}

impl SessionFilter {
    /// Whether `session` matches (liveness aside).
    pub fn matches(&self, session: &Session) -> bool {
        self.id.is_none_or(|id| session.id == id)
            && self.token_id.is_none_or(|t| session.token_id == Some(t))
            && self.user_id.as_deref().is_none_or(|u| session.user_id == u)
            && self.stream.as_deref().is_none_or(|n| session.stream == n)
            && self.proto.as_deref().is_none_or(|p| session.proto == p)
            && self.source.as_deref().is_none_or(|s| session.source == s)
    }
}

/// What live sessions are counted by in [`SessionStore::session_counts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountBy {
    Stream,
    UserId,
}

/// Live sessions of one stream or one user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionCount {
    /// The stream or the user id.
    pub key: String,
    pub sessions: u64,
}

/// Which live sessions an operator cuts ([`SessionStore::cut_sessions`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cut {
    Session(SessionId),
    Token(TokenId),
    User(String),
    Stream(String),
    /// Every live session of one owner: e.g. the session group of a ticket's playback tokens.
    Owner(SessionOwner),
}

/// Sessions as leases on their owner's slots.
///
/// [`SessionStore::admit_session`] is a single atomic step, so that no interleaving of concurrent
/// requests (threads, processes, or nodes sharing a database) ever lets an owner hold more live
/// sessions than it allows.
pub trait SessionStore: Send + Sync {
    /// Atomically: extends the claim's session if it is live, refuses it if it was terminated,
    /// otherwise admits it as new only while the owner's other live sessions number fewer than
    /// `claim.max_sessions` (0 = unlimited). Every extended or admitted lease runs to
    /// `lease_until`.
    fn admit_session(
        &self,
        claim: &SessionClaim<'_>,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Admission>;

    /// [`SessionStore::admit_session`], answered only if that needs no blocking (a re-check of
    /// a live session known in memory); `None` means "call `admit_session` on a thread that may
    /// block". Async servers call this on their reactor threads: short in-memory locks only.
    fn try_admit_without_blocking(
        &self,
        _claim: &SessionClaim<'_>,
        _now: Timestamp,
        _lease_until: Timestamp,
    ) -> Option<Result<Admission>> {
        None
    }

    /// [`SessionStore::admit_session`] handed to the store's own writer without blocking the
    /// caller: the answer arrives once the admission has committed, as `admit_session` returns
    /// it. `None` when the store has no writer of its own: call `admit_session` on a thread that
    /// may block. Async servers call this on their reactor threads.
    fn queue_admission(
        &self,
        _claim: &SessionClaim<'_>,
        _now: Timestamp,
        _lease_until: Timestamp,
    ) -> Option<Queued<Admission>> {
        None
    }

    /// Live sessions, oldest first.
    fn sessions(&self, filter: &SessionFilter, now: Timestamp) -> Result<Vec<Session>>;

    /// Marks a live session terminated: its slot is freed and its next check is refused until its
    /// lease runs out. False if there is no such live session.
    /// `reason` is what its `session.closed` webhook says: [`CloseReason::Terminated`] or
    /// [`CloseReason::Kicked`].
    fn terminate_session(&self, id: SessionId, reason: CloseReason, now: Timestamp)
        -> Result<bool>;

    /// Removes a session at once, freeing its slot with no after-effect: for a viewer known to be
    /// gone (an admission whose answer never reached it). False if there is no such session.
    fn end_session(&self, id: SessionId, now: Timestamp) -> Result<bool>;

    /// Removes the session of `owner` with this session key, if its lease has not run out at
    /// `now`: a media server's "done" call, which names the session the way admission keyed it.
    /// A terminated session is ended too (the viewer is gone, nothing is left to refuse). False
    /// if there is no such session.
    fn end_session_by_key(&self, owner: SessionOwner, key: &str, now: Timestamp) -> Result<bool>;

    /// Deletes sessions whose lease ran out, and bans that ran out; returns how many sessions.
    fn purge_expired_sessions(&self, now: Timestamp) -> Result<u64>;

    /// Refuses new sessions of `owner` on `stream` until `until` ([`Admission::Banned`]); a
    /// longer ban already in place stays. Kept in the store, so every node sharing it sees it.
    fn ban(&self, owner: SessionOwner, stream: &str, until: Timestamp) -> Result<()>;

    /// Cuts live sessions: bans each one's owner on its stream until `ban_until` (when given,
    /// before anything is terminated, so that a reconnect in between is refused too), then
    /// terminates it ([`SessionStore::terminate_session`]; its webhook says `kicked` when banned,
    /// `terminated` otherwise). Returns the sessions cut, as they
    /// were, so that the caller can tell their media servers (`source`, `media_session_id`).
    /// A group cut skips sessions already terminated; a cut by id takes the session either way.
    fn cut_sessions(
        &self,
        cut: &Cut,
        ban_until: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<Vec<Session>> {
        let mut filter = SessionFilter::default();
        match cut {
            Cut::Session(id) => filter.id = Some(*id),
            Cut::Owner(_) => {}
            Cut::Token(id) => filter.token_id = Some(*id),
            Cut::User(user) => filter.user_id = Some(user.clone()),
            Cut::Stream(stream) => filter.stream = Some(stream.clone()),
        }
        let targets: Vec<Session> = self
            .sessions(&filter, now)?
            .into_iter()
            .filter(|s| match cut {
                Cut::Session(id) => s.id == *id,
                Cut::Owner(owner) => s.owner == *owner && s.terminated_at.is_none(),
                _ => s.terminated_at.is_none(),
            })
            .collect();
        let mut cut_sessions = Vec::with_capacity(targets.len());
        let ban_until = ban_until.filter(|until| *until > now);
        let reason = match ban_until {
            Some(_) => CloseReason::Kicked,
            None => CloseReason::Terminated,
        };
        for session in targets {
            if let Some(until) = ban_until {
                self.ban(session.owner, &session.stream, until)?;
            }
            if self.terminate_session(session.id, reason, now)? {
                cut_sessions.push(session);
            }
        }
        Ok(cut_sessions)
    }

    /// Live sessions holding a slot (not terminated), counted per stream or per user, most
    /// first (ties by key).
    fn session_counts(&self, by: CountBy, now: Timestamp) -> Result<Vec<SessionCount>> {
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for session in self.sessions(&SessionFilter::default(), now)? {
            if session.holds_slot(now) {
                let key = match by {
                    CountBy::Stream => session.stream,
                    CountBy::UserId => session.user_id,
                };
                *counts.entry(key).or_default() += 1;
            }
        }
        let mut counts: Vec<SessionCount> = counts
            .into_iter()
            .map(|(key, sessions)| SessionCount { key, sessions })
            .collect();
        counts.sort_by(|a, b| b.sessions.cmp(&a.sessions).then_with(|| a.key.cmp(&b.key)));
        Ok(counts)
    }
}
