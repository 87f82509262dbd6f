//! Tickets and door checks: [`TicketStore`] for [`SqliteStore`](super::SqliteStore).

use super::*;
use crate::account::AccountId;
use crate::ticket::{NewTicket, Ticket, TicketId, TicketStore, TicketUse};

impl TicketStore for SqliteStore {
    fn create_ticket(&self, ticket: NewTicket, now: Timestamp) -> Result<Ticket> {
        self.writer
            .run(move |conn| ticketing::create_ticket(conn, ticket, now))
    }

    fn ticket(&self, id: TicketId) -> Result<Option<Ticket>> {
        ticketing::ticket(&*self.reader()?, id)
    }

    fn revoke_ticket(&self, id: TicketId, now: Timestamp) -> Result<bool> {
        self.writer
            .run(move |conn| ticketing::revoke_ticket(conn, id, now))
    }

    fn use_ticket(
        &self,
        id: TicketId,
        step: i64,
        by: Option<AccountId>,
        single_entry: bool,
        now: Timestamp,
    ) -> Result<TicketUse> {
        self.writer
            .run(move |conn| ticketing::use_ticket(conn, id, step, by, single_entry, now))
    }

    fn purge_ticket_state(&self, now: Timestamp) -> Result<u64> {
        self.writer.run(move |conn| ticketing::purge(conn, now))
    }
}
