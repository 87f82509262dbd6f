//! Outgoing webhooks, signed as Standard Webhooks (standardwebhooks.com): what happened (a
//! session opened or closed, a token changed, a ticket checked in) told to the operator's
//! endpoints, at least once.
//!
//! Nothing is lost because a [`Message`] is never sent from memory: each backend writes it to an
//! outbox, one delivery per subscribed endpoint, in the same transaction as the change it
//! tells of (an admission, a token write, a check-in). A worker outside this crate claims due
//! deliveries ([`WebhookStore::claim_deliveries`]), posts them signed ([`sign`]), and removes or
//! reschedules each ([`retry_at`]). A claim is a lease: a worker that dies mid-delivery leaves
//! its claims to be taken again once the lease runs out.

use std::time::Duration;

use base64::Engine;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::session::{CloseReason, Session};
use crate::token::{Token, TokenId};

pub mod store;

pub use store::WebhookStore;

/// A webhook endpoint's id.
pub type WebhookId = i64;

/// A queued delivery's id.
pub type DeliveryId = i64;

/// What a message tells of: its `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum MessageKind {
    #[serde(rename = "session.opened")]
    SessionOpened,
    #[serde(rename = "session.closed")]
    SessionClosed,
    #[serde(rename = "token.created")]
    TokenCreated,
    #[serde(rename = "token.updated")]
    TokenUpdated,
    #[serde(rename = "token.deleted")]
    TokenDeleted,
    #[serde(rename = "ticket.checked_in")]
    TicketCheckedIn,
    /// Only to endpoints that name it: under a flood of bad tokens it is the one kind whose
    /// volume an outsider controls (the server also caps how many it queues).
    #[serde(rename = "access.denied")]
    AccessDenied,
}

impl MessageKind {
    pub const ALL: [MessageKind; 7] = [
        MessageKind::SessionOpened,
        MessageKind::SessionClosed,
        MessageKind::TokenCreated,
        MessageKind::TokenUpdated,
        MessageKind::TokenDeleted,
        MessageKind::TicketCheckedIn,
        MessageKind::AccessDenied,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::SessionOpened => "session.opened",
            MessageKind::SessionClosed => "session.closed",
            MessageKind::TokenCreated => "token.created",
            MessageKind::TokenUpdated => "token.updated",
            MessageKind::TokenDeleted => "token.deleted",
            MessageKind::TicketCheckedIn => "ticket.checked_in",
            MessageKind::AccessDenied => "access.denied",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    /// Whether an endpoint that names no kinds gets this one.
    pub fn is_default(self) -> bool {
        self != MessageKind::AccessDenied
    }
}

/// One thing that happened, as every subscribed endpoint receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// `msg_` and 128 random bits: the `webhook-id`, the same on every retry, so that receivers
    /// can drop duplicates.
    pub id: String,
    pub kind: MessageKind,
    pub timestamp: Timestamp,
    pub data: Value,
}

impl Message {
    pub fn new(kind: MessageKind, timestamp: Timestamp, data: Value) -> Result<Self> {
        let mut random = [0u8; 16];
        SystemRandom::new()
            .fill(&mut random)
            .map_err(|_| Error::storage("no randomness for a webhook message id"))?;
        Ok(Self {
            id: format!("msg_{}", hex::encode(random)),
            kind,
            timestamp,
            data,
        })
    }

    /// A session admitted (`session.opened`).
    pub fn session_opened(session: &SessionFacts<'_>, now: Timestamp) -> Result<Self> {
        Self::new(MessageKind::SessionOpened, now, session.data())
    }

    /// A session ended (`session.closed`), with why and how long it lasted.
    pub fn session_closed(
        session: &SessionFacts<'_>,
        reason: CloseReason,
        now: Timestamp,
    ) -> Result<Self> {
        let mut data = session.data();
        let seconds = now
            .unix_micros()
            .saturating_sub(session.started_at.unix_micros())
            / 1_000_000;
        if let Value::Object(fields) = &mut data {
            fields.insert("reason".into(), json!(reason.as_str()));
            fields.insert("duration_seconds".into(), json!(seconds.max(0)));
        }
        Self::new(MessageKind::SessionClosed, now, data)
    }

