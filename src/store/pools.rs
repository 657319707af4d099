//! Pools: create or change settings, read counts and stats, list, delete.

use leasehold_wire::items::{PoolCounts, PoolStats};
use serde::Deserialize;

use super::call::Access;
use super::scripts::Function;
use super::{Answer, Idempotency, Outcome, PoolRef, Store, StoreError, keys};
use crate::names::{PoolName, Tenant};
use leasehold_wire::problem::ProblemCode;

/// Settings to change; `None` keeps the current value (or the default, for a new pool).
#[derive(Debug, Default)]
pub struct PoolSettings {
    pub lease_ms: Option<u64>,
    pub max_leases_per_holder: Option<u64>,
    pub max_attempts: Option<u64>,
    pub require_if_match: Option<bool>,
    pub max_events: Option<u64>,
    /// `Some(None)`: keep for ever.
    pub keep_done_ms: Option<Option<u64>>,
    pub keep_dead_ms: Option<Option<u64>>,
    pub paused: Option<bool>,
}

pub use leasehold_wire::answers::{PoolConfig, PoolSummary, Quotas};
pub use leasehold_wire::numbers::DEFAULT_MAX_EVENTS;

/// A pool's settings as the scripts report them: `require_if_match` is 0 or 1.
#[derive(Deserialize)]
struct ScriptConfig {
    lease_ms: u64,
    max_leases_per_holder: u64,
    max_attempts: u64,
    require_if_match: u64,
    /// Defaulted for an answer stored before the setting existed (an Idempotency-Key
    /// replay).
    #[serde(default = "default_max_events")]
    max_events: u64,
    /// -1: for ever.
    keep_done_ms: i64,
    keep_dead_ms: i64,
    #[serde(default)]
    paused: u64,
}

fn default_max_events() -> u64 {
    DEFAULT_MAX_EVENTS
}

fn script_config<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<PoolConfig, D::Error> {
    let c = ScriptConfig::deserialize(deserializer)?;
    Ok(PoolConfig {
        lease_ms: c.lease_ms,
        max_leases_per_holder: c.max_leases_per_holder,
        max_attempts: c.max_attempts,
        require_if_match: c.require_if_match != 0,
        max_events: c.max_events,
        keep_done_ms: u64::try_from(c.keep_done_ms).ok(),
        keep_dead_ms: u64::try_from(c.keep_dead_ms).ok(),
        paused: c.paused != 0,
    })
}

/// A pool as a script reports it.
#[derive(Debug, Clone, Deserialize)]
pub struct PoolView {
    #[serde(deserialize_with = "script_config")]
    pub config: PoolConfig,
    pub counts: PoolCounts,
    pub stats: PoolStats,
    pub usage: Usage,
    pub created: Option<u64>,
    pub updated: Option<u64>,
}

/// What a pool holds, as its scripts count it.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Usage {
    pub items: u64,
    pub bytes: u64,
    pub data_bytes: u64,
    pub event_bytes: u64,
    pub answer_bytes: u64,
    /// Items written by an older version are still being counted.
    pub counting: bool,
}

#[derive(Deserialize)]
struct PutPoolReply {
    pool: PoolView,
    pool_created: bool,
}

#[derive(Deserialize)]
struct Deleted {}

/// The empty answer of the tenant index's writes.
#[derive(Deserialize)]
struct IndexChanged {}

/// A page of a tenant's pool index.
#[derive(Deserialize)]
struct IndexPage {
    #[serde(deserialize_with = "super::lua_list")]
    names: Vec<String>,
    total: u64,
    #[serde(default, deserialize_with = "pending_map")]
    pending: std::collections::HashMap<String, u64>,
    now: u64,
}

/// Lua encodes an empty table as `{}`, a map of names as one too.
fn pending_map<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<std::collections::HashMap<String, u64>, D::Error> {
    Ok(
        Option::<std::collections::HashMap<String, u64>>::deserialize(deserializer)?
            .unwrap_or_default(),
    )
}

/// How long a name may stay reserved for a pool that does not come (its creator stopped
/// between the two steps) before a listing drops it. Far beyond a request's time.
const RESERVATION_MS: u64 = 60_000;

/// What a tenant's index is told about a pool (`lua/unlist_pool.lua`).
#[derive(Clone, Copy)]
enum Unlist {
    /// The pool was created: its name is no longer only reserved.
    Created,
    /// The pool is gone: its name leaves the index.
    Gone,
}

