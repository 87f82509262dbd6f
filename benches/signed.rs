//! What signed tokens cost: minting and verifying with each algorithm, and the `/auth` decision
//! for a signed token, which never looks a token up.
//!
//! Run with `cargo bench -p auth-core --bench signed` (add `-- --quick` for a fast pass).
//!
//! - `signed/mint/{hs256,ed25519,es256}`: [`KeyRing::mint`] of typical playback claims
//!   (serialize, base64, sign).
//! - `signed/verify/{hs256,ed25519,es256}`: [`KeyRing::verify`] of a valid token with every
//!   check on (kind, validity, client address, stream glob).
//! - `signed/{mint,verify}/es256_jwt`: the same as a JWT ([`KeyRing::mint_jwt`]), as MediaMTX
//!   and other JWKS consumers take it.
//! - `signed/verify/bad_signature`: the cost an attacker can impose per forged HMAC token.
//! - `signed/authorize/{hs256,ed25519}_unlimited`: [`Authorizer::authorize`] for a token that
//!   limits no sessions: verification only, no store call.
//! - `signed/authorize/hs256_limited_recheck`: a token carrying `max_sessions`, re-checking its
//!   live session in a [`SqliteStore`] (answered from the store's in-memory index) through
//!   [`Authorizer::start`], the server's reactor path.
//!
//! Time stands still ([`ManualClock`]); all setup happens outside the measured closures.

use std::hint::black_box;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use auth_core::signed_token::jwt::JwtOptions;
use auth_core::signed_token::{
    generate_ed25519, generate_es256, Claims, KeyRing, Kind, SharedKeyRing,
};
use auth_core::{
    AuthRequest, Authorizer, ManualClock, MemoryStore, RequestType, SessionPolicy, SessionStore,
    SqliteStore, Step, Timestamp, TokenHasher, TokenStore,
};
use criterion::{criterion_group, criterion_main, Criterion};

const NOW: Timestamp = Timestamp::from_unix_seconds(1_800_000_000);

/// One Ed25519 and one P-256 key for the whole run, so that every ring built here holds the
/// same keys.
fn ring() -> KeyRing {
    static ED25519: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    static ES256: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let pkcs8 = ED25519.get_or_init(|| generate_ed25519().expect("ed25519 key"));
    let p256 = ES256.get_or_init(|| generate_es256().expect("es256 key"));
    let mut ring = KeyRing::new();
    ring.add_hmac("mac-1", &[7u8; 32]).expect("hmac key");
    ring.add_ed25519_signer("ed-1", pkcs8).expect("ed25519 key");
    ring.add_es256_signer("ec-1", p256).expect("es256 key");
    ring
}

fn ip() -> IpAddr {
    IpAddr::from([203, 0, 113, 7])
}

/// Typical playback claims: a holder, an event, a stream glob, an IP binding, a random id.
fn claims(max_sessions: u32) -> Claims {
    Claims {
        evt: Some("conf-2026".into()),
        streams: vec!["conf/*".into()],
        ip: Some(ip()),
        max_sessions,
        jti: Some("AAECAwQFBgcICQoL".into()),
        ..Claims::new("holder-000123", NOW, Duration::from_secs(3600))
    }
}

fn request(token: &str) -> AuthRequest<'_> {
    AuthRequest {
        token: Some(token),
        stream: "conf/main",
        ip: ip(),
        proto: "hls",
        request_type: RequestType::UpdateSession,
        session_id: Some("player-1"),
        action: auth_core::Action::Play,
        segment: false,
        source: "",
        media_session_id: None,
    }
}

fn mint_and_verify(c: &mut Criterion) {
    let ring = ring();
    let claims = claims(0);
    for (name, kid) in [("hs256", "mac-1"), ("ed25519", "ed-1"), ("es256", "ec-1")] {
        c.bench_function(&format!("signed/mint/{name}"), |b| {
            b.iter(|| ring.mint(Some(black_box(kid)), black_box(&claims)))
        });
        let (token, _) = ring.mint(Some(kid), &claims).expect("mint");
        assert!(ring
            .verify(&token, NOW, Kind::Playback, Some(ip()), Some("conf/main"))
            .is_ok());
        c.bench_function(&format!("signed/verify/{name}"), |b| {
            b.iter(|| {
                ring.verify(
                    black_box(&token),
                    NOW,
                    Kind::Playback,
                    Some(ip()),
                    Some("conf/main"),
                )
            })
        });
    }
    let options = JwtOptions::default();
    c.bench_function("signed/mint/es256_jwt", |b| {
        b.iter(|| ring.mint_jwt(Some(black_box("ec-1")), black_box(&claims), &options))
    });
    let (jwt, _) = ring
        .mint_jwt(Some("ec-1"), &claims, &options)
        .expect("mint");
    assert!(ring
        .verify(&jwt, NOW, Kind::Playback, Some(ip()), Some("conf/main"))
        .is_ok());
    c.bench_function("signed/verify/es256_jwt", |b| {
        b.iter(|| {
            ring.verify(
                black_box(&jwt),
                NOW,
                Kind::Playback,
                Some(ip()),
                Some("conf/main"),
            )
        })
    });
    let (token, _) = ring.mint(Some("mac-1"), &claims).expect("mint");
    let mut forged = token.clone();
    forged.pop();
    forged.push(if token.ends_with('A') { 'B' } else { 'A' });
    assert!(ring
        .verify(&forged, NOW, Kind::Playback, None, None)
        .is_err());
    c.bench_function("signed/verify/bad_signature", |b| {
        b.iter(|| ring.verify(black_box(&forged), NOW, Kind::Playback, None, None))
    });
}

fn authorizer<S: TokenStore + SessionStore + 'static>(store: Arc<S>) -> Authorizer {
    Authorizer::new(
        store,
        Arc::new(ManualClock::new(NOW)),
        TokenHasher::new(&[42u8; 32]).expect("32-byte key"),
        SessionPolicy::new(Duration::from_secs(180)),
    )
    .with_signed_keys(Arc::new(SharedKeyRing::new(ring())))
}

fn authorize(c: &mut Criterion) {
    let signer = ring();
    let auth = authorizer(Arc::new(MemoryStore::new()));
    for (name, kid) in [("hs256", "mac-1"), ("ed25519", "ed-1")] {
        let (token, _) = signer.mint(Some(kid), &claims(0)).expect("mint");
        assert!(auth
            .authorize(&request(&token))
            .expect("decision")
            .is_allow());
        c.bench_function(&format!("signed/authorize/{name}_unlimited"), |b| {
            b.iter(|| auth.authorize(black_box(&request(&token))))
        });
    }

    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(SqliteStore::open(dir.path().join("bench.db")).expect("sqlite"));
    let auth = authorizer(store);
    let (token, _) = signer.mint(Some("mac-1"), &claims(2)).expect("mint");
    assert!(auth
        .authorize(&request(&token))
        .expect("decision")
        .is_allow());
    let Step::Done(recheck) = auth.start(&request(&token)) else {
        panic!("not answered from memory")
    };
    assert!(recheck.expect("decision").is_allow());
    c.bench_function("signed/authorize/hs256_limited_recheck", |b| {
        b.iter(|| match auth.start(black_box(&request(&token))) {
            Step::Done(decision) => decision,
            Step::Pending(_) => panic!("not answered from memory"),
        })
    });
}

criterion_group!(benches, mint_and_verify, authorize);
criterion_main!(benches);
