//! The policy wired to the stores and a clock, in one pass per request.
//!
//! [`Authorizer::start`] never blocks: it answers from memory when it can (a cached token and a
//! re-check of a live session, typically most requests, or a signed token, which is verified by
//! CPU alone) and otherwise hands back the [`Pending`] store work. [`Pending::finish`] does that
//! work on a thread that may block, carrying on from where `start` stopped: the secret is
//! digested once, a signature verified once, the checks run once.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::{plan, plan_signed, signed_session_owner, AdmissionPlan, AuthRequest, Decision, Plan};
use crate::clock::{Clock, Timestamp};
use crate::error::{Error, Result};
use crate::secret::{SecretDigest, TokenHasher};
use crate::session::{session_key, Admission, SessionOwner, SessionPolicy, SessionStore};
use crate::signed_token::revocations::RevocationSet;
use crate::signed_token::{is_signed, Claims, KeyRing, Kind, Rejection, SharedKeyRing};
use crate::store::Queued;
use crate::token::TokenStore;

/// What an embedding server calls per request.
pub struct Authorizer {
    tokens: Arc<dyn TokenStore>,
    sessions: Arc<dyn SessionStore>,
    clock: Arc<dyn Clock>,
    hasher: TokenHasher,
    policy: SessionPolicy,
    signed_keys: Arc<SharedKeyRing>,
    revocations: Arc<RevocationSet>,
}

/// The outcome of [`Authorizer::start`].
#[must_use]
#[derive(Debug)]
pub enum Step {
    /// Decided without blocking (or failed in memory).
    Done(Result<Decision>),
    /// The decision needs the store: call [`Pending::finish`] on a thread that may block.
    Pending(Pending),
}

/// Store work a decision waits for, with everything computed so far.
#[derive(Debug)]
pub struct Pending {
    now: Timestamp,
    lease_until: Timestamp,
    work: Work,
}

#[derive(Debug)]
enum Work {
    /// The token is not in memory: look it up by this digest, then run the checks.
    Lookup(SecretDigest),
    /// Every check passed; the admission needs the store.
    Admit(AdmissionPlan),
}

impl Pending {
    /// Finishes the decision `start` began for this same `request`. Blocking: call it from a
    /// thread that may block (e.g. `spawn_blocking`).
    pub fn finish(self, authorizer: &Authorizer, request: &AuthRequest<'_>) -> Result<Decision> {
        let admission = match self.work {
            Work::Admit(admission) => admission,
            Work::Lookup(digest) => {
                let token = authorizer.tokens.token_by_digest(&digest)?;
                match plan(request, token.as_deref(), self.now) {
                    Plan::Decided(decision) => return Ok(decision),
                    Plan::Admit(admission) => admission.within(&authorizer.policy),
                }
            }
        };
        let answer = authorizer.sessions.admit_session(
            &admission.claim(request),
            self.now,
            self.lease_until,
        )?;
        Ok(admission.conclude(answer, &authorizer.policy))
    }
}

impl Pending {
    /// Hands the admission this decision waits for to the session store's writer without
    /// blocking, when the token is already known and the store queues admissions
    /// ([`SessionStore::queue_admission`]): await the [`Admitting`]. Otherwise gives `self` back
    /// for [`Pending::finish`] on a thread that may block.
    pub fn queue(
        self,
        authorizer: &Authorizer,
        request: &AuthRequest<'_>,
    ) -> std::result::Result<Admitting, Pending> {
        let answer = match &self.work {
            Work::Admit(admission) => authorizer.sessions.queue_admission(
                &admission.claim(request),
                self.now,
                self.lease_until,
            ),
            Work::Lookup(_) => None,
        };
        match (answer, self.work) {
            (Some(answer), Work::Admit(admission)) => Ok(Admitting {
                admission: Some(admission),
                answer,
                policy: authorizer.policy,
            }),
            (_, work) => Err(Pending { work, ..self }),
        }
    }
}

/// A decision waiting for its admission to commit: resolves to the decision once the session
/// store has made the admission durable (never before).
#[must_use = "the admission may already be committed: its decision must be answered"]
#[derive(Debug)]
pub struct Admitting {
    /// Taken when the answer arrives.
    admission: Option<AdmissionPlan>,
    answer: Queued<Admission>,
    policy: SessionPolicy,
}

impl Future for Admitting {
    type Output = Result<Decision>;

    fn poll(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Result<Decision>> {
        let this = &mut *self;
        let Poll::Ready(answer) = Pin::new(&mut this.answer).poll(context) else {
            return Poll::Pending;
        };
        Poll::Ready(answer.and_then(|answer| match this.admission.take() {
            Some(admission) => Ok(admission.conclude(answer, &this.policy)),
            None => Err(Error::storage("an admission's answer was read twice")),
        }))
    }
}

impl Authorizer {
    /// One store for both concerns. `hasher` must be the one the store's tokens were created
    /// with.
    pub fn new<S: TokenStore + SessionStore + 'static>(
        store: Arc<S>,
        clock: Arc<dyn Clock>,
        hasher: TokenHasher,
        policy: SessionPolicy,
    ) -> Self {
        let tokens: Arc<dyn TokenStore> = store.clone();
        Self::from_parts(tokens, store, clock, hasher, policy)
    }

