//! Start-up and readiness: connecting, checking the Redis settings that correctness depends
//! on (on every server that takes writes), and loading the scripts.

use std::sync::Arc;

use redis::RedisError;

use super::backend::{self, Backend};
use super::keys;
use super::wakeups::Wakeups;
use super::{Durability, Inner, Scripts, Store, StoreSettings, Topology, events, failover};
use crate::metrics::Metrics;

/// Why `/readyz` says not ready.
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    /// Redis is out of memory: with `noeviction` it refuses every write.
    #[error("Redis refuses writes: it is out of memory (used memory over maxmemory)")]
    OutOfMemory,
    /// Redis is out of reach, its settings changed, or the scripts could not be loaded
    /// (the cause is for the log only).
    #[error("Redis is unavailable: {0}")]
    Unavailable(String),
}

/// How long the readiness probe's key lives.
const READY_PROBE_TTL_MS: u64 = 10_000;

/// Why the store refused to start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot use Redis at {url}: {cause}")]
    Unreachable { url: String, cause: String },
    #[error(
        "Redis maxmemory-policy is '{0}', but Leasehold needs 'noeviction' (an evicted lease is a second holder): run CONFIG SET maxmemory-policy noeviction, or set it in redis.conf"
    )]
    Eviction(String),
    #[error(
        "--durability fsync needs Redis with appendonly yes and appendfsync always (found appendonly {appendonly}, appendfsync {appendfsync})"
    )]
    NotFsync {
        appendonly: String,
        appendfsync: String,
    },
    #[error(
        "--durability fsync must see that Redis has appendfsync always, which only CONFIG GET shows, and this Redis user may not run it: add +config|get to its ACL (see deploy/leasehold.acl), or choose --durability replicas:N"
    )]
    FsyncUnverifiable,
    #[error(
        "Redis {0} is too old: Leasehold's operations are a Redis Functions library, which needs Redis 7.0 or newer"
    )]
    TooOld(String),
    #[error(
        "this Redis user may not load Leasehold's Functions library: add +fcall +function|load +function|list to its ACL (see deploy/leasehold.acl)"
    )]
    MayNotLoadFunctions,
}

impl Store {
    /// Connects, checks the settings that correctness depends on, and loads the scripts.
    pub async fn connect(settings: StoreSettings, metrics: Metrics) -> Result<Self, StartError> {
        let url = settings.topology.describe();
        let unreachable = |cause: String| StartError::Unreachable {
            url: url.clone(),
            cause,
        };
        let backend = Backend::new(
            &settings.topology,
            settings.tls.as_ref(),
            settings.connections,
            settings.pool_size,
            settings.timeout,
        )
        .map_err(unreachable)?;
        let store = Store {
            inner: Arc::new(Inner {
                backend,
                metrics,
                scripts: Scripts::new(),
                wakeups: Arc::default(),
                feeds: events::Feeds::default(),
                due: super::due::Due::new(settings.expiry_lag),
                settings,
            }),
        };
        store.check_settings().await.map_err(|e| match e {
            SettingsProblem::Start(e) => e,
            SettingsProblem::Redis(e) => unreachable(e.to_string()),
        })?;
        store.load_scripts(true).await.map_err(|e| match e.code() {
            Some("NOPERM") => StartError::MayNotLoadFunctions,
            _ => unreachable(e.to_string()),
        })?;
        tokio::spawn(super::due::Due::run(Arc::downgrade(&store.inner)));
        let settings = &store.inner.settings;
        tokio::spawn(Wakeups::subscribe(
            Arc::downgrade(&store.inner.wakeups),
            settings.topology.clone(),
            settings.tls.clone(),
            settings.timeout,
            store.inner.backend.primary().cloned(),
        ));
        if let Topology::Sentinel { urls, master, .. } = &settings.topology {
            for url in urls {
                tokio::spawn(failover::follow_switches(
                    Arc::downgrade(&store.inner),
                    url.clone(),
                    master.clone(),
                    settings.timeout,
                    settings.fence_failovers,
                ));
            }
        }
        Ok(store)
    }

