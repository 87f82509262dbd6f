//! `GET /metrics`: the Prometheus text format (see [`crate::metrics`]). Same access rule as the
//! management API (a read-only key is enough; Prometheus sends it as `Authorization: Bearer`),
//! checked by `api::handle` before this runs.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Response, StatusCode};

use super::Body;
use crate::app::App;
use crate::metrics::{self, StoreFailure};

pub async fn scrape(app: &Arc<App>) -> Response<Body> {
    // Two store reads (live sessions, queued webhook deliveries) and a few `/proc` reads: off
    // the reactor.
    let counts = app
        .blocking(|app| {
            let now = app.clock().now();
            // The stats query over an empty window counts only the live sessions.
            let live = app.stores.access_log.access_stats(now, now, now)?;
            Ok((
                live.live_sessions,
                app.stores.webhooks.pending_deliveries()?,
            ))
        })
        .await;
    let counts = match counts {
        Some(Ok(counts)) => Some(counts),
        Some(Err(err)) => {
            log::warn!("metrics: cannot count the live sessions: {err}");
            app.metrics.store_failure(StoreFailure::Error);
            None
        }
        None => {
            log::warn!("metrics: the store did not count the live sessions in time");
            app.metrics.store_failure(StoreFailure::Timeout);
            None
        }
    };
    let (live_sessions, webhook_pending) = counts.unzip();
    let for_render = Arc::clone(app);
    let text = tokio::task::spawn_blocking(move || {
        let access_log = for_render.access_log.as_ref().map(|writer| writer.stats());
        for_render
            .metrics
            .render(access_log, live_sessions, webhook_pending)
    })
    .await
    .unwrap_or_else(|err| {
        log::error!("metrics task failed: {err}");
        String::new()
    });
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(metrics::CONTENT_TYPE),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
