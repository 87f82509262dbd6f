//! `/api/access-logs` (newest first, filtered, paginated) and `/api/stats` (decisions over a
//! window, live sessions per stream).

use std::sync::Arc;
use std::time::Duration;

use auth_core::access_log::AccessLogFilter;
use auth_core::access_log::AccessResult;
use auth_core::{Clock, DenyReason, Timestamp};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::Deserialize;

use super::paging::Window;
use super::{call, query, Answer};
use crate::app::App;
use crate::http::json;
use crate::http::ApiError;

/// The window `/api/stats` covers when none is given.
const DEFAULT_STATS_WINDOW: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    result: Option<AccessResult>,
    reason: Option<String>,
    user_id: Option<String>,
    stream: Option<String>,
    token_id: Option<i64>,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    limit: Option<u32>,
    offset: Option<u32>,
}

pub(super) async fn list(app: &Arc<App>, request: &Request<Incoming>) -> Answer {
    let q: ListQuery = query(request)?;
    let window = Window::new(q.limit, q.offset)?;
    if let Some(reason) = &q.reason {
        if DenyReason::from_code(reason).is_none() {
            return Err(ApiError::bad_request(
                format!("`{reason}` is not a reason code"),
                Some("reason"),
            ));
        }
    }
    let filter = AccessLogFilter {
        token_id: q.token_id,
        result: q.result,
        reason: q.reason,
        user_id: q.user_id,
        stream: q.stream,
        since: q.since,
        until: q.until,
        limit: window.limit,
        offset: window.offset,
    };
    let page = call(app, move |app| app.stores.access_log.access_logs(&filter)).await?;
    Ok(json(StatusCode::OK, &window.body(page)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatsQuery {
    since: Option<Timestamp>,
    until: Option<Timestamp>,
}

pub(super) async fn stats(app: &Arc<App>, request: &Request<Incoming>) -> Answer {
    let q: StatsQuery = query(request)?;
    let stats = call(app, move |app| {
        let now = app.clock().now();
        // `until` is exclusive: reach just past now, so a decision logged this instant counts.
        let until = q
            .until
            .unwrap_or(now.saturating_add(Duration::from_micros(1)));
        let since = q
            .since
            .unwrap_or(until.saturating_sub(DEFAULT_STATS_WINDOW));
        app.stores.access_log.access_stats(since, until, now)
    })
    .await?;
    Ok(json(StatusCode::OK, &stats))
}