    /// For `/readyz`: Redis answers, the settings still hold, the scripts are loaded, and
    /// Redis takes writes (a small one to `keys::READY_PROBE`, which expires by itself).
    pub async fn ready(&self) -> Result<(), NotReady> {
        self.bounded(async {
            self.check_settings().await.map_err(|e| match e {
                SettingsProblem::Start(e) => NotReady::Unavailable(e.to_string()),
                SettingsProblem::Redis(e) => NotReady::Unavailable(e.to_string()),
            })?;
            self.load_scripts(false)
                .await
                .map_err(|e| NotReady::Unavailable(e.to_string()))?;
            self.probe_a_write().await
        })
        .await
        .map_err(|_| NotReady::Unavailable("Redis did not answer in time".to_owned()))?
    }

    async fn probe_a_write(&self) -> Result<(), NotReady> {
        let mut conn = self
            .inner
            .backend
            .get()
            .await
            .map_err(|e| NotReady::Unavailable(e.to_string()))?;
        let set = redis::cmd("SET")
            .arg(keys::READY_PROBE)
            .arg(1)
            .arg("PX")
            .arg(READY_PROBE_TTL_MS)
            .query_async::<()>(&mut conn)
            .await;
        match set {
            Ok(()) => Ok(()),
            Err(e) if e.code() == Some("OOM") => Err(NotReady::OutOfMemory),
            Err(e) => Err(NotReady::Unavailable(e.to_string())),
        }
    }

    /// Checks every server that takes writes: the one server, Sentinel's primary, or every
    /// node of a Cluster (each is asked directly; a replica may be promoted any time).
    async fn check_settings(&self) -> Result<(), SettingsProblem> {
        let mut conn = self.inner.backend.get().await?;
        if let Topology::Cluster(urls) = &self.inner.settings.topology {
            let nodes: String = redis::cmd("CLUSTER")
                .arg("NODES")
                .query_async(&mut conn)
                .await?;
            for address in cluster_node_addresses(&nodes) {
                let url = node_url(&urls[0], &address);
                let client = backend::client(&url, self.inner.settings.tls.as_ref())?;
                let mut node = client.get_multiplexed_async_connection().await?;
                self.check_server(&mut node).await?;
            }
            return Ok(());
        }
        self.check_server(&mut conn).await
    }

    /// The settings are read from `INFO`, which the Redis user of `deploy/leasehold.acl` may
    /// run (it shows no secret); only `--durability fsync` needs `CONFIG GET`, for
    /// `appendfsync`, which `INFO` does not show.
    async fn check_server<C: redis::aio::ConnectionLike>(
        &self,
        conn: &mut C,
    ) -> Result<(), SettingsProblem> {
        let version = info_field(conn, "server", "redis_version").await?;
        if too_old(&version) {
            return Err(SettingsProblem::Start(StartError::TooOld(version)));
        }
        let policy = info_field(conn, "memory", "maxmemory_policy").await?;
        if policy != "noeviction" {
            return Err(SettingsProblem::Start(StartError::Eviction(policy)));
        }
        if self.inner.settings.durability == Durability::Fsync {
            let appendonly = match info_field(conn, "persistence", "aof_enabled")
                .await?
                .as_str()
            {
                "1" => "yes",
                _ => "no",
            }
            .to_owned();
            let appendfsync = match config_get(conn, "appendfsync").await {
                Err(SettingsProblem::Redis(e)) if e.code() == Some("NOPERM") => {
                    return Err(SettingsProblem::Start(StartError::FsyncUnverifiable));
                }
                other => other?,
            };
            if appendonly != "yes" || appendfsync != "always" {
                return Err(SettingsProblem::Start(StartError::NotFsync {
                    appendonly,
                    appendfsync,
                }));
            }
        }
        Ok(())
    }

