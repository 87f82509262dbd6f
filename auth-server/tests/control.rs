//! Live session control over real HTTP: the registry (source, media session id, filters,
//! counts), cuts with bans and kicks, and each media server's control API called with the
//! exact method, path and authentication its documentation gives, checked by a local HTTP
//! server standing in for it.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;
use std::time::Duration;

use auth_core::{Backend, ManualClock, SqliteStore, TokenSpec};
use auth_server::control::{ControlConfig, Url};
use common::{config, temp_db, Reply, TestServer, T0};
use serde_json::{json, Value};

/// One request a stand-in media server received.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    method: String,
    target: String,
    authorization: Option<String>,
}

/// A stand-in control API on a free port: records every request and answers each with the next
/// status of `statuses` (the last one repeated).
fn media_server(statuses: &[u16]) -> (String, Receiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = channel();
    let statuses = statuses.to_vec();
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let mut parts = line.split_whitespace();
            let (method, target) = (
                parts.next().unwrap_or_default().to_owned(),
                parts.next().unwrap_or_default().to_owned(),
            );
            let mut authorization = None;
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                    break;
                }
                if let Some((name, value)) = header.split_once(':') {
                    if name.eq_ignore_ascii_case("authorization") {
                        authorization = Some(value.trim().to_owned());
                    }
                }
            }
            let status = statuses[n.min(statuses.len() - 1)];
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            if tx
                .send(Seen {
                    method,
                    target,
                    authorization,
                })
                .is_err()
            {
                return;
            }
        }
    });
    (base, rx)
}

fn next(rx: &Receiver<Seen>) -> Seen {
    rx.recv_timeout(Duration::from_secs(5))
        .expect("the media server was not called")
}

fn quiet(rx: &Receiver<Seen>) {
    if let Ok(seen) = rx.recv_timeout(Duration::from_millis(300)) {
        panic!("unexpected call: {seen:?}");
    }
}

fn server_with(db: &std::path::Path, control: ControlConfig) -> TestServer {
    let mut config = config(db);
    config.control = control;
    let store: Arc<dyn Backend> = Arc::new(SqliteStore::open(db).unwrap());
    TestServer::with_store(config, store, Arc::new(ManualClock::new(T0)))
}

fn url(base: &str) -> Option<Url> {
    Some(Url::parse(base).unwrap())
}

fn viewer(server: &TestServer, token: &str, user: &str, max: i64) -> i64 {
    server
        .token(TokenSpec {
            token: Some(token.into()),
            user_id: user.into(),
            max_sessions: Some(max),
            ..Default::default()
        })
        .id
}

fn srs(server: &TestServer, client: &str, stream: &str, token: &str) -> Reply {
    let body = json!({"server_id": "vid-0xk989d", "service_id": "ffn7xt1j", "action": "on_play",
        "client_id": client, "ip": "192.0.2.40", "vhost": "__defaultVhost__", "app": "live",
        "tcUrl": "rtmp://127.0.0.1:1935/live", "stream": stream, "param": format!("?token={token}"),
        "stream_url": format!("/live/{stream}"), "stream_id": "vid-124q9y3", "pageUrl": ""});
    server.post("/hooks/srs", "application/json", &body.to_string())
}

fn srs_allowed(reply: &Reply) -> bool {
    reply.status == 200 && reply.body == r#"{"code":0}"#
}

fn rtmp_play(server: &TestServer, clientid: u32, name: &str, token: &str) -> Reply {
    server.post(
        "/hooks/nginx-rtmp",
        "application/x-www-form-urlencoded",
        &format!(
            "app=live&flashver=LNX&swfurl=&tcurl=rtmp://127.0.0.1/live&pageurl=&addr=192.0.2.10\
             &clientid={clientid}&call=play&name={name}&start=-2&duration=0&reset=0&token={token}"
        ),
    )
}

fn sessions(server: &TestServer, query: &str) -> Value {
    let reply = server.get(&format!("/api/sessions{query}"));
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()
}

