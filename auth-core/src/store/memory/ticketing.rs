//! [`super::MemoryStore`]'s event-ticket state: accounts, events, rosters, tickets and revoked
//! access tokens, behind one mutex of their own (nothing here touches tokens or sessions).

use std::collections::{BTreeMap, HashMap};

use crate::account::store::taken;
use crate::account::{Account, AccountId, AccountPatch, EventStanding, NewAccount};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::event::store::full;
use crate::event::{Event, EventFilter, EventId, EventPatch, NewEvent, RosterEntry, RosterRole};
use crate::page::{clamp_limit, Page};
use crate::ticket::store::{live_ticket, CodeState};
use crate::ticket::TICKET_USE_RETENTION;
use crate::ticket::{step_of, CodeAttempt, CodeLock, NewTicket, Ticket, TicketId, TicketUse};

#[derive(Default)]
pub(super) struct TicketState {
    next_account: AccountId,
    accounts: BTreeMap<AccountId, Account>,
    next_event: EventId,
    events: BTreeMap<EventId, Event>,
    /// Per (event, roster): members in the order added.
    rosters: HashMap<(EventId, RosterRole), Vec<(AccountId, Timestamp)>>,
    next_ticket: TicketId,
    tickets: BTreeMap<TicketId, Ticket>,
    /// (ticket, step) -> when it was accepted.
    uses: HashMap<(TicketId, i64), Timestamp>,
    /// Wrong door codes in a row and locks, of the tickets that have any.
    code_states: HashMap<TicketId, CodeState>,
    /// jti -> the token's expiry.
    revoked: HashMap<String, Timestamp>,
}

impl TicketState {
    pub fn create_account(&mut self, new: NewAccount, now: Timestamp) -> Result<Account> {
        if self.accounts.values().any(|a| a.username == new.username) {
            return Err(taken("username"));
        }
        if self.accounts.values().any(|a| a.email == new.email) {
            return Err(taken("email"));
        }
        self.next_account += 1;
        let account = new.into_account(self.next_account, now);
        self.accounts.insert(account.id, account.clone());
        Ok(account)
    }

    pub fn account(&self, id: AccountId) -> Option<Account> {
        self.accounts.get(&id).cloned()
    }

    pub fn account_by_username(&self, username: &str) -> Option<Account> {
        self.accounts
            .values()
            .find(|a| a.username == username)
            .cloned()
    }

    pub fn update_account(
        &mut self,
        id: AccountId,
        patch: AccountPatch,
        now: Timestamp,
    ) -> Result<Account> {
        if let Some(email) = &patch.email {
            if self
                .accounts
                .values()
                .any(|a| a.id != id && &a.email == email)
            {
                return Err(taken("email"));
            }
        }
        let account = self
            .accounts
            .get_mut(&id)
            .ok_or(Error::NotFound { what: "account" })?;
        patch.apply(account, now);
        Ok(account.clone())
    }

    fn registered(&self, event: EventId) -> u64 {
        self.rosters
            .get(&(event, RosterRole::Users))
            .map_or(0, |m| m.len() as u64)
    }

    fn with_count(&self, event: &Event) -> Event {
        let mut event = event.clone();
        event.registered = self.registered(event.id);
        event
    }

    pub fn create_event(&mut self, new: NewEvent, now: Timestamp) -> Event {
        self.next_event += 1;
        let event = new.into_event(self.next_event, now);
        self.events.insert(event.id, event.clone());
        event
    }

    pub fn event(&self, id: EventId) -> Option<Event> {
        self.events.get(&id).map(|e| self.with_count(e))
    }

    pub fn list_events(&self, filter: &EventFilter) -> Page<Event> {
        let needle = filter.title.as_deref().map(str::to_lowercase);
        let mut matching: Vec<&Event> = self
            .events
            .values()
            .filter(|e| {
                needle
                    .as_deref()
                    .is_none_or(|n| e.title.to_lowercase().contains(n))
            })
            .collect();
        matching.sort_by_key(|e| (e.starts_at, e.id));
        Page {
            total: matching.len() as u64,
            items: matching
                .into_iter()
                .skip(filter.offset as usize)
                .take(clamp_limit(filter.limit) as usize)
                .map(|e| self.with_count(e))
                .collect(),
        }
    }

    pub fn update_event(
        &mut self,
        id: EventId,
        patch: &EventPatch,
        now: Timestamp,
    ) -> Result<Event> {
        let current = self.event(id).ok_or(Error::NotFound { what: "event" })?;
        let next = patch.apply(&current, now)?;
        self.events.insert(id, next.clone());
        Ok(next)
    }

    pub fn add_to_roster(
        &mut self,
        event: EventId,
        account: AccountId,
        roster: RosterRole,
        now: Timestamp,
    ) -> Result<bool> {
        let capacity = self
            .events
            .get(&event)
            .ok_or(Error::NotFound { what: "event" })?
            .capacity;
        if !self.accounts.contains_key(&account) {
            return Err(Error::NotFound { what: "account" });
        }
        let members = self.rosters.entry((event, roster)).or_default();
        if members.iter().any(|(a, _)| *a == account) {
            return Ok(false);
        }
        if roster == RosterRole::Users && members.len() as u64 >= u64::from(capacity) {
            return Err(full());
        }
        members.push((account, now));
        Ok(true)
    }

