//! SQLite store: the embedded default.
//!
//! All writes go through one connection behind a mutex, inside `BEGIN IMMEDIATE` transactions.
//! Within a process the mutex serializes writers without SQLite's sleep-and-retry busy handler
//! (which would add milliseconds under contention); across processes (the CLI writing while the
//! server runs) the immediate transaction and `busy_timeout` keep admission atomic. Reads use an
//! r2d2 pool and run concurrently with writes under WAL.
//!
//! `synchronous=NORMAL` with WAL: a commit survives a process crash; an OS crash or power loss
//! may roll back the last few commits (sessions are leases, tokens are re-seedable), and the
//! file never corrupts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use r2d2::{Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row, TransactionBehavior};
use serde_json::{Map, Value};

use super::group_commit::GroupCommit;
use super::live_index::LiveIndex;
use crate::access_log::{
    AccessLogEntry, AccessLogFilter, AccessLogRecord, AccessResult, AccessStats, StoredEntry,
};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::page::{clamp_limit, Page};
use crate::secret::SecretDigest;
use crate::session::SessionFilter;
use crate::session::{Admission, Session, SessionClaim, SessionId, SessionOwner};
use crate::signed_token::Algorithm;
use crate::store::Health;
use crate::token::{
    Action, ActionSet, IpAllowList, NewToken, OnLimit, StreamAllowList, Token, TokenId, TokenPatch,
    TokenStatus,
};
use crate::token::{TokenFilter, Upsert};

mod access_log;
#[cfg(feature = "tickets")]
mod accounts;
#[cfg(feature = "tickets")]
mod events;
mod outbox;
#[cfg(feature = "tickets")]
mod revocations;
mod sessions;
mod signing_keys;
#[cfg(feature = "tickets")]
mod ticketing;
#[cfg(feature = "tickets")]
mod tickets;
mod tokens;
mod transfer;
mod webhooks;
#[cfg(all(test, feature = "postgres"))]
pub(crate) use transfer::table_columns;

/// Schema versions, applied in order; `PRAGMA user_version` records how many have run. Never
/// edit a shipped migration: append a new one.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_tokens_and_sessions.sql"),
    include_str!("migrations/0002_token_generation.sql"),
    include_str!("migrations/0003_session_owners.sql"),
    include_str!("migrations/0004_signing_keys.sql"),
    include_str!("migrations/0005_tickets.sql"),
    include_str!("migrations/0006_allowed_actions.sql"),
    include_str!("migrations/0007_es256_signing_keys.sql"),
    include_str!("migrations/0008_session_control.sql"),
    include_str!("migrations/0009_webhooks.sql"),
    include_str!("migrations/0010_hardening.sql"),
];

/// Schema versions of the access log file (see [`SqliteStore::open`]), applied like
/// [`MIGRATIONS`].
const LOG_MIGRATIONS: &[&str] = &[include_str!("migrations/access_log/0001_access_logs.sql")];

/// How long a write waits for another process's transaction before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
const READ_POOL_SIZE: u32 = 8;

pub struct SqliteStore {
    path: PathBuf,
    readers: Pool<SqliteConnectionManager>,
    /// Lease extensions of live sessions, answered at once and written later (see
    /// [`PendingExtensions`]).
    pending: Arc<PendingExtensions>,
    /// This process's view of the sessions table, for re-checks answered from memory.
    live: Arc<Mutex<LiveIndex>>,
    /// Stops the thread that writes pending extensions every [`EXTENSION_FLUSH_EVERY`].
    flusher: Option<(mpsc::Sender<()>, JoinHandle<()>)>,
    writer: Arc<GroupCommit>,
    /// The access log file's own writer.
    log_writer: Arc<GroupCommit>,
}

/// Rows one background job (access log chunk, lease extensions) writes at most: about a
/// millisecond of work, the longest an admission may wait behind one.
const BACKGROUND_CHUNK: usize = 128;

