//! The shared conformance suite over this backend, and what only this backend promises.

use crate::prelude::*;
use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Once, OnceLock};

use super::*;
use crate::store::testkit::{self as c, spec, T0};

/// The database the tests use; [`DEFAULT_URL`] when unset.
const URL_VAR: &str = "AUTH_TEST_POSTGRES_URL";
/// The PostgreSQL server this project's machines run locally (trust auth, database `test`).
const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// `skip` turns "no usable server" from a failure into a skip.
const SKIP_VAR: &str = "AUTH_TEST_POSTGRES";
const LEASE: Duration = Duration::from_secs(210);

/// The server's URL if it answers. Without one the tests fail, unless
/// `AUTH_TEST_POSTGRES=skip`: then they return at once, and the skip is reported once per
/// test binary on the real stderr (not the captured one, so it shows in a normal run).
pub(super) fn server() -> Option<&'static str> {
    static PROBE: OnceLock<std::result::Result<String, String>> = OnceLock::new();
    let probe = PROBE.get_or_init(|| {
        let url = std::env::var(URL_VAR)
            .ok()
            .filter(|url| !url.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_URL.to_owned());
        let mut config: Config = url
            .parse()
            .map_err(|e| format!("{URL_VAR} is not a PostgreSQL URL: {e}"))?;
        // Names the server tried in the messages below.
        let url_var = format!("{url} ({URL_VAR}, default {DEFAULT_URL})");
        config.connect_timeout(Duration::from_secs(3));
        let mut client = config
            .connect(NoTls)
            .map_err(|e| format!("cannot connect to {url_var}: {}", Error::from(e)))?;
        client
            .simple_query("SELECT 1")
            .map_err(|e| format!("no answer from {url_var}: {}", Error::from(e)))?;
        Ok(url)
    });
    match probe {
        Ok(url) => Some(url),
        Err(why) if std::env::var(SKIP_VAR).as_deref() == Ok("skip") => {
            static REPORTED: Once = Once::new();
            REPORTED.call_once(|| {
                let _ = writeln!(
                    std::io::stderr(),
                    "skipped: PostgreSQL tests ({SKIP_VAR}=skip)\n  ({why})"
                );
            });
            None
        }
        Err(why) => panic!(
            "the PostgreSQL tests need a server: {why}. Set {URL_VAR} (e.g. \
             postgres://postgres@127.0.0.1:5432/test), or set {SKIP_VAR}=skip to skip them"
        ),
    }
}

/// A schema no other test (or earlier run) uses: pid, a counter and random bits.
fn unique_schema() -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let mut random = [0u8; 4];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random).unwrap();
    format!(
        "auth_test_{}_{}_{:08x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        u32::from_be_bytes(random)
    )
}

/// A test's schema, dropped with everything in it when the test ends (after its stores).
pub(super) struct Scratch {
    url: &'static str,
    schema: String,
}

impl Scratch {
    fn new() -> Option<Self> {
        Some(Scratch {
            url: server()?,
            schema: unique_schema(),
        })
    }

    pub(super) fn open(&self) -> PostgresStore {
        PostgresStore::open_in_schema(self.url, &self.schema).unwrap()
    }

    pub(super) fn client(&self) -> ::postgres::Client {
        let mut client = ::postgres::Client::connect(self.url, NoTls).unwrap();
        client
            .batch_execute(&format!("SET search_path TO {}", self.schema))
            .unwrap();
        client
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let dropped = ::postgres::Client::connect(self.url, NoTls).and_then(|mut client| {
            client.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema))
        });
        if let Err(err) = dropped {
            let _ = writeln!(
                std::io::stderr(),
                "could not drop test schema {}: {err}",
                self.schema
            );
        }
    }
}

/// A store in a fresh schema, or `None` when the tests are skipped.
pub(super) fn fresh() -> Option<(Scratch, PostgresStore)> {
    let scratch = Scratch::new()?;
    let store = scratch.open();
    Some((scratch, store))
}

/// The shared suite, each test on a store in its own schema.
mod conformance {
    use super::fresh;

