//! Tokens: [`TokenStore`] for [`MemoryStore`](super::MemoryStore).

use super::*;
use crate::session::CloseReason;
use crate::token::TokenStore;
use crate::webhook::{Message, MessageKind};

impl TokenStore for MemoryStore {
    fn create_token(&self, new: NewToken, now: Timestamp) -> Result<Token> {
        let mut state = self.state()?;
        if state.by_digest.contains_key(&new.digest) {
            return Err(conflict());
        }
        let token = state.insert_token(new, now);
        self.token_changed(MessageKind::TokenCreated, &token, now)?;
        Ok(token)
    }

    fn upsert_token(&self, new: NewToken, now: Timestamp) -> Result<(Token, Upsert)> {
        let mut state = self.state()?;
        let Some(&id) = state.by_digest.get(&new.digest) else {
            let token = state.insert_token(new, now);
            self.token_changed(MessageKind::TokenCreated, &token, now)?;
            return Ok((token, Upsert::Created));
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
        self.token_changed(MessageKind::TokenUpdated, &token, now)?;
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
        self.token_changed(MessageKind::TokenUpdated, &updated, now)?;
        Ok(updated)
    }

    fn delete_token(&self, id: TokenId, now: Timestamp) -> Result<bool> {
        let mut state = self.state()?;
        let Some(token) = state.tokens.remove(&id) else {
            return Ok(false);
        };
        state.by_digest.remove(&token.digest);
        state.token_generation += 1;
        for session_id in state.by_owner.remove(&id).unwrap_or_default() {
            if let Some(session) = state.sessions.get(&session_id).filter(|s| s.is_live(now)) {
                self.removed(session, CloseReason::Terminated, now)?;
            }
            state.remove_session(session_id);
        }
        self.queue_if_wanted(MessageKind::TokenDeleted, || {
            Message::token_deleted(id, now)
        })?;
        Ok(true)
    }
}

impl MemoryStore {
    /// Queues `token.created` or `token.updated`.
    fn token_changed(&self, kind: MessageKind, token: &Token, now: Timestamp) -> Result<()> {
        self.queue_if_wanted(kind, || Message::token_changed(kind, token, now))
    }
}