/// How long an answered lease extension may wait before it is written.
const EXTENSION_FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Lease extensions not yet written: token id -> session id -> `(last_seen, expires_at)` in
/// unix micros.
///
/// Re-checks of live sessions are most of the traffic and need no slot, so they are answered from
/// memory and their new leases are written about once a second, many (and repeated re-checks of
/// one session) per statement group. Before the writer counts a token's sessions to admit a new
/// one it writes that token's pending extensions in the same transaction, and before a purge it
/// writes all of them, so no decision ever sees a lease shorter than one this process granted.
/// A crash may lose about a second of extensions: those sessions keep their previous, shorter
/// lease, and a late re-check is then admitted again only if a slot is free.
#[derive(Default)]
struct PendingExtensions(Mutex<HashMap<TokenId, TokenExtensions>>);

/// One token's pending extensions: session id -> `(last_seen, expires_at)`.
type TokenExtensions = HashMap<SessionId, (i64, i64)>;

impl PendingExtensions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TokenId, TokenExtensions>> {
        match self.0.lock() {
            Ok(pending) => pending,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn add(&self, token_id: TokenId, session_id: SessionId, last_seen: i64, expires_at: i64) {
        let mut pending = self.lock();
        let entry = pending
            .entry(token_id)
            .or_default()
            .entry(session_id)
            .or_insert((last_seen, expires_at));
        entry.0 = entry.0.max(last_seen);
        entry.1 = entry.1.max(expires_at);
    }

    /// Sessions with a pending extension.
    fn len(&self) -> usize {
        self.lock().values().map(HashMap::len).sum()
    }

    /// Writes up to `limit` pending extensions (whole tokens at a time) on `conn`. Taken on the
    /// writer thread itself, so every extension is at all times either pending or written.
    fn apply_some(&self, conn: &Connection, limit: usize) -> Result<()> {
        let mut taken: Vec<TokenExtensions> = Vec::new();
        {
            let mut pending = self.lock();
            let mut count = 0;
            // Every token holds at least one extension: `limit` tokens are enough, and copying
            // all of them (tens of thousands) held the lock that every re-check takes.
            let tokens: Vec<TokenId> = pending.keys().copied().take(limit).collect();
            for token_id in tokens {
                if count >= limit {
                    break;
                }
                if let Some(sessions) = pending.remove(&token_id) {
                    count += sessions.len();
                    taken.push(sessions);
                }
            }
        }
        write_extensions(conn, taken)
    }

    /// Writes the pending extensions of `token` (of every token when `None`) on `conn`, inside
    /// the caller's transaction.
    fn apply(&self, conn: &Connection, token: Option<TokenId>) -> Result<()> {
        let taken: Vec<TokenExtensions> = {
            let mut pending = self.lock();
            match token {
                Some(token_id) => pending.remove(&token_id).into_iter().collect(),
                None => pending.drain().map(|(_, sessions)| sessions).collect(),
            }
        };
        write_extensions(conn, taken)
    }
}

fn write_extensions(conn: &Connection, taken: Vec<TokenExtensions>) -> Result<()> {
    if taken.is_empty() {
        return Ok(());
    }
    let mut extend = conn.prepare_cached(
        "UPDATE sessions SET last_seen = MAX(last_seen, ?1), expires_at = MAX(expires_at, ?2) \
         WHERE id = ?3 AND terminated_at IS NULL",
    )?;
    for (session_id, (last_seen, expires_at)) in taken.into_iter().flatten() {
        extend.execute(params![last_seen, expires_at, session_id])?;
    }
    Ok(())
}

/// One database file as the housekeeping thread sees it: its writer, and a connection of its own
/// to checkpoint it from.
struct Housekept {
    path: PathBuf,
    writer: Arc<GroupCommit>,
    checkpointer: Connection,
}

/// The store's housekeeping thread: every [`EXTENSION_FLUSH_EVERY`] it queues the pending lease
/// extensions for the main file's writer, checkpoints both WAL files from its own connections,
/// and steps each writer's WAL size limit down ([`limit_wal`]). Writers run with automatic
/// checkpoints off, so that copying the WAL back into the database (several milliseconds under
/// load) never happens inside a commit that an admission waits for.
fn spawn_flusher(
    pending: Arc<PendingExtensions>,
    main: Housekept,
    log: Housekept,
) -> std::io::Result<(mpsc::Sender<()>, JoinHandle<()>)> {
    let (stop, stopped) = mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("sqlite-housekeeping".into())
        .spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(EXTENSION_FLUSH_EVERY)
            {
                for file in [&main, &log] {
                    // PASSIVE: copies what it can without waiting for, or blocking, anyone.
                    if let Err(err) = file.checkpointer.query_row(
                        "PRAGMA wal_checkpoint(PASSIVE)",
                        [],
                        |_| Ok(()),
                    ) {
                        log::warn!("WAL checkpoint failed: {err}");
                    }
                    let path = file.path.clone();
                    file.writer
                        .submit("limiting the WAL size", move |conn| limit_wal(conn, &path));
                }
                // Small jobs, so that admissions queued meanwhile are not held up behind them.
                for _ in 0..pending.len().div_ceil(BACKGROUND_CHUNK) {
                    let pending = Arc::clone(&pending);
                    main.writer
                        .submit("writing session lease extensions", move |conn| {
                            pending.apply_some(conn, BACKGROUND_CHUNK)
                        });
                }
            }
        })?;
    Ok((stop, thread))
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        if let Some((stop, thread)) = self.flusher.take() {
            drop(stop);
            let _ = thread.join();
        }
        let pending = Arc::clone(&self.pending);
        if let Err(err) = self.writer.run(move |conn| pending.apply(conn, None)) {
            log::error!("writing the last session lease extensions failed: {err}");
        }
    }
}