    crate::store_suite!({
        let Some((scratch, store)) = fresh() else {
            return;
        };
        crate::store::testkit::Guarded(scratch, store)
    });
    #[cfg(feature = "tickets")]
    crate::ticketing_suite!({
        let Some((scratch, store)) = fresh() else {
            return;
        };
        crate::store::testkit::Guarded(scratch, store)
    });
}

pub(super) fn claim<'a>(token: &'a Token, key: &'a str) -> SessionClaim<'a> {
    SessionClaim {
        owner: crate::session::SessionOwner::token(token.id),
        key,
        max_sessions: token.max_sessions,
        user_id: &token.user_id,
        stream: "live/one",
        ip: std::net::IpAddr::from([10, 0, 0, 1]),
        proto: "hls",
        source: "",
        media_session_id: None,
        evict_oldest: false,
    }
}

/// Migration 3 gives sessions an owner: live sessions of a database made before it keep
/// their ids and slots, and deleting their token still removes them.
#[test]
fn sessions_survive_the_owner_migration() {
    let Some(scratch) = Scratch::new() else {
        return;
    };
    let lease = crate::store::testkit::T0.saturating_add(std::time::Duration::from_secs(210));
    {
        let mut client = scratch.client();
        client
            .batch_execute(&format!(r#"CREATE SCHEMA "{}""#, scratch.schema))
            .unwrap();
        client
            .batch_execute(&format!("SET search_path TO {}", scratch.schema))
            .unwrap();
        client
            .batch_execute(
                "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, \
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
            )
            .unwrap();
        for (index, sql) in MIGRATIONS[..2].iter().enumerate() {
            client.batch_execute(sql).unwrap();
            client
                .execute(
                    "INSERT INTO schema_migrations (version) VALUES ($1)",
                    &[&(index as i32 + 1)],
                )
                .unwrap();
        }
        client
            .batch_execute(&format!(
                "INSERT INTO tokens (id, token_hash, token_prefix, user_id, status, max_sessions, \
                 created_at, updated_at) VALUES (7, '\\x00', 'ab', 'u', 'active', 1, 0, 0);
                 INSERT INTO sessions (id, token_id, session_key, user_id, stream, ip, proto, \
                 started_at, last_seen, expires_at) \
                 VALUES (41, 7, 'id:a', 'u', 's', '10.0.0.1', 'hls', 0, 0, {});",
                lease.unix_micros()
            ))
            .unwrap();
    }
    let store = scratch.open();
    let t0 = crate::store::testkit::T0;
    let sessions = store.sessions(&Default::default(), t0).unwrap();
    assert_eq!(
        (sessions.len(), sessions[0].id, sessions[0].token_id),
        (1, 41, Some(7))
    );
    let claim = |key| SessionClaim {
        owner: SessionOwner::token(7),
        key,
        max_sessions: 1,
        user_id: "u",
        stream: "s",
        ip: std::net::IpAddr::from([10, 0, 0, 1]),
        proto: "hls",
        source: "",
        media_session_id: None,
        evict_oldest: false,
    };
    assert!(matches!(
        store.admit_session(&claim("id:a"), t0, lease).unwrap(),
        Admission::Extended { session_id: 41 }
    ));
    assert!(matches!(
        store.admit_session(&claim("id:b"), t0, lease).unwrap(),
        Admission::LimitReached { live: 1 }
    ));
    assert!(store.delete_token(7, t0).unwrap());
    assert!(store.sessions(&Default::default(), t0).unwrap().is_empty());
}

// hooks: allowed_actions
#[test]
fn a_token_row_written_without_allowed_actions_may_only_play() {
    // What the migration gives existing rows: PostgreSQL fills them with the column's
    // DEFAULT, the same one a writer that knows nothing of the column gets.
    use crate::token::Action;
    let Some(scratch) = Scratch::new() else {
        return;
    };
    let store = scratch.open();
    scratch
        .client()
        .batch_execute(
            "INSERT INTO tokens (token_hash, token_prefix, user_id, status, created_at,
                                 updated_at)
                 VALUES (decode(repeat('07', 32), 'hex'), 'old', 'legacy', 'active', 0, 0);",
        )
        .unwrap();
    let tokens = store.list_tokens(&TokenFilter::default()).unwrap().items;
    assert_eq!(tokens.len(), 1);
    assert!(tokens[0].allowed_actions.allows(Action::Play));
    assert!(!tokens[0].allowed_actions.allows(Action::Publish));
}

#[test]
fn two_nodes_racing_admissions_never_over_admit() {
    const MAX: i64 = 3;
    const THREADS: usize = 24;
    const PER_THREAD: usize = 15;
    const ROUNDS: u32 = 3;
    let Some(scratch) = Scratch::new() else {
        return;
    };
    // Two stores, two pools: what two auth-server processes on one database are.
    let nodes: [Arc<PostgresStore>; 2] = [Arc::new(scratch.open()), Arc::new(scratch.open())];
    let token = Arc::new(
        nodes[0]
            .create_token(spec("secret-two-nodes-1", "u", MAX), T0)
            .unwrap(),
    );
    for round in 0..ROUNDS {
        // Each round starts after the previous round's leases ran out.
        let now = T0.saturating_add(LEASE * round);
        let barrier = Arc::new(Barrier::new(THREADS));
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let node = Arc::clone(&nodes[t % 2]);
                let (token, barrier) = (Arc::clone(&token), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    let mut admitted = Vec::new();
                    for i in 0..PER_THREAD {
                        let key = format!("id:{round}-{t}-{i}");
                        let answer = node
                            .admit_session(&claim(&token, &key), now, now.saturating_add(LEASE))
                            .unwrap();
                        match answer {
                            Admission::Admitted { .. } => admitted.push(key),
                            Admission::LimitReached { live } => assert_eq!(live, MAX as u32),
                            other => panic!("unexpected {other:?}"),
                        }
                    }
                    admitted
                })
            })
            .collect();
        let admitted: Vec<String> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        assert_eq!(admitted.len(), MAX as usize, "round {round}: {admitted:?}");
        for node in &nodes {
            let live = node
                .sessions(
                    &SessionFilter {
                        token_id: Some(token.id),
                        ..Default::default()
                    },
                    now,
                )
                .unwrap();
            assert_eq!(live.len(), MAX as usize);
        }
        // The winners' re-checks pass on either node.
        for (i, key) in admitted.iter().enumerate() {
            let answer = nodes[i % 2]
                .admit_session(&claim(&token, key), now, now.saturating_add(LEASE))
                .unwrap();
            assert!(matches!(answer, Admission::Extended { .. }), "{answer:?}");
        }
    }
}

