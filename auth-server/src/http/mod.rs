//! HTTP routing and the helpers every endpoint shares. One module per endpoint family.
//!
//! Every error answer is an [`ApiError`]: JSON `{"error": code, "message": text}`; core errors map
//! to status codes in its `From<&auth_core::Error>`, the one place that does it.

// Early-return helpers yield a ready `Response` as their error; boxing it would only add an
// allocation to the path that answers bad requests.
#![allow(clippy::result_large_err)]

pub mod api;
mod error;
pub mod health;
pub mod hooks;
mod jwks;
mod metrics;
pub mod openapi;
pub mod pages;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use auth_core::Action;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use serde::Serialize;

pub use error::ApiError;

use crate::app::App;
use auth_core::event::RosterRole;

pub type Body = Full<Bytes>;

/// Largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;

/// What a request is for, once its path and method are matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Auth,
    AuthPublish,
    NginxRtmp,
    NginxAuth,
    MediaMtx,
    Srs,
    Health,
    OpenApi,
    /// Prometheus metrics: access checked as for the management API (see `api`).
    Metrics,
    Tokens,
    Token,
    Sessions,
    Session,
    SessionCounts,
    SessionKick,
    AccessLogs,
    Stats,
    // Signed tokens (see `api::playback`).
    PlaybackTokens,
    /// Revoking signed tokens by id or session group.
    PlaybackRevocations,
    SigningKeys,
    // Edge tokens (see `jwks` and `api::edge_urls`).
    Jwks,
    EdgeUrls,
    /// Webhook endpoints (see `api::webhooks`).
    Webhooks,
    Webhook,
    // Event tickets (see `api::ticketing`).
    Users,
    User,
    Login,
    Logout,
    /// The logged-in account, its events and its tickets.
    Me,
    Events,
    Event,
    Roster(auth_core::event::RosterRole),
    Tickets,
    TicketVerify,
    Ticket,
    /// Lifting a ticket's door-code lock.
    TicketUnlock,
    SignedTicket,
    SignedTicketVerify,
}

impl Endpoint {
    /// Endpoints of the event-ticket API, authenticated by account or API key.
    pub fn is_ticketing(self) -> bool {
        matches!(
            self,
            Endpoint::Users
                | Endpoint::User
                | Endpoint::Login
                | Endpoint::Logout
                | Endpoint::Me
                | Endpoint::Events
                | Endpoint::Event
                | Endpoint::Roster(_)
                | Endpoint::Tickets
                | Endpoint::TicketVerify
                | Endpoint::Ticket
                | Endpoint::TicketUnlock
                | Endpoint::SignedTicket
                | Endpoint::SignedTicketVerify
        )
    }
}

