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
use super::tickets_sqlite as tickets;
use super::{
    clamp_limit, AccessLogFilter, AccessStats, Page, SessionFilter, Store, TokenFilter, Upsert,
};
use crate::access_log::{AccessLogEntry, AccessLogRecord, AccessResult, StoredEntry};
use crate::account::{Account, AccountId, AccountPatch, EventStanding, NewAccount};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::event::{Event, EventFilter, EventId, EventPatch, NewEvent, RosterEntry, RosterRole};
use crate::secret::SecretDigest;
use crate::session::{Admission, Session, SessionClaim, SessionId, SessionOwner};
use crate::signed_token::keys::StoredSigningKey;
use crate::signed_token::Algorithm;
use crate::ticket::{NewTicket, Ticket, TicketId, TicketUse};
use crate::token::{
    Action, ActionSet, IpAllowList, NewToken, StreamAllowList, Token, TokenId, TokenPatch,
    TokenStatus,
};

mod transfer;
#[cfg(test)]
pub(crate) use transfer::table_columns;

/// Schema versions, applied in order; `PRAGMA user_version` records how many have run. Never
/// edit a shipped migration: append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: tokens and sessions.
    r#"
    CREATE TABLE tokens (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        token_hash      BLOB    NOT NULL UNIQUE, -- HMAC-SHA256 of the secret; never the secret
        token_prefix    TEXT    NOT NULL,
        user_id         TEXT    NOT NULL,
        status          TEXT    NOT NULL CHECK (status IN ('active', 'suspended', 'expired')),
        max_sessions    INTEGER NOT NULL DEFAULT 0 CHECK (max_sessions >= 0),
        allowed_ips     TEXT    NOT NULL DEFAULT '[]',
        allowed_streams TEXT    NOT NULL DEFAULT '[]',
        valid_from      INTEGER,
        valid_until     INTEGER,
        meta            TEXT    NOT NULL DEFAULT '{}',
        created_at      INTEGER NOT NULL,
        updated_at      INTEGER NOT NULL
    );
    CREATE INDEX tokens_user_id ON tokens (user_id);
    CREATE INDEX tokens_status ON tokens (status);

    CREATE TABLE sessions (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        token_id      INTEGER NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
        session_key   TEXT    NOT NULL,
        user_id       TEXT    NOT NULL,
        stream        TEXT    NOT NULL,
        ip            TEXT    NOT NULL,
        proto         TEXT    NOT NULL,
        started_at    INTEGER NOT NULL,
        last_seen     INTEGER NOT NULL,
        expires_at    INTEGER NOT NULL,
        terminated_at INTEGER,
        UNIQUE (token_id, session_key)
    );
    CREATE INDEX sessions_token_expiry ON sessions (token_id, expires_at);
    CREATE INDEX sessions_expiry ON sessions (expires_at);

    "#,
    // 2: a counter bumped by every token write, from any process, so that in-process token
    // caches notice changes made elsewhere (the CLI, another server on the same file).
    r#"
    CREATE TABLE token_generation (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL);
    INSERT INTO token_generation (id, value) VALUES (1, 0);
    CREATE TRIGGER tokens_generation_insert AFTER INSERT ON tokens
        BEGIN UPDATE token_generation SET value = value + 1 WHERE id = 1; END;
    CREATE TRIGGER tokens_generation_update AFTER UPDATE ON tokens
        BEGIN UPDATE token_generation SET value = value + 1 WHERE id = 1; END;
    CREATE TRIGGER tokens_generation_delete AFTER DELETE ON tokens
        BEGIN UPDATE token_generation SET value = value + 1 WHERE id = 1; END;
    "#,
    // 3 (signed tokens): a session belongs to an `owner`, the number admission counts and keys
    // by: a token's id, or (negative) a signed token's, which has no row. `token_id` keeps the
    // foreign key (and its cascade) for the sessions of stored tokens and is NULL for the others.
    // SQLite cannot drop a NOT NULL or a UNIQUE in place, so the table is rebuilt; `owner` comes
    // last, where PostgreSQL's ADD COLUMN puts it, so exports of both list the same columns.
    r#"
    CREATE TABLE sessions_v3 (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        token_id      INTEGER REFERENCES tokens (id) ON DELETE CASCADE,
        session_key   TEXT    NOT NULL,
        user_id       TEXT    NOT NULL,
        stream        TEXT    NOT NULL,
        ip            TEXT    NOT NULL,
        proto         TEXT    NOT NULL,
        started_at    INTEGER NOT NULL,
        last_seen     INTEGER NOT NULL,
        expires_at    INTEGER NOT NULL,
        terminated_at INTEGER,
        owner         INTEGER NOT NULL,
        CHECK (CASE WHEN owner > 0 THEN token_id = owner ELSE token_id IS NULL END),
        UNIQUE (owner, session_key)
    );
    INSERT INTO sessions_v3 (id, token_id, session_key, user_id, stream, ip, proto,
                             started_at, last_seen, expires_at, terminated_at, owner)
        SELECT id, token_id, session_key, user_id, stream, ip, proto,
               started_at, last_seen, expires_at, terminated_at, token_id FROM sessions;
    DROP TABLE sessions;
    ALTER TABLE sessions_v3 RENAME TO sessions;
    CREATE INDEX sessions_owner_expiry ON sessions (owner, expires_at);
    CREATE INDEX sessions_token ON sessions (token_id);
    CREATE INDEX sessions_expiry ON sessions (expires_at);
    "#,
    // 4 (signed tokens): the key ring. Secrets are sealed (see `signed_token::keys`): a copy of
    // the file alone does not let anyone mint tokens.
    r#"
    CREATE TABLE signing_keys (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        kid           TEXT    NOT NULL UNIQUE,
        algorithm     TEXT    NOT NULL CHECK (algorithm IN ('hs256', 'ed25519')),
        public_key    BLOB,
        sealed_secret BLOB    NOT NULL,
        created_at    INTEGER NOT NULL,
        retired_at    INTEGER
    );
    "#,
    // 5: event tickets (accounts, events, rosters, tickets).
    super::tickets_sqlite::MIGRATION,
    // 6: what each token allows (play, publish); tokens made before it could only play.
    r#"
    ALTER TABLE tokens ADD COLUMN allowed_actions TEXT NOT NULL DEFAULT '["play"]';
    "#,
];

