//! The event-ticket API: accounts (`/api/users`, `/api/login`, `/api/logout`), events and their
//! rosters (`/api/events...`), tickets (`/api/tickets...`).
//!
//! Who is asking is settled once per request ([`caller`]): a management API key (read-write or
//! read-only: an administrator), else an account's access token, from `Authorization: Bearer`
//! or the `access_token` cookie. Unlike the token API, a loopback client without credentials is
//! nobody here. What the caller may do is [`auth_core::account::permits`]' answer, asked through
//! [`authorize`] and nowhere else.

use std::net::SocketAddr;
use std::sync::Arc;

use auth_core::account::{
    self, AccessClaims, Account, Action, EventStanding, Forbidden, Principal, Role, UserPatch,
    UserSpec,
};
use auth_core::event::{Event, EventFilter, EventId, EventPatch, EventSpec, RosterRole};
use auth_core::ticket::{self, playback, qr, signed, Ticket, TicketId, Verdict};
use auth_core::Clock;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, COOKIE, RETRY_AFTER, SET_COOKIE};
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    bad_request, call, json_body, key_access, no_content, no_store, query, unauthorized, Answer,
};
use crate::app::App;
use crate::http::{error_body, error_response, json, Body, Endpoint};
use crate::ticketing::TICKET_ISSUER;

/// The cookie that carries an access token for browsers.
const COOKIE_NAME: &str = "access_token";
/// Largest page of events or roster entries.
const MAX_PER_PAGE: u32 = 100;

pub async fn handle(
    app: &Arc<App>,
    request: Request<Incoming>,
    peer: SocketAddr,
    endpoint: Endpoint,
    id: Option<&str>,
) -> Response<Body> {
    let id = match id.map(str::parse::<i64>) {
        None => None,
        Some(Ok(id)) => Some(id),
        Some(Err(_)) => return bad_request("the id must be an integer", Some("id")),
    };
    let method = request.method().clone();
    let result = match (endpoint, method, id) {
        (Endpoint::Login, Method::POST, _) => login(app, request, peer).await,
        (Endpoint::Users, Method::POST, _) => register(app, request).await,
        (endpoint, method, id) => match caller(app, &request).await {
            Err(response) => Err(response),
            Ok(None) => Err(unauthorized(
                "log in first: send Authorization: Bearer <access_token>, the access_token \
                 cookie, or an API key",
            )),
            Ok(Some(caller)) => match (endpoint, method, id) {
                (Endpoint::Logout, Method::POST, _) => logout(app, &caller).await,
                (Endpoint::User, Method::GET, Some(id)) => show_user(app, &caller, id).await,
                (Endpoint::User, Method::PATCH, Some(id)) => {
                    update_user(app, &caller, request, id).await
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
                (Endpoint::SignedTicket, Method::GET, Some(id)) => {
                    signed_ticket(app, &caller, &request, id).await
                }
                (Endpoint::SignedTicketVerify, Method::POST, _) => {
                    verify_signed_ticket(app, &caller, request).await
                }
                (Endpoint::PlaybackTokens, Method::POST, _) => {
                    mint_for_holder(app, &caller, request).await
                }
                _ => Err(error_body(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    "no such endpoint",
                    None,
                )),
            },
        },
    };
    result.unwrap_or_else(|response| response)
}

/// The authenticated caller.
struct Caller {
    principal: Principal,
    /// The account and its token's claims, when the caller logged in.
    session: Option<(Account, AccessClaims)>,
}

impl Caller {
    fn account_id(&self) -> Option<account::AccountId> {
        self.session.as_ref().map(|(a, _)| a.id)
    }
}

/// Where a credential came from: an API key header, a bearer value (API key or access token),
/// or the cookie.
fn credential(request: &Request<Incoming>) -> Option<(bool, String)> {
    if let Some(key) = request
        .headers()
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
    {
        return Some((true, key.trim().to_owned()));
    }
    if let Some(value) = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        if let Some((scheme, token)) = value.split_once(' ') {
            if scheme.eq_ignore_ascii_case("bearer") {
                return Some((false, token.trim().to_owned()));
            }
        }
    }
    cookie(request, COOKIE_NAME).map(|token| (false, token))
}

fn cookie(request: &Request<Incoming>, name: &str) -> Option<String> {
    request
        .headers()
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim().to_owned())
}

