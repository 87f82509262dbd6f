//! A bounded in-process cache of tokens in front of any [`TokenStore`]: a wrapper of that one
//! concern, so nothing else passes through it.
//!
//! `/auth` looks a token up on every request, and tokens change rarely: the cache turns that
//! lookup into a hash-map read. Writes made through the cache invalidate it at once. Writes made
//! elsewhere (the CLI, another server on the same database) are noticed as soon as the store
//! hears of them ([`TokenStore::token_writes_heard`]: PostgreSQL's `NOTIFY`), and in any case by
//! polling [`TokenStore::token_generation`] at most every `recheck_every`; that interval bounds
//! how stale a token may be when the store hears nothing.
//!
//! Unknown tokens are remembered too (a negative cache), apart from the known ones and bounded
//! on their own, so that a flood of bad tokens costs each value one store read and never pushes
//! a real token out. And [`CachedTokens::revalidate`] keeps a Bloom filter of every token's
//! digest ([`TokenStore::token_digests`]), so that a flood of made-up tokens is refused from
//! memory, without a store read. The filter only knows the token writes this process has heard
//! of, and a token created on another node a moment ago must still be found: so a token the
//! filter lacks is read from the store anyway, up to [`FILTER_MISS_READS_PER_SECOND`]; only
//! beyond that does the filter answer alone. Any token write clears all three (the filter is
//! rebuilt by the next `revalidate`): a token created after a miss is found at once.
//!
//! Known tokens: at most `capacity`; when full the map starts over empty, which keeps every
//! operation O(1) with no per-entry bookkeeping on the hot path. Unknown ones: at most
//! `capacity` too, in two halves, the older dropped when the newer fills (the most recent misses
//! stay remembered through a flood).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::digest_filter::DigestFilter;
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
    /// The store's [`TokenStore::token_writes_heard`] when last looked at ([`NOT_HEARD`] before).
    heard: AtomicU64,
    /// Unix micros before which the digest filter is not built again (see
    /// [`FILTER_REBUILD_SPACING`]).
    filter_due: AtomicI64,
    /// The second (unix) that [`CachedTokens::filter_misses_read`] counts in.
    filter_miss_second: AtomicI64,
    /// Store reads of tokens the filter lacks in that second.
    filter_misses_read: AtomicU64,
}

/// Store reads a second, at most, of tokens the digest filter says do not exist. The filter is
/// as current as the last token write this process heard of (PostgreSQL's `NOTIFY`: a few
/// milliseconds; otherwise the generation poll, up to `recheck_every`), and a viewer handed a
/// token just created on another node must not be refused meanwhile: a media server may cache
/// the refusal for minutes. Real tokens are rarely that new, so this many a second leaves them
/// all a read, while a flood of made-up ones is refused from memory beyond it, each value that
/// was read remembered as unknown.
pub const FILTER_MISS_READS_PER_SECOND: u64 = 200;

/// After building the digest filter, the cache waits this many times as long as that took
/// before building it again: however large the store and however often tokens are written,
/// rebuilding takes at most about a tenth of one thread. Meanwhile unknown tokens are read
/// from the store (once each, then remembered), as without a filter.
const FILTER_REBUILD_SPACING: i64 = 10;

/// [`CachedTokens::heard`] before the store has said anything.
const NOT_HEARD: u64 = u64::MAX;

struct CacheState {
    known: HashMap<SecretDigest, Arc<Token>>,
    unknown: UnknownDigests,
    /// Every stored token's digest, as of the last token write this cache knows of; `None`
    /// until [`CachedTokens::revalidate`] builds it again.
    digests: Option<DigestFilter>,
    /// The store's token generation when the cache was last known to be current.
    generation: Option<u64>,
    checked_at: Timestamp,
}

impl CacheState {
    fn clear(&mut self) {
        self.known.clear();
        self.unknown.clear();
        self.digests = None;
    }
}

/// Digests the store had no token for, in two halves of at most `half` each.
struct UnknownDigests {
    newer: HashSet<SecretDigest>,
    older: HashSet<SecretDigest>,
    half: usize,
}

impl UnknownDigests {
    fn new(capacity: usize) -> Self {
        UnknownDigests {
            newer: HashSet::new(),
            older: HashSet::new(),
            half: (capacity / 2).max(1),
        }
    }

    fn contains(&self, digest: &SecretDigest) -> bool {
        self.newer.contains(digest) || self.older.contains(digest)
    }

    fn insert(&mut self, digest: SecretDigest) {
        if self.newer.len() >= self.half {
            self.older = std::mem::take(&mut self.newer);
        }
        self.newer.insert(digest);
    }

    fn len(&self) -> usize {
        self.newer.len() + self.older.len()
    }

