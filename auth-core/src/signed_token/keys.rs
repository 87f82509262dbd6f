//! The key ring at rest: where signing keys live and how their secrets are kept.
//!
//! Keys live in the store (a `signing_keys` table, behind [`crate::Store`]), not in a key file
//! per node: the server may run as several nodes on one PostgreSQL database, and a token minted
//! by one node must verify on every other, and a key retired on one must be refused by all. The
//! database is already what the nodes share and what is backed up; a key directory would need
//! its own distribution and its own backups, and would drift.
//!
//! A database dump must not be enough to mint tokens, so each secret (the HMAC key, or the
//! Ed25519 or P-256 PKCS#8 document) is sealed with AES-256-GCM under a key derived from the server's
//! token hashing key (`TOKEN_HASH_KEY`, which every node already shares and which never enters
//! the database). The key id and algorithm are the sealed box's associated data, so a sealed
//! secret copied to another row does not open. Public keys are stored in the clear: they are
//! what offline verifiers are given.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{self as sig, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};

use super::revocations::Revocation;
use super::{check_kid, generate_ed25519, generate_es256, Algorithm, KeyRing};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::secret::TokenHasher;

/// Derivation label of the sealing key (see [`TokenHasher::derive_key`] for the separation from
/// token digests and other derived keys).
const SEAL_LABEL: &str = "signing key seal v1";

/// Where the key ring is kept (see the module documentation for why in the store), and the
/// signed tokens refused before they expire ([`super::revocations`]): what every node must
/// share to verify signed tokens alike.
pub trait SigningKeyStore: Send + Sync {
    /// Adds a signing key; `Conflict` when its id is taken, retired or not (an id is never
    /// reused, so a token signed under a retired key can never verify again).
    fn insert_signing_key(&self, key: &StoredSigningKey) -> Result<()>;

    /// Every signing key, retired ones included, oldest first (by creation, then id).
    fn signing_keys(&self) -> Result<Vec<StoredSigningKey>>;

    /// Marks the key retired at `now`; false if there is no such key. Retiring a retired key
    /// keeps its first retirement time.
    fn retire_signing_key(&self, kid: &str, now: Timestamp) -> Result<bool>;

    /// Stores a revocation; each gets a new id, above every id before it.
    fn revoke_signed(&self, revocation: &Revocation) -> Result<()>;

    /// The newest revocation's id (0 with none): it moves with every revocation, so a node
    /// polls it to notice those made elsewhere.
    fn signed_revocation_mark(&self) -> Result<i64>;

    /// Every revocation still in force at `now`.
    fn signed_revocations(&self, now: Timestamp) -> Result<Vec<Revocation>>;

    /// Forgets revocations lapsed at `now`; returns how many went.
    fn purge_signed_revocations(&self, now: Timestamp) -> Result<u64>;
}

/// The answer of every backend to a taken key id.
pub(crate) fn signing_key_conflict(kid: &str) -> Error {
    Error::Conflict {
        field: "kid",
        message: format!("a signing key with id `{kid}` exists (ids are never reused)"),
    }
}

/// A signing key as stored. The secret is sealed; [`fmt::Debug`] prints none of it anyway.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredSigningKey {
    pub kid: String,
    pub algorithm: Algorithm,
    /// Ed25519: the 32-byte public key; ES256: the 65-byte uncompressed point (`04 || x || y`).
    pub public_key: Option<Vec<u8>>,
    /// Nonce, then AES-256-GCM ciphertext and tag of the secret.
    pub sealed_secret: Vec<u8>,
    pub created_at: Timestamp,
    pub retired_at: Option<Timestamp>,
}

impl fmt::Debug for StoredSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredSigningKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

/// Whether a key still signs and verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    Active,
    Retired,
}

/// What may be shown about a key: never its secret. Also what an offline verifier is given
/// (`auth-server keys list`, `GET /api/signing-keys`), read back by [`public_ring`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    pub kid: String,
    pub algorithm: Algorithm,
    pub status: KeyStatus,
    /// Ed25519 and ES256 (as [`StoredSigningKey::public_key`]), base64url: what an offline
    /// verifier needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<Timestamp>,
}

impl StoredSigningKey {
    pub fn info(&self) -> KeyInfo {
        KeyInfo {
            kid: self.kid.clone(),
            algorithm: self.algorithm,
            status: if self.retired_at.is_some() {
                KeyStatus::Retired
            } else {
                KeyStatus::Active
            },
            public_key: self
                .public_key
                .as_ref()
                .map(|public| URL_SAFE_NO_PAD.encode(public)),
            created_at: self.created_at,
            retired_at: self.retired_at,
        }
    }
}

