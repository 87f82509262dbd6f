//! `GET /.well-known/jwks.json`: the public keys that verify our JWT playback tokens, for edges
//! that check JWTs themselves (MediaMTX `authJWTJWKS`, Ant Media `jwksURL`, any JWT library).
//!
//! No key is needed: it holds public keys only (ES256 and Ed25519 keys that are not retired;
//! never an HMAC key, never a private part). It is read from the in-memory key ring, so it
//! costs no store call and follows rotation within the ring's reload interval.
//!
//! Verifiers cache it: `Cache-Control: max-age` is [`MAX_AGE`] so that a new key is known
//! a few minutes after it is generated, and a retired key is dropped as fast (docs/edge-tokens.md
//! says how to rotate without a gap).

use std::sync::Arc;

use hyper::header::{HeaderValue, CACHE_CONTROL};
use hyper::{Response, StatusCode};
use serde_json::{json, Value};

use super::{json, Body};
use crate::app::App;

/// Seconds a verifier may cache the JWKS.
pub const MAX_AGE: u32 = 300;

pub fn jwks(app: &Arc<App>) -> Response<Body> {
    let mut response = json(StatusCode::OK, &app.signing.current().jwks());
    if let Ok(value) = HeaderValue::from_str(&format!("public, max-age={MAX_AGE}")) {
        response.headers_mut().insert(CACHE_CONTROL, value);
    }
    response
}

/// This module's part of `openapi.json`.
pub(crate) fn describe(doc: &mut Value) {
    let jwk = json!({"type": "object", "required": ["kty", "crv", "x", "kid", "alg", "use"], "properties": {
        "kty": {"type": "string", "enum": ["EC", "OKP"]},
        "crv": {"type": "string", "enum": ["P-256", "Ed25519"]},
        "x": {"type": "string", "description": "base64url"},
        "y": {"type": "string", "description": "base64url, EC keys only"},
        "kid": {"type": "string"},
        "alg": {"type": "string", "enum": ["ES256", "EdDSA"]},
        "use": {"type": "string", "enum": ["sig"]}}});
    if let Some(schemas) = doc["components"]["schemas"].as_object_mut() {
        schemas.insert("Jwk".into(), jwk);
    }
    if let Some(paths) = doc["paths"].as_object_mut() {
        paths.insert(
            "/.well-known/jwks.json".into(),
            json!({"get": {
                "summary": format!("The JWKS verifying JWT playback tokens: public keys of active ES256 and Ed25519 keys (never HMAC, never private). No key needed; Cache-Control: max-age={MAX_AGE}"),
                "security": [],
                "responses": {"200": {"description": "The key set",
                    "content": {"application/json": {"schema": {"type": "object", "properties": {
                        "keys": {"type": "array", "items": {"$ref": "#/components/schemas/Jwk"}}}}}}}}}}),
        );
    }
}
