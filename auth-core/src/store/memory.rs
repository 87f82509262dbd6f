//! In-memory store: one mutex around plain maps. Atomic by construction; nothing survives the
//! process.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{
    clamp_limit, AccessLogFilter, AccessStats, Page, SessionFilter, Store, TokenFilter, Upsert,
};
use crate::access_log::{AccessLogEntry, AccessLogRecord, AccessResult};
use crate::account::{Account, AccountId, AccountPatch, EventStanding, NewAccount};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::event::{Event, EventFilter, EventId, EventPatch, NewEvent, RosterEntry, RosterRole};
use crate::secret::SecretDigest;
use crate::session::{Admission, Session, SessionClaim, SessionId};
use crate::signed_token::keys::StoredSigningKey;
use crate::ticket::{NewTicket, Ticket, TicketId, TicketUse};
use crate::token::{NewToken, Token, TokenId, TokenPatch};

#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    tickets: Mutex<super::tickets_memory::TicketState>,
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
    logs: Vec<AccessLogRecord>,
    signing_keys: Vec<StoredSigningKey>,
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

    fn tickets(&self) -> Result<MutexGuard<'_, super::tickets_memory::TicketState>> {
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

impl Store for MemoryStore {
    fn create_token(&self, new: NewToken, now: Timestamp) -> Result<Token> {
        let mut state = self.state()?;
        if state.by_digest.contains_key(&new.digest) {
            return Err(conflict());
        }
        Ok(state.insert_token(new, now))
    }

    fn upsert_token(&self, new: NewToken, now: Timestamp) -> Result<(Token, Upsert)> {
        let mut state = self.state()?;
        let Some(&id) = state.by_digest.get(&new.digest) else {
            return Ok((state.insert_token(new, now), Upsert::Created));
        };
        let token = state
            .tokens
            .get_mut(&id)
            .ok_or_else(|| Error::storage("index out of step"))?;
        if new.matches(token) {
            return Ok((token.clone(), Upsert::Unchanged));
        }
        *token = new.into_token(token.id, token.created_at, now);
        let token = token.clone();
        state.token_generation += 1;
        Ok((token, Upsert::Updated))
    }

    fn token(&self, id: TokenId) -> Result<Option<Token>> {
        Ok(self.state()?.tokens.get(&id).cloned())
    }

    fn token_by_digest(&self, digest: &SecretDigest) -> Result<Option<Arc<Token>>> {
        let state = self.state()?;
        Ok(state
            .by_digest
            .get(digest)
            .and_then(|id| state.tokens.get(id))
            .map(|token| Arc::new(token.clone())))
    }

    // Everything here is a short critical section on one mutex: never a blocking call.
    fn try_token_without_blocking(&self, digest: &SecretDigest) -> Option<Option<Arc<Token>>> {
        self.token_by_digest(digest).ok()
    }

    fn try_admit_without_blocking(
        &self,
        claim: &SessionClaim<'_>,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Option<Result<Admission>> {
        Some(self.admit_session(claim, now, lease_until))
    }

    fn token_generation(&self) -> Result<u64> {
        Ok(self.state()?.token_generation)
    }

    fn list_tokens(&self, filter: &TokenFilter) -> Result<Page<Token>> {
        let state = self.state()?;
        let matching: Vec<&Token> = state
            .tokens
            .values()
            .filter(|t| filter.status.is_none_or(|s| t.status == s))
            .filter(|t| filter.user_id.as_deref().is_none_or(|u| t.user_id == u))
            .filter(|t| {
                filter
                    .user_id_prefix
                    .as_deref()
                    .is_none_or(|p| t.user_id.starts_with(p))
            })
            .collect();
        let items = matching
            .iter()
            .skip(filter.offset as usize)
            .take(clamp_limit(filter.limit) as usize)
            .map(|t| (*t).clone())
            .collect();
        Ok(Page {
            items,
            total: matching.len() as u64,
        })
    }

    fn update_token(&self, id: TokenId, patch: TokenPatch, now: Timestamp) -> Result<Token> {
        let mut state = self.state()?;
        let token = state
            .tokens
            .get_mut(&id)
            .ok_or(Error::NotFound { what: "token" })?;
        let mut updated = token.clone();
        patch.apply(&mut updated)?;
        updated.updated_at = now;
        *token = updated.clone();
        state.token_generation += 1;
        Ok(updated)
    }

    fn delete_token(&self, id: TokenId) -> Result<bool> {
        let mut state = self.state()?;
        let Some(token) = state.tokens.remove(&id) else {
            return Ok(false);
        };
        state.by_digest.remove(&token.digest);
        state.token_generation += 1;
        for session_id in state.by_owner.remove(&id).unwrap_or_default() {
            state.remove_session(session_id);
        }
        Ok(true)
    }

