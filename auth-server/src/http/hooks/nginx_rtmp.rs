//! nginx-rtmp-module's notifications, all on one URL: `POST /hooks/nginx-rtmp` (form body, the
//! module's default) or `GET` (with `notify_method get`).
//!
//! | `call` | what it does here |
//! |---|---|
//! | `connect` | allowed: the stream (and so the decision) is not known yet |
//! | `play`, `publish` | a new session: the token must allow that action and find a free slot |
//! | `update_play`, `update_publish` | a re-check of the live session; a refusal (token suspended, session terminated) cuts the stream |
//! | `play_done`, `publish_done`, `done` | the session ends at once, freeing its slot |
//!
//! The client's own query string (`stream1?token=...`) arrives appended last and unescaped, so a
//! client could repeat the module's keys: the first occurrence of each key is the module's and is
//! the one trusted. The stream name is nginx-rtmp's `name` (without the application), the same
//! name nginx-rtmp gives its HLS files, so one `allowed_streams` rule covers RTMP and HLS.
//!
//! A session is one RTMP connection on one stream: its id is built from the client address,
//! nginx's `clientid` and the application, which every later call for it repeats. `clientid` is
//! a per-worker counter, so two workers could in principle reuse one for the same address; a
//! live application runs in one worker in practice.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use auth_core::{Action, RequestType};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

use super::{self as hook, parse_ip, Ended, HookRequest, Verdict};
use crate::app::App;
use crate::http::ApiError;
use crate::http::{read_body, Body};

/// The fields this adapter reads. The first occurrence of each wins.
#[derive(Debug, Default, PartialEq, Eq)]
struct Fields {
    call: Option<String>,
    addr: Option<String>,
    clientid: Option<String>,
    app: Option<String>,
    name: Option<String>,
    token: Option<String>,
}

impl Fields {
    fn parse(form: &[u8]) -> Result<Self, String> {
        let pairs: Vec<(Cow<'_, str>, Cow<'_, str>)> = serde_urlencoded::from_bytes(form)
            .map_err(|e| format!("cannot parse the form: {e}"))?;
        let mut fields = Fields::default();
        for (key, value) in pairs {
            let slot = match &*key {
                "call" => &mut fields.call,
                "addr" => &mut fields.addr,
                "clientid" => &mut fields.clientid,
                "app" => &mut fields.app,
                "name" => &mut fields.name,
                "token" => &mut fields.token,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(value.into_owned());
            }
        }
        Ok(fields)
    }
}

/// What a notification asks for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Call {
    Connect,
    Authorize(HookRequest),
    Done(HookRequest),
    /// A call this adapter has nothing to do for (`update` of a connection neither playing nor
    /// publishing, `record_done`): answered 200 so that nginx carries on.
    Ignored,
}

/// A notification's form (POST body or GET query), read as the hook reads it.
pub(crate) fn parse(form: &[u8]) -> Result<Call, String> {
    interpret(Fields::parse(form)?)
}

fn interpret(fields: Fields) -> Result<Call, String> {
    let call = fields.call.ok_or("missing required field `call`")?;
    let (action, request_type, done) = match call.as_str() {
        "connect" => return Ok(Call::Connect),
        "play" => (Action::Play, RequestType::NewSession, false),
        "publish" => (Action::Publish, RequestType::NewSession, false),
        "update_play" => (Action::Play, RequestType::UpdateSession, false),
        "update_publish" => (Action::Publish, RequestType::UpdateSession, false),
        // `done` does not say which; the session id below is the same for both.
        "play_done" | "done" => (Action::Play, RequestType::UpdateSession, true),
        "publish_done" => (Action::Publish, RequestType::UpdateSession, true),
        "update" | "record_done" => return Ok(Call::Ignored),
        other => return Err(format!("unknown `call`: `{other}`")),
    };
    let addr = fields.addr.ok_or("missing required field `addr`")?;
    let ip = parse_ip(&addr).ok_or_else(|| format!("`addr` is not an IP address: `{addr}`"))?;
    let name = match fields.name.filter(|n| !n.is_empty()) {
        Some(name) => name,
        None if done => return Ok(Call::Ignored),
        None => return Err("missing required field `name`".into()),
    };
    let app = fields.app.unwrap_or_default();
    let clientid = fields.clientid.unwrap_or_default();
    let request = HookRequest {
        token: fields.token,
        session_id: Some(format!("nginx-rtmp:{ip}:{clientid}:{app}")),
        stream: hook::stream_name("name", name)?,
        ip,
        proto: "rtmp".to_owned(),
        request_type,
        action,
        segment: false,
        source: "nginx-rtmp",
        media_session_id: Some(clientid.clone()).filter(|id| !id.is_empty()),
    };
    Ok(if done {
        Call::Done(request)
    } else {
        Call::Authorize(request)
    })
}

