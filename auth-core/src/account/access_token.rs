//! Access tokens for logged-in accounts: JWT (HS256) carrying the account id, a unique id
//! (`jti`) and an expiry.
//!
//! The signature and expiry are checked here against the caller's clock (never the wall clock:
//! `jsonwebtoken`'s own expiry check is turned off). Whether the token was revoked (logout) is
//! the store's question ([`crate::account::RevocationStore::access_token_revoked`]); [`crate::account::authenticate`]
//! asks both. The account's role is *not* in the token: it is read from the store on every
//! request, so a demotion takes effect at once.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use super::AccountId;
use crate::clock::Timestamp;
use crate::error::{Error, Result};

const ISSUER: &str = "auth-server";

/// Signs and checks access tokens under one key.
#[derive(Clone)]
pub struct AccessTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl std::fmt::Debug for AccessTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AccessTokens(ttl {:?}, ..)", self.ttl)
    }
}

/// The claims of a valid token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The account id, as a string (RFC 7519 `sub` is a string).
    pub sub: String,
    pub jti: String,
    pub iss: String,
    /// Unix seconds.
    pub iat: i64,
    pub exp: i64,
}

impl AccessClaims {
    pub fn account_id(&self) -> Option<AccountId> {
        self.sub.parse().ok()
    }

    pub fn expires_at(&self) -> Timestamp {
        Timestamp::from_unix_seconds(self.exp)
    }
}

/// A freshly signed token.
#[derive(Debug, Clone)]
pub struct IssuedAccessToken {
    pub token: String,
    pub claims: AccessClaims,
    pub expires_in: Duration,
}

impl AccessTokens {
    /// `key` must hold at least 32 bytes.
    pub fn new(key: &[u8], ttl: Duration) -> Result<Self> {
        if key.len() < 32 {
            return Err(Error::invalid("jwt_key", "must be at least 32 bytes"));
        }
        if ttl.as_secs() == 0 {
            return Err(Error::invalid(
                "access_token_ttl",
                "must be at least 1 second",
            ));
        }
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is checked against the caller's clock in `verify`.
        validation.validate_exp = false;
        validation.required_spec_claims = ["exp", "sub", "jti", "iss"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        validation.set_issuer(&[ISSUER]);
        Ok(AccessTokens {
            encoding: EncodingKey::from_secret(key),
            decoding: DecodingKey::from_secret(key),
            validation,
            ttl,
        })
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn issue(&self, account: AccountId, now: Timestamp) -> Result<IssuedAccessToken> {
        let mut jti = [0u8; 16];
        SystemRandom::new()
            .fill(&mut jti)
            .map_err(|_| Error::storage("the system random number generator failed"))?;
        let iat = now.unix_seconds();
        let ttl = i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX);
        let claims = AccessClaims {
            sub: account.to_string(),
            jti: URL_SAFE_NO_PAD.encode(jti),
            iss: ISSUER.into(),
            iat,
            exp: iat.saturating_add(ttl),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| Error::storage(format!("signing an access token failed: {e}")))?;
        Ok(IssuedAccessToken {
            token,
            claims,
            expires_in: self.ttl,
        })
    }

    /// The claims if the signature holds and the token has not expired at `now`. Says nothing
    /// about revocation.
    pub fn verify(&self, token: &str, now: Timestamp) -> Option<AccessClaims> {
        let data =
            jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation).ok()?;
        let claims = data.claims;
        (now.unix_seconds() < claims.exp && claims.account_id().is_some()).then_some(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timestamp = Timestamp::from_unix_seconds(1_800_000_000);

    #[test]
    fn tokens_verify_until_they_expire() {
        let tokens = AccessTokens::new(&[7u8; 32], Duration::from_secs(60)).unwrap();
        let issued = tokens.issue(42, T).unwrap();
        let claims = tokens.verify(&issued.token, T).unwrap();
        assert_eq!(claims.account_id(), Some(42));
        assert!(tokens
            .verify(&issued.token, T.saturating_add(Duration::from_secs(59)))
            .is_some());
        assert!(tokens
            .verify(&issued.token, T.saturating_add(Duration::from_secs(60)))
            .is_none());
        assert_ne!(tokens.issue(42, T).unwrap().claims.jti, claims.jti);
    }

    #[test]
    fn another_key_or_a_changed_byte_fails() {
        let tokens = AccessTokens::new(&[7u8; 32], Duration::from_secs(60)).unwrap();
        let other = AccessTokens::new(&[8u8; 32], Duration::from_secs(60)).unwrap();
        let issued = tokens.issue(1, T).unwrap();
        assert!(other.verify(&issued.token, T).is_none());
        let mut forged = issued.token.clone().into_bytes();
        let last = forged.len() - 3;
        forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
        assert!(tokens
            .verify(std::str::from_utf8(&forged).unwrap(), T)
            .is_none());
        assert!(tokens.verify("not.a.token", T).is_none());
        // `alg: none` is refused.
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let body = issued.token.split('.').nth(1).unwrap();
        assert!(tokens.verify(&format!("{header}.{body}."), T).is_none());
    }
}
