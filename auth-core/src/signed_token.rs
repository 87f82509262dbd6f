//! Signed tokens: claims a verifier can trust without a database.
//!
//! Groundwork for signed playback tokens and e-tickets (see the signed-tickets issue): the
//! format, the key ring and verification. Nothing in the server uses it yet.
//!
//! Format (URL-safe, no padding): `v1.<key id>.<base64url(claims JSON)>.<base64url(tag)>`.
//! The tag covers everything before the last dot. The algorithm is a property of the key the id
//! names, never read from the token, so a token cannot choose a weaker check. Two algorithms:
//! HMAC-SHA256 (shared secret) and Ed25519 (a scanner or edge holds only the public key).
//! Several keys live side by side, so keys rotate without invalidating tokens in flight; a
//! retired key id is refused like an unknown one.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::hmac;
use ring::rand::SystemRandom;
use ring::signature::{self, Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::token::{canonical_ip, StreamAllowList};

const VERSION: &str = "v1";

/// What a signed token asserts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// The holder (user id, ticket holder).
    pub sub: String,
    /// The event the token belongs to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evt: Option<String>,
    /// Stream names or `*` globs it unlocks; empty means any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub streams: Vec<String>,
    /// Issued at, unix seconds.
    pub iat: i64,
    /// Expires at, unix seconds.
    pub exp: i64,
    /// Not valid before, unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// The only client address it is good for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
    /// Most concurrent sessions; 0 = not limited by the token.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_sessions: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Why a signed token was refused. Stable codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    Malformed,
    UnknownKey,
    BadSignature,
    Expired,
    NotYetValid,
    IpMismatch,
    StreamNotAllowed,
}

impl Rejection {
    pub fn code(self) -> &'static str {
        match self {
            Rejection::Malformed => "malformed",
            Rejection::UnknownKey => "unknown_key",
            Rejection::BadSignature => "bad_signature",
            Rejection::Expired => "expired",
            Rejection::NotYetValid => "not_yet_valid",
            Rejection::IpMismatch => "ip_mismatch",
            Rejection::StreamNotAllowed => "stream_not_allowed",
        }
    }
}

enum Material {
    Hmac(hmac::Key),
    Ed25519Signer(Ed25519KeyPair),
    Ed25519Verifier(Vec<u8>),
}

struct Entry {
    material: Material,
    retired: bool,
}

/// Keys by id. Verification needs only public material for Ed25519 keys.
pub struct KeyRing {
    keys: HashMap<String, Entry>,
    /// Tolerance for clock differences on `exp` and `nbf`.
    pub leeway: Duration,
}

impl Default for KeyRing {
    fn default() -> Self {
        KeyRing {
            keys: HashMap::new(),
            leeway: Duration::from_secs(30),
        }
    }
}

fn check_kid(kid: &str) -> Result<()> {
    let ok = (1..=32).contains(&kid.len())
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "kid",
            "1 to 32 characters of A-Z, a-z, 0-9, - and _",
        ))
    }
}

impl KeyRing {
    pub fn new() -> Self {
        Self::default()
    }

    /// An HMAC-SHA256 key; `secret` must hold at least 32 bytes.
    pub fn add_hmac(&mut self, kid: &str, secret: &[u8]) -> Result<()> {
        check_kid(kid)?;
        if secret.len() < 32 {
            return Err(Error::invalid(
                "secret",
                "an HMAC key needs at least 32 bytes",
            ));
        }
        self.insert(
            kid,
            Material::Hmac(hmac::Key::new(hmac::HMAC_SHA256, secret)),
        );
        Ok(())
    }

