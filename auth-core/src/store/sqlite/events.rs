//! Events and rosters: [`EventStore`] for [`SqliteStore`](super::SqliteStore).

use super::*;
use crate::account::{AccountId, EventStanding};
use crate::event::{
    Event, EventFilter, EventId, EventPatch, EventStore, NewEvent, RosterEntry, RosterRole,
};

impl EventStore for SqliteStore {
    fn create_event(&self, event: NewEvent, now: Timestamp) -> Result<Event> {
        self.writer
            .run(move |conn| ticketing::create_event(conn, event, now))
    }

    fn event(&self, id: EventId) -> Result<Option<Event>> {
        ticketing::event(&*self.reader()?, id)
    }

    fn list_events(&self, filter: &EventFilter) -> Result<Page<Event>> {
        ticketing::list_events(&*self.reader()?, filter)
    }

    fn update_event(&self, id: EventId, patch: &EventPatch, now: Timestamp) -> Result<Event> {
        let patch = patch.clone();
        self.writer
            .run(move |conn| ticketing::update_event(conn, id, &patch, now))
    }

    fn add_to_roster(
        &self,
        event: EventId,
        account: AccountId,
        roster: RosterRole,
        now: Timestamp,
    ) -> Result<bool> {
        self.writer
            .run(move |conn| ticketing::add_to_roster(conn, event, account, roster, now))
    }

    fn roster(
        &self,
        event: EventId,
        roster: RosterRole,
        limit: u32,
        offset: u32,
    ) -> Result<Page<RosterEntry>> {
        ticketing::roster(&*self.reader()?, event, roster, limit, offset)
    }

    fn roster_standing(&self, event: EventId, account: AccountId) -> Result<EventStanding> {
        ticketing::roster_standing(&*self.reader()?, event, account)
    }
}
