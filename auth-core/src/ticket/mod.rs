//! Event tickets checked at the door with 6-digit TOTP codes.
//!
//! Each ticket has its own TOTP secret, HMAC-SHA256(ticket key, holder id ‖ event id ‖ salt)
//! with a random 16-byte salt per ticket: the server can reproduce it from the ticket row and its
//! key (nothing secret is stored), nobody without the key can forge one, and it is bound to the
//! holder's registration. The holder receives it once, at issue, as an `otpauth://` URI and QR
//! code for any authenticator app (RFC 6238: SHA-1, 6 digits, 30 s).
//!
//! At the door an agent submits (ticket id, code); [`verify`] accepts a code of the current time
//! step or one step either side, and the store accepts each (ticket, step) once
//! ([`crate::ticket::TicketStore::use_ticket`]), so a code seen over a shoulder cannot be replayed, even
//! across a restart or on another node sharing the database.
//!
//! Six digits are few: an agent of the event trying codes as fast as the server answers found
//! one in seconds. So each code is counted against its ticket before it is weighed
//! ([`crate::ticket::TicketStore::count_code_attempt`]), and after [`CODE_LOCK`]`.after` wrong
//! ones in a row the ticket takes no code (`too_many_attempts`) until the lock ends or an event
//! admin lifts it. The count is in the store, so a lock holds on every node.

pub mod playback;
pub mod qr;
pub mod signed;
pub mod store;

pub use store::{CodeAttempt, CodeLock, TicketStore, TicketingStore, TICKET_USE_RETENTION};

use std::time::Duration;

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};

use crate::account::{AccountId, AccountSummary};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::event::{Event, EventId};

pub type TicketId = i64;

/// TOTP time step.
pub const STEP: Duration = Duration::from_secs(30);
const STEP_SECONDS: i64 = 30;
pub const DIGITS: usize = 6;
/// Steps accepted either side of the current one (clock drift, a code read just as it turned).
pub const SKEW_STEPS: i64 = 1;
pub const SALT_LEN: usize = 16;

/// Wrong door codes a ticket takes in a row before it is locked, and for how long: at most 5
/// guesses per quarter hour, each right with odds of 3 in a million (three steps are accepted).
pub const CODE_LOCK: CodeLock = CodeLock {
    after: 5,
    lasts: Duration::from_secs(15 * 60),
};

/// A stored ticket. Its salt is not secret on its own (the key is), but there is no reason to
/// show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ticket {
    pub id: TicketId,
    pub event_id: EventId,
    pub holder_id: AccountId,
    #[serde(skip)]
    pub salt: [u8; SALT_LEN],
    pub issued_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    /// The first accepted check-in.
    pub checked_in_at: Option<Timestamp>,
    pub checked_in_by: Option<AccountId>,
}

/// A ticket to store: [`crate::ticket::TicketStore::create_ticket`] refuses a second live ticket for the same
/// holder and event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTicket {
    pub event_id: EventId,
    pub holder_id: AccountId,
    pub salt: [u8; SALT_LEN],
}

impl NewTicket {
    pub fn into_ticket(self, id: TicketId, now: Timestamp) -> Ticket {
        Ticket {
            id,
            event_id: self.event_id,
            holder_id: self.holder_id,
            salt: self.salt,
            issued_at: now,
            revoked_at: None,
            checked_in_at: None,
            checked_in_by: None,
        }
    }
}

/// What the store did with one (ticket, step) presented at the door.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketUse {
    /// Recorded; `first_entry` when this is the ticket's first check-in.
    Accepted {
        first_entry: bool,
    },
    /// This (ticket, step) was accepted before.
    Reused,
    /// A single-entry ticket already checked in (the step is consumed all the same).
    AlreadyCheckedIn {
        at: Timestamp,
    },
    Revoked,
    NotFound,
}

