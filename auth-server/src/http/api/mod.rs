//! The management REST API under `/api`: tokens, sessions, access logs, stats and webhooks.
//!
//! Every request is authenticated here, in one place, before any handler runs: an `X-API-Key`
//! header or `Authorization: Bearer KEY`, compared in constant time against every configured key.
//! Read-only keys may `GET`; anything else needs a read-write key. With no key configured the API
//! answers loopback clients only. An administrator account logged in through the browser (the
//! `access_token` cookie, as `/console` is) may do what a read-write key does: API keys never
//! need to be typed into a page.

mod access_logs;
mod credentials;
pub(crate) mod edge_urls;
mod paging;
pub(crate) mod playback;
mod sessions;
mod ticketing;
mod tokens;
pub(crate) mod webhooks;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Method, Request, Response, StatusCode};
use serde::de::DeserializeOwned;

use super::{media_type, read_body, Body, Endpoint};
use crate::app::App;
use crate::config::ApiKey;
use crate::http::ApiError;
use credentials::Credential;

pub async fn handle(
    app: &Arc<App>,
    request: Request<Incoming>,
    peer: SocketAddr,
    endpoint: Endpoint,
    id: Option<&str>,
) -> Response<Body> {
    // A ticket holder, logged in, mints their own playback token (seed 000) through the
    // account-authenticated API; API keys mint any through the management one.
    let holder_mint =
        endpoint == Endpoint::PlaybackTokens && ticketing::presents_access_token(app, &request);
    if endpoint.is_ticketing() || holder_mint {
        return ticketing::handle(app, request, peer, endpoint, id).await;
    }
    let write = request.method() != Method::GET && request.method() != Method::HEAD;
    let admin = match ticketing::cookie_administrator(app, &request).await {
        Ok(admin) => admin,
        Err(denied) => return denied.into(),
    };
    if !admin {
        if let Err(denied) = authenticate(app, &request, peer, write) {
            return denied.into();
        }
    }
    let id = match id.map(str::parse::<i64>) {
        None => None,
        Some(Ok(id)) => Some(id),
        Some(Err(_)) => {
            return ApiError::bad_request("the id must be an integer", Some("id")).into();
        }
    };
    let result = match (endpoint, request.method().clone(), id) {
        (Endpoint::Tokens, Method::GET, _) => tokens::list(app, &request).await,
        (Endpoint::Tokens, Method::POST, _) => tokens::create(app, request).await,
        (Endpoint::Token, Method::GET, Some(id)) => tokens::show(app, id).await,
        (Endpoint::Token, Method::PATCH, Some(id)) => tokens::update(app, request, id).await,
        (Endpoint::Token, Method::DELETE, Some(id)) => tokens::delete(app, id).await,
        (Endpoint::Sessions, Method::GET, _) => sessions::list(app, &request).await,
        (Endpoint::SessionCounts, Method::GET, _) => sessions::counts(app, &request).await,
        (Endpoint::SessionKick, Method::POST, _) => sessions::kick(app, request).await,
        (Endpoint::Session, Method::DELETE, Some(id)) => {
            sessions::terminate(app, &request, id).await
        }
        (Endpoint::AccessLogs, Method::GET, _) => access_logs::list(app, &request).await,
        (Endpoint::Stats, Method::GET, _) => access_logs::stats(app, &request).await,
        (Endpoint::Metrics, Method::GET, _) => Ok(super::metrics::scrape(app).await),
        (Endpoint::PlaybackTokens, Method::POST, _) => playback::mint(app, request).await,
        (Endpoint::PlaybackRevocations, Method::POST, _) => playback::revoke(app, request).await,
        (Endpoint::SigningKeys, Method::GET, _) => playback::keys(app).await,
        (Endpoint::EdgeUrls, Method::POST, _) => edge_urls::sign(app, request).await,
        (Endpoint::Webhooks, Method::GET, _) => webhooks::list(app).await,
        (Endpoint::Webhooks, Method::POST, _) => webhooks::create(app, request).await,
        (Endpoint::Webhook, Method::DELETE, Some(id)) => webhooks::delete(app, id).await,
        _ => Err(ApiError::not_found("no such endpoint")),
    };
    result.unwrap_or_else(Response::from)
}

