//! Where tokens are kept: [`TokenStore`], and the shapes its listing takes and answers with.

use std::sync::Arc;

use serde::Serialize;

use super::{NewToken, Token, TokenId, TokenPatch, TokenStatus};
use crate::clock::Timestamp;
use crate::error::Result;
use crate::page::Page;
use crate::secret::SecretDigest;

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

/// What [`TokenStore::upsert_token`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Upsert {
    Created,
    Updated,
    Unchanged,
}

/// Tokens, looked up by their secret's keyed digest on every request and managed by operators.
pub trait TokenStore: Send + Sync {
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
    /// `None` means "call [`TokenStore::token_by_digest`] on a thread that may block". Async
    /// servers call this on their reactor threads, so it must take nothing but short in-memory
    /// locks.
    fn try_token_without_blocking(&self, _digest: &SecretDigest) -> Option<Option<Arc<Token>>> {
        None
    }

    /// A number that changes whenever any token is created, changed or deleted, by any process
    /// or node sharing this store: what [`crate::store::CachedTokens`] polls to notice writes it
    /// did not make.
    fn token_generation(&self) -> Result<u64>;

    /// A count of token writes (by any process or node) this process has heard of as they
    /// committed, e.g. through PostgreSQL's `NOTIFY`: when it moves, [`crate::store::CachedTokens`]
    /// drops what it holds at once instead of at its next [`TokenStore::token_generation`] poll.
    /// `None` when the store hears of no writes, or cannot vouch that it heard them all right now
    /// (not listening): the poll alone bounds staleness then. Called on every lookup: an atomic
    /// read, never blocking.
    fn token_writes_heard(&self) -> Option<u64> {
        None
    }

    fn list_tokens(&self, filter: &TokenFilter) -> Result<Page<Token>>;

    /// The digest of every token, for [`crate::store::CachedTokens`] to refuse unknown tokens
    /// from memory. Read in pages of [`TokenStore::list_tokens`] unless a backend has a cheaper
    /// way.
    fn token_digests(&self) -> Result<Vec<SecretDigest>> {
        let mut digests = Vec::new();
        loop {
            let page = self.list_tokens(&TokenFilter {
                limit: crate::page::MAX_PAGE,
                offset: u32::try_from(digests.len()).unwrap_or(u32::MAX),
                ..TokenFilter::default()
            })?;
            let last = page.items.is_empty()
                || digests.len() + page.items.len() >= usize::try_from(page.total).unwrap_or(0);
            digests.extend(page.items.iter().map(|token| token.digest));
            if last {
                return Ok(digests);
            }
        }
    }

    /// Applies `patch` atomically (read, validate, write); `NotFound` if there is no such token.
    fn update_token(&self, id: TokenId, patch: TokenPatch, now: Timestamp) -> Result<Token>;

    /// Deletes the token and its sessions; false if there was no such token.
    /// Its live sessions end with it (their webhooks say `terminated`).
    fn delete_token(&self, id: TokenId, now: Timestamp) -> Result<bool>;
}
