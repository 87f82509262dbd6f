//! What every request handler shares ([`App`]), and opening what it is built from: the store
//! and the token hashing key.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use auth_core::access_log::AccessLogWriter;
use auth_core::store::transfer::Transfer;
use auth_core::store::{Backend, CachedTokens, Stores};
use auth_core::{Authorizer, Clock, MemoryStore, PostgresStore, SqliteStore, TokenHasher};
use tokio::task::JoinHandle;

use crate::config::{ApiKey, Config, Database, FailMode};
use crate::metrics::Metrics;
use crate::signing::Signing;

/// What every request handler shares.
pub struct App {
    pub authorizer: Authorizer,
    /// One handle per concern; `stores.tokens` is the token cache below.
    pub stores: Stores,
    /// The same cache as `stores.tokens`, typed, for its background revalidation.
    pub token_cache: Arc<CachedTokens>,
    pub access_log: Option<AccessLogWriter>,
    /// See [`Config::access_log_retention`].
    pub access_log_retention: Option<Duration>,
    pub max_response_time: Duration,
    pub fail_mode: FailMode,
    pub api_keys: Vec<ApiKey>,
    /// See [`Config::api_allowed_hosts`].
    pub api_allowed_hosts: Vec<String>,
    /// See [`Config::hook_secret`].
    pub hook_secret: Option<crate::config::HookSecret>,
    /// nginx `auth_request`: `NGINX_AUTH_STREAM_HEADER` (see `http::hooks::nginx_auth`).
    pub nginx_auth_stream_header: bool,
    /// Event tickets: passwords, access tokens, the ticket key, login throttling.
    pub ticketing: crate::ticketing::Ticketing,
    /// Signed tokens: the key ring `authorizer` verifies with, and minting.
    pub signing: Signing,
    /// Pushing cuts to media servers.
    pub control: crate::control::Control,
    /// The Content-Security-Policy of the web pages (see `http::pages::policy`).
    pub page_policy: hyper::header::HeaderValue,
    /// What `/metrics` exports.
    pub metrics: Metrics,
    /// Webhooks: the `access.denied` switch and cap (delivery runs in `serve`).
    pub webhooks: crate::webhooks::Webhooks,
}

impl App {
    /// `stores` as opened ([`open_store`], or composed by a test); every token read on the
    /// request path, and every token write this process makes, goes through a token cache put
    /// in front of `stores.tokens` here, so that writes invalidate it.
    pub fn new(
        config: &Config,
        mut stores: Stores,
        clock: Arc<dyn Clock>,
        hasher: TokenHasher,
    ) -> io::Result<Self> {
        let access_log = if config.enable_access_logs {
            Some(AccessLogWriter::spawn(Arc::clone(&stores.access_log))?)
        } else {
            None
        };
        let token_cache = Arc::new(CachedTokens::new(
            Arc::clone(&stores.tokens),
            Arc::clone(&clock),
            CachedTokens::DEFAULT_CAPACITY,
            CachedTokens::DEFAULT_RECHECK,
        ));
        stores.tokens = token_cache.clone();
        let ticketing = crate::ticketing::Ticketing::new(config, &hasher)
            .map_err(|e| io::Error::other(e.to_string()))?;
        // One store read at start-up, before anything is served (call `App::new` outside the
        // runtime: a blocking call must not run on a reactor thread).
        let signing = Signing::load(config, &hasher, stores.signing_keys.as_ref())
            .map_err(|e| io::Error::other(format!("cannot load the signing keys: {e}")))?;
        signing
            .refresh_revocations(stores.signing_keys.as_ref(), clock.now())
            .map_err(|e| io::Error::other(format!("cannot load the revoked tokens: {e}")))?;
        let authorizer = Authorizer::from_parts(
            Arc::clone(&stores.tokens),
            Arc::clone(&stores.sessions),
            clock,
            hasher,
            config.session_policy(),
        )
        .with_signed_keys(Arc::clone(signing.ring()))
        .with_revocations(Arc::clone(signing.revocations()));
        Ok(App {
            control: crate::control::Control::new(config.control.clone()),
            ticketing,
            stores,
            token_cache,
            authorizer,
            signing,
            page_policy: crate::http::pages::policy(&config.player_url_template),
            access_log,
            access_log_retention: config.access_log_retention,
            max_response_time: config.max_response_time,
            fail_mode: config.fail_mode,
            api_keys: config.api_keys.clone(),
            api_allowed_hosts: config.api_allowed_hosts.clone(),
            hook_secret: config.hook_secret.clone(),
            nginx_auth_stream_header: config.nginx_auth_stream_header,
            metrics: Metrics::new(),
            webhooks: crate::webhooks::Webhooks::default(),
        })
    }

    /// What follows a cut the store made: each session's media server is told to drop it (on
    /// tokio tasks: call this inside the runtime; it returns at once), and the access log
    /// records each cut with `reason`.
    pub fn announce_cut(&self, sessions: &[auth_core::session::Session], reason: &'static str) {
        if sessions.is_empty() {
            return;
        }
        self.control.push(sessions, reason);
        if let Some(writer) = &self.access_log {
            let now = self.clock().now();
            for session in sessions {
                writer.record(crate::control::cut_entry(session, reason, now));
            }
        }
        log::info!("{} session(s) cut: {reason}", sessions.len());
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        self.authorizer.clock()
    }

