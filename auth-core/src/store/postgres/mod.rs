//! PostgreSQL store: several auth nodes on one database.
//!
//! Every node opens its own pool of connections (r2d2, synchronous `postgres` driver: the
//! [`Store`] trait is synchronous and async callers already run it on a blocking thread). Every
//! write goes to the database at once, except lease extensions of sessions a node remembers:
//! those re-checks are answered from the node's memory and written within about a second, while
//! terminations and removals made anywhere reach every node's memory through `LISTEN/NOTIFY`
//! (see `node_sessions`). A node's token cache ([`crate::store::CachedStore`]) notices other
//! nodes' token writes through [`Store::token_generation`].
//!
//! - Schema: versioned [`MIGRATIONS`] recorded in `schema_migrations`, applied at open under an
//!   advisory lock (see [`migrate`]). PostgreSQL 11 or later.
//! - Admission is atomic across nodes: a row lock on the token (see
//!   [`PostgresStore::admit_locked`]).
//! - Times are `BIGINT` unix microseconds, as in SQLite, and always come from the caller: nodes'
//!   clocks must agree (NTP) for leases to mean the same thing on every node.
//! - PostgreSQL `TEXT` cannot hold U+0000, which SQLite stores. Text that comes from requests
//!   (stream names, session ids, protocols: a media server may pass `%00` through) is written
//!   with each NUL replaced by U+FFFD, consistently, so a session key still matches itself and one
//!   odd request cannot fail a whole access log batch. JSON columns are `TEXT` holding serde_json
//!   output, which escapes NUL (`JSONB` would refuse `\u0000` in `meta`, which the API accepts).
//! - No TLS: connections use `NoTls`; a URL that requires TLS (`sslmode=require`) fails to
//!   connect. Run the database on a trusted network or add a TLS connector here.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use ::postgres::error::SqlState;
use ::postgres::types::{ToSql, Type};
use ::postgres::{Client, Config, GenericClient, IsolationLevel, NoTls, Row, Transaction};
use r2d2::{Pool, PooledConnection};
use r2d2_postgres::PostgresConnectionManager;
use serde_json::{Map, Value};

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
mod node_sessions;
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

use node_sessions::{NodeSessions, Workers, MIN_LEASE_TO_LEARN};

/// Schema versions, applied in order; `schema_migrations` records each one applied. Never edit a
/// shipped migration: append a new one.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_tokens_sessions_and_access_logs.sql"),
    include_str!("migrations/0002_token_generation.sql"),
    include_str!("migrations/0003_session_owners.sql"),
    include_str!("migrations/0004_signing_keys.sql"),
    include_str!("migrations/0005_session_notifications.sql"),
    include_str!("migrations/0006_tickets.sql"),
    include_str!("migrations/0007_allowed_actions.sql"),
];

/// First key of the advisory lock that serializes migrations (the second is the schema's hash):
/// an arbitrary constant, "auth" in ASCII.
const MIGRATION_LOCK: i32 = 0x6175_7468;

/// Connections per node. Each blocking call holds one for its duration.
const POOL_SIZE: u32 = 16;

/// How long opening a connection, or waiting for a free pooled one, may take before the call
/// fails (and the server answers by its fail mode).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

type Manager = PostgresConnectionManager<NoTls>;

pub struct PostgresStore {
    /// Always `Some` until dropped (see the `Drop` impl).
    pool: Option<Pool<Manager>>,
    schema: Option<String>,
    node: Arc<NodeSessions>,
    /// Stopped first when the store is dropped (a last write of pending lease extensions).
    _workers: Workers,
}

