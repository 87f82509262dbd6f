//! Tickets: issue, the door check (codes and signed e-tickets), revocation, and what a
//! holder's ticket mints (playback tokens).

use std::sync::Arc;

use auth_core::account::Action;
use auth_core::event::{Event, EventId};
use auth_core::ticket::{self, playback, qr, signed, Reason, Ticket, TicketId, Verdict};
use auth_core::Clock;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::app::App;
use crate::http::api::{call, json_body, no_content, no_store, query, Answer};
use crate::http::json;
use crate::ticketing::TICKET_ISSUER;

use super::{authorize, not_found, Caller, Early};
use crate::http::ApiError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TicketRequest {
    event_id: EventId,
    /// Defaults to the caller's own account.
    user_id: Option<i64>,
}

pub(super) async fn issue_ticket(
    app: &Arc<App>,
    caller: &Caller,
    request: Request<Incoming>,
) -> Answer {
    let body: TicketRequest = json_body(request).await?;
    let Some(holder) = body.user_id.or(caller.account_id()) else {
        // Which credential came decides, not the body's shape: 422, as the document says.
        return Err(ApiError::from(auth_core::Error::unprocessable(
            "user_id",
            "user_id is required with an API key",
        )));
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
pub(super) fn qr_codes(data: &str, scale: usize) -> Result<(String, String), Early> {
    let svg = qr::svg(data, 256).map_err(|e| ApiError::from(&e))?;
    let png = qr::png(data, scale).map_err(|e| ApiError::from(&e))?;
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
    /// The event the door is for: a ticket of another one is refused (`other_event`) before
    /// its code is used, so it stays good for its own door.
    event_id: Option<EventId>,
}

/// The answer to a ticket presented at the door of another event than its own, if it is.
fn other_event(door: Option<EventId>, id: TicketId, event: EventId) -> Option<Value> {
    door.filter(|door| *door != event).map(|_| {
        log::info!("ticket {id} refused at the door: other_event");
        json!({ "valid": false, "ticket_id": id, "reason": "other_event" })
    })
}

pub(super) async fn verify_ticket(
    app: &Arc<App>,
    caller: &Caller,
    request: Request<Incoming>,
) -> Answer {
    let check: Check = json_body(request).await?;
    let id = check.ticket_id;
    let ticket = call(app, move |app| app.stores.ticketing.ticket(id)).await?;
    match &ticket {
        Some(ticket) => {
            authorize(app, caller, Action::VerifyTicket, Some(ticket.event_id)).await?;
            if let Some(answer) = other_event(check.event_id, id, ticket.event_id) {
                return Ok(json(StatusCode::OK, &answer));
            }
        }
        None => authorize(app, caller, Action::VerifyUnknownTicket, None).await?,
    }
    let by = caller.account_id();
    let now = app.clock().now();
    // Counted before the code is weighed (a burst gets no more than the limit), taken back
    // when the code turns out not to be a miss.
    if let Some(agent) = by {
        if let Err(throttled) = app.ticketing.door_limiter.begin(agent, now) {
            if throttled.first {
                log::warn!("account {agent} throttled at the door: too many wrong codes");
            }
            return Err(ApiError::too_many_attempts(
                "too many wrong codes: wait before trying again",
                throttled.retry_after,
            ));
        }
    }
    let door = call(app, move |app| {
        ticket::verify(
            app.stores.ticketing.as_ref(),
            &app.ticketing.ticket_key,
            id,
            &check.code,
            by,
            now,
        )
    })
    .await?;
    let miss = matches!(
        door.verdict,
        Verdict::Invalid(Reason::CodeInvalid | Reason::TicketNotFound | Reason::TooManyAttempts)
    );
    if let (Some(agent), false) = (by, miss) {
        app.ticketing.door_limiter.take_back(&agent, now);
    }
    if door.locked_now {
        log::warn!(
            "ticket {id} locked for {} s after {} wrong codes in a row",
            ticket::CODE_LOCK.lasts.as_secs(),
            ticket::CODE_LOCK.after
        );
    }
    Ok(json(StatusCode::OK, &door_answer(app, id, door.verdict)))
}

/// `POST /api/tickets/{id}/unlock`: an event admin lifts the door-code lock of a ticket.
pub(super) async fn unlock_ticket(app: &Arc<App>, caller: &Caller, id: TicketId) -> Answer {
    let ticket = call(app, move |app| app.stores.ticketing.ticket(id)).await?;
    let Some(ticket) = ticket else {
        authorize(app, caller, Action::UnlockTicket, None).await?;
        return Err(not_found("ticket"));
    };
    authorize(app, caller, Action::UnlockTicket, Some(ticket.event_id)).await?;
    call(app, move |app| app.stores.ticketing.unlock_ticket(id)).await?;
    log::info!("ticket {id}'s door-code lock lifted");
    Ok(no_content())
}

/// The door's answer, the same for a code and an e-ticket. Misses (a wrong code, an unknown
/// ticket, a locked one) are counted but not logged one by one: a guesser would write a line per
/// guess; the lock and the throttle are logged once each instead.
pub(super) fn door_answer(app: &App, id: TicketId, verdict: Verdict) -> Value {
    match verdict {
        Verdict::Valid(check_in) => {
            app.metrics.door_check(true, "none");
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
            app.metrics.door_check(false, reason.as_str());
            match reason {
                Reason::CodeInvalid | Reason::TicketNotFound | Reason::TooManyAttempts => {
                    log::debug!("ticket {id} refused at the door: {}", reason.as_str())
                }
                _ => log::info!("ticket {id} refused at the door: {}", reason.as_str()),
            }
            json!({ "valid": false, "ticket_id": id, "reason": reason })
        }
    }
}

pub(super) async fn revoke_ticket(app: &Arc<App>, caller: &Caller, id: i64) -> Answer {
    let ticket = call(app, move |app| app.stores.ticketing.ticket(id)).await?;
    let Some(ticket) = ticket else {
        // Only those who may revoke any ticket learn that this id does not exist.
        authorize(app, caller, Action::RevokeTicket, None).await?;
        return Err(not_found("ticket"));
    };
    authorize(app, caller, Action::RevokeTicket, Some(ticket.event_id)).await?;
    let revoked = call(app, move |app| {
        let now = app.clock().now();
        let stores = &app.stores;
        ticket::revoke(
            stores.ticketing.as_ref(),
            stores.sessions.as_ref(),
            stores.signing_keys.as_ref(),
            id,
            app.signing.revocation_until(now),
            now,
        )
    })
    .await?;
    let Some(revoked) = revoked else {
        return Err(not_found("ticket"));
    };
    // The playback tokens minted from the ticket are signed, checked without the store: this
    // node refuses them at once, the others at their next refresh.
    app.signing.revocations().add(revoked.tokens);
    let cut = revoked.cut;
    // Logged as the operator's cut it is (reason codes are a contract: no new one for this).
    app.announce_cut(&cut, auth_core::DenyReason::SessionTerminated.code());
    log::info!("ticket {id} revoked, {} live session(s) cut", cut.len());
    Ok(no_content())
}

/// A ticket and its event. An unknown ticket id is a 404 for anyone logged in: ids are
/// sequential, so their existence tells nothing about whose they are.
pub(super) async fn ticket_and_event(
    app: &Arc<App>,
    id: TicketId,
) -> Result<(Ticket, Event), Early> {
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
pub(super) async fn signed_ticket(
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
        .map_err(|e| ApiError::from(&e))?;
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
    /// As in [`Check`].
    event_id: Option<EventId>,
}

/// The door check of a scanned e-ticket: its signature first (no store), then the ticket.
pub(super) async fn verify_signed_ticket(
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
            app.metrics.door_check(false, rejection.code());
            return Ok(json(
                StatusCode::OK,
                &json!({ "valid": false, "reason": rejection.code() }),
            ));
        }
    };
    authorize(app, caller, Action::VerifyTicket, Some(eticket.event_id)).await?;
    if let Some(answer) = other_event(check.event_id, eticket.ticket_id, eticket.event_id) {
        return Ok(json(StatusCode::OK, &answer));
    }
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
        &door_answer(app, eticket.ticket_id, verdict),
    ))
}

/// `POST /api/playback-tokens` by a ticket holder (seed 000): their valid ticket buys a
/// short-lived token for its event's streams, one player at a time.
pub(super) async fn mint_for_holder(
    app: &Arc<App>,
    caller: &Caller,
    request: Request<Incoming>,
) -> Answer {
    let body: playback::HolderRequest = json_body(request).await?;
    let (ticket, event) = ticket_and_event(app, body.ticket_id).await?;
    let holder = ticket.holder_id;
    authorize(app, caller, Action::UseTicket { holder }, Some(event.id)).await?;
    let now = app.clock().now();
    let minted = playback::spec(&ticket, &event, &body, app.signing.default_ttl(), now)
        .and_then(|spec| app.signing.mint(&spec, now))
        .map_err(|e| ApiError::from(&e))?;
    log::info!(
        "playback token for ticket {} (account {holder}) minted with key {}",
        ticket.id,
        minted.kid
    );
    let mut response = json(StatusCode::CREATED, &minted);
    no_store(&mut response);
    Ok(response)
}
