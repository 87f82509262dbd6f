//! Time as a parameter.
//!
//! Every decision in this crate is a function of its inputs, and "now" is one of them. Code here
//! never reads the wall clock (`clippy.toml` forbids it); callers hand a [`Clock`] to the parts that
//! need one, so tests drive time with a [`ManualClock`] and run expiry cases in microseconds.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A point in time: microseconds since the Unix epoch, UTC.
///
/// A plain integer so that comparisons on the hot path are free and storage is an `INTEGER`
/// column; it reads and writes RFC 3339 in JSON.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const UNIX_EPOCH: Timestamp = Timestamp(0);

    pub const fn from_unix_micros(micros: i64) -> Self {
        Timestamp(micros)
    }

    pub const fn from_unix_seconds(seconds: i64) -> Self {
        Timestamp(seconds.saturating_mul(1_000_000))
    }

    pub const fn unix_micros(self) -> i64 {
        self.0
    }

    pub const fn unix_seconds(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    /// Saturates instead of overflowing: a far-future validity window must not wrap around.
    pub fn saturating_add(self, duration: Duration) -> Self {
        let micros = i64::try_from(duration.as_micros()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_add(micros))
    }

    pub fn saturating_sub(self, duration: Duration) -> Self {
        let micros = i64::try_from(duration.as_micros()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_sub(micros))
    }

    /// Parses RFC 3339 (`2026-01-31T12:00:00Z`, any offset; stored in UTC).
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        let parsed = OffsetDateTime::parse(text, &Rfc3339).ok()?;
        let micros = parsed.unix_timestamp_nanos() / 1_000;
        i64::try_from(micros).ok().map(Timestamp)
    }

    pub fn to_rfc3339(self) -> String {
        let nanos = i128::from(self.0) * 1_000;
        match OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
        {
            Some(text) => text,
            // Only reachable for timestamps beyond year 9999, which no input path produces.
            None => format!("@{}", self.0),
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Timestamp::parse_rfc3339(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "`{text}` is not an RFC 3339 date-time (e.g. 2026-01-31T12:00:00Z)"
            ))
        })
    }
}

/// A source of "now".
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The real wall clock. The only place in this crate that reads it.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> Timestamp {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(i64::try_from(since_epoch.as_micros()).unwrap_or(i64::MAX))
    }
}

/// A clock that moves only when told to: for tests and simulations.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        ManualClock(AtomicI64::new(start.0))
    }

    pub fn set(&self, to: Timestamp) {
        self.0.store(to.0, Ordering::SeqCst);
    }

    pub fn advance(&self, by: Duration) {
        let micros = i64::try_from(by.as_micros()).unwrap_or(i64::MAX);
        self.0.fetch_add(micros, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now(&self) -> Timestamp {
        (**self).now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_in_utc() {
        let t = Timestamp::parse_rfc3339("2026-03-01T10:00:00+02:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-03-01T08:00:00Z");
        assert_eq!(Timestamp::parse_rfc3339(&t.to_rfc3339()), Some(t));
    }

    #[test]
    fn rejects_non_rfc3339() {
        assert_eq!(Timestamp::parse_rfc3339("2026-03-01"), None);
        assert!(serde_json::from_str::<Timestamp>("\"tomorrow\"").is_err());
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(Timestamp::from_unix_seconds(100));
        assert_eq!(clock.now().unix_seconds(), 100);
        clock.advance(Duration::from_secs(5));
        assert_eq!(clock.now().unix_seconds(), 105);
    }

    #[test]
    fn add_saturates() {
        let t = Timestamp::from_unix_micros(i64::MAX - 1);
        assert_eq!(
            t.saturating_add(Duration::from_secs(10)).unix_micros(),
            i64::MAX
        );
    }
}