    /// `session.closed` for each of `ended` (sessions removed together) that still held its
    /// slot: a terminated one was told of when it was terminated.
    pub fn sessions_closed(
        ended: &[Session],
        reason: CloseReason,
        now: Timestamp,
    ) -> impl Iterator<Item = Result<Self>> + '_ {
        ended
            .iter()
            .filter(|session| session.terminated_at.is_none())
            .map(move |session| Self::session_closed(&SessionFacts::from(session), reason, now))
    }

    /// A token created or updated: its settings, never its secret nor the secret's prefix.
    pub fn token_changed(kind: MessageKind, token: &Token, now: Timestamp) -> Result<Self> {
        let mut data = serde_json::to_value(token).map_err(Error::storage)?;
        if let Value::Object(fields) = &mut data {
            fields.remove("token_prefix");
        }
        Self::new(kind, now, data)
    }

    pub fn token_deleted(id: TokenId, now: Timestamp) -> Result<Self> {
        Self::new(MessageKind::TokenDeleted, now, json!({ "id": id }))
    }

    /// A door check accepted a ticket (`ticket.checked_in`); `first_entry` is false for a
    /// re-entry on a multi-entry ticket.
    #[cfg(feature = "tickets")]
    pub fn ticket_checked_in(
        ticket: &crate::ticket::Ticket,
        first_entry: bool,
        by: Option<crate::account::AccountId>,
        now: Timestamp,
    ) -> Result<Self> {
        let data = json!({
            "ticket_id": ticket.id,
            "event_id": ticket.event_id,
            "holder_id": ticket.holder_id,
            "first_entry": first_entry,
            "checked_in_by": by,
        });
        Self::new(MessageKind::TicketCheckedIn, now, data)
    }

    /// The body posted: `{"type", "timestamp", "data"}`.
    pub fn body(&self) -> String {
        json!({
            "type": self.kind.as_str(),
            "timestamp": self.timestamp.to_rfc3339(),
            "data": self.data,
        })
        .to_string()
    }
}

/// What a session event tells of a session: borrowed from a [`Session`] or from an admission's
/// claim, whichever the backend has at hand.
#[derive(Debug, Clone, Copy)]
pub struct SessionFacts<'a> {
    pub id: i64,
    pub token_id: Option<TokenId>,
    pub user_id: &'a str,
    pub stream: &'a str,
    pub ip: &'a str,
    pub proto: &'a str,
    pub source: &'a str,
    pub started_at: Timestamp,
}

impl<'a> From<&'a Session> for SessionFacts<'a> {
    fn from(session: &'a Session) -> Self {
        Self {
            id: session.id,
            token_id: session.token_id,
            user_id: &session.user_id,
            stream: &session.stream,
            ip: &session.ip,
            proto: &session.proto,
            source: &session.source,
            started_at: session.started_at,
        }
    }
}

impl SessionFacts<'_> {
    fn data(&self) -> Value {
        let mut fields = Map::new();
        fields.insert("session_id".into(), json!(self.id));
        fields.insert("token_id".into(), json!(self.token_id));
        fields.insert("user_id".into(), json!(self.user_id));
        fields.insert("stream".into(), json!(self.stream));
        fields.insert("ip".into(), json!(self.ip));
        fields.insert("proto".into(), json!(self.proto));
        fields.insert("source".into(), json!(self.source));
        fields.insert("started_at".into(), json!(self.started_at.to_rfc3339()));
        Value::Object(fields)
    }
}

/// An endpoint messages are posted to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Webhook {
    pub id: WebhookId,
    pub url: String,
    /// The kinds it receives; empty: every kind but `access.denied`.
    pub events: Vec<MessageKind>,
    pub description: String,
    pub created_at: Timestamp,
    /// Signs its deliveries; shown once, when it is created.
    #[serde(skip)]
    pub secret: WebhookSecret,
}

impl Webhook {
    pub fn receives(&self, kind: MessageKind) -> bool {
        subscribed(&self.events, kind)
    }
}

