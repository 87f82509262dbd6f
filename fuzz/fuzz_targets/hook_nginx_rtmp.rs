//! `/hooks/nginx-rtmp`: nginx-rtmp's notification form (POST body or GET query).
#![no_main]

use auth_server::fuzzing::nginx_rtmp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|form: &[u8]| {
    if let Ok(Some(request)) = nginx_rtmp(form) {
        assert!(!request.stream.is_empty(), "a session names a stream");
        assert_eq!(request.source, "nginx-rtmp");
        assert!(request.session_id.is_some(), "every RTMP session has an id");
    }
});
