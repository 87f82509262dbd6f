//! The policy: may this viewer play this stream now?
//!
//! [`decide`] is a pure function of the request, the token, the clock reading and the outcome of
//! one atomic store step (session admission), which it receives as a closure so that the same
//! policy runs over every store and in tests without one. [`Authorizer`] wires it to a
//! [`Store`] and a [`Clock`].

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use crate::clock::{Clock, Timestamp};
use crate::error::Result;
use crate::secret::TokenHasher;
use crate::session::{session_key, Admission, SessionClaim, SessionId, SessionPolicy};
use crate::store::Store;
use crate::token::{Token, TokenId, TokenStatus};

/// Whether the media server is opening a session or re-checking a live one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestType {
    NewSession,
    UpdateSession,
}

impl RequestType {
    /// Absent or unknown values count as a new session: the stricter reading, since a new session
    /// must find a free slot while an update of a live one never needs one.
    pub fn parse(text: Option<&str>) -> Self {
        match text {
            Some("update_session") => RequestType::UpdateSession,
            _ => RequestType::NewSession,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RequestType::NewSession => "new_session",
            RequestType::UpdateSession => "update_session",
        }
    }
}

/// A play (or publish) authorization question, borrowed from the transport's parsed request.
#[derive(Debug, Clone, Copy)]
pub struct AuthRequest<'a> {
    pub token: Option<&'a str>,
    pub stream: &'a str,
    pub ip: IpAddr,
    pub proto: &'a str,
    pub request_type: RequestType,
    /// The media server's own id of the session, stable across its re-checks.
    pub session_id: Option<&'a str>,
}

/// Why a request was refused. The codes are a public contract: never renamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenyReason {
    TokenMissing,
    TokenNotFound,
    TokenSuspended,
    TokenExpired,
    TokenNotYetValid,
    IpNotAllowed,
    StreamNotAllowed,
    SessionLimitReached,
    SessionTerminated,
    /// The store did not answer within the response budget.
    BackendTimeout,
    /// The store answered with an error.
    BackendError,
}

impl DenyReason {
    pub const ALL: [DenyReason; 11] = [
        DenyReason::TokenMissing,
        DenyReason::TokenNotFound,
        DenyReason::TokenSuspended,
        DenyReason::TokenExpired,
        DenyReason::TokenNotYetValid,
        DenyReason::IpNotAllowed,
        DenyReason::StreamNotAllowed,
        DenyReason::SessionLimitReached,
        DenyReason::SessionTerminated,
        DenyReason::BackendTimeout,
        DenyReason::BackendError,
    ];

