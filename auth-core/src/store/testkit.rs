//! One behaviour suite for every store: each backend instantiates it with
//! `auth_core::store_suite!(expr)` (and `auth_core::ticketing_suite!(expr)` with the `tickets`
//! feature), so SQLite, memory, PostgreSQL, and backends outside this crate (feature `testkit`)
//! are held to the same promises. `expr` makes a fresh store for each test; a store that needs
//! something kept alive beside it (a temporary folder) is made as `Guarded(guard, store)`.
//!
//! The test functions are public too, so a backend of one concern (a token store alone) can run
//! the ones for its trait: `token_suite!` runs the [`TokenStore`] ones.

// A test suite: a failed expectation is a panic, by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::IpAddr;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use crate::access_log::{AccessLogEntry, AccessLogFilter, AccessResult};
use crate::clock::Timestamp;
use crate::secret::{SecretDigest, TokenHasher};
use crate::session::{
    Admission, CloseReason, CountBy, Cut, SessionClaim, SessionCount, SessionFilter,
};
use crate::store::Store;
use crate::token::{
    NewToken, Token, TokenFilter, TokenPatch, TokenSpec, TokenStatus, TokenStore, Upsert,
};
use crate::webhook::{Delivery, Message, MessageKind, NewWebhook, WebhookStore};

pub const T0: Timestamp = Timestamp::from_unix_seconds(1_800_000_000);
const LEASE: Duration = Duration::from_secs(210);

pub fn hasher() -> TokenHasher {
    TokenHasher::new(&[5u8; 32]).unwrap()
}

pub fn digest(secret: &str) -> SecretDigest {
    hasher().digest(secret)
}

fn spec_of(secret: &str, user: &str, max_sessions: i64) -> TokenSpec {
    TokenSpec {
        token: Some(secret.into()),
        user_id: user.into(),
        max_sessions: Some(max_sessions),
        ..Default::default()
    }
}

pub fn spec(secret: &str, user: &str, max_sessions: i64) -> NewToken {
    TokenSpec {
        token: Some(secret.into()),
        user_id: user.into(),
        max_sessions: Some(max_sessions),
        ..Default::default()
    }
    .validate(&hasher())
    .unwrap()
    .0
}

fn claim<'a>(token: &'a Token, key: &'a str) -> SessionClaim<'a> {
    SessionClaim {
        owner: crate::session::SessionOwner::token(token.id),
        key,
        max_sessions: token.max_sessions,
        user_id: &token.user_id,
        stream: "live/one",
        ip: IpAddr::from([10, 0, 0, 1]),
        proto: "hls",
        source: "",
        media_session_id: None,
        evict_oldest: false,
    }
}

fn admit(store: &dyn Store, token: &Token, key: &str, now: Timestamp) -> Admission {
    store
        .admit_session(&claim(token, key), now, now.saturating_add(LEASE))
        .unwrap()
}

pub fn tokens_round_trip(store: &dyn TokenStore) {
    let created = store
        .create_token(spec("secret-aaaa", "alice", 2), T0)
        .unwrap();
    assert_eq!(store.token(created.id).unwrap().as_ref(), Some(&created));
    assert_eq!(
        store
            .token_by_digest(&digest("secret-aaaa"))
            .unwrap()
            .as_deref(),
        Some(&created)
    );
    assert_eq!(store.token_by_digest(&digest("secret-aaab")).unwrap(), None);
    assert_eq!(
        store.token_by_digest(&digest("SECRET-AAAA")).unwrap(),
        None,
        "lookup is case-sensitive"
    );
    let dup = store
        .create_token(spec("secret-aaaa", "bob", 0), T0)
        .unwrap_err();
    assert_eq!(dup.code(), "conflict");
    assert_eq!(store.token(9999).unwrap(), None);
}

/// Every token's digest is listed, each once, and a deleted token's no longer.
pub fn token_digests_list_every_token(store: &dyn TokenStore) {
    assert!(store.token_digests().unwrap().is_empty());
    let tokens: Vec<Token> = (0..3)
        .map(|i| {
            store
                .create_token(spec(&format!("secret-digest-{i}"), "u", 1), T0)
                .unwrap()
        })
        .collect();
    let mut listed = store.token_digests().unwrap();
    listed.sort_by_key(|d| d.0);
    let mut expected: Vec<SecretDigest> = (0..3)
        .map(|i| digest(&format!("secret-digest-{i}")))
        .collect();
    expected.sort_by_key(|d| d.0);
    assert_eq!(listed, expected);
    store.delete_token(tokens[0].id, T0).unwrap();
    let listed = store.token_digests().unwrap();
    assert_eq!(listed.len(), 2);
    assert!(!listed.contains(&digest("secret-digest-0")));
}

pub fn upsert_is_idempotent(store: &dyn TokenStore) {
    let (a, outcome) = store.upsert_token(spec("secret-up-1", "u", 1), T0).unwrap();
    assert_eq!(outcome, Upsert::Created);
    let later = T0.saturating_add(Duration::from_secs(5));
    let (b, outcome) = store
        .upsert_token(spec("secret-up-1", "u", 1), later)
        .unwrap();
    assert_eq!(outcome, Upsert::Unchanged);
    assert_eq!(a, b, "an unchanged upsert touches nothing");
    let (c, outcome) = store
        .upsert_token(spec("secret-up-1", "u", 3), later)
        .unwrap();
    assert_eq!(outcome, Upsert::Updated);
    assert_eq!(
        (c.id, c.max_sessions, c.updated_at, c.created_at),
        (a.id, 3, later, T0)
    );
}

pub fn listing_filters_and_pages(store: &dyn TokenStore) {
    for i in 0..5 {
        store
            .create_token(
                spec(&format!("secret-list-{i}"), &format!("team-{i}"), 0),
                T0,
            )
            .unwrap();
    }
    store
        .create_token(spec("secret-list-x", "other", 0), T0)
        .unwrap();
    let suspended = store
        .token_by_digest(&digest("secret-list-x"))
        .unwrap()
        .unwrap();
    let patch = TokenPatch {
        status: Some(TokenStatus::Suspended),
        ..Default::default()
    };
    store.update_token(suspended.id, patch, T0).unwrap();

    let all = store.list_tokens(&TokenFilter::default()).unwrap();
    assert_eq!(all.total, 6);
    let page = store
        .list_tokens(&TokenFilter {
            limit: 2,
            offset: 1,
            ..Default::default()
        })
        .unwrap();
    assert_eq!((page.total, page.items.len()), (6, 2));
    assert_eq!(page.items[0].id, all.items[1].id);
    let prefix = TokenFilter {
        user_id_prefix: Some("team-".into()),
        ..Default::default()
    };
    assert_eq!(store.list_tokens(&prefix).unwrap().total, 5);
    let wildcard = TokenFilter {
        user_id_prefix: Some("team%".into()),
        ..Default::default()
    };
    assert_eq!(
        store.list_tokens(&wildcard).unwrap().total,
        0,
        "the prefix is literal"
    );
    let by_status = TokenFilter {
        status: Some(TokenStatus::Suspended),
        ..Default::default()
    };
    assert_eq!(
        store.list_tokens(&by_status).unwrap().items[0].user_id,
        "other"
    );
    let by_user = TokenFilter {
        user_id: Some("team-3".into()),
        ..Default::default()
    };
    assert_eq!(store.list_tokens(&by_user).unwrap().total, 1);
}

pub fn update_validates_and_is_all_or_nothing(store: &dyn TokenStore) {
    let token = store
        .create_token(spec("secret-upd-1", "u", 1), T0)
        .unwrap();
    let later = T0.saturating_add(Duration::from_secs(1));
    let patch = TokenPatch {
        max_sessions: Some(4),
        allowed_ips: Some(vec!["10.0.0.0/8".into()]),
        ..Default::default()
    };
    let updated = store.update_token(token.id, patch, later).unwrap();
    assert_eq!((updated.max_sessions, updated.updated_at), (4, later));
    let bad = TokenPatch {
        max_sessions: Some(9),
        allowed_ips: Some(vec!["nope".into()]),
        ..Default::default()
    };
    assert_eq!(
        store
            .update_token(token.id, bad, later)
            .unwrap_err()
            .field(),
        Some("allowed_ips")
    );
    assert_eq!(
        store.token(token.id).unwrap().unwrap().max_sessions,
        4,
        "a failed patch changes nothing"
    );
    let missing = store
        .update_token(9999, TokenPatch::default(), later)
        .unwrap_err();
    assert_eq!(missing.code(), "not_found");
}

pub fn admission_limits_extends_and_expires(store: &dyn Store) {
    let token = store
        .create_token(spec("secret-adm-1", "u", 2), T0)
        .unwrap();
    let a = admit(store, &token, "id:a", T0);
    assert!(matches!(a, Admission::Admitted { .. }));
    assert!(matches!(
        admit(store, &token, "id:b", T0),
        Admission::Admitted { .. }
    ));
    assert_eq!(
        admit(store, &token, "id:c", T0),
        Admission::LimitReached { live: 2 }
    );
    // Re-checks of live sessions always pass, even at the limit.
    let t1 = T0.saturating_add(Duration::from_secs(200));
    let Admission::Admitted { session_id } = a else {
        unreachable!()
    };
    assert_eq!(
        admit(store, &token, "id:a", t1),
        Admission::Extended { session_id }
    );
    // b's lease (T0 + 210 s) runs out; a's was extended to t1 + 210 s.
    let t2 = T0.saturating_add(Duration::from_secs(211));
    assert!(matches!(
        admit(store, &token, "id:c", t2),
        Admission::Admitted { .. }
    ));
    assert_eq!(
        admit(store, &token, "id:b", t2),
        Admission::LimitReached { live: 2 }
    );
    let live = store
        .sessions(
            &SessionFilter {
                token_id: Some(token.id),
                ..Default::default()
            },
            t2,
        )
        .unwrap();
    assert_eq!(live.len(), 2);
    assert_eq!(
        store.purge_expired_sessions(t2).unwrap(),
        1,
        "b's dead lease is purged"
    );
    assert_eq!(store.purge_expired_sessions(t2).unwrap(), 0);
}

pub fn unlimited_admits_everyone(store: &dyn Store) {
    let token = store
        .create_token(spec("secret-unl-1", "u", 0), T0)
        .unwrap();
    for i in 0..50 {
        assert!(matches!(
            admit(store, &token, &format!("id:{i}"), T0),
            Admission::Admitted { .. }
        ));
    }
}

