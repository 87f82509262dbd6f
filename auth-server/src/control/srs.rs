//! SRS's HTTP API: `DELETE {base}/api/v1/clients/{client_id}` kicks a client off
//! (SRS docs, "HTTP API": "Kickoff Client"; PROTOCOLS.md §7). The `client_id` is the one its
//! `http_hooks` callbacks sent.

use auth_core::session::Session;

use super::http::{Target, Url};

pub fn kick(base: &Url, session: &Session) -> Option<Target> {
    let client_id = session.media_session_id.as_deref()?;
    Some(Target {
        method: "DELETE",
        url: base.join(&["api", "v1", "clients", client_id], &[]),
        basic_auth: None,
    })
}
