//! Throttling: attempts counted per key in a sliding window; past the limit, further attempts
//! are refused until the window moves on. [`Counts`] is the window; [`LoginLimiter`] keys it by
//! username and client address, [`RateLimiter`] by any one key (a door agent, a registering
//! address).
//!
//! An attempt is counted when it starts ([`LoginLimiter::begin`], [`RateLimiter::begin`]),
//! atomically with the check: otherwise every request of a burst would pass the check before
//! the first failure was counted, and each would get a guess (an adversarial review found 99 of
//! 100 simultaneous logins checked against a limit of 5). For logins, at most one attempt per
//! username and per address is in flight at a time, and a successful login clears the
//! username's count and takes back its own count from the address (one address guessing many
//! usernames stays throttled).
//!
//! In memory, per process: with several nodes each enforces its own count, so the effective
//! limit is the per-node limit times the number of nodes.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use crate::clock::Timestamp;

/// Attempts allowed per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    pub per_username: u32,
    pub per_ip: u32,
    pub window: Duration,
}

impl Default for LoginLimits {
    /// 5 failures per username and 20 per address in 15 minutes.
    fn default() -> Self {
        LoginLimits {
            per_username: 5,
            per_ip: 20,
            window: Duration::from_secs(15 * 60),
        }
    }
}

/// Most keys tracked. When full, counts past their window are dropped; if it is still full, new
/// keys go uncounted until room comes back, rather than forgetting the counts already held (a
/// flood of made-up usernames must not reset the count of the one being guessed).
const MAX_KEYS: usize = 100_000;

/// Usernames are keyed by at most this many bytes (the longest valid username): a client's
/// text must not make the table's keys as long as it likes.
const MAX_KEY_LEN: usize = crate::account::MAX_USERNAME_LEN;

/// Attempts per key within a sliding window, for at most 100,000 keys (when full, new keys go
/// uncounted until counts past their window make room). Not synchronised: its owner holds it
/// under one lock with whatever else must change atomically with a count.
#[derive(Debug)]
pub struct Counts<K> {
    window: Duration,
    times: HashMap<K, VecDeque<Timestamp>>,
}

impl<K: Hash + Eq + Clone> Counts<K> {
    pub fn new(window: Duration) -> Self {
        Counts {
            window,
            times: HashMap::new(),
        }
    }

    /// How long until `key` may try again, when it holds `limit` attempts within the window.
    pub fn blocked(&mut self, key: &K, limit: u32, now: Timestamp) -> Option<Duration> {
        let since = now.saturating_sub(self.window);
        let times = self.times.get_mut(key)?;
        while times.front().is_some_and(|t| *t <= since) {
            times.pop_front();
        }
        if times.is_empty() {
            self.times.remove(key);
            return None;
        }
        if times.len() < limit as usize {
            return None;
        }
        let oldest = times.front()?.saturating_add(self.window);
        let wait = oldest
            .unix_micros()
            .saturating_sub(now.unix_micros())
            .max(1_000_000);
        Some(Duration::from_micros(
            u64::try_from(wait).unwrap_or(1_000_000),
        ))
    }

    /// Counts one attempt of `key` at `now`.
    pub fn count(&mut self, key: K, now: Timestamp) {
        if self.times.len() >= MAX_KEYS {
            let since = now.saturating_sub(self.window);
            self.times
                .retain(|_, times| times.back().is_some_and(|t| *t > since));
        }
        let room = self.times.len() < MAX_KEYS;
        match self.times.get_mut(&key) {
            Some(times) => times.push_back(now),
            None if room => {
                self.times.insert(key, VecDeque::from([now]));
            }
            None => {}
        }
    }

    /// Takes back the attempt of `key` counted at `at`.
    pub fn take_back(&mut self, key: &K, at: Timestamp) {
        if let Some(times) = self.times.get_mut(key) {
            if let Some(i) = times.iter().rposition(|t| *t == at) {
                times.remove(i);
            }
            if times.is_empty() {
                self.times.remove(key);
            }
        }
    }

    /// Forgets every attempt of `key`.
    pub fn forget(&mut self, key: &K) {
        self.times.remove(key);
    }

    pub fn len(&self) -> usize {
        self.times.len()
    }

    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }
}

/// Why an attempt was refused: try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after: Duration,
    /// The first refusal of this key since it was last under its limit: what a log should
    /// say once per burst rather than once per request.
    pub first: bool,
}

/// At most `limit` attempts per key within `window`, counted when they start.
#[derive(Debug)]
pub struct RateLimiter<K> {
    limit: u32,
    state: Mutex<RateState<K>>,
}

#[derive(Debug)]
struct RateState<K> {
    counts: Counts<K>,
    /// Keys refused since they were last under their limit.
    refusing: HashSet<K>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    pub fn new(limit: u32, window: Duration) -> Self {
        RateLimiter {
            limit,
            state: Mutex::new(RateState {
                counts: Counts::new(window),
                refusing: HashSet::new(),
            }),
        }
    }

