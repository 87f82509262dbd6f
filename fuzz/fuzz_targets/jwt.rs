//! The JWT reader. The first byte picks the mode: the rest as a whole token; or as the claims
//! of a JWT with our header, signed with the ring's key; or, split at the first NUL, as a
//! header and claims signed with it (so that the fuzzer's bytes reach what the signature
//! guards).
#![no_main]

use auth_core::signed_token::{KeyRing, Kind, Rejection};
use auth_core::Timestamp;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use ring::hmac;

const SECRET: [u8; 32] = [9; 32];
const NOW: Timestamp = Timestamp::from_unix_seconds(1_800_000_000);
const HEADER: &[u8] = br#"{"alg":"HS256","kid":"k1","typ":"JWT"}"#;

fn signed(header: &[u8], payload: &[u8]) -> String {
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, &SECRET),
        signed.as_bytes(),
    );
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut ring = KeyRing::new();
    ring.add_hmac("k1", &SECRET).unwrap();
    let token = match mode % 3 {
        0 => match std::str::from_utf8(rest) {
            Ok(token) => token.to_owned(),
            Err(_) => return,
        },
        1 => signed(HEADER, rest),
        _ => {
            let at = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
            signed(&rest[..at], rest.get(at + 1..).unwrap_or_default())
        }
    };
    let read = ring.verify_signature(&token);
    if mode % 3 == 1 && token.len() <= auth_core::signed_token::MAX_TOKEN_LEN {
        assert!(
            !matches!(read, Err(Rejection::BadSignature | Rejection::UnknownKey)),
            "a genuine signature under our header is accepted: {read:?}"
        );
    }
    let _ = ring.verify_kinds(
        &token,
        NOW,
        &[Kind::Playback, Kind::Segment],
        Some([10, 0, 0, 1].into()),
        Some("s"),
    );
});