/// Seals and opens key secrets, and builds the [`KeyRing`] from stored keys.
pub struct KeyVault {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl fmt::Debug for KeyVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyVault(..)")
    }
}

fn aad(kid: &str, algorithm: Algorithm) -> Vec<u8> {
    let mut aad = Vec::with_capacity(kid.len() + 8);
    aad.extend_from_slice(algorithm.as_str().as_bytes());
    aad.push(0);
    aad.extend_from_slice(kid.as_bytes());
    aad
}

fn rng_failed() -> Error {
    Error::storage("the system random number generator failed")
}

impl KeyVault {
    /// `hasher` must be the server's token hasher: every node that shares it opens the same keys.
    pub fn new(hasher: &TokenHasher) -> Result<Self> {
        let derived = hasher.derive_key(SEAL_LABEL);
        let key = UnboundKey::new(&aead::AES_256_GCM, &derived)
            .map_err(|_| Error::storage("cannot build the key sealing key"))?;
        Ok(KeyVault {
            key: LessSafeKey::new(key),
            rng: SystemRandom::new(),
        })
    }

    /// A fresh key with a random secret.
    pub fn generate(
        &self,
        kid: &str,
        algorithm: Algorithm,
        now: Timestamp,
    ) -> Result<StoredSigningKey> {
        check_kid(kid)?;
        let (secret, public_key) = match algorithm {
            Algorithm::Hs256 => {
                let mut secret = vec![0u8; 32];
                self.rng.fill(&mut secret).map_err(|_| rng_failed())?;
                (secret, None)
            }
            Algorithm::Ed25519 => {
                let pkcs8 = generate_ed25519()?;
                let pair = Ed25519KeyPair::from_pkcs8(&pkcs8)
                    .map_err(|_| Error::storage("generated an unusable Ed25519 key"))?;
                let public = pair.public_key().as_ref().to_vec();
                (pkcs8, Some(public))
            }
            Algorithm::Es256 => {
                let pkcs8 = generate_es256()?;
                let pair = EcdsaKeyPair::from_pkcs8(
                    &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
                    &pkcs8,
                    &self.rng,
                )
                .map_err(|_| Error::storage("generated an unusable P-256 key"))?;
                let public = pair.public_key().as_ref().to_vec();
                (pkcs8, Some(public))
            }
        };
        Ok(StoredSigningKey {
            kid: kid.to_owned(),
            algorithm,
            public_key,
            sealed_secret: self.seal(kid, algorithm, secret)?,
            created_at: now,
            retired_at: None,
        })
    }

    fn seal(&self, kid: &str, algorithm: Algorithm, mut secret: Vec<u8>) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| rng_failed())?;
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(kid, algorithm)),
                &mut secret,
            )
            .map_err(|_| Error::storage("cannot seal a signing key"))?;
        let mut sealed = nonce.to_vec();
        sealed.append(&mut secret);
        Ok(sealed)
    }

    /// The secret of `key`; fails when it was sealed under another server key (or altered).
    fn open(&self, key: &StoredSigningKey) -> Result<Vec<u8>> {
        let cannot_open = || {
            Error::storage(format!(
                "signing key `{}` does not open with this server's TOKEN_HASH_KEY",
                key.kid
            ))
        };
        let (nonce, sealed) = key
            .sealed_secret
            .split_at_checked(NONCE_LEN)
            .ok_or_else(cannot_open)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| cannot_open())?;
        let mut buf = sealed.to_vec();
        let len = self
            .key
            .open_in_place(nonce, Aad::from(aad(&key.kid, key.algorithm)), &mut buf)
            .map_err(|_| cannot_open())?
            .len();
        buf.truncate(len);
        Ok(buf)
    }

    /// The ring of every stored key; retired keys are in it as retired, so their tokens get
    /// `unknown_key` and their ids are never signed with again.
    pub fn ring(&self, keys: &[StoredSigningKey]) -> Result<KeyRing> {
        let mut ring = KeyRing::new();
        for key in keys {
            let secret = self.open(key)?;
            match key.algorithm {
                Algorithm::Hs256 => ring.add_hmac(&key.kid, &secret)?,
                Algorithm::Ed25519 => ring.add_ed25519_signer(&key.kid, &secret)?,
                Algorithm::Es256 => ring.add_es256_signer(&key.kid, &secret)?,
            }
            if key.retired_at.is_some() {
                ring.retire(&key.kid);
            } else {
                // Keys come oldest first: the newest active one signs by default.
                ring.set_default_kid(&key.kid);
            }
        }
        Ok(ring)
    }
}

