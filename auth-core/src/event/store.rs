//! Where events and their rosters are kept.

use super::{Event, EventFilter, EventId, EventPatch, NewEvent, RosterEntry, RosterRole};
use crate::account::{AccountId, EventStanding};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::page::Page;

/// Events and who is on their rosters.
pub trait EventStore: Send + Sync {
    fn create_event(&self, event: NewEvent, now: Timestamp) -> Result<Event>;

    fn event(&self, id: EventId) -> Result<Option<Event>>;

    /// Ordered by start, then id.
    fn list_events(&self, filter: &EventFilter) -> Result<Page<Event>>;

    /// Applies `patch` ([`EventPatch::apply`]) to the current event atomically: a concurrent
    /// registration cannot slip under a lowered capacity.
    fn update_event(&self, id: EventId, patch: &EventPatch, now: Timestamp) -> Result<Event>;

    /// Puts the account on the roster; false when it already was. `NotFound` for a missing event
    /// or account; `Conflict` (field `capacity`) when the users roster is full: the count and the
    /// insert are one atomic step.
    fn add_to_roster(
        &self,
        event: EventId,
        account: AccountId,
        roster: RosterRole,
        now: Timestamp,
    ) -> Result<bool>;

    /// In the order added.
    fn roster(
        &self,
        event: EventId,
        roster: RosterRole,
        limit: u32,
        offset: u32,
    ) -> Result<Page<RosterEntry>>;

    /// Which of the event's rosters the account is on.
    fn roster_standing(&self, event: EventId, account: AccountId) -> Result<EventStanding>;

    /// Every event the account is on a roster of, with its standing there, by event id: what a
    /// holder's wallet and an agent's door page offer to pick from.
    fn standings_of(&self, account: AccountId) -> Result<Vec<(EventId, EventStanding)>>;
}

/// The answer of every backend to a registration past capacity.
pub(crate) fn full() -> Error {
    Error::Conflict {
        field: "capacity",
        message: "the event is full: its users roster is at capacity".into(),
    }
}
