//! A ticket unlocks its event's streams (seed 000): its holder exchanges it for a short-lived
//! signed playback token, which the player puts in the stream URL and `/auth` accepts without a
//! database read.
//!
//! What the holder may ask for is bounded by the ticket: the token names the holder (never a
//! name they choose), unlocks only the event's streams, ends no later than the event, and admits
//! one player at a time: per ticket, not per token, since every token of one ticket names the
//! same session group (`grp`) and so shares its one slot however many the holder mints.

use std::net::IpAddr;
use std::time::Duration;

use serde::Deserialize;

use super::{still_good, Ticket, TicketId};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::event::Event;
use crate::signed_token::PlaybackSpec;

/// Concurrent players a holder's token admits.
pub const HOLDER_MAX_SESSIONS: u32 = 1;

/// A holder's request for a playback token.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HolderRequest {
    pub ticket_id: TicketId,
    /// Some of the event's streams (names it unlocks, or its own patterns); all of them when
    /// empty.
    #[serde(default)]
    pub streams: Vec<String>,
    /// Shortened to the event's end; the server's default when absent.
    #[serde(default)]
    pub ttl_seconds: Option<u64>,
    /// Bind the token to the player's address.
    #[serde(default)]
    pub ip: Option<IpAddr>,
    /// The signing key; the newest active key when absent.
    #[serde(default)]
    pub kid: Option<String>,
}

/// The token `ticket`'s holder gets for `request` at `now`. Whether the caller holds the ticket
/// is [`crate::account::permits`]' question, not this one.
pub fn spec(
    ticket: &Ticket,
    event: &Event,
    request: &HolderRequest,
    default_ttl: Duration,
    now: Timestamp,
) -> Result<PlaybackSpec> {
    if ticket.id != request.ticket_id || ticket.event_id != event.id {
        return Err(Error::invalid("ticket_id", "not this ticket or event"));
    }
    still_good(ticket, event, now)?;
    // What the stored event allows, not the request's shape, decides the rest: 422.
    // Lifetimes are whole seconds: less than one left is over too.
    let left = event.ends_at.unix_seconds() - now.unix_seconds();
    if left < 1 {
        return Err(Error::unprocessable("ticket_id", "the event is over"));
    }
    if event.streams.is_empty() {
        return Err(Error::unprocessable(
            "ticket_id",
            "the ticket's event unlocks no stream",
        ));
    }
    let streams = if request.streams.is_empty() {
        event.streams.clone()
    } else {
        for stream in &request.streams {
            let unlocked =
                event.streams.contains(stream) || (!stream.contains('*') && event.unlocks(stream));
            if !unlocked {
                return Err(Error::unprocessable(
                    "streams",
                    format!("`{stream}` is not among the event's streams"),
                ));
            }
        }
        request.streams.clone()
    };
    let ttl = request.ttl_seconds.unwrap_or(default_ttl.as_secs());
    if ttl == 0 {
        return Err(Error::invalid("ttl_seconds", "must be at least 1"));
    }
    Ok(PlaybackSpec {
        user_id: ticket.holder_id.to_string(),
        event: Some(event.id.to_string()),
        streams,
        ttl_seconds: Some(ttl.min(left.unsigned_abs())),
        ip: request.ip,
        max_sessions: Some(HOLDER_MAX_SESSIONS),
        kid: request.kid.clone(),
        group: Some(session_group(ticket.id)),
        ..PlaybackSpec::default()
    })
}

/// The session group every holder token of ticket `id` names.
pub fn session_group(id: TicketId) -> String {
    format!("ticket:{id}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ticket::SALT_LEN;

    const T0: Timestamp = Timestamp::from_unix_seconds(1_800_000_000);
    const HOUR: Duration = Duration::from_secs(3600);

    fn event() -> Event {
        Event {
            id: 4,
            title: "Final".into(),
            starts_at: T0,
            ends_at: T0.saturating_add(2 * HOUR),
            capacity: 10,
            streams: vec!["final/*".into(), "lobby".into()],
            single_entry: false,
            registered: 1,
            created_at: T0,
            updated_at: T0,
        }
    }

    fn ticket() -> Ticket {
        Ticket {
            id: 9,
            event_id: 4,
            holder_id: 31,
            salt: [0; SALT_LEN],
            issued_at: T0,
            revoked_at: None,
            checked_in_at: None,
            checked_in_by: None,
        }
    }

    fn request() -> HolderRequest {
        HolderRequest {
            ticket_id: 9,
            ..HolderRequest::default()
        }
    }

    #[test]
    fn the_token_names_the_holder_and_the_event_and_admits_one_player() {
        let spec = spec(&ticket(), &event(), &request(), HOUR, T0).unwrap();
        assert_eq!(spec.user_id, "31");
        assert_eq!(spec.event.as_deref(), Some("4"));
        assert_eq!(spec.streams, ["final/*", "lobby"]);
        assert_eq!(spec.max_sessions, Some(1));
        assert_eq!(spec.ttl_seconds, Some(3600));
        assert_eq!(
            spec.group.as_deref(),
            Some("ticket:9"),
            "one slot per ticket"
        );
    }

    #[test]
    fn streams_are_bounded_by_the_event() {
        let asked = |streams: &[&str]| {
            let request = HolderRequest {
                streams: streams.iter().map(|s| s.to_string()).collect(),
                ..request()
            };
            spec(&ticket(), &event(), &request, HOUR, T0).map(|s| s.streams)
        };
        assert_eq!(asked(&["final/cam1"]).unwrap(), ["final/cam1"]);
        assert_eq!(asked(&["final/*", "lobby"]).unwrap(), ["final/*", "lobby"]);
        for outside in [
            &["other"][..],
            &["final/cam1", "backstage"],
            &["*"],
            &["fin*"],
        ] {
            let err = asked(outside).unwrap_err();
            assert_eq!(err.field(), Some("streams"), "{outside:?}");
        }
    }

    #[test]
    fn the_lifetime_ends_with_the_event() {
        let near_end = event().ends_at.saturating_sub(Duration::from_secs(90));
        let spec = spec(&ticket(), &event(), &request(), HOUR, near_end).unwrap();
        assert_eq!(spec.ttl_seconds, Some(90));
        let asked = HolderRequest {
            ttl_seconds: Some(60),
            ..request()
        };
        let short = super::spec(&ticket(), &event(), &asked, HOUR, T0).unwrap();
        assert_eq!(short.ttl_seconds, Some(60));
        let over = super::spec(&ticket(), &event(), &request(), HOUR, event().ends_at);
        assert_eq!(over.unwrap_err().field(), Some("ticket_id"));
    }

    #[test]
    fn revoked_tickets_and_streamless_events_unlock_nothing() {
        let revoked = Ticket {
            revoked_at: Some(T0),
            ..ticket()
        };
        let err = spec(&revoked, &event(), &request(), HOUR, T0).unwrap_err();
        assert_eq!(err.code(), "conflict");
        let streamless = Event {
            streams: vec![],
            ..event()
        };
        assert!(spec(&ticket(), &streamless, &request(), HOUR, T0).is_err());
        let zero = HolderRequest {
            ttl_seconds: Some(0),
            ..request()
        };
        let err = spec(&ticket(), &event(), &zero, HOUR, T0).unwrap_err();
        assert_eq!(err.field(), Some("ttl_seconds"));
    }
}