#[test]
fn the_registry_lists_sources_and_media_ids_filters_and_counts() {
    let (_dir, db) = temp_db();
    let server = server_with(&db, ControlConfig::default());
    viewer(&server, "reg-alice-1", "alice", 0);
    viewer(&server, "reg-bob-001", "bob", 0);
    assert!(srs_allowed(&srs(&server, "c1", "news", "reg-alice-1")));
    assert_eq!(rtmp_play(&server, 12, "news", "reg-bob-001").status, 200);
    let mtx = json!({"user": "", "password": "", "token": "reg-bob-001", "ip": "192.0.2.30",
        "action": "read", "path": "sports", "protocol": "rtsp", "id": "a7f1c1f2-0000-4000-8000-000000000001",
        "query": "", "userAgent": "ffmpeg"});
    assert_eq!(
        server
            .post("/hooks/mediamtx", "application/json", &mtx.to_string())
            .status,
        200
    );
    assert_eq!(
        server
            .auth(&[
                ("name", "news"),
                ("ip", "192.0.2.1"),
                ("proto", "hls"),
                ("token", "reg-alice-1"),
                ("session_id", "4242")
            ])
            .verdict(),
        "allowed"
    );

    let all = sessions(&server, "");
    assert_eq!(all["total"], 4);
    let mut seen: Vec<(String, Value, String)> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["source"].as_str().unwrap().to_owned(),
                s["media_session_id"].clone(),
                s["proto"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        seen,
        vec![
            ("flussonic".into(), json!("4242"), "hls".into()),
            (
                "mediamtx".into(),
                json!("a7f1c1f2-0000-4000-8000-000000000001"),
                "rtsp".into()
            ),
            ("nginx-rtmp".into(), json!("12"), "rtmp".into()),
            ("srs".into(), json!("c1"), "rtmp".into()),
        ]
    );
    for key in [
        "id",
        "token_id",
        "user_id",
        "stream",
        "ip",
        "started_at",
        "last_seen",
        "expires_at",
    ] {
        assert!(!all["items"][0][key].is_null(), "{key}");
    }
    assert_eq!(sessions(&server, "?source=srs")["total"], 1);
    assert_eq!(sessions(&server, "?proto=rtmp")["total"], 2);
    assert_eq!(sessions(&server, "?proto=rtmp&user_id=bob")["total"], 1);
    assert_eq!(
        sessions(&server, "?source=nginx-rtmp&limit=1&offset=1")["items"],
        json!([])
    );

    let counts = server.get("/api/sessions/counts?by=stream").json();
    assert_eq!(
        counts,
        json!({"by": "stream", "total": 4,
               "items": [{"key": "news", "sessions": 3}, {"key": "sports", "sessions": 1}]})
    );
    let by_user = server.get("/api/sessions/counts?by=user_id").json();
    assert_eq!(
        by_user["items"],
        json!([{"key": "alice", "sessions": 2}, {"key": "bob", "sessions": 2}])
    );
    assert_eq!(server.get("/api/sessions/counts?by=ip").status, 400);
    assert_eq!(server.get("/api/sessions/counts").status, 400);
}

/// SRS (docs "HTTP API", Kickoff Client): `DELETE /api/v1/clients/{client_id}`, the id its
/// `http_hooks` sent. A ban refuses the reconnect under a new client id, for as long as asked.
#[test]
fn a_cut_with_a_ban_is_pushed_to_srs_and_refuses_the_reconnect() {
    let (_dir, db) = temp_db();
    let (base, rx) = media_server(&[200]);
    let server = server_with(
        &db,
        ControlConfig {
            srs: url(&format!("{base}/")),
            ..Default::default()
        },
    );
    viewer(&server, "srs-ban-tok1", "alice", 0);
    assert!(srs_allowed(&srs(&server, "c1", "news", "srs-ban-tok1")));
    let id = sessions(&server, "")["items"][0]["id"].as_i64().unwrap();
    let refused = server.request("DELETE", &format!("/api/sessions/{id}?ban_seconds=86401"));
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(refused.json()["field"], "ban_seconds");
    assert_eq!(
        server
            .request("DELETE", &format!("/api/sessions/{id}?ban_seconds=60"))
            .status,
        204
    );
    assert_eq!(
        next(&rx),
        Seen {
            method: "DELETE".into(),
            target: "/api/v1/clients/c1".into(),
            authorization: None
        }
    );
    let again = srs(&server, "c2", "news", "srs-ban-tok1");
    assert_eq!(
        (again.status, again.json()["reason"].as_str()),
        (403, Some("session_banned"))
    );
    assert!(
        srs_allowed(&srs(&server, "c3", "sports", "srs-ban-tok1")),
        "the ban is for that stream only"
    );
    server.advance(60);
    assert!(
        srs_allowed(&srs(&server, "c4", "news", "srs-ban-tok1")),
        "the ban ran out"
    );
    assert_eq!(server.request("DELETE", "/api/sessions/9999").status, 404);
    quiet(&rx);
}

