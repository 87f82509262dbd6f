//! Events and their rosters.

use std::sync::Arc;

use auth_core::account::{Action, Role};
use auth_core::event::{EventFilter, EventId, EventPatch, EventSpec, RosterRole};
use auth_core::Clock;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::Deserialize;
use serde_json::json;

use crate::app::App;
use crate::http::api::{call, json_body, query, Answer};
use crate::http::json;

use super::{authorize, not_found, Caller};
use crate::http::api::paging::Window;
use crate::http::ApiError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    title: Option<String>,
    limit: Option<u32>,
    offset: Option<u32>,
    page: Option<u32>,
    per_page: Option<u32>,
}

pub(super) async fn list_events(
    app: &Arc<App>,
    caller: &Caller,
    request: &Request<Incoming>,
) -> Answer {
    authorize(app, caller, Action::ListEvents, None).await?;
    let q: PageQuery = query(request)?;
    let window = Window::either(q.limit, q.offset, q.page, q.per_page)?;
    let filter = EventFilter {
        title: q.title.filter(|t| !t.trim().is_empty()),
        limit: window.limit,
        offset: window.offset,
    };
    let events = call(app, move |app| app.stores.ticketing.list_events(&filter)).await?;
    Ok(json(StatusCode::OK, &window.body(events)))
}

pub(super) async fn create_event(
    app: &Arc<App>,
    caller: &Caller,
    request: Request<Incoming>,
) -> Answer {
    authorize(app, caller, Action::CreateEvent, None).await?;
    let spec: EventSpec = json_body(request).await?;
    let event = call(app, move |app| {
        app.stores
            .ticketing
            .create_event(spec.validate()?, app.clock().now())
    })
    .await?;
    log::info!("event {} created", event.id);
    Ok(json(StatusCode::CREATED, &event))
}

pub(super) async fn show_event(app: &Arc<App>, caller: &Caller, id: EventId) -> Answer {
    authorize(app, caller, Action::ViewEvent, Some(id)).await?;
    let event = call(app, move |app| app.stores.ticketing.event(id)).await?;
    event
        .map(|e| json(StatusCode::OK, &e))
        .ok_or_else(|| not_found("event"))
}

pub(super) async fn update_event(
    app: &Arc<App>,
    caller: &Caller,
    request: Request<Incoming>,
    id: EventId,
) -> Answer {
    authorize(app, caller, Action::EditEvent, Some(id)).await?;
    let patch: EventPatch = json_body(request).await?;
    if patch.is_empty() {
        return Err(ApiError::bad_request(
            "nothing to update: send at least one field",
            None,
        ));
    }
    if patch.streams.is_some() {
        authorize(app, caller, Action::SetEventStreams, Some(id)).await?;
    }
    let event = call(app, move |app| {
        app.stores
            .ticketing
            .update_event(id, &patch, app.clock().now())
    })
    .await?;
    log::info!("event {id} updated");
    Ok(json(StatusCode::OK, &event))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RosterQuery {
    limit: Option<u32>,
    offset: Option<u32>,
    page: Option<u32>,
    per_page: Option<u32>,
}

pub(super) async fn list_roster(
    app: &Arc<App>,
    caller: &Caller,
    request: &Request<Incoming>,
    event: EventId,
    roster: RosterRole,
) -> Answer {
    authorize(app, caller, Action::ViewRoster, Some(event)).await?;
    let q: RosterQuery = query(request)?;
    let window = Window::either(q.limit, q.offset, q.page, q.per_page)?;
    let entries = call(app, move |app| {
        app.stores
            .ticketing
            .roster(event, roster, window.limit, window.offset)
    })
    .await?;
    Ok(json(StatusCode::OK, &window.body(entries)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RosterAddition {
    user_id: Option<i64>,
    username: Option<String>,
}

pub(super) async fn add_to_roster(
    app: &Arc<App>,
    caller: &Caller,
    request: Request<Incoming>,
    event: EventId,
    roster: RosterRole,
) -> Answer {
    authorize(app, caller, Action::EditRoster, Some(event)).await?;
    let addition: RosterAddition = json_body(request).await?;
    let added = call(app, move |app| {
        let store = &app.stores.ticketing;
        let account = match (addition.user_id, addition.username) {
            (Some(id), None) => store.account(id)?,
            (None, Some(name)) => store.account_by_username(&name.trim().to_ascii_lowercase())?,
            _ => {
                return Err(auth_core::Error::invalid(
                    "user_id",
                    "send user_id or username",
                ))
            }
        }
        .ok_or(auth_core::Error::NotFound { what: "account" })?;
        // Door staff and event admins are staff accounts: a plain user is never one by mistake.
        if roster != RosterRole::Users && account.role == Role::User {
            // The account's stored role, not the request's shape, is at fault.
            return Err(auth_core::Error::unprocessable(
                "user_id",
                format!("only agent or admin accounts may be on the {roster} roster"),
            ));
        }
        let added = store.add_to_roster(event, account.id, roster, app.clock().now())?;
        Ok((account.id, added))
    })
    .await?;
    let (account_id, added) = added;
    if added {
        log::info!("account {account_id} added to the {roster} roster of event {event}");
    }
    Ok(json(
        if added {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        &json!({ "event_id": event, "roster": roster, "user_id": account_id, "added": added }),
    ))
}
