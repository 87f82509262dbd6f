//! What a caller presents to say who it is: the one reader of credential headers, shared by the
//! management API (API keys) and the event-ticket API (API keys or account access tokens).

use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, COOKIE};
use hyper::Request;

/// The cookie that carries an account's access token for browsers.
pub const ACCESS_TOKEN_COOKIE: &str = "access_token";

/// A presented credential, by where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// `X-API-Key`: only ever an API key.
    ApiKey(String),
    /// `Authorization: Bearer`: an API key or an access token.
    Bearer(String),
    /// The [`ACCESS_TOKEN_COOKIE`]: only ever an access token.
    Cookie(String),
}

impl Credential {
    /// The value to check against the configured API keys, if this kind may carry one.
    pub fn api_key(&self) -> Option<&str> {
        match self {
            Credential::ApiKey(key) | Credential::Bearer(key) => Some(key),
            Credential::Cookie(_) => None,
        }
    }

    pub fn value(&self) -> &str {
        match self {
            Credential::ApiKey(value) | Credential::Bearer(value) | Credential::Cookie(value) => {
                value
            }
        }
    }
}

/// The request's credential, first found of: `X-API-Key`, `Authorization: Bearer`, the access
/// token cookie.
pub fn presented(request: &Request<Incoming>) -> Option<Credential> {
    let headers = request.headers();
    if let Some(key) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(Credential::ApiKey(key.trim().to_owned()));
    }
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| Credential::Bearer(token.trim().to_owned()));
    bearer.or_else(|| cookie(request, ACCESS_TOKEN_COOKIE).map(Credential::Cookie))
}

fn cookie(request: &Request<Incoming>, name: &str) -> Option<String> {
    request
        .headers()
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim().to_owned())
}