impl Drop for PostgresStore {
    /// The synchronous driver closes each connection by blocking on a runtime of its own, which
    /// tokio refuses on one of its worker threads, where a server's last handle on its store may
    /// well be dropped ("Cannot start a runtime from within a runtime"). So the pool goes on a
    /// thread of its own.
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            match std::thread::Builder::new()
                .name("postgres-close".into())
                .spawn(move || drop(pool))
            {
                Ok(closing) => {
                    let _ = closing.join();
                }
                Err(err) => log::warn!("cannot close PostgreSQL connections on a thread: {err}"),
            }
        }
    }
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the URL: it may hold a password.
        f.debug_struct("PostgresStore")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:pass@host:5432/db`, or libpq's
    /// `host=... dbname=...` form) and brings its schema up to date. Tables live in the first
    /// schema of the connection's `search_path` (normally `public`).
    pub fn open(url: &str) -> Result<Self> {
        Self::connect(url, None)
    }

    /// Like [`PostgresStore::open`], with every table in `schema`, which is created if missing;
    /// every pooled connection gets it as its `search_path`. Several deployments (or tests) can
    /// then share one database. `schema` is a plain lower-case identifier (`[a-z_][a-z0-9_]*`,
    /// at most 63 bytes).
    pub fn open_in_schema(url: &str, schema: &str) -> Result<Self> {
        validate_schema(schema)?;
        Self::connect(url, Some(schema))
    }

    fn connect(url: &str, schema: Option<&str>) -> Result<Self> {
        let mut config: Config = url.parse().map_err(|e| {
            // The parser's message never quotes the URL (which may hold a password).
            Error::invalid(
                "database_url",
                format!("not a PostgreSQL connection string: {e}"),
            )
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("auth-core");
        }
        // Startup options: set on every connection the pool opens, at no extra round trip, and
        // after any the URL brings, so they win. READ COMMITTED whatever the database's default,
        // for the single statements too (see `read_committed`). The schema name is a validated
        // identifier, so it needs no escaping here (a space would: `\ `).
        let mut options = config.get_options().unwrap_or_default().trim().to_owned();
        options.push_str(r" -c default_transaction_isolation=read\ committed");
        if let Some(schema) = schema {
            options.push_str(&format!(" -c search_path={schema}"));
        }
        config.options(options.trim_start());
        // Migrations run on a connection of their own, which also makes a failure to connect
        // come back with its cause (the pool's error only says that it timed out).
        let mut client = config.connect(NoTls)?;
        migrate(&mut client, schema)?;
        drop(client);
        let pool = Pool::builder()
            .max_size(POOL_SIZE)
            .min_idle(Some(1))
            .connection_timeout(CONNECT_TIMEOUT)
            // Each checkout costs a round trip to prove the connection alive, so that a database
            // restart or failover costs no failed requests, only reconnections.
            .test_on_check_out(true)
            .error_handler(Box::new(LogConnectionErrors))
            .build(PostgresConnectionManager::new(config.clone(), NoTls))?;
        let node = Arc::new(NodeSessions::default());
        let workers = Workers::spawn(Arc::clone(&node), pool.clone(), config)
            .map_err(|e| Error::storage(format!("cannot start a PostgreSQL store thread: {e}")))?;
        Ok(PostgresStore {
            pool: Some(pool),
            schema: schema.map(str::to_owned),
            node,
            _workers: workers,
        })
    }

    /// The schema given to [`PostgresStore::open_in_schema`].
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// The schema version the database is at.
    pub fn schema_version(&self) -> Result<u32> {
        let row = self.conn()?.query_typed_one(
            "SELECT COALESCE(MAX(version), 0)::BIGINT FROM schema_migrations",
            &[],
        )?;
        Ok(u32::try_from(row.try_get::<_, i64>(0)?).unwrap_or(u32::MAX))
    }

    fn conn(&self) -> Result<PooledConnection<Manager>> {
        let pool = self
            .pool
            .as_ref()
            .ok_or_else(|| Error::storage("the store is closed"))?;
        Ok(pool.get()?)
    }

    /// The admission of a claim whose session is not simply live, inside `tx`.
    ///
    /// Why a row lock on the token: admissions for one token must be serialized across every
    /// node, and each must see everything its predecessors committed.
    /// - `SELECT ... FOR UPDATE` makes concurrent admissions for the same token queue on that
    ///   row in the database, whichever node they come from, while other tokens' admissions run
    ///   in parallel. Under READ COMMITTED every later statement takes a fresh snapshot, so once
    ///   the lock is ours the count below sees every session committed before us. No retries,
    ///   no failures under contention: a waiter simply waits a few milliseconds.
    /// - A single conditional statement (`INSERT ... SELECT ... WHERE (SELECT COUNT(*) ...) <
    ///   max`) is not enough under READ COMMITTED: two such statements evaluate the count in
    ///   snapshots that do not include each other, both see a free slot, and both insert. The
    ///   count must run *after* the lock is granted, hence a separate statement.
    /// - SERIALIZABLE would be correct, but the losing transactions of exactly this race abort
    ///   with serialization failures that every caller would have to retry (hot tokens would
    ///   retry repeatedly), and its predicate locks also catch unrelated sessions sharing index
    ///   pages, so it fails more often than it needs to.
    ///
    /// The lock also settles a race with [`Store::delete_token`]: a token deleted since the
    /// caller looked it up is not found here, and the claim is refused as
    /// `LimitReached { live: 0 }` (a deleted token holds no slots). Not an error: a server
    /// configured to fail open would turn an error into an allow.
    ///
    /// `node`'s pending extensions of the owner's sessions are written after the lock, so that
    /// the count sees them (and the lock order stays: token, then sessions).
    fn admit_locked(
        tx: &mut Transaction<'_>,
        claim: &SessionClaim<'_>,
        now_us: i64,
        until_us: i64,
        node: &NodeSessions,
    ) -> Result<Admission> {
        let key = nul_free(claim.key);
        let owner = claim.owner.raw();
        match claim.owner.token_id() {
            Some(token_id) => {
                let locked = tx.query_typed_opt(
                    "SELECT id FROM tokens WHERE id = $1 FOR UPDATE",
                    &[(&token_id, Type::INT8)],
                )?;
                if locked.is_none() {
                    return Ok(Admission::LimitReached { live: 0 });
                }
            }
            // A signed token has no row to lock: the same serialization comes from an advisory
            // lock on its owner number, released with the transaction. (Single-key advisory locks
            // never meet the two-key one that serializes migrations.)
            None => {
                tx.execute_typed("SELECT pg_advisory_xact_lock($1)", &[(&owner, Type::INT8)])?;
            }
        }
        node.write_pending(tx, Some(owner))?;
        let max_sessions = i64::from(claim.max_sessions);
        // Counting is skipped for unlimited tokens (the CASE evaluates its subquery only when
        // that branch is taken).
        let row = tx.query_typed_one(
            "SELECT s.id, s.expires_at, s.terminated_at, \
                    CASE WHEN $4 > 0 THEN (SELECT COUNT(*) FROM sessions \
                        WHERE owner = $1 AND expires_at > $3 AND terminated_at IS NULL) \
                    ELSE 0 END \
             FROM (SELECT 1) AS one \
             LEFT JOIN sessions AS s ON s.owner = $1 AND s.session_key = $2",
            &[
                (&owner, Type::INT8),
                (&key, Type::TEXT),
                (&now_us, Type::INT8),
                (&max_sessions, Type::INT8),
            ],
        )?;
        let existing: Option<SessionId> = row.try_get(0)?;
        let expires_at: Option<i64> = row.try_get(1)?;
        let terminated_at: Option<i64> = row.try_get(2)?;
        let live: i64 = row.try_get(3)?;
        if let (Some(session_id), Some(expires_at)) = (existing, expires_at) {
            if expires_at > now_us {
                if terminated_at.is_some() {
                    return Ok(Admission::Terminated { session_id });
                }
                tx.execute_typed(
                    "UPDATE sessions SET last_seen = $1, expires_at = $2 WHERE id = $3",
                    &[
                        (&now_us, Type::INT8),
                        (&until_us, Type::INT8),
                        (&session_id, Type::INT8),
                    ],
                )?;
                return Ok(Admission::Extended { session_id });
            }
        }
        if max_sessions > 0 && live >= max_sessions {
            return Ok(Admission::LimitReached {
                live: u32::try_from(live).unwrap_or(u32::MAX),
            });
        }
        // A dead lease under the same key is replaced by the new session.
        let (user_id, stream, proto) = (
            nul_free(claim.user_id),
            nul_free(claim.stream),
            nul_free(claim.proto),
        );
        let ip = claim.ip.to_string();
        let row = tx.query_typed_one(
            "INSERT INTO sessions (owner, token_id, session_key, user_id, stream, ip, proto, \
             started_at, last_seen, expires_at, terminated_at) \
             VALUES ($1, $9, $2, $3, $4, $5, $6, $7, $7, $8, NULL) \
             ON CONFLICT (owner, session_key) DO UPDATE SET \
             user_id = excluded.user_id, stream = excluded.stream, ip = excluded.ip, \
             proto = excluded.proto, started_at = excluded.started_at, \
             last_seen = excluded.last_seen, expires_at = excluded.expires_at, \
             terminated_at = NULL \
             RETURNING id",
            &[
                (&owner, Type::INT8),
                (&key, Type::TEXT),
                (&user_id, Type::TEXT),
                (&stream, Type::TEXT),
                (&ip, Type::TEXT),
                (&proto, Type::TEXT),
                (&now_us, Type::INT8),
                (&until_us, Type::INT8),
                (&claim.owner.token_id(), Type::INT8),
            ],
        )?;
        Ok(Admission::Admitted {
            session_id: row.try_get(0)?,
        })
    }
}