    /// Counts an attempt of `key` at `now`, or refuses it when `key` is at its limit.
    pub fn begin(&self, key: K, now: Timestamp) -> Result<(), Throttled> {
        let mut state = lock(&self.state);
        let state = &mut *state;
        if let Some(retry_after) = state.counts.blocked(&key, self.limit, now) {
            let first = state.refusing.len() < MAX_KEYS && state.refusing.insert(key);
            return Err(Throttled { retry_after, first });
        }
        state.refusing.remove(&key);
        state.counts.count(key, now);
        Ok(())
    }

    /// Takes back the attempt of `key` that [`Self::begin`] counted at `at`: it turned out
    /// harmless (a right door code).
    pub fn take_back(&self, key: &K, at: Timestamp) {
        lock(&self.state).counts.take_back(key, at);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Failed logins per username and per client network.
#[derive(Debug)]
pub struct LoginLimiter {
    limits: LoginLimits,
    state: Mutex<State>,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        LoginLimiter::new(LoginLimits::default())
    }
}

#[derive(Debug)]
struct State {
    failures: Counts<Key>,
    in_flight: HashSet<Key>,
}

/// A login attempt under way, counted as a failure until [`Attempt::succeeded`]. Dropping it
/// ends the attempt (its username and address may try again).
#[derive(Debug)]
#[must_use]
pub struct Attempt<'a> {
    limiter: &'a LoginLimiter,
    user: Key,
    network: Key,
    at: Timestamp,
}

impl Attempt<'_> {
    /// The password was right: forget the username's failures, and this attempt's count
    /// against the address.
    pub fn succeeded(self) {
        let mut state = self.limiter.lock();
        state.failures.forget(&self.user);
        state.failures.take_back(&self.network, self.at);
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        let mut state = self.limiter.lock();
        state.in_flight.remove(&self.user);
        state.in_flight.remove(&self.network);
    }
}

fn user_key(username: &str) -> Key {
    let mut end = username.len().min(MAX_KEY_LEN);
    while !username.is_char_boundary(end) {
        end -= 1;
    }
    Key::User(username[..end].to_owned())
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    User(String),
    Network(IpAddr),
}

/// The client's network: its IPv4 address, or its IPv6 /64 (one host usually holds a whole
/// /64, and counting its addresses one by one would let it try without end).
pub fn network_of(ip: IpAddr) -> IpAddr {
    match crate::token::canonical_ip(ip) {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        v4 => v4,
    }
}

fn network(ip: IpAddr) -> Key {
    Key::Network(network_of(ip))
}

impl LoginLimiter {
    pub fn new(limits: LoginLimits) -> Self {
        LoginLimiter {
            limits,
            state: Mutex::new(State {
                failures: Counts::new(limits.window),
                in_flight: HashSet::new(),
            }),
        }
    }

    pub fn limits(&self) -> LoginLimits {
        self.limits
    }

