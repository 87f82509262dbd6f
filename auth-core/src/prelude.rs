//! The store traits, for `use auth_core::prelude::*;`: their methods are then callable on any
//! backend without naming each trait.

pub use crate::access_log::AccessLogStore;
#[cfg(feature = "tickets")]
pub use crate::account::{AccountStore, RevocationStore};
#[cfg(feature = "tickets")]
pub use crate::event::EventStore;
pub use crate::session::SessionStore;
pub use crate::signed_token::keys::SigningKeyStore;
pub use crate::store::{Health, Store};
#[cfg(feature = "tickets")]
pub use crate::ticket::{TicketStore, TicketingStore};
pub use crate::token::TokenStore;
pub use crate::webhook::WebhookStore;
