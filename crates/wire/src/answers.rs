//! The bodies Leasehold answers with: items, leases, pools, pages, events and counter
//! draws. The server writes them and the client reads them, from these one definitions.
//!
//! Times are RFC 3339 UTC strings with milliseconds, by Redis's clock. An item's `data` is
//! the caller's JSON object; its type is a parameter, so that the server can pass stored
//! JSON through unparsed (`Box<RawValue>`) while a client reads it as a
//! [`serde_json::Value`] (the default).
//!
//! Answers are read leniently: unknown fields are ignored and fields a server added later
//! have defaults, so a client keeps working against a newer or older server.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::items::{EventKind, ItemState, PoolCounts, PoolStats};
use crate::numbers::DEFAULT_MAX_EVENTS;

/// `GET /v1/pools/{pool}/items/{id}` and every answer that returns an item. The token
/// is shown only where the contract hands it to a holder (an assignment).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema), schema(bound = ""))]
pub struct Item<D = Value> {
    pub id: String,
    pub pool: String,
    pub state: ItemState,
    /// Higher is claimed first; first in, first out within a priority.
    pub priority: i64,
    /// +1 on every change; the ETag is `"<version>"`.
    pub version: u64,
    /// Who holds the lease; null when not leased.
    pub holder: Option<String>,
    /// When the lease ends; null when not leased or leased without expiry.
    #[cfg_attr(feature = "utoipa", schema(format = DateTime))]
    pub lease_expires_at: Option<String>,
    /// Leases granted since the item was added or requeued.
    pub attempts: u64,
    /// The caller's JSON object.
    #[cfg_attr(feature = "utoipa", schema(value_type = Object))]
    pub data: D,
    #[cfg_attr(feature = "utoipa", schema(format = DateTime))]
    pub created_at: String,
    #[cfg_attr(feature = "utoipa", schema(format = DateTime))]
    pub updated_at: String,
    /// The fencing token, only in the answer to an assignment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<u64>,
    /// When a `delayed` item becomes available; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "utoipa", schema(format = DateTime))]
    pub available_at: Option<String>,
}

/// A lease as its holder sees it: what claims, renewals and lists of leases answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema), schema(bound = ""))]
pub struct Lease<D = Value> {
    /// The item's id.
    pub id: String,
    /// The fencing token: strictly increasing over every grant in the pool; renew keeps it.
    pub token: u64,
    pub version: u64,
    pub holder: String,
    /// When the lease ends; null for a lease without expiry.
    #[cfg_attr(feature = "utoipa", schema(format = DateTime))]
    pub lease_expires_at: Option<String>,
    pub priority: i64,
    pub attempts: u64,
    #[cfg_attr(feature = "utoipa", schema(value_type = Object))]
    pub data: D,
}

/// The answer to a claim: the leases granted, best first (possibly none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema), schema(bound = ""))]
pub struct Leases<D = Value> {
    #[cfg_attr(feature = "utoipa", schema(value_type = Vec<Lease>))]
    pub leases: Vec<Lease<D>>,
    /// True when the pool is paused (it grants nothing until resumed); absent otherwise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
}

/// A page of items; `next_cursor` is null on the last page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema), schema(bound = ""))]
pub struct ItemPage<D = Value> {
    #[cfg_attr(feature = "utoipa", schema(value_type = Vec<Item>))]
    pub items: Vec<Item<D>>,
    pub next_cursor: Option<String>,
}

/// A page of a holder's leases, in id order; `next_cursor` is null on the last page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema), schema(bound = ""))]
pub struct LeasePage<D = Value> {
    #[cfg_attr(feature = "utoipa", schema(value_type = Vec<Lease>))]
    pub leases: Vec<Lease<D>>,
    pub next_cursor: Option<String>,
}

/// The answer to adding items: which ids were new and which existed (and were left as
/// they were).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct AddedItems {
    pub created: Vec<String>,
    pub existing: Vec<String>,
}

