//! Playback tokens as standard JWTs (RFC 7519, compact JWS), and the JWKS that publishes the keys
//! verifying them (RFC 7517), for edges that speak JWT and not our `v1.` format: MediaMTX
//! (`authMethod: jwt`, `authJWTJWKS`), Ant Media (`jwksURL`), any JWT library.
//!
//! A JWT carries the same claims as a `v1.` token (plus `iss`, `aud` and, for MediaMTX,
//! `mediamtx_permissions`), is signed by the same keys, and is verified by
//! [`KeyRing::verify`] with the same checks. The header names the key (`kid`, required) and the
//! algorithm (`alg`); the algorithm is still the key's, never the token's: a header whose `alg`
//! is not exactly the one of the key it names is refused before any signature is computed, so
//! neither `none` nor an HMAC "signed" with a published public key (the classic key confusion)
//! can pass. Header fields other than `alg`, `kid` and `typ` are refused (an embedded `jwk`,
//! a `jku` or `x5u` to fetch a key from, a `crit` we would have to understand).
//!
//! Verification works as for `v1.` tokens: stack buffers, the header (small, needed to find the
//! key) parsed first, then the signature checked, and only then the claims parsed.

use std::fmt::Write as _;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use super::{
    decode_into, validate_claims, Algorithm, Claims, KeyRing, Rejection, CLAIMS_BUF_LEN,
    TAG_BUF_LEN,
};
use crate::error::{Error, Result};

/// Longest header accepted (ours is about 50 bytes).
const HEADER_BUF_LEN: usize = 256 + 3;
/// How every JWT starts: base64url of `{"`.
const JWT_START: &str = "eyJ";

/// Whether `token` has a compact JWS's shape: a JSON header, exactly three dot-separated parts.
/// Stored token secrets of this shape are refused (see `token::validate_secret`), so the shape
/// alone sends a token to signature verification.
pub fn is_jwt(token: &str) -> bool {
    token.starts_with(JWT_START) && token.bytes().filter(|&b| b == b'.').count() == 2
}

/// A token's format, as a mint request names it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenFormat {
    /// `v1.<kid>.<claims>.<signature>`: ours, the shortest.
    #[default]
    V1,
    /// A compact JWS (JWT) with `kid` in its header.
    Jwt,
}

/// Extra claims a consumer of JWTs expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// MediaMTX's `authMethod: jwt`: `mediamtx_permissions`, one `read` per stream the token
    /// unlocks, so that MediaMTX decides with our JWKS alone.
    Mediamtx,
}

/// What a JWT carries beyond the [`Claims`].
#[derive(Debug, Clone, Copy, Default)]
pub struct JwtOptions<'a> {
    /// `iss`.
    pub issuer: Option<&'a str>,
    /// `aud`.
    pub audience: Option<&'a str>,
    pub profile: Option<Profile>,
}

/// A MediaMTX permission (`mediamtx_permissions` items).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MediamtxPermission {
    pub action: &'static str,
    /// A path name, `~regex`, or empty for every path (MediaMTX's own convention).
    pub path: String,
}

/// MediaMTX permissions for a playback token unlocking `streams`. Signed tokens are playback
/// tokens only (never stream keys), so every permission is `read`. Our `*` globs become
/// MediaMTX's `~` regular expressions, anchored; no stream means every path.
pub fn mediamtx_permissions(streams: &[String]) -> Vec<MediamtxPermission> {
    if streams.is_empty() {
        return vec![MediamtxPermission {
            action: "read",
            path: String::new(),
        }];
    }
    streams
        .iter()
        .map(|stream| MediamtxPermission {
            action: "read",
            path: if stream.contains('*') {
                glob_to_regex(stream)
            } else {
                stream.clone()
            },
        })
        .collect()
}

/// `conf/*` -> `~^conf/.*$` (every other character taken literally).
fn glob_to_regex(glob: &str) -> String {
    let mut regex = String::from("~^");
    for c in glob.chars() {
        match c {
            '*' => regex.push_str(".*"),
            c if c.is_ascii_alphanumeric() || c == '/' || c == '_' || c == '-' => regex.push(c),
            c => {
                let _ = write!(regex, "\\x{{{:x}}}", u32::from(c));
            }
        }
    }
    regex.push('$');
    regex
}

/// The JWS name of an algorithm.
pub fn jws_alg(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::Hs256 => "HS256",
        Algorithm::Ed25519 => "EdDSA",
        Algorithm::Es256 => "ES256",
    }
}

