//! What the store is told at start-up: where Redis is comes from `backend`; how durable
//! writes must be, the per-tenant rate limit, and the rest of the store's settings are here.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::{ConnectionMode, TlsCertificates, Topology};

/// How writes are made durable before they are acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Acknowledge once the script has run (Redis persists on its own schedule).
    Async,
    /// Require Redis to fsync its append-only file on every write.
    Fsync,
    /// After each write, `WAIT` until this many replicas have it; fewer in time is a 503
    /// `durability_timeout` (outcome unknown: retry with the same Idempotency-Key).
    Replicas(u32),
}

impl FromStr for Durability {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "async" => Ok(Durability::Async),
            "fsync" => Ok(Durability::Fsync),
            _ => s
                .strip_prefix("replicas:")
                .and_then(|n| n.parse().ok())
                .filter(|n| (1..=16).contains(n))
                .map(Durability::Replicas)
                .ok_or_else(|| "expected async, fsync or replicas:N (N from 1 to 16)".to_owned()),
        }
    }
}

impl fmt::Display for Durability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Durability::Async => f.write_str("async"),
            Durability::Fsync => f.write_str("fsync"),
            Durability::Replicas(n) => write!(f, "replicas:{n}"),
        }
    }
}

/// A per-tenant rate limit: `per_second` on average, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_second: u32,
    pub burst: u32,
}

impl RateLimit {
    /// The time between two requests at the limit, in microseconds (at least 1).
    pub(super) fn interval_us(self) -> u64 {
        (1_000_000 / u64::from(self.per_second.max(1))).max(1)
    }
}

/// What the store needs to know at start-up.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    pub topology: Topology,
    pub durability: Durability,
    /// Resolved: never `Auto`.
    pub connections: ConnectionMode,
    pub pool_size: usize,
    pub timeout: Duration,
    pub idempotency_ttl: Duration,
    pub counter_retention: Duration,
    /// The CA to trust and the client certificate to present over `rediss://`, when not
    /// the system's roots and no client certificate.
    pub tls: Option<TlsCertificates>,
    /// Through Sentinel, fence the primary from the first announcement of a failover (see
    /// `sentinel`). Off only for the tests' negative control, which shows what it prevents.
    pub fence_failovers: bool,
    /// How late a lease's expiry or a delay's end may be applied in a pool nobody calls
    /// on (`--expiry-lag-ms`); zero: only by calls and the periodic sweep.
    pub expiry_lag: std::time::Duration,
}
