//! Who may do what: one pure function over the principal, the action, and the principal's
//! standing in the event concerned. Every endpoint and command asks it; nothing else decides.
//!
//! | action | user | event agent | event admin | admin role, read-write API key |
//! |---|---|---|---|---|
//! | view / edit an account | self (not the role) | self | self | any (and roles) |
//! | list / view events (with the registered count, no names) | yes | yes | yes | yes |
//! | create events | - | - | - | yes |
//! | edit an event | - | - | yes | yes |
//! | change the streams an event unlocks | - | - | - | yes |
//! | view its rosters | - | yes | yes | yes |
//! | edit its rosters | - | - | yes | yes |
//! | get a ticket for it | self, when on its users roster | same | for anyone on it | for anyone on it |
//! | get a ticket's signed e-ticket, or a playback token for it | its holder | its holder | yes | yes |
//! | verify its tickets | - | yes | yes | yes |
//! | revoke its tickets | - | - | yes | yes |
//! | learn that a ticket id does not exist | - | any agent | any agent | yes |
//!
//! A read-only API key may do every viewing action and nothing else.

use super::{AccountId, Role};

/// Who is asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal {
    /// A management API key: an administrator; `write` false for a read-only key.
    ApiKey { write: bool },
    /// A logged-in account, with its current role.
    Account { id: AccountId, role: Role },
}

/// The principal's place on one event's rosters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventStanding {
    /// On the users (attendees) roster.
    pub attendee: bool,
    pub agent: bool,
    pub admin: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    ViewAccount(AccountId),
    /// Names, email, password.
    EditAccount(AccountId),
    ChangeRole,
    ListEvents,
    ViewEvent,
    CreateEvent,
    EditEvent,
    /// Change which streams an event's tickets unlock: what its holders' playback tokens open,
    /// so a server-wide decision, not the event's.
    SetEventStreams,
    ViewRoster,
    EditRoster,
    /// A ticket for `holder`.
    IssueTicket {
        holder: AccountId,
    },
    /// Get the signed e-ticket of, or a playback token for, a ticket `holder` holds.
    UseTicket {
        holder: AccountId,
    },
    VerifyTicket,
    /// A door check of a ticket id that does not exist: staff of any event learn that much.
    VerifyUnknownTicket,
    RevokeTicket,
    /// Lift a ticket's door-code lock (see [`crate::ticket::CODE_LOCK`]).
    UnlockTicket,
}

impl Action {
    /// Actions that change nothing.
    pub fn is_view(self) -> bool {
        matches!(
            self,
            Action::ViewAccount(_) | Action::ListEvents | Action::ViewEvent | Action::ViewRoster
        )
    }
}

/// Why the answer is no; a stable code for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forbidden {
    ReadOnlyKey,
    NotYours,
    AdminOnly,
    NotEventStaff,
    NotEventAdmin,
    NotOnRoster,
    NotYourTicket,
}

impl Forbidden {
    pub fn message(self) -> &'static str {
        match self {
            Forbidden::ReadOnlyKey => "this API key is read-only",
            Forbidden::NotYours => "an account may only see and change itself",
            Forbidden::AdminOnly => "only an administrator may do this",
            Forbidden::NotEventStaff => "only the event's agents and admins may do this",
            Forbidden::NotEventAdmin => "only the event's admins may do this",
            Forbidden::NotOnRoster => "tickets are for accounts on the event's users roster",
            Forbidden::NotYourTicket => {
                "only the ticket's holder and the event's admins may do this"
            }
        }
    }
}

