//! The running server: the accept loop, the background tasks (session purge, access log
//! retention, token cache, key ring and token revocations kept current), and a shutdown that
//! drains connections and the access log.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use auth_core::store::CachedTokens;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::app::App;
use crate::http;
use crate::signing;

/// How long a client may take to send its request headers (slow clients must not hold sockets).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for open connections to finish their requests.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

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
    let revocations = tokio::spawn(refresh_revocations(Arc::clone(&app)));
    let reload_keys = tokio::spawn(reload_signing_keys(Arc::clone(&app)));
    let deliveries = crate::webhooks::spawn_workers(&app, &stopped);
    let expire_logs = tokio::spawn(purge_old_access_logs(Arc::clone(&app)));
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
    revocations.abort();
    reload_keys.abort();
    expire_logs.abort();
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(DRAIN_TIMEOUT) => log::warn!("some connections were still open after {DRAIN_TIMEOUT:?}; closing them"),
    }
    // Batches in flight finish (each within one claim lease); what is queued stays in the store
    // for the next start.
    let drained = tokio::time::timeout(crate::webhooks::DRAIN, futures_join(deliveries)).await;
    if drained.is_err() {
        log::warn!(
            "webhook deliveries still in flight after {:?}; they are retried after the next start",
            crate::webhooks::DRAIN
        );
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

/// Waits for every task.
async fn futures_join(tasks: Vec<JoinHandle<()>>) {
    for task in tasks {
        let _ = task.await;
    }
}

/// A ticker for a background task: a tick missed while the last round ran long (a slow store)
/// is not made up in a burst.
fn ticker(every: Duration) -> tokio::time::Interval {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker
}

/// Runs a store call of a background task on the blocking pool; its value, or `None` with the
/// failure logged as `what` ("`what` failed: ...").
async fn in_background<T, F>(what: &str, work: F) -> Option<T>
where
    T: Send + 'static,
    F: FnOnce() -> auth_core::Result<T> + Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(value)) => Some(value),
        Ok(Err(err)) => {
            log::warn!("{what} failed: {err}");
            None
        }
        Err(err) => {
            log::warn!("{what} task failed: {err}");
            None
        }
    }
}

/// Keeps the token cache current ahead of requests (see [`CachedTokens::revalidate`]).
async fn revalidate_token_cache(app: Arc<App>) {
    let mut ticker = ticker(CachedTokens::DEFAULT_RECHECK / 2);
    loop {
        ticker.tick().await;
        let cache = Arc::clone(&app.token_cache);
        in_background("revalidating the token cache", move || cache.revalidate()).await;
    }
}

/// Picks up signed tokens revoked elsewhere (another node, the CLI), at the pace the token
/// cache notices token changes: the hot path never reads the store for them.
async fn refresh_revocations(app: Arc<App>) {
    let mut ticker = ticker(CachedTokens::DEFAULT_RECHECK / 2);
    loop {
        ticker.tick().await;
        let app = Arc::clone(&app);
        in_background(
            "refreshing the revoked tokens (the last ones known stay refused)",
            move || {
                let now = app.clock().now();
                app.signing
                    .refresh_revocations(app.stores.signing_keys.as_ref(), now)
            },
        )
        .await;
    }
}

/// Picks up keys generated or retired elsewhere (the CLI, another node).
async fn reload_signing_keys(app: Arc<App>) {
    let mut ticker = ticker(signing::RELOAD_INTERVAL);
    loop {
        ticker.tick().await;
        let app = Arc::clone(&app);
        in_background(
            "reloading the signing keys (the previous keys stay in use)",
            move || app.signing.reload(app.stores.signing_keys.as_ref()),
        )
        .await;
    }
}

/// How often access log records past `ACCESS_LOG_RETENTION` are deleted (and once at start).
const ACCESS_LOG_PURGE_INTERVAL: Duration = Duration::from_secs(3600);

/// Deletes access log records older than `ACCESS_LOG_RETENTION`, so that the log (which every
/// decision writes to, refused ones included) cannot grow without bound.
async fn purge_old_access_logs(app: Arc<App>) {
    let Some(retention) = app.access_log_retention else {
        return;
    };
    let mut ticker = ticker(ACCESS_LOG_PURGE_INTERVAL);
    loop {
        ticker.tick().await;
        let log = Arc::clone(&app.stores.access_log);
        let before = app.clock().now().saturating_sub(retention);
        let purged = in_background("purging old access log records", move || {
            log.purge_access_logs(before)
        });
        if let Some(purged @ 1..) = purged.await {
            log::info!("purged {purged} access log records past retention");
        }
    }
}

async fn purge_expired_sessions(app: Arc<App>, every: Duration) {
    let mut ticker = ticker(every);
    loop {
        ticker.tick().await;
        let sessions = Arc::clone(&app.stores.sessions);
        let now = app.clock().now();
        let purged = in_background("purging expired sessions", move || {
            sessions.purge_expired_sessions(now)
        });
        if let Some(purged @ 1..) = purged.await {
            log::debug!("purged {purged} expired sessions");
        }
        // Sessions whose token stopped allowing them without a request saying so (validity ran
        // out; changed from the command line): cut, and pushed to their media servers.
        let stores = app.stores.clone();
        let cut = in_background("cutting disqualified sessions", move || {
            crate::control::cut_disqualified(&stores, now)
        });
        for (session, reason) in cut.await.unwrap_or_default() {
            app.announce_cut(std::slice::from_ref(&session), reason.code());
        }
        let ticketing = Arc::clone(&app.stores.ticketing);
        in_background("purging old ticket state", move || {
            ticketing.purge_ticket_state(now)
        })
        .await;
        let keys = Arc::clone(&app.stores.signing_keys);
        in_background("purging lapsed token revocations", move || {
            keys.purge_signed_revocations(now)
        })
        .await;
    }
}
