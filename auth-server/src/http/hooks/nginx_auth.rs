//! nginx's `auth_request` subrequest: `GET /hooks/nginx-auth`, for HLS (or any HTTP delivery)
//! served by nginx.
//!
//! nginx sends no query string and no body, only the client's headers; the operator adds the
//! original URI and the client address (see the README):
//!
//! - `X-Original-URI` (required): `$request_uri`; its `token` query parameter is the token.
//!   Players that cannot carry a query string into every segment URL send
//!   `Authorization: Bearer <token>` instead (nginx passes the client's headers through).
//! - `X-Real-IP` (required): `$remote_addr`. Never guessed from the connection, which is nginx's.
//! - `X-Stream-Name` (optional, only with `NGINX_AUTH_STREAM_HEADER=true`): the stream, when the
//!   URL layout is not one of nginx-rtmp's (below). nginx hands the player's own headers to the
//!   subrequest, so the header is trusted only when the operator says their config always sets
//!   it; otherwise its presence is refused rather than ignored, which shows a misconfiguration.
//!
//! The stream is derived from the path nginx will serve, not from the raw request line: nginx
//! decodes `%XX`, merges slashes and resolves dot segments, so the raw `$request_uri` can name
//! one file to us and another to nginx (`/hls/premium.m3u8#/free.m3u8`,
//! `/hls/conf-%2F..%2Fpremium.m3u8`). Paths are decoded and merged here as nginx does, and
//! anything whose meaning could differ (`#`, encoded or not, encoded `/` or `\`, dot segments)
//! is refused.
//!
//! Without `X-Stream-Name`, the stream is read from the URL the way nginx-rtmp names its files,
//! so that the playlist and every segment of one stream count as one session (one slot):
//! `/hls/cam1.m3u8`, `/hls/cam1-17.ts` and, with `hls_nested on`, `/hls/cam1/index.m3u8` and
//! `/hls/cam1/17.ts` are all stream `cam1`. Sessions have no id here, so one is (address,
//! stream, proto): a second player behind the same address shares the first one's slot.
//!
//! 204 allows (with `X-UserId`, which nginx can hand on with `auth_request_set`); 401 means no
//! token; 403 any refusal. nginx passes 401 and 403 to the client and turns anything else into
//! a 500 (so do the 400s for a missing header: that is a configuration error).
//!
//! With `SEGMENT_TOKEN_TTL` set, an allowed playlist (`.m3u8`) also carries `X-Segment-Token`: a
//! signed token for that viewer, stream and address, which nginx writes into the playlist's
//! segment URLs (README). The segments are then decided by signature alone, with no token read
//! and no session slot; only playlist answers pay for the signing. With
//! `SEGMENT_TOKEN_FORMAT=nginx_secure_link` it carries `X-Segment-Link` (`md5=..&expires=..`)
//! instead, and nginx's `secure_link` checks the segments with no subrequest at all
//! (docs/edge-tokens.md).

use std::sync::Arc;
use std::time::Instant;

use auth_core::{Action, DenyReason, RequestType};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION};
use hyper::http::HeaderMap;
use hyper::{Request, Response, StatusCode};

