//! An in-memory index of the sessions an SQLite store holds, so that re-checks of live sessions
//! are answered without touching the database or blocking.
//!
//! The database stays the authority for admission: new sessions are counted and inserted there,
//! in the writer's transaction. The index mirrors every committed session write of this process
//! (the writer updates it after each commit, in commit order) and every lease extension it
//! answers. It is exact for one serving process; a second process writing sessions to the same
//! file (not a supported way to run several nodes: use PostgreSQL for that) would not be seen.

use std::collections::HashMap;

use crate::session::{Admission, SessionId};
use crate::token::TokenId;

#[derive(Debug, Clone, Copy)]
struct Lease {
    id: SessionId,
    /// Unix micros.
    expires_at: i64,
    terminated: bool,
}

#[derive(Default)]
pub struct LiveIndex {
    by_token: HashMap<TokenId, HashMap<Box<str>, Lease>>,
    keys: HashMap<SessionId, (TokenId, Box<str>)>,
}

impl LiveIndex {
    pub fn insert(
        &mut self,
        token_id: TokenId,
        key: &str,
        id: SessionId,
        expires_at: i64,
        terminated: bool,
    ) {
        self.remove(id);
        if let Some(old) = self
            .by_token
            .get(&token_id)
            .and_then(|leases| leases.get(key))
            .map(|l| l.id)
        {
            self.remove(old);
        }
        self.by_token.entry(token_id).or_default().insert(
            key.into(),
            Lease {
                id,
                expires_at,
                terminated,
            },
        );
        self.keys.insert(id, (token_id, key.into()));
    }

    /// What a re-check of `key` gets without the database: `Extended` (and the lease moved to
    /// `lease_until`) or `Terminated` for a live session; `None` when there is no live session
    /// under that key (a new admission, which the database decides).
    pub fn recheck(
        &mut self,
        token_id: TokenId,
        key: &str,
        now: i64,
        lease_until: i64,
    ) -> Option<Admission> {
        let lease = self.by_token.get_mut(&token_id)?.get_mut(key)?;
        if lease.expires_at <= now {
            return None;
        }
        if lease.terminated {
            return Some(Admission::Terminated {
                session_id: lease.id,
            });
        }
        lease.expires_at = lease.expires_at.max(lease_until);
        Some(Admission::Extended {
            session_id: lease.id,
        })
    }

    #[cfg(feature = "sqlite")]
    pub fn terminate(&mut self, id: SessionId) {
        if let Some(lease) = self.lease_mut(id) {
            lease.terminated = true;
        }
    }

    pub fn remove(&mut self, id: SessionId) {
        if let Some((token_id, key)) = self.keys.remove(&id) {
            if let Some(leases) = self.by_token.get_mut(&token_id) {
                leases.remove(&key);
                if leases.is_empty() {
                    self.by_token.remove(&token_id);
                }
            }
        }
    }

    pub fn remove_token(&mut self, token_id: TokenId) {
        for lease in self
            .by_token
            .remove(&token_id)
            .into_iter()
            .flat_map(|l| l.into_values())
        {
            self.keys.remove(&lease.id);
        }
    }

    /// Drops leases that ran out by `now`.
    pub fn purge(&mut self, now: i64) {
        let expired: Vec<SessionId> = self
            .by_token
            .values()
            .flat_map(|leases| leases.values())
            .filter(|lease| lease.expires_at <= now)
            .map(|lease| lease.id)
            .collect();
        for id in expired {
            self.remove(id);
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    #[cfg(feature = "sqlite")]
    fn lease_mut(&mut self, id: SessionId) -> Option<&mut Lease> {
        let (token_id, key) = self.keys.get(&id)?;
        self.by_token.get_mut(token_id)?.get_mut(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rechecks_extend_live_leases_and_refuse_terminated_ones() {
        let mut index = LiveIndex::default();
        index.insert(1, "id:a", 10, 100, false);
        assert_eq!(
            index.recheck(1, "id:a", 50, 300),
            Some(Admission::Extended { session_id: 10 })
        );
        assert_eq!(
            index.recheck(1, "id:a", 250, 400),
            Some(Admission::Extended { session_id: 10 }),
            "extended to 300"
        );
        assert_eq!(index.recheck(1, "id:b", 50, 300), None);
        assert_eq!(index.recheck(2, "id:a", 50, 300), None);
        index.terminate(10);
        assert_eq!(
            index.recheck(1, "id:a", 260, 500),
            Some(Admission::Terminated { session_id: 10 })
        );
        assert_eq!(
            index.recheck(1, "id:a", 400, 500),
            None,
            "a lease that ran out is no session"
        );
    }

    #[test]
    fn removal_by_id_token_and_expiry() {
        let mut index = LiveIndex::default();
        index.insert(1, "id:a", 10, 100, false);
        index.insert(1, "id:b", 11, 200, false);
        index.insert(2, "id:a", 12, 100, false);
        index.remove(10);
        assert_eq!(index.recheck(1, "id:a", 0, 0), None);
        index.remove_token(2);
        assert_eq!(index.len(), 1);
        index.purge(200);
        assert_eq!(index.len(), 0);
        index.insert(1, "id:c", 13, 100, false);
        index.insert(1, "id:c", 14, 100, false);
        assert_eq!(
            index.len(),
            1,
            "a new session under a key replaces the old one"
        );
    }
}