/// Who is asking: `None` when no credential came; 401 when one came and is not valid.
async fn caller(app: &Arc<App>, request: &Request<Incoming>) -> Result<Option<Caller>, Early> {
    let Some((key_header, presented)) = credential(request) else {
        return Ok(None);
    };
    if let Some(write) = key_access(&app.api_keys, &presented) {
        return Ok(Some(Caller {
            principal: Principal::ApiKey { write },
            session: None,
        }));
    }
    if key_header {
        return Err(unauthorized("the API key is not valid"));
    }
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
        None => Err(unauthorized(
            "the access token is not valid: it is malformed, expired or logged out",
        )),
    }
}

/// An early answer: a ready error response (the error side of [`Answer`]).
type Early = Response<Body>;

/// Asks the policy, with the caller's standing in `event` when it is an account and the action
/// concerns one: the one place every endpoint here goes through.
async fn authorize(
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

fn forbidden(why: Forbidden) -> Early {
    error_body(StatusCode::FORBIDDEN, "forbidden", why.message(), None)
}

fn not_found(what: &'static str) -> Early {
    crate::http::error_response(&auth_core::Error::NotFound { what })
}

// --- accounts ---

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Registration {
    user: UserSpec,
    /// Only an administrator may create an agent or admin.
    role: Option<Role>,
}

/// Open to anyone for plain users; an administrator (or API key) may set another role.
async fn register(app: &Arc<App>, request: Request<Incoming>) -> Answer {
    let caller = caller(app, &request).await?;
    let body: Registration = json_body(request).await?;
    let role = body.role.unwrap_or(Role::User);
    if role != Role::User {
        let Some(caller) = caller else {
            return Err(forbidden(Forbidden::AdminOnly));
        };
        authorize(app, &caller, Action::ChangeRole, None).await?;
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

async fn show_user(app: &Arc<App>, caller: &Caller, id: i64) -> Answer {
    authorize(app, caller, Action::ViewAccount(id), None).await?;
    let account = call(app, move |app| app.stores.ticketing.account(id)).await?;
    account
        .map(|a| json(StatusCode::OK, &a))
        .ok_or_else(|| not_found("account"))
}

async fn update_user(
    app: &Arc<App>,
    caller: &Caller,
    request: Request<Incoming>,
    id: i64,
) -> Answer {
    let patch: UserPatch = json_body(request).await?;
    if patch.is_empty() {
        return Err(bad_request(
            "nothing to update: send at least one field",
            None,
        ));
    }
    authorize(app, caller, Action::EditAccount(id), None).await?;
    if patch.role.is_some() {
        authorize(app, caller, Action::ChangeRole, None).await?;
    }
    let slot = match patch.password {
        Some(_) => Some(password_slot(app).await?),
        None => None,
    };
    let account = call(app, move |app| {
        let _slot = slot;
        let current = app
            .stores
            .ticketing
            .account(id)?
            .ok_or(auth_core::Error::NotFound { what: "account" })?;
        let patch = patch.validate(&current.username, &app.ticketing.passwords)?;
        app.stores
            .ticketing
            .update_account(id, patch, app.clock().now())
    })
    .await?;
    log::info!("account {id} updated");
    Ok(json(StatusCode::OK, &account))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    username: String,
    password: String,
}

async fn login(app: &Arc<App>, request: Request<Incoming>, peer: SocketAddr) -> Answer {
    let credentials: Credentials = json_body(request).await?;
    let username = credentials.username.trim().to_ascii_lowercase();
    let ip = peer.ip();
    let now = app.clock().now();
    if let Err(wait) = app.ticketing.login_limiter.check(&username, ip, now) {
        let mut response = error_body(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            "too many failed logins: wait before trying again",
            None,
        );
        if let Ok(value) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
            response.headers_mut().insert(RETRY_AFTER, value);
        }
        return Err(response);
    }
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
        app.ticketing.login_limiter.failed(&username, ip, now);
        // Escaped and cut short: a username is the client's text, and a password typed into
        // its field must not land whole in the log.
        let shown: String = username.chars().take(32).collect();
        log::info!("failed login for {shown:?} from {ip}");
        return Err(error_body(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "the username or password is wrong",
            None,
        ));
    };
    app.ticketing.login_limiter.succeeded(&username);
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
            "{COOKIE_NAME}={}; Max-Age={expires_in}; Path=/api; HttpOnly; Secure; SameSite=Strict",
            issued.token
        ),
    );
    no_store(&mut response);
    Ok(response)
}

