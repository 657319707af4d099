//! The JSON bodies Leasehold answers with: items, leases, pools, pages and counter draws.
//! Each derives its schema in the API description from the same definition.
//!
//! Scripts report times in milliseconds and data as JSON text; here they become RFC 3339
//! UTC strings with milliseconds and embedded JSON, without re-parsing the data.

use serde::Serialize;
use serde_json::value::RawValue;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::names::PoolName;
use crate::store::{
    EventKind, EventRecord, ItemRecord, ItemState, PoolConfig, PoolCounts, PoolSummary, PoolView,
};

/// Milliseconds since the epoch as an RFC 3339 UTC string with milliseconds.
pub fn timestamp(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

fn raw_data(data: String) -> Result<Box<RawValue>, ApiError> {
    RawValue::from_string(data).map_err(|e| ApiError::Internal(format!("stored data: {e}")))
}

/// A lease's expiry, or null for a lease without one (and for an item not leased).
fn lease_expiry(record: &ItemRecord) -> Option<String> {
    match (record.state, record.expires) {
        (ItemState::Leased, Some(ms)) if ms > 0 => Some(timestamp(ms)),
        _ => None,
    }
}

/// `GET /v1/pools/{pool}/items/{id}` and every answer that returns an item. The token
/// is shown only where the contract hands it to a holder (an assignment).
#[derive(Debug, Serialize, ToSchema)]
pub struct Item {
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
    #[schema(format = DateTime)]
    pub lease_expires_at: Option<String>,
    /// Leases granted since the item was added or requeued.
    pub attempts: u64,
    /// The caller's JSON object.
    #[schema(value_type = Object)]
    pub data: Box<RawValue>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// The fencing token, only in the answer to an assignment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<u64>,
}

impl Item {
    pub fn new(pool: &PoolName, record: ItemRecord) -> Result<Self, ApiError> {
        Ok(Item {
            lease_expires_at: lease_expiry(&record),
            id: record.id,
            pool: pool.to_string(),
            state: record.state,
            priority: record.priority,
            version: record.version,
            holder: record.holder,
            attempts: record.attempts,
            data: raw_data(record.data)?,
            created_at: timestamp(record.created),
            updated_at: timestamp(record.updated),
            token: None,
        })
    }

    /// The item with its fencing token, for the holder it was just assigned to.
    pub fn with_token(pool: &PoolName, record: ItemRecord) -> Result<Self, ApiError> {
        let token = record.token.filter(|_| record.state == ItemState::Leased);
        Ok(Item {
            token,
            ..Item::new(pool, record)?
        })
    }
}

/// A lease as its holder sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Lease {
    pub id: String,
    /// The fencing token: strictly increasing over every grant in the pool; renew keeps it.
    pub token: u64,
    pub version: u64,
    pub holder: String,
    /// When the lease ends; null for a lease without expiry.
    #[schema(format = DateTime)]
    pub lease_expires_at: Option<String>,
    pub priority: i64,
    pub attempts: u64,
    #[schema(value_type = Object)]
    pub data: Box<RawValue>,
}

impl Lease {
    pub fn new(record: ItemRecord) -> Result<Self, ApiError> {
        let (Some(token), Some(holder)) = (record.token, record.holder.clone()) else {
            return Err(ApiError::Internal(format!(
                "item {} reported as a lease without holder or token",
                record.id
            )));
        };
        Ok(Lease {
            lease_expires_at: lease_expiry(&record),
            id: record.id,
            token,
            version: record.version,
            holder,
            priority: record.priority,
            attempts: record.attempts,
            data: raw_data(record.data)?,
        })
    }
}

/// The answer to a claim: the leases granted, best first (possibly none).
#[derive(Debug, Serialize, ToSchema)]
pub struct Leases {
    pub leases: Vec<Lease>,
}

impl Leases {
    pub fn new(records: Vec<ItemRecord>) -> Result<Self, ApiError> {
        Ok(Leases {
            leases: records
                .into_iter()
                .map(Lease::new)
                .collect::<Result<_, _>>()?,
        })
    }
}

