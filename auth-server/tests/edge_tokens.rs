//! Standard tokens at the edge, checked by independent verifiers:
//!
//! - JWT playback tokens: decided by every hook exactly like `v1.` tokens; PyJWT
//!   (`PyJWKClient` on our `/.well-known/jwks.json`) verifies the ES256 and EdDSA ones.
//! - Akamai EdgeAuth tokens: equal to those of Akamai's reference generator (PyPI
//!   `akamai-edgeauth`) for the same inputs.
//! - nginx `secure_link`: a real nginx serves the URLs we mint and refuses altered ones, and
//!   checks a playlist's segments itself with the signature our `auth_request` answer carries
//!   (`SEGMENT_TOKEN_FORMAT=nginx_secure_link`).
//!
//! Needs `python3` with `PyJWT`, `cryptography` and `akamai-edgeauth`, and `nginx` (`.ci/run`
//! installs them). Missing, they fail the tests, naming what to install, unless
//! `AUTH_SKIP_PYTHON_INTEROP=1` (Python) or `AUTH_TEST_E2E=skip` (nginx) explicitly skips them.
//!
//! ES256 keys live in a memory store here: the SQLite and PostgreSQL schemas of this branch
//! still restrict the key algorithm column (see docs/edge-tokens.md).

mod common;

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use auth_core::edge_url::akamai::EdgeAuthKey;
use auth_core::edge_url::secure_link::{self, SecureLinkSecret};
use auth_core::signed_token::keys::KeyVault;
use auth_core::signed_token::{Algorithm, KeyRing};
use auth_core::{Backend, Clock, ManualClock, MemoryStore, SystemClock, Timestamp, TokenSpec};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::programs::{find, free_port};
use common::{
    bin, keyed_config, output_with_input, play, spec, temp_db, Reply, TestServer, IP, RO, RW, T0,
};
use serde_json::{json, Value};

const SECURE_LINK_SECRET: &str = "nginx-secret-0123456789";
const AKAMAI_KEY: &str = "52a152a152a152a152a152a152a152a1";
const ISSUER: &str = "https://auth.example";

struct Edge {
    server: TestServer,
    /// The same keys as the server's.
    ring: KeyRing,
    _dir: tempfile::TempDir,
}

/// A server whose store (in memory: it accepts ES256 keys) holds `ed-1`, `mac-1` and `ec-1`
/// (the newest, so the default), with the edge secrets and `JWT_ISSUER` set, its clock at `now`.
fn edge_server(now: Timestamp, adjust: impl FnOnce(&mut auth_server::config::Config)) -> Edge {
    let (dir, db) = temp_db();
    let mut config = keyed_config(&db);
    config.nginx_secure_link_secret = Some(SecureLinkSecret::new(SECURE_LINK_SECRET).unwrap());
    config.akamai_edgeauth_key = Some(EdgeAuthKey::from_hex(AKAMAI_KEY).unwrap());
    config.jwt_issuer = Some(ISSUER.into());
    adjust(&mut config);
    let store: Arc<dyn Backend> = Arc::new(MemoryStore::new());
    let vault = KeyVault::new(&common::hasher()).unwrap();
    let keys = [
        ("ed-1", Algorithm::Ed25519),
        ("mac-1", Algorithm::Hs256),
        ("ec-1", Algorithm::Es256),
    ];
    for (age, (kid, algorithm)) in keys.into_iter().enumerate() {
        let created = Timestamp::from_unix_seconds(now.unix_seconds() - 10 + age as i64);
        let key = vault.generate(kid, algorithm, created).unwrap();
        store.insert_signing_key(&key).unwrap();
    }
    let ring = vault.ring(&store.signing_keys().unwrap()).unwrap();
    let server = TestServer::with_store(config, store, Arc::new(ManualClock::new(now)));
    Edge {
        server,
        ring,
        _dir: dir,
    }
}

fn post(server: &TestServer, path: &str, key: &str, body: &Value) -> Reply {
    server.call(
        "POST",
        path,
        &[("X-API-Key", key)],
        Some(("application/json", &body.to_string())),
    )
}

fn mint(server: &TestServer, body: Value) -> String {
    let reply = post(server, "/api/playback-tokens", RW, &body);
    assert_eq!(reply.status, 201, "{body}: {}", reply.body);
    reply.json()["token"].as_str().unwrap().to_owned()
}

