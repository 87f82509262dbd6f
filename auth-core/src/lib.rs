//! Authorization decisions for live streaming: may this viewer play (or this publisher publish)
//! this stream, now?
//!
//! The crate decides; it does no I/O of its own beyond the store it is given, reads no
//! environment, sets up no logger and never reads the wall clock (time comes in through
//! [`Clock`]). Embed it in any Rust server, or use `auth-server` for the HTTP hooks.
//!
//! # Layout
//! - [`token`]: tokens and their rules (status, validity window, IP and stream allow-lists,
//!   session limit), and the validated shapes that create and change them.
//! - [`session`]: viewer sessions as expiring leases on a token's slots.
//! - [`decision`]: the policy. [`decide`] is pure; [`Authorizer`] wires it to a store and clock.
//! - [`store`]: the [`Store`] trait and its backends ([`SqliteStore`], [`PostgresStore`],
//!   [`MemoryStore`]).
//! - [`access_log`]: one record per decision, batched to the store off the request path.
//! - [`clock`]: [`Timestamp`], [`Clock`], and clocks for production and tests.
//! - [`secret`]: token generation, keyed digests for storage ([`TokenHasher`]), constant-time
//!   comparison, loggable prefixes.
//! - [`signed_token`]: tokens verified by signature alone (HMAC-SHA256, Ed25519 or ES256; ours
//!   or JWTs, with a JWKS), with a rotating key ring kept in the store
//!   ([`signed_token::keys`]); [`Authorizer`] accepts them as playback tokens without a token
//!   lookup.
//! - [`edge_url`]: URL signatures an edge checks alone (nginx `secure_link`, Akamai EdgeAuth).
//! - [`account`]: people who log in (Argon2id passwords, JWT access tokens, login throttling)
//!   and [`account::permits`], the one rule of who may do what with events and tickets.
//! - [`event`]: events (time window, capacity, streams they unlock) and their rosters.
//! - [`ticket`]: tickets checked at the door with TOTP codes, per-ticket secrets, QR codes.
//! - [`error`]: the crate's one [`Error`] type, with stable codes.
//!
//! # Example
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use auth_core::{Action, AuthRequest, Authorizer, MemoryStore, RequestType, SessionPolicy, Store,
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
//!                             action: Action::Play, segment: false };
//! assert!(auth.authorize(&request)?.is_allow());
//! # Ok::<(), auth_core::Error>(())
//! ```

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod access_log;
pub mod account;
pub mod clock;
pub mod decision;
pub mod edge_url;
pub mod error;
pub mod event;
pub mod secret;
pub mod session;
pub mod signed_token;
pub mod store;
pub mod ticket;
pub mod token;

pub use access_log::{AccessLogEntry, AccessLogWriter, AccessResult};
pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use decision::{
    check_token, decide, AuthRequest, Authorizer, Decision, Denial, DenyReason, Grant, RequestType,
    SignedGrant,
};
pub use error::{Error, Result};
pub use secret::{SecretDigest, TokenHasher};
pub use session::{Admission, Session, SessionClaim, SessionId, SessionOwner, SessionPolicy};
pub use store::{MemoryStore, PostgresStore, SqliteStore, Store};
pub use token::{Action, ActionSet, NewToken, Token, TokenId, TokenPatch, TokenSpec, TokenStatus};
