//! The Flussonic `/auth` hook over real HTTP, against a temporary SQLite file.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use auth_core::access_log::AccessLogFilter;
use auth_core::prelude::*;
use auth_core::session::SessionFilter;
use auth_core::{Backend, Clock, ManualClock, SqliteStore, TokenSpec, TokenStatus};
use auth_server::FailMode;
use common::{config, play, spec, temp_db, FaultyStore, TestServer, IP, T0};

fn update<'a>(token: &'a str, stream: &'a str, session: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut fields = play(token, stream, session);
    fields.push(("request_type", "update_session"));
    fields
}

#[test]
fn allows_over_get_post_json_and_post_form_with_flussonic_headers() {
    let (_dir, db) = temp_db();
    let server = TestServer::sqlite(&db);
    server.token(TokenSpec {
        max_sessions: Some(3),
        ..spec("viewer-token-1", "user-1")
    });
    server.token(spec("unlimited-token-1", "user-2"));

    let get = server.auth(&play("viewer-token-1", "news", "s1"));
    assert_eq!(get.status, 200, "{}", get.body);
    assert_eq!(get.header("x-userid"), Some("user-1"));
    assert_eq!(get.header("x-max-sessions"), Some("3"));
    assert_eq!(get.header("x-authduration"), Some("180"));

    let json = server.post(
        "/auth",
        "application/json",
        r#"{"name":"news","proto":"dash","ip":"10.0.0.7","token":"viewer-token-1","session_id":"s2",
            "request_number":0,"stream_clients":5,"duration":null,"qs":"token=viewer-token-1","extra":{"x":[1]}}"#,
    );
    assert_eq!(json.status, 200, "{}", json.body);
    assert_eq!(json.header("x-userid"), Some("user-1"));

    let form = server.post(
        "/auth",
        "application/x-www-form-urlencoded",
        "name=news&proto=rtmp&ip=10.0.0.7&token=viewer-token-1&session_id=s3&unknown_field=1",
    );
    assert_eq!(form.status, 200, "{}", form.body);

    let unlimited = server.auth(&play("unlimited-token-1", "news", "u1"));
    assert_eq!(unlimited.status, 200);
    assert_eq!(
        unlimited.header("x-max-sessions"),
        None,
        "0 (unlimited) is not sent: Flussonic would read it as a limit"
    );
}

