//! The event-ticket API: accounts (`/api/users`, `/api/login`, `/api/logout`, `/api/me`), events and their
//! rosters (`/api/events...`), tickets (`/api/tickets...`).
//!
//! Who is asking is settled once per request ([`caller`]): a management API key (read-write or
//! read-only: an administrator), else an account's access token, from `Authorization: Bearer`
//! or the `access_token` cookie. Unlike the token API, a loopback client without credentials is
//! nobody here. What the caller may do is [`auth_core::account::permits`]' answer, asked through
//! [`authorize`] and nowhere else.

mod events;
mod tickets;
mod users;

use std::net::SocketAddr;
use std::sync::Arc;

use auth_core::account::{
    self, AccessClaims, Account, Action, EventStanding, Forbidden, Principal,
};
use auth_core::event::EventId;
use auth_core::Clock;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

use super::credentials::{self, Credential};
use super::{call, key_access};
use crate::app::App;
use crate::http::ApiError;
use crate::http::{Body, Endpoint};
use events::{add_to_roster, create_event, list_events, list_roster, show_event, update_event};
use tickets::{
    issue_ticket, mint_for_holder, revoke_ticket, signed_ticket, unlock_ticket,
    verify_signed_ticket, verify_ticket,
};
use users::{login, logout, me, register, show_user, update_user};

pub async fn handle(
    app: &Arc<App>,
    request: Request<Incoming>,
    peer: SocketAddr,
    endpoint: Endpoint,
    id: Option<&str>,
) -> Response<Body> {
    let id = match id.map(super::parse_id).transpose() {
        Ok(id) => id,
        Err(refused) => return refused.into(),
    };
    let method = request.method().clone();
    let result = match (endpoint, method, id) {
        (Endpoint::Login, Method::POST, _) => login(app, request, peer).await,
        (Endpoint::Users, Method::POST, _) => register(app, request, peer).await,
        (endpoint, method, id) => match caller(app, &request).await {
            Err(response) => Err(response),
            Ok(None) => Err(ApiError::unauthorized(
                "log in first: send Authorization: Bearer <access_token>, the access_token \
                 cookie, or an API key",
            )),
            Ok(Some(caller)) => match (endpoint, method, id) {
                (Endpoint::Logout, Method::POST, _) => logout(app, &caller).await,
                (Endpoint::Me, Method::GET, _) => me(app, &caller).await,
                (Endpoint::User, Method::GET, Some(id)) => show_user(app, &caller, id).await,
                (Endpoint::User, Method::PATCH, Some(id)) => {
                    update_user(app, &caller, request, id, peer).await
                }
                (Endpoint::Events, Method::GET, _) => list_events(app, &caller, &request).await,
                (Endpoint::Events, Method::POST, _) => create_event(app, &caller, request).await,
                (Endpoint::Event, Method::GET, Some(id)) => show_event(app, &caller, id).await,
                (Endpoint::Event, Method::PATCH, Some(id)) => {
                    update_event(app, &caller, request, id).await
                }
                (Endpoint::Roster(roster), Method::GET, Some(id)) => {
                    list_roster(app, &caller, &request, id, roster).await
                }
                (Endpoint::Roster(roster), Method::POST, Some(id)) => {
                    add_to_roster(app, &caller, request, id, roster).await
                }
                (Endpoint::Tickets, Method::POST, _) => issue_ticket(app, &caller, request).await,
                (Endpoint::TicketVerify, Method::POST, _) => {
                    verify_ticket(app, &caller, request).await
                }
                (Endpoint::Ticket, Method::DELETE, Some(id)) => {
                    revoke_ticket(app, &caller, id).await
                }
                (Endpoint::TicketUnlock, Method::POST, Some(id)) => {
                    unlock_ticket(app, &caller, id).await
                }
                (Endpoint::SignedTicket, Method::GET, Some(id)) => {
                    signed_ticket(app, &caller, &request, id).await
                }
                (Endpoint::SignedTicketVerify, Method::POST, _) => {
                    verify_signed_ticket(app, &caller, request).await
                }
                (Endpoint::PlaybackTokens, Method::POST, _) => {
                    mint_for_holder(app, &caller, request).await
                }
                _ => Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    "no such endpoint",
                    None,
                )),
            },
        },
    };
    result.unwrap_or_else(Response::from)
}

