//! What counting a decision for `/metrics` adds to the `/auth` path.
//!
//! Run with `cargo bench -p auth-server --bench metrics` (add `-- --quick` for a fast pass).
//!
//! - `metrics/count_decision`: [`Metrics::decision`] alone: the decision counter (one atomic
//!   add through a slot resolved on first use) and the duration histogram (atomics).
//! - `server_path/sqlite_cached/update_session_logged`: what the server does per re-check
//!   (cached token, SQLite's in-memory session index, access log record queued), as in the
//!   `decision` bench of `auth-core`;
//! - `server_path/sqlite_cached/update_session_logged_counted`: the same, counted as the server
//!   counts it. The difference between the two is the cost of the metrics on the hot path;
//! - `server_path/sqlite_cached/update_session_logged_again`: the uncounted path once more, after
//!   the counted one: the access log writer and the session index change state as the benches
//!   run, so the spread between this and the first run is the noise floor of the comparison.

use std::hint::black_box;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use auth_core::prelude::*;
use auth_core::store::CachedTokens;
use auth_core::{
    AccessLogEntry, AccessLogWriter, Action, AuthRequest, Authorizer, Clock, Decision, ManualClock,
    RequestType, SessionPolicy, SqliteStore, Step, Timestamp, TokenHasher, TokenSpec,
};
use auth_server::http::hooks::Hook;
use auth_server::metrics::{Metrics, Outcome};
use criterion::{criterion_group, criterion_main, Criterion};

const SECRET: &str = "bench-viewer-token-0001";
const NOW: Timestamp = Timestamp::from_unix_seconds(1_800_000_000);

fn request(request_type: RequestType) -> AuthRequest<'static> {
    AuthRequest {
        token: Some(SECRET),
        stream: "sports/final",
        ip: IpAddr::from([203, 0, 113, 7]),
        proto: "hls",
        request_type,
        session_id: Some("player-1"),
        action: Action::Play,
        segment: false,
        source: "flussonic",
        media_session_id: Some("player-1"),
    }
}

fn count_decision(c: &mut Criterion) {
    let metrics = Metrics::new();
    c.bench_function("metrics/count_decision", |b| {
        b.iter(|| {
            metrics.decision(
                black_box(Hook::Flussonic),
                black_box(Action::Play),
                black_box(Outcome::Allowed),
                black_box(Duration::from_micros(30)),
            )
        })
    });
}

fn server_path(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = Arc::new(SqliteStore::open(dir.path().join("bench.db")).expect("open sqlite"));
    let clock = Arc::new(ManualClock::new(NOW));
    let tokens = Arc::new(CachedTokens::new(
        sqlite.clone(),
        clock.clone(),
        CachedTokens::DEFAULT_CAPACITY,
        CachedTokens::DEFAULT_RECHECK,
    ));
    let hasher = TokenHasher::new(&[42u8; 32]).expect("32-byte key");
    let spec = TokenSpec {
        token: Some(SECRET.into()),
        user_id: "viewer-001".into(),
        max_sessions: Some(2),
        allowed_streams: vec!["sports/*".into(), "news".into()],
        ..Default::default()
    };
    let (new_token, _secret) = spec.validate(&hasher).expect("valid spec");
    tokens
        .create_token(new_token, clock.now())
        .expect("create token");
    let authorizer = Authorizer::from_parts(
        tokens,
        sqlite.clone(),
        clock,
        hasher,
        SessionPolicy::new(Duration::from_secs(180)),
    );
    let first = authorizer
        .authorize(&request(RequestType::NewSession))
        .expect("authorize");
    assert!(matches!(first, Decision::Allow(ref g) if g.new_session));
    let log = AccessLogWriter::spawn(sqlite).expect("access log writer");
    let metrics = Metrics::new();
    let recheck = request(RequestType::UpdateSession);
    let _ = authorizer.authorize(&recheck).expect("authorize");
    assert!(
        matches!(authorizer.start(&recheck), Step::Done(Ok(_))),
        "not on the memory path"
    );
    let one = |counted: bool| {
        let started = Instant::now();
        let Step::Done(decision) = authorizer.start(black_box(&recheck)) else {
            panic!("not on the memory path")
        };
        let decision = decision.expect("authorize");
        let took = started.elapsed();
        if counted {
            let outcome = decision
                .deny_reason()
                .map_or(Outcome::Allowed, Outcome::Denied);
            metrics.decision(Hook::Flussonic, Action::Play, outcome, took);
        }
        log.record(AccessLogEntry::new(&recheck, &decision, NOW, took));
        decision
    };
    c.bench_function("server_path/sqlite_cached/update_session_logged", |b| {
        b.iter(|| one(false))
    });
    c.bench_function(
        "server_path/sqlite_cached/update_session_logged_counted",
        |b| b.iter(|| one(true)),
    );
    c.bench_function(
        "server_path/sqlite_cached/update_session_logged_again",
        |b| b.iter(|| one(false)),
    );
    log.shutdown();
}

criterion_group!(benches, count_decision, server_path);
criterion_main!(benches);