#[test]
fn every_reason_code_over_http() {
    let (_dir, db) = temp_db();
    let server = TestServer::sqlite(&db);
    let now = server.clock.now();
    server.token(TokenSpec {
        max_sessions: Some(1),
        ..spec("good-token-1", "good")
    });
    server.token(TokenSpec {
        status: Some(TokenStatus::Suspended),
        ..spec("suspended-token", "sus")
    });
    server.token(TokenSpec {
        status: Some(TokenStatus::Expired),
        ..spec("expired-status-token", "exp1")
    });
    server.token(TokenSpec {
        valid_until: Some(now.saturating_sub(Duration::from_secs(1))),
        ..spec("expired-window-token", "exp2")
    });
    server.token(TokenSpec {
        status: Some(TokenStatus::Suspended),
        valid_until: Some(now),
        ..spec("suspended-and-past-token", "exp3")
    });
    server.token(TokenSpec {
        valid_from: Some(now.saturating_add(Duration::from_secs(60))),
        ..spec("future-token-1", "future")
    });
    server.token(TokenSpec {
        allowed_ips: vec!["192.168.0.0/16".into(), "2001:db8::/32".into()],
        ..spec("ip-token-1", "ip")
    });
    server.token(TokenSpec {
        allowed_streams: vec!["sports/*".into()],
        ..spec("stream-token-1", "st")
    });

    let missing = server.auth(&[("name", "news"), ("ip", IP), ("proto", "hls")]);
    assert_eq!(missing.verdict(), "token_missing");
    assert_eq!(missing.json()["user_id"], serde_json::Value::Null);
    assert_eq!(
        server.auth(&play("no-such-token", "news", "a")).verdict(),
        "token_not_found"
    );
    let suspended = server.auth(&play("suspended-token", "news", "a"));
    assert_eq!(suspended.verdict(), "token_suspended");
    assert_eq!(suspended.json()["user_id"], "sus");
    assert_eq!(suspended.json()["error"], "access_denied");
    assert!(suspended.json()["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    assert_eq!(
        suspended.header("x-authduration"),
        Some("180"),
        "denials carry X-AuthDuration"
    );
    assert_eq!(
        server
            .auth(&play("expired-status-token", "news", "a"))
            .verdict(),
        "token_expired"
    );
    assert_eq!(
        server
            .auth(&play("expired-window-token", "news", "a"))
            .verdict(),
        "token_expired"
    );
    assert_eq!(
        server
            .auth(&play("suspended-and-past-token", "news", "a"))
            .verdict(),
        "token_expired"
    );
    assert_eq!(
        server.auth(&play("future-token-1", "news", "a")).verdict(),
        "token_not_yet_valid"
    );
    let ip = server.auth(&play("ip-token-1", "news", "a"));
    assert_eq!(ip.verdict(), "ip_not_allowed");
    assert!(ip.json()["message"].as_str().unwrap().contains(IP));
    let v6 = server.auth(&[
        ("name", "news"),
        ("ip", "2001:db8::5"),
        ("token", "ip-token-1"),
    ]);
    assert_eq!(v6.verdict(), "allowed");
    assert_eq!(
        server.auth(&play("stream-token-1", "news", "a")).verdict(),
        "stream_not_allowed"
    );
    assert_eq!(
        server
            .auth(&play("stream-token-1", "sports/final", "a"))
            .verdict(),
        "allowed"
    );

    assert_eq!(
        server.auth(&play("good-token-1", "news", "a")).verdict(),
        "allowed"
    );
    assert_eq!(
        server.auth(&play("good-token-1", "news", "b")).verdict(),
        "session_limit_reached"
    );

    let session = server
        .stores
        .sessions
        .sessions(&SessionFilter::default(), server.clock.now())
        .unwrap();
    let a = session.iter().find(|s| s.user_id == "good").unwrap();
    assert!(server
        .stores
        .sessions
        .terminate_session(a.id, auth_core::CloseReason::Terminated, server.clock.now())
        .unwrap());
    assert_eq!(
        server.auth(&update("good-token-1", "news", "a")).verdict(),
        "session_terminated"
    );
}

#[test]
fn admission_limit_update_and_expiry() {
    let (_dir, db) = temp_db();
    let server = TestServer::sqlite(&db);
    server.token(TokenSpec {
        max_sessions: Some(1),
        ..spec("limited-token", "u")
    });

    assert_eq!(
        server.auth(&play("limited-token", "news", "s1")).verdict(),
        "allowed"
    );
    assert_eq!(
        server.auth(&play("limited-token", "news", "s1")).verdict(),
        "allowed",
        "a repeat is the same session"
    );
    assert_eq!(
        server.auth(&play("limited-token", "news", "s2")).verdict(),
        "session_limit_reached"
    );

    // Re-checks arrive about every AUTH_DURATION (180 s); a late one within the grace (30 s)
    // extends the live session and never counts as a new one.
    server.advance(180 + 29);
    assert_eq!(
        server
            .auth(&update("limited-token", "news", "s1"))
            .verdict(),
        "allowed"
    );
    assert_eq!(
        server.auth(&play("limited-token", "news", "s2")).verdict(),
        "session_limit_reached"
    );

    // s1 stops re-checking; its lease runs out and the slot is free again.
    server.advance(180 + 30);
    assert_eq!(
        server.auth(&play("limited-token", "news", "s2")).verdict(),
        "allowed"
    );
    assert_eq!(
        server
            .auth(&update("limited-token", "news", "s1"))
            .verdict(),
        "session_limit_reached",
        "an expired session's update is a new admission and finds no free slot"
    );

    // Without a session id, the (ip, proto, name) triple identifies the session.
    server.advance(1000);
    let anon = [
        ("name", "news"),
        ("proto", "hls"),
        ("ip", IP),
        ("token", "limited-token"),
    ];
    assert_eq!(server.auth(&anon).verdict(), "allowed");
    assert_eq!(server.auth(&anon).verdict(), "allowed");
    let other_ip = [
        ("name", "news"),
        ("proto", "hls"),
        ("ip", "10.0.0.8"),
        ("token", "limited-token"),
    ];
    assert_eq!(server.auth(&other_ip).verdict(), "session_limit_reached");
}

#[test]
fn suspending_a_token_denies_its_live_sessions_at_their_next_recheck() {
    let (_dir, db) = temp_db();
    let server = TestServer::sqlite(&db);
    let token = server.token(spec("to-suspend-1", "u"));
    assert_eq!(
        server.auth(&play("to-suspend-1", "news", "s1")).verdict(),
        "allowed"
    );
    let patch = auth_core::TokenPatch {
        status: Some(TokenStatus::Suspended),
        ..Default::default()
    };
    server
        .stores
        .tokens
        .update_token(token.id, patch, server.clock.now())
        .unwrap();
    assert_eq!(
        server.auth(&update("to-suspend-1", "news", "s1")).verdict(),
        "token_suspended"
    );
}

#[test]
fn termination_refuses_the_session_and_frees_its_slot() {
    let (_dir, db) = temp_db();
    let server = TestServer::sqlite(&db);
    server.token(TokenSpec {
        max_sessions: Some(1),
        ..spec("term-token-1", "u")
    });
    assert_eq!(
        server.auth(&play("term-token-1", "news", "s1")).verdict(),
        "allowed"
    );
    let live = server
        .stores
        .sessions
        .sessions(&SessionFilter::default(), server.clock.now())
        .unwrap();
    assert!(server
        .stores
        .sessions
        .terminate_session(
            live[0].id,
            auth_core::CloseReason::Terminated,
            server.clock.now()
        )
        .unwrap());
    assert_eq!(
        server.auth(&update("term-token-1", "news", "s1")).verdict(),
        "session_terminated"
    );
    assert_eq!(
        server.auth(&play("term-token-1", "news", "s1")).verdict(),
        "session_terminated"
    );
    assert_eq!(
        server.auth(&play("term-token-1", "news", "s2")).verdict(),
        "allowed",
        "the slot was freed"
    );
}

#[test]
fn concurrent_new_sessions_never_exceed_the_limit() {
    const MAX: usize = 5;
    const CLIENTS: usize = 48;
    let (_dir, db) = temp_db();
    let server = Arc::new(TestServer::sqlite(&db));
    server.token(TokenSpec {
        max_sessions: Some(MAX as i64),
        ..spec("race-token-1", "u")
    });
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (server, barrier) = (Arc::clone(&server), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                let session = format!("race-{i}");
                server
                    .auth(&play("race-token-1", "news", &session))
                    .verdict()
            })
        })
        .collect();
    let verdicts: Vec<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let allowed = verdicts.iter().filter(|v| *v == "allowed").count();
    assert_eq!(allowed, MAX, "{verdicts:?}");
    assert!(
        verdicts
            .iter()
            .all(|v| v == "allowed" || v == "session_limit_reached"),
        "{verdicts:?}"
    );
    let live = server
        .stores
        .sessions
        .sessions(&SessionFilter::default(), server.clock.now())
        .unwrap();
    assert_eq!(live.len(), MAX);
}

