//! The access log: one record per decision, written off the request path.
//!
//! [`AccessLogWriter`] owns a background thread that drains a channel into the store in batches:
//! under light load each entry is written at once; under heavy load whatever queued up while the
//! previous batch was being written goes in one transaction. Recording never blocks the caller.
//! [`AccessLogWriter::shutdown`] closes the channel and waits until every queued entry is written,
//! so a clean shutdown loses nothing.

pub mod store;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
pub use store::{AccessLogFilter, AccessLogStore, AccessStats, PURGE_BATCH};

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::decision::{AuthRequest, Decision};
use crate::secret;
use crate::token::TokenId;

/// Most entries written in one call to the store. A batch holds what arrived during [`LINGER`]
/// (a few hundred rows at typical rates); only a backlog makes it larger, so that the log catches
/// up in a few large writes instead of falling further behind.
pub const MAX_BATCH: usize = 8192;

/// How long the writer waits after an entry arrives before writing, so that entries arriving
/// meanwhile share its transaction. Bounds how late a record appears; shutdown does not wait.
pub const LINGER: Duration = Duration::from_millis(50);

/// Whether the request was allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
            stream: clipped(request.stream).to_owned(),
            ip: request.ip.to_string(),
            proto: clipped(request.proto).to_owned(),
            request_type: request.request_type.as_str(),
            session_id: request.session_id.map(|id| clipped(id).to_owned()),
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

/// The most of a client's text (stream name, protocol, session id) one record keeps: a name
/// nobody plays is not worth storing whole, and a flood of 60 KB names wrote 123 MB in seconds.
pub const MAX_LOGGED_FIELD: usize = 256;

