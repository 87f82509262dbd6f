//! Flussonic's Streamer API v3 (OpenAPI in `flussonic/openapi-demo`, `paths/auth/`;
//! PROTOCOLS.md §7): `DELETE /streamer/api/v3/sessions/{id}` closes a play session; where that
//! is not possible (no session id, or the server answers that it cannot), `POST
//! /streamer/api/v3/sessions/reauth?name=STREAM` makes Flussonic ask `/auth` again at once for
//! every session of the stream, and the store refuses the cut one. Basic authentication with
//! `FLUSSONIC_API_AUTH`.

use auth_core::session::Session;

use super::http::{Target, Url};

pub fn close(base: &Url, auth: Option<&str>, session: &Session) -> Vec<Target> {
    let basic_auth = auth.map(str::to_owned);
    let mut calls = Vec::with_capacity(2);
    if let Some(id) = session.media_session_id.as_deref() {
        calls.push(Target {
            method: "DELETE",
            url: base.join(&["streamer", "api", "v3", "sessions", id], &[]),
            basic_auth: basic_auth.clone(),
        });
    }
    calls.push(Target {
        method: "POST",
        url: base.join(
            &["streamer", "api", "v3", "sessions", "reauth"],
            &[("name", session.stream.as_str())],
        ),
        basic_auth,
    });
    calls
}
