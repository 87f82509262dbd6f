//! Flussonic's `auth_backend` / `on_play` hook: `GET /auth` with a query string, or `POST /auth`
//! with JSON or a form. Only the fields the decision needs are read, each loosely typed (Flussonic
//! sends numbers as strings and vice versa); unknown fields are ignored.
//!
//! 200 allows, with `X-UserId`, `X-Max-Sessions` (omitted for unlimited tokens: Flussonic would
//! read 0 as "no sessions") and `X-AuthDuration`. 403 denies with a JSON reason and
//! `X-AuthDuration`, so Flussonic caches the denial too.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use auth_core::{
    AccessLogEntry, AccessResult, AuthRequest, Decision, Denial, DenyReason, RequestType,
};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;
use serde_json::Value;

use super::{invalid_request, json, media_type, read_body, Body};
use crate::server::{App, Late};

/// How long Flussonic may cache an answer given while the store was failing: short, so that
/// normal answers resume soon after the store recovers.
const FAILURE_AUTH_DURATION: u32 = 30;

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
        let object: serde_json::Map<String, Value> = serde_json::from_slice(bytes)
            .map_err(|e| format!("the body is not a JSON object: {e}"))?;
        let mut fields = Fields::default();
        for (key, value) in object {
            let text = match value {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                // Null, arrays and objects carry nothing we read: treat as absent.
                _ => continue,
            };
            fields.set(&key, text);
        }
        Ok(fields)
    }

    fn validate(self) -> Result<Query, String> {
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
        Ok(Query {
            name,
            proto: self.proto.or(self.legacy_type).unwrap_or_default(),
            ip,
            token: self.token,
            request_type: RequestType::parse(self.request_type.as_deref()),
            session_id: self.session_id.filter(|s| !s.is_empty()),
        })
    }
}

/// Accepts `1.2.3.4`, `2001:db8::1` and the bracketed `[2001:db8::1]`.
fn parse_ip(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    let text = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    text.parse().ok()
}

/// A validated `/auth` request.
#[derive(Debug)]
struct Query {
    name: String,
    proto: String,
    ip: IpAddr,
    token: Option<String>,
    request_type: RequestType,
    session_id: Option<String>,
}

impl Query {
    fn as_request(&self) -> AuthRequest<'_> {
        AuthRequest {
            token: self.token.as_deref(),
            stream: &self.name,
            ip: self.ip,
            proto: &self.proto,
            request_type: self.request_type,
            session_id: self.session_id.as_deref(),
        }
    }
}