/// Why a door check failed. The codes are part of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    TicketNotFound,
    CodeInvalid,
    CodeReused,
    TicketRevoked,
    EventNotStarted,
    EventOver,
    AlreadyCheckedIn,
    /// The ticket took too many wrong codes in a row: locked for a while (see [`CODE_LOCK`]).
    TooManyAttempts,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::TicketNotFound => "ticket_not_found",
            Reason::CodeInvalid => "code_invalid",
            Reason::CodeReused => "code_reused",
            Reason::TicketRevoked => "ticket_revoked",
            Reason::EventNotStarted => "event_not_started",
            Reason::EventOver => "event_over",
            Reason::AlreadyCheckedIn => "already_checked_in",
            Reason::TooManyAttempts => "too_many_attempts",
        }
    }
}

/// The door's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Valid(Box<CheckIn>),
    Invalid(Reason),
}

/// An accepted check: whose ticket, for what, and whether it is the first entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckIn {
    pub ticket: Ticket,
    pub holder: AccountSummary,
    pub event: Event,
    pub first_entry: bool,
}

/// The server key ticket secrets derive from. Keep it with the database: without it no issued
/// ticket verifies.
#[derive(Clone)]
pub struct TicketKey(hmac::Key);

impl std::fmt::Debug for TicketKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TicketKey(..)")
    }
}

impl TicketKey {
    pub fn new(key: &[u8]) -> Result<Self> {
        if key.len() < 32 {
            return Err(Error::invalid("ticket_key", "must be at least 32 bytes"));
        }
        Ok(TicketKey(hmac::Key::new(hmac::HMAC_SHA256, key)))
    }

    /// The ticket's TOTP secret (32 bytes).
    pub fn secret(&self, holder: AccountId, event: EventId, salt: &[u8; SALT_LEN]) -> Vec<u8> {
        let mut input = [0u8; 16 + SALT_LEN];
        input[..8].copy_from_slice(&holder.to_be_bytes());
        input[8..16].copy_from_slice(&event.to_be_bytes());
        input[16..].copy_from_slice(salt);
        hmac::sign(&self.0, &input).as_ref().to_vec()
    }

    fn totp(&self, ticket: &Ticket, issuer: Option<String>, account: String) -> TOTP {
        let secret = self.secret(ticket.holder_id, ticket.event_id, &ticket.salt);
        TOTP::new_unchecked(
            Algorithm::SHA1,
            DIGITS,
            0,
            STEP.as_secs(),
            secret,
            issuer,
            account,
        )
    }

    /// The code a ticket shows during time step `step` (unix seconds / 30).
    pub fn code_at_step(&self, ticket: &Ticket, step: i64) -> String {
        let time = u64::try_from(step.saturating_mul(STEP_SECONDS)).unwrap_or_default();
        self.totp(ticket, None, String::new()).generate(time)
    }

    /// The code a ticket shows at `at`.
    pub fn code_at(&self, ticket: &Ticket, at: Timestamp) -> String {
        self.code_at_step(ticket, step_of(at))
    }

    /// The time step, among those accepted at `now`, whose code is `code`. Compares every
    /// candidate in constant time.
    pub fn matching_step(&self, ticket: &Ticket, code: &str, now: Timestamp) -> Option<i64> {
        if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let totp = self.totp(ticket, None, String::new());
        let current = step_of(now);
        let mut found = None;
        for step in (current - SKEW_STEPS..=current + SKEW_STEPS).filter(|s| *s >= 0) {
            let time = u64::try_from(step * STEP_SECONDS).unwrap_or_default();
            let matches: bool = totp.generate(time).as_bytes().ct_eq(code.as_bytes()).into();
            if matches && found.is_none() {
                found = Some(step);
            }
        }
        found
    }
}

pub fn step_of(at: Timestamp) -> i64 {
    at.unix_seconds().div_euclid(STEP_SECONDS)
}

/// What the holder gets, once.
#[derive(Debug, Clone, Serialize)]
pub struct IssuedTicket {
    pub ticket: Ticket,
    /// Base32, no padding (what authenticator apps accept typed in).
    pub secret: String,
    pub otpauth_uri: String,
}

