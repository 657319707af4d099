//! Everything that speaks to Redis: the connections (one server, a Cluster, or Sentinel's
//! primary), running scripts with bounded timeouts and the chosen durability (`WAIT` for
//! replicas), decoding their tagged replies, and the start-up and readiness checks.
//!
//! Each public operation is one script (see `lua/`), named the same in three places:
//! `lua/claim_next.lua` ↔ [`PoolRef::claim_next`] ↔ `POST /v1/pools/{pool}/claim`.

mod backend;
mod call;
mod counters;
mod due;
mod error;
mod events;
mod failover;
mod items;
pub mod keys;
mod leases;
pub use leases::{Granted, NextClaim};
mod pools;
mod reply;
pub mod scripts;
mod sentinel;
mod settings;
mod startup;
mod wakeups;

use std::sync::Arc;

use scripts::Function;
use serde::de::DeserializeOwned;

use crate::names::{PoolName, Tenant};
use leasehold_wire::problem::ProblemCode;

use backend::Backend;
pub use backend::{ConnectionMode, NodeAuth, Topology};
use call::Access;
pub use call::Idempotency;
pub use counters::{CounterDraw, CounterFormat, PeriodKind, date_in};
pub use error::{Missing, Quota, Refusal, StoreError};
pub use events::{EVENT_ID_PATTERN, EventId, EventPage, EventRecord, Followed, Follower};
pub use items::{
    AddedItems, Available, ItemRecord, ListCursor, NewItem, Preconditions, PutItem, data_text,
};
pub use leasehold_wire::items::{EventKind, ItemState, PoolCounts, PoolStats};
pub use pools::{
    DEFAULT_MAX_EVENTS, PoolConfig, PoolSettings, PoolSummary, PoolView, Quotas, Usage,
};
pub use redis::{ClientTlsConfig, TlsCertificates};
pub use reply::Answer;
use reply::{Outcome, decode, lua_list};
pub use scripts::Scripts;
pub use settings::{Durability, RateLimit, StoreSettings};
pub use startup::{NotReady, StartError};
use wakeups::Wakeups;

/// A cheap, cloneable handle on Redis and the scripts.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Backend,
    /// The app's metrics, which its Redis calls are counted in.
    metrics: crate::metrics::Metrics,
    scripts: Scripts,
    settings: StoreSettings,
    wakeups: Arc<Wakeups>,
    feeds: events::Feeds,
    /// When each pool the replica knows of has something due (`due.rs`).
    due: due::Due,
}

impl Store {
    /// Ends every wait on this store (long polls answer with what they have, event streams
    /// end): the app is stopping, and they must not hold up the stop.
    pub fn stop_waiting(&self) {
        self.inner.wakeups.stopping.stop();
    }

    /// Completes once [`Store::stop_waiting`] was called.
    pub fn stopped_waiting(&self) -> impl Future<Output = ()> + Send + 'static {
        let store = self.clone();
        async move { store.inner.wakeups.stopping.stopped().await }
    }

    pub fn durability(&self) -> Durability {
        self.inner.settings.durability
    }

    fn scripts(&self) -> &Scripts {
        &self.inner.scripts
    }
}

/// One pool of one tenant: every pool, item and lease operation hangs off this handle.
pub struct PoolRef<'a> {
    store: &'a Store,
    tenant: &'a Tenant,
    pool: &'a PoolName,
}

impl Store {
    pub fn pool<'a>(&'a self, tenant: &'a Tenant, pool: &'a PoolName) -> PoolRef<'a> {
        PoolRef {
            store: self,
            tenant,
            pool,
        }
    }
}

impl PoolRef<'_> {
    /// Runs a write script with the pool's twelve keys and the idempotency arguments first.
    async fn script<T: DeserializeOwned>(
        &self,
        script: &Function,
        idempotency: Option<&Idempotency>,
        args: &[String],
    ) -> Result<Outcome<T>, StoreError> {
        let keys = keys::pool_keys(self.tenant, self.pool);
        let head = self.store.idempotency_args(idempotency);
        self.store
            .run(Access::Write, script, &keys, &head, args)
            .await
            .map_err(|e| self.named(e))
    }

    /// A `not_found` refusal, told what was missing by name.
    fn named(&self, error: StoreError) -> StoreError {
        match error {
            StoreError::Refused(mut refusal) => {
                refusal.detail = match refusal.missing.as_deref() {
                    Some(Missing::Pool) => Some(format!("no pool named {}", self.pool).into()),
                    Some(Missing::Item(id)) => {
                        Some(format!("no item {id} in pool {}", self.pool).into())
                    }
                    None => refusal.detail,
                };
                StoreError::Refused(refusal)
            }
            other => other,
        }
    }

    /// This replica's waiters on this pool (long-poll claims).
    fn waiters(&self) -> Arc<wakeups::PoolWaiters> {
        self.store
            .inner
            .wakeups
            .pool(keys::pool_events(self.tenant, self.pool))
    }

    /// Runs a read script (no idempotency, no waiting for replicas).
    async fn read<T: DeserializeOwned>(
        &self,
        script: &Function,
        args: &[String],
    ) -> Result<T, StoreError> {
        let keys = keys::pool_keys(self.tenant, self.pool);
        let head = self.store.idempotency_args(None);
        let answer: Answer<T> = self
            .store
            .run(Access::Read, script, &keys, &head, args)
            .await
            .and_then(Outcome::done)
            .map_err(|e| self.named(e))?;
        Ok(answer.value)
    }

    fn scripts(&self) -> &Scripts {
        &self.store.inner.scripts
    }

    /// The answer stored for a request's Idempotency-Key, as the scripts' prelude
    /// (`lua/lib/idempotency.lua`) would replay it: for work done before the script runs,
    /// which a retry must not do again (PATCH merges, and may no longer fit, on a retry).
    async fn stored_answer<T: DeserializeOwned>(
        &self,
        idempotency: &Idempotency,
    ) -> Result<Option<Answer<T>>, StoreError> {
        let key = keys::pool_answers(self.tenant, self.pool);
        let stored: Option<String> = self
            .store
            .read_query(
                redis::cmd("HGET")
                    .arg(&key)
                    .arg(keys::answer_field(&idempotency.key))
                    .clone(),
                &key,
            )
            .await?;
        // `<expires at ms>\n<fingerprint>\n<reply>`; one past its expiry is not replayed
        // (the script, which reads Redis's clock, decides at the edge).
        let Some((expires, stored)) = stored.as_deref().and_then(|s| s.split_once('\n')) else {
            return Ok(None);
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        if expires.parse::<u128>().is_ok_and(|expires| expires <= now) {
            return Ok(None);
        }
        match stored.split_once('\n') {
            Some((fingerprint, json)) if fingerprint == idempotency.fingerprint => {
                decode(json, true, &self.store.inner.metrics, |_| {})?
                    .done()
                    .map(Some)
            }
            _ => Err(StoreError::refused(ProblemCode::IdempotencyKeyReused)),
        }
    }
}

/// The URL without its password, for messages.
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}