/// Whether an endpoint subscribed to `events` receives `kind`.
pub(crate) fn subscribed(events: &[MessageKind], kind: MessageKind) -> bool {
    if events.is_empty() {
        kind.is_default()
    } else {
        events.contains(&kind)
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
/// The kinds an endpoint receives, as stored: `,a,b,` (empty for the default), so that a
/// database matches one with a substring test on `,kind,`.
pub(crate) fn events_column(events: &[MessageKind]) -> String {
    if events.is_empty() {
        return String::new();
    }
    let mut column = String::from(",");
    for kind in events {
        column.push_str(kind.as_str());
        column.push(',');
    }
    column
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
/// The kinds an endpoint receives, from [`events_column`].
pub(crate) fn parse_events_column(column: &str) -> Vec<MessageKind> {
    column.split(',').filter_map(MessageKind::parse).collect()
}

/// An endpoint to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewWebhook {
    pub url: String,
    pub events: Vec<MessageKind>,
    pub description: String,
    pub secret: WebhookSecret,
}

impl NewWebhook {
    pub const MAX_URL_LEN: usize = 2048;
    pub const MAX_DESCRIPTION_LEN: usize = 256;

    /// Checks what a caller gave and draws a fresh secret: `url` as [`valid_url`] says, a
    /// description of at most [`Self::MAX_DESCRIPTION_LEN`] characters.
    pub fn new(url: String, events: Vec<MessageKind>, description: String) -> Result<Self> {
        if !valid_url(&url) {
            return Err(Error::invalid(
                "url",
                format!(
                    "an http:// or https:// URL of at most {} bytes: a lower-case host name or \
                     an IPv4 address, an optional port, an optional path of A-Z a-z 0-9 . _ ~ / -",
                    Self::MAX_URL_LEN
                ),
            ));
        }
        if description.chars().count() > Self::MAX_DESCRIPTION_LEN {
            return Err(Error::invalid(
                "description",
                format!("at most {} characters", Self::MAX_DESCRIPTION_LEN),
            ));
        }
        let mut events = events;
        events.sort_by_key(|kind| kind.as_str());
        events.dedup();
        Ok(Self {
            url,
            events,
            description,
            secret: WebhookSecret::generate()?,
        })
    }
}

/// Whether `url` is one an endpoint may have: `http://` or `https://`; a host of lower-case
/// labels (`[a-z]` then `[a-z0-9-]`, not ending in `-`) joined by dots, or a dotted IPv4 address
/// without leading zeros; an optional port from 1 to 65535 (no leading zero); an optional path of
/// `A-Z a-z 0-9 . _ ~ / -` starting with `/`; at most [`NewWebhook::MAX_URL_LEN`] bytes. Narrower
/// than what URLs allow, on purpose: exactly what the API's OpenAPI pattern says, and nothing a
/// URL parser could read two ways (no credentials, query or fragment).
pub fn valid_url(url: &str) -> bool {
    if url.len() > NewWebhook::MAX_URL_LEN {
        return false;
    }
    let Some(rest) = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    else {
        return false;
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    let port_ok = port.is_none_or(|port| {
        !port.starts_with('0')
            && port.len() <= 5
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u32>().is_ok_and(|n| (1..=65535).contains(&n))
    });
    let path_ok = path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._~/-".contains(&b));
    port_ok && path_ok && (is_host_name(host) || is_ipv4(host))
}

fn is_host_name(host: &str) -> bool {
    host.split('.').all(|label| {
        let bytes = label.as_bytes();
        bytes.first().is_some_and(u8::is_ascii_lowercase)
            && bytes.last().is_some_and(|b| *b != b'-')
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
    })
}

fn is_ipv4(host: &str) -> bool {
    let parts: Vec<&str> = host.split('.').collect();
    parts.len() == 4
        && parts.iter().all(|part| {
            !part.is_empty()
                && part.len() <= 3
                && (part.len() == 1 || !part.starts_with('0'))
                && part.bytes().all(|b| b.is_ascii_digit())
                && part.parse::<u16>().is_ok_and(|n| n <= 255)
        })
}

/// [`valid_url`] as a regular expression (ECMA-262, for the OpenAPI document).
pub const URL_PATTERN: &str = concat!(
    r"^https?://",
    r"([a-z]([a-z0-9-]*[a-z0-9])?(\.[a-z]([a-z0-9-]*[a-z0-9])?)*",
    r"|((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9]))",
    r"(:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?",
    r"(/[A-Za-z0-9._~/-]*)?$"
);

/// A signing secret, `whsec_` and the base64 of 32 random bytes.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct WebhookSecret(String);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

impl WebhookSecret {
    const PREFIX: &'static str = "whsec_";

    pub fn generate() -> Result<Self> {
        let mut key = [0u8; 32];
        SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| Error::storage("no randomness for a webhook secret"))?;
        Ok(Self(format!(
            "{}{}",
            Self::PREFIX,
            base64::engine::general_purpose::STANDARD.encode(key)
        )))
    }

    /// As stored; a backend only.
    pub fn from_stored(text: String) -> Self {
        Self(text)
    }

    /// The whole `whsec_...` text: to show once, and to store.
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn key(&self) -> Result<Vec<u8>> {
        let encoded = self.0.strip_prefix(Self::PREFIX).unwrap_or(&self.0);
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| Error::storage("a stored webhook secret is not base64"))
    }
}

/// The `webhook-signature` header: `v1,` and the base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`
/// keyed with the secret's decoded bytes.
pub fn sign(
    secret: &WebhookSecret,
    message_id: &str,
    timestamp: i64,
    body: &str,
) -> Result<String> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, &secret.key()?);
    let mut context = hmac::Context::with_key(&key);
    context.update(message_id.as_bytes());
    context.update(b".");
    context.update(timestamp.to_string().as_bytes());
    context.update(b".");
    context.update(body.as_bytes());
    let tag = context.sign();
    Ok(format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
    ))
}

