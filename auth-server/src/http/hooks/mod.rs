//! What every media-server adapter shares: one path from a parsed request to a verdict, and one
//! way to end a session when the media server says the viewer (or publisher) is gone.
//!
//! Adapters (`flussonic`, `nginx_rtmp`, `nginx_auth`, `mediamtx`, `srs`, one file each beside
//! this one) only translate their
//! server's wire format into a [`HookRequest`] and the [`Verdict`] back into the answer that
//! server understands. The policy, the response budget, `AUTH_FAIL_MODE`, the release of a slot
//! admitted too late, and the access log live here, once.

pub mod flussonic;
pub mod mediamtx;
pub mod nginx_auth;
pub mod nginx_rtmp;
pub mod srs;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use auth_core::{
    AccessLogEntry, AccessResult, Action, AuthRequest, Decision, Denial, DenyReason, Grant,
    RequestType, Step,
};

use bytes::Bytes;
use hyper::{Response, StatusCode};
use serde::Serialize;
use serde_json::Value;

use crate::app::{App, Late};
use crate::http::{json, Body};
use crate::metrics::{Outcome, StoreFailure};

/// How long a media server may cache an answer given while the store was failing: short, so that
/// normal answers resume soon after the store recovers.
pub const FAILURE_AUTH_DURATION: u32 = 30;

/// Which adapter a request came through, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    Flussonic,
    NginxRtmp,
    NginxAuth,
    MediaMtx,
    Srs,
}

impl Hook {
    pub const ALL: [Hook; 5] = [
        Hook::Flussonic,
        Hook::NginxRtmp,
        Hook::NginxAuth,
        Hook::MediaMtx,
        Hook::Srs,
    ];

    /// The `hook` label of the metrics.
    pub fn label(self) -> &'static str {
        match self {
            Hook::Flussonic => "flussonic",
            Hook::NginxRtmp => "nginx_rtmp",
            Hook::NginxAuth => "nginx_auth",
            Hook::MediaMtx => "mediamtx",
            Hook::Srs => "srs",
        }
    }

    /// Its position in [`Hook::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// A request in the core's terms, owned so that it can move to a blocking thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookRequest {
    pub token: Option<String>,
    pub stream: String,
    pub ip: IpAddr,
    pub proto: String,
    pub request_type: RequestType,
    /// The media server's id of the session, stable across its re-checks and its `done` call.
    pub session_id: Option<String>,
    pub action: Action,
    /// A segment of HTTP delivery (nginx `auth_request`, not a playlist): see
    /// [`AuthRequest::segment`].
    pub segment: bool,
    /// Which media server asked: `flussonic`, `nginx-rtmp`, `nginx-auth`, `mediamtx`, `srs`.
    pub source: &'static str,
    /// The media server's own id of the client, as its control API names it: see
    /// [`AuthRequest::media_session_id`].
    pub media_session_id: Option<String>,
}

impl HookRequest {
    pub fn as_request(&self) -> AuthRequest<'_> {
        AuthRequest {
            token: self.token.as_deref(),
            stream: &self.stream,
            ip: self.ip,
            proto: &self.proto,
            request_type: self.request_type,
            session_id: self.session_id.as_deref(),
            action: self.action,
            segment: self.segment,
            source: self.source,
            media_session_id: self.media_session_id.as_deref(),
        }
    }
}

/// The outcome of [`authorize`], for an adapter to render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The policy allowed the request.
    Allowed(Grant),
    /// The store failed or was too slow, and `AUTH_FAIL_MODE` lets this kind of request through.
    AllowedByFailMode(DenyReason),
    /// Refused; the media server may cache the refusal for `cache_for` seconds.
    Denied { denial: Denial, cache_for: u32 },
}

impl Verdict {
    pub fn is_allowed(&self) -> bool {
        !matches!(self, Verdict::Denied { .. })
    }

    pub fn deny_reason(&self) -> Option<DenyReason> {
        match self {
            Verdict::Denied { denial, .. } => Some(denial.reason),
            _ => None,
        }
    }
}