/// Opens a file's write connection in WAL mode and brings its schema up to date.
fn open_writer(path: &Path, migrations: &[&str]) -> Result<Connection> {
    create_private(path)?;
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // WAL is a property of the file, set once; readers then never block the writer.
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::storage(format!(
            "{} cannot use WAL (journal mode {mode})",
            path.display()
        )));
    }
    configure(&conn)?;
    // Savepoint journals in memory: a temporary file per group cost an open and an unlink.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    migrate(&mut conn, migrations)?;
    // Checkpoints run on the housekeeping thread instead (see `spawn_flusher`).
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    limit_wal(&conn, path)?;
    Ok(conn)
}

/// Creates the file readable by its owner only, unless it exists: it holds token digests,
/// sessions and sealed keys. SQLite gives its `-wal` and `-shm` files the database file's mode.
fn create_private(path: &Path) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(Error::storage(format!(
            "cannot create {}: {err}",
            path.display()
        ))),
    }
}

/// How large a WAL file stays once a checkpoint lets it start over: without a limit it keeps the
/// size of its largest burst for good (a flood of requests left a 986 MB WAL behind).
const JOURNAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// The main file's writer's page cache, in SQLite's negative-KiB form: 8 MiB, filled only as
/// far as the file is large.
const WRITER_CACHE_KIB: i64 = -8 * 1024;

/// How much of a WAL file a writer cuts off at most when the log starts over. SQLite truncates
/// the file in the first commit after the restart, on the writer: cutting a burst's 1 GB WAL
/// back to [`JOURNAL_SIZE_LIMIT`] at once took 300 to 700 ms, a stall every admission queued
/// meanwhile waited out. A step this size takes a few milliseconds; the housekeeping thread
/// lowers each writer's limit by a step a second ([`wal_limit`]) until the file is back under it.
const WAL_SHRINK_STEP: i64 = 16 * 1024 * 1024;

/// The `journal_size_limit` a writer runs with while its WAL file is `wal_size` bytes long.
fn wal_limit(wal_size: u64) -> i64 {
    let size = i64::try_from(wal_size).unwrap_or(i64::MAX);
    JOURNAL_SIZE_LIMIT.max(size.saturating_sub(WAL_SHRINK_STEP))
}