pub fn termination_frees_the_slot_and_refuses_the_session(store: &dyn Store) {
    let token = store
        .create_token(spec("secret-term-1", "u", 1), T0)
        .unwrap();
    let Admission::Admitted { session_id } = admit(store, &token, "id:a", T0) else {
        panic!("not admitted")
    };
    assert!(store
        .terminate_session(session_id, CloseReason::Terminated, T0)
        .unwrap());
    assert!(!store
        .terminate_session(9999, CloseReason::Terminated, T0)
        .unwrap());
    assert_eq!(
        admit(store, &token, "id:a", T0),
        Admission::Terminated { session_id }
    );
    assert!(
        matches!(admit(store, &token, "id:b", T0), Admission::Admitted { .. }),
        "slot freed"
    );
    // Once its lease has run out, the key may start afresh.
    let later = T0.saturating_add(LEASE);
    assert!(
        !store
            .terminate_session(session_id, CloseReason::Terminated, later)
            .unwrap(),
        "no longer live"
    );
    assert!(matches!(
        admit(store, &token, "id:a", later),
        Admission::Admitted { .. }
    ));
}

pub fn ending_a_session_frees_its_slot_without_after_effect(store: &dyn Store) {
    let token = store
        .create_token(spec("secret-end-1", "u", 1), T0)
        .unwrap();
    let Admission::Admitted { session_id } = admit(store, &token, "id:a", T0) else {
        panic!("not admitted")
    };
    assert!(store.end_session(session_id, T0).unwrap());
    assert!(!store.end_session(session_id, T0).unwrap());
    assert!(
        matches!(admit(store, &token, "id:b", T0), Admission::Admitted { .. }),
        "slot freed"
    );
    assert_eq!(
        admit(store, &token, "id:a", T0),
        Admission::LimitReached { live: 1 },
        "a is a stranger now, not terminated"
    );
}

pub fn deleting_a_token_ends_its_sessions(store: &dyn Store) {
    let token = store
        .create_token(spec("secret-del-1", "u", 1), T0)
        .unwrap();
    admit(store, &token, "id:a", T0);
    assert!(store.delete_token(token.id, T0).unwrap());
    assert!(!store.delete_token(token.id, T0).unwrap());
    assert_eq!(
        store.token_by_digest(&digest("secret-del-1")).unwrap(),
        None
    );
    assert!(store
        .sessions(&SessionFilter::default(), T0)
        .unwrap()
        .is_empty());
}

/// A claim for a token deleted since the caller looked it up (a cache a second behind) is
/// refused as holding no slot, never an error: a server failing open would turn an error into an
/// allow.
pub fn admission_for_a_deleted_token_is_refused(store: &dyn Store) {
    let token = store
        .create_token(spec("secret-gone-1", "u", 0), T0)
        .unwrap();
    assert!(store.delete_token(token.id, T0).unwrap());
    assert_eq!(
        admit(store, &token, "id:late", T0),
        Admission::LimitReached { live: 0 }
    );
    assert!(store
        .sessions(&SessionFilter::default(), T0)
        .unwrap()
        .is_empty());
}

pub fn session_filters(store: &dyn Store) {
    let a = store
        .create_token(spec("secret-sf-1", "alice", 0), T0)
        .unwrap();
    let b = store
        .create_token(spec("secret-sf-2", "bob", 0), T0)
        .unwrap();
    admit(store, &a, "id:1", T0);
    admit(store, &b, "id:2", T0);
    let by_user = SessionFilter {
        user_id: Some("bob".into()),
        ..Default::default()
    };
    let sessions = store.sessions(&by_user, T0).unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(
        (
            sessions[0].token_id,
            sessions[0].ip.as_str(),
            sessions[0].stream.as_str()
        ),
        (Some(b.id), "10.0.0.1", "live/one")
    );
    let by_stream = SessionFilter {
        stream: Some("live/one".into()),
        ..Default::default()
    };
    assert_eq!(store.sessions(&by_stream, T0).unwrap().len(), 2);
    let none = SessionFilter {
        stream: Some("other".into()),
        ..Default::default()
    };
    assert!(store.sessions(&none, T0).unwrap().is_empty());
}

/// A claim as a media server's adapter makes it: with its source and its own session id.
fn claim_from<'a>(
    token: &'a Token,
    key: &'a str,
    stream: &'a str,
    source: &'a str,
    media_session_id: Option<&'a str>,
) -> SessionClaim<'a> {
    SessionClaim {
        stream,
        proto: if source == "nginx-rtmp" {
            "rtmp"
        } else {
            "hls"
        },
        source,
        media_session_id,
        ..claim(token, key)
    }
}

fn admit_from(store: &dyn Store, claim: &SessionClaim<'_>, now: Timestamp) -> Admission {
    store
        .admit_session(claim, now, now.saturating_add(LEASE))
        .unwrap()
}

/// The registry: every session keeps the media server it is on and that server's own id;
/// listings filter by protocol and source; counts per stream and per user leave out
/// terminated sessions.
pub fn sessions_keep_their_source_filter_and_count(store: &dyn Store) {
    let a = store
        .create_token(spec("secret-reg-1", "alice", 0), T0)
        .unwrap();
    let b = store
        .create_token(spec("secret-reg-2", "bob", 0), T0)
        .unwrap();
    let rtmp = claim_from(&a, "id:41", "news", "nginx-rtmp", Some("41"));
    let Admission::Admitted { session_id } = admit_from(store, &rtmp, T0) else {
        panic!("not admitted")
    };
    admit_from(
        store,
        &claim_from(&a, "id:s1", "sports", "srs", Some("s1")),
        T0,
    );
    admit_from(
        store,
        &claim_from(&b, "addr:x", "news", "nginx-auth", None),
        T0,
    );
    let third = admit_from(
        store,
        &claim_from(&b, "id:m", "news", "mediamtx", Some("m")),
        T0,
    );
    let all = store.sessions(&SessionFilter::default(), T0).unwrap();
    assert_eq!(all.len(), 4);
    let first = all.iter().find(|s| s.id == session_id).unwrap();
    assert_eq!(
        (
            first.source.as_str(),
            first.media_session_id.as_deref(),
            first.proto.as_str()
        ),
        ("nginx-rtmp", Some("41"), "rtmp")
    );
    let auth = all.iter().find(|s| s.source == "nginx-auth").unwrap();
    assert_eq!(auth.media_session_id, None);
    let by_source = SessionFilter {
        source: Some("srs".into()),
        ..Default::default()
    };
    let srs = store.sessions(&by_source, T0).unwrap();
    assert_eq!(srs.len(), 1);
    assert_eq!(
        (srs[0].stream.as_str(), srs[0].media_session_id.as_deref()),
        ("sports", Some("s1"))
    );
    let by_proto = SessionFilter {
        proto: Some("rtmp".into()),
        ..Default::default()
    };
    assert_eq!(store.sessions(&by_proto, T0).unwrap().len(), 1);
    let by_id = SessionFilter {
        id: Some(session_id),
        ..Default::default()
    };
    let one = store.sessions(&by_id, T0).unwrap();
    assert_eq!(one.iter().map(|s| s.id).collect::<Vec<_>>(), [session_id]);
    let Admission::Admitted { session_id: third } = third else {
        panic!("not admitted")
    };
    assert!(store
        .terminate_session(third, CloseReason::Terminated, T0)
        .unwrap());
    let count = |key: &str, sessions| SessionCount {
        key: key.into(),
        sessions,
    };
    assert_eq!(
        store.session_counts(CountBy::Stream, T0).unwrap(),
        vec![count("news", 2), count("sports", 1)],
        "the terminated session holds no slot"
    );
    assert_eq!(
        store.session_counts(CountBy::UserId, T0).unwrap(),
        vec![count("alice", 2), count("bob", 1)]
    );
    let later = T0.saturating_add(LEASE);
    assert!(store
        .session_counts(CountBy::Stream, later)
        .unwrap()
        .is_empty());
}

/// Cutting: a cut by id terminates the session and, with a ban, refuses new sessions of the same
/// token on the same stream until the ban runs out (and no longer); group cuts take every live
/// session of a token, a user or a stream, once; bans are shared through the store and purged.
pub fn cuts_terminate_and_ban(store: &dyn Store) {
    let a = store
        .create_token(spec("secret-cut-1", "alice", 0), T0)
        .unwrap();
    let b = store
        .create_token(spec("secret-cut-2", "bob", 0), T0)
        .unwrap();
    let Admission::Admitted { session_id } = admit_from(
        store,
        &claim_from(&a, "id:7", "news", "nginx-rtmp", Some("7")),
        T0,
    ) else {
        panic!("not admitted")
    };
    let ban_until = T0.saturating_add(Duration::from_secs(60));
    let cut = store
        .cut_sessions(&Cut::Session(session_id), Some(ban_until), T0)
        .unwrap();
    assert_eq!(cut.len(), 1);
    assert_eq!(
        (
            cut[0].id,
            cut[0].source.as_str(),
            cut[0].media_session_id.as_deref()
        ),
        (session_id, "nginx-rtmp", Some("7"))
    );
    assert!(store
        .cut_sessions(&Cut::Session(9999), None, T0)
        .unwrap()
        .is_empty());
    assert_eq!(
        admit_from(
            store,
            &claim_from(&a, "id:7", "news", "nginx-rtmp", Some("7")),
            T0
        ),
        Admission::Terminated { session_id },
        "the cut session stays refused"
    );
    let soon = T0.saturating_add(Duration::from_secs(30));
    assert_eq!(
        admit_from(
            store,
            &claim_from(&a, "id:8", "news", "nginx-rtmp", Some("8")),
            soon
        ),
        Admission::Banned { until: ban_until },
        "a reconnect under a new id is refused while the ban holds"
    );
    assert!(
        matches!(
            admit_from(
                store,
                &claim_from(&a, "id:9", "sports", "nginx-rtmp", Some("9")),
                soon
            ),
            Admission::Admitted { .. }
        ),
        "the ban is for that stream only"
    );
    assert!(
        matches!(
            admit_from(
                store,
                &claim_from(&b, "id:8", "news", "nginx-rtmp", Some("8")),
                soon
            ),
            Admission::Admitted { .. }
        ),
        "and for that token only"
    );
    // A shorter ban does not shorten a longer one.
    store
        .ban(
            crate::session::SessionOwner::token(a.id),
            "news",
            T0.saturating_add(Duration::from_secs(10)),
        )
        .unwrap();
    assert_eq!(
        admit_from(
            store,
            &claim_from(&a, "id:10", "news", "srs", Some("10")),
            soon
        ),
        Admission::Banned { until: ban_until }
    );
    assert!(
        matches!(
            admit_from(
                store,
                &claim_from(&a, "id:10", "news", "srs", Some("10")),
                ban_until
            ),
            Admission::Admitted { .. }
        ),
        "the ban ends when it says"
    );

    // Group cuts: every live session of the user, then of a stream; a session already cut is
    // not cut again.
    let kicked = store
        .cut_sessions(&Cut::User("alice".into()), None, ban_until)
        .unwrap();
    let mut streams: Vec<&str> = kicked.iter().map(|s| s.stream.as_str()).collect();
    streams.sort_unstable();
    assert_eq!(streams, ["news", "sports"], "alice's two live sessions");
    assert!(store
        .cut_sessions(&Cut::Token(a.id), None, ban_until)
        .unwrap()
        .is_empty());
    let kicked = store
        .cut_sessions(&Cut::Stream("news".into()), None, ban_until)
        .unwrap();
    assert_eq!(
        kicked
            .iter()
            .map(|s| s.user_id.as_str())
            .collect::<Vec<_>>(),
        ["bob"]
    );
    assert!(store
        .sessions(&SessionFilter::default(), ban_until)
        .unwrap()
        .iter()
        .all(|s| s.terminated_at.is_some()));
    // Without a ban, a cut viewer may come back under a new id at once.
    assert!(matches!(
        admit_from(
            store,
            &claim_from(&b, "id:11", "news", "srs", Some("11")),
            ban_until
        ),
        Admission::Admitted { .. }
    ));
    // Expired bans are purged with expired sessions, and a purge keeps live bans.
    let long = ban_until.saturating_add(Duration::from_secs(3600));
    store
        .ban(crate::session::SessionOwner::token(b.id), "sports", long)
        .unwrap();
    store
        .purge_expired_sessions(ban_until.saturating_add(LEASE))
        .unwrap();
    assert_eq!(
        admit_from(
            store,
            &claim_from(&b, "id:12", "sports", "srs", None),
            ban_until.saturating_add(LEASE)
        ),
        Admission::Banned { until: long }
    );
}

