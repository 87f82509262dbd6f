//! `/api/tokens`: create (the secret is shown once, in this answer), list, show, change, delete.
//!
//! A change that a live session no longer qualifies under (suspended, expired, an allow-list
//! that leaves out its address or stream) cuts that session at once, and deleting a token cuts
//! all of them: the store refuses them and their media servers are told
//! ([`App::announce_cut`]), each cut logged with the reason its next check would have got.

use std::sync::Arc;

use auth_core::session::{Cut, Session, SessionFilter};
use auth_core::token::TokenFilter;
use auth_core::{session_still_allowed, Clock, DenyReason, TokenPatch, TokenSpec, TokenStatus};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::Deserialize;
use serde_json::Value;

use super::paging::Window;
use super::{call, json_body, no_content, no_store, query, Answer};
use crate::app::App;
use crate::http::json;
use crate::http::ApiError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<TokenStatus>,
    user_id: Option<String>,
    /// User id prefix.
    q: Option<String>,
    limit: Option<u32>,
    offset: Option<u32>,
}

pub(super) async fn list(app: &Arc<App>, request: &Request<Incoming>) -> Answer {
    let q: ListQuery = query(request)?;
    let window = Window::new(q.limit, q.offset)?;
    let filter = TokenFilter {
        status: q.status,
        user_id: q.user_id,
        user_id_prefix: q.q.filter(|p| !p.is_empty()),
        limit: window.limit,
        offset: window.offset,
    };
    let page = call(app, move |app| app.stores.tokens.list_tokens(&filter)).await?;
    Ok(json(StatusCode::OK, &window.body(page)))
}

pub(super) async fn create(app: &Arc<App>, request: Request<Incoming>) -> Answer {
    let spec: TokenSpec = json_body(request).await?;
    let token = call(app, move |app| {
        let (new, secret) = spec.validate(app.hasher())?;
        let token = app.stores.tokens.create_token(new, app.clock().now())?;
        Ok((token, secret))
    })
    .await;
    let (token, secret) = token?;
    let mut body = serde_json::to_value(&token).unwrap_or(Value::Null);
    // The only time the secret leaves the server: the store keeps just its digest.
    body["token"] = Value::String(secret);
    log::info!("token {} created for user {}", token.id, token.user_id);
    // The secret is in this answer only.
    let mut response = json(StatusCode::CREATED, &body);
    no_store(&mut response);
    Ok(response)
}

pub(super) async fn show(app: &Arc<App>, id: i64) -> Answer {
    let token = call(app, move |app| {
        app.stores
            .tokens
            .token(id)?
            .ok_or(auth_core::Error::NotFound { what: "token" })
    })
    .await?;
    Ok(json(StatusCode::OK, &token))
}

pub(super) async fn update(app: &Arc<App>, request: Request<Incoming>, id: i64) -> Answer {
    let patch: TokenPatch = json_body(request).await?;
    if patch.is_empty() {
        return Err(ApiError::bad_request(
            "nothing to update: send at least one field",
            None,
        ));
    }
    let (token, cut) = call(app, move |app| {
        let now = app.clock().now();
        let token = app.stores.tokens.update_token(id, patch, now)?;
        // Every live session the token now refuses, with the reason.
        let mut cut: Vec<(Session, DenyReason)> = Vec::new();
        for session in live_sessions(app, id)? {
            if let Err(reason) = session_still_allowed(&token, &session, now) {
                for session in
                    app.stores
                        .sessions
                        .cut_sessions(&Cut::Session(session.id), None, now)?
                {
                    cut.push((session, reason));
                }
            }
        }
        Ok((token, cut))
    })
    .await?;
    log::info!("token {id} updated");
    for (session, reason) in &cut {
        app.announce_cut(std::slice::from_ref(session), reason.code());
    }
    Ok(json(StatusCode::OK, &token))
}

pub(super) async fn delete(app: &Arc<App>, id: i64) -> Answer {
    let (deleted, live) = call(app, move |app| {
        // Read first: deleting the token removes its sessions.
        let live = live_sessions(app, id)?;
        Ok((app.stores.tokens.delete_token(id, app.clock().now())?, live))
    })
    .await?;
    if deleted {
        log::info!("token {id} deleted, with its sessions");
        app.announce_cut(&live, DenyReason::TokenNotFound.code());
        Ok(no_content())
    } else {
        Err(ApiError::from(&auth_core::Error::NotFound {
            what: "token",
        }))
    }
}

/// The token's live sessions that still hold a slot.
fn live_sessions(app: &App, id: i64) -> auth_core::Result<Vec<Session>> {
    let filter = SessionFilter {
        token_id: Some(id),
        ..Default::default()
    };
    let now = app.clock().now();
    Ok(app
        .stores
        .sessions
        .sessions(&filter, now)?
        .into_iter()
        .filter(|s| s.holds_slot(now))
        .collect())
}
