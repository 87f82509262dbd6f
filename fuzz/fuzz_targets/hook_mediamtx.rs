//! `/hooks/mediamtx`: MediaMTX's JSON authentication body.
#![no_main]

use auth_server::fuzzing::mediamtx;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    if let Ok(Some(request)) = mediamtx(body) {
        assert!(!request.stream.is_empty(), "a request names a stream");
        assert_eq!(request.source, "mediamtx");
        assert!(
            request.token.as_deref() != Some(""),
            "an empty token is no token"
        );
    }
});
