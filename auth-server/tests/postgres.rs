//! Several auth nodes on one PostgreSQL database, over real HTTP: the session limit holds across
//! them, and a token suspended through one is refused by the others within the cache recheck;
//! first as two in-process servers, then as two `auth-server` processes. Also `export` from
//! SQLite and `import` into PostgreSQL through the binary.
//!
//! Uses `AUTH_TEST_POSTGRES_URL` (default: the machine's local server); without a server the
//! test fails naming the variable, unless `AUTH_TEST_POSTGRES=skip`. Each run works in a schema
//! of its own and drops it.

mod common;

use std::sync::{Arc, Barrier};
use std::time::Duration;

use auth_core::prelude::*;
use auth_core::{Backend, ManualClock, PostgresStore, TokenPatch, TokenSpec, TokenStatus};
use common::{bin, config, spec, temp_db, ServerProcess, TestServer, T0};

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
    let store: Arc<dyn Backend> = Arc::new(PostgresStore::open_in_schema(url, schema).unwrap());
    TestServer::with_store(config(db), store, Arc::new(ManualClock::new(T0)))
}

/// 32 clients race for new sessions of `token` (max_sessions 3), alternately through each node;
/// asserts that exactly 3 won and the rest were refused for the limit. Returns the verdicts.
fn race_three_slots<N: Send + Sync + 'static>(
    token: &'static str,
    nodes: [Arc<N>; 2],
    auth: fn(&N, &[(&str, &str)]) -> common::Reply,
) -> Vec<String> {
    const CLIENTS: usize = 32;
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let racers: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let node = Arc::clone(&nodes[i % 2]);
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let session = format!("race-{i}");
                barrier.wait();
                let fields = [
                    ("name", "news"),
                    ("ip", "10.0.0.1"),
                    ("token", token),
                    ("session_id", &session),
                ];
                auth(&node, &fields).verdict()
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
    verdicts
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
    // Node B's digest filter is built before the token exists.
    b.token_cache.revalidate().unwrap();
    let token = a.token(TokenSpec {
        max_sessions: Some(3),
        ..spec("two-node-token-1", "u")
    });
    // Node B finds the token node A just created at once, whether or not it has heard of the
    // creation yet (NOTIFY): a token its digest filter lacks is still read from the store.
    let digest = common::hasher().digest("two-node-token-1");
    assert!(
        b.stores.tokens.token_by_digest(&digest).unwrap().is_some(),
        "node B refused a token created on node A"
    );

    race_three_slots(
        "two-node-token-1",
        [a.clone(), b.clone()],
        |node, fields| node.auth(fields),
    );

    // Suspended through node A; node B enforces it once its token cache rechecks.
    let suspend = TokenPatch {
        status: Some(TokenStatus::Suspended),
        ..Default::default()
    };
    a.stores.tokens.update_token(token.id, suspend, T0).unwrap();
    b.clock
        .advance(auth_core::store::CachedTokens::DEFAULT_RECHECK + Duration::from_millis(1));
    let recheck = [
        ("name", "news"),
        ("ip", "10.0.0.1"),
        ("token", "two-node-token-1"),
        ("session_id", "race-1"),
        ("request_type", "update_session"),
    ];
    assert_eq!(b.auth(&recheck).verdict(), "token_suspended");
}

/// `url` with every connection's `search_path` set to `schema`: how a process is pointed at a
/// test's schema through DATABASE_URL alone.
fn url_in_schema(url: &str, schema: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20search_path%3D{schema}")
}

/// A schema for this test, created empty (a process's migrations fill it).
fn process_schema(url: &str, test: &str) -> Schema {
    let name = format!("auth_proc_{test}_{}", std::process::id());
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    client
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"
        ))
        .unwrap();
    Schema {
        url: url.to_owned(),
        name,
    }
}

const API_KEY: &str = "test-api-key-for-two-processes-0001";

fn server_process(database_url: &str, hash_key: &str) -> ServerProcess {
    let mut command = bin();
    command
        .env("DATABASE_URL", database_url)
        .env("TOKEN_HASH_KEY", hash_key)
        .env("API_KEY", API_KEY);
    ServerProcess::spawn(command)
}