/// The authenticated caller.
pub(super) struct Caller {
    principal: Principal,
    /// The account and its token's claims, when the caller logged in.
    session: Option<(Account, AccessClaims)>,
}

impl Caller {
    fn account_id(&self) -> Option<account::AccountId> {
        self.session.as_ref().map(|(a, _)| a.id)
    }
}

/// Who is asking: `None` when no credential came; 401 when one came and is not valid.
pub(super) async fn caller(
    app: &Arc<App>,
    request: &Request<Incoming>,
) -> Result<Option<Caller>, Early> {
    let Some(credential) = credentials::presented(request) else {
        return Ok(None);
    };
    if let Some(write) = key_access(&app.api_keys, credential.value()) {
        return Ok(Some(Caller {
            principal: Principal::ApiKey { write },
            session: None,
        }));
    }
    let presented = match credential {
        Credential::ApiKey(_) => return Err(ApiError::unauthorized("the API key is not valid")),
        Credential::Bearer(token) | Credential::Cookie(token) => token,
    };
    let session = call(app, move |app| {
        account::authenticate(
            app.stores.ticketing.as_ref(),
            &app.ticketing.access_tokens,
            &presented,
            app.clock().now(),
        )
    })
    .await?;
    match session {
        Some((account, claims)) => Ok(Some(Caller {
            principal: Principal::Account {
                id: account.id,
                role: account.role,
            },
            session: Some((account, claims)),
        })),
        None => Err(ApiError::unauthorized(
            "the access token is not valid: it is malformed, expired or logged out",
        )),
    }
}

/// An early answer: a ready error response (the error side of [`Answer`]).
pub(super) type Early = ApiError;

/// Asks the policy, with the caller's standing in `event` when it is an account and the action
/// concerns one: the one place every endpoint here goes through.
pub(super) async fn authorize(
    app: &Arc<App>,
    caller: &Caller,
    action: Action,
    event: Option<EventId>,
) -> Result<(), Early> {
    let standing = match (caller.account_id(), event) {
        (Some(account), Some(event)) => {
            call(app, move |app| {
                app.stores.ticketing.roster_standing(event, account)
            })
            .await?
        }
        _ => EventStanding::default(),
    };
    account::permits(caller.principal, action, standing).map_err(forbidden)
}

pub(super) fn forbidden(why: Forbidden) -> Early {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", why.message(), None)
}

pub(super) fn not_found(what: &'static str) -> Early {
    ApiError::from(&auth_core::Error::NotFound { what })
}

/// Whether the request is an administrator's browser: a valid `access_token` cookie of an
/// account with the admin role. Only the cookie counts: `Authorization: Bearer` stays an API
/// key on the management API, as before. A cookie that does not log in (expired, logged out) is
/// not an error here: the request is then judged by its API key, or loopback, as any other.
/// A logged-in account that is not an administrator is refused outright (403), so that it is
/// told why rather than asked for a key.
pub(in crate::http::api) async fn cookie_administrator(
    app: &Arc<App>,
    request: &Request<Incoming>,
) -> Result<bool, Early> {
    if !matches!(credentials::presented(request), Some(Credential::Cookie(_))) {
        return Ok(false);
    }
    match caller(app, request).await {
        Ok(Some(Caller {
            principal: Principal::Account { role, .. },
            ..
        })) => {
            if role == account::Role::Admin {
                Ok(true)
            } else {
                Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "the management API is for administrators: log in with an admin account",
                    None,
                ))
            }
        }
        Ok(_) | Err(_) => Ok(false),
    }
}

/// Whether `POST /api/playback-tokens` comes from a logged-in account (an access token, not an
/// API key): then it is a holder's request, bounded by their ticket.
pub(in crate::http::api) fn presents_access_token(app: &App, request: &Request<Incoming>) -> bool {
    match credentials::presented(request) {
        Some(Credential::Bearer(token) | Credential::Cookie(token)) => {
            key_access(&app.api_keys, &token).is_none()
        }
        _ => false,
    }
}
