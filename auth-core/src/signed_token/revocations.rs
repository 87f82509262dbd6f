//! Signed tokens refused before they expire: by session group (`grp`: every token minted from a
//! revoked ticket) or by token id (`jti`).
//!
//! A signed token is checked by signature alone, so a revocation must reach every node without
//! a store read per request. Revocations are rows in the store ([`SigningKeyStore`]), each with
//! an ever-growing id; every node keeps them in memory ([`RevocationSet`]) and polls the newest
//! id ([`SigningKeyStore::signed_revocation_mark`], one indexed read) about every second, as the
//! token cache polls the token generation, reloading the set only when the mark moved. The node
//! that revokes adds the revocation to its own set at once. A revocation lasts until `until`,
//! chosen no earlier than the last expiry a token it names can have; then it is purged.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::RwLock;

use super::keys::SigningKeyStore;
use super::Claims;
use crate::clock::Timestamp;
use crate::error::{Error, Result};

/// What a revocation names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Revoked {
    /// Every token naming this session group (`grp`).
    Group(String),
    /// The token with this id (`jti`).
    Token(String),
}

impl Revoked {
    /// As stored: `grp` or `jti`, and the value.
    pub fn parts(&self) -> (&'static str, &str) {
        match self {
            Revoked::Group(group) => ("grp", group),
            Revoked::Token(id) => ("jti", id),
        }
    }

    pub fn from_parts(kind: &str, value: String) -> Result<Self> {
        match kind {
            "grp" => Ok(Revoked::Group(value)),
            "jti" => Ok(Revoked::Token(value)),
            other => Err(Error::storage(format!(
                "unknown signed token revocation kind `{other}`"
            ))),
        }
    }
}

/// A revocation and how long it lasts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    pub revoked: Revoked,
    pub until: Timestamp,
}

/// A node's memory of the revocations in force. Reads take a shared lock and two hash lookups,
/// with no allocation: they run on every `/auth` request of a signed token.
#[derive(Debug)]
pub struct RevocationSet {
    set: RwLock<Entries>,
    /// The store's mark the set was last loaded at (-1: never).
    mark: AtomicI64,
    /// Whether the set holds anything: with no revocation in force (the usual case), a check
    /// takes no lock at all.
    any: AtomicBool,
}

#[derive(Debug, Default)]
struct Entries {
    groups: HashMap<String, Timestamp>,
    tokens: HashMap<String, Timestamp>,
}

impl Entries {
    fn add(&mut self, revocation: Revocation) {
        let (map, key) = match revocation.revoked {
            Revoked::Group(group) => (&mut self.groups, group),
            Revoked::Token(id) => (&mut self.tokens, id),
        };
        let until = map.entry(key).or_insert(revocation.until);
        *until = (*until).max(revocation.until);
    }
}

impl Default for RevocationSet {
    fn default() -> Self {
        Self::new()
    }
}

impl RevocationSet {
    pub fn new() -> Self {
        RevocationSet {
            set: RwLock::default(),
            mark: AtomicI64::new(-1),
            any: AtomicBool::new(false),
        }
    }

    /// Whether `claims` name a group or a token id revoked at `now`.
    pub fn refuses(&self, claims: &Claims, now: Timestamp) -> bool {
        if !self.any.load(Ordering::Acquire) || (claims.grp.is_none() && claims.jti.is_none()) {
            return false;
        }
        let entries = match self.set.read() {
            Ok(entries) => entries,
            Err(poisoned) => poisoned.into_inner(),
        };
        let revoked = |map: &HashMap<String, Timestamp>, key: Option<&String>| {
            key.and_then(|key| map.get(key))
                .is_some_and(|until| now < *until)
        };
        revoked(&entries.groups, claims.grp.as_ref())
            || revoked(&entries.tokens, claims.jti.as_ref())
    }

    /// Adds a revocation this node just stored, without waiting for the next poll.
    pub fn add(&self, revocation: Revocation) {
        self.write().add(revocation);
        self.any.store(true, Ordering::Release);
    }

    /// Reloads the set from `store` if its mark moved since the last load; the revocations
    /// added meanwhile are in the store too, so nothing is lost.
    pub fn refresh(&self, store: &dyn SigningKeyStore, now: Timestamp) -> Result<()> {
        let mark = store.signed_revocation_mark()?;
        if mark == self.mark.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut entries = Entries::default();
        for revocation in store.signed_revocations(now)? {
            entries.add(revocation);
        }
        let any = !(entries.groups.is_empty() && entries.tokens.is_empty());
        *self.write() = entries;
        self.any.store(any, Ordering::Release);
        self.mark.store(mark, Ordering::Release);
        Ok(())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Entries> {
        match self.set.write() {
            Ok(entries) => entries,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::MemoryStore;

    const T: Timestamp = Timestamp::from_unix_seconds(1_800_000_000);

    fn claims(grp: Option<&str>, jti: Option<&str>) -> Claims {
        Claims {
            grp: grp.map(str::to_owned),
            jti: jti.map(str::to_owned),
            ..Claims::new("holder", T, Duration::from_secs(60))
        }
    }

    #[test]
    fn a_set_refuses_revoked_groups_and_ids_until_they_lapse_and_follows_the_store() {
        let store = MemoryStore::new();
        let set = RevocationSet::new();
        let later = T.saturating_add(Duration::from_secs(600));
        let ticket = claims(Some("ticket:7"), Some("a"));
        set.refresh(&store, T).unwrap();
        assert!(!set.refuses(&ticket, T));
        // Revoked elsewhere (another node): seen at the next refresh.
        store
            .revoke_signed(&Revocation {
                revoked: Revoked::Group("ticket:7".into()),
                until: later,
            })
            .unwrap();
        assert!(!set.refuses(&ticket, T), "not before the poll");
        set.refresh(&store, T).unwrap();
        assert!(set.refuses(&ticket, T));
        assert!(!set.refuses(&claims(Some("ticket:8"), Some("a")), T));
        assert!(!set.refuses(&ticket, later), "lapsed");
        // Revoked here: at once.
        let one = Revocation {
            revoked: Revoked::Token("b".into()),
            until: later,
        };
        store.revoke_signed(&one).unwrap();
        set.add(one);
        assert!(set.refuses(&claims(None, Some("b")), T));
        assert!(!set.refuses(&claims(None, None), T));
    }
}
