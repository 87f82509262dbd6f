//! `GET /health`: 200 when the store answers within the response budget, 503 otherwise.

use std::sync::Arc;

use hyper::{Response, StatusCode};
use serde_json::json;

use super::{json, Body};
use crate::app::App;

pub async fn health(app: &Arc<App>) -> Response<Body> {
    match app.blocking(|app| app.stores.health.ping()).await {
        Some(Ok(())) => json(StatusCode::OK, &json!({"status": "ok"})),
        Some(Err(err)) => {
            log::warn!("health check: the store failed: {err}");
            json(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({"status": "unavailable", "reason": "backend_error"}),
            )
        }
        None => {
            log::warn!(
                "health check: the store did not answer within {:?}",
                app.max_response_time
            );
            json(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({"status": "unavailable", "reason": "backend_timeout"}),
            )
        }
    }
}
