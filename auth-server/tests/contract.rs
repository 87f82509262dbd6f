//! The API contract: schemathesis (PyPI) runs `--checks all` against the real `auth-server`
//! binary, on a fresh SQLite file with an API key, a signing key, both edge-URL secrets and an
//! administrator account, from the OpenAPI document the server serves (`/openapi.json`). Any
//! finding fails the test: a request the document admits that the server refuses (or the other
//! way round), an answer, status, header or media type the document does not declare.
//!
//! Needs `schemathesis` (`.ci/test` installs the pinned version: `pip install
//! schemathesis==4.32.5`). A missing tool fails the test, naming that command, unless
//! `AUTH_TEST_CONTRACT=skip` says to skip it. The run is bounded (`--max-examples`, a fixed
//! seed, so that it finds the same cases every time); `AUTH_CONTRACT_EXAMPLES` raises the
//! bound for a longer search.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::programs::{find, free_port};
use common::{bin, run_with_input};

const INSTALL: &str = "python3 -m pip install schemathesis==4.32.5";
const API_KEY: &str = "contract-api-key-0123456789";
const PASSWORD: &str = "a long staff passphrase";
/// Examples per operation and phase: enough to cover every operation's schema, within a few
/// minutes on two cores.
const EXAMPLES: &str = "20";
const SEED: &str = "1";

fn schemathesis() -> Option<PathBuf> {
    if let Some(found) = find("schemathesis") {
        return Some(found);
    }
    if std::env::var("AUTH_TEST_CONTRACT").as_deref() == Ok("skip") {
        eprintln!("SKIPPED (AUTH_TEST_CONTRACT=skip): schemathesis is missing");
        return None;
    }
    panic!(
        "this test needs schemathesis (install: `{INSTALL}`), \
         or set AUTH_TEST_CONTRACT=skip to skip it"
    );
}

/// The server, killed (and reaped) when dropped, pass or fail.
struct Server {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs an `auth-server` command on the database, `input` on its standard input.
fn setup(db: &str, args: &[&str], input: &str) {
    let output = run_with_input(db, args, input);
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The server on `db`; its log goes to a file, so that a long run never fills a pipe.
fn serve(db: &str, dir: &Path) -> Server {
    let port = free_port();
    let log = dir.join("server.log");
    let child = bin()
        .env("DATABASE_URL", db)
        .env("API_PORT", port.to_string())
        .env("API_KEY", API_KEY)
        .env("NGINX_SECURE_LINK_SECRET", "contract-secure-link-secret")
        .env("AKAMAI_EDGEAUTH_KEY", "000102030405060708090a0b0c0d0e0f")
        .env("LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
        log,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while ureq::get(&format!("{}/health", server.base))
        .call()
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "the server did not start: {}",
            std::fs::read_to_string(&server.log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    server
}

/// A new access token of the administrator.
fn log_in(base: &str) -> String {
    let answer: serde_json::Value = ureq::post(&format!("{base}/api/login"))
        .send_json(serde_json::json!({"username": "admin", "password": PASSWORD}))
        .unwrap()
        .into_json()
        .unwrap();
    answer["access_token"].as_str().unwrap().to_owned()
}

#[test]
fn the_server_keeps_to_its_openapi_document() {
    let Some(schemathesis) = schemathesis() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("contract.db").display());
    setup(
        &db,
        &["user", "create", "--username", "admin", "--role", "admin"],
        &format!("{PASSWORD}\n"),
    );
    setup(&db, &["keys", "generate", "--kid", "contract-1"], "");
    let server = serve(&db, dir.path());
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/schemathesis.toml");
    let examples = std::env::var("AUTH_CONTRACT_EXAMPLES").unwrap_or_else(|_| EXAMPLES.into());
    let output = Command::new(schemathesis)
        .current_dir(dir.path())
        .env("AUTH_CONTRACT_API_KEY", API_KEY)
        .env("AUTH_CONTRACT_ACCESS_TOKEN", log_in(&server.base))
        .env("AUTH_CONTRACT_LOGOUT_TOKEN", log_in(&server.base))
        .args(["--config-file", config, "run"])
        .arg(format!("{}/openapi.json", server.base))
        .args(["--checks", "all", "--continue-on-failure", "--no-color"])
        .args(["--max-examples", &examples, "--seed", SEED])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found the server and its document disagreeing:\n{report}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&output.stderr),
        std::fs::read_to_string(&server.log).unwrap_or_default()
    );
    // A run that tested nothing would pass too: every operation must have been tried.
    let summary = report.lines().find(|l| l.trim().starts_with("Tested:"));
    let selected = report.lines().find(|l| l.trim().starts_with("Selected:"));
    let counts = |line: Option<&str>| {
        line.and_then(|l| l.split(':').nth(1))
            .map(|v| v.trim().split('/').next().unwrap_or_default().to_owned())
    };
    assert!(
        counts(summary).is_some() && counts(summary) == counts(selected),
        "not every operation was tested:\n{report}"
    );
    let lines: Vec<&str> = report.lines().collect();
    eprintln!("{}", lines[lines.len().saturating_sub(12)..].join("\n"));
}
