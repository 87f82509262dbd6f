//! The management API over real HTTP: every endpoint, filter and error, API keys, secrets at
//! rest, and the OpenAPI document.

mod common;

use std::sync::Arc;
use std::time::Duration;

use auth_core::{Backend, ManualClock, SqliteStore};
use common::{keyed_config, temp_db, Reply, TestServer, RO, RW, T0};
use serde_json::{json, Value};

/// A server with one read-write and one read-only key.
fn keyed_server(db: &std::path::Path) -> TestServer {
    let store: Arc<dyn Backend> = Arc::new(SqliteStore::open(db).unwrap());
    TestServer::with_store(keyed_config(db), store, Arc::new(ManualClock::new(T0)))
}

trait Api {
    fn api(&self, method: &str, path: &str, body: Option<Value>) -> Reply;
}

impl Api for TestServer {
    /// A request with the read-write key.
    fn api(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        let body = body.map(|b| b.to_string());
        self.call(
            method,
            path,
            &[("X-API-Key", RW)],
            body.as_deref().map(|b| ("application/json", b)),
        )
    }
}

fn create(server: &TestServer, body: Value) -> Value {
    let reply = server.api("POST", "/api/tokens", Some(body));
    assert_eq!(reply.status, 201, "{}", reply.body);
    // The secret is shown this once: no cache may keep it.
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    reply.json()
}