async fn read_fields(request: Request<Incoming>) -> Result<Fields, Response<Body>> {
    if request.method() == Method::GET {
        let query = request.uri().query().unwrap_or_default();
        return Fields::from_form(query.as_bytes()).map_err(|e| invalid_request(&e));
    }
    let query = request.uri().query().map(str::to_owned);
    let (parts, body) = read_body(request).await?;
    if body.iter().all(u8::is_ascii_whitespace) {
        // A bodiless POST with its fields in the query string.
        return Fields::from_form(query.unwrap_or_default().as_bytes())
            .map_err(|e| invalid_request(&e));
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
    parsed.map_err(|e| invalid_request(&e))
}

pub async fn auth(app: &Arc<App>, request: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let query = match read_fields(request)
        .await
        .and_then(|f| f.validate().map_err(|e| invalid_request(&e)))
    {
        Ok(query) => Arc::new(query),
        Err(response) => return response,
    };

    // Most requests (a cached token re-checking a live session) are answered from memory right
    // here; the rest go to a blocking thread, bounded by the response budget.
    let update = query.request_type == RequestType::UpdateSession;
    let outcome = match app
        .authorizer
        .try_authorize_without_blocking(&query.as_request())
    {
        Some(answer) => Ok(answer),
        None => {
            let for_store = Arc::clone(&query);
            app.blocking_or_late(move |app| app.authorizer.authorize(&for_store.as_request()))
                .await
        }
    };
    let decision = match outcome {
        Ok(Ok(decision)) => Ok(decision),
        Ok(Err(err)) => {
            log::error!("authorization failed in the store: {err}");
            Err(DenyReason::BackendError)
        }
        Err(late) => {
            log::warn!(
                "the store did not answer within {:?}; answering by AUTH_FAIL_MODE",
                app.max_response_time
            );
            if !app.fail_mode.allows(update) {
                release_when_done(Arc::clone(app), late);
            }
            Err(DenyReason::BackendTimeout)
        }
    };

    let request = query.as_request();
    let (response, logged) = match decision {
        Ok(decision) => (render(app, &request, &decision), decision),
        Err(reason) => {
            let denial = Decision::Deny(Denial::new(reason));
            if app.fail_mode.allows(update) {
                (allow_response(None, 0, FAILURE_AUTH_DURATION), denial)
            } else {
                (
                    deny_response(&request, &Denial::new(reason), FAILURE_AUTH_DURATION),
                    denial,
                )
            }
        }
    };
    log::debug!(
        "/auth {} stream={} ip={} proto={} -> {}",
        request.request_type.as_str(),
        request.stream,
        request.ip,
        request.proto,
        logged.deny_reason().map_or("allowed", DenyReason::code)
    );
    if let Some(writer) = &app.access_log {
        let mut entry =
            AccessLogEntry::new(&request, &logged, app.clock().now(), started.elapsed());
        if response.status() == StatusCode::OK {
            // An answer allowed by the fail mode: the reason still says why.
            entry.result = AccessResult::Allowed;
        }
        writer.record(entry);
    }
    response
}

/// The viewer was refused for lack of an answer, but the store may still admit its session once
/// the call finishes: give that slot back, or it would be held for a whole lease by nobody.
fn release_when_done(app: Arc<App>, late: Late<Decision>) {
    tokio::spawn(async move {
        let Ok(Ok(Decision::Allow(grant))) = late.await else {
            return;
        };
        let (true, Some(session_id)) = (grant.new_session, grant.session_id) else {
            return;
        };
        let store = Arc::clone(app.store());
        match tokio::task::spawn_blocking(move || store.end_session(session_id)).await {
            Ok(Ok(_)) => log::info!(
                "released session {session_id}, admitted after its request had been refused"
            ),
            Ok(Err(err)) => log::warn!("could not release session {session_id}: {err}"),
            Err(err) => log::warn!("could not release session {session_id}: {err}"),
        }
    });
}

fn render(app: &App, request: &AuthRequest<'_>, decision: &Decision) -> Response<Body> {
    let auth_duration = app.authorizer.policy().auth_duration_secs();
    match decision {
        Decision::Allow(grant) => {
            allow_response(Some(&grant.user_id), grant.max_sessions, auth_duration)
        }
        Decision::Deny(denial) => deny_response(request, denial, auth_duration),
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

#[derive(Serialize)]
struct DenyBody<'a> {
    error: &'static str,
    reason: &'static str,
    message: String,
    user_id: Option<&'a str>,
}

fn deny_response(request: &AuthRequest<'_>, denial: &Denial, auth_duration: u32) -> Response<Body> {
    let body = DenyBody {
        error: "access_denied",
        reason: denial.reason.code(),
        message: denial.reason.message(request),
        user_id: denial.user_id.as_deref(),
    };
    let mut response = json(StatusCode::FORBIDDEN, &body);
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
            missing.validate().unwrap_err(),
            "missing required field `name`"
        );
        let bad_ip = Fields {
            name: Some("s".into()),
            ip: Some("999.1.1.1".into()),
            ..Default::default()
        };
        assert!(bad_ip.validate().unwrap_err().contains("not an IP address"));
        let legacy = Fields {
            name: Some("s".into()),
            ip: Some("[2001:db8::1]".into()),
            legacy_type: Some("hls".into()),
            ..Default::default()
        };
        let query = legacy.validate().unwrap();
        assert_eq!(
            (query.proto.as_str(), query.ip.to_string().as_str()),
            ("hls", "2001:db8::1")
        );
    }
}