    fn clear(&mut self) {
        self.newer.clear();
        self.older.clear();
    }
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
        let capacity = capacity.max(1);
        CachedTokens {
            inner,
            clock,
            capacity,
            recheck_every,
            state: RwLock::new(CacheState {
                known: HashMap::new(),
                unknown: UnknownDigests::new(capacity),
                digests: None,
                generation: None,
                checked_at: Timestamp::UNIX_EPOCH,
            }),
            epoch: AtomicU64::new(0),
            heard: AtomicU64::new(NOT_HEARD),
            filter_due: AtomicI64::new(i64::MIN),
            filter_miss_second: AtomicI64::new(i64::MIN),
            filter_misses_read: AtomicU64::new(0),
        }
    }

    pub fn inner(&self) -> &Arc<dyn TokenStore> {
        &self.inner
    }

    /// Checks the store's token generation now (clearing the cache if it moved) and marks the
    /// cache current; builds the filter of token digests again if a token write dropped it (a
    /// read of every digest: about a millisecond per 10,000 tokens), at most a tenth of the time
    /// (after a build it waits ten times as long as that build took). Call it from a background
    /// task a little more often than `recheck_every`: requests then always find a current cache,
    /// instead of many of them finding it due at the same moment and all going to the store
    /// together.
    pub fn revalidate(&self) -> Result<()> {
        self.recheck(self.clock.now())?;
        self.hear_writes();
        let started = self.clock.now().unix_micros();
        if self.state.read().is_ok_and(|state| state.digests.is_some())
            || started < self.filter_due.load(Ordering::Acquire)
        {
            return Ok(());
        }
        let epoch = self.epoch.load(Ordering::SeqCst);
        let filter = DigestFilter::of(&self.inner.token_digests()?);
        let finished = self.clock.now().unix_micros();
        let spacing = finished
            .saturating_sub(started)
            .saturating_mul(FILTER_REBUILD_SPACING);
        self.filter_due
            .store(finished.saturating_add(spacing), Ordering::Release);
        self.hear_writes();
        let mut state = self
            .state
            .write()
            .map_err(|_| Error::storage("token cache lock poisoned"))?;
        // A write since the digests were read may have added one they lack: not this filter.
        if self.epoch.load(Ordering::SeqCst) == epoch {
            state.digests = Some(filter);
        }
        Ok(())
    }

    /// Number of cached entries (found and not-found), for tests and metrics.
    pub fn len(&self) -> usize {
        self.state
            .read()
            .map(|s| s.known.len() + s.unknown.len())
            .unwrap_or(0)
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
        state.clear();
    }

    /// Clears the cache if the store heard of a token write since this was last called. One
    /// atomic read when nothing was heard: it runs on every lookup.
    fn hear_writes(&self) {
        if let Some(heard) = self.inner.token_writes_heard() {
            if self.heard.load(Ordering::Acquire) != heard
                && self.heard.swap(heard, Ordering::AcqRel) != heard
            {
                self.invalidate();
            }
        }
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
        self.hear_writes();
        let state = self.state.read().ok()?;
        if !self.fresh_at(&state, now) {
            return None;
        }
        if let Some(token) = state.known.get(digest) {
            return Some(Some(Arc::clone(token)));
        }
        let surely_unknown = state.unknown.contains(digest)
            || (filtered_out(&state, digest) && !self.filter_miss_reads_left(now));
        surely_unknown.then_some(None)
    }

    /// Whether a token the filter lacks may still be read from the store this second (see
    /// [`FILTER_MISS_READS_PER_SECOND`]). Checked before the read and counted after it, so
    /// concurrent requests may overshoot by as many as read at once.
    fn filter_miss_reads_left(&self, now: Timestamp) -> bool {
        let second = now.unix_micros().div_euclid(1_000_000);
        self.filter_miss_second.load(Ordering::Acquire) != second
            || self.filter_misses_read.load(Ordering::Relaxed) < FILTER_MISS_READS_PER_SECOND
    }

    fn count_filter_miss_read(&self, now: Timestamp) {
        let second = now.unix_micros().div_euclid(1_000_000);
        if self.filter_miss_second.swap(second, Ordering::AcqRel) == second {
            self.filter_misses_read.fetch_add(1, Ordering::Relaxed);
        } else {
            self.filter_misses_read.store(1, Ordering::Relaxed);
        }
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
            state.clear();
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

/// Whether the digest filter, if built, says no token has `digest`.
fn filtered_out(state: &CacheState, digest: &SecretDigest) -> bool {
    state
        .digests
        .as_ref()
        .is_some_and(|digests| !digests.may_contain(digest))
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
        if self
            .state
            .read()
            .is_ok_and(|state| filtered_out(&state, digest))
        {
            self.count_filter_miss_read(now);
        }
        let found = self.inner.token_by_digest(digest)?;
        // A write heard while the store was read may be this very token's creation.
        self.hear_writes();
        let mut state = self
            .state
            .write()
            .map_err(|_| Error::storage("token cache lock poisoned"))?;
        if self.epoch.load(Ordering::SeqCst) == epoch {
            match &found {
                Some(token) => {
                    if state.known.len() >= self.capacity {
                        state.known.clear();
                    }
                    state.known.insert(*digest, Arc::clone(token));
                }
                None => state.unknown.insert(*digest),
            }
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

    fn token_writes_heard(&self) -> Option<u64> {
        self.inner.token_writes_heard()
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

    /// Whether `cache` finds the token whose secret is `token`.
    fn finds(cache: &CachedTokens, token: &str) -> bool {
        cache.token_by_digest(&digest(token)).unwrap().is_some()
    }

    /// Counts token reads that reach the inner store, and hears of writes when told to. Reading
    /// every digest takes 100 ms of `clock`.
    struct Counting {
        inner: Arc<dyn TokenStore>,
        clock: Arc<ManualClock>,
        reads: AtomicU64,
        digest_reads: AtomicU64,
        /// What [`TokenStore::token_writes_heard`] answers; [`NOT_HEARD`] for `None`.
        heard: AtomicU64,
    }

    impl TokenStore for Counting {
        fn token_by_digest(&self, digest: &SecretDigest) -> Result<Option<Arc<Token>>> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.inner.token_by_digest(digest)
        }
        fn token_generation(&self) -> Result<u64> {
            self.inner.token_generation()
        }
        fn token_writes_heard(&self) -> Option<u64> {
            Some(self.heard.load(Ordering::SeqCst)).filter(|&heard| heard != NOT_HEARD)
        }
        fn token_digests(&self) -> Result<Vec<SecretDigest>> {
            self.digest_reads.fetch_add(1, Ordering::SeqCst);
            self.clock.advance(Duration::from_millis(100));
            self.inner.token_digests()
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
        let clock = Arc::new(ManualClock::new(T0));
        let counting = Arc::new(Counting {
            inner,
            clock: Arc::clone(&clock),
            reads: AtomicU64::new(0),
            digest_reads: AtomicU64::new(0),
            heard: AtomicU64::new(NOT_HEARD),
        });
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
            assert!(finds(&cache, "cache-token-1"));
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
    fn a_flood_of_unknown_tokens_reads_each_once_and_keeps_known_tokens() {
        let (counting, _clock, cache) = cached(Arc::new(MemoryStore::new()), 8);
        cache.create_token(spec("cache-known", "u", 1), T0).unwrap();
        assert!(finds(&cache, "cache-known"));
        // Twice the bound of distinct unknown values, each asked twice in a row.
        for i in 0..16 {
            for _ in 0..2 {
                assert!(cache
                    .token_by_digest(&digest(&format!("flood-{i}")))
                    .unwrap()
                    .is_none());
            }
        }
        assert_eq!(
            counting.reads.load(Ordering::SeqCst),
            1 + 16,
            "one store read per unknown value"
        );
        assert_eq!(
            cache.try_token_without_blocking(&digest("cache-known")),
            Some(cache.token_by_digest(&digest("cache-known")).unwrap()),
            "the known token is still answered from memory"
        );
        assert!(
            cache
                .try_token_without_blocking(&digest("flood-15"))
                .is_some_and(|found| found.is_none()),
            "the latest misses are remembered"
        );
        assert!(cache.len() <= 1 + 8, "{} entries", cache.len());
    }

    #[test]
    fn a_token_created_elsewhere_after_a_miss_is_found_once_the_store_hears_of_it() {
        let store = Arc::new(MemoryStore::new());
        let (counting, _clock, cache) = cached(store.clone(), 10);
        counting.heard.store(1, Ordering::SeqCst);
        assert!(cache
            .token_by_digest(&digest("cache-late"))
            .unwrap()
            .is_none());
        // Created by another node: not through this cache, and within the poll interval.
        store.create_token(spec("cache-late", "u", 1), T0).unwrap();
        assert!(
            cache
                .token_by_digest(&digest("cache-late"))
                .unwrap()
                .is_none(),
            "nothing heard yet: the cached miss stands until the poll"
        );
        counting.heard.store(2, Ordering::SeqCst);
        assert!(
            cache
                .try_token_without_blocking(&digest("cache-late"))
                .is_none(),
            "heard: the miss is dropped at once"
        );
        assert!(finds(&cache, "cache-late"));
    }

    #[test]
    fn a_flood_of_never_seen_tokens_reaches_the_store_only_up_to_a_rate() {
        let store = Arc::new(MemoryStore::new());
        let (counting, clock, cache) = cached(store.clone(), 10);
        for i in 0..3 {
            cache
                .create_token(spec(&format!("filter-known-{i}"), "u", 1), T0)
                .unwrap();
        }
        cache.revalidate().unwrap();
        let flood = |from: u64| {
            for i in from..from + 1000 {
                let never = digest(&format!("filter-never-{i}"));
                if cache.try_token_without_blocking(&never).is_none() {
                    assert_eq!(cache.token_by_digest(&never).unwrap(), None);
                }
            }
        };
        flood(0);
        assert_eq!(
            counting.reads.load(Ordering::SeqCst),
            FILTER_MISS_READS_PER_SECOND,
            "the rest of the flood is refused from memory"
        );
        // A value that was read is remembered: never read again.
        assert_eq!(
            cache.try_token_without_blocking(&digest("filter-never-0")),
            Some(None)
        );
        assert!(finds(&cache, "filter-known-1"));
        assert_eq!(
            counting.reads.load(Ordering::SeqCst),
            FILTER_MISS_READS_PER_SECOND + 1,
            "a known token is read whatever the flood"
        );
        // The next second brings as many reads again.
        clock.advance(Duration::from_millis(1000));
        cache.revalidate().unwrap();
        flood(1000);
        assert_eq!(
            counting.reads.load(Ordering::SeqCst),
            2 * FILTER_MISS_READS_PER_SECOND + 1
        );

        // Created through the cache: the filter is dropped at once, so the token is found.
        cache.create_token(spec("filter-new", "u", 1), T0).unwrap();
        assert_eq!(
            cache.try_token_without_blocking(&digest("filter-new")),
            None
        );
        assert!(finds(&cache, "filter-new"));
    }

    #[test]
    fn a_token_created_elsewhere_and_not_yet_heard_of_is_found_despite_the_filter() {
        let store = Arc::new(MemoryStore::new());
        let (counting, clock, cache) = cached(store.clone(), 10);
        counting.heard.store(1, Ordering::SeqCst);
        cache
            .create_token(spec("elsewhere-known", "u", 1), T0)
            .unwrap();
        clock.advance(Duration::from_secs(1));
        cache.revalidate().unwrap();
        assert_eq!(
            cache.try_token_without_blocking(&digest("elsewhere-new")),
            None,
            "not in the filter, but the store is asked"
        );
        // Another node creates it; this one has not heard yet (`heard` unchanged).
        store
            .create_token(spec("elsewhere-new", "u", 1), T0)
            .unwrap();
        assert!(finds(&cache, "elsewhere-new"));
        assert!(
            cache
                .try_token_without_blocking(&digest("elsewhere-new"))
                .is_some_and(|token| token.is_some()),
            "then remembered"
        );
    }

    #[test]
    fn the_digest_filter_is_rebuilt_at_most_a_tenth_of_the_time() {
        let (counting, clock, cache) = cached(Arc::new(MemoryStore::new()), 10);
        cache.create_token(spec("spaced-1", "u", 1), T0).unwrap();
        cache.revalidate().unwrap();
        assert_eq!(counting.digest_reads.load(Ordering::SeqCst), 1);
        // The read took 100 ms: no other for the next second, whatever is written.
        cache.create_token(spec("spaced-2", "u", 1), T0).unwrap();
        clock.advance(Duration::from_millis(900));
        cache.revalidate().unwrap();
        assert_eq!(counting.digest_reads.load(Ordering::SeqCst), 1);
        assert_eq!(
            cache.try_token_without_blocking(&digest("spaced-never")),
            None,
            "no filter meanwhile: the store is asked"
        );
        assert!(finds(&cache, "spaced-2"));
        clock.advance(Duration::from_millis(100));
        cache.revalidate().unwrap();
        assert_eq!(counting.digest_reads.load(Ordering::SeqCst), 2);
        for i in 0..FILTER_MISS_READS_PER_SECOND {
            cache
                .token_by_digest(&digest(&format!("spaced-read-{i}")))
                .unwrap();
        }
        assert_eq!(
            cache.try_token_without_blocking(&digest("spaced-never")),
            Some(None),
            "the filter is back: once this second's reads are spent it answers alone"
        );
    }

    #[test]
    fn the_cache_is_bounded() {
        let (_counting, _clock, cache) = cached(Arc::new(MemoryStore::new()), 3);
        for i in 0..10 {
            cache
                .token_by_digest(&digest(&format!("probe-{i}")))
                .unwrap();
            assert!(cache.len() <= 3, "{} entries", cache.len());
        }
    }
}