/// Every route the server answers. The router matches against this table, and a test checks
/// that the OpenAPI document describes each entry.
pub const ROUTES: &[(&str, &str, Endpoint)] = &[
    ("GET", "/auth", Endpoint::Auth),
    ("POST", "/auth", Endpoint::Auth),
    ("GET", "/auth/publish", Endpoint::AuthPublish),
    ("POST", "/auth/publish", Endpoint::AuthPublish),
    ("POST", "/hooks/nginx-rtmp", Endpoint::NginxRtmp),
    ("GET", "/hooks/nginx-rtmp", Endpoint::NginxRtmp),
    ("GET", "/hooks/nginx-auth", Endpoint::NginxAuth),
    ("POST", "/hooks/mediamtx", Endpoint::MediaMtx),
    ("POST", "/hooks/srs", Endpoint::Srs),
    ("GET", "/health", Endpoint::Health),
    ("HEAD", "/health", Endpoint::Health),
    ("GET", "/openapi.json", Endpoint::OpenApi),
    ("GET", "/metrics", Endpoint::Metrics),
    ("GET", "/api/tokens", Endpoint::Tokens),
    ("POST", "/api/tokens", Endpoint::Tokens),
    ("GET", "/api/tokens/{id}", Endpoint::Token),
    ("PATCH", "/api/tokens/{id}", Endpoint::Token),
    ("DELETE", "/api/tokens/{id}", Endpoint::Token),
    ("GET", "/api/sessions", Endpoint::Sessions),
    ("GET", "/api/sessions/counts", Endpoint::SessionCounts),
    ("POST", "/api/sessions/kick", Endpoint::SessionKick),
    ("DELETE", "/api/sessions/{id}", Endpoint::Session),
    ("GET", "/api/access-logs", Endpoint::AccessLogs),
    ("GET", "/api/stats", Endpoint::Stats),
    ("GET", "/api/webhooks", Endpoint::Webhooks),
    ("POST", "/api/webhooks", Endpoint::Webhooks),
    ("DELETE", "/api/webhooks/{id}", Endpoint::Webhook),
    // Event tickets.
    ("POST", "/api/users", Endpoint::Users),
    ("GET", "/api/users/{id}", Endpoint::User),
    ("PATCH", "/api/users/{id}", Endpoint::User),
    ("POST", "/api/login", Endpoint::Login),
    ("POST", "/api/logout", Endpoint::Logout),
    ("GET", "/api/me", Endpoint::Me),
    ("GET", "/api/events", Endpoint::Events),
    ("POST", "/api/events", Endpoint::Events),
    ("GET", "/api/events/{id}", Endpoint::Event),
    ("PATCH", "/api/events/{id}", Endpoint::Event),
    (
        "GET",
        "/api/events/{id}/users",
        Endpoint::Roster(RosterRole::Users),
    ),
    (
        "POST",
        "/api/events/{id}/users",
        Endpoint::Roster(RosterRole::Users),
    ),
    (
        "GET",
        "/api/events/{id}/agents",
        Endpoint::Roster(RosterRole::Agents),
    ),
    (
        "POST",
        "/api/events/{id}/agents",
        Endpoint::Roster(RosterRole::Agents),
    ),
    (
        "GET",
        "/api/events/{id}/admins",
        Endpoint::Roster(RosterRole::Admins),
    ),
    (
        "POST",
        "/api/events/{id}/admins",
        Endpoint::Roster(RosterRole::Admins),
    ),
    ("POST", "/api/tickets", Endpoint::Tickets),
    ("POST", "/api/tickets/verify", Endpoint::TicketVerify),
    ("DELETE", "/api/tickets/{id}", Endpoint::Ticket),
    ("POST", "/api/tickets/{id}/unlock", Endpoint::TicketUnlock),
    ("GET", "/api/tickets/{id}/signed", Endpoint::SignedTicket),
    (
        "POST",
        "/api/tickets/verify-signed",
        Endpoint::SignedTicketVerify,
    ),
    ("POST", "/api/playback-tokens", Endpoint::PlaybackTokens),
    (
        "POST",
        "/api/playback-tokens/revoke",
        Endpoint::PlaybackRevocations,
    ),
    ("GET", "/api/signing-keys", Endpoint::SigningKeys),
    ("GET", "/.well-known/jwks.json", Endpoint::Jwks),
    ("POST", "/api/edge-urls", Endpoint::EdgeUrls),
];

/// Matches `path` against a template with at most one `{id}` segment; returns the captured id.
fn match_template<'p>(template: &str, path: &'p str) -> Option<Option<&'p str>> {
    // Most templates have no `{id}`: one comparison, no splitting. Every request is matched
    // against the whole table, and splitting every template was a fifth of the instructions of
    // an `/auth` re-check.
    if !template.as_bytes().contains(&b'{') {
        return (template == path).then_some(None);
    }
    let mut captured = None;
    let mut template_parts = template.split('/');
    let mut path_parts = path.split('/');
    loop {
        match (template_parts.next(), path_parts.next()) {
            (None, None) => return Some(captured),
            (Some("{id}"), Some(part)) if !part.is_empty() => captured = Some(part),
            (Some(t), Some(p)) if t == p => {}
            _ => return None,
        }
    }
}

/// The routes `path` matches: those that name it literally when there are any (so that
/// `/api/sessions/counts` is never also `/api/sessions/{id}`), else those capturing an id. An
/// iterator over the table: routing a request allocates nothing.
fn matching_routes(
    path: &str,
) -> impl Iterator<Item = (&'static str, Endpoint, Option<&str>)> + '_ {
    let literal = ROUTES.iter().any(|(_, template, _)| *template == path);
    ROUTES
        .iter()
        .filter_map(move |(method, template, endpoint)| {
            let id = match_template(template, path)?;
            (!(literal && id.is_some())).then_some((*method, *endpoint, id))
        })
}

pub async fn route(
    app: Arc<App>,
    request: Request<Incoming>,
    peer: SocketAddr,
) -> Result<Response<Body>, Infallible> {
    let found = matching_routes(request.uri().path())
        .find(|(method, _, _)| request.method().as_str() == *method)
        .map(|(_, endpoint, id)| (endpoint, id.map(str::to_owned)));
    let hook = matches!(
        found,
        Some((
            Endpoint::Auth
                | Endpoint::AuthPublish
                | Endpoint::NginxRtmp
                | Endpoint::NginxAuth
                | Endpoint::MediaMtx
                | Endpoint::Srs,
            _
        ))
    );
    if hook && !hooks::carries_hook_secret(&app, &request) {
        log::debug!("hook request from {peer} without the right HOOK_SECRET refused");
        return Ok(Response::from(ApiError::new(
            StatusCode::FORBIDDEN,
            "hook_secret_invalid",
            "this hook request lacks the right HOOK_SECRET (hook_secret query argument or X-Hook-Secret header)",
            None,
        )));
    }
    // Only a request no route takes needs the methods its path allows.
    let allowed = || -> Vec<&str> {
        matching_routes(request.uri().path())
            .map(|(method, _, _)| method)
            .collect()
    };
    let response = match found {
        Some((Endpoint::Auth, _)) => hooks::flussonic::auth(&app, request, Action::Play).await,
        Some((Endpoint::AuthPublish, _)) => {
            hooks::flussonic::auth(&app, request, Action::Publish).await
        }
        Some((Endpoint::NginxRtmp, _)) => hooks::nginx_rtmp::hook(&app, request).await,
        Some((Endpoint::NginxAuth, _)) => hooks::nginx_auth::hook(&app, request).await,
        Some((Endpoint::MediaMtx, _)) => hooks::mediamtx::hook(&app, request).await,
        Some((Endpoint::Srs, _)) => hooks::srs::hook(&app, request).await,
        Some((Endpoint::Health, _)) => health::health(&app).await,
        Some((Endpoint::OpenApi, _)) => openapi::document(),
        Some((Endpoint::Jwks, _)) => jwks::jwks(&app),
        Some((endpoint, id)) => api::handle(&app, request, peer, endpoint, id.as_deref()).await,
        None if allowed().is_empty() => {
            pages::serve(&request, &app.page_policy).unwrap_or_else(|| {
                Response::from(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    "no such endpoint",
                    None,
                ))
            })
        }
        None => method_not_allowed(&allowed().join(", ")),
    };
    Ok(response)
}

