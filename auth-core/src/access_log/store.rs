//! Where access log records go: [`AccessLogStore`], its listing filter and its counts.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{AccessLogEntry, AccessLogRecord, AccessResult, StoredEntry};
use crate::clock::Timestamp;
use crate::error::Result;
use crate::page::Page;
use crate::token::TokenId;

/// Which access log records to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct AccessLogFilter {
    pub token_id: Option<TokenId>,
    /// `allowed` or `denied`.
    pub result: Option<AccessResult>,
    /// A deny reason code.
    pub reason: Option<String>,
    pub user_id: Option<String>,
    pub stream: Option<String>,
    /// Inclusive.
    pub since: Option<Timestamp>,
    /// Exclusive.
    pub until: Option<Timestamp>,
    pub limit: u32,
    pub offset: u32,
}

impl AccessLogFilter {
    pub(crate) fn matches(&self, e: &StoredEntry) -> bool {
        self.token_id.is_none_or(|t| e.token_id == Some(t))
            && self.result.is_none_or(|r| e.result == r.as_str())
            && self
                .reason
                .as_deref()
                .is_none_or(|r| e.reason.as_deref() == Some(r))
            && self
                .user_id
                .as_deref()
                .is_none_or(|u| e.user_id.as_deref() == Some(u))
            && self.stream.as_deref().is_none_or(|s| e.stream == s)
            && self.since.is_none_or(|t| e.at >= t)
            && self.until.is_none_or(|t| e.at < t)
    }
}

/// Decisions over a time window, and the sessions live now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AccessStats {
    pub since: Timestamp,
    pub until: Timestamp,
    pub allowed: u64,
    pub denied: u64,
    /// Denied decisions per reason code.
    pub denied_by_reason: BTreeMap<String, u64>,
    pub live_sessions: u64,
    /// Live sessions (holding a slot) per stream.
    pub live_sessions_by_stream: BTreeMap<String, u64>,
}

/// Most access log records one purge statement deletes.
pub const PURGE_BATCH: i64 = 10_000;

/// The access log's sink and its reads.
pub trait AccessLogStore: Send + Sync {
    /// Writes a batch of access log entries in one transaction.
    fn append_access_logs(&self, entries: &[AccessLogEntry]) -> Result<()>;

    fn access_logs(&self, filter: &AccessLogFilter) -> Result<Page<AccessLogRecord>>;

    /// Deletes the records logged before `before`; returns how many went. Backends delete in
    /// bounded batches ([`PURGE_BATCH`]) so that new records are written in between.
    fn purge_access_logs(&self, before: Timestamp) -> Result<u64>;

    /// Counts of decisions logged in `[since, until)` and the sessions holding a slot at `now`.
    fn access_stats(
        &self,
        since: Timestamp,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<AccessStats>;
}
