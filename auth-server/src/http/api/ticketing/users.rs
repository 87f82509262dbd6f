//! Accounts: registration, login and logout, a user's own record.

use std::net::SocketAddr;
use std::sync::Arc;

use auth_core::account::{self, Action, Forbidden, Role, UserPatch, UserSpec};
use auth_core::Clock;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, SET_COOKIE};
use hyper::{Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::json;

use crate::app::App;
use crate::http::api::{call, json_body, no_content, no_store, Answer};
use crate::http::{json, Body};

use super::{authorize, caller, forbidden, not_found, Caller, Early};
use crate::http::api::credentials::ACCESS_TOKEN_COOKIE;
use crate::http::ApiError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Registration {
    user: UserSpec,
    /// Only an administrator may create an agent or admin.
    role: Option<Role>,
}

/// Open to anyone for plain users (unless `REGISTRATION=closed`), a few per client network
/// per hour; an administrator (or API key) may set another role, and registers anyone anyway.
pub(super) async fn register(
    app: &Arc<App>,
    request: Request<Incoming>,
    peer: SocketAddr,
) -> Answer {
    let caller = caller(app, &request).await?;
    let body: Registration = json_body(request).await?;
    let role = body.role.unwrap_or(Role::User);
    // Administrators (and API keys) register anyone, with any role, at any pace.
    let admin = caller.as_ref().is_some_and(|caller| {
        account::permits(caller.principal, Action::ChangeRole, Default::default()).is_ok()
    });
    if !admin {
        if role != Role::User {
            return Err(forbidden(Forbidden::AdminOnly));
        }
        if !app.ticketing.open_registration {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "registration_closed",
                "registration is closed: an administrator creates accounts",
                None,
            ));
        }
        let network = auth_core::account::limiter::network_of(peer.ip());
        let limiter = &app.ticketing.registration_limiter;
        if let Err(throttled) = limiter.begin(network, app.clock().now()) {
            if throttled.first {
                log::warn!("registrations from {network} throttled");
            }
            return Err(ApiError::too_many_attempts(
                "too many registrations from this address: wait before trying again",
                throttled.retry_after,
            ));
        }
    }
    let spec = body.user;
    let slot = password_slot(app).await?;
    let account = call(app, move |app| {
        let _slot = slot;
        let new = spec.validate(role, &app.ticketing.passwords)?;
        app.stores.ticketing.create_account(new, app.clock().now())
    })
    .await?;
    log::info!(
        "account {} ({}) created as {}",
        account.id,
        account.username,
        account.role
    );
    Ok(json(StatusCode::CREATED, &account))
}

pub(super) async fn show_user(app: &Arc<App>, caller: &Caller, id: i64) -> Answer {
    authorize(app, caller, Action::ViewAccount(id), None).await?;
    let account = call(app, move |app| app.stores.ticketing.account(id)).await?;
    account
        .map(|a| json(StatusCode::OK, &a))
        .ok_or_else(|| not_found("account"))
}

