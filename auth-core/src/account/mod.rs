//! People who log in: accounts, their passwords, access tokens, login throttling, and who may do
//! what ([`policy`]).
//!
//! - [`password`]: Argon2id hashing and the password rules.
//! - [`access_token`]: signed, expiring bearer tokens (JWT HS256) for logged-in accounts; a
//!   revoked token is refused until it would have expired.
//! - [`limiter`]: attempts counted in a sliding window: failed logins per username and per
//!   client address, and any other one key ([`RateLimiter`]).
//! - [`policy`]: the one pure function that decides an action for a principal.

pub mod access_token;
pub mod limiter;
pub mod password;
pub mod policy;
pub mod store;

pub use store::{AccountStore, RevocationStore};

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::error::{Error, Result};

pub use access_token::{AccessClaims, AccessTokens, IssuedAccessToken};
pub use limiter::{LoginLimiter, LoginLimits, RateLimiter, Throttled};
pub use password::Passwords;
pub use policy::{permits, Action, EventStanding, Forbidden, Principal};

pub type AccountId = i64;

/// What an account may do across the whole service. Per-event powers come from the event's
/// rosters (see [`crate::event::RosterRole`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Edits itself; sees events (not who registered); gets tickets for events it is on.
    User,
    /// Door staff: may be put on an event's agents (or admins) roster.
    Agent,
    /// Everything, on every event.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Agent => "agent",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = Error;
    fn from_str(text: &str) -> Result<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "user" => Ok(Role::User),
            "agent" => Ok(Role::Agent),
            "admin" => Ok(Role::Admin),
            _ => Err(Error::invalid("role", "must be user, agent or admin")),
        }
    }
}

/// A stored account. The password hash never leaves through serialization.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    pub id: AccountId,
    pub username: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub role: Role,
    #[serde(skip)]
    pub password_hash: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The last password change: access tokens issued before it are refused.
    #[serde(skip)]
    pub password_changed_at: Option<Timestamp>,
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// What others may see of an account on a roster or a ticket: id and name, no contact data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountSummary {
    pub id: AccountId,
    pub username: String,
    pub first_name: String,
    pub last_name: String,
}

impl From<&Account> for AccountSummary {
    fn from(a: &Account) -> Self {
        AccountSummary {
            id: a.id,
            username: a.username.clone(),
            first_name: a.first_name.clone(),
            last_name: a.last_name.clone(),
        }
    }
}

/// A validated account, ready for [`crate::account::AccountStore::create_account`].
#[derive(Clone, PartialEq, Eq)]
pub struct NewAccount {
    pub username: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub role: Role,
    pub password_hash: String,
}

impl NewAccount {
    pub fn into_account(self, id: AccountId, now: Timestamp) -> Account {
        Account {
            id,
            username: self.username,
            email: self.email,
            first_name: self.first_name,
            last_name: self.last_name,
            role: self.role,
            password_hash: self.password_hash,
            created_at: now,
            updated_at: now,
            password_changed_at: None,
        }
    }
}

/// The registration payload (`{"user": {...}}` on the wire).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    pub email: String,
}

impl fmt::Debug for UserSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserSpec")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl UserSpec {
    /// Checks every field and hashes the password (the slow part: call it off any reactor).
    pub fn validate(self, role: Role, passwords: &Passwords) -> Result<NewAccount> {
        let username = validate_username(&self.username)?;
        password::check_rules(&self.password, &username)?;
        Ok(NewAccount {
            email: validate_email(&self.email)?,
            first_name: validate_name("first_name", &self.first_name)?,
            last_name: validate_name("last_name", &self.last_name)?,
            role,
            password_hash: passwords.hash(&self.password)?,
            username,
        })
    }
}

/// Changes to an account. `password` is a new clear-text password, hashed by
/// [`UserPatch::validate`].
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub password: Option<String>,
    /// The password being replaced: required to change one's own (see the API's
    /// `update_user`), never stored.
    pub current_password: Option<String>,
    pub role: Option<Role>,
}

impl fmt::Debug for UserPatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserPatch")
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl UserPatch {
    pub fn is_empty(&self) -> bool {
        self.first_name.is_none()
            && self.last_name.is_none()
            && self.email.is_none()
            && self.password.is_none()
            && self.role.is_none()
    }

    pub fn validate(self, username: &str, passwords: &Passwords) -> Result<AccountPatch> {
        Ok(AccountPatch {
            first_name: self
                .first_name
                .map(|n| validate_name("first_name", &n))
                .transpose()?,
            last_name: self
                .last_name
                .map(|n| validate_name("last_name", &n))
                .transpose()?,
            email: self.email.map(|e| validate_email(&e)).transpose()?,
            password_hash: match self.password {
                Some(password) => {
                    password::check_rules(&password, username)?;
                    Some(passwords.hash(&password)?)
                }
                None => None,
            },
            role: self.role,
        })
    }
}

/// A validated change, applied atomically by [`crate::account::AccountStore::update_account`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountPatch {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub password_hash: Option<String>,
    pub role: Option<Role>,
}

