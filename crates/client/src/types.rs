//! The bodies the client sends and reads, typed.
//!
//! Answers are read leniently (unknown fields are ignored), so a client keeps working
//! against a newer server. The server writes its answers from its own records
//! (the server's `model`, with the stored data passed through unparsed); here data is parsed
//! JSON and the shared pieces (`ItemState`, `EventKind`, `PoolCounts`, `PoolStats`) are the
//! server's own types.

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use leasehold_wire::items::{EventKind, ItemState, PoolCounts, PoolStats};

/// A pool's settings, as the service answers them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolConfig {
    /// The default lease time in ms (0: no expiry).
    pub lease_ms: u64,
    /// The most leases one holder may have in this pool (0: unlimited).
    pub max_leases_per_holder: u64,
    /// Grants after which an item is `dead` (0: unlimited).
    pub max_attempts: u64,
    /// Whether every write must carry a precondition.
    pub require_if_match: bool,
    /// How many of its latest events the pool's log keeps (0: none; 10,000 from a server
    /// that does not say).
    #[serde(default = "default_max_events")]
    pub max_events: u64,
}

fn default_max_events() -> u64 {
    leasehold_wire::numbers::DEFAULT_MAX_EVENTS
}

/// `GET /v1/pools/{pool}` and `PUT /v1/pools/{pool}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pool {
    pub name: String,
    pub config: PoolConfig,
    pub counts: PoolCounts,
    pub stats: PoolStats,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
}

/// One pool of `GET /v1/pools`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PoolSummary {
    pub name: String,
    pub counts: PoolCounts,
}

/// Settings to create a pool with or change; `None` keeps the current value (or the
/// default, for a new pool).
#[derive(Debug, Clone, Default, Serialize)]
pub struct PoolSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_leases_per_holder: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_if_match: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_events: Option<u64>,
}

/// An item. Its `version` is the one its `ETag` names; `token` is only there in the
/// answer to an assignment (the new holder's fencing token).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Item {
    pub id: String,
    pub pool: String,
    pub state: ItemState,
    pub priority: i64,
    pub version: u64,
    pub holder: Option<String>,
    /// RFC 3339 UTC, by Redis's clock; null when not leased or leased without expiry.
    pub lease_expires_at: Option<String>,
    pub attempts: u64,
    pub data: Value,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<u64>,
}

/// A lease as its holder sees it: what claims, renewals and `list_leases` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LeaseInfo {
    /// The item's id.
    pub id: String,
    /// The fencing token: strictly increasing over every grant in the pool.
    pub token: u64,
    pub version: u64,
    pub holder: String,
    /// RFC 3339 UTC, by Redis's clock; null for a lease without expiry.
    pub lease_expires_at: Option<String>,
    pub priority: i64,
    pub attempts: u64,
    pub data: Value,
}

/// An item to add.
#[derive(Debug, Clone, Serialize)]
pub struct NewItem {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl NewItem {
    pub fn new(id: impl Into<String>) -> Self {
        NewItem {
            id: id.into(),
            priority: None,
            data: None,
        }
    }

    /// Higher first (-1,000,000 to 1,000,000; default 0).
    pub fn priority(mut self, priority: i64) -> Self {
        self.priority = Some(priority);
        self
    }

    /// A JSON object of at most 64 KiB.
    pub fn data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }
}

/// The answer to adding items: the ids created, and those that existed (left untouched).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Added {
    pub created: Vec<String>,
    pub existing: Vec<String>,
}

/// Which items to list, and from where.
#[derive(Debug, Clone, Default)]
pub struct ItemFilter {
    pub state: Option<ItemState>,
    pub holder: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<u64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of items; `next_cursor` is `None` on the last page.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ItemPage {
    pub items: Vec<Item>,
    pub next_cursor: Option<String>,
}

/// A page of a holder's leases; `next_cursor` is `None` on the last page.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LeasePage {
    pub leases: Vec<LeaseInfo>,
    pub next_cursor: Option<String>,
}

/// The header preconditions of an item write (PUT, PATCH, DELETE).
#[derive(Debug, Clone, Default)]
pub struct Preconditions {
    /// `If-Match: "<version>"`: only if the item is at this version (else 412
    /// `precondition_failed`).
    pub if_match: Option<u64>,
    /// `If-None-Match: *`: only if the item does not exist (else 412).
    pub if_none_match_any: bool,
    /// `Lease-Token: <token>`: only while this lease is current on the item (else 409
    /// `lease_lost`).
    pub lease_token: Option<u64>,
}

impl Preconditions {
    pub fn if_match(version: u64) -> Self {
        Preconditions {
            if_match: Some(version),
            ..Preconditions::default()
        }
    }

    pub fn if_none_match_any() -> Self {
        Preconditions {
            if_none_match_any: true,
            ..Preconditions::default()
        }
    }

