//! Signed playback tokens over real HTTP: minting (`POST /api/playback-tokens`), `/auth`
//! deciding without the token table, every refusal reason, session limits carried by the token,
//! and key rotation reaching a running server.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use auth_core::signed_token::keys::KeyVault;
use auth_core::signed_token::{Algorithm, Claims, KeyRing};
use auth_core::{Backend, Clock, ManualClock, SqliteStore};
use common::{keyed_config, play, temp_db, FaultyStore, Reply, TestServer, IP, RO, RW, T0};
use serde_json::{json, Value};

struct Setup {
    server: TestServer,
    faulty: Arc<FaultyStore>,
    /// A ring holding the same keys as the server (for tokens the API would not mint).
    ring: KeyRing,
    _dir: tempfile::TempDir,
}

/// A server whose store holds an Ed25519 key `ed-1` and an HMAC key `mac-1` (the newest, so
/// the default), behind a store that can be made to fail.
fn setup() -> Setup {
    let (dir, db) = temp_db();
    let sqlite: Arc<dyn Backend> = Arc::new(SqliteStore::open(&db).unwrap());
    let vault = KeyVault::new(&common::hasher()).unwrap();
    let ed = vault.generate("ed-1", Algorithm::Ed25519, T0).unwrap();
    let later = T0.saturating_add(Duration::from_secs(1));
    let mac = vault.generate("mac-1", Algorithm::Hs256, later).unwrap();
    sqlite.insert_signing_key(&ed).unwrap();
    sqlite.insert_signing_key(&mac).unwrap();
    let ring = vault.ring(&sqlite.signing_keys().unwrap()).unwrap();
    let faulty = Arc::new(FaultyStore::new(sqlite));
    let store = faulty.stores();
    let server = TestServer::with_store(keyed_config(&db), store, Arc::new(ManualClock::new(T0)));
    Setup {
        server,
        faulty,
        ring,
        _dir: dir,
    }
}

fn mint_with(server: &TestServer, key: &str, body: Value) -> Reply {
    server.call(
        "POST",
        "/api/playback-tokens",
        &[("X-API-Key", key)],
        Some(("application/json", &body.to_string())),
    )
}

fn mint(server: &TestServer, body: Value) -> Value {
    let reply = mint_with(server, RW, body);
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    reply.json()
}

#[test]
fn a_minted_token_plays_without_the_token_table() {
    let s = setup();
    let minted = mint(
        &s.server,
        json!({"user_id": "holder-1", "event": "conf-2026", "streams": ["conf/main"], "ttl_seconds": 600}),
    );
    let token = minted["token"].as_str().unwrap();
    assert!(token.starts_with("v1.mac-1."), "{token}");
    assert_eq!(minted["kid"], "mac-1");
    assert_eq!(
        minted["player_url"],
        format!("/conf/main/index.m3u8?token={token}")
    );
    assert_eq!(minted["claims"]["evt"], "conf-2026");
    assert_eq!(
        minted["expires_at"].as_str().unwrap(),
        T0.saturating_add(Duration::from_secs(600)).to_string()
    );

    // No token lookup, no session write: the store may be down.
    s.faulty.failing.store(true, Ordering::SeqCst);
    let before = s.faulty.faults_done.load(Ordering::SeqCst);
    let reply = s.server.auth(&play(token, "conf/main", "s1"));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("x-userid"), Some("holder-1"));
    assert_eq!(reply.header("x-max-sessions"), None, "unlimited");
    assert_eq!(s.faulty.faults_done.load(Ordering::SeqCst), before);
    // Stored tokens do need the store: the same server refuses them now.
    assert_eq!(
        s.server
            .auth(&play("stored-token-1", "conf/main", "s1"))
            .status,
        403
    );
}

