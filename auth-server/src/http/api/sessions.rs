//! `/api/sessions`: list live sessions; terminate one (its next re-check is refused).

use std::sync::Arc;

use auth_core::session::SessionFilter;
use auth_core::Clock;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::Deserialize;

use super::paging::Window;
use super::{call, no_content, query, Answer};
use crate::app::App;
use crate::http::json;
use crate::http::ApiError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    token_id: Option<i64>,
    user_id: Option<String>,
    stream: Option<String>,
    limit: Option<u32>,
    offset: Option<u32>,
}

pub(super) async fn list(app: &Arc<App>, request: &Request<Incoming>) -> Answer {
    let q: ListQuery = query(request)?;
    let window = Window::new(q.limit, q.offset)?;
    let filter = SessionFilter {
        token_id: q.token_id,
        user_id: q.user_id,
        stream: q.stream,
    };
    let sessions = call(app, move |app| {
        app.stores.sessions.sessions(&filter, app.clock().now())
    })
    .await?;
    Ok(json(StatusCode::OK, &window.body(window.slice(sessions))))
}

pub(super) async fn terminate(app: &Arc<App>, id: i64) -> Answer {
    if call(app, move |app| {
        app.stores.sessions.terminate_session(id, app.clock().now())
    })
    .await?
    {
        log::info!("session {id} terminated");
        Ok(no_content())
    } else {
        Err(ApiError::from(&auth_core::Error::NotFound {
            what: "live session",
        }))
    }
}