#[derive(Serialize)]
struct Payload<'a> {
    #[serde(flatten)]
    claims: &'a Claims,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mediamtx_permissions: Option<Vec<MediamtxPermission>>,
}

/// The header as read: borrowed from the stack buffer (a header with JSON escapes is not one we
/// made, and is refused as malformed).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Header<'a> {
    alg: &'a str,
    kid: &'a str,
    #[serde(default, rename = "typ")]
    _typ: Option<&'a str>,
}

/// The claims as read from a JWT: [`Claims`] plus what only JWT consumers use, which is skipped
/// without being stored (the signature already vouches for it). Unknown claims are refused, as
/// in `v1.` tokens.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadPayload {
    sub: String,
    #[serde(default)]
    evt: Option<String>,
    #[serde(default)]
    tkt: Option<String>,
    #[serde(default)]
    streams: Vec<String>,
    iat: i64,
    exp: i64,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    ip: Option<std::net::IpAddr>,
    #[serde(default)]
    max_sessions: u32,
    #[serde(default)]
    jti: Option<String>,
    #[serde(default)]
    grp: Option<String>,
    #[serde(default)]
    seg: bool,
    #[serde(default, rename = "iss")]
    _iss: Option<IgnoredAny>,
    #[serde(default, rename = "aud")]
    _aud: Option<IgnoredAny>,
    #[serde(default, rename = "mediamtx_permissions")]
    _mediamtx_permissions: Option<IgnoredAny>,
}

impl From<ReadPayload> for Claims {
    fn from(p: ReadPayload) -> Self {
        Claims {
            sub: p.sub,
            evt: p.evt,
            tkt: p.tkt,
            streams: p.streams,
            iat: p.iat,
            exp: p.exp,
            nbf: p.nbf,
            ip: p.ip,
            max_sessions: p.max_sessions,
            jti: p.jti,
            grp: p.grp,
            seg: p.seg,
        }
    }
}

/// A JWK (RFC 7517): a public key only, ever.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    pub kid: String,
    pub alg: String,
    #[serde(rename = "use")]
    pub use_: String,
}

/// A JWK Set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// The JWK of a public key of `algorithm`; `None` for HMAC (a shared secret is never published).
pub fn jwk(kid: &str, algorithm: Algorithm, public: &[u8]) -> Option<Jwk> {
    let (kty, crv, x, y) = match algorithm {
        Algorithm::Hs256 => return None,
        Algorithm::Ed25519 => ("OKP", "Ed25519", URL_SAFE_NO_PAD.encode(public), None),
        Algorithm::Es256 => {
            let point = public.strip_prefix(&[4u8])?;
            let (x, y) = point.split_at_checked(32)?;
            (
                "EC",
                "P-256",
                URL_SAFE_NO_PAD.encode(x),
                Some(URL_SAFE_NO_PAD.encode(y)),
            )
        }
    };
    Some(Jwk {
        kty: kty.into(),
        crv: crv.into(),
        x,
        y,
        kid: kid.into(),
        alg: jws_alg(algorithm).into(),
        use_: "sig".into(),
    })
}

impl KeyRing {
    /// The JWKS of this ring: the public keys of every asymmetric key that is not retired,
    /// sorted by id. HMAC keys never appear, nor any private part.
    pub fn jwks(&self) -> Jwks {
        let mut keys: Vec<Jwk> = self
            .keys
            .iter()
            .filter(|(_, entry)| !entry.retired)
            .filter_map(|(kid, entry)| {
                jwk(
                    kid,
                    entry.material.algorithm(),
                    entry.material.public_key()?,
                )
            })
            .collect();
        keys.sort_by(|a, b| a.kid.cmp(&b.kid));
        Jwks { keys }
    }

    /// Signs `claims` as a JWT with `kid`, or with the default key; returns the token and the
    /// key used (as [`KeyRing::mint`]).
    pub fn mint_jwt(
        &self,
        kid: Option<&str>,
        claims: &Claims,
        options: &JwtOptions<'_>,
    ) -> Result<(String, String)> {
        let kid = self.signing_kid(kid)?;
        let token = self
            .sign_jwt(kid, claims, options)
            .map_err(super::unknown_kid)?;
        Ok((token, kid.to_owned()))
    }