impl PoolRef<'_> {
    /// Creates a pool or changes its settings; true in the answer when it was created.
    pub async fn put_pool(
        &self,
        idempotency: Option<&Idempotency>,
        settings: &PoolSettings,
        quotas: &Quotas,
    ) -> Result<Answer<(PoolView, bool)>, StoreError> {
        let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
        let keep = |v: Option<Option<u64>>| match v {
            None => String::new(),
            Some(None) => "-1".to_owned(),
            Some(Some(ms)) => ms.to_string(),
        };
        let settings = [
            opt(settings.lease_ms),
            opt(settings.max_leases_per_holder),
            opt(settings.max_attempts),
            opt(settings.require_if_match.map(u64::from)),
            opt(settings.max_events),
            keep(settings.keep_done_ms),
            keep(settings.keep_dead_ms),
            opt(settings.paused.map(u64::from)),
        ];
        let answer: Answer<PutPoolReply> = self
            .creating(&self.scripts().put_pool, idempotency, quotas, |reserved| {
                let mut args = settings.to_vec();
                args.push(flag(reserved));
                args
            })
            .await?
            .done()?;
        Ok(Answer {
            value: (answer.value.pool, answer.value.pool_created),
            replayed: answer.replayed,
        })
    }

    pub async fn get_pool(&self) -> Result<PoolView, StoreError> {
        self.read(&self.scripts().get_pool, &[]).await
    }

    /// Does to the pool what time alone does (`lua/sweep_pool.lua`): at most `limit` each
    /// of expired leases, finished items past their time and expired answers. True when
    /// more is due.
    pub async fn sweep(&self, limit: u64) -> Result<bool, StoreError> {
        #[derive(Deserialize)]
        struct Swept {
            more: bool,
        }
        let swept: Swept = self
            .read(&self.scripts().sweep_pool, &[limit.to_string()])
            .await?;
        Ok(swept.more)
    }

    /// Deletes a pool and all its items in one constant-time script (keys are unlinked
    /// and freed by Redis in the background), then its name from the tenant's index.
    pub async fn delete_pool(
        &self,
        idempotency: Option<&Idempotency>,
    ) -> Result<Answer<()>, StoreError> {
        let answer: Answer<Deleted> = self
            .script(&self.scripts().delete_pool, idempotency, &[])
            .await?
            .done()?;
        if !answer.replayed {
            self.store
                .unlist_pool(self.tenant, self.pool.as_str(), Unlist::Gone)
                .await?;
            // Created again since it was deleted: its name goes back.
            if self.exists().await? {
                self.store
                    .reserve_pool(self.tenant, self.pool, u64::MAX)
                    .await?;
                self.store
                    .unlist_pool(self.tenant, self.pool.as_str(), Unlist::Created)
                    .await?;
            }
        }
        Ok(Answer {
            value: (),
            replayed: answer.replayed,
        })
    }

    async fn exists(&self) -> Result<bool, StoreError> {
        let key = keys::pool_settings(self.tenant, self.pool);
        self.store
            .read_query(redis::cmd("EXISTS").arg(&key).clone(), &key)
            .await
    }

    /// Runs a write that may create the pool (`args(reserved)` builds its arguments).
    /// First as if the pool exists; if the script would create it, the pool's name is
    /// reserved in the tenant's index, under `max_pools_per_tenant`, and the script runs
    /// again, now allowed to. The common case, a pool that exists, is one call.
    pub(super) async fn creating<T: serde::de::DeserializeOwned>(
        &self,
        script: &Function,
        idempotency: Option<&Idempotency>,
        quotas: &Quotas,
        args: impl Fn(bool) -> Vec<String>,
    ) -> Result<Outcome<T>, StoreError> {
        match self.script(script, idempotency, &args(false)).await? {
            Outcome::Reserve => {}
            other => return Ok(other),
        }
        // Under `replicas:N`, a reservation not acknowledged in time has run all the same
        // (and may well be kept): the write goes on, and its answer says the outcome is
        // unknown, as a write of one step would.
        let unacknowledged = match self
            .store
            .reserve_pool(self.tenant, self.pool, quotas.max_pools_per_tenant)
            .await
        {
            Ok(()) => None,
            Err(e @ StoreError::Unacknowledged(_)) => Some(e),
            Err(e) => return Err(e),
        };
        let ran = self.script(script, idempotency, &args(true)).await;
        // A reservation whose pool did not come (the write failed) is left for a listing
        // to drop once it is old. One whose pool came is cleared; if that fails, the mark
        // only keeps listings from dropping a name whose pool exists anyway.
        if matches!(ran, Ok(_) | Err(StoreError::Unacknowledged(_)))
            && let Err(e) = self
                .store
                .unlist_pool(self.tenant, self.pool.as_str(), Unlist::Created)
                .await
        {
            tracing::warn!(pool = %self.pool, error = %e, "could not clear the pool's reservation");
        }
        match (unacknowledged, ran) {
            (Some(unacknowledged), Ok(_)) => Err(unacknowledged),
            (_, ran) => ran,
        }
    }
}

/// A script's yes/no argument.
pub(super) fn flag(yes: bool) -> String {
    if yes { "1" } else { "0" }.to_owned()
}

impl Store {
    /// Runs one of the tenant index's scripts (`lua/lib/tenant.lua`): a listing is a read
    /// (it writes only when it moves an older version's index).
    async fn tenant_index<T: serde::de::DeserializeOwned>(
        &self,
        access: Access,
        script: &Function,
        tenant: &Tenant,
        args: &[String],
    ) -> Result<T, StoreError> {
        let keys = keys::tenant_pools(tenant);
        Ok(self
            .run(access, script, &keys, &[], args)
            .await?
            .done()?
            .value)
    }