#[test]
fn admission_stays_atomic_whatever_the_default_isolation() {
    let Some(scratch) = Scratch::new() else {
        return;
    };
    let separator = if scratch.url.contains('?') { '&' } else { '?' };
    for level in ["repeatable%5C%20read", "serializable"] {
        let url = format!(
            "{}{separator}options=-c%20default_transaction_isolation%3D{level}",
            scratch.url
        );
        let node = || Arc::new(PostgresStore::open_in_schema(&url, &scratch.schema).unwrap());
        let nodes = [node(), node()];
        let shown: String = nodes[0]
            .conn()
            .unwrap()
            .query_one("SHOW default_transaction_isolation", &[])
            .unwrap()
            .get(0);
        assert_eq!(shown, "read committed", "the store's own setting wins");
        let secret = format!("secret-isolation-{}", level.len());
        let token = Arc::new(nodes[0].create_token(spec(&secret, "u", 2), T0).unwrap());
        let barrier = Arc::new(Barrier::new(16));
        let handles: Vec<_> = (0..16)
            .map(|t| {
                let node = Arc::clone(&nodes[t % 2]);
                let (token, barrier) = (Arc::clone(&token), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    (0..10)
                        .filter(|i| {
                            let key = format!("id:{t}-{i}");
                            let answer = node
                                .admit_session(&claim(&token, &key), T0, T0.saturating_add(LEASE))
                                .unwrap();
                            matches!(answer, Admission::Admitted { .. })
                        })
                        .count()
                })
            })
            .collect();
        let admitted: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(admitted, 2, "{level}");
    }
}

