//! Webhooks end to end: the real `auth-server` binary posts to a receiver that verifies every
//! delivery with the Standard Webhooks reference library (Python `standardwebhooks`, installed by
//! the test command), and nothing is lost when the server is killed with SIGKILL while the
//! receiver is down.
//!
//! `AUTH_SKIP_PYTHON_INTEROP=1` explicitly skips them where Python is missing; otherwise a
//! missing library fails them.

mod common;

use std::collections::BTreeSet;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::programs::free_port;
use common::{bin, play, temp_db, ServerProcess};
use serde_json::{json, Value};

const TOKEN: &str = "webhook-viewer-token-1";

/// The receiver, listening on `port`, verifying with `secret`, recording to `out`; `None` when
/// Python's library is missing and skipping was asked for.
fn receiver(port: u16, secret: &str, out: &Path) -> Option<Child> {
    let probe = Command::new("python3")
        .args(["-c", "import standardwebhooks"])
        .output();
    if !probe.is_ok_and(|out| out.status.success()) {
        if std::env::var("AUTH_SKIP_PYTHON_INTEROP").is_ok_and(|v| v == "1") {
            eprintln!("skipped: AUTH_SKIP_PYTHON_INTEROP=1 and no python3 with standardwebhooks");
            return None;
        }
        panic!(
            "python3 cannot import standardwebhooks (pip install standardwebhooks, or set \
             AUTH_SKIP_PYTHON_INTEROP=1 to skip explicitly)"
        );
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/webhooks/receiver.py");
    let mut child = Command::new("python3")
        .arg(script)
        .args([&port.to_string(), secret])
        .arg(out)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(ready.trim(), "ready");
    Some(child)
}

/// The server on `db`, its log drained in the background.
fn server(db: &Path) -> ServerProcess {
    let mut command = bin();
    command.env("DATABASE_URL", db).arg("serve");
    let mut server = ServerProcess::spawn(command);
    server.discard_log();
    server
}

/// Subscribes `http://127.0.0.1:{port}/hook` to every default type; its secret.
fn subscribe(server: &ServerProcess, port: u16) -> String {
    let body = json!({"url": format!("http://127.0.0.1:{port}/hook"), "description": "test"});
    let reply = server.call(
        "POST",
        "/api/webhooks",
        &[],
        Some(("application/json", &body.to_string())),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    let created = reply.json();
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let listed = server.call("GET", "/api/webhooks", &[], None).json();
    assert!(
        !listed.to_string().contains("whsec_"),
        "a listing never shows a secret: {listed}"
    );
    created["secret"].as_str().unwrap().to_owned()
}

fn create_token(server: &ServerProcess) {
    let body = json!({"token": TOKEN, "user_id": "viewer", "max_sessions": 0});
    let reply = server.call(
        "POST",
        "/api/tokens",
        &[],
        Some(("application/json", &body.to_string())),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
}

/// What the receiver recorded: every line, parsed.
fn received(out: &Path) -> Vec<Value> {
    std::fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// Waits until the receiver has a `session.opened` for each of `streams` (at most `within`).
fn await_opened(out: &Path, streams: &BTreeSet<String>, within: Duration) -> Vec<Value> {
    let deadline = Instant::now() + within;
    loop {
        let messages = received(out);
        for message in &messages {
            assert!(
                message.get("error").is_none(),
                "a delivery failed verification: {message}"
            );
        }
        let opened: BTreeSet<String> = messages
            .iter()
            .filter(|m| m["type"] == "session.opened")
            .map(|m| m["data"]["stream"].as_str().unwrap().to_owned())
            .collect();
        if streams.is_subset(&opened) {
            return messages;
        }
        assert!(
            Instant::now() < deadline,
            "after {within:?}, missing: {:?}",
            streams.difference(&opened).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn out_file(dir: &Path) -> PathBuf {
    dir.join("received.jsonl")
}

#[test]
fn deliveries_are_signed_as_standard_webhooks_and_each_message_arrives_once() {
    let (dir, db) = temp_db();
    let server = server(&db);
    let port = free_port();
    let secret = subscribe(&server, port);
    assert!(secret.starts_with("whsec_"));
    let out = out_file(dir.path());
    let Some(mut receiver) = receiver(port, &secret, &out) else {
        return;
    };
    create_token(&server);
    let streams: BTreeSet<String> = (0..5).map(|n| format!("live/{n}")).collect();
    for (n, stream) in streams.iter().enumerate() {
        let session = format!("s{n}");
        assert_eq!(server.auth(&play(TOKEN, stream, &session)).status, 200);
    }
    // Refusals are not sent to an endpoint that did not name access.denied.
    assert_eq!(
        server.auth(&play("no-such-token-99", "live/x", "x")).status,
        403
    );
    let messages = await_opened(&out, &streams, Duration::from_secs(30));
    let created = messages.iter().filter(|m| m["type"] == "token.created");
    assert_eq!(created.count(), 1);
    assert!(messages.iter().all(|m| m["type"] != "access.denied"));
    assert!(
        !messages.iter().any(|m| m.to_string().contains(TOKEN)),
        "no token secret in any body"
    );
    let ids: BTreeSet<&str> = messages.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids.len(),
        messages.len(),
        "each message once, each id its own"
    );
    receiver.kill().unwrap();
    receiver.wait().unwrap();
}

#[test]
fn admissions_acknowledged_before_a_sigkill_reach_a_receiver_that_was_down() {
    let (dir, db) = temp_db();
    let mut first = server(&db);
    let port = free_port();
    // The receiver is not running: every delivery fails.
    let secret = subscribe(&first, port);
    create_token(&first);
    let mut acknowledged = BTreeSet::new();
    for n in 0..20 {
        let stream = format!("crash/{n}");
        if first.auth(&play(TOKEN, &stream, &format!("c{n}"))).status == 200 {
            acknowledged.insert(stream);
        }
    }
    assert_eq!(acknowledged.len(), 20);
    // Long enough for the workers to have tried (and failed) once: the messages wait for a retry.
    std::thread::sleep(Duration::from_millis(2500));
    // SIGKILL: no drain, no flush; whatever was claimed stays claimed until its lease runs out.
    first.child.kill().unwrap();
    first.child.wait().unwrap();

    let out = out_file(dir.path());
    let Some(mut receiver) = receiver(port, &secret, &out) else {
        return;
    };
    let restarted = Instant::now();
    let second = server(&db);
    // Delivery resumes within 10 s of the restart: a claim's 8 s lease, then a 1 s poll (a
    // message that failed once is due 5 s after that failure). Allow for a loaded machine.
    let messages = await_opened(&out, &acknowledged, Duration::from_secs(40));
    eprintln!(
        "all {} admissions told {:?} after the restart",
        acknowledged.len(),
        restarted.elapsed()
    );
    assert!(messages.iter().any(|m| m["type"] == "token.created"));
    drop(second);
    receiver.kill().unwrap();
    receiver.wait().unwrap();
}

/// `access.denied` goes only to an endpoint that names it, and a flood of refusals queues at most
/// `ACCESS_DENIED_PER_SECOND` per second; the rest are counted as suppressed.
#[test]
fn access_denied_is_opt_in_and_capped() {
    use auth_core::webhook::{MessageKind, NewWebhook};
    use auth_core::Clock as _;
    use auth_server::webhooks::ACCESS_DENIED_PER_SECOND;

    let (_dir, db) = temp_db();
    let server = common::TestServer::sqlite(&db);
    let everything = NewWebhook::new("http://127.0.0.1:9/all".into(), vec![], String::new());
    server
        .stores
        .webhooks
        .create_webhook(everything.unwrap(), server.clock.now())
        .unwrap();
    for n in 0..30 {
        assert_eq!(
            server
                .auth(&play("no-such-token-1", &format!("d/{n}"), "d"))
                .status,
            403
        );
    }
    assert_eq!(
        server.stores.webhooks.pending_deliveries().unwrap(),
        0,
        "nobody named access.denied"
    );
    let denied = NewWebhook::new(
        "http://127.0.0.1:9/denied".into(),
        vec![MessageKind::AccessDenied],
        String::new(),
    );
    server
        .stores
        .webhooks
        .create_webhook(denied.unwrap(), server.clock.now())
        .unwrap();
    // The workers look at the endpoints once a second.
    std::thread::sleep(Duration::from_millis(2500));
    for n in 0..100 {
        assert_eq!(
            server
                .auth(&play("no-such-token-2", &format!("d/{n}"), "d"))
                .status,
            403
        );
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.stores.webhooks.pending_deliveries().unwrap() < ACCESS_DENIED_PER_SECOND {
        assert!(Instant::now() < deadline, "the denials were not queued");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    // The manual clock stands still: one second's allowance in all.
    assert_eq!(
        server.stores.webhooks.pending_deliveries().unwrap(),
        ACCESS_DENIED_PER_SECOND
    );
    let metrics = server.get("/metrics").body;
    assert!(
        metrics.contains(&format!(
            "auth_webhook_suppressed_total {}",
            100 - ACCESS_DENIED_PER_SECOND
        )),
        "{metrics}"
    );
    assert!(metrics.contains(&format!("auth_webhook_pending {ACCESS_DENIED_PER_SECOND}")));
}
