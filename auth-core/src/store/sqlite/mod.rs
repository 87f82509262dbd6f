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
    Action, ActionSet, IpAllowList, NewToken, StreamAllowList, Token, TokenId, TokenPatch,
    TokenStatus,
};
use crate::token::{TokenFilter, Upsert};

mod access_log;
#[cfg(feature = "tickets")]
mod accounts;
#[cfg(feature = "tickets")]
mod events;
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
#[cfg(test)]
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
    log_writer: GroupCommit,
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
            let tokens: Vec<TokenId> = pending.keys().copied().collect();
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

/// The store's housekeeping thread: every [`EXTENSION_FLUSH_EVERY`] it queues the pending lease
/// extensions for the writer, and checkpoints both WAL files from its own connections. Writers
/// run with automatic checkpoints off, so that copying the WAL back into the database (several
/// milliseconds under load) never happens inside a commit that an admission waits for.
fn spawn_flusher(
    pending: Arc<PendingExtensions>,
    writer: Arc<GroupCommit>,
    checkpoint: Vec<Connection>,
) -> std::io::Result<(mpsc::Sender<()>, JoinHandle<()>)> {
    let (stop, stopped) = mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("sqlite-housekeeping".into())
        .spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(EXTENSION_FLUSH_EVERY)
            {
                for conn in &checkpoint {
                    // PASSIVE: copies what it can without waiting for, or blocking, anyone.
                    if let Err(err) =
                        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        log::warn!("WAL checkpoint failed: {err}");
                    }
                }
                // Small jobs, so that admissions queued meanwhile are not held up behind them.
                for _ in 0..pending.len().div_ceil(BACKGROUND_CHUNK) {
                    let pending = Arc::clone(&pending);
                    writer.submit("writing session lease extensions", move |conn| {
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
    migrate(&mut conn, migrations)?;
    // Checkpoints run on the housekeeping thread instead (see `spawn_flusher`).
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    Ok(conn)
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;")
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
        let checkpointers = vec![Connection::open(&path)?, Connection::open(&log_path)?];
        for conn in &checkpointers {
            configure(conn)?;
        }
        let writer = Arc::new(GroupCommit::spawn(writer).map_err(thread_error)?);
        let log_writer = GroupCommit::spawn(log_writer).map_err(thread_error)?;
        let pending = Arc::new(PendingExtensions::default());
        let flusher = spawn_flusher(Arc::clone(&pending), Arc::clone(&writer), checkpointers)
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

const TOKEN_COLUMNS: &str = "id, token_hash, user_id, status, max_sessions, allowed_ips, \
     allowed_streams, valid_from, valid_until, meta, created_at, updated_at, token_prefix, \
     allowed_actions";

fn corrupt(what: &str, detail: impl std::fmt::Display) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(
        format!("corrupt {what} in the database: {detail}").into(),
    )
}

fn token_from_row(row: &Row<'_>) -> rusqlite::Result<Token> {
    let status: String = row.get(3)?;
    let ips: String = row.get(5)?;
    let streams: String = row.get(6)?;
    let meta: String = row.get(9)?;
    let actions: String = row.get(13)?;
    let actions: Vec<Action> =
        serde_json::from_str(&actions).map_err(|e| corrupt("allowed_actions", e))?;
    let ips: Vec<String> = serde_json::from_str(&ips).map_err(|e| corrupt("allowed_ips", e))?;
    let streams: Vec<String> =
        serde_json::from_str(&streams).map_err(|e| corrupt("allowed_streams", e))?;
    Ok(Token {
        id: row.get(0)?,
        digest: SecretDigest(row.get(1)?),
        token_prefix: row.get(12)?,
        user_id: row.get(2)?,
        status: status
            .parse::<TokenStatus>()
            .map_err(|e| corrupt("status", e))?,
        max_sessions: row.get(4)?,
        allowed_ips: IpAllowList::parse(&ips).map_err(|e| corrupt("allowed_ips", e))?,
        allowed_streams: StreamAllowList::parse(&streams)
            .map_err(|e| corrupt("allowed_streams", e))?,
        allowed_actions: ActionSet::parse(&actions).map_err(|e| corrupt("allowed_actions", e))?,
        valid_from: row
            .get::<_, Option<i64>>(7)?
            .map(Timestamp::from_unix_micros),
        valid_until: row
            .get::<_, Option<i64>>(8)?
            .map(Timestamp::from_unix_micros),
        meta: serde_json::from_str::<Map<String, Value>>(&meta).map_err(|e| corrupt("meta", e))?,
        created_at: Timestamp::from_unix_micros(row.get(10)?),
        updated_at: Timestamp::from_unix_micros(row.get(11)?),
    })
}

/// A token's settings as SQL values, in `SETTINGS_ASSIGNMENTS` order.
fn settings_values(token: &Token) -> Result<[SqlValue; 9]> {
    let json = |v: serde_json::Result<String>| {
        v.map_err(|e| Error::storage(format!("encoding JSON: {e}")))
    };
    Ok([
        SqlValue::Text(token.user_id.clone()),
        SqlValue::Text(token.status.as_str().to_owned()),
        SqlValue::Integer(i64::from(token.max_sessions)),
        SqlValue::Text(json(serde_json::to_string(&token.allowed_ips))?),
        SqlValue::Text(json(serde_json::to_string(&token.allowed_streams))?),
        token
            .valid_from
            .map_or(SqlValue::Null, |t| SqlValue::Integer(t.unix_micros())),
        token
            .valid_until
            .map_or(SqlValue::Null, |t| SqlValue::Integer(t.unix_micros())),
        SqlValue::Text(json(serde_json::to_string(&token.meta))?),
        SqlValue::Text(json(serde_json::to_string(&token.allowed_actions))?),
    ])
}

const SETTINGS_ASSIGNMENTS: &str =
    "user_id = ?1, status = ?2, max_sessions = ?3, allowed_ips = ?4, \
     allowed_streams = ?5, valid_from = ?6, valid_until = ?7, meta = ?8, allowed_actions = ?9";

fn select_token(
    conn: &Connection,
    clause: &str,
    param: &dyn rusqlite::ToSql,
) -> Result<Option<Token>> {
    let sql = format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE {clause}");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([param], token_from_row)
        .optional()?)
}

fn insert_token(conn: &Connection, new: NewToken, now: Timestamp) -> Result<Token> {
    let mut token = new.into_token(0, now, now);
    let values = settings_values(&token)?;
    let result = conn
        .prepare_cached(
            "INSERT INTO tokens (user_id, status, max_sessions, allowed_ips, allowed_streams, \
             valid_from, valid_until, meta, allowed_actions, token_hash, token_prefix, \
             created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)",
        )?
        .execute(params_from_iter(values.iter().chain([
            &SqlValue::Blob(token.digest.0.to_vec()),
            &SqlValue::Text(token.token_prefix.clone()),
            &SqlValue::Integer(now.unix_micros()),
        ])));
    match result {
        Ok(_) => {
            token.id = conn.last_insert_rowid();
            Ok(token)
        }
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Err(Error::Conflict {
                field: "token",
                message: "a token with this value already exists".into(),
            })
        }
        Err(e) => Err(e.into()),
    }
}

fn write_settings(conn: &Connection, token: &Token) -> Result<()> {
    let values = settings_values(token)?;
    let sql = format!("UPDATE tokens SET {SETTINGS_ASSIGNMENTS}, updated_at = ?10 WHERE id = ?11");
    conn.prepare_cached(&sql)?
        .execute(params_from_iter(values.iter().chain([
            &SqlValue::Integer(token.updated_at.unix_micros()),
            &SqlValue::Integer(token.id),
        ])))?;
    Ok(())
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

const ACCESS_LOG_COLUMNS: &str = "id, at, token_id, token_prefix, user_id, stream, ip, proto, \
     request_type, session_id, result, reason, latency_us";

const SESSION_COLUMNS: &str =
    "id, owner, session_key, user_id, stream, ip, proto, started_at, last_seen, expires_at, terminated_at";

fn session_from_row(row: &Row<'_>) -> rusqlite::Result<Session> {
    let owner = SessionOwner::from_raw(row.get(1)?);
    Ok(Session {
        id: row.get(0)?,
        token_id: owner.token_id(),
        owner,
        key: row.get(2)?,
        user_id: row.get(3)?,
        stream: row.get(4)?,
        ip: row.get(5)?,
        proto: row.get(6)?,
        started_at: Timestamp::from_unix_micros(row.get(7)?),
        last_seen: Timestamp::from_unix_micros(row.get(8)?),
        expires_at: Timestamp::from_unix_micros(row.get(9)?),
        terminated_at: row
            .get::<_, Option<i64>>(10)?
            .map(Timestamp::from_unix_micros),
    })
}

/// Whether the stored token `id` exists; true for a signed token's owner (`None`), which has no row.
fn token_exists(conn: &Connection, id: Option<TokenId>) -> Result<bool> {
    let Some(id) = id else { return Ok(true) };
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM tokens WHERE id = ?1)")?
        .query_row([id], |row| row.get(0))?)
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
mod tests {
    use super::*;
    #[allow(unused_imports)]
    use crate::prelude::*;

    fn hasher() -> crate::secret::TokenHasher {
        crate::secret::TokenHasher::new(&[9u8; 32]).unwrap()
    }

    fn temp_store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("auth.db")).unwrap();
        (dir, store)
    }

    crate::store_suite!({
        let (dir, store) = temp_store();
        crate::store::testkit::Guarded(dir, store)
    });
    #[cfg(feature = "tickets")]
    crate::ticketing_suite!({
        let (dir, store) = temp_store();
        crate::store::testkit::Guarded(dir, store)
    });

    #[test]
    fn lease_extensions_answered_from_a_read_are_written_by_close() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.db");
        let t0 = crate::store::testkit::T0;
        let later = t0.saturating_add(std::time::Duration::from_secs(100));
        let lease = |t: Timestamp| t.saturating_add(std::time::Duration::from_secs(210));
        {
            let store = SqliteStore::open(&path).unwrap();
            let token = store
                .create_token(crate::store::testkit::spec("extend-me-1", "u", 1), t0)
                .unwrap();
            let claim = SessionClaim {
                owner: crate::session::SessionOwner::token(token.id),
                key: "id:a",
                max_sessions: 1,
                user_id: "u",
                stream: "s",
                ip: std::net::IpAddr::from([10, 0, 0, 1]),
                proto: "hls",
            };
            assert!(matches!(
                store.admit_session(&claim, t0, lease(t0)).unwrap(),
                Admission::Admitted { .. }
            ));
            assert!(matches!(
                store.admit_session(&claim, later, lease(later)).unwrap(),
                Admission::Extended { .. }
            ));
        }
        let store = SqliteStore::open(&path).unwrap();
        let sessions = store
            .sessions(&crate::session::SessionFilter::default(), t0)
            .unwrap();
        assert_eq!(
            sessions[0].expires_at,
            lease(later),
            "the extension was written before the store closed"
        );
        assert_eq!(sessions[0].last_seen, later);
    }

    /// Migration 3 rebuilds the sessions table: live sessions of a database made before it keep
    /// their ids, owners and slots, and deleting their token still removes them.
    #[test]
    fn sessions_survive_the_owner_migration() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.db");
        let t0 = crate::store::testkit::T0;
        let lease = t0.saturating_add(std::time::Duration::from_secs(210));
        {
            let mut conn = Connection::open(&path).unwrap();
            configure(&conn).unwrap();
            migrate(&mut conn, &MIGRATIONS[..2]).unwrap();
            conn.execute_batch(&format!(
                "INSERT INTO tokens (id, token_hash, token_prefix, user_id, status, max_sessions, \
                 created_at, updated_at) VALUES (7, x'00', 'ab', 'u', 'active', 1, 0, 0);
                 INSERT INTO sessions (id, token_id, session_key, user_id, stream, ip, proto, \
                 started_at, last_seen, expires_at) \
                 VALUES (41, 7, 'id:a', 'u', 's', '10.0.0.1', 'hls', 0, 0, {});",
                lease.unix_micros()
            ))
            .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let sessions = store
            .sessions(&crate::session::SessionFilter::default(), t0)
            .unwrap();
        assert_eq!(sessions.len(), 1);
        assert_eq!(
            (sessions[0].id, sessions[0].token_id, sessions[0].owner),
            (41, Some(7), SessionOwner::token(7))
        );
        let claim = |key| SessionClaim {
            owner: SessionOwner::token(7),
            key,
            max_sessions: 1,
            user_id: "u",
            stream: "s",
            ip: std::net::IpAddr::from([10, 0, 0, 1]),
            proto: "hls",
        };
        assert_eq!(
            store.admit_session(&claim("id:a"), t0, lease).unwrap(),
            Admission::Extended { session_id: 41 }
        );
        assert!(matches!(
            store.admit_session(&claim("id:b"), t0, lease).unwrap(),
            Admission::LimitReached { live: 1 }
        ));
        assert!(store.delete_token(7).unwrap());
        assert!(store
            .sessions(&crate::session::SessionFilter::default(), t0)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn rechecks_of_live_sessions_are_answered_from_memory_and_follow_every_session_write() {
        let (_dir, store) = temp_store();
        let t0 = crate::store::testkit::T0;
        let lease = t0.saturating_add(std::time::Duration::from_secs(210));
        let token = store
            .create_token(crate::store::testkit::spec("memory-path-1", "u", 2), t0)
            .unwrap();
        let claim = |key: &'static str| SessionClaim {
            owner: crate::session::SessionOwner::token(token.id),
            key,
            max_sessions: 2,
            user_id: "u",
            stream: "s",
            ip: std::net::IpAddr::from([10, 0, 0, 1]),
            proto: "hls",
        };
        assert!(
            store
                .try_admit_without_blocking(&claim("id:a"), t0, lease)
                .is_none(),
            "new: the database decides"
        );
        let Admission::Admitted { session_id } =
            store.admit_session(&claim("id:a"), t0, lease).unwrap()
        else {
            panic!("not admitted")
        };
        let fast = store
            .try_admit_without_blocking(&claim("id:a"), t0, lease)
            .unwrap()
            .unwrap();
        assert_eq!(fast, Admission::Extended { session_id });
        store.terminate_session(session_id, t0).unwrap();
        let fast = store
            .try_admit_without_blocking(&claim("id:a"), t0, lease)
            .unwrap()
            .unwrap();
        assert_eq!(fast, Admission::Terminated { session_id });
        store.end_session(session_id).unwrap();
        assert!(store
            .try_admit_without_blocking(&claim("id:a"), t0, lease)
            .is_none());
        let Admission::Admitted { .. } = store.admit_session(&claim("id:b"), t0, lease).unwrap()
        else {
            panic!()
        };
        store.delete_token(token.id).unwrap();
        assert!(
            store
                .try_admit_without_blocking(&claim("id:b"), t0, lease)
                .is_none(),
            "gone with its token"
        );
    }

    #[test]
    fn the_memory_view_is_rebuilt_when_the_file_is_reopened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.db");
        let t0 = crate::store::testkit::T0;
        let lease = t0.saturating_add(std::time::Duration::from_secs(210));
        let claim_of = |token_id| SessionClaim {
            owner: crate::session::SessionOwner::token(token_id),
            key: "id:a",
            max_sessions: 1,
            user_id: "u",
            stream: "s",
            ip: std::net::IpAddr::from([10, 0, 0, 1]),
            proto: "hls",
        };
        let token_id = {
            let store = SqliteStore::open(&path).unwrap();
            let token = store
                .create_token(crate::store::testkit::spec("reopen-me-1", "u", 1), t0)
                .unwrap();
            store.admit_session(&claim_of(token.id), t0, lease).unwrap();
            token.id
        };
        let store = SqliteStore::open(&path).unwrap();
        assert!(matches!(
            store.try_admit_without_blocking(&claim_of(token_id), t0, lease),
            Some(Ok(Admission::Extended { .. }))
        ));
    }

    #[test]
    fn migrations_are_versioned_and_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.db");
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap() as usize, MIGRATIONS.len());
        drop(store);
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap() as usize, MIGRATIONS.len());
    }

    // hooks: allowed_actions
    #[test]
    fn tokens_made_before_allowed_actions_may_only_play() {
        use crate::token::Action;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.db");
        let before = MIGRATIONS
            .iter()
            .position(|sql| sql.contains("allowed_actions"))
            .unwrap();
        {
            let mut conn = Connection::open(&path).unwrap();
            migrate(&mut conn, &MIGRATIONS[..before]).unwrap();
            conn.execute(
                "INSERT INTO tokens (token_hash, token_prefix, user_id, status, created_at, \
                 updated_at) VALUES (?1, 'old', 'legacy', 'active', 0, 0)",
                [vec![7u8; 32]],
            )
            .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let token = store.list_tokens(&TokenFilter::default()).unwrap().items;
        assert_eq!(token.len(), 1);
        assert!(token[0].allowed_actions.allows(Action::Play));
        assert!(!token[0].allowed_actions.allows(Action::Publish));
    }

    #[test]
    fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.db");
        drop(SqliteStore::open(&path).unwrap());
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        let err = SqliteStore::open(&path)
            .err()
            .expect("a newer schema must be refused");
        assert!(err.to_string().contains("newer"), "{err}");
    }

    #[test]
    fn data_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.db");
        let now = Timestamp::from_unix_seconds(1_800_000_000);
        {
            let store = SqliteStore::open(&path).unwrap();
            let spec = crate::token::TokenSpec {
                token: Some("persist-me-1".into()),
                user_id: "u".into(),
                allowed_ips: vec!["10.0.0.0/8".into()],
                ..Default::default()
            };
            store
                .create_token(spec.validate(&hasher()).unwrap().0, now)
                .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let digest = hasher().digest("persist-me-1");
        let token = store.token_by_digest(&digest).unwrap().unwrap();
        assert_eq!(
            token.allowed_ips.entries().collect::<Vec<_>>(),
            ["10.0.0.0/8"]
        );
    }
}