#[test]
fn nodes_starting_together_migrate_once() {
    let Some(scratch) = Scratch::new() else {
        return;
    };
    let url = scratch.url;
    let barrier = Arc::new(Barrier::new(6));
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let (schema, barrier) = (scratch.schema.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                PostgresStore::open_in_schema(url, &schema)
                    .unwrap()
                    .schema_version()
                    .unwrap()
            })
        })
        .collect();
    for handle in handles {
        assert_eq!(handle.join().unwrap() as usize, MIGRATIONS.len());
    }
    let rows = scratch
        .client()
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .unwrap();
    let versions: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(versions, (1..=MIGRATIONS.len() as i32).collect::<Vec<_>>());
}

#[test]
fn refuses_a_newer_schema() {
    let Some((scratch, store)) = fresh() else {
        return;
    };
    drop(store);
    scratch
        .client()
        .execute("INSERT INTO schema_migrations (version) VALUES (99)", &[])
        .unwrap();
    let err = PostgresStore::open_in_schema(scratch.url, &scratch.schema)
        .expect_err("a newer schema must be refused");
    assert!(err.to_string().contains("newer"), "{err}");
}

#[test]
fn data_is_shared_between_nodes_and_survives_reopening() {
    let Some((scratch, a)) = fresh() else {
        return;
    };
    let b = scratch.open();
    let created = a.create_token(spec("secret-shared-1", "u", 1), T0).unwrap();
    let seen = b
        .token_by_digest(&c::digest("secret-shared-1"))
        .unwrap()
        .unwrap();
    assert_eq!(*seen, created);
    drop((a, b));
    let again = scratch.open();
    assert_eq!(again.token(created.id).unwrap(), Some(created));
}

#[test]
fn a_token_created_on_another_node_after_a_miss_is_found_at_once() {
    let Some((scratch, a)) = fresh() else {
        return;
    };
    let b: Arc<dyn TokenStore> = Arc::new(scratch.open());
    // A clock that never moves: the generation poll never runs again, so only node B hearing
    // of the write can drop its cached miss.
    let cache = crate::store::CachedTokens::new(
        b,
        Arc::new(crate::clock::ManualClock::new(T0)),
        100,
        Duration::from_secs(1),
    );
    let listening = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        cache.token_writes_heard().is_some()
    });
    assert!(listening, "node B listens for token writes");
    let digest = c::digest("secret-heard-1");
    assert!(cache.token_by_digest(&digest).unwrap().is_none());
    assert_eq!(
        cache.try_token_without_blocking(&digest),
        Some(None),
        "the miss is cached"
    );
    a.create_token(spec("secret-heard-1", "u", 1), T0).unwrap();
    let found = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        cache.token_by_digest(&digest).unwrap().is_some()
    });
    assert!(
        found,
        "node B's cache dropped its miss when node A created the token"
    );
}

#[test]
fn token_generation_follows_writes_from_any_client() {
    let Some((scratch, a)) = fresh() else {
        return;
    };
    let b = scratch.open();
    let before = b.token_generation().unwrap();
    a.create_token(spec("secret-gen-nodes-1", "u", 1), T0)
        .unwrap();
    let after_node = b.token_generation().unwrap();
    assert_ne!(before, after_node, "a write through another node");
    // An operator's psql session with its own search_path.
    let mut psql = ::postgres::Client::connect(scratch.url, NoTls).unwrap();
    psql.batch_execute(&format!(
        "UPDATE {}.tokens SET status = 'suspended'",
        scratch.schema
    ))
    .unwrap();
    assert_ne!(
        b.token_generation().unwrap(),
        after_node,
        "a write made outside the store"
    );
}

