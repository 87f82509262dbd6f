//! The `auth-server` binary: configuration errors, token commands, seeding, and a full
//! serve-and-stop cycle driven by signals.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::{bin, run_with_input, temp_db, ServerProcess};

fn run(db: &Path, args: &[&str]) -> Output {
    bin().env("DATABASE_URL", db).args(args).output().unwrap()
}

fn stdout_json(output: &Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/tokens.example.json");

#[test]
fn seeding_twice_changes_nothing() {
    let (_dir, db) = temp_db();
    let first = stdout_json(&run(&db, &["seed", EXAMPLE]));
    assert_eq!(first["unchanged"], 0);
    assert!(first["created"].as_u64().unwrap() >= 3, "{first}");
    let listed = stdout_json(&run(&db, &["token", "list"]));
    let second = stdout_json(&run(&db, &["seed", EXAMPLE]));
    assert_eq!(
        (second["created"].as_u64(), second["updated"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(second["unchanged"], first["created"]);
    assert_eq!(
        stdout_json(&run(&db, &["token", "list"])),
        listed,
        "not even updated_at moved"
    );
}

#[test]
fn seed_rejects_a_bad_file_without_writing_anything() {
    let (dir, db) = temp_db();
    let file = dir.path().join("bad.json");
    std::fs::write(
        &file,
        r#"[{"token": "good-seed-token", "user_id": "a"}, {"token": "bad-seed-token", "user_id": "b", "allowed_ips": ["nope"]}]"#,
    )
    .unwrap();
    let output = run(&db, &["seed", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("entry 1") && stderr.contains("allowed_ips"),
        "{stderr}"
    );
    assert_eq!(stdout_json(&run(&db, &["token", "list"]))["total"], 0);
}

#[test]
fn token_commands_create_list_update_delete() {
    let (_dir, db) = temp_db();
    let created = stdout_json(&run(
        &db,
        &[
            "token",
            "create",
            "--user-id",
            "cli-user",
            "--max-sessions",
            "2",
            "--allowed-ip",
            "10.0.0.0/8",
            "--allowed-stream",
            "sports/*",
            "--allowed-action",
            "publish",
            "--valid-until",
            "2031-01-01T00:00:00Z",
            "--meta",
            r#"{"plan":"gold"}"#,
        ],
    ));
    let secret = created["token"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 43, "a generated 32-byte secret");
    assert_eq!(created["valid_until"], "2031-01-01T00:00:00Z");
    assert_eq!(created["allowed_actions"], serde_json::json!(["publish"]));
    let id = created["id"].as_i64().unwrap().to_string();

    let list = run(&db, &["token", "list", "--user-id", "cli-user"]);
    let listed = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(!listed.contains(&secret), "listings never print the secret");
    assert_eq!(stdout_json(&list)["total"], 1);

    let updated = stdout_json(&run(
        &db,
        &[
            "token",
            "update",
            &id,
            "--status",
            "suspended",
            "--clear-allowed-ips",
            "--allowed-action",
            "play",
            "--allowed-action",
            "publish",
        ],
    ));
    assert_eq!(updated["status"], "suspended");
    assert_eq!(
        updated["allowed_actions"],
        serde_json::json!(["play", "publish"])
    );
    let bad = run(&db, &["token", "update", &id, "--allowed-action", "record"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("record"));
    assert_eq!(updated["allowed_ips"], serde_json::json!([]));

    let bad = run(&db, &["token", "update", &id, "--max-sessions", "-1"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("max_sessions"));

    // `--token=` keeps a generated secret that starts with `-` from reading as a flag.
    let dup = run(
        &db,
        &[
            "token",
            "create",
            "--user-id",
            "x",
            &format!("--token={secret}"),
        ],
    );
    assert_eq!(dup.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&dup.stderr).contains("conflict"));

    assert_eq!(
        stdout_json(&run(&db, &["token", "delete", &id]))["deleted"],
        id.parse::<i64>().unwrap()
    );
    let gone = run(&db, &["token", "show", &id]);
    assert_eq!(gone.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&gone.stderr).contains("not_found"));
}

#[test]
fn a_bad_setting_stops_the_start_with_one_line_naming_it() {
    let (_dir, db) = temp_db();
    for (var, value, expected) in [
        (
            "AUTH_DURATION",
            "5",
            "AUTH_DURATION=`5` is out of range: expected whole seconds from 30 to 3600",
        ),
        (
            "SESSION_CLEANUP_INTERVAL",
            "9999",
            "SESSION_CLEANUP_INTERVAL",
        ),
        ("MAX_RESPONSE_TIME", "fast", "MAX_RESPONSE_TIME"),
        ("ENABLE_ACCESS_LOGS", "perhaps", "ENABLE_ACCESS_LOGS"),
        ("DATABASE_URL", "mysql://db/x", "DATABASE_URL"),
    ] {
        let output = bin()
            .env("DATABASE_URL", &db)
            .env(var, value)
            .arg("serve")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{var}={value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
    }
    // A flag overrides the environment, and is checked the same way.
    let output = bin()
        .env("DATABASE_URL", &db)
        .args(["serve", "--auth-duration", "4000"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&output.stderr).contains("AUTH_DURATION=`4000`"));
}

#[test]
fn serves_creates_the_database_folder_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nested/folder/tokens.db");
    let seeded = run(&db, &["seed", EXAMPLE]);
    assert!(
        seeded.status.success(),
        "{}",
        String::from_utf8_lossy(&seeded.stderr)
    );

    let mut command = bin();
    command.env("DATABASE_URL", format!("sqlite://{}", db.display()));
    let mut server = ServerProcess::spawn(command);
    let base = server.base.clone();
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .build();
    let allowed = agent
        .get(&format!(
            "{base}/auth?name=sports/final&ip=10.1.1.1&token=demo-viewer-token-0001&proto=hls"
        ))
        .call()
        .unwrap();
    assert_eq!(allowed.header("x-userid"), Some("viewer-001"));
    match agent
        .get(&format!(
            "{base}/auth?name=movies&ip=10.1.1.1&token=demo-viewer-token-0001"
        ))
        .call()
    {
        Err(ureq::Error::Status(403, _)) => {}
        other => panic!("expected 403, got {other:?}"),
    }

    let killed = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = server.child.wait().unwrap();
    assert!(status.success(), "exit status {status:?}");
    let rest: Vec<String> = server.lines.by_ref().map_while(Result::ok).collect();
    assert!(
        rest.iter().any(|l| l.contains("2 written, 0 dropped")),
        "{rest:?}"
    );
    assert!(
        !rest.iter().any(|l| l.contains("demo-viewer-token-0001")),
        "secrets never logged"
    );
}

/// The drain: a request whose body is still arriving when SIGTERM comes is answered, no new
/// connection is accepted meanwhile, and the process then exits cleanly.
#[test]
fn sigterm_lets_a_request_in_flight_answer_before_exiting() {
    use std::io::{Read as _, Write as _};
    use std::net::TcpStream;

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tokens.db");
    assert!(run(&db, &["seed", EXAMPLE]).status.success());
    let mut command = bin();
    command.env("DATABASE_URL", format!("sqlite://{}", db.display()));
    let mut server = ServerProcess::spawn(command);
    let addr = server.base.trim_start_matches("http://").to_owned();

    let body = "name=sports/final&ip=10.1.1.1&token=demo-viewer-token-0001&proto=hls";
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "POST /auth HTTP/1.1\r\nHost: test\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{}",
        body.len(),
        &body[..10]
    )
    .unwrap();
    stream.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));

    let killed = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server exited with a request in flight"
    );
    assert!(
        TcpStream::connect(&addr).is_err(),
        "a draining server accepts no new connection"
    );

    stream.write_all(&body.as_bytes()[10..]).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("x-userid: viewer-001"),
        "{answer}"
    );
    let status = server.child.wait().unwrap();
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn migrate_creates_an_up_to_date_database_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("fresh/tokens.db");
    assert_eq!(stdout_json(&run(&db, &["migrate"]))["migrated"], true);
    assert!(db.exists());
    assert_eq!(stdout_json(&run(&db, &["migrate"]))["migrated"], true);
    assert_eq!(
        stdout_json(&run(&db, &["token", "list"]))["total"],
        0,
        "the schema is in place"
    );
}

