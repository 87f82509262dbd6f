//! Where sessions are kept: [`SessionStore`], whose one hard promise is atomic admission.

use super::{Admission, Session, SessionClaim, SessionId, SessionOwner};
use crate::clock::Timestamp;
use crate::error::Result;
use crate::token::TokenId;

/// Which sessions to list. Only live ones (lease not run out) are ever listed.
#[derive(Debug, Clone, Default)]
pub struct SessionFilter {
    pub token_id: Option<TokenId>,
    pub user_id: Option<String>,
    pub stream: Option<String>,
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

    /// Live sessions, oldest first.
    fn sessions(&self, filter: &SessionFilter, now: Timestamp) -> Result<Vec<Session>>;

    /// Marks a live session terminated: its slot is freed and its next check is refused until its
    /// lease runs out. False if there is no such live session.
    fn terminate_session(&self, id: SessionId, now: Timestamp) -> Result<bool>;

    /// Removes a session at once, freeing its slot with no after-effect: for a viewer known to be
    /// gone (an admission whose answer never reached it). False if there is no such session.
    fn end_session(&self, id: SessionId) -> Result<bool>;

    /// Removes the session of `owner` with this session key, if its lease has not run out at
    /// `now`: a media server's "done" call, which names the session the way admission keyed it.
    /// A terminated session is ended too (the viewer is gone, nothing is left to refuse). False
    /// if there is no such session.
    fn end_session_by_key(&self, owner: SessionOwner, key: &str, now: Timestamp) -> Result<bool>;

    /// Deletes sessions whose lease ran out; returns how many.
    fn purge_expired_sessions(&self, now: Timestamp) -> Result<u64>;
}