fn jwt_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[test]
fn jwts_are_decided_by_every_hook_like_v1_tokens() {
    let e = edge_server(T0, |_| {});
    for (kid, alg) in [("ec-1", "ES256"), ("ed-1", "EdDSA"), ("mac-1", "HS256")] {
        let body = json!({"user_id": "holder-1", "streams": ["conf/*"], "max_sessions": 1,
                          "ip": IP, "format": "jwt", "kid": kid, "event": "conf-2026"});
        let token = mint(&e.server, body);
        assert_eq!(
            jwt_part(&token, 0),
            json!({"alg": alg, "typ": "JWT", "kid": kid})
        );
        let claims = jwt_part(&token, 1);
        assert_eq!(
            (&claims["iss"], &claims["sub"], &claims["evt"]),
            (&json!(ISSUER), &json!("holder-1"), &json!("conf-2026"))
        );
        assert!(claims["jti"].is_string() && claims.get("aud").is_none());

        // Flussonic: the token's own limit, stream and address, as for a v1 token.
        let first = e
            .server
            .auth(&play(&token, "conf/main", &format!("{kid}-1")));
        assert_eq!(first.status, 200, "{kid}: {}", first.body);
        assert_eq!(first.header("x-userid"), Some("holder-1"));
        assert_eq!(first.header("x-max-sessions"), Some("1"));
        let verdict = |stream: &str, session: &str| {
            e.server
                .auth(&play(&token, stream, &format!("{kid}-{session}")))
                .verdict()
        };
        assert_eq!(verdict("conf/main", "2"), "session_limit_reached", "{kid}");
        assert_eq!(verdict("news", "3"), "stream_not_allowed", "{kid}");
        let mut elsewhere = play(&token, "conf/main", "x");
        elsewhere[2] = ("ip", "10.9.9.9");
        assert_eq!(e.server.auth(&elsewhere).verdict(), "ip_not_allowed");
        let session = format!("{kid}-1");
        let mut recheck = play(&token, "conf/main", &session);
        recheck.push(("request_type", "update_session"));
        assert_eq!(e.server.auth(&recheck).verdict(), "allowed", "{kid}");
    }

    // MediaMTX and nginx auth_request take the same JWT.
    let open = mint(
        &e.server,
        json!({"user_id": "viewer-2", "format": "jwt", "profile": "mediamtx"}),
    );
    let mediamtx = e.server.post(
        "/hooks/mediamtx",
        "application/json",
        &json!({"user": "", "password": "", "token": open, "ip": IP, "action": "read",
                "path": "cam1", "protocol": "rtsp", "id": "a7f1c1f2-0000-4000-8000-000000000001",
                "query": ""})
        .to_string(),
    );
    assert_eq!(mediamtx.status, 200, "{}", mediamtx.body);
    let nginx = e.server.call(
        "GET",
        "/hooks/nginx-auth",
        &[
            ("X-Original-URI", &format!("/hls/cam1.m3u8?token={open}")),
            ("X-Real-IP", IP),
        ],
        None,
    );
    assert_eq!(nginx.status, 204, "{}", nginx.body);
    assert_eq!(nginx.header("x-userid"), Some("viewer-2"));
    let publish = e.server.post(
        "/hooks/mediamtx",
        "application/json",
        &json!({"token": open, "ip": IP, "action": "publish", "path": "cam1",
                "protocol": "rtsp", "id": null, "query": ""})
        .to_string(),
    );
    assert_eq!(publish.status, 403, "a playback token never publishes");
}

#[test]
fn forged_jwts_are_refused_over_http() {
    let e = edge_server(T0, |_| {});
    let token = mint(&e.server, json!({"user_id": "u", "format": "jwt"}));
    let (header, rest) = token.split_once('.').unwrap();
    let (payload, signature) = rest.split_once('.').unwrap();
    let b64 = |value: &Value| URL_SAFE_NO_PAD.encode(value.to_string());
    let verdict = |token: &str| e.server.auth(&play(token, "cam1", "s1")).verdict();
    assert_eq!(verdict(&token), "allowed");

    // alg none, signature stripped.
    let none = b64(&json!({"alg": "none", "typ": "JWT", "kid": "ec-1"}));
    assert_eq!(verdict(&format!("{none}.{payload}.")), "bad_signature");
    // HS256 keyed with the published public key of ec-1 (the classic key confusion).
    let (_, public) = e.ring.public_key("ec-1").unwrap();
    let mut attacker = KeyRing::new();
    attacker.add_hmac("ec-1", public).unwrap();
    let claims = auth_core::signed_token::Claims::new("u", T0, Duration::from_secs(60));
    let options = auth_core::signed_token::jwt::JwtOptions::default();
    let confused = attacker.sign_jwt("ec-1", &claims, &options).unwrap();
    assert_eq!(jwt_part(&confused, 0)["alg"], "HS256");
    assert_eq!(verdict(&confused), "bad_signature");
    // Another subject under the genuine signature.
    let mut claims = jwt_part(&token, 1);
    claims["sub"] = "admin".into();
    assert_eq!(
        verdict(&format!("{header}.{}.{signature}", b64(&claims))),
        "bad_signature"
    );
    // A key of our own, embedded in the header.
    let jwk = b64(&json!({"alg": "ES256", "kid": "ec-1", "jwk": e.ring.jwks().keys[0]}));
    assert_eq!(
        verdict(&format!("{jwk}.{payload}.{signature}")),
        "malformed"
    );
    // An unknown key id.
    let unknown = b64(&json!({"alg": "ES256", "kid": "ec-9"}));
    assert_eq!(
        verdict(&format!("{unknown}.{payload}.{signature}")),
        "unknown_key"
    );
}