fn assert_error(reply: &Reply, status: u16, code: &str, field: Option<&str>) {
    assert_eq!(reply.status, status, "{}", reply.body);
    let body = reply.json();
    assert_eq!(body["error"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    if let Some(field) = field {
        assert_eq!(body["field"], field, "{body}");
    }
}

#[test]
fn token_lifecycle_create_list_show_patch_delete() {
    let (_dir, db) = temp_db();
    let server = keyed_server(&db);
    let created = create(
        &server,
        json!({"token": "secure-token-123", "user_id": "user-001", "status": "active", "max_sessions": 2,
               "allowed_ips": ["192.168.1.100", "10.0.0.0/8"], "allowed_streams": ["stream1", "sports/*"],
               "meta": {"region": "us-east"}, "valid_until": "2031-01-01T00:00:00Z"}),
    );
    assert_eq!(
        created["token"], "secure-token-123",
        "the create answer shows the secret once"
    );
    assert_eq!(
        created["token_prefix"], "secur",
        "at most a third of a short secret"
    );
    assert_eq!(
        created["allowed_ips"],
        json!(["192.168.1.100", "10.0.0.0/8"])
    );
    assert_eq!(created["meta"], json!({"region": "us-east"}));
    let id = created["id"].as_i64().unwrap();

    let generated = create(&server, json!({"user_id": "user-002"}));
    assert_eq!(
        generated["token"].as_str().unwrap().len(),
        43,
        "32 random bytes, base64url"
    );
    assert_eq!(generated["status"], "active");
    assert_eq!(generated["max_sessions"], 0);

    let shown = server.api("GET", &format!("/api/tokens/{id}"), None);
    assert_eq!(shown.status, 200);
    assert_eq!(shown.json()["user_id"], "user-001");
    assert!(shown.json().get("token").is_none(), "never shown again");
    let listed = server.api("GET", "/api/tokens", None);
    assert!(!listed.body.contains("secure-token-123"), "{}", listed.body);
    assert_eq!(listed.json()["total"], 2);

    // The token works at /auth; suspending it through the API denies its live session's
    // next re-check.
    let play = [
        ("name", "stream1"),
        ("ip", "10.1.2.3"),
        ("token", "secure-token-123"),
        ("session_id", "s1"),
    ];
    assert_eq!(server.auth(&play).verdict(), "allowed");
    let patched = server.api(
        "PATCH",
        &format!("/api/tokens/{id}"),
        Some(json!({"status": "suspended", "max_sessions": 1})),
    );
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(
        (
            patched.json()["status"].as_str(),
            patched.json()["max_sessions"].as_i64()
        ),
        (Some("suspended"), Some(1))
    );
    let mut update = play.to_vec();
    update.push(("request_type", "update_session"));
    assert_eq!(server.auth(&update).verdict(), "token_suspended");
    let cleared = server.api(
        "PATCH",
        &format!("/api/tokens/{id}"),
        Some(json!({"status": "active", "valid_until": null})),
    );
    assert_eq!(cleared.json()["valid_until"], Value::Null);

    assert_error(
        &server.api(
            "PATCH",
            &format!("/api/tokens/{id}"),
            Some(json!({"colour": "red"})),
        ),
        400,
        "invalid_request",
        Some("colour"),
    );
    assert_error(
        &server.api(
            "PATCH",
            &format!("/api/tokens/{id}"),
            Some(json!({"token": "new-secret-value"})),
        ),
        400,
        "invalid_request",
        Some("token"),
    );
    assert_error(
        &server.api("PATCH", &format!("/api/tokens/{id}"), Some(json!({}))),
        400,
        "invalid_request",
        None,
    );
    assert_error(
        &server.api(
            "PATCH",
            "/api/tokens/999",
            Some(json!({"status": "active"})),
        ),
        404,
        "not_found",
        None,
    );

    let deleted = server.api("DELETE", &format!("/api/tokens/{id}"), None);
    assert_eq!(deleted.status, 204);
    assert_eq!(
        server.api("GET", "/api/sessions", None).json()["total"],
        0,
        "its sessions ended with it"
    );
    assert_error(
        &server.api("GET", &format!("/api/tokens/{id}"), None),
        404,
        "not_found",
        None,
    );
    assert_error(
        &server.api("DELETE", &format!("/api/tokens/{id}"), None),
        404,
        "not_found",
        None,
    );
    assert_eq!(server.auth(&play).verdict(), "token_not_found");
    assert_error(
        &server.api("GET", "/api/tokens/abc", None),
        400,
        "invalid_request",
        Some("id"),
    );
}

#[test]
fn create_rejects_bad_input_naming_the_field() {
    let (_dir, db) = temp_db();
    let server = keyed_server(&db);
    let bad = |body: Value| server.api("POST", "/api/tokens", Some(body));
    assert_error(
        &bad(json!({"user_id": "u", "status": "paused"})),
        400,
        "invalid_request",
        Some("status"),
    );
    assert_error(
        &bad(json!({"user_id": "u", "max_sessions": -1})),
        400,
        "invalid_request",
        Some("max_sessions"),
    );
    assert_error(
        &bad(json!({"user_id": "u", "allowed_ips": ["10.0.0.0/99"]})),
        400,
        "invalid_request",
        Some("allowed_ips"),
    );
    assert_error(
        &bad(
            json!({"user_id": "u", "valid_from": "2030-01-02T00:00:00Z", "valid_until": "2030-01-01T00:00:00Z"}),
        ),
        // Each field well formed, together impossible: 422, as the OpenAPI document says.
        422,
        "invalid_request",
        Some("valid_until"),
    );
    assert_error(
        &bad(json!({"user_id": "u", "valid_from": "tomorrow"})),
        400,
        "invalid_request",
        Some("valid_from"),
    );
    assert_error(
        &bad(json!({"user_id": "u", "surprise": true})),
        400,
        "invalid_request",
        Some("surprise"),
    );
    assert_error(
        &bad(json!({"status": "active"})),
        400,
        "invalid_request",
        None,
    );
    assert_error(
        &bad(json!({"user_id": "u", "token": "short"})),
        400,
        "invalid_request",
        Some("token"),
    );
    create(
        &server,
        json!({"user_id": "u", "token": "duplicate-token-1"}),
    );
    assert_error(
        &bad(json!({"user_id": "v", "token": "duplicate-token-1"})),
        409,
        "conflict",
        Some("token"),
    );
    let not_json = server.call(
        "POST",
        "/api/tokens",
        &[("X-API-Key", RW)],
        Some(("application/json", "{nope")),
    );
    assert_error(&not_json, 400, "invalid_request", None);
    let form = server.call(
        "POST",
        "/api/tokens",
        &[("X-API-Key", RW)],
        Some(("text/plain", "user_id=u")),
    );
    assert_error(&form, 415, "unsupported_media_type", None);
}

#[test]
fn token_listing_filters_and_pages() {
    let (_dir, db) = temp_db();
    let server = keyed_server(&db);
    for i in 0..7 {
        create(
            &server,
            json!({"user_id": format!("team-{i}"), "status": if i % 3 == 0 { "suspended" } else { "active" }}),
        );
    }
    create(&server, json!({"user_id": "other"}));
    let total = |query: &str| {
        server
            .api("GET", &format!("/api/tokens{query}"), None)
            .json()["total"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(total(""), 8);
    assert_eq!(total("?status=suspended"), 3);
    assert_eq!(total("?user_id=team-4"), 1);
    assert_eq!(total("?q=team-"), 7);
    assert_eq!(total("?q=team-&status=active"), 4);
    let page = server
        .api("GET", "/api/tokens?limit=3&offset=6", None)
        .json();
    assert_eq!(
        (
            page["total"].as_u64(),
            page["items"].as_array().unwrap().len()
        ),
        (Some(8), 2)
    );
    assert_eq!(page["items"][1]["user_id"], "other");
    let default_page = server.api("GET", "/api/tokens", None).json();
    assert_eq!(
        default_page["items"].as_array().unwrap().len(),
        8,
        "default limit 50"
    );
    assert_error(
        &server.api("GET", "/api/tokens?limit=1001", None),
        400,
        "invalid_request",
        Some("limit"),
    );
    assert_error(
        &server.api("GET", "/api/tokens?limit=0", None),
        400,
        "invalid_request",
        Some("limit"),
    );
    assert_error(
        &server.api("GET", "/api/tokens?limit=ten", None),
        400,
        "invalid_request",
        Some("limit"),
    );
    assert_error(
        &server.api("GET", "/api/tokens?status=paused", None),
        400,
        "invalid_request",
        Some("status"),
    );
    assert_error(
        &server.api("GET", "/api/tokens?sort=id", None),
        400,
        "invalid_request",
        Some("sort"),
    );
}

#[test]
fn sessions_list_filter_and_terminate() {
    let (_dir, db) = temp_db();
    let server = keyed_server(&db);
    create(
        &server,
        json!({"user_id": "alice", "token": "alice-token-1"}),
    );
    create(
        &server,
        json!({"user_id": "bob", "token": "bob-token-01", "max_sessions": 1}),
    );
    let play = |token: &str, stream: &str, session: &str| {
        server.auth(&[
            ("name", stream),
            ("ip", "10.0.0.1"),
            ("proto", "hls"),
            ("token", token),
            ("session_id", session),
        ])
    };
    assert_eq!(play("alice-token-1", "news", "a1").verdict(), "allowed");
    assert_eq!(play("alice-token-1", "sports", "a2").verdict(), "allowed");
    assert_eq!(play("bob-token-01", "news", "b1").verdict(), "allowed");

    let list = |query: &str| {
        server
            .api("GET", &format!("/api/sessions{query}"), None)
            .json()
    };
    assert_eq!(list("")["total"], 3);
    assert_eq!(list("?user_id=alice")["total"], 2);
    assert_eq!(list("?stream=news")["total"], 2);
    let bob = list("?user_id=bob");
    let bob_token = bob["items"][0]["token_id"].as_i64().unwrap();
    assert_eq!(list(&format!("?token_id={bob_token}"))["total"], 1);
    assert_eq!(
        (
            bob["items"][0]["stream"].as_str(),
            bob["items"][0]["ip"].as_str()
        ),
        (Some("news"), Some("10.0.0.1"))
    );
    assert_error(
        &server.api("GET", "/api/sessions?token=1", None),
        400,
        "invalid_request",
        Some("token"),
    );

    // Paged like every listing: a window of the matches, and the count of them all.
    let window = list("?limit=2&offset=1");
    assert_eq!(
        (
            window["total"].as_u64(),
            window["limit"].as_u64(),
            window["offset"].as_u64()
        ),
        (Some(3), Some(2), Some(1))
    );
    assert_eq!(window["items"].as_array().unwrap().len(), 2);
    assert_eq!(list("?offset=3")["items"].as_array().unwrap().len(), 0);
    assert_eq!(list("")["limit"], 50, "the default window");
    assert_error(
        &server.api("GET", "/api/sessions?limit=0", None),
        400,
        "invalid_request",
        Some("limit"),
    );
    assert_error(
        &server.api("GET", "/api/sessions?limit=1001", None),
        400,
        "invalid_request",
        Some("limit"),
    );

    let session = bob["items"][0]["id"].as_i64().unwrap();
    assert_eq!(
        server
            .api("DELETE", &format!("/api/sessions/{session}"), None)
            .status,
        204
    );
    let update = server.auth(&[
        ("name", "news"),
        ("ip", "10.0.0.1"),
        ("proto", "hls"),
        ("token", "bob-token-01"),
        ("session_id", "b1"),
        ("request_type", "update_session"),
    ]);
    assert_eq!(update.verdict(), "session_terminated");
    assert_eq!(
        play("bob-token-01", "news", "b2").verdict(),
        "allowed",
        "the terminated session's slot is free"
    );
    assert_error(
        &server.api("DELETE", "/api/sessions/9999", None),
        404,
        "not_found",
        None,
    );
}

#[test]
fn access_logs_filter_page_and_stats() {
    let (_dir, db) = temp_db();
    let server = keyed_server(&db);
    create(
        &server,
        json!({"user_id": "viewer", "token": "viewer-token-1", "max_sessions": 1, "allowed_streams": ["news", "sports"]}),
    );
    let play = |stream: &str, session: &str| {
        server.auth(&[
            ("name", stream),
            ("ip", "10.0.0.1"),
            ("proto", "hls"),
            ("token", "viewer-token-1"),
            ("session_id", session),
        ])
    };
    assert_eq!(play("news", "s1").verdict(), "allowed");
    server.advance(10);
    assert_eq!(play("news", "s2").verdict(), "session_limit_reached");
    server.advance(10);
    assert_eq!(play("movies", "s3").verdict(), "stream_not_allowed");
    server.advance(10);
    assert_eq!(
        server
            .auth(&[
                ("name", "news"),
                ("ip", "10.0.0.2"),
                ("token", "nobody-token")
            ])
            .verdict(),
        "token_not_found"
    );

    // The access log is written off the request path: wait until all four are in.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while server.api("GET", "/api/access-logs", None).json()["total"] != 4 {
        assert!(
            std::time::Instant::now() < deadline,
            "access log never caught up"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let logs = |query: &str| {
        server
            .api("GET", &format!("/api/access-logs{query}"), None)
            .json()
    };
    let all = logs("");
    let reasons: Vec<Value> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].clone())
        .collect();
    assert_eq!(
        reasons,
        [
            json!("token_not_found"),
            json!("stream_not_allowed"),
            json!("session_limit_reached"),
            Value::Null
        ],
        "newest first"
    );
    assert!(!server
        .api("GET", "/api/access-logs", None)
        .body
        .contains("viewer-token-1"));
    assert_eq!(logs("?result=denied")["total"], 3);
    assert_eq!(logs("?result=allowed")["total"], 1);
    assert_eq!(logs("?reason=stream_not_allowed")["total"], 1);
    assert_eq!(logs("?user_id=viewer")["total"], 3);
    assert_eq!(logs("?stream=news")["total"], 3);
    let t10 = T0.saturating_add(Duration::from_secs(10)).to_rfc3339();
    let t30 = T0.saturating_add(Duration::from_secs(30)).to_rfc3339();
    assert_eq!(
        logs(&format!("?since={t10}&until={t30}"))["total"],
        2,
        "since inclusive, until exclusive"
    );
    let page = logs("?limit=1&offset=1");
    assert_eq!(
        (page["total"].as_u64(), page["items"][0]["reason"].as_str()),
        (Some(4), Some("stream_not_allowed"))
    );
    assert_error(
        &server.api("GET", "/api/access-logs?reason=bored", None),
        400,
        "invalid_request",
        Some("reason"),
    );
    assert_error(
        &server.api("GET", "/api/access-logs?result=maybe", None),
        400,
        "invalid_request",
        Some("result"),
    );
    // A window that ends before it starts holds nothing (no JSON Schema could refuse it).
    let inverted = server
        .api(
            "GET",
            &format!("/api/access-logs?since={t30}&until={t10}"),
            None,
        )
        .json();
    assert_eq!(inverted["total"], 0, "{inverted}");

    let stats = server.api("GET", "/api/stats", None).json();
    assert_eq!(
        (stats["allowed"].as_u64(), stats["denied"].as_u64()),
        (Some(1), Some(3))
    );
    assert_eq!(
        stats["denied_by_reason"],
        json!({"session_limit_reached": 1, "stream_not_allowed": 1, "token_not_found": 1})
    );
    assert_eq!(stats["live_sessions"], 1);
    assert_eq!(stats["live_sessions_by_stream"], json!({"news": 1}));
    let window = server
        .api("GET", &format!("/api/stats?since={t10}&until={t30}"), None)
        .json();
    assert_eq!(
        (window["allowed"].as_u64(), window["denied"].as_u64()),
        (Some(0), Some(2))
    );
    assert_eq!(window["since"], t10);
}

#[test]
fn api_keys_gate_every_endpoint() {
    let (_dir, db) = temp_db();
    let server = keyed_server(&db);
    let routes = [
        ("GET", "/api/tokens"),
        ("GET", "/api/tokens/1"),
        ("GET", "/api/sessions"),
        ("GET", "/api/access-logs"),
        ("GET", "/api/stats"),
    ];
    let writes = [
        ("POST", "/api/tokens"),
        ("PATCH", "/api/tokens/1"),
        ("DELETE", "/api/tokens/1"),
        ("DELETE", "/api/sessions/1"),
    ];
    for (method, path) in routes.iter().chain(writes.iter()) {
        let missing = server.call(method, path, &[], None);
        assert_error(&missing, 401, "unauthorized", None);
        assert_eq!(missing.header("www-authenticate"), Some("Bearer"));
        assert_error(
            &server.call(method, path, &[("X-API-Key", "wrong-key-0123456789")], None),
            401,
            "unauthorized",
            None,
        );
        assert_error(
            &server.call(
                method,
                path,
                &[("Authorization", "Bearer wrong-key-0123456789")],
                None,
            ),
            401,
            "unauthorized",
            None,
        );
    }
    for (method, path) in routes {
        let reply = server.call(method, path, &[("X-API-Key", RO)], None);
        assert!(
            reply.status == 200 || reply.status == 404,
            "{method} {path}: {}",
            reply.status
        );
    }
    for (method, path) in writes {
        assert_error(
            &server.call(method, path, &[("X-API-Key", RO)], None),
            403,
            "forbidden",
            None,
        );
    }
    let body = json!({"user_id": "via-bearer"}).to_string();
    let bearer = server.call(
        "POST",
        "/api/tokens",
        &[("Authorization", &format!("Bearer {RW}"))],
        Some(("application/json", &body)),
    );
    assert_eq!(bearer.status, 201, "{}", bearer.body);
    // /auth and /health stay open: the media server has no key.
    assert_eq!(server.get("/health").status, 200);
}

#[test]
fn without_keys_loopback_clients_may_manage() {
    let (_dir, db) = temp_db();
    let server = TestServer::sqlite(&db);
    let reply = server.call(
        "POST",
        "/api/tokens",
        &[],
        Some(("application/json", r#"{"user_id": "local"}"#)),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
}

#[test]
fn the_database_holds_no_token_in_clear_text() {
    let (_dir, db) = temp_db();
    let server = keyed_server(&db);
    let secret = "clear-text-would-be-a-leak-0042";
    create(&server, json!({"user_id": "u", "token": secret}));
    let generated = create(&server, json!({"user_id": "v"}))["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        server
            .auth(&[("name", "x"), ("ip", "10.0.0.1"), ("token", secret)])
            .verdict(),
        "allowed"
    );
    let store = server.stores.clone();
    server.stop();
    drop(store);
    let mut bytes = std::fs::read(&db).unwrap();
    bytes.extend(std::fs::read(db.with_extension("db-wal")).unwrap_or_default());
    let contains = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(!contains(secret), "the secret is in the database file");
    assert!(
        !contains(&generated),
        "the generated secret is in the database file"
    );
    assert!(
        !contains("would-be-a-leak"),
        "part of the secret is in the database file"
    );
    assert!(
        contains("clear-"),
        "the loggable prefix is stored (sanity check of the scan)"
    );
}

#[test]
fn openapi_describes_every_route() {
    let (_dir, db) = temp_db();
    let server = TestServer::sqlite(&db);
    let reply = server.get("/openapi.json");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let spec = reply.json();
    assert_eq!(spec["openapi"], "3.1.0");
    for (method, path, _) in auth_server::http::ROUTES {
        assert!(
            spec["paths"][path][method.to_ascii_lowercase()].is_object(),
            "{method} {path} is not in openapi.json"
        );
    }
    assert!(spec["paths"]["/auth"]["get"].is_object());
}

#[test]
fn allowed_actions_default_to_play_and_are_validated() {
    let (_dir, db) = temp_db();
    let server = keyed_server(&db);
    let viewer = create(
        &server,
        json!({"user_id": "v", "token": "viewer-actions-1"}),
    );
    assert_eq!(viewer["allowed_actions"], json!(["play"]));
    let key = create(
        &server,
        json!({"user_id": "p", "token": "publisher-actions-1", "allowed_actions": ["publish"]}),
    );
    assert_eq!(key["allowed_actions"], json!(["publish"]));
    assert_error(
        &server.api(
            "POST",
            "/api/tokens",
            Some(json!({"user_id": "x", "allowed_actions": []})),
        ),
        400,
        "invalid_request",
        Some("allowed_actions"),
    );
    let bad = server.api(
        "POST",
        "/api/tokens",
        Some(json!({"user_id": "x", "allowed_actions": ["record"]})),
    );
    assert_eq!(bad.status, 400, "{}", bad.body);
    let id = viewer["id"].as_i64().unwrap();
    let patched = server.api(
        "PATCH",
        &format!("/api/tokens/{id}"),
        Some(json!({"allowed_actions": ["play", "publish"]})),
    );
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(
        patched.json()["allowed_actions"],
        json!(["play", "publish"])
    );
}

/// DNS rebinding: a page whose name now resolves to 127.0.0.1 reaches the key-less API from the
/// browser, with its own name in `Host`. Without keys, only loopback host names are answered.
#[test]
fn the_keyless_api_answers_loopback_host_names_only() {
    let (_dir, db) = temp_db();
    let server = TestServer::sqlite(&db);
    let rebound = server.call(
        "POST",
        "/api/tokens",
        &[
            ("Host", "attacker.example"),
            ("Origin", "http://attacker.example"),
        ],
        Some(("application/json", r#"{"user_id": "mallory"}"#)),
    );
    assert_error(&rebound, 421, "host_not_allowed", None);
    let listed = server.call(
        "GET",
        "/api/tokens",
        &[("Host", "attacker.example:80")],
        None,
    );
    assert_eq!(listed.status, 421);
    assert_eq!(
        server
            .call("GET", "/api/tokens", &[("Host", "localhost")], None)
            .status,
        200
    );
    assert_eq!(server.call("GET", "/api/tokens", &[], None).status, 200);
}

/// `ACCESS_LOG_RETENTION`: records older than it are deleted in the background (the first
/// purge runs at start); younger ones stay.
#[test]
fn access_log_records_past_retention_are_purged() {
    use auth_core::access_log::{AccessLogEntry, AccessLogFilter, AccessResult};
    let (_dir, db) = temp_db();
    let store: Arc<dyn Backend> = Arc::new(SqliteStore::open(&db).unwrap());
    let entry = |days_ago: u64| AccessLogEntry {
        at: T0.saturating_sub(Duration::from_secs(days_ago * 86_400)),
        token_id: None,
        token_prefix: None,
        user_id: None,
        stream: format!("{days_ago}-days-ago"),
        ip: "192.0.2.1".into(),
        proto: "hls".into(),
        request_type: "new_session",
        session_id: None,
        result: AccessResult::Denied,
        reason: Some("token_not_found"),
        latency_us: 1,
    };
    store
        .append_access_logs(&[entry(40), entry(31), entry(29), entry(1)])
        .unwrap();
    let server = TestServer::with_store(
        keyed_config(&db),
        Arc::clone(&store),
        Arc::new(ManualClock::new(T0)),
    );
    let streams = || -> Vec<String> {
        let page = store.access_logs(&AccessLogFilter::default()).unwrap();
        page.items.into_iter().map(|r| r.entry.stream).collect()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while streams().len() > 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        streams(),
        ["1-days-ago", "29-days-ago"],
        "the default keeps 30 days"
    );
    drop(server);
}

#[test]
fn routes_answer_by_path_and_method() {
    let (_dir, db) = temp_db();
    let server = keyed_server(&db);
    let key = [("X-API-Key", RW)];
    let wrong_method = server.call("DELETE", "/auth", &[], None);
    assert_error(&wrong_method, 405, "method_not_allowed", None);
    assert_eq!(wrong_method.header("allow"), Some("GET, POST"));
    let wrong_method = server.call("PUT", "/api/tokens/7", &key, None);
    assert_error(&wrong_method, 405, "method_not_allowed", None);
    assert_eq!(wrong_method.header("allow"), Some("GET, PATCH, DELETE"));
    assert_error(
        &server.call("GET", "/api/tokens/7/x", &key, None),
        404,
        "not_found",
        None,
    );
    assert_error(
        &server.call("GET", "/api/tokens/", &key, None),
        404,
        "not_found",
        None,
    );
    assert_eq!(server.call("GET", "/api/tokens", &key, None).status, 200);
    assert_eq!(server.call("HEAD", "/health", &[], None).status, 200);
}
