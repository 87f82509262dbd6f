//! nginx-rtmp-module's `rtmp_control`: `GET {base}/drop/client?app=APP&name=STREAM&clientid=ID`
//! closes one client (README of arut/nginx-rtmp-module, "Control module"; PROTOCOLS.md §7).
//! `clientid` is a connection number of one nginx worker: run nginx-rtmp with one worker (as
//! its documentation advises for live streaming), or a drop may reach a worker that does not
//! hold the client.

use auth_core::session::Session;

use super::http::{Target, Url};

pub fn drop_client(base: &Url, session: &Session) -> Option<Target> {
    let clientid = session.media_session_id.as_deref()?;
    // The session key the adapter made: `id:nginx-rtmp:{ip}:{clientid}:{app}`.
    let marker = format!(":{clientid}:");
    let app = session
        .key
        .strip_prefix("id:nginx-rtmp:")
        .and_then(|rest| rest.find(&marker).map(|at| &rest[at + marker.len()..]))
        .unwrap_or_default();
    let mut query = Vec::with_capacity(3);
    if !app.is_empty() {
        query.push(("app", app));
    }
    query.push(("name", session.stream.as_str()));
    query.push(("clientid", clientid));
    Some(Target {
        method: "GET",
        url: base.join(&["drop", "client"], &query),
        basic_auth: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::tests::session;

    #[test]
    fn drops_by_app_name_and_clientid() {
        let base = Url::parse("http://127.0.0.1:8081/control").unwrap();
        let s = session(
            "nginx-rtmp",
            "rtmp",
            Some("12"),
            "id:nginx-rtmp:::1:12:live",
        );
        let call = drop_client(&base, &s).unwrap();
        assert_eq!(call.method, "GET");
        assert_eq!(
            call.url.path_and_query(),
            "/control/drop/client?app=live&name=news&clientid=12"
        );
        assert!(drop_client(&base, &session("nginx-rtmp", "rtmp", None, "x")).is_none());
    }
}
