//! Authorization decisions for live streaming: may this viewer play (or this publisher publish)
//! this stream, now?
//!
//! The crate decides; it does no I/O of its own beyond the store it is given, reads no
//! environment, sets up no logger and never reads the wall clock (time comes in through
//! [`Clock`]). Embed it in any Rust server, or use `auth-server` for the HTTP hooks.
//!
//! # Layout
//! Leaves first; every arrow points from a domain to a leaf, and from `store` to the domains.
//! - [`clock`]: [`Timestamp`], [`Clock`], and clocks for production and tests.
//! - [`error`]: the crate's one [`Error`] type, with stable codes.
//! - [`secret`]: token generation, keyed digests for storage ([`TokenHasher`]), constant-time
//!   comparison, loggable prefixes.
//! - [`page`]: the one way every listing pages ([`Page`]).
//! - [`token`]: tokens and their rules (status, validity window, IP and stream allow-lists,
//!   allowed actions, session limit), and [`TokenStore`].
//! - [`session`]: viewer sessions as expiring leases on their owner's slots, and
//!   [`SessionStore`], whose admission is atomic.
//! - [`signed_token`]: tokens verified by signature alone (HMAC-SHA256, Ed25519 or ES256; ours
//!   or JWTs, with a JWKS), with a rotating key ring kept in a [`SigningKeyStore`]
//!   ([`signed_token::keys`]).
//! - [`edge_url`]: URL signatures an edge checks alone (nginx `secure_link`, Akamai EdgeAuth).
//! - [`decision`]: the policy. [`decision::plan`] and [`decide`] are pure; [`Authorizer`]
//!   wires them to the stores and a clock, in one pass per request ([`Step`], [`Pending`]).
//! - [`access_log`]: one record per decision, batched off the request path into an
//!   [`AccessLogStore`].
//! - [`store`]: the backends ([`SqliteStore`] with feature `sqlite`, the default;
//!   `PostgresStore` with `postgres`; [`MemoryStore`]), the token cache ([`CachedTokens`]), the
//!   [`Store`] and [`Backend`] bounds, and with feature `testkit` the conformance suite.
//! - [`webhook`]: Standard Webhooks messages (sessions opened and closed, token changes,
//!   check-ins), queued by each backend in the transaction of the change they tell of
//!   ([`WebhookStore`]), signed for delivery.
//! - [`prelude`]: every store trait, for `use auth_core::prelude::*`.
//! - With feature `tickets`: `account` (Argon2id passwords, JWT access tokens, login
//!   throttling, `AccountStore`, `RevocationStore`, and `account::permits`, the one rule of who
//!   may do what with events and tickets), `event` (events, rosters, `EventStore`) and `ticket`
//!   (TOTP door codes, per-ticket secrets, QR codes, signed e-tickets, `TicketStore`).
//!
//! # Features
//! - `sqlite` (default): [`SqliteStore`] (rusqlite, bundled SQLite).
//! - `postgres`: `PostgresStore`, for several nodes on one database.
//! - `tickets`: accounts, events, tickets (argon2, totp-rs, qrcode, png, jsonwebtoken).
//! - `testkit`: `store_suite!`, `token_suite!` and (with `tickets`) `ticketing_suite!`, the
//!   conformance suite a backend outside this crate can run.
//!
//! # Example
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use auth_core::prelude::*;
//! use auth_core::{Action, AuthRequest, Authorizer, MemoryStore, RequestType, SessionPolicy,
//!                 SystemClock, TokenSpec, Clock, TokenHasher};
//!
//! let store = Arc::new(MemoryStore::new());
//! let spec = TokenSpec { token: Some("viewer-secret".into()), user_id: "alice".into(),
//!                        max_sessions: Some(1), ..Default::default() };
//! // Stores keep an HMAC of each secret; keep the key across restarts (here: a throwaway one).
//! let hasher = TokenHasher::random()?;
//! let (token, _secret_to_show_once) = spec.validate(&hasher)?;
//! store.create_token(token, SystemClock.now())?;
//!
//! let policy = SessionPolicy::new(Duration::from_secs(180));
//! let auth = Authorizer::new(store, Arc::new(SystemClock), hasher, policy);
//! let request = AuthRequest { token: Some("viewer-secret"), stream: "news", ip: "10.0.0.1".parse().unwrap(),
//!                             proto: "hls", request_type: RequestType::NewSession, session_id: Some("s1"),
//!                             action: Action::Play, segment: false, source: "", media_session_id: None };
//! assert!(auth.authorize(&request)?.is_allow());
//! # Ok::<(), auth_core::Error>(())
//! ```

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod access_log;
#[cfg(feature = "tickets")]
pub mod account;
pub mod clock;
pub mod decision;
pub mod edge_url;
pub mod error;
#[cfg(feature = "tickets")]
pub mod event;
pub mod page;
pub mod prelude;
pub mod secret;
pub mod session;
pub mod signed_token;
pub mod store;
#[cfg(feature = "tickets")]
pub mod ticket;
pub mod token;
pub mod webhook;

pub use access_log::{AccessLogEntry, AccessLogStore, AccessLogWriter, AccessResult};
pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use decision::{
    check_token, decide, session_still_allowed, Admitting, AuthRequest, Authorizer, Decision,
    Denial, DenyReason, Grant, Pending, RequestType, SignedGrant, Step,
};
pub use error::{Error, Result};
pub use page::Page;
pub use secret::{SecretDigest, TokenHasher};
pub use session::{
    Admission, CloseReason, Session, SessionClaim, SessionId, SessionOwner, SessionPolicy,
    SessionStore,
};
pub use signed_token::keys::SigningKeyStore;
#[cfg(feature = "postgres")]
pub use store::PostgresStore;
#[cfg(feature = "sqlite")]
pub use store::SqliteStore;
pub use store::{Backend, CachedTokens, Health, MemoryStore, Store, Stores};
pub use token::{
    Action, ActionSet, NewToken, OnLimit, Token, TokenId, TokenPatch, TokenSpec, TokenStatus,
    TokenStore,
};
pub use webhook::WebhookStore;