/// `on_limit`: kept with the token, and `evict_oldest` admits a new session at the limit by
/// terminating the oldest live one, in the same atomic step; `reject_new` refuses as always.
pub fn evict_oldest_makes_room_by_cutting_the_oldest(store: &dyn Store) {
    use crate::token::OnLimit;
    let token = store
        .create_token(
            TokenSpec {
                on_limit: Some(OnLimit::EvictOldest),
                ..spec_of("secret-evict-1", "alice", 2)
            }
            .validate(&hasher())
            .unwrap()
            .0,
            T0,
        )
        .unwrap();
    assert_eq!(token.on_limit, OnLimit::EvictOldest);
    assert_eq!(
        store.token(token.id).unwrap().unwrap().on_limit,
        OnLimit::EvictOldest
    );
    let evicting = |key: &'static str| SessionClaim {
        evict_oldest: true,
        ..claim(&token, key)
    };
    let at = |s: u64| T0.saturating_add(Duration::from_secs(s));
    let Admission::Admitted { session_id: first } = admit_from(store, &evicting("id:1"), at(0))
    else {
        panic!("not admitted")
    };
    let Admission::Admitted { session_id: second } = admit_from(store, &evicting("id:2"), at(1))
    else {
        panic!("not admitted")
    };
    // The first re-checks later than the second started: still the oldest by start.
    admit_from(store, &evicting("id:1"), at(2));
    let Admission::Evicted {
        session_id: third,
        evicted,
    } = admit_from(store, &evicting("id:3"), at(3))
    else {
        panic!("not evicted")
    };
    assert_eq!(evicted, first);
    assert_eq!(
        admit_from(store, &evicting("id:1"), at(4)),
        Admission::Terminated { session_id: first },
        "the evicted session is refused"
    );
    assert_eq!(
        admit_from(store, &evicting("id:2"), at(4)),
        Admission::Extended { session_id: second }
    );
    assert_eq!(
        admit_from(store, &claim(&token, "id:4"), at(5)),
        Admission::LimitReached { live: 2 },
        "without evict_oldest the limit refuses"
    );
    let Admission::Evicted { evicted, .. } = admit_from(store, &evicting("id:4"), at(5)) else {
        panic!("not evicted")
    };
    assert_eq!(evicted, second);
    // Above a lowered limit one eviction would not make room: refused.
    let lowered = SessionClaim {
        max_sessions: 1,
        ..evicting("id:5")
    };
    assert_eq!(
        admit_from(store, &lowered, at(6)),
        Admission::LimitReached { live: 2 }
    );
    let live: Vec<i64> = store
        .sessions(&SessionFilter::default(), at(6))
        .unwrap()
        .into_iter()
        .filter(|s| s.terminated_at.is_none())
        .map(|s| s.id)
        .collect();
    assert_eq!(live.len(), 2);
    assert!(live.contains(&third));
    let patched = store
        .update_token(
            token.id,
            TokenPatch {
                on_limit: Some(OnLimit::RejectNew),
                ..Default::default()
            },
            at(7),
        )
        .unwrap();
    assert_eq!(patched.on_limit, OnLimit::RejectNew);
    assert_eq!(
        store.token(token.id).unwrap().unwrap().on_limit,
        OnLimit::RejectNew
    );
}

pub fn access_logs_filter_page_and_count(store: &dyn Store) {
    let entry =
        |n: u64, result: AccessResult, reason: Option<&'static str>, stream: &str| AccessLogEntry {
            at: T0.saturating_add(Duration::from_secs(n)),
            token_id: Some(n as i64),
            token_prefix: Some("abc".into()),
            user_id: Some(format!("user-{}", n % 2)),
            stream: stream.into(),
            ip: "::1".into(),
            proto: "hls".into(),
            request_type: "new_session",
            session_id: None,
            result,
            reason,
            latency_us: 12,
        };
    store
        .append_access_logs(&[
            entry(1, AccessResult::Allowed, None, "news"),
            entry(2, AccessResult::Denied, Some("token_not_found"), "news"),
            entry(3, AccessResult::Denied, Some("ip_not_allowed"), "sports"),
            entry(4, AccessResult::Denied, Some("ip_not_allowed"), "news"),
        ])
        .unwrap();
    let all = store.access_logs(&AccessLogFilter::default()).unwrap();
    assert_eq!(all.total, 4);
    let order: Vec<_> = all.items.iter().map(|r| r.entry.token_id).collect();
    assert_eq!(order, [Some(4), Some(3), Some(2), Some(1)], "newest first");
    let page = store
        .access_logs(&AccessLogFilter {
            limit: 2,
            offset: 1,
            ..Default::default()
        })
        .unwrap();
    assert_eq!((page.total, page.items[0].entry.token_id), (4, Some(3)));
    let count = |f: AccessLogFilter| store.access_logs(&f).unwrap().total;
    assert_eq!(
        count(AccessLogFilter {
            result: Some(AccessResult::Denied),
            ..Default::default()
        }),
        3
    );
    assert_eq!(
        count(AccessLogFilter {
            reason: Some("ip_not_allowed".into()),
            ..Default::default()
        }),
        2
    );
    assert_eq!(
        count(AccessLogFilter {
            user_id: Some("user-1".into()),
            ..Default::default()
        }),
        2
    );
    assert_eq!(
        count(AccessLogFilter {
            stream: Some("sports".into()),
            ..Default::default()
        }),
        1
    );
    assert_eq!(
        count(AccessLogFilter {
            token_id: Some(2),
            ..Default::default()
        }),
        1
    );
    let window = AccessLogFilter {
        since: Some(T0.saturating_add(Duration::from_secs(2))),
        until: Some(T0.saturating_add(Duration::from_secs(4))),
        ..Default::default()
    };
    assert_eq!(count(window), 2, "since is inclusive, until exclusive");

    let stats = store
        .access_stats(
            T0.saturating_add(Duration::from_secs(2)),
            T0.saturating_add(Duration::from_secs(5)),
            T0,
        )
        .unwrap();
    assert_eq!((stats.allowed, stats.denied), (0, 3));
    assert_eq!(stats.denied_by_reason.get("ip_not_allowed"), Some(&2));
    assert_eq!(stats.denied_by_reason.get("token_not_found"), Some(&1));

    // Retention: records before the cut go, later ones stay, and new ids never repeat.
    let cut = T0.saturating_add(Duration::from_secs(3));
    assert_eq!(store.purge_access_logs(cut).unwrap(), 2);
    assert_eq!(store.purge_access_logs(cut).unwrap(), 0);
    store
        .append_access_logs(&[entry(5, AccessResult::Allowed, None, "news")])
        .unwrap();
    let kept = store.access_logs(&AccessLogFilter::default()).unwrap();
    let kept: Vec<_> = kept
        .items
        .iter()
        .map(|r| (r.id, r.entry.token_id))
        .collect();
    assert_eq!(kept.len(), 3);
    assert_eq!(
        kept[1..],
        [(all.items[0].id, Some(4)), (all.items[1].id, Some(3))]
    );
    assert!(kept[0].0 > all.items[0].id, "{kept:?}");
}

pub fn stats_count_live_sessions_per_stream(store: &dyn Store) {
    let token = store
        .create_token(spec("secret-stats-1", "u", 0), T0)
        .unwrap();
    admit(store, &token, "id:a", T0);
    admit(store, &token, "id:b", T0);
    let Admission::Admitted { session_id } = admit(store, &token, "id:c", T0) else {
        panic!()
    };
    store
        .terminate_session(session_id, CloseReason::Terminated, T0)
        .unwrap();
    let stats = store.access_stats(T0, T0, T0).unwrap();
    assert_eq!(stats.live_sessions, 2, "a terminated session holds no slot");
    assert_eq!(stats.live_sessions_by_stream.get("live/one"), Some(&2));
    let later = store
        .access_stats(T0, T0, T0.saturating_add(LEASE))
        .unwrap();
    assert_eq!(later.live_sessions, 0);
}

/// A store for one test, with whatever must live as long as it (a temporary folder).
pub struct Held<S> {
    store: Arc<S>,
    _guard: Option<Box<dyn std::any::Any>>,
}

impl<S> Held<S> {
    pub fn store(&self) -> &S {
        self.store.as_ref()
    }

    pub fn shared(&self) -> Arc<S> {
        Arc::clone(&self.store)
    }
}

