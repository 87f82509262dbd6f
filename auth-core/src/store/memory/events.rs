//! Events and rosters: [`EventStore`] for [`MemoryStore`](super::MemoryStore).

use super::*;
use crate::account::{AccountId, EventStanding};
use crate::event::{
    Event, EventFilter, EventId, EventPatch, EventStore, NewEvent, RosterEntry, RosterRole,
};

impl EventStore for MemoryStore {
    fn create_event(&self, event: NewEvent, now: Timestamp) -> Result<Event> {
        Ok(self.tickets()?.create_event(event, now))
    }

    fn event(&self, id: EventId) -> Result<Option<Event>> {
        Ok(self.tickets()?.event(id))
    }

    fn list_events(&self, filter: &EventFilter) -> Result<Page<Event>> {
        Ok(self.tickets()?.list_events(filter))
    }

    fn update_event(&self, id: EventId, patch: &EventPatch, now: Timestamp) -> Result<Event> {
        self.tickets()?.update_event(id, patch, now)
    }

    fn add_to_roster(
        &self,
        event: EventId,
        account: AccountId,
        roster: RosterRole,
        now: Timestamp,
    ) -> Result<bool> {
        self.tickets()?.add_to_roster(event, account, roster, now)
    }

    fn roster(
        &self,
        event: EventId,
        roster: RosterRole,
        limit: u32,
        offset: u32,
    ) -> Result<Page<RosterEntry>> {
        self.tickets()?.roster(event, roster, limit, offset)
    }

    fn roster_standing(&self, event: EventId, account: AccountId) -> Result<EventStanding> {
        Ok(self.tickets()?.roster_standing(event, account))
    }

    fn standings_of(&self, account: AccountId) -> Result<Vec<(EventId, EventStanding)>> {
        Ok(self.tickets()?.standings_of(account))
    }
}