    fn admit_session(
        &self,
        claim: &SessionClaim<'_>,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Admission> {
        let mut state = self.state()?;
        let key = (claim.owner.raw(), claim.key.to_owned());
        if let Some(&id) = state.by_key.get(&key) {
            let live = state.sessions.get(&id).is_some_and(|s| s.is_live(now));
            if live {
                let session = state
                    .sessions
                    .get_mut(&id)
                    .ok_or_else(|| Error::storage("index out of step"))?;
                if session.terminated_at.is_some() {
                    return Ok(Admission::Terminated { session_id: id });
                }
                session.last_seen = now;
                session.expires_at = lease_until;
                return Ok(Admission::Extended { session_id: id });
            }
        }
        // A token deleted since the caller looked it up holds no slot (see the conformance test).
        if let Some(token_id) = claim.owner.token_id() {
            if !state.tokens.contains_key(&token_id) {
                return Ok(Admission::LimitReached { live: 0 });
            }
        }
        if claim.max_sessions > 0 {
            let live = state
                .by_owner
                .get(&claim.owner.raw())
                .into_iter()
                .flatten()
                .filter(|id| state.sessions.get(id).is_some_and(|s| s.holds_slot(now)))
                .count();
            if live >= claim.max_sessions as usize {
                return Ok(Admission::LimitReached {
                    live: u32::try_from(live).unwrap_or(u32::MAX),
                });
            }
        }
        // A dead lease under the same key is replaced by the new session.
        if let Some(dead) = state.by_key.get(&key).copied() {
            state.remove_session(dead);
        }
        state.next_session_id += 1;
        let id = state.next_session_id;
        state.sessions.insert(
            id,
            Session {
                id,
                token_id: claim.owner.token_id(),
                owner: claim.owner,
                key: claim.key.to_owned(),
                user_id: claim.user_id.to_owned(),
                stream: claim.stream.to_owned(),
                ip: claim.ip.to_string(),
                proto: claim.proto.to_owned(),
                started_at: now,
                last_seen: now,
                expires_at: lease_until,
                terminated_at: None,
            },
        );
        state.by_key.insert(key, id);
        state
            .by_owner
            .entry(claim.owner.raw())
            .or_default()
            .insert(id);
        Ok(Admission::Admitted { session_id: id })
    }

    fn sessions(&self, filter: &SessionFilter, now: Timestamp) -> Result<Vec<Session>> {
        let state = self.state()?;
        Ok(state
            .sessions
            .values()
            .filter(|s| s.is_live(now))
            .filter(|s| filter.token_id.is_none_or(|t| s.token_id == Some(t)))
            .filter(|s| filter.user_id.as_deref().is_none_or(|u| s.user_id == u))
            .filter(|s| filter.stream.as_deref().is_none_or(|n| s.stream == n))
            .cloned()
            .collect())
    }

