//! Leases: claim the next items or a named one, renew, release, complete, assign on
//! someone's behalf, requeue, and list a holder's leases.

use serde::Deserialize;

use super::{Answer, Idempotency, Store, lua_list};
use crate::error::ApiError;
use crate::names::{Holder, ItemId, PoolName, Tenant};

use super::ItemRecord;

#[derive(Deserialize)]
struct Leases {
    #[serde(deserialize_with = "lua_list")]
    leases: Vec<ItemRecord>,
}

fn opt<T: ToString>(value: Option<T>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

impl Store {
    /// Grants up to `count` of the best available items (priority, then arrival).
    pub async fn claim_next(
        &self,
        tenant: &Tenant,
        pool: &PoolName,
        idempotency: Option<&Idempotency>,
        holder: &Holder,
        count: u32,
        lease_ms: Option<u64>,
    ) -> Result<Answer<Vec<ItemRecord>>, ApiError> {
        let args = [holder.to_string(), count.to_string(), opt(lease_ms)];
        let answer: Answer<Leases> = self
            .pool_script(&self.scripts().claim_next, tenant, pool, idempotency, &args)
            .await?
            .done()?;
        Ok(Answer {
            value: answer.value.leases,
            replayed: answer.replayed,
        })
    }

    pub async fn claim_item(
        &self,
        tenant: &Tenant,
        pool: &PoolName,
        idempotency: Option<&Idempotency>,
        id: &ItemId,
        holder: &Holder,
        lease_ms: Option<u64>,
    ) -> Result<Answer<ItemRecord>, ApiError> {
        let args = [id.to_string(), holder.to_string(), opt(lease_ms)];
        self.pool_script(&self.scripts().claim_item, tenant, pool, idempotency, &args)
            .await?
            .done()
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn renew(
        &self,
        tenant: &Tenant,
        pool: &PoolName,
        idempotency: Option<&Idempotency>,
        id: &ItemId,
        holder: &Holder,
        token: u64,
        lease_ms: Option<u64>,
    ) -> Result<Answer<ItemRecord>, ApiError> {
        let args = [
            id.to_string(),
            holder.to_string(),
            token.to_string(),
            opt(lease_ms),
        ];
        self.pool_script(&self.scripts().renew, tenant, pool, idempotency, &args)
            .await?
            .done()
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn release(
        &self,
        tenant: &Tenant,
        pool: &PoolName,
        idempotency: Option<&Idempotency>,
        id: &ItemId,
        holder: &Holder,
        token: u64,
        delay_ms: Option<u64>,
        priority: Option<i64>,
    ) -> Result<Answer<ItemRecord>, ApiError> {
        let args = [
            id.to_string(),
            holder.to_string(),
            token.to_string(),
            opt(delay_ms),
            opt(priority),
        ];
        self.pool_script(&self.scripts().release, tenant, pool, idempotency, &args)
            .await?
            .done()
    }

    /// Finishes a leased item; `data` (JSON object text) replaces its data when given.
    #[allow(clippy::too_many_arguments)]
    pub async fn complete(
        &self,
        tenant: &Tenant,
        pool: &PoolName,
        idempotency: Option<&Idempotency>,
        id: &ItemId,
        holder: &Holder,
        token: u64,
        data: Option<String>,
    ) -> Result<Answer<ItemRecord>, ApiError> {
        let args = [
            id.to_string(),
            holder.to_string(),
            token.to_string(),
            data.unwrap_or_default(),
        ];
        self.pool_script(&self.scripts().complete, tenant, pool, idempotency, &args)
            .await?
            .done()
    }

    /// Assigns an item to `holder` (or unassigns it, with `None`) under a version check.
    #[allow(clippy::too_many_arguments)]
    pub async fn assign(
        &self,
        tenant: &Tenant,
        pool: &PoolName,
        idempotency: Option<&Idempotency>,
        id: &ItemId,
        holder: Option<&Holder>,
        lease_ms: Option<u64>,
        expected_version: Option<u64>,
        if_match: &str,
    ) -> Result<Answer<ItemRecord>, ApiError> {
        let args = [
            id.to_string(),
            opt(holder),
            opt(lease_ms),
            opt(expected_version),
            if_match.to_owned(),
        ];
        self.pool_script(&self.scripts().assign, tenant, pool, idempotency, &args)
            .await?
            .done()
    }

    pub async fn requeue(
        &self,
        tenant: &Tenant,
        pool: &PoolName,
        idempotency: Option<&Idempotency>,
        id: &ItemId,
        priority: Option<i64>,
    ) -> Result<Answer<ItemRecord>, ApiError> {
        let args = [id.to_string(), opt(priority)];
        self.pool_script(&self.scripts().requeue, tenant, pool, idempotency, &args)
            .await?
            .done()
    }

    /// The leases `holder` has now in this pool.
    pub async fn list_leases(
        &self,
        tenant: &Tenant,
        pool: &PoolName,
        holder: &Holder,
    ) -> Result<Vec<ItemRecord>, ApiError> {
        let args = [holder.to_string()];
        let answer: Answer<Leases> = self
            .pool_script(&self.scripts().list_leases, tenant, pool, None, &args)
            .await?
            .done()?;
        Ok(answer.value.leases)
    }
}
