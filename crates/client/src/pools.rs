//! Pools: create or change settings, read counts and stats, list, delete.

use leasehold_wire::answers::{PoolList, TenantInfo};
use reqwest::Method;

use super::transport::Call;
use super::{Client, Error, Pool, PoolSettings, PoolSummary, json_call, path};

impl Client {
    /// `PUT /v1/pools/{pool}`: creates the pool or changes its settings; the pool, and
    /// whether it was created.
    pub async fn put_pool(
        &self,
        pool: &str,
        settings: &PoolSettings,
    ) -> Result<(Pool, bool), Error> {
        let call = json_call(Method::PUT, path(&["v1", "pools", pool], &[]), settings)?;
        let answer = self.send(call, &self.inner.policy).await?;
        Ok((super::decode(&answer)?, super::created(&answer)))
    }

    /// `GET /v1/pools/{pool}`: settings, counts by state, and stats.
    pub async fn get_pool(&self, pool: &str) -> Result<Pool, Error> {
        self.call(Call::new(Method::GET, path(&["v1", "pools", pool], &[])))
            .await
    }

    /// `GET /v1/pools`, every page: all this tenant's pools with their counts, by name.
    pub async fn list_pools(&self) -> Result<Vec<PoolSummary>, Error> {
        let mut pools = Vec::new();
        let mut after = None;
        loop {
            let page = self.list_pools_page(after.as_deref(), None).await?;
            pools.extend(page.pools);
            match page.next_after {
                Some(next) => after = Some(next),
                None => return Ok(pools),
            }
        }
    }

    /// `GET /v1/pools?after=&limit=`: one page of this tenant's pools by name (up to
    /// `limit`, default 100, at most 1000), and `next_after` for the next.
    pub async fn list_pools_page(
        &self,
        after: Option<&str>,
        limit: Option<u32>,
    ) -> Result<PoolList, Error> {
        let mut query = Vec::new();
        if let Some(after) = after {
            query.push(("after", after.to_owned()));
        }
        if let Some(limit) = limit {
            query.push(("limit", limit.to_string()));
        }
        self.call(Call::new(Method::GET, path(&["v1", "pools"], &query)))
            .await
    }

    /// `GET /v1/tenant`: this tenant's pool count and the limits its writes are held to.
    pub async fn tenant(&self) -> Result<TenantInfo, Error> {
        self.call(Call::new(Method::GET, path(&["v1", "tenant"], &[])))
            .await
    }

    /// `DELETE /v1/pools/{pool}`: the pool and all its items.
    pub async fn delete_pool(&self, pool: &str) -> Result<(), Error> {
        let call = Call::new(Method::DELETE, path(&["v1", "pools", pool], &[]));
        self.send(call, &self.inner.policy).await.map(|_| ())
    }
}
