//! The policy: may this viewer play this stream now?
//!
//! [`plan`] and [`plan_signed`] are pure functions of the request, the token (or the signed
//! token's verified claims) and the clock reading: they decide, or say which slot to claim and
//! how to answer once the store's one atomic step (session admission) says whether it got it.
//! [`decide`] runs a plan with that step as a closure, so the same policy runs over every store
//! and in tests without one. [`Authorizer`] wires it to the token and session stores and a
//! [`Clock`](crate::Clock), in one pass per request (see [`authorizer`]).

pub mod authorizer;

pub use authorizer::{Admitting, Authorizer, Pending, Step};

use std::fmt;
use std::net::IpAddr;

use crate::clock::Timestamp;
use crate::error::Result;
use crate::session::{
    session_key, Admission, SessionClaim, SessionId, SessionOwner, SessionPolicy,
};
use crate::signed_token::{Claims, KeyRing, Rejection};
use crate::token::{Action, Token, TokenId, TokenStatus};

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
    /// Play or publish: checked against the token's `allowed_actions`.
    pub action: Action,
    /// A segment of HTTP delivery (not a playlist): the one request a segment token
    /// ([`Kind::Segment`](crate::signed_token::Kind::Segment)) is good for, since it takes no session slot and the playlist holds
    /// the viewer's.
    pub segment: bool,
    /// Which media server asked (`flussonic`, `nginx-rtmp`, `nginx-auth`, `mediamtx`, `srs`),
    /// kept with the session so that a cut can be pushed to it; empty when not known.
    pub source: &'a str,
    /// The media server's own id of the client, as its control API names it (Flussonic's
    /// `session_id`, nginx-rtmp's `clientid`, SRS's `client_id`, MediaMTX's `id`), kept with
    /// the session; `session_id` above may be namespaced and is not always usable there.
    pub media_session_id: Option<&'a str>,
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
    /// An operator cut a session of this token on this stream and banned it for a while.
    SessionBanned,
    /// The token does not allow this action (e.g. a viewer's token used as a stream key).
    ActionNotAllowed,
    /// The store did not answer within the response budget.
    BackendTimeout,
    /// The store answered with an error.
    BackendError,
    /// A signed token that does not parse.
    Malformed,
    /// A signed token naming a key that is unknown or retired.
    UnknownKey,
    /// A signed token whose signature does not match.
    BadSignature,
    /// A genuine signed token meant for another use (an e-ticket; a segment token anywhere but on
    /// a segment).
    WrongKind,
    /// A signed token revoked before it expired (by its session group or its id).
    TokenRevoked,
}

/// A refused signed token's reason, in the same vocabulary as stored tokens where one exists.
impl From<Rejection> for DenyReason {
    fn from(rejection: Rejection) -> Self {
        match rejection {
            Rejection::Malformed => DenyReason::Malformed,
            Rejection::UnknownKey => DenyReason::UnknownKey,
            Rejection::BadSignature => DenyReason::BadSignature,
            Rejection::WrongKind => DenyReason::WrongKind,
            Rejection::Revoked => DenyReason::TokenRevoked,
            Rejection::Expired => DenyReason::TokenExpired,
            Rejection::NotYetValid => DenyReason::TokenNotYetValid,
            Rejection::IpMismatch => DenyReason::IpNotAllowed,
            Rejection::StreamNotAllowed => DenyReason::StreamNotAllowed,
        }
    }
}

