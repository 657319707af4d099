//! The three ways to reach Redis — one server, a Redis Cluster, or the primary that
//! Sentinel names — behind one connection type that the scripts run on.
//!
//! Connections come from a deadpool pool of each kind. A connection that timed out or met
//! a connection-level error is discarded rather than returned to the pool: after a
//! failover, the next request connects afresh (through Sentinel, to the new primary;
//! through the Cluster, with a fresh slot map) instead of reusing a stale one.

use std::time::Duration;

use deadpool_redis::{PoolConfig, Runtime};
use redis::aio::ConnectionLike;
use redis::{Cmd, Pipeline, RedisError, RedisFuture, Value};

/// Where Redis is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topology {
    /// One server (which may have replicas; `--durability replicas:N` waits for them).
    Single(String),
    /// A Redis Cluster, from any of its nodes.
    Cluster(Vec<String>),
    /// The primary that these sentinels name for `master`.
    Sentinel { urls: Vec<String>, master: String },
}

impl Topology {
    /// The URLs, for messages (passwords hidden).
    pub fn describe(&self) -> String {
        let redact = |urls: &[String]| {
            urls.iter()
                .map(|u| super::redacted(u))
                .collect::<Vec<_>>()
                .join(",")
        };
        match self {
            Topology::Single(url) => super::redacted(url),
            Topology::Cluster(urls) => format!("cluster {}", redact(urls)),
            Topology::Sentinel { urls, master } => {
                format!("sentinel {} master {master}", redact(urls))
            }
        }
    }
}

pub(super) enum Pools {
    Single(deadpool_redis::Pool),
    Cluster(deadpool_redis::cluster::Pool),
    Sentinel(deadpool_redis::sentinel::Pool),
}

/// A pooled connection of any kind.
pub(super) enum Conn {
    Single(deadpool_redis::Connection),
    Cluster(deadpool_redis::cluster::Connection),
    Sentinel(deadpool_redis::sentinel::Connection),
}

fn pool_config(size: usize, timeout: Duration) -> PoolConfig {
    let mut config = PoolConfig::new(size);
    config.timeouts.wait = Some(timeout);
    config.timeouts.create = Some(timeout);
    config.timeouts.recycle = Some(timeout);
    config
}

impl Pools {
    pub fn new(topology: &Topology, size: usize, timeout: Duration) -> Result<Self, String> {
        let runtime = Some(Runtime::Tokio1);
        let pool = pool_config(size, timeout);
        Ok(match topology {
            Topology::Single(url) => {
                let mut config = deadpool_redis::Config::from_url(url.clone());
                config.pool = Some(pool);
                Pools::Single(config.create_pool(runtime).map_err(|e| e.to_string())?)
            }
            Topology::Cluster(urls) => {
                let mut config = deadpool_redis::cluster::Config::from_urls(urls.clone());
                config.pool = Some(pool);
                Pools::Cluster(config.create_pool(runtime).map_err(|e| e.to_string())?)
            }
            Topology::Sentinel { urls, master } => {
                let mut config = deadpool_redis::sentinel::Config::from_urls(
                    urls.clone(),
                    master.clone(),
                    deadpool_redis::sentinel::SentinelServerType::Master,
                );
                config.pool = Some(pool);
                Pools::Sentinel(config.create_pool(runtime).map_err(|e| e.to_string())?)
            }
        })
    }

    pub async fn get(&self) -> Result<Conn, RedisError> {
        Ok(match self {
            Pools::Single(pool) => Conn::Single(pool.get().await.map_err(pool_error)?),
            Pools::Cluster(pool) => Conn::Cluster(pool.get().await.map_err(pool_error)?),
            Pools::Sentinel(pool) => Conn::Sentinel(pool.get().await.map_err(pool_error)?),
        })
    }
}

/// Every kind of pool fails with the same error type; a backend error is Redis's own.
fn pool_error(e: deadpool_redis::PoolError) -> RedisError {
    match e {
        deadpool_redis::PoolError::Backend(e) => e,
        other => RedisError::from(std::io::Error::other(other.to_string())),
    }
}

impl Conn {
    /// Takes the connection out of its pool for good (it is closed when dropped).
    pub fn discard(self) {
        match self {
            Conn::Single(c) => drop(deadpool_redis::Connection::take(c)),
            Conn::Cluster(c) => drop(deadpool_redis::cluster::Connection::take(c)),
            Conn::Sentinel(c) => drop(deadpool_redis::sentinel::Connection::take(c)),
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
            Conn::Sentinel(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Sentinel(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
            Conn::Sentinel(c) => c.get_db(),
        }
    }
}
