//! Signed tokens: claims a verifier can trust without a database.
//!
//! Used for playback tokens (`/auth` accepts them without a token lookup) and signed e-tickets
//! (a scanner verifies them offline with a public key).
//!
//! Format (URL-safe, no padding): `v1.<key id>.<base64url(claims JSON)>.<base64url(tag)>`.
//! The tag covers everything before the last dot. The algorithm is a property of the key the id
//! names, never read from the token, so a token cannot choose a weaker check. Three algorithms:
//! HMAC-SHA256 (shared secret), and Ed25519 and ECDSA P-256 (a scanner or edge holds only the
//! public key).
//! Several keys live side by side, so keys rotate without invalidating tokens in flight; a
//! retired key id is refused like an unknown one. Persistence of the ring is in [`keys`].
//!
//! Verification decodes into stack buffers and checks the tag before it parses anything; the
//! only allocations are the claims' own strings.
//!
//! The same keys also sign standard JWTs ([`jwt`]): a compact JWS with the key id in its header,
//! published as a JWKS for third-party verifiers (MediaMTX, Ant Media). [`KeyRing::verify`]
//! accepts both shapes alike.

pub mod jwt;
pub mod keys;
pub mod revocations;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::hmac;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::token::{canonical_ip, glob_matches, StreamAllowList};

const VERSION: &str = "v1";
/// How every signed token starts; stored token secrets may not (see `token::validate_secret`).
pub const PREFIX: &str = "v1.";
/// Longest token accepted: bounds the work an unauthenticated request can cause.
pub const MAX_TOKEN_LEN: usize = 2048;
/// Stack buffers verification decodes into: the base64 decoder wants room for its estimate
/// (up to 2 bytes over the exact length). A token under [`MAX_TOKEN_LEN`] always fits.
const CLAIMS_BUF_LEN: usize = MAX_TOKEN_LEN / 4 * 3 + 3;
/// Ed25519 and fixed-size ECDSA P-256 signatures are 64 bytes, HMAC-SHA256 tags 32.
const TAG_BUF_LEN: usize = 64 + 3;

/// Whether `token` has the signed shape (ours, or a JWT's: see [`jwt::is_jwt`]); such a token is
/// never looked up in the token table.
pub fn is_signed(token: &str) -> bool {
    token.starts_with(PREFIX) || jwt::is_jwt(token)
}

/// What a signed token asserts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// The holder (user id, ticket holder).
    pub sub: String,
    /// The event the token belongs to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evt: Option<String>,
    /// The ticket an e-ticket stands for. Present on e-tickets and only on them, so that an
    /// e-ticket is never accepted as a playback token nor the other way round.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tkt: Option<String>,
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
    /// A random id making each minted token unique: two tokens minted alike in the same second
    /// still differ, and so hold separate session slots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// A session group: every token naming the same group shares one set of `max_sessions`
    /// slots, however many are minted (a ticket's holder tokens: `ticket:<id>`). Without it a
    /// token's slots are its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grp: Option<String>,
    /// A segment token (nginx `auth_request` playlist answers): good for the segments of HTTP
    /// delivery only, never where a session is opened, since it takes no session slot.
    #[serde(default, skip_serializing_if = "is_false")]
    pub seg: bool,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// What a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Unlocks streams (`/auth`).
    Playback,
    /// An e-ticket: names a ticket (`tkt`).
    Ticket,
    /// A segment token (`seg`): segments of HTTP delivery only.
    Segment,
}

impl Claims {
    /// A playback token for `sub`, issued at `now`, good for `ttl`, unlimited otherwise: set the
    /// other fields with struct update syntax.
    pub fn new(sub: impl Into<String>, now: Timestamp, ttl: Duration) -> Self {
        let iat = now.unix_seconds();
        Claims {
            sub: sub.into(),
            evt: None,
            tkt: None,
            streams: Vec::new(),
            iat,
            exp: iat.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX)),
            nbf: None,
            ip: None,
            max_sessions: 0,
            jti: None,
            grp: None,
            seg: false,
        }
    }

    pub fn kind(&self) -> Kind {
        match (&self.tkt, self.seg) {
            (Some(_), _) => Kind::Ticket,
            (None, true) => Kind::Segment,
            (None, false) => Kind::Playback,
        }
    }

    /// Whether the token unlocks `stream` (no allocation: this runs per `/auth` request).
    pub fn allows_stream(&self, stream: &str) -> bool {
        self.streams.is_empty() || self.streams.iter().any(|p| glob_matches(p, stream))
    }
}

