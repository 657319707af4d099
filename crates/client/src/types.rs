//! The bodies the client sends and reads, typed.
//!
//! Answers are the server's own types (`leasehold_wire::answers`), read leniently: unknown
//! fields are ignored, so a client keeps working against a newer server. An item's `data`
//! is read as a [`serde_json::Value`]. Requests are built here, with setters for what is
//! optional; the server checks their values and answers 400 `invalid_request` naming the
//! field it refuses.

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use leasehold_wire::answers::{
    AddedItems, CounterDraw, CounterValue, Event, EventPage, Item, ItemPage, LeasePage, Pool,
    PoolConfig, PoolSummary,
};
pub use leasehold_wire::items::{EventKind, ItemState, PoolCounts, PoolStats};

/// A lease as its holder sees it: what claims, renewals and `list_leases` answer (the
/// service's `Lease`; [`crate::Lease`] is the guard that keeps one alive).
pub type LeaseInfo = leasehold_wire::answers::Lease;

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
    /// How long done items are kept, in ms: `Some(None)` keeps them for ever (`null`),
    /// `None` leaves the setting as it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_done_ms: Option<Option<u64>>,
    /// How long dead items are kept, as `keep_done_ms`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_dead_ms: Option<Option<u64>>,
    /// Pause (true: claims grant nothing) or resume (false) the pool.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
}

/// An item to add.
#[derive(Debug, Clone, Serialize)]
pub struct NewItem {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    /// Scheduled: available at this time (RFC 3339), `delayed` until then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available_at: Option<String>,
    /// Scheduled: available this long after it is added.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
}

impl NewItem {
    pub fn new(id: impl Into<String>) -> Self {
        NewItem {
            id: id.into(),
            priority: None,
            data: None,
            available_at: None,
            delay_ms: None,
        }
    }

    /// Available only this long after it is added (`delayed` until then).
    pub fn delay_ms(mut self, delay_ms: u64) -> Self {
        self.delay_ms = Some(delay_ms);
        self
    }

    /// Available only at this time (RFC 3339; `delayed` until then).
    pub fn available_at(mut self, at: impl Into<String>) -> Self {
        self.available_at = Some(at.into());
        self
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
    /// Take a pool that does not exist (yet) as an empty one, instead of `not_found`: for
    /// workers that may start before the pool's first producer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create: Option<bool>,
}

impl Claim {
    pub fn new(holder: impl Into<String>) -> Self {
        Claim {
            holder: holder.into(),
            count: None,
            lease_ms: None,
            wait_ms: None,
            create: None,
        }
    }

    /// Wait for a pool that does not exist yet rather than answer `not_found`.
    pub fn create(mut self, create: bool) -> Self {
        self.create = Some(create);
        self
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