#[test]
fn two_server_processes_on_one_database_share_the_session_limit() {
    let Some(url) = server_url() else { return };
    let schema = process_schema(&url, "race");
    let database_url = url_in_schema(&url, &schema.name);
    let hash_key = hex::encode([7u8; 32]);
    let a = Arc::new(server_process(&database_url, &hash_key));
    let b = Arc::new(server_process(&database_url, &hash_key));
    let auth = [("X-API-Key", API_KEY)];
    let created = a.call(
        "POST",
        "/api/tokens",
        &auth,
        Some((
            "application/json",
            r#"{"token": "two-process-token-1", "user_id": "u", "max_sessions": 3}"#,
        )),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.json()["id"].as_i64().unwrap();

    let verdicts = race_three_slots(
        "two-process-token-1",
        [a.clone(), b.clone()],
        |node, fields| node.auth(fields),
    );
    let live = b.call("GET", &format!("/api/sessions?token_id={id}"), &auth, None);
    assert_eq!(live.json()["total"], 3, "{}", live.body);

    // Suspended through A; B refuses within its cache recheck (1 s; allow for a slow machine),
    // or sooner: the suspension cut the token's live sessions, which B hears of at once.
    let suspended = a.call(
        "PATCH",
        &format!("/api/tokens/{id}"),
        &auth,
        Some(("application/json", r#"{"status": "suspended"}"#)),
    );
    assert_eq!(suspended.status, 200, "{}", suspended.body);
    let started = std::time::Instant::now();
    let winner = verdicts.iter().position(|v| v == "allowed").unwrap();
    let session = format!("race-{winner}");
    let recheck = [
        ("name", "news"),
        ("ip", "10.0.0.1"),
        ("token", "two-process-token-1"),
        ("session_id", session.as_str()),
        ("request_type", "update_session"),
    ];
    loop {
        let verdict = b.auth(&recheck).verdict();
        if verdict == "token_suspended" || verdict == "session_terminated" {
            break;
        }
        assert_eq!(verdict, "allowed");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "node B still allows a token suspended through node A"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn export_from_sqlite_imports_into_postgres_and_serves_there() {
    let Some(url) = server_url() else { return };
    let schema = process_schema(&url, "import");
    let database_url = url_in_schema(&url, &schema.name);
    let (dir, db) = temp_db();
    let run = |database: &str, key: Option<&str>, args: &[&str]| {
        let mut command = bin();
        command.env("DATABASE_URL", database).args(args);
        if let Some(key) = key {
            command.env("TOKEN_HASH_KEY", key);
        }
        command.output().unwrap()
    };
    let sqlite = db.to_str().unwrap();
    let seeded = run(
        sqlite,
        None,
        &[
            "seed",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../data/tokens.example.json"),
        ],
    );
    assert!(
        seeded.status.success(),
        "{}",
        String::from_utf8_lossy(&seeded.stderr)
    );
    let dump = dir.path().join("dump.jsonl");
    let exported = run(
        sqlite,
        None,
        &["export", "--output", dump.to_str().unwrap()],
    );
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );

    // Another key: every token would be unknown there, so the import refuses.
    let wrong = run(
        &database_url,
        Some(&hex::encode([9u8; 32])),
        &["import", dump.to_str().unwrap()],
    );
    assert_eq!(wrong.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("TOKEN_HASH_KEY"));

    let key = std::fs::read_to_string(dir.path().join("token-hash.key")).unwrap();
    let key = key.trim();
    let imported = run(
        &database_url,
        Some(key),
        &["import", dump.to_str().unwrap()],
    );
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    let counts: serde_json::Value = serde_json::from_slice(&imported.stdout).unwrap();
    assert!(
        counts["imported"]["tokens"].as_u64().unwrap() >= 3,
        "{counts}"
    );

    // The same rows come back out of PostgreSQL, and a second import is refused.
    let again = run(&database_url, Some(key), &["export"]);
    assert!(again.status.success());
    let body = |text: &[u8]| {
        String::from_utf8_lossy(text)
            .split_once('\n')
            .unwrap()
            .1
            .to_owned()
    };
    assert_eq!(body(&again.stdout), body(&std::fs::read(&dump).unwrap()));
    let twice = run(
        &database_url,
        Some(key),
        &["import", dump.to_str().unwrap()],
    );
    assert_eq!(twice.status.code(), Some(2));

    // A node on PostgreSQL now admits the seeded viewer.
    let node = server_process(&database_url, key);
    let reply = node.auth(&[
        ("name", "sports/final"),
        ("ip", "10.1.1.1"),
        ("token", "demo-viewer-token-0001"),
    ]);
    assert_eq!(reply.verdict(), "allowed");
}

/// A TCP relay to the database that the test can cut: every relayed connection is shut down and
/// new ones are closed on arrival, as when the database host goes away.
struct Relay {
    port: u16,
    cut: Arc<std::sync::atomic::AtomicBool>,
    open: Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl Relay {
    fn to(target: std::net::SocketAddr) -> Relay {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let open = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (cut_flag, open_list) = (Arc::clone(&cut), Arc::clone(&open));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if cut_flag.load(Ordering::SeqCst) {
                    continue; // dropped: closed on arrival
                }
                let Ok(server) = std::net::TcpStream::connect(target) else {
                    continue;
                };
                // Checked again under the lock `set_cut` takes: a connection accepted while the
                // cut was being made would otherwise outlive it.
                let mut list = open_list.lock().unwrap();
                if cut_flag.load(Ordering::SeqCst) {
                    let _ = client.shutdown(std::net::Shutdown::Both);
                    let _ = server.shutdown(std::net::Shutdown::Both);
                    continue;
                }
                list.push(client.try_clone().unwrap());
                list.push(server.try_clone().unwrap());
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Relay { port, cut, open }
    }

    fn set_cut(&self, cut: bool) {
        let mut open = self.open.lock().unwrap();
        self.cut.store(cut, std::sync::atomic::Ordering::SeqCst);
        for stream in open.drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// When the database goes away, the node still answers every request within MAX_RESPONSE_TIME,
/// by its fail mode (here allow_updates: live viewers keep playing, new ones are refused).
#[test]
fn an_unreachable_database_is_answered_by_the_fail_mode_within_the_budget() {
    let Some(url) = server_url() else { return };
    let config_url: postgres::Config = url.parse().unwrap();
    let host = match config_url.get_hosts().first() {
        Some(postgres::config::Host::Tcp(host)) => host.clone(),
        _ => {
            eprintln!("skipped: the relay test needs a TCP database URL");
            return;
        }
    };
    let port = config_url.get_ports().first().copied().unwrap_or(5432);
    let target = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
        .unwrap()
        .next()
        .unwrap();
    let relay = Relay::to(target);
    let schema = process_schema(&url, "unreachable");
    let relayed_url = format!(
        "postgres://{}@127.0.0.1:{}/{}",
        config_url.get_user().unwrap_or("postgres"),
        relay.port,
        config_url.get_dbname().unwrap_or("postgres")
    );
    let store: Arc<dyn Backend> =
        Arc::new(PostgresStore::open_in_schema(&relayed_url, &schema.name).unwrap());
    let (_dir, db) = temp_db();
    let mut settings = config(&db);
    settings.max_response_time = Duration::from_millis(500);
    settings.fail_mode = auth_server::config::FailMode::AllowUpdates;
    let node = TestServer::with_store(settings, store, Arc::new(ManualClock::new(T0)));
    node.token(spec("relay-token-0001", "u"));
    let fields = |session: &'static str, kind: &'static str| {
        [
            ("name", "news"),
            ("ip", "10.0.0.1"),
            ("token", "relay-token-0001"),
            ("session_id", session),
            ("request_type", kind),
        ]
    };
    assert_eq!(node.auth(&fields("s1", "new_session")).verdict(), "allowed");

    relay.set_cut(true);
    for (session, kind, expected) in [
        ("s1", "update_session", "allowed"),
        ("s2", "new_session", "refused"),
    ] {
        let started = std::time::Instant::now();
        let reply = node.auth(&fields(session, kind));
        let elapsed = started.elapsed();
        let verdict = reply.verdict();
        match expected {
            "allowed" => assert_eq!(verdict, "allowed", "{kind}"),
            _ => assert!(
                verdict == "backend_timeout" || verdict == "backend_error",
                "{kind}: {verdict}"
            ),
        }
        // The budget is 0.5 s; the pool alone would wait 5 s for a connection.
        assert!(elapsed < Duration::from_secs(4), "{kind} took {elapsed:?}");
    }

    // The database is back: new viewers are admitted again, without a restart.
    relay.set_cut(false);
    let started = std::time::Instant::now();
    while node.auth(&fields("s3", "new_session")).verdict() != "allowed" {
        assert!(started.elapsed() < Duration::from_secs(20), "no recovery");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A server's last handle on its store may go on a tokio worker thread; the synchronous driver's
/// connections must still close without panicking there.
#[test]
fn the_store_can_be_dropped_on_a_tokio_worker_thread() {
    let Some(url) = server_url() else { return };
    let schema = process_schema(&url, "drop");
    let store = PostgresStore::open_in_schema(&url, &schema.name).unwrap();
    store.ping().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    let dropped = runtime.block_on(async move { tokio::spawn(async move { drop(store) }).await });
    assert!(dropped.is_ok(), "{dropped:?}");
}

/// Event tickets on two nodes: a door code accepted by one is refused by the other as reused,
/// an access token from one is accepted by the other, and a logout on one holds on the other.
#[test]
fn two_nodes_share_used_door_codes_and_logouts() {
    use auth_core::account::{NewAccount, Passwords, Role};
    use auth_core::event::{NewEvent, RosterRole};
    use serde_json::{json, Value};

    let Some(url) = server_url() else { return };
    let schema = Schema {
        url: url.clone(),
        name: format!("auth_http_tickets_{}", std::process::id()),
    };
    let (_dir, db) = temp_db();
    let a = node(&url, &schema.name, &db);
    let b = node(&url, &schema.name, &db);
    const PASSWORD: &str = "a long shared passphrase";
    let hash = Passwords::with_params(1024, 1, 1)
        .unwrap()
        .hash(PASSWORD)
        .unwrap();
    let account = |name: &str, role| {
        let new = NewAccount {
            username: name.into(),
            email: format!("{name}@example.org"),
            first_name: String::new(),
            last_name: String::new(),
            role,
            password_hash: hash.clone(),
        };
        a.stores.ticketing.create_account(new, T0).unwrap().id
    };
    let (holder, agent) = (account("holder", Role::User), account("door", Role::Agent));
    let event = a
        .stores
        .ticketing
        .create_event(
            NewEvent {
                title: "Two nodes".into(),
                starts_at: T0,
                ends_at: T0.saturating_add(Duration::from_secs(3600)),
                capacity: 5,
                streams: vec![],
                single_entry: true,
            },
            T0,
        )
        .unwrap();
    a.stores
        .ticketing
        .add_to_roster(event.id, holder, RosterRole::Users, T0)
        .unwrap();
    a.stores
        .ticketing
        .add_to_roster(event.id, agent, RosterRole::Agents, T0)
        .unwrap();
    let post = |node: &TestServer, path: &str, token: Option<&str>, body: Value| {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = bearer
            .iter()
            .map(|b| ("Authorization", b.as_str()))
            .collect();
        node.call(
            "POST",
            path,
            &headers,
            Some(("application/json", &body.to_string())),
        )
    };
    let login = |node: &TestServer, name: &str| {
        let reply = post(
            node,
            "/api/login",
            None,
            json!({"username": name, "password": PASSWORD}),
        );
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.json()["access_token"].as_str().unwrap().to_owned()
    };
    let holder_token = login(&a, "holder");
    let door_token = login(&a, "door");
    let issued = post(
        &a,
        "/api/tickets",
        Some(&holder_token),
        json!({"event_id": event.id}),
    );
    assert_eq!(issued.status, 201, "{}", issued.body);
    let issued = issued.json();
    let app = totp_rs::TOTP::from_url_unchecked(issued["otpauth_uri"].as_str().unwrap()).unwrap();
    let check = json!({"ticket_id": issued["ticket_id"], "code": app.generate(T0.unix_seconds() as u64 + 40)});
    a.clock.advance(Duration::from_secs(40));
    b.clock.advance(Duration::from_secs(40));
    let first = post(&a, "/api/tickets/verify", Some(&door_token), check.clone()).json();
    assert_eq!(first["valid"], true, "{first}");
    let replay = post(&b, "/api/tickets/verify", Some(&door_token), check).json();
    assert_eq!(replay["reason"], "code_reused", "{replay}");

    assert_eq!(
        post(&b, "/api/logout", Some(&holder_token), json!({})).status,
        204
    );
    let me = format!("/api/users/{holder}");
    let bearer = format!("Bearer {holder_token}");
    assert_eq!(
        a.call("GET", &me, &[("Authorization", &bearer)], None)
            .status,
        401
    );
}

/// A cut through node A of a session held at node B: pushed once (by A), refused at B's next
/// re-check (B hears of it from the database), its ban refusing a new session at B, and the
/// counts the same from either node.
#[test]
fn a_cut_at_one_node_is_pushed_once_and_refused_at_the_other() {
    use std::io::{BufRead, BufReader, Write};
    let Some(url) = server_url() else { return };
    let schema = Schema {
        url: url.clone(),
        name: format!("auth_http_cut_{}", std::process::id()),
    };
    // A stand-in Flussonic API that counts the calls it gets.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                    break;
                }
            }
            let _ = write!(
                stream,
                "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"
            );
            if tx.send(line.trim().to_owned()).is_err() {
                return;
            }
        }
    });
    let (_dir, db) = temp_db();
    let controlled = || {
        let mut config = config(&db);
        config.control.flussonic = Some(auth_server::control::Url::parse(&base).unwrap());
        let store: Arc<dyn Backend> =
            Arc::new(PostgresStore::open_in_schema(&url, &schema.name).unwrap());
        TestServer::with_store(config, store, Arc::new(ManualClock::new(T0)))
    };
    let (a, b) = (controlled(), controlled());
    b.token(spec("cut-two-nodes-1", "u"));
    let play = |session: &str, update: bool| {
        let mut fields = vec![
            ("name", "news"),
            ("ip", "10.0.0.1"),
            ("proto", "hls"),
            ("token", "cut-two-nodes-1"),
            ("session_id", session),
        ];
        if update {
            fields.push(("request_type", "update_session"));
        }
        b.auth(&fields).verdict()
    };
    assert_eq!(play("77", false), "allowed");
    assert_eq!(
        play("77", true),
        "allowed",
        "a re-check B answers from memory"
    );
    let listed = a.get("/api/sessions").json();
    assert_eq!(listed["items"][0]["source"], "flussonic");
    let id = listed["items"][0]["id"].as_i64().unwrap();
    assert_eq!(
        a.request("DELETE", &format!("/api/sessions/{id}?ban_seconds=60"))
            .status,
        204
    );
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(5)).unwrap(),
        "DELETE /streamer/api/v3/sessions/77 HTTP/1.1"
    );
    let mut refused = String::new();
    for _ in 0..50 {
        refused = play("77", true);
        if refused != "allowed" {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(refused, "session_terminated", "B refuses its next re-check");
    assert_eq!(play("78", false), "session_banned", "B keeps A's ban");
    assert_eq!(
        b.get("/api/sessions/counts?by=stream").json()["total"],
        0,
        "the cut session counts nowhere"
    );
    assert!(
        rx.recv_timeout(Duration::from_millis(500)).is_err(),
        "pushed once, by the node that cut"
    );
}