/// Issues a ticket for `holder`, who must be on the event's users roster; the event must not be
/// over. Whether the caller may ask is [`crate::account::permits`]' question, not this one.
pub fn issue(
    store: &dyn TicketingStore,
    key: &TicketKey,
    event_id: EventId,
    holder_id: AccountId,
    issuer: &str,
    now: Timestamp,
) -> Result<IssuedTicket> {
    let event = store
        .event(event_id)?
        .ok_or(Error::NotFound { what: "event" })?;
    let holder = store
        .account(holder_id)?
        .ok_or(Error::NotFound { what: "account" })?;
    if now >= event.ends_at {
        return Err(Error::unprocessable("event_id", "the event is over"));
    }
    if !store.roster_standing(event_id, holder_id)?.attendee {
        return Err(Error::unprocessable(
            "user_id",
            "the account is not on the event's users roster",
        ));
    }
    let mut salt = [0u8; SALT_LEN];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| Error::storage("the system random number generator failed"))?;
    let ticket = store.create_ticket(
        NewTicket {
            event_id,
            holder_id,
            salt,
        },
        now,
    )?;
    // The label must not hold ':' (it separates issuer and account in otpauth URIs).
    let label = |text: &str| text.replace(':', " ");
    let totp = key.totp(
        &ticket,
        Some(label(issuer)),
        label(&format!(
            "{} #{} {}",
            event.title, ticket.id, holder.username
        )),
    );
    Ok(IssuedTicket {
        secret: totp.get_secret_base32(),
        otpauth_uri: totp.get_url(),
        ticket,
    })
}

/// What [`revoke`] did: the revocation of the ticket's playback tokens (to add to a node's
/// [`crate::signed_token::revocations::RevocationSet`] at once) and the live sessions it cut
/// (to tell their media servers).
#[derive(Debug, Clone)]
pub struct Revoked {
    pub tokens: crate::signed_token::revocations::Revocation,
    pub cut: Vec<crate::session::Session>,
}

/// Revokes ticket `id` and what was derived from it: its codes are refused; the playback tokens
/// minted from it (session group `ticket:<id>`) are revoked until `tokens_until` (no earlier
/// than the longest a playback token can live); their live sessions are cut and banned from
/// their streams until the event ends. `None` when there is no such ticket.
pub fn revoke(
    tickets: &dyn TicketingStore,
    sessions: &dyn crate::session::SessionStore,
    keys: &dyn crate::signed_token::keys::SigningKeyStore,
    id: TicketId,
    tokens_until: Timestamp,
    now: Timestamp,
) -> Result<Option<Revoked>> {
    use crate::signed_token::revocations::{Revocation, Revoked as Target};
    if !tickets.revoke_ticket(id, now)? {
        return Ok(None);
    }
    let group = playback::session_group(id);
    let revocation = Revocation {
        revoked: Target::Group(group.clone()),
        until: tokens_until,
    };
    keys.revoke_signed(&revocation)?;
    let ends_at = match tickets.ticket(id)? {
        Some(ticket) => tickets.event(ticket.event_id)?.map(|e| e.ends_at),
        None => None,
    };
    let owner = crate::session::SessionOwner::group(&group);
    let cut = sessions.cut_sessions(&crate::session::Cut::Owner(owner), ends_at, now)?;
    Ok(Some(Revoked {
        tokens: revocation,
        cut,
    }))
}

/// Whether `ticket` still entitles its holder to anything derived from it (an e-ticket, a
/// playback token) at `now`: not revoked, its event not over.
fn still_good(ticket: &Ticket, event: &Event, now: Timestamp) -> Result<()> {
    if ticket.revoked_at.is_some() {
        return Err(Error::Conflict {
            field: "ticket_id",
            message: "the ticket is revoked".into(),
        });
    }
    if now >= event.ends_at {
        return Err(Error::unprocessable("ticket_id", "the event is over"));
    }
    Ok(())
}