/// A store paired with a guard that must outlive it.
pub struct Guarded<G, S>(pub G, pub S);

/// What a suite's store expression may make: a store, or a [`Guarded`] one.
pub trait IntoHeld {
    type Store;
    fn into_held(self) -> Held<Self::Store>;
}

impl<S: TokenStore> IntoHeld for S {
    type Store = S;
    fn into_held(self) -> Held<S> {
        Held {
            store: Arc::new(self),
            _guard: None,
        }
    }
}

impl<G: 'static, S: TokenStore> IntoHeld for Guarded<G, S> {
    type Store = S;
    fn into_held(self) -> Held<S> {
        Held {
            store: Arc::new(self.1),
            _guard: Some(Box::new(self.0)),
        }
    }
}

pub fn held<M: IntoHeld>(make: M) -> Held<M::Store> {
    make.into_held()
}

/// Many threads race `new_session` for one token through the store: exactly `max` win.
pub fn concurrent_admission_never_over_admits(store: Arc<dyn Store>) {
    const MAX: i64 = 3;
    const THREADS: usize = 16;
    const PER_THREAD: usize = 25;
    let token = Arc::new(
        store
            .create_token(spec("secret-race-1", "u", MAX), T0)
            .unwrap(),
    );
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (store, token, barrier) =
                (Arc::clone(&store), Arc::clone(&token), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                (0..PER_THREAD)
                    .filter(|i| {
                        let key = format!("id:{t}-{i}");
                        matches!(
                            admit(store.as_ref(), &token, &key, T0),
                            Admission::Admitted { .. }
                        )
                    })
                    .count()
            })
        })
        .collect();
    let admitted: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(admitted, MAX as usize);
    let live = store
        .sessions(
            &SessionFilter {
                token_id: Some(token.id),
                ..Default::default()
            },
            T0,
        )
        .unwrap();
    assert_eq!(live.len(), MAX as usize);
}

pub fn token_generation_moves_on_every_token_write(store: &dyn Store) {
    let mut last = store.token_generation().unwrap();
    let mut assert_moved = |what: &str| {
        let now = store.token_generation().unwrap();
        assert_ne!(now, last, "{what} did not move the generation");
        last = now;
        now
    };
    let token = store
        .create_token(spec("secret-gen-1", "u", 1), T0)
        .unwrap();
    assert_moved("create");
    store
        .upsert_token(spec("secret-gen-1", "u", 2), T0)
        .unwrap();
    assert_moved("upsert");
    let patch = TokenPatch {
        max_sessions: Some(3),
        ..Default::default()
    };
    store.update_token(token.id, patch, T0).unwrap();
    let after_update = assert_moved("update");
    admit(store, &token, "id:a", T0);
    assert_eq!(
        store.token_generation().unwrap(),
        after_update,
        "session writes leave it alone"
    );
    store.delete_token(token.id, T0).unwrap();
    assert_moved("delete");
}

pub fn ping_answers(store: &dyn Store) {
    store.ping().unwrap();
}

// --- Signed tokens ---

fn signed_claim<'a>(
    owner: crate::session::SessionOwner,
    key: &'a str,
    max: u32,
) -> SessionClaim<'a> {
    SessionClaim {
        owner,
        key,
        max_sessions: max,
        user_id: "ticket-holder",
        stream: "conf/main",
        ip: IpAddr::from([10, 0, 0, 9]),
        proto: "hls",
        source: "",
        media_session_id: None,
        evict_oldest: false,
    }
}

/// A signed token's sessions go through the same admission as a stored token's, with no token
/// row: limited, extended, terminated, listed, and kept apart from other owners.
pub fn signed_token_sessions_are_limited_without_a_token_row(store: &dyn Store) {
    use crate::session::SessionOwner;
    let owner = SessionOwner::signed(b"tag-one");
    let other = SessionOwner::signed(b"tag-two");
    let lease = T0.saturating_add(LEASE);
    let first = match store
        .admit_session(&signed_claim(owner, "id:a", 1), T0, lease)
        .unwrap()
    {
        Admission::Admitted { session_id } => session_id,
        other => panic!("expected admission, got {other:?}"),
    };
    assert_eq!(
        store
            .admit_session(&signed_claim(owner, "id:a", 1), T0, lease)
            .unwrap(),
        Admission::Extended { session_id: first }
    );
    assert!(matches!(
        store
            .admit_session(&signed_claim(owner, "id:b", 1), T0, lease)
            .unwrap(),
        Admission::LimitReached { live: 1 }
    ));
    assert!(matches!(
        store
            .admit_session(&signed_claim(other, "id:b", 1), T0, lease)
            .unwrap(),
        Admission::Admitted { .. }
    ));
    // A stored token's sessions do not count against a signed token's, nor the reverse.
    let token = store
        .create_token(spec("secret-signed-1", "u", 1), T0)
        .unwrap();
    assert!(matches!(
        admit(store, &token, "id:a", T0),
        Admission::Admitted { .. }
    ));
    let listed = store
        .sessions(
            &SessionFilter {
                user_id: Some("ticket-holder".into()),
                ..Default::default()
            },
            T0,
        )
        .unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|s| s.token_id.is_none()));
    assert_eq!(listed[0].id, first);
    assert_eq!(listed[0].owner, owner);
    assert!(store
        .terminate_session(first, CloseReason::Terminated, T0)
        .unwrap());
    assert_eq!(
        store
            .admit_session(&signed_claim(owner, "id:a", 1), T0, lease)
            .unwrap(),
        Admission::Terminated { session_id: first }
    );
    assert!(
        matches!(
            store
                .admit_session(&signed_claim(owner, "id:b", 1), T0, lease)
                .unwrap(),
            Admission::Admitted { .. }
        ),
        "termination freed the slot"
    );
    let later = lease.saturating_add(Duration::from_secs(1));
    assert!(store.purge_expired_sessions(later).unwrap() >= 3);
    assert!(matches!(
        store
            .admit_session(
                &signed_claim(owner, "id:c", 1),
                later,
                later.saturating_add(LEASE)
            )
            .unwrap(),
        Admission::Admitted { .. }
    ));
}

/// Many threads race for one signed token's slots: exactly `max` win, as for a stored token.
pub fn concurrent_signed_admission_never_over_admits(store: Arc<dyn Store>) {
    const MAX: u32 = 2;
    const THREADS: usize = 12;
    let owner = crate::session::SessionOwner::signed(b"raced-tag");
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                (0..10)
                    .filter(|i| {
                        let key = format!("id:{t}-{i}");
                        matches!(
                            store
                                .admit_session(
                                    &signed_claim(owner, &key, MAX),
                                    T0,
                                    T0.saturating_add(LEASE)
                                )
                                .unwrap(),
                            Admission::Admitted { .. }
                        )
                    })
                    .count()
            })
        })
        .collect();
    let admitted: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(admitted, MAX as usize);
}

/// Signed token revocations: stored for every node, each moving the mark; lapsed ones are
/// neither listed nor kept; the mark never comes back to a value seen with other rows behind it.
pub fn signed_revocations_move_the_mark_and_lapse(store: &dyn Store) {
    use crate::signed_token::revocations::{Revocation, Revoked};
    let revocation = |revoked, minutes: u64| Revocation {
        revoked,
        until: T0.saturating_add(Duration::from_secs(60 * minutes)),
    };
    let start = store.signed_revocation_mark().unwrap();
    assert!(store.signed_revocations(T0).unwrap().is_empty());
    let group = revocation(Revoked::Group("ticket:7".into()), 10);
    let token = revocation(Revoked::Token("jti-1".into()), 20);
    store.revoke_signed(&group).unwrap();
    let first = store.signed_revocation_mark().unwrap();
    assert!(first > start);
    store.revoke_signed(&token).unwrap();
    let second = store.signed_revocation_mark().unwrap();
    assert!(second > first);
    assert_eq!(
        store.signed_revocations(T0).unwrap(),
        [group.clone(), token.clone()]
    );
    let at_10 = T0.saturating_add(Duration::from_secs(600));
    let in_force = store.signed_revocations(at_10).unwrap();
    assert_eq!(in_force, std::slice::from_ref(&token));
    assert_eq!(store.purge_signed_revocations(at_10).unwrap(), 1);
    assert_eq!(store.signed_revocations(T0).unwrap(), [token]);
    store
        .revoke_signed(&revocation(Revoked::Token("jti-2".into()), 30))
        .unwrap();
    assert!(store.signed_revocation_mark().unwrap() > second);
}

pub fn signing_keys_persist_retire_and_never_reuse_ids(store: &dyn Store) {
    use crate::signed_token::keys::KeyVault;
    use crate::signed_token::{Algorithm, Claims, Kind, Rejection};
    let vault = KeyVault::new(&hasher()).unwrap();
    assert!(store.signing_keys().unwrap().is_empty());
    let later = T0.saturating_add(Duration::from_secs(5));
    let ed = vault.generate("ed-1", Algorithm::Ed25519, later).unwrap();
    let mac = vault.generate("mac-1", Algorithm::Hs256, T0).unwrap();
    store.insert_signing_key(&ed).unwrap();
    store.insert_signing_key(&mac).unwrap();
    assert_eq!(
        store.signing_keys().unwrap(),
        vec![mac.clone(), ed.clone()],
        "oldest first"
    );
    let again = vault.generate("ed-1", Algorithm::Hs256, later).unwrap();
    let err = store.insert_signing_key(&again).unwrap_err();
    assert_eq!((err.code(), err.field()), ("conflict", Some("kid")));
    let mut bad = mac.clone();
    bad.kid = "no.dots".into();
    assert_eq!(
        store.insert_signing_key(&bad).unwrap_err().field(),
        Some("kid")
    );

    let ring = vault.ring(&store.signing_keys().unwrap()).unwrap();
    let claims = Claims::new("u", T0, Duration::from_secs(60));
    let token = ring.sign("ed-1", &claims).unwrap();
    assert!(ring.verify(&token, T0, Kind::Playback, None, None).is_ok());

    assert!(store.retire_signing_key("ed-1", later).unwrap());
    let much_later = later.saturating_add(Duration::from_secs(60));
    assert!(store.retire_signing_key("ed-1", much_later).unwrap());
    assert!(!store.retire_signing_key("nope", later).unwrap());
    let keys = store.signing_keys().unwrap();
    assert_eq!(
        keys[1].retired_at,
        Some(later),
        "the first retirement stands"
    );
    assert_eq!(keys[0].retired_at, None);
    let ring = vault.ring(&keys).unwrap();
    assert_eq!(
        ring.verify(&token, T0, Kind::Playback, None, None),
        Err(Rejection::UnknownKey)
    );
    assert_eq!(
        store.insert_signing_key(&again).unwrap_err().code(),
        "conflict",
        "a retired id is never reused"
    );
}

