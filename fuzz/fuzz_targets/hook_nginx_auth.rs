//! `/hooks/nginx-auth`: nginx's `auth_request` subrequest headers. The first byte says whether
//! `X-Stream-Name` is trusted; the rest is split at newlines into X-Original-URI, X-Real-IP,
//! Authorization and X-Stream-Name.
#![no_main]

use auth_server::fuzzing::nginx_auth;
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 4] = [
    "x-original-uri",
    "x-real-ip",
    "authorization",
    "x-stream-name",
];

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let trust_stream_header = flags & 1 == 1;
    let headers: Vec<(&str, &[u8])> = NAMES
        .iter()
        .copied()
        .zip(rest.split(|&b| b == b'\n'))
        .collect();
    // Present as the server reads headers: visible ASCII, not blank.
    let stream_header = headers.iter().any(|(name, value)| {
        *name == "x-stream-name"
            && value
                .iter()
                .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b))
            && !value.trim_ascii().is_empty()
    });
    if let Ok((request, playlist)) = nginx_auth(&headers, trust_stream_header) {
        assert!(
            !request.stream.is_empty(),
            "an admitted request names a stream"
        );
        assert!(
            trust_stream_header || !stream_header,
            "an untrusted X-Stream-Name is refused"
        );
        if !stream_header {
            // Named from the path nginx serves: one segment of it, never a way out of it.
            assert!(!request.stream.contains('/'), "{:?}", request.stream);
            assert!(request.stream != "." && request.stream != "..");
        }
        assert!(
            !(playlist && request.segment),
            "a playlist is never a segment"
        );
    }
});
