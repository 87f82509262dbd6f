//! Prometheus metrics (`GET /metrics`): what the server counts, and the text it is scraped as.
//!
//! Counting sits on the `/auth` hot path, so it is only atomics: every counter a decision touches
//! is resolved once (a slot per hook, action and outcome, filled on first use) and then bumped
//! with one atomic add; the duration histogram is the `prometheus` crate's lock-free one. What
//! is read rather than counted (access log backlog, live sessions, the process's memory and
//! descriptors) is read when scraped, off the reactor.
//!
//! Labels take only values from closed sets (hooks, actions, reason codes): never a token, user,
//! address or stream name, whose number has no bound.

use std::sync::atomic::Ordering;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use auth_core::access_log::AccessLogStats;
use auth_core::{Action, DenyReason};
use prometheus::core::Collector;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::http::hooks::Hook;
use crate::webhooks::Attempt;

/// Media type of the classic Prometheus text format (version 0.0.4).
pub const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

/// Upper bounds of the decision duration buckets, in seconds: from a re-check answered from
/// memory (tens of microseconds) to a store call at the edge of `MAX_RESPONSE_TIME`.
const DURATION_BUCKETS: [f64; 15] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5,
];

const ACTIONS: usize = 2;
/// Per hook and action: one plain allow, then an allow by `AUTH_FAIL_MODE` and a refusal per
/// deny reason.
const OUTCOMES: usize = 1 + 2 * DenyReason::ALL.len();

/// How a store call failed, for `auth_store_failures_total{reason}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreFailure {
    /// The store answered with an error.
    Error,
    /// The store did not answer within `MAX_RESPONSE_TIME`.
    Timeout,
}

impl StoreFailure {
    fn label(self) -> &'static str {
        match self {
            StoreFailure::Error => "error",
            StoreFailure::Timeout => "timeout",
        }
    }
}

/// The outcome of one decision, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Allowed,
    /// Allowed by `AUTH_FAIL_MODE` although the store failed for this reason.
    AllowedByFailMode(DenyReason),
    Denied(DenyReason),
}

/// Every metric of one server.
pub struct Metrics {
    registry: Registry,
    decisions: IntCounterVec,
    /// `decisions` resolved per (hook, action, outcome), filled on first use so that only
    /// outcomes that happened are exported, and counting after that is one atomic add.
    decision_slots: Box<[OnceLock<IntCounter>]>,
    /// Indexed by [`Hook::index`].
    durations: [Histogram; Hook::ALL.len()],
    store_failures: [IntCounter; 2],
    door_checks: IntCounterVec,
    live_sessions: IntGauge,
    access_log_pending: IntGauge,
    access_log_dropped: IntCounter,
    /// Indexed by [`Attempt`] as listed in [`Attempt::ALL`].
    webhook_attempts: [IntCounter; 3],
    webhook_pending: IntGauge,
    webhook_suppressed: IntCounter,
    resident_memory: IntGauge,
    virtual_memory: IntGauge,
    open_fds: IntGauge,
    max_fds: IntGauge,
    /// Serializes scrapes: a counter copied from elsewhere is brought up to date by adding the
    /// difference, which two scrapes at once would add twice.
    scrape: Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

// The metric definitions below are constants: `expect` fails only on a programming error (an
// invalid or duplicate name), which the unit tests catch.
fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric")
}

fn gauge(name: &str, help: &str) -> IntGauge {
    IntGauge::new(name, help).expect("valid metric")
}