/// A verify-only ring from public keys (an edge or a door scanner): Ed25519 and ES256 keys only,
/// since an HMAC key cannot be given out without giving out the power to sign.
pub fn public_ring(keys: &[KeyInfo]) -> Result<KeyRing> {
    let mut ring = KeyRing::new();
    for key in keys.iter().filter(|k| k.status == KeyStatus::Active) {
        if let Some(public) = &key.public_key {
            let public = URL_SAFE_NO_PAD
                .decode(public)
                .map_err(|_| Error::invalid("public_key", "not base64url"))?;
            match key.algorithm {
                Algorithm::Es256 => ring.add_es256_public(&key.kid, &public)?,
                _ => ring.add_ed25519_public(&key.kid, &public)?,
            }
        }
    }
    Ok(ring)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signed_token::{Claims, Kind, Rejection};

    const NOW: Timestamp = Timestamp::from_unix_seconds(1_800_000_000);

    fn claims() -> Claims {
        Claims::new("viewer", NOW, std::time::Duration::from_secs(60))
    }

    #[test]
    fn sealed_keys_open_only_under_the_same_server_key_and_row() {
        let vault = KeyVault::new(&TokenHasher::new(&[1u8; 32]).unwrap()).unwrap();
        let keys = vec![
            vault.generate("h1", Algorithm::Hs256, NOW).unwrap(),
            vault.generate("e1", Algorithm::Ed25519, NOW).unwrap(),
            vault.generate("p1", Algorithm::Es256, NOW).unwrap(),
        ];
        assert_eq!(keys[0].public_key, None);
        assert_eq!(keys[1].public_key.as_ref().map(Vec::len), Some(32));
        assert_eq!(keys[2].public_key.as_ref().map(Vec::len), Some(65));
        let ring = vault.ring(&keys).unwrap();
        for kid in ["h1", "e1", "p1"] {
            let token = ring.sign(kid, &claims()).unwrap();
            assert!(ring.verify(&token, NOW, Kind::Playback, None, None).is_ok());
        }
        let other = KeyVault::new(&TokenHasher::new(&[2u8; 32]).unwrap()).unwrap();
        let err = other.ring(&keys).err().unwrap().to_string();
        assert!(err.contains("h1"), "{err}");
        let mut moved = keys[0].clone();
        moved.kid = "h2".into();
        assert!(
            vault.ring(&[moved]).is_err(),
            "a sealed secret is bound to its id"
        );
        let debug = format!("{:?}", keys[0]);
        assert!(!debug.contains("sealed"), "{debug}");
    }

    #[test]
    fn retired_keys_are_refused_and_public_rings_verify_only() {
        let vault = KeyVault::new(&TokenHasher::new(&[1u8; 32]).unwrap()).unwrap();
        let mut keys = vec![
            vault.generate("old", Algorithm::Ed25519, NOW).unwrap(),
            vault.generate("new", Algorithm::Ed25519, NOW).unwrap(),
            vault.generate("mac", Algorithm::Hs256, NOW).unwrap(),
            vault.generate("ec", Algorithm::Es256, NOW).unwrap(),
        ];
        let signer = vault.ring(&keys).unwrap();
        let old = signer.sign("old", &claims()).unwrap();
        let new = signer.sign("new", &claims()).unwrap();
        let ec = signer.sign("ec", &claims()).unwrap();
        keys[0].retired_at = Some(NOW);
        let ring = vault.ring(&keys).unwrap();
        assert_eq!(
            ring.verify(&old, NOW, Kind::Playback, None, None),
            Err(Rejection::UnknownKey)
        );
        assert_eq!(ring.signing_kids(), vec!["ec", "mac", "new"]);
        assert_eq!(ring.default_kid(), Some("ec"), "the newest active key");
        assert!(ring.mint(Some("old"), &claims()).is_err());
        let infos: Vec<KeyInfo> = keys.iter().map(StoredSigningKey::info).collect();
        assert_eq!(infos[0].status, KeyStatus::Retired);
        let listed = serde_json::to_string(&infos).unwrap();
        assert!(!listed.contains("sealed"), "{listed}");
        let read_back: Vec<KeyInfo> = serde_json::from_str(&listed).unwrap();
        assert_eq!(read_back, infos);
        let edge = public_ring(&infos).unwrap();
        assert!(edge.verify(&new, NOW, Kind::Playback, None, None).is_ok());
        assert!(edge.verify(&ec, NOW, Kind::Playback, None, None).is_ok());
        assert_eq!(
            edge.verify(&old, NOW, Kind::Playback, None, None),
            Err(Rejection::UnknownKey)
        );
        assert!(edge.signing_kids().is_empty());
    }
}
