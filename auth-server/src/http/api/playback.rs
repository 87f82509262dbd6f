//! Signed playback tokens: `POST /api/playback-tokens` mints one (the seed-000 flow: after a
//! ticket or purchase check, the viewer gets a short-lived token and a ready player URL), and
//! `GET /api/signing-keys` lists the keys: ids, algorithms, status and public keys, never a
//! secret, so that edges and door scanners can be given what they need to verify offline.
//!
//! Minting for anyone needs a read-write API key (the admin); a logged-in ticket holder mints
//! their own through `ticketing::mint_for_holder`. Signing is CPU work of microseconds, so it
//! runs here rather than on a blocking thread.

use std::sync::Arc;

use auth_core::signed_token::keys::StoredSigningKey;
use auth_core::signed_token::revocations::Revoked;
use auth_core::signed_token::PlaybackSpec;
use auth_core::Clock;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{call, from_json_value, json_body, no_content, no_store, Answer};
use crate::app::App;
use crate::config::MAX_PLAYBACK_TOKEN_TTL;
use crate::http::json;
use crate::http::openapi::{fields, management_errors, nullable, ok_json};
use crate::http::ApiError;

pub(super) async fn mint(app: &Arc<App>, request: Request<Incoming>) -> Answer {
    let body: Value = json_body(request).await?;
    // A holder's request (HolderPlaybackTokenRequest) is well formed: only the credential is
    // the wrong kind for it.
    if body.get("ticket_id").is_some() {
        return Err(ApiError::from(auth_core::Error::unprocessable(
            "ticket_id",
            "a ticket's holder mints with their access token, not an API key",
        )));
    }
    let spec: PlaybackSpec = from_json_value(body)?;
    let minted = app
        .signing
        .mint(&spec, app.clock().now())
        .map_err(|err| ApiError::from(&err))?;
    let mut response = json(StatusCode::CREATED, &minted);
    no_store(&mut response);
    Ok(response)
}

/// What `POST /api/playback-tokens/revoke` names: one token by its `jti`, or every token of a
/// session `group` (a ticket's: `ticket:<id>`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Revoke {
    jti: Option<String>,
    group: Option<String>,
}

/// Refuses signed tokens before they expire, on every node (see
/// `auth_core::signed_token::revocations`); their live sessions end at their next re-check.
pub(super) async fn revoke(app: &Arc<App>, request: Request<Incoming>) -> Answer {
    let body: Revoke = json_body(request).await?;
    let revoked = match (body.jti, body.group) {
        (Some(jti), None) if valid_claim(&jti) => Revoked::Token(jti),
        (None, Some(group)) if valid_claim(&group) => Revoked::Group(group),
        _ => {
            return Err(ApiError::bad_request(
                "send exactly one of jti and group, 1 to 256 characters",
                None,
            ))
        }
    };
    let (kind, value) = revoked.parts();
    log::info!("signed tokens revoked: {kind} {value:?}");
    call(app, move |app| {
        let keys = app.stores.signing_keys.as_ref();
        app.signing.revoke(keys, revoked, app.clock().now())
    })
    .await?;
    Ok(no_content())
}

/// 1 to 256 characters, as the API document's JSON Schema counts them.
fn valid_claim(value: &str) -> bool {
    (1..=auth_core::token::MAX_TEXT_LEN).contains(&value.chars().count())
}

pub(super) async fn keys(app: &Arc<App>) -> Answer {
    let keys = call(app, |app| app.stores.signing_keys.signing_keys()).await?;
    let items: Vec<_> = keys.iter().map(StoredSigningKey::info).collect();
    Ok(json(StatusCode::OK, &json!({ "items": items })))
}

/// What an API key mints: `profile` and `aud` only with `"format": "jwt"`.
fn playback_request() -> Value {
    let common = json!({
        "user_id": fields::user_id(),
        "event": nullable(fields::not_blank()),
        "streams": fields::stream_patterns(),
        "ttl_seconds": nullable(json!({"type": "integer", "minimum": 1, "maximum": MAX_PLAYBACK_TOKEN_TTL, "description": "Default PLAYBACK_TOKEN_TTL"})),
        "ip": nullable(fields::ip()),
        "max_sessions": nullable(json!({"type": "integer", "minimum": 0, "maximum": u32::MAX, "description": "0 = unlimited (decided with no store call)"})),
        "kid": nullable(json!({"type": "string", "description": "Signing key; default the newest active one (one that does not exist: 422)"})),
    });
    let variant = |format: Value, jwt: bool| {
        let mut properties = common.clone();
        properties["format"] = format;
        if jwt {
            properties["profile"] = nullable(
                json!({"type": "string", "enum": ["mediamtx"], "description": "mediamtx adds mediamtx_permissions (read, one per stream)"}),
            );
            properties["aud"] = nullable(
                json!({"type": "string", "minLength": 1, "description": "The audience; default JWT_AUDIENCE"}),
            );
        } else {
            properties["profile"] = json!({"type": "null"});
            properties["aud"] = json!({"type": "null"});
        }
        let required = if jwt {
            json!(["user_id", "format"])
        } else {
            json!(["user_id"])
        };
        json!({"type": "object", "additionalProperties": false, "required": required, "properties": properties})
    };
    json!({"oneOf": [
        variant(json!({"type": "string", "enum": ["v1"], "description": "v1 (default): v1.<kid>.<claims>.<signature>"}), false),
        variant(json!({"type": "string", "enum": ["jwt"], "description": "a compact JWS (kid in its header) verifiable with /.well-known/jwks.json; iss from JWT_ISSUER"}), true)]})
}