/// Logs the pool's failures to (re)connect with their cause, which the pool's own error (what a
/// call waiting for a connection gets) leaves out.
#[derive(Debug)]
struct LogConnectionErrors;

impl r2d2::HandleError<::postgres::Error> for LogConnectionErrors {
    fn handle_error(&self, error: ::postgres::Error) {
        log::error!("PostgreSQL connection failed: {}", Error::from(error));
    }
}

fn validate_schema(schema: &str) -> Result<()> {
    let mut bytes = schema.bytes();
    let valid = schema.len() <= 63
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(Error::invalid(
            "schema",
            "must be a lower-case identifier: a-z, 0-9 and _, not starting with a digit, at \
             most 63 bytes",
        ))
    }
}

/// Brings the schema up to date, in one transaction holding an advisory lock: nodes starting
/// together queue here, the first applies what is missing, the others then find nothing to do.
/// Refuses a database that a newer build has migrated further than this one knows.
fn migrate(client: &mut Client, schema: Option<&str>) -> Result<()> {
    let mut tx = read_committed(client)?;
    // Per schema, so that deployments (or tests) in other schemas of the database never wait.
    tx.query_typed(
        "SELECT pg_advisory_xact_lock($1, hashtext(COALESCE($2, current_schema(), '')))",
        &[(&MIGRATION_LOCK, Type::INT4), (&schema, Type::TEXT)],
    )?;
    if let Some(schema) = schema {
        // Only when missing: even `CREATE SCHEMA IF NOT EXISTS` needs the CREATE privilege on the
        // database, which a role that merely owns its schema lacks.
        let exists = tx
            .query_typed_opt(
                "SELECT 1 FROM pg_namespace WHERE nspname = $1",
                &[(&schema, Type::TEXT)],
            )?
            .is_some();
        if !exists {
            // Validated identifier; quoted all the same.
            tx.batch_execute(&format!(r#"CREATE SCHEMA "{schema}""#))?;
        }
    }
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER     PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )?;
    let applied: i64 = tx
        .query_typed_one(
            "SELECT COALESCE(MAX(version), 0)::BIGINT FROM schema_migrations",
            &[],
        )?
        .try_get(0)?;
    let applied = usize::try_from(applied).unwrap_or(usize::MAX);
    if applied > MIGRATIONS.len() {
        return Err(Error::storage(format!(
            "the database is at schema version {applied}, newer than this build knows ({})",
            MIGRATIONS.len()
        )));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        let version = i32::try_from(index + 1).unwrap_or(i32::MAX);
        tx.batch_execute(sql)?;
        tx.execute_typed(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[(&version, Type::INT4)],
        )?;
        log::info!("applied PostgreSQL schema migration {version}");
    }
    tx.commit()?;
    Ok(())
}

/// Every transaction here is READ COMMITTED, whatever the database's
/// `default_transaction_isolation` says: the admission and migration logic waits for a lock and
/// then relies on its next statement seeing what the lock holder committed. Under REPEATABLE READ
/// that statement would still read the snapshot taken before the wait (and over-admit); under
/// SERIALIZABLE the race would end in serialization failures instead of answers.
pub(super) fn read_committed(client: &mut Client) -> Result<Transaction<'_>> {
    Ok(client
        .build_transaction()
        .isolation_level(IsolationLevel::ReadCommitted)
        .start()?)
}

/// Request text as PostgreSQL can store it: each U+0000 becomes U+FFFD (see the module docs).
fn nul_free(text: &str) -> Cow<'_, str> {
    if text.contains('\0') {
        Cow::Owned(text.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(text)
    }
}

const TOKEN_COLUMNS: &str = "id, token_hash, user_id, status, max_sessions, allowed_ips, \
     allowed_streams, valid_from, valid_until, meta, created_at, updated_at, token_prefix, \
     allowed_actions";

fn corrupt(what: &str, detail: impl std::fmt::Display) -> Error {
    Error::storage(format!("corrupt {what} in the database: {detail}"))
}