/// Changing one's own password takes the current one (a stolen access token must not be
/// enough to take the account over), checked under the login limiter like a login; an
/// administrator resetting another account's password needs none. A password change ends every
/// access token issued before it (see `auth_core::account::authenticate`).
pub(super) async fn update_user(
    app: &Arc<App>,
    caller: &Caller,
    request: Request<Incoming>,
    id: i64,
    peer: SocketAddr,
) -> Answer {
    let mut patch: UserPatch = json_body(request).await?;
    let current_password = patch.current_password.take();
    if current_password.is_some() && patch.password.is_none() {
        return Err(ApiError::bad_request(
            "current_password goes with password",
            Some("current_password"),
        ));
    }
    if patch.is_empty() {
        return Err(ApiError::bad_request(
            "nothing to update: send at least one field",
            None,
        ));
    }
    authorize(app, caller, Action::EditAccount(id), None).await?;
    if patch.role.is_some() {
        authorize(app, caller, Action::ChangeRole, None).await?;
    }
    let changes_password = patch.password.is_some();
    let own = caller.account_id() == Some(id);
    // The limiter's attempt is held until the hash is checked (dropped at the end).
    let attempt = match (changes_password && own, &caller.session) {
        (true, Some((account, _))) => {
            if current_password.is_none() {
                // Well formed, but not from this caller: 422 (an administrator changing another
                // account's password sends none).
                return Err(ApiError::from(&auth_core::Error::unprocessable(
                    "current_password",
                    "changing your own password takes current_password",
                )));
            }
            let now = app.clock().now();
            let limiter = &app.ticketing.login_limiter;
            match limiter.begin(&account.username, peer.ip(), now) {
                Ok(attempt) => Some(attempt),
                Err(throttled) => {
                    return Err(ApiError::too_many_attempts(
                        "too many wrong passwords: wait before trying again",
                        throttled.retry_after,
                    ))
                }
            }
        }
        _ => None,
    };
    let slot = match patch.password {
        Some(_) => Some(password_slot(app).await?),
        None => None,
    };
    let checks_current = attempt.is_some();
    let outcome = call(app, move |app| {
        let _slot = slot;
        let current = app
            .stores
            .ticketing
            .account(id)?
            .ok_or(auth_core::Error::NotFound { what: "account" })?;
        let passwords = &app.ticketing.passwords;
        if checks_current {
            let given = current_password.unwrap_or_default();
            if !passwords.verify(&given, &current.password_hash) {
                return Ok(None);
            }
        }
        // Past this point the current password was right: a refused change is not a guess.
        let now = app.clock().now();
        let updated = patch
            .validate(&current.username, passwords)
            .and_then(|patch| app.stores.ticketing.update_account(id, patch, now));
        Ok(Some(updated))
    })
    .await?;
    let Some(updated) = outcome else {
        log::info!("account {id}: password change refused, the current password is wrong");
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "invalid_credentials",
            "current_password is wrong",
            Some("current_password"),
        ));
    };
    if let Some(attempt) = attempt {
        attempt.succeeded();
    }
    let account = updated.map_err(ApiError::from)?;
    if changes_password {
        let by = match caller.account_id() {
            Some(by) if by == id => "itself".to_owned(),
            Some(by) => format!("account {by}"),
            None => "an API key".to_owned(),
        };
        log::info!(
            "account {id}'s password changed by {by}: access tokens issued before now are refused"
        );
    } else {
        log::info!("account {id} updated");
    }
    Ok(json(StatusCode::OK, &account))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    username: String,
    password: String,
}

pub(super) async fn login(app: &Arc<App>, request: Request<Incoming>, peer: SocketAddr) -> Answer {
    let credentials: Credentials = json_body(request).await?;
    let username = credentials.username.trim().to_ascii_lowercase();
    let ip = peer.ip();
    let now = app.clock().now();
    // Counted now, before the password is hashed, and one at a time per username and address:
    // a burst cannot get more guesses than the limit (see `LoginLimiter::begin`).
    let attempt = match app.ticketing.login_limiter.begin(&username, ip, now) {
        Ok(attempt) => attempt,
        Err(throttled) => {
            return Err(ApiError::too_many_attempts(
                "too many failed logins: wait before trying again",
                throttled.retry_after,
            ))
        }
    };
    let name = username.clone();
    let slot = password_slot(app).await?;
    let outcome = call(app, move |app| {
        let _slot = slot;
        let t = &app.ticketing;
        account::login(
            app.stores.ticketing.as_ref(),
            &t.passwords,
            &t.access_tokens,
            &name,
            &credentials.password,
            now,
        )
    })
    .await?;
    let Some((account, issued)) = outcome else {
        // Already counted by `begin`.
        drop(attempt);
        // Escaped and cut short: a username is the client's text, and a password typed into
        // its field must not land whole in the log.
        let shown: String = username.chars().take(32).collect();
        log::info!("failed login for {shown:?} from {ip}");
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "the username or password is wrong",
            None,
        ));
    };
    attempt.succeeded();
    log::info!("account {} logged in from {ip}", account.id);
    let expires_in = issued.expires_in.as_secs();
    let mut response = json(
        StatusCode::OK,
        &json!({
            "access_token": issued.token,
            "token_type": "Bearer",
            "expires_in": expires_in,
        }),
    );
    set_cookie(
        &mut response,
        &format!(
            "{ACCESS_TOKEN_COOKIE}={}; Max-Age={expires_in}; Path=/api; HttpOnly; Secure; SameSite=Strict",
            issued.token
        ),
    );
    no_store(&mut response);
    Ok(response)
}

