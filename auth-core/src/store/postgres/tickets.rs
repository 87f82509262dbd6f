//! Tickets and door checks: [`TicketStore`] for [`PostgresStore`](super::PostgresStore).

use super::*;
use crate::account::AccountId;
use crate::ticket::{NewTicket, Ticket, TicketId, TicketStore, TicketUse};

impl TicketStore for PostgresStore {
    fn create_ticket(&self, ticket: NewTicket, now: Timestamp) -> Result<Ticket> {
        ticketing::create_ticket(&mut *self.conn()?, ticket, now)
    }

    fn ticket(&self, id: TicketId) -> Result<Option<Ticket>> {
        ticketing::ticket(&mut *self.conn()?, id, false)
    }

    fn revoke_ticket(&self, id: TicketId, now: Timestamp) -> Result<bool> {
        ticketing::revoke_ticket(&mut *self.conn()?, id, now)
    }

    fn use_ticket(
        &self,
        id: TicketId,
        step: i64,
        by: Option<AccountId>,
        single_entry: bool,
        now: Timestamp,
    ) -> Result<TicketUse> {
        ticketing::use_ticket(&mut *self.conn()?, id, step, by, single_entry, now)
    }

    fn purge_ticket_state(&self, now: Timestamp) -> Result<u64> {
        ticketing::purge(&mut *self.conn()?, now)
    }
}