    /// Loads the Functions library (on a Cluster: on every primary): `always` at start;
    /// else only if Redis does not have it (on a Cluster, as one node answers; a node
    /// without it loads it at the first call that finds it missing).
    pub(super) async fn load_scripts(&self, always: bool) -> Result<(), RedisError> {
        let mut conn = self.inner.backend.get().await?;
        let library = self.inner.scripts.library();
        if always {
            return library.load(&mut conn).await;
        }
        let listed: redis::Value = redis::cmd("FUNCTION")
            .arg("LIST")
            .arg("LIBRARYNAME")
            .arg(library.name())
            .query_async(&mut conn)
            .await?;
        // LIBRARYNAME matches by pattern; an exact name is one library or none.
        let loaded = matches!(&listed, redis::Value::Array(libraries) if !libraries.is_empty());
        if !loaded {
            library.load(&mut conn).await?;
        }
        Ok(())
    }
}

/// Whether a Redis of this `redis_version` lacks Functions (before 7.0). A version that
/// does not read as one (a fork's own scheme) is given the benefit of the doubt: its first
/// `FUNCTION LOAD` says whether it has them.
fn too_old(version: &str) -> bool {
    let major = version
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok());
    major.is_some_and(|major| major < 7)
}

enum SettingsProblem {
    Start(StartError),
    Redis(RedisError),
}

impl From<RedisError> for SettingsProblem {
    fn from(e: RedisError) -> Self {
        SettingsProblem::Redis(e)
    }
}

/// One field of a section of `INFO` (`maxmemory_policy` of `memory`), empty if missing.
async fn info_field<C: redis::aio::ConnectionLike>(
    conn: &mut C,
    section: &str,
    field: &str,
) -> Result<String, SettingsProblem> {
    let info: String = redis::cmd("INFO").arg(section).query_async(conn).await?;
    let prefix = format!("{field}:");
    Ok(info
        .lines()
        .find_map(|line| line.strip_prefix(prefix.as_str()))
        .unwrap_or_default()
        .trim()
        .to_owned())
}

async fn config_get<C: redis::aio::ConnectionLike>(
    conn: &mut C,
    name: &str,
) -> Result<String, SettingsProblem> {
    let pair: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg(name)
        .query_async(conn)
        .await?;
    Ok(pair.get(1).cloned().unwrap_or_default())
}

/// The `host:port` of every node in a `CLUSTER NODES` answer.
fn cluster_node_addresses(nodes: &str) -> Vec<String> {
    nodes
        .lines()
        .filter_map(|line| line.split_whitespace().nth(1))
        .filter_map(|address| address.split('@').next())
        .filter(|address| !address.starts_with(':'))
        .map(str::to_owned)
        .collect()
}

/// `seed` (with its credentials and options) pointed at another node's `host:port`.
fn node_url(seed: &str, address: &str) -> String {
    match (url::Url::parse(seed), address.rsplit_once(':')) {
        (Ok(mut url), Some((host, port))) => {
            let _ = url.set_host(Some(host));
            let _ = url.set_port(port.parse().ok());
            url.to_string()
        }
        _ => format!("redis://{address}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::redacted;

    #[test]
    fn cluster_nodes_are_read_from_cluster_nodes_output() {
        let nodes = "\
07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004 slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected
67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@31002 master - 0 1426238316232 2 connected 5461-10922
e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@31001 myself,master - 0 0 1 connected 0-5460
9e2a1b5f0c7e4b5c8a1d2e3f4a5b6c7d8e9f0a1b :0@0 master,noaddr - 1426238316232 1426238316232 3 disconnected
";
        assert_eq!(
            cluster_node_addresses(nodes),
            ["127.0.0.1:30004", "127.0.0.1:30002", "127.0.0.1:30001"]
        );
    }

    #[test]
    fn redis_before_7_is_too_old_for_functions() {
        for old in ["6.2.14", "5.0.7", "2.8.24"] {
            assert!(too_old(old), "{old}");
        }
        for new in ["7.0.15", "7.2.4", "8.0.0", "255.255.255", "unknown"] {
            assert!(!too_old(new), "{new}");
        }
    }

    #[test]
    fn a_node_url_keeps_the_seed_credentials() {
        assert_eq!(
            node_url("redis://user:secret@10.0.0.1:6379/0", "10.0.0.2:7001"),
            "redis://user:secret@10.0.0.2:7001/0"
        );
        assert_eq!(redacted("redis://user:secret@h:1"), "redis://user:***@h:1");
    }
}
