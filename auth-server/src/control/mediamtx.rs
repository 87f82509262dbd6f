//! MediaMTX's control API (v3): `POST {base}/v3/{rtmpconns|rtspsessions|webrtcsessions|
//! srtconns}/kick/{id}` (MediaMTX `apidocs/openapi.yaml`; PROTOCOLS.md §7). The `id` is the one
//! its external authentication request carried. HLS readers have no connection to kick: their
//! cut holds at the next request MediaMTX makes (it caches nothing, but HLS asks only once).

use auth_core::session::Session;

use super::http::{Target, Url};

pub fn kick(base: &Url, session: &Session) -> Option<Target> {
    let id = session.media_session_id.as_deref()?;
    let kind = match session.proto.as_str() {
        "rtmp" | "rtmps" => "rtmpconns",
        "rtsp" | "rtsps" => "rtspsessions",
        "webrtc" => "webrtcsessions",
        "srt" => "srtconns",
        _ => return None,
    };
    Some(Target {
        method: "POST",
        url: base.join(&["v3", kind, "kick", id], &[]),
        basic_auth: None,
    })
}