    /// Signs `claims` as a JWT with the key `kid`.
    pub fn sign_jwt(&self, kid: &str, claims: &Claims, options: &JwtOptions<'_>) -> Result<String> {
        let entry = self
            .keys
            .get(kid)
            .filter(|e| !e.retired && e.material.can_sign())
            .ok_or(Error::NotFound {
                what: "signing key",
            })?;
        validate_claims(claims)?;
        for (field, value) in [("iss", options.issuer), ("aud", options.audience)] {
            if value.is_some_and(str::is_empty) {
                return Err(Error::invalid(field, "must not be empty"));
            }
        }
        // The key id is checked to be plain characters: no escaping needed in the header.
        let header = format!(
            r#"{{"alg":"{}","typ":"JWT","kid":"{kid}"}}"#,
            jws_alg(entry.material.algorithm())
        );
        let payload = serde_json::to_vec(&Payload {
            claims,
            iss: options.issuer,
            aud: options.audience,
            mediamtx_permissions: options
                .profile
                .map(|Profile::Mediamtx| mediamtx_permissions(&claims.streams)),
        })
        .map_err(|e| Error::invalid("claims", e.to_string()))?;
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let tag = entry.material.sign(signed.as_bytes())?;
        super::within_max_len(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(tag)))
    }

    /// [`KeyRing::verify_signature`] for a JWT: header, key, algorithm, signature, then claims.
    pub(super) fn verify_jwt_signature(
        &self,
        token: &str,
    ) -> std::result::Result<Claims, Rejection> {
        let (signed, tag) = token.rsplit_once('.').ok_or(Rejection::Malformed)?;
        let (header, payload) = signed.split_once('.').ok_or(Rejection::Malformed)?;
        let mut header_buf = [0u8; HEADER_BUF_LEN];
        let header = decode_into(header, &mut header_buf)?;
        let header: Header<'_> =
            serde_json::from_slice(header).map_err(|_| Rejection::Malformed)?;
        let entry = self
            .keys
            .get(header.kid)
            .filter(|e| !e.retired)
            .ok_or(Rejection::UnknownKey)?;
        // The key decides the algorithm; a header claiming another one (`none`, `HS256` against
        // a public key, one curve for another) is refused before anything is computed.
        if header.alg != jws_alg(entry.material.algorithm()) {
            return Err(Rejection::BadSignature);
        }
        let mut tag_buf = [0u8; TAG_BUF_LEN];
        let tag = decode_into(tag, &mut tag_buf)?;
        if !entry.material.verifies(signed.as_bytes(), tag) {
            return Err(Rejection::BadSignature);
        }
        let mut payload_buf = [0u8; CLAIMS_BUF_LEN];
        let payload = decode_into(payload, &mut payload_buf)?;
        serde_json::from_slice::<ReadPayload>(payload)
            .map(Claims::from)
            .map_err(|_| Rejection::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::time::Duration;

    use ring::hmac;

    use super::*;
    use crate::clock::Timestamp;
    use crate::signed_token::{generate_ed25519, generate_es256, Kind};

    const NOW: Timestamp = Timestamp::from_unix_seconds(1_800_000_000);

    fn claims() -> Claims {
        Claims {
            evt: Some("conf-2026".into()),
            streams: vec!["conf/*".into()],
            ip: Some(ip()),
            max_sessions: 2,
            jti: Some("AAECAwQFBgcICQoL".into()),
            ..Claims::new("viewer-1", NOW, Duration::from_secs(3600))
        }
    }

    fn ip() -> IpAddr {
        "203.0.113.7".parse().unwrap()
    }

    /// One ring with a key of each algorithm.
    fn ring() -> KeyRing {
        let mut ring = KeyRing::new();
        ring.add_hmac("mac", &[7u8; 32]).unwrap();
        ring.add_ed25519_signer("ed", &generate_ed25519().unwrap())
            .unwrap();
        ring.add_es256_signer("ec", &generate_es256().unwrap())
            .unwrap();
        ring
    }

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn parts(token: &str) -> (serde_json::Value, serde_json::Value, String) {
        let mut it = token.split('.');
        let header = URL_SAFE_NO_PAD.decode(it.next().unwrap()).unwrap();
        let payload = URL_SAFE_NO_PAD.decode(it.next().unwrap()).unwrap();
        (
            serde_json::from_slice(&header).unwrap(),
            serde_json::from_slice(&payload).unwrap(),
            it.next().unwrap().to_owned(),
        )
    }

    fn verify(ring: &KeyRing, token: &str) -> std::result::Result<Claims, Rejection> {
        ring.verify(token, NOW, Kind::Playback, Some(ip()), Some("conf/main"))
    }

    #[test]
    fn jwts_of_every_key_verify_like_v1_tokens() {
        let ring = ring();
        let options = JwtOptions {
            issuer: Some("https://auth.example"),
            audience: Some("mediamtx"),
            profile: Some(Profile::Mediamtx),
        };
        for (kid, alg) in [("mac", "HS256"), ("ed", "EdDSA"), ("ec", "ES256")] {
            let token = ring.sign_jwt(kid, &claims(), &options).unwrap();
            assert!(is_jwt(&token) && super::super::is_signed(&token), "{token}");
            let (header, payload, _) = parts(&token);
            assert_eq!(
                header,
                serde_json::json!({"alg": alg, "typ": "JWT", "kid": kid})
            );
            assert_eq!(payload["iss"], "https://auth.example");
            assert_eq!(payload["aud"], "mediamtx");
            assert_eq!(payload["sub"], "viewer-1");
            assert_eq!(payload["max_sessions"], 2);
            assert_eq!(
                payload["mediamtx_permissions"],
                serde_json::json!([{"action": "read", "path": "~^conf/.*$"}])
            );
            assert_eq!(verify(&ring, &token), Ok(claims()), "{kid}");
            assert_eq!(
                ring.verify(&token, NOW, Kind::Playback, Some(ip()), Some("news")),
                Err(Rejection::StreamNotAllowed)
            );
            let late = NOW.saturating_add(Duration::from_secs(3600 + 31));
            assert_eq!(
                ring.verify(&token, late, Kind::Playback, None, None),
                Err(Rejection::Expired)
            );
        }
    }

    #[test]
    fn permissions_for_mediamtx() {
        assert_eq!(
            mediamtx_permissions(&[]),
            vec![MediamtxPermission {
                action: "read",
                path: String::new()
            }]
        );
        let paths: Vec<String> = mediamtx_permissions(&["cam1".into(), "a.b/*".into()])
            .into_iter()
            .map(|p| p.path)
            .collect();
        assert_eq!(paths, ["cam1", "~^a\\x{2e}b/.*$"]);
    }

    #[test]
    fn the_jwks_holds_public_keys_of_active_asymmetric_keys_only() {
        let mut ring = ring();
        ring.add_es256_signer("ec-old", &generate_es256().unwrap())
            .unwrap();
        ring.retire("ec-old");
        let jwks = ring.jwks();
        let kids: Vec<&str> = jwks.keys.iter().map(|k| k.kid.as_str()).collect();
        assert_eq!(kids, ["ec", "ed"]);
        let ec = &jwks.keys[0];
        assert_eq!(
            (ec.kty.as_str(), ec.crv.as_str(), ec.alg.as_str()),
            ("EC", "P-256", "ES256")
        );
        assert_eq!(URL_SAFE_NO_PAD.decode(&ec.x).unwrap().len(), 32);
        assert_eq!(
            URL_SAFE_NO_PAD
                .decode(ec.y.as_ref().unwrap())
                .unwrap()
                .len(),
            32
        );
        let ed = &jwks.keys[1];
        assert_eq!(
            (
                ed.kty.as_str(),
                ed.crv.as_str(),
                ed.alg.as_str(),
                ed.y.as_ref()
            ),
            ("OKP", "Ed25519", "EdDSA", None)
        );
        let text = serde_json::to_string(&jwks).unwrap();
        assert!(text.contains(r#""use":"sig""#), "{text}");
        assert!(!text.contains("\"d\""), "never a private part: {text}");

        // A verify-only ring built from the JWKS verifies what the full ring signs.
        let mut edge = KeyRing::new();
        for key in &jwks.keys {
            let x = URL_SAFE_NO_PAD.decode(&key.x).unwrap();
            match key.alg.as_str() {
                "ES256" => {
                    let mut point = vec![4u8];
                    point.extend(x);
                    point.extend(URL_SAFE_NO_PAD.decode(key.y.as_ref().unwrap()).unwrap());
                    edge.add_es256_public(&key.kid, &point).unwrap();
                }
                _ => edge.add_ed25519_public(&key.kid, &x).unwrap(),
            }
        }
        for kid in ["ec", "ed"] {
            let token = ring
                .sign_jwt(kid, &claims(), &JwtOptions::default())
                .unwrap();
            assert_eq!(verify(&edge, &token), Ok(claims()));
            let v1 = ring.sign(kid, &claims()).unwrap();
            assert_eq!(verify(&edge, &v1), Ok(claims()));
        }
        assert!(edge
            .sign_jwt("ec", &claims(), &JwtOptions::default())
            .is_err());
    }

    /// A token of our own making with any header and payload, "signed" by `sign`.
    fn forge(header: &str, payload: &Claims, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
        let signed = format!(
            "{}.{}",
            b64(header.as_bytes()),
            b64(&serde_json::to_vec(payload).unwrap())
        );
        let tag = sign(signed.as_bytes());
        format!("{signed}.{}", b64(&tag))
    }

    #[test]
    fn alg_none_is_refused() {
        let ring = ring();
        for kid in ["mac", "ed", "ec"] {
            for alg in ["none", "None", "NONE", ""] {
                let header = format!(r#"{{"alg":"{alg}","typ":"JWT","kid":"{kid}"}}"#);
                let token = forge(&header, &claims(), |_| Vec::new());
                assert!(
                    matches!(
                        verify(&ring, &token),
                        Err(Rejection::BadSignature | Rejection::Malformed)
                    ),
                    "{alg} with {kid}"
                );
            }
        }
    }

    #[test]
    fn hmac_with_the_public_key_is_refused() {
        // The classic confusion: HS256 "signed" with the published public key as the secret.
        let ring = ring();
        for kid in ["ed", "ec"] {
            let (_, public) = ring.public_key(kid).unwrap();
            let key = hmac::Key::new(hmac::HMAC_SHA256, public);
            let header = format!(r#"{{"alg":"HS256","typ":"JWT","kid":"{kid}"}}"#);
            let token = forge(&header, &claims(), |m| {
                hmac::sign(&key, m).as_ref().to_vec()
            });
            assert_eq!(verify(&ring, &token), Err(Rejection::BadSignature), "{kid}");
            // And the JWK form of the key as the secret, as some libraries would use it.
            let jwk = serde_json::to_vec(&ring.jwks().keys).unwrap();
            let key = hmac::Key::new(hmac::HMAC_SHA256, &jwk);
            let token = forge(&header, &claims(), |m| {
                hmac::sign(&key, m).as_ref().to_vec()
            });
            assert_eq!(verify(&ring, &token), Err(Rejection::BadSignature), "{kid}");
        }
    }

    #[test]
    fn an_alg_that_is_not_the_keys_is_refused() {
        let ring = ring();
        // A genuine signature of one key under a header naming another algorithm.
        for (kid, lie) in [
            ("ec", "EdDSA"),
            ("ed", "ES256"),
            ("mac", "ES256"),
            ("ec", "ES384"),
            ("ec", "es256"),
        ] {
            let header = format!(r#"{{"alg":"{lie}","typ":"JWT","kid":"{kid}"}}"#);
            let signer = &ring.keys[kid].material;
            let token = forge(&header, &claims(), |m| signer.sign(m).unwrap());
            assert_eq!(
                verify(&ring, &token),
                Err(Rejection::BadSignature),
                "{kid} {lie}"
            );
        }
    }

    #[test]
    fn headers_we_do_not_make_are_refused() {
        let ring = ring();
        let signer = &ring.keys["ec"].material;
        let (_, public) = ring.public_key("ec").unwrap();
        let jwk = serde_json::to_string(&jwk("ec", Algorithm::Es256, public).unwrap()).unwrap();
        for header in [
            // An embedded key, a key URL, a critical extension: never trusted, never fetched.
            format!(r#"{{"alg":"ES256","kid":"ec","jwk":{jwk}}}"#),
            r#"{"alg":"ES256","kid":"ec","jku":"https://evil.example/jwks.json"}"#.to_owned(),
            r#"{"alg":"ES256","kid":"ec","x5u":"https://evil.example/cert.pem"}"#.to_owned(),
            r#"{"alg":"ES256","kid":"ec","crit":["exp"],"exp":1}"#.to_owned(),
            // No key id, an escaped one, a duplicate alg.
            r#"{"alg":"ES256"}"#.to_owned(),
            r#"{"alg":"ES256","kid":"e\u0063"}"#.to_owned(),
            r#"{"alg":"none","alg":"ES256","kid":"ec"}"#.to_owned(),
        ] {
            let token = forge(&header, &claims(), |m| signer.sign(m).unwrap());
            assert_eq!(verify(&ring, &token), Err(Rejection::Malformed), "{header}");
        }
        let header = r#"{"alg":"ES256","kid":"nope"}"#;
        let token = forge(header, &claims(), |m| signer.sign(m).unwrap());
        assert_eq!(verify(&ring, &token), Err(Rejection::UnknownKey));
    }

    #[test]
    fn stripped_swapped_and_retired_signatures_are_refused() {
        let mut ring = ring();
        for kid in ["mac", "ed", "ec"] {
            let token = ring
                .sign_jwt(kid, &claims(), &JwtOptions::default())
                .unwrap();
            let (signed, _) = token.rsplit_once('.').unwrap();
            assert!(verify(&ring, &format!("{signed}.")).is_err(), "stripped");
            // The claims of another token under this one's signature.
            let other = ring
                .sign_jwt(
                    kid,
                    &Claims {
                        sub: "other".into(),
                        ..claims()
                    },
                    &JwtOptions::default(),
                )
                .unwrap();
            let (_, tag) = token.rsplit_once('.').unwrap();
            let (other_signed, _) = other.rsplit_once('.').unwrap();
            assert_eq!(
                verify(&ring, &format!("{other_signed}.{tag}")),
                Err(Rejection::BadSignature)
            );
            // Unknown claims are refused too, even when genuinely signed.
            let mut extra = serde_json::to_value(claims()).unwrap();
            extra["role"] = "admin".into();
            let header = format!(
                r#"{{"alg":"{}","kid":"{kid}"}}"#,
                jws_alg(ring.keys[kid].material.algorithm())
            );
            let signed = format!(
                "{}.{}",
                b64(header.as_bytes()),
                b64(extra.to_string().as_bytes())
            );
            let tag = ring.keys[kid].material.sign(signed.as_bytes()).unwrap();
            assert_eq!(
                verify(&ring, &format!("{signed}.{}", b64(&tag))),
                Err(Rejection::Malformed)
            );
        }
        let token = ring
            .sign_jwt("ec", &claims(), &JwtOptions::default())
            .unwrap();
        ring.retire("ec");
        assert_eq!(verify(&ring, &token), Err(Rejection::UnknownKey));
        assert!(ring
            .sign_jwt("ec", &claims(), &JwtOptions::default())
            .is_err());
    }

    #[test]
    fn a_high_s_twin_of_an_es256_signature_is_refused() {
        let ring = ring();
        let token = ring
            .sign_jwt("ec", &claims(), &JwtOptions::default())
            .unwrap();
        let (signed, tag) = token.rsplit_once('.').unwrap();
        let mut sig = URL_SAFE_NO_PAD.decode(tag).unwrap();
        assert!(super::super::is_low_s(&sig));
        // n - s: valid ECDSA, but a second spelling of the same token.
        let mut borrow = 0u16;
        for i in (32..64).rev() {
            let diff = u16::from(super::super::P256_ORDER[i - 32])
                .wrapping_sub(u16::from(sig[i]))
                .wrapping_sub(borrow);
            sig[i] = (diff & 0xff) as u8;
            borrow = (diff >> 8) & 1;
        }
        assert!(!super::super::is_low_s(&sig));
        let (_, public) = ring.public_key("ec").unwrap();
        assert!(
            ring::signature::UnparsedPublicKey::new(
                &ring::signature::ECDSA_P256_SHA256_FIXED,
                public
            )
            .verify(signed.as_bytes(), &sig)
            .is_ok(),
            "the twin is valid ECDSA"
        );
        let twin = format!("{signed}.{}", b64(&sig));
        assert_eq!(verify(&ring, &twin), Err(Rejection::BadSignature));
        // Normalizing gives the original back.
        super::super::low_s(&mut sig);
        assert_eq!(format!("{signed}.{}", b64(&sig)), token);
    }

    #[test]
    fn oversized_headers_and_tokens_are_malformed() {
        let ring = ring();
        let signer = &ring.keys["ec"].material;
        let header = format!(
            r#"{{"alg":"ES256","kid":"ec","typ":"{}"}}"#,
            "J".repeat(300)
        );
        let token = forge(&header, &claims(), |m| signer.sign(m).unwrap());
        assert_eq!(verify(&ring, &token), Err(Rejection::Malformed));
        let huge = format!(
            "eyJ.{}.AAAA",
            "A".repeat(crate::signed_token::MAX_TOKEN_LEN)
        );
        assert_eq!(verify(&ring, &huge), Err(Rejection::Malformed));
        assert!(!is_jwt("eyJhbGciOi.only-two-parts"));
        assert!(!is_jwt("v1.k.c.s"));
    }
}
