//! Pools: create or change settings, read counts and stats, list, delete.

use leasehold_wire::items::{PoolCounts, PoolStats};
use serde::Deserialize;

use super::StoreError;
use super::{Answer, Idempotency, PoolRef, Store, keys};
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
}

pub use leasehold_wire::answers::{PoolConfig, PoolSummary};
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
    })
}

/// A pool as a script reports it.
#[derive(Debug, Clone, Deserialize)]
pub struct PoolView {
    #[serde(deserialize_with = "script_config")]
    pub config: PoolConfig,
    pub counts: PoolCounts,
    pub stats: PoolStats,
    pub created: Option<u64>,
    pub updated: Option<u64>,
}

#[derive(Deserialize)]
struct PutPoolReply {
    pool: PoolView,
    pool_created: bool,
}

#[derive(Deserialize)]
struct Deleted {}

impl PoolRef<'_> {
    /// Creates a pool or changes its settings; true in the answer when it was created.
    pub async fn put_pool(
        &self,
        idempotency: Option<&Idempotency>,
        settings: &PoolSettings,
    ) -> Result<Answer<(PoolView, bool)>, StoreError> {
        let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
        let args = [
            opt(settings.lease_ms),
            opt(settings.max_leases_per_holder),
            opt(settings.max_attempts),
            opt(settings.require_if_match.map(u64::from)),
            opt(settings.max_events),
        ];
        let ran = self
            .script(&self.scripts().put_pool, idempotency, &args)
            .await;
        self.register_if_ran(&ran).await;
        let answer: Answer<PutPoolReply> = ran?.done()?;
        Ok(Answer {
            value: (answer.value.pool, answer.value.pool_created),
            replayed: answer.replayed,
        })
    }

    pub async fn get_pool(&self) -> Result<PoolView, StoreError> {
        self.read(&self.scripts().get_pool, &[]).await
    }

    /// Deletes a pool and all its items in one constant-time script (keys are unlinked
    /// and freed by Redis in the background).
    pub async fn delete_pool(
        &self,
        idempotency: Option<&Idempotency>,
    ) -> Result<Answer<()>, StoreError> {
        let answer: Answer<Deleted> = self
            .script(&self.scripts().delete_pool, idempotency, &[])
            .await?
            .done()?;
        if !answer.replayed {
            self.unregister().await?;
        }
        Ok(Answer {
            value: (),
            replayed: answer.replayed,
        })
    }

    /// Adds the pool to the index after a script that may have created it ran: also when
    /// its replicas did not acknowledge it in time (it ran, and may well be kept; if it is
    /// lost instead, listing drops the name).
    pub(super) async fn register_if_ran<T>(&self, ran: &Result<T, StoreError>) {
        if matches!(ran, Ok(_) | Err(StoreError::Unacknowledged(_))) {
            self.register().await;
        }
    }

    /// The pool index lives in the tenant's slot, not the pool's, so it is written
    /// outside the pool's scripts. It is only an index: a failure to add to it is logged,
    /// not answered (the write itself succeeded), and later writes add the pool again.
    pub(super) async fn register(&self) {
        let add = redis::cmd("SADD")
            .arg(keys::tenant_pools(self.tenant))
            .arg(self.pool.as_str())
            .clone();
        if let Err(e) = self.store.query::<()>(add).await {
            tracing::warn!(pool = %self.pool, error = %e, "could not add the pool to its tenant's index");
        }
    }

    /// Drops the pool from the index, unless it exists again (created since it was deleted).
    async fn unregister(&self) -> Result<(), StoreError> {
        self.store
            .unregister_pool(self.tenant, self.pool.as_str())
            .await?;
        let exists: bool = self
            .store
            .query(
                redis::cmd("EXISTS")
                    .arg(keys::pool_settings(self.tenant, self.pool))
                    .clone(),
            )
            .await?;
        if exists {
            self.register().await;
        }
        Ok(())
    }
}

impl Store {
    /// The tenant's pools by name, with their counts. Names left in the index by a pool
    /// deleted half-way are dropped from it here.
    pub async fn list_pools(&self, tenant: &Tenant) -> Result<Vec<PoolSummary>, StoreError> {
        let index = keys::tenant_pools(tenant);
        let mut names: Vec<String> = self
            .read_query(redis::cmd("SMEMBERS").arg(&index).clone(), &index)
            .await?;
        names.sort();
        let views = futures::future::join_all(names.iter().map(|name| async move {
            let pool = PoolName::parse("pool", name)?;
            self.pool(tenant, &pool).get_pool().await
        }))
        .await;
        let mut pools = Vec::with_capacity(names.len());
        for (name, view) in names.into_iter().zip(views) {
            match view {
                Ok(view) => pools.push(PoolSummary {
                    name,
                    counts: view.counts,
                }),
                Err(StoreError::Refused(r)) if r.code == ProblemCode::NotFound => {
                    self.unregister_pool(tenant, &name).await?;
                }
                Err(StoreError::Invalid(_)) => {
                    self.unregister_pool(tenant, &name).await?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(pools)
    }

    async fn unregister_pool(&self, tenant: &Tenant, pool: &str) -> Result<(), StoreError> {
        self.query::<()>(
            redis::cmd("SREM")
                .arg(keys::tenant_pools(tenant))
                .arg(pool)
                .clone(),
        )
        .await
    }
}
