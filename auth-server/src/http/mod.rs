//! HTTP routing and the helpers every endpoint shares. One module per endpoint family.
//!
//! Every error answer is JSON `{"error": code, "message": text}`; core errors map to status codes
//! in [`error_response`], the one place that does it.

// Early-return helpers yield a ready `Response` as their error; boxing it would only add an
// allocation to the path that answers bad requests.
#![allow(clippy::result_large_err)]

pub mod flussonic;
pub mod health;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;

use crate::server::App;

pub type Body = Full<Bytes>;

/// Largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;

pub async fn route(
    app: Arc<App>,
    request: Request<Incoming>,
    peer: SocketAddr,
) -> Result<Response<Body>, Infallible> {
    let _ = peer;
    let response = match (request.method(), request.uri().path()) {
        (&Method::GET | &Method::POST, "/auth") => flussonic::auth(&app, request).await,
        (_, "/auth") => method_not_allowed("GET, POST"),
        (&Method::GET | &Method::HEAD, "/health") => health::health(&app).await,
        (_, "/health") => method_not_allowed("GET, HEAD"),
        _ => error_body(StatusCode::NOT_FOUND, "not_found", "no such endpoint", None),
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

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

pub fn error_body(
    status: StatusCode,
    code: &str,
    message: &str,
    field: Option<&str>,
) -> Response<Body> {
    json(
        status,
        &ErrorBody {
            error: code,
            message,
            field,
        },
    )
}

/// The one mapping from core errors to HTTP. Storage details go to the log, not the client.
pub fn error_response(err: &auth_core::Error) -> Response<Body> {
    use auth_core::Error;
    match err {
        Error::InvalidInput { field, message } => {
            error_body(StatusCode::BAD_REQUEST, err.code(), message, Some(field))
        }
        Error::NotFound { what } => error_body(
            StatusCode::NOT_FOUND,
            err.code(),
            &format!("{what} not found"),
            None,
        ),
        Error::Conflict { field, message } => {
            error_body(StatusCode::CONFLICT, err.code(), message, Some(field))
        }
        Error::Storage(detail) => {
            log::error!("storage error: {detail}");
            error_body(
                StatusCode::SERVICE_UNAVAILABLE,
                err.code(),
                "the store is unavailable",
                None,
            )
        }
    }
}

pub fn invalid_request(message: &str) -> Response<Body> {
    error_body(StatusCode::BAD_REQUEST, "invalid_request", message, None)
}

fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut response = error_body(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed here",
        None,
    );
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    response
}

/// Reads the whole body, refusing more than [`MAX_BODY`] bytes with 413 before reading them
/// when the client announced its length.
pub async fn read_body(
    request: Request<Incoming>,
) -> Result<(hyper::http::request::Parts, Bytes), Response<Body>> {
    let too_large = || {
        error_body(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            &format!("the body must be at most {MAX_BODY} bytes"),
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
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => Ok((parts, collected.to_bytes())),
        Err(err)
            if err
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(too_large())
        }
        Err(err) => Err(invalid_request(&format!(
            "cannot read the request body: {err}"
        ))),
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
