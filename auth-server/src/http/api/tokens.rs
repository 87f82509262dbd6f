//! `/api/tokens`: create (the secret is shown once, in this answer), list, show, change, delete.

use std::sync::Arc;

use auth_core::token::TokenFilter;
use auth_core::{Clock, TokenPatch, TokenSpec, TokenStatus};
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
    let token = call(app, move |app| {
        app.stores.tokens.update_token(id, patch, app.clock().now())
    })
    .await?;
    log::info!("token {id} updated");
    Ok(json(StatusCode::OK, &token))
}

pub(super) async fn delete(app: &Arc<App>, id: i64) -> Answer {
    if call(app, move |app| app.stores.tokens.delete_token(id)).await? {
        log::info!("token {id} deleted, with its sessions");
        Ok(no_content())
    } else {
        Err(ApiError::from(&auth_core::Error::NotFound {
            what: "token",
        }))
    }
}
