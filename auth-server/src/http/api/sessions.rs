//! `/api/sessions`: the registry of live sessions (listed, counted per stream or user) and
//! cutting them: one by id, or every one of a token, a user or a stream (`kick`), optionally
//! banning the token from the stream for a while. The store cuts; the media servers are told
//! afterwards, off the request path ([`App::announce_cut`]).

use std::sync::Arc;
use std::time::Duration;

use auth_core::session::{CountBy, Cut, SessionFilter};
use auth_core::Clock;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::paging::Window;
use super::{call, json_body, no_content, query, Answer};
use crate::app::App;
use crate::http::json;
use crate::http::ApiError;

/// The longest ban a cut may set: a day.
pub const MAX_BAN_SECONDS: u32 = 86_400;

/// The reason access log records of an operator's cut carry.
pub const OPERATOR_CUT: &str = "session_terminated";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    token_id: Option<i64>,
    user_id: Option<String>,
    stream: Option<String>,
    proto: Option<String>,
    source: Option<String>,
    limit: Option<u32>,
    offset: Option<u32>,
}

pub(super) async fn list(app: &Arc<App>, request: &Request<Incoming>) -> Answer {
    let q: ListQuery = query(request)?;
    let window = Window::new(q.limit, q.offset)?;
    let filter = SessionFilter {
        id: None,
        token_id: q.token_id,
        user_id: q.user_id,
        stream: q.stream,
        proto: q.proto,
        source: q.source,
    };
    let sessions = call(app, move |app| {
        app.stores.sessions.sessions(&filter, app.clock().now())
    })
    .await?;
    Ok(json(StatusCode::OK, &window.body(window.slice(sessions))))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum By {
    Stream,
    UserId,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CountsQuery {
    by: By,
}

/// `GET /api/sessions/counts?by=stream|user_id`: live sessions (not terminated) per stream or
/// per user, most first, as `{"by": .., "items": [{"key": .., "sessions": n}], "total": n}`.
pub(super) async fn counts(app: &Arc<App>, request: &Request<Incoming>) -> Answer {
    let q: CountsQuery = query(request)?;
    let (by, name) = match q.by {
        By::Stream => (CountBy::Stream, "stream"),
        By::UserId => (CountBy::UserId, "user_id"),
    };
    let counts = call(app, move |app| {
        app.stores.sessions.session_counts(by, app.clock().now())
    })
    .await?;
    let total: u64 = counts.iter().map(|c| c.sessions).sum();
    Ok(json(
        StatusCode::OK,
        &json!({"by": name, "items": counts, "total": total}),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TerminateQuery {
    ban_seconds: Option<u32>,
}

fn ban_until(
    app: &App,
    ban_seconds: Option<u32>,
) -> Result<Option<auth_core::Timestamp>, ApiError> {
    match ban_seconds.unwrap_or(0) {
        0 => Ok(None),
        n if n <= MAX_BAN_SECONDS => Ok(Some(
            app.clock()
                .now()
                .saturating_add(Duration::from_secs(u64::from(n))),
        )),
        _ => Err(ApiError::bad_request(
            format!("must be from 0 to {MAX_BAN_SECONDS}"),
            Some("ban_seconds"),
        )),
    }
}

/// `DELETE /api/sessions/{id}?ban_seconds=N`: ends the session (its next check is refused),
/// asks its media server to drop it now, and with `ban_seconds` refuses the token on that stream
/// for that long (`session_banned`).
pub(super) async fn terminate(app: &Arc<App>, request: &Request<Incoming>, id: i64) -> Answer {
    let q: TerminateQuery = query(request)?;
    let ban = ban_until(app, q.ban_seconds)?;
    let cut = call(app, move |app| {
        app.stores
            .sessions
            .cut_sessions(&Cut::Session(id), ban, app.clock().now())
    })
    .await?;
    if cut.is_empty() {
        return Err(ApiError::from(&auth_core::Error::NotFound {
            what: "live session",
        }));
    }
    app.announce_cut(&cut, OPERATOR_CUT);
    log::info!("session {id} terminated");
    Ok(no_content())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KickBody {
    token_id: Option<i64>,
    user_id: Option<String>,
    stream: Option<String>,
    ban_seconds: Option<u32>,
}

/// `POST /api/sessions/kick` with one of `token_id`, `user_id`, `stream` (and `ban_seconds`):
/// cuts every matching live session; answers `{"kicked": n}`.
pub(super) async fn kick(app: &Arc<App>, request: Request<Incoming>) -> Answer {
    let body: KickBody = json_body(request).await?;
    let cut = match (body.token_id, body.user_id, body.stream) {
        (Some(id), None, None) => Cut::Token(id),
        (None, Some(user), None) if !user.is_empty() => Cut::User(user),
        (None, None, Some(stream)) if !stream.is_empty() => Cut::Stream(stream),
        _ => {
            return Err(ApiError::bad_request(
                "send exactly one of token_id, user_id, stream",
                None,
            ))
        }
    };
    let ban = ban_until(app, body.ban_seconds)?;
    let cut = call(app, move |app| {
        app.stores
            .sessions
            .cut_sessions(&cut, ban, app.clock().now())
    })
    .await?;
    app.announce_cut(&cut, OPERATOR_CUT);
    Ok(json(StatusCode::OK, &json!({"kicked": cut.len()})))
}
