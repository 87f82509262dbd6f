//! The parsers of outside input, each reachable from raw bytes, for the fuzz targets in `fuzz/`
//! (docs/testing.md#fuzzing). Not an API: nothing else may depend on it.
//!
//! Each function is the same code the server runs on a request, stopped before any store or
//! network call, so that a fuzz target explores parsing alone at full speed.

use auth_core::Action;
use hyper::header::{HeaderName, HeaderValue};
use hyper::http::HeaderMap;

use crate::http::hooks::{flussonic, mediamtx, nginx_auth, nginx_rtmp, srs, HookRequest};

/// Where `/auth` found its fields.
#[derive(Debug, Clone, Copy)]
pub enum AuthInput {
    /// `GET /auth?...`, or a form body.
    Form,
    /// A JSON body.
    Json,
}

/// `/auth` (play) or `/auth/publish`.
pub fn flussonic(input: AuthInput, bytes: &[u8], action: Action) -> Result<HookRequest, String> {
    match input {
        AuthInput::Form => flussonic::parse_form(bytes, action),
        AuthInput::Json => flussonic::parse_json(bytes, action),
    }
}

/// `/hooks/nginx-rtmp`: the request it leads to, if any (connect and ignored calls lead to none).
pub fn nginx_rtmp(form: &[u8]) -> Result<Option<HookRequest>, String> {
    Ok(match nginx_rtmp::parse(form)? {
        nginx_rtmp::Call::Authorize(request) | nginx_rtmp::Call::Done(request) => Some(request),
        nginx_rtmp::Call::Connect | nginx_rtmp::Call::Ignored => None,
    })
}

/// `/hooks/nginx-auth` with these headers (those that are not valid header values are left
/// out, as hyper would refuse the request). Returns the request and whether it is a playlist.
pub fn nginx_auth(
    headers: &[(&str, &[u8])],
    trust_stream_header: bool,
) -> Result<(HookRequest, bool), String> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) {
            map.append(name, value);
        }
    }
    nginx_auth::parse(&map, trust_stream_header).map(|parsed| (parsed.request, parsed.playlist))
}

/// The path nginx serves for a raw `$request_uri` path, and the stream it names.
pub fn nginx_uri(path: &str) -> Result<(String, Option<String>), String> {
    let served = nginx_auth::served_path(path)?;
    let stream = nginx_auth::stream_from_path(&served).map(str::to_owned);
    Ok((served, stream))
}

/// `/hooks/mediamtx`: the request, or `None` for an action on MediaMTX itself.
pub fn mediamtx(body: &[u8]) -> Result<Option<HookRequest>, String> {
    Ok(match mediamtx::parse(body)? {
        mediamtx::Ask::Stream(request) => Some(request),
        mediamtx::Ask::NotAStream(_) => None,
    })
}

/// `/hooks/srs`: the request, or `None` for a call with nothing to decide.
pub fn srs(body: &[u8]) -> Result<Option<HookRequest>, String> {
    Ok(match srs::parse(body)? {
        srs::Ask::Authorize(request) | srs::Ask::Done(request) => Some(request),
        srs::Ask::Nothing => None,
    })
}
