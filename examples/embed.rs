//! Embedding `auth-core` in your own service, without `auth-server`.
//!
//! The walk-through: open a SQLite store, create a token, authorize a viewer, watch a second
//! viewer be refused by the token's session limit, re-check the first viewer (extending its
//! lease), and record every decision in the access log, which is written off the request path.
//!
//! Run it with `cargo run -p auth-core --example embed`. Every outcome it prints is also asserted,
//! so the example fails loudly if the library's behaviour changes.

use std::error::Error;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use auth_core::access_log::AccessLogFilter;
use auth_core::prelude::*;
use auth_core::session::SessionFilter;
use auth_core::{
    AccessLogEntry, AccessLogWriter, AuthRequest, Authorizer, Clock, Decision, DenyReason,
    RequestType, SessionPolicy, SqliteStore, SystemClock, Timestamp, TokenHasher, TokenId,
    TokenSpec,
};

fn main() -> Result<(), Box<dyn Error>> {
    // 1. Storage. `SqliteStore::open` creates the file (its folder must exist), switches it to WAL
    //    and runs the schema migrations. The temporary folder is removed when `dir` is dropped.
    let dir = tempfile::Builder::new()
        .prefix("auth-core-embed-")
        .tempdir()?;
    let store = Arc::new(SqliteStore::open(dir.path().join("tokens.db"))?);
    println!("store:     {}", store.path().display());

    // 2. The token hashing key. Stores never hold a token's secret, only its HMAC under this key,
    //    so the key must live exactly as long as the database: generate it once, keep it beside
    //    the database (auth-server writes `token-hash.key`), and load it with `TokenHasher::new`
    //    at every start. With a lost or changed key every stored token becomes unknown.
    let key = auth_core::secret::random_key()?;
    let hasher = TokenHasher::new(&key)?;

    // 3. A token. `TokenSpec` is the unvalidated shape (what the management API or a seed file
    //    sends). `validate` checks every field, parses the allow-lists once (at write time, so a
    //    decision never parses) and hashes the secret; it hands the secret back, to be shown to
    //    its owner once. Leave `token` as `None` to have a random 32-byte secret generated.
    let clock = Arc::new(SystemClock);
    let spec = TokenSpec {
        token: Some("embed-demo-token-0001".into()),
        user_id: "alice".into(),
        max_sessions: Some(1),
        allowed_streams: vec!["sports/*".into()],
        ..Default::default()
    };
    let (new_token, secret) = spec.validate(&hasher)?;
    assert_eq!(secret, "embed-demo-token-0001");
    let token = store.create_token(new_token, clock.now())?;
    assert_eq!((token.user_id.as_str(), token.max_sessions), ("alice", 1));
    println!(
        "token:     id {} ({}...) for user `{}`, max_sessions {}, streams {:?}",
        token.id,
        token.token_prefix,
        token.user_id,
        token.max_sessions,
        token.allowed_streams.entries().collect::<Vec<_>>()
    );

    // 4. The authorizer: the policy wired to the store, a clock and the hashing key. Each grant
    //    tells the media server to re-check after `auth_duration`; a session's lease lasts
    //    `auth_duration + grace` after each check, so a slightly late re-check still finds it.
    let policy = SessionPolicy {
        auth_duration: Duration::from_secs(60),
        grace: Duration::from_secs(15),
        // A token without a session limit still holds at most this many.
        unlimited_ceiling: 1000,
    };
    let authorizer = Authorizer::new(store.clone(), clock.clone(), hasher, policy);

    // 5. The access log writer owns a background thread that batches entries into the store;
    //    `record` never blocks the request.
    let access_log = AccessLogWriter::spawn(store.clone())?;

    // A request borrows its fields from whatever your transport parsed. A media server's own
    // session id (when it sends one) identifies the session across re-checks; without one the
    // session is keyed by ip + proto + stream.
    let first = AuthRequest {
        token: Some("embed-demo-token-0001"),
        stream: "sports/final",
        ip: "203.0.113.7".parse()?,
        proto: "hls",
        request_type: RequestType::NewSession,
        session_id: Some("player-1"),
        action: auth_core::Action::Play,
        segment: false,
        source: "",
        media_session_id: None,
    };

    // 6. A new session takes the token's only slot. `authorize` blocks on the store: from async
    //    code, call it inside `spawn_blocking`.
    let (decision, latency) = timed(|| authorizer.authorize(&first));
    let decision = decision?;
    access_log.record(AccessLogEntry::new(&first, &decision, clock.now(), latency));
    let Decision::Allow(grant) = &decision else {
        panic!("the first session must be allowed, got {decision:?}");
    };
    assert!(grant.new_session);
    assert_eq!(grant.user_id, "alice");
    assert_eq!(grant.max_sessions, 1);
    assert_eq!(grant.auth_duration, 60);
    let first_session = grant
        .session_id
        .ok_or("a stored token's grant records its session")?;
    println!(
        "allowed:   {} on {} -> new session {first_session}, re-check in {}s ({latency:?})",
        first.session_id.unwrap_or("-"),
        first.stream,
        grant.auth_duration
    );

    // 7. A second viewer on the same token is refused: its one slot is held by a live session.
    //    Refusals are normal answers (`Decision::Deny`), not errors; their reason codes are stable.
    let second = AuthRequest {
        ip: "198.51.100.20".parse()?,
        session_id: Some("player-2"),
        ..first
    };
    let (decision, latency) = timed(|| authorizer.authorize(&second));
    let decision = decision?;
    access_log.record(AccessLogEntry::new(
        &second,
        &decision,
        clock.now(),
        latency,
    ));
    let Decision::Deny(denial) = &decision else {
        panic!("the second session must be refused, got {decision:?}");
    };
    assert_eq!(denial.reason, DenyReason::SessionLimitReached);
    assert_eq!(denial.reason.code(), "session_limit_reached");
    assert_eq!(denial.user_id.as_deref(), Some("alice"));
    println!(
        "denied:    {} on {} -> {} ({})",
        second.session_id.unwrap_or("-"),
        second.stream,
        denial.reason.code(),
        denial.reason.message(&second)
    );

    // 8. The media server re-checks the first session: the token is checked again (a suspended
    //    token would be refused here) and the same session's lease is extended, not a new one.
    let lease_before = live_session_expiry(store.as_ref(), token.id, clock.now())?;
    let recheck = AuthRequest {
        request_type: RequestType::UpdateSession,
        ..first
    };
    let (decision, latency) = timed(|| authorizer.authorize(&recheck));
    let decision = decision?;
    access_log.record(AccessLogEntry::new(
        &recheck,
        &decision,
        clock.now(),
        latency,
    ));
    let Decision::Allow(grant) = &decision else {
        panic!("the re-check of a live session must be allowed, got {decision:?}");
    };
    assert!(!grant.new_session, "a re-check extends, it does not admit");
    assert_eq!(grant.session_id, Some(first_session));
    let lease_after = live_session_expiry(store.as_ref(), token.id, clock.now())?;
    assert!(lease_after >= lease_before);
    println!(
        "extended:  {} -> session {}, lease now until {lease_after}",
        recheck.session_id.unwrap_or("-"),
        first_session
    );

    // 9. Shut the writer down: it writes everything queued, then stops its thread (dropping it
    //    does the same). A server calls this on SIGTERM, after draining its open requests.
    access_log.shutdown();
    let written = access_log.stats().written.load(Ordering::Relaxed);
    assert_eq!(written, 3);
    let page = store.access_logs(&AccessLogFilter {
        token_id: Some(token.id),
        limit: 10,
        ..Default::default()
    })?;
    assert_eq!(page.total, 3);
    // Newest first: the re-check, the refusal, the first admission.
    let results: Vec<(&str, Option<&str>)> = page
        .items
        .iter()
        .map(|r| (r.entry.result.as_str(), r.entry.reason.as_deref()))
        .collect();
    assert_eq!(
        results,
        [
            ("allowed", None),
            ("denied", Some("session_limit_reached")),
            ("allowed", None),
        ]
    );
    // The log keeps a short prefix of the token, never the token itself.
    assert!(page
        .items
        .iter()
        .all(|r| r.entry.token_prefix.as_deref() == Some(token.token_prefix.as_str())));
    println!("logged:    {written} access log entries, newest first:");
    for record in &page.items {
        println!(
            "           {} {:<14} {:<8} {:<7} {}",
            record.entry.at,
            record.entry.request_type,
            record.entry.session_id.as_deref().unwrap_or("-"),
            record.entry.result,
            record.entry.reason.as_deref().unwrap_or("-")
        );
    }
    Ok(())
}

/// The expiry of the token's one live session.
fn live_session_expiry(
    store: &dyn SessionStore,
    token_id: TokenId,
    now: Timestamp,
) -> Result<Timestamp, Box<dyn Error>> {
    let filter = SessionFilter {
        token_id: Some(token_id),
        ..Default::default()
    };
    let sessions = store.sessions(&filter, now)?;
    assert_eq!(sessions.len(), 1, "exactly one live session: {sessions:?}");
    Ok(sessions[0].expires_at)
}

/// Runs `work` and measures it. The latency goes into the access log; measuring is the
/// embedding service's job (auth-core itself never reads a clock it was not given).
#[allow(clippy::disallowed_methods)]
fn timed<T>(work: impl FnOnce() -> T) -> (T, Duration) {
    let started = Instant::now();
    let value = work();
    (value, started.elapsed())
}