/// Sets the writer's WAL size limit from its file's size now (see [`WAL_SHRINK_STEP`]).
fn limit_wal(conn: &Connection, database: &Path) -> Result<()> {
    let mut wal = database.as_os_str().to_owned();
    wal.push("-wal");
    // No WAL file yet: nothing to cut.
    let size = std::fs::metadata(wal).map_or(0, |meta| meta.len());
    conn.pragma_update(None, "journal_size_limit", wal_limit(size))?;
    Ok(())
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;")?;
    conn.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT)
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and brings its schema up to date. The parent
    /// folder must exist.
    ///
    /// The access log lives in a second file beside it ([`SqliteStore::access_log_path`]): SQLite
    /// has one write lock per file, and bulk log writes must never make an admission wait.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let log_path = Self::access_log_path(&path);
        let writer = open_writer(&path, MIGRATIONS)?;
        // Only this connection writes the file, so the pages it caches stay valid from one
        // transaction to the next; with SQLite's default 2 MiB most pages an admission or a
        // lease extension touched were looked up again in a long WAL (seconds of writes under
        // load). The access log's writer appends: the default serves it.
        writer.pragma_update(None, "cache_size", WRITER_CACHE_KIB)?;
        let log_writer = open_writer(&log_path, LOG_MIGRATIONS)?;
        let live = load_live_index(&writer)?;
        let attach = log_path.clone();
        let manager =
            SqliteConnectionManager::file(&path).with_init(move |conn: &mut Connection| {
                configure(conn)?;
                conn.execute("ATTACH DATABASE ?1 AS log", [attach.to_string_lossy()])
                    .map(drop)
            });
        let readers = Pool::builder()
            .max_size(READ_POOL_SIZE)
            .min_idle(Some(1))
            .connection_timeout(BUSY_TIMEOUT)
            .build(manager)?;
        let thread_error =
            |e: std::io::Error| Error::storage(format!("cannot start an SQLite thread: {e}"));
        let writer = Arc::new(GroupCommit::spawn(writer).map_err(thread_error)?);
        let log_writer = Arc::new(GroupCommit::spawn(log_writer).map_err(thread_error)?);
        let housekept = |path: &Path, writer: &Arc<GroupCommit>| -> Result<Housekept> {
            let checkpointer = Connection::open(path)?;
            configure(&checkpointer)?;
            Ok(Housekept {
                path: path.to_path_buf(),
                writer: Arc::clone(writer),
                checkpointer,
            })
        };
        let pending = Arc::new(PendingExtensions::default());
        let flusher = spawn_flusher(
            Arc::clone(&pending),
            housekept(&path, &writer)?,
            housekept(&log_path, &log_writer)?,
        )
        .map_err(thread_error)?;
        Ok(SqliteStore {
            path,
            pending,
            live: Arc::new(Mutex::new(live)),
            flusher: Some(flusher),
            writer,
            log_writer,
            readers,
        })
    }

    /// The access log file of the database at `path`: `tokens.db` -> `tokens-access-log.db`.
    pub fn access_log_path(path: &Path) -> PathBuf {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        path.with_file_name(format!("{stem}-access-log.db"))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version the file is at.
    pub fn schema_version(&self) -> Result<u32> {
        let conn = self.reader()?;
        Ok(conn.query_row("PRAGMA user_version", [], |row| row.get(0))?)
    }

    fn live(&self) -> std::sync::MutexGuard<'_, LiveIndex> {
        lock_live(&self.live)
    }

    fn reader(&self) -> Result<PooledConnection<SqliteConnectionManager>> {
        Ok(self.readers.get()?)
    }
}

fn load_live_index(conn: &Connection) -> Result<LiveIndex> {
    let mut index = LiveIndex::default();
    let mut rows =
        conn.prepare("SELECT id, owner, session_key, expires_at, terminated_at FROM sessions")?;
    let sessions = rows.query_map([], |row| {
        Ok((
            row.get::<_, SessionId>(0)?,
            row.get::<_, TokenId>(1)?,
            row.get::<_, String>(2)?,
            row.get::<_, i64>(3)?,
            row.get::<_, Option<i64>>(4)?.is_some(),
        ))
    })?;
    for session in sessions {
        let (id, token_id, key, expires_at, terminated) = session?;
        index.insert(token_id, &key, id, expires_at, terminated);
    }
    Ok(index)
}

fn migrate(conn: &mut Connection, migrations: &[&str]) -> Result<()> {
    let applied: usize = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if applied > migrations.len() {
        return Err(Error::storage(format!(
            "the database is at schema version {applied}, newer than this build knows ({})",
            migrations.len()
        )));
    }
    for (index, sql) in migrations.iter().enumerate().skip(applied) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index + 1)?;
        tx.commit()?;
        log::info!("applied schema migration {}", index + 1);
    }
    Ok(())
}