/// Why a signed token was refused. Stable codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rejection {
    Malformed,
    UnknownKey,
    BadSignature,
    Expired,
    NotYetValid,
    IpMismatch,
    StreamNotAllowed,
    /// A genuine token of another kind (an e-ticket at `/auth`, a playback token at a door, a
    /// segment token anywhere but on a segment).
    WrongKind,
    /// Revoked before it expired: its session group (a revoked ticket's) or its id.
    Revoked,
}

impl Rejection {
    pub const ALL: [Rejection; 9] = [
        Rejection::Malformed,
        Rejection::UnknownKey,
        Rejection::BadSignature,
        Rejection::Expired,
        Rejection::NotYetValid,
        Rejection::IpMismatch,
        Rejection::StreamNotAllowed,
        Rejection::WrongKind,
        Rejection::Revoked,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Rejection::Malformed => "malformed",
            Rejection::UnknownKey => "unknown_key",
            Rejection::BadSignature => "bad_signature",
            Rejection::Expired => "expired",
            Rejection::NotYetValid => "not_yet_valid",
            Rejection::IpMismatch => "ip_mismatch",
            Rejection::StreamNotAllowed => "stream_not_allowed",
            Rejection::WrongKind => "wrong_kind",
            Rejection::Revoked => "token_revoked",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Rejection::Malformed => "the token is not a well-formed signed token",
            Rejection::UnknownKey => "the token names a key that is unknown or retired",
            Rejection::BadSignature => "the token's signature does not match its content",
            Rejection::Expired => "the token has expired",
            Rejection::NotYetValid => "the token is not valid yet",
            Rejection::IpMismatch => "the token is bound to another client address",
            Rejection::StreamNotAllowed => "the token does not unlock this stream",
            Rejection::WrongKind => "the token is genuine but meant for another use",
            Rejection::Revoked => "the token was revoked",
        }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// The key algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// HMAC-SHA256: signer and verifier share the secret.
    Hs256,
    /// Ed25519: verifiers need only the public key.
    Ed25519,
    /// ECDSA P-256 with SHA-256 (JWS `ES256`): verifiers need only the public key; what most JWT
    /// libraries and JWKS consumers support.
    Es256,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Hs256 => "hs256",
            Algorithm::Ed25519 => "ed25519",
            Algorithm::Es256 => "es256",
        }
    }

    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "hs256" => Ok(Algorithm::Hs256),
            "ed25519" => Ok(Algorithm::Ed25519),
            "es256" => Ok(Algorithm::Es256),
            _ => Err(Error::invalid(
                "algorithm",
                "expected `ed25519`, `es256` or `hs256`",
            )),
        }
    }

    /// Whether verifiers need only the public key (so the key may be published).
    pub fn is_asymmetric(self) -> bool {
        !matches!(self, Algorithm::Hs256)
    }
}

enum Material {
    Hmac(hmac::Key),
    Ed25519Signer(Ed25519KeyPair),
    Ed25519Verifier([u8; 32]),
    EcdsaSigner(EcdsaKeyPair),
    /// An uncompressed P-256 point: `04 || x || y`.
    EcdsaVerifier([u8; 65]),
}

impl Material {
    fn algorithm(&self) -> Algorithm {
        match self {
            Material::Hmac(_) => Algorithm::Hs256,
            Material::Ed25519Signer(_) | Material::Ed25519Verifier(_) => Algorithm::Ed25519,
            Material::EcdsaSigner(_) | Material::EcdsaVerifier(_) => Algorithm::Es256,
        }
    }

    fn can_sign(&self) -> bool {
        matches!(
            self,
            Material::Hmac(_) | Material::Ed25519Signer(_) | Material::EcdsaSigner(_)
        )
    }

    /// The public key, for asymmetric keys.
    fn public_key(&self) -> Option<&[u8]> {
        match self {
            Material::Ed25519Signer(pair) => Some(pair.public_key().as_ref()),
            Material::Ed25519Verifier(public) => Some(public),
            Material::EcdsaSigner(pair) => Some(pair.public_key().as_ref()),
            Material::EcdsaVerifier(public) => Some(public),
            Material::Hmac(_) => None,
        }
    }