impl DenyReason {
    pub const ALL: [DenyReason; 18] = [
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
        DenyReason::Malformed,
        DenyReason::UnknownKey,
        DenyReason::BadSignature,
        DenyReason::WrongKind,
        DenyReason::ActionNotAllowed,
        DenyReason::SessionBanned,
        DenyReason::TokenRevoked,
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
            DenyReason::SessionBanned => "session_banned",
            DenyReason::ActionNotAllowed => "action_not_allowed",
            DenyReason::BackendTimeout => "backend_timeout",
            DenyReason::BackendError => "backend_error",
            DenyReason::Malformed => Rejection::Malformed.code(),
            DenyReason::UnknownKey => Rejection::UnknownKey.code(),
            DenyReason::BadSignature => Rejection::BadSignature.code(),
            DenyReason::WrongKind => Rejection::WrongKind.code(),
            DenyReason::TokenRevoked => Rejection::Revoked.code(),
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
            DenyReason::SessionBanned => {
                "this token is banned from this stream for a while".to_owned()
            }
            DenyReason::ActionNotAllowed => {
                format!("this token does not allow `{}`", request.action)
            }
            DenyReason::BackendTimeout => {
                "the authorization store did not answer in time".to_owned()
            }
            DenyReason::BackendError => "the authorization store failed".to_owned(),
            DenyReason::Malformed => Rejection::Malformed.message().to_owned(),
            DenyReason::UnknownKey => Rejection::UnknownKey.message().to_owned(),
            DenyReason::BadSignature => Rejection::BadSignature.message().to_owned(),
            DenyReason::WrongKind => Rejection::WrongKind.message().to_owned(),
            DenyReason::TokenRevoked => Rejection::Revoked.message().to_owned(),
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
            Decision::Allow(grant) => grant.token_id,
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
    /// `None` for a signed token (it has no row).
    pub token_id: Option<TokenId>,
    pub user_id: String,
    /// 0 means unlimited.
    pub max_sessions: u32,
    /// Seconds the media server may cache this answer.
    pub auth_duration: u32,
    /// The session this admission cut to make room (the token's `on_limit` is `evict_oldest`),
    /// for the caller to tell its media server.
    pub evicted: Option<SessionId>,
    /// `None` when no session was recorded: a signed token that limits no sessions is decided
    /// by its signature alone, with no store call at all.
    pub session_id: Option<SessionId>,
    /// True when this request opened the session, false when it extended a live one (or none
    /// was recorded).
    pub new_session: bool,
    /// What the signed token allowed said of itself; `None` for a stored token.
    pub signed: Option<SignedGrant>,
}

/// The parts of an allowed signed token's claims that outlive the decision (what a token derived
/// from it must not exceed), so that nobody verifies the token a second time to learn them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedGrant {
    /// `exp`, unix seconds.
    pub expires_at: i64,
    /// `evt`.
    pub event: Option<String>,
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
/// validity start, client address, stream, action.
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
    if !token.allowed_actions.allows(request.action) {
        return Err(DenyReason::ActionNotAllowed);
    }
    Ok(())
}

/// Whether a live session still qualifies under `token` as it now is (after a change): the
/// checks of [`check_token`] that a session records the inputs of (expiry, status, validity
/// start, client address, stream), in the same order. `Err` names the reason to cut it with.
pub fn session_still_allowed(
    token: &Token,
    session: &crate::session::Session,
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
    // A session's address was parsed before it was stored; one that no longer parses is refused.
    match session.ip.parse::<IpAddr>() {
        Ok(ip) if token.allowed_ips.allows(ip) => {}
        _ => return Err(DenyReason::IpNotAllowed),
    }
    if !token.allowed_streams.allows(&session.stream) {
        return Err(DenyReason::StreamNotAllowed);
    }
    Ok(())
}

/// What the policy concluded before any store write: a decision, or an admission to ask for.
#[derive(Debug)]
pub enum Plan {
    Decided(Decision),
    Admit(AdmissionPlan),
}

/// A request that passed every check and now needs a slot: what to claim, and what to answer
/// once the store says whether it got one. Owned, so that it can wait for a blocking store call
/// without anything being computed twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmissionPlan {
    owner: SessionOwner,
    user_id: String,
    max_sessions: u32,
    key: String,
    signed: Option<SignedGrant>,
    /// The token's `on_limit` is `evict_oldest`.
    evict_oldest: bool,
    /// What bounds a token without a limit ([`AdmissionPlan::within`]); 0: nothing.
    ceiling: u32,
}

impl AdmissionPlan {
    fn new(
        request: &AuthRequest<'_>,
        owner: SessionOwner,
        user_id: String,
        max_sessions: u32,
        signed: Option<SignedGrant>,
    ) -> Self {
        let key = session_key(
            request.session_id,
            request.ip,
            request.stream,
            request.proto,
        );
        AdmissionPlan {
            owner,
            user_id,
            max_sessions,
            key,
            signed,
            evict_oldest: false,
            ceiling: 0,
        }
    }

    /// Bounds a token without a session limit by `policy`'s ceiling
    /// ([`SessionPolicy::unlimited_ceiling`]); the grant still reports the token's own limit.
    pub fn within(mut self, policy: &SessionPolicy) -> Self {
        if self.max_sessions == 0 {
            self.ceiling = policy.unlimited_ceiling;
        }
        self
    }

