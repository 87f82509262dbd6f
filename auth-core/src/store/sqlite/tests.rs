//! The shared conformance suite over this backend, and what only this backend promises.

use super::*;
use crate::prelude::*;

fn hasher() -> crate::secret::TokenHasher {
    crate::secret::TokenHasher::new(&[9u8; 32]).unwrap()
}

fn temp_store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("auth.db")).unwrap();
    (dir, store)
}

crate::store_suite!({
    let (dir, store) = temp_store();
    crate::store::testkit::Guarded(dir, store)
});
#[cfg(feature = "tickets")]
crate::ticketing_suite!({
    let (dir, store) = temp_store();
    crate::store::testkit::Guarded(dir, store)
});

#[test]
fn lease_extensions_answered_from_a_read_are_written_by_close() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.db");
    let t0 = crate::store::testkit::T0;
    let later = t0.saturating_add(std::time::Duration::from_secs(100));
    let lease = |t: Timestamp| t.saturating_add(std::time::Duration::from_secs(210));
    {
        let store = SqliteStore::open(&path).unwrap();
        let token = store
            .create_token(crate::store::testkit::spec("extend-me-1", "u", 1), t0)
            .unwrap();
        let claim = SessionClaim {
            owner: crate::session::SessionOwner::token(token.id),
            key: "id:a",
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
            store.admit_session(&claim, t0, lease(t0)).unwrap(),
            Admission::Admitted { .. }
        ));
        assert!(matches!(
            store.admit_session(&claim, later, lease(later)).unwrap(),
            Admission::Extended { .. }
        ));
    }
    let store = SqliteStore::open(&path).unwrap();
    let sessions = store
        .sessions(&crate::session::SessionFilter::default(), t0)
        .unwrap();
    assert_eq!(
        sessions[0].expires_at,
        lease(later),
        "the extension was written before the store closed"
    );
    assert_eq!(sessions[0].last_seen, later);
}

/// Migration 3 rebuilds the sessions table: live sessions of a database made before it keep
/// their ids, owners and slots, and deleting their token still removes them.
#[test]
fn sessions_survive_the_owner_migration() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.db");
    let t0 = crate::store::testkit::T0;
    let lease = t0.saturating_add(std::time::Duration::from_secs(210));
    {
        let mut conn = Connection::open(&path).unwrap();
        configure(&conn).unwrap();
        migrate(&mut conn, &MIGRATIONS[..2]).unwrap();
        conn.execute_batch(&format!(
            "INSERT INTO tokens (id, token_hash, token_prefix, user_id, status, max_sessions, \
             created_at, updated_at) VALUES (7, x'00', 'ab', 'u', 'active', 1, 0, 0);
             INSERT INTO sessions (id, token_id, session_key, user_id, stream, ip, proto, \
             started_at, last_seen, expires_at) \
             VALUES (41, 7, 'id:a', 'u', 's', '10.0.0.1', 'hls', 0, 0, {});",
            lease.unix_micros()
        ))
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    let sessions = store
        .sessions(&crate::session::SessionFilter::default(), t0)
        .unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(
        (sessions[0].id, sessions[0].token_id, sessions[0].owner),
        (41, Some(7), SessionOwner::token(7))
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
    assert_eq!(
        store.admit_session(&claim("id:a"), t0, lease).unwrap(),
        Admission::Extended { session_id: 41 }
    );
    assert!(matches!(
        store.admit_session(&claim("id:b"), t0, lease).unwrap(),
        Admission::LimitReached { live: 1 }
    ));
    assert!(store.delete_token(7, t0).unwrap());
    assert!(store
        .sessions(&crate::session::SessionFilter::default(), t0)
        .unwrap()
        .is_empty());
}

#[test]
fn rechecks_of_live_sessions_are_answered_from_memory_and_follow_every_session_write() {
    let (_dir, store) = temp_store();
    let t0 = crate::store::testkit::T0;
    let lease = t0.saturating_add(std::time::Duration::from_secs(210));
    let token = store
        .create_token(crate::store::testkit::spec("memory-path-1", "u", 2), t0)
        .unwrap();
    let claim = |key: &'static str| SessionClaim {
        owner: crate::session::SessionOwner::token(token.id),
        key,
        max_sessions: 2,
        user_id: "u",
        stream: "s",
        ip: std::net::IpAddr::from([10, 0, 0, 1]),
        proto: "hls",
        source: "",
        media_session_id: None,
        evict_oldest: false,
    };
    assert!(
        store
            .try_admit_without_blocking(&claim("id:a"), t0, lease)
            .is_none(),
        "new: the database decides"
    );
    let Admission::Admitted { session_id } =
        store.admit_session(&claim("id:a"), t0, lease).unwrap()
    else {
        panic!("not admitted")
    };
    let fast = store
        .try_admit_without_blocking(&claim("id:a"), t0, lease)
        .unwrap()
        .unwrap();
    assert_eq!(fast, Admission::Extended { session_id });
    store
        .terminate_session(session_id, crate::session::CloseReason::Terminated, t0)
        .unwrap();
    let fast = store
        .try_admit_without_blocking(&claim("id:a"), t0, lease)
        .unwrap()
        .unwrap();
    assert_eq!(fast, Admission::Terminated { session_id });
    store.end_session(session_id, t0).unwrap();
    assert!(store
        .try_admit_without_blocking(&claim("id:a"), t0, lease)
        .is_none());
    let Admission::Admitted { .. } = store.admit_session(&claim("id:b"), t0, lease).unwrap() else {
        panic!()
    };
    store.delete_token(token.id, t0).unwrap();
    assert!(
        store
            .try_admit_without_blocking(&claim("id:b"), t0, lease)
            .is_none(),
        "gone with its token"
    );
}