    /// The tag or signature over `signed`. ECDSA signatures are randomized and come out in
    /// their low-S form (see [`low_s`]).
    fn sign(&self, signed: &[u8]) -> Result<Vec<u8>> {
        match self {
            Material::Hmac(key) => Ok(hmac::sign(key, signed).as_ref().to_vec()),
            Material::Ed25519Signer(pair) => Ok(pair.sign(signed).as_ref().to_vec()),
            Material::EcdsaSigner(pair) => {
                let signature = pair
                    .sign(&SystemRandom::new(), signed)
                    .map_err(|_| Error::storage("ECDSA signing failed"))?;
                let mut tag = signature.as_ref().to_vec();
                low_s(&mut tag);
                Ok(tag)
            }
            Material::Ed25519Verifier(_) | Material::EcdsaVerifier(_) => {
                Err(Error::invalid("kid", "this key can only verify"))
            }
        }
    }

    /// Whether `tag` is this key's over `signed`: HMAC compared in constant time (ring), the
    /// public-key signatures checked against the public key, which reveals nothing secret
    /// however long it takes.
    fn verifies(&self, signed: &[u8], tag: &[u8]) -> bool {
        match self {
            Material::Hmac(key) => hmac::verify(key, signed, tag).is_ok(),
            Material::Ed25519Signer(_) | Material::Ed25519Verifier(_) => {
                self.public_key().is_some_and(|public| {
                    signature::UnparsedPublicKey::new(&signature::ED25519, public)
                        .verify(signed, tag)
                        .is_ok()
                })
            }
            Material::EcdsaSigner(_) | Material::EcdsaVerifier(_) => {
                // A high-S twin of a genuine signature is valid ECDSA too: refusing it keeps one
                // spelling per token, so a holder cannot mint themselves a second session owner
                // (owners are derived from the tag) out of one token.
                is_low_s(tag)
                    && self.public_key().is_some_and(|public| {
                        signature::UnparsedPublicKey::new(
                            &signature::ECDSA_P256_SHA256_FIXED,
                            public,
                        )
                        .verify(signed, tag)
                        .is_ok()
                    })
            }
        }
    }
}

/// Half the order of P-256, big-endian (rounded down): `s` above it is the "high" form.
const P256_HALF_ORDER: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xde, 0x73, 0x7d, 0x56, 0xd3, 0x8b, 0xcf, 0x42, 0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8,
];
/// The order of P-256, big-endian.
const P256_ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// Whether a fixed-size (`r || s`) P-256 signature has `s <= n/2`. Public data: no need for
/// constant time.
fn is_low_s(tag: &[u8]) -> bool {
    tag.len() == 64 && tag[32..] <= P256_HALF_ORDER[..]
}

/// Replaces `s` by `n - s` when it is high: the same signature in its one accepted spelling.
fn low_s(tag: &mut [u8]) {
    if tag.len() != 64 || is_low_s(tag) {
        return;
    }
    let s = &mut tag[32..];
    let mut borrow = 0u16;
    for i in (0..32).rev() {
        let diff = u16::from(P256_ORDER[i])
            .wrapping_sub(u16::from(s[i]))
            .wrapping_sub(borrow);
        s[i] = (diff & 0xff) as u8;
        borrow = (diff >> 8) & 1;
    }
}

struct Entry {
    material: Material,
    retired: bool,
}

/// Keys by id. Verification needs only public material for Ed25519 keys.
pub struct KeyRing {
    keys: HashMap<String, Entry>,
    /// The key [`KeyRing::mint`] signs with when none is named.
    default_kid: Option<String>,
    /// Tolerance for clock differences on `exp` and `nbf`.
    pub leeway: Duration,
}

impl Default for KeyRing {
    fn default() -> Self {
        KeyRing {
            keys: HashMap::new(),
            default_kid: None,
            leeway: Self::DEFAULT_LEEWAY,
        }
    }
}

