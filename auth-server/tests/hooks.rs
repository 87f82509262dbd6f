//! The media-server adapters over real HTTP, with the bodies each server's documentation
//! specifies: Flussonic on_publish, nginx-rtmp, nginx auth_request, MediaMTX and SRS. (nginx-rtmp
//! and auth_request are also driven by a real nginx in `e2e_nginx.rs`; MediaMTX and SRS are not
//! packaged in Debian, so this is where they are exercised.)

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use auth_core::signed_token::{Claims, Kind};
use auth_core::{
    Action, Backend, Clock as _, ManualClock, SqliteStore, TokenPatch, TokenSpec, TokenStatus,
};
use auth_server::config::FailMode;
use common::{config, signing_server, spec, temp_db, FaultyStore, Reply, TestServer, T0};
use serde_json::json;

const FORM: &str = "application/x-www-form-urlencoded";

fn publisher(secret: &str) -> TokenSpec {
    TokenSpec {
        allowed_actions: Some(vec![Action::Publish]),
        ..spec(secret, "studio")
    }
}

fn reason(reply: &Reply) -> String {
    reply.json()["reason"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn live_sessions(server: &TestServer) -> usize {
    server
        .stores
        .sessions
        .sessions(&Default::default(), server.clock.now())
        .unwrap()
        .len()
}

/// What nginx-rtmp posts: its own fields first, then the client's query string, unescaped.
fn rtmp(call: &str, clientid: u32, name: &str, client_query: &str) -> String {
    format!(
        "app=live&flashver=LNX%209,0,124,2&swfurl=&tcurl=rtmp://127.0.0.1/live&pageurl=\
         &addr=192.0.2.10&clientid={clientid}&call={call}&name={name}&start=-2&duration=0\
         &reset=0&{client_query}"
    )
}

#[test]
fn flussonic_on_publish_needs_a_token_allowed_to_publish() {
    let (_dir, db) = temp_db();
    let server = TestServer::sqlite(&db);
    server.token(spec("viewer-token-1", "viewer"));
    server.token(publisher("publisher-key-1"));
    let fields = |token: &str| format!("name=cam1&ip=192.0.2.1&proto=rtmp&token={token}");
    let get = |path: &str, token: &str| server.get(&format!("{path}?{}", fields(token)));
    assert_eq!(get("/auth/publish", "publisher-key-1").status, 200);
    let refused = get("/auth/publish", "viewer-token-1");
    assert_eq!(
        (refused.status, reason(&refused)),
        (403, "action_not_allowed".into())
    );
    // The key is a stream key only: it does not play.
    assert_eq!(
        reason(&get("/auth", "publisher-key-1")),
        "action_not_allowed"
    );
    // Flussonic posts on_publish as JSON.
    let body = json!({"name": "cam2", "ip": "192.0.2.1", "proto": "rtmp", "token": "publisher-key-1",
                      "host": "example.com", "request_number": 0});
    let posted = server.post("/auth/publish", "application/json", &body.to_string());
    assert_eq!(posted.status, 200, "{}", posted.body);
}

#[test]
fn nginx_rtmp_sessions_from_play_to_done() {
    let (_dir, db) = temp_db();
    let server = TestServer::sqlite(&db);
    let token = server.token(TokenSpec {
        max_sessions: Some(1),
        ..spec("single-seat-1", "u")
    });
    let hook = |form: String| server.post("/hooks/nginx-rtmp", FORM, &form);

    assert_eq!(
        hook("app=live&addr=192.0.2.10&call=connect&epoch=1".into()).status,
        200
    );
    assert_eq!(
        hook(rtmp("play", 1, "cam1", "token=single-seat-1")).status,
        200
    );
    // The same connection re-checked: the same session, not a second one.
    assert_eq!(
        hook(rtmp("update_play", 1, "cam1", "token=single-seat-1")).status,
        200
    );
    assert_eq!(live_sessions(&server), 1);
    // Another connection: the one slot is taken.
    let second = hook(rtmp("play", 2, "cam1", "token=single-seat-1"));
    assert_eq!(
        (second.status, reason(&second)),
        (403, "session_limit_reached".into())
    );
    // on_play_done frees it at once; nginx ignores the answer, we give 200.
    assert_eq!(
        hook(rtmp("play_done", 1, "cam1", "token=single-seat-1")).status,
        200
    );
    assert_eq!(live_sessions(&server), 0);
    assert_eq!(
        hook(rtmp("play", 2, "cam1", "token=single-seat-1")).status,
        200
    );
    // `done` (sent alongside play_done when both are configured) ends the same session.
    assert_eq!(
        hook(rtmp("done", 2, "cam1", "token=single-seat-1")).status,
        200
    );
    assert_eq!(live_sessions(&server), 0);

    // A suspended token: the next on_update is refused, which makes nginx cut the stream.
    assert_eq!(
        hook(rtmp("play", 3, "cam1", "token=single-seat-1")).status,
        200
    );
    let suspend = TokenPatch {
        status: Some(TokenStatus::Suspended),
        ..Default::default()
    };
    server
        .stores
        .tokens
        .update_token(token.id, suspend, server.clock.now())
        .unwrap();
    let update = hook(rtmp("update_play", 3, "cam1", "token=single-seat-1"));
    assert_eq!(
        (update.status, reason(&update)),
        (403, "token_suspended".into())
    );
}

#[test]
fn nginx_rtmp_trusts_its_own_fields_over_the_client_tail() {
    let (_dir, db) = temp_db();
    let server = TestServer::sqlite(&db);
    server.token(TokenSpec {
        allowed_ips: vec!["192.0.2.10".into()],
        ..spec("ip-bound-1", "u")
    });
    // The client appends its own `addr` and `call`: the module's, which come first, count.
    let form = rtmp(
        "play",
        1,
        "cam1",
        "token=ip-bound-1&addr=198.51.100.1&call=connect",
    );
    assert_eq!(server.post("/hooks/nginx-rtmp", FORM, &form).status, 200);
    let form =
        rtmp("play", 2, "cam1", "token=ip-bound-1").replace("addr=192.0.2.10", "addr=198.51.100.1");
    let refused = server.post("/hooks/nginx-rtmp", FORM, &form);
    assert_eq!(reason(&refused), "ip_not_allowed");
    // notify_method get sends the same fields as a query string.
    let get = server.get(&format!(
        "/hooks/nginx-rtmp?{}",
        rtmp("play", 3, "cam1", "token=ip-bound-1")
    ));
    assert_eq!(get.status, 200);
    let missing = server.post("/hooks/nginx-rtmp", FORM, "call=play&name=cam1");
    assert_eq!(missing.status, 400);
    assert_eq!(missing.json()["error"], "invalid_request");
}

#[test]
fn nginx_rtmp_store_failures_follow_the_fail_mode() {
    let (_dir, db) = temp_db();
    let faulty = Arc::new(FaultyStore::new(Arc::new(SqliteStore::open(&db).unwrap())));
    let mut config = config(&db);
    config.fail_mode = FailMode::AllowUpdates;
    let server = TestServer::with_store(config, faulty.stores(), Arc::new(ManualClock::new(T0)));
    server.token(spec("fail-mode-1", "u"));
    faulty.failing.store(true, Ordering::SeqCst);
    let hook = |call: &str| {
        server.post(
            "/hooks/nginx-rtmp",
            FORM,
            &rtmp(call, 1, "cam1", "token=fail-mode-1"),
        )
    };
    // A new viewer is refused; a live one's re-check is let through, as AUTH_FAIL_MODE says.
    let refused = hook("play");
    assert_eq!(
        (refused.status, reason(&refused)),
        (403, "backend_error".into())
    );
    assert_eq!(hook("update_play").status, 200);

    // Both are counted, with the reason the store failed, and so are the failures.
    let metrics = server.get("/metrics");
    assert_eq!(metrics.status, 200, "loopback, no key configured");
    let value = |series: &str| {
        metrics
            .body
            .lines()
            .find_map(|l| {
                l.strip_prefix(series)?
                    .strip_prefix(' ')?
                    .parse::<f64>()
                    .ok()
            })
            .unwrap_or_else(|| panic!("{series} missing:\n{}", metrics.body))
    };
    let decisions =
        r#"auth_decisions_total{action="play",hook="nginx_rtmp",reason="backend_error","#;
    assert_eq!(value(&format!(r#"{decisions}result="denied"}}"#)), 1.0);
    assert_eq!(value(&format!(r#"{decisions}result="allowed"}}"#)), 1.0);
    // The scrape's own count of live sessions may fail too: at least the two decisions.
    assert!(value(r#"auth_store_failures_total{reason="error"}"#) >= 2.0);
}

#[test]
fn nginx_auth_request_answers_204_401_403() {
    let (_dir, db) = temp_db();
    let server = TestServer::sqlite(&db);
    server.token(spec("hls-viewer-1", "alice"));
    server.token(TokenSpec {
        allowed_ips: vec!["10.0.0.0/8".into()],
        ..spec("hls-elsewhere-1", "bob")
    });
    let ask = |uri: &str, extra: &[(&str, &str)]| {
        let mut headers = vec![("X-Original-URI", uri), ("X-Real-IP", "192.0.2.20")];
        headers.extend_from_slice(extra);
        server.call("GET", "/hooks/nginx-auth", &headers, None)
    };
    let allowed = ask("/hls/cam1.m3u8?token=hls-viewer-1", &[]);
    assert_eq!(allowed.status, 204, "{}", allowed.body);
    assert_eq!(allowed.header("x-userid"), Some("alice"));
    // Segments of the same stream are the same session, whether the token is in the query or
    // in a Bearer header.
    assert_eq!(
        ask(
            "/hls/cam1-3.ts",
            &[("Authorization", "Bearer hls-viewer-1")]
        )
        .status,
        204
    );
    assert_eq!(live_sessions(&server), 1);
    let none = ask("/hls/cam1-3.ts", &[]);
    assert_eq!((none.status, reason(&none)), (401, "token_missing".into()));
    let wrong = ask("/hls/cam1.m3u8?token=unknown-token-1", &[]);
    assert_eq!(
        (wrong.status, reason(&wrong)),
        (403, "token_not_found".into())
    );
    let elsewhere = ask("/hls/cam1.m3u8?token=hls-elsewhere-1", &[]);
    assert_eq!(
        (elsewhere.status, reason(&elsewhere)),
        (403, "ip_not_allowed".into())
    );
    // A missing header is the operator's mistake; the message says which nginx line to add.
    let misconfigured = server.call(
        "GET",
        "/hooks/nginx-auth",
        &[("X-Original-URI", "/hls/cam1.m3u8?token=hls-viewer-1")],
        None,
    );
    assert_eq!(misconfigured.status, 400);
    assert!(
        misconfigured.body.contains("$remote_addr"),
        "{}",
        misconfigured.body
    );
    // A token for one stream never opens another: not by naming the allowed stream in a header
    // the player sends, nor by a request line nginx reads as another file.
    server.token(TokenSpec {
        allowed_streams: vec!["free".into(), "conf-*".into()],
        ..spec("hls-free-only-1", "carol")
    });
    assert_eq!(ask("/hls/free.m3u8?token=hls-free-only-1", &[]).status, 204);
    for (uri, extra) in [
        (
            "/hls/premium.m3u8?token=hls-free-only-1",
            &[("X-Stream-Name", "free")][..],
        ),
        (
            "/hls/premium.m3u8#/free/index.m3u8?token=hls-free-only-1",
            &[],
        ),
        ("/hls/conf-%2F..%2Fpremium.m3u8?token=hls-free-only-1", &[]),
    ] {
        let smuggled = ask(uri, extra);
        assert_eq!(smuggled.status, 400, "{uri}: {}", smuggled.body);
    }
    let decoded = ask("/hls/prem%69um.m3u8?token=hls-free-only-1", &[]);
    assert_eq!(
        (decoded.status, reason(&decoded)),
        (403, "stream_not_allowed".into())
    );
}

/// `SEGMENT_TOKEN_TTL`: an allowed playlist answer carries a signed token for that viewer, stream
/// and address, which alone lets the segments through, for that long and no longer.
#[test]
fn nginx_auth_playlists_carry_a_segment_token() {
    let (_dir, db) = temp_db();
    let (server, ring) = signing_server(&db, |config| {
        config.segment_token_ttl = Duration::from_secs(60);
        config.signed_token_leeway = Duration::ZERO;
    });
    server.token(TokenSpec {
        max_sessions: Some(1),
        ..spec("hls-viewer-1", "alice")
    });
    let ask_from = |ip: &str, uri: &str| {
        let headers = [("X-Original-URI", uri), ("X-Real-IP", ip)];
        server.call("GET", "/hooks/nginx-auth", &headers, None)
    };
    let ask = |uri: &str| ask_from("192.0.2.20", uri);

    let playlist = ask("/hls/cam1.m3u8?token=hls-viewer-1");
    assert_eq!(playlist.status, 204, "{}", playlist.body);
    let token = playlist
        .header("x-segment-token")
        .expect("a playlist answer carries a segment token")
        .to_owned();
    let claims = ring
        .verify(&token, T0, Kind::Segment, None, None)
        .expect("signed with the server's key, marked a segment token");
    assert_eq!(
        (
            claims.sub.as_str(),
            claims.streams.as_slice(),
            claims.ip,
            claims.max_sessions,
            claims.exp - claims.iat,
            claims.evt,
        ),
        (
            "alice",
            ["cam1".to_owned()].as_slice(),
            "192.0.2.20".parse().ok(),
            0,
            60,
            None
        )
    );

    // The segments: allowed by the token alone, no second slot, no token of their own.
    let segment = |n: u32| format!("/hls/cam1-{n}.ts?token={token}");
    let allowed = ask(&segment(3));
    assert_eq!(allowed.status, 204, "{}", allowed.body);
    assert_eq!(allowed.header("x-userid"), Some("alice"));
    assert_eq!(allowed.header("x-segment-token"), None, "segments get none");
    assert_eq!(live_sessions(&server), 1);
    let elsewhere = ask_from("192.0.2.99", &segment(3));
    assert_eq!(elsewhere.status, 403, "bound to the playlist's address");
    assert_eq!(reason(&elsewhere), "ip_not_allowed");
    let other_stream = ask(&format!("/hls/cam2-3.ts?token={token}"));
    assert_eq!(other_stream.status, 403, "bound to the playlist's stream");
    assert_eq!(reason(&other_stream), "stream_not_allowed");

    // Presented on the playlist, a segment token is refused: it takes no slot, so it may open
    // no session, and it cannot renew itself.
    server.advance(30);
    let on_playlist = ask(&format!("/hls/cam1.m3u8?token={token}"));
    assert_eq!(
        (on_playlist.status, reason(&on_playlist)),
        (403, "wrong_kind".into())
    );
    assert_eq!(on_playlist.header("x-segment-token"), None);

    // Good until `exp` (no leeway in this test), refused after it.
    server.advance(30);
    assert_eq!(ask(&segment(4)).status, 204);
    server.advance(1);
    let expired = ask(&segment(5));
    assert_eq!(expired.status, 403, "good for SEGMENT_TOKEN_TTL only");
    assert_eq!(reason(&expired), "token_expired");

    // Refusals carry none.
    for refused in [
        ask("/hls/cam1.m3u8"),
        ask("/hls/cam1.m3u8?token=unknown-token-1"),
        ask_from("192.0.2.99", "/hls/cam1.m3u8?token=hls-viewer-1"),
    ] {
        assert!(matches!(refused.status, 401 | 403), "{}", refused.body);
        assert_eq!(refused.header("x-segment-token"), None);
    }
}

/// A segment token made from a signed playback token keeps its event and never outlives it.
#[test]
fn segment_tokens_from_a_signed_token_keep_its_event_and_end() {
    let (_dir, db) = temp_db();
    let (server, ring) = signing_server(&db, |config| {
        config.segment_token_ttl = Duration::from_secs(600);
    });
    let viewer = Claims {
        evt: Some("conf-2026".into()),
        streams: vec!["conf-*".into()],
        ..Claims::new("holder-1", T0, Duration::from_secs(120))
    };
    let (viewer, _) = ring.mint(None, &viewer).unwrap();
    let headers = [
        ("X-Original-URI", "/hls/conf-main/index.m3u8"),
        ("X-Real-IP", "192.0.2.20"),
        ("Authorization", &format!("Bearer {viewer}")),
    ];
    let playlist = server.call("GET", "/hooks/nginx-auth", &headers, None);
    assert_eq!(playlist.status, 204, "{}", playlist.body);
    let token = playlist.header("x-segment-token").unwrap();
    let claims = ring.verify(token, T0, Kind::Segment, None, None).unwrap();
    assert_eq!(claims.evt.as_deref(), Some("conf-2026"));
    assert_eq!(
        claims.streams,
        ["conf-main"],
        "the stream decided, not the glob"
    );
    assert_eq!(claims.exp, T0.unix_seconds() + 120);
}

/// A segment token takes no session slot, so it is good on a segment and nowhere else: every
/// adapter that opens a session refuses it, or a viewer limited to one player would fetch
/// playlists for segment tokens and play them anywhere, unlimited.
#[test]
fn segment_tokens_open_no_session_anywhere() {
    let (_dir, db) = temp_db();
    let (server, _ring) = signing_server(&db, |config| {
        config.segment_token_ttl = Duration::from_secs(60);
    });
    server.token(TokenSpec {
        max_sessions: Some(1),
        ..spec("hls-viewer-1", "alice")
    });
    let ip = "192.0.2.20";
    let nginx = |uri: &str| {
        let headers = [("X-Original-URI", uri), ("X-Real-IP", ip)];
        server.call("GET", "/hooks/nginx-auth", &headers, None)
    };
    let playlist = nginx("/hls/cam1.m3u8?token=hls-viewer-1");
    assert_eq!(playlist.status, 204, "{}", playlist.body);
    let token = playlist.header("x-segment-token").unwrap().to_owned();
    let query = format!("token={token}");

    assert_eq!(nginx(&format!("/hls/cam1-3.ts?{query}")).status, 204);
    assert_eq!(nginx(&format!("/hls/cam1/3.ts?{query}")).status, 204);
    let refused = [
        ("a playlist", nginx(&format!("/hls/cam1.m3u8?{query}"))),
        (
            "a nested playlist",
            nginx(&format!("/hls/cam1/index.m3u8?{query}")),
        ),
        ("a DASH manifest", nginx(&format!("/dash/cam1.mpd?{query}"))),
        (
            "Flussonic /auth",
            server.get(&format!(
                "/auth?name=cam1&ip={ip}&proto=rtmp&session_id=f1&{query}"
            )),
        ),
        (
            "nginx-rtmp play",
            server.post(
                "/hooks/nginx-rtmp",
                FORM,
                &rtmp("play", 1, "cam1", &query).replace("192.0.2.10", ip),
            ),
        ),
        (
            "MediaMTX read",
            server.post(
                "/hooks/mediamtx",
                "application/json",
                &json!({"token": token, "ip": ip, "action": "read", "path": "cam1",
                        "protocol": "rtsp", "id": "a7f1c1f2-0000-4000-8000-000000000009",
                        "query": ""})
                .to_string(),
            ),
        ),
        (
            "SRS on_play",
            server.post(
                "/hooks/srs",
                "application/json",
                &json!({"action": "on_play", "client_id": "c1", "ip": ip,
                        "vhost": "__defaultVhost__", "app": "live", "stream": "cam1",
                        "param": format!("?{query}")})
                .to_string(),
            ),
        ),
    ];
    for (what, reply) in refused {
        assert_eq!(
            (reply.status, reason(&reply)),
            (403, "wrong_kind".into()),
            "{what}: {}",
            reply.body
        );
    }
    assert_eq!(
        live_sessions(&server),
        1,
        "only the viewer's playlist session"
    );
}

#[test]
fn segment_tokens_only_when_configured_and_signable() {
    let ask = |server: &TestServer, uri: &str| {
        let headers = [("X-Original-URI", uri), ("X-Real-IP", "192.0.2.20")];
        server.call("GET", "/hooks/nginx-auth", &headers, None)
    };
    // A key, but SEGMENT_TOKEN_TTL is off (the default).
    let (_dir, db) = temp_db();
    let (server, _ring) = signing_server(&db, |_| {});
    server.token(spec("hls-viewer-1", "alice"));
    let allowed = ask(&server, "/hls/cam1.m3u8?token=hls-viewer-1");
    assert_eq!(
        (allowed.status, allowed.header("x-segment-token")),
        (204, None)
    );
    // On, but no key to sign with: allowed as before, without the header.
    let (_dir, db) = temp_db();
    let mut config = config(&db);
    config.segment_token_ttl = Duration::from_secs(60);
    let store: Arc<dyn Backend> = Arc::new(SqliteStore::open(&db).unwrap());
    let server = TestServer::with_store(config, store, Arc::new(ManualClock::new(T0)));
    server.token(spec("hls-viewer-1", "alice"));
    for _ in 0..2 {
        let allowed = ask(&server, "/hls/cam1.m3u8?token=hls-viewer-1");
        assert_eq!(
            (allowed.status, allowed.header("x-segment-token")),
            (204, None)
        );
    }
}

#[test]
fn mediamtx_documented_bodies() {
    let (_dir, db) = temp_db();
    let server = TestServer::sqlite(&db);
    server.token(TokenSpec {
        max_sessions: Some(1),
        ..spec("mtx-viewer-1", "viewer")
    });
    server.token(publisher("mtx-publisher-1"));
    let ask = |body: serde_json::Value| {
        server.post("/hooks/mediamtx", "application/json", &body.to_string())
    };
    let read = |token: &str, id: &str| {
        json!({"user": "", "password": "", "token": token, "ip": "192.0.2.30", "action": "read",
               "path": "cam1", "protocol": "rtsp", "id": id, "query": "", "userAgent": "ffmpeg"})
    };
    assert_eq!(
        ask(read("mtx-viewer-1", "a7f1c1f2-0000-4000-8000-000000000001")).status,
        200
    );
    let second = ask(read("mtx-viewer-1", "a7f1c1f2-0000-4000-8000-000000000002"));
    assert_eq!(
        (second.status, reason(&second)),
        (403, "session_limit_reached".into())
    );
    // Publishing: the key may come as the RTMP/RTSP password.
    let publish = json!({"user": "studio", "password": "mtx-publisher-1", "token": "", "ip": "192.0.2.31",
                         "action": "publish", "path": "cam1", "protocol": "rtmp", "id": null, "query": ""});
    assert_eq!(ask(publish).status, 200);
    let as_key = json!({"token": "mtx-viewer-1", "ip": "192.0.2.31", "action": "publish",
                        "path": "cam2", "protocol": "srt", "id": null, "query": ""});
    assert_eq!(reason(&ask(as_key)), "action_not_allowed");
    // HLS readers (no id) with the token in the query string.
    let hls = json!({"user": "", "password": "", "ip": "192.0.2.32", "action": "read", "path": "cam1",
                     "protocol": "hls", "id": null, "query": "token=unknown-token-9"});
    assert_eq!(reason(&ask(hls)), "token_not_found");
    let api =
        ask(json!({"ip": "192.0.2.32", "action": "api", "path": "", "protocol": "", "id": null}));
    assert_eq!(
        (api.status, &api.json()["error"]),
        (403, &json!("action_not_allowed"))
    );
}

#[test]
fn srs_documented_bodies() {
    let (_dir, db) = temp_db();
    let server = TestServer::sqlite(&db);
    server.token(TokenSpec {
        max_sessions: Some(1),
        ..spec("srs-viewer-1", "viewer")
    });
    server.token(publisher("srs-publisher-1"));
    let ask =
        |body: serde_json::Value| server.post("/hooks/srs", "application/json", &body.to_string());
    let hook = |action: &str, client: &str, token: &str| {
        json!({"server_id": "vid-0xk989d", "service_id": "ffn7xt1j", "action": action,
               "client_id": client, "ip": "192.0.2.40", "vhost": "__defaultVhost__", "app": "live",
               "tcUrl": "rtmp://127.0.0.1:1935/live", "stream": "livestream",
               "param": format!("?token={token}"), "stream_url": "/live/livestream",
               "stream_id": "vid-124q9y3", "pageUrl": ""})
    };
    let connect = ask(
        json!({"action": "on_connect", "client_id": 1985, "ip": "192.0.2.40",
                             "vhost": "__defaultVhost__", "app": "live",
                             "tcUrl": "rtmp://127.0.0.1/live", "pageUrl": ""}),
    );
    assert_eq!(
        (connect.status, connect.body.as_str()),
        (200, r#"{"code":0}"#)
    );
    let published = ask(hook("on_publish", "c1", "srs-publisher-1"));
    assert_eq!(
        (published.status, published.body.as_str()),
        (200, r#"{"code":0}"#)
    );
    let as_key = ask(hook("on_publish", "c2", "srs-viewer-1"));
    assert_eq!(as_key.status, 403);
    assert_ne!(
        as_key.json()["code"],
        0,
        "a refusal under SRS's body reading too"
    );
    assert_eq!(reason(&as_key), "action_not_allowed");

    assert_eq!(ask(hook("on_play", "c3", "srs-viewer-1")).status, 200);
    assert_eq!(
        reason(&ask(hook("on_play", "c4", "srs-viewer-1"))),
        "session_limit_reached"
    );
    // on_stop frees the slot at once.
    assert_eq!(ask(hook("on_stop", "c3", "srs-viewer-1")).status, 200);
    assert_eq!(ask(hook("on_play", "c4", "srs-viewer-1")).status, 200);
    assert_eq!(
        reason(&ask(hook("on_play", "c5", "wrong-token-1"))),
        "token_not_found"
    );
    assert_eq!(
        ask(json!({"action": "on_close", "client_id": "c4", "ip": "192.0.2.40"})).status,
        200
    );
    assert_eq!(
        server.post("/hooks/srs", "application/json", "0").status,
        400
    );
}

/// A stream name longer than 1,024 bytes, or with a `.` or `..` segment, is a 400 at every
/// adapter: it never reaches the decision (so `sports/*` cannot match `sports/../movies`), nor
/// the access log, which only records decisions.
#[test]
fn stream_names_too_long_or_with_dot_segments_are_refused_at_every_adapter() {
    let (_dir, db) = temp_db();
    let server = TestServer::sqlite(&db);
    server.token(TokenSpec {
        allowed_streams: vec!["sports/*".into()],
        ..spec("sports-viewer-1", "viewer")
    });
    let long = "a".repeat(1025);
    let token = "sports-viewer-1";
    type Ask<'a> = Box<dyn Fn(&str) -> Reply + 'a>;
    let asks: Vec<(&str, Ask<'_>)> = vec![
        (
            "flussonic",
            Box::new(|name: &str| {
                let query = form_urlencoded::Serializer::new(String::new())
                    .append_pair("name", name)
                    .append_pair("ip", "192.0.2.1")
                    .append_pair("proto", "hls")
                    .append_pair("token", token)
                    .finish();
                server.get(&format!("/auth?{query}"))
            }),
        ),
        (
            "nginx-rtmp",
            Box::new(|name: &str| {
                let name: String = form_urlencoded::byte_serialize(name.as_bytes()).collect();
                let body = rtmp("play", 7, &name, &format!("token={token}"));
                server.post("/hooks/nginx-rtmp", FORM, &body)
            }),
        ),
        (
            "nginx-auth",
            Box::new(|name: &str| {
                let uri = format!("/hls/{name}.m3u8?token={token}");
                let headers = [("X-Original-URI", uri.as_str()), ("X-Real-IP", "192.0.2.1")];
                server.call("GET", "/hooks/nginx-auth", &headers, None)
            }),
        ),
        (
            "mediamtx",
            Box::new(|name: &str| {
                let body = json!({"user": "", "password": "", "token": token, "ip": "192.0.2.1",
                                  "action": "read", "path": name, "protocol": "rtsp", "id": null,
                                  "query": ""});
                server.post("/hooks/mediamtx", "application/json", &body.to_string())
            }),
        ),
        (
            "srs",
            Box::new(|name: &str| {
                let body = json!({"server_id": "s", "service_id": "x", "action": "on_play",
                                  "client_id": "c1", "ip": "192.0.2.1", "vhost": "v", "app": "live",
                                  "stream": name, "param": format!("?token={token}")});
                server.post("/hooks/srs", "application/json", &body.to_string())
            }),
        ),
    ];
    for (adapter, ask) in &asks {
        let fine = ask(if *adapter == "nginx-auth" {
            "live"
        } else {
            "sports/live"
        });
        let refused_fine = fine.status == 403 && reason(&fine) == "stream_not_allowed";
        // nginx-auth reads `live` from `/hls/live.m3u8`, outside `sports/*`: a 403, not a 400.
        assert!(
            fine.status / 100 == 2 || (*adapter == "nginx-auth" && refused_fine),
            "{adapter}: {} {}",
            fine.status,
            fine.body
        );
        for name in [long.as_str(), "sports/../movies", "sports/./x"] {
            let reply = ask(name);
            assert_eq!(reply.status, 400, "{adapter} {name:.20}: {}", reply.body);
            assert_eq!(reply.json()["error"], "invalid_request", "{adapter}");
            assert!(
                reply.body.len() < 200,
                "the name is not echoed: {}",
                reply.body
            );
        }
    }
}

/// A token without a session limit holds at most `UNLIMITED_SESSIONS_CEILING` sessions (every
/// distinct stream through nginx `auth_request` is one), and nginx `auth_request` paths that
/// nginx-rtmp never writes are refused before they can open one.
#[test]
fn an_unlimited_token_is_bounded_and_made_up_paths_are_refused() {
    let (_dir, db) = temp_db();
    let mut config = config(&db);
    config.unlimited_sessions_ceiling = 2;
    let store: Arc<dyn Backend> = Arc::new(SqliteStore::open(&db).unwrap());
    let server = TestServer::with_store(config, store, Arc::new(ManualClock::new(T0)));
    server.token(spec("anything-goes-1", "viewer"));
    let ask = |path: &str| {
        let uri = format!("{path}?token=anything-goes-1");
        let headers = [("X-Original-URI", uri.as_str()), ("X-Real-IP", "192.0.2.7")];
        server.call("GET", "/hooks/nginx-auth", &headers, None)
    };
    assert_eq!(ask("/hls/a.m3u8").status, 204);
    assert_eq!(ask("/hls/a-1.ts").status, 204, "the same stream's segment");
    assert_eq!(ask("/hls/b/index.m3u8").status, 204);
    let third = ask("/hls/c.m3u8");
    assert_eq!(
        (third.status, reason(&third)),
        (403, "session_limit_reached".into())
    );
    for path in ["/hls/d.html", "/hls/d", "/hls/d-x.ts", "/hls/e.jpg"] {
        let refused = ask(path);
        assert_eq!(refused.status, 400, "{path}: {}", refused.body);
        assert_eq!(refused.json()["error"], "invalid_request");
    }
    assert_eq!(live_sessions(&server), 2);
}

/// With `HOOK_SECRET`, every hook request must carry it (query argument or header, as each
/// media server can send it); without it a forged done call could free another viewer's slot.
#[test]
fn hooks_take_the_hook_secret_when_one_is_set() {
    const SECRET: &str = "hook-secret-0123456789abcdef";
    let (_dir, db) = temp_db();
    let mut config = config(&db);
    config.hook_secret = Some(auth_server::config::HookSecret::parse(SECRET).unwrap());
    let store: Arc<dyn Backend> = Arc::new(SqliteStore::open(&db).unwrap());
    let server = TestServer::with_store(config, store, Arc::new(ManualClock::new(T0)));
    server.token(TokenSpec {
        max_sessions: Some(1),
        ..spec("guarded-viewer-1", "viewer")
    });
    let refused = |reply: Reply| {
        assert_eq!(reply.status, 403, "{}", reply.body);
        assert_eq!(reply.json()["error"], "hook_secret_invalid");
    };
    let fields = "name=cam1&ip=192.0.2.1&proto=hls&token=guarded-viewer-1";
    refused(server.get(&format!("/auth?{fields}")));
    refused(server.get(&format!(
        "/auth?{fields}&hook_secret=wrong-secret-000000000"
    )));
    let allowed = server.get(&format!("/auth?hook_secret={SECRET}&{fields}"));
    assert_eq!(allowed.status, 200, "{}", allowed.body);

    // nginx-rtmp posts a form: the secret is in the hook URL, never read from the body, where
    // the client's own query string lands.
    let play = rtmp("play", 1, "cam2", "token=guarded-viewer-1");
    refused(server.post("/hooks/nginx-rtmp", FORM, &play));
    let forged_done = rtmp("play_done", 1, "cam2", &format!("hook_secret={SECRET}"));
    refused(server.post("/hooks/nginx-rtmp", FORM, &forged_done));
    let path = format!("/hooks/nginx-rtmp?hook_secret={SECRET}");
    assert_eq!(
        server.post(&path, FORM, &play).status,
        403,
        "one slot, held by /auth"
    );

    // nginx auth_request sets a header; MediaMTX and SRS take the URL's query.
    let uri = "/hls/cam1.m3u8?token=guarded-viewer-1";
    let mut headers = vec![("X-Original-URI", uri), ("X-Real-IP", "192.0.2.1")];
    refused(server.call("GET", "/hooks/nginx-auth", &headers, None));
    headers.push(("X-Hook-Secret", SECRET));
    let by_header = server.call("GET", "/hooks/nginx-auth", &headers, None);
    assert_eq!(by_header.status, 204, "{}", by_header.body);
    let mtx = json!({"token": "guarded-viewer-1", "ip": "192.0.2.1", "action": "read",
                     "path": "cam1", "protocol": "hls", "id": null, "query": ""})
    .to_string();
    refused(server.post("/hooks/mediamtx", "application/json", &mtx));
    let guarded = format!("/hooks/mediamtx?hook_secret={SECRET}");
    assert_eq!(server.post(&guarded, "application/json", &mtx).status, 200);
    let srs = json!({"action": "on_stop", "client_id": "c", "ip": "192.0.2.1", "vhost": "v",
                     "app": "live", "stream": "cam1", "param": "?token=guarded-viewer-1"})
    .to_string();
    refused(server.post("/hooks/srs", "application/json", &srs));
    let guarded = format!("/hooks/srs?hook_secret={SECRET}");
    assert_eq!(server.post(&guarded, "application/json", &srs).status, 200);
    // Nothing else needs it.
    assert_eq!(server.get("/health").status, 200);
}