    /// An Ed25519 signing key from its PKCS#8 document (see [`generate_ed25519`]).
    pub fn add_ed25519_signer(&mut self, kid: &str, pkcs8: &[u8]) -> Result<()> {
        check_kid(kid)?;
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8)
            .map_err(|_| Error::invalid("pkcs8", "not an Ed25519 PKCS#8 key"))?;
        self.insert(kid, Material::Ed25519Signer(pair));
        Ok(())
    }

    /// An Ed25519 public key (32 bytes): verifies, cannot sign.
    pub fn add_ed25519_public(&mut self, kid: &str, public_key: &[u8]) -> Result<()> {
        check_kid(kid)?;
        if public_key.len() != 32 {
            return Err(Error::invalid(
                "public_key",
                "an Ed25519 public key is 32 bytes",
            ));
        }
        self.insert(kid, Material::Ed25519Verifier(public_key.to_vec()));
        Ok(())
    }

    /// The public key of an Ed25519 signing key, for verifiers elsewhere.
    pub fn ed25519_public_key(&self, kid: &str) -> Option<Vec<u8>> {
        match &self.keys.get(kid)?.material {
            Material::Ed25519Signer(pair) => Some(pair.public_key().as_ref().to_vec()),
            Material::Ed25519Verifier(public) => Some(public.clone()),
            Material::Hmac(_) => None,
        }
    }

    /// Refuses every token signed with `kid` from now on; false if there is no such key.
    pub fn retire(&mut self, kid: &str) -> bool {
        self.keys
            .get_mut(kid)
            .map(|entry| entry.retired = true)
            .is_some()
    }

    fn insert(&mut self, kid: &str, material: Material) {
        self.keys.insert(
            kid.to_owned(),
            Entry {
                material,
                retired: false,
            },
        );
    }

    /// Signs `claims` with the key `kid`.
    pub fn sign(&self, kid: &str, claims: &Claims) -> Result<String> {
        let entry = self
            .keys
            .get(kid)
            .filter(|e| !e.retired)
            .ok_or(Error::NotFound {
                what: "signing key",
            })?;
        let payload =
            serde_json::to_vec(claims).map_err(|e| Error::invalid("claims", e.to_string()))?;
        let signed = format!("{VERSION}.{kid}.{}", URL_SAFE_NO_PAD.encode(payload));
        let tag = match &entry.material {
            Material::Hmac(key) => hmac::sign(key, signed.as_bytes()).as_ref().to_vec(),
            Material::Ed25519Signer(pair) => pair.sign(signed.as_bytes()).as_ref().to_vec(),
            Material::Ed25519Verifier(_) => {
                return Err(Error::invalid("kid", "this key can only verify"))
            }
        };
        Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(tag)))
    }

    /// Checks the token's signature, then its claims against `now` (with [`KeyRing::leeway`]),
    /// the client address and the stream, when given.
    pub fn verify(
        &self,
        token: &str,
        now: Timestamp,
        client: Option<IpAddr>,
        stream: Option<&str>,
    ) -> std::result::Result<Claims, Rejection> {
        let (signed, tag) = token.rsplit_once('.').ok_or(Rejection::Malformed)?;
        let mut parts = signed.split('.');
        let (Some(VERSION), Some(kid), Some(payload), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Rejection::Malformed);
        };
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| Rejection::Malformed)?;
        let entry = self
            .keys
            .get(kid)
            .filter(|e| !e.retired)
            .ok_or(Rejection::UnknownKey)?;
        // Both checks compare in constant time (ring).
        let genuine = match &entry.material {
            Material::Hmac(key) => hmac::verify(key, signed.as_bytes(), &tag).is_ok(),
            Material::Ed25519Signer(pair) => {
                signature::UnparsedPublicKey::new(&signature::ED25519, pair.public_key().as_ref())
                    .verify(signed.as_bytes(), &tag)
                    .is_ok()
            }
            Material::Ed25519Verifier(public) => {
                signature::UnparsedPublicKey::new(&signature::ED25519, public)
                    .verify(signed.as_bytes(), &tag)
                    .is_ok()
            }
        };
        if !genuine {
            return Err(Rejection::BadSignature);
        }
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| Rejection::Malformed)?;
        let claims: Claims = serde_json::from_slice(&payload).map_err(|_| Rejection::Malformed)?;
        let leeway = i64::try_from(self.leeway.as_secs()).unwrap_or(i64::MAX);
        let now = now.unix_seconds();
        if now > claims.exp.saturating_add(leeway) {
            return Err(Rejection::Expired);
        }
        if claims
            .nbf
            .is_some_and(|nbf| now < nbf.saturating_sub(leeway))
        {
            return Err(Rejection::NotYetValid);
        }
        if let (Some(bound), Some(client)) = (claims.ip, client) {
            if canonical_ip(bound) != canonical_ip(client) {
                return Err(Rejection::IpMismatch);
            }
        }
        if let Some(stream) = stream {
            let allowed =
                StreamAllowList::parse(&claims.streams).map_err(|_| Rejection::Malformed)?;
            if !allowed.allows(stream) {
                return Err(Rejection::StreamNotAllowed);
            }
        }
        Ok(claims)
    }
}

