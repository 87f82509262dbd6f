//! Pushing a cut to the media server that holds the session, so that a viewer is dropped now
//! rather than at its next re-check (which MediaMTX and SRS never make).
//!
//! The store's cut operations ([`auth_core::SessionStore::cut_sessions`]) return the sessions
//! they cut, each with its `source` and `media_session_id`; [`Control::push`] turns each into
//! the one HTTP call its media server's control API documents (one file per media server:
//! `nginx_rtmp`, `flussonic`, `srs`, `mediamtx`) and sends it on a tokio task, retried a few
//! times, never on the path of an `/auth` answer. A media server with no control URL configured
//! gets no push: the cut then holds at its next re-check, as the store refuses it.
//!
//! Every cut is also recorded in the access log (`request_type` `cut`, the cut's reason).

mod flussonic;
mod http;
mod mediamtx;
mod nginx_rtmp;
mod srs;

use std::sync::Arc;
use std::time::Duration;

use std::collections::hash_map::{Entry, HashMap};

use auth_core::session::{Cut, Session, SessionFilter};
use auth_core::{
    session_still_allowed, AccessLogEntry, AccessResult, DenyReason, Timestamp, Token, TokenId,
};

use crate::config::ConfigError;
pub use http::{Target, Url};

/// Where each media server's control API is (absent: no push to that server).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ControlConfig {
    /// `NGINX_RTMP_CONTROL_URL`: the base of an `rtmp_control` location.
    pub nginx_rtmp: Option<Url>,
    /// `FLUSSONIC_API_URL`.
    pub flussonic: Option<Url>,
    /// `FLUSSONIC_API_AUTH`: `user:password` for Basic authentication. `Debug` hides it.
    pub flussonic_auth: Option<String>,
    /// `SRS_API_URL`.
    pub srs: Option<Url>,
    /// `MEDIAMTX_API_URL`.
    pub mediamtx: Option<Url>,
}

impl std::fmt::Debug for ControlConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlConfig")
            .field("nginx_rtmp", &self.nginx_rtmp)
            .field("flussonic", &self.flussonic)
            .field(
                "flussonic_auth",
                &self.flussonic_auth.as_ref().map(|_| "<redacted>"),
            )
            .field("srs", &self.srs)
            .field("mediamtx", &self.mediamtx)
            .finish()
    }
}

impl ControlConfig {
    /// From the settings named on each field; `get` answers a trimmed, non-empty value or none.
    pub fn load(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let url = |name: &str| -> Result<Option<Url>, ConfigError> {
            get(name)
                .map(|value| {
                    Url::parse(&value)
                        .map_err(|why| ConfigError(format!("{name}=`{value}` is not valid: {why}")))
                })
                .transpose()
        };
        let flussonic_auth = get("FLUSSONIC_API_AUTH");
        if flussonic_auth
            .as_deref()
            .is_some_and(|auth| !auth.contains(':'))
        {
            return Err(ConfigError(
                "FLUSSONIC_API_AUTH is not valid: expected user:password".into(),
            ));
        }
        Ok(ControlConfig {
            nginx_rtmp: url("NGINX_RTMP_CONTROL_URL")?,
            flussonic: url("FLUSSONIC_API_URL")?,
            flussonic_auth,
            srs: url("SRS_API_URL")?,
            mediamtx: url("MEDIAMTX_API_URL")?,
        })
    }