fn token_from_row(row: &Row) -> Result<Token> {
    let digest: Vec<u8> = row.try_get(1)?;
    let status: String = row.try_get(3)?;
    let max_sessions: i64 = row.try_get(4)?;
    let ips: String = row.try_get(5)?;
    let streams: String = row.try_get(6)?;
    let meta: String = row.try_get(9)?;
    let actions: String = row.try_get(13)?;
    let actions: Vec<Action> =
        serde_json::from_str(&actions).map_err(|e| corrupt("allowed_actions", e))?;
    let ips: Vec<String> = serde_json::from_str(&ips).map_err(|e| corrupt("allowed_ips", e))?;
    let streams: Vec<String> =
        serde_json::from_str(&streams).map_err(|e| corrupt("allowed_streams", e))?;
    Ok(Token {
        id: row.try_get(0)?,
        digest: SecretDigest(
            digest
                .try_into()
                .map_err(|d: Vec<u8>| corrupt("token_hash", format!("{} bytes", d.len())))?,
        ),
        token_prefix: row.try_get(12)?,
        user_id: row.try_get(2)?,
        status: status
            .parse::<TokenStatus>()
            .map_err(|e| corrupt("status", e))?,
        max_sessions: u32::try_from(max_sessions).map_err(|e| corrupt("max_sessions", e))?,
        allowed_ips: IpAllowList::parse(&ips).map_err(|e| corrupt("allowed_ips", e))?,
        allowed_streams: StreamAllowList::parse(&streams)
            .map_err(|e| corrupt("allowed_streams", e))?,
        allowed_actions: ActionSet::parse(&actions).map_err(|e| corrupt("allowed_actions", e))?,
        valid_from: row
            .try_get::<_, Option<i64>>(7)?
            .map(Timestamp::from_unix_micros),
        valid_until: row
            .try_get::<_, Option<i64>>(8)?
            .map(Timestamp::from_unix_micros),
        meta: serde_json::from_str::<Map<String, Value>>(&meta).map_err(|e| corrupt("meta", e))?,
        created_at: Timestamp::from_unix_micros(row.try_get(10)?),
        updated_at: Timestamp::from_unix_micros(row.try_get(11)?),
    })
}

/// A token's settings as SQL values, numbered `$1`..`$9` in [`SETTINGS_ASSIGNMENTS`] order.
struct Settings {
    user_id: String,
    status: &'static str,
    max_sessions: i64,
    allowed_ips: String,
    allowed_streams: String,
    valid_from: Option<i64>,
    valid_until: Option<i64>,
    meta: String,
    allowed_actions: String,
}

impl Settings {
    fn of(token: &Token) -> Result<Self> {
        let json = |v: serde_json::Result<String>| {
            v.map_err(|e| Error::storage(format!("encoding JSON: {e}")))
        };
        Ok(Settings {
            user_id: token.user_id.clone(),
            status: token.status.as_str(),
            max_sessions: i64::from(token.max_sessions),
            allowed_ips: json(serde_json::to_string(&token.allowed_ips))?,
            allowed_streams: json(serde_json::to_string(&token.allowed_streams))?,
            valid_from: token.valid_from.map(Timestamp::unix_micros),
            valid_until: token.valid_until.map(Timestamp::unix_micros),
            meta: json(serde_json::to_string(&token.meta))?,
            allowed_actions: json(serde_json::to_string(&token.allowed_actions))?,
        })
    }

    fn params(&self) -> [(&(dyn ToSql + Sync), Type); 9] {
        [
            (&self.user_id, Type::TEXT),
            (&self.status, Type::TEXT),
            (&self.max_sessions, Type::INT8),
            (&self.allowed_ips, Type::TEXT),
            (&self.allowed_streams, Type::TEXT),
            (&self.valid_from, Type::INT8),
            (&self.valid_until, Type::INT8),
            (&self.meta, Type::TEXT),
            (&self.allowed_actions, Type::TEXT),
        ]
    }
}

const SETTINGS_ASSIGNMENTS: &str =
    "user_id = $1, status = $2, max_sessions = $3, allowed_ips = $4, \
     allowed_streams = $5, valid_from = $6, valid_until = $7, meta = $8, allowed_actions = $9";

fn select_token(
    client: &mut impl GenericClient,
    clause: &str,
    param: (&(dyn ToSql + Sync), Type),
) -> Result<Option<Token>> {
    let sql = format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE {clause}");
    client
        .query_typed_opt(&sql, &[param])?
        .as_ref()
        .map(token_from_row)
        .transpose()
}

fn is_token_conflict(err: &::postgres::Error) -> bool {
    err.as_db_error().is_some_and(|db| {
        *db.code() == SqlState::UNIQUE_VIOLATION && db.constraint() == Some("tokens_token_hash_key")
    })
}

fn conflict() -> Error {
    Error::Conflict {
        field: "token",
        message: "a token with this value already exists".into(),
    }
}

/// Inserts the token; `Ok(None)` when `on_conflict_do_nothing` and a token with its digest
/// exists, `Conflict` when not.
fn insert_token(
    client: &mut impl GenericClient,
    new: NewToken,
    now: Timestamp,
    on_conflict_do_nothing: bool,
) -> Result<Option<Token>> {
    let mut token = new.into_token(0, now, now);
    let settings = Settings::of(&token)?;
    let digest = &token.digest.0[..];
    let now_us = now.unix_micros();
    let mut params = settings.params().to_vec();
    params.extend([
        (&digest as &(dyn ToSql + Sync), Type::BYTEA),
        (&token.token_prefix, Type::TEXT),
        (&now_us, Type::INT8),
    ]);
    let sql = format!(
        "INSERT INTO tokens (user_id, status, max_sessions, allowed_ips, allowed_streams, \
         valid_from, valid_until, meta, allowed_actions, token_hash, token_prefix, created_at, \
         updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) {} RETURNING id",
        if on_conflict_do_nothing {
            "ON CONFLICT (token_hash) DO NOTHING"
        } else {
            ""
        }
    );
    match client.query_typed_opt(&sql, &params) {
        Ok(Some(row)) => {
            token.id = row.try_get(0)?;
            Ok(Some(token))
        }
        Ok(None) => Ok(None),
        Err(e) if is_token_conflict(&e) => Err(conflict()),
        Err(e) => Err(e.into()),
    }
}

fn write_settings(client: &mut impl GenericClient, token: &Token) -> Result<()> {
    let settings = Settings::of(token)?;
    let updated_at = token.updated_at.unix_micros();
    let mut params = settings.params().to_vec();
    params.extend([
        (&updated_at as &(dyn ToSql + Sync), Type::INT8),
        (&token.id, Type::INT8),
    ]);
    let sql = format!("UPDATE tokens SET {SETTINGS_ASSIGNMENTS}, updated_at = $10 WHERE id = $11");
    client.execute_typed(&sql, &params)?;
    Ok(())
}