/// Key ids appear in tokens and URLs, between dots.
pub fn check_kid(kid: &str) -> Result<()> {
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
    /// Clocks of a signer and a verifier on different machines differ by seconds, rarely more.
    pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);

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
        let public: [u8; 32] = public_key
            .try_into()
            .map_err(|_| Error::invalid("public_key", "an Ed25519 public key is 32 bytes"))?;
        self.insert(kid, Material::Ed25519Verifier(public));
        Ok(())
    }

    /// The public key of an Ed25519 key, for verifiers elsewhere.
    pub fn ed25519_public_key(&self, kid: &str) -> Option<Vec<u8>> {
        let material = &self.keys.get(kid)?.material;
        (material.algorithm() == Algorithm::Ed25519)
            .then(|| material.public_key().map(<[u8]>::to_vec))
            .flatten()
    }

    /// An ECDSA P-256 signing key from its PKCS#8 document (see [`generate_es256`]).
    pub fn add_es256_signer(&mut self, kid: &str, pkcs8: &[u8]) -> Result<()> {
        check_kid(kid)?;
        let pair = EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8,
            &SystemRandom::new(),
        )
        .map_err(|_| Error::invalid("pkcs8", "not a P-256 PKCS#8 key"))?;
        self.insert(kid, Material::EcdsaSigner(pair));
        Ok(())
    }

    /// An ECDSA P-256 public key (65 bytes, uncompressed `04 || x || y`): verifies, cannot sign.
    pub fn add_es256_public(&mut self, kid: &str, public_key: &[u8]) -> Result<()> {
        check_kid(kid)?;
        let public: [u8; 65] = public_key
            .try_into()
            .ok()
            .filter(|p: &[u8; 65]| p[0] == 4)
            .ok_or_else(|| {
                Error::invalid("public_key", "a P-256 public key is 65 bytes, 04 || x || y")
            })?;
        self.insert(kid, Material::EcdsaVerifier(public));
        Ok(())
    }

    /// The algorithm and public key of an asymmetric key (`None` for HMAC keys and unknown ids).
    pub fn public_key(&self, kid: &str) -> Option<(Algorithm, &[u8])> {
        let material = &self.keys.get(kid)?.material;
        Some((material.algorithm(), material.public_key()?))
    }

    /// Refuses every token signed with `kid` from now on; false if there is no such key.
    pub fn retire(&mut self, kid: &str) -> bool {
        self.keys
            .get_mut(kid)
            .map(|entry| entry.retired = true)
            .is_some()
    }

    /// Ids of the keys that can sign (not retired, not public-only), sorted.
    pub fn signing_kids(&self) -> Vec<&str> {
        let mut kids: Vec<&str> = self
            .keys
            .iter()
            .filter(|(_, e)| !e.retired && e.material.can_sign())
            .map(|(kid, _)| kid.as_str())
            .collect();
        kids.sort_unstable();
        kids
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Makes `kid` the key [`KeyRing::mint`] uses when none is named.
    pub fn set_default_kid(&mut self, kid: &str) {
        self.default_kid = Some(kid.to_owned());
    }

    pub fn default_kid(&self) -> Option<&str> {
        self.default_kid.as_deref()
    }

    /// Signs `claims` with `kid`, or with the default key; returns the token and the key used.
    pub fn mint(&self, kid: Option<&str>, claims: &Claims) -> Result<(String, String)> {
        let kid = self.signing_kid(kid)?;
        let token = self.sign(kid, claims).map_err(unknown_kid)?;
        Ok((token, kid.to_owned()))
    }

    /// The key to mint with: `kid`, or the default key. Refusals depend on the keys stored, not
    /// on the request's shape: unprocessable (422), not invalid.
    fn signing_kid<'k>(&'k self, kid: Option<&'k str>) -> Result<&'k str> {
        kid.or(self.default_kid()).ok_or_else(|| {
            Error::unprocessable(
                "kid",
                "no signing key: create one with `auth-server keys generate`",
            )
        })
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
        validate_claims(claims)?;
        let payload =
            serde_json::to_vec(claims).map_err(|e| Error::invalid("claims", e.to_string()))?;
        let signed = format!("{VERSION}.{kid}.{}", URL_SAFE_NO_PAD.encode(payload));
        let tag = entry.material.sign(signed.as_bytes())?;
        within_max_len(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(tag)))
    }

    /// Checks the token's signature, then its claims: `kind`, validity against `now` (with
    /// [`KeyRing::leeway`]), and the client address and stream when given.
    ///
    /// Both our `v1.` tokens and JWTs ([`jwt`]) are accepted, with the same checks.
    pub fn verify(
        &self,
        token: &str,
        now: Timestamp,
        kind: Kind,
        client: Option<IpAddr>,
        stream: Option<&str>,
    ) -> std::result::Result<Claims, Rejection> {
        self.verify_kinds(token, now, &[kind], client, stream)
    }

    /// [`KeyRing::verify`] for a request that more than one kind of token may serve (a segment:
    /// a playback token or a segment token).
    pub fn verify_kinds(
        &self,
        token: &str,
        now: Timestamp,
        kinds: &[Kind],
        client: Option<IpAddr>,
        stream: Option<&str>,
    ) -> std::result::Result<Claims, Rejection> {
        let claims = self.verify_signature(token)?;
        if !kinds.contains(&claims.kind()) {
            return Err(Rejection::WrongKind);
        }
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
        if stream.is_some_and(|stream| !claims.allows_stream(stream)) {
            return Err(Rejection::StreamNotAllowed);
        }
        Ok(claims)
    }

    /// The claims of a genuine token: shape, key and signature only, no claim checked. For
    /// finding what a token was admitted for (a session that may outlast the token's validity),
    /// never for admitting anything.
    pub fn verify_signature(&self, token: &str) -> std::result::Result<Claims, Rejection> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(Rejection::Malformed);
        }
        if !token.starts_with(PREFIX) && jwt::is_jwt(token) {
            return self.verify_jwt_signature(token);
        }
        let (signed, tag) = token.rsplit_once('.').ok_or(Rejection::Malformed)?;
        let mut parts = signed.split('.');
        let (Some(VERSION), Some(kid), Some(payload), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Rejection::Malformed);
        };
        let mut tag_buf = [0u8; TAG_BUF_LEN];
        let tag = decode_into(tag, &mut tag_buf)?;
        let entry = self
            .keys
            .get(kid)
            .filter(|e| !e.retired)
            .ok_or(Rejection::UnknownKey)?;
        if !entry.material.verifies(signed.as_bytes(), tag) {
            return Err(Rejection::BadSignature);
        }
        let mut payload_buf = [0u8; CLAIMS_BUF_LEN];
        let payload = decode_into(payload, &mut payload_buf)?;
        serde_json::from_slice(payload).map_err(|_| Rejection::Malformed)
    }
}