    /// The claim to hand the store's atomic admission step.
    pub fn claim<'a>(&'a self, request: &AuthRequest<'a>) -> SessionClaim<'a> {
        SessionClaim {
            owner: self.owner,
            key: &self.key,
            max_sessions: if self.max_sessions == 0 {
                self.ceiling
            } else {
                self.max_sessions
            },
            user_id: &self.user_id,
            stream: request.stream,
            ip: request.ip,
            proto: request.proto,
            source: request.source,
            media_session_id: request.media_session_id.filter(|id| !id.is_empty()),
            evict_oldest: self.evict_oldest,
        }
    }

    /// The decision, given the store's answer to [`AdmissionPlan::claim`].
    pub fn conclude(self, admission: Admission, policy: &SessionPolicy) -> Decision {
        let token_id = self.owner.token_id();
        let deny = |reason, user_id| {
            Decision::Deny(Denial {
                reason,
                token_id,
                user_id: Some(user_id),
            })
        };
        let mut evicted_session = None;
        let (session_id, new_session) = match admission {
            Admission::Admitted { session_id } => (session_id, true),
            Admission::Evicted {
                session_id,
                evicted,
            } => {
                evicted_session = Some(evicted);
                (session_id, true)
            }
            Admission::Extended { session_id } => (session_id, false),
            Admission::LimitReached { .. } => {
                return deny(DenyReason::SessionLimitReached, self.user_id)
            }
            Admission::Terminated { .. } => {
                return deny(DenyReason::SessionTerminated, self.user_id)
            }
            Admission::Banned { .. } => return deny(DenyReason::SessionBanned, self.user_id),
        };
        Decision::Allow(Grant {
            token_id,
            user_id: self.user_id,
            max_sessions: self.max_sessions,
            auth_duration: policy.auth_duration_secs(),
            session_id: Some(session_id),
            evicted: evicted_session,
            new_session,
            signed: self.signed,
        })
    }
}

/// The policy for a stored token, up to the admission: `token` is the one whose digest matches
/// the presented secret (`None`: no such token).
pub fn plan(request: &AuthRequest<'_>, token: Option<&Token>, now: Timestamp) -> Plan {
    if request.token.is_none_or(str::is_empty) {
        return Plan::Decided(Decision::Deny(Denial::new(DenyReason::TokenMissing)));
    }
    let Some(token) = token else {
        return Plan::Decided(Decision::Deny(Denial::new(DenyReason::TokenNotFound)));
    };
    if let Err(reason) = check_token(request, token, now) {
        return Plan::Decided(Decision::Deny(Denial::for_token(reason, token)));
    }
    let mut plan = AdmissionPlan::new(
        request,
        SessionOwner::token(token.id),
        token.user_id.clone(),
        token.max_sessions,
        None,
    );
    plan.evict_oldest = token.on_limit == crate::token::OnLimit::EvictOldest;
    Plan::Admit(plan)
}

/// The policy for a signed token, up to the admission, given the outcome of its verification
/// (which already checked validity, client address and stream: see [`KeyRing::verify`]). No
/// token is looked up. A token that limits its sessions goes through the same atomic admission
/// as a stored token, its slots owned by [`SessionOwner::signed`]; one that does not is decided
/// here, with no store call at all.
pub fn plan_signed(
    request: &AuthRequest<'_>,
    verified: std::result::Result<Claims, Rejection>,
    policy: &SessionPolicy,
) -> Plan {
    let claims = match verified {
        Ok(claims) => claims,
        Err(rejection) => return Plan::Decided(Decision::Deny(Denial::new(rejection.into()))),
    };
    // Signed tokens are playback tokens: never stream keys.
    if request.action != Action::Play {
        return Plan::Decided(Decision::Deny(Denial::new(DenyReason::ActionNotAllowed)));
    }
    let signed = SignedGrant {
        expires_at: claims.exp,
        event: claims.evt,
    };
    if claims.max_sessions == 0 {
        return Plan::Decided(Decision::Allow(Grant {
            token_id: None,
            user_id: claims.sub,
            max_sessions: 0,
            auth_duration: policy.auth_duration_secs(),
            session_id: None,
            evicted: None,
            new_session: false,
            signed: Some(signed),
        }));
    }
    let owner = signed_owner(request.token.unwrap_or_default(), claims.grp.as_deref());
    Plan::Admit(AdmissionPlan::new(
        request,
        owner,
        claims.sub,
        claims.max_sessions,
        Some(signed),
    ))
}