#[test]
fn sessions_tokens_and_access_logs_survive_a_restart() {
    let (_dir, db) = temp_db();
    let server = TestServer::sqlite(&db);
    server.token(TokenSpec {
        max_sessions: Some(1),
        ..spec("persist-token-1", "u")
    });
    assert_eq!(
        server
            .auth(&play("persist-token-1", "news", "s1"))
            .verdict(),
        "allowed"
    );
    assert_eq!(
        server.auth(&play("nope-nope-nope", "news", "s1")).verdict(),
        "token_not_found"
    );
    server.stop();

    let store: Arc<dyn Backend> = Arc::new(SqliteStore::open(&db).unwrap());
    let logs = store
        .access_logs(&AccessLogFilter::default())
        .unwrap()
        .items;
    assert_eq!(
        logs.len(),
        2,
        "a clean shutdown wrote every access log entry"
    );
    let clock = Arc::new(ManualClock::new(T0));
    clock.advance(Duration::from_secs(60));
    let server = TestServer::with_store(config(&db), store, clock);
    assert_eq!(
        server
            .auth(&play("persist-token-1", "news", "s2"))
            .verdict(),
        "session_limit_reached"
    );
    assert_eq!(
        server
            .auth(&update("persist-token-1", "news", "s1"))
            .verdict(),
        "allowed"
    );
}

