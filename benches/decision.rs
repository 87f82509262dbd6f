//! What one `/auth` decision costs, path by path, without HTTP.
//!
//! Run with `cargo bench -p auth-core --bench decision` (add `-- --quick` for a fast pass).
//! Each bench is named after the path it measures:
//!
//! - `decide/pure_allow`: the pure policy ([`auth_core::decide`]) over a prebuilt token, with an
//!   admission closure that answers at once: the floor every store adds to.
//! - `authorize/memory/update_session`: [`Authorizer::authorize`] re-checking a live session in a
//!   [`MemoryStore`]: HMAC of the presented secret, token lookup, checks, lease extension.
//! - `authorize/sqlite/update_session`: the same against a [`SqliteStore`] on a temporary file
//!   (one indexed read, one `BEGIN IMMEDIATE` write transaction).
//! - `authorize/sqlite/new_session_unlimited`: a fresh session per iteration on a token without a
//!   session limit, so every call inserts a row.
//!
//! Time stands still ([`ManualClock`]) so that no lease runs out during a run and every
//! iteration takes the same path. All setup happens outside the measured closures.

use std::hint::black_box;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use auth_core::prelude::*;
use auth_core::store::CachedTokens;
use auth_core::{
    decide, AccessLogEntry, AccessLogWriter, Admission, AuthRequest, Authorizer, Clock, Decision,
    ManualClock, MemoryStore, RequestType, SessionPolicy, SqliteStore, Step, Timestamp,
    TokenHasher, TokenSpec,
};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};

const SECRET: &str = "bench-viewer-token-0001";
const UNLIMITED_SECRET: &str = "bench-unlimited-token-0002";
const NOW: Timestamp = Timestamp::from_unix_seconds(1_800_000_000);

/// A fixed key: the benches measure hashing, not key generation.
fn hasher() -> TokenHasher {
    TokenHasher::new(&[42u8; 32]).expect("32-byte key")
}

fn policy() -> SessionPolicy {
    SessionPolicy::new(Duration::from_secs(180))
}

/// A typical viewer token: a session limit and a stream allow-list with a glob.
fn viewer_spec() -> TokenSpec {
    TokenSpec {
        token: Some(SECRET.into()),
        user_id: "viewer-001".into(),
        max_sessions: Some(2),
        allowed_streams: vec!["sports/*".into(), "news".into()],
        ..Default::default()
    }
}

fn unlimited_spec() -> TokenSpec {
    TokenSpec {
        token: Some(UNLIMITED_SECRET.into()),
        user_id: "office-lan".into(),
        max_sessions: Some(0),
        ..Default::default()
    }
}

fn ip() -> IpAddr {
    IpAddr::from([203, 0, 113, 7])
}

