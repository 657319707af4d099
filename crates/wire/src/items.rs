//! The states and counts that answers and events carry: an item's state, what happened to
//! it, and a pool's counts and stats.

use serde::{Deserialize, Deserializer, Serialize};

use crate::names::Invalid;

/// Where an item is in its life: `available` → `leased` → `done`; back to `available` on
/// release or expiry; `delayed` while a release delay runs; `dead` after `max_attempts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ItemState {
    Available,
    Leased,
    Delayed,
    Done,
    Dead,
}

impl<'de> Deserialize<'de> for ItemState {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ItemState::parse(&text).map_err(|_| serde::de::Error::custom(ItemState::RULE))
    }
}

impl ItemState {
    const ALL: [ItemState; 5] = [
        ItemState::Available,
        ItemState::Leased,
        ItemState::Delayed,
        ItemState::Done,
        ItemState::Dead,
    ];

    pub fn parse(value: &str) -> Result<Self, Invalid> {
        ItemState::ALL
            .into_iter()
            .find(|state| state.as_str() == value)
            .ok_or_else(|| Invalid::new("state", ItemState::RULE))
    }

    /// What `parse` refuses, in words.
    pub const RULE: &str = "must be available, leased, delayed, done or dead";

    pub fn as_str(self) -> &'static str {
        match self {
            ItemState::Available => "available",
            ItemState::Leased => "leased",
            ItemState::Delayed => "delayed",
            ItemState::Done => "done",
            ItemState::Dead => "dead",
        }
    }
}

/// What happened to an item: one per change, appended by `update()` in `lua/lib/pool.lua`
/// (and by `add_items` and `delete_item`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Added (by the bulk add, or by a PUT that created it).
    Added,
    /// Leased to `holder` with fencing token `token`.
    Claimed,
    /// Its lease was extended.
    Renewed,
    /// Its holder gave it back (to the pool, into a delay, or dead after its attempts).
    Released,
    /// Its holder finished it.
    Completed,
    /// Its lease ran out (back to the pool, or dead after its attempts).
    Expired,
    /// Its release delay ended: available again.
    DelayOver,
    /// Given to `holder` by an assignment.
    Assigned,
    /// An assignment took it from its holder back to the pool.
    Unassigned,
    /// Its data or priority was written.
    Written,
    /// Put back to the pool from done or dead, its attempts reset.
    Requeued,
    /// Deleted (`state` and `version` are the ones it had).
    Deleted,
    /// Removed, done or dead, once the pool's `keep_done_ms` / `keep_dead_ms` was up
    /// (`state` and `version` are the ones it had).
    Removed,
    /// The pool was paused (no item).
    Paused,
    /// The pool was resumed (no item).
    Resumed,
}

impl EventKind {
    /// Its name on the wire (the `type` field, and the SSE event name).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Added => "added",
            EventKind::Claimed => "claimed",
            EventKind::Renewed => "renewed",
            EventKind::Released => "released",
            EventKind::Completed => "completed",
            EventKind::Expired => "expired",
            EventKind::DelayOver => "delay_over",
            EventKind::Assigned => "assigned",
            EventKind::Unassigned => "unassigned",
            EventKind::Written => "written",
            EventKind::Requeued => "requeued",
            EventKind::Deleted => "deleted",
            EventKind::Removed => "removed",
            EventKind::Paused => "paused",
            EventKind::Resumed => "resumed",
        }
    }
}

/// How many items the pool has in each state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct PoolCounts {
    pub available: u64,
    pub leased: u64,
    pub delayed: u64,
    pub done: u64,
    pub dead: u64,
}

/// What has happened in the pool, counted since it was created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct PoolStats {
    /// Leases granted.
    pub claims: u64,
    /// Writes refused by the state they met (409, 412, 428).
    pub conflicts: u64,
    /// Leases ended because their time ran out.
    pub expired: u64,
}