/// The decision. `standing` is the principal's standing in the event the action concerns
/// (default for actions that concern no event).
pub fn permits(
    principal: Principal,
    action: Action,
    standing: EventStanding,
) -> Result<(), Forbidden> {
    let (id, role) = match principal {
        Principal::ApiKey { write } if write || action.is_view() => return Ok(()),
        Principal::ApiKey { .. } => return Err(Forbidden::ReadOnlyKey),
        Principal::Account { id, role } => (id, role),
    };
    if role == Role::Admin {
        return Ok(());
    }
    let staff = standing.agent || standing.admin;
    match action {
        Action::ViewAccount(who) | Action::EditAccount(who) if who == id => Ok(()),
        Action::ViewAccount(_) | Action::EditAccount(_) => Err(Forbidden::NotYours),
        Action::ChangeRole | Action::CreateEvent | Action::SetEventStreams => {
            Err(Forbidden::AdminOnly)
        }
        Action::ListEvents | Action::ViewEvent => Ok(()),
        Action::VerifyUnknownTicket if role == Role::Agent => Ok(()),
        Action::VerifyUnknownTicket => Err(Forbidden::NotEventStaff),
        Action::ViewRoster | Action::VerifyTicket if staff => Ok(()),
        Action::ViewRoster | Action::VerifyTicket => Err(Forbidden::NotEventStaff),
        Action::EditEvent | Action::EditRoster | Action::RevokeTicket | Action::UnlockTicket
            if standing.admin =>
        {
            Ok(())
        }
        Action::EditEvent | Action::EditRoster | Action::RevokeTicket | Action::UnlockTicket => {
            Err(Forbidden::NotEventAdmin)
        }
        Action::IssueTicket { .. } if standing.admin => Ok(()),
        Action::IssueTicket { holder } if holder == id && standing.attendee => Ok(()),
        Action::IssueTicket { holder } if holder == id => Err(Forbidden::NotOnRoster),
        Action::IssueTicket { .. } => Err(Forbidden::NotEventAdmin),
        Action::UseTicket { holder } if holder == id || standing.admin => Ok(()),
        Action::UseTicket { .. } => Err(Forbidden::NotYourTicket),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER: Principal = Principal::Account {
        id: 1,
        role: Role::User,
    };
    const AGENT: Principal = Principal::Account {
        id: 2,
        role: Role::Agent,
    };
    const ADMIN: Principal = Principal::Account {
        id: 3,
        role: Role::Admin,
    };
    const NONE: EventStanding = EventStanding {
        attendee: false,
        agent: false,
        admin: false,
    };
    const ATTENDEE: EventStanding = EventStanding {
        attendee: true,
        agent: false,
        admin: false,
    };
    const AGENT_OF: EventStanding = EventStanding {
        attendee: false,
        agent: true,
        admin: false,
    };
    const ADMIN_OF: EventStanding = EventStanding {
        attendee: false,
        agent: false,
        admin: true,
    };

    #[test]
    fn users_see_events_and_themselves_only() {
        assert_eq!(permits(USER, Action::ViewAccount(1), NONE), Ok(()));
        assert_eq!(permits(USER, Action::EditAccount(1), NONE), Ok(()));
        assert_eq!(
            permits(USER, Action::ViewAccount(2), NONE),
            Err(Forbidden::NotYours)
        );
        assert_eq!(
            permits(USER, Action::ChangeRole, NONE),
            Err(Forbidden::AdminOnly)
        );
        assert_eq!(permits(USER, Action::ViewEvent, NONE), Ok(()));
        assert_eq!(
            permits(USER, Action::CreateEvent, NONE),
            Err(Forbidden::AdminOnly)
        );
        assert_eq!(
            permits(USER, Action::ViewRoster, ATTENDEE),
            Err(Forbidden::NotEventStaff)
        );
        assert_eq!(
            permits(USER, Action::VerifyTicket, ATTENDEE),
            Err(Forbidden::NotEventStaff)
        );
        assert_eq!(
            permits(USER, Action::IssueTicket { holder: 1 }, ATTENDEE),
            Ok(())
        );
        assert_eq!(
            permits(USER, Action::IssueTicket { holder: 1 }, NONE),
            Err(Forbidden::NotOnRoster)
        );
        assert_eq!(
            permits(USER, Action::IssueTicket { holder: 9 }, ATTENDEE),
            Err(Forbidden::NotEventAdmin)
        );
    }

    #[test]
    fn only_holders_and_event_admins_use_a_ticket() {
        let use_ticket = Action::UseTicket { holder: 1 };
        assert_eq!(permits(USER, use_ticket, ATTENDEE), Ok(()));
        assert_eq!(
            permits(USER, Action::UseTicket { holder: 9 }, ATTENDEE),
            Err(Forbidden::NotYourTicket)
        );
        assert_eq!(
            permits(AGENT, use_ticket, AGENT_OF),
            Err(Forbidden::NotYourTicket)
        );
        assert_eq!(permits(AGENT, use_ticket, ADMIN_OF), Ok(()));
        let ro = Principal::ApiKey { write: false };
        assert_eq!(permits(ro, use_ticket, NONE), Err(Forbidden::ReadOnlyKey));
    }

    #[test]
    fn agents_act_only_on_their_events() {
        assert_eq!(permits(AGENT, Action::ViewRoster, AGENT_OF), Ok(()));
        assert_eq!(permits(AGENT, Action::VerifyTicket, AGENT_OF), Ok(()));
        assert_eq!(
            permits(AGENT, Action::VerifyTicket, NONE),
            Err(Forbidden::NotEventStaff)
        );
        assert_eq!(
            permits(AGENT, Action::EditRoster, AGENT_OF),
            Err(Forbidden::NotEventAdmin)
        );
        assert_eq!(
            permits(AGENT, Action::EditEvent, AGENT_OF),
            Err(Forbidden::NotEventAdmin)
        );
        assert_eq!(
            permits(AGENT, Action::RevokeTicket, AGENT_OF),
            Err(Forbidden::NotEventAdmin)
        );
        assert_eq!(
            permits(AGENT, Action::UnlockTicket, AGENT_OF),
            Err(Forbidden::NotEventAdmin),
            "an agent who locked a ticket by mistyping cannot lift the lock"
        );
    }

    #[test]
    fn event_admins_run_their_event_and_admins_everything() {
        for action in [
            Action::EditEvent,
            Action::EditRoster,
            Action::ViewRoster,
            Action::VerifyTicket,
            Action::RevokeTicket,
            Action::UnlockTicket,
            Action::IssueTicket { holder: 1 },
            Action::UseTicket { holder: 1 },
        ] {
            assert_eq!(permits(AGENT, action, ADMIN_OF), Ok(()), "{action:?}");
            assert_eq!(permits(ADMIN, action, NONE), Ok(()), "{action:?}");
        }
        assert_eq!(
            permits(AGENT, Action::CreateEvent, ADMIN_OF),
            Err(Forbidden::AdminOnly)
        );
        assert_eq!(
            permits(AGENT, Action::SetEventStreams, ADMIN_OF),
            Err(Forbidden::AdminOnly)
        );
        assert_eq!(permits(ADMIN, Action::SetEventStreams, NONE), Ok(()));
        assert_eq!(permits(ADMIN, Action::ChangeRole, NONE), Ok(()));
    }

    #[test]
    fn api_keys_are_admins_and_read_only_keys_only_look() {
        let rw = Principal::ApiKey { write: true };
        let ro = Principal::ApiKey { write: false };
        assert_eq!(permits(rw, Action::CreateEvent, NONE), Ok(()));
        assert_eq!(permits(ro, Action::ViewRoster, NONE), Ok(()));
        assert_eq!(
            permits(ro, Action::EditRoster, NONE),
            Err(Forbidden::ReadOnlyKey)
        );
        assert_eq!(
            permits(ro, Action::VerifyTicket, NONE),
            Err(Forbidden::ReadOnlyKey)
        );
    }
}
