//! `POST /api/edge-urls`: URL signatures an edge checks alone (nginx `secure_link`, Akamai
//! EdgeAuth 2.0; see `auth_core::edge_url`). A read-write API key is needed: a signature
//! is as good as a token for whatever it covers. The secrets come from the configuration and
//! appear in no answer and no log.

use std::sync::Arc;

use auth_core::edge_url::{EdgeUrlSpec, LAST_RFC3339_SECOND};
use auth_core::Clock;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{json, Value};

use super::{json_body, no_store, Answer};
use crate::app::App;
use crate::config::MAX_PLAYBACK_TOKEN_TTL;
use crate::http::json;
use crate::http::openapi::{extend, fields, management_errors, nullable, ok_json};
use crate::http::ApiError;

pub(super) async fn sign(app: &Arc<App>, request: Request<Incoming>) -> Answer {
    let spec: EdgeUrlSpec = json_body(request).await?;
    let signed = app
        .signing
        .edge_url(&spec, app.clock().now())
        .map_err(|err| ApiError::from(&err))?;
    let mut response = json(StatusCode::CREATED, &signed);
    no_store(&mut response);
    Ok(response)
}

/// One alternative per format, each with only the fields that format uses.
fn edge_url_request() -> Value {
    let ttl = json!({"type": "integer", "minimum": 1, "maximum": MAX_PLAYBACK_TOKEN_TTL});
    let ip = nullable(fields::ip());
    let none = json!({"type": "null"});
    let secure_link = json!({"type": "object", "additionalProperties": false,
        "required": ["format", "ttl_seconds", "path"], "properties": {
            "format": {"type": "string", "enum": ["nginx_secure_link"]},
            "path": fields::plain_path(), "ttl_seconds": ttl, "ip": ip,
            "acl": none, "url": none, "start_time": none, "session_id": none, "payload": none}});
    let acl = json!({"description": "A path with * wildcards, or several (joined with !)", "anyOf": [
        fields::edgeauth_text(true),
        {"type": "array", "minItems": 1, "items": fields::edgeauth_text(true)}]});
    let akamai = |target: &str| {
        let mut properties = json!({
            "format": {"type": "string", "enum": ["akamai_edgeauth"]},
            "ttl_seconds": ttl, "ip": ip, "path": none, "acl": none, "url": none,
            // The end must be a time RFC 3339 writes, even at the longest lifetime.
            "start_time": nullable(json!({"type": "integer", "minimum": 1,
                "maximum": LAST_RFC3339_SECOND - MAX_PLAYBACK_TOKEN_TTL as i64, "description": "Unix seconds (default now)"})),
            "session_id": nullable(fields::edgeauth_text(false)),
            "payload": nullable(fields::edgeauth_text(false))});
        properties[target] = if target == "acl" {
            acl.clone()
        } else {
            fields::edgeauth_text(false)
        };
        json!({"type": "object", "additionalProperties": false,
            "required": ["format", "ttl_seconds", target], "properties": properties})
    };
    json!({"oneOf": [secure_link, akamai("acl"), akamai("url")]})
}

/// This module's part of `openapi.json`.
pub(crate) fn describe(doc: &mut Value) {
    let schemas = json!({
        "EdgeUrlRequest": edge_url_request(),
        "EdgeUrl": {"type": "object", "properties": {
            "format": {"type": "string"},
            "url": {"type": "string", "description": "nginx_secure_link: <path>?md5=..&expires=.."},
            "token": {"type": "string", "description": "akamai_edgeauth: st=..~exp=..~acl=..~hmac=.."},
            "expires_at": {"type": "string", "format": "date-time"}}}
    });
    let paths = json!({
        "/api/edge-urls": {
            "post": {"summary": "Sign a URL for an edge that checks it with no call to us: nginx secure_link (NGINX_SECURE_LINK_SECRET) or Akamai EdgeAuth 2.0 (AKAMAI_EDGEAUTH_KEY). Read-write key",
                "security": [{"apiKey": []}, {"bearer": []}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/EdgeUrlRequest"}}}},
                "responses": management_errors(json!({
                    "201": ok_json("The signed URL or token", "EdgeUrl")}), true)}
        }
    });
    extend(doc, schemas, paths);
}