#[test]
fn the_memory_view_is_rebuilt_when_the_file_is_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.db");
    let t0 = crate::store::testkit::T0;
    let lease = t0.saturating_add(std::time::Duration::from_secs(210));
    let claim_of = |token_id| SessionClaim {
        owner: crate::session::SessionOwner::token(token_id),
        key: "id:a",
        max_sessions: 1,
        user_id: "u",
        stream: "s",
        ip: std::net::IpAddr::from([10, 0, 0, 1]),
        proto: "hls",
        source: "",
        media_session_id: None,
        evict_oldest: false,
    };
    let token_id = {
        let store = SqliteStore::open(&path).unwrap();
        let token = store
            .create_token(crate::store::testkit::spec("reopen-me-1", "u", 1), t0)
            .unwrap();
        store.admit_session(&claim_of(token.id), t0, lease).unwrap();
        token.id
    };
    let store = SqliteStore::open(&path).unwrap();
    assert!(matches!(
        store.try_admit_without_blocking(&claim_of(token_id), t0, lease),
        Some(Ok(Admission::Extended { .. }))
    ));
}

#[test]
fn migrations_are_versioned_and_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.db");
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap() as usize, MIGRATIONS.len());
    drop(store);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap() as usize, MIGRATIONS.len());
}

// hooks: allowed_actions
#[test]
fn tokens_made_before_allowed_actions_may_only_play() {
    use crate::token::Action;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.db");
    let before = MIGRATIONS
        .iter()
        .position(|sql| sql.contains("allowed_actions"))
        .unwrap();
    {
        let mut conn = Connection::open(&path).unwrap();
        migrate(&mut conn, &MIGRATIONS[..before]).unwrap();
        conn.execute(
            "INSERT INTO tokens (token_hash, token_prefix, user_id, status, created_at, \
             updated_at) VALUES (?1, 'old', 'legacy', 'active', 0, 0)",
            [vec![7u8; 32]],
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    let token = store.list_tokens(&TokenFilter::default()).unwrap().items;
    assert_eq!(token.len(), 1);
    assert!(token[0].allowed_actions.allows(Action::Play));
    assert!(!token[0].allowed_actions.allows(Action::Publish));
}

#[test]
fn refuses_a_newer_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.db");
    drop(SqliteStore::open(&path).unwrap());
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let err = SqliteStore::open(&path)
        .err()
        .expect("a newer schema must be refused");
    assert!(err.to_string().contains("newer"), "{err}");
}

#[test]
fn data_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.db");
    let now = Timestamp::from_unix_seconds(1_800_000_000);
    {
        let store = SqliteStore::open(&path).unwrap();
        let spec = crate::token::TokenSpec {
            token: Some("persist-me-1".into()),
            user_id: "u".into(),
            allowed_ips: vec!["10.0.0.0/8".into()],
            ..Default::default()
        };
        store
            .create_token(spec.validate(&hasher()).unwrap().0, now)
            .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    let digest = hasher().digest("persist-me-1");
    let token = store.token_by_digest(&digest).unwrap().unwrap();
    assert_eq!(
        token.allowed_ips.entries().collect::<Vec<_>>(),
        ["10.0.0.0/8"]
    );
}

/// The files hold token digests, sessions and sealed signing keys: the owner's only.
#[cfg(unix)]
#[test]
fn new_database_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("private.db");
    let store = SqliteStore::open(&path).unwrap();
    store.ping().unwrap();
    let log = SqliteStore::access_log_path(&path);
    for file in [
        path.clone(),
        log.clone(),
        path.with_extension("db-wal"),
        log.with_extension("db-wal"),
    ] {
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }
}

/// Every connection bounds what the WAL keeps after a burst.
#[test]
fn the_wal_is_bounded_after_a_burst() {
    let (_dir, store) = temp_store();
    let limit: i64 = store
        .reader()
        .unwrap()
        .query_row("PRAGMA journal_size_limit", [], |row| row.get(0))
        .unwrap();
    assert_eq!(limit, JOURNAL_SIZE_LIMIT);
}

/// A WAL a burst left long is cut back a step at a time, each cheap enough to sit inside a commit
/// an admission waits for, down to the usual limit and no further.
#[test]
fn a_long_wal_is_cut_back_in_steps() {
    const MIB: u64 = 1024 * 1024;
    assert_eq!(wal_limit(0), JOURNAL_SIZE_LIMIT);
    assert_eq!(wal_limit(70 * MIB), JOURNAL_SIZE_LIMIT);
    assert_eq!(wal_limit(1024 * MIB), (1024 - 16) * MIB as i64);
    assert_eq!(wal_limit(u64::MAX), i64::MAX - WAL_SHRINK_STEP);

    let dir = tempfile::tempdir().unwrap();
    let conn = Connection::open(dir.path().join("writer.db")).unwrap();
    let burst = dir.path().join("burst.db");
    // Sparse: only its length matters.
    std::fs::File::create(dir.path().join("burst.db-wal"))
        .unwrap()
        .set_len(900 * MIB)
        .unwrap();
    limit_wal(&conn, &burst).unwrap();
    let limit = |conn: &Connection| -> i64 {
        conn.query_row("PRAGMA journal_size_limit", [], |row| row.get(0))
            .unwrap()
    };
    assert_eq!(limit(&conn), (900 - 16) * MIB as i64);
    limit_wal(&conn, &dir.path().join("no-such.db")).unwrap();
    assert_eq!(
        limit(&conn),
        JOURNAL_SIZE_LIMIT,
        "no WAL file: the usual limit"
    );
}
