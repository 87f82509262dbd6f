//! The crate's one error type.
//!
//! Every variant has a stable, machine-readable [`Error::code`] that callers (the HTTP layer, a CLI)
//! map to their own status codes in one place. Deny decisions are *not* errors: a refused viewer
//! is a normal answer ([`crate::Decision::Deny`]); an `Error` means the question could not be
//! answered or the input was unusable.

use std::fmt;

/// What went wrong, with a field name where one input is at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller sent something unusable; `field` names the culprit.
    #[error("{field}: {message}")]
    InvalidInput {
        field: &'static str,
        message: String,
    },
    /// Each field is well formed, but together (or with what is stored) they make no sense: an
    /// end before its start, a password that names its account. Apart from
    /// [`Error::InvalidInput`] so that an API can tell a request its schema refuses from one it
    /// admits (HTTP 422 rather than 400); the same `invalid_request` code.
    #[error("{field}: {message}")]
    Unprocessable {
        field: &'static str,
        message: String,
    },
    /// The thing asked for does not exist.
    #[error("{what} not found")]
    NotFound { what: &'static str },
    /// The write would break a uniqueness rule (e.g. a duplicate token).
    #[error("{field}: {message}")]
    Conflict {
        field: &'static str,
        message: String,
    },
    /// The store failed: a database error, a poisoned pool, a full disk. The detail is for logs,
    /// not for clients.
    #[error("storage error: {0}")]
    Storage(#[source] StorageError),
}

impl Error {
    /// Stable reason code: part of the public contract, never renamed.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidInput { .. } | Error::Unprocessable { .. } => "invalid_request",
            Error::NotFound { .. } => "not_found",
            Error::Conflict { .. } => "conflict",
            Error::Storage(_) => "storage_error",
        }
    }

    /// The input field at fault, when there is one.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Error::InvalidInput { field, .. }
            | Error::Unprocessable { field, .. }
            | Error::Conflict { field, .. } => Some(field),
            _ => None,
        }
    }

    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Error::InvalidInput {
            field,
            message: message.into(),
        }
    }

    pub fn unprocessable(field: &'static str, message: impl Into<String>) -> Self {
        Error::Unprocessable {
            field,
            message: message.into(),
        }
    }

    pub fn storage(detail: impl fmt::Display) -> Self {
        Error::Storage(StorageError(detail.to_string()))
    }
}

/// Opaque storage failure detail; a string so that every backend (SQLite, PostgreSQL, ...) fits
/// without this crate depending on each driver's error type.
#[derive(Debug)]
pub struct StorageError(pub String);

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StorageError {}

#[cfg(feature = "sqlite")]
impl From<rusqlite::Error> for Error {
    fn from(err: rusqlite::Error) -> Self {
        Error::storage(err)
    }
}

#[cfg(feature = "postgres")]
impl From<::postgres::Error> for Error {
    /// With its cause: the driver's own message is only its kind ("db error").
    fn from(err: ::postgres::Error) -> Self {
        match std::error::Error::source(&err) {
            Some(cause) => Error::storage(format!("{err}: {cause}")),
            None => Error::storage(err),
        }
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl From<r2d2::Error> for Error {
    fn from(err: r2d2::Error) -> Self {
        Error::storage(err)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
