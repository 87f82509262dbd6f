//! The web pages in a real browser: headless Chromium (Debian's `chromium`, driven by
//! `playwright-core` from `tests/web/`) against the real binary, on the system clock (the wallet
//! computes codes from the browser's clock). `tests/web/pages.mjs` walks the pages; this test
//! starts the server, runs it, and checks the wallet's code with an independent RFC 6238
//! implementation (`totp-rs`).
//!
//! Needs `chromium`, `node`, `ffmpeg` and `npm ci` in `tests/web/` (`.ci/test` sets them up);
//! `AUTH_TEST_BROWSER=skip` skips it. `AUTH_WEB_SCREENSHOTS=<dir>` also writes screenshots of
//! every page (see `auth-server/web/screenshots.sh`).

mod common;

use std::path::Path;
use std::process::Command;

use common::{bin, ServerProcess};
use serde_json::Value;
use totp_rs::{Algorithm, Secret, TOTP};

const KEY: &str = "web-test-writer-key-0123456789";

#[test]
fn wallet_door_and_docs_in_chromium() {
    if std::env::var("AUTH_TEST_BROWSER").as_deref() == Ok("skip") {
        eprintln!("AUTH_TEST_BROWSER=skip: not running the browser tests");
        return;
    }
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/web");
    assert!(
        scripts.join("node_modules/playwright-core").is_dir(),
        "run `npm ci` in {} first (.ci/test does), or set AUTH_TEST_BROWSER=skip",
        scripts.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("web.db").display());
    // A signing key, for the wallet's e-tickets. Both commands run in `dir`, where the first
    // creates the token hashing key the second reads.
    let generated = bin()
        .current_dir(dir.path())
        .args(["keys", "generate", "--algorithm", "ed25519"])
        .env("DATABASE_URL", &database)
        .output()
        .unwrap();
    assert!(generated.status.success(), "{generated:?}");
    let mut command = bin();
    command
        .current_dir(dir.path())
        .arg("serve")
        .env("DATABASE_URL", &database)
        .env("API_KEYS", format!("rw:{KEY}"))
        .env("API_HOST", "127.0.0.1");
    let server = ServerProcess::spawn(command);
    let base = server.base.replace("0.0.0.0", "127.0.0.1");

    let mut node = Command::new("node");
    node.arg(scripts.join("pages.mjs"))
        .current_dir(&scripts)
        .env("BASE", &base)
        .env("API_KEY", KEY)
        .env("WORK", dir.path());
    if let Ok(shots) = std::env::var("AUTH_WEB_SCREENSHOTS") {
        node.env("SHOTS", shots);
    }
    let output = node.output().expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the browser test failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let facts: Vec<Value> = stdout
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    let fact = |key: &str| {
        facts
            .iter()
            .find(|f| f.get(key).is_some())
            .unwrap_or_else(|| panic!("no {key} in:\n{stdout}"))
            .clone()
    };

    // The code the wallet showed is the RFC 6238 code of its secret at the step it showed it.
    let wallet = fact("wallet_code");
    let secret = Secret::Encoded(wallet["secret"].as_str().unwrap().to_owned())
        .to_bytes()
        .unwrap();
    let totp = TOTP::new_unchecked(Algorithm::SHA1, 6, 1, 30, secret, None, String::new());
    let step = wallet["step"].as_u64().unwrap();
    assert_eq!(
        wallet["wallet_code"].as_str().unwrap(),
        totp.generate(step * 30)
    );
    assert!(fact("docs_operations")["docs_operations"].as_u64().unwrap() > 20);
    fact("door_typed");
    fact("door_camera");
    fact("console_live_sessions");
    drop(server);
}
