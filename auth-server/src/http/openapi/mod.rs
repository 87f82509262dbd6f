//! `GET /openapi.json`: an OpenAPI 3.1 description of every route in [`super::ROUTES`]. Built
//! once; a test checks that it covers the routing table.

pub(crate) mod fields;
mod hooks;
mod tickets;

use std::sync::OnceLock;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::Response;
use serde_json::{json, Value};

use crate::http::api::MAX_BAN_SECONDS;
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
    json!({"name": "id", "in": "path", "required": true, "description": format!("{what} id"), "schema": fields::id()})
}

/// `limit` and `offset`, as every listing takes them.
pub(crate) fn paging_params() -> [Value; 2] {
    [
        query_param(
            "limit",
            "1 to 1000 (default 50)",
            json!({"type": "integer", "minimum": 1, "maximum": auth_core::page::MAX_PAGE}),
        ),
        query_param("offset", "Items to skip", fields::uint32(0)),
    ]
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
            map.insert("413".into(), error_ref("Body over 64 KiB"));
            map.insert(
                "415".into(),
                error_ref("The body is not sent as application/json"),
            );
            map.insert(
                "422".into(),
                error_ref("Well-formed, but the values do not fit together or with what is stored (an end before its start, a key that does not exist); `field` names the culprit"),
            );
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

/// `schema` or `null`: an optional field the server reads `null` in as absent.
pub(crate) fn nullable(mut schema: Value) -> Value {
    // A `type` list where there is one: generators read it better than an `anyOf`.
    if let Some(kind) = schema["type"].as_str() {
        schema["type"] = json!([kind, "null"]);
        if let Some(values) = schema.get_mut("enum").and_then(Value::as_array_mut) {
            values.push(Value::Null);
        }
        return schema;
    }
    json!({"anyOf": [schema, {"type": "null"}]})
}

/// A JSON merge of `properties` where `null` means "unchanged" (except the `clearable` ones,
/// where `null` clears), refused with 400 unless at least one field changes something.
pub(crate) fn patch_schema(properties: Value, clearable: &[&str]) -> Value {
    let Value::Object(properties) = properties else {
        return properties;
    };
    let mut changes = Vec::new();
    let mut fields = serde_json::Map::new();
    for (name, schema) in properties {
        if clearable.contains(&name.as_str()) {
            changes.push(json!({"required": [name]}));
            fields.insert(name, schema);
        } else {
            changes.push(
                json!({"required": [name], "properties": {&name: {"not": {"type": "null"}}}}),
            );
            fields.insert(name, nullable(schema));
        }
    }
    json!({"type": "object", "additionalProperties": false, "properties": fields, "anyOf": changes})
}

/// The fields of a token's creation (`create`) or change.
fn token_fields(create: bool) -> Value {
    let on_limit = json!({"type": "string", "enum": ["reject_new", "evict_oldest"], "description": "At the session limit: refuse the new viewer (reject_new, default) or admit it and cut the oldest live session (evict_oldest)"});
    let mut fields = json!({
        "user_id": fields::user_id(),
        "status": {"type": "string", "enum": ["active", "suspended", "expired"]},
        "max_sessions": {"type": "integer", "minimum": 0, "maximum": u32::MAX, "description": "0 = unlimited"},
        "allowed_ips": fields::ip_rules(),
        "allowed_streams": fields::stream_patterns(),
        "allowed_actions": {"type": "array", "minItems": 1, "items": {"type": "string", "enum": ["play", "publish"]}, "description": "play and/or publish (a stream key); default [\"play\"]"},
        "on_limit": on_limit,
        "valid_from": nullable(fields::date_time()),
        "valid_until": nullable(fields::date_time()),
        "meta": {"type": "object", "description": "At most 16 KiB of JSON"},
    });
    if create {
        fields["token"] = fields::token_secret();
        // Optional fields read `null` as absent; the lists do not.
        for name in [
            "token",
            "status",
            "max_sessions",
            "allowed_actions",
            "on_limit",
            "meta",
        ] {
            fields[name] = nullable(fields[name].take());
        }
    }
    fields
}

/// `POST /api/sessions/kick`: exactly one of `token_id`, `user_id`, `stream` (the others absent
/// or null), and `ban_seconds`.
fn kick_body() -> Value {
    let ban = nullable(
        json!({"type": "integer", "minimum": 0, "maximum": MAX_BAN_SECONDS,
        "description": "Refuse the token on the stream for this long (session_banned)"}),
    );
    let targets = [
        ("token_id", fields::int64()),
        ("user_id", json!({"type": "string", "minLength": 1})),
        ("stream", json!({"type": "string", "minLength": 1})),
    ];
    let one_of: Vec<Value> = targets
        .iter()
        .map(|(chosen, schema)| {
            let mut properties = serde_json::Map::new();
            for (name, _) in &targets {
                let field = if name == chosen { schema.clone() } else { json!({"type": "null"}) };
                properties.insert((*name).to_owned(), field);
            }
            properties.insert("ban_seconds".into(), ban.clone());
            json!({"type": "object", "additionalProperties": false, "required": [chosen], "properties": properties})
        })
        .collect();
    json!({"oneOf": one_of})
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
    // The first occurrence of each field counts; unknown fields are ignored.
    let field_schema = |field: &str| match field {
        "name" => fields::stream_name(),
        "ip" => fields::ip(),
        _ => json!({"type": "string"}),
    };
    let auth_query: Vec<Value> = flussonic_fields
        .iter()
        .map(|f| {
            json!({"name": f, "in": "query", "required": matches!(*f, "name" | "ip"), "schema": field_schema(f)})
        })
        .collect();
    let form_properties: serde_json::Map<String, Value> = flussonic_fields
        .iter()
        .map(|f| ((*f).to_owned(), field_schema(f)))
        .collect();
    // JSON fields are loosely typed (Flussonic sends numbers as strings and the other way
    // round); null, arrays and objects count as absent.
    let json_properties: serde_json::Map<String, Value> = flussonic_fields
        .iter()
        .map(|f| {
            let schema = match *f {
                "name" => json!({"type": ["string", "number", "boolean"], "minLength": 1}),
                "ip" => fields::ip(),
                _ => json!({}),
            };
            ((*f).to_owned(), schema)
        })
        .collect();
    let auth_body = json!({"required": true, "content": {
        "application/json": {"schema": {"type": "object", "required": ["name", "ip"], "properties": json_properties}},
        "application/x-www-form-urlencoded": {"schema": {"type": "object", "required": ["name", "ip"], "properties": form_properties}}}});
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
    let deny_reasons: Vec<&str> = auth_core::DenyReason::ALL
        .iter()
        .map(|r| r.code())
        .collect();
    let token_list_params = vec![
        query_param(
            "status",
            "active, suspended or expired",
            json!({"type": "string", "enum": ["active", "suspended", "expired"]}),
        ),
        query_param("user_id", "Exact user id", json!({"type": "string"})),
        query_param("q", "User id prefix", json!({"type": "string"})),
    ]
    .into_iter()
    .chain(paging_params())
    .collect::<Vec<_>>();
    let log_params = vec![
        query_param(
            "result",
            "allowed or denied",
            json!({"type": "string", "enum": ["allowed", "denied"]}),
        ),
        query_param(
            "reason",
            "A deny reason code",
            json!({"type": "string", "enum": deny_reasons}),
        ),
        query_param("user_id", "User id", json!({"type": "string"})),
        query_param("stream", "Stream name", json!({"type": "string"})),
        query_param("token_id", "Token id", fields::int64()),
        query_param("since", "RFC 3339, inclusive", fields::date_time()),
        query_param(
            "until",
            "RFC 3339, exclusive (before `since`: an empty window)",
            fields::date_time(),
        ),
    ]
    .into_iter()
    .chain(paging_params())
    .collect::<Vec<_>>();
    let paging = paging_params();
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
                    "reason": {"type": "string", "enum": deny_reasons},
                    "message": {"type": "string"}, "user_id": {"type": ["string", "null"]}}},
                "TokenCreate": {"type": "object", "required": ["user_id"], "additionalProperties": false, "properties": token_fields(true)},
                "TokenPatch": patch_schema(token_fields(false), &["valid_from", "valid_until"]),
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
                    "requestBody": auth_body, "responses": auth_responses}
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
                        query_param("token_id", "Token id", fields::int64()),
                        query_param("user_id", "User id", json!({"type": "string"})),
                        query_param("stream", "Stream name", json!({"type": "string"})),
                        query_param("proto", "Protocol (hls, rtmp, ...)", json!({"type": "string"})),
                        query_param("source", "Media server: flussonic, nginx-rtmp, nginx-auth, mediamtx, srs", json!({"type": "string"})),
                        paging[0].clone(), paging[1].clone()],
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
                    "requestBody": {"required": true, "content": {"application/json": {"schema": kick_body()}}},
                    "responses": management_errors(json!({"200": {"description": "How many were cut", "content": {"application/json": {"schema": {"type": "object", "properties": {"kicked": {"type": "integer"}}}}}}}), true)}
            },
            "/api/sessions/{id}": {
                "delete": {"summary": "Cut a session: its media server is told to drop it, and its next check is denied with session_terminated",
                    "security": [{"apiKey": []}, {"bearer": []}], "parameters": [id_param("Session"),
                        query_param("ban_seconds", "Refuse the same token on this stream for this long (session_banned); 0 to 86400, default 0", json!({"type": "integer", "minimum": 0, "maximum": MAX_BAN_SECONDS}))],
                    "responses": management_errors(json!({"204": {"description": "Terminated"}, "404": error_ref("No such live session")}), true)}
            },
            "/api/access-logs": {
                "get": {"summary": "Access log, newest first", "security": [{"apiKey": []}, {"bearer": []}], "parameters": log_params,
                    "responses": management_errors(json!({"200": ok_json("A page of records", "AccessLogPage")}), false)}
            },
            "/api/stats": {
                "get": {"summary": "Decisions by result and reason over a window (default: the last 24 h); live sessions per stream",
                    "security": [{"apiKey": []}, {"bearer": []}], "parameters": [
                        query_param("since", "RFC 3339, inclusive", fields::date_time()),
                        query_param("until", "RFC 3339, exclusive (default: now; before `since`: an empty window)", fields::date_time())],
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
        hook_paths(&auth_query, &auth_body, &auth_responses),
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
fn hook_paths(auth_query: &[Value], auth_body: &Value, auth_responses: &Value) -> Value {
    let denied = |description: &str| json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Denial"}}}});
    let form = json!({"required": true, "content": {
        "application/x-www-form-urlencoded": {"schema": hooks::rtmp_notification()}}});
    let json_body = |schema: Value| json!({"required": true, "content": {"application/json": {"schema": schema}}});
    // The query string as one object, each field its own argument.
    let rtmp_query = json!([{"name": "notification", "in": "query", "required": true,
        "style": "form", "explode": true, "schema": hooks::rtmp_notification()}]);
    let rtmp_responses = json!({
        "200": {"description": "Allowed (or a connect/done call, always answered 200)"},
        "400": error_ref("Missing or malformed `call`, `addr` or `name`"),
                    "413": error_ref("Body over 64 KiB"),
        "403": denied("Denied: nginx-rtmp drops the client (on update: cuts the live stream)")});
    json!({
        "/auth/publish": {
            "get": {"summary": "Flussonic on_publish: may this publisher publish? (the token must allow `publish`)",
                "parameters": auth_query, "responses": auth_responses},
            "post": {"summary": "Flussonic on_publish (JSON or form body, same fields)",
                "requestBody": auth_body, "responses": auth_responses}
        },
        "/hooks/nginx-rtmp": {
            "post": {"summary": "nginx-rtmp on_connect/on_play/on_publish/on_update/on_*_done (form body; token from the client's query)",
                "requestBody": form, "responses": rtmp_responses},
            "get": {"summary": "As POST, with `notify_method get`",
                "parameters": rtmp_query,
                "responses": rtmp_responses}
        },
        "/hooks/nginx-auth": {
            "get": {"summary": "nginx auth_request subrequest (HLS): reads X-Original-URI, X-Real-IP and Authorization: Bearer; X-Stream-Name only with NGINX_AUTH_STREAM_HEADER=true (refused with 400 otherwise)",
                "parameters": [
                    {"name": "X-Original-URI", "in": "header", "required": true, "schema": hooks::original_uri()},
                    {"name": "X-Real-IP", "in": "header", "required": true, "schema": fields::ip()}],
                "responses": {
                    "204": {"description": "Allowed", "headers": {"X-UserId": {"schema": {"type": "string"}}}},
                    "400": error_ref("invalid_request: a required header is missing (nginx answers 500: a configuration error), or the path names no stream nginx-rtmp could have written (a stream name is at most 1,024 bytes, with no `.` or `..` segment)"),
                    "401": denied("No token"),
                    "403": denied("Denied")}}
        },
        "/hooks/mediamtx": {
            "post": {"summary": "MediaMTX authMethod: http",
                "requestBody": json_body(hooks::mediamtx_body()),
                "responses": {
                    "200": {"description": "Allowed"},
                    "400": error_ref("Not a JSON object, or `action`, `ip` or `path` missing"),
                    "413": error_ref("Body over 64 KiB"),
                    "403": {"description": "Denied; an action on MediaMTX itself (`api`, `metrics`, `pprof`, any but publish, read, playback) is always refused (an Error: action_not_allowed)",
                        "content": {"application/json": {"schema": {"anyOf": [
                            {"$ref": "#/components/schemas/Denial"}, {"$ref": "#/components/schemas/Error"}]}}}}}}
        },
        "/hooks/srs": {
            "post": {"summary": "SRS http_hooks (on_connect, on_publish, on_play, on_unpublish, on_stop, on_close)",
                "requestBody": json_body(hooks::srs_body()),
                "responses": {
                    "200": {"description": "Allowed: {\"code\":0}"},
                    "400": error_ref("Not a JSON object, or a required field missing"),
                    "413": error_ref("Body over 64 KiB"),
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