/// Schema versions of the access log file (see [`SqliteStore::open`]), applied like
/// [`MIGRATIONS`].
const LOG_MIGRATIONS: &[&str] = &[
    // 1: access logs.
    r#"
    CREATE TABLE access_logs (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        at           INTEGER NOT NULL,
        token_id     INTEGER,
        token_prefix TEXT,
        user_id      TEXT,
        stream       TEXT    NOT NULL,
        ip           TEXT    NOT NULL,
        proto        TEXT    NOT NULL,
        request_type TEXT    NOT NULL,
        session_id   TEXT,
        result       TEXT    NOT NULL,
        reason       TEXT,
        latency_us   INTEGER NOT NULL
    );
    CREATE INDEX access_logs_at ON access_logs (at);
    CREATE INDEX access_logs_token ON access_logs (token_id, id);
    "#,
];

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

impl Store for SqliteStore {
    fn create_token(&self, new: NewToken, now: Timestamp) -> Result<Token> {
        self.writer.run(move |conn| insert_token(conn, new, now))
    }

    fn upsert_token(&self, new: NewToken, now: Timestamp) -> Result<(Token, Upsert)> {
        self.writer.run(move |conn| {
            Ok(
                match select_token(conn, "token_hash = ?1", &new.digest.0)? {
                    None => (insert_token(conn, new, now)?, Upsert::Created),
                    Some(existing) if new.matches(&existing) => (existing, Upsert::Unchanged),
                    Some(existing) => {
                        let token = new.into_token(existing.id, existing.created_at, now);
                        write_settings(conn, &token)?;
                        (token, Upsert::Updated)
                    }
                },
            )
        })
    }

    fn token(&self, id: TokenId) -> Result<Option<Token>> {
        select_token(&*self.reader()?, "id = ?1", &id)
    }