impl Metrics {
    pub fn new() -> Self {
        let decisions = counter_vec(
            "auth_decisions_total",
            "Decisions of the media-server hooks, by hook, action, result and reason.",
            &["hook", "action", "result", "reason"],
        );
        let durations_vec = HistogramVec::new(
            HistogramOpts::new(
                "auth_decision_duration_seconds",
                "Time from a hook request's arrival to its decision, by hook.",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
            &["hook"],
        )
        .expect("valid metric");
        let durations = Hook::ALL.map(|hook| durations_vec.with_label_values(&[hook.label()]));
        let store_failures_vec = counter_vec(
            "auth_store_failures_total",
            "Store calls of hooks and scrapes that failed (error) or ran out of time (timeout).",
            &["reason"],
        );
        let store_failures = [StoreFailure::Error, StoreFailure::Timeout]
            .map(|failure| store_failures_vec.with_label_values(&[failure.label()]));
        let door_checks = counter_vec(
            "auth_door_checks_total",
            "Event ticket checks at the door (codes and e-tickets), by result and reason.",
            &["result", "reason"],
        );
        let webhook_attempts_vec = counter_vec(
            "auth_webhook_deliveries_total",
            "Webhook delivery attempts, by result: delivered (2xx), failed (retried later), \
             gave_up (failed for the last time).",
            &["result"],
        );
        let webhook_attempts =
            Attempt::ALL.map(|attempt| webhook_attempts_vec.with_label_values(&[attempt.label()]));
        let build_info = IntGaugeVec::new(
            Opts::new(
                "auth_build_info",
                "Always 1; the version label names the running server's version.",
            ),
            &["version"],
        )
        .expect("valid metric");
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        let metrics = Metrics {
            registry: Registry::new(),
            decision_slots: (0..Hook::ALL.len() * ACTIONS * OUTCOMES)
                .map(|_| OnceLock::new())
                .collect(),
            decisions,
            durations,
            store_failures,
            door_checks,
            live_sessions: gauge(
                "auth_live_sessions",
                "Sessions whose lease has not run out, in the whole store (every node).",
            ),
            access_log_pending: gauge(
                "auth_access_log_pending",
                "Access log entries recorded but not yet written to the store.",
            ),
            access_log_dropped: IntCounter::new(
                "auth_access_log_dropped_total",
                "Access log entries given up: the store refused them through every retry, or \
                 they came after the writer stopped.",
            )
            .expect("valid metric"),
            webhook_attempts,
            webhook_pending: gauge(
                "auth_webhook_pending",
                "Webhook deliveries queued in the store (every node), due or waiting to retry.",
            ),
            webhook_suppressed: IntCounter::new(
                "auth_webhook_suppressed_total",
                "access.denied messages not queued: over the per-second cap of this node.",
            )
            .expect("valid metric"),
            resident_memory: gauge(
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
            ),
            virtual_memory: gauge(
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
            ),
            open_fds: gauge("process_open_fds", "Number of open file descriptors."),
            max_fds: gauge(
                "process_max_fds",
                "Maximum number of open file descriptors.",
            ),
            scrape: Mutex::new(()),
        };
        let collectors: [Box<dyn Collector>; 15] = [
            Box::new(metrics.decisions.clone()),
            Box::new(durations_vec),
            Box::new(store_failures_vec),
            Box::new(metrics.door_checks.clone()),
            Box::new(metrics.live_sessions.clone()),
            Box::new(metrics.access_log_pending.clone()),
            Box::new(metrics.access_log_dropped.clone()),
            Box::new(webhook_attempts_vec),
            Box::new(metrics.webhook_pending.clone()),
            Box::new(metrics.webhook_suppressed.clone()),
            Box::new(build_info),
            Box::new(metrics.resident_memory.clone()),
            Box::new(metrics.virtual_memory.clone()),
            Box::new(metrics.open_fds.clone()),
            Box::new(metrics.max_fds.clone()),
        ];
        for collector in collectors {
            metrics
                .registry
                .register(collector)
                .expect("metric names are unique");
        }
        metrics
    }

    /// Counts one hook decision and its duration: atomics only (the first decision of each kind
    /// also resolves its label set once).
    pub fn decision(&self, hook: Hook, action: Action, outcome: Outcome, took: Duration) {
        let action_index = match action {
            Action::Play => 0,
            Action::Publish => 1,
        };
        let outcome_index = match outcome {
            Outcome::Allowed => 0,
            Outcome::AllowedByFailMode(reason) => 1 + reason as usize,
            Outcome::Denied(reason) => 1 + DenyReason::ALL.len() + reason as usize,
        };
        let slot = (hook.index() * ACTIONS + action_index) * OUTCOMES + outcome_index;
        if let Some(counter) = self.decision_slots.get(slot) {
            counter
                .get_or_init(|| {
                    let (result, reason) = match outcome {
                        Outcome::Allowed => ("allowed", "none"),
                        Outcome::AllowedByFailMode(reason) => ("allowed", reason.code()),
                        Outcome::Denied(reason) => ("denied", reason.code()),
                    };
                    self.decisions.with_label_values(&[
                        hook.label(),
                        action.as_str(),
                        result,
                        reason,
                    ])
                })
                .inc();
        }
        self.durations[hook.index()].observe(took.as_secs_f64());
    }

    pub fn store_failure(&self, failure: StoreFailure) {
        self.store_failures[failure as usize].inc();
    }

    /// Counts a door check; `reason` is `"none"` for a valid one, else its reason code.
    pub fn door_check(&self, valid: bool, reason: &'static str) {
        let result = if valid { "valid" } else { "invalid" };
        self.door_checks.with_label_values(&[result, reason]).inc();
    }

    pub fn webhook_attempt(&self, attempt: Attempt) {
        self.webhook_attempts[attempt as usize].inc();
    }

    pub fn webhook_suppressed(&self) {
        self.webhook_suppressed.inc();
    }

    /// The text Prometheus scrapes. Reads the process's memory and descriptors from `/proc`:
    /// call it off the reactor. `live_sessions` is `None` when the store could not count them
    /// (the gauge is then left out rather than reporting a stale number); so is
    /// `webhook_pending`.
    pub fn render(
        &self,
        access_log: Option<&AccessLogStats>,
        live_sessions: Option<u64>,
        webhook_pending: Option<u64>,
    ) -> String {
        let _one_at_a_time = self.scrape.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(stats) = access_log {
            self.access_log_pending
                .set(saturate(stats.pending.load(Ordering::Relaxed)));
            let dropped = stats.dropped.load(Ordering::Relaxed);
            self.access_log_dropped
                .inc_by(dropped.saturating_sub(self.access_log_dropped.get()));
        }
        if let Some(live) = live_sessions {
            self.live_sessions.set(saturate(live));
        }
        if let Some(pending) = webhook_pending {
            self.webhook_pending.set(saturate(pending));
        }
        let process = ProcessStats::read();
        for (gauge, value) in [
            (&self.resident_memory, process.resident_bytes),
            (&self.virtual_memory, process.virtual_bytes),
            (&self.open_fds, process.open_fds),
            (&self.max_fds, process.max_fds),
        ] {
            if let Some(value) = value {
                gauge.set(saturate(value));
            }
        }
        let mut families = self.registry.gather();
        if live_sessions.is_none() {
            families.retain(|family| family.name() != "auth_live_sessions");
        }
        if webhook_pending.is_none() {
            families.retain(|family| family.name() != "auth_webhook_pending");
        }
        // Process figures that could not be read are left out rather than exported as 0.
        families.retain(|family| match family.name() {
            "process_resident_memory_bytes" => process.resident_bytes.is_some(),
            "process_virtual_memory_bytes" => process.virtual_bytes.is_some(),
            "process_open_fds" => process.open_fds.is_some(),
            "process_max_fds" => process.max_fds.is_some(),
            _ => true,
        });
        TextEncoder::new()
            .encode_to_string(&families)
            .unwrap_or_else(|err| {
                log::error!("cannot encode the metrics: {err}");
                String::new()
            })
    }
}

fn saturate(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The process's own figures, from Linux's `/proc/self`; `None` where unavailable.
#[derive(Debug, Default, Clone, Copy)]
struct ProcessStats {
    resident_bytes: Option<u64>,
    virtual_bytes: Option<u64>,
    open_fds: Option<u64>,
    max_fds: Option<u64>,
}

impl ProcessStats {
    fn read() -> Self {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        // `VmRSS:   12345 kB`
        let kib = |key: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(key))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse::<u64>().ok())
                .map(|n| n * 1024)
        };
        let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
        // `Max open files            1024                 524288               files`
        let max_fds = limits
            .lines()
            .find_map(|line| line.strip_prefix("Max open files"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok());
        let open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|dir| dir.count() as u64);
        ProcessStats {
            resident_bytes: kib("VmRSS:"),
            virtual_bytes: kib("VmSize:"),
            open_fds,
            max_fds,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_has_its_own_slot() {
        let metrics = Metrics::new();
        for hook in Hook::ALL {
            for action in [Action::Play, Action::Publish] {
                metrics.decision(hook, action, Outcome::Allowed, Duration::ZERO);
                for reason in DenyReason::ALL {
                    metrics.decision(hook, action, Outcome::Denied(reason), Duration::ZERO);
                    metrics.decision(
                        hook,
                        action,
                        Outcome::AllowedByFailMode(reason),
                        Duration::ZERO,
                    );
                }
            }
        }
        let text = metrics.render(None, Some(3), Some(2));
        let series = text
            .lines()
            .filter(|l| l.starts_with("auth_decisions_total{"))
            .count();
        assert_eq!(series, Hook::ALL.len() * ACTIONS * OUTCOMES);
        assert!(text
            .lines()
            .filter(|l| l.starts_with("auth_decisions_total{"))
            .all(|l| l.ends_with(" 1")));
        assert!(text.contains(
            "auth_decisions_total{action=\"publish\",hook=\"srs\",reason=\"none\",result=\"allowed\"} 1"
        ));
        assert!(text.contains("auth_live_sessions 3"));
        assert!(text.contains("auth_webhook_pending 2"));
        assert!(text.contains("auth_build_info{version=\""));
    }

    #[test]
    fn unknown_figures_are_left_out() {
        let metrics = Metrics::new();
        let text = metrics.render(None, None, None);
        assert!(!text.contains("auth_live_sessions"));
        assert!(!text.contains("auth_webhook_pending"));
    }
}
