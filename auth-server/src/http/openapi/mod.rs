//! `GET /openapi.json`: an OpenAPI 3.1 description of every route in [`super::ROUTES`]. Built
//! once; a test checks that it covers the routing table.

mod tickets;

use std::sync::OnceLock;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::Response;
use serde_json::{json, Value};

use crate::http::Body;

pub fn document() -> Response<Body> {
    static DOCUMENT: OnceLock<Bytes> = OnceLock::new();
    let bytes = DOCUMENT
        .get_or_init(|| Bytes::from(spec().to_string()))
        .clone();
    let mut response = Response::new(Full::new(bytes));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

pub(crate) fn error_ref(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

pub(crate) fn ok_json(description: &str, schema: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
}

fn query_param(name: &str, description: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema})
}

/// Adds one endpoint family's schemas and paths (described beside its handlers).
pub(crate) fn extend(doc: &mut Value, schemas: Value, paths: Value) {
    for (at, from) in [("components", schemas), ("paths", paths)] {
        let target = if at == "components" {
            &mut doc["components"]["schemas"]
        } else {
            &mut doc["paths"]
        };
        if let (Some(into), Value::Object(from)) = (target.as_object_mut(), from) {
            into.extend(from);
        }
    }
}

pub(crate) fn id_param(what: &str) -> Value {
    json!({"name": "id", "in": "path", "required": true, "description": format!("{what} id"), "schema": {"type": "integer"}})
}

pub(crate) fn management_errors(mut responses: Value, write: bool) -> Value {
    if let Some(map) = responses.as_object_mut() {
        map.insert(
            "400".into(),
            error_ref("Invalid input; `field` names the culprit"),
        );
        map.insert(
            "401".into(),
            error_ref(
                "Missing or wrong API key (or, with no key configured, a non-loopback client)",
            ),
        );
        if write {
            map.insert("403".into(), error_ref("The API key is read-only"));
        }
        map.insert(
            "421".into(),
            error_ref("No API key is configured and the request named a host that is not a loopback name (host_not_allowed)"),
        );
        map.insert(
            "503".into(),
            error_ref("The store failed or did not answer in time"),
        );
    }
    responses
}

/// The document itself; public so tests can inspect it without a server.
pub fn spec() -> Value {
    let mut spec = core_spec();
    if let (Some(paths), Value::Object(more)) = (spec["paths"].as_object_mut(), tickets::paths()) {
        paths.extend(more);
    }
    spec
}