/// One change to an item of a pool: an entry of `GET /v1/pools/{pool}/events` and the
/// data of an event of the live stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Event {
    /// Its place in the pool's log, `<ms>-<seq>`: pass it as `after` (or `Last-Event-ID`)
    /// to go on from here.
    #[cfg_attr(feature = "utoipa", schema(example = "1768003200000-0"))]
    pub id: String,
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// The item's id; null for a change to the pool itself (`paused`, `resumed`).
    pub item: Option<String>,
    /// The state the change left the item in (for `deleted`, the state it had); null for a
    /// change to the pool.
    pub state: Option<ItemState>,
    /// The item's version after the change (for `deleted`, the version it had); null for
    /// a change to the pool.
    pub version: Option<u64>,
    /// The holder the change concerned: the new one of a grant or an assignment, else the
    /// one it had (a release names who released); null when none.
    pub holder: Option<String>,
    /// The fencing token of that holder's lease; null when none.
    pub token: Option<u64>,
    /// When it happened, by Redis's clock: the moment of the fact, also when it was
    /// recorded later (an `expired` event's `at` is when the lease ended, a `delay_over`'s
    /// when the delay did), while the `id` gives the order of recording.
    #[cfg_attr(feature = "utoipa", schema(format = DateTime))]
    pub at: String,
    /// The lease expiry the change concerns: a grant's, renewal's or assignment's new one,
    /// the one that ran out for `expired`; null otherwise.
    #[serde(default)]
    #[cfg_attr(feature = "utoipa", schema(format = DateTime))]
    pub lease_expires_at: Option<String>,
}

/// `GET /v1/pools/{pool}/events`: a page of events, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct EventPage {
    pub events: Vec<Event>,
    /// The `after` of the next page: the last event's id, or the `after` given when there
    /// were none (null if neither). An empty page means nothing newer yet: ask again with
    /// the same `next_after`.
    pub next_after: Option<String>,
    /// True when events after `after` were dropped by the pool's cap (its `max_events`)
    /// before they were read: this page starts at the oldest kept.
    pub trimmed: bool,
}

/// A pool's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct PoolConfig {
    /// The lease time of a grant that names none, in ms (0: no expiry).
    pub lease_ms: u64,
    /// The most leases one holder may have in this pool at once (0: unlimited).
    pub max_leases_per_holder: u64,
    /// Grants after which a lease ending without completion makes the item `dead`
    /// (0: unlimited).
    pub max_attempts: u64,
    /// Item writes must carry a precondition (428 `precondition_required` otherwise).
    pub require_if_match: bool,
    /// How many of its latest events the pool's log keeps (0: none; by default 10,000).
    #[serde(default = "default_max_events")]
    pub max_events: u64,
    /// How long a done item is kept, in ms, then removed (a `removed` event); 0: removed
    /// at once; null: kept for ever. By default 7 days.
    #[serde(default)]
    pub keep_done_ms: Option<u64>,
    /// How long a dead item is kept, in ms (as `keep_done_ms`). By default 30 days.
    #[serde(default)]
    pub keep_dead_ms: Option<u64>,
    /// Paused: claims grant nothing (long-poll claims wait for the resume); renewals,
    /// releases, completions and adds go on.
    #[serde(default)]
    pub paused: bool,
}

fn default_max_events() -> u64 {
    DEFAULT_MAX_EVENTS
}

/// `GET /v1/pools/{pool}` and `PUT /v1/pools/{pool}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Pool {
    pub name: String,
    pub config: PoolConfig,
    pub counts: PoolCounts,
    pub stats: PoolStats,
    /// What the pool holds, against its limits (absent from a server before quotas).
    #[serde(default)]
    pub usage: Option<PoolUsage>,
    #[serde(default)]
    #[cfg_attr(feature = "utoipa", schema(format = DateTime))]
    pub created_at: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "utoipa", schema(format = DateTime))]
    pub updated_at: Option<String>,
}

/// One pool of `GET /v1/pools`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct PoolSummary {
    pub name: String,
    pub counts: PoolCounts,
}