#[test]
fn access_log_records_each_decision_with_only_a_token_prefix() {
    let (_dir, db) = temp_db();
    let server = TestServer::sqlite(&db);
    let secret = "a-rather-long-secret-token-value";
    server.token(TokenSpec {
        allowed_streams: vec!["news".into()],
        ..spec(secret, "logged-user")
    });
    server.auth(&play(secret, "news", "s1"));
    server.auth(&play(secret, "movies", "s2"));
    let store = server.stores.clone();
    server.stop();
    let logs = store
        .access_log
        .access_logs(&AccessLogFilter::default())
        .unwrap()
        .items;
    assert_eq!(logs.len(), 2);
    let denied = &logs[0].entry;
    assert_eq!(
        (denied.result.as_str(), denied.reason.as_deref()),
        ("denied", Some("stream_not_allowed"))
    );
    assert_eq!(
        (
            denied.stream.as_str(),
            denied.ip.as_str(),
            denied.proto.as_str()
        ),
        ("movies", IP, "hls")
    );
    assert_eq!(denied.user_id.as_deref(), Some("logged-user"));
    assert_eq!(denied.request_type, "new_session");
    assert_eq!(logs[1].entry.result, "allowed");
    for record in &logs {
        let prefix = record.entry.token_prefix.as_deref().unwrap();
        assert!(prefix.len() <= 6 && secret.starts_with(prefix));
    }
    let in_logs = logs
        .iter()
        .any(|r| serde_json::to_string(r).unwrap().contains("rather-long"));
    assert!(!in_logs, "no access log record carries the token");
}

#[test]
fn bad_input_is_a_clear_400_or_413_and_never_breaks_the_server() {
    let (_dir, db) = temp_db();
    let server = TestServer::sqlite(&db);
    server.token(spec("fine-token-1", "u"));

    let no_name = server.auth(&[("ip", IP), ("token", "fine-token-1")]);
    assert_eq!(no_name.status, 400);
    assert_eq!(no_name.json()["error"], "invalid_request");
    assert!(no_name.json()["message"].as_str().unwrap().contains("name"));
    let no_ip = server.auth(&[("name", "news"), ("token", "fine-token-1")]);
    assert_eq!(no_ip.status, 400);
    assert!(no_ip.json()["message"].as_str().unwrap().contains("ip"));
    let bad_ip = server.auth(&[
        ("name", "news"),
        ("ip", "10.0.0.300"),
        ("token", "fine-token-1"),
    ]);
    assert_eq!(bad_ip.status, 400);
    assert_eq!(
        server.post("/auth", "application/json", "{not json").status,
        400
    );
    assert_eq!(
        server.post("/auth", "application/json", "[1,2,3]").status,
        400
    );
    assert_eq!(
        server.get("/auth?name=%ZZ&ip=1").status,
        400,
        "broken percent-encoding"
    );

    // An announced body over 64 KiB is refused before it is read: send only the headers (a
    // client writing the whole body could hit a closed socket before reading the answer).
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "POST /auth HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        70 * 1024
    )
    .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.contains(r#""error":"payload_too_large""#),
        "{answer}"
    );

    // The same without Content-Length: a chunked body is cut off at the limit too.
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(stream, "POST /auth HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\n").unwrap();
    let chunk = "y".repeat(16 * 1024);
    for _ in 0..5 {
        let _ = write!(stream, "{:x}\r\n{chunk}\r\n", chunk.len());
    }
    let _ = write!(stream, "0\r\n\r\n");
    let mut answer = [0u8; 64];
    let n = stream.read(&mut answer).unwrap();
    assert!(
        String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 413"),
        "{}",
        String::from_utf8_lossy(&answer[..n])
    );

    // A body that stops arriving is answered 408 after BODY_READ_TIMEOUT, not waited for forever.
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(auth_server::http::BODY_READ_TIMEOUT * 3))
        .unwrap();
    write!(stream, "POST /auth HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\nname=a").unwrap();
    let mut answer = [0u8; 128];
    let n = stream.read(&mut answer).unwrap();
    assert!(
        String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&answer[..n])
    );

    let not_found = server.get("/nowhere");
    assert_eq!(
        (not_found.status, not_found.json()["error"].as_str()),
        (404, Some("not_found"))
    );
    let wrong_method = server.request("DELETE", "/auth");
    assert_eq!(wrong_method.status, 405);
    assert_eq!(wrong_method.header("allow"), Some("GET, POST"));

    // Still serving after all that.
    assert_eq!(
        server.auth(&play("fine-token-1", "news", "s1")).verdict(),
        "allowed"
    );
    assert_eq!(server.get("/health").status, 200);
}