async fn logout(app: &Arc<App>, caller: &Caller) -> Answer {
    let Some((account, claims)) = caller.session.clone() else {
        return Err(bad_request(
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
        &format!("{COOKIE_NAME}=; Max-Age=0; Path=/api; HttpOnly; Secure; SameSite=Strict"),
    );
    Ok(response)
}

/// A turn to hash or check a password (see [`crate::ticketing::Ticketing::password_slots`]).
async fn password_slot(app: &App) -> Result<tokio::sync::OwnedSemaphorePermit, Early> {
    let slots = std::sync::Arc::clone(&app.ticketing.password_slots);
    slots.acquire_owned().await.map_err(|_| {
        error_body(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the server is stopping",
            None,
        )
    })
}

fn set_cookie(response: &mut Response<Body>, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(SET_COOKIE, value);
    }
}

// --- events and rosters ---

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    title: Option<String>,
    page: Option<u32>,
    per_page: Option<u32>,
}

/// `(page, per_page, offset)` from 1-based `page` and `per_page` (1 to 100, default 20).
fn paging(page: Option<u32>, per_page: Option<u32>) -> Result<(u32, u32, u32), Early> {
    let page = page.unwrap_or(1);
    if page == 0 {
        return Err(bad_request("pages count from 1", Some("page")));
    }
    let per_page = per_page.unwrap_or(20);
    if !(1..=MAX_PER_PAGE).contains(&per_page) {
        return Err(bad_request(
            &format!("must be from 1 to {MAX_PER_PAGE}"),
            Some("per_page"),
        ));
    }
    let offset = (page - 1)
        .checked_mul(per_page)
        .ok_or_else(|| bad_request("too far", Some("page")))?;
    Ok((page, per_page, offset))
}

fn paged<T: serde::Serialize>(page: auth_core::page::Page<T>, number: u32, per_page: u32) -> Value {
    json!({ "items": page.items, "total": page.total, "page": number, "per_page": per_page })
}

async fn list_events(app: &Arc<App>, caller: &Caller, request: &Request<Incoming>) -> Answer {
    authorize(app, caller, Action::ListEvents, None).await?;
    let q: PageQuery = query(request)?;
    let (page, per_page, offset) = paging(q.page, q.per_page)?;
    let filter = EventFilter {
        title: q.title.filter(|t| !t.trim().is_empty()),
        limit: per_page,
        offset,
    };
    let events = call(app, move |app| app.stores.ticketing.list_events(&filter)).await?;
    Ok(json(StatusCode::OK, &paged(events, page, per_page)))
}