    pub fn code(self) -> &'static str {
        match self {
            DenyReason::TokenMissing => "token_missing",
            DenyReason::TokenNotFound => "token_not_found",
            DenyReason::TokenSuspended => "token_suspended",
            DenyReason::TokenExpired => "token_expired",
            DenyReason::TokenNotYetValid => "token_not_yet_valid",
            DenyReason::IpNotAllowed => "ip_not_allowed",
            DenyReason::StreamNotAllowed => "stream_not_allowed",
            DenyReason::SessionLimitReached => "session_limit_reached",
            DenyReason::SessionTerminated => "session_terminated",
            DenyReason::BackendTimeout => "backend_timeout",
            DenyReason::BackendError => "backend_error",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|reason| reason.code() == code)
    }

    /// A sentence for humans, naming what was at fault.
    pub fn message(self, request: &AuthRequest<'_>) -> String {
        match self {
            DenyReason::TokenMissing => "no token was presented".to_owned(),
            DenyReason::TokenNotFound => "the token is not known".to_owned(),
            DenyReason::TokenSuspended => "the token is suspended".to_owned(),
            DenyReason::TokenExpired => "the token has expired".to_owned(),
            DenyReason::TokenNotYetValid => "the token is not valid yet".to_owned(),
            DenyReason::IpNotAllowed => {
                format!("IP address {} is not authorized for this token", request.ip)
            }
            DenyReason::StreamNotAllowed => {
                format!(
                    "stream `{}` is not authorized for this token",
                    request.stream
                )
            }
            DenyReason::SessionLimitReached => {
                "the token already has as many live sessions as it allows".to_owned()
            }
            DenyReason::SessionTerminated => "this session was terminated".to_owned(),
            DenyReason::BackendTimeout => {
                "the authorization store did not answer in time".to_owned()
            }
            DenyReason::BackendError => "the authorization store failed".to_owned(),
        }
    }
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The answer to an [`AuthRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow(Grant),
    Deny(Denial),
}

impl Decision {
    pub fn is_allow(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }

    pub fn deny_reason(&self) -> Option<DenyReason> {
        match self {
            Decision::Allow(_) => None,
            Decision::Deny(denial) => Some(denial.reason),
        }
    }

    pub fn token_id(&self) -> Option<TokenId> {
        match self {
            Decision::Allow(grant) => Some(grant.token_id),
            Decision::Deny(denial) => denial.token_id,
        }
    }

    pub fn user_id(&self) -> Option<&str> {
        match self {
            Decision::Allow(grant) => Some(&grant.user_id),
            Decision::Deny(denial) => denial.user_id.as_deref(),
        }
    }
}

/// An allowed request: what the media server is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub token_id: TokenId,
    pub user_id: String,
    /// 0 means unlimited.
    pub max_sessions: u32,
    /// Seconds the media server may cache this answer.
    pub auth_duration: u32,
    pub session_id: SessionId,
    /// True when this request opened the session, false when it extended a live one.
    pub new_session: bool,
}

/// A refused request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub reason: DenyReason,
    /// Known once the token was found.
    pub token_id: Option<TokenId>,
    pub user_id: Option<String>,
}

impl Denial {
    pub fn new(reason: DenyReason) -> Self {
        Denial {
            reason,
            token_id: None,
            user_id: None,
        }
    }

    fn for_token(reason: DenyReason, token: &Token) -> Self {
        Denial {
            reason,
            token_id: Some(token.id),
            user_id: Some(token.user_id.clone()),
        }
    }
}

/// Checks everything about the token that needs no session state, in a fixed order: expiry
/// first (a token past `valid_until` is expired whatever its stored status), then status,
/// validity start, client address, stream.
///
/// `token` must be the one whose digest matches the presented secret: secrets are never compared
/// here, only looked up by their keyed digest (see [`crate::secret`]).
pub fn check_token(
    request: &AuthRequest<'_>,
    token: &Token,
    now: Timestamp,
) -> Result<(), DenyReason> {
    if token.valid_until.is_some_and(|until| now >= until) || token.status == TokenStatus::Expired {
        return Err(DenyReason::TokenExpired);
    }
    if token.status == TokenStatus::Suspended {
        return Err(DenyReason::TokenSuspended);
    }
    if token.valid_from.is_some_and(|from| now < from) {
        return Err(DenyReason::TokenNotYetValid);
    }
    if !token.allowed_ips.allows(request.ip) {
        return Err(DenyReason::IpNotAllowed);
    }
    if !token.allowed_streams.allows(request.stream) {
        return Err(DenyReason::StreamNotAllowed);
    }
    Ok(())
}

/// The whole policy. `admit` is the store's atomic admission step; it is called only when every
/// other check has passed, so a refused request never takes a slot.
pub fn decide<F>(
    request: &AuthRequest<'_>,
    token: Option<&Token>,
    now: Timestamp,
    policy: &SessionPolicy,
    admit: F,
) -> Result<Decision>
where
    F: FnOnce(&SessionClaim<'_>) -> Result<Admission>,
{
    if request.token.is_none_or(str::is_empty) {
        return Ok(Decision::Deny(Denial::new(DenyReason::TokenMissing)));
    }
    let Some(token) = token else {
        return Ok(Decision::Deny(Denial::new(DenyReason::TokenNotFound)));
    };
    if let Err(reason) = check_token(request, token, now) {
        return Ok(Decision::Deny(Denial::for_token(reason, token)));
    }
    let key = session_key(
        request.session_id,
        request.ip,
        request.stream,
        request.proto,
    );
    let claim = SessionClaim {
        token_id: token.id,
        key: &key,
        max_sessions: token.max_sessions,
        user_id: &token.user_id,
        stream: request.stream,
        ip: request.ip,
        proto: request.proto,
    };
    let (session_id, new_session) = match admit(&claim)? {
        Admission::Admitted { session_id } => (session_id, true),
        Admission::Extended { session_id } => (session_id, false),
        Admission::LimitReached { .. } => {
            return Ok(Decision::Deny(Denial::for_token(
                DenyReason::SessionLimitReached,
                token,
            )))
        }
        Admission::Terminated { .. } => {
            return Ok(Decision::Deny(Denial::for_token(
                DenyReason::SessionTerminated,
                token,
            )))
        }
    };
    Ok(Decision::Allow(Grant {
        token_id: token.id,
        user_id: token.user_id.clone(),
        max_sessions: token.max_sessions,
        auth_duration: policy.auth_duration_secs(),
        session_id,
        new_session,
    }))
}

/// The policy wired to a store and a clock: what an embedding server calls per request.
pub struct Authorizer {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    hasher: TokenHasher,
    policy: SessionPolicy,
}

impl Authorizer {
    /// `hasher` must be the one the store's tokens were created with.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        hasher: TokenHasher,
        policy: SessionPolicy,
    ) -> Self {
        Authorizer {
            store,
            clock,
            hasher,
            policy,
        }
    }

    pub fn hasher(&self) -> &TokenHasher {
        &self.hasher
    }

    pub fn policy(&self) -> &SessionPolicy {
        &self.policy
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Decides one request: a token lookup, the pure checks, and (only if they pass) one atomic
    /// admission call. Blocking: call it from a thread that may block (e.g. `spawn_blocking`).
    pub fn authorize(&self, request: &AuthRequest<'_>) -> Result<Decision> {
        let now = self.clock.now();
        let token = match request.token {
            Some(secret) if !secret.is_empty() => {
                self.store.token_by_digest(&self.hasher.digest(secret))?
            }
            _ => None,
        };
        let lease_until = self.policy.lease_until(now);
        decide(request, token.as_deref(), now, &self.policy, |claim| {
            self.store.admit_session(claim, now, lease_until)
        })
    }

    /// [`Authorizer::authorize`], when the store can answer from memory (a cached token and a
    /// re-check of a live session, typically most requests): no blocking call is made, so an
    /// async server may call this on its reactor threads. `None` means "call `authorize` on a
    /// thread that may block".
    pub fn try_authorize_without_blocking(
        &self,
        request: &AuthRequest<'_>,
    ) -> Option<Result<Decision>> {
        let now = self.clock.now();
        let token = match request.token {
            Some(secret) if !secret.is_empty() => self
                .store
                .try_token_without_blocking(&self.hasher.digest(secret))?,
            _ => None,
        };
        let lease_until = self.policy.lease_until(now);
        let mut would_block = false;
        let decision = decide(request, token.as_deref(), now, &self.policy, |claim| {
            self.store
                .try_admit_without_blocking(claim, now, lease_until)
                .unwrap_or_else(|| {
                    // Abandon this attempt; the caller retries on a blocking thread.
                    would_block = true;
                    Err(crate::Error::storage("admission needs a blocking call"))
                })
        });
        (!would_block).then_some(decision)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::token::TokenSpec;

    const SECRET: &str = "viewer-secret-1";

    fn token(spec: TokenSpec) -> Token {
        let hasher = TokenHasher::new(&[3u8; 32]).unwrap();
        let (new, _) = TokenSpec {
            token: Some(SECRET.into()),
            ..spec
        }
        .validate(&hasher)
        .unwrap();
        new.into_token(7, Timestamp::UNIX_EPOCH, Timestamp::UNIX_EPOCH)
    }

    fn base() -> TokenSpec {
        TokenSpec {
            user_id: "u1".into(),
            ..Default::default()
        }
    }

    fn request(secret: Option<&str>) -> AuthRequest<'_> {
        AuthRequest {
            token: secret,
            stream: "sports/final",
            ip: "10.0.0.5".parse().unwrap(),
            proto: "hls",
            request_type: RequestType::NewSession,
            session_id: Some("s1"),
        }
    }

    fn run(
        token: Option<&Token>,
        req: &AuthRequest<'_>,
        now: Timestamp,
        admission: Admission,
    ) -> Decision {
        let policy = SessionPolicy::new(Duration::from_secs(180));
        decide(req, token, now, &policy, |_| Ok(admission)).unwrap()
    }

    fn reason(decision: Decision) -> Option<DenyReason> {
        decision.deny_reason()
    }

    const NOW: Timestamp = Timestamp::from_unix_seconds(1_800_000_000);
    const ADMIT: Admission = Admission::Admitted { session_id: 1 };

    #[test]
    fn allows_a_good_token_and_reports_the_grant() {
        let t = token(TokenSpec {
            max_sessions: Some(2),
            ..base()
        });
        match run(Some(&t), &request(Some(SECRET)), NOW, ADMIT) {
            Decision::Allow(grant) => {
                assert_eq!(grant.user_id, "u1");
                assert_eq!(grant.max_sessions, 2);
                assert_eq!(grant.auth_duration, 180);
                assert!(grant.new_session);
            }
            other => panic!("expected allow, got {other:?}"),
        }
    }

    #[test]
    fn each_reason_in_its_place() {
        let t = token(base());
        assert_eq!(
            reason(run(Some(&t), &request(None), NOW, ADMIT)),
            Some(DenyReason::TokenMissing)
        );
        assert_eq!(
            reason(run(Some(&t), &request(Some("")), NOW, ADMIT)),
            Some(DenyReason::TokenMissing)
        );
        assert_eq!(
            reason(run(None, &request(Some(SECRET)), NOW, ADMIT)),
            Some(DenyReason::TokenNotFound)
        );
        let suspended = token(TokenSpec {
            status: Some(TokenStatus::Suspended),
            ..base()
        });
        assert_eq!(
            reason(run(Some(&suspended), &request(Some(SECRET)), NOW, ADMIT)),
            Some(DenyReason::TokenSuspended)
        );
        let expired = token(TokenSpec {
            status: Some(TokenStatus::Expired),
            ..base()
        });
        assert_eq!(
            reason(run(Some(&expired), &request(Some(SECRET)), NOW, ADMIT)),
            Some(DenyReason::TokenExpired)
        );
        let ips = token(TokenSpec {
            allowed_ips: vec!["192.168.0.0/16".into()],
            ..base()
        });
        assert_eq!(
            reason(run(Some(&ips), &request(Some(SECRET)), NOW, ADMIT)),
            Some(DenyReason::IpNotAllowed)
        );
        let streams = token(TokenSpec {
            allowed_streams: vec!["news/*".into()],
            ..base()
        });
        assert_eq!(
            reason(run(Some(&streams), &request(Some(SECRET)), NOW, ADMIT)),
            Some(DenyReason::StreamNotAllowed)
        );
        assert_eq!(
            reason(run(
                Some(&t),
                &request(Some(SECRET)),
                NOW,
                Admission::LimitReached { live: 1 }
            )),
            Some(DenyReason::SessionLimitReached)
        );
        assert_eq!(
            reason(run(
                Some(&t),
                &request(Some(SECRET)),
                NOW,
                Admission::Terminated { session_id: 1 }
            )),
            Some(DenyReason::SessionTerminated)
        );
    }

    #[test]
    fn validity_window_edges() {
        let from = NOW;
        let until = NOW.saturating_add(Duration::from_secs(60));
        let t = token(TokenSpec {
            valid_from: Some(from),
            valid_until: Some(until),
            ..base()
        });
        let req = request(Some(SECRET));
        let just_before = NOW.saturating_sub(Duration::from_micros(1));
        assert_eq!(
            reason(run(Some(&t), &req, just_before, ADMIT)),
            Some(DenyReason::TokenNotYetValid)
        );
        assert!(run(Some(&t), &req, from, ADMIT).is_allow());
        assert!(run(
            Some(&t),
            &req,
            until.saturating_sub(Duration::from_micros(1)),
            ADMIT
        )
        .is_allow());
        assert_eq!(
            reason(run(Some(&t), &req, until, ADMIT)),
            Some(DenyReason::TokenExpired)
        );
    }

    #[test]
    fn past_valid_until_is_expired_even_when_suspended() {
        let t = token(TokenSpec {
            status: Some(TokenStatus::Suspended),
            valid_until: Some(NOW),
            ..base()
        });
        assert_eq!(
            reason(run(Some(&t), &request(Some(SECRET)), NOW, ADMIT)),
            Some(DenyReason::TokenExpired)
        );
    }

    #[test]
    fn a_refused_request_never_reaches_admission() {
        let t = token(TokenSpec {
            allowed_streams: vec!["news".into()],
            ..base()
        });
        let policy = SessionPolicy::new(Duration::from_secs(180));
        let decision = decide(&request(Some(SECRET)), Some(&t), NOW, &policy, |_| {
            panic!("admission must not be attempted for a refused request")
        })
        .unwrap();
        assert_eq!(decision.deny_reason(), Some(DenyReason::StreamNotAllowed));
    }

    #[test]
    fn reason_codes_round_trip() {
        for reason in DenyReason::ALL {
            assert_eq!(DenyReason::from_code(reason.code()), Some(reason));
        }
    }
}
