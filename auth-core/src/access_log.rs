//! The access log: one record per decision, written off the request path.
//!
//! [`AccessLogWriter`] owns a background thread that drains a channel into the store in batches:
//! under light load each entry is written at once; under heavy load whatever queued up while the
//! previous batch was being written goes in one transaction. Recording never blocks the caller.
//! [`AccessLogWriter::shutdown`] closes the channel and waits until every queued entry is written,
//! so a clean shutdown loses nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;

use crate::clock::Timestamp;
use crate::decision::{AuthRequest, Decision};
use crate::secret;
use crate::store::Store;
use crate::token::TokenId;

/// Most entries written in one transaction.
pub const MAX_BATCH: usize = 1024;

/// Whether the request was allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessResult {
    Allowed,
    Denied,
}

impl AccessResult {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessResult::Allowed => "allowed",
            AccessResult::Denied => "denied",
        }
    }
}

/// One decision, as recorded. Holds a short prefix of the presented token, never the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessLogEntry {
    pub at: Timestamp,
    pub token_id: Option<TokenId>,
    pub token_prefix: Option<String>,
    pub user_id: Option<String>,
    pub stream: String,
    pub ip: String,
    pub proto: String,
    pub request_type: &'static str,
    pub session_id: Option<String>,
    pub result: AccessResult,
    pub reason: Option<&'static str>,
    pub latency_us: u64,
}

impl AccessLogEntry {
    pub fn new(
        request: &AuthRequest<'_>,
        decision: &Decision,
        at: Timestamp,
        latency: Duration,
    ) -> Self {
        AccessLogEntry {
            at,
            token_id: decision.token_id(),
            token_prefix: request.token.map(|t| secret::prefix(t).to_owned()),
            user_id: decision.user_id().map(str::to_owned),
            stream: request.stream.to_owned(),
            ip: request.ip.to_string(),
            proto: request.proto.to_owned(),
            request_type: request.request_type.as_str(),
            session_id: request.session_id.map(str::to_owned),
            result: if decision.is_allow() {
                AccessResult::Allowed
            } else {
                AccessResult::Denied
            },
            reason: decision.deny_reason().map(|r| r.code()),
            latency_us: u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
        }
    }
}

/// A stored access log record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessLogRecord {
    pub id: i64,
    #[serde(flatten)]
    pub entry: StoredEntry,
}

/// The stored form of an entry: the static strings of [`AccessLogEntry`] come back owned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredEntry {
    pub at: Timestamp,
    pub token_id: Option<TokenId>,
    pub token_prefix: Option<String>,
    pub user_id: Option<String>,
    pub stream: String,
    pub ip: String,
    pub proto: String,
    pub request_type: String,
    pub session_id: Option<String>,
    pub result: String,
    pub reason: Option<String>,
    pub latency_us: u64,
}

impl From<&AccessLogEntry> for StoredEntry {
    fn from(e: &AccessLogEntry) -> Self {
        StoredEntry {
            at: e.at,
            token_id: e.token_id,
            token_prefix: e.token_prefix.clone(),
            user_id: e.user_id.clone(),
            stream: e.stream.clone(),
            ip: e.ip.clone(),
            proto: e.proto.clone(),
            request_type: e.request_type.to_owned(),
            session_id: e.session_id.clone(),
            result: e.result.as_str().to_owned(),
            reason: e.reason.map(str::to_owned),
            latency_us: e.latency_us,
        }
    }
}

/// Counters of the writer, for health output and tests.
#[derive(Debug, Default)]
pub struct AccessLogStats {
    pub written: AtomicU64,
    pub dropped: AtomicU64,
}

/// Batches access log entries into the store from a background thread.
pub struct AccessLogWriter {
    sender: Option<Sender<AccessLogEntry>>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<AccessLogStats>,
}

/// How often a failed batch write is retried before its entries are given up (and counted in
/// [`AccessLogStats::dropped`]): a store that is down for longer than this must not make the
/// queue grow without bound.
const WRITE_RETRIES: [Duration; 4] = [
    Duration::from_millis(50),
    Duration::from_millis(250),
    Duration::from_secs(1),
    Duration::from_secs(3),
];

impl AccessLogWriter {
    pub fn spawn(store: Arc<dyn Store>) -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::channel();
        let stats = Arc::new(AccessLogStats::default());
        let thread_stats = Arc::clone(&stats);
        let thread = std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || write_loop(store.as_ref(), receiver, &thread_stats))?;
        Ok(AccessLogWriter {
            sender: Some(sender),
            thread: Some(thread),
            stats,
        })
    }

    /// Queues one entry; never blocks.
    pub fn record(&self, entry: AccessLogEntry) {
        let Some(sender) = &self.sender else { return };
        if sender.send(entry).is_err() {
            // The writer thread is gone (it only exits on shutdown, or if it panicked).
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn stats(&self) -> &AccessLogStats {
        &self.stats
    }

    /// Writes everything queued so far, then stops the thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        drop(self.sender.take());
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                log::error!("the access log writer thread panicked");
            }
        }
    }
}

impl Drop for AccessLogWriter {
    fn drop(&mut self) {
        self.stop();
    }
}

fn write_loop(store: &dyn Store, receiver: Receiver<AccessLogEntry>, stats: &AccessLogStats) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // `recv` returns Err only once every sender is gone and the queue is empty: that is the drain.
    while let Ok(first) = receiver.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(entry) => batch.push(entry),
                Err(_) => break,
            }
        }
        write_with_retries(store, &batch, stats);
        batch.clear();
    }
}

fn write_with_retries(store: &dyn Store, batch: &[AccessLogEntry], stats: &AccessLogStats) {
    let mut delays = WRITE_RETRIES.iter();
    loop {
        match store.append_access_logs(batch) {
            Ok(()) => {
                stats
                    .written
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                return;
            }
            Err(err) => match delays.next() {
                Some(delay) => {
                    log::warn!("access log write failed, retrying in {delay:?}: {err}");
                    std::thread::sleep(*delay);
                }
                None => {
                    log::error!(
                        "access log write failed, {} entries lost: {err}",
                        batch.len()
                    );
                    stats
                        .dropped
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    return;
                }
            },
        }
    }
}
