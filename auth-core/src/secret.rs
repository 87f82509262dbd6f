//! Token secrets: generation, constant-time comparison, and the short prefix that may be shown.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};

/// A fresh 32-byte random secret, URL-safe base64 (43 characters).
pub fn generate() -> Result<String> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Error::storage("the system random number generator failed"))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Compares two secrets in time that depends only on their lengths, never on where they differ.
pub fn matches(presented: &str, stored: &str) -> bool {
    presented.as_bytes().ct_eq(stored.as_bytes()).into()
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
    fn matches_is_exact() {
        assert!(matches("secret-1", "secret-1"));
        assert!(!matches("secret-1", "secret-2"));
        assert!(!matches("secret", "secret-1"));
    }
}
