//! Events and rosters: [`EventStore`] for [`PostgresStore`](super::PostgresStore).

use super::*;
use crate::account::{AccountId, EventStanding};
use crate::event::{
    Event, EventFilter, EventId, EventPatch, EventStore, NewEvent, RosterEntry, RosterRole,
};

impl EventStore for PostgresStore {
    fn create_event(&self, event: NewEvent, now: Timestamp) -> Result<Event> {
        ticketing::create_event(&mut *self.conn()?, event, now)
    }

    fn event(&self, id: EventId) -> Result<Option<Event>> {
        ticketing::event(&mut *self.conn()?, id, false)
    }

    fn list_events(&self, filter: &EventFilter) -> Result<Page<Event>> {
        ticketing::list_events(&mut *self.conn()?, filter)
    }

    fn update_event(&self, id: EventId, patch: &EventPatch, now: Timestamp) -> Result<Event> {
        ticketing::update_event(&mut *self.conn()?, id, patch, now)
    }

    fn add_to_roster(
        &self,
        event: EventId,
        account: AccountId,
        roster: RosterRole,
        now: Timestamp,
    ) -> Result<bool> {
        ticketing::add_to_roster(&mut *self.conn()?, event, account, roster, now)
    }

    fn roster(
        &self,
        event: EventId,
        roster: RosterRole,
        limit: u32,
        offset: u32,
    ) -> Result<Page<RosterEntry>> {
        ticketing::roster(&mut *self.conn()?, event, roster, limit, offset)
    }

    fn roster_standing(&self, event: EventId, account: AccountId) -> Result<EventStanding> {
        ticketing::roster_standing(&mut *self.conn()?, event, account)
    }
}
