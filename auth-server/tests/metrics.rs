//! `/metrics` scraped by a real Prometheus: Debian's `prometheus` package, started here on
//! loopback with a generated configuration, a free port and a temporary storage folder, scraping
//! the server every second with a read-only API key. Its query API must return the counts of the
//! requests this test sends. `promtool check metrics` must accept the text as it is served.
//!
//! Needs `prometheus` and `promtool` (Debian: `apt-get install -y prometheus`). Missing tools fail
//! the test, naming that command, unless `AUTH_TEST_PROMETHEUS=skip` says to skip it.

mod common;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use auth_core::{Backend, ManualClock, SqliteStore};
use common::programs::{find, free_port};
use common::{keyed_config, play, spec, temp_db, TestServer, RO, T0};

const INSTALL: &str = "apt-get install -y prometheus";

/// `prometheus` and `promtool`, or `None` when missing and `AUTH_TEST_PROMETHEUS=skip`.
fn tools() -> Option<(PathBuf, PathBuf)> {
    if let (Some(prometheus), Some(promtool)) = (find("prometheus"), find("promtool")) {
        return Some((prometheus, promtool));
    }
    if std::env::var("AUTH_TEST_PROMETHEUS").as_deref() == Ok("skip") {
        eprintln!("SKIPPED (AUTH_TEST_PROMETHEUS=skip): prometheus or promtool is missing");
        return None;
    }
    panic!(
        "this test needs prometheus and promtool (install: `{INSTALL}`), \
         or set AUTH_TEST_PROMETHEUS=skip to skip it"
    );
}

/// A child process killed (and reaped) when dropped, pass or fail.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn keyed_server(db: &std::path::Path) -> TestServer {
    let store: Arc<dyn Backend> = Arc::new(SqliteStore::open(db).unwrap());
    TestServer::with_store(keyed_config(db), store, Arc::new(ManualClock::new(T0)))
}

/// The single value of an instant query, once Prometheus has one.
fn query(base: &str, promql: &str) -> Option<f64> {
    let response = ureq::get(&format!("{base}/api/v1/query"))
        .query("query", promql)
        .timeout(Duration::from_secs(5))
        .call()
        .ok()?;
    let body: serde_json::Value = response.into_json().ok()?;
    let value = body["data"]["result"].get(0)?["value"][1].as_str()?;
    value.parse().ok()
}

/// Waits until `promql` evaluates to `expected`; panics with the last value after `limit`.
fn wait_for(base: &str, promql: &str, expected: f64, limit: Duration) {
    let deadline = Instant::now() + limit;
    let mut last = None;
    while Instant::now() < deadline {
        last = query(base, promql);
        if last == Some(expected) {
            return;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("Prometheus answered {last:?} for `{promql}`, not {expected}");
}

#[test]
fn prometheus_scrapes_the_counts_of_the_requests_sent() {
    let Some((prometheus, promtool)) = tools() else {
        return;
    };
    let (_dir, db) = temp_db();
    let server = keyed_server(&db);
    server.token(spec("metrics-viewer-0001", "alice"));

    // Three admissions and two refusals of an unknown token.
    for session in ["s1", "s2", "s3"] {
        let reply = server.auth(&play("metrics-viewer-0001", "live", session));
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    for session in ["s4", "s5"] {
        let reply = server.auth(&play("no-such-token-0001", "live", session));
        assert_eq!(reply.verdict(), "token_not_found");
    }

    // The access rule of the management API: a read-only key is enough, none is refused.
    assert_eq!(server.get("/metrics").status, 401);
    let bearer = format!("Bearer {RO}");
    let scraped = server.call("GET", "/metrics", &[("Authorization", &bearer)], None);
    assert_eq!(scraped.status, 200, "{}", scraped.body);
    assert!(scraped
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")));
    for name in [
        "auth_decisions_total",
        "auth_decision_duration_seconds_bucket",
        "auth_live_sessions",
        "auth_store_failures_total",
        "auth_access_log_pending",
        "auth_access_log_dropped_total",
        "auth_build_info",
        "process_resident_memory_bytes",
        "process_open_fds",
    ] {
        assert!(
            scraped.body.contains(name),
            "{name} missing:\n{}",
            scraped.body
        );
    }
    assert!(
        !scraped.body.contains("metrics-viewer") && !scraped.body.contains("10.0.0.7"),
        "no token or address in labels"
    );

    // promtool reads the text as served: format and naming rules.
    let mut check = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool starts");
    check
        .stdin
        .take()
        .unwrap()
        .write_all(scraped.body.as_bytes())
        .unwrap();
    let checked = check.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    // A real Prometheus, scraping every second with the read-only key.
    let work = tempfile::tempdir().unwrap();
    let target = server.base.trim_start_matches("http://");
    let config = work.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: auth\n    metrics_path: /metrics\n\
             \x20   authorization:\n      credentials: {RO}\n\
             \x20   static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let _prometheus = Proc(
        Command::new(&prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                work.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus starts"),
    );
    let base = format!("http://127.0.0.1:{port}");
    let limit = Duration::from_secs(60);
    wait_for(&base, r#"up{job="auth"}"#, 1.0, limit);
    wait_for(
        &base,
        r#"sum(auth_decisions_total{hook="flussonic",action="play",result="allowed"})"#,
        3.0,
        limit,
    );
    wait_for(
        &base,
        r#"sum(auth_decisions_total{hook="flussonic",result="denied",reason="token_not_found"})"#,
        2.0,
        limit,
    );
    wait_for(
        &base,
        r#"sum(auth_decision_duration_seconds_count{hook="flussonic"})"#,
        5.0,
        limit,
    );
    wait_for(&base, "auth_live_sessions", 3.0, limit);

    // More requests show up in the next scrapes.
    let reply = server.auth(&play("metrics-viewer-0001", "live", "s6"));
    assert_eq!(reply.status, 200);
    wait_for(
        &base,
        r#"sum(auth_decisions_total{hook="flussonic",result="allowed"})"#,
        4.0,
        limit,
    );
}
