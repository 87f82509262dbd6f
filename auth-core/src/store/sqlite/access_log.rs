//! The access log: [`AccessLogStore`] for [`SqliteStore`](super::SqliteStore).

use super::*;
use crate::access_log::{AccessLogStore, PURGE_BATCH};

impl AccessLogStore for SqliteStore {
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

    fn purge_access_logs(&self, before: Timestamp) -> Result<u64> {
        let mut purged = 0;
        loop {
            let batch = self.log_writer.run(move |conn| {
                Ok(conn
                    .prepare_cached(
                        "DELETE FROM access_logs WHERE id IN \
                         (SELECT id FROM access_logs WHERE at < ?1 LIMIT ?2)",
                    )?
                    .execute(params![before.unix_micros(), PURGE_BATCH])?)
            })?;
            purged += batch as u64;
            if (batch as i64) < PURGE_BATCH {
                return Ok(purged);
            }
        }
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
}

const ACCESS_LOG_COLUMNS: &str = "id, at, token_id, token_prefix, user_id, stream, ip, proto, \
     request_type, session_id, result, reason, latency_us";