    fn terminate_session(&self, id: SessionId, now: Timestamp) -> Result<bool> {
        let mut state = self.state()?;
        match state.sessions.get_mut(&id) {
            Some(session) if session.is_live(now) => {
                session.terminated_at.get_or_insert(now);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn end_session(&self, id: SessionId) -> Result<bool> {
        let mut state = self.state()?;
        let existed = state.sessions.contains_key(&id);
        state.remove_session(id);
        Ok(existed)
    }

    fn purge_expired_sessions(&self, now: Timestamp) -> Result<u64> {
        let mut state = self.state()?;
        let expired: Vec<SessionId> = state
            .sessions
            .values()
            .filter(|s| !s.is_live(now))
            .map(|s| s.id)
            .collect();
        for id in &expired {
            state.remove_session(*id);
        }
        Ok(expired.len() as u64)
    }

    fn append_access_logs(&self, entries: &[AccessLogEntry]) -> Result<()> {
        let mut state = self.state()?;
        for entry in entries {
            let id = state.logs.len() as i64 + 1;
            state.logs.push(AccessLogRecord {
                id,
                entry: entry.into(),
            });
        }
        Ok(())
    }

    fn access_logs(&self, filter: &AccessLogFilter) -> Result<Page<AccessLogRecord>> {
        let state = self.state()?;
        let matching: Vec<&AccessLogRecord> = state
            .logs
            .iter()
            .rev()
            .filter(|r| filter.matches(&r.entry))
            .collect();
        let items = matching
            .iter()
            .skip(filter.offset as usize)
            .take(clamp_limit(filter.limit) as usize)
            .map(|r| (*r).clone())
            .collect();
        Ok(Page {
            items,
            total: matching.len() as u64,
        })
    }

    fn access_stats(
        &self,
        since: Timestamp,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<AccessStats> {
        let state = self.state()?;
        let mut stats = AccessStats {
            since,
            until,
            ..Default::default()
        };
        for record in state
            .logs
            .iter()
            .filter(|r| r.entry.at >= since && r.entry.at < until)
        {
            if record.entry.result == AccessResult::Allowed.as_str() {
                stats.allowed += 1;
            } else {
                stats.denied += 1;
                let reason = record.entry.reason.clone().unwrap_or_default();
                *stats.denied_by_reason.entry(reason).or_default() += 1;
            }
        }
        for session in state.sessions.values().filter(|s| s.holds_slot(now)) {
            stats.live_sessions += 1;
            *stats
                .live_sessions_by_stream
                .entry(session.stream.clone())
                .or_default() += 1;
        }
        Ok(stats)
    }

    fn ping(&self) -> Result<()> {
        self.state().map(drop)
    }

    // --- Signed tokens: the key ring ---

    fn insert_signing_key(&self, key: &StoredSigningKey) -> Result<()> {
        crate::signed_token::check_kid(&key.kid)?;
        let mut state = self.state()?;
        if state.signing_keys.iter().any(|k| k.kid == key.kid) {
            return Err(super::signing_key_conflict(&key.kid));
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

    // --- Event tickets (see `tickets_memory`) ---

    fn create_account(&self, account: NewAccount, now: Timestamp) -> Result<Account> {
        self.tickets()?.create_account(account, now)
    }

    fn account(&self, id: AccountId) -> Result<Option<Account>> {
        Ok(self.tickets()?.account(id))
    }

    fn account_by_username(&self, username: &str) -> Result<Option<Account>> {
        Ok(self.tickets()?.account_by_username(username))
    }

    fn update_account(
        &self,
        id: AccountId,
        patch: AccountPatch,
        now: Timestamp,
    ) -> Result<Account> {
        self.tickets()?.update_account(id, patch, now)
    }

    fn create_event(&self, event: NewEvent, now: Timestamp) -> Result<Event> {
        Ok(self.tickets()?.create_event(event, now))
    }

    fn event(&self, id: EventId) -> Result<Option<Event>> {
        Ok(self.tickets()?.event(id))
    }

    fn list_events(&self, filter: &EventFilter) -> Result<Page<Event>> {
        Ok(self.tickets()?.list_events(filter))
    }

    fn update_event(&self, id: EventId, patch: &EventPatch, now: Timestamp) -> Result<Event> {
        self.tickets()?.update_event(id, patch, now)
    }

    fn add_to_roster(
        &self,
        event: EventId,
        account: AccountId,
        roster: RosterRole,
        now: Timestamp,
    ) -> Result<bool> {
        self.tickets()?.add_to_roster(event, account, roster, now)
    }

    fn roster(
        &self,
        event: EventId,
        roster: RosterRole,
        limit: u32,
        offset: u32,
    ) -> Result<Page<RosterEntry>> {
        self.tickets()?.roster(event, roster, limit, offset)
    }

    fn roster_standing(&self, event: EventId, account: AccountId) -> Result<EventStanding> {
        Ok(self.tickets()?.roster_standing(event, account))
    }

    fn create_ticket(&self, ticket: NewTicket, now: Timestamp) -> Result<Ticket> {
        self.tickets()?.create_ticket(ticket, now)
    }

    fn ticket(&self, id: TicketId) -> Result<Option<Ticket>> {
        Ok(self.tickets()?.ticket(id))
    }

    fn revoke_ticket(&self, id: TicketId, now: Timestamp) -> Result<bool> {
        Ok(self.tickets()?.revoke_ticket(id, now))
    }

    fn use_ticket(
        &self,
        id: TicketId,
        step: i64,
        by: Option<AccountId>,
        single_entry: bool,
        now: Timestamp,
    ) -> Result<TicketUse> {
        Ok(self.tickets()?.use_ticket(id, step, by, single_entry, now))
    }

    fn revoke_access_token(&self, jti: &str, expires_at: Timestamp) -> Result<()> {
        self.tickets()?.revoke_access_token(jti, expires_at);
        Ok(())
    }

    fn access_token_revoked(&self, jti: &str) -> Result<bool> {
        Ok(self.tickets()?.access_token_revoked(jti))
    }

    fn purge_ticket_state(&self, now: Timestamp) -> Result<u64> {
        Ok(self.tickets()?.purge(now))
    }
}

#[cfg(test)]
mod tests {
    crate::store::conformance::suite!(super::MemoryStore::new());
}
