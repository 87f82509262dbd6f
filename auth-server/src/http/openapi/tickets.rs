//! The event-ticket part of the OpenAPI document ([`super::openapi`]).

use serde_json::{json, Value};

use super::fields;
use super::{id_param as id, nullable, paging_params, patch_schema};

fn object(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"type": "object"}}}})
}

fn error(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

fn body(description: &str, schema: Value, example: Value) -> Value {
    json!({"required": true, "description": description,
        "content": {"application/json": {"schema": schema, "example": example}}})
}

/// A JSON object of exactly these `properties`, the `required` ones present.
fn object_of(required: &[&str], properties: Value) -> Value {
    json!({"type": "object", "additionalProperties": false, "required": required, "properties": properties})
}

fn query(name: &str, description: &str, kind: &str) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description, "schema": {"type": kind}})
}

/// A listing's window: `limit`/`offset`, or the older `page` (from 1)/`per_page` (1 to 100),
/// never both styles in one request.
fn window_param() -> Value {
    let [limit, offset] = paging_params();
    let styles = json!({"oneOf": [
        {"type": "object", "additionalProperties": false, "properties": {
            "limit": limit["schema"], "offset": offset["schema"]}},
        {"type": "object", "additionalProperties": false, "minProperties": 1, "properties": {
            "page": {"type": "integer", "minimum": 1, "maximum": crate::http::api::MAX_PAGE_NUMBER},
            "per_page": {"type": "integer", "minimum": 1, "maximum": crate::http::api::MAX_PER_PAGE}}}]});
    json!({"name": "window", "in": "query", "required": false, "style": "form", "explode": true,
        "description": "limit (1 to 1000, default 50) and offset; or page (from 1) and per_page (1 to 100, default 20), the older style, answered with page and per_page too",
        "schema": styles})
}

fn role() -> Value {
    json!({"type": "string", "enum": ["user", "agent", "admin"]})
}

fn event_fields() -> Value {
    json!({
        "title": fields::title(),
        "starts_at": fields::date_time(),
        "ends_at": fields::date_time(),
        "capacity": {"type": "integer", "minimum": 1, "maximum": u32::MAX},
        "streams": fields::stream_patterns(),
        "single_entry": {"type": "boolean", "description": "Default true: a ticket admits once"},
    })
}

/// The usual answers of an authenticated call, plus `extra`.
fn answers(extra: Value) -> Value {
    let mut map = json!({
        "400": error("Invalid input; `field` names the culprit"),
        "413": error("Body over 64 KiB"),
        "415": error("The body is not sent as application/json"),
        "422": error("Well-formed, but the values do not fit together or with what is stored (an end before its start, a weak password, an event that is over, a key that does not exist); `field` names the culprit"),
        "401": error("No credential, or an invalid, expired or logged-out access token, or a wrong API key"),
        "403": error("The caller's role or rosters do not allow this (`message` says why)"),
        "503": error("The store failed or did not answer in time"),
    });
    if let (Some(map), Some(extra)) = (map.as_object_mut(), extra.as_object()) {
        map.extend(extra.clone());
    }
    map
}

fn roster(name: &str) -> Value {
    let security = json!([{"bearer": []}, {"cookie": []}, {"apiKey": []}]);
    json!({
        "get": {"summary": format!("The event's {name} roster: ids and names, in the order added (agents and admins of the event)"),
            "security": security, "parameters": [id("Event"), window_param()],
            "responses": answers(json!({"200": object("{items: [{account_id, username, first_name, last_name, added_at}], total, limit, offset} (and page, per_page when asked for by page)"), "404": error("No such event")}))},
        "post": {"summary": format!("Put an account on the {name} roster (event admins); agents and admins rosters take agent or admin accounts only"),
            "security": security, "parameters": [id("Event")],
            "requestBody": body("By id or username", json!({"oneOf": [
                    object_of(&["user_id"], json!({"user_id": fields::int64(), "username": {"type": "null"}})),
                    object_of(&["username"], json!({"username": {"type": "string"}, "user_id": {"type": "null"}}))]}),
                json!({"user_id": 7})),
            "responses": answers(json!({"201": object("Added"), "200": object("Already on it"), "404": error("No such event or account"), "409": error("The users roster is at capacity")}))}
    })
}