/// A request to mint a playback token: the API's body and the CLI's flags.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaybackSpec {
    /// The viewer; the media server is told it as the user id.
    pub user_id: String,
    /// The event the token belongs to.
    #[serde(default)]
    pub event: Option<String>,
    /// Stream names or `*` globs; empty means every stream.
    #[serde(default)]
    pub streams: Vec<String>,
    /// Lifetime; the server's default when absent.
    #[serde(default)]
    pub ttl_seconds: Option<u64>,
    /// Bind the token to one client address.
    #[serde(default)]
    pub ip: Option<IpAddr>,
    /// Most concurrent sessions (0 or absent: not limited, and no store call at `/auth`).
    #[serde(default)]
    pub max_sessions: Option<u32>,
    /// The signing key; the newest active key when absent.
    #[serde(default)]
    pub kid: Option<String>,
    /// `v1` (default) or `jwt` ([`jwt`]).
    #[serde(default)]
    pub format: jwt::TokenFormat,
    /// JWT only: extra claims for one consumer (`mediamtx`).
    #[serde(default)]
    pub profile: Option<jwt::Profile>,
    /// JWT only: the audience (`aud`); the server's default when absent.
    #[serde(default)]
    pub aud: Option<String>,
    /// The session group (`grp`). Set by the server only (a ticket's holder tokens), never read
    /// from a request: a caller naming another's group would take or exhaust its slots.
    #[serde(skip)]
    pub group: Option<String>,
}

impl PlaybackSpec {
    /// The claims to sign, issued at `now`; `default_ttl` applies when the spec names none, and
    /// no lifetime may exceed `max_ttl`.
    pub fn claims(
        &self,
        now: Timestamp,
        default_ttl: Duration,
        max_ttl: Duration,
    ) -> Result<Claims> {
        let ttl = self.ttl_seconds.map_or(default_ttl, Duration::from_secs);
        if ttl.is_zero() || ttl > max_ttl {
            return Err(Error::invalid(
                "ttl_seconds",
                format!("must be from 1 to {}", max_ttl.as_secs()),
            ));
        }
        if self.format == jwt::TokenFormat::V1 {
            if self.profile.is_some() {
                return Err(Error::invalid("profile", "needs \"format\": \"jwt\""));
            }
            if self.aud.is_some() {
                return Err(Error::invalid("aud", "needs \"format\": \"jwt\""));
            }
        }
        let event = match &self.event {
            Some(event) if event.trim().is_empty() => {
                return Err(Error::invalid("event", "must not be empty"))
            }
            event => event.clone(),
        };
        Ok(Claims {
            evt: event,
            streams: self.streams.clone(),
            ip: self.ip,
            max_sessions: self.max_sessions.unwrap_or(0),
            jti: Some(random_id()?),
            grp: self.group.clone(),
            ..Claims::new(
                crate::token::validate_user_id(self.user_id.clone())?,
                now,
                ttl,
            )
        })
    }
}