/// A new Ed25519 key as a PKCS#8 document (keep it secret; give verifiers
/// [`KeyRing::ed25519_public_key`]).
pub fn generate_ed25519() -> Result<Vec<u8>> {
    Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .map(|doc| doc.as_ref().to_vec())
        .map_err(|_| Error::storage("the system random number generator failed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_unix_seconds(1_800_000_000);

    fn claims() -> Claims {
        Claims {
            sub: "viewer-1".into(),
            evt: Some("conf-2026".into()),
            streams: vec!["conf/*".into()],
            iat: NOW.unix_seconds(),
            exp: NOW.unix_seconds() + 3600,
            nbf: None,
            ip: Some("203.0.113.7".parse().unwrap()),
            max_sessions: 1,
        }
    }

    fn rings() -> Vec<(&'static str, KeyRing)> {
        let mut hmac = KeyRing::new();
        hmac.add_hmac("h1", &[7u8; 32]).unwrap();
        let mut ed = KeyRing::new();
        ed.add_ed25519_signer("e1", &generate_ed25519().unwrap())
            .unwrap();
        vec![("h1", hmac), ("e1", ed)]
    }

    fn ip() -> Option<IpAddr> {
        Some("203.0.113.7".parse().unwrap())
    }

    #[test]
    fn a_signed_token_verifies_and_round_trips_its_claims() {
        for (kid, ring) in rings() {
            let token = ring.sign(kid, &claims()).unwrap();
            assert!(token.starts_with(&format!("v1.{kid}.")), "{token}");
            assert!(
                token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
                "URL-safe: {token}"
            );
            assert_eq!(
                ring.verify(&token, NOW, ip(), Some("conf/main")),
                Ok(claims())
            );
        }
    }

    #[test]
    fn every_reason() {
        for (kid, ring) in rings() {
            let token = ring.sign(kid, &claims()).unwrap();
            assert_eq!(
                ring.verify("nonsense", NOW, None, None),
                Err(Rejection::Malformed)
            );
            assert_eq!(
                ring.verify(&token.replacen("v1.", "v2.", 1), NOW, None, None),
                Err(Rejection::Malformed)
            );
            assert_eq!(
                ring.verify(&token.replacen(kid, "zz", 1), NOW, None, None),
                Err(Rejection::UnknownKey)
            );
            let late = NOW.saturating_add(Duration::from_secs(3600 + 31));
            assert_eq!(
                ring.verify(&token, late, None, None),
                Err(Rejection::Expired)
            );
            let within_leeway = NOW.saturating_add(Duration::from_secs(3600 + 29));
            assert!(ring.verify(&token, within_leeway, None, None).is_ok());
            let early = ring
                .sign(
                    kid,
                    &Claims {
                        nbf: Some(NOW.unix_seconds() + 120),
                        ..claims()
                    },
                )
                .unwrap();
            assert_eq!(
                ring.verify(&early, NOW, None, None),
                Err(Rejection::NotYetValid)
            );
            assert_eq!(
                ring.verify(&token, NOW, Some("198.51.100.1".parse().unwrap()), None),
                Err(Rejection::IpMismatch)
            );
            assert!(ring
                .verify(
                    &token,
                    NOW,
                    Some("::ffff:203.0.113.7".parse().unwrap()),
                    None
                )
                .is_ok());
            assert_eq!(
                ring.verify(&token, NOW, ip(), Some("other/stream")),
                Err(Rejection::StreamNotAllowed)
            );
            let mut forged = token.clone();
            forged.pop();
            forged.push(if token.ends_with('A') { 'B' } else { 'A' });
            assert!(matches!(
                ring.verify(&forged, NOW, None, None),
                Err(Rejection::BadSignature | Rejection::Malformed)
            ));
        }
    }

    #[test]
    fn flipping_any_byte_is_refused() {
        for (kid, ring) in rings() {
            let token = ring.sign(kid, &claims()).unwrap();
            for i in 0..token.len() {
                let mut bytes = token.clone().into_bytes();
                bytes[i] ^= 0x01;
                let Ok(flipped) = String::from_utf8(bytes) else {
                    continue;
                };
                assert!(
                    ring.verify(&flipped, NOW, ip(), Some("conf/main")).is_err(),
                    "byte {i} of {token}"
                );
            }
        }
    }

    #[test]
    fn keys_rotate_and_retire() {
        let mut ring = KeyRing::new();
        ring.add_hmac("old", &[1u8; 32]).unwrap();
        let in_flight = ring.sign("old", &claims()).unwrap();
        ring.add_hmac("new", &[2u8; 32]).unwrap();
        let fresh = ring.sign("new", &claims()).unwrap();
        assert!(
            ring.verify(&in_flight, NOW, None, None).is_ok(),
            "old tokens live on beside the new key"
        );
        assert!(ring.verify(&fresh, NOW, None, None).is_ok());
        assert!(ring.retire("old"));
        assert_eq!(
            ring.verify(&in_flight, NOW, None, None),
            Err(Rejection::UnknownKey)
        );
        assert!(ring.sign("old", &claims()).is_err());
        assert!(ring.verify(&fresh, NOW, None, None).is_ok());
    }

    #[test]
    fn a_public_key_alone_verifies_but_cannot_sign() {
        let pkcs8 = generate_ed25519().unwrap();
        let mut signer = KeyRing::new();
        signer.add_ed25519_signer("edge", &pkcs8).unwrap();
        let token = signer.sign("edge", &claims()).unwrap();
        let mut edge = KeyRing::new();
        edge.add_ed25519_public("edge", &signer.ed25519_public_key("edge").unwrap())
            .unwrap();
        assert_eq!(edge.verify(&token, NOW, ip(), None), Ok(claims()));
        assert!(edge.sign("edge", &claims()).is_err());
        // The same id holding an HMAC key cannot be tricked into accepting it.
        let mut confused = KeyRing::new();
        confused.add_hmac("edge", &[9u8; 32]).unwrap();
        assert_eq!(
            confused.verify(&token, NOW, None, None),
            Err(Rejection::BadSignature)
        );
    }
}