fn request(secret: &'static str, request_type: RequestType) -> AuthRequest<'static> {
    AuthRequest {
        token: Some(secret),
        stream: "sports/final",
        ip: ip(),
        proto: "hls",
        request_type,
        session_id: Some("player-1"),
        action: auth_core::Action::Play,
        segment: false,
        source: "",
        media_session_id: None,
    }
}

fn pure_allow(c: &mut Criterion) {
    let (new_token, _secret) = viewer_spec().validate(&hasher()).expect("valid spec");
    let token = new_token.into_token(1, NOW, NOW);
    let request = request(SECRET, RequestType::UpdateSession);
    let policy = policy();
    c.bench_function("decide/pure_allow", |b| {
        b.iter(|| {
            decide(
                black_box(&request),
                Some(black_box(&token)),
                NOW,
                &policy,
                |_| Ok(Admission::Extended { session_id: 1 }),
            )
        })
    });
}

/// An authorizer over `store` with a stopped clock, a viewer token created, and its session
/// `player-1` admitted, ready for re-checks.
fn authorizer_with_live_session(
    tokens: Arc<dyn TokenStore>,
    sessions: Arc<dyn SessionStore>,
) -> Authorizer {
    let clock = Arc::new(ManualClock::new(NOW));
    let hasher = hasher();
    let (new_token, _secret) = viewer_spec().validate(&hasher).expect("valid spec");
    tokens
        .create_token(new_token, clock.now())
        .expect("create token");
    let authorizer = Authorizer::from_parts(tokens, sessions, clock, hasher, policy());
    let first = authorizer
        .authorize(&request(SECRET, RequestType::NewSession))
        .expect("authorize");
    assert!(matches!(first, Decision::Allow(ref g) if g.new_session));
    authorizer
}

/// Re-checks of `player-1` must extend it, not admit or refuse it.
fn assert_extends(authorizer: &Authorizer) {
    let again = authorizer
        .authorize(&request(SECRET, RequestType::UpdateSession))
        .expect("authorize");
    assert!(
        matches!(again, Decision::Allow(ref g) if !g.new_session),
        "{again:?}"
    );
}

fn memory_update_session(c: &mut Criterion) {
    let store = Arc::new(MemoryStore::new());
    let authorizer = authorizer_with_live_session(store.clone(), store);
    assert_extends(&authorizer);
    let recheck = request(SECRET, RequestType::UpdateSession);
    c.bench_function("authorize/memory/update_session", |b| {
        b.iter(|| {
            authorizer
                .authorize(black_box(&recheck))
                .expect("authorize")
        })
    });
    assert_extends(&authorizer);
}

fn sqlite_update_session(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(SqliteStore::open(dir.path().join("bench.db")).expect("open sqlite"));
    let authorizer = authorizer_with_live_session(store.clone(), store);
    assert_extends(&authorizer);
    let recheck = request(SECRET, RequestType::UpdateSession);
    c.bench_function("authorize/sqlite/update_session", |b| {
        b.iter(|| {
            authorizer
                .authorize(black_box(&recheck))
                .expect("authorize")
        })
    });
    assert_extends(&authorizer);
}

fn sqlite_new_session_unlimited(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(SqliteStore::open(dir.path().join("bench.db")).expect("open sqlite"));
    let clock = Arc::new(ManualClock::new(NOW));
    let hasher = hasher();
    let (new_token, _secret) = unlimited_spec().validate(&hasher).expect("valid spec");
    store
        .create_token(new_token, clock.now())
        .expect("create token");
    let authorizer = Authorizer::new(store, clock, hasher, policy());
    let mut next: u64 = 0;
    c.bench_function("authorize/sqlite/new_session_unlimited", |b| {
        b.iter_batched(
            // Setup, not measured: a session id never seen before.
            || {
                next += 1;
                format!("player-{next}")
            },
            |session_id| {
                let request = AuthRequest {
                    session_id: Some(&session_id),
                    ..request(UNLIMITED_SECRET, RequestType::NewSession)
                };
                // Returned, so that dropping the id and the decision is not measured.
                (
                    authorizer.authorize(&request).expect("authorize"),
                    session_id,
                )
            },
            BatchSize::SmallInput,
        )
    });
    // Every iteration opened its own session.
    let last = format!("player-{}", next + 1);
    let decision = authorizer
        .authorize(&AuthRequest {
            session_id: Some(&last),
            ..request(UNLIMITED_SECRET, RequestType::NewSession)
        })
        .expect("authorize");
    assert!(
        matches!(decision, Decision::Allow(ref g) if g.new_session),
        "{decision:?}"
    );
}

/// What the server does per re-check: the token from the in-process cache, the session from
/// SQLite's in-memory index (`Authorizer::start` answering without blocking), and an access log entry queued
/// for the batching writer.
fn server_path_update_session_logged(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = Arc::new(SqliteStore::open(dir.path().join("bench.db")).expect("open sqlite"));
    let clock = Arc::new(ManualClock::new(NOW));
    let cached = Arc::new(CachedTokens::new(
        sqlite.clone(),
        clock.clone(),
        CachedTokens::DEFAULT_CAPACITY,
        CachedTokens::DEFAULT_RECHECK,
    ));
    let authorizer = authorizer_with_live_session(cached, sqlite.clone());
    let log = AccessLogWriter::spawn(sqlite).expect("access log writer");
    let recheck = request(SECRET, RequestType::UpdateSession);
    // The first lookup fills the cache; after it, re-checks never block.
    assert_extends(&authorizer);
    assert!(
        matches!(authorizer.start(&recheck), Step::Done(Ok(_))),
        "not on the memory path"
    );
    c.bench_function("server_path/sqlite_cached/update_session_logged", |b| {
        b.iter(|| {
            let Step::Done(decision) = authorizer.start(black_box(&recheck)) else {
                panic!("not on the memory path")
            };
            let decision = decision.expect("authorize");
            log.record(AccessLogEntry::new(
                &recheck,
                &decision,
                NOW,
                std::time::Duration::from_micros(1),
            ));
            decision
        })
    });
    log.shutdown();
}

criterion_group!(
    benches,
    pure_allow,
    memory_update_session,
    sqlite_update_session,
    sqlite_new_session_unlimited,
    server_path_update_session_logged
);
criterion_main!(benches);
