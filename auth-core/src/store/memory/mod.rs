//! In-memory store: one mutex around plain maps. Atomic by construction; nothing survives the
//! process.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::access_log::{
    AccessLogEntry, AccessLogFilter, AccessLogRecord, AccessResult, AccessStats,
};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::page::{clamp_limit, Page};
use crate::secret::SecretDigest;
use crate::session::SessionFilter;
use crate::session::{Admission, Session, SessionClaim, SessionId};
use crate::signed_token::keys::StoredSigningKey;
use crate::store::Health;
use crate::token::{NewToken, Token, TokenId, TokenPatch};
use crate::token::{TokenFilter, Upsert};

mod access_log;
#[cfg(feature = "tickets")]
mod accounts;
#[cfg(feature = "tickets")]
mod events;
#[cfg(feature = "tickets")]
mod revocations;
mod sessions;
mod signing_keys;
#[cfg(feature = "tickets")]
mod ticketing;
#[cfg(feature = "tickets")]
mod tickets;
mod tokens;
mod webhooks;

#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    #[cfg(feature = "tickets")]
    tickets: Mutex<ticketing::TicketState>,
    outbox: Mutex<webhooks::Outbox>,
}

#[derive(Default)]
struct State {
    next_token_id: TokenId,
    tokens: BTreeMap<TokenId, Token>,
    token_generation: u64,
    by_digest: HashMap<SecretDigest, TokenId>,
    next_session_id: SessionId,
    sessions: BTreeMap<SessionId, Session>,
    /// Keyed by [`crate::session::SessionOwner::raw`].
    by_key: HashMap<(i64, String), SessionId>,
    by_owner: HashMap<i64, HashSet<SessionId>>,
    /// (owner, stream) → banned until.
    bans: HashMap<(i64, String), Timestamp>,
    logs: Vec<AccessLogRecord>,
    signing_keys: Vec<StoredSigningKey>,
    signed_revocations: Vec<crate::signed_token::revocations::Revocation>,
    /// How many revocations were ever stored: the mark, which a purge never moves back (a
    /// mark seen before must never come again with other revocations behind it).
    signed_revocation_count: i64,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> Result<MutexGuard<'_, State>> {
        // A panic while holding the lock leaves maps that may disagree with each other.
        self.state
            .lock()
            .map_err(|_| Error::storage("memory store lock poisoned"))
    }

    #[cfg(feature = "tickets")]
    fn tickets(&self) -> Result<MutexGuard<'_, ticketing::TicketState>> {
        self.tickets
            .lock()
            .map_err(|_| Error::storage("memory store lock poisoned"))
    }
}

impl State {
    fn insert_token(&mut self, new: NewToken, now: Timestamp) -> Token {
        self.token_generation += 1;
        self.next_token_id += 1;
        let token = new.into_token(self.next_token_id, now, now);
        self.by_digest.insert(token.digest, token.id);
        self.tokens.insert(token.id, token.clone());
        token
    }

    fn remove_session(&mut self, id: SessionId) {
        if let Some(session) = self.sessions.remove(&id) {
            self.by_key.remove(&(session.owner.raw(), session.key));
            if let Some(ids) = self.by_owner.get_mut(&session.owner.raw()) {
                ids.remove(&id);
            }
        }
    }
}

fn conflict() -> Error {
    Error::Conflict {
        field: "token",
        message: "a token with this value already exists".into(),
    }
}

impl Health for MemoryStore {
    fn ping(&self) -> Result<()> {
        self.state().map(drop)
    }
}

#[cfg(test)]
mod tests;