fn corrupt(what: &str, detail: impl std::fmt::Display) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(
        format!("corrupt {what} in the database: {detail}").into(),
    )
}

/// A WHERE clause built from optional filters, with its parameters in order.
#[derive(Default)]
struct Where {
    clauses: Vec<&'static str>,
    values: Vec<SqlValue>,
}

impl Where {
    fn add(&mut self, clause: &'static str, values: impl IntoIterator<Item = SqlValue>) {
        self.clauses.push(clause);
        self.values.extend(values);
    }

    fn text(&mut self, clause: &'static str, value: Option<&str>) {
        if let Some(value) = value {
            self.add(clause, [SqlValue::Text(value.to_owned())]);
        }
    }

    fn integer(&mut self, clause: &'static str, value: Option<i64>) {
        if let Some(value) = value {
            self.add(clause, [SqlValue::Integer(value)]);
        }
    }

    fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
    }

    /// Runs `SELECT COUNT(*)` and then the page query (`{select} {where} {order} LIMIT ? OFFSET ?`)
    /// for the `(limit, offset)` window.
    fn page<T>(
        mut self,
        conn: &Connection,
        table: &str,
        select: &str,
        order: &str,
        (limit, offset): (u32, u32),
        map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Page<T>> {
        let filter = self.sql();
        let total: i64 = conn
            .prepare_cached(&format!("SELECT COUNT(*) FROM {table} {filter}"))?
            .query_row(params_from_iter(self.values.iter()), |row| row.get(0))?;
        self.values
            .push(SqlValue::Integer(i64::from(clamp_limit(limit))));
        self.values.push(SqlValue::Integer(i64::from(offset)));
        let sql =
            format!("SELECT {select} FROM {table} {filter} ORDER BY {order} LIMIT ? OFFSET ?");
        let items = conn
            .prepare_cached(&sql)?
            .query_map(params_from_iter(self.values.iter()), map)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(Page {
            items,
            total: u64::try_from(total).unwrap_or_default(),
        })
    }
}

fn lock_live(live: &Mutex<LiveIndex>) -> std::sync::MutexGuard<'_, LiveIndex> {
    // The index is rebuilt from plain inserts and removals: a panic elsewhere cannot leave it
    // half-updated in a way that matters more than a stale entry.
    match live.lock() {
        Ok(index) => index,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// A [`SessionClaim`] that can travel to the writer thread.
struct OwnedClaim {
    owner: SessionOwner,
    key: String,
    max_sessions: u32,
    user_id: String,
    stream: String,
    ip: String,
    proto: String,
    source: String,
    media_session_id: Option<String>,
    evict_oldest: bool,
}

impl From<&SessionClaim<'_>> for OwnedClaim {
    fn from(claim: &SessionClaim<'_>) -> Self {
        OwnedClaim {
            owner: claim.owner,
            key: claim.key.to_owned(),
            max_sessions: claim.max_sessions,
            user_id: claim.user_id.to_owned(),
            stream: claim.stream.to_owned(),
            ip: claim.ip.to_string(),
            proto: claim.proto.to_owned(),
            source: claim.source.to_owned(),
            media_session_id: claim.media_session_id.map(str::to_owned),
            evict_oldest: claim.evict_oldest,
        }
    }
}

impl OwnedClaim {
    /// What the webhooks tell of the session this claim opened.
    fn facts(&self, id: SessionId, now: Timestamp) -> crate::webhook::SessionFacts<'_> {
        crate::webhook::SessionFacts {
            id,
            token_id: self.owner.token_id(),
            user_id: &self.user_id,
            stream: &self.stream,
            ip: &self.ip,
            proto: &self.proto,
            source: &self.source,
            started_at: now,
        }
    }
}

impl Health for SqliteStore {
    /// Checks both paths a decision needs: a pooled read, and that the write lock can be taken
    /// (a database locked by another process answers reads but not admissions).
    /// Checks both paths a decision needs: a pooled read, and a round trip through the writer
    /// (which takes SQLite's write lock: a database locked by another process answers reads but
    /// not admissions).
    fn ping(&self) -> Result<()> {
        self.reader()?.query_row("SELECT 1", [], |_| Ok(()))?;
        self.writer.run(|_| Ok(()))
    }
}

#[cfg(test)]
mod tests;
