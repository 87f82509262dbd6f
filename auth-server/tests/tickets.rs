//! Event tickets over real HTTP: accounts, login and logout, throttling, role scoping on every
//! endpoint, events and rosters, issuing tickets, and every door reason, including replay across
//! a restart and clock skew at both edges; signed e-tickets (offline and at the door, every
//! reason) and holders minting their own playback tokens.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use auth_core::signed_token::keys::{public_ring, KeyInfo};
use auth_core::signed_token::{Algorithm, Claims, KeyRing};
use auth_core::ticket::signed;
use auth_core::{Backend, ManualClock, SqliteStore, Timestamp};
use auth_server::config::Config;
use common::{keyed_config, play, temp_db, Reply, TestServer, RO, RW, T0};
use serde_json::{json, Value};
use totp_rs::TOTP;

const PASSWORD: &str = "correct horse battery staple";

fn server_with(config: Config, db: &Path, clock: Arc<ManualClock>) -> TestServer {
    let store: Arc<dyn Backend> = Arc::new(SqliteStore::open(db).unwrap());
    TestServer::with_store(config, store, clock)
}

fn server(db: &Path) -> TestServer {
    server_with(keyed_config(db), db, Arc::new(ManualClock::new(T0)))
}

/// How a request authenticates.
#[derive(Clone, Copy)]
enum As<'a> {
    Nobody,
    Key(&'a str),
    Bearer(&'a str),
    Cookie(&'a str),
}

fn send(server: &TestServer, who: As<'_>, method: &str, path: &str, body: Option<Value>) -> Reply {
    let cookie;
    let bearer;
    let headers: Vec<(&str, &str)> = match who {
        As::Nobody => vec![],
        As::Key(key) => vec![("X-API-Key", key)],
        As::Bearer(token) => {
            bearer = format!("Bearer {token}");
            vec![("Authorization", bearer.as_str())]
        }
        As::Cookie(token) => {
            cookie = format!("theme=dark; access_token={token}");
            vec![("Cookie", cookie.as_str())]
        }
    };
    let body = body.map(|b| b.to_string());
    server.call(
        method,
        path,
        &headers,
        body.as_deref().map(|b| ("application/json", b)),
    )
}

fn assert_status(reply: &Reply, status: u16, what: &str) {
    assert_eq!(reply.status, status, "{what}: {}", reply.body);
}

fn register(server: &TestServer, name: &str, role: &str) -> i64 {
    let reply = send(
        server,
        As::Key(RW),
        "POST",
        "/api/users",
        Some(
            json!({"user": {"username": name, "password": PASSWORD, "first_name": "F",
                             "last_name": name, "email": format!("{name}@example.org")},
                    "role": role}),
        ),
    );
    assert_status(&reply, 201, "register");
    reply.json()["id"].as_i64().unwrap()
}

fn login(server: &TestServer, name: &str) -> String {
    let reply = send(
        server,
        As::Nobody,
        "POST",
        "/api/login",
        Some(json!({"username": name, "password": PASSWORD})),
    );
    assert_status(&reply, 200, "login");
    reply.json()["access_token"].as_str().unwrap().to_owned()
}

/// An account of `role`, logged in.
fn account(server: &TestServer, name: &str, role: &str) -> (i64, String) {
    (register(server, name, role), login(server, name))
}

fn event(server: &TestServer, title: &str, from: Timestamp, hours: u64, extra: Value) -> i64 {
    let mut body = json!({"title": title, "starts_at": from, "capacity": 10, "streams": ["conf/*"],
                          "ends_at": from.saturating_add(Duration::from_secs(hours * 3600))});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let reply = send(server, As::Key(RW), "POST", "/api/events", Some(body));
    assert_status(&reply, 201, "create event");
    reply.json()["id"].as_i64().unwrap()
}

fn add(server: &TestServer, event: i64, roster: &str, user: i64) {
    let reply = send(
        server,
        As::Key(RW),
        "POST",
        &format!("/api/events/{event}/{roster}"),
        Some(json!({"user_id": user})),
    );
    assert_status(&reply, 201, "add to roster");
}

/// Issues a ticket as `who`; returns (ticket id, the app's view of its secret).
fn issue(server: &TestServer, who: As<'_>, event: i64, user: Option<i64>) -> (i64, TOTP) {
    let mut body = json!({"event_id": event});
    if let Some(user) = user {
        body["user_id"] = json!(user);
    }
    let reply = send(server, who, "POST", "/api/tickets", Some(body));
    assert_status(&reply, 201, "issue");
    let body = reply.json();
    let app = TOTP::from_url_unchecked(body["otpauth_uri"].as_str().unwrap()).unwrap();
    (body["ticket_id"].as_i64().unwrap(), app)
}

fn code(app: &TOTP, at: Timestamp) -> String {
    app.generate(at.unix_seconds() as u64)
}

fn verify(server: &TestServer, who: As<'_>, ticket: i64, code: &str) -> Value {
    let reply = send(
        server,
        who,
        "POST",
        "/api/tickets/verify",
        Some(json!({"ticket_id": ticket, "code": code})),
    );
    assert_status(&reply, 200, "verify");
    reply.json()
}

fn now(server: &TestServer) -> Timestamp {
    use auth_core::Clock as _;
    server.clock.now()
}

fn reason(answer: &Value) -> &str {
    assert_eq!(answer["valid"], false, "{answer}");
    answer["reason"].as_str().unwrap()
}

#[test]
fn register_login_use_the_token_and_log_out() {
    let (_dir, db) = temp_db();
    let server = server(&db);
    let user = json!({"username": "Alice", "password": PASSWORD, "first_name": "Alice",
                      "last_name": "Liddell", "email": "Alice@Example.org"});
    let reply = send(
        &server,
        As::Nobody,
        "POST",
        "/api/users",
        Some(json!({"user": user})),
    );
    assert_status(&reply, 201, "open registration");
    let created = reply.json();
    assert_eq!(created["username"], "alice");
    assert_eq!(created["email"], "alice@example.org");
    assert_eq!(created["role"], "user");
    assert!(!reply.body.contains(PASSWORD) && !reply.body.contains("argon2"));
    let id = created["id"].as_i64().unwrap();

    let again = send(
        &server,
        As::Nobody,
        "POST",
        "/api/users",
        Some(json!({"user": user})),
    );
    assert_status(&again, 409, "same username");
    assert_eq!(again.json()["field"], "username");
    let mut other = user.clone();
    other["username"] = json!("alice2");
    let again = send(
        &server,
        As::Nobody,
        "POST",
        "/api/users",
        Some(json!({"user": other})),
    );
    assert_eq!(
        (again.status, again.json()["field"].clone()),
        (409, json!("email"))
    );
    other["email"] = json!("a2@example.org");
    other["password"] = json!("short");
    let weak = send(
        &server,
        As::Nobody,
        "POST",
        "/api/users",
        Some(json!({"user": other})),
    );
    assert_eq!(
        (weak.status, weak.json()["field"].clone()),
        (400, json!("password"))
    );
    let unknown = send(
        &server,
        As::Nobody,
        "POST",
        "/api/users",
        Some(json!({"user": user, "admin": true})),
    );
    assert_status(&unknown, 400, "unknown field");
    let promote = send(
        &server,
        As::Nobody,
        "POST",
        "/api/users",
        Some(
            json!({"user": {"username": "mallory", "password": PASSWORD, "email": "m@example.org"}, "role": "admin"}),
        ),
    );
    assert_status(&promote, 403, "an anonymous caller cannot create an admin");

    let reply = send(
        &server,
        As::Nobody,
        "POST",
        "/api/login",
        Some(json!({"username": "ALICE", "password": PASSWORD})),
    );
    assert_status(&reply, 200, "login");
    let body = reply.json();
    assert_eq!(
        (body["token_type"].clone(), body["expires_in"].clone()),
        (json!("Bearer"), json!(3600))
    );
    let token = body["access_token"].as_str().unwrap().to_owned();
    let cookie = reply.header("set-cookie").unwrap();
    for part in [
        "access_token=",
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Max-Age=3600",
    ] {
        assert!(cookie.contains(part), "{cookie}");
    }
    assert_eq!(reply.header("cache-control"), Some("no-store"));

    let me = format!("/api/users/{id}");
    assert_status(
        &send(&server, As::Bearer(&token), "GET", &me, None),
        200,
        "bearer",
    );
    assert_status(
        &send(&server, As::Cookie(&token), "GET", &me, None),
        200,
        "cookie",
    );
    assert_status(
        &send(&server, As::Nobody, "GET", &me, None),
        401,
        "no credential",
    );
    assert_status(
        &send(&server, As::Bearer("not-a-token"), "GET", &me, None),
        401,
        "garbage",
    );
    let renamed = send(
        &server,
        As::Bearer(&token),
        "PATCH",
        &me,
        Some(json!({"first_name": "Al"})),
    );
    assert_eq!(renamed.json()["first_name"], "Al");

    let wrong = send(
        &server,
        As::Nobody,
        "POST",
        "/api/login",
        Some(json!({"username": "alice", "password": "not the password"})),
    );
    assert_eq!(
        (wrong.status, wrong.json()["error"].clone()),
        (401, json!("invalid_credentials"))
    );
    let nobody = send(
        &server,
        As::Nobody,
        "POST",
        "/api/login",
        Some(json!({"username": "nobody", "password": PASSWORD})),
    );
    assert_eq!(
        nobody.json()["error"],
        "invalid_credentials",
        "same answer for an unknown user"
    );

    let out = send(&server, As::Cookie(&token), "POST", "/api/logout", None);
    assert_status(&out, 204, "logout");
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert_status(
        &send(&server, As::Bearer(&token), "GET", &me, None),
        401,
        "revoked",
    );

    let fresh = login(&server, "alice");
    server.advance(3599);
    assert_status(
        &send(&server, As::Bearer(&fresh), "GET", &me, None),
        200,
        "not yet expired",
    );
    server.advance(1);
    assert_status(
        &send(&server, As::Bearer(&fresh), "GET", &me, None),
        401,
        "expired",
    );
    server.stop();

    // Secrets at rest: the database holds an Argon2id hash, never the password.
    let bytes = std::fs::read(&db).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains(PASSWORD));
    assert!(text.contains("$argon2id$"));
}

#[test]
fn failed_logins_are_throttled_per_username_and_per_address() {
    let (_dir, db) = temp_db();
    let mut config = keyed_config(&db);
    config.login_limits.per_username = 3;
    config.login_limits.per_ip = 5;
    config.login_limits.window = Duration::from_secs(60);
    let server = server_with(config, &db, Arc::new(ManualClock::new(T0)));
    register(&server, "alice", "user");
    register(&server, "bob", "user");
    let attempt = |name: &str, password: &str| {
        send(
            &server,
            As::Nobody,
            "POST",
            "/api/login",
            Some(json!({"username": name, "password": password})),
        )
    };
    for _ in 0..3 {
        assert_status(&attempt("alice", "wrong password!"), 401, "failure");
    }
    let limited = attempt("alice", PASSWORD);
    assert_eq!(
        (limited.status, limited.json()["error"].clone()),
        (429, json!("too_many_attempts"))
    );
    assert_eq!(limited.header("retry-after"), Some("60"));
    // The address has 3 failures; 2 more on another name reach its limit of 5.
    for _ in 0..2 {
        assert_status(&attempt("bob", "wrong password!"), 401, "failure");
    }
    assert_status(&attempt("carol", PASSWORD), 429, "the address is throttled");
    server.advance(61);
    assert_status(&attempt("alice", PASSWORD), 200, "the window moved on");
}

/// An adversarial review sent 100 simultaneous logins for one username against a limit of 5:
/// every one was checked before the first failure was counted, so each got a guess. Attempts
/// are now counted as they start, one at a time per username and address.
#[test]
fn a_burst_of_logins_gets_no_more_guesses_than_the_limit() {
    let (_dir, db) = temp_db();
    let mut config = keyed_config(&db);
    config.login_limits.per_username = 5;
    config.login_limits.per_ip = 1000;
    config.login_limits.window = Duration::from_secs(600);
    let server = server_with(config, &db, Arc::new(ManualClock::new(T0)));
    register(&server, "alice", "user");
    const BURST: usize = 40;
    let start = std::sync::Barrier::new(BURST);
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..BURST)
            .map(|i| {
                let (server, start) = (&server, &start);
                scope.spawn(move || {
                    start.wait();
                    send(
                        server,
                        As::Nobody,
                        "POST",
                        "/api/login",
                        Some(json!({"username": "alice", "password": format!("wrong guess {i}")})),
                    )
                    .status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let guessed = statuses.iter().filter(|&&s| s == 401).count();
    let refused = statuses.iter().filter(|&&s| s == 429).count();
    assert!(guessed <= 5, "{guessed} guesses were checked: {statuses:?}");
    assert_eq!(guessed + refused, BURST, "{statuses:?}");
    let login = |password: &str| {
        send(
            &server,
            As::Nobody,
            "POST",
            "/api/login",
            Some(json!({"username": "alice", "password": password})),
        )
    };
    for _ in guessed..5 {
        assert_status(&login("one more wrong guess"), 401, "within the limit");
    }
    assert_status(
        &login(PASSWORD),
        429,
        "past the limit, the right password is refused too",
    );
}

#[test]
fn every_endpoint_refuses_what_the_role_does_not_allow() {
    let (_dir, db) = temp_db();
    let server = server(&db);
    let (_, admin) = account(&server, "root", "admin");
    let (user_id, user) = account(&server, "user", "user");
    let (outsider_id, outsider) = account(&server, "outsider", "user");
    let (agent_id, agent) = account(&server, "agent", "agent");
    let (_, stranger) = account(&server, "stranger", "agent");
    let (boss_id, boss) = account(&server, "boss", "agent");
    let ev = event(
        &server,
        "Scoped",
        T0.saturating_sub(Duration::from_secs(60)),
        4,
        json!({}),
    );
    add(&server, ev, "users", user_id);
    add(&server, ev, "agents", agent_id);
    add(&server, ev, "admins", boss_id);
    let check =
        |who: As<'_>, method: &str, path: &str, body: Option<Value>, status: u16, what: &str| {
            let reply = send(&server, who, method, path, body);
            assert_status(&reply, status, what);
            if status == 403 {
                assert_eq!(reply.json()["error"], "forbidden");
            }
        };
    let event_path = format!("/api/events/{ev}");
    let users_path = format!("{event_path}/users");
    let new_event = json!({"title": "New", "starts_at": T0, "ends_at": T0.saturating_add(Duration::from_secs(60)), "capacity": 1});

    check(As::Nobody, "GET", "/api/events", None, 401, "anonymous");
    for who in [
        As::Bearer(&user),
        As::Bearer(&agent),
        As::Bearer(&admin),
        As::Key(RO),
    ] {
        check(
            who,
            "GET",
            "/api/events",
            None,
            200,
            "everyone lists events",
        );
        check(who, "GET", &event_path, None, 200, "everyone sees an event");
    }
    check(
        As::Bearer(&user),
        "POST",
        "/api/events",
        Some(new_event.clone()),
        403,
        "user creates",
    );
    check(
        As::Bearer(&boss),
        "POST",
        "/api/events",
        Some(new_event.clone()),
        403,
        "event admin creates",
    );
    check(
        As::Key(RO),
        "POST",
        "/api/events",
        Some(new_event.clone()),
        403,
        "read-only key creates",
    );
    check(
        As::Bearer(&admin),
        "POST",
        "/api/events",
        Some(new_event.clone()),
        201,
        "admin creates",
    );

    let patch = Some(json!({"capacity": 20}));
    check(
        As::Bearer(&user),
        "PATCH",
        &event_path,
        patch.clone(),
        403,
        "user edits",
    );
    check(
        As::Bearer(&agent),
        "PATCH",
        &event_path,
        patch.clone(),
        403,
        "agent edits",
    );
    check(
        As::Bearer(&boss),
        "PATCH",
        &event_path,
        patch.clone(),
        200,
        "event admin edits",
    );
    // What an event's tickets unlock is the server's decision: widening it would let the event's
    // admins mint playback tokens for every stream.
    let widen = Some(json!({"streams": ["*"]}));
    check(
        As::Bearer(&boss),
        "PATCH",
        &event_path,
        widen.clone(),
        403,
        "event admin changes the streams",
    );
    check(
        As::Bearer(&admin),
        "PATCH",
        &event_path,
        Some(json!({"streams": ["conf/*"]})),
        200,
        "admin changes the streams",
    );

    check(
        As::Bearer(&user),
        "GET",
        &users_path,
        None,
        403,
        "user sees the roster",
    );
    check(
        As::Bearer(&stranger),
        "GET",
        &users_path,
        None,
        403,
        "another event's agent",
    );
    check(
        As::Bearer(&agent),
        "GET",
        &users_path,
        None,
        200,
        "the event's agent",
    );
    check(
        As::Key(RO),
        "GET",
        &format!("{event_path}/agents"),
        None,
        200,
        "read-only key",
    );
    let add_outsider = Some(json!({"user_id": outsider_id}));
    check(
        As::Bearer(&agent),
        "POST",
        &users_path,
        add_outsider.clone(),
        403,
        "agent edits the roster",
    );
    check(
        As::Bearer(&user),
        "POST",
        &users_path,
        add_outsider.clone(),
        403,
        "user edits the roster",
    );
    check(
        As::Key(RO),
        "POST",
        &users_path,
        add_outsider.clone(),
        403,
        "read-only key edits",
    );
    check(
        As::Bearer(&boss),
        "POST",
        &format!("{event_path}/agents"),
        add_outsider.clone(),
        // The account's stored role is at fault, not the request's shape.
        422,
        "a plain user as door staff",
    );

    check(
        As::Bearer(&outsider),
        "POST",
        "/api/tickets",
        Some(json!({"event_id": ev})),
        403,
        "not on the roster",
    );
    check(
        As::Bearer(&user),
        "POST",
        "/api/tickets",
        Some(json!({"event_id": ev, "user_id": outsider_id})),
        403,
        "for someone else",
    );
    check(
        As::Bearer(&agent),
        "POST",
        "/api/tickets",
        Some(json!({"event_id": ev, "user_id": user_id})),
        403,
        "agent issues",
    );
    let (ticket, app) = issue(&server, As::Bearer(&user), ev, None);

    let verify_body = Some(json!({"ticket_id": ticket, "code": code(&app, T0)}));
    check(
        As::Bearer(&user),
        "POST",
        "/api/tickets/verify",
        verify_body.clone(),
        403,
        "holder verifies",
    );
    check(
        As::Bearer(&stranger),
        "POST",
        "/api/tickets/verify",
        verify_body.clone(),
        403,
        "another event's agent",
    );
    check(
        As::Key(RO),
        "POST",
        "/api/tickets/verify",
        verify_body.clone(),
        403,
        "read-only key verifies",
    );
    check(
        As::Bearer(&user),
        "POST",
        "/api/tickets/verify",
        Some(json!({"ticket_id": 9999, "code": "000000"})),
        403,
        "user probes ids",
    );
    check(
        As::Bearer(&agent),
        "POST",
        "/api/tickets/verify",
        verify_body,
        200,
        "the event's agent",
    );

    let ticket_path = format!("/api/tickets/{ticket}");
    check(
        As::Bearer(&user),
        "DELETE",
        &ticket_path,
        None,
        403,
        "holder revokes",
    );
    check(
        As::Bearer(&agent),
        "DELETE",
        &ticket_path,
        None,
        403,
        "agent revokes",
    );
    check(
        As::Bearer(&agent),
        "DELETE",
        "/api/tickets/9999",
        None,
        403,
        "agent probes ids",
    );
    check(
        As::Bearer(&admin),
        "DELETE",
        "/api/tickets/9999",
        None,
        404,
        "admin",
    );
    check(
        As::Bearer(&boss),
        "DELETE",
        &ticket_path,
        None,
        204,
        "event admin revokes",
    );

    let other = format!("/api/users/{outsider_id}");
    check(
        As::Bearer(&user),
        "GET",
        &other,
        None,
        403,
        "another account",
    );
    check(
        As::Bearer(&user),
        "PATCH",
        &other,
        Some(json!({"first_name": "X"})),
        403,
        "another account",
    );
    check(
        As::Bearer(&user),
        "PATCH",
        &format!("/api/users/{user_id}"),
        Some(json!({"role": "admin"})),
        403,
        "own role",
    );
    check(
        As::Bearer(&agent),
        "GET",
        &other,
        None,
        403,
        "agents see rosters, not accounts",
    );
    check(As::Bearer(&admin), "GET", &other, None, 200, "admin");
    check(
        As::Bearer(&admin),
        "PATCH",
        &other,
        Some(json!({"role": "agent"})),
        200,
        "admin changes a role",
    );
    check(
        As::Key("wrong-key-0123456789"),
        "GET",
        &other,
        None,
        401,
        "wrong key",
    );
}

#[test]
fn events_search_paginate_and_rosters_fill_up() {
    let (_dir, db) = temp_db();
    let server = server(&db);
    for (i, title) in [
        "RustConf Day 1",
        "rustconf day 2",
        "GopherCon",
        "RustConf Day 3",
    ]
    .iter()
    .enumerate()
    {
        event(
            &server,
            title,
            T0.saturating_add(Duration::from_secs(3600 * i as u64)),
            1,
            json!({"capacity": 2}),
        );
    }
    let page = send(
        &server,
        As::Key(RO),
        "GET",
        "/api/events?title=rustCONF&page=2&per_page=2",
        None,
    )
    .json();
    assert_eq!(
        (page["total"].clone(), page["page"].clone()),
        (json!(3), json!(2))
    );
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["title"], "RustConf Day 3");
    let bad = send(&server, As::Key(RO), "GET", "/api/events?page=0", None);
    assert_eq!(
        (bad.status, bad.json()["field"].clone()),
        (400, json!("page"))
    );
    let bad = send(
        &server,
        As::Key(RO),
        "GET",
        "/api/events?per_page=1000",
        None,
    );
    assert_eq!(bad.json()["field"], "per_page");
    // The one paging style of every listing gives the same window.
    let window = send(
        &server,
        As::Key(RO),
        "GET",
        "/api/events?title=rustCONF&limit=2&offset=2",
        None,
    )
    .json();
    assert_eq!(
        (
            window["total"].clone(),
            window["limit"].clone(),
            window["offset"].clone()
        ),
        (json!(3), json!(2), json!(2))
    );
    assert_eq!(window["items"][0]["title"], "RustConf Day 3");
    assert!(
        window.get("page").is_none(),
        "page numbers only when asked by page"
    );
    let both = send(
        &server,
        As::Key(RO),
        "GET",
        "/api/events?limit=2&page=1",
        None,
    );
    assert_eq!(
        (both.status, both.json()["field"].clone()),
        (400, json!("limit"))
    );
    assert_status(
        &send(&server, As::Key(RO), "GET", "/api/events/9999", None),
        404,
        "missing",
    );
    let bad_event = json!({"title": "x", "starts_at": T0, "ends_at": T0, "capacity": 1});
    let reply = send(&server, As::Key(RW), "POST", "/api/events", Some(bad_event));
    // Each field well formed, together impossible: 422.
    assert_eq!(
        (reply.status, reply.json()["field"].clone()),
        (422, json!("ends_at"))
    );

    let ids: Vec<i64> = (0..3)
        .map(|i| register(&server, &format!("fan{i}"), "user"))
        .collect();
    add(&server, 1, "users", ids[0]);
    let again = send(
        &server,
        As::Key(RW),
        "POST",
        "/api/events/1/users",
        Some(json!({"username": "FAN0"})),
    );
    assert_eq!(
        (again.status, again.json()["added"].clone()),
        (200, json!(false))
    );
    add(&server, 1, "users", ids[1]);
    let full = send(
        &server,
        As::Key(RW),
        "POST",
        "/api/events/1/users",
        Some(json!({"user_id": ids[2]})),
    );
    assert_eq!(
        (full.status, full.json()["field"].clone()),
        (409, json!("capacity"))
    );
    let missing = send(
        &server,
        As::Key(RW),
        "POST",
        "/api/events/1/users",
        Some(json!({"user_id": 9999})),
    );
    assert_status(&missing, 404, "no such account");
    let roster = send(
        &server,
        As::Key(RO),
        "GET",
        "/api/events/1/users?per_page=1&page=2",
        None,
    )
    .json();
    assert_eq!(roster["total"], 2);
    assert_eq!(roster["items"][0]["username"], "fan1");
    assert!(
        roster["items"][0].get("email").is_none(),
        "ids and names only"
    );
    let event = send(&server, As::Key(RO), "GET", "/api/events/1", None).json();
    assert_eq!(
        (event["registered"].clone(), event["capacity"].clone()),
        (json!(2), json!(2))
    );
    let shrink = send(
        &server,
        As::Key(RW),
        "PATCH",
        "/api/events/1",
        Some(json!({"capacity": 1})),
    );
    // Below what is registered: the stored registrations are at fault, 422.
    assert_eq!(
        (shrink.status, shrink.json()["field"].clone()),
        (422, json!("capacity"))
    );
}

#[test]
fn tickets_issue_once_and_the_door_gives_every_reason() {
    let (_dir, db) = temp_db();
    let server = server(&db);
    let (holder_id, holder) = account(&server, "holder", "user");
    let (agent_id, agent) = account(&server, "door", "agent");
    let started = T0.saturating_sub(Duration::from_secs(3600));
    let ev = event(&server, "Now: live", started, 2, json!({}));
    let later = event(
        &server,
        "Later",
        T0.saturating_add(Duration::from_secs(86400)),
        2,
        json!({}),
    );
    for e in [ev, later] {
        add(&server, e, "users", holder_id);
        add(&server, e, "agents", agent_id);
    }

    let reply = send(
        &server,
        As::Bearer(&holder),
        "POST",
        "/api/tickets",
        Some(json!({"event_id": ev})),
    );
    assert_status(&reply, 201, "issue");
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let body = reply.json();
    let uri = body["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    assert!(uri.contains(&format!("secret={}", body["secret"].as_str().unwrap())));
    assert!(body["qr_svg"].as_str().unwrap().contains("<svg"));
    assert!(body["qr_png_url"]
        .as_str()
        .unwrap()
        .starts_with("data:image/png;base64,iVBOR"));
    let ticket = body["ticket_id"].as_i64().unwrap();
    let app = TOTP::from_url_unchecked(uri).unwrap();
    let again = send(
        &server,
        As::Bearer(&holder),
        "POST",
        "/api/tickets",
        Some(json!({"event_id": ev})),
    );
    assert_eq!(
        (again.status, again.json()["field"].clone()),
        (409, json!("ticket"))
    );
    let missing = send(
        &server,
        As::Key(RW),
        "POST",
        "/api/tickets",
        Some(json!({"event_id": 9999, "user_id": holder_id})),
    );
    assert_status(&missing, 404, "no such event");

    let door = As::Bearer(&agent);
    assert_eq!(
        reason(&verify(&server, door, 9999, "123456")),
        "ticket_not_found"
    );
    assert_eq!(
        reason(&verify(&server, door, ticket, "12ab56")),
        "code_invalid"
    );
    let wrong = if code(&app, T0) == "000000" {
        "000001"
    } else {
        "000000"
    };
    assert_eq!(
        reason(&verify(&server, door, ticket, wrong)),
        "code_invalid"
    );
    let ok = verify(&server, door, ticket, &code(&app, T0));
    assert_eq!(ok["valid"], true, "{ok}");
    assert_eq!(ok["holder"]["username"], "holder");
    assert!(ok["holder"].get("email").is_none());
    assert_eq!(ok["event"]["id"], ev);
    assert_eq!(ok["first_entry"], true);
    assert_eq!(
        reason(&verify(&server, door, ticket, &code(&app, T0))),
        "code_reused"
    );
    server.advance(30);
    assert_eq!(
        reason(&verify(&server, door, ticket, &code(&app, now(&server)))),
        "already_checked_in"
    );

    let (future, future_app) = issue(&server, As::Bearer(&holder), later, None);
    assert_eq!(
        reason(&verify(
            &server,
            door,
            future,
            &code(&future_app, now(&server))
        )),
        "event_not_started"
    );

    let revoke = send(
        &server,
        As::Key(RW),
        "DELETE",
        &format!("/api/tickets/{future}"),
        None,
    );
    assert_status(&revoke, 204, "revoke");
    assert_eq!(
        reason(&verify(
            &server,
            door,
            future,
            &code(&future_app, now(&server))
        )),
        "ticket_revoked"
    );

    server.advance(2 * 3600);
    // The agent's access token has expired meanwhile.
    let agent = login(&server, "door");
    assert_eq!(
        reason(&verify(
            &server,
            As::Bearer(&agent),
            ticket,
            &code(&app, now(&server))
        )),
        "event_over"
    );

    // Every door check is counted for /metrics, by result and reason.
    let metrics = send(&server, As::Key(RO), "GET", "/metrics", None);
    assert_status(&metrics, 200, "metrics");
    for (labels, count) in [
        (r#"reason="none",result="valid""#, 1),
        (r#"reason="ticket_not_found",result="invalid""#, 1),
        (r#"reason="code_invalid",result="invalid""#, 2),
        (r#"reason="code_reused",result="invalid""#, 1),
        (r#"reason="already_checked_in",result="invalid""#, 1),
        (r#"reason="event_not_started",result="invalid""#, 1),
        (r#"reason="ticket_revoked",result="invalid""#, 1),
        (r#"reason="event_over",result="invalid""#, 1),
    ] {
        let line = format!("auth_door_checks_total{{{labels}}} {count}");
        assert!(
            metrics.body.lines().any(|l| l == line),
            "{line} missing:\n{}",
            metrics.body
        );
    }
}

#[test]
fn codes_one_step_either_side_pass_and_two_steps_fail() {
    let (_dir, db) = temp_db();
    let server = server(&db);
    let (holder_id, _) = account(&server, "holder", "user");
    let (agent_id, agent) = account(&server, "door", "agent");
    // Entry any number of times, so that each accepted code shows only the skew rule.
    let ev = event(
        &server,
        "Skew",
        T0.saturating_sub(Duration::from_secs(3600)),
        3,
        json!({"single_entry": false}),
    );
    add(&server, ev, "users", holder_id);
    add(&server, ev, "agents", agent_id);
    let (ticket, app) = issue(&server, As::Key(RW), ev, Some(holder_id));
    // In the middle of a step, so that ±30 s is exactly one step away.
    let now = Timestamp::from_unix_seconds((T0.unix_seconds() / 30) * 30 + 15);
    server.clock.set(now);
    let at = |seconds: i64| Timestamp::from_unix_seconds(now.unix_seconds() + seconds);
    let door = As::Bearer(&agent);
    assert_eq!(
        reason(&verify(&server, door, ticket, &code(&app, at(-60)))),
        "code_invalid",
        "two steps behind"
    );
    assert_eq!(
        reason(&verify(&server, door, ticket, &code(&app, at(60)))),
        "code_invalid",
        "two steps ahead"
    );
    let behind = verify(&server, door, ticket, &code(&app, at(-30)));
    assert_eq!(
        (behind["valid"].clone(), behind["first_entry"].clone()),
        (json!(true), json!(true))
    );
    let ahead = verify(&server, door, ticket, &code(&app, at(30)));
    assert_eq!(
        (ahead["valid"].clone(), ahead["first_entry"].clone()),
        (json!(true), json!(false))
    );
    let current = verify(&server, door, ticket, &code(&app, now));
    assert_eq!(current["valid"], true);
    assert_eq!(
        reason(&verify(&server, door, ticket, &code(&app, at(30)))),
        "code_reused"
    );
}

#[test]
fn a_used_code_and_a_logout_survive_a_restart() {
    let (_dir, db) = temp_db();
    let clock = Arc::new(ManualClock::new(T0));
    let first = server_with(keyed_config(&db), &db, Arc::clone(&clock));
    let (holder_id, holder) = account(&first, "holder", "user");
    let (agent_id, agent) = account(&first, "door", "agent");
    let ev = event(
        &first,
        "Restart",
        T0.saturating_sub(Duration::from_secs(60)),
        2,
        json!({"single_entry": false}),
    );
    add(&first, ev, "users", holder_id);
    add(&first, ev, "agents", agent_id);
    let (ticket, app) = issue(&first, As::Bearer(&holder), ev, None);
    let shown = code(&app, T0);
    assert_eq!(
        verify(&first, As::Bearer(&agent), ticket, &shown)["valid"],
        true
    );
    assert_status(
        &send(&first, As::Bearer(&holder), "POST", "/api/logout", None),
        204,
        "logout",
    );
    first.stop();

    let second = server_with(keyed_config(&db), &db, clock);
    assert_eq!(
        reason(&verify(&second, As::Bearer(&agent), ticket, &shown)),
        "code_reused"
    );
    let me = format!("/api/users/{holder_id}");
    assert_status(
        &send(&second, As::Bearer(&holder), "GET", &me, None),
        401,
        "still logged out",
    );
    assert_status(
        &send(
            &second,
            As::Bearer(&agent),
            "GET",
            &format!("/api/users/{agent_id}"),
            None,
        ),
        200,
        "other tokens still valid",
    );
}

/// A server whose store holds an Ed25519 signing key `ed-1`, and a ring with its secret (to sign
/// what the API would not).
fn signing_server(db: &Path) -> (TestServer, KeyRing) {
    common::signing_server_with(keyed_config(db), db, "ed-1", Algorithm::Ed25519)
}

fn verify_signed(server: &TestServer, who: As<'_>, eticket: &str) -> Reply {
    send(
        server,
        who,
        "POST",
        "/api/tickets/verify-signed",
        Some(json!({ "eticket": eticket })),
    )
}

/// The claims of an e-ticket for `ticket` of `event` held by `holder`, as the server signs them.
fn eticket_claims(holder: i64, event: i64, ticket: i64, now: Timestamp) -> Claims {
    Claims {
        evt: Some(event.to_string()),
        tkt: Some(ticket.to_string()),
        exp: now.unix_seconds() + 3600,
        ..Claims::new(holder.to_string(), now, Duration::ZERO)
    }
}

#[test]
fn signed_etickets_verify_offline_and_at_the_door_with_every_reason() {
    let (_dir, db) = temp_db();
    let (server, ring) = signing_server(&db);
    let (user_id, user) = account(&server, "holder", "user");
    let (_, outsider) = account(&server, "outsider", "user");
    let (agent_id, agent) = account(&server, "agent", "agent");
    let (_, stranger) = account(&server, "stranger", "agent");
    let (boss_id, boss) = account(&server, "boss", "agent");
    let ev = event(
        &server,
        "Gala",
        T0.saturating_sub(Duration::from_secs(60)),
        4,
        json!({"single_entry": true}),
    );
    add(&server, ev, "users", user_id);
    add(&server, ev, "agents", agent_id);
    add(&server, ev, "admins", boss_id);
    let (ticket, _) = issue(&server, As::Bearer(&user), ev, None);
    let path = format!("/api/tickets/{ticket}/signed");

    // Who may have the e-ticket: its holder and the event's admins.
    for (who, status, what) in [
        (As::Nobody, 401, "anonymous"),
        (As::Bearer(&outsider), 403, "another user"),
        (As::Bearer(&agent), 403, "the event's agent"),
        (As::Key(RO), 403, "read-only key"),
        (As::Bearer(&boss), 200, "the event's admin"),
        (As::Cookie(&user), 200, "the holder"),
    ] {
        assert_status(&send(&server, who, "GET", &path, None), status, what);
    }
    let missing = send(
        &server,
        As::Bearer(&user),
        "GET",
        "/api/tickets/9999/signed",
        None,
    );
    assert_status(&missing, 404, "no such ticket");
    let reply = send(&server, As::Bearer(&user), "GET", &path, None);
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let body = reply.json();
    let eticket = body["eticket"].as_str().unwrap().to_owned();
    assert!(eticket.starts_with("v1.ed-1."), "{eticket}");
    assert_eq!(body["kid"], "ed-1");
    assert!(body["qr_svg"].as_str().unwrap().contains("<svg"));
    assert!(body["qr_png_url"]
        .as_str()
        .unwrap()
        .starts_with("data:image/png;base64,"));

    // A scanner with the published keys alone reads it.
    let keys = send(&server, As::Key(RO), "GET", "/api/signing-keys", None).json();
    let keys: Vec<KeyInfo> = serde_json::from_value(keys["items"].clone()).unwrap();
    let scanner = public_ring(&keys).unwrap();
    let read = signed::read(&scanner, &eticket, now(&server)).unwrap();
    assert_eq!(
        (read.ticket_id, read.event_id, read.holder_id),
        (ticket, ev, user_id)
    );

    // Who may check it at the door: the event's staff.
    for (who, what) in [
        (As::Bearer(&user), "the holder"),
        (As::Bearer(&stranger), "another event's agent"),
        (As::Key(RO), "read-only key"),
    ] {
        assert_status(&verify_signed(&server, who, &eticket), 403, what);
    }
    let answer = verify_signed(&server, As::Bearer(&agent), &eticket).json();
    assert_eq!(answer["valid"], true, "{answer}");
    assert_eq!(answer["first_entry"], true);
    assert_eq!(answer["holder"]["username"], "holder");
    let again = verify_signed(&server, As::Bearer(&agent), &eticket).json();
    assert_eq!(reason(&again), "already_checked_in");

    // Every signature reason, before the ticket is looked at.
    let refused = |token: &str| {
        let reply = verify_signed(&server, As::Bearer(&agent), token);
        assert_status(&reply, 200, "a refusal is an answer");
        reason(&reply.json()).to_owned()
    };
    assert_eq!(refused("not a ticket"), "malformed");
    assert_eq!(
        refused(&eticket.replacen("v1.ed-1.", "v1.ed-9.", 1)),
        "unknown_key"
    );
    let mut forged = eticket.clone().into_bytes();
    let in_signature = eticket.rfind('.').unwrap() + 10;
    forged[in_signature] = if forged[in_signature] == b'A' {
        b'B'
    } else {
        b'A'
    };
    assert_eq!(
        refused(&String::from_utf8(forged).unwrap()),
        "bad_signature"
    );
    let playback = send(
        &server,
        As::Key(RW),
        "POST",
        "/api/playback-tokens",
        Some(json!({"user_id": "holder"})),
    );
    assert_eq!(
        refused(playback.json()["token"].as_str().unwrap()),
        "wrong_kind"
    );
    let at = now(&server);
    let early = Claims {
        nbf: Some(at.unix_seconds() + 600),
        ..eticket_claims(user_id, ev, ticket, at)
    };
    assert_eq!(
        refused(&ring.sign("ed-1", &early).unwrap()),
        "not_yet_valid"
    );
    let unknown = eticket_claims(user_id, ev, 9999, at);
    assert_eq!(
        refused(&ring.sign("ed-1", &unknown).unwrap()),
        "ticket_not_found"
    );

    // A later event's e-ticket, before the event, and after its ticket is revoked.
    let later = event(
        &server,
        "Encore",
        T0.saturating_add(Duration::from_secs(7200)),
        1,
        json!({}),
    );
    add(&server, later, "users", user_id);
    add(&server, later, "agents", agent_id);
    add(&server, later, "admins", boss_id);
    let (encore, _) = issue(&server, As::Bearer(&user), later, None);
    let encore_path = format!("/api/tickets/{encore}/signed");
    let encore_ticket = send(&server, As::Bearer(&user), "GET", &encore_path, None).json()
        ["eticket"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(refused(&encore_ticket), "event_not_started");
    let revoke = send(
        &server,
        As::Bearer(&boss),
        "DELETE",
        &format!("/api/tickets/{encore}"),
        None,
    );
    assert_status(&revoke, 204, "revoke");
    assert_eq!(refused(&encore_ticket), "ticket_revoked");
    let no_more = send(&server, As::Bearer(&user), "GET", &encore_path, None);
    assert_status(&no_more, 409, "a revoked ticket has no e-ticket");

    // The first event ends: within the leeway the door says so, past it the signature does.
    server.advance(4 * 3600 - 60 + 5);
    let agent = login(&server, "agent");
    let answer = verify_signed(&server, As::Bearer(&agent), &eticket).json();
    assert_eq!(reason(&answer), "event_over");
    server.advance(60);
    let answer = verify_signed(&server, As::Bearer(&agent), &eticket).json();
    assert_eq!(reason(&answer), "expired");
}

#[test]
fn a_ticket_holder_mints_a_playback_token_bounded_by_the_ticket() {
    let (_dir, db) = temp_db();
    let (server, _) = signing_server(&db);
    let (user_id, user) = account(&server, "viewer", "user");
    let (outsider_id, outsider) = account(&server, "outsider", "user");
    let ev = event(
        &server,
        "Final",
        T0.saturating_sub(Duration::from_secs(60)),
        2,
        json!({"streams": ["conf/*", "lobby"]}),
    );
    add(&server, ev, "users", user_id);
    add(&server, ev, "users", outsider_id);
    let (ticket, _) = issue(&server, As::Bearer(&user), ev, None);
    let mint =
        |who: As<'_>, body: Value| send(&server, who, "POST", "/api/playback-tokens", Some(body));

    let reply = mint(As::Bearer(&user), json!({"ticket_id": ticket}));
    assert_status(&reply, 201, "the holder mints");
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let minted = reply.json();
    let token = minted["token"].as_str().unwrap();
    assert_eq!(minted["claims"]["sub"], user_id.to_string());
    assert_eq!(minted["claims"]["evt"], ev.to_string());
    assert_eq!(minted["claims"]["streams"], json!(["conf/*", "lobby"]));
    assert_eq!(minted["claims"]["max_sessions"], 1);
    let event_end = T0.saturating_add(Duration::from_secs(2 * 3600 - 60));
    let expires = Timestamp::parse_rfc3339(minted["expires_at"].as_str().unwrap()).unwrap();
    assert!(expires <= event_end, "{expires} after the event's end");

    // It plays the event's streams, one player at a time, and nothing else.
    assert_eq!(
        server.auth(&play(token, "conf/main", "p1")).verdict(),
        "allowed"
    );
    assert_eq!(
        server.auth(&play(token, "conf/main", "p2")).verdict(),
        "session_limit_reached"
    );
    assert_eq!(
        server.auth(&play(token, "backstage", "p3")).verdict(),
        "stream_not_allowed"
    );

    // One player per ticket, not per token: every token of the ticket shares its one slot.
    let again = mint(As::Bearer(&user), json!({"ticket_id": ticket})).json();
    let second = again["token"].as_str().unwrap();
    assert_ne!(second, token);
    assert_eq!(again["claims"]["grp"], format!("ticket:{ticket}"));
    assert_eq!(
        server.auth(&play(second, "conf/main", "p4")).verdict(),
        "session_limit_reached",
        "a second token does not make a second player"
    );
    let sessions = send(&server, As::Key(RW), "GET", "/api/sessions", None).json();
    assert_eq!(sessions["total"], 1);
    let first_session = sessions["items"][0]["id"].as_i64().unwrap();
    let terminate = send(
        &server,
        As::Key(RW),
        "DELETE",
        &format!("/api/sessions/{first_session}"),
        None,
    );
    assert_status(&terminate, 204, "terminate the first player");
    // The slot is free: the second token plays, over nginx-rtmp, whose play_done must find the
    // session by its group to free the slot again.
    let rtmp = |call: &str, token: &str| {
        let form =
            format!("app=live&addr=192.0.2.10&clientid=7&call={call}&name=lobby&token={token}");
        server.post(
            "/hooks/nginx-rtmp",
            "application/x-www-form-urlencoded",
            &form,
        )
    };
    assert_status(&rtmp("play", second), 200, "the second token plays");
    assert_eq!(
        server.auth(&play(token, "conf/main", "p5")).verdict(),
        "session_limit_reached",
        "now the first token waits"
    );
    assert_status(&rtmp("play_done", second), 200, "the second player leaves");
    assert_eq!(
        server.auth(&play(token, "conf/main", "p5")).verdict(),
        "allowed",
        "play_done freed the ticket's slot"
    );

    // What a holder may ask for is bounded by the ticket.
    let narrow = mint(
        As::Cookie(&user),
        json!({"ticket_id": ticket, "streams": ["conf/main"], "ttl_seconds": 60}),
    );
    assert_status(&narrow, 201, "a narrower token, by cookie");
    assert_eq!(narrow.json()["claims"]["streams"], json!(["conf/main"]));
    let wide = mint(
        As::Bearer(&user),
        json!({"ticket_id": ticket, "streams": ["*"]}),
    );
    // Well formed, but not what the stored event unlocks: 422.
    assert_status(&wide, 422, "a stream outside the event");
    assert_eq!(wide.json()["field"], "streams");
    let named = mint(
        As::Bearer(&user),
        json!({"ticket_id": ticket, "user_id": "someone"}),
    );
    assert_status(&named, 400, "the holder cannot choose the name");
    let unlimited = mint(
        As::Bearer(&user),
        json!({"ticket_id": ticket, "max_sessions": 0}),
    );
    assert_status(&unlimited, 400, "nor the session limit");
    assert_status(
        &mint(As::Bearer(&outsider), json!({"ticket_id": ticket})),
        403,
        "someone else's ticket",
    );
    assert_status(
        &mint(As::Bearer(&user), json!({"ticket_id": 9999})),
        404,
        "no such ticket",
    );
    assert_status(
        &mint(As::Bearer("not-a-token"), json!({"ticket_id": ticket})),
        401,
        "a bad access token",
    );
    let revoke = send(
        &server,
        As::Key(RW),
        "DELETE",
        &format!("/api/tickets/{ticket}"),
        None,
    );
    assert_status(&revoke, 204, "revoke");
    assert_status(
        &mint(As::Bearer(&user), json!({"ticket_id": ticket})),
        409,
        "a revoked ticket",
    );
    // Revoking reaches the live player of a token minted from the ticket: its session is cut,
    // and every token of the ticket is refused from then on.
    let recheck = [
        play(token, "conf/main", "p5"),
        vec![("request_type", "update_session")],
    ]
    .concat();
    assert_eq!(server.auth(&recheck).verdict(), "token_revoked");
    assert_eq!(
        server.auth(&play(second, "conf/main", "p6")).verdict(),
        "token_revoked",
        "nor may another token of the ticket take its place"
    );
    let live = send(&server, As::Key(RW), "GET", "/api/sessions", None).json();
    assert!(live["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| !s["terminated_at"].is_null()));
}

#[test]
fn json_bodies_must_say_they_are_json() {
    let (_dir, db) = temp_db();
    let server = server(&db);
    let (_, admin) = account(&server, "root", "admin");
    // What a page on another origin could send with the admin's cookie and no preflight.
    let body = json!({"user": {"username": "mallory", "password": PASSWORD, "first_name": "M",
                               "last_name": "M", "email": "m@example.org"}, "role": "admin"})
    .to_string();
    let address = server.base.trim_start_matches("http://").to_owned();
    for content_type in ["", "Content-Type: text/plain\r\n"] {
        let mut stream = std::net::TcpStream::connect(&address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(
            stream,
            "POST /api/users HTTP/1.1\r\nHost: x\r\nCookie: access_token={admin}\r\n\
             {content_type}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 415"),
            "{content_type:?}: {answer}"
        );
    }
    let missing = send(&server, As::Key(RW), "GET", "/api/users/2", None);
    assert_status(&missing, 404, "no account was created");
}

#[test]
fn me_lists_my_events_and_tickets_and_admin_cookies_reach_the_management_api() {
    let (_dir, db) = temp_db();
    let server = server(&db);
    let (user, user_token) = account(&server, "walleter", "user");
    let (agent, agent_token) = account(&server, "doorkeeper", "agent");
    let (_, admin_token) = account(&server, "operator", "admin");
    let first = event(&server, "First", T0, 2, json!({}));
    let second = event(&server, "Second", T0, 2, json!({}));
    add(&server, first, "users", user);
    add(&server, second, "users", user);
    add(&server, second, "agents", agent);
    let (ticket, _) = issue(&server, As::Bearer(&user_token), second, None);

    let me = send(&server, As::Cookie(&user_token), "GET", "/api/me", None);
    assert_status(&me, 200, "me");
    let me = me.json();
    assert_eq!(me["account"]["username"], "walleter");
    assert!(me["account"].get("password_hash").is_none());
    let events = me["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["event"]["id"], first);
    assert_eq!(events[0]["tickets"], json!([]));
    assert_eq!(
        (
            &events[1]["event"]["id"],
            &events[1]["attendee"],
            &events[1]["agent"]
        ),
        (&json!(second), &json!(true), &json!(false))
    );
    assert_eq!(events[1]["tickets"][0]["id"], ticket);
    assert!(events[1]["tickets"][0].get("salt").is_none());

    let door = send(&server, As::Bearer(&agent_token), "GET", "/api/me", None).json();
    assert_eq!(door["events"].as_array().unwrap().len(), 1);
    assert_eq!(door["events"][0]["agent"], true);
    assert_eq!(door["events"][0]["attendee"], false);
    assert_status(
        &send(&server, As::Nobody, "GET", "/api/me", None),
        401,
        "nobody",
    );
    assert_status(
        &send(&server, As::Key(RW), "GET", "/api/me", None),
        400,
        "a key",
    );

    // The console: an administrator's cookie does what a read-write key does; a bearer access
    // token is still not an API key there, and other accounts are told it is for admins.
    let sessions = send(
        &server,
        As::Cookie(&admin_token),
        "GET",
        "/api/sessions",
        None,
    );
    assert_status(&sessions, 200, "admin cookie lists sessions");
    let created = send(
        &server,
        As::Cookie(&admin_token),
        "POST",
        "/api/tokens",
        Some(json!({"user_id": "from-console"})),
    );
    assert_status(&created, 201, "admin cookie creates a token");
    let refused = send(
        &server,
        As::Cookie(&user_token),
        "GET",
        "/api/sessions",
        None,
    );
    assert_status(&refused, 403, "a user's cookie");
    assert_eq!(refused.json()["error"], "forbidden");
    assert_status(
        &send(
            &server,
            As::Bearer(&admin_token),
            "GET",
            "/api/sessions",
            None,
        ),
        401,
        "an access token as bearer",
    );
}

#[test]
fn a_door_that_names_its_event_refuses_other_events_tickets_without_using_them() {
    let (_dir, db) = temp_db();
    let server = server(&db);
    let (user, user_token) = account(&server, "twodoors", "user");
    let (agent, agent_token) = account(&server, "bothdoors", "agent");
    let here = event(&server, "Here", T0, 2, json!({}));
    let there = event(&server, "There", T0, 2, json!({}));
    for event in [here, there] {
        add(&server, event, "users", user);
        add(&server, event, "agents", agent);
    }
    let (ticket, app) = issue(&server, As::Bearer(&user_token), there, None);
    let code = code(&app, now(&server));
    let at = |door: i64| {
        let reply = send(
            &server,
            As::Bearer(&agent_token),
            "POST",
            "/api/tickets/verify",
            Some(json!({"ticket_id": ticket, "code": code, "event_id": door})),
        );
        assert_status(&reply, 200, "verify");
        reply.json()
    };
    let refused = at(here);
    assert_eq!(reason(&refused), "other_event");
    assert_eq!(refused["ticket_id"], ticket);
    let admitted = at(there);
    assert_eq!(admitted["valid"], true, "the code was not used: {admitted}");
    assert_eq!(admitted["event"]["id"], there);
    assert_eq!(reason(&at(there)), "code_reused");
}

#[test]
fn a_door_that_names_its_event_refuses_other_events_etickets_without_using_them() {
    let (_dir, db) = temp_db();
    let (server, _) = signing_server(&db);
    let (user, user_token) = account(&server, "twoscans", "user");
    let (agent, agent_token) = account(&server, "bothscans", "agent");
    let here = event(&server, "Here", T0, 2, json!({}));
    let there = event(&server, "There", T0, 2, json!({}));
    for event in [here, there] {
        add(&server, event, "users", user);
        add(&server, event, "agents", agent);
    }
    let (ticket, _) = issue(&server, As::Bearer(&user_token), there, None);
    let signed = send(
        &server,
        As::Bearer(&user_token),
        "GET",
        &format!("/api/tickets/{ticket}/signed"),
        None,
    );
    let eticket = signed.json()["eticket"].as_str().unwrap().to_owned();
    let at = |door: i64| {
        let reply = send(
            &server,
            As::Bearer(&agent_token),
            "POST",
            "/api/tickets/verify-signed",
            Some(json!({"eticket": eticket, "event_id": door})),
        );
        assert_status(&reply, 200, "verify-signed");
        reply.json()
    };
    assert_eq!(reason(&at(here)), "other_event");
    let admitted = at(there);
    assert_eq!(
        admitted["valid"], true,
        "not checked in by the wrong door: {admitted}"
    );
    assert_eq!(admitted["first_entry"], true);
}

/// An agent guessing codes: the ticket locks after 5 wrong ones in a row (even the right code
/// is then refused) until an event admin lifts it; past 30 misses the agent gets 429.
#[test]
fn door_codes_cannot_be_guessed() {
    let (_dir, db) = temp_db();
    let server = server(&db);
    let (holder, holder_token) = account(&server, "guessed", "user");
    let (agent, agent_token) = account(&server, "guesser", "agent");
    let ev = event(&server, "Guess", T0, 2, json!({}));
    add(&server, ev, "users", holder);
    add(&server, ev, "agents", agent);
    let (ticket, app) = issue(&server, As::Bearer(&holder_token), ev, None);
    let right = code(&app, now(&server));
    let wrong = if right == "000000" {
        "000001"
    } else {
        "000000"
    };
    for _ in 0..5 {
        let answer = verify(&server, As::Bearer(&agent_token), ticket, wrong);
        assert_eq!(reason(&answer), "code_invalid");
    }
    let locked = verify(&server, As::Bearer(&agent_token), ticket, &right);
    assert_eq!(reason(&locked), "too_many_attempts");
    let unlock = format!("/api/tickets/{ticket}/unlock");
    let by_agent = send(&server, As::Bearer(&agent_token), "POST", &unlock, None);
    assert_status(&by_agent, 403, "only an event admin lifts a lock");
    assert_status(
        &send(&server, As::Key(RW), "POST", &unlock, None),
        204,
        "unlock",
    );
    assert_status(
        &send(
            &server,
            As::Key(RW),
            "POST",
            "/api/tickets/9999/unlock",
            None,
        ),
        404,
        "unlock an unknown ticket",
    );
    let admitted = verify(&server, As::Bearer(&agent_token), ticket, &right);
    assert_eq!(admitted["valid"], true, "{admitted}");

    // Misses spread over many tickets: the agent is throttled. The 6 misses above count too,
    // and the right code was taken back.
    let mut throttled = None;
    for n in 0..40 {
        let reply = send(
            &server,
            As::Bearer(&agent_token),
            "POST",
            "/api/tickets/verify",
            Some(json!({"ticket_id": 10_000 + n, "code": wrong})),
        );
        if reply.status == 429 {
            throttled = Some((n, reply));
            break;
        }
        assert_eq!(reason(&reply.json()), "ticket_not_found");
    }
    let (n, reply) = throttled.expect("the agent is throttled");
    assert_eq!(n, 30 - 6, "30 misses in all");
    assert_eq!(reply.json()["error"], "too_many_attempts");
    assert!(reply.header("retry-after").is_some());
}

/// A revoked ticket's playback tokens, and a token revoked by its id, are refused from then on
/// (`token_revoked`), whatever stream they ask for next: at once on the node that revoked, and
/// within a refresh (about a second) on another node sharing the database.
#[test]
fn revoked_playback_tokens_are_refused_on_every_node() {
    let (_dir, db) = temp_db();
    let (server, _) = signing_server(&db);
    let other = server_with(keyed_config(&db), &db, Arc::new(ManualClock::new(T0)));
    let (user_id, user) = account(&server, "revokee", "user");
    let ev = event(
        &server,
        "Revoked",
        T0.saturating_sub(Duration::from_secs(60)),
        2,
        json!({}),
    );
    add(&server, ev, "users", user_id);
    let (ticket, _) = issue(&server, As::Bearer(&user), ev, None);
    let mint = |server: &TestServer, who: As<'_>, body: Value| {
        let reply = send(server, who, "POST", "/api/playback-tokens", Some(body));
        assert_status(&reply, 201, "mint");
        reply.json()
    };
    let held = mint(&server, As::Bearer(&user), json!({"ticket_id": ticket}));
    let held = held["token"].as_str().unwrap().to_owned();
    assert_eq!(
        server.auth(&play(&held, "conf/a", "p1")).verdict(),
        "allowed"
    );
    let eventually = |node: &TestServer, token: &str, stream: &str| {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let verdict = node.auth(&play(token, stream, "p9")).verdict();
            if verdict == "token_revoked" || std::time::Instant::now() > deadline {
                return verdict;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };

    let revoke = send(
        &server,
        As::Key(RW),
        "DELETE",
        &format!("/api/tickets/{ticket}"),
        None,
    );
    assert_status(&revoke, 204, "revoke the ticket");
    assert_eq!(
        server.auth(&play(&held, "conf/b", "p2")).verdict(),
        "token_revoked",
        "a new session, on another stream, is refused at once"
    );
    assert_eq!(eventually(&other, &held, "conf/c"), "token_revoked");

    // One token by its id, revoked on the other node; unlimited, so decided with no store call.
    let minted = mint(
        &other,
        As::Key(RW),
        json!({"user_id": "guest", "streams": ["conf/*"]}),
    );
    let token = minted["token"].as_str().unwrap();
    let jti = minted["claims"]["jti"].as_str().unwrap();
    assert_eq!(
        server.auth(&play(token, "conf/a", "q1")).verdict(),
        "allowed"
    );
    let revoke = |body: Value| {
        send(
            &other,
            As::Key(RW),
            "POST",
            "/api/playback-tokens/revoke",
            Some(body),
        )
    };
    assert_status(
        &revoke(json!({"jti": jti, "group": "x"})),
        400,
        "one of the two",
    );
    assert_status(&revoke(json!({})), 400, "one of the two");
    assert_status(&revoke(json!({"jti": jti})), 204, "revoke by id");
    assert_eq!(
        other.auth(&play(token, "conf/a", "q2")).verdict(),
        "token_revoked"
    );
    assert_eq!(eventually(&server, token, "conf/a"), "token_revoked");
}

/// Changing one's own password takes the current one; an administrator resetting another
/// account's does not. A change ends every access token issued before it.
#[test]
fn a_password_change_needs_the_current_one_and_ends_older_logins() {
    let (_dir, db) = temp_db();
    let server = server(&db);
    let (id, first) = account(&server, "changer", "user");
    let second = login(&server, "changer");
    let me = |token: &str| send(&server, As::Bearer(token), "GET", "/api/me", None).status;
    assert_eq!((me(&first), me(&second)), (200, 200));
    server.clock.advance(Duration::from_secs(5));
    let path = format!("/api/users/{id}");
    let change =
        |token: &str, body: Value| send(&server, As::Bearer(token), "PATCH", &path, Some(body));
    let new_password = "a brand new passphrase";
    let missing = change(&first, json!({"password": new_password}));
    assert_status(&missing, 422, "no current_password");
    assert_eq!(missing.json()["field"], "current_password");
    let wrong = change(
        &first,
        json!({"password": new_password, "current_password": "not the password"}),
    );
    assert_status(&wrong, 403, "a wrong current_password");
    assert_eq!(wrong.json()["error"], "invalid_credentials");
    assert_eq!(me(&first), 200, "a refused change ends nothing");
    for _ in 0..6 {
        let weak = change(
            &first,
            json!({"password": "short", "current_password": PASSWORD}),
        );
        assert_status(&weak, 400, "a weak new password, the right current one");
        assert_eq!(weak.json()["field"], "password");
    }
    let changed = change(
        &first,
        json!({"password": new_password, "current_password": PASSWORD}),
    );
    assert_status(&changed, 200, "the change");
    assert_eq!(
        (me(&first), me(&second)),
        (401, 401),
        "every login before the change is over"
    );
    let reply = send(
        &server,
        As::Nobody,
        "POST",
        "/api/login",
        Some(json!({"username": "changer", "password": new_password})),
    );
    assert_status(&reply, 200, "login with the new password");
    let fresh = reply.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(me(&fresh), 200);

    // An administrator resets it without knowing it; that too ends the logins before.
    server.clock.advance(Duration::from_secs(5));
    let reset = send(
        &server,
        As::Key(RW),
        "PATCH",
        &path,
        Some(json!({"password": "reset by the admin 42"})),
    );
    assert_status(&reset, 200, "an administrator's reset");
    assert_eq!(me(&fresh), 401);
    // Names need no password.
    let (_, other) = account(&server, "renamer", "user");
    let rename = send(
        &server,
        As::Bearer(&other),
        "PATCH",
        &format!("/api/users/{}", id + 1),
        Some(json!({"first_name": "Renamed"})),
    );
    assert_status(&rename, 200, "a rename");
    assert_eq!(me(&other), 200, "a rename ends no login");
}

/// Registration without credentials: a few per client address per hour, and none at all with
/// `REGISTRATION=closed`; administrators (API keys) register anyone either way.
#[test]
fn open_registration_is_throttled_per_address_and_can_be_closed() {
    let anonymous = |server: &TestServer, name: &str| {
        send(
            server,
            As::Nobody,
            "POST",
            "/api/users",
            Some(
                json!({"user": {"username": name, "password": PASSWORD, "first_name": "F",
                                 "last_name": "L", "email": format!("{name}@example.org")}}),
            ),
        )
    };
    let (_dir, db) = temp_db();
    let server = server(&db);
    for n in 0..10 {
        assert_status(&anonymous(&server, &format!("walkin{n}")), 201, "open");
    }
    let throttled = anonymous(&server, "walkin10");
    assert_status(&throttled, 429, "the 11th from one address in an hour");
    assert_eq!(throttled.json()["error"], "too_many_attempts");
    assert!(throttled.header("retry-after").is_some());
    register(&server, "byadmin", "user");
    server.clock.advance(Duration::from_secs(3601));
    assert_status(&anonymous(&server, "walkin11"), 201, "an hour later");

    let (_dir, db) = temp_db();
    let mut config = keyed_config(&db);
    config.open_registration = false;
    let closed = server_with(config, &db, Arc::new(ManualClock::new(T0)));
    let refused = anonymous(&closed, "walkin");
    assert_status(&refused, 403, "closed");
    assert_eq!(refused.json()["error"], "registration_closed");
    let user = register(&closed, "member", "user");
    assert!(user > 0, "an administrator still creates accounts");
    let member = login(&closed, "member");
    let by_member = send(
        &closed,
        As::Bearer(&member),
        "POST",
        "/api/users",
        Some(
            json!({"user": {"username": "friend", "password": PASSWORD, "first_name": "F",
                             "last_name": "L", "email": "friend@example.org"}}),
        ),
    );
    assert_status(&by_member, 403, "a user cannot open a closed registration");
}