/// A delivery claimed by a worker: one message for one endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub id: DeliveryId,
    pub webhook_id: WebhookId,
    pub url: String,
    pub secret: WebhookSecret,
    pub message_id: String,
    pub body: String,
    /// Failed attempts so far.
    pub attempts: u32,
    pub created_at: Timestamp,
}

/// When to try a delivery again after its `attempts`-th failure (counting this one), or `None`
/// to give up. The Standard Webhooks schedule: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h; about
/// 27.6 hours in all, so a receiver down for a day still gets everything.
pub fn retry_at(attempts: u32, now: Timestamp) -> Option<Timestamp> {
    const SCHEDULE: [u64; 7] = [5, 300, 1800, 7200, 18_000, 36_000, 36_000];
    let wait = SCHEDULE.get(attempts.checked_sub(1)? as usize)?;
    Some(now.saturating_add(Duration::from_secs(*wait)))
}

/// How long a claim keeps a delivery from other workers: longer than one attempt may take
/// (the worker's request timeout), short enough that a crashed worker's claims are taken again
/// well within 10 seconds of a restart.
pub const CLAIM_LEASE: Duration = Duration::from_secs(8);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification's reference libraries.
        let secret = WebhookSecret::from_stored("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into());
        let body = r#"{"test": 2432232314}"#;
        let signature = sign(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).unwrap();
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn retries_span_more_than_a_day_then_stop() {
        let t0 = Timestamp::from_unix_micros(0);
        assert_eq!(retry_at(0, t0), None);
        assert_eq!(
            retry_at(1, t0),
            Some(t0.saturating_add(Duration::from_secs(5)))
        );
        let total: i64 = (1..=7)
            .map(|n| retry_at(n, t0).unwrap().unix_micros())
            .sum();
        assert!(total >= 24 * 3600 * 1_000_000);
        assert_eq!(retry_at(8, t0), None);
    }

    #[test]
    fn urls_are_checked_exactly() {
        for good in [
            "http://127.0.0.1:8080/hook",
            "https://ops.example.net/hooks/auth",
            "http://localhost",
            "https://a-b.c9/x_y~z.-/",
            "http://0.0.0.0:65535",
        ] {
            assert!(valid_url(good), "{good}");
        }
        for bad in [
            "ftp://x",
            "HTTP://x",
            "http://",
            "http://X.example",
            "http://-a",
            "http://a-",
            "http://9a",
            "http://a..b",
            "http://256.0.0.1",
            "http://01.2.3.4",
            "http://1.2.3",
            "http://a:0",
            "http://a:65536",
            "http://a:080",
            "http://u:p@a",
            "http://a/?q=1",
            "http://a/#f",
            "http://a/ b",
            "http://a/%20",
        ] {
            assert!(!valid_url(bad), "{bad}");
        }
        let long = format!("http://a/{}", "b".repeat(NewWebhook::MAX_URL_LEN));
        assert!(!valid_url(&long));
    }

    #[test]
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    fn events_round_trip_through_their_column() {
        let kinds = vec![MessageKind::SessionOpened, MessageKind::AccessDenied];
        assert_eq!(events_column(&kinds), ",session.opened,access.denied,");
        assert_eq!(parse_events_column(&events_column(&kinds)), kinds);
        assert!(parse_events_column("").is_empty());
        assert!(!subscribed(&[], MessageKind::AccessDenied));
        assert!(subscribed(&[], MessageKind::TicketCheckedIn));
        assert!(subscribed(&kinds, MessageKind::AccessDenied));
        assert!(!subscribed(&kinds, MessageKind::TokenCreated));
    }

    #[test]
    fn token_messages_carry_no_secret() {
        let hasher = crate::TokenHasher::new(&[7; 32]).unwrap();
        let spec = crate::TokenSpec {
            token: Some("viewer-secret-1234".into()),
            user_id: "alice".into(),
            ..Default::default()
        };
        let (new, _) = spec.validate(&hasher).unwrap();
        let t0 = Timestamp::from_unix_micros(0);
        let token = new.into_token(7, t0, t0);
        let message = Message::token_changed(MessageKind::TokenCreated, &token, t0).unwrap();
        let body = message.body();
        assert!(!body.contains("viewer-"), "{body}");
        assert!(body.contains(r#""type":"token.created""#), "{body}");
        assert!(body.contains(r#""user_id":"alice""#), "{body}");
        assert!(message.id.starts_with("msg_") && message.id.len() == 36);
    }
}