/// Every algorithm a key may have is stored and read back as it was: an ES256 key (JWKS-
/// published) signs after a round trip through the store.
pub fn every_key_algorithm_round_trips(store: &dyn Store) {
    use crate::signed_token::keys::KeyVault;
    use crate::signed_token::{Algorithm, Claims, Kind};
    let vault = KeyVault::new(&hasher()).unwrap();
    for (i, algorithm) in [Algorithm::Hs256, Algorithm::Ed25519, Algorithm::Es256]
        .into_iter()
        .enumerate()
    {
        let kid = format!("round-trip-{i}");
        let at = T0.saturating_add(Duration::from_secs(i as u64));
        let key = vault.generate(&kid, algorithm, at).unwrap();
        store.insert_signing_key(&key).unwrap();
        let stored = store.signing_keys().unwrap();
        assert_eq!(stored.last(), Some(&key), "{algorithm:?}");
        let ring = vault.ring(&stored).unwrap();
        let token = ring
            .sign(&kid, &Claims::new("u", T0, Duration::from_secs(60)))
            .unwrap();
        assert!(
            ring.verify(&token, T0, Kind::Playback, None, None).is_ok(),
            "{algorithm:?}"
        );
    }
}

// --- Event tickets: accounts, events, rosters, tickets, revoked access tokens ---

#[cfg(feature = "tickets")]
use crate::account::{AccountPatch, NewAccount, Role};
#[cfg(feature = "tickets")]
use crate::event::{EventFilter, EventPatch, NewEvent, RosterRole};
#[cfg(feature = "tickets")]
use crate::ticket::{CodeAttempt, CodeLock, NewTicket, TicketUse, TicketingStore};

#[cfg(feature = "tickets")]
pub fn new_account(name: &str) -> NewAccount {
    NewAccount {
        username: name.into(),
        email: format!("{name}@example.org"),
        first_name: "First".into(),
        last_name: name.to_uppercase(),
        role: Role::User,
        password_hash: "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA".into(),
    }
}

#[cfg(feature = "tickets")]
pub fn new_event(title: &str, capacity: u32, starts_in_hours: u64) -> NewEvent {
    NewEvent {
        title: title.into(),
        starts_at: T0.saturating_add(Duration::from_secs(3600 * starts_in_hours)),
        ends_at: T0.saturating_add(Duration::from_secs(3600 * (starts_in_hours + 2))),
        capacity,
        streams: vec!["conf/*".into()],
        single_entry: true,
    }
}

#[cfg(feature = "tickets")]
pub fn accounts_are_unique_by_username_and_email(store: &dyn TicketingStore) {
    let alice = store.create_account(new_account("alice"), T0).unwrap();
    assert_eq!(store.account(alice.id).unwrap().as_ref(), Some(&alice));
    assert_eq!(
        store.account_by_username("alice").unwrap().as_ref(),
        Some(&alice)
    );
    assert_eq!(store.account_by_username("bob").unwrap(), None);
    assert_eq!(store.account(alice.id + 100).unwrap(), None);
    let err = store.create_account(new_account("alice"), T0).unwrap_err();
    assert_eq!((err.code(), err.field()), ("conflict", Some("username")));
    let mut same_mail = new_account("alice2");
    same_mail.email = "alice@example.org".into();
    let err = store.create_account(same_mail, T0).unwrap_err();
    assert_eq!((err.code(), err.field()), ("conflict", Some("email")));

    let bob = store.create_account(new_account("bob"), T0).unwrap();
    assert_ne!(bob.id, alice.id);
    let err = store
        .update_account(
            bob.id,
            AccountPatch {
                email: Some("alice@example.org".into()),
                ..Default::default()
            },
            T0,
        )
        .unwrap_err();
    assert_eq!(err.field(), Some("email"));
    let later = T0.saturating_add(Duration::from_secs(1));
    let bob = store
        .update_account(
            bob.id,
            AccountPatch {
                email: Some("bob@example.net".into()),
                role: Some(Role::Agent),
                password_hash: Some("$argon2id$new".into()),
                ..Default::default()
            },
            later,
        )
        .unwrap();
    assert_eq!((bob.role, bob.updated_at), (Role::Agent, later));
    assert_eq!(store.account(bob.id).unwrap().as_ref(), Some(&bob));
    assert_eq!(
        store.account(bob.id).unwrap().unwrap().password_hash,
        "$argon2id$new"
    );
    // A password change is dated (access tokens before it are refused); other changes are not.
    assert_eq!(bob.password_changed_at, Some(later));
    let rename = AccountPatch {
        first_name: Some("Robert".into()),
        ..Default::default()
    };
    let renamed = store
        .update_account(bob.id, rename, later.saturating_add(Duration::from_secs(9)))
        .unwrap();
    assert_eq!(renamed.password_changed_at, Some(later));
    assert_eq!(
        store
            .account(alice.id)
            .unwrap()
            .unwrap()
            .password_changed_at,
        None
    );
    let missing = store.update_account(9999, AccountPatch::default(), T0);
    assert_eq!(missing.unwrap_err().code(), "not_found");
}