    /// Starts a login attempt, atomically: refused while the username or the address is at its
    /// limit or has an attempt in flight; else counted as a failure at once (see [`Attempt`]).
    pub fn begin(
        &self,
        username: &str,
        ip: IpAddr,
        now: Timestamp,
    ) -> Result<Attempt<'_>, Throttled> {
        let (user, network) = (user_key(username), network(ip));
        let mut state = self.lock();
        if state.in_flight.contains(&user) || state.in_flight.contains(&network) {
            // Hashing takes a fraction of a second: a second is plenty.
            return Err(Throttled {
                retry_after: Duration::from_secs(1),
                first: false,
            });
        }
        let waits = [
            state.failures.blocked(&user, self.limits.per_username, now),
            state.failures.blocked(&network, self.limits.per_ip, now),
        ];
        if let Some(retry_after) = waits.into_iter().flatten().max() {
            return Err(Throttled {
                retry_after,
                first: false,
            });
        }
        state.failures.count(user.clone(), now);
        state.failures.count(network.clone(), now);
        state.in_flight.insert(user.clone());
        state.in_flight.insert(network.clone());
        Ok(Attempt {
            limiter: self,
            user,
            network,
            at: now,
        })
    }

    /// `Err(retry_after)` when either count is at its limit.
    pub fn check(&self, username: &str, ip: IpAddr, now: Timestamp) -> Result<(), Duration> {
        let mut state = self.lock();
        let user = state
            .failures
            .blocked(&user_key(username), self.limits.per_username, now);
        let ip = state
            .failures
            .blocked(&network(ip), self.limits.per_ip, now);
        match user.max(ip) {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    pub fn failed(&self, username: &str, ip: IpAddr, now: Timestamp) {
        let mut state = self.lock();
        state.failures.count(user_key(username), now);
        state.failures.count(network(ip), now);
    }

    pub fn succeeded(&self, username: &str) {
        self.lock().failures.forget(&user_key(username));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timestamp = Timestamp::from_unix_seconds(1_800_000_000);

    #[test]
    fn per_username_then_per_ip_and_the_window_moves_on() {
        let limiter = LoginLimiter::new(LoginLimits {
            per_username: 2,
            per_ip: 3,
            window: Duration::from_secs(60),
        });
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        limiter.check("alice", a, T).unwrap();
        limiter.failed("alice", a, T);
        limiter.failed("alice", a, T);
        let wait = limiter.check("alice", b, T).unwrap_err();
        assert_eq!(
            wait,
            Duration::from_secs(60),
            "the username is throttled from anywhere"
        );
        limiter.check("bob", b, T).unwrap();
        limiter.failed("bob", a, T);
        assert!(
            limiter.check("carol", a, T).is_err(),
            "the address is throttled for anyone"
        );
        let later = T.saturating_add(Duration::from_secs(61));
        limiter.check("alice", a, later).unwrap();
        limiter.failed("dave", b, T);
        limiter.succeeded("dave");
        limiter.check("dave", b, T).unwrap();
    }

    #[test]
    fn an_ipv6_host_is_counted_by_its_slash_64() {
        let limiter = LoginLimiter::new(LoginLimits {
            per_username: 100,
            per_ip: 2,
            window: Duration::from_secs(60),
        });
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8:1:2:ffff:ffff:ffff:ffff".parse().unwrap();
        let other_64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        limiter.failed("a", one, T);
        limiter.failed("b", same_64, T);
        assert!(limiter.check("c", same_64, T).is_err());
        limiter.check("c", other_64, T).unwrap();
        // An IPv4 client is its own address, written either way.
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        limiter.failed("a", v4, T);
        limiter.failed("b", mapped, T);
        assert!(limiter.check("c", v4, T).is_err());
        limiter.check("c", "192.0.2.2".parse().unwrap(), T).unwrap();
    }

    #[test]
    fn attempts_count_when_they_start_one_at_a_time() {
        let limiter = LoginLimiter::new(LoginLimits {
            per_username: 3,
            per_ip: 100,
            window: Duration::from_secs(60),
        });
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let first = limiter.begin("alice", ip, T).unwrap();
        assert_eq!(
            limiter
                .begin("alice", "10.0.0.9".parse().unwrap(), T)
                .unwrap_err(),
            Throttled {
                retry_after: Duration::from_secs(1),
                first: false,
            },
            "one attempt per username in flight"
        );
        assert!(
            limiter.begin("bob", ip, T).is_err(),
            "one attempt per address in flight"
        );
        drop(first);
        drop(limiter.begin("alice", ip, T).unwrap());
        drop(limiter.begin("alice", ip, T).unwrap());
        assert!(
            limiter.begin("alice", ip, T).is_err(),
            "three attempts were counted as they started"
        );
        let later = T.saturating_add(Duration::from_secs(61));
        limiter.begin("alice", ip, later).unwrap().succeeded();
        limiter.begin("alice", ip, later).unwrap().succeeded();
        limiter.begin("alice", ip, later).unwrap().succeeded();
        limiter.begin("alice", ip, later).unwrap().succeeded();
        assert_eq!(limiter.lock().failures.len(), 0, "successes leave no count");
    }

    #[test]
    fn usernames_are_keyed_by_a_bounded_prefix() {
        let limiter = LoginLimiter::new(LoginLimits {
            per_username: 1,
            per_ip: 100,
            window: Duration::from_secs(60),
        });
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let long = "é".repeat(10_000);
        limiter.failed(&long, ip, T);
        assert!(limiter.check(&"é".repeat(5_000), ip, T).is_err());
        let state = limiter.lock();
        assert!(state.failures.times.keys().all(|k| match k {
            Key::User(name) => name.len() <= MAX_KEY_LEN,
            Key::Network(_) => true,
        }));
    }

    #[test]
    fn a_flood_of_new_keys_never_resets_a_held_count() {
        let limiter = LoginLimiter::new(LoginLimits {
            per_username: 2,
            per_ip: u32::MAX,
            window: Duration::from_secs(60),
        });
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        limiter.failed("victim", ip, T);
        for n in 0..MAX_KEYS {
            limiter.failed(&format!("junk-{n}"), ip, T);
        }
        limiter.failed("victim", ip, T);
        assert!(limiter.check("victim", ip, T).is_err());
        // Once the window has moved on, the stale counts make room again.
        let later = T.saturating_add(Duration::from_secs(61));
        limiter.failed("fresh", ip, later);
        limiter.failed("fresh", ip, later);
        assert!(limiter.check("fresh", ip, later).is_err());
    }

    #[test]
    fn a_rate_limiter_counts_as_attempts_start_and_says_once_that_it_refuses() {
        let limiter = RateLimiter::new(2, Duration::from_secs(60));
        limiter.begin(7, T).unwrap();
        limiter.begin(7, T).unwrap();
        let first = limiter.begin(7, T).unwrap_err();
        assert_eq!(first.retry_after, Duration::from_secs(60));
        assert!(
            first.first,
            "the first refusal of a burst is the one to log"
        );
        assert!(!limiter.begin(7, T).unwrap_err().first);
        limiter.begin(8, T).unwrap();
        limiter.take_back(&7, T);
        limiter.begin(7, T).unwrap();
        let later = T.saturating_add(Duration::from_secs(61));
        limiter.begin(7, later).unwrap();
        limiter.begin(7, later).unwrap();
        assert!(
            limiter.begin(7, later).unwrap_err().first,
            "a new burst is logged again"
        );
    }
}
