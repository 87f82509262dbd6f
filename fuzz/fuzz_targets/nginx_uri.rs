//! The path nginx serves for a raw `$request_uri` path (percent-decoding, merged slashes, dot
//! segments refused) and the stream named by it.
#![no_main]

use auth_server::fuzzing::nginx_uri;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(path) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok((served, stream)) = nginx_uri(path) {
        assert!(!served.contains("//"), "slashes are merged: {served:?}");
        assert!(
            !served.contains('#') && !served.contains('\\'),
            "{served:?}"
        );
        assert!(
            served
                .split('/')
                .all(|segment| segment != "." && segment != ".."),
            "no dot segment survives: {served:?}"
        );
        if let Some(stream) = stream {
            assert!(!stream.is_empty() && !stream.contains('/'), "{stream:?}");
        }
    }
});
