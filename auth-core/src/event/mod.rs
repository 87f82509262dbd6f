//! Events and their rosters.
//!
//! An event has a title, a start and an end, a capacity (the most accounts on its users
//! roster), the stream names (or `*` globs) a ticket for it unlocks, and whether a ticket admits
//! once (`single_entry`) or any number of times. Its three rosters say who attends (`users`),
//! who checks tickets at the door (`agents`) and who runs it (`admins`).

pub mod store;

use std::fmt;
use std::str::FromStr;
pub use store::EventStore;

use serde::{Deserialize, Serialize};

use crate::account::AccountId;
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::token::StreamAllowList;

pub type EventId = i64;

pub const MAX_TITLE_LEN: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    pub id: EventId,
    pub title: String,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub capacity: u32,
    /// Stream names or globs a ticket unlocks; empty unlocks none.
    pub streams: Vec<String>,
    pub single_entry: bool,
    /// Accounts on the users roster: the one registration figure everyone may see.
    pub registered: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Event {
    /// Whether a ticket for this event unlocks `stream`.
    pub fn unlocks(&self, stream: &str) -> bool {
        StreamAllowList::parse(&self.streams)
            .is_ok_and(|list| !list.is_empty() && list.allows(stream))
    }
}

/// A validated event, ready for [`crate::event::EventStore::create_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub title: String,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub capacity: u32,
    pub streams: Vec<String>,
    pub single_entry: bool,
}

impl NewEvent {
    pub fn into_event(self, id: EventId, now: Timestamp) -> Event {
        Event {
            id,
            title: self.title,
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            capacity: self.capacity,
            streams: self.streams,
            single_entry: self.single_entry,
            registered: 0,
            created_at: now,
            updated_at: now,
        }
    }

    /// The lower-cased title that title searches match against.
    pub fn title_key(&self) -> String {
        self.title.to_lowercase()
    }
}

/// The creation payload.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSpec {
    pub title: String,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub capacity: i64,
    #[serde(default)]
    pub streams: Vec<String>,
    /// Default true: a ticket admits once.
    pub single_entry: Option<bool>,
}

impl EventSpec {
    pub fn validate(self) -> Result<NewEvent> {
        let event = NewEvent {
            title: validate_title(&self.title)?,
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            capacity: validate_capacity(self.capacity)?,
            streams: validate_streams(&self.streams)?,
            single_entry: self.single_entry.unwrap_or(true),
        };
        validate_window(event.starts_at, event.ends_at)?;
        Ok(event)
    }
}

/// A change to an event; applied atomically by [`crate::event::EventStore::update_event`], which checks the
/// result (end after start, capacity not below the registered count).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventPatch {
    pub title: Option<String>,
    pub starts_at: Option<Timestamp>,
    pub ends_at: Option<Timestamp>,
    pub capacity: Option<i64>,
    pub streams: Option<Vec<String>>,
    pub single_entry: Option<bool>,
}

impl EventPatch {
    pub fn is_empty(&self) -> bool {
        self.title.is_none()
            && self.starts_at.is_none()
            && self.ends_at.is_none()
            && self.capacity.is_none()
            && self.streams.is_none()
            && self.single_entry.is_none()
    }

    /// Applies the patch to a copy of `event`, validating each field and the result.
    pub fn apply(&self, event: &Event, now: Timestamp) -> Result<Event> {
        let mut next = event.clone();
        if let Some(title) = &self.title {
            next.title = validate_title(title)?;
        }
        if let Some(t) = self.starts_at {
            next.starts_at = t;
        }
        if let Some(t) = self.ends_at {
            next.ends_at = t;
        }
        if let Some(capacity) = self.capacity {
            next.capacity = validate_capacity(capacity)?;
        }
        if let Some(streams) = &self.streams {
            next.streams = validate_streams(streams)?;
        }
        if let Some(single) = self.single_entry {
            next.single_entry = single;
        }
        validate_window(next.starts_at, next.ends_at)?;
        if u64::from(next.capacity) < next.registered {
            // The stored registrations, not the request's shape, are at fault: 422.
            return Err(Error::unprocessable(
                "capacity",
                format!(
                    "{} accounts are registered: the capacity cannot be lower",
                    next.registered
                ),
            ));
        }
        next.updated_at = now;
        Ok(next)
    }
}

