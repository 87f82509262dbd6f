//! What the event-ticket endpoints and commands share: password hashing, access token signing,
//! the ticket key, and login throttling.
//!
//! The ticket key and the access token signing key are derived from the token hashing key
//! ([`auth_core::TokenHasher::derive_key`], one label each), so they persist exactly as it does
//! (`TOKEN_HASH_KEY`, or `token-hash.key` beside the SQLite file) and every node sharing a
//! PostgreSQL database derives the same ones. Changing that key invalidates every issued ticket
//! and access token along with every stored token.

use std::time::Duration;

use auth_core::account::{AccessTokens, AccountId, LoginLimiter, Passwords, RateLimiter};
use auth_core::ticket::TicketKey;
use auth_core::TokenHasher;

use crate::config::Config;

/// Labels of the derived keys; changing one invalidates what it signs.
const TICKET_KEY_PURPOSE: &str = "event-tickets/totp-secrets/v1";
const ACCESS_TOKEN_KEY_PURPOSE: &str = "accounts/access-tokens/jwt-hs256/v1";

/// Wrong door codes (and unknown ticket ids) one account may submit per window, across every
/// ticket: the per-ticket lock ([`auth_core::ticket::CODE_LOCK`]) stops guessing one ticket,
/// this stops an agent spreading guesses over many. A door line rarely yields more than a few
/// mistyped codes a minute.
pub const DOOR_MISSES_PER_AGENT: u32 = 30;
pub const DOOR_MISS_WINDOW: Duration = Duration::from_secs(10 * 60);

/// Registrations one client network (an IPv4 address, an IPv6 /64) may make per window without
/// credentials: enough for a family behind one address, too few to fill the accounts table.
pub const REGISTRATIONS_PER_NETWORK: u32 = 10;
pub const REGISTRATION_WINDOW: Duration = Duration::from_secs(3600);

/// The issuer shown in authenticator apps next to a ticket.
pub const TICKET_ISSUER: &str = "auth-server";

pub struct Ticketing {
    pub passwords: Passwords,
    /// Password hashes running at once. Each takes 19 MiB and a core for tens of milliseconds;
    /// unbounded, a burst of logins or registrations would queue hundreds on the blocking pool
    /// and exhaust memory. Requests beyond the bound wait their turn here, holding nothing; a
    /// turn ends when the hash does, even if the request gave up waiting for it.
    pub password_slots: std::sync::Arc<tokio::sync::Semaphore>,
    pub access_tokens: AccessTokens,
    pub ticket_key: TicketKey,
    pub login_limiter: LoginLimiter,
    /// Wrong door codes per account ([`DOOR_MISSES_PER_AGENT`]).
    pub door_limiter: RateLimiter<AccountId>,
    /// `REGISTRATION`: whether registering needs no credentials.
    pub open_registration: bool,
    /// Registrations without credentials per client network ([`REGISTRATIONS_PER_NETWORK`]).
    pub registration_limiter: RateLimiter<std::net::IpAddr>,
}

impl Ticketing {
    pub fn new(config: &Config, hasher: &TokenHasher) -> Result<Self, auth_core::Error> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Ticketing {
            passwords: Passwords::new()?,
            password_slots: std::sync::Arc::new(tokio::sync::Semaphore::new(cores * 2)),
            access_tokens: AccessTokens::new(
                &hasher.derive_key(ACCESS_TOKEN_KEY_PURPOSE),
                config.access_token_ttl,
            )?,
            ticket_key: TicketKey::new(&hasher.derive_key(TICKET_KEY_PURPOSE))?,
            login_limiter: LoginLimiter::new(config.login_limits),
            door_limiter: RateLimiter::new(DOOR_MISSES_PER_AGENT, DOOR_MISS_WINDOW),
            open_registration: config.open_registration,
            registration_limiter: RateLimiter::new(REGISTRATIONS_PER_NETWORK, REGISTRATION_WINDOW),
        })
    }
}
