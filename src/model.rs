//! The JSON bodies Leasehold answers with: items, leases, pools and counter draws.
//!
//! Scripts report times in milliseconds and data as JSON text; here they become RFC 3339
//! UTC strings with milliseconds and embedded JSON, without re-parsing the data.

use serde::Serialize;
use serde_json::value::RawValue;

use crate::error::ApiError;
use crate::names::PoolName;
use crate::store::{ItemRecord, ItemState, PoolConfig, PoolCounts, PoolView};

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
#[derive(Debug, Serialize)]
pub struct Item {
    pub id: String,
    pub pool: String,
    pub state: ItemState,
    pub priority: i64,
    pub version: u64,
    pub holder: Option<String>,
    pub lease_expires_at: Option<String>,
    pub attempts: u64,
    pub data: Box<RawValue>,
    pub created_at: String,
    pub updated_at: String,
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
#[derive(Debug, Serialize)]
pub struct Lease {
    pub id: String,
    pub token: u64,
    pub version: u64,
    pub holder: String,
    pub lease_expires_at: Option<String>,
    pub priority: i64,
    pub attempts: u64,
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

#[derive(Debug, Serialize)]
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

/// `GET /v1/pools/{pool}` and `PUT /v1/pools/{pool}`.
#[derive(Debug, Serialize)]
pub struct Pool {
    pub name: String,
    pub config: PoolConfig,
    pub counts: PoolCounts,
    pub stats: crate::store::PoolStats,
    pub created_at: Option<String>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc_with_milliseconds() {
        assert_eq!(timestamp(1_768_003_200_007), "2026-01-10T00:00:00.007Z");
    }
}