#[test]
fn staff_create_accounts_and_issue_verify_and_revoke_tickets_from_the_shell() {
    use auth_core::prelude::*;
    use auth_core::Clock as _;
    let (_dir, db) = temp_db();
    let password = "a long shell passphrase";
    let admin = stdout_json(&run_with_input(
        &db,
        &["user", "create", "--username", "Root", "--role", "admin"],
        &format!("{password}\n"),
    ));
    assert_eq!(
        (admin["username"].as_str(), admin["role"].as_str()),
        (Some("root"), Some("admin"))
    );
    assert!(!admin.to_string().contains(password));
    let refused = run(
        &db,
        &["user", "create", "--username", "x", "--password", password],
    );
    assert_eq!(
        refused.status.code(),
        Some(2),
        "no password on the command line"
    );
    let empty = run_with_input(&db, &["user", "create", "--username", "nopass"], "");
    assert_eq!(empty.status.code(), Some(2));
    let weak = run_with_input(&db, &["user", "create", "--username", "weak"], "short\n");
    assert!(String::from_utf8_lossy(&weak.stderr).contains("password"));
    let holder = stdout_json(&run_with_input(
        &db,
        &[
            "user",
            "create",
            "--username",
            "guest",
            "--email",
            "guest@example.org",
        ],
        &format!("{password}\n"),
    ));

    // An event live now (the commands use the real clock).
    let now = auth_core::SystemClock.now();
    let event = {
        let store = auth_core::SqliteStore::open(&db).unwrap();
        store
            .create_event(
                auth_core::event::NewEvent {
                    title: "Shell".into(),
                    starts_at: now.saturating_sub(Duration::from_secs(3600)),
                    ends_at: now.saturating_add(Duration::from_secs(3600)),
                    capacity: 5,
                    streams: vec![],
                    single_entry: true,
                },
                now,
            )
            .unwrap()
            .id
            .to_string()
    };
    let png = db.with_file_name("ticket.png");
    let issued = stdout_json(&run(
        &db,
        &[
            "ticket",
            "issue",
            "--event",
            &event,
            "--user",
            "guest",
            "--register",
            "--qr-png",
            png.to_str().unwrap(),
        ],
    ));
    assert_eq!(issued["user_id"], holder["id"]);
    assert_eq!(&std::fs::read(&png).unwrap()[..4], b"\x89PNG");
    let app = totp_rs::TOTP::from_url_unchecked(issued["otpauth_uri"].as_str().unwrap()).unwrap();
    let ticket = issued["ticket_id"].to_string();
    let code = app.generate(auth_core::SystemClock.now().unix_seconds() as u64);
    let valid = stdout_json(&run(
        &db,
        &["ticket", "verify", "--ticket", &ticket, "--code", &code],
    ));
    assert_eq!(
        (
            valid["valid"].as_bool(),
            valid["holder"]["username"].as_str()
        ),
        (Some(true), Some("guest"))
    );
    let replay = run(
        &db,
        &["ticket", "verify", "--ticket", &ticket, "--code", &code],
    );
    assert_eq!(replay.status.code(), Some(3));
    let answer: serde_json::Value = serde_json::from_slice(&replay.stdout).unwrap();
    assert_eq!(answer["reason"], "code_reused");
    stdout_json(&run(&db, &["ticket", "revoke", "--ticket", &ticket]));
    let revoked = run(
        &db,
        &["ticket", "verify", "--ticket", &ticket, "--code", "123456"],
    );
    let answer: serde_json::Value = serde_json::from_slice(&revoked.stdout).unwrap();
    assert_eq!(answer["reason"], "ticket_revoked");
    assert_eq!(
        run(&db, &["ticket", "revoke", "--ticket", "9999"])
            .status
            .code(),
        Some(2)
    );
}