    pub fn hasher(&self) -> &TokenHasher {
        self.authorizer.hasher()
    }

    /// Runs a blocking store call off the reactor, bounded by the response budget. `None` when
    /// the budget ran out (the call itself finishes in the background).
    pub async fn blocking<T, F>(self: &Arc<Self>, work: F) -> Option<Result<T, auth_core::Error>>
    where
        T: Send + 'static,
        F: FnOnce(&App) -> Result<T, auth_core::Error> + Send + 'static,
    {
        self.blocking_or_late(work).await.ok()
    }

    /// As [`App::blocking`], but when the budget runs out hands back the still-running call, so
    /// that the caller can undo what it does once it finishes.
    pub async fn blocking_or_late<T, F>(
        self: &Arc<Self>,
        work: F,
    ) -> Result<Result<T, auth_core::Error>, Late<T>>
    where
        T: Send + 'static,
        F: FnOnce(&App) -> Result<T, auth_core::Error> + Send + 'static,
    {
        let app = Arc::clone(self);
        let mut task = tokio::task::spawn_blocking(move || work(&app));
        match tokio::time::timeout(self.max_response_time, &mut task).await {
            Ok(Ok(result)) => Ok(result),
            Ok(Err(join_error)) => Ok(Err(auth_core::Error::storage(format!(
                "store task failed: {join_error}"
            )))),
            Err(_elapsed) => Err(task),
        }
    }
}

impl App {
    /// Awaits a store answer that needs no blocking thread (a queued admission), bounded by the
    /// response budget like [`App::blocking_or_late`]; when the budget runs out, the answer goes
    /// on being awaited on a task of its own, handed back.
    pub async fn queued_or_late<T, F>(
        &self,
        mut answer: F,
    ) -> Result<Result<T, auth_core::Error>, Late<T>>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, auth_core::Error>> + Send + Unpin + 'static,
    {
        match tokio::time::timeout(self.max_response_time, &mut answer).await {
            Ok(result) => Ok(result),
            Err(_elapsed) => Err(tokio::spawn(answer)),
        }
    }
}

/// A store call that outlived the response budget.
pub type Late<T> = JoinHandle<Result<T, auth_core::Error>>;

/// Opens the configured store, creating the SQLite file's folder if needed.
pub fn open_store(database: &Database) -> Result<Arc<dyn Backend>, String> {
    Ok(match database {
        Database::Memory => Arc::new(MemoryStore::new()),
        Database::Postgres(url) => Arc::new(open_postgres(database, url)?),
        Database::Sqlite(path) => Arc::new(open_sqlite(path)?),
    })
}

/// The configured store as a source or target of `export` / `import`. An in-memory database has
/// nothing to give and keeps nothing it is given.
pub fn open_transfer(database: &Database) -> Result<Box<dyn Transfer>, String> {
    match database {
        Database::Memory => Err("export and import need a database that persists: \
                                 DATABASE_URL is memory:"
            .into()),
        Database::Postgres(url) => Ok(Box::new(open_postgres(database, url)?)),
        Database::Sqlite(path) => Ok(Box::new(open_sqlite(path)?)),
    }
}

fn open_postgres(database: &Database, url: &str) -> Result<PostgresStore, String> {
    PostgresStore::open(url).map_err(|e| format!("cannot open {}: {e}", database.describe()))
}

fn open_sqlite(path: &Path) -> Result<SqliteStore, String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    SqliteStore::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))
}

/// Where the token hashing key came from (for the start-up log line; never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Environment,
    File {
        path: PathBuf,
        created: bool,
    },
    /// An in-memory database: a random key that lives as long as the process, like the data.
    Ephemeral,
}

/// The HMAC key for token digests: `TOKEN_HASH_KEY` when set, else `token-hash.key` beside the
/// SQLite file, created (mode 0600, 32 random bytes, hex) on first use. Losing or changing the
/// key makes every stored token unknown: back it up with the database.
pub fn load_token_hasher(config: &Config) -> Result<(TokenHasher, KeySource), String> {
    let to_string = |e: auth_core::Error| e.to_string();
    if let Some(key) = &config.token_hash_key {
        return Ok((
            TokenHasher::new(key).map_err(to_string)?,
            KeySource::Environment,
        ));
    }
    let path = match &config.database {
        Database::Memory => {
            return Ok((
                TokenHasher::random().map_err(to_string)?,
                KeySource::Ephemeral,
            ))
        }
        Database::Sqlite(db) => db.with_file_name(TOKEN_HASH_KEY_FILE),
        // Config refuses a PostgreSQL URL without TOKEN_HASH_KEY: every node needs the same key.
        Database::Postgres(_) => return Err("TOKEN_HASH_KEY is required with PostgreSQL".into()),
    };
    let created = !path.exists();
    if created {
        create_key_file(&path)?;
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let key = hex::decode(text.trim())
        .map_err(|_| format!("{} does not hold a hex key", path.display()))?;
    let hasher = TokenHasher::new(&key).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((hasher, KeySource::File { path, created }))
}

pub const TOKEN_HASH_KEY_FILE: &str = "token-hash.key";

fn create_key_file(path: &Path) -> Result<(), String> {
    use std::io::Write as _;
    let key = auth_core::secret::random_key().map_err(|e| e.to_string())?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    writeln!(file, "{}", hex::encode(key))
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}
