//! PostgreSQL store: several auth nodes on one database.
//!
//! Every node opens its own pool of connections (r2d2, synchronous `postgres` driver: the
//! [`Store`] trait is synchronous and async callers already run it on a blocking thread). Every
//! write goes to the database at once, except lease extensions of sessions a node remembers:
//! those re-checks are answered from the node's memory and written within about a second, while
//! terminations and removals made anywhere reach every node's memory through `LISTEN/NOTIFY`
//! (see `node_sessions`). A node's token cache ([`crate::store::CachedTokens`]) hears of other
//! nodes' token writes the same way (`auth_tokens`), and polls [`Store::token_generation`] as a
//! backstop.
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
use crate::session::{Admission, CloseReason, Session, SessionClaim, SessionId, SessionOwner};
use crate::signed_token::Algorithm;
use crate::store::Health;
use crate::token::{
    Action, ActionSet, IpAllowList, NewToken, OnLimit, StreamAllowList, Token, TokenId, TokenPatch,
    TokenStatus,
};
use crate::token::{TokenFilter, Upsert};
use crate::webhook::{Message, MessageKind, SessionFacts};

mod access_log;
#[cfg(feature = "tickets")]
mod accounts;
#[cfg(feature = "tickets")]
mod events;
mod node_sessions;
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
    include_str!("migrations/0008_es256_signing_keys.sql"),
    include_str!("migrations/0009_session_control.sql"),
    include_str!("migrations/0010_webhooks.sql"),
    include_str!("migrations/0011_token_notifications.sql"),
    include_str!("migrations/0012_hardening.sql"),
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
        let banned = tx.query_typed_opt(
            "SELECT banned_until FROM session_bans \
             WHERE owner = $1 AND stream = $2 AND banned_until > $3",
            &[
                (&owner, Type::INT8),
                (&nul_free(claim.stream).as_ref(), Type::TEXT),
                (&now_us, Type::INT8),
            ],
        )?;
        if let Some(row) = banned {
            return Ok(Admission::Banned {
                until: Timestamp::from_unix_micros(row.try_get(0)?),
            });
        }
        let mut evicted: Option<SessionId> = None;
        if max_sessions > 0 && live >= max_sessions {
            if claim.evict_oldest && live == max_sessions {
                // Under the token's lock: no other admission of this owner runs meanwhile.
                evicted = tx
                    .query_typed_opt(
                        "UPDATE sessions SET terminated_at = $2 WHERE id = \
                         (SELECT id FROM sessions WHERE owner = $1 AND expires_at > $2 \
                          AND terminated_at IS NULL ORDER BY started_at, id LIMIT 1) RETURNING id",
                        &[(&owner, Type::INT8), (&now_us, Type::INT8)],
                    )?
                    .map(|row| row.try_get(0))
                    .transpose()?;
            }
            if evicted.is_none() {
                return Ok(Admission::LimitReached {
                    live: u32::try_from(live).unwrap_or(u32::MAX),
                });
            }
        }
        // A dead lease under the same key is replaced by the new session.
        let (user_id, stream, proto) = (
            nul_free(claim.user_id),
            nul_free(claim.stream),
            nul_free(claim.proto),
        );
        let ip = claim.ip.to_string();
        let (source, media_session_id) =
            (nul_free(claim.source), claim.media_session_id.map(nul_free));
        let row = tx.query_typed_one(
            "INSERT INTO sessions (owner, token_id, session_key, user_id, stream, ip, proto, \
             started_at, last_seen, expires_at, terminated_at, source, media_session_id) \
             VALUES ($1, $9, $2, $3, $4, $5, $6, $7, $7, $8, NULL, $10, $11) \
             ON CONFLICT (owner, session_key) DO UPDATE SET \
             user_id = excluded.user_id, stream = excluded.stream, ip = excluded.ip, \
             proto = excluded.proto, started_at = excluded.started_at, \
             source = excluded.source, media_session_id = excluded.media_session_id, \
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
                (&source, Type::TEXT),
                (&media_session_id, Type::TEXT),
            ],
        )?;
        let session_id = row.try_get(0)?;
        let now = Timestamp::from_unix_micros(now_us);
        outbox::queue_if_wanted(tx, MessageKind::SessionOpened, |_| {
            let facts = SessionFacts {
                id: session_id,
                token_id: claim.owner.token_id(),
                user_id: &user_id,
                stream: &stream,
                ip: &ip,
                proto: &proto,
                source: &source,
                started_at: now,
            };
            Message::session_opened(&facts, now)
        })?;
        if let Some(evicted) = evicted {
            sessions::closed(tx, evicted, CloseReason::Evicted, now)?;
        }
        Ok(match evicted {
            Some(evicted) => Admission::Evicted {
                session_id,
                evicted,
            },
            None => Admission::Admitted { session_id },
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

fn corrupt(what: &str, detail: impl std::fmt::Display) -> Error {
    Error::storage(format!("corrupt {what} in the database: {detail}"))
}

fn conflict() -> Error {
    Error::Conflict {
        field: "token",
        message: "a token with this value already exists".into(),
    }
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
mod tests;
