//! The access log: [`AccessLogStore`] for [`PostgresStore`](super::PostgresStore).

use super::*;
use crate::access_log::{AccessLogStore, PURGE_BATCH};

impl AccessLogStore for PostgresStore {
    /// One statement (so one transaction and one round trip) for the whole batch: the columns
    /// travel as arrays and `unnest` turns them back into rows, in order.
    fn append_access_logs(&self, entries: &[AccessLogEntry]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let text = |s: &str| nul_free(s).into_owned();
        let opt_text = |s: Option<&str>| s.map(text);
        let mut at = Vec::with_capacity(entries.len());
        let mut token_id = Vec::with_capacity(entries.len());
        let mut token_prefix = Vec::with_capacity(entries.len());
        let mut user_id = Vec::with_capacity(entries.len());
        let mut stream = Vec::with_capacity(entries.len());
        let mut ip = Vec::with_capacity(entries.len());
        let mut proto = Vec::with_capacity(entries.len());
        let mut request_type = Vec::with_capacity(entries.len());
        let mut session_id = Vec::with_capacity(entries.len());
        let mut result = Vec::with_capacity(entries.len());
        let mut reason = Vec::with_capacity(entries.len());
        let mut latency_us = Vec::with_capacity(entries.len());
        for e in entries {
            at.push(e.at.unix_micros());
            token_id.push(e.token_id);
            token_prefix.push(opt_text(e.token_prefix.as_deref()));
            user_id.push(opt_text(e.user_id.as_deref()));
            stream.push(text(&e.stream));
            ip.push(text(&e.ip));
            proto.push(text(&e.proto));
            request_type.push(text(e.request_type));
            session_id.push(opt_text(e.session_id.as_deref()));
            result.push(e.result.as_str());
            reason.push(opt_text(e.reason));
            latency_us.push(i64::try_from(e.latency_us).unwrap_or(i64::MAX));
        }
        self.conn()?.execute_typed(
            "INSERT INTO access_logs (at, token_id, token_prefix, user_id, stream, ip, proto, \
             request_type, session_id, result, reason, latency_us) \
             SELECT at, token_id, token_prefix, user_id, stream, ip, proto, \
             request_type, session_id, result, reason, latency_us \
             FROM unnest($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::TEXT[], \
             $5::TEXT[], $6::TEXT[], $7::TEXT[], $8::TEXT[], $9::TEXT[], $10::TEXT[], \
             $11::TEXT[], $12::BIGINT[]) WITH ORDINALITY AS batch (at, token_id, token_prefix, \
             user_id, stream, ip, proto, request_type, session_id, result, reason, latency_us, n) \
             ORDER BY n",
            &[
                (&at, Type::INT8_ARRAY),
                (&token_id, Type::INT8_ARRAY),
                (&token_prefix, Type::TEXT_ARRAY),
                (&user_id, Type::TEXT_ARRAY),
                (&stream, Type::TEXT_ARRAY),
                (&ip, Type::TEXT_ARRAY),
                (&proto, Type::TEXT_ARRAY),
                (&request_type, Type::TEXT_ARRAY),
                (&session_id, Type::TEXT_ARRAY),
                (&result, Type::TEXT_ARRAY),
                (&reason, Type::TEXT_ARRAY),
                (&latency_us, Type::INT8_ARRAY),
            ],
        )?;
        Ok(())
    }

    fn purge_access_logs(&self, before: Timestamp) -> Result<u64> {
        let mut purged = 0;
        loop {
            let batch = self.conn()?.execute(
                "DELETE FROM access_logs WHERE id IN \
                 (SELECT id FROM access_logs WHERE at < $1 LIMIT $2)",
                &[&before.unix_micros(), &PURGE_BATCH],
            )?;
            purged += batch;
            if (batch as i64) < PURGE_BATCH {
                return Ok(purged);
            }
        }
    }

    fn access_logs(&self, filter: &AccessLogFilter) -> Result<Page<AccessLogRecord>> {
        let mut filters = Where::default();
        filters.integer("token_id = $?", filter.token_id);
        filters.text("result = $?", filter.result.map(AccessResult::as_str));
        filters.text("reason = $?", filter.reason.as_deref());
        filters.text("user_id = $?", filter.user_id.as_deref());
        filters.text("stream = $?", filter.stream.as_deref());
        filters.integer("at >= $?", filter.since.map(Timestamp::unix_micros));
        filters.integer("at < $?", filter.until.map(Timestamp::unix_micros));
        filters.page(
            &mut *self.conn()?,
            "access_logs",
            ACCESS_LOG_COLUMNS,
            "id DESC",
            (filter.limit, filter.offset),
            access_log_from_row,
        )
    }

    fn access_stats(
        &self,
        since: Timestamp,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<AccessStats> {
        let mut conn = self.conn()?;
        let mut stats = AccessStats {
            since,
            until,
            ..Default::default()
        };
        let (since_us, until_us, now_us) =
            (since.unix_micros(), until.unix_micros(), now.unix_micros());
        let rows = conn.query_typed(
            "SELECT result, COALESCE(reason, ''), COUNT(*) FROM access_logs \
             WHERE at >= $1 AND at < $2 GROUP BY result, COALESCE(reason, '')",
            &[(&since_us, Type::INT8), (&until_us, Type::INT8)],
        )?;
        for row in &rows {
            let result: String = row.try_get(0)?;
            let reason: String = row.try_get(1)?;
            let count = count(row, 2)?;
            if result == AccessResult::Allowed.as_str() {
                stats.allowed += count;
            } else {
                stats.denied += count;
                *stats.denied_by_reason.entry(reason).or_default() += count;
            }
        }
        let rows = conn.query_typed(
            "SELECT stream, COUNT(*) FROM sessions \
             WHERE expires_at > $1 AND terminated_at IS NULL GROUP BY stream",
            &[(&now_us, Type::INT8)],
        )?;
        for row in &rows {
            let stream: String = row.try_get(0)?;
            let count = count(row, 1)?;
            stats.live_sessions += count;
            stats.live_sessions_by_stream.insert(stream, count);
        }
        Ok(stats)
    }
}

const ACCESS_LOG_COLUMNS: &str = "id, at, token_id, token_prefix, user_id, stream, ip, proto, \
     request_type, session_id, result, reason, latency_us";

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