    /// Tokens and sessions from separate stores, e.g. tokens through a
    /// [`CachedTokens`](crate::store::CachedTokens) in front of the store that keeps both.
    pub fn from_parts(
        tokens: Arc<dyn TokenStore>,
        sessions: Arc<dyn SessionStore>,
        clock: Arc<dyn Clock>,
        hasher: TokenHasher,
        policy: SessionPolicy,
    ) -> Self {
        Authorizer {
            tokens,
            sessions,
            clock,
            hasher,
            policy,
            signed_keys: Arc::default(),
            revocations: Arc::default(),
        }
    }

    /// Accept signed tokens verified by `keys` (without it, every signed token is refused as
    /// `unknown_key`). The ring may be replaced at any time (key rotation).
    pub fn with_signed_keys(mut self, keys: Arc<SharedKeyRing>) -> Self {
        self.signed_keys = keys;
        self
    }

    pub fn signed_keys(&self) -> &Arc<SharedKeyRing> {
        &self.signed_keys
    }

    /// Refuse signed tokens this set names (`token_revoked`); keep it current with
    /// [`RevocationSet::refresh`]. Without it no signed token is refused as revoked.
    pub fn with_revocations(mut self, revocations: Arc<RevocationSet>) -> Self {
        self.revocations = revocations;
        self
    }

    pub fn revocations(&self) -> &Arc<RevocationSet> {
        &self.revocations
    }

    pub fn hasher(&self) -> &TokenHasher {
        &self.hasher
    }

    pub fn policy(&self) -> &SessionPolicy {
        &self.policy
    }

    pub fn tokens(&self) -> &Arc<dyn TokenStore> {
        &self.tokens
    }

    pub fn sessions(&self) -> &Arc<dyn SessionStore> {
        &self.sessions
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    fn verify_signed(
        &self,
        ring: &KeyRing,
        request: &AuthRequest<'_>,
        now: Timestamp,
    ) -> std::result::Result<Claims, Rejection> {
        const PLAYBACK: &[Kind] = &[Kind::Playback];
        const SEGMENT: &[Kind] = &[Kind::Playback, Kind::Segment];
        let claims = ring.verify_kinds(
            request.token.unwrap_or_default(),
            now,
            if request.segment { SEGMENT } else { PLAYBACK },
            Some(request.ip),
            Some(request.stream),
        )?;
        // From memory: no store read on this path (see `signed_token::revocations`).
        if self.revocations.refuses(&claims, now) {
            return Err(Rejection::Revoked);
        }
        Ok(claims)
    }

    /// Starts deciding `request` without blocking: an async server calls this on its reactor
    /// threads, and [`Pending::finish`] on its blocking pool only when the store must be asked.
    pub fn start(&self, request: &AuthRequest<'_>) -> Step {
        let now = self.clock.now();
        let lease_until = self.policy.lease_until(now);
        let pending = |work| {
            Step::Pending(Pending {
                now,
                lease_until,
                work,
            })
        };
        let plan = match request.token {
            // Verification is CPU only (microseconds), so it runs here rather than a thread hop.
            Some(token) if is_signed(token) => plan_signed(
                request,
                self.verify_signed(&self.signed_keys.current(), request, now),
                &self.policy,
            ),
            Some(secret) if !secret.is_empty() => {
                let digest = self.hasher.digest(secret);
                match self.tokens.try_token_without_blocking(&digest) {
                    Some(token) => plan(request, token.as_deref(), now),
                    None => return pending(Work::Lookup(digest)),
                }
            }
            _ => plan(request, None, now),
        };
        let admission = match plan {
            Plan::Decided(decision) => return Step::Done(Ok(decision)),
            Plan::Admit(admission) => admission.within(&self.policy),
        };
        match self
            .sessions
            .try_admit_without_blocking(&admission.claim(request), now, lease_until)
        {
            Some(Ok(answer)) => Step::Done(Ok(admission.conclude(answer, &self.policy))),
            Some(Err(err)) => Step::Done(Err(err)),
            None => pending(Work::Admit(admission)),
        }
    }

    /// Decides one request: [`Authorizer::start`], then [`Pending::finish`] if the store must be
    /// asked. Blocking: call it from a thread that may block.
    pub fn authorize(&self, request: &AuthRequest<'_>) -> Result<Decision> {
        match self.start(request) {
            Step::Done(decision) => decision,
            Step::Pending(pending) => pending.finish(self, request),
        }
    }

    /// Ends the session `request` names (same token, same session key as when it was admitted)
    /// at once, for a media server's "done" call; false if no live session matched. The owner
    /// is the one admission recorded: a stored token's id, or for a signed token (which has no
    /// row) its session group's or its signature's. Blocking.
    pub fn end_session(&self, request: &AuthRequest<'_>) -> Result<bool> {
        let Some(secret) = request.token.filter(|t| !t.is_empty()) else {
            return Ok(false);
        };
        let owner = if is_signed(secret) {
            signed_session_owner(&self.signed_keys.current(), secret)
        } else {
            match self.tokens.token_by_digest(&self.hasher.digest(secret))? {
                Some(token) => SessionOwner::token(token.id),
                None => return Ok(false),
            }
        };
        let key = session_key(
            request.session_id,
            request.ip,
            request.stream,
            request.proto,
        );
        self.sessions
            .end_session_by_key(owner, &key, self.clock.now())
    }
}
