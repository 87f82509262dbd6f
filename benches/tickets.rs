//! What one door check costs, without HTTP.
//!
//! Run with `cargo bench -p auth-core --bench tickets` (add `-- --quick` for a fast pass).
//!
//! - `ticket/code_check`: [`TicketKey::matching_step`] alone: the ticket's secret
//!   (HMAC-SHA256) and the three candidate TOTP codes (HMAC-SHA1 each), compared in constant
//!   time. The floor every store adds to.
//! - `ticket/verify/memory`: [`ticket::verify`] over a [`MemoryStore`]: ticket and event reads,
//!   the code check, the atomic use of the (ticket, step), the holder read.
//! - `ticket/verify/sqlite`: the same over a [`SqliteStore`] on a temporary file: three indexed
//!   reads and one committed write transaction (the consumed step) per check.
//!
//! Each iteration presents the code of a fresh time step (the clock moves 30 s between checks,
//! codes are computed outside the measured part), so every check takes the accepting path and
//! writes its step; the event is multi-entry and lasts long enough for every step.

use std::hint::black_box;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use auth_core::account::{NewAccount, Role};
use auth_core::event::{NewEvent, RosterRole};
use auth_core::ticket::TicketingStore;
use auth_core::ticket::{self, Ticket, TicketKey, Verdict};
use auth_core::{MemoryStore, SqliteStore, Timestamp};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};

const START: Timestamp = Timestamp::from_unix_seconds(1_800_000_000);

fn key() -> TicketKey {
    TicketKey::new(&[42u8; 32]).expect("32-byte key")
}

/// A holder with a ticket for a multi-entry event lasting ten years.
fn setup(store: &dyn TicketingStore) -> Ticket {
    let event = store
        .create_event(
            NewEvent {
                title: "Bench".into(),
                starts_at: START,
                ends_at: START.saturating_add(Duration::from_secs(10 * 365 * 86400)),
                capacity: 10,
                streams: vec!["bench/*".into()],
                single_entry: false,
            },
            START,
        )
        .expect("event");
    let holder = store
        .create_account(
            NewAccount {
                username: "holder".into(),
                email: "holder@example.org".into(),
                first_name: "Bench".into(),
                last_name: "Holder".into(),
                role: Role::User,
                password_hash: "$argon2id$unused".into(),
            },
            START,
        )
        .expect("account");
    store
        .add_to_roster(event.id, holder.id, RosterRole::Users, START)
        .expect("roster");
    ticket::issue(store, &key(), event.id, holder.id, "bench", START)
        .expect("ticket")
        .ticket
}

/// Verifies the code of the next time step, each call.
fn bench_verify(c: &mut Criterion, name: &str, store: &dyn TicketingStore) {
    let key = key();
    let ticket = setup(store);
    let step = AtomicI64::new(ticket::step_of(START) + 1);
    c.bench_function(name, |b| {
        b.iter_batched(
            || {
                let step = step.fetch_add(1, Ordering::Relaxed);
                let at = Timestamp::from_unix_seconds(step * 30 + 10);
                (at, key.code_at_step(&ticket, step))
            },
            |(at, code)| {
                let verdict = ticket::verify(store, &key, ticket.id, &code, None, at)
                    .expect("store answers")
                    .verdict;
                assert!(matches!(verdict, Verdict::Valid(_)), "{verdict:?}");
                black_box(verdict)
            },
            BatchSize::SmallInput,
        )
    });
}

fn benches(c: &mut Criterion) {
    let key = key();
    let memory = MemoryStore::new();
    let ticket = setup(&memory);
    let now = START.saturating_add(Duration::from_secs(95));
    let code = key.code_at(&ticket, now);
    c.bench_function("ticket/code_check", |b| {
        b.iter(|| black_box(key.matching_step(black_box(&ticket), black_box(&code), now)))
    });

    bench_verify(c, "ticket/verify/memory", &MemoryStore::new());

    let dir = tempfile::tempdir().expect("temporary folder");
    let sqlite = SqliteStore::open(dir.path().join("bench.db")).expect("sqlite");
    bench_verify(c, "ticket/verify/sqlite", &sqlite);
}

criterion_group!(tickets, benches);
criterion_main!(tickets);