pub fn paths() -> Value {
    let security = json!([{"bearer": []}, {"cookie": []}, {"apiKey": []}]);
    json!({
        "/api/users": {"post": {"summary": "Register an account (open to anyone as `user`; `role` needs an administrator)",
            "requestBody": body("Seed 004's payload",
                object_of(&["user"], json!({
                    "user": object_of(&["username", "password", "email"], json!({
                        "username": fields::username(), "password": fields::password(), "email": fields::email(),
                        "first_name": fields::person_name(), "last_name": fields::person_name()})),
                    "role": nullable(role())})),
                json!({"user": {"username": "alice", "password": "a long passphrase", "first_name": "Alice", "last_name": "Liddell", "email": "alice@example.org"}, "role": "user"})),
            "responses": answers(json!({"201": object("The account (never the password or its hash)"),
                "403": error("forbidden: `role` needs an administrator; or registration_closed: REGISTRATION=closed and the caller is no administrator"),
                "409": error("The username or email is taken"),
                "429": error("too_many_attempts: 10 registrations from this address (IPv6: /64) in the last hour without an administrator's credentials; see Retry-After")}))}},
        "/api/users/{id}": {
            "get": {"summary": "An account (itself, or any for an administrator)", "security": security, "parameters": [id("Account")],
                "responses": answers(json!({"200": object("The account"), "404": error("No such account")}))},
            "patch": {"summary": "Change names, email, password; `role` needs an administrator. Changing one's own password takes current_password (an administrator resetting another account's does not); a password change ends every access token issued before it", "security": security, "parameters": [id("Account")],
                "requestBody": body("Any of first_name, last_name, email, password, role; current_password with password to change one's own",
                    {
                        let mut patch = patch_schema(json!({"first_name": fields::person_name(), "last_name": fields::person_name(),
                            "email": fields::email(), "password": fields::password(), "role": role(),
                            "current_password": {"type": "string"}}), &[]);
                        // Only beside a new password (its absence where it is needed is 422: it
                        // depends on who asks). Null counts as absent, for both.
                        patch["if"] = json!({"required": ["current_password"],
                            "properties": {"current_password": {"type": "string"}}});
                        patch["then"] = json!({"required": ["password"],
                            "properties": {"password": {"not": {"type": "null"}}}});
                        patch
                    },
                    json!({"password": "another long passphrase", "current_password": "a long passphrase"})),
                "responses": answers(json!({"200": object("The changed account"), "403": error("forbidden: the role does not allow this; or invalid_credentials (field current_password): current_password is wrong"), "404": error("No such account"), "409": error("The email is taken"),
                    "429": error("too_many_attempts: too many wrong passwords for this account or address (the login limits); see Retry-After")}))}
        },
        "/api/login": {"post": {"summary": "Exchange a username and password for an access token (also set as an HttpOnly, Secure, SameSite=Strict cookie)",
            "requestBody": body("Credentials",
                object_of(&["username", "password"], json!({"username": {"type": "string"}, "password": {"type": "string"}})),
                json!({"username": "alice", "password": "a long passphrase"})),
            "responses": {
                "200": object("{access_token, token_type: Bearer, expires_in}"),
                "400": error("Invalid input"),
                "413": error("Body over 64 KiB"),
                "415": error("The body is not sent as application/json"),
                "401": error("invalid_credentials"),
                "429": error("too_many_attempts: too many failures for this username or address; see Retry-After"),
                "503": error("The store failed or did not answer in time")}}},
        "/api/logout": {"post": {"summary": "Revoke the access token (refused from now until it would have expired) and clear the cookie",
            "security": [{"bearer": []}, {"cookie": []}],
            "responses": answers(json!({"204": {"description": "Logged out"}}))}},
        "/api/me": {"get": {"summary": "The logged-in account, every event it is on a roster of (attendee, agent, admin) and its tickets (revoked ones too) by event: what the wallet and door pages start from",
            "security": [{"bearer": []}, {"cookie": []}],
            "responses": answers(json!({"200": object("{account, events: [{event, attendee, agent, admin, tickets: [ticket]}]}"), "400": error("An API key has no account")}))}},
        "/api/events": {
            "get": {"summary": "Events by start; search by title", "security": security,
                "parameters": [query("title", "Case-insensitive part of the title", "string"), window_param()],
                "responses": answers(json!({"200": object("{items: [event], total, limit, offset} (and page, per_page when asked for by page); an event shows its registered count, never who")}))},
            "post": {"summary": "Create an event (administrators)", "security": security,
                "requestBody": body("title, starts_at, ends_at (later than starts_at, or 422), capacity, streams (names or * globs a ticket unlocks), single_entry (default true)",
                    {
                        let mut schema = object_of(&["title", "starts_at", "ends_at", "capacity"], event_fields());
                        schema["properties"]["single_entry"] = nullable(schema["properties"]["single_entry"].take());
                        schema
                    },
                    json!({"title": "RustConf", "starts_at": "2026-09-01T09:00:00Z", "ends_at": "2026-09-01T18:00:00Z", "capacity": 500, "streams": ["rustconf/*"]})),
                "responses": answers(json!({"201": object("The event")}))}
        },
        "/api/events/{id}": {
            "get": {"summary": "An event", "security": security, "parameters": [id("Event")],
                "responses": answers(json!({"200": object("The event"), "404": error("No such event")}))},
            "patch": {"summary": "Change an event (its admins)", "security": security, "parameters": [id("Event")],
                "requestBody": body("Any of the creation fields", patch_schema(event_fields(), &[]), json!({"capacity": 600})),
                "responses": answers(json!({"200": object("The changed event"), "404": error("No such event")}))}
        },
        "/api/events/{id}/users": roster("users"),
        "/api/events/{id}/agents": roster("agents"),
        "/api/events/{id}/admins": roster("admins"),
        "/api/tickets": {"post": {"summary": "Issue a ticket to an account on the event's users roster (itself, or anyone for the event's admins); the secret is in this answer only",
            "security": security,
            "requestBody": body("user_id defaults to the caller (required with an API key, or 422)",
                object_of(&["event_id"], json!({"event_id": fields::int64(), "user_id": nullable(fields::int64())})),
                json!({"event_id": 1})),
            "responses": answers(json!({
                "201": object("{ticket_id, event_id, user_id, issued_at, secret (base32), otpauth_uri, qr_svg, qr_png_url (a data: URL)}"),
                "404": error("No such event or account"),
                "409": error("The account already holds a live ticket for this event")}))}},
        "/api/tickets/verify": {"post": {"summary": "Door check by an agent of the ticket's event: a 6-digit code of this 30 s step or one either side, each accepted once",
            "security": security,
            "requestBody": body("The ticket id and the code shown; event_id (optional): the event this door is for, a ticket of another is refused with other_event and its code not used",
                object_of(&["ticket_id", "code"], json!({"ticket_id": fields::int64(), "code": {"type": "string"}, "event_id": nullable(fields::int64())})),
                json!({"ticket_id": 1, "code": "123456", "event_id": 1})),
            "responses": answers(json!({"200": object("{valid: true, holder, event, first_entry, checked_in_at} or {valid: false, reason: other_event | ticket_not_found | code_invalid | code_reused | ticket_revoked | event_not_started | event_over | already_checked_in | too_many_attempts}; too_many_attempts: the ticket took 5 wrong codes in a row and takes none for 15 minutes, or until an event admin unlocks it"),
                "429": error("too_many_attempts: this account submitted too many wrong codes or unknown tickets (30 in 10 minutes); see Retry-After")}))}},
        "/api/tickets/{id}": {"delete": {"summary": "Revoke a ticket (the event's admins): its codes are refused with ticket_revoked",
            "security": security, "parameters": [id("Ticket")],
            "responses": answers(json!({"204": {"description": "Revoked"}, "404": error("No such ticket")}))}},
        "/api/tickets/{id}/unlock": {"post": {"summary": "Lift a ticket's door-code lock (the event's admins): its wrong-code count starts again",
            "security": security, "parameters": [id("Ticket")],
            "responses": answers(json!({"204": {"description": "Unlocked (also when it was not locked)"}, "404": error("No such ticket")}))}},
        "/api/tickets/{id}/signed": {"get": {"summary": "The ticket's signed e-ticket and its QR code (its holder, the event's admins); valid until the event ends, verifiable offline with the public keys",
            "security": security, "parameters": [id("Ticket"), query("kid", "Signing key; default the newest active one (an ed25519 key lets scanners verify offline)", "string")],
            "responses": answers(json!({
                "200": object("{ticket_id, event_id, eticket, kid, expires_at, qr_svg, qr_png_url (a data: URL)}"),
                "404": error("No such ticket"),
                "409": error("The ticket is revoked")}))}},
        "/api/tickets/verify-signed": {"post": {"summary": "Door check of a scanned e-ticket by an agent of its event: the signature, then the ticket; the entry is recorded",
            "security": security,
            "requestBody": body("The scanned string; event_id (optional) as for /api/tickets/verify",
                object_of(&["eticket"], json!({"eticket": {"type": "string"}, "event_id": nullable(fields::int64())})),
                json!({"eticket": "v1.ed25519-AbCd1234.eyJzdWIiOiIzIiwiZXZ0IjoiMSIsInRrdCI6IjEiLCJpYXQiOjE4MDAwMDAwMDAsImV4cCI6MTgwMDAwNzIwMH0.c2lnbmF0dXJl"})),
            "responses": answers(json!({"200": object("{valid: true, ticket_id, holder, event, first_entry, checked_in_at} or {valid: false, reason: malformed | unknown_key | bad_signature | wrong_kind | expired | not_yet_valid | other_event | ticket_not_found | ticket_revoked | event_not_started | event_over | already_checked_in}")}))}}
    })
}
