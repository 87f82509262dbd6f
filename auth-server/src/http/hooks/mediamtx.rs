//! MediaMTX's external HTTP authentication (`authMethod: http`): `POST /hooks/mediamtx` with
//! its JSON body (`user`, `password`, `token`, `ip`, `action`, `path`, `protocol`, `id`,
//! `query`, ...). Any 2xx allows; anything else denies.
//!
//! The token is the body's `token` (MediaMTX fills it from a Bearer header or the `token` query
//! parameter), else the `password` (RTMP/RTSP clients put it in the URL's credentials), else the
//! `token` parameter of `query` (older versions send no `token` field). `publish` needs a token
//! allowed to publish; `read` and `playback` are plays. `api`, `metrics` and `pprof` are refused:
//! this hook decides about streams; exclude those actions with `authHTTPExclude`.
//!
//! MediaMTX sends no "done" call to this URL, so sessions end when their lease runs out; a
//! connection's `id` keeps its re-authentications (if any) on one session.

use std::sync::Arc;
use std::time::Instant;

use auth_core::{Action, RequestType};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};

use super::{self as hook, parse_ip, query_value, HookRequest, Verdict};
use crate::app::App;
use crate::http::ApiError;
use crate::http::{read_body, Body};

/// What the body asks for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ask {
    Stream(HookRequest),
    /// An action on MediaMTX itself (`api`, `metrics`, `pprof`), not on a stream.
    NotAStream(String),
}

pub(crate) fn parse(body: &[u8]) -> Result<Ask, String> {
    let mut object = hook::json_object(body)?;
    let mut take = |key: &str| object.remove(key).and_then(hook::loose_text);
    let action = match take("action")
        .ok_or("missing required field `action`")?
        .as_str()
    {
        "publish" => Action::Publish,
        "read" | "playback" => Action::Play,
        other => return Ok(Ask::NotAStream(other.to_owned())),
    };
    let ip_text = take("ip").ok_or("missing required field `ip`")?;
    let ip = parse_ip(&ip_text).ok_or_else(|| format!("`ip` is not an IP address: `{ip_text}`"))?;
    let path = take("path")
        .filter(|p| !p.is_empty())
        .ok_or("missing required field `path`")?;
    let query = take("query").unwrap_or_default();
    let token = take("token")
        .filter(|t| !t.is_empty())
        .or_else(|| take("password").filter(|p| !p.is_empty()))
        .or_else(|| query_value(&query, "token"));
    let proto = take("protocol").unwrap_or_default();
    let raw_id = take("id").filter(|id| !id.is_empty());
    let session_id = raw_id.as_ref().map(|id| format!("mediamtx:{id}"));
    Ok(Ask::Stream(HookRequest {
        token,
        stream: hook::stream_name("path", path)?,
        ip,
        proto,
        request_type: RequestType::NewSession,
        session_id,
        action,
        segment: false,
        source: "mediamtx",
        media_session_id: raw_id,
    }))
}

pub async fn hook(app: &Arc<App>, request: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let body = match read_body(request).await {
        Ok((_, body)) => body,
        Err(err) => return err.into(),
    };
    let request = match parse(&body) {
        Ok(Ask::Stream(request)) => Arc::new(request),
        Ok(Ask::NotAStream(action)) => {
            return Response::from(ApiError::new(
                StatusCode::FORBIDDEN,
                "action_not_allowed",
                format!(
                    "`{action}` is not a stream action: exclude it with authHTTPExclude in mediamtx.yml"
                ),
                Some("action"),
            ))
        }
        Err(message) => return Response::from(ApiError::bad_request(&message, None)),
    };
    match hook::authorize(app, hook::Hook::MediaMtx, Arc::clone(&request), started).await {
        Verdict::Allowed(_) | Verdict::AllowedByFailMode(_) => hook::empty(StatusCode::OK),
        // 401 would make RTSP clients retry with credentials they do not have; 403 is final.
        Verdict::Denied { denial, .. } => hook::denial(StatusCode::FORBIDDEN, &request, &denial),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(body: &str) -> HookRequest {
        match parse(body.as_bytes()).unwrap() {
            Ask::Stream(request) => request,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_documented_body() {
        let r = stream(
            r#"{"user":"","password":"","token":"tok-123456","ip":"10.0.0.7","action":"read",
                "path":"cam1","protocol":"hls","id":null,"query":"token=tok-123456","userAgent":"x"}"#,
        );
        assert_eq!(r.token.as_deref(), Some("tok-123456"));
        assert_eq!((r.stream.as_str(), r.proto.as_str()), ("cam1", "hls"));
        assert_eq!(r.action, Action::Play);
        assert_eq!(r.session_id, None);
    }

    #[test]
    fn token_falls_back_to_password_then_query() {
        let r = stream(
            r#"{"user":"any","password":"pw-token-1","ip":"10.0.0.7","action":"publish",
                "path":"cam1","protocol":"rtmp","id":"6b2c","query":"token=q"}"#,
        );
        assert_eq!(r.token.as_deref(), Some("pw-token-1"));
        assert_eq!(r.action, Action::Publish);
        assert_eq!(r.session_id.as_deref(), Some("mediamtx:6b2c"));
        let r = stream(
            r#"{"ip":"10.0.0.7","action":"playback","path":"cam1","protocol":"rtsp","query":"a=1&token=q-token"}"#,
        );
        assert_eq!(r.token.as_deref(), Some("q-token"));
    }

    #[test]
    fn server_actions_are_not_streams_and_bad_bodies_say_why() {
        assert_eq!(
            parse(br#"{"action":"api","ip":"1.2.3.4"}"#).unwrap(),
            Ask::NotAStream("api".into())
        );
        assert!(parse(b"[]").unwrap_err().contains("JSON object"));
        assert!(parse(br#"{"action":"read","ip":"1.2.3.4"}"#)
            .unwrap_err()
            .contains("`path`"));
    }
}
