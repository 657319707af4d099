//! Pools: create or change settings, read counts and stats, list, delete.

use leasehold_wire::answers::PoolList;
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

    /// `GET /v1/pools`: this tenant's pools with their counts.
    pub async fn list_pools(&self) -> Result<Vec<PoolSummary>, Error> {
        let list: PoolList = self
            .call(Call::new(Method::GET, path(&["v1", "pools"], &[])))
            .await?;
        Ok(list.pools)
    }

    /// `DELETE /v1/pools/{pool}`: the pool and all its items.
    pub async fn delete_pool(&self, pool: &str) -> Result<(), Error> {
        let call = Call::new(Method::DELETE, path(&["v1", "pools", pool], &[]));
        self.send(call, &self.inner.policy).await.map(|_| ())
    }
}
