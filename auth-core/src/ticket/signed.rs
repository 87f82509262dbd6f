//! Signed e-tickets: a ticket as an unforgeable string for a QR code (seed 002).
//!
//! An e-ticket is a signed token (see [`crate::signed_token`]) whose claims name the ticket
//! (`tkt`), its event (`evt`) and its holder (`sub`), valid until the event ends. A scanner
//! holding only the public keys checks it offline with [`read`]; the server's door check
//! ([`check_in`]) also asks the store whether the ticket still stands and records the entry.
//!
//! Unlike a TOTP code, the string does not change: a copy is as good as the original. A
//! single-entry event refuses the second entry whoever comes first; events admitting several
//! entries admit every scan, so prefer TOTP codes where copies matter.

use std::time::Duration;

use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;

use super::{admit, at_the_door, still_good, Reason, Ticket, TicketId, Verdict};
use crate::account::AccountId;
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::event::{Event, EventId};
use crate::signed_token::{Claims, KeyRing, Kind, Rejection};

/// A signed e-ticket, as given to its holder.
#[derive(Debug, Clone, Serialize)]
pub struct SignedTicket {
    pub ticket_id: TicketId,
    pub event_id: EventId,
    /// `v1.<kid>.<claims>.<signature>`: what the QR code carries.
    pub eticket: String,
    pub kid: String,
    /// The event's end.
    pub expires_at: Timestamp,
}

/// What a genuine e-ticket says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ETicket {
    pub ticket_id: TicketId,
    pub event_id: EventId,
    pub holder_id: AccountId,
    pub expires_at: Timestamp,
}

/// The claims of `ticket`'s e-ticket, issued at `now`.
pub fn claims(ticket: &Ticket, event: &Event, now: Timestamp) -> Claims {
    Claims {
        evt: Some(event.id.to_string()),
        tkt: Some(ticket.id.to_string()),
        exp: event.ends_at.unix_seconds(),
        ..Claims::new(ticket.holder_id.to_string(), now, Duration::ZERO)
    }
}

/// Signs `ticket`'s e-ticket with `kid`, or the ring's default key. A revoked ticket, or one
/// whose event is over, gets none.
pub fn sign(
    ring: &KeyRing,
    ticket: &Ticket,
    event: &Event,
    kid: Option<&str>,
    now: Timestamp,
) -> Result<SignedTicket> {
    if ticket.event_id != event.id {
        return Err(Error::invalid("event_id", "not the ticket's event"));
    }
    still_good(ticket, event, now)?;
    let claims = claims(ticket, event, now);
    let (eticket, kid) = ring.mint(kid, &claims)?;
    Ok(SignedTicket {
        ticket_id: ticket.id,
        event_id: event.id,
        eticket,
        kid,
        expires_at: event.ends_at,
    })
}

/// Checks an e-ticket's signature, kind and validity window at `now`: no store, so a scanner
/// with the public keys alone can do it.
pub fn read(ring: &KeyRing, eticket: &str, now: Timestamp) -> Result<ETicket, Rejection> {
    let claims = ring.verify(eticket.trim(), now, Kind::Ticket, None, None)?;
    // Every e-ticket this crate signs names all three by number; anything else was not signed
    // as an e-ticket.
    let number = |text: Option<&str>| text.and_then(|t| t.parse::<i64>().ok());
    match (
        number(claims.tkt.as_deref()),
        number(claims.evt.as_deref()),
        number(Some(&claims.sub)),
    ) {
        (Some(ticket_id), Some(event_id), Some(holder_id)) => Ok(ETicket {
            ticket_id,
            event_id,
            holder_id,
            expires_at: Timestamp::from_unix_seconds(claims.exp),
        }),
        _ => Err(Rejection::Malformed),
    }
}

/// The server's door check of a genuine e-ticket: the ticket must still stand (not revoked, its
/// event on, still the holder's), and the entry is recorded as a TOTP check-in is. `by` is the
/// agent.
pub fn check_in(
    store: &dyn super::TicketingStore,
    eticket: &ETicket,
    by: Option<AccountId>,
    now: Timestamp,
) -> Result<Verdict> {
    let (ticket, event) = match at_the_door(store, eticket.ticket_id, now)? {
        Ok(found) => found,
        Err(reason) => return Ok(Verdict::Invalid(reason)),
    };
    if ticket.event_id != eticket.event_id || ticket.holder_id != eticket.holder_id {
        return Ok(Verdict::Invalid(Reason::TicketNotFound));
    }
    admit(store, ticket, event, scan_step()?, by, now)
}

