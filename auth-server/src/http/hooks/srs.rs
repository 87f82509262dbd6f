//! SRS HTTP callbacks (`http_hooks`): `POST /hooks/srs` with SRS's JSON body, for every hook.
//!
//! | `action` | what it does here |
//! |---|---|
//! | `on_connect` | allowed: the stream is not known yet |
//! | `on_publish`, `on_play` | a new session: the token (from `param`, `?token=...`) must allow that action and find a free slot |
//! | `on_unpublish`, `on_stop` | the session ends at once, freeing its slot |
//! | `on_close`, others (`on_dvr`, `on_hls`...) | nothing to decide: allowed |
//!
//! SRS allows when the answer is 200 with a body of `0` or a JSON object whose `code` is 0; we
//! answer `{"code":0}`. A refusal is a 403 whose JSON body carries a non-zero `code` as well as
//! the stable `reason`, so it is a refusal under either reading. `client_id` is a number in
//! SRS 3 and a string since SRS 4: both are read.

use std::sync::Arc;
use std::time::Instant;

use auth_core::{Action, RequestType};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use serde::Serialize;

use super::{self as hook, parse_ip, query_value, HookRequest, Verdict};
use crate::app::App;
use crate::http::ApiError;
use crate::http::{json, read_body, Body};

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ask {
    Authorize(HookRequest),
    Done(HookRequest),
    Nothing,
}

pub(crate) fn parse(body: &[u8]) -> Result<Ask, String> {
    let mut object = hook::json_object(body)?;
    let mut take = |key: &str| object.remove(key).and_then(hook::loose_text);
    let (action, done) = match take("action")
        .ok_or("missing required field `action`")?
        .as_str()
    {
        "on_publish" => (Action::Publish, false),
        "on_play" => (Action::Play, false),
        "on_unpublish" => (Action::Publish, true),
        "on_stop" => (Action::Play, true),
        _ => return Ok(Ask::Nothing),
    };
    let ip_text = take("ip").ok_or("missing required field `ip`")?;
    let ip = parse_ip(&ip_text).ok_or_else(|| format!("`ip` is not an IP address: `{ip_text}`"))?;
    let stream = take("stream")
        .filter(|s| !s.is_empty())
        .ok_or("missing required field `stream`")?;
    let client_id = take("client_id").ok_or("missing required field `client_id`")?;
    let server_id = take("server_id").unwrap_or_default();
    let vhost = take("vhost").unwrap_or_default();
    let app = take("app").unwrap_or_default();
    let token = take("param")
        .and_then(|param| query_value(&param, "token"))
        .filter(|t| !t.is_empty())
        .or_else(|| {
            take("tcUrl").and_then(|url| {
                url.split_once('?')
                    .and_then(|(_, q)| query_value(q, "token"))
            })
        });
    let request = HookRequest {
        token,
        stream: hook::stream_name("stream", stream)?,
        ip,
        proto: "rtmp".to_owned(),
        request_type: RequestType::NewSession,
        session_id: Some(format!("srs:{server_id}:{vhost}/{app}:{client_id}")),
        action,
        segment: false,
        source: "srs",
        media_session_id: Some(client_id.clone()),
    };
    Ok(if done {
        Ask::Done(request)
    } else {
        Ask::Authorize(request)
    })
}

fn allow() -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from_static(br#"{"code":0}"#)));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[derive(Serialize)]
struct Refusal<'a> {
    /// Non-zero: SRS reads any code but 0 as a refusal.
    code: u16,
    error: &'static str,
    reason: &'static str,
    message: String,
    user_id: Option<&'a str>,
}

pub async fn hook(app: &Arc<App>, request: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let body = match read_body(request).await {
        Ok((_, body)) => body,
        Err(err) => return err.into(),
    };
    match parse(&body) {
        Err(message) => Response::from(ApiError::bad_request(&message, None)),
        Ok(Ask::Nothing) => allow(),
        Ok(Ask::Done(request)) => {
            hook::end_session(app, Arc::new(request)).await;
            allow()
        }
        Ok(Ask::Authorize(request)) => {
            let request = Arc::new(request);
            match hook::authorize(app, hook::Hook::Srs, Arc::clone(&request), started).await {
                Verdict::Allowed(_) | Verdict::AllowedByFailMode(_) => allow(),
                Verdict::Denied { denial, .. } => json(
                    StatusCode::FORBIDDEN,
                    &Refusal {
                        code: StatusCode::FORBIDDEN.as_u16(),
                        error: "access_denied",
                        reason: denial.reason.code(),
                        message: denial.reason.message(&request.as_request()),
                        user_id: denial.user_id.as_deref(),
                    },
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_publish_body() {
        let body = br#"{"server_id":"vid-0xk989d","service_id":"xxx","action":"on_publish",
            "client_id":"341w361a","ip":"127.0.0.1","vhost":"__defaultVhost__","app":"live",
            "tcUrl":"rtmp://127.0.0.1:1935/live","stream":"livestream","param":"?token=key-123456",
            "stream_url":"/live/livestream","stream_id":"vid-124q9y3"}"#;
        let Ask::Authorize(r) = parse(body).unwrap() else {
            panic!()
        };
        assert_eq!(r.token.as_deref(), Some("key-123456"));
        assert_eq!(r.stream, "livestream");
        assert_eq!(r.action, Action::Publish);
        assert_eq!(
            r.session_id.as_deref(),
            Some("srs:vid-0xk989d:__defaultVhost__/live:341w361a")
        );
    }

    #[test]
    fn stop_matches_its_play_and_srs3_numeric_ids_are_read() {
        let play = br#"{"action":"on_play","client_id":1985,"ip":"192.168.1.10","vhost":"v",
            "app":"live","stream":"s","param":"?token=t-1234567","pageUrl":""}"#;
        let stop = br#"{"action":"on_stop","client_id":1985,"ip":"192.168.1.10","vhost":"v",
            "app":"live","stream":"s","param":"?token=t-1234567"}"#;
        let (Ask::Authorize(play), Ask::Done(stop)) = (parse(play).unwrap(), parse(stop).unwrap())
        else {
            panic!()
        };
        assert_eq!(play.session_id, stop.session_id);
        assert_eq!(play.session_id.as_deref(), Some("srs::v/live:1985"));
        assert_eq!(
            parse(br#"{"action":"on_connect","client_id":1,"ip":"1.2.3.4"}"#).unwrap(),
            Ask::Nothing
        );
    }

    #[test]
    fn token_from_the_tc_url_when_param_has_none() {
        let body = br#"{"action":"on_play","client_id":"c","ip":"1.2.3.4","app":"live",
            "tcUrl":"rtmp://h/live?token=from-tc-url","stream":"s","param":""}"#;
        let Ask::Authorize(r) = parse(body).unwrap() else {
            panic!()
        };
        assert_eq!(r.token.as_deref(), Some("from-tc-url"));
    }
}
