//! `POST /api/edge-urls`: URL signatures an edge checks alone (nginx `secure_link`, Akamai
//! EdgeAuth 2.0; see `auth_core::edge_url`). A read-write API key is needed: a signature
//! is as good as a token for whatever it covers. The secrets come from the configuration and
//! appear in no answer and no log.

use std::sync::Arc;

use auth_core::edge_url::EdgeUrlSpec;
use auth_core::Clock;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{json, Value};

use super::{json_body, no_store, Answer};
use crate::app::App;
use crate::http::json;
use crate::http::openapi::{extend, management_errors, ok_json};
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

/// This module's part of `openapi.json`.
pub(crate) fn describe(doc: &mut Value) {
    let schemas = json!({
        "EdgeUrlRequest": {"type": "object", "required": ["format", "ttl_seconds"], "additionalProperties": false, "properties": {
            "format": {"type": "string", "enum": ["nginx_secure_link", "akamai_edgeauth"]},
            "path": {"type": "string", "description": "nginx_secure_link: the path nginx's $uri reads (A-Z a-z 0-9 - . _ ~ /)"},
            "acl": {"description": "akamai_edgeauth: a path with * wildcards, or several (joined with !)", "oneOf": [
                {"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
            "url": {"type": "string", "description": "akamai_edgeauth: one URL path instead of an ACL (hashed only)"},
            "ttl_seconds": {"type": "integer", "minimum": 1},
            "start_time": {"type": "integer", "description": "akamai_edgeauth: unix seconds (default now)"},
            "ip": {"type": "string", "description": "Bind the signature to this client address"},
            "session_id": {"type": "string", "description": "akamai_edgeauth: id="},
            "payload": {"type": "string", "description": "akamai_edgeauth: data="}}},
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