/// `POST /api/sessions/kick`: every live session of a user (or token, or stream), each pushed;
/// the access log records each cut with its reason.
#[test]
fn kick_cuts_every_match_and_logs_the_reason() {
    let (_dir, db) = temp_db();
    let (base, rx) = media_server(&[503, 200]);
    let server = server_with(
        &db,
        ControlConfig {
            nginx_rtmp: url(&format!("{base}/control")),
            ..Default::default()
        },
    );
    let token = viewer(&server, "kick-alice-1", "alice", 0);
    viewer(&server, "kick-bob-001", "bob", 0);
    assert_eq!(rtmp_play(&server, 7, "news", "kick-alice-1").status, 200);
    assert_eq!(rtmp_play(&server, 8, "sports", "kick-alice-1").status, 200);
    assert_eq!(rtmp_play(&server, 9, "news", "kick-bob-001").status, 200);
    let kick = |body: Value| {
        server.call(
            "POST",
            "/api/sessions/kick",
            &[],
            Some(("application/json", &body.to_string())),
        )
    };
    for bad in [
        json!({}),
        json!({"user_id": "alice", "stream": "news"}),
        json!({"user": "x"}),
    ] {
        assert_eq!(kick(bad).status, 400);
    }
    let kicked = kick(json!({"user_id": "alice"}));
    assert_eq!((kicked.status, kicked.json()), (200, json!({"kicked": 2})));
    // The first call answered 503: retried.
    let mut targets: Vec<String> = (0..3).map(|_| next(&rx).target).collect();
    targets.sort();
    assert!(
        targets.contains(&"/control/drop/client?app=live&name=news&clientid=7".to_owned()),
        "{targets:?}"
    );
    assert!(
        targets.contains(&"/control/drop/client?app=live&name=sports&clientid=8".to_owned()),
        "{targets:?}"
    );
    quiet(&rx);
    assert_eq!(
        kick(json!({"token_id": token})).json(),
        json!({"kicked": 0}),
        "already cut"
    );
    assert_eq!(kick(json!({"stream": "news"})).json(), json!({"kicked": 1}));
    assert_eq!(
        next(&rx).target,
        "/control/drop/client?app=live&name=news&clientid=9"
    );
    // nginx-rtmp's next update of a cut session is refused.
    let update = server.post(
        "/hooks/nginx-rtmp",
        "application/x-www-form-urlencoded",
        "app=live&addr=192.0.2.10&clientid=7&call=update_play&name=news&time=30&timestamp=30&token=kick-alice-1",
    );
    assert_ne!(update.status, 200);
    let mut logged = Value::Null;
    for _ in 0..50 {
        logged = server
            .get("/api/access-logs?reason=session_terminated")
            .json();
        if logged["total"].as_u64() >= Some(3) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let cuts: Vec<&Value> = logged["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["request_type"] == "cut")
        .collect();
    assert_eq!(cuts.len(), 3, "{logged}");
}

/// Flussonic (`flussonic/openapi-demo`, `paths/auth/sessions_id.yml` and
/// `paths/auth/sessions_reauth.yml`): `DELETE /streamer/api/v3/sessions/{id}` with Basic
/// authentication; where the session cannot be closed (a 404 here), `POST
/// /streamer/api/v3/sessions/reauth?name=STREAM`.
#[test]
fn flussonic_sessions_are_closed_with_basic_auth_or_reauthorized() {
    let (_dir, db) = temp_db();
    let (base, rx) = media_server(&[204, 404, 200]);
    let server = server_with(
        &db,
        ControlConfig {
            flussonic: url(&base),
            flussonic_auth: Some("admin:s3cret".into()),
            ..Default::default()
        },
    );
    viewer(&server, "flu-viewer-1", "alice", 0);
    let play = |session: &str| {
        server
            .auth(&[
                ("name", "news"),
                ("ip", "192.0.2.1"),
                ("proto", "hls"),
                ("token", "flu-viewer-1"),
                ("session_id", session),
            ])
            .verdict()
    };
    assert_eq!(play("3001"), "allowed");
    assert_eq!(play("3002"), "allowed");
    // base64("admin:s3cret")
    let basic = Some("Basic YWRtaW46czNjcmV0".to_owned());
    let ids: Vec<i64> = sessions(&server, "")["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        server
            .request("DELETE", &format!("/api/sessions/{}", ids[0]))
            .status,
        204
    );
    assert_eq!(
        next(&rx),
        Seen {
            method: "DELETE".into(),
            target: "/streamer/api/v3/sessions/3001".into(),
            authorization: basic.clone()
        }
    );
    quiet(&rx);
    assert_eq!(
        server
            .request("DELETE", &format!("/api/sessions/{}", ids[1]))
            .status,
        204
    );
    assert_eq!(next(&rx).target, "/streamer/api/v3/sessions/3002");
    assert_eq!(
        next(&rx),
        Seen {
            method: "POST".into(),
            target: "/streamer/api/v3/sessions/reauth?name=news".into(),
            authorization: basic
        }
    );
    assert_eq!(
        server
            .auth(&[
                ("name", "news"),
                ("ip", "192.0.2.1"),
                ("proto", "hls"),
                ("token", "flu-viewer-1"),
                ("session_id", "3002"),
                ("request_type", "update_session")
            ])
            .verdict(),
        "session_terminated",
        "the re-check reauth triggers is refused"
    );
}

/// MediaMTX (`apidocs/openapi.yaml`, v3): `POST /v3/{rtspsessions|rtmpconns|...}/kick/{id}`,
/// the id its authentication request carried; by protocol.
#[test]
fn mediamtx_readers_are_kicked_by_protocol_and_id() {
    let (_dir, db) = temp_db();
    let (base, rx) = media_server(&[200]);
    let server = server_with(
        &db,
        ControlConfig {
            mediamtx: url(&base),
            ..Default::default()
        },
    );
    viewer(&server, "mtx-viewer-1", "alice", 0);
    for (protocol, id) in [
        ("rtsp", "a7f1c1f2-0000-4000-8000-000000000001"),
        ("rtmp", "b8"),
        ("webrtc", "c9"),
        ("srt", "d0"),
        ("hls", "e1"),
    ] {
        let body = json!({"user": "", "password": "", "token": "mtx-viewer-1", "ip": "192.0.2.30",
            "action": "read", "path": format!("cam-{protocol}"), "protocol": protocol, "id": id,
            "query": "", "userAgent": "ffmpeg"});
        assert_eq!(
            server
                .post("/hooks/mediamtx", "application/json", &body.to_string())
                .status,
            200
        );
    }
    let kicked = server.call(
        "POST",
        "/api/sessions/kick",
        &[],
        Some(("application/json", r#"{"user_id": "alice"}"#)),
    );
    assert_eq!(kicked.json(), json!({"kicked": 5}));
    let mut seen: Vec<(String, String)> = (0..4)
        .map(|_| {
            let s = next(&rx);
            (s.method, s.target)
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("POST".into(), "/v3/rtmpconns/kick/b8".into()),
            (
                "POST".into(),
                "/v3/rtspsessions/kick/a7f1c1f2-0000-4000-8000-000000000001".into()
            ),
            ("POST".into(), "/v3/srtconns/kick/d0".into()),
            ("POST".into(), "/v3/webrtcsessions/kick/c9".into()),
        ]
    );
    quiet(&rx);
}

/// Revocation reaches live sessions: suspending a token, narrowing its allow-lists, or deleting
/// it cuts the sessions it no longer allows, at once, each pushed to its media server.
#[test]
fn token_changes_cut_the_live_sessions_they_no_longer_allow() {
    let (_dir, db) = temp_db();
    let (base, rx) = media_server(&[200]);
    let server = server_with(
        &db,
        ControlConfig {
            srs: url(&base),
            ..Default::default()
        },
    );
    let patch = |id: i64, body: Value| {
        server.call(
            "PATCH",
            &format!("/api/tokens/{id}"),
            &[],
            Some(("application/json", &body.to_string())),
        )
    };
    let token = viewer(&server, "rev-viewer-1", "alice", 0);
    assert!(srs_allowed(&srs(&server, "n1", "news", "rev-viewer-1")));
    assert!(srs_allowed(&srs(&server, "s1", "sports", "rev-viewer-1")));
    // A change that leaves every session qualified cuts nothing.
    assert_eq!(patch(token, json!({"max_sessions": 5})).status, 200);
    quiet(&rx);
    // Narrowing the streams cuts the session on the stream left out, only.
    assert_eq!(
        patch(token, json!({"allowed_streams": ["news"]})).status,
        200
    );
    assert_eq!(next(&rx).target, "/api/v1/clients/s1");
    quiet(&rx);
    assert!(!sessions(&server, "?stream=sports")["items"][0]["terminated_at"].is_null());
    // Suspending cuts the rest.
    assert_eq!(patch(token, json!({"status": "suspended"})).status, 200);
    assert_eq!(next(&rx).target, "/api/v1/clients/n1");
    quiet(&rx);
    let mut logged = Value::Null;
    for _ in 0..50 {
        logged = server.get("/api/access-logs?reason=token_suspended").json();
        if logged["total"] == 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(logged["items"][0]["request_type"], "cut", "{logged}");
    assert_eq!(logged["items"][0]["stream"], "news");

    // Deleting a token cuts every live session it held.
    let other = viewer(&server, "rev-viewer-2", "bob", 0);
    assert!(srs_allowed(&srs(&server, "b1", "news", "rev-viewer-2")));
    assert!(srs_allowed(&srs(&server, "b2", "news", "rev-viewer-2")));
    assert_eq!(
        server
            .request("DELETE", &format!("/api/tokens/{other}"))
            .status,
        204
    );
    let mut targets = vec![next(&rx).target, next(&rx).target];
    targets.sort();
    assert_eq!(targets, ["/api/v1/clients/b1", "/api/v1/clients/b2"]);
    quiet(&rx);
}

/// The documentation shows what an operator needs: the nginx `rtmp_control` location and every
/// setting, named as the server reads them.
#[test]
fn the_docs_show_the_control_snippets_and_settings() {
    let media = include_str!("../../docs/media-servers.md");
    let config = include_str!("../../docs/configuration.md");
    let env = include_str!("../../.env.example");
    assert!(media.contains("location /control {\n            rtmp_control all;"));
    for setting in [
        "NGINX_RTMP_CONTROL_URL",
        "FLUSSONIC_API_URL",
        "FLUSSONIC_API_AUTH",
        "SRS_API_URL",
        "MEDIAMTX_API_URL",
    ] {
        assert!(media.contains(setting), "media-servers.md: {setting}");
        assert!(
            config.contains(&format!("`{setting}`")),
            "configuration.md: {setting}"
        );
        assert!(
            env.contains(&format!("\n{setting}=")),
            ".env.example: {setting}"
        );
        assert!(
            ControlConfig::load(|name| (name == setting).then(|| "nope".to_owned())).is_err()
                || setting == "FLUSSONIC_API_AUTH",
            "{setting} is read and checked"
        );
    }
}

/// `on_limit: evict_oldest`, set through the API: at the limit the new viewer is admitted and
/// the oldest live session is cut and pushed to its media server; `reject_new` refuses.
#[test]
fn evict_oldest_admits_the_new_viewer_and_cuts_the_oldest() {
    let (_dir, db) = temp_db();
    let (base, rx) = media_server(&[200]);
    let server = server_with(
        &db,
        ControlConfig {
            srs: url(&base),
            ..Default::default()
        },
    );
    let created = server.call(
        "POST",
        "/api/tokens",
        &[],
        Some((
            "application/json",
            r#"{"token": "evict-viewer-1", "user_id": "alice", "max_sessions": 1, "on_limit": "evict_oldest"}"#,
        )),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.json()["on_limit"], "evict_oldest");
    let id = created.json()["id"].as_i64().unwrap();
    let bad = server.call(
        "PATCH",
        &format!("/api/tokens/{id}"),
        &[],
        Some(("application/json", r#"{"on_limit": "kick"}"#)),
    );
    assert_eq!(bad.status, 400);
    assert!(srs_allowed(&srs(&server, "e1", "news", "evict-viewer-1")));
    quiet(&rx);
    assert!(
        srs_allowed(&srs(&server, "e2", "news", "evict-viewer-1")),
        "the second viewer plays"
    );
    assert_eq!(next(&rx).target, "/api/v1/clients/e1", "the first is cut");
    let live: Vec<Value> = sessions(&server, "")["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["terminated_at"].is_null())
        .cloned()
        .collect();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0]["media_session_id"], "e2");

    let patched = server.call(
        "PATCH",
        &format!("/api/tokens/{id}"),
        &[],
        Some(("application/json", r#"{"on_limit": "reject_new"}"#)),
    );
    assert_eq!(patched.json()["on_limit"], "reject_new");
    let refused = srs(&server, "e3", "news", "evict-viewer-1");
    assert_eq!(refused.json()["reason"], "session_limit_reached");
    quiet(&rx);
}

/// What the server's periodic sweep cuts: sessions whose token's validity ran out with no request
/// to say so (SRS and MediaMTX never re-check), and sessions of a token changed where no push
/// could follow (straight in the store, as the command line does); nothing else.
#[test]
fn the_sweep_cuts_sessions_whose_token_stopped_allowing_them() {
    let (_dir, db) = temp_db();
    let server = server_with(&db, ControlConfig::default());
    server.token(TokenSpec {
        token: Some("sweep-lapsing-1".into()),
        user_id: "lapsing".into(),
        valid_until: Some(T0.saturating_add(Duration::from_secs(100))),
        ..Default::default()
    });
    let changed = viewer(&server, "sweep-changed-1", "changed", 0);
    viewer(&server, "sweep-steady-01", "steady", 0);
    for (client, token) in [
        ("l1", "sweep-lapsing-1"),
        ("c1", "sweep-changed-1"),
        ("s1", "sweep-steady-01"),
    ] {
        assert!(srs_allowed(&srs(&server, client, "news", token)));
    }
    let sweep = |now| {
        let mut cut: Vec<(String, &'static str)> =
            auth_server::control::cut_disqualified(&server.stores, now)
                .unwrap()
                .into_iter()
                .map(|(s, reason)| (s.media_session_id.unwrap(), reason.code()))
                .collect();
        cut.sort();
        cut
    };
    assert!(sweep(T0).is_empty(), "every token still allows its session");
    let patch = auth_core::TokenPatch {
        allowed_streams: Some(vec!["sports".into()]),
        ..Default::default()
    };
    server
        .stores
        .tokens
        .update_token(changed, patch, T0)
        .unwrap();
    let later = T0.saturating_add(Duration::from_secs(100));
    assert_eq!(
        sweep(later),
        vec![
            ("c1".to_owned(), "stream_not_allowed"),
            ("l1".to_owned(), "token_expired")
        ]
    );
    assert!(sweep(later).is_empty(), "a session is cut once");
}