/// Decides `request` in one pass: from memory on the reactor when the store can answer that way
/// (a cached token re-checking a live session: most requests), else the pending store work
/// finishes (awaited from the store's writer, or on a blocking thread) bounded by the response
/// budget, with `AUTH_FAIL_MODE` answering when the store fails or is late. Records the
/// decision in the access log and the metrics. `started` is when the request arrived, for the
/// logged latency; `hook` is the adapter it came through.
pub async fn authorize(
    app: &Arc<App>,
    hook: Hook,
    request: Arc<HookRequest>,
    started: Instant,
) -> Verdict {
    let update = request.request_type == RequestType::UpdateSession;
    let outcome = match app.authorizer.start(&request.as_request()) {
        Step::Done(answer) => Ok(answer),
        // An admission of a known token goes to the store's writer and is awaited here: no
        // blocking thread waits for its commit.
        Step::Pending(pending) => match pending.queue(&app.authorizer, &request.as_request()) {
            Ok(admitting) => app.queued_or_late(admitting).await,
            Err(pending) => {
                let for_store = Arc::clone(&request);
                app.blocking_or_late(move |app| {
                    pending.finish(&app.authorizer, &for_store.as_request())
                })
                .await
            }
        },
    };
    let decision = match outcome {
        Ok(Ok(decision)) => Ok(decision),
        Ok(Err(err)) => {
            log::error!("authorization failed in the store: {err}");
            app.metrics.store_failure(StoreFailure::Error);
            Err(DenyReason::BackendError)
        }
        Err(late) => {
            app.metrics.store_failure(StoreFailure::Timeout);
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

    let allowed_by_fail_mode = decision.is_err() && app.fail_mode.allows(update);
    let outcome = match &decision {
        Ok(decision) => decision
            .deny_reason()
            .map_or(Outcome::Allowed, Outcome::Denied),
        Err(reason) if allowed_by_fail_mode => Outcome::AllowedByFailMode(*reason),
        Err(reason) => Outcome::Denied(*reason),
    };
    app.metrics
        .decision(hook, request.action, outcome, started.elapsed());
    let as_request = request.as_request();
    if let Outcome::Denied(reason) = outcome {
        app.webhooks
            .denied(app, hook, request.action, reason, &as_request);
    }
    log::debug!(
        "{} {} stream={} ip={} proto={} -> {}",
        as_request.action,
        as_request.request_type.as_str(),
        as_request.stream,
        as_request.ip,
        as_request.proto,
        match &decision {
            Ok(decision) => decision.deny_reason().map_or("allowed", DenyReason::code),
            Err(reason) => reason.code(),
        }
    );
    if let Some(writer) = &app.access_log {
        let at = app.clock().now();
        let mut entry = match &decision {
            Ok(decision) => AccessLogEntry::new(&as_request, decision, at, started.elapsed()),
            Err(reason) => {
                let failed = Decision::Deny(Denial::new(*reason));
                AccessLogEntry::new(&as_request, &failed, at, started.elapsed())
            }
        };
        if allowed_by_fail_mode {
            // The reason still says why.
            entry.result = AccessResult::Allowed;
        }
        writer.record(entry);
    }
    if let Ok(Decision::Allow(grant)) = &decision {
        if let (Some(evicted), Some(token_id)) = (grant.evicted, grant.token_id) {
            push_eviction(Arc::clone(app), token_id, evicted);
        }
    }
    match decision {
        Ok(Decision::Allow(grant)) => Verdict::Allowed(grant),
        Ok(Decision::Deny(denial)) => Verdict::Denied {
            denial,
            cache_for: app.authorizer.policy().auth_duration_secs(),
        },
        Err(reason) if allowed_by_fail_mode => Verdict::AllowedByFailMode(reason),
        Err(reason) => Verdict::Denied {
            denial: Denial::new(reason),
            cache_for: FAILURE_AUTH_DURATION,
        },
    }
}

/// A token whose `on_limit` is `evict_oldest` made room for this viewer by cutting its oldest
/// session: tell that session's media server, off the answer's path.
fn push_eviction(app: Arc<App>, token_id: i64, evicted: auth_core::session::SessionId) {
    tokio::spawn(async move {
        let found = app
            .blocking(move |app| {
                let filter = auth_core::session::SessionFilter {
                    id: Some(evicted),
                    token_id: Some(token_id),
                    ..Default::default()
                };
                Ok(app
                    .stores
                    .sessions
                    .sessions(&filter, app.clock().now())?
                    .into_iter()
                    .next())
            })
            .await;
        match found {
            Some(Ok(Some(session))) => app.announce_cut(
                std::slice::from_ref(&session),
                DenyReason::SessionLimitReached.code(),
            ),
            Some(Ok(None)) => {}
            Some(Err(err)) => log::warn!("could not read evicted session {evicted}: {err}"),
            None => log::warn!("could not read evicted session {evicted} in time"),
        }
    });
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
        let sessions = Arc::clone(&app.stores.sessions);
        let now = app.clock().now();
        match tokio::task::spawn_blocking(move || sessions.end_session(session_id, now)).await {
            Ok(Ok(_)) => log::info!(
                "released session {session_id}, admitted after its request had been refused"
            ),
            Ok(Err(err)) => log::warn!("could not release session {session_id}: {err}"),
            Err(err) => log::warn!("could not release session {session_id}: {err}"),
        }
    });
}