/// This module's part of `openapi.json`.
pub(crate) fn describe(doc: &mut Value) {
    let security = json!([{"apiKey": []}, {"bearer": []}]);
    let schemas = json!({
        "PlaybackTokenRequest": playback_request(),
        "HolderPlaybackTokenRequest": {"type": "object", "required": ["ticket_id"], "additionalProperties": false, "properties": {
            "ticket_id": {"type": "integer", "description": "A ticket the caller holds (not revoked, its event not over)"},
            "streams": {"type": "array", "items": {"type": "string"}, "description": "Some of the event's streams; default all of them"},
            "ttl_seconds": {"type": "integer", "minimum": 1, "maximum": MAX_PLAYBACK_TOKEN_TTL, "description": "Default PLAYBACK_TOKEN_TTL; never past the event's end"},
            "ip": fields::ip(),
            "kid": {"type": "string"}}},
        "PlaybackToken": {"type": "object", "properties": {
            "token": {"type": "string", "description": "v1.<kid>.<claims>.<signature>, or a JWT (header.claims.signature); URL-safe"},
            "kid": {"type": "string"},
            "expires_at": {"type": "string", "format": "date-time"},
            "player_url": {"type": "string", "description": "PLAYER_URL_TEMPLATE with {token} (and a single stream) filled in"},
            "claims": {"type": "object"}}},
        "SigningKey": {"type": "object", "properties": {
            "kid": {"type": "string"},
            "algorithm": {"type": "string", "enum": ["hs256", "ed25519", "es256"]},
            "status": {"type": "string", "enum": ["active", "retired"]},
            "public_key": {"type": "string", "description": "Ed25519 (32 bytes) and ES256 (65 bytes, 04||x||y), base64url"},
            "created_at": {"type": "string", "format": "date-time"},
            "retired_at": {"type": "string", "format": "date-time"}}}
    });
    let paths = json!({
        "/api/playback-tokens": {
            "post": {"summary": "Mint a signed playback token; /auth accepts it without a token lookup. With a read-write API key, for anyone (PlaybackTokenRequest); with an account's access token, for a ticket it holds (HolderPlaybackTokenRequest: the event's streams only, until the event ends, one player)",
                "security": [{"apiKey": []}, {"bearer": []}, {"cookie": []}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"oneOf": [
                    {"$ref": "#/components/schemas/PlaybackTokenRequest"},
                    {"$ref": "#/components/schemas/HolderPlaybackTokenRequest"}]}}}},
                "responses": management_errors(json!({
                    "201": ok_json("The token and its player URL", "PlaybackToken")}), true)}
        },
        "/api/playback-tokens/revoke": {
            "post": {"summary": "Revoke signed tokens before they expire: one by its jti, or every token of a session group (a ticket's holder tokens: ticket:<id>; revoking a ticket does this itself). Refused with token_revoked from then on, on every node within about a second; live sessions end at their next re-check",
                "security": security,
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "additionalProperties": false,
                    "description": "Exactly one of jti and group (the other absent or null)",
                    "properties": {
                        "jti": {"type": ["string", "null"], "description": "The token's jti claim"},
                        "group": {"type": ["string", "null"], "description": "The tokens' grp claim"}},
                    "oneOf": [
                        {"required": ["jti"], "properties": {
                            "jti": {"type": "string", "minLength": 1, "maxLength": 256}, "group": {"type": "null"}}},
                        {"required": ["group"], "properties": {
                            "group": {"type": "string", "minLength": 1, "maxLength": 256}, "jti": {"type": "null"}}}]},
                    "example": {"group": "ticket:7"}}}},
                "responses": management_errors(json!({"204": {"description": "Revoked"}}), true)}
        },
        "/api/signing-keys": {
            "get": {"summary": "Signing keys: ids, algorithms, status, public keys (never a secret)",
                "security": security,
                "responses": management_errors(json!({"200": {"description": "Every key, oldest first",
                    "content": {"application/json": {"schema": {"type": "object", "properties": {
                        "items": {"type": "array", "items": {"$ref": "#/components/schemas/SigningKey"}}}}}}}}), false)}
        }
    });
    merge(&mut doc["components"]["schemas"], schemas);
    merge(&mut doc["paths"], paths);
}

fn merge(into: &mut Value, from: Value) {
    if let (Some(into), Value::Object(from)) = (into.as_object_mut(), from) {
        into.extend(from);
    }
}
