//! What scripts answer: a tagged JSON reply (`ok`, a refusal `err`, or `retry`), decoded
//! into an [`Answer`] (the value, and whether it was replayed), a [`Refusal`], or a request
//! to run the script again.

use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::{Missing, Quota, Refusal, StoreError};
use crate::metrics::Metrics;
use leasehold_wire::problem::{Current, ProblemCode};

/// A script's successful answer, and whether it was replayed from an earlier request.
#[derive(Debug)]
pub struct Answer<T> {
    pub value: T,
    pub replayed: bool,
}

/// The tagged reply every script returns: `ok`, a refusal (`err`), or `retry`.
#[derive(Deserialize)]
struct Tagged<T> {
    ok: Option<T>,
    err: Option<ProblemCode>,
    current: Option<Current>,
    limit: Option<u64>,
    /// With `quota_exceeded`: which limit, what is used and what the write would add.
    quota: Option<String>,
    usage: Option<u64>,
    adds: Option<u64>,
    retry: Option<u64>,
    /// The write would create the pool: reserve its name first, then run it again.
    create: Option<u8>,
    /// With `not_found`: the item that does not exist, or that the pool does not.
    item: Option<String>,
    pool_missing: Option<bool>,
    /// Leases this call ended because their time ran out.
    expired: Option<u64>,
    /// When the pool's next lease expiry or delay end is (ms, as text), where the call
    /// scheduled one.
    #[serde(default, deserialize_with = "super::events::optional_number_text")]
    due: Option<u64>,
}

/// The whole reply of a write that would create its pool and asks for the pool's name to be
/// reserved first (`ask_reservation` in `lua/lib/pool.lua`): it has written nothing.
pub(super) const RESERVE_REPLY: &str = r#"{"create":1}"#;

/// A decoded reply before refusals become errors: scripts that can ask for a retry
/// answer `Retry` with the time Redis saw, and writes that would create their pool ask
/// for the pool's name to be reserved first (`Reserve`).
pub(super) enum Outcome<T> {
    Done(Answer<T>),
    Retry(u64),
    Reserve,
}

pub(super) fn decode<T: DeserializeOwned>(
    json: &str,
    replayed: bool,
    metrics: &Metrics,
    on_due: impl FnOnce(u64),
) -> Result<Outcome<T>, StoreError> {
    let reply: Tagged<T> = serde_json::from_str(json)
        .map_err(|e| StoreError::Internal(format!("undecodable script reply: {e}: {json}")))?;
    if let (Some(expired), false) = (reply.expired, replayed) {
        metrics.record(|| metrics::counter!(crate::metrics::LEASES_EXPIRED).increment(expired));
    }
    if let (Some(due), false) = (reply.due, replayed) {
        on_due(due);
    }
    if let Some(value) = reply.ok {
        return Ok(Outcome::Done(Answer { value, replayed }));
    }
    if let Some(now) = reply.retry {
        return Ok(Outcome::Retry(now));
    }
    if reply.create.is_some() {
        return Ok(Outcome::Reserve);
    }
    let quota = match (reply.quota, reply.limit, reply.usage, reply.adds) {
        (Some(name), Some(limit), Some(usage), Some(adds)) => Some(Box::new(Quota {
            name,
            limit,
            usage,
            adds,
        })),
        _ => None,
    };
    match reply.err {
        Some(code) if code.is_refusal() => Err(StoreError::Refused(Refusal {
            code,
            current: reply.current,
            limit: reply.limit,
            quota,
            missing: match (reply.item, reply.pool_missing) {
                (_, Some(true)) => Some(Box::new(Missing::Pool)),
                (Some(id), _) => Some(Box::new(Missing::Item(id))),
                _ => None,
            },
            detail: None,
            replayed,
        })),
        Some(code) => Err(StoreError::Internal(format!(
            "a script refused with {code}, which is no refusal: {json}"
        ))),
        None => Err(StoreError::Internal(format!(
            "script reply without outcome: {json}"
        ))),
    }
}

impl<T> Outcome<T> {
    /// For scripts that never ask for a retry.
    pub(super) fn done(self) -> Result<Answer<T>, StoreError> {
        match self {
            Outcome::Done(answer) => Ok(answer),
            Outcome::Retry(_) | Outcome::Reserve => {
                Err(StoreError::Internal("unexpected retry reply".to_owned()))
            }
        }
    }
}

/// Empty Lua tables encode as `{}`; lists in replies accept that as an empty list.
pub(super) fn lua_list<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum List<T> {
        Items(Vec<T>),
        Empty(serde::de::IgnoredAny),
    }
    Ok(match List::deserialize(deserializer)? {
        List::Items(items) => items,
        List::Empty(_) => Vec::new(),
    })
}
