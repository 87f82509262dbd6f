//! Event tickets without the server: an event, an attendee, a ticket, and the door check.
//!
//! `cargo run -p auth-core --example door`

use std::time::Duration;

use auth_core::account::{Passwords, Role, UserSpec};
use auth_core::event::{EventSpec, RosterRole};
use auth_core::prelude::*;
use auth_core::ticket::{self, qr, TicketKey, Verdict};
use auth_core::{Clock, ManualClock, MemoryStore, Timestamp, TokenHasher};

fn main() -> Result<(), auth_core::Error> {
    let store = MemoryStore::new();
    let clock = ManualClock::new(Timestamp::from_unix_seconds(1_800_000_000));
    // One persisted key serves everything; the ticket key is derived from it under its own label.
    let hasher = TokenHasher::random()?;
    let key = TicketKey::new(&hasher.derive_key("event-tickets/totp-secrets/v1"))?;

    let passwords = Passwords::new()?;
    let alice = UserSpec {
        username: "alice".into(),
        password: "a long user passphrase".into(),
        first_name: "Alice".into(),
        last_name: "Liddell".into(),
        email: "alice@example.org".into(),
    }
    .validate(Role::User, &passwords)?;
    let alice = store.create_account(alice, clock.now())?;

    let event = EventSpec {
        title: "RustConf".into(),
        starts_at: clock.now(),
        ends_at: clock.now().saturating_add(Duration::from_secs(8 * 3600)),
        capacity: 500,
        streams: vec!["rustconf/*".into()],
        single_entry: Some(true),
    }
    .validate()?;
    let event = store.create_event(event, clock.now())?;
    store.add_to_roster(event.id, alice.id, RosterRole::Users, clock.now())?;

    let issued = ticket::issue(&store, &key, event.id, alice.id, "example", clock.now())?;
    println!(
        "ticket {} for {}: {}",
        issued.ticket.id, alice.username, issued.otpauth_uri
    );
    let svg = qr::svg(&issued.otpauth_uri, 200)?;
    println!("its QR code: {} bytes of SVG", svg.len());

    // Twenty minutes later, at the door: the app shows the code of the current 30 s step.
    clock.advance(Duration::from_secs(20 * 60));
    let code = key.code_at(&issued.ticket, clock.now());
    for attempt in ["first", "replayed"] {
        match ticket::verify(&store, &key, issued.ticket.id, &code, None, clock.now())?.verdict {
            Verdict::Valid(check_in) => println!(
                "{attempt} scan of {code}: welcome {} to {}",
                check_in.holder.first_name, check_in.event.title
            ),
            Verdict::Invalid(reason) => {
                println!("{attempt} scan of {code}: refused, {}", reason.as_str())
            }
        }
    }
    Ok(())
}
