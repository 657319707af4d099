//! The answers' bodies, made from what the store reports: items, leases, pools and
//! events. The types are `leasehold_wire::answers` (the client reads the same ones); the
//! server's item data is the stored JSON text, passed through without re-parsing.
//!
//! Scripts report times in milliseconds; here they become RFC 3339 UTC strings with
//! milliseconds.

use serde_json::value::RawValue;

use crate::error::ApiError;
use crate::names::PoolName;
use crate::store::{EventRecord, ItemRecord, ItemState, PoolView};
use leasehold_wire::answers;

pub use leasehold_wire::answers::{
    AddedItems, CounterDraw, CounterValue, Event, EventPage, Pool, PoolList, PoolUsage, Quotas,
    Status, TenantInfo,
};

/// An item's data as the server answers it: the stored JSON text.
pub type Data = Box<RawValue>;
pub type Item = answers::Item<Data>;
pub type Lease = answers::Lease<Data>;
pub type Leases = answers::Leases<Data>;
pub type ItemPage = answers::ItemPage<Data>;
pub type LeasePage = answers::LeasePage<Data>;

/// Milliseconds since the epoch as an RFC 3339 UTC string with milliseconds.
pub fn timestamp(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

fn raw_data(data: String) -> Result<Data, ApiError> {
    RawValue::from_string(data).map_err(|e| ApiError::Internal(format!("stored data: {e}")))
}

/// A lease's expiry, or null for a lease without one (and for an item not leased).
fn lease_expiry(record: &ItemRecord) -> Option<String> {
    match (record.state, record.expires) {
        (ItemState::Leased, Some(ms)) if ms > 0 => Some(timestamp(ms)),
        _ => None,
    }
}

/// An item, without its token (shown only where the contract hands it to a holder).
pub fn item(pool: &PoolName, record: ItemRecord) -> Result<Item, ApiError> {
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
        available_at: record.available.map(timestamp),
    })
}

/// The item with its fencing token, for the holder it was just assigned to.
pub fn item_with_token(pool: &PoolName, record: ItemRecord) -> Result<Item, ApiError> {
    let token = record.token.filter(|_| record.state == ItemState::Leased);
    Ok(Item {
        token,
        ..item(pool, record)?
    })
}

/// A lease as its holder sees it.
pub fn lease(record: ItemRecord) -> Result<Lease, ApiError> {
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

/// Leases, in the order given.
pub fn leases(records: Vec<ItemRecord>) -> Result<Vec<Lease>, ApiError> {
    records.into_iter().map(lease).collect()
}

/// One change to an item, as the event log and the live stream show it.
pub fn event(record: &EventRecord) -> Event {
    Event {
        id: record.id.to_string(),
        at: timestamp(record.at.unwrap_or(record.id.ms)),
        lease_expires_at: record.expires.map(timestamp),
        kind: record.kind,
        item: record.item.clone(),
        state: record.state,
        version: record.version,
        holder: record.holder.clone(),
        token: record.token,
    }
}

/// A pool, with its settings, counts and stats.
pub fn pool(name: &PoolName, view: PoolView, quotas: &Quotas) -> Pool {
    let usage = view.usage;
    Pool {
        name: name.to_string(),
        config: view.config,
        counts: view.counts,
        stats: view.stats,
        usage: Some(PoolUsage {
            items: usage.items,
            max_items: quotas.max_items_per_pool,
            bytes: usage.bytes,
            max_bytes: quotas.max_pool_bytes,
            data_bytes: usage.data_bytes,
            event_bytes: usage.event_bytes,
            answer_bytes: usage.answer_bytes,
            counting: usage.counting,
        }),
        created_at: view.created.map(timestamp),
        updated_at: view.updated.map(timestamp),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc_with_milliseconds() {
        assert_eq!(timestamp(1_768_003_200_007), "2026-01-10T00:00:00.007Z");
    }
}