#[test]
fn the_jwks_publishes_active_asymmetric_keys_only() {
    let e = edge_server(T0, |_| {});
    let reply = e.server.get("/.well-known/jwks.json");
    assert_eq!(reply.status, 200, "no API key needed: {}", reply.body);
    assert_eq!(reply.header("cache-control"), Some("public, max-age=300"));
    let jwks = reply.json();
    let keys = jwks["keys"].as_array().unwrap();
    let kids: Vec<&str> = keys.iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert_eq!(kids, ["ec-1", "ed-1"], "never the HMAC key");
    assert_eq!(
        (
            &keys[0]["kty"],
            &keys[0]["crv"],
            &keys[0]["alg"],
            &keys[0]["use"]
        ),
        (
            &json!("EC"),
            &json!("P-256"),
            &json!("ES256"),
            &json!("sig")
        )
    );
    assert!(keys[0]["y"].is_string());
    assert_eq!(
        (&keys[1]["kty"], &keys[1]["crv"], &keys[1]["alg"]),
        (&json!("OKP"), &json!("Ed25519"), &json!("EdDSA"))
    );
    for key in keys {
        let fields: Vec<&String> = key.as_object().unwrap().keys().collect();
        assert!(
            !fields
                .iter()
                .any(|f| ["d", "k", "p", "q"].contains(&f.as_str())),
            "never a private part: {fields:?}"
        );
    }
    // A retired key leaves the set at the next reload.
    e.server
        .stores
        .signing_keys
        .retire_signing_key("ed-1", e.server.clock.now())
        .unwrap();
    let deadline = Instant::now() + auth_server::signing::RELOAD_INTERVAL * 3;
    loop {
        let keys = e.server.get("/.well-known/jwks.json").json()["keys"].clone();
        if keys.as_array().unwrap().len() == 1 {
            assert_eq!(keys[0]["kid"], "ec-1");
            break;
        }
        assert!(Instant::now() < deadline, "the retirement never arrived");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn minting_jwts_checks_its_input() {
    let e = edge_server(T0, |config| config.jwt_audience = Some("edge".into()));
    let token = mint(&e.server, json!({"user_id": "u", "format": "jwt"}));
    assert_eq!(jwt_part(&token, 1)["aud"], "edge", "JWT_AUDIENCE");
    let token = mint(
        &e.server,
        json!({"user_id": "u", "format": "jwt", "aud": "other", "streams": ["a", "b/*"],
               "profile": "mediamtx"}),
    );
    let claims = jwt_part(&token, 1);
    assert_eq!(claims["aud"], "other");
    assert_eq!(
        claims["mediamtx_permissions"],
        json!([{"action": "read", "path": "a"}, {"action": "read", "path": "~^b/.*$"}])
    );
    for (body, field) in [
        (json!({"user_id": "u", "format": "jws"}), "format"),
        (json!({"user_id": "u", "profile": "mediamtx"}), "profile"),
        (json!({"user_id": "u", "aud": "x"}), "aud"),
        (
            json!({"user_id": "u", "format": "jwt", "profile": "antmedia"}),
            "profile",
        ),
        (json!({"user_id": "u", "format": "jwt", "aud": ""}), "aud"),
    ] {
        let reply = post(&e.server, "/api/playback-tokens", RW, &body);
        assert_eq!(reply.status, 400, "{body}: {}", reply.body);
        assert_eq!(reply.json()["field"], field, "{body}: {}", reply.body);
    }
}

#[test]
fn edge_urls_need_a_write_key_and_valid_input() {
    let e = edge_server(T0, |_| {});
    let ok = json!({"format": "nginx_secure_link", "path": "/files/a.txt", "ttl_seconds": 60});
    assert_eq!(post(&e.server, "/api/edge-urls", RO, &ok).status, 403);
    let reply = post(&e.server, "/api/edge-urls", RW, &ok);
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let url = reply.json()["url"].as_str().unwrap().to_owned();
    let expires = T0.unix_seconds() + 60;
    assert!(
        url.starts_with("/files/a.txt?md5=") && url.ends_with(&format!("&expires={expires}")),
        "{url}"
    );
    for (body, field) in [
        (
            json!({"format": "nginx_secure_link", "ttl_seconds": 60}),
            "path",
        ),
        (
            json!({"format": "nginx_secure_link", "path": "/a/../b", "ttl_seconds": 60}),
            "path",
        ),
        (
            json!({"format": "nginx_secure_link", "path": "/a", "ttl_seconds": 0}),
            "ttl_seconds",
        ),
        (
            json!({"format": "akamai_edgeauth", "acl": "/a~b", "ttl_seconds": 60}),
            "acl",
        ),
        (
            json!({"format": "akamai_edgeauth", "ttl_seconds": 60}),
            "acl",
        ),
        (
            json!({"format": "cloudfront", "path": "/a", "ttl_seconds": 60}),
            "format",
        ),
        (
            json!({"format": "nginx_secure_link", "path": "/a", "ttl_seconds": 60, "x": 1}),
            "x",
        ),
    ] {
        let reply = post(&e.server, "/api/edge-urls", RW, &body);
        assert_eq!(reply.status, 400, "{body}: {}", reply.body);
        assert_eq!(reply.json()["error"], "invalid_request", "{}", reply.body);
        assert_eq!(reply.json()["field"], field, "{body}: {}", reply.body);
    }
    // A server without the secret says which setting is missing, and never shows one.
    let bare = edge_server(T0, |config| {
        config.nginx_secure_link_secret = None;
    });
    let reply = post(&bare.server, "/api/edge-urls", RW, &ok);
    assert_eq!(reply.status, 400);
    assert!(
        reply.body.contains("NGINX_SECURE_LINK_SECRET"),
        "{}",
        reply.body
    );
    assert!(!reply.body.contains(AKAMAI_KEY) && !reply.body.contains(SECURE_LINK_SECRET));
}

// --- Python's independent verifiers ---

/// `python3` with PyJWT, cryptography and akamai-edgeauth; `None` when missing and
/// `AUTH_SKIP_PYTHON_INTEROP=1`; otherwise a missing verifier fails the test.
fn python() -> Option<Command> {
    let skip = std::env::var("AUTH_SKIP_PYTHON_INTEROP").is_ok_and(|v| v == "1");
    let probe = Command::new("python3")
        .args(["-c", "import jwt, cryptography, akamai.edgeauth"])
        .output();
    match probe {
        Ok(out) if out.status.success() => Some(Command::new("python3")),
        _ if skip => {
            eprintln!("skipped: AUTH_SKIP_PYTHON_INTEROP=1 and no python3 with PyJWT, cryptography and akamai-edgeauth");
            None
        }
        Ok(out) => panic!(
            "python3 cannot import PyJWT, cryptography and akamai-edgeauth (pip install PyJWT \
             cryptography akamai-edgeauth, or set AUTH_SKIP_PYTHON_INTEROP=1 to skip \
             explicitly): {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(err) => panic!(
            "python3 is not available ({err}); install it with PyJWT, cryptography and \
             akamai-edgeauth, or set AUTH_SKIP_PYTHON_INTEROP=1 to skip explicitly"
        ),
    }
}

/// Runs `script` with `job` on its standard input; its standard output as JSON.
fn run_python(mut python: Command, script: &str, job: &Value) -> Value {
    python.args(["-c", script]);
    let out = output_with_input(python, job.to_string().as_bytes());
    assert!(
        out.status.success(),
        "the Python verifier failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Fetches our JWKS with PyJWKClient and verifies each token with PyJWT, checking `aud` and
/// `iss`; refuses a tampered one; finds no key for an HMAC token.
const PYJWT: &str = r#"
import json, sys
import jwt

job = json.load(sys.stdin)
client = jwt.PyJWKClient(job["jwks_url"], cache_keys=False)
out = {"claims": {}}
for name, token in job["tokens"].items():
    key = client.get_signing_key_from_jwt(token)
    out["claims"][name] = jwt.decode(token, key.key, algorithms=["ES256", "EdDSA"],
                                     audience="mediamtx", issuer=job["issuer"])
    out.setdefault("algorithms", {})[name] = jwt.get_unverified_header(token)["alg"]
try:
    token = job["tampered"]
    jwt.decode(token, client.get_signing_key_from_jwt(token).key, algorithms=["ES256"],
               audience="mediamtx")
    out["tampered_refused"] = False
except jwt.InvalidSignatureError:
    out["tampered_refused"] = True
try:
    client.get_signing_key_from_jwt(job["hmac"])
    out["hmac_key_found"] = True
except jwt.PyJWKClientError:
    out["hmac_key_found"] = False
print(json.dumps(out))
"#;

#[test]
fn pyjwt_verifies_our_jwts_with_our_jwks() {
    let Some(python) = python() else {
        return;
    };
    // PyJWT checks exp and iat against the real clock.
    let e = edge_server(SystemClock.now(), |_| {});
    let mut tokens = serde_json::Map::new();
    for kid in ["ec-1", "ed-1"] {
        let token = mint(
            &e.server,
            json!({"user_id": "holder-1", "streams": ["cam1"], "format": "jwt", "kid": kid,
                   "profile": "mediamtx", "aud": "mediamtx", "max_sessions": 2}),
        );
        tokens.insert(kid.into(), token.into());
    }
    let ec = tokens["ec-1"].as_str().unwrap().to_owned();
    let mut claims = jwt_part(&ec, 1);
    claims["streams"] = json!(["*"]);
    let (header, rest) = ec.split_once('.').unwrap();
    let signature = rest.split_once('.').unwrap().1;
    let tampered = format!(
        "{header}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let hmac = mint(
        &e.server,
        json!({"user_id": "u", "format": "jwt", "kid": "mac-1"}),
    );
    let job = json!({
        "jwks_url": format!("{}/.well-known/jwks.json", e.server.base),
        "issuer": ISSUER,
        "tokens": tokens,
        "tampered": tampered,
        "hmac": hmac,
    });
    let answer = run_python(python, PYJWT, &job);
    assert_eq!(
        answer["algorithms"],
        json!({"ec-1": "ES256", "ed-1": "EdDSA"})
    );
    for kid in ["ec-1", "ed-1"] {
        let claims = &answer["claims"][kid];
        assert_eq!(claims["sub"], "holder-1", "{answer}");
        assert_eq!(claims["iss"], ISSUER);
        assert_eq!(claims["max_sessions"], 2);
        assert_eq!(
            claims["mediamtx_permissions"],
            json!([{"action": "read", "path": "cam1"}])
        );
    }
    assert_eq!(answer["tampered_refused"], true);
    assert_eq!(answer["hmac_key_found"], false);
}

/// The reference generator's tokens for each case of the job.
const EDGEAUTH: &str = r#"
import json, sys
from akamai.edgeauth import EdgeAuth

job = json.load(sys.stdin)
out = []
for case in job["cases"]:
    auth = EdgeAuth(key=job["key"], start_time=case["start_time"],
                    window_seconds=case["ttl_seconds"], ip=case.get("ip"),
                    session_id=case.get("session_id"), payload=case.get("payload"))
    if "url" in case:
        out.append(auth.generate_url_token(case["url"]))
    else:
        out.append(auth.generate_acl_token(case["acl"]))
print(json.dumps(out))
"#;

#[test]
fn akamai_tokens_equal_the_reference_generator() {
    let Some(python) = python() else {
        return;
    };
    let e = edge_server(T0, |_| {});
    let start = T0.unix_seconds();
    let cases = vec![
        json!({"acl": "/live/cam1/*", "ttl_seconds": 300, "start_time": start}),
        json!({"acl": ["/live/*", "/vod/a.mp4"], "ttl_seconds": 60, "start_time": start - 5,
               "ip": "203.0.113.7", "session_id": "viewer-1", "payload": "conf-2026"}),
        json!({"url": "/vod/a/index.m3u8", "ttl_seconds": 3600, "start_time": start,
               "ip": "2001:db8::7"}),
        json!({"acl": "/*", "ttl_seconds": 1, "start_time": 1}),
    ];
    let mut ours = Vec::new();
    for case in &cases {
        let mut body = case.clone();
        body["format"] = "akamai_edgeauth".into();
        let reply = post(&e.server, "/api/edge-urls", RW, &body);
        assert_eq!(reply.status, 201, "{body}: {}", reply.body);
        ours.push(reply.json()["token"].clone());
    }
    let reference = run_python(
        python,
        EDGEAUTH,
        &json!({"key": AKAMAI_KEY, "cases": cases}),
    );
    assert_eq!(Value::Array(ours), reference);
}

// --- A real nginx with secure_link ---

fn find_nginx() -> Option<PathBuf> {
    let found = find("nginx");
    if found.is_none() {
        if std::env::var("AUTH_TEST_E2E").as_deref() == Ok("skip") {
            eprintln!("SKIPPED (AUTH_TEST_E2E=skip): nginx is missing");
        } else {
            panic!(
                "this test needs nginx (install: `apt-get install -y nginx`), or set \
                 AUTH_TEST_E2E=skip to skip it"
            );
        }
    }
    found
}

/// nginx, killed when dropped.
struct Nginx {
    child: Child,
    port: u16,
    root: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The docs' snippets for nginx `secure_link` (docs/edge-tokens.md shows the same lines).
const SEGMENT_MAP: &str = r#"map $uri $hls_stream {
        ~^/hls/(?<s>[^/]+)/[^/]+\.ts$  $s;
        ~^/hls/(?<s>[^/]+)-\d+\.ts$    $s;
    }"#;
const SEGMENT_LINK_DIRECTIVES: &str = r#"auth_request_set $segment_link $upstream_http_x_segment_link;
            sub_filter_types application/vnd.apple.mpegurl;
            sub_filter_once off;
            sub_filter '.ts' '.ts?$segment_link';"#;

impl Nginx {
    fn start(nginx: &Path, auth: &str) -> Nginx {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path();
        for sub in ["logs", "files", "open", "hls/cam2"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        std::fs::write(dir.join("files/a.txt"), "protected file\n").unwrap();
        std::fs::write(dir.join("files/b.txt"), "another file\n").unwrap();
        std::fs::write(dir.join("open/a.txt"), "any address\n").unwrap();
        std::fs::write(
            dir.join("hls/cam1.m3u8"),
            "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\ncam1-0.ts\n#EXTINF:1.0,\ncam1-1.ts\n",
        )
        .unwrap();
        std::fs::write(dir.join("hls/cam1-0.ts"), "segment cam1 0").unwrap();
        std::fs::write(dir.join("hls/cam1-1.ts"), "segment cam1 1").unwrap();
        std::fs::write(dir.join("hls/cam2-0.ts"), "segment cam2 0").unwrap();
        std::fs::write(
            dir.join("hls/cam2/index.m3u8"),
            "#EXTM3U\n#EXTINF:1.0,\n0.ts\n",
        )
        .unwrap();
        std::fs::write(dir.join("hls/cam2/0.ts"), "segment cam2/0").unwrap();
        let port = free_port();
        let refuse = r#"if ($secure_link = "") { return 403; }
            if ($secure_link = "0") { return 410; }"#;
        let config = format!(
            r#"master_process off;
error_log {root}/logs/error.log info;
pid {root}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    access_log {root}/logs/access.log;
    client_body_temp_path {root}/client_body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    types {{
        application/vnd.apple.mpegurl m3u8;
        video/mp2t ts;
        text/plain txt;
    }}
    {SEGMENT_MAP}
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location /files/ {{
            secure_link $arg_md5,$arg_expires;
            secure_link_md5 "$secure_link_expires$uri$remote_addr {SECURE_LINK_SECRET}";
            {refuse}
        }}
        location /open/ {{
            secure_link $arg_md5,$arg_expires;
            secure_link_md5 "$secure_link_expires$uri {SECURE_LINK_SECRET}";
            {refuse}
        }}
        location ~ ^/hls/.+\.m3u8$ {{
            auth_request /_auth;
            {SEGMENT_LINK_DIRECTIVES}
            add_header Cache-Control no-cache;
        }}
        location ~ ^/hls/.+\.ts$ {{
            secure_link $arg_md5,$arg_expires;
            secure_link_md5 "$secure_link_expires|$hls_stream|$remote_addr {SECURE_LINK_SECRET}";
            {refuse}
        }}
        location = /_auth {{
            internal;
            proxy_pass http://{auth}/hooks/nginx-auth;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Real-IP $remote_addr;
        }}
    }}
}}
"#,
            root = dir.display(),
        );
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, config).unwrap();
        let child = Command::new(nginx)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&conf)
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut nginx = Nginx { child, port, root };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(
            &SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_millis(200),
        )
        .is_err()
        {
            let exited = matches!(nginx.child.try_wait(), Ok(Some(_)));
            if exited || Instant::now() > deadline {
                panic!("nginx did not start:\n{}", nginx.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        nginx
    }

    fn get(&self, path: &str) -> (u16, String) {
        let url = format!("http://127.0.0.1:{}{path}", self.port);
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(10))
            .build();
        match agent.get(&url).call() {
            Ok(response) | Err(ureq::Error::Status(_, response)) => {
                let status = response.status();
                (status, response.into_string().unwrap_or_default())
            }
            Err(err) => panic!("GET {url} failed: {err}"),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.root.path().join("logs/error.log")).unwrap_or_default()
    }
}

/// `url` with its `md5` argument's first character changed.
fn altered_md5(url: &str) -> String {
    let at = url.find("md5=").unwrap() + 4;
    let mut bytes = url.as_bytes().to_vec();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

#[test]
fn nginx_secure_link_serves_our_urls_and_refuses_altered_ones() {
    let docs = include_str!("../../docs/edge-tokens.md");
    for line in [SEGMENT_MAP, SEGMENT_LINK_DIRECTIVES]
        .iter()
        .flat_map(|block| block.lines())
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        assert!(docs.contains(line), "docs/edge-tokens.md shows `{line}`");
    }
    let Some(nginx_bin) = find_nginx() else {
        return;
    };
    // nginx compares `expires` with the real clock.
    let e = edge_server(SystemClock.now(), |config| {
        config.segment_token_ttl = Duration::from_secs(60);
        config.segment_token_format = auth_server::config::SegmentFormat::NginxSecureLink;
    });
    let nginx = Nginx::start(&nginx_bin, e.server.base.trim_start_matches("http://"));
    let sign = |body: Value| {
        let reply = post(&e.server, "/api/edge-urls", RW, &body);
        assert_eq!(reply.status, 201, "{body}: {}", reply.body);
        reply.json()["url"].as_str().unwrap().to_owned()
    };

    // Bound to the client's address (the documentation's expression).
    let url = sign(
        json!({"format": "nginx_secure_link", "path": "/files/a.txt",
                          "ttl_seconds": 60, "ip": "127.0.0.1"}),
    );
    assert_eq!(
        nginx.get(&url),
        (200, "protected file\n".into()),
        "{}",
        nginx.log()
    );
    assert_eq!(nginx.get(&altered_md5(&url)).0, 403);
    let (_, args) = url.split_once('?').unwrap();
    assert_eq!(
        nginx.get(&format!("/files/b.txt?{args}")).0,
        403,
        "another path"
    );
    assert_eq!(nginx.get("/files/a.txt").0, 403, "no signature");
    let expires: i64 = args.rsplit_once("expires=").unwrap().1.parse().unwrap();
    let later = url.replace(
        &format!("expires={expires}"),
        &format!("expires={}", expires + 3600),
    );
    assert_eq!(nginx.get(&later).0, 403, "a longer life than signed");
    let elsewhere = sign(
        json!({"format": "nginx_secure_link", "path": "/files/a.txt",
                                "ttl_seconds": 60, "ip": "10.9.9.9"}),
    );
    assert_eq!(nginx.get(&elsewhere).0, 403, "another client address");
    // Without an address (the expression without $remote_addr).
    let open =
        sign(json!({"format": "nginx_secure_link", "path": "/open/a.txt", "ttl_seconds": 60}));
    assert_eq!(nginx.get(&open), (200, "any address\n".into()));
    assert_eq!(nginx.get(&altered_md5(&open)).0, 403);
    // Expired: 410, as the module says.
    let secret = SecureLinkSecret::new(SECURE_LINK_SECRET).unwrap();
    let past = SystemClock.now().unix_seconds() - 10;
    let expired = secure_link::signed_url(&secret, "/open/a.txt", past, None).unwrap();
    assert_eq!(nginx.get(&expired).0, 410);

    // A playlist allowed by auth_request lists its segments with a secure_link signature, and
    // nginx serves them with no subrequest.
    e.server.token(TokenSpec {
        max_sessions: Some(1),
        ..spec("viewer-token-0001", "viewer")
    });
    assert_eq!(nginx.get("/hls/cam1.m3u8").0, 401);
    let (status, playlist) = nginx.get("/hls/cam1.m3u8?token=viewer-token-0001");
    assert_eq!(status, 200, "{playlist}\n{}", nginx.log());
    let listed: Vec<&str> = playlist.lines().filter(|l| l.contains(".ts")).collect();
    assert_eq!(listed.len(), 2, "{playlist}");
    for line in &listed {
        assert!(
            line.contains(".ts?md5=") && line.contains("&expires="),
            "{playlist}"
        );
    }
    // The nested layout: the folder is the stream, on both sides.
    e.server.token(spec("nested-viewer-0001", "nested"));
    let (status, nested) = nginx.get("/hls/cam2/index.m3u8?token=nested-viewer-0001");
    assert_eq!(status, 200, "{nested}");
    let nested_segment = nested
        .lines()
        .find(|l| l.contains(".ts"))
        .unwrap()
        .to_owned();
    assert!(nested_segment.starts_with("0.ts?md5="), "{nested}");

    // With the auth server gone, segments still play: nginx makes no subrequest for them.
    e.server.stop();
    assert_eq!(
        nginx.get(&format!("/hls/{}", listed[0])),
        (200, "segment cam1 0".into()),
        "{}",
        nginx.log()
    );
    assert_eq!(nginx.get(&format!("/hls/{}", listed[1])).0, 200);
    assert_eq!(
        nginx.get(&format!("/hls/cam2/{nested_segment}")),
        (200, "segment cam2/0".into())
    );
    assert_eq!(nginx.get("/hls/cam1-0.ts").0, 403);
    assert_eq!(
        nginx.get(&format!("/hls/{}", altered_md5(listed[0]))).0,
        403
    );
    // cam1's signature does not open cam2's segments.
    let (_, args) = listed[0].split_once('?').unwrap();
    assert_eq!(nginx.get(&format!("/hls/cam2-0.ts?{args}")).0, 403);
    assert_eq!(nginx.get(&format!("/hls/cam2/0.ts?{args}")).0, 403);
}

// --- The command line ---

#[test]
fn cli_signs_jwts_and_edge_urls() {
    let (_dir, db) = temp_db();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut command = bin();
        command.env("DATABASE_URL", &db).args(args);
        for (name, value) in env {
            command.env(name, value);
        }
        command.output().unwrap()
    };
    let ok = |out: std::process::Output| -> Value {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    ok(run(&["keys", "generate", "--kid", "ed-1"], &[]));
    let minted = ok(run(
        &[
            "sign",
            "--user-id",
            "u1",
            "--stream",
            "cam1",
            "--format",
            "jwt",
            "--profile",
            "mediamtx",
        ],
        &[("JWT_ISSUER", ISSUER)],
    ));
    let token = minted["token"].as_str().unwrap();
    assert_eq!(jwt_part(token, 0)["alg"], "EdDSA");
    assert_eq!(jwt_part(token, 1)["iss"], ISSUER);
    assert_eq!(
        jwt_part(token, 1)["mediamtx_permissions"],
        json!([{"action": "read", "path": "cam1"}])
    );
    let verified = ok(run(&["verify", token, "--stream", "cam1"], &[]));
    assert_eq!(verified["claims"]["sub"], "u1");
    let bad = run(&["sign", "--user-id", "u", "--format", "jws"], &[]);
    assert_eq!(bad.status.code(), Some(2));

    // SQLite keeps ES256 keys (schema version 7): the newest key signs JWTs as ES256.
    let es = ok(run(
        &[
            "keys",
            "generate",
            "--algorithm",
            "es256",
            "--kid",
            "es-cli-1",
        ],
        &[],
    ));
    assert_eq!(es["algorithm"], "es256");
    let minted = ok(run(
        &[
            "sign",
            "--user-id",
            "u2",
            "--format",
            "jwt",
            "--kid",
            "es-cli-1",
        ],
        &[],
    ));
    let token = minted["token"].as_str().unwrap();
    assert_eq!(jwt_part(token, 0)["alg"], "ES256");
    assert_eq!(ok(run(&["verify", token], &[]))["claims"]["sub"], "u2");

    let akamai = ok(run(
        &[
            "edge-url",
            "--format",
            "akamai_edgeauth",
            "--acl",
            "/live/*",
            "--ttl",
            "60",
            "--start-time",
            "1800000000",
        ],
        &[("AKAMAI_EDGEAUTH_KEY", AKAMAI_KEY)],
    ));
    let text = akamai["token"].as_str().unwrap();
    assert!(
        text.starts_with("st=1800000000~exp=1800000060~acl=/live/*~hmac="),
        "{text}"
    );
    let nginx = ok(run(
        &[
            "edge-url",
            "--format",
            "nginx_secure_link",
            "--path",
            "/a.mp4",
            "--ttl",
            "60",
        ],
        &[("NGINX_SECURE_LINK_SECRET", SECURE_LINK_SECRET)],
    ));
    assert!(nginx["url"].as_str().unwrap().starts_with("/a.mp4?md5="));
    let unset = run(
        &[
            "edge-url",
            "--format",
            "nginx_secure_link",
            "--path",
            "/a",
            "--ttl",
            "6",
        ],
        &[],
    );
    assert_eq!(unset.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unset.stderr).contains("NGINX_SECURE_LINK_SECRET"));
}
