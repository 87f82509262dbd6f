//! A bounded in-process cache of tokens in front of any [`TokenStore`]: a wrapper of that one
//! concern, so nothing else passes through it.
//!
//! `/auth` looks a token up on every request, and tokens change rarely: the cache turns that
//! lookup into a hash-map read. Writes made through the cache invalidate it at once. Writes made
//! elsewhere (the CLI, another server on the same database) are noticed by polling
//! [`TokenStore::token_generation`] at most every `recheck_every`; that interval bounds how stale a
//! token may be. Unknown tokens are cached too, so a flood of bad tokens costs no store reads.
//!
//! The cache holds at most `capacity` entries; when full it starts over empty, which keeps every
//! operation O(1) with no per-entry bookkeeping on the hot path.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::clock::{Clock, Timestamp};
use crate::error::{Error, Result};
use crate::page::Page;
use crate::secret::SecretDigest;
use crate::token::{NewToken, Token, TokenFilter, TokenId, TokenPatch, TokenStore, Upsert};

pub struct CachedTokens {
    inner: Arc<dyn TokenStore>,
    clock: Arc<dyn Clock>,
    capacity: usize,
    recheck_every: Duration,
    state: RwLock<CacheState>,
    /// Bumped by every invalidation. A lookup that read the store before an invalidation must
    /// not insert what it read after it: it compares the epoch it started with.
    epoch: AtomicU64,
}

struct CacheState {
    entries: HashMap<SecretDigest, Option<Arc<Token>>>,
    /// The store's token generation when `entries` was last known to be current.
    generation: Option<u64>,
    checked_at: Timestamp,
}

impl CachedTokens {
    /// Default bound: enough for a large deployment's active tokens in a few tens of MiB.
    pub const DEFAULT_CAPACITY: usize = 100_000;
    /// Default staleness bound for writes made outside this process.
    pub const DEFAULT_RECHECK: Duration = Duration::from_secs(1);

    pub fn new(
        inner: Arc<dyn TokenStore>,
        clock: Arc<dyn Clock>,
        capacity: usize,
        recheck_every: Duration,
    ) -> Self {
        CachedTokens {
            inner,
            clock,
            capacity: capacity.max(1),
            recheck_every,
            state: RwLock::new(CacheState {
                entries: HashMap::new(),
                generation: None,
                checked_at: Timestamp::UNIX_EPOCH,
            }),
            epoch: AtomicU64::new(0),
        }
    }

    pub fn inner(&self) -> &Arc<dyn TokenStore> {
        &self.inner
    }

    /// Checks the store's token generation now (clearing the cache if it moved) and marks the
    /// cache current. Call it from a background task a little more often than `recheck_every`:
    /// requests then always find a current cache, instead of many of them finding it due at the
    /// same moment and all going to the store together.
    pub fn revalidate(&self) -> Result<()> {
        self.recheck(self.clock.now())
    }

