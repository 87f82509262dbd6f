//! The door check end to end over a store, with a clock the tests move.

use std::time::Duration;

use super::*;
use crate::account::Role;
use crate::clock::{Clock, ManualClock};
use crate::event::{NewEvent, RosterRole};
use crate::store::testkit::{new_account, T0};
use crate::store::{MemoryStore, SqliteStore};

const HOUR: Duration = Duration::from_secs(3600);

fn key() -> TicketKey {
    TicketKey::new(&[3u8; 32]).unwrap()
}

/// An event from T0 to T0 + 2 h, a holder on its users roster and an agent.
pub(super) fn setup(
    store: &dyn TicketingStore,
    single_entry: bool,
) -> (Event, AccountId, AccountId) {
    let event = store
        .create_event(
            NewEvent {
                title: "Conf: 2026".into(),
                starts_at: T0,
                ends_at: T0.saturating_add(2 * HOUR),
                capacity: 10,
                streams: vec!["conf/*".into()],
                single_entry,
            },
            T0,
        )
        .unwrap();
    let holder = store.create_account(new_account("holder"), T0).unwrap().id;
    let mut agent = new_account("agent");
    agent.role = Role::Agent;
    let agent = store.create_account(agent, T0).unwrap().id;
    store
        .add_to_roster(event.id, holder, RosterRole::Users, T0)
        .unwrap();
    store
        .add_to_roster(event.id, agent, RosterRole::Agents, T0)
        .unwrap();
    (event, holder, agent)
}

fn reason(verdict: Verdict) -> Option<Reason> {
    match verdict {
        Verdict::Valid(_) => None,
        Verdict::Invalid(reason) => Some(reason),
    }
}

#[test]
fn the_secret_is_hmac_of_holder_event_and_salt() {
    let key = key();
    let a = key.secret(1, 2, &[0; SALT_LEN]);
    assert_eq!(a.len(), 32);
    assert_eq!(a, key.secret(1, 2, &[0; SALT_LEN]), "reproducible");
    assert_ne!(a, key.secret(2, 1, &[0; SALT_LEN]));
    assert_ne!(a, key.secret(1, 2, &[1; SALT_LEN]));
    assert_ne!(
        a,
        TicketKey::new(&[4u8; 32])
            .unwrap()
            .secret(1, 2, &[0; SALT_LEN])
    );
    let expected = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, &[3u8; 32]),
        &[
            &1i64.to_be_bytes()[..],
            &2i64.to_be_bytes()[..],
            &[0u8; SALT_LEN][..],
        ]
        .concat(),
    );
    assert_eq!(a, expected.as_ref());
}

#[test]
fn issue_gives_an_otpauth_uri_an_authenticator_understands() {
    let store = MemoryStore::new();
    let (event, holder, agent) = setup(&store, true);
    let issued = issue(&store, &key(), event.id, holder, "Tickets", T0).unwrap();
    assert!(
        issued
            .otpauth_uri
            .starts_with("otpauth://totp/Tickets:Conf"),
        "{}",
        issued.otpauth_uri
    );
    assert!(issued
        .otpauth_uri
        .contains(&format!("secret={}", issued.secret)));
    assert!(issued.otpauth_uri.contains("issuer=Tickets"));
    // An authenticator app reads the URI back and shows the codes the server expects.
    let app = TOTP::from_url_unchecked(&issued.otpauth_uri).unwrap();
    let now = T0.saturating_add(Duration::from_secs(95));
    assert_eq!(
        app.generate(now.unix_seconds() as u64),
        key().code_at(&issued.ticket, now)
    );
    let err = issue(&store, &key(), event.id, agent, "Tickets", T0).unwrap_err();
    assert_eq!(err.field(), Some("user_id"), "not on the users roster");
    let err = issue(&store, &key(), event.id, holder, "Tickets", T0).unwrap_err();
    assert_eq!(err.field(), Some("ticket"), "one live ticket each");
    let err = issue(&store, &key(), 9999, holder, "Tickets", T0).unwrap_err();
    assert_eq!(err.code(), "not_found");
    let over = T0.saturating_add(3 * HOUR);
    store.revoke_ticket(issued.ticket.id, T0).unwrap();
    let err = issue(&store, &key(), event.id, holder, "Tickets", over).unwrap_err();
    assert_eq!(err.field(), Some("event_id"));
}