/// What every API handler returns: the response, or the error it is rendered from.
type Answer = Result<Response<Body>, ApiError>;

fn authenticate(
    app: &App,
    request: &Request<Incoming>,
    peer: SocketAddr,
    write: bool,
) -> Result<(), ApiError> {
    if app.api_keys.is_empty() && !host_allowed(requested_host(request), &app.api_allowed_hosts) {
        return Err(ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            "host_not_allowed",
            "without API keys the management API answers loopback host names only \
             (localhost, 127.0.0.1, [::1], or one listed in API_ALLOWED_HOSTS)",
            None,
        ));
    }
    let presented = credentials::presented(request);
    let presented = presented.as_ref().and_then(Credential::api_key);
    check_access(&app.api_keys, presented, peer.ip(), write).map_err(|refusal| match refusal {
        Refusal::LoopbackOnly => ApiError::unauthorized(
            "no API key is configured on this server: the management API answers loopback clients only",
        ),
        Refusal::MissingKey => {
            ApiError::unauthorized("an API key is required: send X-API-Key or Authorization: Bearer")
        }
        Refusal::WrongKey => ApiError::unauthorized("the API key is not valid"),
        Refusal::ReadOnly => ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this API key is read-only",
            None,
        ),
    })
}

/// The host name the client asked for: the `Host` header, or the authority of an absolute URI.
fn requested_host(request: &Request<Incoming>) -> Option<&str> {
    request
        .headers()
        .get(hyper::header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()))
}

/// Whether a key-less API may answer a request for `host` (with or without its port): a
/// loopback address, `localhost`, or a name the operator listed. A request with no host at all
/// (HTTP/1.0) comes from no browser, so no page can have sent it.
fn host_allowed(host: Option<&str>, extra: &[String]) -> bool {
    let Some(host) = host else {
        return true;
    };
    let host = host.trim();
    let name = match host.strip_prefix('[') {
        // [v6] or [v6]:port
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _port)| name),
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.parse::<IpAddr>().is_ok_and(is_loopback) || extra.contains(&name)
}

#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    LoopbackOnly,
    MissingKey,
    WrongKey,
    ReadOnly,
}

/// The access rule, apart from HTTP.
fn check_access(
    keys: &[ApiKey],
    presented: Option<&str>,
    client: IpAddr,
    write: bool,
) -> Result<(), Refusal> {
    if keys.is_empty() {
        return if is_loopback(client) {
            Ok(())
        } else {
            Err(Refusal::LoopbackOnly)
        };
    }
    let presented = presented.ok_or(Refusal::MissingKey)?;
    match key_access(keys, presented) {
        None => Err(Refusal::WrongKey),
        Some(false) if write => Err(Refusal::ReadOnly),
        Some(_) => Ok(()),
    }
}

/// Whether `presented` is one of `keys`, and if so whether it may write.
///
/// Compares against every key without stopping early, so timing tells nothing about which (or
/// whether any) key came close.
fn key_access(keys: &[ApiKey], presented: &str) -> Option<bool> {
    let mut may_write: Option<bool> = None;
    for key in keys {
        if auth_core::secret::matches(presented, &key.key) {
            may_write = Some(may_write.unwrap_or(false) || key.write);
        }
    }
    may_write
}

/// A dual-stack listener reports IPv4 loopback clients as `::ffff:127.0.0.1`.
fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        IpAddr::V4(v4) => v4.is_loopback(),
    }
}

/// Runs a store call off the reactor within the response budget; maps failures to responses.
async fn call<T, F>(app: &Arc<App>, work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&App) -> auth_core::Result<T> + Send + 'static,
{
    match app.blocking(work).await {
        Some(Ok(value)) => Ok(value),
        Some(Err(err)) => Err(ApiError::from(&err)),
        None => Err(ApiError::backend_timeout()),
    }
}

/// Parses the query string strictly: unknown parameters and bad values are a 400 naming the
/// parameter.
fn query<T: DeserializeOwned>(request: &Request<Incoming>) -> Result<T, ApiError> {
    let raw = request.uri().query().unwrap_or_default();
    let deserializer = serde_urlencoded::Deserializer::new(form_urlencoded::parse(raw.as_bytes()));
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let field = field_of(&err.path().to_string(), &err.inner().to_string());
        ApiError::bad_request(err.inner().to_string(), field.as_deref())
    })
}

