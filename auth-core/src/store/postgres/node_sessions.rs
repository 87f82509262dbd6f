//! Each node's memory of the sessions it has seen live, so that re-checks (most of the traffic)
//! are answered without a database round trip, as the SQLite store answers them.
//!
//! The database stays the authority: new admissions are counted and inserted there under the
//! token's row lock, and every answer given from memory is one the database would give, because
//! the memory only ever forgets early:
//! - **Terminations and removals made anywhere** reach every node through `LISTEN/NOTIFY`: a
//!   trigger notifies `auth_sessions` with `schema:id` when a session is terminated or deleted
//!   (ended, its token deleted), at commit; each node's listener drops that session from memory,
//!   so its next re-check goes to the database and is refused there. Milliseconds, not a poll.
//! - **Lease extensions** given from memory are written behind, in one statement per second
//!   (and before this node counts the same owner's sessions or purges), like the SQLite store's.
//!   A lease in the database therefore lags at most about a second behind the one given, against
//!   leases of at least `AUTH_DURATION` (30 s or more): other nodes still count the session.
//!   Sessions the write finds terminated or gone are dropped from memory.
//! - **When in doubt, memory is not used.** While the listener is not connected (at start, after
//!   a lost connection, until it listens again) or extensions have failed to be written for
//!   [`MAX_FAILED_FLUSHES`] rounds in a row, every re-check goes to the database (and, if that is
//!   down too, to the fail mode). On reconnection the memory is cleared first: notifications sent
//!   meanwhile are lost.
//! - A node that learns of a session from the database while a notification about it is in
//!   flight could remember it after the notification dropped it; an epoch counter bumped by every
//!   invalidation makes it forget instead (see [`NodeSessions::learn`]).
//!
//! A node that crashes loses up to a second of extensions, as with SQLite: those sessions keep
//! their previous lease and are never over-admitted.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use ::postgres::fallible_iterator::FallibleIterator;
use ::postgres::types::Type;
use ::postgres::{Config, GenericClient, NoTls};
use r2d2::Pool;

use super::Manager;
use crate::error::Result;
use crate::session::{Admission, SessionId};
use crate::store::live_index::LiveIndex;

/// The channel the session triggers notify (payload `schema:id`).
pub(super) const CHANNEL: &str = "auth_sessions";

/// The channel the token trigger notifies (payload `schema`): any token write, at its commit.
const TOKEN_CHANNEL: &str = "auth_tokens";

/// How often extensions given from memory are written.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Failed writes in a row after which re-checks stop being answered from memory: the database
/// leases would start to fall behind the ones given.
const MAX_FAILED_FLUSHES: u32 = 5;

/// The least lease (in microseconds) a session must have left in the database for a node to
/// remember it from a read alone, its extension written behind: longer than memory is trusted
/// while extensions fail to be written, with a margin.
pub(super) const MIN_LEASE_TO_LEARN: i64 =
    (MAX_FAILED_FLUSHES as i64 + 5) * FLUSH_EVERY.as_micros() as i64;

/// How long the listener waits for a notification before it checks whether to stop.
const LISTEN_POLL: Duration = Duration::from_millis(100);

/// One owner's pending extensions: session id -> `(last_seen, expires_at)`.
type OwnerPending = HashMap<SessionId, (i64, i64)>;

/// Pending extensions per owner.
type Pending = HashMap<i64, OwnerPending>;

/// One pending extension, taken for writing.
struct Extension {
    owner: i64,
    id: SessionId,
    seen: i64,
    until: i64,
}