impl AccountPatch {
    pub fn apply(self, account: &mut Account, now: Timestamp) {
        if let Some(v) = self.first_name {
            account.first_name = v;
        }
        if let Some(v) = self.last_name {
            account.last_name = v;
        }
        if let Some(v) = self.email {
            account.email = v;
        }
        if let Some(v) = self.password_hash {
            account.password_hash = v;
            account.password_changed_at = Some(now);
        }
        if let Some(v) = self.role {
            account.role = v;
        }
        account.updated_at = now;
    }
}

/// Checks a username and password; the access token on success, `None` on any mismatch (an
/// unknown username costs the same time as a wrong password). Throttling is the caller's
/// ([`LoginLimiter`]).
pub fn login(
    store: &dyn AccountStore,
    passwords: &Passwords,
    tokens: &AccessTokens,
    username: &str,
    password: &str,
    now: Timestamp,
) -> Result<Option<(Account, IssuedAccessToken)>> {
    let account = match validate_username(username) {
        Ok(username) => store.account_by_username(&username)?,
        Err(_) => None,
    };
    let Some(account) = account else {
        passwords.verify_nothing(password);
        return Ok(None);
    };
    if !passwords.verify(password, &account.password_hash) {
        return Ok(None);
    }
    let issued = tokens.issue(account.id, now)?;
    Ok(Some((account, issued)))
}

/// The account an access token stands for: signature, expiry, revocation, the account still
/// existing, and no password change since the token was issued (a change ends every login
/// before it; tokens carry their issue time in whole seconds, so one issued within the second
/// of the change still counts as after it). `None` for any failure of those.
pub fn authenticate<S: AccountStore + RevocationStore + ?Sized>(
    store: &S,
    tokens: &AccessTokens,
    token: &str,
    now: Timestamp,
) -> Result<Option<(Account, AccessClaims)>> {
    let Some(claims) = tokens.verify(token, now) else {
        return Ok(None);
    };
    if store.access_token_revoked(&claims.jti)? {
        return Ok(None);
    }
    let Some(id) = claims.account_id() else {
        return Ok(None);
    };
    let Some(account) = store.account(id)? else {
        return Ok(None);
    };
    let before_change = account
        .password_changed_at
        .is_some_and(|at| claims.iat < at.unix_seconds());
    Ok((!before_change).then_some((account, claims)))
}

/// Revokes the token until it would have expired.
pub fn logout(store: &dyn RevocationStore, claims: &AccessClaims) -> Result<()> {
    store.revoke_access_token(&claims.jti, claims.expires_at())
}

pub const MAX_USERNAME_LEN: usize = 64;
pub const MAX_NAME_LEN: usize = 128;
pub const MAX_EMAIL_LEN: usize = 254;

/// Usernames are compared case-insensitively, so they are kept lower-case: `Alice` and `alice`
/// are one account.
pub fn validate_username(username: &str) -> Result<String> {
    let username = username.trim().to_ascii_lowercase();
    if username.len() < 3 || username.len() > MAX_USERNAME_LEN {
        return Err(Error::invalid(
            "username",
            format!("must be 3 to {MAX_USERNAME_LEN} characters long"),
        ));
    }
    if !username
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(Error::invalid(
            "username",
            "may hold only letters, digits, '.', '_' and '-'",
        ));
    }
    Ok(username)
}

/// A plausible address (one `@`, no spaces, a dot in the domain), lower-cased so that it is
/// unique whatever its case. Deliverability is not checked here.
pub fn validate_email(email: &str) -> Result<String> {
    let email = email.trim().to_lowercase();
    let bad = || Error::invalid("email", "must be an address such as name@example.com");
    // Characters, as the OpenAPI document's maxLength counts them.
    if email.is_empty() || email.chars().count() > MAX_EMAIL_LEN {
        return Err(bad());
    }
    let (local, domain) = email.split_once('@').ok_or_else(bad)?;
    let valid = !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(email)
    } else {
        Err(bad())
    }
}

fn validate_name(field: &'static str, name: &str) -> Result<String> {
    let name = name.trim();
    if name.chars().count() > MAX_NAME_LEN || name.chars().any(char::is_control) {
        return Err(Error::invalid(
            field,
            format!("must be at most {MAX_NAME_LEN} printable characters"),
        ));
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_folded_and_checked() {
        assert_eq!(validate_username(" Alice.B ").unwrap(), "alice.b");
        assert_eq!(
            validate_username("ab").unwrap_err().field(),
            Some("username")
        );
        assert!(validate_username("al ice").is_err());
        assert!(validate_username("alice@x").is_err());
    }

    #[test]
    fn emails_are_plausible_and_lower_cased() {
        assert_eq!(validate_email("A@Example.COM").unwrap(), "a@example.com");
        for bad in [
            "",
            "a",
            "a@b",
            "@x.org",
            "a@@x.org",
            "a b@x.org",
            "a@x.org.",
        ] {
            assert_eq!(
                validate_email(bad).unwrap_err().field(),
                Some("email"),
                "{bad}"
            );
        }
    }

    #[test]
    fn roles_parse() {
        assert_eq!("Admin".parse::<Role>().unwrap(), Role::Admin);
        assert!("root".parse::<Role>().is_err());
    }
}