/// A WHERE clause built from optional filters, with its parameters numbered in order.
#[derive(Default)]
struct Where {
    clauses: Vec<String>,
    values: Vec<(Box<dyn ToSql + Sync>, Type)>,
}

impl Where {
    /// Adds `clause`, in which `$?` stands for the value's placeholder.
    fn add(&mut self, clause: &str, value: Box<dyn ToSql + Sync>, ty: Type) {
        self.values.push((value, ty));
        let placeholder = format!("${}", self.values.len());
        self.clauses.push(clause.replace("$?", &placeholder));
    }

    fn text(&mut self, clause: &str, value: Option<&str>) {
        if let Some(value) = value {
            self.add(clause, Box::new(nul_free(value).into_owned()), Type::TEXT);
        }
    }

    fn integer(&mut self, clause: &str, value: Option<i64>) {
        if let Some(value) = value {
            self.add(clause, Box::new(value), Type::INT8);
        }
    }

    fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
    }

    fn params(&self) -> Vec<(&(dyn ToSql + Sync), Type)> {
        self.values
            .iter()
            .map(|(value, ty)| (value.as_ref(), ty.clone()))
            .collect()
    }

    /// Runs `SELECT COUNT(*)` and then the page query (`{select} {where} ORDER BY {order} LIMIT
    /// .. OFFSET ..`) for the `(limit, offset)` window.
    fn page<T>(
        mut self,
        client: &mut impl GenericClient,
        table: &str,
        select: &str,
        order: &str,
        (limit, offset): (u32, u32),
        map: impl Fn(&Row) -> Result<T>,
    ) -> Result<Page<T>> {
        let filter = self.sql();
        let total: i64 = client
            .query_typed_one(
                &format!("SELECT COUNT(*) FROM {table} {filter}"),
                &self.params(),
            )?
            .try_get(0)?;
        let (limit_at, offset_at) = (self.values.len() + 1, self.values.len() + 2);
        self.values
            .push((Box::new(i64::from(clamp_limit(limit))), Type::INT8));
        self.values.push((Box::new(i64::from(offset)), Type::INT8));
        let sql = format!(
            "SELECT {select} FROM {table} {filter} ORDER BY {order} \
             LIMIT ${limit_at} OFFSET ${offset_at}"
        );
        let items = client
            .query_typed(&sql, &self.params())?
            .iter()
            .map(map)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page {
            items,
            total: u64::try_from(total).unwrap_or_default(),
        })
    }
}

const ACCESS_LOG_COLUMNS: &str = "id, at, token_id, token_prefix, user_id, stream, ip, proto, \
     request_type, session_id, result, reason, latency_us";

const SESSION_COLUMNS: &str = "id, owner, session_key, user_id, stream, ip, proto, \
     started_at, last_seen, expires_at, terminated_at";

fn session_from_row(row: &Row) -> Result<Session> {
    let owner = SessionOwner::from_raw(row.try_get(1)?);
    Ok(Session {
        id: row.try_get(0)?,
        token_id: owner.token_id(),
        owner,
        key: row.try_get(2)?,
        user_id: row.try_get(3)?,
        stream: row.try_get(4)?,
        ip: row.try_get(5)?,
        proto: row.try_get(6)?,
        started_at: Timestamp::from_unix_micros(row.try_get(7)?),
        last_seen: Timestamp::from_unix_micros(row.try_get(8)?),
        expires_at: Timestamp::from_unix_micros(row.try_get(9)?),
        terminated_at: row
            .try_get::<_, Option<i64>>(10)?
            .map(Timestamp::from_unix_micros),
    })
}

fn access_log_from_row(row: &Row) -> Result<AccessLogRecord> {
    Ok(AccessLogRecord {
        id: row.try_get(0)?,
        entry: StoredEntry {
            at: Timestamp::from_unix_micros(row.try_get(1)?),
            token_id: row.try_get(2)?,
            token_prefix: row.try_get(3)?,
            user_id: row.try_get(4)?,
            stream: row.try_get(5)?,
            ip: row.try_get(6)?,
            proto: row.try_get(7)?,
            request_type: row.try_get(8)?,
            session_id: row.try_get(9)?,
            result: row.try_get(10)?,
            reason: row.try_get(11)?,
            latency_us: u64::try_from(row.try_get::<_, i64>(12)?).unwrap_or_default(),
        },
    })
}

fn count(row: &Row, index: usize) -> Result<u64> {
    Ok(u64::try_from(row.try_get::<_, i64>(index)?).unwrap_or_default())
}

impl Health for PostgresStore {
    /// A pooled connection (proven alive at checkout) and one query round trip.
    fn ping(&self) -> Result<()> {
        self.conn()?.query_typed_one("SELECT 1", &[])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[allow(unused_imports)]
    use crate::prelude::*;
    use std::io::Write as _;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Barrier, Once, OnceLock};

    use super::*;
    use crate::store::testkit::{self as c, spec, T0};

    /// The database the tests use; [`DEFAULT_URL`] when unset.
    const URL_VAR: &str = "AUTH_TEST_POSTGRES_URL";
    /// The PostgreSQL server this project's machines run locally (trust auth, database `test`).
    const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
    /// `skip` turns "no usable server" from a failure into a skip.
    const SKIP_VAR: &str = "AUTH_TEST_POSTGRES";
    const LEASE: Duration = Duration::from_secs(210);