#[derive(Default)]
pub(super) struct NodeSessions {
    index: Mutex<LiveIndex>,
    pending: Mutex<Pending>,
    /// Bumped (under the index lock) by every invalidation.
    epoch: AtomicU64,
    listening: AtomicBool,
    failed_flushes: AtomicU32,
    /// Token writes heard of on [`TOKEN_CHANNEL`], and every (re)connection of the listener
    /// (what was sent while it was away is lost: a token cache must start over).
    token_writes: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl NodeSessions {
    pub fn trusted(&self) -> bool {
        self.listening.load(Ordering::Acquire)
            && self.failed_flushes.load(Ordering::Acquire) < MAX_FAILED_FLUSHES
    }

    /// A re-check answered from memory, or `None` for "ask the database".
    pub fn recheck(&self, owner: i64, key: &str, now: i64, until: i64) -> Option<Admission> {
        if !self.trusted() {
            return None;
        }
        let admission = lock(&self.index).recheck(owner, key, now, until)?;
        if let Admission::Extended { session_id } = admission {
            let mut pending = lock(&self.pending);
            let entry = pending
                .entry(owner)
                .or_default()
                .entry(session_id)
                .or_insert((now, until));
            entry.0 = entry.0.max(now);
            entry.1 = entry.1.max(until);
        }
        Some(admission)
    }

    /// See [`crate::token::TokenStore::token_writes_heard`]: only while listening.
    pub fn token_writes_heard(&self) -> Option<u64> {
        self.listening
            .load(Ordering::Acquire)
            .then(|| self.token_writes.load(Ordering::Acquire))
    }

    /// The epoch to pass to [`NodeSessions::learn`], read before asking the database.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Remembers what the database answered, unless an invalidation arrived since `epoch` was
    /// read (it may concern this very session: forgetting is always safe).
    pub fn learn(&self, owner: i64, key: &str, admission: Admission, until: i64, epoch: u64) {
        let mut index = lock(&self.index);
        if self.epoch.load(Ordering::Acquire) != epoch || !self.trusted() {
            return;
        }
        match admission {
            Admission::Admitted { session_id } | Admission::Extended { session_id } => {
                index.insert(owner, key, session_id, until, false)
            }
            Admission::Evicted {
                session_id,
                evicted,
            } => {
                index.remove(evicted);
                index.insert(owner, key, session_id, until, false)
            }
            Admission::Terminated { session_id } => {
                index.insert(owner, key, session_id, until, true)
            }
            Admission::LimitReached { .. } | Admission::Banned { .. } => {}
        }
    }

    /// Remembers a session the database holds live (read, not written) and queues its extension
    /// to `until` for the next write, as a re-check from memory does. `false` when it cannot be
    /// remembered (memory not trusted, or an invalidation since `epoch`): the caller then
    /// extends it in the database itself.
    ///
    /// Safe only for a lease with at least [`MIN_LEASE_TO_LEARN`] left in the database: until the
    /// extension is written (a second, or [`MAX_FAILED_FLUSHES`] seconds before memory stops
    /// being trusted), other nodes still count the session.
    pub fn learn_live(
        &self,
        owner: i64,
        key: &str,
        session_id: SessionId,
        now: i64,
        until: i64,
        epoch: u64,
    ) -> bool {
        {
            let mut index = lock(&self.index);
            if self.epoch.load(Ordering::Acquire) != epoch || !self.trusted() {
                return false;
            }
            index.insert(owner, key, session_id, until, false);
        }
        self.put_back(vec![Extension {
            owner,
            id: session_id,
            seen: now,
            until,
        }]);
        true
    }

    /// Whether a live session is remembered, without extending it (tests watch the listener
    /// with it; a re-check would also queue an extension, whose write forgets by itself).
    #[cfg(test)]
    fn remembers(&self, owner: i64, key: &str, now: i64) -> bool {
        lock(&self.index)
            .recheck(owner, key, now, i64::MIN)
            .is_some()
    }

    /// Forgets a session (terminated or removed, here or elsewhere).
    pub fn forget(&self, id: SessionId) {
        let mut index = lock(&self.index);
        index.remove(id);
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Forgets every session of `owner` (a deleted token).
    pub fn forget_owner(&self, owner: i64) {
        let mut index = lock(&self.index);
        index.remove_token(owner);
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Forgets every session.
    fn forget_all(&self) {
        let mut index = lock(&self.index);
        *index = LiveIndex::default();
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    pub fn purge(&self, now: i64) {
        lock(&self.index).purge(now);
    }

    /// Takes the pending extensions of `owner` (of every owner when `None`).
    fn take(&self, owner: Option<i64>) -> Vec<Extension> {
        let mut pending = lock(&self.pending);
        let taken: Vec<(i64, OwnerPending)> = match owner {
            Some(owner) => pending.remove_entry(&owner).into_iter().collect(),
            None => pending.drain().collect(),
        };
        taken
            .into_iter()
            .flat_map(|(owner, sessions)| {
                sessions
                    .into_iter()
                    .map(move |(id, (seen, until))| Extension {
                        owner,
                        id,
                        seen,
                        until,
                    })
            })
            .collect()
    }

    /// Puts back extensions whose write failed, keeping the longer of two leases.
    fn put_back(&self, extensions: Vec<Extension>) {
        let mut pending = lock(&self.pending);
        for e in extensions {
            let entry = pending
                .entry(e.owner)
                .or_default()
                .entry(e.id)
                .or_insert((e.seen, e.until));
            entry.0 = entry.0.max(e.seen);
            entry.1 = entry.1.max(e.until);
        }
    }

    /// Writes the pending extensions of `owner` (every owner when `None`) through `client` (in
    /// the caller's transaction, if it has one); sessions found terminated or gone are
    /// forgotten. On failure the extensions stay pending.
    ///
    /// Rows another transaction holds are skipped (`SKIP LOCKED`) and stay pending for the next
    /// round: nodes writing overlapping batches never wait for each other, so never deadlock
    /// (PostgreSQL would break such a deadlock only after `deadlock_timeout`, a second).
    pub fn write_pending(&self, client: &mut impl GenericClient, owner: Option<i64>) -> Result<()> {
        let taken = self.take(owner);
        if taken.is_empty() {
            return Ok(());
        }
        match write(client, &taken) {
            Ok((written, alive)) => {
                let mut skipped = Vec::new();
                for extension in taken {
                    if written.contains(&extension.id) {
                        continue;
                    }
                    if alive.contains(&extension.id) {
                        skipped.push(extension);
                    } else {
                        self.forget(extension.id);
                    }
                }
                self.put_back(skipped);
                Ok(())
            }
            Err(err) => {
                self.put_back(taken);
                Err(err)
            }
        }
    }
}

/// Writes `extensions`; returns the ids written, and among the others those still live (held by
/// another transaction, so skipped).
fn write(
    client: &mut impl GenericClient,
    extensions: &[Extension],
) -> Result<(HashSet<SessionId>, HashSet<SessionId>)> {
    let ids: Vec<i64> = extensions.iter().map(|e| e.id).collect();
    let seen: Vec<i64> = extensions.iter().map(|e| e.seen).collect();
    let until: Vec<i64> = extensions.iter().map(|e| e.until).collect();
    let ids_of = |rows: Vec<::postgres::Row>| -> Result<HashSet<SessionId>> {
        rows.iter().map(|row| Ok(row.try_get(0)?)).collect()
    };
    let written = ids_of(client.query_typed(
        "WITH v AS (SELECT * FROM unnest($1::BIGINT[], $2::BIGINT[], $3::BIGINT[])                     AS v(id, seen, until)),               free AS (SELECT s.id FROM sessions AS s JOIN v ON s.id = v.id                        WHERE s.terminated_at IS NULL FOR UPDATE OF s SKIP LOCKED)          UPDATE sessions AS s SET last_seen = GREATEST(s.last_seen, v.seen),              expires_at = GREATEST(s.expires_at, v.until)          FROM v, free WHERE s.id = v.id AND s.id = free.id          RETURNING s.id",
        &[
            (&ids, Type::INT8_ARRAY),
            (&seen, Type::INT8_ARRAY),
            (&until, Type::INT8_ARRAY),
        ],
    )?)?;
    let rest: Vec<i64> = ids.into_iter().filter(|id| !written.contains(id)).collect();
    if rest.is_empty() {
        return Ok((written, HashSet::new()));
    }
    let alive = ids_of(client.query_typed(
        "SELECT id FROM sessions WHERE id = ANY($1) AND terminated_at IS NULL",
        &[(&rest, Type::INT8_ARRAY)],
    )?)?;
    Ok((written, alive))
}

/// The node's background threads: the listener and the extension writer. Stopped (with a last
/// write of pending extensions) when dropped.
pub(super) struct Workers {
    stop: Arc<AtomicBool>,
    wake: Option<mpsc::Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

impl Workers {
    pub fn spawn(
        node: Arc<NodeSessions>,
        pool: Pool<Manager>,
        config: Config,
    ) -> std::io::Result<Workers> {
        let stop = Arc::new(AtomicBool::new(false));
        let listener = {
            let (node, stop) = (Arc::clone(&node), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("postgres-listener".into())
                .spawn(move || listen(&node, &config, &stop))?
        };
        let (wake, woken) = mpsc::channel::<()>();
        let writer = std::thread::Builder::new()
            .name("postgres-leases".into())
            .spawn(move || loop {
                let stopping = !matches!(
                    woken.recv_timeout(FLUSH_EVERY),
                    Err(mpsc::RecvTimeoutError::Timeout)
                );
                let written = pool
                    .get()
                    .map_err(crate::error::Error::from)
                    .and_then(|mut conn| node.write_pending(&mut *conn, None));
                match written {
                    Ok(()) => node.failed_flushes.store(0, Ordering::Release),
                    Err(err) => {
                        node.failed_flushes.fetch_add(1, Ordering::AcqRel);
                        log::warn!("cannot write session lease extensions: {err}");
                    }
                }
                if stopping {
                    break;
                }
            })?;
        Ok(Workers {
            stop,
            wake: Some(wake),
            threads: vec![listener, writer],
        })
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Dropping the sender wakes the writer for its last write.
        self.wake.take();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Listens for terminations and removals until `stop`, reconnecting after failures; memory is
/// trusted only while listening.
fn listen(node: &NodeSessions, config: &Config, stop: &AtomicBool) {
    let mut logged_down = false;
    while !stop.load(Ordering::Acquire) {
        let result = (|| -> std::result::Result<(), ::postgres::Error> {
            let mut client = config.connect(NoTls)?;
            let schema: String = client
                .query_one("SELECT current_schema()::TEXT", &[])?
                .get(0);
            client.batch_execute(&format!("LISTEN {CHANNEL}; LISTEN {TOKEN_CHANNEL}"))?;
            // Anything sent before LISTEN took effect is lost: start from an empty memory.
            node.forget_all();
            node.token_writes.fetch_add(1, Ordering::AcqRel);
            node.listening.store(true, Ordering::Release);
            if logged_down {
                log::info!("listening for session changes again");
                logged_down = false;
            }
            let prefix = format!("{schema}:");
            while !stop.load(Ordering::Acquire) {
                {
                    let mut notifications = client.notifications();
                    let mut batch = notifications.timeout_iter(LISTEN_POLL);
                    while let Some(notification) = batch.next()? {
                        if notification.channel() == TOKEN_CHANNEL {
                            if notification.payload() == schema {
                                node.token_writes.fetch_add(1, Ordering::AcqRel);
                            }
                            continue;
                        }
                        if let Some(id) = notification
                            .payload()
                            .strip_prefix(&prefix)
                            .and_then(|id| id.parse::<SessionId>().ok())
                        {
                            node.forget(id);
                        }
                    }
                }
                if client.is_closed() {
                    break;
                }
            }
            Ok(())
        })();
        node.listening.store(false, Ordering::Release);
        if let Err(err) = result {
            if !logged_down {
                log::warn!(
                    "not listening for session changes ({}); re-checks go to the database",
                    crate::error::Error::from(err)
                );
                logged_down = true;
            }
            // Not a busy loop against a database that is down.
            for _ in 0..5 {
                if stop.load(Ordering::Acquire) {
                    return;
                }
                std::thread::sleep(LISTEN_POLL);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::prelude::*;
    use std::time::Duration;

    use super::super::tests::{claim, fresh};
    use crate::clock::Timestamp;
    use crate::session::SessionFilter;
    use crate::session::{Admission, SessionClaim};
    use crate::store::testkit::{spec, T0};
    use crate::store::PostgresStore;

    const LEASE: Duration = Duration::from_secs(210);

    /// Polls `done` for up to 5 s.
    fn eventually(what: &str, mut done: impl FnMut() -> bool) {
        for _ in 0..100 {
            if done() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{what}: not within 5 s");
    }

    fn listening(store: &PostgresStore) {
        eventually("the node listens", || store.node.trusted());
    }

    fn from_memory(
        store: &PostgresStore,
        claim: &SessionClaim<'_>,
        at: Timestamp,
    ) -> Option<Admission> {
        store
            .try_admit_without_blocking(claim, at, at.saturating_add(LEASE))
            .map(|answer| answer.unwrap())
    }

    #[test]
    fn a_termination_at_one_node_reaches_the_memory_of_the_other() {
        let Some((scratch, a)) = fresh() else { return };
        let b = scratch.open();
        listening(&a);
        let token = a.create_token(spec("node-memory-1", "u", 2), T0).unwrap();
        let claim = claim(&token, "id:viewer");
        let Admission::Admitted { session_id } = a
            .admit_session(&claim, T0, T0.saturating_add(LEASE))
            .unwrap()
        else {
            panic!("not admitted")
        };
        let later = T0.saturating_add(Duration::from_secs(60));
        let (owner, at) = (claim.owner.raw(), later.unix_micros());
        assert!(a.node.remembers(owner, "id:viewer", at));

        // Heard through the listener: nothing of this session is pending a write, whose result
        // would also make node A forget it.
        assert!(b
            .terminate_session(session_id, crate::session::CloseReason::Terminated, later)
            .unwrap());
        eventually("node A forgets the session", || {
            !a.node.remembers(owner, "id:viewer", at)
        });
        assert_eq!(from_memory(&a, &claim, later), None);
        assert_eq!(
            a.admit_session(&claim, later, later.saturating_add(LEASE))
                .unwrap(),
            Admission::Terminated { session_id }
        );
    }

    #[test]
    fn extensions_given_from_memory_reach_the_database_and_other_nodes_count_them() {
        let Some((scratch, a)) = fresh() else { return };
        let b = scratch.open();
        listening(&a);
        let token = a.create_token(spec("node-memory-2", "u", 1), T0).unwrap();
        let viewer = claim(&token, "id:viewer");
        a.admit_session(&viewer, T0, T0.saturating_add(LEASE))
            .unwrap();
        // Re-checked from memory at T0+200 s: the lease runs to T0+410 s, in memory first.
        let recheck = T0.saturating_add(Duration::from_secs(200));
        assert!(matches!(
            from_memory(&a, &viewer, recheck),
            Some(Admission::Extended { .. })
        ));
        let expires = |store: &PostgresStore| {
            store.sessions(&SessionFilter::default(), T0).unwrap()[0].expires_at
        };
        let extended = recheck.saturating_add(LEASE);
        eventually("the extension is written", || expires(&b) == extended);
        // At T0+300 s (past the first lease) node B still counts the session: no second viewer.
        let at = T0.saturating_add(Duration::from_secs(300));
        assert_eq!(
            b.admit_session(&claim(&token, "id:other"), at, at.saturating_add(LEASE))
                .unwrap(),
            Admission::LimitReached { live: 1 }
        );
        assert_eq!(expires(&a), extended);
    }

    #[test]
    fn a_recheck_of_another_nodes_session_is_read_remembered_and_written_behind() {
        let Some((scratch, a)) = fresh() else { return };
        let b = scratch.open();
        listening(&a);
        listening(&b);
        let token = a.create_token(spec("node-memory-4", "u", 1), T0).unwrap();
        let viewer = claim(&token, "id:viewer");
        let Admission::Admitted { session_id } = a
            .admit_session(&viewer, T0, T0.saturating_add(LEASE))
            .unwrap()
        else {
            panic!("not admitted")
        };
        let expires = |store: &PostgresStore| {
            store.sessions(&SessionFilter::default(), T0).unwrap()[0].expires_at
        };
        // Node B has not seen it: its first re-check asks the database, then remembers.
        let recheck = T0.saturating_add(Duration::from_secs(60));
        let owner = viewer.owner.raw();
        assert_eq!(from_memory(&b, &viewer, recheck), None);
        assert_eq!(
            b.admit_session(&viewer, recheck, recheck.saturating_add(LEASE))
                .unwrap(),
            Admission::Extended { session_id }
        );
        assert!(b.node.remembers(owner, "id:viewer", recheck.unix_micros()));
        // The extension reaches the database behind the answer, and node A counts it.
        let extended = recheck.saturating_add(LEASE);
        eventually("the extension is written", || expires(&a) == extended);
        let past_first_lease = T0.saturating_add(Duration::from_secs(250));
        assert_eq!(
            a.admit_session(
                &claim(&token, "id:other"),
                past_first_lease,
                past_first_lease.saturating_add(LEASE)
            )
            .unwrap(),
            Admission::LimitReached { live: 1 }
        );

        // A session about to run out is not taken on trust from a read: node B, which forgot
        // it, extends it in the database before answering.
        b.node.forget(session_id);
        let late = extended.saturating_sub(Duration::from_secs(2));
        assert_eq!(
            b.admit_session(&viewer, late, late.saturating_add(LEASE))
                .unwrap(),
            Admission::Extended { session_id }
        );
        assert_eq!(expires(&a), late.saturating_add(LEASE));
    }

    #[test]
    fn deleting_a_token_or_ending_a_session_elsewhere_is_forgotten_here() {
        let Some((scratch, a)) = fresh() else { return };
        let b = scratch.open();
        listening(&a);
        let token = a.create_token(spec("node-memory-3", "u", 0), T0).unwrap();
        let (one, two) = (claim(&token, "id:one"), claim(&token, "id:two"));
        let Admission::Admitted { session_id } =
            a.admit_session(&one, T0, T0.saturating_add(LEASE)).unwrap()
        else {
            panic!("not admitted")
        };
        a.admit_session(&two, T0, T0.saturating_add(LEASE)).unwrap();
        let (owner, now) = (one.owner.raw(), T0.unix_micros());
        assert!(b.end_session(session_id, T0).unwrap());
        eventually("the ended session is forgotten", || {
            !a.node.remembers(owner, "id:one", now)
        });
        assert!(a.node.remembers(owner, "id:two", now));
        assert!(b.delete_token(token.id, T0).unwrap());
        eventually("the deleted token's session is forgotten", || {
            !a.node.remembers(owner, "id:two", now)
        });
        assert_eq!(
            a.admit_session(&two, T0, T0.saturating_add(LEASE)).unwrap(),
            Admission::LimitReached { live: 0 }
        );
    }
}