pub async fn hook(app: &Arc<App>, request: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let form = if request.method() == Method::GET {
        request
            .uri()
            .query()
            .unwrap_or_default()
            .as_bytes()
            .to_vec()
    } else {
        match read_body(request).await {
            Ok((_, body)) => body.to_vec(),
            Err(err) => return err.into(),
        }
    };
    let call = match parse(&form) {
        Ok(call) => call,
        Err(message) => return Response::from(ApiError::bad_request(&message, None)),
    };
    match call {
        Call::Connect | Call::Ignored => hook::empty(StatusCode::OK),
        Call::Done(request) => {
            let ended = hook::end_session(app, Arc::new(request)).await;
            if ended == Ended::Ended {
                log::debug!("nginx-rtmp: a session ended on its done call");
            }
            // nginx-rtmp ignores the answer to done calls.
            hook::empty(StatusCode::OK)
        }
        Call::Authorize(request) => {
            let request = Arc::new(request);
            match hook::authorize(app, hook::Hook::NginxRtmp, Arc::clone(&request), started).await {
                Verdict::Allowed(_) | Verdict::AllowedByFailMode(_) => hook::empty(StatusCode::OK),
                Verdict::Denied { denial, .. } => {
                    hook::denial(StatusCode::FORBIDDEN, &request, &denial)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(form: &str) -> Result<Call, String> {
        parse(form.as_bytes())
    }

    #[test]
    fn play_with_the_token_from_the_client_tail() {
        let form = "app=live&flashver=LNX&swfurl=&tcurl=rtmp://h/live&pageurl=&addr=10.0.0.5\
                    &clientid=7&call=play&name=cam1&start=0&duration=0&reset=0&token=abc%2B1";
        let Call::Authorize(request) = call(form).unwrap() else {
            panic!("expected an authorization");
        };
        assert_eq!(request.stream, "cam1");
        assert_eq!(request.token.as_deref(), Some("abc+1"));
        assert_eq!(request.action, Action::Play);
        assert_eq!(request.request_type, RequestType::NewSession);
        assert_eq!(
            request.session_id.as_deref(),
            Some("nginx-rtmp:10.0.0.5:7:live")
        );
    }

    #[test]
    fn the_module_keys_come_first_and_win_over_a_client_tail() {
        let form = "app=live&addr=10.0.0.5&clientid=7&call=play&name=cam1\
                    &token=t1&call=publish&addr=1.2.3.4&name=other";
        let Call::Authorize(request) = call(form).unwrap() else {
            panic!("expected an authorization");
        };
        assert_eq!(request.action, Action::Play);
        assert_eq!(request.ip.to_string(), "10.0.0.5");
        assert_eq!(request.stream, "cam1");
    }

    #[test]
    fn every_call_maps_to_its_step() {
        let base = "app=live&addr=10.0.0.5&clientid=7&name=cam1&token=t1&call=";
        let parsed = |c: &str| call(&format!("{base}{c}")).unwrap();
        let Call::Authorize(r) = parsed("publish") else {
            panic!()
        };
        assert_eq!(
            (r.action, r.request_type),
            (Action::Publish, RequestType::NewSession)
        );
        let Call::Authorize(r) = parsed("update_publish") else {
            panic!()
        };
        assert_eq!(
            (r.action, r.request_type),
            (Action::Publish, RequestType::UpdateSession)
        );
        let Call::Authorize(r) = parsed("update_play") else {
            panic!()
        };
        assert_eq!(r.request_type, RequestType::UpdateSession);
        let play = match parsed("play") {
            Call::Authorize(r) => r.session_id,
            other => panic!("{other:?}"),
        };
        for done in ["play_done", "publish_done", "done"] {
            match parsed(done) {
                Call::Done(r) => assert_eq!(r.session_id, play, "{done}"),
                other => panic!("{done}: {other:?}"),
            }
        }
        assert_eq!(
            call("call=connect&app=live&addr=1.2.3.4").unwrap(),
            Call::Connect
        );
        assert_eq!(parsed("update"), Call::Ignored);
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        assert!(call("addr=1.2.3.4&name=a").unwrap_err().contains("`call`"));
        assert!(call("call=play&addr=nope&name=a")
            .unwrap_err()
            .contains("`addr`"));
        assert!(call("call=play&addr=1.2.3.4")
            .unwrap_err()
            .contains("`name`"));
        assert!(call("call=dance&addr=1.2.3.4&name=a")
            .unwrap_err()
            .contains("unknown"));
    }
}