#[test]
fn nul_characters_from_requests_are_stored() {
    let Some((_scratch, store)) = fresh() else {
        return;
    };
    let token = store
        .create_token(spec("secret-nul-1", "u", 1), T0)
        .unwrap();
    let claim = SessionClaim {
        stream: "live\0one",
        ..claim(&token, "id:a\0b")
    };
    let lease = T0.saturating_add(LEASE);
    let Admission::Admitted { session_id } = store.admit_session(&claim, T0, lease).unwrap() else {
        panic!("not admitted")
    };
    assert_eq!(
        store.admit_session(&claim, T0, lease).unwrap(),
        Admission::Extended { session_id },
        "the key still matches itself"
    );
    let filter = SessionFilter {
        stream: Some("live\0one".into()),
        ..Default::default()
    };
    assert_eq!(
        store.sessions(&filter, T0).unwrap()[0].stream,
        "live\u{FFFD}one"
    );
    let entry = AccessLogEntry {
        at: T0,
        token_id: Some(token.id),
        token_prefix: None,
        user_id: None,
        stream: "live\0one".into(),
        ip: "10.0.0.1".into(),
        proto: "hls".into(),
        request_type: "new_session",
        session_id: Some("a\0b".into()),
        result: AccessResult::Allowed,
        reason: None,
        latency_us: 3,
    };
    store.append_access_logs(&[entry]).unwrap();
    let logs = store.access_logs(&AccessLogFilter::default()).unwrap();
    assert_eq!(
        logs.items[0].entry.session_id.as_deref(),
        Some("a\u{FFFD}b")
    );
}

#[test]
fn a_large_log_batch_keeps_its_order_and_json_survives_exactly() {
    let Some((_scratch, store)) = fresh() else {
        return;
    };
    let entries: Vec<AccessLogEntry> = (0..3000)
        .map(|n| AccessLogEntry {
            at: T0,
            token_id: (n % 3 == 0).then_some(n),
            token_prefix: None,
            user_id: Some(format!("user-{n}")),
            stream: "s".into(),
            ip: "::1".into(),
            proto: "hls".into(),
            request_type: "new_session",
            session_id: None,
            result: AccessResult::Denied,
            reason: Some("ip_not_allowed"),
            latency_us: u64::MAX,
        })
        .collect();
    store.append_access_logs(&entries).unwrap();
    let page = store
        .access_logs(&AccessLogFilter {
            limit: 3,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(page.total, 3000);
    assert_eq!(page.items[0].entry.user_id.as_deref(), Some("user-2999"));
    assert_eq!(
        (page.items[1].entry.token_id, page.items[2].entry.token_id),
        (None, Some(2997))
    );
    assert_eq!(page.items[0].entry.latency_us, i64::MAX as u64);

    let mut meta = Map::new();
    meta.insert("nul".into(), Value::String("a\0b".into()));
    meta.insert("float".into(), serde_json::json!(0.1));
    meta.insert("nested".into(), serde_json::json!({"z": [1, {"y": null}]}));
    let new = crate::token::TokenSpec {
        token: Some("secret-meta-1".into()),
        user_id: "u".into(),
        allowed_streams: vec!["sports/*".into()],
        allowed_ips: vec!["2001:db8::/32".into(), "10.0.0.1".into()],
        valid_from: Some(T0),
        valid_until: Some(T0.saturating_add(LEASE)),
        meta: Some(meta),
        ..Default::default()
    }
    .validate(&c::hasher())
    .unwrap()
    .0;
    let created = store.create_token(new, T0).unwrap();
    assert_eq!(store.token(created.id).unwrap(), Some(created));
}

#[test]
fn bad_connection_strings_and_schema_names_are_input_errors() {
    let err = PostgresStore::open("postgres://host:notaport/db").unwrap_err();
    assert_eq!(err.field(), Some("database_url"));
    let err = PostgresStore::open("postgres://postgres@127.0.0.1:1/test").unwrap_err();
    assert_eq!(err.code(), "storage_error");
    assert!(err.to_string().contains("connecting"), "{err}");
    for schema in [
        "",
        "Upper",
        "1st",
        "a-b",
        "a b",
        "x\"; DROP",
        &"a".repeat(64),
    ] {
        let err = PostgresStore::open_in_schema("postgres://localhost/db", schema).unwrap_err();
        assert_eq!(err.field(), Some("schema"), "{schema:?}");
    }
}