    fn token_by_digest(&self, digest: &SecretDigest) -> Result<Option<Arc<Token>>> {
        Ok(select_token(&*self.reader()?, "token_hash = ?1", &digest.0)?.map(Arc::new))
    }

    fn token_generation(&self) -> Result<u64> {
        let conn = self.reader()?;
        let value: i64 = conn
            .prepare_cached("SELECT value FROM token_generation WHERE id = 1")?
            .query_row([], |row| row.get(0))?;
        Ok(u64::try_from(value).unwrap_or_default())
    }

    fn list_tokens(&self, filter: &TokenFilter) -> Result<Page<Token>> {
        let mut filters = Where::default();
        filters.text("status = ?", filter.status.map(TokenStatus::as_str));
        filters.text("user_id = ?", filter.user_id.as_deref());
        if let Some(prefix) = &filter.user_id_prefix {
            // Not LIKE: it is case-insensitive and treats `%`/`_` in the prefix as wildcards.
            filters.add(
                "substr(user_id, 1, ?) = ?",
                [
                    SqlValue::Integer(prefix.chars().count() as i64),
                    SqlValue::Text(prefix.clone()),
                ],
            );
        }
        let conn = self.reader()?;
        filters.page(
            &conn,
            "tokens",
            TOKEN_COLUMNS,
            "id",
            (filter.limit, filter.offset),
            token_from_row,
        )
    }

    fn update_token(&self, id: TokenId, patch: TokenPatch, now: Timestamp) -> Result<Token> {
        self.writer.run(move |conn| {
            let mut token =
                select_token(conn, "id = ?1", &id)?.ok_or(Error::NotFound { what: "token" })?;
            patch.apply(&mut token)?;
            token.updated_at = now;
            write_settings(conn, &token)?;
            Ok(token)
        })
    }

    fn delete_token(&self, id: TokenId) -> Result<bool> {
        let live = Arc::clone(&self.live);
        // Sessions go with it through ON DELETE CASCADE.
        self.writer.run_then(
            move |conn| {
                let deleted = conn
                    .prepare_cached("DELETE FROM tokens WHERE id = ?1")?
                    .execute([id])?;
                Ok(deleted > 0)
            },
            move |&deleted| {
                if deleted {
                    lock_live(&live).remove_token(id);
                }
            },
        )
    }