#[test]
fn every_reason_over_http() {
    let s = setup();
    let minted = mint(
        &s.server,
        json!({"user_id": "holder-1", "streams": ["conf/*"], "ttl_seconds": 60, "ip": IP, "kid": "ed-1"}),
    );
    let token = minted["token"].as_str().unwrap().to_owned();
    let verdict = |token: &str, stream: &str, ip: &str| {
        let mut fields = play(token, stream, "s1");
        fields[2] = ("ip", ip);
        s.server.auth(&fields).verdict()
    };
    assert_eq!(verdict(&token, "conf/main", IP), "allowed");
    assert_eq!(verdict("v1.ed-1.nonsense", "conf/main", IP), "malformed");
    let mut stranger = KeyRing::new();
    stranger.add_hmac("other", &[9u8; 32]).unwrap();
    let claims = Claims::new("holder-1", T0, Duration::from_secs(60));
    let unknown = stranger.sign("other", &claims).unwrap();
    assert_eq!(verdict(&unknown, "conf/main", IP), "unknown_key");
    let mut impostor = KeyRing::new();
    impostor.add_hmac("mac-1", &[9u8; 32]).unwrap();
    let forged = impostor.sign("mac-1", &claims).unwrap();
    assert_eq!(verdict(&forged, "conf/main", IP), "bad_signature");
    assert_eq!(verdict(&token, "news", IP), "stream_not_allowed");
    assert_eq!(verdict(&token, "conf/main", "10.9.9.9"), "ip_not_allowed");
    let early = s
        .ring
        .sign(
            "ed-1",
            &Claims {
                nbf: Some(T0.unix_seconds() + 3600),
                exp: T0.unix_seconds() + 7200,
                ..claims.clone()
            },
        )
        .unwrap();
    assert_eq!(verdict(&early, "conf/main", IP), "token_not_yet_valid");
    let ticket = s
        .ring
        .sign(
            "ed-1",
            &Claims {
                tkt: Some("17".into()),
                ..claims.clone()
            },
        )
        .unwrap();
    assert_eq!(verdict(&ticket, "conf/main", IP), "wrong_kind");
    // Expiry, with the configured leeway (30 s by default).
    s.server.advance(60 + 29);
    assert_eq!(verdict(&token, "conf/main", IP), "allowed");
    s.server.advance(2);
    assert_eq!(verdict(&token, "conf/main", IP), "token_expired");

    // The access log is written in batches, off the request path.
    let deadline = Instant::now() + Duration::from_secs(5);
    let logs = loop {
        let logs = s.server.call(
            "GET",
            "/api/access-logs?reason=bad_signature",
            &[("X-API-Key", RO)],
            None,
        );
        if logs.json()["total"] == 1 || Instant::now() > deadline {
            break logs;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(logs.json()["total"], 1, "{}", logs.body);
    let record = &logs.json()["items"][0];
    assert_eq!(record["token_id"], Value::Null);
    assert_eq!(
        record["token_prefix"], "v1.mac",
        "a short prefix, never the token"
    );
}

#[test]
fn a_token_carrying_max_sessions_is_limited_through_the_store() {
    let s = setup();
    let minted = mint(&s.server, json!({"user_id": "holder-2", "max_sessions": 1}));
    let token = minted["token"].as_str().unwrap();
    let first = s.server.auth(&play(token, "conf/main", "s1"));
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.header("x-max-sessions"), Some("1"));
    assert_eq!(
        s.server.auth(&play(token, "conf/main", "s2")).verdict(),
        "session_limit_reached"
    );
    let mut recheck = play(token, "conf/main", "s1");
    recheck.push(("request_type", "update_session"));
    assert_eq!(s.server.auth(&recheck).verdict(), "allowed");

    // Another token for the same holder has its own slots.
    let other = mint(&s.server, json!({"user_id": "holder-2", "max_sessions": 1}));
    assert_eq!(
        s.server
            .auth(&play(other["token"].as_str().unwrap(), "conf/main", "s3"))
            .verdict(),
        "allowed"
    );

    let sessions = s.server.call(
        "GET",
        "/api/sessions?user_id=holder-2",
        &[("X-API-Key", RO)],
        None,
    );
    let items = sessions.json()["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 2, "{}", sessions.body);
    assert!(items.iter().all(|s| s["token_id"].is_null()));
    let id = items[0]["id"].as_i64().unwrap();
    let ended = s.server.call(
        "DELETE",
        &format!("/api/sessions/{id}"),
        &[("X-API-Key", RW)],
        None,
    );
    assert_eq!(ended.status, 204);
    assert_eq!(s.server.auth(&recheck).verdict(), "session_terminated");
    assert_eq!(
        s.server.auth(&play(token, "conf/main", "s4")).verdict(),
        "allowed",
        "termination freed the slot"
    );
}

#[test]
fn minting_needs_a_write_key_and_valid_input() {
    let s = setup();
    let ok = json!({"user_id": "u"});
    assert_eq!(mint_with(&s.server, RO, ok.clone()).status, 403);
    assert_eq!(
        s.server
            .call(
                "POST",
                "/api/playback-tokens",
                &[],
                Some(("application/json", &ok.to_string()))
            )
            .status,
        401
    );
    for (body, field, status) in [
        (
            json!({"user_id": "u", "ttl_seconds": 0}),
            "ttl_seconds",
            400,
        ),
        (
            json!({"user_id": "u", "ttl_seconds": 8 * 24 * 3600}),
            "ttl_seconds",
            400,
        ),
        (json!({"user_id": ""}), "user_id", 400),
        (
            json!({"user_id": "u", "streams": [""]}),
            "allowed_streams",
            400,
        ),
        // Well formed, but no key has that id: 422, as the OpenAPI document says.
        (json!({"user_id": "u", "kid": "nope"}), "kid", 422),
        (
            json!({"user_id": "u", "format": "jwt", "kid": "nope"}),
            "kid",
            422,
        ),
        (json!({"user_id": "u", "bogus": 1}), "bogus", 400),
        (json!({"user_id": "u", "ip": "not-an-ip"}), "ip", 400),
        // A holder's request sent with an API key.
        (json!({"ticket_id": 1}), "ticket_id", 422),
    ] {
        let reply = mint_with(&s.server, RW, body.clone());
        assert_eq!(reply.status, status, "{body}: {}", reply.body);
        assert_eq!(reply.json()["field"], field, "{body}: {}", reply.body);
    }
}

#[test]
fn keys_are_listed_without_secrets() {
    let s = setup();
    let reply = s
        .server
        .call("GET", "/api/signing-keys", &[("X-API-Key", RO)], None);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let items = reply.json()["items"].as_array().unwrap().clone();
    let kids: Vec<_> = items.iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert_eq!(kids, ["ed-1", "mac-1"]);
    assert_eq!(items[0]["algorithm"], "ed25519");
    assert_eq!(items[0]["status"], "active");
    assert_eq!(items[0]["public_key"].as_str().unwrap().len(), 43);
    assert!(items[1].get("public_key").is_none());
    for item in &items {
        let fields: Vec<_> = item.as_object().unwrap().keys().collect();
        assert!(fields.iter().all(|f| !f.contains("secret")), "{fields:?}");
    }
}

/// A key retired in the store (by the CLI, by another node) is refused by a running server
/// within its reload interval, while tokens of the other keys keep playing.
#[test]
fn a_retired_key_stops_working_on_a_running_server() {
    let s = setup();
    let old = mint(&s.server, json!({"user_id": "u", "kid": "ed-1"}));
    let new = mint(&s.server, json!({"user_id": "u"}));
    let (old, new) = (
        old["token"].as_str().unwrap().to_owned(),
        new["token"].as_str().unwrap().to_owned(),
    );
    assert_eq!(s.server.auth(&play(&old, "x", "s1")).verdict(), "allowed");
    assert!(s
        .faulty
        .inner
        .retire_signing_key("ed-1", s.server.clock.now())
        .unwrap());
    let deadline = Instant::now() + auth_server::signing::RELOAD_INTERVAL * 3;
    loop {
        let verdict = s.server.auth(&play(&old, "x", "s1")).verdict();
        if verdict == "unknown_key" {
            break;
        }
        assert_eq!(verdict, "allowed");
        assert!(Instant::now() < deadline, "the retirement never arrived");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(s.server.auth(&play(&new, "x", "s2")).verdict(), "allowed");
    let reply = mint_with(&s.server, RW, json!({"user_id": "u", "kid": "ed-1"}));
    assert_eq!(reply.json()["field"], "kid", "{}", reply.body);
}

mod cli {
    use std::path::Path;
    use std::process::Output;

    use super::*;
    use common::bin;

    fn run(db: &Path, args: &[&str]) -> Output {
        bin().env("DATABASE_URL", db).args(args).output().unwrap()
    }

    fn json_of(output: &Output) -> Value {
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout not JSON ({e}): {} / {}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )
        })
    }

    fn ok(output: Output) -> Value {
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        json_of(&output)
    }

    #[test]
    fn keys_sign_and_verify_from_the_shell() {
        let (_dir, db) = temp_db();
        let ed = ok(run(&db, &["keys", "generate", "--kid", "door-1"]));
        assert_eq!(
            (
                ed["kid"].as_str(),
                ed["algorithm"].as_str(),
                ed["status"].as_str()
            ),
            (Some("door-1"), Some("ed25519"), Some("active"))
        );
        let mac = ok(run(&db, &["keys", "generate", "--algorithm", "hs256"]));
        let mac_kid = mac["kid"].as_str().unwrap().to_owned();
        assert!(mac_kid.starts_with("hs256-"), "{mac_kid}");
        assert!(mac.get("public_key").is_none());
        let dup = run(&db, &["keys", "generate", "--kid", "door-1"]);
        assert_eq!(dup.status.code(), Some(2));
        let bad = run(&db, &["keys", "generate", "--algorithm", "rsa"]);
        assert_eq!(bad.status.code(), Some(2));

        let listed = ok(run(&db, &["keys", "list"]));
        let items = listed["items"].as_array().unwrap();
        assert_eq!(items.len(), 2);
        let text = listed.to_string();
        assert!(!text.contains("secret"), "{text}");

        let minted = ok(run(
            &db,
            &[
                "sign",
                "--user-id",
                "holder-1",
                "--stream",
                "conf/main",
                "--ttl",
                "600",
                "--kid",
                "door-1",
                "--max-sessions",
                "2",
            ],
        ));
        let token = minted["token"].as_str().unwrap();
        assert!(token.starts_with("v1.door-1."), "{token}");
        assert_eq!(
            minted["player_url"],
            format!("/conf/main/index.m3u8?token={token}")
        );
        let valid = ok(run(&db, &["verify", token, "--stream", "conf/main"]));
        assert_eq!(valid["valid"], true);
        assert_eq!(valid["claims"]["sub"], "holder-1");
        assert_eq!(valid["claims"]["max_sessions"], 2);

        let wrong = run(&db, &["verify", token, "--stream", "other"]);
        assert_eq!(wrong.status.code(), Some(1));
        assert_eq!(json_of(&wrong)["reason"], "stream_not_allowed");
        let ticket = run(&db, &["verify", token, "--ticket"]);
        assert_eq!(json_of(&ticket)["reason"], "wrong_kind");

        let retired = ok(run(&db, &["keys", "retire", "door-1"]));
        assert_eq!(retired["status"], "retired");
        let refused = run(&db, &["verify", token]);
        assert_eq!(json_of(&refused)["reason"], "unknown_key");
        let unsigned = run(&db, &["sign", "--user-id", "u", "--kid", "door-1"]);
        assert_eq!(unsigned.status.code(), Some(2));
        let missing = run(&db, &["keys", "retire", "nope"]);
        assert_eq!(missing.status.code(), Some(2));
        // The default key is now the HMAC one.
        let minted = ok(run(&db, &["sign", "--user-id", "u"]));
        assert_eq!(minted["kid"], mac_kid.as_str());
    }
}
