//! A kill -9 in the middle of a burst of admissions loses none that was answered: an admitted
//! answer is sent only once its admission has committed, so after a restart every admitted
//! session is still there holding its slot, and no token holds more than it allows.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{bin, call_at, temp_db, ServerProcess};

/// Tokens with a session limit (`crash-limited-<i>`, 2 each) and without (`crash-open-<i>`).
const TOKENS: usize = 20;
const LIMIT: usize = 2;
const CLIENTS: usize = 8;

fn seed(db: &std::path::Path) {
    let tokens: Vec<serde_json::Value> = (0..TOKENS)
        .flat_map(|i| {
            [
                serde_json::json!({"token": format!("crash-limited-{i}"), "user_id": format!("limited-{i}"), "max_sessions": LIMIT}),
                serde_json::json!({"token": format!("crash-open-{i}"), "user_id": format!("open-{i}"), "max_sessions": 0}),
            ]
        })
        .collect();
    let file = db.with_file_name("seed.json");
    std::fs::write(&file, serde_json::to_vec(&tokens).unwrap()).unwrap();
    let seeded = bin()
        .env("DATABASE_URL", db)
        .arg("seed")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        seeded.status.success(),
        "{}",
        String::from_utf8_lossy(&seeded.stderr)
    );
}

fn serve(db: &std::path::Path) -> ServerProcess {
    let mut command = bin();
    command.env("DATABASE_URL", format!("sqlite://{}", db.display()));
    ServerProcess::spawn(command)
}

/// The streams of the live sessions of `user`, as the server lists them.
fn live_streams(base: &str, user: &str) -> Vec<String> {
    let mut streams = Vec::new();
    loop {
        let path = format!(
            "/api/sessions?user_id={user}&limit=500&offset={}",
            streams.len()
        );
        let page = call_at(base, "GET", &path, &[], None);
        assert_eq!(page.status, 200, "{}", page.body);
        let page = page.json();
        let items = page["items"].as_array().unwrap();
        streams.extend(
            items
                .iter()
                .filter(|s| s["terminated_at"].is_null())
                .map(|s| s["stream"].as_str().unwrap().to_owned()),
        );
        if items.is_empty() || streams.len() as u64 >= page["total"].as_u64().unwrap() {
            return streams;
        }
    }
}

#[test]
fn a_kill_during_a_burst_of_admissions_loses_no_admitted_session() {
    let (_dir, db) = temp_db();
    seed(&db);
    let mut server = serve(&db);
    let base = server.base.clone();

    // Each client asks for new sessions (each under a stream name of its own, so that it can
    // be found again) as fast as the server answers, until the server is gone.
    let admitted: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (base, admitted, stop) = (base.clone(), Arc::clone(&admitted), Arc::clone(&stop));
            std::thread::spawn(move || {
                let agent = ureq::AgentBuilder::new()
                    .timeout(Duration::from_secs(5))
                    .build();
                for n in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let i = (client + n * CLIENTS) % TOKENS;
                    let (token, user) = if n % 2 == 0 {
                        (format!("crash-open-{i}"), format!("open-{i}"))
                    } else {
                        (format!("crash-limited-{i}"), format!("limited-{i}"))
                    };
                    let stream = format!("crash/{client}-{n}");
                    let url = format!(
                        "{base}/auth?name={stream}&ip=10.9.0.1&proto=hls&token={token}&session_id=c{client}-{n}"
                    );
                    match agent.get(&url).call() {
                        Ok(answer) if answer.status() == 200 => {
                            admitted.lock().unwrap().push((user, stream));
                        }
                        Ok(_) | Err(ureq::Error::Status(..)) => {}
                        // The server is gone: whatever was in flight was never answered.
                        Err(ureq::Error::Transport(_)) => return,
                    }
                }
            })
        })
        .collect();

    // Wait until admissions are flowing, then kill -9 while they still are.
    let flowing = (0..200).any(|_| {
        std::thread::sleep(Duration::from_millis(10));
        admitted.lock().unwrap().len() >= 200
    });
    assert!(
        flowing,
        "the burst admitted too few sessions before the kill"
    );
    server.child.kill().unwrap();
    let status = server.child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().unwrap();
    }
    assert!(!status.success(), "killed, not exited: {status:?}");
    let admitted = std::mem::take(&mut *admitted.lock().unwrap());

    let restarted = serve(&db);
    let mut by_user: HashMap<String, HashSet<String>> = HashMap::new();
    for (user, stream) in &admitted {
        by_user
            .entry(user.clone())
            .or_default()
            .insert(stream.clone());
    }
    for (user, streams) in &by_user {
        let live: HashSet<String> = live_streams(&restarted.base, user).into_iter().collect();
        let lost: Vec<&String> = streams.difference(&live).collect();
        assert!(
            lost.is_empty(),
            "{user}: admitted sessions lost by the kill: {lost:?}"
        );
        if user.starts_with("limited-") {
            assert!(
                live.len() <= LIMIT,
                "{user} holds {} sessions, more than {LIMIT}",
                live.len()
            );
        }
    }
    // The slots are held: a limited token whose admitted sessions filled it admits no more.
    let full = by_user
        .iter()
        .find(|(user, streams)| user.starts_with("limited-") && streams.len() == LIMIT)
        .map(|(user, _)| user.trim_start_matches("limited-").to_owned())
        .expect("some limited token was filled before the kill");
    let refused = call_at(
        &restarted.base,
        "GET",
        &format!("/auth?name=crash/after&ip=10.9.0.2&proto=hls&token=crash-limited-{full}&session_id=after"),
        &[],
        None,
    );
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(refused.json()["reason"], "session_limit_reached");
}
