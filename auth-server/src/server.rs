//! The running server: shared state, accept loop, background purge, graceful shutdown.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use auth_core::access_log::AccessLogWriter;
use auth_core::store::transfer::Transfer;
use auth_core::store::CachedStore;
use auth_core::{Authorizer, Clock, MemoryStore, PostgresStore, SqliteStore, Store, TokenHasher};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{ApiKey, Config, Database, FailMode};
use crate::http;
use crate::signing::{self, Signing};

/// How long a client may take to send its request headers (slow clients must not hold sockets).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for open connections to finish their requests.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// What every request handler shares.
pub struct App {
    pub authorizer: Authorizer,
    /// The same store as `authorizer.store()`, typed, for its background revalidation.
    pub token_cache: Arc<CachedStore>,
    pub access_log: Option<AccessLogWriter>,
    pub max_response_time: Duration,
    pub fail_mode: FailMode,
    pub api_keys: Vec<ApiKey>,
    /// nginx `auth_request`: `NGINX_AUTH_STREAM_HEADER` (see `http::nginx_auth`).
    pub nginx_auth_stream_header: bool,
    /// Event tickets: passwords, access tokens, the ticket key, login throttling.
    pub ticketing: crate::ticketing::Ticketing,
    /// Signed tokens: the key ring `authorizer` verifies with, and minting.
    pub signing: Signing,
}

impl App {
    pub fn new(
        config: &Config,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        hasher: TokenHasher,
    ) -> io::Result<Self> {
        let access_log = if config.enable_access_logs {
            Some(AccessLogWriter::spawn(Arc::clone(&store))?)
        } else {
            None
        };
        // Every token read on the request path goes through the cache; every token write made
        // by this process goes through it too, and so invalidates it.
        let token_cache = Arc::new(CachedStore::new(
            store,
            Arc::clone(&clock),
            CachedStore::DEFAULT_CAPACITY,
            CachedStore::DEFAULT_RECHECK,
        ));
        let store: Arc<dyn Store> = token_cache.clone();
        let ticketing = crate::ticketing::Ticketing::new(config, &hasher)
            .map_err(|e| io::Error::other(e.to_string()))?;
        // One store read at start-up, before anything is served (call `App::new` outside the
        // runtime: a blocking call must not run on a reactor thread).
        let signing = Signing::load(config, &hasher, store.as_ref())
            .map_err(|e| io::Error::other(format!("cannot load the signing keys: {e}")))?;
        let authorizer = Authorizer::new(store, clock, hasher, config.session_policy())
            .with_signed_keys(Arc::clone(signing.ring()));
        Ok(App {
            ticketing,
            token_cache,
            authorizer,
            signing,
            access_log,
            max_response_time: config.max_response_time,
            fail_mode: config.fail_mode,
            api_keys: config.api_keys.clone(),
            nginx_auth_stream_header: config.nginx_auth_stream_header,
        })
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        self.authorizer.store()
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

/// A store call that outlived the response budget.
pub type Late<T> = JoinHandle<Result<T, auth_core::Error>>;

/// Opens the configured store, creating the SQLite file's folder if needed.
pub fn open_store(database: &Database) -> Result<Arc<dyn Store>, String> {
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

/// A server accepting connections; stop it with [`RunningServer::shutdown`].
pub struct RunningServer {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl RunningServer {
    /// Binds `addr` (port 0 picks a free one) and starts serving.
    pub async fn start(
        addr: SocketAddr,
        app: Arc<App>,
        cleanup_interval: Duration,
    ) -> io::Result<RunningServer> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(serve(listener, app, cleanup_interval, stopped));
        Ok(RunningServer {
            local_addr,
            stop,
            task,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, lets open requests finish, writes the queued access log, and returns.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(err) = self.task.await {
            log::error!("server task failed: {err}");
        }
    }
}

async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    cleanup_interval: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    let purge = tokio::spawn(purge_expired_sessions(Arc::clone(&app), cleanup_interval));
    let revalidate = tokio::spawn(revalidate_token_cache(Arc::clone(&app)));
    let reload_keys = tokio::spawn(reload_signing_keys(Arc::clone(&app)));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true);

    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(conn) => conn,
                    Err(err) => {
                        // Usually descriptor exhaustion: back off instead of spinning.
                        log::warn!("accept failed: {err}");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let app = Arc::clone(&app);
                let service = service_fn(move |request| http::route(Arc::clone(&app), request, peer));
                let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
                tokio::spawn(async move {
                    if let Err(err) = connection.await {
                        log::debug!("connection from {peer} ended with an error: {err}");
                    }
                });
            }
            _ = stopped.changed() => break,
        }
    }
    drop(listener);
    purge.abort();
    revalidate.abort();
    reload_keys.abort();
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(DRAIN_TIMEOUT) => log::warn!("some connections were still open after {DRAIN_TIMEOUT:?}; closing them"),
    }
    let flush = tokio::task::spawn_blocking(move || {
        if let Some(writer) = &app.access_log {
            writer.shutdown();
            let stats = writer.stats();
            log::info!(
                "access log flushed: {} written, {} dropped",
                stats.written.load(std::sync::atomic::Ordering::Relaxed),
                stats.dropped.load(std::sync::atomic::Ordering::Relaxed)
            );
        }
    });
    if let Err(err) = flush.await {
        log::error!("flushing the access log failed: {err}");
    }
}

/// Keeps the token cache current ahead of requests (see [`CachedStore::revalidate`]).
async fn revalidate_token_cache(app: Arc<App>) {
    let mut ticker = tokio::time::interval(CachedStore::DEFAULT_RECHECK / 2);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let cache = Arc::clone(&app.token_cache);
        match tokio::task::spawn_blocking(move || cache.revalidate()).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => log::warn!("revalidating the token cache failed: {err}"),
            Err(err) => log::warn!("token cache task failed: {err}"),
        }
    }
}

/// Picks up keys generated or retired elsewhere (the CLI, another node).
async fn reload_signing_keys(app: Arc<App>) {
    let mut ticker = tokio::time::interval(signing::RELOAD_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let app = Arc::clone(&app);
        let reload = tokio::task::spawn_blocking(move || app.signing.reload(app.store().as_ref()));
        match reload.await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => log::warn!(
                "reloading the signing keys failed (the previous keys stay in use): {err}"
            ),
            Err(err) => log::warn!("signing key reload task failed: {err}"),
        }
    }
}

async fn purge_expired_sessions(app: Arc<App>, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let store = Arc::clone(app.store());
        let now = app.clock().now();
        match tokio::task::spawn_blocking(move || store.purge_expired_sessions(now)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(purged)) => log::debug!("purged {purged} expired sessions"),
            Ok(Err(err)) => log::warn!("purging expired sessions failed: {err}"),
            Err(err) => log::warn!("purge task failed: {err}"),
        }
        let store = Arc::clone(app.store());
        match tokio::task::spawn_blocking(move || store.purge_ticket_state(now)).await {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => log::warn!("purging old ticket state failed: {err}"),
            Err(err) => log::warn!("purge task failed: {err}"),
        }
    }
}