    pub fn lease_token(token: u64) -> Self {
        Preconditions {
            lease_token: Some(token),
            ..Preconditions::default()
        }
    }
}

/// The body of `PUT /v1/pools/{pool}/items/{id}`.
#[derive(Debug, Clone, Serialize)]
pub struct PutItem {
    pub data: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    /// Only if the item is at this version (else 409 `version_conflict`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_version: Option<u64>,
}

impl PutItem {
    pub fn new(data: Value) -> Self {
        PutItem {
            data,
            priority: None,
            expected_version: None,
        }
    }
}

/// The answer to a PUT of an item: the item, and whether it was created (201) rather
/// than replaced (200).
#[derive(Debug, Clone)]
pub struct Put {
    pub item: Item,
    pub created: bool,
}

/// A claim of the best available items.
#[derive(Debug, Clone, Serialize)]
pub struct Claim {
    pub holder: String,
    /// How many items, 1 to 100 (default 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// The lease time (default: the pool's; 0: no expiry). Set it: the [`super::Lease`]
    /// guard then renews on its own clock only, not on an estimate from Redis's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_ms: Option<u64>,
    /// Wait up to this long (≤ 30,000 ms) for an item when none is available.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
}

impl Claim {
    pub fn new(holder: impl Into<String>) -> Self {
        Claim {
            holder: holder.into(),
            count: None,
            lease_ms: None,
            wait_ms: None,
        }
    }

    pub fn count(mut self, count: u32) -> Self {
        self.count = Some(count);
        self
    }

    pub fn lease_ms(mut self, lease_ms: u64) -> Self {
        self.lease_ms = Some(lease_ms);
        self
    }

    pub fn wait_ms(mut self, wait_ms: u64) -> Self {
        self.wait_ms = Some(wait_ms);
        self
    }
}

/// How to give a lease back.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Release {
    /// Keep the item `delayed` this long before it is available again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// Its new priority.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
}

/// Conditions and lease time of an assignment (`PUT .../holder`).
#[derive(Debug, Clone, Default)]
pub struct Assign {
    /// The lease time of an assignment (default: the pool's).
    pub lease_ms: Option<u64>,
    /// Only if the item is at this version (else 409 `version_conflict`).
    pub expected_version: Option<u64>,
    /// `If-Match: "<version>"` (else 412 `precondition_failed`).
    pub if_match: Option<u64>,
}

/// When a counter starts again at 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    /// Every day at midnight in the draw's time zone.
    Day,
    /// Never.
    None,
}

/// A draw of sequence numbers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Next {
    /// Default: `Day`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
    /// An IANA time zone for the day (default `UTC`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tz: Option<String>,
    /// How many contiguous values, 1 to 1000 (default 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Also render them as ids, such as `CASE-{date}-{seq:05}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

/// The values drawn: `period` is the day (`2026-01-10`) or `None` for a counter without
/// periods; `ids` are the values rendered with the draw's `format`, if it had one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Draw {
    pub name: String,
    pub period: Option<String>,
    pub values: Vec<u64>,
    #[serde(default)]
    pub ids: Vec<String>,
}

/// Which period of a counter to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CounterPeriod {
    /// Today in this IANA time zone (`None`: UTC), by Redis's clock.
    Today(Option<String>),
    /// A day, `YYYY-MM-DD`.
    Date(String),
    /// A counter drawn with [`Period::None`].
    Whole,
}

/// The last value a counter issued in a period (0 if none).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CounterValue {
    pub name: String,
    pub period: Option<String>,
    pub value: u64,
}

/// One change to an item of a pool, from its event log: who held it, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Its place in the pool's log, `<ms>-<seq>`: the `after` (or `Last-Event-ID`) to go
    /// on from here.
    pub id: String,
    /// What happened.
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// The item's id.
    pub item: String,
    /// The state the change left the item in (for `deleted`, the state it had).
    pub state: ItemState,
    /// The item's version after the change (for `deleted`, the version it had).
    pub version: u64,
    /// The holder the change concerned: the new one of a grant or an assignment, else the
    /// one it had; `None` when none.
    pub holder: Option<String>,
    /// That holder's fencing token; `None` when none.
    pub token: Option<u64>,
    /// When it happened: RFC 3339 UTC, by Redis's clock.
    pub at: String,
}

/// A page of a pool's events, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventPage {
    pub events: Vec<Event>,
    /// The `after` of the next page: the last event's id, or the `after` given when the
    /// page is empty (`None` if neither). An empty page means nothing newer yet: ask
    /// again with the same `next_after`.
    pub next_after: Option<String>,
    /// Events after the `after` given were dropped by the pool's cap (its `max_events`)
    /// before they were read: this page starts at the oldest kept.
    pub trimmed: bool,
}
