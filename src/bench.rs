//! `leasehold bench`: what `bench/run.sh` needs from the server's own code, so that the
//! benchmark names no Redis key and composes no script itself. It loads pools through
//! the store's `add_items` (the script the API runs), and prints the keys of a pool or a
//! counter ([`keys`]) and the SHA of a script ([`store::Scripts`]) for the runs that call
//! the scripts directly, without the HTTP layer.

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};

use crate::metrics::Metrics;
use crate::names::{CounterName, ItemId, PoolName, Tenant};
use crate::store::{
    self, ConnectionMode, Durability, NewItem, Store, StoreSettings, Topology, keys,
};

/// Connects to one Redis as the server would (and so loads every script), with a long
/// timeout: a call adds a thousand items.
pub async fn connect(redis: &str) -> Result<Store, String> {
    let settings = StoreSettings {
        topology: Topology::Single(redis.to_owned()),
        durability: Durability::Async,
        connections: ConnectionMode::Shared,
        pool_size: ConnectionMode::Shared.default_size(),
        timeout: Duration::from_secs(30),
        idempotency_ttl: Duration::from_secs(86_400),
        counter_retention: Duration::from_secs(35 * 86_400),
        tls: None,
        fence_failovers: true,
    };
    Store::connect(settings, Metrics::new())
        .await
        .map_err(|e| format!("connecting to {redis}: {e}"))
}

/// Adds items `i<from>` to `i<from + count - 1>` (priority `i % 10`, data `{}`) to a pool,
/// `batch` a call with `in_flight` calls at once; answers the seconds it took.
pub async fn load(
    store: &Store,
    tenant: &Tenant,
    pool: &PoolName,
    from: u64,
    count: u64,
    batch: u64,
    in_flight: usize,
) -> Result<f64, String> {
    let started = Instant::now();
    let end = from + count;
    let batches = (from..end).step_by(batch.max(1) as usize).map(|first| {
        let last = (first + batch).min(end);
        (first..last)
            .map(|i| {
                Ok(NewItem {
                    id: ItemId::parse("id", &format!("i{i}")).map_err(|e| e.to_string())?,
                    priority: (i % 10) as i64,
                    data: "{}".to_owned(),
                })
            })
            .collect::<Result<Vec<_>, String>>()
    });
    futures::stream::iter(batches)
        .map(|items| async move {
            let items = items?;
            let added = store
                .pool(tenant, pool)
                .add_items(None, &items, &store::Quotas::default())
                .await
                .map_err(|e| format!("adding items to {pool}: {e}"))?;
            match added.value.existing.first() {
                None => Ok(()),
                Some(id) => Err(format!("item {id} was in {pool} already")),
            }
        })
        .buffer_unordered(in_flight.max(1))
        .try_collect::<()>()
        .await?;
    Ok(started.elapsed().as_secs_f64())
}

/// The keys a pool's scripts take, in their order, or one of them by its role (`avail`,
/// `leased`, `events`, …: the suffix of its name).
pub fn pool_keys(
    tenant: &Tenant,
    pool: &PoolName,
    role: Option<&str>,
) -> Result<Vec<String>, String> {
    let all = keys::pool_keys(tenant, pool);
    match role {
        None => Ok(all),
        Some(role) => all
            .into_iter()
            .find(|key| key.rsplit(':').next() == Some(role))
            .map(|key| vec![key])
            .ok_or_else(|| format!("a pool has no key {role:?}")),
    }
}

/// The keys `counter_next` takes for a counter without periods: its key (as the period
/// drawn and the period named) and where idempotent answers would be kept.
pub fn counter_keys(tenant: &Tenant, counter: &CounterName) -> Vec<String> {
    let key = keys::counter(tenant, counter, None);
    let [answers, answer_exp] = keys::counter_answers(tenant, counter);
    vec![key.clone(), key, answers, answer_exp]
}

/// A script's SHA as the store builds it (its file in `lua/` after its helpers); the store
/// loads every script when it connects.
pub fn script_sha(name: &str) -> Result<String, String> {
    store::Scripts::new()
        .named()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, script)| script.get_hash().to_owned())
        .ok_or_else(|| format!("no script {name:?} (one of lua/*.lua, without .lua)"))
}
