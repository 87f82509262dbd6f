//! Flussonic's `auth_backend` / `on_play` hook: `GET /auth` with a query string, or `POST /auth`
//! with JSON or a form; and its `on_publish` hook, `GET|POST /auth/publish`, the same fields for
//! a publisher (whose token must allow `publish`). Only the fields the decision needs are read,
//! each loosely typed (Flussonic sends numbers as strings and vice versa); unknown fields are
//! ignored.
//!
//! 200 allows, with `X-UserId`, `X-Max-Sessions` (omitted for unlimited tokens: Flussonic would
//! read 0 as "no sessions") and `X-AuthDuration`. 403 denies with a JSON reason and
//! `X-AuthDuration`, so Flussonic caches the denial too.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use auth_core::{Action, Denial, RequestType};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Method, Request, Response, StatusCode};

use super::{self as hook, parse_ip, HookRequest, Verdict, FAILURE_AUTH_DURATION};
use crate::app::App;
use crate::http::ApiError;
use crate::http::{media_type, read_body, Body};

/// The fields `/auth` reads, owned so that they can move to a blocking thread.
#[derive(Debug, Default)]
struct Fields {
    name: Option<String>,
    proto: Option<String>,
    ip: Option<String>,
    token: Option<String>,
    request_type: Option<String>,
    session_id: Option<String>,
    /// Older Flussonic versions send the protocol as `type`.
    legacy_type: Option<String>,
}

impl Fields {
    /// The first occurrence of a key wins: later ones may come from a client-controlled tail.
    fn set(&mut self, key: &str, value: String) {
        let slot = match key {
            "name" => &mut self.name,
            "proto" => &mut self.proto,
            "ip" => &mut self.ip,
            "token" => &mut self.token,
            "request_type" => &mut self.request_type,
            "session_id" => &mut self.session_id,
            "type" => &mut self.legacy_type,
            _ => return,
        };
        if slot.is_none() {
            *slot = Some(value);
        }
    }

    fn from_form(bytes: &[u8]) -> Result<Self, String> {
        let pairs: Vec<(Cow<'_, str>, Cow<'_, str>)> = serde_urlencoded::from_bytes(bytes)
            .map_err(|e| format!("cannot parse the form: {e}"))?;
        let mut fields = Fields::default();
        for (key, value) in pairs {
            fields.set(&key, value.into_owned());
        }
        Ok(fields)
    }

    fn from_json(bytes: &[u8]) -> Result<Self, String> {
        let mut fields = Fields::default();
        for (key, value) in hook::json_object(bytes)? {
            if let Some(text) = hook::loose_text(value) {
                fields.set(&key, text);
            }
        }
        Ok(fields)
    }

    fn validate(self, action: Action) -> Result<HookRequest, String> {
        let name = self
            .name
            .filter(|n| !n.is_empty())
            .ok_or("missing required field `name`")?;
        let ip_text = self
            .ip
            .filter(|ip| !ip.is_empty())
            .ok_or("missing required field `ip`")?;
        let ip =
            parse_ip(&ip_text).ok_or_else(|| format!("`ip` is not an IP address: `{ip_text}`"))?;
        let session_id = self.session_id.filter(|s| !s.is_empty());
        Ok(HookRequest {
            stream: hook::stream_name("name", name)?,
            proto: self.proto.or(self.legacy_type).unwrap_or_default(),
            ip,
            token: self.token,
            request_type: RequestType::parse(self.request_type.as_deref()),
            session_id: session_id.clone(),
            action,
            segment: false,
            source: "flussonic",
            media_session_id: session_id,
        })
    }
}

/// A form or query string, as `/auth` reads it: for the fuzz targets.
pub(crate) fn parse_form(bytes: &[u8], action: Action) -> Result<HookRequest, String> {
    Fields::from_form(bytes)?.validate(action)
}

/// A JSON body, as `/auth` reads it: for the fuzz targets.
pub(crate) fn parse_json(bytes: &[u8], action: Action) -> Result<HookRequest, String> {
    Fields::from_json(bytes)?.validate(action)
}

