//! Signed tokens checked by an independent implementation: Python's `cryptography` (OpenSSL)
//! for Ed25519 and Python's standard library for HMAC-SHA256, in both directions: Python
//! verifies what we sign, and we verify, with a public key alone, what Python signs.
//!
//! Needs `python3` with `cryptography` (CI installs it). Without them the test fails, saying
//! so, unless `AUTH_SKIP_PYTHON_INTEROP=1` explicitly skips it.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use auth_core::signed_token::{generate_ed25519, Claims, KeyRing, Kind, Rejection};
use auth_core::Timestamp;
use serde_json::{json, Value};

const NOW: Timestamp = Timestamp::from_unix_seconds(1_800_000_000);

/// Verifies our tokens, then signs one of its own with a fresh key.
const SCRIPT: &str = r#"
import base64, hashlib, hmac, json, sys
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives import serialization

def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))

def b64e(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

job = json.load(sys.stdin)
out = {}

signed, tag = job["ed25519_token"].rsplit(".", 1)
public = Ed25519PublicKey.from_public_bytes(b64d(job["ed25519_public"]))
public.verify(b64d(tag), signed.encode())
out["ed25519_claims"] = json.loads(b64d(signed.split(".")[2]))
try:
    public.verify(b64d(tag), (signed + "x").encode())
    out["ed25519_tamper_refused"] = False
except InvalidSignature:
    out["ed25519_tamper_refused"] = True

signed, tag = job["hmac_token"].rsplit(".", 1)
expected = hmac.new(bytes.fromhex(job["hmac_secret"]), signed.encode(), hashlib.sha256).digest()
out["hmac_ok"] = hmac.compare_digest(expected, b64d(tag))

key = Ed25519PrivateKey.generate()
claims = json.dumps(job["python_claims"], separators=(",", ":")).encode()
signed = "v1.py-1." + b64e(claims)
out["python_token"] = signed + "." + b64e(key.sign(signed.encode()))
out["python_public"] = b64e(key.public_key().public_bytes(
    serialization.Encoding.Raw, serialization.PublicFormat.Raw))
print(json.dumps(out))
"#;

fn python_with_cryptography() -> Option<Command> {
    let skip = std::env::var("AUTH_SKIP_PYTHON_INTEROP").is_ok_and(|v| v == "1");
    let probe = Command::new("python3")
        .args(["-c", "import cryptography"])
        .output();
    match probe {
        Ok(out) if out.status.success() => Some(Command::new("python3")),
        _ if skip => {
            eprintln!("skipped: AUTH_SKIP_PYTHON_INTEROP=1 and no python3 with cryptography");
            None
        }
        Ok(out) => panic!(
            "python3 cannot import cryptography (pip install cryptography, or set \
             AUTH_SKIP_PYTHON_INTEROP=1 to skip explicitly): {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(err) => panic!(
            "python3 is not available ({err}); install it with cryptography, or set \
             AUTH_SKIP_PYTHON_INTEROP=1 to skip explicitly"
        ),
    }
}

#[test]
fn python_cryptography_agrees_in_both_directions() {
    let Some(mut python) = python_with_cryptography() else {
        return;
    };
    let hmac_secret = [0x5au8; 32];
    let mut ring = KeyRing::new();
    ring.add_ed25519_signer("ed-1", &generate_ed25519().unwrap())
        .unwrap();
    ring.add_hmac("mac-1", &hmac_secret).unwrap();
    let claims = Claims {
        evt: Some("conf-2026".into()),
        streams: vec!["conf/*".into()],
        max_sessions: 2,
        ..Claims::new("holder-ü-1", NOW, Duration::from_secs(600))
    };
    let python_claims = Claims {
        sub: "from-python".into(),
        ..claims.clone()
    };
    let job = json!({
        "ed25519_token": ring.sign("ed-1", &claims).unwrap(),
        "ed25519_public": base64_url(&ring.ed25519_public_key("ed-1").unwrap()),
        "hmac_token": ring.sign("mac-1", &claims).unwrap(),
        "hmac_secret": hex(&hmac_secret),
        "python_claims": python_claims,
    });
    let mut child = python
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(job.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the Python verifier refused: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        serde_json::from_value::<Claims>(answer["ed25519_claims"].clone()).unwrap(),
        claims
    );
    assert_eq!(answer["ed25519_tamper_refused"], true);
    assert_eq!(answer["hmac_ok"], true);

    // A token Python signed verifies here with nothing but its public key.
    let public = base64_decode(answer["python_public"].as_str().unwrap());
    let mut edge = KeyRing::new();
    edge.add_ed25519_public("py-1", &public).unwrap();
    let token = answer["python_token"].as_str().unwrap();
    assert_eq!(
        edge.verify(token, NOW, Kind::Playback, None, Some("conf/main")),
        Ok(python_claims)
    );
    let mut tampered = token.to_owned();
    tampered.insert(token.rfind('.').unwrap() - 1, 'A');
    assert!(matches!(
        edge.verify(&tampered, NOW, Kind::Playback, None, None),
        Err(Rejection::BadSignature | Rejection::Malformed)
    ));
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .unwrap()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
