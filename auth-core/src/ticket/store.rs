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
    /// check-in (`now`, `by`). Consumed steps persist, and are shared by every node.
    fn use_ticket(
        &self,
        id: TicketId,
        step: i64,
        by: Option<AccountId>,
        single_entry: bool,
        now: Timestamp,
    ) -> Result<TicketUse>;

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
