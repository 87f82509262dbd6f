//! Passwords: Argon2id hashes in PHC string form, and the rules a new password must meet.
//!
//! The clear text is only ever an argument here: never stored, logged or echoed in an error.
//! Hashing is deliberately slow (tens of milliseconds, 19 MiB): run it on a blocking thread.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use ring::rand::{SecureRandom, SystemRandom};

use crate::error::{Error, Result};

pub const MIN_PASSWORD_LEN: usize = 10;
pub const MAX_PASSWORD_LEN: usize = 256;

/// Argon2id with OWASP's recommended floor (19 MiB, 2 passes, 1 lane) unless told otherwise.
#[derive(Clone)]
pub struct Passwords {
    argon: Argon2<'static>,
    /// A hash of a random password, verified against when a username is unknown so that a
    /// login for a missing account takes as long as one for a real account.
    dummy: String,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passwords(argon2id)")
    }
}

impl Passwords {
    pub fn new() -> Result<Self> {
        Self::with_params(Params::DEFAULT_M_COST, Params::DEFAULT_T_COST, 1)
    }

    /// Memory in KiB, passes, lanes.
    pub fn with_params(memory_kib: u32, passes: u32, lanes: u32) -> Result<Self> {
        let params = Params::new(memory_kib, passes, lanes, None)
            .map_err(|e| Error::invalid("argon2", e.to_string()))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut passwords = Passwords {
            argon,
            dummy: String::new(),
        };
        let mut random = [0u8; 24];
        fill(&mut random)?;
        passwords.dummy = passwords.hash_unchecked(&hex_of(&random))?;
        Ok(passwords)
    }

    /// The PHC string (`$argon2id$v=19$m=...`) of `password` under a fresh random salt.
    pub fn hash(&self, password: &str) -> Result<String> {
        self.hash_unchecked(password)
    }

    fn hash_unchecked(&self, password: &str) -> Result<String> {
        let mut salt = [0u8; 16];
        fill(&mut salt)?;
        let salt = SaltString::encode_b64(&salt).map_err(|e| Error::storage(e.to_string()))?;
        self.argon
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| Error::storage(format!("hashing a password failed: {e}")))
    }

    /// Whether `password` matches `stored` (constant-time inside Argon2). A stored hash that
    /// does not parse matches nothing.
    pub fn verify(&self, password: &str, stored: &str) -> bool {
        match PasswordHash::new(stored) {
            Ok(hash) => self
                .argon
                .verify_password(password.as_bytes(), &hash)
                .is_ok(),
            Err(_) => false,
        }
    }

    /// Spends the time of one verification and fails: for unknown usernames.
    pub fn verify_nothing(&self, password: &str) -> bool {
        let _ = self.verify(password, &self.dummy);
        false
    }
}

/// The rules a new password must meet. Length is what makes a password strong; composition rules
/// ("one digit, one symbol") add little (NIST SP 800-63B), so there are none.
pub fn check_rules(password: &str, username: &str) -> Result<()> {
    let chars = password.chars().count();
    if !(MIN_PASSWORD_LEN..=MAX_PASSWORD_LEN).contains(&chars) {
        return Err(Error::invalid(
            "password",
            format!("must be {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} characters long"),
        ));
    }
    if password.chars().any(char::is_control) {
        return Err(Error::invalid(
            "password",
            "must not contain control characters",
        ));
    }
    let mut distinct: Vec<char> = password.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 4 {
        return Err(Error::invalid(
            "password",
            "must use at least 4 different characters",
        ));
    }
    if !username.is_empty() && password.to_lowercase().contains(&username.to_lowercase()) {
        return Err(Error::invalid("password", "must not contain the username"));
    }
    Ok(())
}

fn fill(bytes: &mut [u8]) -> Result<()> {
    SystemRandom::new()
        .fill(bytes)
        .map_err(|_| Error::storage("the system random number generator failed"))
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_salted_and_verify() {
        let p = Passwords::with_params(1024, 1, 1).unwrap();
        let a = p.hash("correct horse battery").unwrap();
        let b = p.hash("correct horse battery").unwrap();
        assert!(a.starts_with("$argon2id$v=19$"), "{a}");
        assert_ne!(a, b, "a fresh salt each time");
        assert!(!a.contains("correct"));
        assert!(p.verify("correct horse battery", &a));
        assert!(!p.verify("correct horse batterx", &a));
        assert!(!p.verify("anything", "not a hash"));
        assert!(!p.verify_nothing("correct horse battery"));
    }

    #[test]
    fn rules_give_a_reason() {
        for (bad, why) in [
            ("short1", "characters long"),
            ("aaaaaaaaaaaaaa", "different"),
            ("xx-alice-yy-zz", "username"),
            ("tab\tinside-password", "control"),
        ] {
            let err = check_rules(bad, "alice").unwrap_err();
            assert_eq!(err.field(), Some("password"));
            assert!(err.to_string().contains(why), "{bad}: {err}");
        }
        check_rules("a long enough passphrase", "alice").unwrap();
    }
}