    /// The server's URL if it answers. Without one the tests fail, unless
    /// `AUTH_TEST_POSTGRES=skip`: then they return at once, and the skip is reported once per
    /// test binary on the real stderr (not the captured one, so it shows in a normal run).
    pub(super) fn server() -> Option<&'static str> {
        static PROBE: OnceLock<std::result::Result<String, String>> = OnceLock::new();
        let probe = PROBE.get_or_init(|| {
            let url = std::env::var(URL_VAR)
                .ok()
                .filter(|url| !url.trim().is_empty())
                .unwrap_or_else(|| DEFAULT_URL.to_owned());
            let mut config: Config = url
                .parse()
                .map_err(|e| format!("{URL_VAR} is not a PostgreSQL URL: {e}"))?;
            // Names the server tried in the messages below.
            let url_var = format!("{url} ({URL_VAR}, default {DEFAULT_URL})");
            config.connect_timeout(Duration::from_secs(3));
            let mut client = config
                .connect(NoTls)
                .map_err(|e| format!("cannot connect to {url_var}: {}", Error::from(e)))?;
            client
                .simple_query("SELECT 1")
                .map_err(|e| format!("no answer from {url_var}: {}", Error::from(e)))?;
            Ok(url)
        });
        match probe {
            Ok(url) => Some(url),
            Err(why) if std::env::var(SKIP_VAR).as_deref() == Ok("skip") => {
                static REPORTED: Once = Once::new();
                REPORTED.call_once(|| {
                    let _ = writeln!(
                        std::io::stderr(),
                        "skipped: PostgreSQL tests ({SKIP_VAR}=skip)\n  ({why})"
                    );
                });
                None
            }
            Err(why) => panic!(
                "the PostgreSQL tests need a server: {why}. Set {URL_VAR} (e.g. \
                 postgres://postgres@127.0.0.1:5432/test), or set {SKIP_VAR}=skip to skip them"
            ),
        }
    }

    /// A schema no other test (or earlier run) uses: pid, a counter and random bits.
    fn unique_schema() -> String {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let mut random = [0u8; 4];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random).unwrap();
        format!(
            "auth_test_{}_{}_{:08x}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            u32::from_be_bytes(random)
        )
    }

    /// A test's schema, dropped with everything in it when the test ends (after its stores).
    pub(super) struct Scratch {
        url: &'static str,
        schema: String,
    }

    impl Scratch {
        fn new() -> Option<Self> {
            Some(Scratch {
                url: server()?,
                schema: unique_schema(),
            })
        }

        pub(super) fn open(&self) -> PostgresStore {
            PostgresStore::open_in_schema(self.url, &self.schema).unwrap()
        }

        pub(super) fn client(&self) -> ::postgres::Client {
            let mut client = ::postgres::Client::connect(self.url, NoTls).unwrap();
            client
                .batch_execute(&format!("SET search_path TO {}", self.schema))
                .unwrap();
            client
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let dropped = ::postgres::Client::connect(self.url, NoTls).and_then(|mut client| {
                client.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema))
            });
            if let Err(err) = dropped {
                let _ = writeln!(
                    std::io::stderr(),
                    "could not drop test schema {}: {err}",
                    self.schema
                );
            }
        }
    }

    /// A store in a fresh schema, or `None` when the tests are skipped.
    pub(super) fn fresh() -> Option<(Scratch, PostgresStore)> {
        let scratch = Scratch::new()?;
        let store = scratch.open();
        Some((scratch, store))
    }

    /// The shared suite, each test on a store in its own schema.
    mod conformance {
        use super::fresh;

        crate::store_suite!({
            let Some((scratch, store)) = fresh() else {
                return;
            };
            crate::store::testkit::Guarded(scratch, store)
        });
        #[cfg(feature = "tickets")]
        crate::ticketing_suite!({
            let Some((scratch, store)) = fresh() else {
                return;
            };
            crate::store::testkit::Guarded(scratch, store)
        });
    }

    pub(super) fn claim<'a>(token: &'a Token, key: &'a str) -> SessionClaim<'a> {
        SessionClaim {
            owner: crate::session::SessionOwner::token(token.id),
            key,
            max_sessions: token.max_sessions,
            user_id: &token.user_id,
            stream: "live/one",
            ip: std::net::IpAddr::from([10, 0, 0, 1]),
            proto: "hls",
        }
    }

    /// Migration 3 gives sessions an owner: live sessions of a database made before it keep
    /// their ids and slots, and deleting their token still removes them.
    #[test]
    fn sessions_survive_the_owner_migration() {
        let Some(scratch) = Scratch::new() else {
            return;
        };
        let lease = crate::store::testkit::T0.saturating_add(std::time::Duration::from_secs(210));
        {
            let mut client = scratch.client();
            client
                .batch_execute(&format!(r#"CREATE SCHEMA "{}""#, scratch.schema))
                .unwrap();
            client
                .batch_execute(&format!("SET search_path TO {}", scratch.schema))
                .unwrap();
            client
                .batch_execute(
                    "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, \
                     applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
                )
                .unwrap();
            for (index, sql) in MIGRATIONS[..2].iter().enumerate() {
                client.batch_execute(sql).unwrap();
                client
                    .execute(
                        "INSERT INTO schema_migrations (version) VALUES ($1)",
                        &[&(index as i32 + 1)],
                    )
                    .unwrap();
            }
            client
                .batch_execute(&format!(
                    "INSERT INTO tokens (id, token_hash, token_prefix, user_id, status, max_sessions, \
                     created_at, updated_at) VALUES (7, '\\x00', 'ab', 'u', 'active', 1, 0, 0);
                     INSERT INTO sessions (id, token_id, session_key, user_id, stream, ip, proto, \
                     started_at, last_seen, expires_at) \
                     VALUES (41, 7, 'id:a', 'u', 's', '10.0.0.1', 'hls', 0, 0, {});",
                    lease.unix_micros()
                ))
                .unwrap();
        }
        let store = scratch.open();
        let t0 = crate::store::testkit::T0;
        let sessions = store.sessions(&Default::default(), t0).unwrap();
        assert_eq!(
            (sessions.len(), sessions[0].id, sessions[0].token_id),
            (1, 41, Some(7))
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
        assert!(matches!(
            store.admit_session(&claim("id:a"), t0, lease).unwrap(),
            Admission::Extended { session_id: 41 }
        ));
        assert!(matches!(
            store.admit_session(&claim("id:b"), t0, lease).unwrap(),
            Admission::LimitReached { live: 1 }
        ));
        assert!(store.delete_token(7).unwrap());
        assert!(store.sessions(&Default::default(), t0).unwrap().is_empty());
    }

    // hooks: allowed_actions
    #[test]
    fn a_token_row_written_without_allowed_actions_may_only_play() {
        // What the migration gives existing rows: PostgreSQL fills them with the column's
        // DEFAULT, the same one a writer that knows nothing of the column gets.
        use crate::token::Action;
        let Some(scratch) = Scratch::new() else {
            return;
        };
        let store = scratch.open();
        scratch
            .client()
            .batch_execute(
                "INSERT INTO tokens (token_hash, token_prefix, user_id, status, created_at,
                                     updated_at)
                     VALUES (decode(repeat('07', 32), 'hex'), 'old', 'legacy', 'active', 0, 0);",
            )
            .unwrap();
        let tokens = store.list_tokens(&TokenFilter::default()).unwrap().items;
        assert_eq!(tokens.len(), 1);
        assert!(tokens[0].allowed_actions.allows(Action::Play));
        assert!(!tokens[0].allowed_actions.allows(Action::Publish));
    }

    #[test]
    fn two_nodes_racing_admissions_never_over_admit() {
        const MAX: i64 = 3;
        const THREADS: usize = 24;
        const PER_THREAD: usize = 15;
        const ROUNDS: u32 = 3;
        let Some(scratch) = Scratch::new() else {
            return;
        };
        // Two stores, two pools: what two auth-server processes on one database are.
        let nodes: [Arc<PostgresStore>; 2] = [Arc::new(scratch.open()), Arc::new(scratch.open())];
        let token = Arc::new(
            nodes[0]
                .create_token(spec("secret-two-nodes-1", "u", MAX), T0)
                .unwrap(),
        );
        for round in 0..ROUNDS {
            // Each round starts after the previous round's leases ran out.
            let now = T0.saturating_add(LEASE * round);
            let barrier = Arc::new(Barrier::new(THREADS));
            let handles: Vec<_> = (0..THREADS)
                .map(|t| {
                    let node = Arc::clone(&nodes[t % 2]);
                    let (token, barrier) = (Arc::clone(&token), Arc::clone(&barrier));
                    std::thread::spawn(move || {
                        barrier.wait();
                        let mut admitted = Vec::new();
                        for i in 0..PER_THREAD {
                            let key = format!("id:{round}-{t}-{i}");
                            let answer = node
                                .admit_session(&claim(&token, &key), now, now.saturating_add(LEASE))
                                .unwrap();
                            match answer {
                                Admission::Admitted { .. } => admitted.push(key),
                                Admission::LimitReached { live } => assert_eq!(live, MAX as u32),
                                other => panic!("unexpected {other:?}"),
                            }
                        }
                        admitted
                    })
                })
                .collect();
            let admitted: Vec<String> = handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect();
            assert_eq!(admitted.len(), MAX as usize, "round {round}: {admitted:?}");
            for node in &nodes {
                let live = node
                    .sessions(
                        &SessionFilter {
                            token_id: Some(token.id),
                            ..Default::default()
                        },
                        now,
                    )
                    .unwrap();
                assert_eq!(live.len(), MAX as usize);
            }
            // The winners' re-checks pass on either node.
            for (i, key) in admitted.iter().enumerate() {
                let answer = nodes[i % 2]
                    .admit_session(&claim(&token, key), now, now.saturating_add(LEASE))
                    .unwrap();
                assert!(matches!(answer, Admission::Extended { .. }), "{answer:?}");
            }
        }
    }

    #[test]
    fn admission_stays_atomic_whatever_the_default_isolation() {
        let Some(scratch) = Scratch::new() else {
            return;
        };
        let separator = if scratch.url.contains('?') { '&' } else { '?' };
        for level in ["repeatable%5C%20read", "serializable"] {
            let url = format!(
                "{}{separator}options=-c%20default_transaction_isolation%3D{level}",
                scratch.url
            );
            let node = || Arc::new(PostgresStore::open_in_schema(&url, &scratch.schema).unwrap());
            let nodes = [node(), node()];
            let shown: String = nodes[0]
                .conn()
                .unwrap()
                .query_one("SHOW default_transaction_isolation", &[])
                .unwrap()
                .get(0);
            assert_eq!(shown, "read committed", "the store's own setting wins");
            let secret = format!("secret-isolation-{}", level.len());
            let token = Arc::new(nodes[0].create_token(spec(&secret, "u", 2), T0).unwrap());
            let barrier = Arc::new(Barrier::new(16));
            let handles: Vec<_> = (0..16)
                .map(|t| {
                    let node = Arc::clone(&nodes[t % 2]);
                    let (token, barrier) = (Arc::clone(&token), Arc::clone(&barrier));
                    std::thread::spawn(move || {
                        barrier.wait();
                        (0..10)
                            .filter(|i| {
                                let key = format!("id:{t}-{i}");
                                let answer = node
                                    .admit_session(
                                        &claim(&token, &key),
                                        T0,
                                        T0.saturating_add(LEASE),
                                    )
                                    .unwrap();
                                matches!(answer, Admission::Admitted { .. })
                            })
                            .count()
                    })
                })
                .collect();
            let admitted: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
            assert_eq!(admitted, 2, "{level}");
        }
    }

    #[test]
    fn nodes_starting_together_migrate_once() {
        let Some(scratch) = Scratch::new() else {
            return;
        };
        let url = scratch.url;
        let barrier = Arc::new(Barrier::new(6));
        let handles: Vec<_> = (0..6)
            .map(|_| {
                let (schema, barrier) = (scratch.schema.clone(), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    PostgresStore::open_in_schema(url, &schema)
                        .unwrap()
                        .schema_version()
                        .unwrap()
                })
            })
            .collect();
        for handle in handles {
            assert_eq!(handle.join().unwrap() as usize, MIGRATIONS.len());
        }
        let rows = scratch
            .client()
            .query(
                "SELECT version FROM schema_migrations ORDER BY version",
                &[],
            )
            .unwrap();
        let versions: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
        assert_eq!(versions, (1..=MIGRATIONS.len() as i32).collect::<Vec<_>>());
    }

    #[test]
    fn refuses_a_newer_schema() {
        let Some((scratch, store)) = fresh() else {
            return;
        };
        drop(store);
        scratch
            .client()
            .execute("INSERT INTO schema_migrations (version) VALUES (99)", &[])
            .unwrap();
        let err = PostgresStore::open_in_schema(scratch.url, &scratch.schema)
            .expect_err("a newer schema must be refused");
        assert!(err.to_string().contains("newer"), "{err}");
    }

    #[test]
    fn data_is_shared_between_nodes_and_survives_reopening() {
        let Some((scratch, a)) = fresh() else {
            return;
        };
        let b = scratch.open();
        let created = a.create_token(spec("secret-shared-1", "u", 1), T0).unwrap();
        let seen = b
            .token_by_digest(&c::digest("secret-shared-1"))
            .unwrap()
            .unwrap();
        assert_eq!(*seen, created);
        drop((a, b));
        let again = scratch.open();
        assert_eq!(again.token(created.id).unwrap(), Some(created));
    }

    #[test]
    fn token_generation_follows_writes_from_any_client() {
        let Some((scratch, a)) = fresh() else {
            return;
        };
        let b = scratch.open();
        let before = b.token_generation().unwrap();
        a.create_token(spec("secret-gen-nodes-1", "u", 1), T0)
            .unwrap();
        let after_node = b.token_generation().unwrap();
        assert_ne!(before, after_node, "a write through another node");
        // An operator's psql session with its own search_path.
        let mut psql = ::postgres::Client::connect(scratch.url, NoTls).unwrap();
        psql.batch_execute(&format!(
            "UPDATE {}.tokens SET status = 'suspended'",
            scratch.schema
        ))
        .unwrap();
        assert_ne!(
            b.token_generation().unwrap(),
            after_node,
            "a write made outside the store"
        );
    }

    #[test]
    fn nul_characters_from_requests_are_stored() {
        let Some((_scratch, store)) = fresh() else {
            return;
        };
        let token = store
            .create_token(spec("secret-nul-1", "u", 1), T0)
            .unwrap();
        let claim = SessionClaim {
            stream: "live\0one",
            ..claim(&token, "id:a\0b")
        };
        let lease = T0.saturating_add(LEASE);
        let Admission::Admitted { session_id } = store.admit_session(&claim, T0, lease).unwrap()
        else {
            panic!("not admitted")
        };
        assert_eq!(
            store.admit_session(&claim, T0, lease).unwrap(),
            Admission::Extended { session_id },
            "the key still matches itself"
        );
        let filter = SessionFilter {
            stream: Some("live\0one".into()),
            ..Default::default()
        };
        assert_eq!(
            store.sessions(&filter, T0).unwrap()[0].stream,
            "live\u{FFFD}one"
        );
        let entry = AccessLogEntry {
            at: T0,
            token_id: Some(token.id),
            token_prefix: None,
            user_id: None,
            stream: "live\0one".into(),
            ip: "10.0.0.1".into(),
            proto: "hls".into(),
            request_type: "new_session",
            session_id: Some("a\0b".into()),
            result: AccessResult::Allowed,
            reason: None,
            latency_us: 3,
        };
        store.append_access_logs(&[entry]).unwrap();
        let logs = store.access_logs(&AccessLogFilter::default()).unwrap();
        assert_eq!(
            logs.items[0].entry.session_id.as_deref(),
            Some("a\u{FFFD}b")
        );
    }

    #[test]
    fn a_large_log_batch_keeps_its_order_and_json_survives_exactly() {
        let Some((_scratch, store)) = fresh() else {
            return;
        };
        let entries: Vec<AccessLogEntry> = (0..3000)
            .map(|n| AccessLogEntry {
                at: T0,
                token_id: (n % 3 == 0).then_some(n),
                token_prefix: None,
                user_id: Some(format!("user-{n}")),
                stream: "s".into(),
                ip: "::1".into(),
                proto: "hls".into(),
                request_type: "new_session",
                session_id: None,
                result: AccessResult::Denied,
                reason: Some("ip_not_allowed"),
                latency_us: u64::MAX,
            })
            .collect();
        store.append_access_logs(&entries).unwrap();
        let page = store
            .access_logs(&AccessLogFilter {
                limit: 3,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(page.total, 3000);
        assert_eq!(page.items[0].entry.user_id.as_deref(), Some("user-2999"));
        assert_eq!(
            (page.items[1].entry.token_id, page.items[2].entry.token_id),
            (None, Some(2997))
        );
        assert_eq!(page.items[0].entry.latency_us, i64::MAX as u64);

        let mut meta = Map::new();
        meta.insert("nul".into(), Value::String("a\0b".into()));
        meta.insert("float".into(), serde_json::json!(0.1));
        meta.insert("nested".into(), serde_json::json!({"z": [1, {"y": null}]}));
        let new = crate::token::TokenSpec {
            token: Some("secret-meta-1".into()),
            user_id: "u".into(),
            allowed_streams: vec!["sports/*".into()],
            allowed_ips: vec!["2001:db8::/32".into(), "10.0.0.1".into()],
            valid_from: Some(T0),
            valid_until: Some(T0.saturating_add(LEASE)),
            meta: Some(meta),
            ..Default::default()
        }
        .validate(&c::hasher())
        .unwrap()
        .0;
        let created = store.create_token(new, T0).unwrap();
        assert_eq!(store.token(created.id).unwrap(), Some(created));
    }

    #[test]
    fn bad_connection_strings_and_schema_names_are_input_errors() {
        let err = PostgresStore::open("postgres://host:notaport/db").unwrap_err();
        assert_eq!(err.field(), Some("database_url"));
        let err = PostgresStore::open("postgres://postgres@127.0.0.1:1/test").unwrap_err();
        assert_eq!(err.code(), "storage_error");
        assert!(err.to_string().contains("connecting"), "{err}");
        for schema in [
            "",
            "Upper",
            "1st",
            "a-b",
            "a b",
            "x\"; DROP",
            &"a".repeat(64),
        ] {
            let err = PostgresStore::open_in_schema("postgres://localhost/db", schema).unwrap_err();
            assert_eq!(err.field(), Some("schema"), "{schema:?}");
        }
    }
}