/// `on_limit` through the command line and seed files.
#[test]
fn on_limit_is_set_by_create_update_and_seed() {
    let (dir, db) = temp_db();
    let created = stdout_json(&run(
        &db,
        &[
            "token",
            "create",
            "--user-id",
            "evicting",
            "--max-sessions",
            "1",
            "--on-limit",
            "evict_oldest",
        ],
    ));
    assert_eq!(created["on_limit"], "evict_oldest");
    let id = created["id"].to_string();
    let updated = stdout_json(&run(
        &db,
        &["token", "update", &id, "--on-limit", "reject_new"],
    ));
    assert_eq!(updated["on_limit"], "reject_new");
    let bad = run(&db, &["token", "update", &id, "--on-limit", "kick_all"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("kick_all"));
    let seed = dir.path().join("seed.json");
    std::fs::write(
        &seed,
        r#"[{"token": "seeded-evicting-1", "user_id": "s", "max_sessions": 1, "on_limit": "evict_oldest"},
            {"token": "seeded-default-1", "user_id": "d"}]"#,
    )
    .unwrap();
    stdout_json(&run(&db, &["seed", seed.to_str().unwrap()]));
    let listed = stdout_json(&run(&db, &["token", "list", "--user-id", "s"]));
    assert_eq!(listed["items"][0]["on_limit"], "evict_oldest");
    let listed = stdout_json(&run(&db, &["token", "list", "--user-id", "d"]));
    assert_eq!(listed["items"][0]["on_limit"], "reject_new", "the default");
}

/// Listening beyond loopback without `HOOK_SECRET` is warned about at start; with one, not,
/// and the secret never shows in the log.
#[test]
fn a_public_listener_without_a_hook_secret_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("tokens.db").display());
    let warned = |secret: Option<&str>| -> Vec<String> {
        let mut command = bin();
        command.env("DATABASE_URL", &db).env("API_HOST", "0.0.0.0");
        if let Some(secret) = secret {
            command.env("HOOK_SECRET", secret);
        }
        let mut server = ServerProcess::spawn(command);
        let killed = Command::new("kill")
            .args(["-TERM", &server.child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        server.child.wait().unwrap();
        server.lines.by_ref().map_while(Result::ok).collect()
    };
    let open = warned(None);
    assert!(
        open.iter().any(|l| l.contains("HOOK_SECRET is not set")),
        "{open:?}"
    );
    let secret = "hook-secret-0123456789abcdef";
    let guarded = warned(Some(secret));
    assert!(
        !guarded.iter().any(|l| l.contains("HOOK_SECRET")),
        "{guarded:?}"
    );
    assert!(!guarded.iter().any(|l| l.contains(secret)));
}