use super::{self as hook, parse_ip, query_value, HookRequest, Verdict};
use crate::app::App;
use crate::config::SegmentFormat;
use crate::http::ApiError;
use crate::http::Body;

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = header(headers, AUTHORIZATION.as_str())?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// The stream a URL path belongs to, by nginx-rtmp's HLS and DASH file names; `None` for a
/// path nginx-rtmp never writes. Only its files are accepted: playlists (`.m3u8`, `.mpd`), and
/// segments, keys and DASH init files (`.ts`, `.m4v`, `.m4a`, `.key`) named by number or
/// `init`. Anything else would let one token open a session per made-up name.
pub(crate) fn stream_from_path(path: &str) -> Option<&str> {
    let path = path.trim_end_matches('/');
    let (dir, file) = path.rsplit_once('/').unwrap_or(("", path));
    let (stem, extension) = file.rsplit_once('.')?;
    let numbered = |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    let nested = || dir.rsplit('/').next().unwrap_or_default();
    let stream = match extension {
        // `name.m3u8`, or nested `name/index.m3u8`.
        "m3u8" | "mpd" if stem == "index" => nested(),
        "m3u8" | "mpd" => stem,
        "ts" | "m4v" | "m4a" | "key" if numbered(stem) || stem == "init" => nested(),
        // `name-17.ts`, `name-init.m4v`: the part before the last dash.
        "ts" | "m4v" | "m4a" | "key" => match stem.rsplit_once('-') {
            Some((name, suffix)) if numbered(suffix) || suffix == "init" => name,
            _ => return None,
        },
        _ => return None,
    };
    // A file named `...x` or `..m3u8` would name the stream `..` or `.`: never a stream's name,
    // and a path segment everywhere else.
    (!matches!(stream, "" | "." | "..")).then_some(stream)
}

/// The path nginx serves for the original `path` (the part of `$request_uri` before `?`):
/// percent-decoded, slashes merged. Refuses what nginx could read otherwise than we do.
pub(crate) fn served_path(path: &str) -> Result<String, String> {
    let refused = |why: &str| Err(format!("refused original URI path: {why}"));
    if path.contains('#') {
        return refused("`#` in the path");
    }
    // Every segment request passes here: look at the escapes in place, without a lowered copy.
    let forbidden_escape = path.as_bytes().windows(3).any(|w| {
        w[0] == b'%'
            && [b"2f", b"5c", b"00", b"23"]
                .iter()
                .any(|e| w[1..].eq_ignore_ascii_case(&e[..]))
    });
    if forbidden_escape {
        return refused("an encoded `/`, `\\`, `#` or NUL");
    }
    let Ok(decoded) = percent_encoding::percent_decode_str(path).decode_utf8() else {
        return refused("not UTF-8 once decoded");
    };
    if decoded.contains('\\') {
        return refused("a `\\`");
    }
    let mut served = String::with_capacity(decoded.len());
    for segment in decoded.split('/').filter(|s| !s.is_empty()) {
        if segment == "." || segment == ".." {
            return refused("a `.` or `..` segment");
        }
        served.push('/');
        served.push_str(segment);
    }
    if decoded.ends_with('/') {
        served.push('/');
    }
    Ok(served)
}

/// A parsed subrequest: the request in the core's terms, and whether it is for a playlist.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub(crate) request: HookRequest,
    pub(crate) playlist: bool,
}

/// `trust_stream_header`: `NGINX_AUTH_STREAM_HEADER`.
pub(crate) fn parse(headers: &HeaderMap, trust_stream_header: bool) -> Result<Parsed, String> {
    let uri = header(headers, "x-original-uri").ok_or(
        "missing header X-Original-URI: add `proxy_set_header X-Original-URI $request_uri;`",
    )?;
    let address = header(headers, "x-real-ip")
        .ok_or("missing header X-Real-IP: add `proxy_set_header X-Real-IP $remote_addr;`")?;
    let ip =
        parse_ip(address).ok_or_else(|| format!("X-Real-IP is not an IP address: `{address}`"))?;
    let (raw_path, query) = uri.split_once('?').unwrap_or((uri, ""));
    let path = served_path(raw_path)?;
    let stream = match header(headers, "x-stream-name") {
        Some(name) if trust_stream_header => name.to_owned(),
        Some(_) => {
            return Err(
                "X-Stream-Name is ignored unless NGINX_AUTH_STREAM_HEADER=true (set it \
                        only when nginx always sets the header: players can send it too)"
                    .into(),
            )
        }
        None => stream_from_path(&path)
            .ok_or("the path is not a file nginx-rtmp's HLS or DASH output writes: see NGINX_AUTH_STREAM_HEADER")?
            .to_owned(),
    };
    let token = query_value(query, "token")
        .filter(|t| !t.is_empty())
        .or_else(|| bearer(headers));
    let playlist = path.ends_with(".m3u8");
    let manifest = playlist || path.ends_with(".mpd");
    Ok(Parsed {
        request: HookRequest {
            token,
            stream: hook::stream_name("stream", stream)?,
            ip,
            proto: "hls".to_owned(),
            request_type: RequestType::NewSession,
            session_id: None,
            action: Action::Play,
            // A manifest holds the viewer's session, so a segment token never opens one.
            segment: !manifest,
            source: "nginx-auth",
            media_session_id: None,
        },
        playlist,
    })
}

