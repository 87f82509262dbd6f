//! The one error of every HTTP answer: [`ApiError`], rendered as JSON
//! `{"error": code, "message": text, "field"?: name}` with a stable code. Core errors map to
//! status codes in its `From<&auth_core::Error>`, the one place that does it.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Response, StatusCode};
use serde::Serialize;

use super::Body;

/// A refused or failed request: what the client is told.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<String>,
    header: Option<(HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
        field: Option<&str>,
    ) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: field.map(str::to_owned),
            header: None,
        }
    }

    /// 400 `invalid_request`, naming the field at fault when there is one.
    pub fn bad_request(message: impl Into<String>, field: Option<&str>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message, field)
    }

    /// 401 `unauthorized`, with the `WWW-Authenticate: Bearer` challenge.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message, None)
            .with_header(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
    }

    /// 403 `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message, None)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message, None)
    }

    /// 503 `backend_timeout`: the store did not answer within the response budget.
    pub fn backend_timeout() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "backend_timeout",
            "the store did not answer in time",
            None,
        )
    }

    /// 429 `too_many_attempts`, with `Retry-After` in whole seconds (at least 1).
    pub fn too_many_attempts(message: impl Into<String>, retry_after: std::time::Duration) -> Self {
        let error = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            message,
            None,
        );
        let wait = retry_after.as_secs().max(1).to_string();
        match HeaderValue::from_str(&wait) {
            Ok(value) => error.with_header(hyper::header::RETRY_AFTER, value),
            Err(_) => error,
        }
    }

    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.header = Some((name, value));
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn code(&self) -> &'static str {
        self.code
    }
}

/// The one mapping from core errors to HTTP. Storage details go to the log, not the client.
impl From<&auth_core::Error> for ApiError {
    fn from(err: &auth_core::Error) -> Self {
        use auth_core::Error;
        match err {
            Error::InvalidInput { field, message } => ApiError::new(
                StatusCode::BAD_REQUEST,
                err.code(),
                message.clone(),
                Some(field),
            ),
            Error::Unprocessable { field, message } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                err.code(),
                message.clone(),
                Some(field),
            ),
            Error::NotFound { what } => ApiError::new(
                StatusCode::NOT_FOUND,
                err.code(),
                format!("{what} not found"),
                None,
            ),
            Error::Conflict { field, message } => ApiError::new(
                StatusCode::CONFLICT,
                err.code(),
                message.clone(),
                Some(field),
            ),
            Error::Storage(detail) => {
                log::error!("storage error: {detail}");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    err.code(),
                    "the store is unavailable",
                    None,
                )
            }
        }
    }
}

impl From<auth_core::Error> for ApiError {
    fn from(err: auth_core::Error) -> Self {
        ApiError::from(&err)
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl From<ApiError> for Response<Body> {
    fn from(err: ApiError) -> Self {
        let body = ErrorBody {
            error: err.code,
            message: &err.message,
            field: err.field.as_deref(),
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_else(|_| {
            br#"{"error":"internal_error","message":"cannot encode the answer"}"#.to_vec()
        });
        let mut response = Response::new(Full::new(Bytes::from(bytes)));
        *response.status_mut() = err.status;
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some((name, value)) = err.header {
            response.headers_mut().insert(name, value);
        }
        response
    }
}
