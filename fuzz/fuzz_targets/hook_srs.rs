//! `/hooks/srs`: SRS's JSON callback body.
#![no_main]

use auth_server::fuzzing::srs;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    if let Ok(Some(request)) = srs(body) {
        assert!(!request.stream.is_empty(), "a request names a stream");
        assert_eq!(request.source, "srs");
        assert!(request.session_id.is_some(), "every SRS session has an id");
    }
});