    /// The calls that drop `session` at its media server, in order (a later one only when the
    /// one before could not close it); empty when there is nothing to call.
    pub fn calls_for(&self, session: &Session) -> Vec<Target> {
        match session.source.as_str() {
            "nginx-rtmp" => self
                .nginx_rtmp
                .as_ref()
                .and_then(|base| nginx_rtmp::drop_client(base, session))
                .into_iter()
                .collect(),
            "flussonic" => self.flussonic.as_ref().map_or_else(Vec::new, |base| {
                flussonic::close(base, self.flussonic_auth.as_deref(), session)
            }),
            "srs" => self
                .srs
                .as_ref()
                .and_then(|base| srs::kick(base, session))
                .into_iter()
                .collect(),
            "mediamtx" => self
                .mediamtx
                .as_ref()
                .and_then(|base| mediamtx::kick(base, session))
                .into_iter()
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// Sends the pushes; cheap to clone.
#[derive(Debug, Clone)]
pub struct Control {
    config: Arc<ControlConfig>,
    /// Attempts per call (the first included).
    attempts: u32,
    /// Wait before the second attempt; doubled before each later one.
    backoff: Duration,
    /// How long one attempt may take, connection included.
    timeout: Duration,
}

impl Control {
    pub fn new(config: ControlConfig) -> Self {
        Control {
            config: Arc::new(config),
            attempts: 3,
            backoff: Duration::from_millis(200),
            timeout: Duration::from_secs(2),
        }
    }

    pub fn config(&self) -> &ControlConfig {
        &self.config
    }

    /// Sends the calls that drop each of `sessions` at its media server, each on its own tokio
    /// task (so this returns at once; call it inside the runtime). `reason` is logged.
    pub fn push(&self, sessions: &[Session], reason: &'static str) {
        for session in sessions {
            let calls = self.config.calls_for(session);
            if calls.is_empty() {
                log::debug!(
                    "session {} ({}) cut ({reason}); no control API configured for it: refused at its next check",
                    session.id,
                    if session.source.is_empty() { "unknown source" } else { &session.source }
                );
                continue;
            }
            let this = self.clone();
            let id = session.id;
            tokio::spawn(async move {
                for call in calls {
                    match this.send_with_retries(&call).await {
                        Ok(Outcome::Done(status)) => {
                            log::info!(
                                "session {id} cut ({reason}): {} {} answered {status}",
                                call.method,
                                call.url.redacted()
                            );
                            return;
                        }
                        // The next call (if any) is the fallback for this one.
                        Ok(Outcome::CannotClose(status)) => log::info!(
                            "session {id} cut ({reason}): {} {} answered {status}",
                            call.method,
                            call.url.redacted()
                        ),
                        Err(why) => {
                            log::warn!(
                                "session {id} cut ({reason}): {} {} failed: {why}; it is refused at its next check",
                                call.method,
                                call.url.redacted()
                            );
                            return;
                        }
                    }
                }
            });
        }
    }

    async fn send_with_retries(&self, call: &Target) -> Result<Outcome, String> {
        let mut wait = self.backoff;
        let mut last = String::new();
        for attempt in 1..=self.attempts {
            match tokio::time::timeout(self.timeout, http::send(call, self.timeout)).await {
                Ok(Ok(status)) if (200..300).contains(&status) => return Ok(Outcome::Done(status)),
                // Not there (gone already, or the server cannot close it this way): no retry.
                Ok(Ok(status)) if (400..500).contains(&status) => {
                    return Ok(Outcome::CannotClose(status))
                }
                Ok(Ok(status)) => last = format!("status {status}"),
                Ok(Err(err)) => last = err.to_string(),
                Err(_) => last = format!("no answer within {:?}", self.timeout),
            }
            if attempt < self.attempts {
                log::debug!("{} {}: {last}; retrying", call.method, call.url.redacted());
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
        }
        Err(last)
    }
}

enum Outcome {
    Done(u16),
    CannotClose(u16),
}

/// Cuts every live session whose stored token no longer allows it: its `valid_until` passed
/// (no request marks that moment), or it was changed where no push could follow (the command
/// line, another process on the same SQLite file). Returns the sessions cut, with the reason
/// each one's next check would get. Blocking: reads every live session and each one's token
/// (through the token cache), so the server runs it with the session purge, every
/// `SESSION_CLEANUP_INTERVAL`.
pub fn cut_disqualified(
    stores: &auth_core::store::Stores,
    now: Timestamp,
) -> auth_core::Result<Vec<(Session, DenyReason)>> {
    let mut tokens: HashMap<TokenId, Option<Token>> = HashMap::new();
    let mut cut = Vec::new();
    for session in stores.sessions.sessions(&SessionFilter::default(), now)? {
        let Some(token_id) = session.token_id.filter(|_| session.holds_slot(now)) else {
            continue;
        };
        let token = match tokens.entry(token_id) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(unknown) => unknown.insert(stores.tokens.token(token_id)?),
        };
        let verdict = match token {
            Some(token) => session_still_allowed(token, &session, now),
            None => Err(DenyReason::TokenNotFound),
        };
        if let Err(reason) = verdict {
            for session in stores
                .sessions
                .cut_sessions(&Cut::Session(session.id), None, now)?
            {
                cut.push((session, reason));
            }
        }
    }
    Ok(cut)
}

/// The access log record of one cut: refused, with the cut's reason.
pub fn cut_entry(session: &Session, reason: &'static str, at: Timestamp) -> AccessLogEntry {
    AccessLogEntry {
        at,
        token_id: session.token_id,
        token_prefix: None,
        user_id: Some(session.user_id.clone()),
        stream: session.stream.clone(),
        ip: session.ip.clone(),
        proto: session.proto.clone(),
        request_type: "cut",
        session_id: session.media_session_id.clone(),
        result: AccessResult::Denied,
        reason: Some(reason),
        latency_us: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use auth_core::session::SessionOwner;

    pub(super) fn session(source: &str, proto: &str, id: Option<&str>, key: &str) -> Session {
        Session {
            id: 1,
            token_id: Some(3),
            owner: SessionOwner::token(3),
            key: key.into(),
            user_id: "u".into(),
            stream: "news".into(),
            ip: "10.0.0.1".into(),
            proto: proto.into(),
            source: source.into(),
            media_session_id: id.map(str::to_owned),
            started_at: Timestamp::from_unix_seconds(1),
            last_seen: Timestamp::from_unix_seconds(1),
            expires_at: Timestamp::from_unix_seconds(2),
            terminated_at: None,
        }
    }

    #[test]
    fn one_call_per_media_server_and_none_without_a_url() {
        let none = ControlConfig::default();
        let s = session("srs", "rtmp", Some("7"), "id:srs:x");
        assert!(none.calls_for(&s).is_empty());
        let config = ControlConfig::load(|name| match name {
            "SRS_API_URL" => Some("http://127.0.0.1:1985/".into()),
            "MEDIAMTX_API_URL" => Some("http://127.0.0.1:9997".into()),
            _ => None,
        })
        .unwrap();
        let calls = config.calls_for(&s);
        assert_eq!(calls.len(), 1);
        assert_eq!(
            (calls[0].method, calls[0].url.path_and_query()),
            ("DELETE", "/api/v1/clients/7".to_owned())
        );
        assert!(config
            .calls_for(&session("nginx-auth", "hls", None, "addr:x"))
            .is_empty());
        assert!(
            config
                .calls_for(&session("mediamtx", "hls", Some("ab"), "id:x"))
                .is_empty(),
            "MediaMTX cannot kick an HLS reader"
        );
    }

    #[test]
    fn settings_are_checked() {
        let bad = ControlConfig::load(|name| {
            (name == "SRS_API_URL").then(|| "https://srs.example/".to_owned())
        });
        assert!(bad.unwrap_err().0.contains("SRS_API_URL"));
        let bad = ControlConfig::load(|name| {
            (name == "FLUSSONIC_API_AUTH").then(|| "nocolon".to_owned())
        });
        assert!(bad.unwrap_err().0.contains("FLUSSONIC_API_AUTH"));
    }
}
