//! Delivering webhook messages (Standard Webhooks) from the store's outbox, and queueing the one
//! kind no store write makes: `access.denied`.
//!
//! Workers claim due deliveries ([`WebhookStore::claim_deliveries`], leased for
//! [`CLAIM_LEASE`]) and post each, signed, with a short timeout: a 2xx removes it; anything else
//! reschedules it by the retry schedule ([`retry_at`]: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h)
//! or, after the last, gives it up. Nothing here is on the `/auth` path: a receiver that is
//! down or slow only grows the outbox. A worker stops starting posts once a claim's lease could
//! run out before the post does, so a delivery is never in flight at two workers (or nodes) at
//! once; a worker that dies leaves its claims to be taken again when their lease runs out, so
//! after a crash delivery resumes within [`CLAIM_LEASE`] plus one poll.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use auth_core::webhook::{retry_at, sign, Delivery, Message, MessageKind, CLAIM_LEASE};
use auth_core::{Action, DenyReason, Timestamp};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::app::App;
use crate::http::hooks::Hook;

/// Workers posting at once.
const WORKERS: usize = 4;
/// Deliveries one worker claims at a time.
const BATCH: u32 = 16;
/// How long a worker with nothing due waits before looking again.
const POLL: Duration = Duration::from_secs(1);
/// How long one post may take, connection included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// `access.denied` messages queued per second at most, per node; the rest are counted
/// (`auth_webhook_suppressed_total`) and dropped, so a flood of bad tokens cannot grow the
/// outbox faster than this.
pub const ACCESS_DENIED_PER_SECOND: u64 = 20;

/// What a delivery attempt came to, as counted in `auth_webhook_deliveries_total{result}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    Delivered,
    /// Failed; tried again later.
    Failed,
    /// Failed for the last time: removed.
    GaveUp,
}

impl Attempt {
    pub const ALL: [Attempt; 3] = [Attempt::Delivered, Attempt::Failed, Attempt::GaveUp];

    pub fn label(self) -> &'static str {
        match self {
            Attempt::Delivered => "delivered",
            Attempt::Failed => "failed",
            Attempt::GaveUp => "gave_up",
        }
    }
}

/// The server's side of webhooks: whether anyone wants `access.denied`, and its rate cap.
#[derive(Default)]
pub struct Webhooks {
    /// Whether an endpoint names `access.denied`; refreshed by the workers every poll, so that
    /// a denial costs one atomic load when none does.
    denied_wanted: AtomicBool,
    /// `second << 20 | count` of `access.denied` messages queued in the current second.
    denied_window: AtomicU64,
}

impl Webhooks {
    /// Queues `access.denied` for a refused hook request, if an endpoint wants it and the
    /// per-second cap allows; off the request path (one blocking-pool task).
    pub fn denied(
        &self,
        app: &Arc<App>,
        hook: Hook,
        action: Action,
        reason: DenyReason,
        request: &auth_core::AuthRequest<'_>,
    ) {
        if !self.denied_wanted.load(Ordering::Relaxed) {
            return;
        }
        let now = app.clock().now();
        if !self.admit_denied(now) {
            app.metrics.webhook_suppressed();
            return;
        }
        let data = serde_json::json!({
            "hook": hook.label(),
            "action": action.as_str(),
            "reason": reason.code(),
            "stream": request.stream,
            "ip": request.ip.to_string(),
            "proto": request.proto,
        });
        let app = Arc::clone(app);
        tokio::task::spawn_blocking(move || {
            let queued = Message::new(MessageKind::AccessDenied, now, data)
                .and_then(|message| app.stores.webhooks.enqueue(&message));
            if let Err(err) = queued {
                log::warn!("could not queue an access.denied webhook message: {err}");
            }
        });
    }

    /// Whether one more `access.denied` fits in the second of `now`.
    fn admit_denied(&self, now: Timestamp) -> bool {
        let second = u64::try_from(now.unix_seconds()).unwrap_or_default();
        let mut current = self.denied_window.load(Ordering::Relaxed);
        loop {
            let (window, count) = (current >> 20, current & 0xF_FFFF);
            let next = if window == second {
                if count >= ACCESS_DENIED_PER_SECOND {
                    return false;
                }
                current + 1
            } else {
                (second << 20) | 1
            };
            match self.denied_window.compare_exchange_weak(
                current,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => current = actual,
            }
        }
    }
}

/// Starts the delivery workers; they stop when `stopped` turns true, after the batch in hand.
pub fn spawn_workers(app: &Arc<App>, stopped: &watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    (0..WORKERS)
        .map(|worker| tokio::spawn(work(Arc::clone(app), stopped.clone(), worker)))
        .collect()
}

