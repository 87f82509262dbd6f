//! Verifying signed tokens where there is no database and no secret: a door scanner checking
//! e-tickets, or an edge checking playback tokens, given only the public keys.
//!
//! ```text
//! # on the server:  auth-server keys list > keys.json   (or GET /api/signing-keys)
//! cargo run -p auth-core --example verify_offline -- keys.json TOKEN [--ticket] [--stream NAME]
//! ```
//!
//! Without arguments it runs a self-contained demonstration: a "server" ring signs a ticket and
//! a playback token, and a "scanner" ring built from the public key list alone verifies them
//! and refuses a tampered copy.

use std::error::Error;
use std::time::Duration;

use auth_core::signed_token::keys::{public_ring, KeyInfo, KeyVault, StoredSigningKey};
use auth_core::signed_token::{Algorithm, Claims, Kind, Rejection};
use auth_core::ticket::signed;
use auth_core::{Clock, SystemClock, Timestamp, TokenHasher};

fn now() -> Result<Timestamp, Box<dyn Error>> {
    Ok(SystemClock.now())
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        return demonstrate();
    }
    let (Some(keys_file), Some(token)) = (args.first(), args.get(1)) else {
        return Err("usage: verify_offline KEYS_JSON TOKEN [--ticket] [--stream NAME]".into());
    };
    let kind = if args.iter().any(|a| a == "--ticket") {
        Kind::Ticket
    } else {
        Kind::Playback
    };
    let stream = args
        .iter()
        .position(|a| a == "--stream")
        .and_then(|i| args.get(i + 1));
    // `{"items": [...]}` as `keys list` and the API print it, or a bare array.
    let listed: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(keys_file)?)?;
    let items = listed.get("items").cloned().unwrap_or(listed);
    let keys: Vec<KeyInfo> = serde_json::from_value(items)?;
    let scanner = public_ring(&keys)?;
    match scanner.verify(token, now()?, kind, None, stream.map(String::as_str)) {
        Ok(claims) => {
            println!("{}", serde_json::to_string_pretty(&claims)?);
            Ok(())
        }
        Err(rejection) => {
            Err(format!("refused: {} ({})", rejection.code(), rejection.message()).into())
        }
    }
}

fn demonstrate() -> Result<(), Box<dyn Error>> {
    let now = now()?;
    // The server side: keys sealed under the server key, as the store holds them.
    let vault = KeyVault::new(&TokenHasher::random()?)?;
    let stored = vec![vault.generate("door-2026", Algorithm::Ed25519, now)?];
    let server = vault.ring(&stored)?;
    // As the server signs them (`GET /api/tickets/{id}/signed`): ticket 42 of event 7, held by
    // account 3, good until the event ends.
    let ticket = Claims {
        evt: Some("7".into()),
        tkt: Some("42".into()),
        ..Claims::new("3", now, Duration::from_secs(8 * 3600))
    };
    let e_ticket = server.sign("door-2026", &ticket)?;
    println!("e-ticket (the QR payload): {e_ticket}");

    // What the scanner is given: the public listing, nothing secret.
    let published = serde_json::to_string(
        &stored
            .iter()
            .map(StoredSigningKey::info)
            .collect::<Vec<_>>(),
    )?;
    println!("published keys: {published}");
    let scanner = public_ring(&serde_json::from_str::<Vec<KeyInfo>>(&published)?)?;

    let claims = scanner
        .verify(&e_ticket, now, Kind::Ticket, None, None)
        .map_err(|r| format!("a genuine ticket was refused: {r}"))?;
    println!(
        "verified offline: ticket {:?} of {} for {:?}",
        claims.tkt, claims.sub, claims.evt
    );
    assert_eq!(claims, ticket);
    // The same, read as an e-ticket: numbers a scanner can match against its guest list.
    let read = signed::read(&scanner, &e_ticket, now).map_err(|r| r.code())?;
    println!(
        "as an e-ticket: ticket {}, event {}, holder {}, until {}",
        read.ticket_id, read.event_id, read.holder_id, read.expires_at
    );
    assert_eq!((read.ticket_id, read.event_id, read.holder_id), (42, 7, 3));

    let mut forged = e_ticket.clone().into_bytes();
    let middle = forged.len() / 2;
    forged[middle] ^= 0x01;
    let forged = String::from_utf8(forged)?;
    let refused = scanner.verify(&forged, now, Kind::Ticket, None, None);
    println!(
        "tampered copy: {}",
        refused.clone().err().map_or("accepted!", Rejection::code)
    );
    assert!(refused.is_err());
    assert!(
        scanner.sign("door-2026", &ticket).is_err(),
        "a public key cannot sign"
    );
    assert_eq!(
        scanner.verify(&e_ticket, now, Kind::Playback, None, None),
        Err(Rejection::WrongKind),
        "an e-ticket is not a playback token"
    );
    Ok(())
}