/// A minted token, unless it is longer than readers accept: its claims are each well formed
/// but too many together (422).
fn within_max_len(token: String) -> Result<String> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(Error::unprocessable(
            "claims",
            format!("the signed token would exceed {MAX_TOKEN_LEN} characters"),
        ));
    }
    Ok(token)
}

/// A mint's error for a `kid` that names no active key.
fn unknown_kid(err: Error) -> Error {
    match err {
        Error::NotFound { .. } => Error::unprocessable("kid", "no active signing key has this id"),
        other => other,
    }
}

/// 96 random bits, base64url (16 characters).
pub fn random_id() -> Result<String> {
    let mut bytes = [0u8; 12];
    ring::rand::SecureRandom::fill(&SystemRandom::new(), &mut bytes)
        .map_err(|_| Error::storage("the system random number generator failed"))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Refuses claims a verifier could not honour: stream globs that are not valid allow-list
/// entries, a window that ends before it starts.
fn validate_claims(claims: &Claims) -> Result<()> {
    StreamAllowList::parse(&claims.streams)?;
    if claims.exp < claims.iat {
        return Err(Error::invalid("exp", "must not be before `iat`"));
    }
    if claims.nbf.is_some_and(|nbf| nbf > claims.exp) {
        return Err(Error::invalid("nbf", "must not be after `exp`"));
    }
    if claims.sub.is_empty() {
        return Err(Error::invalid("sub", "must not be empty"));
    }
    if claims.grp.as_deref().is_some_and(str::is_empty) {
        return Err(Error::invalid("grp", "must not be empty"));
    }
    if claims.seg && claims.tkt.is_some() {
        return Err(Error::invalid(
            "seg",
            "an e-ticket cannot be a segment token",
        ));
    }
    Ok(())
}

/// Canonical unpadded base64url into `buf` (non-canonical trailing bits are refused, so every
/// token has exactly one spelling); too long for `buf` is malformed.
fn decode_into<'b>(text: &str, buf: &'b mut [u8]) -> std::result::Result<&'b [u8], Rejection> {
    let len = URL_SAFE_NO_PAD
        .decode_slice(text, buf)
        .map_err(|_| Rejection::Malformed)?;
    Ok(&buf[..len])
}

/// A key ring that can be replaced while requests read it: the server reloads it from the
/// store, requests take the current one (an `Arc` clone under a read lock held for nanoseconds).
#[derive(Default)]
pub struct SharedKeyRing(RwLock<Arc<KeyRing>>);

impl SharedKeyRing {
    pub fn new(ring: KeyRing) -> Self {
        SharedKeyRing(RwLock::new(Arc::new(ring)))
    }

    pub fn current(&self) -> Arc<KeyRing> {
        match self.0.read() {
            Ok(ring) => Arc::clone(&ring),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    pub fn replace(&self, ring: KeyRing) {
        let ring = Arc::new(ring);
        match self.0.write() {
            Ok(mut current) => *current = ring,
            Err(poisoned) => *poisoned.into_inner() = ring,
        }
    }
}

/// A new Ed25519 key as a PKCS#8 document (keep it secret; give verifiers
/// [`KeyRing::ed25519_public_key`]).
pub fn generate_ed25519() -> Result<Vec<u8>> {
    Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .map(|doc| doc.as_ref().to_vec())
        .map_err(|_| Error::storage("the system random number generator failed"))
}

/// A new ECDSA P-256 key as a PKCS#8 document (keep it secret; give verifiers
/// [`KeyRing::public_key`], or the JWKS).
pub fn generate_es256() -> Result<Vec<u8>> {
    EcdsaKeyPair::generate_pkcs8(
        &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &SystemRandom::new(),
    )
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
            tkt: None,
            streams: vec!["conf/*".into()],
            iat: NOW.unix_seconds(),
            exp: NOW.unix_seconds() + 3600,
            nbf: None,
            ip: Some("203.0.113.7".parse().unwrap()),
            max_sessions: 1,
            jti: None,
            grp: None,
            seg: false,
        }
    }