    pub fn roster(
        &self,
        event: EventId,
        roster: RosterRole,
        limit: u32,
        offset: u32,
    ) -> Result<Page<RosterEntry>> {
        if !self.events.contains_key(&event) {
            return Err(Error::NotFound { what: "event" });
        }
        let members = self
            .rosters
            .get(&(event, roster))
            .map_or(&[][..], Vec::as_slice);
        Ok(Page {
            total: members.len() as u64,
            items: members
                .iter()
                .skip(offset as usize)
                .take(clamp_limit(limit) as usize)
                .filter_map(|(id, added_at)| {
                    let a = self.accounts.get(id)?;
                    Some(RosterEntry {
                        account_id: a.id,
                        username: a.username.clone(),
                        first_name: a.first_name.clone(),
                        last_name: a.last_name.clone(),
                        added_at: *added_at,
                    })
                })
                .collect(),
        })
    }

    pub fn roster_standing(&self, event: EventId, account: AccountId) -> EventStanding {
        let on = |roster| {
            self.rosters
                .get(&(event, roster))
                .is_some_and(|m| m.iter().any(|(a, _)| *a == account))
        };
        EventStanding {
            attendee: on(RosterRole::Users),
            agent: on(RosterRole::Agents),
            admin: on(RosterRole::Admins),
        }
    }

    pub fn create_ticket(&mut self, new: NewTicket, now: Timestamp) -> Result<Ticket> {
        if !self.events.contains_key(&new.event_id) {
            return Err(Error::NotFound { what: "event" });
        }
        if !self.accounts.contains_key(&new.holder_id) {
            return Err(Error::NotFound { what: "account" });
        }
        if self.tickets.values().any(|t| {
            t.event_id == new.event_id && t.holder_id == new.holder_id && t.revoked_at.is_none()
        }) {
            return Err(live_ticket());
        }
        self.next_ticket += 1;
        let ticket = new.into_ticket(self.next_ticket, now);
        self.tickets.insert(ticket.id, ticket.clone());
        Ok(ticket)
    }

    pub fn ticket(&self, id: TicketId) -> Option<Ticket> {
        self.tickets.get(&id).cloned()
    }

    pub fn holder_tickets(&self, holder: AccountId) -> Vec<Ticket> {
        self.tickets
            .values()
            .filter(|t| t.holder_id == holder)
            .cloned()
            .collect()
    }

    pub fn standings_of(&self, account: AccountId) -> Vec<(EventId, EventStanding)> {
        let mut events: Vec<EventId> = self
            .rosters
            .iter()
            .filter(|(_, members)| members.iter().any(|(a, _)| *a == account))
            .map(|((event, _), _)| *event)
            .collect();
        events.sort_unstable();
        events.dedup();
        events
            .into_iter()
            .map(|event| (event, self.roster_standing(event, account)))
            .collect()
    }

    pub fn revoke_ticket(&mut self, id: TicketId, now: Timestamp) -> bool {
        match self.tickets.get_mut(&id) {
            Some(ticket) => {
                ticket.revoked_at.get_or_insert(now);
                true
            }
            None => false,
        }
    }

    pub fn use_ticket(
        &mut self,
        id: TicketId,
        step: i64,
        by: Option<AccountId>,
        single_entry: bool,
        now: Timestamp,
    ) -> TicketUse {
        let Some(ticket) = self.tickets.get_mut(&id) else {
            return TicketUse::NotFound;
        };
        if ticket.revoked_at.is_some() {
            return TicketUse::Revoked;
        }
        if self.uses.contains_key(&(id, step)) {
            return TicketUse::Reused;
        }
        self.uses.insert((id, step), now);
        let accepted = !(single_entry && ticket.checked_in_at.is_some());
        if accepted {
            self.code_states.remove(&id);
        }
        match ticket.checked_in_at {
            Some(at) if single_entry => TicketUse::AlreadyCheckedIn { at },
            Some(_) => TicketUse::Accepted { first_entry: false },
            None => {
                ticket.checked_in_at = Some(now);
                ticket.checked_in_by = by;
                TicketUse::Accepted { first_entry: true }
            }
        }
    }

    pub fn count_code_attempt(
        &mut self,
        id: TicketId,
        lock: CodeLock,
        now: Timestamp,
    ) -> CodeAttempt {
        if !self.tickets.contains_key(&id) {
            return CodeAttempt::NotFound;
        }
        let state = self.code_states.entry(id).or_default();
        let (attempt, next) = state.attempt(lock, now);
        *state = next;
        attempt
    }

    pub fn unlock_ticket(&mut self, id: TicketId) -> bool {
        self.code_states.remove(&id);
        self.tickets.contains_key(&id)
    }

    pub fn revoke_access_token(&mut self, jti: &str, expires_at: Timestamp) {
        self.revoked.insert(jti.to_owned(), expires_at);
    }

    pub fn access_token_revoked(&self, jti: &str) -> bool {
        self.revoked.contains_key(jti)
    }

    pub fn purge(&mut self, now: Timestamp) -> u64 {
        let before = self.revoked.len() + self.uses.len();
        self.revoked.retain(|_, expires_at| *expires_at > now);
        let oldest = step_of(now.saturating_sub(TICKET_USE_RETENTION));
        self.uses.retain(|(_, step), _| *step >= oldest);
        (before - self.revoked.len() - self.uses.len()) as u64
    }
}