    /// Reserves a pool's name under the tenant's limit (`lua/reserve_pool.lua`).
    async fn reserve_pool(
        &self,
        tenant: &Tenant,
        pool: &PoolName,
        max_pools: u64,
    ) -> Result<(), StoreError> {
        let _: IndexChanged = self
            .tenant_index(
                Access::Write,
                &self.scripts().reserve_pool,
                tenant,
                &[pool.to_string(), max_pools.to_string()],
            )
            .await?;
        Ok(())
    }

    async fn unlist_pool(
        &self,
        tenant: &Tenant,
        pool: &str,
        what: Unlist,
    ) -> Result<(), StoreError> {
        let what = match what {
            Unlist::Created => "created",
            Unlist::Gone => "gone",
        };
        let _: IndexChanged = self
            .tenant_index(
                Access::Write,
                &self.scripts().unlist_pool,
                tenant,
                &[pool.to_owned(), what.to_owned()],
            )
            .await?;
        Ok(())
    }

    /// How many pools the tenant has (names reserved for one being created count).
    pub async fn tenant_pools(&self, tenant: &Tenant) -> Result<u64, StoreError> {
        let page: IndexPage = self
            .tenant_index(
                Access::Read,
                &self.scripts().list_pools,
                tenant,
                &[String::new(), "1".to_owned()],
            )
            .await?;
        Ok(page.total)
    }

    /// A page of the tenant's pools by name, after `after`, with their counts, and the
    /// name to list the next page after (none on the last). Names in the index without a
    /// pool (one deleted half-way, or a reservation whose pool never came) are dropped
    /// from it here; so a page may be short of `limit` and still not be the last.
    pub async fn list_pools(
        &self,
        tenant: &Tenant,
        after: Option<&PoolName>,
        limit: u64,
    ) -> Result<(Vec<PoolSummary>, Option<String>), StoreError> {
        let page: IndexPage = self
            .tenant_index(
                Access::Read,
                &self.scripts().list_pools,
                tenant,
                &[
                    after.map(ToString::to_string).unwrap_or_default(),
                    limit.to_string(),
                ],
            )
            .await?;
        let next_after = (page.names.len() as u64 == limit)
            .then(|| page.names.last().cloned())
            .flatten();
        let views = futures::future::join_all(page.names.iter().map(|name| async move {
            let pool = PoolName::parse("pool", name)?;
            self.pool(tenant, &pool).get_pool().await
        }))
        .await;
        let mut pools = Vec::with_capacity(page.names.len());
        for (name, view) in page.names.into_iter().zip(views) {
            match view {
                Ok(view) => pools.push(PoolSummary {
                    name,
                    counts: view.counts,
                }),
                Err(StoreError::Refused(r)) if r.code == ProblemCode::NotFound => {
                    let reserved_at = page.pending.get(&name).copied();
                    if reserved_at.is_none_or(|at| page.now.saturating_sub(at) > RESERVATION_MS) {
                        self.unlist_pool(tenant, &name, Unlist::Gone).await?;
                    }
                }
                Err(StoreError::Invalid(_)) => {
                    self.unlist_pool(tenant, &name, Unlist::Gone).await?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok((pools, next_after))
    }
}

/// How much one sweep call does at most, of each kind (`lua/sweep_pool.lua`), and how many
/// calls one pool gets in one pass.
pub(super) const SWEEP_LIMIT: u64 = 1000;
const SWEEP_CALLS_PER_POOL: usize = 100;
/// How many pool names a pass reads at once.
const SWEEP_PAGE: u64 = 1000;

impl Store {
    /// One pass of the sweeper over every pool of `tenants`, if no other replica made one
    /// within `interval` (a Redis key says who did): how many pools it swept, or `None` when
    /// it was another replica's turn.
    pub async fn sweep_pools(
        &self,
        tenants: &[Tenant],
        interval: std::time::Duration,
    ) -> Result<Option<usize>, StoreError> {
        let turn: Option<String> = self
            .query(
                redis::cmd("SET")
                    .arg(keys::SWEEP_TURN)
                    .arg(uuid::Uuid::new_v4().to_string())
                    .arg("NX")
                    .arg("PX")
                    .arg(interval.as_millis().max(1) as u64)
                    .clone(),
            )
            .await?;
        if turn.is_none() {
            return Ok(None);
        }
        let mut swept = 0;
        for tenant in tenants {
            // Listed as `GET /v1/pools` lists them, which also drops names whose pool never
            // came or is gone.
            let mut after: Option<PoolName> = None;
            loop {
                let (pools, next) = self.list_pools(tenant, after.as_ref(), SWEEP_PAGE).await?;
                for summary in &pools {
                    let Ok(pool) = PoolName::parse("pool", &summary.name) else {
                        continue;
                    };
                    for _ in 0..SWEEP_CALLS_PER_POOL {
                        if !self.pool(tenant, &pool).sweep(SWEEP_LIMIT).await? {
                            break;
                        }
                    }
                    swept += 1;
                }
                match next.map(|name| PoolName::parse("pool", &name)) {
                    Some(Ok(next)) => after = Some(next),
                    _ => break,
                }
            }
        }
        Ok(Some(swept))
    }
}