#[test]
fn health_reports_the_store() {
    let (_dir, db) = temp_db();
    let faulty = Arc::new(FaultyStore::new(Arc::new(SqliteStore::open(&db).unwrap())));
    let server =
        TestServer::with_store(config(&db), faulty.stores(), Arc::new(ManualClock::new(T0)));
    let ok = server.get("/health");
    assert_eq!(
        (ok.status, ok.json()),
        (200, serde_json::json!({"status": "ok"}))
    );
    faulty.failing.store(true, Ordering::SeqCst);
    assert_eq!(server.get("/health").status, 503);
}

fn slow_server(db: &std::path::Path, fail_mode: FailMode) -> (TestServer, Arc<FaultyStore>) {
    let faulty = Arc::new(FaultyStore::new(Arc::new(SqliteStore::open(db).unwrap())));
    let mut config = config(db);
    config.max_response_time = Duration::from_millis(200);
    config.fail_mode = fail_mode;
    let server = TestServer::with_store(config, faulty.stores(), Arc::new(ManualClock::new(T0)));
    server.token(spec("slow-token-1", "u"));
    (server, faulty)
}

#[test]
fn a_slow_store_is_answered_within_the_budget_by_the_fail_mode() {
    let (_dir, db) = temp_db();
    let (server, faulty) = slow_server(&db, FailMode::Deny);
    faulty.delay_ms.store(2_000, Ordering::SeqCst);
    let reply = server.auth(&play("slow-token-1", "news", "s1"));
    assert_eq!(reply.verdict(), "backend_timeout");
    assert_eq!(
        reply.header("x-authduration"),
        Some("30"),
        "failure answers are cached briefly"
    );
    assert_eq!(
        faulty.faults_done.load(Ordering::SeqCst),
        0,
        "the answer came while the store was still busy"
    );
    faulty.delay_ms.store(0, Ordering::SeqCst);
    faulty.failing.store(true, Ordering::SeqCst);
    assert_eq!(
        server.auth(&play("slow-token-1", "news", "s1")).verdict(),
        "backend_error"
    );
}

#[test]
fn allow_updates_keeps_live_sessions_playing_while_the_store_fails() {
    let (_dir, db) = temp_db();
    let (server, faulty) = slow_server(&db, FailMode::AllowUpdates);
    faulty.failing.store(true, Ordering::SeqCst);
    assert_eq!(
        server.auth(&play("slow-token-1", "news", "s1")).verdict(),
        "backend_error"
    );
    let kept = server.auth(&update("slow-token-1", "news", "s1"));
    assert_eq!(kept.status, 200);
    assert_eq!(
        kept.header("x-userid"),
        None,
        "nothing is known about the user"
    );
    let store = Arc::clone(&faulty.inner);
    server.stop();
    let logs = store
        .access_logs(&AccessLogFilter::default())
        .unwrap()
        .items;
    assert_eq!(logs[0].entry.result, "allowed");
    assert_eq!(
        logs[0].entry.reason.as_deref(),
        Some("backend_error"),
        "the log says why it was let through"
    );
}

