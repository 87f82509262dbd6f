//! Storage: small traits beside their domains, and the backends that implement them.
//!
//! Each concern has its own trait, defined next to the domain it serves: [`TokenStore`],
//! [`SessionStore`], [`AccessLogStore`], [`SigningKeyStore`], [`WebhookStore`] and, with the
//! `tickets` feature,
//! `AccountStore`, `RevocationStore`, `EventStore` and `TicketStore`. Every call is synchronous
//! and fallible, so a networked database fits as well as an embedded one; async callers run it
//! on a blocking thread. The one hard promise is [`SessionStore::admit_session`]: admission is
//! a single atomic step, so no interleaving of concurrent requests (threads, processes, nodes
//! sharing a database) ever lets an owner hold more live sessions than it allows.
//!
//! - [`SqliteStore`] (feature `sqlite`, default): one file, WAL, versioned `.sql` migrations.
//! - [`MemoryStore`]: plain maps behind a mutex; for tests and embedding.
//! - [`PostgresStore`] (feature `postgres`): several nodes on one database, admission atomic
//!   across nodes.
//! - [`CachedTokens`]: a bounded in-process token cache over any [`TokenStore`].
//!
//! Each backend lays its code out alike: `tokens.rs`, `sessions.rs`, `access_log.rs`,
//! `signing_keys.rs`, `webhooks.rs` (with `outbox.rs`, how the other files queue messages in
//! their own transactions), and with `tickets` `accounts.rs`, `revocations.rs`, `events.rs`,
//! `tickets.rs`; SQL backends keep their migrations as `.sql` files under `migrations/`.

mod cached;
mod digest_filter;
#[cfg(feature = "sqlite")]
mod group_commit;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod live_index;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
mod queued;
#[cfg(feature = "sqlite")]
mod sqlite;
pub mod transfer;

#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

pub use cached::{CachedTokens, FILTER_MISS_READS_PER_SECOND};
pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
pub use queued::Queued;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

use std::sync::Arc;

use crate::access_log::AccessLogStore;
use crate::error::Result;
use crate::session::SessionStore;
use crate::signed_token::keys::SigningKeyStore;
use crate::token::TokenStore;
use crate::webhook::WebhookStore;

/// Whether the store answers at all.
pub trait Health: Send + Sync {
    /// Cheap round trip proving the store answers (health checks).
    fn ping(&self) -> Result<()>;
}

/// Everything a streaming deployment keeps: tokens, sessions, the access log, signing keys,
/// webhook endpoints and their outbox.
/// Implemented for every type that implements those traits; code that needs one concern takes
/// that concern's trait instead.
pub trait Store:
    TokenStore + SessionStore + AccessLogStore + SigningKeyStore + WebhookStore + Health + 'static
{
}

impl<T> Store for T where
    T: TokenStore
        + SessionStore
        + AccessLogStore
        + SigningKeyStore
        + WebhookStore
        + Health
        + 'static
        + ?Sized
{
}

/// Every store a whole deployment uses: the core concerns, and ticketing with `tickets`.
#[cfg(feature = "tickets")]
pub trait Backend: Store + crate::ticket::TicketingStore {}

#[cfg(feature = "tickets")]
impl<T: Store + crate::ticket::TicketingStore + ?Sized> Backend for T {}

/// Every store a whole deployment uses: the core concerns, and ticketing with `tickets`.
#[cfg(not(feature = "tickets"))]
pub trait Backend: Store {}

#[cfg(not(feature = "tickets"))]
impl<T: Store + ?Sized> Backend for T {}

/// One handle per concern, for a server that composes them: usually every one is the same
/// backend, but each can be wrapped on its own (tokens behind a [`CachedTokens`], a test's
/// fault injector in front of sessions) without forwarding the others.
#[derive(Clone)]
pub struct Stores {
    pub tokens: Arc<dyn TokenStore>,
    pub sessions: Arc<dyn SessionStore>,
    pub access_log: Arc<dyn AccessLogStore>,
    pub signing_keys: Arc<dyn SigningKeyStore>,
    pub webhooks: Arc<dyn WebhookStore>,
    pub health: Arc<dyn Health>,
    #[cfg(feature = "tickets")]
    pub ticketing: Arc<dyn crate::ticket::TicketingStore>,
}

impl Stores {
    /// Every concern served by `backend`.
    pub fn of(backend: Arc<dyn Backend>) -> Self {
        Stores {
            tokens: backend.clone(),
            sessions: backend.clone(),
            access_log: backend.clone(),
            signing_keys: backend.clone(),
            webhooks: backend.clone(),
            #[cfg(feature = "tickets")]
            ticketing: backend.clone(),
            health: backend,
        }
    }
}

impl From<Arc<dyn Backend>> for Stores {
    fn from(backend: Arc<dyn Backend>) -> Self {
        Stores::of(backend)
    }
}
