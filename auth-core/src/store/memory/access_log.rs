//! The access log: [`AccessLogStore`] for [`MemoryStore`](super::MemoryStore).

use super::*;
use crate::access_log::AccessLogStore;

impl AccessLogStore for MemoryStore {
    fn append_access_logs(&self, entries: &[AccessLogEntry]) -> Result<()> {
        let mut state = self.state()?;
        for entry in entries {
            // After the last one kept: ids are never reused, even after a purge.
            let id = state.logs.last().map_or(0, |r| r.id) + 1;
            state.logs.push(AccessLogRecord {
                id,
                entry: entry.into(),
            });
        }
        Ok(())
    }

    fn purge_access_logs(&self, before: Timestamp) -> Result<u64> {
        let mut state = self.state()?;
        let count = state.logs.len();
        state.logs.retain(|r| r.entry.at >= before);
        Ok((count - state.logs.len()) as u64)
    }

    fn access_logs(&self, filter: &AccessLogFilter) -> Result<Page<AccessLogRecord>> {
        let state = self.state()?;
        let matching: Vec<&AccessLogRecord> = state
            .logs
            .iter()
            .rev()
            .filter(|r| filter.matches(&r.entry))
            .collect();
        let items = matching
            .iter()
            .skip(filter.offset as usize)
            .take(clamp_limit(filter.limit) as usize)
            .map(|r| (*r).clone())
            .collect();
        Ok(Page {
            items,
            total: matching.len() as u64,
        })
    }

    fn access_stats(
        &self,
        since: Timestamp,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<AccessStats> {
        let state = self.state()?;
        let mut stats = AccessStats {
            since,
            until,
            ..Default::default()
        };
        for record in state
            .logs
            .iter()
            .filter(|r| r.entry.at >= since && r.entry.at < until)
        {
            if record.entry.result == AccessResult::Allowed.as_str() {
                stats.allowed += 1;
            } else {
                stats.denied += 1;
                let reason = record.entry.reason.clone().unwrap_or_default();
                *stats.denied_by_reason.entry(reason).or_default() += 1;
            }
        }
        for session in state.sessions.values().filter(|s| s.holds_slot(now)) {
            stats.live_sessions += 1;
            *stats
                .live_sessions_by_stream
                .entry(session.stream.clone())
                .or_default() += 1;
        }
        Ok(stats)
    }
}
