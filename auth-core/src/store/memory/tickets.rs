//! Tickets and door checks: [`TicketStore`] for [`MemoryStore`](super::MemoryStore).

use super::*;
use crate::account::AccountId;
use crate::ticket::{CodeAttempt, CodeLock, NewTicket, Ticket, TicketId, TicketStore, TicketUse};
use crate::webhook::{Message, MessageKind};

impl TicketStore for MemoryStore {
    fn create_ticket(&self, ticket: NewTicket, now: Timestamp) -> Result<Ticket> {
        self.tickets()?.create_ticket(ticket, now)
    }

    fn ticket(&self, id: TicketId) -> Result<Option<Ticket>> {
        Ok(self.tickets()?.ticket(id))
    }

    fn holder_tickets(&self, holder: AccountId) -> Result<Vec<Ticket>> {
        Ok(self.tickets()?.holder_tickets(holder))
    }

    fn revoke_ticket(&self, id: TicketId, now: Timestamp) -> Result<bool> {
        Ok(self.tickets()?.revoke_ticket(id, now))
    }

    fn use_ticket(
        &self,
        id: TicketId,
        step: i64,
        by: Option<AccountId>,
        single_entry: bool,
        now: Timestamp,
    ) -> Result<TicketUse> {
        let mut tickets = self.tickets()?;
        let used = tickets.use_ticket(id, step, by, single_entry, now);
        if let (TicketUse::Accepted { first_entry }, Some(ticket)) = (used, tickets.ticket(id)) {
            self.queue_if_wanted(MessageKind::TicketCheckedIn, || {
                Message::ticket_checked_in(&ticket, first_entry, by, now)
            })?;
        }
        Ok(used)
    }

    fn count_code_attempt(
        &self,
        id: TicketId,
        lock: CodeLock,
        now: Timestamp,
    ) -> Result<CodeAttempt> {
        Ok(self.tickets()?.count_code_attempt(id, lock, now))
    }

    fn unlock_ticket(&self, id: TicketId) -> Result<bool> {
        Ok(self.tickets()?.unlock_ticket(id))
    }

    fn purge_ticket_state(&self, now: Timestamp) -> Result<u64> {
        Ok(self.tickets()?.purge(now))
    }
}
