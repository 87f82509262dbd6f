//! Token secrets: generation, keyed hashing for storage, constant-time comparison, and the short
//! prefix that may be shown.
//!
//! Stores never hold a token's secret, only its [`SecretDigest`]: HMAC-SHA256 under a server key
//! ([`TokenHasher`]). A stolen database file then yields neither usable tokens nor a way to test
//! guesses offline without the key, and a lookup by digest is an exact match on a fixed-length
//! value, so no timing difference can reveal how much of a guessed secret was right.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};

/// Shortest accepted hashing key.
pub const MIN_KEY_LEN: usize = 32;

/// The keyed hash of a token secret: what stores keep and look up.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecretDigest(pub [u8; 32]);

impl std::fmt::Debug for SecretDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A digest is not secret, but there is no reason to spread it through logs either.
        write!(f, "SecretDigest({:02x}{:02x}..)", self.0[0], self.0[1])
    }
}

/// HMAC-SHA256 of token secrets under a server key. Cheap to clone (the key is shared).
#[derive(Clone)]
pub struct TokenHasher {
    key: hmac::Key,
}

impl std::fmt::Debug for TokenHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenHasher(..)")
    }
}

impl TokenHasher {
    /// `key` must hold at least [`MIN_KEY_LEN`] bytes, ideally random.
    pub fn new(key: &[u8]) -> Result<Self> {
        if key.len() < MIN_KEY_LEN {
            return Err(Error::invalid(
                "token_hash_key",
                format!("must be at least {MIN_KEY_LEN} bytes"),
            ));
        }
        Ok(TokenHasher {
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
        })
    }

    /// A hasher with a fresh random key: for in-memory stores and tests, where nothing outlives
    /// the process.
    pub fn random() -> Result<Self> {
        Self::new(&random_key()?)
    }

    /// A 32-byte key for another purpose (ticket secrets, access token signatures), derived
    /// from this hasher's key so that one persisted key serves them all.
    ///
    /// Domain separation: the HMAC input starts with a NUL byte, which no token secret can hold
    /// (they are printable ASCII), so a derived key never equals a token digest that a store
    /// keeps; and each `purpose` label gives an unrelated key.
    pub fn derive_key(&self, purpose: &str) -> [u8; 32] {
        let mut input = Vec::with_capacity(32 + purpose.len());
        input.extend_from_slice(b"\0auth-core key derivation v1\0");
        input.extend_from_slice(purpose.as_bytes());
        let tag = hmac::sign(&self.key, &input);
        let mut key = [0u8; 32];
        key.copy_from_slice(tag.as_ref());
        key
    }

    pub fn digest(&self, secret: &str) -> SecretDigest {
        let tag = hmac::sign(&self.key, secret.as_bytes());
        let mut digest = [0u8; 32];
        digest.copy_from_slice(tag.as_ref());
        SecretDigest(digest)
    }

    /// A fingerprint of the key that reveals nothing about it (an HMAC of a fixed label): tells
    /// whether two deployments hash tokens alike, e.g. before an import.
    pub fn key_check(&self) -> String {
        let tag = hmac::sign(&self.key, b"auth-core token hash key check v1");
        tag.as_ref()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// 32 random bytes, for a new hashing key.
pub fn random_key() -> Result<[u8; 32]> {
    let mut key = [0u8; 32];
    SystemRandom::new()
        .fill(&mut key)
        .map_err(|_| Error::storage("the system random number generator failed"))?;
    Ok(key)
}

/// A fresh 32-byte random secret, URL-safe base64 (43 characters).
pub fn generate() -> Result<String> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Error::storage("the system random number generator failed"))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Compares two secrets in time that tells neither where they differ nor whether their lengths
/// do: both are hashed to 32 bytes (SHA-256) and the digests compared in constant time. (A
/// constant-time comparison of the secrets themselves stops at once on a length mismatch, which
/// let a prober learn a key's length.)
pub fn matches(presented: &str, stored: &str) -> bool {
    let presented = ring::digest::digest(&ring::digest::SHA256, presented.as_bytes());
    let stored = ring::digest::digest(&ring::digest::SHA256, stored.as_bytes());
    presented.as_ref().ct_eq(stored.as_ref()).into()
}

/// The part of a secret that may appear in logs and listings: at most 6 characters and never
/// more than a third of it, so short secrets are not half given away.
pub fn prefix(secret: &str) -> &str {
    let len = (secret.len() / 3).min(6);
    // Secrets are validated as ASCII, but a prefix must never split a UTF-8 character.
    let mut end = len;
    while end > 0 && !secret.is_char_boundary(end) {
        end -= 1;
    }
    &secret[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_is_short() {
        assert_eq!(prefix("abcdefgh"), "ab");
        assert_eq!(prefix("0123456789abcdefghijklmnopqrstuvwxyz"), "012345");
        assert_eq!(prefix(""), "");
    }

    #[test]
    fn digests_depend_on_key_and_secret() {
        let a = TokenHasher::new(&[1u8; 32]).unwrap();
        let b = TokenHasher::new(&[2u8; 32]).unwrap();
        assert_eq!(a.digest("secret-1"), a.digest("secret-1"));
        assert_ne!(a.digest("secret-1"), a.digest("secret-2"));
        assert_ne!(a.digest("secret-1"), b.digest("secret-1"));
        assert!(
            TokenHasher::new(&[0u8; 16]).is_err(),
            "short keys are refused"
        );
    }

    #[test]
    fn derived_keys_are_separate_from_digests_and_each_other() {
        let h = TokenHasher::new(&[1u8; 32]).unwrap();
        assert_eq!(h.derive_key("tickets"), h.derive_key("tickets"));
        assert_ne!(h.derive_key("tickets"), h.derive_key("access-tokens"));
        assert_ne!(h.derive_key("tickets"), h.digest("tickets").0);
        let other = TokenHasher::new(&[2u8; 32]).unwrap();
        assert_ne!(h.derive_key("tickets"), other.derive_key("tickets"));
    }

    #[test]
    fn matches_is_exact() {
        assert!(matches("secret-1", "secret-1"));
        assert!(!matches("secret-1", "secret-2"));
        assert!(!matches("secret", "secret-1"));
        assert!(!matches("", "secret-1"));
        assert!(matches("", ""));
    }
}
