//! Where tickets and their door checks are kept, and the one bound of everything ticketing
//! needs from a store.

use super::{NewTicket, Ticket, TicketId, TicketUse};
use crate::account::{AccountId, AccountStore, RevocationStore};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::event::EventStore;

/// Consumed door steps kept at least this long; codes are accepted only within a step either
/// side of now, so an older step can never match again.
pub const TICKET_USE_RETENTION: std::time::Duration = std::time::Duration::from_secs(600);

/// Wrong door codes a ticket takes in a row before it is locked, and how long the lock lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeLock {
    pub after: u32,
    pub lasts: std::time::Duration,
}

/// What [`TicketStore::count_code_attempt`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeAttempt {
    /// Counted as wrong until the code is accepted ([`TicketStore::use_ticket`] clears the
    /// count); `locks` when this attempt reached the limit and locked the ticket (this code is
    /// still weighed: a right one lifts the lock).
    Counted {
        locks: bool,
    },
    /// Locked: no code is weighed before `until`.
    Locked {
        until: Timestamp,
    },
    NotFound,
}

/// A ticket's wrong codes in a row and its lock, as every backend stores them; the one rule of
/// [`TicketStore::count_code_attempt`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CodeState {
    pub wrong: u32,
    pub locked_until: Option<Timestamp>,
}

impl CodeState {
    /// One code attempt at `now`: the answer, and the state to store.
    pub(crate) fn attempt(self, lock: CodeLock, now: Timestamp) -> (CodeAttempt, CodeState) {
        match self.locked_until {
            Some(until) if until > now => (CodeAttempt::Locked { until }, self),
            expired => {
                let before = if expired.is_some() { 0 } else { self.wrong };
                let wrong = before.saturating_add(1);
                if wrong >= lock.after {
                    let locked_until = Some(now.saturating_add(lock.lasts));
                    let state = CodeState {
                        wrong: 0,
                        locked_until,
                    };
                    (CodeAttempt::Counted { locks: true }, state)
                } else {
                    let state = CodeState {
                        wrong,
                        locked_until: None,
                    };
                    (CodeAttempt::Counted { locks: false }, state)
                }
            }
        }
    }
}

/// Tickets and their door checks.
pub trait TicketStore: Send + Sync {
    /// Fails with `Conflict` (field `ticket`) when the holder has a live (unrevoked) ticket for
    /// the event.
    fn create_ticket(&self, ticket: NewTicket, now: Timestamp) -> Result<Ticket>;

    fn ticket(&self, id: TicketId) -> Result<Option<Ticket>>;

    /// Every ticket of `holder`, revoked ones included, by id: what a holder's wallet lists.
    fn holder_tickets(&self, holder: AccountId) -> Result<Vec<Ticket>>;

    /// False if there is no such ticket; revoking again keeps the first time.
    fn revoke_ticket(&self, id: TicketId, now: Timestamp) -> Result<bool>;

    /// One door check, atomically: refuses a (ticket, step) accepted before (`Reused`), records
    /// the step, then refuses a single-entry ticket already checked in, else records the first
    /// check-in (`now`, `by`). Consumed steps persist, and are shared by every node. An
    /// accepted code clears the wrong-code count and lock of [`Self::count_code_attempt`].
    fn use_ticket(
        &self,
        id: TicketId,
        step: i64,
        by: Option<AccountId>,
        single_entry: bool,
        now: Timestamp,
    ) -> Result<TicketUse>;

    /// Counts a door code about to be weighed against ticket `id`, atomically with the lock
    /// check, so a burst of guesses gets no more than `lock.after` of them weighed: refuses
    /// while a lock holds; else counts the attempt, and the `lock.after`-th in a row locks the
    /// ticket for `lock.lasts` (an expired lock starts a new count). Shared by every node.
    fn count_code_attempt(
        &self,
        id: TicketId,
        lock: CodeLock,
        now: Timestamp,
    ) -> Result<CodeAttempt>;

    /// Lifts a ticket's lock and forgets its wrong codes (an event admin's call); false if
    /// there is no such ticket.
    fn unlock_ticket(&self, id: TicketId) -> Result<bool>;

    /// Forgets revocations of access tokens expired at `now` and consumed door steps old enough
    /// that no code of theirs can be accepted again; returns how many rows went.
    fn purge_ticket_state(&self, now: Timestamp) -> Result<u64>;
}

/// Every store ticketing uses: accounts, events and rosters, tickets, revocations. Implemented
/// for any type that implements those four.
pub trait TicketingStore: AccountStore + EventStore + TicketStore + RevocationStore {}

impl<T: AccountStore + EventStore + TicketStore + RevocationStore + ?Sized> TicketingStore for T {}

/// The answer of every backend to a second live ticket for one holder and event.
pub(crate) fn live_ticket() -> Error {
    Error::Conflict {
        field: "ticket",
        message: "the account already holds a live ticket for this event; revoke it first".into(),
    }
}