    fn admit_session(
        &self,
        claim: &SessionClaim<'_>,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Admission> {
        if let Some(answer) = self.try_admit_without_blocking(claim, now, lease_until) {
            return answer;
        }
        let claim = OwnedClaim::from(claim);
        let (owner, key) = (claim.owner.raw(), claim.key.clone());
        let pending = Arc::clone(&self.pending);
        let live = Arc::clone(&self.live);
        let until_us = lease_until.unix_micros();
        let on_commit = move |admission: &Admission| {
            let mut index = lock_live(&live);
            match *admission {
                Admission::Admitted { session_id } | Admission::Extended { session_id } => {
                    index.insert(owner, &key, session_id, until_us, false)
                }
                Admission::Terminated { session_id } => {
                    index.insert(owner, &key, session_id, until_us, true)
                }
                Admission::LimitReached { .. } => {}
            }
        };
        self.writer.run_then(move |conn| {
            pending.apply(conn, Some(owner))?;
            let (now_us, until_us) = (now.unix_micros(), lease_until.unix_micros());
            let existing: Option<(SessionId, i64, Option<i64>)> = conn
                .prepare_cached(
                    "SELECT id, expires_at, terminated_at FROM sessions WHERE owner = ?1 AND session_key = ?2",
                )?
                .query_row(params![owner, claim.key], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
                .optional()?;
            let admission = match existing {
                Some((session_id, expires_at, terminated)) if expires_at > now_us => {
                    if terminated.is_some() {
                        Admission::Terminated { session_id }
                    } else {
                        conn.prepare_cached(
                            "UPDATE sessions SET last_seen = ?1, expires_at = ?2 WHERE id = ?3",
                        )?
                        .execute(params![now_us, until_us, session_id])?;
                        Admission::Extended { session_id }
                    }
                }
                _ if !token_exists(conn, claim.owner.token_id())? => {
                    // Deleted since the caller looked it up: it holds no slot. Not the foreign key
                    // error the insert would raise: a server failing open would allow an error.
                    Admission::LimitReached { live: 0 }
                }
                _ => {
                    let live: i64 = if claim.max_sessions == 0 {
                        0
                    } else {
                        conn.prepare_cached(
                            "SELECT COUNT(*) FROM sessions \
                             WHERE owner = ?1 AND expires_at > ?2 AND terminated_at IS NULL",
                        )?
                        .query_row(params![owner, now_us], |row| row.get(0))?
                    };
                    if claim.max_sessions > 0 && live >= i64::from(claim.max_sessions) {
                        Admission::LimitReached {
                            live: u32::try_from(live).unwrap_or(u32::MAX),
                        }
                    } else {
                        // A dead lease under the same key is replaced by the new session.
                        let session_id: SessionId = conn
                            .prepare_cached(
                                "INSERT INTO sessions (owner, token_id, session_key, user_id, stream, ip, proto, \
                                 started_at, last_seen, expires_at, terminated_at) \
                                 VALUES (?1, ?9, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, NULL) \
                                 ON CONFLICT (owner, session_key) DO UPDATE SET \
                                 user_id = excluded.user_id, stream = excluded.stream, ip = excluded.ip, \
                                 proto = excluded.proto, started_at = excluded.started_at, \
                                 last_seen = excluded.last_seen, expires_at = excluded.expires_at, \
                                 terminated_at = NULL \
                                 RETURNING id",
                            )?
                            .query_row(
                                params![
                                    owner,
                                    claim.key,
                                    claim.user_id,
                                    claim.stream,
                                    claim.ip,
                                    claim.proto,
                                    now_us,
                                    until_us,
                                    claim.owner.token_id()
                                ],
                                |row| row.get(0),
                            )?;
                        Admission::Admitted { session_id }
                    }
                }
            };
            Ok(admission)
        }, on_commit)
    }

    fn try_admit_without_blocking(
        &self,
        claim: &SessionClaim<'_>,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Option<Result<Admission>> {
        let (now_us, until_us) = (now.unix_micros(), lease_until.unix_micros());
        let admission = self
            .live()
            .recheck(claim.owner.raw(), claim.key, now_us, until_us)?;
        if let Admission::Extended { session_id } = admission {
            self.pending
                .add(claim.owner.raw(), session_id, now_us, until_us);
        }
        Some(Ok(admission))
    }

    fn sessions(&self, filter: &SessionFilter, now: Timestamp) -> Result<Vec<Session>> {
        let mut filters = Where::default();
        filters.integer("expires_at > ?", Some(now.unix_micros()));
        filters.integer("token_id = ?", filter.token_id);
        filters.text("user_id = ?", filter.user_id.as_deref());
        filters.text("stream = ?", filter.stream.as_deref());
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions {} ORDER BY id",
            filters.sql()
        );
        let conn = self.reader()?;
        let sessions = conn
            .prepare_cached(&sql)?
            .query_map(params_from_iter(filters.values.iter()), session_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(sessions)
    }

    fn terminate_session(&self, id: SessionId, now: Timestamp) -> Result<bool> {
        let live = Arc::clone(&self.live);
        self.writer.run_then(
            move |conn| {
                let changed = conn
                    .prepare_cached(
                        "UPDATE sessions SET terminated_at = COALESCE(terminated_at, ?2) \
                         WHERE id = ?1 AND expires_at > ?2",
                    )?
                    .execute(params![id, now.unix_micros()])?;
                Ok(changed > 0)
            },
            move |&terminated| {
                if terminated {
                    lock_live(&live).terminate(id);
                }
            },
        )
    }

    fn end_session(&self, id: SessionId) -> Result<bool> {
        let live = Arc::clone(&self.live);
        self.writer.run_then(
            move |conn| {
                let deleted = conn
                    .prepare_cached("DELETE FROM sessions WHERE id = ?1")?
                    .execute([id])?;
                Ok(deleted > 0)
            },
            move |_| lock_live(&live).remove(id),
        )
    }

    fn purge_expired_sessions(&self, now: Timestamp) -> Result<u64> {
        let pending = Arc::clone(&self.pending);
        let live = Arc::clone(&self.live);
        self.writer.run_then(
            move |conn| {
                pending.apply(conn, None)?;
                let purged = conn
                    .prepare_cached("DELETE FROM sessions WHERE expires_at <= ?1")?
                    .execute([now.unix_micros()])?;
                Ok(purged as u64)
            },
            move |_| lock_live(&live).purge(now.unix_micros()),
        )
    }

    /// Written by the access log file's own writer: never in the way of an admission.
    fn append_access_logs(&self, entries: &[AccessLogEntry]) -> Result<()> {
        let entries = entries.to_vec();
        let write = move |conn: &Connection| {
            let mut insert = conn.prepare_cached(
                "INSERT INTO access_logs (at, token_id, token_prefix, user_id, stream, ip, proto, \
                 request_type, session_id, result, reason, latency_us) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?;
            for e in entries {
                insert.execute(params![
                    e.at.unix_micros(),
                    e.token_id,
                    e.token_prefix,
                    e.user_id,
                    e.stream,
                    e.ip,
                    e.proto,
                    e.request_type,
                    e.session_id,
                    e.result.as_str(),
                    e.reason,
                    i64::try_from(e.latency_us).unwrap_or(i64::MAX),
                ])?;
            }
            Ok(())
        };
        self.log_writer.run(write)
    }

    fn access_logs(&self, filter: &AccessLogFilter) -> Result<Page<AccessLogRecord>> {
        let mut filters = Where::default();
        filters.integer("token_id = ?", filter.token_id);
        filters.text("result = ?", filter.result.map(AccessResult::as_str));
        filters.text("reason = ?", filter.reason.as_deref());
        filters.text("user_id = ?", filter.user_id.as_deref());
        filters.text("stream = ?", filter.stream.as_deref());
        filters.integer("at >= ?", filter.since.map(Timestamp::unix_micros));
        filters.integer("at < ?", filter.until.map(Timestamp::unix_micros));
        let conn = self.reader()?;
        filters.page(
            &conn,
            "log.access_logs",
            ACCESS_LOG_COLUMNS,
            "id DESC",
            (filter.limit, filter.offset),
            |row| {
                Ok(AccessLogRecord {
                    id: row.get(0)?,
                    entry: StoredEntry {
                        at: Timestamp::from_unix_micros(row.get(1)?),
                        token_id: row.get(2)?,
                        token_prefix: row.get(3)?,
                        user_id: row.get(4)?,
                        stream: row.get(5)?,
                        ip: row.get(6)?,
                        proto: row.get(7)?,
                        request_type: row.get(8)?,
                        session_id: row.get(9)?,
                        result: row.get(10)?,
                        reason: row.get(11)?,
                        latency_us: row.get::<_, i64>(12)?.max(0) as u64,
                    },
                })
            },
        )
    }

    fn access_stats(
        &self,
        since: Timestamp,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<AccessStats> {
        let conn = self.reader()?;
        let mut stats = AccessStats {
            since,
            until,
            ..Default::default()
        };
        let mut by_result = conn.prepare_cached(
            "SELECT result, COALESCE(reason, ''), COUNT(*) FROM log.access_logs \
             WHERE at >= ?1 AND at < ?2 GROUP BY result, reason",
        )?;
        let rows =
            by_result.query_map(params![since.unix_micros(), until.unix_micros()], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, i64>(2)?,
                ))
            })?;
        for row in rows {
            let (result, reason, count) = row?;
            let count = u64::try_from(count).unwrap_or_default();
            if result == AccessResult::Allowed.as_str() {
                stats.allowed += count;
            } else {
                stats.denied += count;
                *stats.denied_by_reason.entry(reason).or_default() += count;
            }
        }
        let mut by_stream = conn.prepare_cached(
            "SELECT stream, COUNT(*) FROM sessions \
             WHERE expires_at > ?1 AND terminated_at IS NULL GROUP BY stream",
        )?;
        let rows = by_stream.query_map([now.unix_micros()], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })?;
        for row in rows {
            let (stream, count) = row?;
            let count = u64::try_from(count).unwrap_or_default();
            stats.live_sessions += count;
            stats.live_sessions_by_stream.insert(stream, count);
        }
        Ok(stats)
    }

    /// Checks both paths a decision needs: a pooled read, and that the write lock can be taken
    /// (a database locked by another process answers reads but not admissions).
    /// Checks both paths a decision needs: a pooled read, and a round trip through the writer
    /// (which takes SQLite's write lock: a database locked by another process answers reads but
    /// not admissions).
    fn ping(&self) -> Result<()> {
        self.reader()?.query_row("SELECT 1", [], |_| Ok(()))?;
        self.writer.run(|_| Ok(()))
    }

    // --- Signed tokens: the key ring ---

    fn insert_signing_key(&self, key: &StoredSigningKey) -> Result<()> {
        crate::signed_token::check_kid(&key.kid)?;
        let key = key.clone();
        self.writer.run(move |conn| {
            let inserted = conn
                .prepare_cached(
                    "INSERT INTO signing_keys (kid, algorithm, public_key, sealed_secret, \
                     created_at, retired_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                     ON CONFLICT (kid) DO NOTHING",
                )?
                .execute(params![
                    key.kid,
                    key.algorithm.as_str(),
                    key.public_key,
                    key.sealed_secret,
                    key.created_at.unix_micros(),
                    key.retired_at.map(Timestamp::unix_micros),
                ])?;
            if inserted == 0 {
                return Err(super::signing_key_conflict(&key.kid));
            }
            Ok(())
        })
    }

    fn signing_keys(&self) -> Result<Vec<StoredSigningKey>> {
        let conn = self.reader()?;
        let mut statement = conn.prepare_cached(
            "SELECT kid, algorithm, public_key, sealed_secret, created_at, retired_at \
             FROM signing_keys ORDER BY created_at, kid",
        )?;
        let rows = statement.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, Option<Vec<u8>>>(2)?,
                row.get::<_, Vec<u8>>(3)?,
                row.get::<_, i64>(4)?,
                row.get::<_, Option<i64>>(5)?,
            ))
        })?;
        rows.map(|row| {
            let (kid, algorithm, public_key, sealed_secret, created_at, retired_at) = row?;
            Ok(StoredSigningKey {
                kid,
                algorithm: Algorithm::parse(&algorithm).map_err(Error::storage)?,
                public_key,
                sealed_secret,
                created_at: Timestamp::from_unix_micros(created_at),
                retired_at: retired_at.map(Timestamp::from_unix_micros),
            })
        })
        .collect()
    }

    fn retire_signing_key(&self, kid: &str, now: Timestamp) -> Result<bool> {
        let kid = kid.to_owned();
        self.writer.run(move |conn| {
            let found = conn
                .prepare_cached(
                    "UPDATE signing_keys SET retired_at = COALESCE(retired_at, ?2) WHERE kid = ?1",
                )?
                .execute(params![kid, now.unix_micros()])?;
            Ok(found > 0)
        })
    }

    // --- Event tickets (see `tickets_sqlite`): writes on the writer, reads from the pool ---

    fn create_account(&self, account: NewAccount, now: Timestamp) -> Result<Account> {
        self.writer
            .run(move |conn| tickets::create_account(conn, account, now))
    }

    fn account(&self, id: AccountId) -> Result<Option<Account>> {
        tickets::account(&*self.reader()?, id)
    }

    fn account_by_username(&self, username: &str) -> Result<Option<Account>> {
        tickets::account_by_username(&*self.reader()?, username)
    }

    fn update_account(
        &self,
        id: AccountId,
        patch: AccountPatch,
        now: Timestamp,
    ) -> Result<Account> {
        self.writer
            .run(move |conn| tickets::update_account(conn, id, patch, now))
    }

    fn create_event(&self, event: NewEvent, now: Timestamp) -> Result<Event> {
        self.writer
            .run(move |conn| tickets::create_event(conn, event, now))
    }

    fn event(&self, id: EventId) -> Result<Option<Event>> {
        tickets::event(&*self.reader()?, id)
    }

    fn list_events(&self, filter: &EventFilter) -> Result<Page<Event>> {
        tickets::list_events(&*self.reader()?, filter)
    }

    fn update_event(&self, id: EventId, patch: &EventPatch, now: Timestamp) -> Result<Event> {
        let patch = patch.clone();
        self.writer
            .run(move |conn| tickets::update_event(conn, id, &patch, now))
    }

    fn add_to_roster(
        &self,
        event: EventId,
        account: AccountId,
        roster: RosterRole,
        now: Timestamp,
    ) -> Result<bool> {
        self.writer
            .run(move |conn| tickets::add_to_roster(conn, event, account, roster, now))
    }

    fn roster(
        &self,
        event: EventId,
        roster: RosterRole,
        limit: u32,
        offset: u32,
    ) -> Result<Page<RosterEntry>> {
        tickets::roster(&*self.reader()?, event, roster, limit, offset)
    }

    fn roster_standing(&self, event: EventId, account: AccountId) -> Result<EventStanding> {
        tickets::roster_standing(&*self.reader()?, event, account)
    }

    fn create_ticket(&self, ticket: NewTicket, now: Timestamp) -> Result<Ticket> {
        self.writer
            .run(move |conn| tickets::create_ticket(conn, ticket, now))
    }

    fn ticket(&self, id: TicketId) -> Result<Option<Ticket>> {
        tickets::ticket(&*self.reader()?, id)
    }

    fn revoke_ticket(&self, id: TicketId, now: Timestamp) -> Result<bool> {
        self.writer
            .run(move |conn| tickets::revoke_ticket(conn, id, now))
    }

    fn use_ticket(
        &self,
        id: TicketId,
        step: i64,
        by: Option<AccountId>,
        single_entry: bool,
        now: Timestamp,
    ) -> Result<TicketUse> {
        self.writer
            .run(move |conn| tickets::use_ticket(conn, id, step, by, single_entry, now))
    }

    fn revoke_access_token(&self, jti: &str, expires_at: Timestamp) -> Result<()> {
        let jti = jti.to_owned();
        self.writer
            .run(move |conn| tickets::revoke_access_token(conn, &jti, expires_at))
    }

    fn access_token_revoked(&self, jti: &str) -> Result<bool> {
        tickets::access_token_revoked(&*self.reader()?, jti)
    }

    fn purge_ticket_state(&self, now: Timestamp) -> Result<u64> {
        self.writer.run(move |conn| tickets::purge(conn, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hasher() -> crate::secret::TokenHasher {
        crate::secret::TokenHasher::new(&[9u8; 32]).unwrap()
    }

    fn temp_store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("auth.db")).unwrap();
        (dir, store)
    }

    crate::store::conformance::suite!({
        let (dir, store) = temp_store();
        crate::store::conformance::Guarded(dir, store)
    });

    #[test]
    fn lease_extensions_answered_from_a_read_are_written_by_close() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.db");
        let t0 = crate::store::conformance::T0;
        let later = t0.saturating_add(std::time::Duration::from_secs(100));
        let lease = |t: Timestamp| t.saturating_add(std::time::Duration::from_secs(210));
        {
            let store = SqliteStore::open(&path).unwrap();
            let token = store
                .create_token(crate::store::conformance::spec("extend-me-1", "u", 1), t0)
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
            .sessions(&super::super::SessionFilter::default(), t0)
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
        let t0 = crate::store::conformance::T0;
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
            .sessions(&super::super::SessionFilter::default(), t0)
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
            .sessions(&super::super::SessionFilter::default(), t0)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn rechecks_of_live_sessions_are_answered_from_memory_and_follow_every_session_write() {
        let (_dir, store) = temp_store();
        let t0 = crate::store::conformance::T0;
        let lease = t0.saturating_add(std::time::Duration::from_secs(210));
        let token = store
            .create_token(crate::store::conformance::spec("memory-path-1", "u", 2), t0)
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
        let t0 = crate::store::conformance::T0;
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
                .create_token(crate::store::conformance::spec("reopen-me-1", "u", 1), t0)
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