#[cfg(feature = "tickets")]
pub fn events_search_page_and_change(store: &dyn TicketingStore) {
    let late = store
        .create_event(new_event("RustConf Late", 10, 5), T0)
        .unwrap();
    let early = store
        .create_event(new_event("rustconf EARLY", 10, 1), T0)
        .unwrap();
    store
        .create_event(new_event("Other meetup", 10, 3), T0)
        .unwrap();
    assert_eq!(store.event(late.id).unwrap().as_ref(), Some(&late));
    assert_eq!(store.event(9999).unwrap(), None);
    let all = store.list_events(&EventFilter::default()).unwrap();
    assert_eq!(all.total, 3);
    let found = store
        .list_events(&EventFilter {
            title: Some("RUSTconf".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(found.total, 2, "case-insensitive substring");
    assert_eq!(
        found.items.iter().map(|e| e.id).collect::<Vec<_>>(),
        [early.id, late.id],
        "by start"
    );
    let page = store
        .list_events(&EventFilter {
            title: Some("rustconf".into()),
            limit: 1,
            offset: 1,
        })
        .unwrap();
    assert_eq!((page.total, page.items.len()), (2, 1));
    assert_eq!(page.items[0].id, late.id);
    let none = store
        .list_events(&EventFilter {
            title: Some("%".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(none.total, 0, "no wildcard characters in a search");

    let later = T0.saturating_add(Duration::from_secs(1));
    let changed = store
        .update_event(
            late.id,
            &EventPatch {
                title: Some("Renamed".into()),
                single_entry: Some(false),
                streams: Some(vec!["a".into(), "b/*".into()]),
                ..Default::default()
            },
            later,
        )
        .unwrap();
    assert_eq!(changed.title, "Renamed");
    assert_eq!(store.event(late.id).unwrap().as_ref(), Some(&changed));
    assert!(!changed.single_entry);
    assert_eq!(changed.updated_at, later);
    let found = store
        .list_events(&EventFilter {
            title: Some("renamed".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(found.total, 1, "the search follows the new title");
    let bad = store.update_event(
        late.id,
        &EventPatch {
            ends_at: Some(T0),
            ..Default::default()
        },
        later,
    );
    assert_eq!(bad.unwrap_err().field(), Some("ends_at"));
    assert_eq!(
        store.event(late.id).unwrap().as_ref(),
        Some(&changed),
        "all or nothing"
    );
    let missing = store.update_event(9999, &EventPatch::default(), later);
    assert_eq!(missing.unwrap_err().code(), "not_found");
}

#[cfg(feature = "tickets")]
pub fn rosters_hold_capacity_and_standing(store: &dyn TicketingStore) {
    let event = store.create_event(new_event("Small", 2, 1), T0).unwrap();
    let ids: Vec<_> = (0..4)
        .map(|i| {
            store
                .create_account(new_account(&format!("member{i}")), T0)
                .unwrap()
                .id
        })
        .collect();
    assert!(store
        .add_to_roster(event.id, ids[0], RosterRole::Users, T0)
        .unwrap());
    assert!(
        !store
            .add_to_roster(event.id, ids[0], RosterRole::Users, T0)
            .unwrap(),
        "already"
    );
    assert!(store
        .add_to_roster(event.id, ids[1], RosterRole::Users, T0)
        .unwrap());
    let err = store
        .add_to_roster(event.id, ids[2], RosterRole::Users, T0)
        .unwrap_err();
    assert_eq!((err.code(), err.field()), ("conflict", Some("capacity")));
    assert!(
        !store
            .add_to_roster(event.id, ids[1], RosterRole::Users, T0)
            .unwrap(),
        "full, but already on it"
    );
    assert!(
        store
            .add_to_roster(event.id, ids[2], RosterRole::Agents, T0)
            .unwrap(),
        "staff do not count"
    );
    assert!(store
        .add_to_roster(event.id, ids[3], RosterRole::Admins, T0)
        .unwrap());
    assert!(store
        .add_to_roster(event.id, ids[3], RosterRole::Agents, T0)
        .unwrap());
    assert_eq!(store.event(event.id).unwrap().unwrap().registered, 2);

    let users = store.roster(event.id, RosterRole::Users, 0, 0).unwrap();
    assert_eq!(users.total, 2);
    assert_eq!(
        users.items.iter().map(|e| e.account_id).collect::<Vec<_>>(),
        [ids[0], ids[1]]
    );
    assert_eq!(users.items[0].username, "member0");
    assert_eq!(users.items[0].last_name, "MEMBER0");
    let page = store.roster(event.id, RosterRole::Users, 1, 1).unwrap();
    assert_eq!((page.total, page.items[0].account_id), (2, ids[1]));
    assert_eq!(
        store
            .roster(event.id, RosterRole::Agents, 0, 0)
            .unwrap()
            .total,
        2
    );
    assert_eq!(
        store
            .roster(9999, RosterRole::Users, 0, 0)
            .unwrap_err()
            .code(),
        "not_found"
    );

    let standing = store.roster_standing(event.id, ids[3]).unwrap();
    assert_eq!(
        (standing.attendee, standing.agent, standing.admin),
        (false, true, true)
    );
    let standing = store.roster_standing(event.id, ids[0]).unwrap();
    assert_eq!(
        (standing.attendee, standing.agent, standing.admin),
        (true, false, false)
    );
    assert_eq!(
        store.roster_standing(event.id, 9999).unwrap(),
        Default::default()
    );
    let standings = store.standings_of(ids[3]).unwrap();
    assert_eq!(
        standings.len(),
        1,
        "one entry per event, whatever the rosters"
    );
    assert_eq!(standings[0].0, event.id);
    assert_eq!(
        (
            standings[0].1.attendee,
            standings[0].1.agent,
            standings[0].1.admin
        ),
        (false, true, true)
    );
    assert_eq!(store.standings_of(9999).unwrap(), []);

    let err = store
        .add_to_roster(9999, ids[0], RosterRole::Users, T0)
        .unwrap_err();
    assert_eq!(err.code(), "not_found");
    let err = store
        .add_to_roster(event.id, 9999, RosterRole::Agents, T0)
        .unwrap_err();
    assert_eq!(err.code(), "not_found");
    let shrink = store.update_event(
        event.id,
        &EventPatch {
            capacity: Some(1),
            ..Default::default()
        },
        T0,
    );
    assert_eq!(
        shrink.unwrap_err().field(),
        Some("capacity"),
        "below the registered count"
    );
}

/// Many threads race to register for an event with few places: exactly `capacity` get in.
#[cfg(feature = "tickets")]
pub fn concurrent_registrations_never_exceed_capacity(store: Arc<dyn TicketingStore>) {
    const CAPACITY: u32 = 3;
    const THREADS: usize = 8;
    let event = store
        .create_event(new_event("Race", CAPACITY, 1), T0)
        .unwrap();
    let ids: Vec<_> = (0..THREADS)
        .map(|i| {
            store
                .create_account(new_account(&format!("racer{i}")), T0)
                .unwrap()
                .id
        })
        .collect();
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = ids
        .into_iter()
        .map(|id| {
            let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                store.add_to_roster(event.id, id, RosterRole::Users, T0)
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let admitted = results.iter().filter(|r| matches!(r, Ok(true))).count();
    let full = results
        .iter()
        .filter(|r| matches!(r, Err(e) if e.field() == Some("capacity")))
        .count();
    assert_eq!(
        (admitted, full),
        (CAPACITY as usize, THREADS - CAPACITY as usize)
    );
    assert_eq!(
        store.event(event.id).unwrap().unwrap().registered,
        u64::from(CAPACITY)
    );
}

#[cfg(feature = "tickets")]
pub fn one_live_ticket_per_holder_and_revocation(store: &dyn TicketingStore) {
    let event = store.create_event(new_event("Tickets", 5, 1), T0).unwrap();
    let holder = store.create_account(new_account("holder"), T0).unwrap();
    let new = |salt: u8| NewTicket {
        event_id: event.id,
        holder_id: holder.id,
        salt: [salt; 16],
    };
    let ticket = store.create_ticket(new(1), T0).unwrap();
    assert_eq!(store.ticket(ticket.id).unwrap().as_ref(), Some(&ticket));
    assert_eq!(ticket.salt, [1; 16]);
    assert_eq!((ticket.revoked_at, ticket.checked_in_at), (None, None));
    let err = store.create_ticket(new(2), T0).unwrap_err();
    assert_eq!((err.code(), err.field()), ("conflict", Some("ticket")));
    let later = T0.saturating_add(Duration::from_secs(5));
    assert!(store.revoke_ticket(ticket.id, later).unwrap());
    assert!(store
        .revoke_ticket(ticket.id, T0.saturating_add(Duration::from_secs(9)))
        .unwrap());
    assert_eq!(
        store.ticket(ticket.id).unwrap().unwrap().revoked_at,
        Some(later),
        "the first time stays"
    );
    assert!(!store.revoke_ticket(9999, later).unwrap());
    let again = store.create_ticket(new(3), later).unwrap();
    assert_ne!(
        again.id, ticket.id,
        "a new ticket once the old one is revoked"
    );
    let held = store.holder_tickets(holder.id).unwrap();
    assert_eq!(
        held.iter()
            .map(|t| (t.id, t.revoked_at))
            .collect::<Vec<_>>(),
        [(ticket.id, Some(later)), (again.id, None)],
        "revoked ones too, by id"
    );
    assert_eq!(store.holder_tickets(9999).unwrap(), []);
    assert_eq!(store.ticket(9999).unwrap(), None);
    let err = store
        .create_ticket(
            NewTicket {
                event_id: 9999,
                ..new(4)
            },
            T0,
        )
        .unwrap_err();
    assert_eq!(err.code(), "not_found");
}

#[cfg(feature = "tickets")]
pub fn door_steps_are_accepted_once(store: &dyn TicketingStore) {
    let single = store.create_event(new_event("Once", 5, 1), T0).unwrap();
    let mut multi = new_event("Many", 5, 1);
    multi.single_entry = false;
    let multi = store.create_event(multi, T0).unwrap();
    let holder = store.create_account(new_account("guest"), T0).unwrap();
    let agent = store.create_account(new_account("door"), T0).unwrap();
    let ticket_for = |event_id| {
        store
            .create_ticket(
                NewTicket {
                    event_id,
                    holder_id: holder.id,
                    salt: [7; 16],
                },
                T0,
            )
            .unwrap()
    };
    let (once, many) = (ticket_for(single.id), ticket_for(multi.id));
    let t1 = T0.saturating_add(Duration::from_secs(60));
    let t2 = T0.saturating_add(Duration::from_secs(90));
    assert_eq!(
        store
            .use_ticket(once.id, 100, Some(agent.id), true, t1)
            .unwrap(),
        TicketUse::Accepted { first_entry: true }
    );
    let stored = store.ticket(once.id).unwrap().unwrap();
    assert_eq!(
        (stored.checked_in_at, stored.checked_in_by),
        (Some(t1), Some(agent.id))
    );
    assert_eq!(
        store.use_ticket(once.id, 100, None, true, t2).unwrap(),
        TicketUse::Reused
    );
    assert_eq!(
        store.use_ticket(once.id, 101, None, true, t2).unwrap(),
        TicketUse::AlreadyCheckedIn { at: t1 }
    );
    assert_eq!(
        store.use_ticket(once.id, 101, None, true, t2).unwrap(),
        TicketUse::Reused,
        "the step was consumed"
    );

    assert_eq!(
        store.use_ticket(many.id, 100, None, false, t1).unwrap(),
        TicketUse::Accepted { first_entry: true }
    );
    assert_eq!(
        store.use_ticket(many.id, 101, None, false, t2).unwrap(),
        TicketUse::Accepted { first_entry: false }
    );
    assert_eq!(
        store.use_ticket(many.id, 101, None, false, t2).unwrap(),
        TicketUse::Reused
    );
    assert_eq!(
        store.ticket(many.id).unwrap().unwrap().checked_in_at,
        Some(t1),
        "the first entry stays"
    );

    store.revoke_ticket(many.id, t2).unwrap();
    assert_eq!(
        store.use_ticket(many.id, 102, None, false, t2).unwrap(),
        TicketUse::Revoked
    );
    assert_eq!(
        store.use_ticket(9999, 1, None, true, t2).unwrap(),
        TicketUse::NotFound
    );

    // Old steps are forgotten once no code of theirs can match again; recent ones stay.
    let now = Timestamp::from_unix_seconds(103 * 30);
    assert_eq!(store.purge_ticket_state(now).unwrap(), 0);
    let far = now.saturating_add(crate::ticket::TICKET_USE_RETENTION + Duration::from_secs(60));
    assert!(store.purge_ticket_state(far).unwrap() >= 4);
}

/// A ticket for a new holder of a new event.
#[cfg(feature = "tickets")]
fn lone_ticket(store: &dyn TicketingStore, title: &str, holder: &str) -> crate::ticket::Ticket {
    let event = store.create_event(new_event(title, 5, 1), T0).unwrap();
    let holder = store.create_account(new_account(holder), T0).unwrap();
    let new = NewTicket {
        event_id: event.id,
        holder_id: holder.id,
        salt: [1; 16],
    };
    store.create_ticket(new, T0).unwrap()
}

/// What 8 threads, started together, each get from `call`: as many doors (or nodes) at once.
#[cfg(feature = "tickets")]
fn at_once<T: Send + 'static>(
    store: &Arc<dyn TicketingStore>,
    call: impl Fn(&dyn TicketingStore) -> T + Send + Sync + Copy + 'static,
) -> Vec<T> {
    const THREADS: usize = 8;
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let (store, barrier) = (Arc::clone(store), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                call(store.as_ref())
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

/// Wrong door codes lock a ticket after `after` in a row, until the lock ends or is lifted; an
/// accepted code starts the count again; a burst gets no more than `after` codes weighed.
#[cfg(feature = "tickets")]
pub fn door_codes_lock_a_ticket_after_wrong_ones(store: Arc<dyn TicketingStore>) {
    let ticket = lone_ticket(store.as_ref(), "Guessed", "target");
    let lock = CodeLock {
        after: 3,
        lasts: Duration::from_secs(600),
    };
    let counted = |locks| CodeAttempt::Counted { locks };
    let attempt = |at| store.count_code_attempt(ticket.id, lock, at).unwrap();
    assert_eq!(attempt(T0), counted(false));
    assert_eq!(attempt(T0), counted(false));
    // A right code in between starts the count again.
    assert!(matches!(
        store.use_ticket(ticket.id, 7, None, false, T0).unwrap(),
        TicketUse::Accepted { .. }
    ));
    assert_eq!(attempt(T0), counted(false));
    assert_eq!(attempt(T0), counted(false));
    assert_eq!(attempt(T0), counted(true), "the third in a row locks");
    let until = T0.saturating_add(lock.lasts);
    let t1 = T0.saturating_add(Duration::from_secs(599));
    assert_eq!(attempt(t1), CodeAttempt::Locked { until });
    // The lock ends by itself, with a fresh count.
    assert_eq!(attempt(until), counted(false));
    assert_eq!(attempt(until), counted(false));
    assert_eq!(attempt(until), counted(true));
    assert_eq!(
        attempt(until),
        CodeAttempt::Locked {
            until: until.saturating_add(lock.lasts)
        }
    );
    // Or an event admin lifts it.
    assert!(store.unlock_ticket(ticket.id).unwrap());
    assert_eq!(attempt(until), counted(false));
    assert!(!store.unlock_ticket(9999).unwrap());
    assert_eq!(
        store.count_code_attempt(9999, lock, T0).unwrap(),
        CodeAttempt::NotFound
    );

    // A burst from many threads (or nodes) gets exactly `after` attempts counted.
    store.unlock_ticket(ticket.id).unwrap();
    let attempts = at_once(&store, move |store| {
        store.count_code_attempt(ticket.id, lock, T0).unwrap()
    });
    let weighed = attempts
        .iter()
        .filter(|a| matches!(a, CodeAttempt::Counted { .. }))
        .count();
    assert_eq!(weighed, 3, "{attempts:?}");
}

/// One code (ticket, step) presented at several doors at once: exactly one is accepted.
#[cfg(feature = "tickets")]
pub fn concurrent_uses_of_one_code_accept_once(store: Arc<dyn TicketingStore>) {
    let ticket = lone_ticket(store.as_ref(), "Doors", "rusher");
    let uses = at_once(&store, move |store| {
        store.use_ticket(ticket.id, 42, None, true, T0).unwrap()
    });
    let accepted = uses
        .iter()
        .filter(|u| matches!(u, TicketUse::Accepted { .. }))
        .count();
    assert_eq!(accepted, 1, "{uses:?}");
    assert!(uses
        .iter()
        .all(|u| matches!(u, TicketUse::Accepted { .. } | TicketUse::Reused)));
}

#[cfg(feature = "tickets")]
pub fn revoked_access_tokens_are_kept_until_they_expire(store: &dyn TicketingStore) {
    let exp = T0.saturating_add(Duration::from_secs(3600));
    assert!(!store.access_token_revoked("jti-1").unwrap());
    store.revoke_access_token("jti-1", exp).unwrap();
    store.revoke_access_token("jti-1", exp).unwrap();
    assert!(store.access_token_revoked("jti-1").unwrap());
    assert!(!store.access_token_revoked("jti-2").unwrap());
    assert_eq!(store.purge_ticket_state(T0).unwrap(), 0);
    assert!(store.access_token_revoked("jti-1").unwrap());
    assert_eq!(store.purge_ticket_state(exp).unwrap(), 1);
    assert!(!store.access_token_revoked("jti-1").unwrap());
}

// hooks: allowed_actions
pub fn allowed_actions_persist_and_update(store: &dyn TokenStore) {
    use crate::token::Action;
    let viewer = store
        .create_token(spec("secret-act-1", "v", 0), T0)
        .unwrap();
    assert!(viewer.allowed_actions.allows(Action::Play));
    assert!(!viewer.allowed_actions.allows(Action::Publish));
    let (key, _) = TokenSpec {
        token: Some("secret-act-2".into()),
        user_id: "p".into(),
        allowed_actions: Some(vec![Action::Publish]),
        ..Default::default()
    }
    .validate(&hasher())
    .unwrap();
    let key = store.create_token(key, T0).unwrap();
    let read = store
        .token_by_digest(&digest("secret-act-2"))
        .unwrap()
        .unwrap();
    assert!(read.allowed_actions.allows(Action::Publish));
    assert!(!read.allowed_actions.allows(Action::Play));
    assert_eq!(store.token(key.id).unwrap().as_ref(), Some(&key));

    let patch = TokenPatch {
        allowed_actions: Some(vec![Action::Play, Action::Publish]),
        ..Default::default()
    };
    let both = store.update_token(viewer.id, patch, T0).unwrap();
    assert!(both.allowed_actions.allows(Action::Publish));
    assert_eq!(store.token(viewer.id).unwrap().as_ref(), Some(&both));
    // An empty set is refused and changes nothing.
    let empty = TokenPatch {
        allowed_actions: Some(vec![]),
        ..Default::default()
    };
    let err = store.update_token(viewer.id, empty, T0).unwrap_err();
    assert_eq!(err.field(), Some("allowed_actions"));
    assert_eq!(store.token(viewer.id).unwrap().as_ref(), Some(&both));
}

/// The [`TokenStore`] tests, for a store of tokens alone (or a wrapper of one).
#[macro_export]
macro_rules! token_suite {
    ($make:expr) => {
        use $crate::store::testkit as c;

        #[test]
        fn tokens_round_trip() {
            c::tokens_round_trip(c::held($make).store());
        }
        #[test]
        fn upsert_is_idempotent() {
            c::upsert_is_idempotent(c::held($make).store());
        }
        #[test]
        fn token_digests_list_every_token() {
            c::token_digests_list_every_token(c::held($make).store());
        }
        #[test]
        fn listing_filters_and_pages() {
            c::listing_filters_and_pages(c::held($make).store());
        }
        #[test]
        fn update_validates_and_is_all_or_nothing() {
            c::update_validates_and_is_all_or_nothing(c::held($make).store());
        }
        #[test]
        fn allowed_actions_persist_and_update() {
            c::allowed_actions_persist_and_update(c::held($make).store());
        }
    };
}

/// Every test of the core concerns (tokens, sessions, access log, signing keys, health), for a
/// [`Store`].
#[macro_export]
macro_rules! store_suite {
    ($make:expr) => {
        $crate::token_suite!($make);

        #[test]
        fn token_generation_moves_on_every_token_write() {
            c::token_generation_moves_on_every_token_write(c::held($make).store());
        }
        #[test]
        fn admission_limits_extends_and_expires() {
            c::admission_limits_extends_and_expires(c::held($make).store());
        }
        #[test]
        fn unlimited_admits_everyone() {
            c::unlimited_admits_everyone(c::held($make).store());
        }
        #[test]
        fn termination_frees_the_slot_and_refuses_the_session() {
            c::termination_frees_the_slot_and_refuses_the_session(c::held($make).store());
        }
        #[test]
        fn deleting_a_token_ends_its_sessions() {
            c::deleting_a_token_ends_its_sessions(c::held($make).store());
        }
        #[test]
        fn session_filters() {
            c::session_filters(c::held($make).store());
        }
        #[test]
        fn admission_for_a_deleted_token_is_refused() {
            c::admission_for_a_deleted_token_is_refused(c::held($make).store());
        }
        #[test]
        fn sessions_keep_their_source_filter_and_count() {
            c::sessions_keep_their_source_filter_and_count(c::held($make).store());
        }
        #[test]
        fn cuts_terminate_and_ban() {
            c::cuts_terminate_and_ban(c::held($make).store());
        }
        #[test]
        fn evict_oldest_makes_room_by_cutting_the_oldest() {
            c::evict_oldest_makes_room_by_cutting_the_oldest(c::held($make).store());
        }
        #[test]
        fn access_logs_filter_page_and_count() {
            c::access_logs_filter_page_and_count(c::held($make).store());
        }
        #[test]
        fn stats_count_live_sessions_per_stream() {
            c::stats_count_live_sessions_per_stream(c::held($make).store());
        }
        #[test]
        fn concurrent_admission_never_over_admits() {
            c::concurrent_admission_never_over_admits(c::held($make).shared());
        }
        #[test]
        fn ending_a_session_frees_its_slot_without_after_effect() {
            c::ending_a_session_frees_its_slot_without_after_effect(c::held($make).store());
        }
        #[test]
        fn ping_answers() {
            c::ping_answers(c::held($make).store());
        }
        #[test]
        fn signed_token_sessions_are_limited_without_a_token_row() {
            c::signed_token_sessions_are_limited_without_a_token_row(c::held($make).store());
        }
        #[test]
        fn concurrent_signed_admission_never_over_admits() {
            c::concurrent_signed_admission_never_over_admits(c::held($make).shared());
        }
        #[test]
        fn every_key_algorithm_round_trips() {
            c::every_key_algorithm_round_trips(c::held($make).store());
        }
        #[test]
        fn signing_keys_persist_retire_and_never_reuse_ids() {
            c::signing_keys_persist_retire_and_never_reuse_ids(c::held($make).store());
        }
        #[test]
        fn changes_queue_their_webhook_messages() {
            c::changes_queue_their_webhook_messages(c::held($make).store());
        }
        #[test]
        fn deliveries_are_leased_retried_and_removed() {
            c::deliveries_are_leased_retried_and_removed(c::held($make).store());
        }
        #[test]
        fn concurrent_claims_never_share_a_delivery() {
            c::concurrent_claims_never_share_a_delivery(c::held($make).shared());
        }
        #[test]
        fn signed_revocations_move_the_mark_and_lapse() {
            c::signed_revocations_move_the_mark_and_lapse(c::held($make).store());
        }
    };
}

/// The ticketing tests (accounts, events and rosters, tickets, revocations), for a
/// [`TicketingStore`](crate::ticket::TicketingStore).
#[cfg(feature = "tickets")]
#[macro_export]
macro_rules! ticketing_suite {
    ($make:expr) => {
        use $crate::store::testkit as t;

        #[test]
        fn accounts_are_unique_by_username_and_email() {
            t::accounts_are_unique_by_username_and_email(t::held($make).store());
        }
        #[test]
        fn events_search_page_and_change() {
            t::events_search_page_and_change(t::held($make).store());
        }
        #[test]
        fn rosters_hold_capacity_and_standing() {
            t::rosters_hold_capacity_and_standing(t::held($make).store());
        }
        #[test]
        fn concurrent_registrations_never_exceed_capacity() {
            t::concurrent_registrations_never_exceed_capacity(t::held($make).shared());
        }
        #[test]
        fn check_ins_queue_a_webhook_message() {
            t::check_ins_queue_a_webhook_message(t::held($make).store());
        }
        #[test]
        fn one_live_ticket_per_holder_and_revocation() {
            t::one_live_ticket_per_holder_and_revocation(t::held($make).store());
        }
        #[test]
        fn door_steps_are_accepted_once() {
            t::door_steps_are_accepted_once(t::held($make).store());
        }
        #[test]
        fn concurrent_uses_of_one_code_accept_once() {
            t::concurrent_uses_of_one_code_accept_once(t::held($make).shared());
        }
        #[test]
        fn door_codes_lock_a_ticket_after_wrong_ones() {
            t::door_codes_lock_a_ticket_after_wrong_ones(t::held($make).shared());
        }
        #[test]
        fn revoked_access_tokens_are_kept_until_they_expire() {
            t::revoked_access_tokens_are_kept_until_they_expire(t::held($make).store());
        }
    };
}

/// Every delivery queued for the first endpoint, as `(type, data)`, claimed at `now`.
fn queued_messages(store: &dyn WebhookStore, now: Timestamp) -> Vec<(String, serde_json::Value)> {
    let mut claimed = store
        .claim_deliveries(now, 1000, now.saturating_add(Duration::from_secs(1)))
        .unwrap();
    claimed.sort_by_key(|delivery| delivery.id);
    for delivery in &claimed {
        store
            .reschedule_delivery(delivery.id, now, "put back for the next look")
            .unwrap();
    }
    claimed
        .into_iter()
        .map(|delivery| {
            let body: serde_json::Value = serde_json::from_str(&delivery.body).unwrap();
            assert!(delivery.message_id.starts_with("msg_"));
            assert_eq!(delivery.url, "http://127.0.0.1:9/all");
            assert!(delivery.secret.expose().starts_with("whsec_"));
            (
                body["type"].as_str().unwrap().to_owned(),
                body["data"].clone(),
            )
        })
        .collect()
}

/// Each change queues its message, in the change's own write, only for endpoints that receive
/// it: token writes, admissions, evictions, and each way a session ends; `access.denied` only
/// for an endpoint that names it.
pub fn changes_queue_their_webhook_messages(store: &dyn Store) {
    let quiet = store
        .create_token(spec("secret-hook-quiet", "q", 0), T0)
        .unwrap();
    let Admission::Admitted { session_id: quiet } = admit(store, &quiet, "id:quiet", T0) else {
        panic!("not admitted")
    };
    assert_eq!(store.pending_deliveries().unwrap(), 0, "nobody subscribed");

    let all = NewWebhook::new("http://127.0.0.1:9/all".into(), vec![], "all".into()).unwrap();
    let all = store.create_webhook(all, T0).unwrap();
    let denied_only = NewWebhook::new(
        "http://127.0.0.1:9/denied".into(),
        vec![MessageKind::AccessDenied],
        String::new(),
    )
    .unwrap();
    let denied_only = store.create_webhook(denied_only, T0).unwrap();
    assert_eq!(
        store.webhooks().unwrap(),
        vec![all.clone(), denied_only.clone()]
    );
    assert!(all.receives(MessageKind::SessionOpened));
    assert!(!all.receives(MessageKind::AccessDenied));

    let token = store
        .create_token(spec("secret-hook-a", "alice", 1), T0)
        .unwrap();
    let patch = crate::token::TokenPatch {
        on_limit: Some(crate::token::OnLimit::EvictOldest),
        ..Default::default()
    };
    let token = store.update_token(token.id, patch, T0).unwrap();
    let Admission::Admitted { session_id: first } = admit(store, &token, "id:first", T0) else {
        panic!("not admitted")
    };
    let mut evicting = claim(&token, "id:second");
    evicting.evict_oldest = true;
    let Admission::Evicted {
        session_id: second,
        evicted,
    } = store
        .admit_session(&evicting, T0, T0.saturating_add(LEASE))
        .unwrap()
    else {
        panic!("not evicted")
    };
    assert_eq!(evicted, first);
    assert!(store
        .end_session_by_key(
            crate::session::SessionOwner::token(token.id),
            "id:second",
            T0
        )
        .unwrap());
    let Admission::Admitted { session_id: third } = admit(store, &token, "id:third", T0) else {
        panic!("not admitted")
    };
    assert!(store
        .terminate_session(third, CloseReason::Kicked, T0)
        .unwrap());
    assert!(
        store
            .terminate_session(third, CloseReason::Terminated, T0)
            .unwrap(),
        "still live, told of once"
    );
    let Admission::Admitted { session_id: fourth } = admit(store, &token, "id:fourth", T0) else {
        panic!("not admitted")
    };
    let later = T0
        .saturating_add(LEASE)
        .saturating_add(Duration::from_secs(1));
    store.purge_expired_sessions(later).unwrap();
    let Admission::Admitted { session_id: fifth } = admit(store, &token, "id:fifth", later) else {
        panic!("not admitted")
    };
    assert!(store.delete_token(token.id, later).unwrap());

    let messages = queued_messages(store, later);
    let told: Vec<(&str, Option<i64>, Option<&str>)> = messages
        .iter()
        .map(|(kind, data)| {
            (
                kind.as_str(),
                data["session_id"].as_i64(),
                data["reason"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        told,
        vec![
            ("token.created", None, None),
            ("token.updated", None, None),
            ("session.opened", Some(first), None),
            ("session.opened", Some(second), None),
            ("session.closed", Some(first), Some("evicted")),
            ("session.closed", Some(second), Some("done")),
            ("session.opened", Some(third), None),
            ("session.closed", Some(third), Some("kicked")),
            ("session.opened", Some(fourth), None),
            // Opened before anyone listened; its end is told all the same.
            ("session.closed", Some(quiet), Some("expired")),
            ("session.closed", Some(fourth), Some("expired")),
            ("session.opened", Some(fifth), None),
            ("session.closed", Some(fifth), Some("terminated")),
            ("token.deleted", None, None),
        ]
    );
    let opened = &messages[2].1;
    assert_eq!(opened["token_id"], token.id);
    assert_eq!(opened["user_id"], "alice");
    assert_eq!(opened["stream"], "live/one");
    assert_eq!(opened["ip"], "10.0.0.1");
    assert_eq!(messages[10].1["duration_seconds"], LEASE.as_secs() + 1);
    assert!(messages
        .iter()
        .all(|(_, data)| !data.to_string().contains("secret-hook")));

    let denied = Message::new(MessageKind::AccessDenied, later, serde_json::json!({})).unwrap();
    assert_eq!(
        store.enqueue(&denied).unwrap(),
        1,
        "only the endpoint naming it"
    );
    assert_eq!(store.pending_deliveries().unwrap(), 15);
    assert!(store.delete_webhook(denied_only.id).unwrap());
    assert!(!store.delete_webhook(denied_only.id).unwrap());
    assert_eq!(
        store.pending_deliveries().unwrap(),
        14,
        "its deliveries went with it"
    );
}

/// One endpoint for every default kind, and `messages` messages queued for it.
fn subscribe_and_queue(store: &dyn Store, messages: i64) {
    let webhook = NewWebhook::new("http://127.0.0.1:9/all".into(), vec![], String::new()).unwrap();
    store.create_webhook(webhook, T0).unwrap();
    for n in 0..messages {
        let message = Message::new(
            MessageKind::TokenDeleted,
            T0,
            serde_json::json!({ "id": n }),
        );
        store.enqueue(&message.unwrap()).unwrap();
    }
}

/// A claim leases deliveries: not claimed again until the lease runs out; a failure counts an
/// attempt and makes it due later; a removed delivery is gone.
pub fn deliveries_are_leased_retried_and_removed(store: &dyn Store) {
    subscribe_and_queue(store, 3);
    let lease = T0.saturating_add(Duration::from_secs(8));
    let first = store.claim_deliveries(T0, 2, lease).unwrap();
    assert_eq!(first.len(), 2);
    assert_eq!(first[0].attempts, 0);
    let second = store.claim_deliveries(T0, 10, lease).unwrap();
    assert_eq!(second.len(), 1, "the first two are leased");
    assert!(store.claim_deliveries(T0, 10, lease).unwrap().is_empty());
    // The worker holding the first two died: they come back once the lease runs out.
    let again = store
        .claim_deliveries(lease, 10, lease.saturating_add(Duration::from_secs(8)))
        .unwrap();
    let ids = |deliveries: &[Delivery]| deliveries.iter().map(|d| d.id).collect::<Vec<_>>();
    let mut expected = ids(&first);
    expected.extend(ids(&second));
    assert_eq!(ids(&again), expected);
    let retry = lease.saturating_add(Duration::from_secs(5));
    store
        .reschedule_delivery(again[0].id, retry, "503")
        .unwrap();
    store.remove_delivery(again[1].id).unwrap();
    assert_eq!(store.pending_deliveries().unwrap(), 2);
    let at_retry = store
        .claim_deliveries(retry, 10, retry.saturating_add(Duration::from_secs(8)))
        .unwrap();
    assert_eq!(
        ids(&at_retry),
        vec![again[0].id],
        "the third is still leased"
    );
    assert_eq!(at_retry[0].attempts, 1);
    assert_eq!(at_retry[0].body, again[0].body);
    assert_eq!(
        at_retry[0].message_id, again[0].message_id,
        "the same id on every retry"
    );
}

/// Workers claiming at once (threads here; nodes on a shared database) never claim one
/// delivery twice, and together claim every one.
pub fn concurrent_claims_never_share_a_delivery(store: Arc<dyn Store>) {
    const MESSAGES: i64 = 200;
    subscribe_and_queue(store.as_ref(), MESSAGES);
    let lease = T0.saturating_add(Duration::from_secs(8));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                let mut mine = Vec::new();
                loop {
                    let claimed = store.claim_deliveries(T0, 7, lease).unwrap();
                    if claimed.is_empty() {
                        return mine;
                    }
                    mine.extend(claimed.into_iter().map(|delivery| delivery.id));
                }
            })
        })
        .collect();
    let mut all: Vec<i64> = workers
        .into_iter()
        .flat_map(|worker| worker.join().unwrap())
        .collect();
    let claimed = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), claimed, "a delivery was claimed twice");
    assert_eq!(claimed as i64, MESSAGES);
}

/// An accepted door check queues `ticket.checked_in` in the same write.
#[cfg(feature = "tickets")]
pub fn check_ins_queue_a_webhook_message<S: TicketingStore + WebhookStore>(store: &S) {
    let webhook = NewWebhook::new("http://127.0.0.1:9/all".into(), vec![], String::new()).unwrap();
    store.create_webhook(webhook, T0).unwrap();
    let event = store.create_event(new_event("Hooked", 5, 1), T0).unwrap();
    let holder = store.create_account(new_account("hooked"), T0).unwrap();
    let ticket = store
        .create_ticket(
            NewTicket {
                event_id: event.id,
                holder_id: holder.id,
                salt: [3; 16],
            },
            T0,
        )
        .unwrap();
    assert_eq!(
        store.use_ticket(ticket.id, 100, None, true, T0).unwrap(),
        TicketUse::Accepted { first_entry: true }
    );
    assert!(matches!(
        store.use_ticket(ticket.id, 101, None, true, T0).unwrap(),
        TicketUse::AlreadyCheckedIn { .. }
    ));
    let messages = queued_messages(store, T0);
    assert_eq!(messages.len(), 1, "refused checks tell nothing");
    let (kind, data) = &messages[0];
    assert_eq!(kind, "ticket.checked_in");
    assert_eq!(data["ticket_id"], ticket.id);
    assert_eq!(data["event_id"], event.id);
    assert_eq!(data["holder_id"], holder.id);
    assert_eq!(data["first_entry"], true);
}