async fn read_fields(request: Request<Incoming>) -> Result<Fields, Response<Body>> {
    if request.method() == Method::GET {
        let query = request.uri().query().unwrap_or_default();
        return Fields::from_form(query.as_bytes())
            .map_err(|e| Response::from(ApiError::bad_request(&e, None)));
    }
    let query = request.uri().query().map(str::to_owned);
    let (parts, body) = read_body(request).await?;
    if body.iter().all(u8::is_ascii_whitespace) {
        // A bodiless POST with its fields in the query string.
        return Fields::from_form(query.unwrap_or_default().as_bytes())
            .map_err(|e| Response::from(ApiError::bad_request(&e, None)));
    }
    let is_json = match media_type(&parts).as_deref() {
        Some("application/json") => true,
        Some("application/x-www-form-urlencoded") => false,
        _ => body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{'),
    };
    let parsed = if is_json {
        Fields::from_json(&body)
    } else {
        Fields::from_form(&body)
    };
    parsed.map_err(|e| Response::from(ApiError::bad_request(&e, None)))
}

/// `/auth` (play) and `/auth/publish`.
pub async fn auth(app: &Arc<App>, request: Request<Incoming>, action: Action) -> Response<Body> {
    let started = Instant::now();
    let query = match read_fields(request).await.and_then(|f| {
        f.validate(action)
            .map_err(|e| Response::from(ApiError::bad_request(&e, None)))
    }) {
        Ok(query) => Arc::new(query),
        Err(err) => return err,
    };
    match hook::authorize(app, hook::Hook::Flussonic, Arc::clone(&query), started).await {
        Verdict::Allowed(grant) => allow_response(
            Some(&grant.user_id),
            grant.max_sessions,
            app.authorizer.policy().auth_duration_secs(),
        ),
        Verdict::AllowedByFailMode(_) => allow_response(None, 0, FAILURE_AUTH_DURATION),
        Verdict::Denied { denial, cache_for } => deny_response(&query, &denial, cache_for),
    }
}

fn allow_response(user_id: Option<&str>, max_sessions: u32, auth_duration: u32) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::new()));
    let headers = response.headers_mut();
    if let Some(value) = user_id.and_then(|u| HeaderValue::from_str(u).ok()) {
        headers.insert("x-userid", value);
    }
    if max_sessions > 0 {
        headers.insert("x-max-sessions", HeaderValue::from(max_sessions));
    }
    headers.insert("x-authduration", HeaderValue::from(auth_duration));
    response
}

fn deny_response(request: &HookRequest, denial: &Denial, auth_duration: u32) -> Response<Body> {
    let mut response = hook::denial(StatusCode::FORBIDDEN, request, denial);
    response
        .headers_mut()
        .insert("x-authduration", HeaderValue::from(auth_duration));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_first_occurrence_wins_and_unknown_are_ignored() {
        let f = Fields::from_form(b"name=a&ip=1.2.3.4&name=b&whatever=1&token=t%2Bx").unwrap();
        assert_eq!(f.name.as_deref(), Some("a"));
        assert_eq!(f.token.as_deref(), Some("t+x"));
    }

    #[test]
    fn json_fields_are_loosely_typed() {
        let f = Fields::from_json(br#"{"name":"s","ip":"::1","request_number":3,"session_id":42,"token":null,"extra":{"a":1}}"#)
            .unwrap();
        assert_eq!(f.session_id.as_deref(), Some("42"));
        assert_eq!(f.token, None);
        assert!(Fields::from_json(b"[1,2]").is_err());
    }

    #[test]
    fn validation_messages() {
        let missing = Fields {
            ip: Some("1.2.3.4".into()),
            ..Default::default()
        };
        assert_eq!(
            missing.validate(Action::Play).unwrap_err(),
            "missing required field `name`"
        );
        let bad_ip = Fields {
            name: Some("s".into()),
            ip: Some("999.1.1.1".into()),
            ..Default::default()
        };
        assert!(bad_ip
            .validate(Action::Play)
            .unwrap_err()
            .contains("not an IP address"));
        let legacy = Fields {
            name: Some("s".into()),
            ip: Some("[2001:db8::1]".into()),
            legacy_type: Some("hls".into()),
            ..Default::default()
        };
        let query = legacy.validate(Action::Play).unwrap();
        assert_eq!(
            (query.proto.as_str(), query.ip.to_string().as_str()),
            ("hls", "2001:db8::1")
        );
    }
}