fn core_spec() -> Value {
    let flussonic_fields = [
        "name",
        "proto",
        "ip",
        "token",
        "request_type",
        "session_id",
        "request_number",
        "type",
    ];
    let auth_query: Vec<Value> = flussonic_fields
        .iter()
        .map(|f| {
            json!({"name": f, "in": "query", "required": matches!(*f, "name" | "ip"), "schema": {"type": "string"}})
        })
        .collect();
    let auth_responses = json!({
        "200": {"description": "Allowed", "headers": {
            "X-UserId": {"schema": {"type": "string"}},
            "X-Max-Sessions": {"description": "Omitted for unlimited tokens", "schema": {"type": "integer"}},
            "X-AuthDuration": {"schema": {"type": "integer"}}}},
        "400": error_ref("invalid_request: missing `name` or `ip`, `ip` is not an address, or `name` is not a stream name (longer than 1,024 bytes, or a `.` or `..` segment)"),
        "403": {"description": "Denied", "headers": {"X-AuthDuration": {"schema": {"type": "integer"}}},
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Denial"}}}},
        "413": error_ref("Body over 64 KiB"),
    });
    let token_list_params = vec![
        query_param(
            "status",
            "active, suspended or expired",
            json!({"type": "string", "enum": ["active", "suspended", "expired"]}),
        ),
        query_param("user_id", "Exact user id", json!({"type": "string"})),
        query_param("q", "User id prefix", json!({"type": "string"})),
        query_param(
            "limit",
            "1 to 1000 (default 50)",
            json!({"type": "integer", "minimum": 1, "maximum": 1000}),
        ),
        query_param(
            "offset",
            "Items to skip",
            json!({"type": "integer", "minimum": 0}),
        ),
    ];
    let log_params = vec![
        query_param(
            "result",
            "allowed or denied",
            json!({"type": "string", "enum": ["allowed", "denied"]}),
        ),
        query_param("reason", "A deny reason code", json!({"type": "string"})),
        query_param("user_id", "User id", json!({"type": "string"})),
        query_param("stream", "Stream name", json!({"type": "string"})),
        query_param("token_id", "Token id", json!({"type": "integer"})),
        query_param(
            "since",
            "RFC 3339, inclusive",
            json!({"type": "string", "format": "date-time"}),
        ),
        query_param(
            "until",
            "RFC 3339, exclusive",
            json!({"type": "string", "format": "date-time"}),
        ),
        query_param(
            "limit",
            "1 to 1000 (default 50)",
            json!({"type": "integer", "minimum": 1, "maximum": 1000}),
        ),
        query_param(
            "offset",
            "Items to skip",
            json!({"type": "integer", "minimum": 0}),
        ),
    ];
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "auth-server",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Stream authorization backend: the Flussonic auth_backend hook and a management API."
        },
        "components": {
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "bearer": {"type": "http", "scheme": "bearer"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "access_token"},
                "hookSecretQuery": {"type": "apiKey", "in": "query", "name": "hook_secret",
                    "description": "HOOK_SECRET, when the server sets one: in the hook URL's query (first occurrence)"},
                "hookSecretHeader": {"type": "apiKey", "in": "header", "name": "X-Hook-Secret",
                    "description": "HOOK_SECRET, when the server sets one, as a header (nginx auth_request)"}
            },
            "schemas": {
                "Error": {"type": "object", "required": ["error", "message"], "properties": {
                    "error": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"}}},
                "Denial": {"type": "object", "required": ["error", "reason", "message"], "properties": {
                    "error": {"const": "access_denied"},
                    "reason": {"type": "string", "enum": auth_core::DenyReason::ALL.iter().map(|r| r.code()).collect::<Vec<_>>()},
                    "message": {"type": "string"}, "user_id": {"type": ["string", "null"]}}},
                "TokenCreate": {"type": "object", "required": ["user_id"], "additionalProperties": false, "properties": {
                    "token": {"type": "string", "minLength": 8, "maxLength": 256, "description": "Omit to generate a 32-byte random token"},
                    "user_id": {"type": "string"},
                    "status": {"type": "string", "enum": ["active", "suspended", "expired"]},
                    "max_sessions": {"type": "integer", "minimum": 0, "description": "0 = no limit of its own: bounded by UNLIMITED_SESSIONS_CEILING (default 1000)"},
                    "allowed_ips": {"type": "array", "items": {"type": "string"}, "description": "Addresses or CIDR blocks; empty = any"},
                    "allowed_streams": {"type": "array", "items": {"type": "string"}, "description": "Names or * globs; empty = any"},
                    "allowed_actions": {"type": "array", "minItems": 1, "items": {"type": "string", "enum": ["play", "publish"]}, "description": "play and/or publish (a stream key); default [\"play\"]"},
                    "on_limit": {"type": "string", "enum": ["reject_new", "evict_oldest"], "description": "At the session limit: refuse the new viewer (reject_new, default) or admit it and cut the oldest live session (evict_oldest)"},
                    "valid_from": {"type": ["string", "null"], "format": "date-time"},
                    "valid_until": {"type": ["string", "null"], "format": "date-time"},
                    "meta": {"type": "object"}}},
                "TokenPatch": {"type": "object", "additionalProperties": false, "properties": {
                    "user_id": {"type": "string"},
                    "status": {"type": "string", "enum": ["active", "suspended", "expired"]},
                    "max_sessions": {"type": "integer", "minimum": 0},
                    "allowed_ips": {"type": "array", "items": {"type": "string"}},
                    "allowed_streams": {"type": "array", "items": {"type": "string"}},
                    "allowed_actions": {"type": "array", "minItems": 1, "items": {"type": "string", "enum": ["play", "publish"]}},
                    "on_limit": {"type": "string", "enum": ["reject_new", "evict_oldest"], "description": "At the session limit: refuse the new viewer (reject_new, default) or admit it and cut the oldest live session (evict_oldest)"},
                    "valid_from": {"type": ["string", "null"], "format": "date-time"},
                    "valid_until": {"type": ["string", "null"], "format": "date-time"},
                    "meta": {"type": "object"}}},
                "Token": {"type": "object", "properties": {
                    "id": {"type": "integer"}, "token_prefix": {"type": "string"}, "user_id": {"type": "string"},
                    "status": {"type": "string"}, "max_sessions": {"type": "integer"},
                    "allowed_ips": {"type": "array", "items": {"type": "string"}},
                    "allowed_streams": {"type": "array", "items": {"type": "string"}},
                    "allowed_actions": {"type": "array", "minItems": 1, "items": {"type": "string", "enum": ["play", "publish"]}},
                    "on_limit": {"type": "string", "enum": ["reject_new", "evict_oldest"], "description": "At the session limit: refuse the new viewer (reject_new, default) or admit it and cut the oldest live session (evict_oldest)"},
                    "valid_from": {"type": ["string", "null"], "format": "date-time"},
                    "valid_until": {"type": ["string", "null"], "format": "date-time"},
                    "meta": {"type": "object"},
                    "created_at": {"type": "string", "format": "date-time"},
                    "updated_at": {"type": "string", "format": "date-time"}}},
                "CreatedToken": {"allOf": [{"$ref": "#/components/schemas/Token"},
                    {"type": "object", "properties": {"token": {"type": "string", "description": "The secret, shown only in this answer"}}}]},
                "TokenPage": {"type": "object", "properties": {
                    "items": {"type": "array", "items": {"$ref": "#/components/schemas/Token"}}, "total": {"type": "integer"},
                    "limit": {"type": "integer"}, "offset": {"type": "integer"}}},
                "Session": {"type": "object", "properties": {
                    "id": {"type": "integer"}, "token_id": {"type": ["integer", "null"], "description": "null for a signed token's session"}, "user_id": {"type": "string"},
                    "stream": {"type": "string"}, "ip": {"type": "string"}, "proto": {"type": "string"},
                    "source": {"type": "string", "enum": ["flussonic", "nginx-rtmp", "nginx-auth", "mediamtx", "srs", ""], "description": "The media server the session is on ('' when unknown)"},
                    "media_session_id": {"type": ["string", "null"], "description": "The media server's own id of the session: Flussonic's session_id, nginx-rtmp's clientid, SRS's client_id, MediaMTX's id"},
                    "started_at": {"type": "string", "format": "date-time"}, "last_seen": {"type": "string", "format": "date-time"},
                    "expires_at": {"type": "string", "format": "date-time"},
                    "terminated_at": {"type": ["string", "null"], "format": "date-time"}}},
                "SessionPage": {"type": "object", "properties": {
                    "items": {"type": "array", "items": {"$ref": "#/components/schemas/Session"}}, "total": {"type": "integer"},
                    "limit": {"type": "integer"}, "offset": {"type": "integer"}}},
                "AccessLogRecord": {"type": "object", "properties": {
                    "id": {"type": "integer"}, "at": {"type": "string", "format": "date-time"},
                    "token_id": {"type": ["integer", "null"]}, "token_prefix": {"type": ["string", "null"]},
                    "user_id": {"type": ["string", "null"]}, "stream": {"type": "string"}, "ip": {"type": "string"},
                    "proto": {"type": "string"}, "request_type": {"type": "string"}, "session_id": {"type": ["string", "null"]},
                    "result": {"type": "string", "enum": ["allowed", "denied"]}, "reason": {"type": ["string", "null"]},
                    "latency_us": {"type": "integer"}}},
                "AccessLogPage": {"type": "object", "properties": {
                    "items": {"type": "array", "items": {"$ref": "#/components/schemas/AccessLogRecord"}}, "total": {"type": "integer"},
                    "limit": {"type": "integer"}, "offset": {"type": "integer"}}},
                "Stats": {"type": "object", "properties": {
                    "since": {"type": "string", "format": "date-time"}, "until": {"type": "string", "format": "date-time"},
                    "allowed": {"type": "integer"}, "denied": {"type": "integer"},
                    "denied_by_reason": {"type": "object", "additionalProperties": {"type": "integer"}},
                    "live_sessions": {"type": "integer"},
                    "live_sessions_by_stream": {"type": "object", "additionalProperties": {"type": "integer"}}}}
            }
        },
        "paths": {
            "/auth": {
                "get": {"summary": "Flussonic play authorization (query string)", "parameters": auth_query, "responses": auth_responses},
                "post": {"summary": "Flussonic authorization (JSON or form body, same fields)",
                    "requestBody": {"content": {
                        "application/json": {"schema": {"type": "object"}},
                        "application/x-www-form-urlencoded": {"schema": {"type": "object"}}}},
                    "responses": auth_responses}
            },
            "/health": {
                "get": {"summary": "200 when the store answers", "responses": {
                    "200": {"description": "OK"}, "503": {"description": "The store failed or is too slow"}}},
                "head": {"summary": "As GET, without a body", "responses": {"200": {"description": "OK"}, "503": {"description": "Unavailable"}}}
            },
            "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1"}}}},
            "/api/tokens": {
                "get": {"summary": "List tokens", "security": [{"apiKey": []}, {"bearer": []}], "parameters": token_list_params,
                    "responses": management_errors(json!({"200": ok_json("A page of tokens", "TokenPage")}), false)},
                "post": {"summary": "Create a token", "security": [{"apiKey": []}, {"bearer": []}],
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TokenCreate"}}}},
                    "responses": management_errors(json!({
                        "201": ok_json("Created; the only answer that carries the secret", "CreatedToken"),
                        "409": error_ref("A token with this value exists")}), true)}
            },
            "/api/tokens/{id}": {
                "get": {"summary": "Show a token", "security": [{"apiKey": []}, {"bearer": []}], "parameters": [id_param("Token")],
                    "responses": management_errors(json!({"200": ok_json("The token", "Token"), "404": error_ref("No such token")}), false)},
                "patch": {"summary": "Change some settings; suspending denies live sessions at their next re-check",
                    "security": [{"apiKey": []}, {"bearer": []}], "parameters": [id_param("Token")],
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TokenPatch"}}}},
                    "responses": management_errors(json!({"200": ok_json("The changed token", "Token"), "404": error_ref("No such token")}), true)},
                "delete": {"summary": "Delete a token and end its sessions", "security": [{"apiKey": []}, {"bearer": []}],
                    "parameters": [id_param("Token")],
                    "responses": management_errors(json!({"204": {"description": "Deleted"}, "404": error_ref("No such token")}), true)}
            },
            "/api/sessions": {
                "get": {"summary": "List live sessions", "security": [{"apiKey": []}, {"bearer": []}], "parameters": [
                        query_param("token_id", "Token id", json!({"type": "integer"})),
                        query_param("user_id", "User id", json!({"type": "string"})),
                        query_param("stream", "Stream name", json!({"type": "string"})),
                        query_param("proto", "Protocol (hls, rtmp, ...)", json!({"type": "string"})),
                        query_param("source", "Media server: flussonic, nginx-rtmp, nginx-auth, mediamtx, srs", json!({"type": "string"})),
                        query_param("limit", "1 to 1000 (default 50)", json!({"type": "integer", "minimum": 1, "maximum": 1000})),
                        query_param("offset", "Items to skip", json!({"type": "integer", "minimum": 0}))],
                    "responses": management_errors(json!({"200": ok_json("Live sessions", "SessionPage")}), false)}
            },
            "/api/sessions/counts": {
                "get": {"summary": "Live sessions (not terminated) per stream or per user, across every node sharing the database",
                    "security": [{"apiKey": []}, {"bearer": []}], "parameters": [
                        {"name": "by", "in": "query", "required": true, "description": "What to count by", "schema": {"type": "string", "enum": ["stream", "user_id"]}}],
                    "responses": management_errors(json!({"200": {"description": "Counts, most first", "content": {"application/json": {"schema": {"type": "object", "properties": {
                        "by": {"type": "string"}, "total": {"type": "integer"},
                        "items": {"type": "array", "items": {"type": "object", "properties": {"key": {"type": "string"}, "sessions": {"type": "integer"}}}}}}}}}}), false)}
            },
            "/api/sessions/kick": {
                "post": {"summary": "Cut every live session of a token, a user or a stream (exactly one of them), pushing the drop to each media server",
                    "security": [{"apiKey": []}, {"bearer": []}],
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "additionalProperties": false, "properties": {
                        "token_id": {"type": "integer"}, "user_id": {"type": "string"}, "stream": {"type": "string"},
                        "ban_seconds": {"type": "integer", "minimum": 0, "maximum": 86400, "description": "Refuse the token on the stream for this long (session_banned)"}}}}}},
                    "responses": management_errors(json!({"200": {"description": "How many were cut", "content": {"application/json": {"schema": {"type": "object", "properties": {"kicked": {"type": "integer"}}}}}}}), true)}
            },
            "/api/sessions/{id}": {
                "delete": {"summary": "Cut a session: its media server is told to drop it, and its next check is denied with session_terminated",
                    "security": [{"apiKey": []}, {"bearer": []}], "parameters": [id_param("Session"),
                        query_param("ban_seconds", "Refuse the same token on this stream for this long (session_banned); 0 to 86400, default 0", json!({"type": "integer", "minimum": 0, "maximum": 86400}))],
                    "responses": management_errors(json!({"204": {"description": "Terminated"}, "404": error_ref("No such live session")}), true)}
            },
            "/api/access-logs": {
                "get": {"summary": "Access log, newest first", "security": [{"apiKey": []}, {"bearer": []}], "parameters": log_params,
                    "responses": management_errors(json!({"200": ok_json("A page of records", "AccessLogPage")}), false)}
            },
            "/api/stats": {
                "get": {"summary": "Decisions by result and reason over a window (default: the last 24 h); live sessions per stream",
                    "security": [{"apiKey": []}, {"bearer": []}], "parameters": [
                        query_param("since", "RFC 3339, inclusive", json!({"type": "string", "format": "date-time"})),
                        query_param("until", "RFC 3339, exclusive (default: now)", json!({"type": "string", "format": "date-time"}))],
                    "responses": management_errors(json!({"200": ok_json("Counts", "Stats")}), false)}
            },
            "/metrics": {
                "get": {"summary": "Prometheus metrics (text format 0.0.4); access as for the management API (a read-only key is enough)",
                    "security": [{"apiKey": []}, {"bearer": []}],
                    "responses": {
                        "200": {"description": "The metrics", "content": {"text/plain": {"schema": {"type": "string"}}}},
                        "401": error_ref("Missing or wrong API key (or, with no key configured, a non-loopback client)")}}
            }
        }
    });
    if let (Some(paths), Value::Object(hooks)) = (
        doc["paths"].as_object_mut(),
        hook_paths(&auth_query, &auth_responses),
    ) {
        paths.extend(hooks);
        hook_secret(paths);
    }
    super::api::playback::describe(&mut doc);
    super::api::edge_urls::describe(&mut doc);
    super::api::webhooks::describe(&mut doc);
    super::jwks::describe(&mut doc);
    doc
}