    fn rings() -> Vec<(&'static str, KeyRing)> {
        let mut hmac = KeyRing::new();
        hmac.add_hmac("h1", &[7u8; 32]).unwrap();
        let mut ed = KeyRing::new();
        ed.add_ed25519_signer("e1", &generate_ed25519().unwrap())
            .unwrap();
        let mut ec = KeyRing::new();
        ec.add_es256_signer("p1", &generate_es256().unwrap())
            .unwrap();
        vec![("h1", hmac), ("e1", ed), ("p1", ec)]
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
                ring.verify(&token, NOW, Kind::Playback, ip(), Some("conf/main")),
                Ok(claims())
            );
        }
    }

    #[test]
    fn every_reason() {
        for (kid, ring) in rings() {
            let token = ring.sign(kid, &claims()).unwrap();
            assert_eq!(
                ring.verify("nonsense", NOW, Kind::Playback, None, None),
                Err(Rejection::Malformed)
            );
            assert_eq!(
                ring.verify(
                    &token.replacen("v1.", "v2.", 1),
                    NOW,
                    Kind::Playback,
                    None,
                    None
                ),
                Err(Rejection::Malformed)
            );
            assert_eq!(
                ring.verify(
                    &token.replacen(kid, "zz", 1),
                    NOW,
                    Kind::Playback,
                    None,
                    None
                ),
                Err(Rejection::UnknownKey)
            );
            let late = NOW.saturating_add(Duration::from_secs(3600 + 31));
            assert_eq!(
                ring.verify(&token, late, Kind::Playback, None, None),
                Err(Rejection::Expired)
            );
            let within_leeway = NOW.saturating_add(Duration::from_secs(3600 + 29));
            assert!(ring
                .verify(&token, within_leeway, Kind::Playback, None, None)
                .is_ok());
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
                ring.verify(&early, NOW, Kind::Playback, None, None),
                Err(Rejection::NotYetValid)
            );
            assert_eq!(
                ring.verify(
                    &token,
                    NOW,
                    Kind::Playback,
                    Some("198.51.100.1".parse().unwrap()),
                    None
                ),
                Err(Rejection::IpMismatch)
            );
            assert!(ring
                .verify(
                    &token,
                    NOW,
                    Kind::Playback,
                    Some("::ffff:203.0.113.7".parse().unwrap()),
                    None
                )
                .is_ok());
            assert_eq!(
                ring.verify(&token, NOW, Kind::Playback, ip(), Some("other/stream")),
                Err(Rejection::StreamNotAllowed)
            );
            let mut forged = token.clone();
            forged.pop();
            forged.push(if token.ends_with('A') { 'B' } else { 'A' });
            assert!(matches!(
                ring.verify(&forged, NOW, Kind::Playback, None, None),
                Err(Rejection::BadSignature | Rejection::Malformed)
            ));
        }
    }

    #[test]
    fn tickets_and_playback_tokens_are_not_interchangeable() {
        for (kid, ring) in rings() {
            let ticket = Claims {
                tkt: Some("42".into()),
                ..claims()
            };
            let signed = ring.sign(kid, &ticket).unwrap();
            assert_eq!(
                ring.verify(&signed, NOW, Kind::Playback, None, None),
                Err(Rejection::WrongKind)
            );
            assert_eq!(
                ring.verify(&signed, NOW, Kind::Ticket, None, None),
                Ok(ticket)
            );
            let playback = ring.sign(kid, &claims()).unwrap();
            assert_eq!(
                ring.verify(&playback, NOW, Kind::Ticket, None, None),
                Err(Rejection::WrongKind)
            );
        }
    }

    #[test]
    fn segment_tokens_serve_segments_only() {
        for (kid, ring) in rings() {
            let segment = Claims {
                seg: true,
                max_sessions: 0,
                ..claims()
            };
            let signed = ring.sign(kid, &segment).unwrap();
            for kind in [Kind::Playback, Kind::Ticket] {
                assert_eq!(
                    ring.verify(&signed, NOW, kind, None, None),
                    Err(Rejection::WrongKind)
                );
            }
            let on_a_segment = [Kind::Playback, Kind::Segment];
            assert_eq!(
                ring.verify_kinds(&signed, NOW, &on_a_segment, ip(), Some("conf/main")),
                Ok(segment)
            );
            let playback = ring.sign(kid, &claims()).unwrap();
            assert!(ring
                .verify_kinds(&playback, NOW, &on_a_segment, ip(), Some("conf/main"))
                .is_ok());
            let both = Claims {
                seg: true,
                tkt: Some("42".into()),
                ..claims()
            };
            assert_eq!(ring.sign(kid, &both).unwrap_err().field(), Some("seg"));
        }
    }

    #[test]
    fn oversized_tokens_and_claims_are_refused() {
        for (kid, ring) in rings() {
            let huge = format!("v1.{kid}.{}.AAAA", "A".repeat(MAX_TOKEN_LEN));
            assert_eq!(
                ring.verify(&huge, NOW, Kind::Playback, None, None),
                Err(Rejection::Malformed)
            );
            let fat = Claims {
                sub: "x".repeat(MAX_TOKEN_LEN),
                ..claims()
            };
            assert!(ring.sign(kid, &fat).is_err());
            let bad_glob = Claims {
                streams: vec!["".into()],
                ..claims()
            };
            assert!(ring.sign(kid, &bad_glob).is_err());
        }
    }

    #[test]
    fn playback_specs_become_checked_claims() {
        let hour = Duration::from_secs(3600);
        let day = Duration::from_secs(86400);
        let spec = PlaybackSpec {
            user_id: " viewer-1 ".into(),
            event: Some("conf-2026".into()),
            streams: vec!["conf/*".into()],
            ip: ip(),
            max_sessions: Some(1),
            ..Default::default()
        };
        let made = spec.claims(NOW, hour, day).unwrap();
        assert_eq!(made.jti.as_ref().map(String::len), Some(16));
        assert_ne!(made.jti, spec.claims(NOW, hour, day).unwrap().jti);
        assert_eq!(
            Claims {
                jti: None,
                ..made.clone()
            },
            claims(),
            "trimmed user id, default lifetime"
        );
        let field = |spec: PlaybackSpec| spec.claims(NOW, hour, day).unwrap_err().field();
        let long = PlaybackSpec {
            ttl_seconds: Some(86401),
            ..spec.clone()
        };
        assert_eq!(field(long), Some("ttl_seconds"));
        let zero = PlaybackSpec {
            ttl_seconds: Some(0),
            ..spec.clone()
        };
        assert_eq!(field(zero), Some("ttl_seconds"));
        let header_breaking = PlaybackSpec {
            user_id: "a\r\nX-Evil: 1".into(),
            ..spec.clone()
        };
        assert_eq!(field(header_breaking), Some("user_id"));
        let mut ring = KeyRing::new();
        assert_eq!(
            ring.mint(None, &made).unwrap_err().field(),
            Some("kid"),
            "no key yet"
        );
        ring.add_hmac("k", &[1u8; 32]).unwrap();
        ring.set_default_kid("k");
        let (token, kid) = ring.mint(None, &made).unwrap();
        assert_eq!(kid, "k");
        assert!(ring
            .verify(&token, NOW, Kind::Playback, ip(), Some("conf/a"))
            .is_ok());
    }

    #[test]
    fn codes_are_distinct() {
        let codes: std::collections::HashSet<_> = Rejection::ALL.iter().map(|r| r.code()).collect();
        assert_eq!(codes.len(), Rejection::ALL.len());
    }

    #[test]
    fn flipping_any_byte_is_refused() {
        for (kid, ring) in rings() {
            let token = ring.sign(kid, &claims()).unwrap();
            let mut checked = 0;
            for i in 0..token.len() {
                // Every one-bit change of every byte (a set top bit is not UTF-8, so not a &str).
                for bit in 0..7 {
                    let mut bytes = token.clone().into_bytes();
                    bytes[i] ^= 1 << bit;
                    let flipped = String::from_utf8(bytes).unwrap();
                    assert!(
                        ring.verify(&flipped, NOW, Kind::Playback, ip(), Some("conf/main"))
                            .is_err(),
                        "bit {bit} of byte {i} of {token}"
                    );
                    checked += 1;
                }
            }
            assert_eq!(checked, token.len() * 7);
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
            ring.verify(&in_flight, NOW, Kind::Playback, None, None)
                .is_ok(),
            "old tokens live on beside the new key"
        );
        assert!(ring.verify(&fresh, NOW, Kind::Playback, None, None).is_ok());
        assert!(ring.retire("old"));
        assert_eq!(
            ring.verify(&in_flight, NOW, Kind::Playback, None, None),
            Err(Rejection::UnknownKey)
        );
        assert!(ring.sign("old", &claims()).is_err());
        assert!(ring.verify(&fresh, NOW, Kind::Playback, None, None).is_ok());
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
        assert_eq!(
            edge.verify(&token, NOW, Kind::Playback, ip(), None),
            Ok(claims())
        );
        assert!(edge.sign("edge", &claims()).is_err());
        // The same id holding an HMAC key cannot be tricked into accepting it.
        let mut confused = KeyRing::new();
        confused.add_hmac("edge", &[9u8; 32]).unwrap();
        assert_eq!(
            confused.verify(&token, NOW, Kind::Playback, None, None),
            Err(Rejection::BadSignature)
        );
    }
}
