//! The `v1.` signed-token reader. The first byte picks the mode: the rest as a whole token, or
//! the rest as the claims of a token signed with the ring's key (so that the fuzzer's bytes
//! reach the claims reader behind the signature check).
#![no_main]

use auth_core::signed_token::{KeyRing, Kind, Rejection};
use auth_core::Timestamp;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use ring::hmac;

const SECRET: [u8; 32] = [7; 32];
const NOW: Timestamp = Timestamp::from_unix_seconds(1_800_000_000);

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut ring = KeyRing::new();
    ring.add_hmac("k1", &SECRET).unwrap();
    let token = if mode & 1 == 0 {
        let Ok(token) = std::str::from_utf8(rest) else {
            return;
        };
        token.to_owned()
    } else {
        let signed = format!("v1.k1.{}", URL_SAFE_NO_PAD.encode(rest));
        let tag = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, &SECRET),
            signed.as_bytes(),
        );
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    };
    let read = ring.verify_signature(&token);
    if mode & 1 == 1 {
        assert!(
            !matches!(read, Err(Rejection::BadSignature | Rejection::UnknownKey)),
            "a genuine signature is accepted: {read:?}"
        );
    }
    let _ = ring.verify(
        &token,
        NOW,
        Kind::Playback,
        Some([10, 0, 0, 1].into()),
        Some("s"),
    );
    if let Ok(claims) = read {
        // Whatever was accepted signs and reads back the same.
        if let Ok(again) = ring.sign("k1", &claims) {
            assert_eq!(ring.verify_signature(&again), Ok(claims));
        }
    }
});