async fn work(app: Arc<App>, mut stopped: watch::Receiver<bool>, worker: usize) {
    let agent = ureq::AgentBuilder::new()
        .timeout(REQUEST_TIMEOUT)
        .redirects(0)
        .user_agent(concat!("auth-server/", env!("CARGO_PKG_VERSION")))
        .build();
    while !*stopped.borrow() {
        let (app_for_batch, agent) = (Arc::clone(&app), agent.clone());
        let batch =
            tokio::task::spawn_blocking(move || deliver_batch(&app_for_batch, &agent, worker));
        let busy = match batch.await {
            Ok(Ok(claimed)) => claimed > 0,
            Ok(Err(err)) => {
                log::warn!("webhook deliveries: {err}");
                false
            }
            Err(err) => {
                log::error!("webhook worker failed: {err}");
                false
            }
        };
        if !busy {
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = stopped.changed() => {}
            }
        }
    }
}

/// Claims and posts one batch; how many deliveries it claimed.
fn deliver_batch(app: &App, agent: &ureq::Agent, worker: usize) -> auth_core::Result<usize> {
    let store = &app.stores.webhooks;
    if worker == 0 {
        // One worker keeps the access.denied switch current.
        let wanted = store
            .webhooks()?
            .iter()
            .any(|webhook| webhook.receives(MessageKind::AccessDenied));
        app.webhooks.denied_wanted.store(wanted, Ordering::Relaxed);
    }
    let now = app.clock().now();
    let claimed = store.claim_deliveries(now, BATCH, now.saturating_add(CLAIM_LEASE))?;
    let started = Instant::now();
    for delivery in &claimed {
        // Past this, a post might outlive the lease and race another worker's retry of it;
        // what is left is taken again once the lease runs out.
        if started.elapsed() + REQUEST_TIMEOUT >= CLAIM_LEASE {
            break;
        }
        let attempt = match post(agent, delivery, app.clock().now()) {
            Ok(()) => {
                store.remove_delivery(delivery.id)?;
                Attempt::Delivered
            }
            Err(error) => {
                let now = app.clock().now();
                match retry_at(delivery.attempts + 1, now) {
                    Some(next) => {
                        log::info!(
                            "webhook {} to endpoint {}: {error}; retrying at {}",
                            delivery.message_id,
                            delivery.webhook_id,
                            next.to_rfc3339()
                        );
                        store.reschedule_delivery(delivery.id, next, &error)?;
                        Attempt::Failed
                    }
                    None => {
                        log::warn!(
                            "webhook {} to endpoint {}: {error}; giving up after {} attempts \
                             since {}",
                            delivery.message_id,
                            delivery.webhook_id,
                            delivery.attempts + 1,
                            delivery.created_at.to_rfc3339()
                        );
                        store.remove_delivery(delivery.id)?;
                        Attempt::GaveUp
                    }
                }
            }
        };
        app.metrics.webhook_attempt(attempt);
    }
    Ok(claimed.len())
}

/// One signed post; `Err` says why it did not count as delivered (a non-2xx answer included).
fn post(agent: &ureq::Agent, delivery: &Delivery, now: Timestamp) -> Result<(), String> {
    let timestamp = now.unix_seconds();
    let signature = sign(
        &delivery.secret,
        &delivery.message_id,
        timestamp,
        &delivery.body,
    )
    .map_err(|err| err.to_string())?;
    let answer = agent
        .post(&delivery.url)
        .set("content-type", "application/json")
        .set("webhook-id", &delivery.message_id)
        .set("webhook-timestamp", &timestamp.to_string())
        .set("webhook-signature", &signature)
        .send_string(&delivery.body);
    match answer {
        Ok(response) if (200..300).contains(&response.status()) => Ok(()),
        Ok(response) => Err(format!("answered {}", response.status())),
        Err(ureq::Error::Status(status, _)) => Err(format!("answered {status}")),
        Err(ureq::Error::Transport(err)) => Err(err.kind().to_string()),
    }
}

/// How long shutdown may wait for batches in flight: one lease.
pub const DRAIN: Duration = CLAIM_LEASE;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_denied_is_capped_per_second() {
        let webhooks = Webhooks::default();
        let t0 = Timestamp::from_unix_seconds(1_800_000_000);
        let admitted = (0..100).filter(|_| webhooks.admit_denied(t0)).count();
        assert_eq!(admitted as u64, ACCESS_DENIED_PER_SECOND);
        let t1 = t0.saturating_add(Duration::from_secs(1));
        assert!(webhooks.admit_denied(t1), "a new second, a new allowance");
    }
}