/// The door check. `by` is the agent, recorded with the first check-in. The code is counted
/// against the ticket before it is weighed (see [`CODE_LOCK`]); a wrong one that locks the
/// ticket answers [`Verdict::Invalid`] with [`Reason::CodeInvalid`] all the same, and
/// [`DoorCheck::locked_now`] says so.
pub fn verify(
    store: &dyn TicketingStore,
    key: &TicketKey,
    ticket_id: TicketId,
    code: &str,
    by: Option<AccountId>,
    now: Timestamp,
) -> Result<DoorCheck> {
    let (ticket, event) = match at_the_door(store, ticket_id, now)? {
        Ok(found) => found,
        Err(reason) => return Ok(DoorCheck::from(Verdict::Invalid(reason))),
    };
    let locks = match store.count_code_attempt(ticket.id, CODE_LOCK, now)? {
        CodeAttempt::Counted { locks } => locks,
        CodeAttempt::Locked { .. } => {
            return Ok(DoorCheck::from(Verdict::Invalid(Reason::TooManyAttempts)))
        }
        CodeAttempt::NotFound => {
            return Ok(DoorCheck::from(Verdict::Invalid(Reason::TicketNotFound)))
        }
    };
    let Some(step) = key.matching_step(&ticket, code.trim(), now) else {
        return Ok(DoorCheck {
            verdict: Verdict::Invalid(Reason::CodeInvalid),
            locked_now: locks,
        });
    };
    admit(store, ticket, event, step, by, now).map(DoorCheck::from)
}

/// A door code's verdict, and whether this code locked its ticket (what is worth a log line:
/// one per burst of wrong codes rather than one per code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoorCheck {
    pub verdict: Verdict,
    pub locked_now: bool,
}

impl From<Verdict> for DoorCheck {
    fn from(verdict: Verdict) -> Self {
        DoorCheck {
            verdict,
            locked_now: false,
        }
    }
}

/// What every door check asks before weighing its proof (a code, a signature): the ticket
/// exists, is not revoked, and its event is on.
fn at_the_door(
    store: &dyn TicketingStore,
    ticket_id: TicketId,
    now: Timestamp,
) -> Result<std::result::Result<(Ticket, Event), Reason>> {
    let Some(ticket) = store.ticket(ticket_id)? else {
        return Ok(Err(Reason::TicketNotFound));
    };
    if ticket.revoked_at.is_some() {
        return Ok(Err(Reason::TicketRevoked));
    }
    let event = store
        .event(ticket.event_id)?
        .ok_or_else(|| Error::storage("a ticket's event is missing"))?;
    if now < event.starts_at {
        return Ok(Err(Reason::EventNotStarted));
    }
    if now >= event.ends_at {
        return Ok(Err(Reason::EventOver));
    }
    Ok(Ok((ticket, event)))
}

/// Records the entry of a ticket whose proof holds; `step` is what the proof consumes, accepted
/// once by the store, atomically with the check-in.
fn admit(
    store: &dyn TicketingStore,
    ticket: Ticket,
    event: Event,
    step: i64,
    by: Option<AccountId>,
    now: Timestamp,
) -> Result<Verdict> {
    let first_entry = match store.use_ticket(ticket.id, step, by, event.single_entry, now)? {
        TicketUse::Accepted { first_entry } => first_entry,
        TicketUse::Reused => return Ok(Verdict::Invalid(Reason::CodeReused)),
        TicketUse::AlreadyCheckedIn { .. } => {
            return Ok(Verdict::Invalid(Reason::AlreadyCheckedIn))
        }
        TicketUse::Revoked => return Ok(Verdict::Invalid(Reason::TicketRevoked)),
        TicketUse::NotFound => return Ok(Verdict::Invalid(Reason::TicketNotFound)),
    };
    let holder = store
        .account(ticket.holder_id)?
        .map(|a| AccountSummary::from(&a))
        .ok_or_else(|| Error::storage("a ticket's holder is missing"))?;
    let ticket = store.ticket(ticket.id)?.unwrap_or(ticket);
    Ok(Verdict::Valid(Box::new(CheckIn {
        ticket,
        holder,
        event,
        first_entry,
    })))
}

#[cfg(test)]
mod tests;