/// One change to an item of a pool: an entry of `GET /v1/pools/{pool}/events` and the
/// data of an event of the live stream.
#[derive(Debug, Serialize, ToSchema)]
pub struct Event {
    /// Its place in the pool's log, `<ms>-<seq>`: pass it as `after` (or `Last-Event-ID`)
    /// to go on from here.
    #[schema(example = "1768003200000-0")]
    pub id: String,
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// The item's id.
    pub item: String,
    /// The state the change left the item in (for `deleted`, the state it had).
    pub state: ItemState,
    /// The item's version after the change (for `deleted`, the version it had).
    pub version: u64,
    /// The holder the change concerned: the new one of a grant or an assignment, else the
    /// one it had (a release names who released); null when none.
    pub holder: Option<String>,
    /// The fencing token of that holder's lease; null when none.
    pub token: Option<u64>,
    /// When it happened, by Redis's clock.
    #[schema(format = DateTime)]
    pub at: String,
}

impl Event {
    pub fn new(record: &EventRecord) -> Self {
        Event {
            id: record.id.to_string(),
            at: timestamp(record.id.ms),
            kind: record.kind,
            item: record.item.clone(),
            state: record.state,
            version: record.version,
            holder: record.holder.clone(),
            token: record.token,
        }
    }
}

/// `GET /v1/pools/{pool}/events`: a page of events, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct Events {
    pub events: Vec<Event>,
    /// The `after` of the next page: the last event's id, or the `after` given when there
    /// were none (null if neither).
    pub next_after: Option<String>,
    /// True when events after `after` were dropped by the pool's cap (its `max_events`)
    /// before they were read: this page starts at the oldest kept.
    pub trimmed: bool,
}

/// `GET /v1/pools/{pool}` and `PUT /v1/pools/{pool}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Pool {
    pub name: String,
    pub config: PoolConfig,
    pub counts: PoolCounts,
    pub stats: crate::store::PoolStats,
    #[schema(format = DateTime)]
    pub created_at: Option<String>,
    #[schema(format = DateTime)]
    pub updated_at: Option<String>,
}

impl Pool {
    pub fn new(name: &PoolName, view: PoolView) -> Self {
        Pool {
            name: name.to_string(),
            config: view.config,
            counts: view.counts,
            stats: view.stats,
            created_at: view.created.map(timestamp),
            updated_at: view.updated.map(timestamp),
        }
    }
}

/// `GET /v1/pools`: this tenant's pools, by name.
#[derive(Debug, Serialize, ToSchema)]
pub struct PoolList {
    pub pools: Vec<PoolSummary>,
}

/// The answer to adding items: which ids were new and which existed (and were left as
/// they were).
#[derive(Debug, Serialize, ToSchema)]
pub struct AddedItems {
    pub created: Vec<String>,
    pub existing: Vec<String>,
}

/// A page of items; `next_cursor` is null on the last page.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemPage {
    pub items: Vec<Item>,
    pub next_cursor: Option<String>,
}

/// A page of a holder's leases, in id order; `next_cursor` is null on the last page.
#[derive(Debug, Serialize, ToSchema)]
pub struct LeasePage {
    pub leases: Vec<Lease>,
    pub next_cursor: Option<String>,
}

/// Values drawn from a counter: a contiguous batch within one period.
#[derive(Debug, Serialize, ToSchema)]
pub struct CounterDraw {
    pub name: String,
    /// The day (`YYYY-MM-DD`) the values belong to; null for a counter without periods.
    #[schema(format = Date)]
    pub period: Option<String>,
    pub values: Vec<u64>,
    /// The values rendered with `format`; only when a format was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ids: Option<Vec<String>>,
}

/// A counter's last value in a period (0 if none was issued).
#[derive(Debug, Serialize, ToSchema)]
pub struct CounterValue {
    pub name: String,
    #[schema(format = Date)]
    pub period: Option<String>,
    pub value: u64,
}

/// `/healthz` and `/readyz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    /// `ok` (alive) or `ready`.
    pub status: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc_with_milliseconds() {
        assert_eq!(timestamp(1_768_003_200_007), "2026-01-10T00:00:00.007Z");
    }
}