pub(super) async fn logout(app: &Arc<App>, caller: &Caller) -> Answer {
    let Some((account, claims)) = caller.session.clone() else {
        return Err(ApiError::bad_request(
            "log out with an access token (bearer or cookie), not an API key",
            None,
        ));
    };
    call(app, move |app| {
        account::logout(app.stores.ticketing.as_ref(), &claims)
    })
    .await?;
    log::info!("account {} logged out", account.id);
    let mut response = no_content();
    set_cookie(
        &mut response,
        &format!("{ACCESS_TOKEN_COOKIE}=; Max-Age=0; Path=/api; HttpOnly; Secure; SameSite=Strict"),
    );
    Ok(response)
}

/// A turn to hash or check a password (see [`crate::ticketing::Ticketing::password_slots`]).
pub(super) async fn password_slot(app: &App) -> Result<tokio::sync::OwnedSemaphorePermit, Early> {
    let slots = std::sync::Arc::clone(&app.ticketing.password_slots);
    slots.acquire_owned().await.map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the server is stopping",
            None,
        )
    })
}

pub(super) fn set_cookie(response: &mut Response<Body>, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(SET_COOKIE, value);
    }
}

/// `GET /api/me`: the logged-in account, every event it is on a roster of (with its standing
/// there) and its tickets, grouped by event. The wallet and door pages start from this one
/// call; it is also how a page learns whether its HttpOnly cookie still logs it in.
pub(super) async fn me(app: &Arc<App>, caller: &Caller) -> Answer {
    let Some((account, _)) = caller.session.clone() else {
        return Err(ApiError::bad_request(
            "an API key has no account: /api/me answers logged-in accounts",
            None,
        ));
    };
    let id = account.id;
    let (standings, tickets, events) = call(app, move |app| {
        let store = &app.stores.ticketing;
        let standings = store.standings_of(id)?;
        let tickets = store.holder_tickets(id)?;
        // A ticket may outlive its holder's place on the roster: its event is listed too.
        let mut ids: Vec<_> = standings.iter().map(|(e, _)| *e).collect();
        ids.extend(tickets.iter().map(|t| t.event_id));
        ids.sort_unstable();
        ids.dedup();
        let mut events = Vec::with_capacity(ids.len());
        for event in ids {
            if let Some(event) = store.event(event)? {
                events.push(event);
            }
        }
        Ok((standings, tickets, events))
    })
    .await?;
    let events: Vec<_> = events
        .into_iter()
        .map(|event| {
            let standing = standings
                .iter()
                .find(|(e, _)| *e == event.id)
                .map(|(_, s)| *s)
                .unwrap_or_default();
            let held: Vec<_> = tickets.iter().filter(|t| t.event_id == event.id).collect();
            json!({
                "event": event,
                "attendee": standing.attendee,
                "agent": standing.agent,
                "admin": standing.admin,
                "tickets": held,
            })
        })
        .collect();
    let mut response = json(
        StatusCode::OK,
        &json!({ "account": account, "events": events }),
    );
    no_store(&mut response);
    Ok(response)
}