#[test]
fn allow_mode_lets_new_sessions_through_too() {
    let (_dir, db) = temp_db();
    let (server, faulty) = slow_server(&db, FailMode::Allow);
    faulty.failing.store(true, Ordering::SeqCst);
    assert_eq!(server.auth(&play("slow-token-1", "news", "s1")).status, 200);
}

#[test]
fn expired_sessions_are_purged_in_the_background() {
    let (_dir, db) = temp_db();
    let store: Arc<dyn Backend> = Arc::new(SqliteStore::open(&db).unwrap());
    let mut config = config(&db);
    // The configured range is 10-600 s; a test needs the task to run within its lifetime.
    config.session_cleanup_interval = Duration::from_millis(50);
    let server = TestServer::with_store(config, store, Arc::new(ManualClock::new(T0)));
    server.token(spec("purge-token-1", "u"));
    assert_eq!(
        server.auth(&play("purge-token-1", "news", "s1")).verdict(),
        "allowed"
    );
    server.advance(180 + 30 + 1);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    // Once the background task has run, nothing is left for an explicit purge to remove.
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let leftover = server
            .stores
            .sessions
            .purge_expired_sessions(server.clock.now())
            .unwrap();
        if leftover == 0 {
            break;
        }
        // We just purged it ourselves: put a fresh expired lease back and wait again.
        assert!(
            std::time::Instant::now() < deadline,
            "the background purge never ran"
        );
        server.clock.set(T0);
        assert_eq!(
            server.auth(&play("purge-token-1", "news", "s1")).verdict(),
            "allowed"
        );
        server.advance(180 + 30 + 1);
    }
}

#[test]
fn a_token_changed_by_another_process_is_enforced_within_the_cache_recheck() {
    let (_dir, db) = temp_db();
    let server = TestServer::sqlite(&db);
    let token = server.token(spec("elsewhere-token-1", "u"));
    assert_eq!(
        server
            .auth(&play("elsewhere-token-1", "news", "s1"))
            .verdict(),
        "allowed"
    );
    // What `auth-server token update ID --status suspended` does from a shell: another
    // connection to the same file, bypassing the server's cache.
    let cli = SqliteStore::open(&db).unwrap();
    let patch = auth_core::TokenPatch {
        status: Some(TokenStatus::Suspended),
        ..Default::default()
    };
    cli.update_token(token.id, patch, T0).unwrap();
    server
        .clock
        .advance(auth_core::store::CachedTokens::DEFAULT_RECHECK + Duration::from_millis(1));
    assert_eq!(
        server
            .auth(&update("elsewhere-token-1", "news", "s1"))
            .verdict(),
        "token_suspended"
    );
}

#[test]
fn a_session_admitted_after_its_request_timed_out_is_given_back() {
    let (_dir, db) = temp_db();
    let (server, faulty) = slow_server(&db, FailMode::Deny);
    server.token(TokenSpec {
        max_sessions: Some(1),
        ..spec("late-token-1", "u")
    });
    // Slower than the 200 ms budget, but the store does finish and admits the session.
    faulty.delay_ms.store(600, Ordering::SeqCst);
    let refused = server.auth(&play("late-token-1", "news", "s1"));
    assert_eq!(refused.verdict(), "backend_timeout");
    faulty.delay_ms.store(0, Ordering::SeqCst);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let waiting = |what: &str| {
        assert!(std::time::Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(20));
    };
    while faulty.admissions_done.load(Ordering::SeqCst) == 0 {
        waiting("the late admission never finished");
    }
    let now = server.clock.now();
    while !server
        .stores
        .sessions
        .sessions(&SessionFilter::default(), now)
        .unwrap()
        .is_empty()
    {
        waiting("the refused viewer's slot is still held");
    }
    let next = server.auth(&play("late-token-1", "news", "s2"));
    assert_eq!(next.verdict(), "allowed", "the slot is free");
}