/// `text` cut to at most [`MAX_LOGGED_FIELD`] bytes, on a character boundary.
fn clipped(text: &str) -> &str {
    let mut end = text.len().min(MAX_LOGGED_FIELD);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
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

/// Counters of the writer, for health output, metrics and tests.
#[derive(Debug, Default)]
pub struct AccessLogStats {
    pub written: AtomicU64,
    pub dropped: AtomicU64,
    /// Recorded, not yet written nor given up: the backlog a slow store builds.
    pub pending: AtomicU64,
}

/// Batches access log entries into the store from a background thread.
///
/// Shared by reference (`&self`) across request handlers; [`AccessLogWriter::shutdown`] may be
/// called while handlers still hold it: whatever they record afterwards is counted as dropped.
pub struct AccessLogWriter {
    sender: Sender<Message>,
    thread: Mutex<Option<JoinHandle<()>>>,
    stats: Arc<AccessLogStats>,
}

// Boxing the entry would cost an allocation per request to shrink a message sent once.
#[allow(clippy::large_enum_variant)]
enum Message {
    Entry(AccessLogEntry),
    /// Write what is queued, then stop.
    Close,
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
    pub fn spawn(store: Arc<dyn AccessLogStore>) -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::channel();
        let stats = Arc::new(AccessLogStats::default());
        let thread_stats = Arc::clone(&stats);
        let thread = std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || write_loop(store.as_ref(), receiver, &thread_stats))?;
        Ok(AccessLogWriter {
            sender,
            thread: Mutex::new(Some(thread)),
            stats,
        })
    }

    /// Queues one entry; never blocks.
    pub fn record(&self, entry: AccessLogEntry) {
        // Counted before sending: the writer may take it off the queue before `send` returns.
        self.stats.pending.fetch_add(1, Ordering::Relaxed);
        if self.sender.send(Message::Entry(entry)).is_err() {
            // The writer has been shut down.
            self.stats.pending.fetch_sub(1, Ordering::Relaxed);
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn stats(&self) -> &AccessLogStats {
        &self.stats
    }

    /// Writes everything recorded so far, then stops the thread. Idempotent.
    pub fn shutdown(&self) {
        let thread = match self.thread.lock() {
            Ok(mut guard) => guard.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        let Some(thread) = thread else { return };
        // Fails only if the thread already died; joining tells.
        let _ = self.sender.send(Message::Close);
        if thread.join().is_err() {
            log::error!("the access log writer thread panicked");
        }
    }
}

impl Drop for AccessLogWriter {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn write_loop(store: &dyn AccessLogStore, receiver: Receiver<Message>, stats: &AccessLogStats) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut closing = false;
    while !closing {
        match receiver.recv() {
            Ok(Message::Entry(entry)) => {
                batch.push(entry);
                // Let a batch build up: one transaction per LINGER instead of one per request
                // keeps the store's single writer free for admissions.
                std::thread::sleep(LINGER);
            }
            Ok(Message::Close) | Err(_) => closing = true,
        }
        // Take whatever else is queued, up to a batch; when closing, everything.
        loop {
            if batch.len() >= MAX_BATCH {
                write_with_retries(store, &batch, stats);
                batch.clear();
            }
            match receiver.try_recv() {
                Ok(Message::Entry(entry)) => batch.push(entry),
                Ok(Message::Close) => closing = true,
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            write_with_retries(store, &batch, stats);
            batch.clear();
        }
    }
}

fn write_with_retries(
    store: &dyn AccessLogStore,
    batch: &[AccessLogEntry],
    stats: &AccessLogStats,
) {
    let mut delays = WRITE_RETRIES.iter();
    // Written or given up, the batch leaves the backlog either way.
    let _settled = Settled(stats, batch.len() as u64);
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

/// Takes a batch off [`AccessLogStats::pending`] when dropped, however its write ended.
struct Settled<'a>(&'a AccessLogStats, u64);

impl Drop for Settled<'_> {
    fn drop(&mut self) {
        self.0.pending.fetch_sub(self.1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access_log::AccessLogFilter;
    use crate::decision::{Denial, DenyReason, RequestType};
    use crate::store::MemoryStore;

    fn entry(i: u64) -> AccessLogEntry {
        let request = AuthRequest {
            token: Some("abcdefghijkl"),
            stream: "s",
            ip: "10.0.0.1".parse().unwrap(),
            proto: "hls",
            request_type: RequestType::NewSession,
            session_id: None,
            action: crate::token::Action::Play,
            segment: false,
            source: "",
            media_session_id: None,
        };
        let decision = Decision::Deny(Denial::new(DenyReason::TokenNotFound));
        AccessLogEntry::new(
            &request,
            &decision,
            Timestamp::from_unix_seconds(i as i64),
            Duration::from_micros(i),
        )
    }

    /// A client's long names are cut before they are stored (a flood of 60 KB stream names
    /// wrote 123 MB of log in seconds).
    #[test]
    fn long_client_fields_are_cut() {
        let long = "é".repeat(30_000);
        let request = AuthRequest {
            token: Some("abcdefghijkl"),
            stream: &long,
            ip: "10.0.0.1".parse().unwrap(),
            proto: &long,
            request_type: RequestType::NewSession,
            session_id: Some(&long),
            action: crate::token::Action::Play,
            segment: false,
            source: "",
            media_session_id: None,
        };
        let decision = Decision::Deny(Denial::new(DenyReason::TokenNotFound));
        let cut = AccessLogEntry::new(&request, &decision, Timestamp::UNIX_EPOCH, Duration::ZERO);
        for field in [&cut.stream, &cut.proto, cut.session_id.as_ref().unwrap()] {
            assert!(
                field.len() <= MAX_LOGGED_FIELD && !field.is_empty(),
                "{}",
                field.len()
            );
            assert!(long.starts_with(field.as_str()));
        }
        assert_eq!(entry(1).stream, "s", "short names are kept whole");
    }

    #[test]
    fn shutdown_writes_everything_recorded_before_it() {
        let store = Arc::new(MemoryStore::new());
        let writer = AccessLogWriter::spawn(store.clone()).unwrap();
        for i in 0..5000 {
            writer.record(entry(i));
        }
        writer.shutdown();
        assert_eq!(writer.stats().written.load(Ordering::Relaxed), 5000);
        assert_eq!(writer.stats().pending.load(Ordering::Relaxed), 0);
        let logs = store
            .access_logs(&AccessLogFilter {
                limit: 1000,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(logs.total, 5000);
        assert_eq!(
            logs.items[0].entry.latency_us, 4999,
            "newest first, nothing lost"
        );
        writer.record(entry(1));
        assert_eq!(
            writer.stats().dropped.load(Ordering::Relaxed),
            1,
            "late entries are counted"
        );
        assert_eq!(writer.stats().pending.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn entries_carry_only_a_token_prefix() {
        let e = entry(1);
        assert_eq!(e.token_prefix.as_deref(), Some("abcd"));
        assert_eq!(e.reason, Some("token_not_found"));
        assert_eq!(e.result, AccessResult::Denied);
    }
}