/// The store accepts each (ticket, step) once. A scan consumes a step of its own: a random
/// negative number, below every TOTP step (those count from 0), so scans and codes never
/// collide, and two scans at the same instant are still two entries.
fn scan_step() -> Result<i64> {
    let mut bytes = [0u8; 8];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Error::storage("the system random number generator failed"))?;
    Ok(-1 - (i64::from_le_bytes(bytes) & i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;
    use crate::store::testkit::T0;
    use crate::store::MemoryStore;
    use crate::ticket::{issue, TicketKey};

    const HOUR: Duration = Duration::from_secs(3600);

    fn ring() -> KeyRing {
        let mut ring = KeyRing::new();
        let pkcs8 = crate::signed_token::generate_ed25519().unwrap();
        ring.add_ed25519_signer("door-1", &pkcs8).unwrap();
        ring.set_default_kid("door-1");
        ring
    }

    /// A ticket for an event from T0 to T0 + 2 h (the door tests' setup).
    fn ticket(store: &MemoryStore, single_entry: bool) -> (Ticket, Event) {
        let (event, holder, _) = crate::ticket::tests::setup(store, single_entry);
        let key = TicketKey::new(&[7u8; 32]).unwrap();
        let issued = issue(store, &key, event.id, holder, "test", T0).unwrap();
        (issued.ticket, event)
    }

    fn reason(verdict: Verdict) -> Option<Reason> {
        match verdict {
            Verdict::Valid(_) => None,
            Verdict::Invalid(reason) => Some(reason),
        }
    }

    #[test]
    fn an_eticket_reads_back_offline_with_the_public_key_alone() {
        let store = MemoryStore::new();
        let (ticket, event) = ticket(&store, true);
        let ring = ring();
        let signed = sign(&ring, &ticket, &event, None, T0).unwrap();
        assert_eq!(signed.kid, "door-1");
        assert_eq!(signed.expires_at, event.ends_at);
        let mut public = KeyRing::new();
        public
            .add_ed25519_public("door-1", &ring.ed25519_public_key("door-1").unwrap())
            .unwrap();
        let read = read(&public, &signed.eticket, T0).unwrap();
        assert_eq!(
            read,
            ETicket {
                ticket_id: ticket.id,
                event_id: event.id,
                holder_id: ticket.holder_id,
                expires_at: event.ends_at,
            }
        );
        let after = event.ends_at.saturating_add(Duration::from_secs(60));
        assert_eq!(
            read_err(&public, &signed.eticket, after),
            Rejection::Expired
        );
    }

    fn read_err(ring: &KeyRing, token: &str, now: Timestamp) -> Rejection {
        read(ring, token, now).unwrap_err()
    }

    #[test]
    fn a_playback_token_is_not_an_eticket() {
        let ring = ring();
        let playback = Claims::new("holder", T0, HOUR);
        let (token, _) = ring.mint(None, &playback).unwrap();
        assert_eq!(read_err(&ring, &token, T0), Rejection::WrongKind);
    }

    #[test]
    fn the_door_admits_a_single_entry_ticket_once_and_a_revoked_one_never() {
        let store = MemoryStore::new();
        let (ticket, event) = ticket(&store, true);
        let ring = ring();
        let eticket = read(
            &ring,
            &sign(&ring, &ticket, &event, None, T0).unwrap().eticket,
            T0,
        )
        .unwrap();
        let at = T0.saturating_add(Duration::from_secs(60));
        // The door tests' setup put an agent on the event.
        let agent = store.account_by_username("agent").unwrap().unwrap().id;
        match check_in(&store, &eticket, Some(agent), at).unwrap() {
            Verdict::Valid(check_in) => {
                assert!(check_in.first_entry);
                assert_eq!(check_in.ticket.checked_in_at, Some(at));
                assert_eq!(check_in.ticket.checked_in_by, Some(agent));
            }
            Verdict::Invalid(reason) => panic!("refused: {reason:?}"),
        }
        let later = at.saturating_add(Duration::from_secs(1));
        assert_eq!(
            reason(check_in(&store, &eticket, Some(agent), later).unwrap()),
            Some(Reason::AlreadyCheckedIn)
        );
        store.revoke_ticket(ticket.id, later).unwrap();
        assert_eq!(
            reason(check_in(&store, &eticket, Some(agent), later).unwrap()),
            Some(Reason::TicketRevoked)
        );
        assert!(sign(
            &ring,
            &store.ticket(ticket.id).unwrap().unwrap(),
            &event,
            None,
            later
        )
        .is_err());
    }

    #[test]
    fn a_multi_entry_ticket_is_admitted_at_each_scan_and_only_while_the_event_is_on() {
        let store = MemoryStore::new();
        let (ticket, event) = ticket(&store, false);
        let eticket = ETicket {
            ticket_id: ticket.id,
            event_id: event.id,
            holder_id: ticket.holder_id,
            expires_at: event.ends_at,
        };
        let before = T0.saturating_sub(Duration::from_secs(1));
        assert_eq!(
            reason(check_in(&store, &eticket, None, before).unwrap()),
            Some(Reason::EventNotStarted)
        );
        let first = T0.saturating_add(Duration::from_secs(5));
        let firsts: Vec<bool> = [first, first]
            .into_iter()
            .map(|at| match check_in(&store, &eticket, None, at).unwrap() {
                Verdict::Valid(check_in) => check_in.first_entry,
                Verdict::Invalid(reason) => panic!("refused: {reason:?}"),
            })
            .collect();
        assert_eq!(firsts, [true, false]);
        assert_eq!(
            reason(check_in(&store, &eticket, None, event.ends_at).unwrap()),
            Some(Reason::EventOver)
        );
        // Claims naming another holder or event than the stored ticket's do not stand.
        let other = ETicket {
            holder_id: ticket.holder_id + 100,
            ..eticket
        };
        assert_eq!(
            reason(check_in(&store, &other, None, first).unwrap()),
            Some(Reason::TicketNotFound)
        );
    }
}
