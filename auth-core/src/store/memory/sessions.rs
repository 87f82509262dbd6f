//! Sessions: [`SessionStore`] for [`MemoryStore`](super::MemoryStore).

use super::*;
use crate::session::{CloseReason, SessionOwner, SessionStore};
use crate::webhook::{Message, MessageKind, SessionFacts};

impl SessionStore for MemoryStore {
    fn try_admit_without_blocking(
        &self,
        claim: &SessionClaim<'_>,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Option<Result<Admission>> {
        Some(self.admit_session(claim, now, lease_until))
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
        if let Some(&until) = state
            .bans
            .get(&(claim.owner.raw(), claim.stream.to_owned()))
        {
            if until > now {
                return Ok(Admission::Banned { until });
            }
        }
        let mut evicted = None;
        if claim.max_sessions > 0 {
            let holding: Vec<&Session> = state
                .by_owner
                .get(&claim.owner.raw())
                .into_iter()
                .flatten()
                .filter_map(|id| state.sessions.get(id))
                .filter(|s| s.holds_slot(now))
                .collect();
            let live = holding.len();
            if live >= claim.max_sessions as usize {
                let oldest = holding
                    .iter()
                    .min_by_key(|s| (s.started_at, s.id))
                    .map(|s| s.id)
                    .filter(|_| claim.evict_oldest && live == claim.max_sessions as usize);
                match oldest {
                    Some(id) => evicted = Some(id),
                    None => {
                        return Ok(Admission::LimitReached {
                            live: u32::try_from(live).unwrap_or(u32::MAX),
                        })
                    }
                }
            }
        }
        if let Some(id) = evicted {
            if let Some(session) = state.sessions.get_mut(&id) {
                session.terminated_at = Some(now);
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
                source: claim.source.to_owned(),
                media_session_id: claim.media_session_id.map(str::to_owned),
                started_at: now,
                last_seen: now,
                expires_at: lease_until,
                terminated_at: None,
            },
        );
        if let Some(session) = state.sessions.get(&id) {
            self.queue_if_wanted(MessageKind::SessionOpened, || {
                Message::session_opened(&SessionFacts::from(session), now)
            })?;
        }
        if let Some(session) = evicted.and_then(|id| state.sessions.get(&id)) {
            self.closed(session, CloseReason::Evicted, now)?;
        }
        state.by_key.insert(key, id);
        state
            .by_owner
            .entry(claim.owner.raw())
            .or_default()
            .insert(id);
        Ok(match evicted {
            Some(evicted) => Admission::Evicted {
                session_id: id,
                evicted,
            },
            None => Admission::Admitted { session_id: id },
        })
    }

    fn sessions(&self, filter: &SessionFilter, now: Timestamp) -> Result<Vec<Session>> {
        let state = self.state()?;
        Ok(state
            .sessions
            .values()
            .filter(|s| s.is_live(now) && filter.matches(s))
            .cloned()
            .collect())
    }

    fn terminate_session(
        &self,
        id: SessionId,
        reason: CloseReason,
        now: Timestamp,
    ) -> Result<bool> {
        let mut state = self.state()?;
        match state.sessions.get_mut(&id) {
            Some(session) if session.is_live(now) => {
                if session.terminated_at.is_none() {
                    session.terminated_at = Some(now);
                    self.closed(session, reason, now)?;
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn end_session(&self, id: SessionId, now: Timestamp) -> Result<bool> {
        let mut state = self.state()?;
        let Some(session) = state.sessions.get(&id) else {
            return Ok(false);
        };
        self.removed(session, CloseReason::Done, now)?;
        state.remove_session(id);
        Ok(true)
    }

    fn end_session_by_key(&self, owner: SessionOwner, key: &str, now: Timestamp) -> Result<bool> {
        let mut state = self.state()?;
        let Some(&id) = state.by_key.get(&(owner.raw(), key.to_owned())) else {
            return Ok(false);
        };
        let Some(session) = state.sessions.get(&id).filter(|s| s.is_live(now)) else {
            return Ok(false);
        };
        self.removed(session, CloseReason::Done, now)?;
        state.remove_session(id);
        Ok(true)
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
            if let Some(session) = state.sessions.get(id) {
                self.removed(session, CloseReason::Expired, now)?;
            }
            state.remove_session(*id);
        }
        state.bans.retain(|_, until| *until > now);
        Ok(expired.len() as u64)
    }

    fn ban(&self, owner: SessionOwner, stream: &str, until: Timestamp) -> Result<()> {
        let mut state = self.state()?;
        let ban = state
            .bans
            .entry((owner.raw(), stream.to_owned()))
            .or_insert(until);
        *ban = (*ban).max(until);
        Ok(())
    }
}

impl MemoryStore {
    /// Queues `session.closed` for `session`.
    fn closed(&self, session: &Session, reason: CloseReason, now: Timestamp) -> Result<()> {
        self.queue_if_wanted(MessageKind::SessionClosed, || {
            Message::session_closed(&SessionFacts::from(session), reason, now)
        })
    }

    /// Queues `session.closed` for a session being removed, unless it was told of when it was
    /// terminated.
    pub(super) fn removed(
        &self,
        session: &Session,
        reason: CloseReason,
        now: Timestamp,
    ) -> Result<()> {
        match session.terminated_at {
            Some(_) => Ok(()),
            None => self.closed(session, reason, now),
        }
    }
}