async fn create_event(app: &Arc<App>, caller: &Caller, request: Request<Incoming>) -> Answer {
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

async fn show_event(app: &Arc<App>, caller: &Caller, id: EventId) -> Answer {
    authorize(app, caller, Action::ViewEvent, Some(id)).await?;
    let event = call(app, move |app| app.stores.ticketing.event(id)).await?;
    event
        .map(|e| json(StatusCode::OK, &e))
        .ok_or_else(|| not_found("event"))
}

async fn update_event(
    app: &Arc<App>,
    caller: &Caller,
    request: Request<Incoming>,
    id: EventId,
) -> Answer {
    authorize(app, caller, Action::EditEvent, Some(id)).await?;
    let patch: EventPatch = json_body(request).await?;
    if patch.is_empty() {
        return Err(bad_request(
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
    page: Option<u32>,
    per_page: Option<u32>,
}

async fn list_roster(
    app: &Arc<App>,
    caller: &Caller,
    request: &Request<Incoming>,
    event: EventId,
    roster: RosterRole,
) -> Answer {
    authorize(app, caller, Action::ViewRoster, Some(event)).await?;
    let q: RosterQuery = query(request)?;
    let (page, per_page, offset) = paging(q.page, q.per_page)?;
    let entries = call(app, move |app| {
        app.stores.ticketing.roster(event, roster, per_page, offset)
    })
    .await?;
    Ok(json(StatusCode::OK, &paged(entries, page, per_page)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RosterAddition {
    user_id: Option<i64>,
    username: Option<String>,
}

async fn add_to_roster(
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
            return Err(auth_core::Error::invalid(
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

// --- tickets ---

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TicketRequest {
    event_id: EventId,
    /// Defaults to the caller's own account.
    user_id: Option<i64>,
}

async fn issue_ticket(app: &Arc<App>, caller: &Caller, request: Request<Incoming>) -> Answer {
    let body: TicketRequest = json_body(request).await?;
    let Some(holder) = body.user_id.or(caller.account_id()) else {
        return Err(bad_request(
            "user_id is required with an API key",
            Some("user_id"),
        ));
    };
    let event = body.event_id;
    authorize(app, caller, Action::IssueTicket { holder }, Some(event)).await?;
    let issued = call(app, move |app| {
        ticket::issue(
            app.stores.ticketing.as_ref(),
            &app.ticketing.ticket_key,
            event,
            holder,
            TICKET_ISSUER,
            app.clock().now(),
        )
    })
    .await?;
    let (svg, png) = qr_codes(&issued.otpauth_uri, 8)?;
    log::info!(
        "ticket {} issued for account {holder}, event {event}",
        issued.ticket.id
    );
    let mut response = json(
        StatusCode::CREATED,
        &json!({
            "ticket_id": issued.ticket.id,
            "event_id": event,
            "user_id": holder,
            "issued_at": issued.ticket.issued_at,
            "secret": issued.secret,
            "otpauth_uri": issued.otpauth_uri,
            "qr_svg": svg,
            // A data URL: the secret is given once, so there is no address to fetch it again.
            "qr_png_url": png,
        }),
    );
    no_store(&mut response);
    Ok(response)
}

/// `data` as an SVG QR code and as a PNG one in a `data:` URL (`scale` pixels per module).
fn qr_codes(data: &str, scale: usize) -> Result<(String, String), Early> {
    let svg = qr::svg(data, 256).map_err(|e| error_response(&e))?;
    let png = qr::png(data, scale).map_err(|e| error_response(&e))?;
    Ok((
        svg,
        format!("data:image/png;base64,{}", STANDARD.encode(png)),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Check {
    ticket_id: i64,
    code: String,
}

async fn verify_ticket(app: &Arc<App>, caller: &Caller, request: Request<Incoming>) -> Answer {
    let check: Check = json_body(request).await?;
    let id = check.ticket_id;
    let ticket = call(app, move |app| app.stores.ticketing.ticket(id)).await?;
    match &ticket {
        Some(ticket) => authorize(app, caller, Action::VerifyTicket, Some(ticket.event_id)).await?,
        None => authorize(app, caller, Action::VerifyUnknownTicket, None).await?,
    }
    let by = caller.account_id();
    let verdict = call(app, move |app| {
        ticket::verify(
            app.stores.ticketing.as_ref(),
            &app.ticketing.ticket_key,
            id,
            &check.code,
            by,
            app.clock().now(),
        )
    })
    .await?;
    Ok(json(StatusCode::OK, &door_answer(id, verdict)))
}

/// The door's answer, the same for a code and an e-ticket.
fn door_answer(id: TicketId, verdict: Verdict) -> Value {
    match verdict {
        Verdict::Valid(check_in) => {
            log::info!(
                "ticket {id} checked in (first entry: {})",
                check_in.first_entry
            );
            json!({
                "valid": true,
                "ticket_id": id,
                "holder": check_in.holder,
                "event": check_in.event,
                "first_entry": check_in.first_entry,
                "checked_in_at": check_in.ticket.checked_in_at,
            })
        }
        Verdict::Invalid(reason) => {
            log::info!("ticket {id} refused at the door: {}", reason.as_str());
            json!({ "valid": false, "ticket_id": id, "reason": reason })
        }
    }
}

async fn revoke_ticket(app: &Arc<App>, caller: &Caller, id: i64) -> Answer {
    let ticket = call(app, move |app| app.stores.ticketing.ticket(id)).await?;
    let Some(ticket) = ticket else {
        // Only those who may revoke any ticket learn that this id does not exist.
        authorize(app, caller, Action::RevokeTicket, None).await?;
        return Err(not_found("ticket"));
    };
    authorize(app, caller, Action::RevokeTicket, Some(ticket.event_id)).await?;
    call(app, move |app| {
        app.stores.ticketing.revoke_ticket(id, app.clock().now())
    })
    .await?;
    log::info!("ticket {id} revoked");
    Ok(no_content())
}

/// A ticket and its event. An unknown ticket id is a 404 for anyone logged in: ids are
/// sequential, so their existence tells nothing about whose they are.
async fn ticket_and_event(app: &Arc<App>, id: TicketId) -> Result<(Ticket, Event), Early> {
    let found = call(app, move |app| {
        let store = &app.stores.ticketing;
        let Some(ticket) = store.ticket(id)? else {
            return Ok(None);
        };
        let event = store
            .event(ticket.event_id)?
            .ok_or_else(|| auth_core::Error::storage("a ticket's event is missing"))?;
        Ok(Some((ticket, event)))
    })
    .await?;
    found.ok_or_else(|| not_found("ticket"))
}

// --- signed e-tickets and holders' playback tokens ---

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SigningKeyQuery {
    kid: Option<String>,
}

/// The holder's e-ticket: a signed string (and its QR code) a scanner verifies offline.
async fn signed_ticket(
    app: &Arc<App>,
    caller: &Caller,
    request: &Request<Incoming>,
    id: TicketId,
) -> Answer {
    let q: SigningKeyQuery = query(request)?;
    let (ticket, event) = ticket_and_event(app, id).await?;
    let holder = ticket.holder_id;
    authorize(app, caller, Action::UseTicket { holder }, Some(event.id)).await?;
    let ring = app.signing.current();
    let signed = signed::sign(&ring, &ticket, &event, q.kid.as_deref(), app.clock().now())
        .map_err(|e| error_response(&e))?;
    let (svg, png) = qr_codes(&signed.eticket, 6)?;
    log::info!("e-ticket of ticket {id} signed with key {}", signed.kid);
    let mut response = json(
        StatusCode::OK,
        &json!({
            "ticket_id": signed.ticket_id,
            "event_id": signed.event_id,
            "eticket": signed.eticket,
            "kid": signed.kid,
            "expires_at": signed.expires_at,
            "qr_svg": svg,
            "qr_png_url": png,
        }),
    );
    no_store(&mut response);
    Ok(response)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignedCheck {
    eticket: String,
}

/// The door check of a scanned e-ticket: its signature first (no store), then the ticket.
async fn verify_signed_ticket(
    app: &Arc<App>,
    caller: &Caller,
    request: Request<Incoming>,
) -> Answer {
    let check: SignedCheck = json_body(request).await?;
    let eticket = match signed::read(&app.signing.current(), &check.eticket, app.clock().now()) {
        Ok(eticket) => eticket,
        Err(rejection) => {
            // Nothing genuine names an event: staff of any event may learn that much.
            authorize(app, caller, Action::VerifyUnknownTicket, None).await?;
            log::info!("e-ticket refused at the door: {}", rejection.code());
            return Ok(json(
                StatusCode::OK,
                &json!({ "valid": false, "reason": rejection.code() }),
            ));
        }
    };
    authorize(app, caller, Action::VerifyTicket, Some(eticket.event_id)).await?;
    let by = caller.account_id();
    let verdict = call(app, move |app| {
        signed::check_in(
            app.stores.ticketing.as_ref(),
            &eticket,
            by,
            app.clock().now(),
        )
    })
    .await?;
    Ok(json(
        StatusCode::OK,
        &door_answer(eticket.ticket_id, verdict),
    ))
}

/// Whether `POST /api/playback-tokens` comes from a logged-in account (an access token, not an
/// API key): then it is a holder's request, bounded by their ticket.
pub(super) fn presents_access_token(app: &App, request: &Request<Incoming>) -> bool {
    match credential(request) {
        Some((false, presented)) => key_access(&app.api_keys, &presented).is_none(),
        _ => false,
    }
}

/// `POST /api/playback-tokens` by a ticket holder (seed 000): their valid ticket buys a
/// short-lived token for its event's streams, one player at a time.
async fn mint_for_holder(app: &Arc<App>, caller: &Caller, request: Request<Incoming>) -> Answer {
    let body: playback::HolderRequest = json_body(request).await?;
    let (ticket, event) = ticket_and_event(app, body.ticket_id).await?;
    let holder = ticket.holder_id;
    authorize(app, caller, Action::UseTicket { holder }, Some(event.id)).await?;
    let now = app.clock().now();
    let minted = playback::spec(&ticket, &event, &body, app.signing.default_ttl(), now)
        .and_then(|spec| app.signing.mint(&spec, now))
        .map_err(|e| error_response(&e))?;
    log::info!(
        "playback token for ticket {} (account {holder}) minted with key {}",
        ticket.id,
        minted.kid
    );
    let mut response = json(StatusCode::CREATED, &minted);
    no_store(&mut response);
    Ok(response)
}