pub async fn hook(app: &Arc<App>, request: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let (request, playlist) = match parse(request.headers(), app.nginx_auth_stream_header) {
        Ok(parsed) => (Arc::new(parsed.request), parsed.playlist),
        Err(message) => return Response::from(ApiError::bad_request(&message, None)),
    };
    match hook::authorize(app, hook::Hook::NginxAuth, Arc::clone(&request), started).await {
        Verdict::Allowed(grant) => {
            let mut response = hook::empty(StatusCode::NO_CONTENT);
            if let Ok(user) = HeaderValue::from_str(&grant.user_id) {
                response.headers_mut().insert("x-userid", user);
            }
            if playlist && app.signing.segment_tokens() {
                let now = app.clock().now();
                let (name, value) = match app.signing.segment_format() {
                    SegmentFormat::Token => (
                        "x-segment-token",
                        app.signing.segment_token(
                            &grant.user_id,
                            &request.stream,
                            request.ip,
                            grant.signed.as_ref(),
                            now,
                        ),
                    ),
                    SegmentFormat::NginxSecureLink => (
                        "x-segment-link",
                        app.signing.segment_link(
                            &request.stream,
                            request.ip,
                            grant.signed.as_ref(),
                            now,
                        ),
                    ),
                };
                if let Some(Ok(mut value)) = value.map(HeaderValue::try_from) {
                    value.set_sensitive(true);
                    response.headers_mut().insert(name, value);
                }
            }
            response
        }
        Verdict::AllowedByFailMode(_) => hook::empty(StatusCode::NO_CONTENT),
        Verdict::Denied { denial, .. } => {
            let status = if denial.reason == DenyReason::TokenMissing {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::FORBIDDEN
            };
            hook::denial(status, &request, &denial)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_from_nginx_rtmp_file_names() {
        for (path, stream) in [
            ("/hls/cam1.m3u8", "cam1"),
            ("/hls/cam1-17.ts", "cam1"),
            ("/hls/cam-1.m3u8", "cam-1"),
            ("/hls/cam-1-17.ts", "cam-1"),
            ("/hls/cam1/index.m3u8", "cam1"),
            ("/hls/cam1/17.ts", "cam1"),
            ("/dash/cam1.mpd", "cam1"),
            ("/dash/cam1-init.m4v", "cam1"),
            ("/dash/cam1-123456.m4a", "cam1"),
            ("/hls/cam1_hi.m3u8", "cam1_hi"),
        ] {
            assert_eq!(stream_from_path(path), Some(stream), "{path}");
        }
        assert_eq!(stream_from_path("/"), None);
        // What nginx-rtmp never writes: made-up names would each open a session.
        for path in [
            "/hls/cam1",
            "/hls/cam1.jpg",
            "/hls/cam1.ts",
            "/hls/cam1-x.ts",
            "/hls/-17.ts",
            "/hls/index.html",
            "/hls/cam1/extra.ts",
        ] {
            assert_eq!(stream_from_path(path), None, "{path}");
        }
        assert_eq!(stream_from_path("/hls/cam1-3.key"), Some("cam1"));
    }

    /// Found by the `hook_nginx_auth` fuzz target: `/...]z` was stream `..`.
    #[test]
    fn no_file_name_makes_a_dot_stream() {
        for path in [
            "/...]z",
            "/hls/...m3u8",
            "/hls/..m3u8",
            "/hls/...ts",
            "/hls/..-17.ts",
            "/hls/.m3u8",
        ] {
            assert_eq!(stream_from_path(path), None, "{path}");
        }
        assert_eq!(stream_from_path("/hls/..cam.m3u8"), Some("..cam"));
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn token_from_the_query_then_a_bearer_header() {
        let p = parse(
            &headers(&[
                ("x-original-uri", "/hls/cam1.m3u8?a=1&token=q%2B1"),
                ("x-real-ip", "10.0.0.9"),
                ("authorization", "Bearer from-header"),
            ]),
            false,
        )
        .unwrap();
        let r = &p.request;
        assert_eq!(
            (r.token.as_deref(), r.stream.as_str(), p.playlist),
            (Some("q+1"), "cam1", true)
        );
        let p = parse(
            &headers(&[
                ("x-original-uri", "/hls/cam1-3.ts?v=x.m3u8"),
                ("x-real-ip", "10.0.0.9"),
                ("authorization", "bearer from-header"),
                ("x-stream-name", "live/cam1"),
            ]),
            true,
        )
        .unwrap();
        let r = &p.request;
        assert_eq!(
            (r.token.as_deref(), r.stream.as_str(), p.playlist),
            (Some("from-header"), "live/cam1", false),
            "a segment, whatever its query says"
        );
    }

    #[test]
    fn missing_headers_name_the_nginx_line_to_add() {
        let err = parse(&headers(&[("x-real-ip", "10.0.0.9")]), false).unwrap_err();
        assert!(err.contains("$request_uri"), "{err}");
        let err = parse(&headers(&[("x-original-uri", "/hls/a.m3u8")]), false).unwrap_err();
        assert!(err.contains("$remote_addr"), "{err}");
    }

    fn stream_of(uri: &str) -> Result<String, String> {
        parse(
            &headers(&[("x-original-uri", uri), ("x-real-ip", "10.0.0.9")]),
            false,
        )
        .map(|p| p.request.stream)
    }

    #[test]
    fn the_stream_is_read_from_the_path_nginx_serves() {
        // nginx decodes and merges slashes before it serves: so do we.
        assert_eq!(stream_of("/hls/prem%69um.m3u8?token=t").unwrap(), "premium");
        assert_eq!(stream_of("//hls//premium-3.ts").unwrap(), "premium");
        assert_eq!(stream_of("/hls/caf%C3%A9.m3u8").unwrap(), "café");
        // What nginx could read otherwise than we would is refused.
        for uri in [
            "/hls/premium.m3u8#/free/index.m3u8?token=t",
            "/hls/premium-17.ts#/free/17.ts",
            "/hls/conf-%2F..%2Fpremium.m3u8",
            "/hls/conf-%2f..%2fpremium.m3u8",
            "/hls/free/../premium.m3u8",
            "/hls/free/%2E%2E/premium.m3u8",
            "/hls/./premium.m3u8",
            "/hls/a%5C..%5Cpremium.m3u8",
            "/hls/a\\..\\premium.m3u8",
            "/hls/a%00.m3u8",
            "/hls/%FF.m3u8",
            // Found by the `nginx_uri` fuzz target: `%23` decoded to a `#` in the path.
            "/hls/premium.m3u8%23/free.m3u8",
        ] {
            let err = stream_of(uri).unwrap_err();
            assert!(err.contains("refused original URI path"), "{uri}: {err}");
        }
    }

    #[test]
    fn a_stream_name_header_counts_only_when_the_operator_trusts_it() {
        let sent = headers(&[
            ("x-original-uri", "/hls/premium.m3u8?token=t"),
            ("x-real-ip", "10.0.0.9"),
            ("x-stream-name", "free"),
        ]);
        let err = parse(&sent, false).unwrap_err();
        assert!(err.contains("NGINX_AUTH_STREAM_HEADER"), "{err}");
        assert_eq!(parse(&sent, true).unwrap().request.stream, "free");
    }
}