pub fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(bytes) => {
            let mut response = Response::new(Full::new(Bytes::from(bytes)));
            *response.status_mut() = status;
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
        Err(err) => {
            log::error!("cannot encode a JSON answer: {err}");
            let mut response = Response::new(Full::new(Bytes::from_static(
                br#"{"error":"internal_error","message":"cannot encode the answer"}"#,
            )));
            *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            response
        }
    }
}

fn method_not_allowed(allow: &str) -> Response<Body> {
    let mut response = Response::from(ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed here",
        None,
    ));
    if let Ok(value) = HeaderValue::from_str(allow) {
        response.headers_mut().insert(ALLOW, value);
    }
    response
}

/// Reads the whole body, refusing more than [`MAX_BODY`] bytes with 413 before reading them
/// when the client announced its length.
/// The most a request body may take to arrive: hyper bounds only the headers, so without this a
/// client trickling a byte at a time would hold its connection and task indefinitely.
pub const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

pub async fn read_body(
    request: Request<Incoming>,
) -> Result<(hyper::http::request::Parts, Bytes), ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body must be at most {MAX_BODY} bytes"),
            None,
        )
    };
    let announced = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|len| len > MAX_BODY as u64) {
        return Err(too_large());
    }
    let (parts, body) = request.into_parts();
    let Ok(collected) =
        tokio::time::timeout(BODY_READ_TIMEOUT, Limited::new(body, MAX_BODY).collect()).await
    else {
        return Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!(
                "the body did not arrive within {} s",
                BODY_READ_TIMEOUT.as_secs()
            ),
            None,
        ));
    };
    match collected {
        Ok(collected) => Ok((parts, collected.to_bytes())),
        Err(err)
            if err
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(too_large())
        }
        Err(err) => Err(ApiError::bad_request(
            format!("cannot read the request body: {err}"),
            None,
        )),
    }
}

/// The media type of a request, lower-cased, without parameters.
pub fn media_type(parts: &hyper::http::request::Parts) -> Option<String> {
    let value = parts.headers.get(CONTENT_TYPE)?.to_str().ok()?;
    Some(
        value
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_capture_one_id() {
        assert_eq!(
            match_template("/api/tokens/{id}", "/api/tokens/12"),
            Some(Some("12"))
        );
        assert_eq!(match_template("/api/tokens/{id}", "/api/tokens/"), None);
        assert_eq!(match_template("/api/tokens/{id}", "/api/tokens/1/x"), None);
        assert_eq!(match_template("/api/tokens", "/api/tokens"), Some(None));
        assert_eq!(match_template("/api/tokens", "/api/tokensx"), None);
    }

    #[test]
    fn a_literal_path_is_never_also_an_id() {
        let methods = |path| {
            matching_routes(path)
                .map(|(method, _, _)| method)
                .collect::<Vec<_>>()
        };
        assert_eq!(methods("/api/sessions/counts"), ["GET"]);
        assert_eq!(methods("/api/tickets/verify"), ["POST"]);
        assert_eq!(methods("/api/sessions/12"), ["DELETE"]);
        assert_eq!(methods("/api/tokens/7"), ["GET", "PATCH", "DELETE"]);
    }
}