/// Every media-server hook takes `HOOK_SECRET` when one is set (none needed otherwise), and
/// refuses a request without it with 403 `hook_secret_invalid`.
fn hook_secret(paths: &mut serde_json::Map<String, Value>) {
    let hooks = paths
        .iter_mut()
        .filter(|(path, _)| path.starts_with("/auth") || path.starts_with("/hooks/"));
    for (_, item) in hooks {
        let Some(operations) = item.as_object_mut() else {
            continue;
        };
        for operation in operations.values_mut() {
            operation["security"] = json!([{}, {"hookSecretQuery": []}, {"hookSecretHeader": []}]);
            let refused = &mut operation["responses"]["403"]["description"];
            if let Some(text) = refused.as_str() {
                *refused = json!(format!(
                    "{text}; or hook_secret_invalid (an Error): HOOK_SECRET is set and the request lacks it"
                ));
            }
        }
    }
}

/// The media-server adapters other than Flussonic's play hook.
fn hook_paths(auth_query: &[Value], auth_responses: &Value) -> Value {
    let denied = |description: &str| json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Denial"}}}});
    let form = json!({"content": {
        "application/x-www-form-urlencoded": {"schema": {"type": "object"}}}});
    let json_body = |fields: &[&str]| {
        let properties: serde_json::Map<String, Value> = fields
            .iter()
            .map(|f| ((*f).to_owned(), json!({})))
            .collect();
        json!({"required": true, "content": {"application/json": {"schema": {"type": "object", "properties": properties}}}})
    };
    let rtmp_query: Vec<Value> = ["call", "addr", "clientid", "app", "name", "token"]
        .iter()
        .map(|f| json!({"name": f, "in": "query", "required": false, "schema": {"type": "string"}}))
        .collect();
    let rtmp_responses = json!({
        "200": {"description": "Allowed (or a connect/done call, always answered 200)"},
        "400": error_ref("invalid_request: missing or malformed `call`, `addr` or `name` (a stream name is at most 1,024 bytes, with no `.` or `..` segment)"),
        "403": denied("Denied: nginx-rtmp drops the client (on update: cuts the live stream)")});
    json!({
        "/auth/publish": {
            "get": {"summary": "Flussonic on_publish: may this publisher publish? (the token must allow `publish`)",
                "parameters": auth_query, "responses": auth_responses},
            "post": {"summary": "Flussonic on_publish (JSON or form body, same fields)",
                "requestBody": {"content": {
                    "application/json": {"schema": {"type": "object"}},
                    "application/x-www-form-urlencoded": {"schema": {"type": "object"}}}},
                "responses": auth_responses}
        },
        "/hooks/nginx-rtmp": {
            "post": {"summary": "nginx-rtmp on_connect/on_play/on_publish/on_update/on_*_done (form body; token from the client's query)",
                "requestBody": form, "responses": rtmp_responses},
            "get": {"summary": "As POST, with `notify_method get`",
                "parameters": rtmp_query,
                "responses": rtmp_responses}
        },
        "/hooks/nginx-auth": {
            "get": {"summary": "nginx auth_request subrequest (HLS): reads X-Original-URI, X-Real-IP, optional X-Stream-Name and Authorization: Bearer",
                "parameters": [
                    {"name": "X-Original-URI", "in": "header", "required": true, "schema": {"type": "string"}},
                    {"name": "X-Real-IP", "in": "header", "required": true, "schema": {"type": "string"}},
                    {"name": "X-Stream-Name", "in": "header", "required": false, "schema": {"type": "string"}}],
                "responses": {
                    "204": {"description": "Allowed", "headers": {"X-UserId": {"schema": {"type": "string"}}}},
                    "400": error_ref("invalid_request: a required header is missing (nginx answers 500: a configuration error), or the path names no stream nginx-rtmp could have written (a stream name is at most 1,024 bytes, with no `.` or `..` segment)"),
                    "401": denied("No token"),
                    "403": denied("Denied")}}
        },
        "/hooks/mediamtx": {
            "post": {"summary": "MediaMTX authMethod: http",
                "requestBody": json_body(&["user", "password", "token", "ip", "action", "path", "protocol", "id", "query"]),
                "responses": {
                    "200": {"description": "Allowed"},
                    "400": error_ref("invalid_request: not a JSON object, `action`, `ip` or `path` missing, or `path` is not a stream name (longer than 1,024 bytes, or a `.` or `..` segment)"),
                    "403": denied("Denied; `api`, `metrics` and `pprof` are always refused (error action_not_allowed)")}}
        },
        "/hooks/srs": {
            "post": {"summary": "SRS http_hooks (on_connect, on_publish, on_play, on_unpublish, on_stop, on_close)",
                "requestBody": json_body(&["action", "server_id", "client_id", "ip", "vhost", "app", "stream", "param", "tcUrl"]),
                "responses": {
                    "200": {"description": "Allowed: {\"code\":0}"},
                    "400": error_ref("invalid_request: not a JSON object, a required field missing, or `stream` is not a stream name (longer than 1,024 bytes, or a `.` or `..` segment)"),
                    "403": denied("Denied; the body also carries a non-zero `code`")}}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::ROUTES;

    #[test]
    fn every_route_is_described() {
        let spec = spec();
        for (method, path, _) in ROUTES {
            let operation = &spec["paths"][path][method.to_ascii_lowercase()];
            assert!(
                operation.is_object(),
                "{method} {path} is missing from openapi.json"
            );
            assert!(
                operation["responses"].is_object(),
                "{method} {path} has no responses"
            );
        }
    }

    #[test]
    fn nothing_is_described_that_is_not_routed() {
        let spec = spec();
        for (path, operations) in spec["paths"].as_object().unwrap() {
            for method in operations.as_object().unwrap().keys() {
                let routed = ROUTES
                    .iter()
                    .any(|(m, p, _)| p == path && m.eq_ignore_ascii_case(method));
                assert!(routed, "{method} {path} is documented but not routed");
            }
        }
    }
}