/// What [`end_session`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The session was live and is gone: its slot is free now.
    Ended,
    /// No live session matched (never admitted, already ended, or its lease ran out).
    NotFound,
    /// The store failed or did not answer in time; the lease will free the slot when it runs out.
    Failed,
}

/// Ends the session `request` identifies (same token, same session key as when it was admitted)
/// at once, for a media server's "done" call. A session terminated by an operator is ended too:
/// the viewer is gone, so nothing is left to refuse.
pub async fn end_session(app: &Arc<App>, request: Arc<HookRequest>) -> Ended {
    let found = app
        .blocking(move |app| app.authorizer.end_session(&request.as_request()))
        .await;
    match found {
        Some(Ok(true)) => Ended::Ended,
        Some(Ok(false)) => Ended::NotFound,
        Some(Err(err)) => {
            log::warn!("could not end a session on its done call: {err}");
            app.metrics.store_failure(StoreFailure::Error);
            Ended::Failed
        }
        None => {
            app.metrics.store_failure(StoreFailure::Timeout);
            log::warn!("the store did not answer in time to end a session on its done call");
            Ended::Failed
        }
    }
}

#[derive(Serialize)]
struct DenyBody<'a> {
    error: &'static str,
    reason: &'static str,
    message: String,
    user_id: Option<&'a str>,
}

/// A refusal as every adapter renders it: JSON with the stable `reason` code.
pub fn denial(status: StatusCode, request: &HookRequest, denial: &Denial) -> Response<Body> {
    let body = DenyBody {
        error: "access_denied",
        reason: denial.reason.code(),
        message: denial.reason.message(&request.as_request()),
        user_id: denial.user_id.as_deref(),
    };
    json(status, &body)
}

/// An empty answer with this status (what most media servers read: only the status counts).
pub fn empty(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

/// A JSON body's object, for adapters whose media server posts JSON.
pub fn json_object(body: &[u8]) -> Result<serde_json::Map<String, Value>, String> {
    serde_json::from_slice(body).map_err(|e| format!("the body is not a JSON object: {e}"))
}

/// A JSON field as text, loosely typed: media servers send ids as numbers or strings depending
/// on their version. Null, arrays and objects carry nothing an adapter reads: absent.
pub fn loose_text(value: Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Whether a hook request carries `HOOK_SECRET` (when one is set): the `hook_secret` argument
/// of the URL's query (first occurrence: nginx-rtmp appends the client's own query last), else
/// the `X-Hook-Secret` header. Compared in constant time. Without it, anyone who can reach the
/// hooks could end another viewer's session with a forged done call.
pub fn carries_hook_secret(app: &App, request: &hyper::Request<hyper::body::Incoming>) -> bool {
    let Some(secret) = &app.hook_secret else {
        return true;
    };
    let presented = request
        .uri()
        .query()
        .and_then(|query| query_value(query, "hook_secret"))
        .or_else(|| {
            let header = request.headers().get("x-hook-secret")?;
            header.to_str().ok().map(str::to_owned)
        });
    presented.is_some_and(|presented| auth_core::secret::matches(&presented, &secret.0))
}

/// `name`, read from the request's `field`, as a stream name; else why not, without the name
/// (it may be long). Every adapter asks, so a name no stream can have never reaches the
/// decision or the access log ([`auth_core::token::check_stream_name`]).
pub fn stream_name(field: &str, name: String) -> Result<String, String> {
    match auth_core::token::check_stream_name(&name) {
        Ok(()) => Ok(name),
        Err(why) => Err(format!("`{field}` is not a stream name: {why}")),
    }
}

/// Accepts `1.2.3.4`, `2001:db8::1` and the bracketed `[2001:db8::1]`.
pub fn parse_ip(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    let text = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    text.parse().ok()
}

/// The value of `key` in a query string (`a=1&token=x`), percent-decoded; the first occurrence
/// wins. A leading `?` is skipped.
pub fn query_value(query: &str, key: &str) -> Option<String> {
    let query = query.strip_prefix('?').unwrap_or(query);
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_first_occurrence_and_decoding() {
        assert_eq!(
            query_value("?a=1&token=t%2Bx&token=evil", "token").as_deref(),
            Some("t+x")
        );
        assert_eq!(query_value("", "token"), None);
        assert_eq!(query_value("token=", "token").as_deref(), Some(""));
    }

    #[test]
    fn ips_with_and_without_brackets() {
        assert_eq!(parse_ip("[2001:db8::1]"), "2001:db8::1".parse().ok());
        assert_eq!(parse_ip(" 10.0.0.1 "), "10.0.0.1".parse().ok());
        assert_eq!(parse_ip("example.com"), None);
    }
}