/// Runs a plan to its decision with `admit` as the store's atomic admission step, called only
/// when every other check has passed, so a refused request never takes a slot.
fn run<F>(
    request: &AuthRequest<'_>,
    plan: Plan,
    policy: &SessionPolicy,
    admit: F,
) -> Result<Decision>
where
    F: FnOnce(&SessionClaim<'_>) -> Result<Admission>,
{
    match plan {
        Plan::Decided(decision) => Ok(decision),
        Plan::Admit(plan) => {
            let plan = plan.within(policy);
            let admission = admit(&plan.claim(request))?;
            Ok(plan.conclude(admission, policy))
        }
    }
}

/// The whole policy for a stored token, with `admit` as the store's atomic admission step.
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
    run(request, plan(request, token, now), policy, admit)
}

/// The whole policy for a signed token (see [`plan_signed`]), with `admit` as the store's
/// atomic admission step.
pub fn decide_signed<F>(
    request: &AuthRequest<'_>,
    verified: std::result::Result<Claims, Rejection>,
    policy: &SessionPolicy,
    admit: F,
) -> Result<Decision>
where
    F: FnOnce(&SessionClaim<'_>) -> Result<Admission>,
{
    run(
        request,
        plan_signed(request, verified, policy),
        policy,
        admit,
    )
}

/// The session owner of a signed token: its session group's when it names one (`grp`), so
/// that every token of the group shares the slots; else from its tag, the part only the key
/// holder could make.
pub fn signed_owner(token: &str, group: Option<&str>) -> SessionOwner {
    match group {
        Some(group) => SessionOwner::group(group),
        None => SessionOwner::signed(token.rsplit('.').next().unwrap_or_default().as_bytes()),
    }
}

/// The owner of the sessions a signed token was admitted for, to find them again (a media
/// server's "done" call). Only the signature is checked: the token may have expired while it
/// played. A token that no longer verifies falls back to its tag, which names no group.
pub fn signed_session_owner(ring: &KeyRing, token: &str) -> SessionOwner {
    let claims = ring.verify_signature(token).ok();
    signed_owner(token, claims.as_ref().and_then(|c| c.grp.as_deref()))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use std::sync::Arc;

    use super::*;
    use crate::secret::TokenHasher;
    use crate::signed_token::SharedKeyRing;
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

    #[test]
    fn a_live_session_qualifies_until_its_token_changes_against_it() {
        let now = Timestamp::from_unix_seconds(1000);
        let session = crate::session::Session {
            id: 1,
            token_id: Some(7),
            owner: SessionOwner::token(7),
            key: "id:a".into(),
            user_id: "u1".into(),
            stream: "news/main".into(),
            ip: "192.168.1.9".into(),
            proto: "rtmp".into(),
            source: "nginx-rtmp".into(),
            media_session_id: Some("3".into()),
            started_at: now,
            last_seen: now,
            expires_at: now,
            terminated_at: None,
        };
        let check = |spec: TokenSpec| session_still_allowed(&token(spec), &session, now);
        assert_eq!(check(base()), Ok(()));
        for (spec, reason) in [
            (
                TokenSpec {
                    status: Some(TokenStatus::Suspended),
                    ..base()
                },
                DenyReason::TokenSuspended,
            ),
            (
                TokenSpec {
                    status: Some(TokenStatus::Expired),
                    ..base()
                },
                DenyReason::TokenExpired,
            ),
            (
                TokenSpec {
                    allowed_ips: vec!["10.0.0.0/8".into()],
                    ..base()
                },
                DenyReason::IpNotAllowed,
            ),
            (
                TokenSpec {
                    allowed_streams: vec!["sports/*".into()],
                    ..base()
                },
                DenyReason::StreamNotAllowed,
            ),
        ] {
            assert_eq!(check(spec), Err(reason));
        }
        assert_eq!(
            check(TokenSpec {
                allowed_ips: vec!["192.168.0.0/16".into()],
                allowed_streams: vec!["news/*".into()],
                ..base()
            }),
            Ok(())
        );
    }

    fn request(secret: Option<&str>) -> AuthRequest<'_> {
        AuthRequest {
            token: secret,
            stream: "sports/final",
            ip: "10.0.0.5".parse().unwrap(),
            proto: "hls",
            request_type: RequestType::NewSession,
            session_id: Some("s1"),
            action: Action::Play,
            segment: false,
            source: "",
            media_session_id: None,
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
    fn a_token_without_a_limit_is_bounded_by_the_ceiling() {
        let unlimited = token(base());
        let limited = token(TokenSpec {
            max_sessions: Some(5_000),
            ..base()
        });
        let policy = SessionPolicy {
            unlimited_ceiling: 3,
            ..SessionPolicy::new(Duration::from_secs(180))
        };
        let claimed = |t: &Token, policy: &SessionPolicy| {
            let mut seen = None;
            let decision = decide(&request(Some(SECRET)), Some(t), NOW, policy, |claim| {
                seen = Some(claim.max_sessions);
                Ok(ADMIT)
            })
            .unwrap();
            let granted = match decision {
                Decision::Allow(grant) => Some(grant.max_sessions),
                Decision::Deny(_) => None,
            };
            (seen, granted)
        };
        assert_eq!(claimed(&unlimited, &policy), (Some(3), Some(0)));
        assert_eq!(
            claimed(&limited, &policy),
            (Some(5_000), Some(5_000)),
            "a token's own limit stands"
        );
        let none = SessionPolicy::new(Duration::from_secs(180));
        assert_eq!(claimed(&unlimited, &none), (Some(0), Some(0)));
    }

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
    fn publishing_needs_a_token_allowed_to_publish() {
        let viewer = token(base());
        let publish = AuthRequest {
            action: Action::Publish,
            ..request(Some(SECRET))
        };
        assert_eq!(
            reason(run(Some(&viewer), &publish, NOW, ADMIT)),
            Some(DenyReason::ActionNotAllowed)
        );
        let key = token(TokenSpec {
            allowed_actions: Some(vec![Action::Publish]),
            ..base()
        });
        assert!(run(Some(&key), &publish, NOW, ADMIT).is_allow());
        assert_eq!(
            reason(run(Some(&key), &request(Some(SECRET)), NOW, ADMIT)),
            Some(DenyReason::ActionNotAllowed)
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

    mod signed {
        use super::*;
        use crate::signed_token::{Claims, KeyRing};
        use crate::MemoryStore;

        fn ring() -> KeyRing {
            let mut ring = KeyRing::new();
            ring.add_hmac("k1", &[4u8; 32]).unwrap();
            ring
        }

        fn claims(max_sessions: u32) -> Claims {
            Claims {
                evt: Some("conf".into()),
                streams: vec!["sports/*".into()],
                max_sessions,
                ..Claims::new("holder-1", NOW, Duration::from_secs(600))
            }
        }

        fn policy() -> SessionPolicy {
            SessionPolicy::new(Duration::from_secs(180))
        }

        #[test]
        fn every_rejection_is_a_denial_without_admission() {
            for rejection in Rejection::ALL {
                let decision = decide_signed(
                    &request(Some("v1.k1.x.y")),
                    Err(rejection),
                    &policy(),
                    |_| panic!("a refused token never reaches admission"),
                )
                .unwrap();
                let reason = decision.deny_reason().unwrap();
                assert_eq!(reason, DenyReason::from(rejection));
                assert_eq!(DenyReason::from_code(reason.code()), Some(reason));
            }
        }

        #[test]
        fn an_unlimited_token_is_decided_without_the_store() {
            let decision = decide_signed(
                &request(Some("v1.k1.x.y")),
                Ok(claims(0)),
                &policy(),
                |_| panic!("no session limit, no store call"),
            )
            .unwrap();
            let Decision::Allow(grant) = decision else {
                panic!("expected allow, got {decision:?}")
            };
            assert_eq!(
                (grant.token_id, grant.session_id, grant.user_id.as_str()),
                (None, None, "holder-1")
            );
        }

        #[test]
        fn a_limited_token_claims_slots_for_its_own_owner() {
            let token = ring().sign("k1", &claims(2)).unwrap();
            let mut seen = None;
            let decision = decide_signed(&request(Some(&token)), Ok(claims(2)), &policy(), |c| {
                seen = Some((c.owner, c.max_sessions, c.user_id.to_owned()));
                Ok(Admission::LimitReached { live: 2 })
            })
            .unwrap();
            let (owner, max, user) = seen.unwrap();
            assert_eq!(owner.token_id(), None);
            assert_eq!((max, user.as_str()), (2, "holder-1"));
            assert_eq!(
                decision.deny_reason(),
                Some(DenyReason::SessionLimitReached)
            );
            assert_eq!(decision.user_id(), Some("holder-1"));
        }

        #[test]
        fn the_authorizer_verifies_and_limits_signed_tokens() {
            let store = Arc::new(MemoryStore::new());
            let clock = Arc::new(crate::ManualClock::new(NOW));
            let keys = Arc::new(SharedKeyRing::new(ring()));
            let auth = Authorizer::new(
                store,
                clock,
                TokenHasher::new(&[3u8; 32]).unwrap(),
                policy(),
            )
            .with_signed_keys(Arc::clone(&keys));
            let token = ring().sign("k1", &claims(1)).unwrap();
            let ask = |session: &'static str, stream: &'static str| AuthRequest {
                session_id: Some(session),
                stream,
                ..request(Some(&token))
            };
            assert!(auth
                .authorize(&ask("s1", "sports/final"))
                .unwrap()
                .is_allow());
            assert_eq!(
                auth.authorize(&AuthRequest {
                    action: Action::Publish,
                    ..ask("s9", "sports/final")
                })
                .unwrap()
                .deny_reason(),
                Some(DenyReason::ActionNotAllowed),
                "a signed playback token is never a stream key"
            );
            assert_eq!(
                auth.authorize(&ask("s2", "sports/final"))
                    .unwrap()
                    .deny_reason(),
                Some(DenyReason::SessionLimitReached)
            );
            assert!(
                matches!(
                    auth.start(&ask("s1", "sports/final")),
                    Step::Done(Ok(Decision::Allow(_)))
                ),
                "a re-check of a live signed session is answered from memory"
            );
            assert_eq!(
                auth.authorize(&ask("s1", "news/main"))
                    .unwrap()
                    .deny_reason(),
                Some(DenyReason::StreamNotAllowed)
            );
            keys.replace(KeyRing::new());
            assert_eq!(
                auth.authorize(&ask("s1", "sports/final"))
                    .unwrap()
                    .deny_reason(),
                Some(DenyReason::UnknownKey),
                "a replaced ring takes effect at once"
            );
        }

        fn authorizer(keys: KeyRing) -> Authorizer {
            Authorizer::new(
                Arc::new(MemoryStore::new()),
                Arc::new(crate::ManualClock::new(NOW)),
                TokenHasher::new(&[3u8; 32]).unwrap(),
                policy(),
            )
            .with_signed_keys(Arc::new(SharedKeyRing::new(keys)))
        }

        #[test]
        fn tokens_of_one_session_group_share_its_slots() {
            let auth = authorizer(ring());
            let mint = |grp: &str| {
                let claims = Claims {
                    grp: Some(grp.into()),
                    jti: Some(crate::signed_token::random_id().unwrap()),
                    ..claims(1)
                };
                ring().sign("k1", &claims).unwrap()
            };
            let (first, second, other) = (mint("ticket:1"), mint("ticket:1"), mint("ticket:2"));
            assert_ne!(first, second);
            let ask = |token: &str, session: &'static str| {
                auth.authorize(&AuthRequest {
                    session_id: Some(session),
                    ..request(Some(token))
                })
                .unwrap()
            };
            assert!(ask(&first, "s1").is_allow());
            assert_eq!(
                ask(&second, "s2").deny_reason(),
                Some(DenyReason::SessionLimitReached),
                "a second token of the group is not a second slot"
            );
            assert!(ask(&other, "s3").is_allow(), "another group, its own slot");
            assert!(
                ask(&first, "s1").is_allow(),
                "the re-check finds its session"
            );
            assert_eq!(
                signed_session_owner(&ring(), &second),
                signed_session_owner(&ring(), &first),
                "a done call of either token finds the group's session"
            );
            assert_ne!(
                signed_session_owner(&ring(), &first),
                signed_owner(&first, None)
            );
            let live = auth.sessions().sessions(&Default::default(), NOW).unwrap();
            let held = live.iter().find(|s| s.key.contains("s1")).unwrap();
            auth.sessions().end_session(held.id, NOW).unwrap();
            assert!(ask(&second, "s2").is_allow(), "free once the first ends");
        }

        #[test]
        fn a_segment_token_serves_segments_only() {
            let auth = authorizer(ring());
            let token = ring()
                .sign(
                    "k1",
                    &Claims {
                        seg: true,
                        ..claims(0)
                    },
                )
                .unwrap();
            let on = |segment: bool| {
                auth.authorize(&AuthRequest {
                    segment,
                    source: "",
                    ..request(Some(&token))
                })
                .unwrap()
            };
            assert_eq!(on(false).deny_reason(), Some(DenyReason::WrongKind));
            assert!(on(true).is_allow());
        }
    }

    #[test]
    fn reason_codes_round_trip() {
        for reason in DenyReason::ALL {
            assert_eq!(DenyReason::from_code(reason.code()), Some(reason));
        }
    }
}