    /// Number of cached entries (found and not-found), for tests and metrics.
    pub fn len(&self) -> usize {
        self.state.read().map(|s| s.entries.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn invalidate(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        let mut state = match self.state.write() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        };
        state.entries.clear();
    }

    /// Whether the cache was checked against the store's generation recently enough at `now`.
    fn is_fresh(&self, now: Timestamp) -> bool {
        self.state
            .read()
            .is_ok_and(|state| self.fresh_at(&state, now))
    }

    fn fresh_at(&self, state: &CacheState, now: Timestamp) -> bool {
        state.generation.is_some() && now < state.checked_at.saturating_add(self.recheck_every)
    }

    /// The cached answer for `digest`, if the cache is current at `now` and holds one.
    fn cached(&self, digest: &SecretDigest, now: Timestamp) -> Option<Option<Arc<Token>>> {
        let state = self.state.read().ok()?;
        if !self.fresh_at(&state, now) {
            return None;
        }
        state.entries.get(digest).cloned()
    }

    /// Clears the cache if the store's generation moved since it was last checked.
    fn recheck(&self, now: Timestamp) -> Result<()> {
        let generation = self.inner.token_generation()?;
        let mut state = self
            .state
            .write()
            .map_err(|_| Error::storage("token cache lock poisoned"))?;
        if state.generation != Some(generation) {
            self.epoch.fetch_add(1, Ordering::SeqCst);
            state.entries.clear();
            state.generation = Some(generation);
        }
        state.checked_at = now;
        Ok(())
    }

    /// Runs a token write on the inner store, then drops every cached token.
    fn writing<T>(&self, write: impl FnOnce(&dyn TokenStore) -> Result<T>) -> Result<T> {
        let result = write(self.inner.as_ref());
        self.invalidate();
        result
    }
}

impl TokenStore for CachedTokens {
    fn token_by_digest(&self, digest: &SecretDigest) -> Result<Option<Arc<Token>>> {
        let now = self.clock.now();
        if let Some(hit) = self.cached(digest, now) {
            return Ok(hit);
        }
        if !self.is_fresh(now) {
            self.recheck(now)?;
        }
        let epoch = self.epoch.load(Ordering::SeqCst);
        let found = self.inner.token_by_digest(digest)?;
        let mut state = self
            .state
            .write()
            .map_err(|_| Error::storage("token cache lock poisoned"))?;
        if self.epoch.load(Ordering::SeqCst) == epoch {
            if state.entries.len() >= self.capacity {
                state.entries.clear();
            }
            state.entries.insert(*digest, found.clone());
        }
        Ok(found)
    }

    fn try_token_without_blocking(&self, digest: &SecretDigest) -> Option<Option<Arc<Token>>> {
        self.cached(digest, self.clock.now())
            .or_else(|| self.inner.try_token_without_blocking(digest))
    }

    fn token_generation(&self) -> Result<u64> {
        self.inner.token_generation()
    }

    fn create_token(&self, token: NewToken, now: Timestamp) -> Result<Token> {
        self.writing(|store| store.create_token(token, now))
    }

    fn upsert_token(&self, token: NewToken, now: Timestamp) -> Result<(Token, Upsert)> {
        self.writing(|store| store.upsert_token(token, now))
    }

    fn update_token(&self, id: TokenId, patch: TokenPatch, now: Timestamp) -> Result<Token> {
        self.writing(|store| store.update_token(id, patch, now))
    }

    fn delete_token(&self, id: TokenId, now: Timestamp) -> Result<bool> {
        self.writing(|store| store.delete_token(id, now))
    }

    fn token(&self, id: TokenId) -> Result<Option<Token>> {
        self.inner.token(id)
    }

