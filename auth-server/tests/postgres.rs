//! Two auth nodes on one PostgreSQL database, over real HTTP: the session limit holds across
//! them, and a token suspended through one is refused by the other within the cache recheck.
//!
//! Uses `AUTH_TEST_POSTGRES_URL` (default: the machine's local server); without a server the
//! test fails naming the variable, unless `AUTH_TEST_POSTGRES=skip`. Each run works in a schema
//! of its own and drops it.

mod common;

use std::sync::{Arc, Barrier};
use std::time::Duration;

use auth_core::{ManualClock, PostgresStore, Store, TokenPatch, TokenSpec, TokenStatus};
use common::{config, spec, temp_db, TestServer, T0};

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The server URL, or `None` when told to skip a missing server.
fn server_url() -> Option<String> {
    let url = std::env::var("AUTH_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_URL.to_owned());
    match postgres::Client::connect(&url, postgres::NoTls) {
        Ok(_) => Some(url),
        Err(err) if std::env::var("AUTH_TEST_POSTGRES").as_deref() == Ok("skip") => {
            eprintln!("skipped: PostgreSQL tests (AUTH_TEST_POSTGRES=skip): {url}: {err}");
            None
        }
        Err(err) => panic!(
            "the PostgreSQL tests need a server at {url} (AUTH_TEST_POSTGRES_URL): {err}; \
             set AUTH_TEST_POSTGRES=skip to skip them"
        ),
    }
}

/// Drops the test's schema when the test ends.
struct Schema {
    url: String,
    name: String,
}

impl Drop for Schema {
    fn drop(&mut self) {
        if let Ok(mut client) = postgres::Client::connect(&self.url, postgres::NoTls) {
            let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
        }
    }
}

fn node(url: &str, schema: &str, db: &std::path::Path) -> TestServer {
    let store: Arc<dyn Store> = Arc::new(PostgresStore::open_in_schema(url, schema).unwrap());
    TestServer::with_store(config(db), store, Arc::new(ManualClock::new(T0)))
}

#[test]
fn two_nodes_on_one_database_share_the_session_limit_and_token_changes() {
    let Some(url) = server_url() else { return };
    let schema = Schema {
        url: url.clone(),
        name: format!("auth_http_test_{}", std::process::id()),
    };
    let (_dir, db) = temp_db();
    let a = Arc::new(node(&url, &schema.name, &db));
    let b = Arc::new(node(&url, &schema.name, &db));
    let token = a.token(TokenSpec {
        max_sessions: Some(3),
        ..spec("two-node-token-1", "u")
    });

    const CLIENTS: usize = 32;
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let racers: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let node = if i % 2 == 0 {
                Arc::clone(&a)
            } else {
                Arc::clone(&b)
            };
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let session = format!("race-{i}");
                barrier.wait();
                node.auth(&[
                    ("name", "news"),
                    ("ip", "10.0.0.1"),
                    ("token", "two-node-token-1"),
                    ("session_id", &session),
                ])
                .verdict()
            })
        })
        .collect();
    let verdicts: Vec<String> = racers.into_iter().map(|r| r.join().unwrap()).collect();
    assert_eq!(
        verdicts.iter().filter(|v| *v == "allowed").count(),
        3,
        "{verdicts:?}"
    );
    assert!(
        verdicts
            .iter()
            .all(|v| v == "allowed" || v == "session_limit_reached"),
        "{verdicts:?}"
    );

    // Suspended through node A; node B enforces it once its token cache rechecks.
    let suspend = TokenPatch {
        status: Some(TokenStatus::Suspended),
        ..Default::default()
    };
    a.store.update_token(token.id, suspend, T0).unwrap();
    b.clock
        .advance(auth_core::store::CachedStore::DEFAULT_RECHECK + Duration::from_millis(1));
    let recheck = [
        ("name", "news"),
        ("ip", "10.0.0.1"),
        ("token", "two-node-token-1"),
        ("session_id", "race-1"),
        ("request_type", "update_session"),
    ];
    assert_eq!(b.auth(&recheck).verdict(), "token_suspended");
}