#[test]
fn every_reason_and_the_skew_window_at_both_edges() {
    let store = MemoryStore::new();
    let (event, holder, agent) = setup(&store, true);
    let key = key();
    let ticket = issue(&store, &key, event.id, holder, "T", T0)
        .unwrap()
        .ticket;
    let clock = ManualClock::new(T0.saturating_add(Duration::from_secs(600)));
    let now = clock.now();
    let step = step_of(now);
    let check = |code: &str| {
        reason(
            verify(&store, &key, ticket.id, code, Some(agent), clock.now())
                .unwrap()
                .verdict,
        )
    };

    // Two steps away either side: refused.
    assert_eq!(
        check(&key.code_at_step(&ticket, step - 2)),
        Some(Reason::CodeInvalid)
    );
    assert_eq!(
        check(&key.code_at_step(&ticket, step + 2)),
        Some(Reason::CodeInvalid)
    );
    assert_eq!(check("12345"), Some(Reason::CodeInvalid));
    assert_eq!(check("abcdef"), Some(Reason::CodeInvalid));
    // One step behind (a code read as it turned): accepted, and the check-in recorded.
    match verify(
        &store,
        &key,
        ticket.id,
        &key.code_at_step(&ticket, step - 1),
        Some(agent),
        now,
    )
    .unwrap()
    .verdict
    {
        Verdict::Valid(c) => {
            assert_eq!(
                (c.holder.id, c.event.id, c.first_entry),
                (holder, event.id, true)
            );
            let t = &c.ticket;
            assert_eq!((t.checked_in_at, t.checked_in_by), (Some(now), Some(agent)));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        check(&key.code_at_step(&ticket, step - 1)),
        Some(Reason::CodeReused)
    );
    assert_eq!(
        check(&key.code_at_step(&ticket, step + 1)),
        Some(Reason::AlreadyCheckedIn)
    );
    assert_eq!(
        reason(
            verify(&store, &key, 9999, "123456", None, now)
                .unwrap()
                .verdict
        ),
        Some(Reason::TicketNotFound)
    );
    store.revoke_ticket(ticket.id, now).unwrap();
    assert_eq!(
        check(&key.code_at(&ticket, now)),
        Some(Reason::TicketRevoked)
    );
}

#[test]
fn one_step_ahead_is_accepted_and_multi_entry_events_admit_again() {
    let store = MemoryStore::new();
    let (event, holder, agent) = setup(&store, false);
    let key = key();
    let ticket = issue(&store, &key, event.id, holder, "T", T0)
        .unwrap()
        .ticket;
    let now = T0.saturating_add(Duration::from_secs(45));
    let step = step_of(now);
    let first = verify(
        &store,
        &key,
        ticket.id,
        &key.code_at_step(&ticket, step + 1),
        Some(agent),
        now,
    )
    .unwrap()
    .verdict;
    assert!(
        matches!(&first, Verdict::Valid(c) if c.first_entry),
        "{first:?}"
    );
    let again = verify(
        &store,
        &key,
        ticket.id,
        &key.code_at_step(&ticket, step),
        Some(agent),
        now,
    )
    .unwrap()
    .verdict;
    assert!(
        matches!(&again, Verdict::Valid(c) if !c.first_entry),
        "{again:?}"
    );
}

#[test]
fn outside_the_event_window() {
    let store = MemoryStore::new();
    let (event, holder, _) = setup(&store, true);
    let key = key();
    let ticket = issue(&store, &key, event.id, holder, "T", T0)
        .unwrap()
        .ticket;
    let before = T0.saturating_sub(Duration::from_secs(1));
    let code = key.code_at(&ticket, before);
    assert_eq!(
        reason(
            verify(&store, &key, ticket.id, &code, None, before)
                .unwrap()
                .verdict
        ),
        Some(Reason::EventNotStarted)
    );
    let after = event.ends_at;
    let code = key.code_at(&ticket, after);
    assert_eq!(
        reason(
            verify(&store, &key, ticket.id, &code, None, after)
                .unwrap()
                .verdict
        ),
        Some(Reason::EventOver)
    );
}

#[test]
fn a_used_code_stays_used_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.db");
    let key = key();
    let now = T0.saturating_add(Duration::from_secs(300));
    let (ticket, code) = {
        let store = SqliteStore::open(&path).unwrap();
        let (event, holder, _) = setup(&store, false);
        let ticket = issue(&store, &key, event.id, holder, "T", T0)
            .unwrap()
            .ticket;
        let code = key.code_at(&ticket, now);
        assert!(matches!(
            verify(&store, &key, ticket.id, &code, None, now)
                .unwrap()
                .verdict,
            Verdict::Valid { .. }
        ));
        (ticket, code)
    };
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(
        reason(
            verify(&store, &key, ticket.id, &code, None, now)
                .unwrap()
                .verdict
        ),
        Some(Reason::CodeReused)
    );
}

#[test]
fn wrong_codes_lock_the_ticket_until_the_lock_ends() {
    let store = MemoryStore::new();
    let (event, holder, agent) = setup(&store, true);
    let key = key();
    let ticket = issue(&store, &key, event.id, holder, "T", T0)
        .unwrap()
        .ticket;
    let now = T0.saturating_add(Duration::from_secs(300));
    let right = key.code_at(&ticket, now);
    let wrong = if right == "000000" {
        "000001"
    } else {
        "000000"
    };
    let check = |code: &str, at| verify(&store, &key, ticket.id, code, Some(agent), at).unwrap();
    for n in 1..CODE_LOCK.after {
        let door = check(wrong, now);
        assert_eq!(reason(door.verdict), Some(Reason::CodeInvalid), "{n}");
        assert!(!door.locked_now);
    }
    let locking = check(wrong, now);
    assert_eq!(reason(locking.verdict), Some(Reason::CodeInvalid));
    assert!(locking.locked_now, "the code that locks says so, once");
    assert_eq!(
        reason(check(&right, now).verdict),
        Some(Reason::TooManyAttempts),
        "even the right code is not weighed while locked"
    );
    let later = now.saturating_add(CODE_LOCK.lasts);
    let door = check(&key.code_at(&ticket, later), later);
    assert!(matches!(door.verdict, Verdict::Valid(_)), "{door:?}");
}