    fn list_tokens(&self, filter: &TokenFilter) -> Result<Page<Token>> {
        self.inner.list_tokens(filter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::prelude::*;
    use crate::store::testkit::{digest, spec, T0};
    use crate::store::{MemoryStore, SqliteStore};

    /// Counts token reads that reach the inner store.
    struct Counting {
        inner: Arc<dyn TokenStore>,
        reads: AtomicU64,
    }

    impl TokenStore for Counting {
        fn token_by_digest(&self, digest: &SecretDigest) -> Result<Option<Arc<Token>>> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.inner.token_by_digest(digest)
        }
        fn token_generation(&self) -> Result<u64> {
            self.inner.token_generation()
        }
        fn create_token(&self, token: NewToken, now: Timestamp) -> Result<Token> {
            self.inner.create_token(token, now)
        }
        fn upsert_token(&self, token: NewToken, now: Timestamp) -> Result<(Token, Upsert)> {
            self.inner.upsert_token(token, now)
        }
        fn update_token(&self, id: TokenId, patch: TokenPatch, now: Timestamp) -> Result<Token> {
            self.inner.update_token(id, patch, now)
        }
        fn delete_token(&self, id: TokenId, now: Timestamp) -> Result<bool> {
            self.inner.delete_token(id, now)
        }
        fn token(&self, id: TokenId) -> Result<Option<Token>> {
            self.inner.token(id)
        }
        fn list_tokens(&self, filter: &TokenFilter) -> Result<Page<Token>> {
            self.inner.list_tokens(filter)
        }
    }

    fn cached(
        inner: Arc<dyn TokenStore>,
        capacity: usize,
    ) -> (Arc<Counting>, Arc<ManualClock>, CachedTokens) {
        let counting = Arc::new(Counting {
            inner,
            reads: AtomicU64::new(0),
        });
        let clock = Arc::new(ManualClock::new(T0));
        let cache = CachedTokens::new(
            counting.clone(),
            clock.clone(),
            capacity,
            Duration::from_secs(1),
        );
        (counting, clock, cache)
    }

    mod conformance {
        use super::*;
        crate::token_suite!(CachedTokens::new(
            Arc::new(MemoryStore::new()),
            Arc::new(ManualClock::new(T0)),
            CachedTokens::DEFAULT_CAPACITY,
            CachedTokens::DEFAULT_RECHECK,
        ));
    }

    #[test]
    fn repeated_lookups_read_the_store_once() {
        let (counting, _clock, cache) = cached(Arc::new(MemoryStore::new()), 10);
        cache
            .create_token(spec("cache-token-1", "u", 1), T0)
            .unwrap();
        for _ in 0..5 {
            assert!(cache
                .token_by_digest(&digest("cache-token-1"))
                .unwrap()
                .is_some());
            assert!(cache
                .token_by_digest(&digest("unknown-token"))
                .unwrap()
                .is_none());
        }
        assert_eq!(
            counting.reads.load(Ordering::SeqCst),
            2,
            "one read per digest, found or not"
        );
    }

    #[test]
    fn writes_through_the_cache_show_at_once() {
        let (_counting, _clock, cache) = cached(Arc::new(MemoryStore::new()), 10);
        assert!(cache
            .token_by_digest(&digest("cache-token-2"))
            .unwrap()
            .is_none());
        let token = cache
            .create_token(spec("cache-token-2", "u", 1), T0)
            .unwrap();
        assert!(
            cache
                .token_by_digest(&digest("cache-token-2"))
                .unwrap()
                .is_some(),
            "a cached miss is dropped"
        );
        let patch = TokenPatch {
            max_sessions: Some(7),
            ..Default::default()
        };
        cache.update_token(token.id, patch, T0).unwrap();
        assert_eq!(
            cache
                .token_by_digest(&digest("cache-token-2"))
                .unwrap()
                .unwrap()
                .max_sessions,
            7
        );
        cache.delete_token(token.id, T0).unwrap();
        assert!(cache
            .token_by_digest(&digest("cache-token-2"))
            .unwrap()
            .is_none());
    }

    #[test]
    fn writes_from_elsewhere_show_within_the_recheck_interval() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.db");
        let ours: Arc<dyn TokenStore> = Arc::new(SqliteStore::open(&path).unwrap());
        let theirs = SqliteStore::open(&path).unwrap();
        let (_counting, clock, cache) = cached(ours, 10);
        let token = theirs
            .create_token(spec("cache-token-3", "u", 1), T0)
            .unwrap();
        assert_eq!(
            cache
                .token_by_digest(&digest("cache-token-3"))
                .unwrap()
                .unwrap()
                .max_sessions,
            1
        );
        let patch = TokenPatch {
            max_sessions: Some(5),
            ..Default::default()
        };
        theirs.update_token(token.id, patch, T0).unwrap();
        clock.advance(Duration::from_millis(500));
        assert_eq!(
            cache
                .token_by_digest(&digest("cache-token-3"))
                .unwrap()
                .unwrap()
                .max_sessions,
            1,
            "within the interval the cached copy may be served"
        );
        clock.advance(Duration::from_millis(600));
        assert_eq!(
            cache
                .token_by_digest(&digest("cache-token-3"))
                .unwrap()
                .unwrap()
                .max_sessions,
            5
        );
    }

    #[test]
    fn the_cache_is_bounded() {
        let (_counting, _clock, cache) = cached(Arc::new(MemoryStore::new()), 3);
        for i in 0..10 {
            cache
                .token_by_digest(&digest(&format!("probe-{i}")))
                .unwrap();
            assert!(cache.len() <= 3);
        }
    }
}