/// Reads a JSON body strictly: unknown fields and bad values are a 400 naming the field.
async fn json_body<T: DeserializeOwned>(request: Request<Incoming>) -> Result<T, ApiError> {
    let (parts, body) = read_body(request).await?;
    // Required, not assumed: a browser sends a cross-origin (or same-site, other-origin) request
    // with cookies and no preflight only for form and text types or none at all, so insisting
    // on JSON keeps a page elsewhere from acting with a logged-in user's cookie.
    if media_type(&parts).as_deref() != Some("application/json") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as application/json, with Content-Type: application/json",
            None,
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(&body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let field = field_of(&err.path().to_string(), &err.inner().to_string());
        ApiError::bad_request(err.inner().to_string(), field.as_deref())
    })
}

/// The field a deserialization error is about: its path, or for an unknown field the name serde
/// quotes in backticks.
fn field_of(path: &str, message: &str) -> Option<String> {
    if message.starts_with("unknown field") {
        return message.split('`').nth(1).map(str::to_owned);
    }
    (path != "." && !path.is_empty()).then(|| path.to_owned())
}

/// Answers holding secrets (a token shown once, a minted token) must not be kept by caches or
/// browsers.
fn no_store(response: &mut Response<Body>) {
    response.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
}

fn no_content() -> Response<Body> {
    let mut response = Response::new(Body::default());
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Vec<ApiKey> {
        vec![
            ApiKey {
                key: "reader-key-0123456".into(),
                write: false,
            },
            ApiKey {
                key: "writer-key-0123456".into(),
                write: true,
            },
        ]
    }

    #[test]
    fn without_keys_only_loopback_clients_get_in() {
        let outside: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(
            check_access(&[], None, outside, false),
            Err(Refusal::LoopbackOnly)
        );
        assert_eq!(
            check_access(&[], Some("anything"), outside, true),
            Err(Refusal::LoopbackOnly)
        );
        for inside in ["127.0.0.1", "::1", "::ffff:127.0.0.1"] {
            assert_eq!(
                check_access(&[], None, inside.parse().unwrap(), true),
                Ok(()),
                "{inside}"
            );
        }
    }

    #[test]
    fn only_loopback_host_names_reach_the_keyless_api() {
        let extra = vec!["auth.internal".to_owned()];
        for host in [
            "localhost",
            "localhost:8080",
            "LOCALHOST.",
            "127.0.0.1:8080",
            "127.0.0.2",
            "[::1]:8080",
            "[::1]",
            "auth.internal:8080",
        ] {
            assert!(host_allowed(Some(host), &extra), "{host}");
        }
        for host in [
            "attacker.example",
            "attacker.example:8080",
            "localhost.attacker.example",
            "10.0.0.1:8080",
            "[2001:db8::1]:8080",
            "",
        ] {
            assert!(!host_allowed(Some(host), &extra), "{host}");
        }
        assert!(host_allowed(None, &[]));
    }

    #[test]
    fn keys_apply_to_every_client_including_loopback() {
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(
            check_access(&keys(), None, local, false),
            Err(Refusal::MissingKey)
        );
        assert_eq!(
            check_access(&keys(), Some("writer-key-012345"), local, false),
            Err(Refusal::WrongKey)
        );
        assert_eq!(
            check_access(&keys(), Some("reader-key-0123456"), local, false),
            Ok(())
        );
        assert_eq!(
            check_access(&keys(), Some("reader-key-0123456"), local, true),
            Err(Refusal::ReadOnly)
        );
        assert_eq!(
            check_access(&keys(), Some("writer-key-0123456"), local, true),
            Ok(())
        );
    }

    #[test]
    fn field_of_unknown_and_nested() {
        assert_eq!(
            field_of(".", "unknown field `bogus`, expected one of `a`"),
            Some("bogus".into())
        );
        assert_eq!(
            field_of("max_sessions", "invalid type"),
            Some("max_sessions".into())
        );
        assert_eq!(field_of(".", "expected value"), None);
    }
}