/// `GET /v1/pools`: a page of the tenant's pools, by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct PoolList {
    pub pools: Vec<PoolSummary>,
    /// Pass as `after` for the next page; null on the last page.
    #[serde(default)]
    pub next_after: Option<String>,
}

/// What a pool holds, counted exactly by every script that changes it, and the limits a
/// write that adds items or item data is held to (`quota_exceeded` past them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct PoolUsage {
    /// Items, in every state.
    pub items: u64,
    pub max_items: u64,
    /// `data_bytes + event_bytes + answer_bytes`.
    pub bytes: u64,
    pub max_bytes: u64,
    /// Items' ids and data (as compact JSON).
    pub data_bytes: u64,
    /// The event log's entries (their fields and values).
    pub event_bytes: u64,
    /// Answers kept for replay under an `Idempotency-Key`.
    pub answer_bytes: u64,
    /// True while the bytes of items written before this version are still being counted
    /// (the sweeper counts them, a thousand a call): `bytes` is then a lower bound.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub counting: bool,
}

/// The limits a tenant's writes are held to: the server's defaults (flags), or the
/// tenant's own from the API key file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Quotas {
    pub max_pools_per_tenant: u64,
    pub max_items_per_pool: u64,
    pub max_pool_bytes: u64,
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas {
            max_pools_per_tenant: 10_000,
            max_items_per_pool: 10_000_000,
            max_pool_bytes: 1 << 30,
        }
    }
}

/// `GET /v1/tenant`: the caller's tenant, its pools and its limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct TenantInfo {
    pub tenant: String,
    /// Pools, counting names reserved for one being created.
    pub pools: u64,
    pub limits: Quotas,
}

/// Values drawn from a counter: a contiguous batch within one period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct CounterDraw {
    pub name: String,
    /// The day (`YYYY-MM-DD`) the values belong to; null for a counter without periods.
    #[cfg_attr(feature = "utoipa", schema(format = Date))]
    pub period: Option<String>,
    pub values: Vec<u64>,
    /// The values rendered with `format`; only when a format was given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ids: Vec<String>,
}

/// A counter's last value in a period (0 if none was issued).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct CounterValue {
    pub name: String,
    #[cfg_attr(feature = "utoipa", schema(format = Date))]
    pub period: Option<String>,
    pub value: u64,
}

/// `/healthz` and `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Status {
    /// `ok` (alive) or `ready`.
    pub status: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_passes_its_data_through_as_given_and_reads_it_as_a_value() {
        let text = r#"{"id":"a","pool":"p","state":"leased","priority":0,"version":3,"holder":"h","lease_expires_at":null,"attempts":1,"data":{"b":1,"a":[2.50]},"created_at":"2026-01-10T00:00:00.000Z","updated_at":"2026-01-10T00:00:00.000Z"}"#;
        let raw: Item<Box<serde_json::value::RawValue>> =
            serde_json::from_str(text).expect("an item");
        assert_eq!(raw.data.get(), r#"{"b":1,"a":[2.50]}"#);
        assert_eq!(serde_json::to_string(&raw).expect("it serializes"), text);

        let parsed: Item = serde_json::from_str(text).expect("an item");
        assert_eq!(parsed.data["a"][0], serde_json::json!(2.5));
        assert_eq!((parsed.state, parsed.token), (ItemState::Leased, None));
    }

    #[test]
    fn fields_a_server_may_not_send_have_defaults() {
        let config: PoolConfig = serde_json::from_str(
            r#"{"lease_ms":1,"max_leases_per_holder":0,"max_attempts":0,"require_if_match":true,"later":1}"#,
        )
        .expect("settings");
        assert_eq!(config.max_events, DEFAULT_MAX_EVENTS);

        let draw: CounterDraw =
            serde_json::from_str(r#"{"name":"c","period":null,"values":[1]}"#).expect("a draw");
        assert!(draw.ids.is_empty());
        assert!(
            !serde_json::to_string(&draw)
                .expect("it serializes")
                .contains("ids")
        );
    }
}
