//! `/api/webhooks`: endpoints that receive signed messages (see [`crate::webhooks`]). The
//! signing secret is shown once, in the answer that creates the endpoint.

use std::sync::Arc;

use auth_core::webhook::{MessageKind, NewWebhook, URL_PATTERN};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{call, json_body, no_content, no_store, Answer};
use crate::app::App;
use crate::http::json;
use crate::http::openapi::{error_ref, extend, id_param, management_errors, ok_json};
use crate::http::ApiError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Create {
    url: String,
    /// Message types; none or empty: every type but `access.denied`.
    #[serde(default)]
    events: Vec<String>,
    #[serde(default)]
    description: String,
}

pub(super) async fn create(app: &Arc<App>, request: Request<Incoming>) -> Answer {
    let body: Create = json_body(request).await?;
    let mut events = Vec::with_capacity(body.events.len());
    for name in &body.events {
        let kind = MessageKind::parse(name).ok_or_else(|| {
            let known: Vec<&str> = MessageKind::ALL.iter().map(|k| k.as_str()).collect();
            ApiError::bad_request(
                format!("unknown event type {name:?}; known: {}", known.join(", ")),
                Some("events"),
            )
        })?;
        events.push(kind);
    }
    let new = NewWebhook::new(body.url, events, body.description)?;
    let webhook = call(app, move |app| {
        app.stores.webhooks.create_webhook(new, app.clock().now())
    })
    .await?;
    log::info!("webhook endpoint {} created", webhook.id);
    // A listed endpoint never shows its secret (it is not serialized)...
    let mut answer = serde_json::to_value(&webhook).unwrap_or_default();
    // ...so this is the only time it leaves the server.
    answer["secret"] = webhook.secret.expose().into();
    let mut response = json(StatusCode::CREATED, &answer);
    no_store(&mut response);
    Ok(response)
}

pub(super) async fn list(app: &Arc<App>) -> Answer {
    let webhooks = call(app, |app| app.stores.webhooks.webhooks()).await?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "items": webhooks }),
    ))
}

pub(super) async fn delete(app: &Arc<App>, id: i64) -> Answer {
    let deleted = call(app, move |app| app.stores.webhooks.delete_webhook(id)).await?;
    if !deleted {
        return Err(ApiError::not_found("no such webhook endpoint"));
    }
    log::info!("webhook endpoint {id} deleted, with its queued deliveries");
    Ok(no_content())
}

/// This endpoint family in the OpenAPI document.
pub(crate) fn describe(doc: &mut Value) {
    let kinds: Vec<&str> = MessageKind::ALL.iter().map(|kind| kind.as_str()).collect();
    let schemas = json!({
        "WebhookRequest": {"type": "object", "required": ["url"], "additionalProperties": false, "properties": {
            "url": {"type": "string", "maxLength": NewWebhook::MAX_URL_LEN, "pattern": URL_PATTERN,
                "description": "http:// or https://, a lower-case host name or an IPv4 address, an optional port and path; receives a POST per message"},
            "events": {"type": "array", "items": {"type": "string", "enum": kinds},
                "description": "Message types to receive; none: every type but access.denied (which must be named)"},
            "description": {"type": "string", "maxLength": NewWebhook::MAX_DESCRIPTION_LEN, "default": ""}}},
        "Webhook": {"type": "object", "properties": {
            "id": {"type": "integer"},
            "url": {"type": "string"},
            "events": {"type": "array", "items": {"type": "string", "enum": kinds}},
            "description": {"type": "string"},
            "created_at": {"type": "string", "format": "date-time"},
            "secret": {"type": "string", "description": "whsec_<base64>: in the answer that creates the endpoint only. Verify deliveries with it (Standard Webhooks)"}}},
        "WebhookList": {"type": "object", "properties": {
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/Webhook"}}}}
    });
    let paths = json!({
        "/api/webhooks": {
            "get": {"summary": "Webhook endpoints (secrets are never listed)",
                "security": [{"apiKey": []}, {"bearer": []}],
                "responses": management_errors(json!({"200": ok_json("Every endpoint", "WebhookList")}), false)},
            "post": {"summary": "Add an endpoint: it receives signed messages (Standard Webhooks) from now on. Read-write key",
                "security": [{"apiKey": []}, {"bearer": []}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/WebhookRequest"}}}},
                "responses": management_errors(json!({"201": ok_json("The endpoint, with its secret (shown this once)", "Webhook")}), true)}
        },
        "/api/webhooks/{id}": {
            "delete": {"summary": "Remove an endpoint and every delivery still queued for it. Read-write key",
                "security": [{"apiKey": []}, {"bearer": []}], "parameters": [id_param("Webhook endpoint")],
                "responses": management_errors(json!({"204": {"description": "Removed"}, "404": error_ref("No such endpoint")}), true)}
        }
    });
    extend(doc, schemas, paths);
}
