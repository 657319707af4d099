//! `StoreError`: why a call to Redis did not give an answer. The HTTP layer turns it into
//! a problem answer (`From<StoreError> for ApiError`, beside `ApiError`); nothing here knows
//! of HTTP.

use std::time::Duration;

use crate::names::Invalid;
use leasehold_wire::problem::{Current, ProblemCode};

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Redis could not be reached in time, or failed: a write's outcome is unknown.
    #[error("Redis is unavailable: {0}")]
    Unavailable(String),
    /// The write ran, but too few replicas acknowledged it in time: its outcome is unknown.
    #[error("not acknowledged: {0}")]
    Unacknowledged(String),
    /// Refused by the state inside Redis (a lease lost, a version conflict, …).
    #[error("refused: {}", .0.code)]
    Refused(Refusal),
    /// The tenant is over its rate limit; the next request is admitted after this long.
    #[error("rate limited for {retry_after:?}")]
    RateLimited { retry_after: Duration },
    /// A value the store cannot take, and the rule it broke.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// Item data larger than an item may hold.
    #[error("{0}")]
    TooLarge(String),
    /// A fault of ours (a script error, an answer that does not decode).
    #[error("{0}")]
    Internal(String),
}

impl StoreError {
    pub fn refused(code: ProblemCode) -> Self {
        StoreError::Refused(Refusal {
            code,
            current: None,
            limit: None,
            quota: None,
            missing: None,
            detail: None,
            replayed: false,
        })
    }

    /// Whether this is the refusal `code`.
    pub fn is_refusal(&self, code: ProblemCode) -> bool {
        matches!(self, StoreError::Refused(refusal) if refusal.code == code)
    }
}

/// A refusal decided by a script, as stored for idempotent replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// A code whose status is 404, 409, 412 or 428 ([`ProblemCode::is_refusal`]).
    pub code: ProblemCode,
    pub current: Option<Current>,
    /// The holder's lease limit, for `holder_at_capacity`; the limit passed, for
    /// `quota_exceeded`.
    pub limit: Option<u64>,
    /// With `quota_exceeded`: the limit the write would pass.
    pub quota: Option<Box<Quota>>,
    /// With `not_found`: what was missing.
    pub missing: Option<Box<Missing>>,
    /// For a person, where the store can say more than the code's meaning (`no pool
    /// named …`).
    pub detail: Option<Box<str>>,
    /// True when this answer is a replay of an earlier request with the same key.
    pub replayed: bool,
}

/// A limit a write would pass (`quota_exceeded`): its name (`max_pool_bytes`,
/// `max_items_per_pool`, `max_pools_per_tenant`), its value, what is used, and what the
/// write would add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quota {
    pub name: String,
    pub limit: u64,
    pub usage: u64,
    pub adds: u64,
}

/// What a `not_found` refusal found missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// The pool itself.
    Pool,
    /// This item, in a pool that exists.
    Item(String),
}