/// Which events to list.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Case-insensitive substring of the title.
    pub title: Option<String>,
    pub limit: u32,
    pub offset: u32,
}

/// An event's three rosters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RosterRole {
    /// Attendees (`/users`): may hold a ticket.
    Users,
    /// Door staff (`/agents`): see the rosters, verify tickets.
    Agents,
    /// Event admins (`/admins`): edit the event and its rosters.
    Admins,
}

impl RosterRole {
    pub fn as_str(self) -> &'static str {
        match self {
            RosterRole::Users => "users",
            RosterRole::Agents => "agents",
            RosterRole::Admins => "admins",
        }
    }
}

impl fmt::Display for RosterRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RosterRole {
    type Err = Error;
    fn from_str(text: &str) -> Result<Self> {
        match text {
            "users" => Ok(RosterRole::Users),
            "agents" => Ok(RosterRole::Agents),
            "admins" => Ok(RosterRole::Admins),
            _ => Err(Error::invalid("roster", "must be users, agents or admins")),
        }
    }
}

/// One account on a roster: id and name only (what agents may see).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RosterEntry {
    pub account_id: AccountId,
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    pub added_at: Timestamp,
}

fn validate_title(title: &str) -> Result<String> {
    let title = title.trim();
    if title.is_empty()
        || title.chars().count() > MAX_TITLE_LEN
        || title.chars().any(char::is_control)
    {
        return Err(Error::invalid(
            "title",
            format!("must be 1 to {MAX_TITLE_LEN} printable characters"),
        ));
    }
    Ok(title.to_owned())
}

fn validate_capacity(capacity: i64) -> Result<u32> {
    u32::try_from(capacity)
        .ok()
        .filter(|c| *c > 0)
        .ok_or_else(|| Error::invalid("capacity", format!("must be from 1 to {}", u32::MAX)))
}

fn validate_streams(streams: &[String]) -> Result<Vec<String>> {
    let list = StreamAllowList::parse(streams).map_err(|err| match err {
        Error::InvalidInput { message, .. } => Error::invalid("streams", message),
        other => other,
    })?;
    Ok(list.entries().map(str::to_owned).collect())
}

fn validate_window(starts_at: Timestamp, ends_at: Timestamp) -> Result<()> {
    if ends_at <= starts_at {
        return Err(Error::unprocessable(
            "ends_at",
            "must be later than starts_at",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> EventSpec {
        EventSpec {
            title: " RustConf ".into(),
            starts_at: Timestamp::from_unix_seconds(100),
            ends_at: Timestamp::from_unix_seconds(200),
            capacity: 2,
            streams: vec!["conf/*".into()],
            single_entry: None,
        }
    }

    #[test]
    fn specs_are_checked() {
        let event = spec().validate().unwrap();
        assert_eq!(event.title, "RustConf");
        assert!(event.single_entry);
        let e = event.into_event(1, Timestamp::UNIX_EPOCH);
        assert!(e.unlocks("conf/main"));
        assert!(!e.unlocks("other"));
        let mut bad = spec();
        bad.ends_at = bad.starts_at;
        assert_eq!(bad.validate().unwrap_err().field(), Some("ends_at"));
        let mut bad = spec();
        bad.capacity = 0;
        assert_eq!(bad.validate().unwrap_err().field(), Some("capacity"));
        let mut bad = spec();
        bad.title = "  ".into();
        assert_eq!(bad.validate().unwrap_err().field(), Some("title"));
    }

    #[test]
    fn a_patch_cannot_shrink_below_the_registered() {
        let mut event = spec()
            .validate()
            .unwrap()
            .into_event(1, Timestamp::UNIX_EPOCH);
        event.registered = 2;
        let patch = EventPatch {
            capacity: Some(1),
            ..Default::default()
        };
        assert_eq!(
            patch
                .apply(&event, Timestamp::UNIX_EPOCH)
                .unwrap_err()
                .field(),
            Some("capacity")
        );
        let patch = EventPatch {
            ends_at: Some(Timestamp::from_unix_seconds(50)),
            ..Default::default()
        };
        assert!(patch.apply(&event, Timestamp::UNIX_EPOCH).is_err());
    }
}
