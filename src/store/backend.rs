//! The three ways to reach Redis — one server, a Redis Cluster, or the primary that
//! Sentinel names — behind one connection type that the scripts run on.
//!
//! Requests either share a few multiplexed connections (the default: concurrent requests'
//! commands are pipelined together) or take one connection each from a deadpool pool (the
//! default under `--durability replicas:N`, whose `WAIT` blocks its connection). Either
//! way, a connection that timed out or met a connection-level error is discarded rather
//! than used again: after a failover, the next request connects afresh (through Sentinel,
//! to the new primary; through the Cluster, with a fresh slot map) instead of reusing a
//! stale one.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deadpool_redis::{PoolConfig, Runtime};
use redis::TlsCertificates;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, Cmd, Pipeline, RedisError, RedisFuture, Value};

use super::Durability;
use super::sentinel::Primary;

/// Where Redis is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topology {
    /// One server (which may have replicas; `--durability replicas:N` waits for them).
    Single(String),
    /// A Redis Cluster, from any of its nodes.
    Cluster(Vec<String>),
    /// The primary that these sentinels name for `master`, reached with `auth` where the
    /// servers require a user (the sentinels' own credentials are in their URLs).
    Sentinel {
        urls: Vec<String>,
        master: String,
        auth: Option<NodeAuth>,
    },
}

/// The user and password for the Redis servers Sentinel names: `user:password`, or
/// `:password` for the default user.
#[derive(Clone, PartialEq, Eq)]
pub struct NodeAuth {
    pub username: Option<String>,
    pub password: String,
}

impl std::str::FromStr for NodeAuth {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (username, password) = text
            .split_once(':')
            .ok_or("expected user:password (or :password for the default user)")?;
        Ok(NodeAuth {
            username: (!username.is_empty()).then(|| username.to_owned()),
            password: password.to_owned(),
        })
    }
}

/// Never prints the password.
impl std::fmt::Debug for NodeAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:***", self.username.as_deref().unwrap_or(""))
    }
}

impl Topology {
    /// The URLs it was given.
    pub fn urls(&self) -> &[String] {
        match self {
            Topology::Single(url) => std::slice::from_ref(url),
            Topology::Cluster(urls) | Topology::Sentinel { urls, .. } => urls,
        }
    }

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
            Topology::Sentinel { urls, master, .. } => {
                format!("sentinel {} master {master}", redact(urls))
            }
        }
    }
}

/// How requests share connections to Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ConnectionMode {
    /// `pooled` under `--durability replicas:N`, `shared` otherwise.
    #[default]
    Auto,
    /// A few multiplexed connections that every request uses at once: commands of
    /// concurrent requests travel together (pipelined) and no request waits for a
    /// connection of its own.
    Shared,
    /// A pool: each request takes a connection for itself and gives it back afterwards
    /// (checked with a PING on the way back). `WAIT` blocks the connection it is sent on,
    /// so durability `replicas:N` needs a connection per request.
    Pooled,
}

impl ConnectionMode {
    /// What `Auto` means for this durability.
    pub fn resolve(self, durability: Durability) -> ConnectionMode {
        match (self, durability) {
            (ConnectionMode::Auto, Durability::Replicas(_)) => ConnectionMode::Pooled,
            (ConnectionMode::Auto, _) => ConnectionMode::Shared,
            (mode, _) => mode,
        }
    }

    /// How many connections a replica opens unless told: two shared connections keep
    /// Redis busy (more split the pipelining); a pool needs one per concurrent request.
    pub fn default_size(self) -> usize {
        match self {
            ConnectionMode::Pooled => 16,
            _ => 2,
        }
    }
}

/// The connections of one replica to Redis, in either mode.
pub(super) struct Backend {
    connections: Connections,
    /// Through Sentinel: where the primary is.
    primary: Option<Arc<Primary>>,
    /// How many times Sentinel has switched primaries since start (as far as this replica
    /// heard): a connection handed out before the last switch is not used again.
    switches: AtomicU64,
}

enum Connections {
    Shared(Box<Shared>),
    Pooled(Pools),
}

impl Backend {
    pub fn new(
        topology: &Topology,
        tls: Option<&TlsCertificates>,
        mode: ConnectionMode,
        size: usize,
        timeout: Duration,
    ) -> Result<Self, String> {
        let primary = match topology {
            Topology::Sentinel { urls, master, auth } => Some(Arc::new(Primary::new(
                urls.clone(),
                master.clone(),
                auth.clone(),
                timeout,
            ))),
            Topology::Single(_) | Topology::Cluster(_) => None,
        };
        let connections = match mode {
            ConnectionMode::Pooled => {
                Connections::Pooled(Pools::new(topology, tls, size, timeout, primary.as_ref())?)
            }
            ConnectionMode::Shared | ConnectionMode::Auto => Connections::Shared(Box::new(
                Shared::new(topology, tls, size, timeout, primary.as_ref())?,
            )),
        };
        Ok(Backend {
            connections,
            primary,
            switches: AtomicU64::new(0),
        })
    }

    /// Connections open, and (pooled) how many of them are idle in the pool.
    pub fn status(&self) -> (usize, Option<usize>) {
        match &self.connections {
            Connections::Shared(shared) => (shared.open(), None),
            Connections::Pooled(pools) => {
                let status = pools.status();
                (status.size, Some(status.available))
            }
        }
    }

    pub async fn get(&self) -> Result<Handle<'_>, RedisError> {
        let switches = self.switches.load(Ordering::Acquire);
        let (conn, origin) = match &self.connections {
            Connections::Shared(shared) => shared.get().await?,
            // Boxed, like connecting below: these futures are large, and a request's
            // future would otherwise carry their size (and be copied with it).
            Connections::Pooled(pools) => (Box::pin(pools.get()).await?, Origin::Pool),
        };
        Ok(Handle {
            conn,
            origin,
            switches,
        })
    }

    /// Through Sentinel: where the primary is.
    pub fn primary(&self) -> Option<&Arc<Primary>> {
        self.primary.as_ref()
    }

    /// A sentinel announced that the primary is now at `address` (`host:port`): every
    /// connection open now leads to the old one, which may still be alive and believe it
    /// is primary. Idle ones are closed now, the ones in use when they are given back
    /// ([`Backend::switched_since`]); new ones go to `address`.
    pub fn primary_switched(&self, address: String) -> bool {
        if let Some(primary) = &self.primary
            && !primary.switched(address)
        {
            return false;
        }
        self.forget_connections();
        true
    }

    /// A sentinel announced that it fails over the primary at `address`: unless another
    /// primary is in use, nothing more is sent to it until that is over; connections open
    /// now are closed as for a switch (a call under way on one answers 503).
    pub fn failover_started(&self, address: String) {
        if self
            .primary
            .as_ref()
            .is_some_and(|primary| primary.failover_started(address))
        {
            self.forget_connections();
        }
    }

    /// A connection met a fault: through Sentinel, where the primary is is asked again
    /// before the next one is opened.
    pub fn fault(&self) {
        if let Some(primary) = &self.primary {
            primary.forget();
        }
    }

    fn forget_connections(&self) {
        self.switches.fetch_add(1, Ordering::AcqRel);
        match &self.connections {
            Connections::Shared(shared) => shared.forget(),
            Connections::Pooled(pools) => pools.forget_idle(),
        }
    }

    /// Whether Sentinel switched primaries, or started to fail the primary over, since
    /// `handle` was handed out.
    pub fn switched_since(&self, handle: &Handle<'_>) -> bool {
        self.switches.load(Ordering::Acquire) != handle.switches
    }
}

/// A connection in use by one request, and where it came from.
pub(super) struct Handle<'a> {
    conn: Conn,
    origin: Origin<'a>,
    /// The backend's count of primary switches when it was handed out.
    switches: u64,
}

enum Origin<'a> {
    Pool,
    Shared { slot: &'a Slot, generation: u64 },
}

impl Handle<'_> {
    /// The connection timed out or failed: it is closed rather than used again, so the
    /// next request connects afresh (after a failover: to the new primary).
    pub fn discard(self) {
        match self.origin {
            Origin::Pool => self.conn.take_from_pool(),
            Origin::Shared { slot, generation } => slot.discard(generation),
        }
    }
}

/// Opens new connections of the configured kind.
enum Connector {
    Single(redis::Client, AsyncConnectionConfig),
    Cluster(ClusterClient),
    Sentinel(Arc<Primary>),
}

/// A connection that many requests use at once (cloning shares the socket).
#[derive(Clone)]
enum SharedConn {
    Multiplexed(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl From<SharedConn> for Conn {
    fn from(conn: SharedConn) -> Conn {
        match conn {
            SharedConn::Multiplexed(c) => Conn::Multiplexed(c),
            SharedConn::Cluster(c) => Conn::Cluster(c),
        }
    }
}

/// A client for one server, trusting the given CA and presenting the client certificate
/// if there are any (else, for `rediss://`, the system's trusted roots).
pub fn client(url: &str, tls: Option<&TlsCertificates>) -> Result<redis::Client, RedisError> {
    match tls {
        Some(certificates) => redis::Client::build_with_tls(url, certificates.clone()),
        None => redis::Client::open(url),
    }
}

/// Refuses certificate files where this topology and connection mode cannot use them.
fn certificates_unsupported(what: &str) -> RedisError {
    RedisError::from((
        redis::ErrorKind::InvalidClientConfig,
        "TLS certificate files are not supported here",
        format!(
            "{what}: use rediss:// URLs with the CA in the system's trust store (or SSL_CERT_FILE) instead"
        ),
    ))
}

impl Connector {
    fn new(
        topology: &Topology,
        tls: Option<&TlsCertificates>,
        timeout: Duration,
        primary: Option<&Arc<Primary>>,
    ) -> Result<Self, RedisError> {
        Ok(match topology {
            Topology::Single(url) => Connector::Single(
                client(url, tls)?,
                AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout)),
            ),
            Topology::Cluster(urls) => {
                let mut builder = ClusterClientBuilder::new(urls.clone())
                    .connection_timeout(timeout)
                    .response_timeout(timeout);
                if let Some(certificates) = tls {
                    builder = builder.certs(certificates.clone());
                }
                Connector::Cluster(builder.build()?)
            }
            Topology::Sentinel { .. } if tls.is_some() => {
                return Err(certificates_unsupported("with Sentinel"));
            }
            Topology::Sentinel { .. } => match primary {
                Some(primary) => Connector::Sentinel(Arc::clone(primary)),
                None => {
                    return Err(RedisError::from((
                        redis::ErrorKind::InvalidClientConfig,
                        "Sentinel needs the primary's resolver",
                    )));
                }
            },
        })
    }

    async fn connect(&self) -> Result<SharedConn, RedisError> {
        Ok(match self {
            Connector::Single(client, config) => SharedConn::Multiplexed(
                client
                    .get_multiplexed_async_connection_with_config(config)
                    .await?,
            ),
            Connector::Cluster(client) => SharedConn::Cluster(client.get_async_connection().await?),
            Connector::Sentinel(primary) => SharedConn::Multiplexed(primary.connect().await?),
        })
    }
}

/// A few multiplexed connections shared by every request, handed out in turn. Each is
/// opened on first use and again after it was discarded.
pub(super) struct Shared {
    connector: Connector,
    slots: Vec<Slot>,
    next: AtomicUsize,
    /// What `Slot::last_used` counts from.
    started: Instant,
}

struct Slot {
    /// The open connection and its generation (which discards must name).
    current: Mutex<Option<(u64, SharedConn)>>,
    /// Held while connecting, so that one request connects and the others wait for it.
    connecting: tokio::sync::Mutex<()>,
    generations: AtomicU64,
    /// When a request last took this slot's connection, in ms since `Shared::started`.
    last_used: AtomicU64,
}

/// A shared connection no request took for this long is checked with a `PING` before the
/// next request's command goes on it: Redis may have closed it meanwhile (restarted, or
/// its `timeout` passed), and a dead one is then replaced while that command provably has
/// not reached Redis, rather than failing it with an unknown outcome. Under load the
/// connections are never idle this long, and nothing is added.
const IDLE_CHECK: Duration = Duration::from_secs(1);

impl Slot {
    fn current(&self) -> Option<(u64, SharedConn)> {
        let current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        current.clone()
    }

    /// Forgets the connection of `generation` (not a newer one opened since).
    fn discard(&self, generation: u64) {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if current.as_ref().is_some_and(|(g, _)| *g == generation) {
            *current = None;
        }
    }
}

impl Shared {
    fn new(
        topology: &Topology,
        tls: Option<&TlsCertificates>,
        size: usize,
        timeout: Duration,
        primary: Option<&Arc<Primary>>,
    ) -> Result<Self, String> {
        Ok(Shared {
            connector: Connector::new(topology, tls, timeout, primary)
                .map_err(|e| e.to_string())?,
            slots: (0..size.max(1))
                .map(|_| Slot {
                    current: Mutex::new(None),
                    connecting: tokio::sync::Mutex::new(()),
                    generations: AtomicU64::new(0),
                    last_used: AtomicU64::new(0),
                })
                .collect(),
            next: AtomicUsize::new(0),
            started: Instant::now(),
        })
    }

    fn open(&self) -> usize {
        self.slots
            .iter()
            .filter(|slot| slot.current().is_some())
            .count()
    }

    /// Forgets every open connection (requests using one finish on it).
    fn forget(&self) {
        for slot in &self.slots {
            *slot.current.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }

    async fn get(&self) -> Result<(Conn, Origin<'_>), RedisError> {
        let slot = &self.slots[self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len()];
        let now = self.started.elapsed().as_millis() as u64;
        let idle = now.saturating_sub(slot.last_used.swap(now, Ordering::Relaxed));
        if let Some((generation, SharedConn::Multiplexed(mut conn))) = slot.current()
            && idle >= IDLE_CHECK.as_millis() as u64
        {
            let alive = redis::cmd("PING").query_async::<String>(&mut conn).await;
            if alive.is_err() {
                slot.discard(generation);
            }
        }
        let (generation, conn) = match slot.current() {
            Some(open) => open,
            None => {
                let _connecting = slot.connecting.lock().await;
                match slot.current() {
                    Some(open) => open,
                    None => {
                        let conn = Box::pin(self.connector.connect()).await?;
                        let generation = slot.generations.fetch_add(1, Ordering::Relaxed) + 1;
                        *slot.current.lock().unwrap_or_else(|e| e.into_inner()) =
                            Some((generation, conn.clone()));
                        (generation, conn)
                    }
                }
            }
        };
        Ok((conn.into(), Origin::Shared { slot, generation }))
    }
}

/// Pools of connections, one request at a time on each.
pub(super) enum Pools {
    Single(deadpool_redis::Pool),
    Cluster(deadpool_redis::cluster::Pool),
    Sentinel(deadpool::managed::Pool<PrimaryManager>),
}

/// Opens pooled connections to the primary the sentinels name now.
pub(super) struct PrimaryManager(Arc<Primary>);

impl deadpool::managed::Manager for PrimaryManager {
    type Type = MultiplexedConnection;
    type Error = RedisError;

    async fn create(&self) -> Result<MultiplexedConnection, RedisError> {
        self.0.connect().await
    }

    /// Checked on the way back, as deadpool-redis does: nothing left in a transaction,
    /// and an answer to a PING.
    async fn recycle(
        &self,
        conn: &mut MultiplexedConnection,
        _: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<RedisError> {
        redis::pipe()
            .cmd("UNWATCH")
            .ignore()
            .cmd("PING")
            .query_async::<(String,)>(conn)
            .await?;
        Ok(())
    }
}

/// A connection of any kind.
pub(super) enum Conn {
    Multiplexed(MultiplexedConnection),
    Cluster(ClusterConnection),
    PooledSingle(deadpool_redis::Connection),
    PooledCluster(deadpool_redis::cluster::Connection),
    PooledSentinel(deadpool::managed::Object<PrimaryManager>),
}

fn pool_config(size: usize, timeout: Duration) -> PoolConfig {
    let mut config = PoolConfig::new(size);
    config.timeouts.wait = Some(timeout);
    config.timeouts.create = Some(timeout);
    config.timeouts.recycle = Some(timeout);
    config
}

impl Pools {
    pub fn new(
        topology: &Topology,
        tls: Option<&TlsCertificates>,
        size: usize,
        timeout: Duration,
        primary: Option<&Arc<Primary>>,
    ) -> Result<Self, String> {
        let runtime = Some(Runtime::Tokio1);
        let pool = pool_config(size, timeout);
        Ok(match (topology, tls) {
            (Topology::Single(url), Some(certificates)) => {
                // The client carries the certificates in its connection info.
                let info = client(url, Some(certificates))
                    .map_err(|e| e.to_string())?
                    .get_connection_info()
                    .clone();
                let manager = deadpool_redis::Manager::new(info).map_err(|e| e.to_string())?;
                Pools::Single(
                    deadpool_redis::Pool::builder(manager)
                        .config(pool)
                        .runtime(Runtime::Tokio1)
                        .build()
                        .map_err(|e| e.to_string())?,
                )
            }
            (_, Some(_)) => {
                return Err(certificates_unsupported(
                    "with pooled connections to a Cluster or through Sentinel",
                )
                .to_string());
            }
            (Topology::Single(url), None) => {
                let mut config = deadpool_redis::Config::from_url(url.clone());
                config.pool = Some(pool);
                Pools::Single(config.create_pool(runtime).map_err(|e| e.to_string())?)
            }
            (Topology::Cluster(urls), None) => {
                let mut config = deadpool_redis::cluster::Config::from_urls(urls.clone());
                config.pool = Some(pool);
                Pools::Cluster(config.create_pool(runtime).map_err(|e| e.to_string())?)
            }
            (Topology::Sentinel { .. }, None) => {
                let primary = primary.ok_or("Sentinel needs the primary's resolver")?;
                Pools::Sentinel(
                    deadpool::managed::Pool::builder(PrimaryManager(Arc::clone(primary)))
                        .config(pool)
                        .runtime(Runtime::Tokio1)
                        .build()
                        .map_err(|e| e.to_string())?,
                )
            }
        })
    }

    /// Closes every connection idle in the pool.
    fn forget_idle(&self) {
        match self {
            Pools::Single(pool) => drop(pool.retain(|_, _| false)),
            Pools::Cluster(pool) => drop(pool.retain(|_, _| false)),
            Pools::Sentinel(pool) => drop(pool.retain(|_, _| false)),
        }
    }

    fn status(&self) -> deadpool_redis::Status {
        match self {
            Pools::Single(pool) => pool.status(),
            Pools::Cluster(pool) => pool.status(),
            Pools::Sentinel(pool) => pool.status(),
        }
    }

    async fn get(&self) -> Result<Conn, RedisError> {
        Ok(match self {
            Pools::Single(pool) => Conn::PooledSingle(pool.get().await.map_err(pool_error)?),
            Pools::Cluster(pool) => Conn::PooledCluster(pool.get().await.map_err(pool_error)?),
            Pools::Sentinel(pool) => Conn::PooledSentinel(pool.get().await.map_err(pool_error)?),
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
    /// Takes a pooled connection out of its pool for good (it is closed when dropped).
    fn take_from_pool(self) {
        match self {
            Conn::PooledSingle(c) => drop(deadpool_redis::Connection::take(c)),
            Conn::PooledCluster(c) => drop(deadpool_redis::cluster::Connection::take(c)),
            Conn::PooledSentinel(c) => drop(deadpool::managed::Object::take(c)),
            Conn::Multiplexed(_) | Conn::Cluster(_) => {}
        }
    }
}

/// Runs the same call on whichever connection this is.
macro_rules! on_conn {
    ($conn:expr, $c:ident => $call:expr) => {
        match $conn {
            Conn::Multiplexed($c) => $call,
            Conn::Cluster($c) => $call,
            Conn::PooledSingle($c) => $call,
            Conn::PooledCluster($c) => $call,
            Conn::PooledSentinel($c) => $call,
        }
    };
}

impl ConnectionLike for Handle<'_> {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        on_conn!(&mut self.conn, c => c.req_packed_command(cmd))
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        on_conn!(&mut self.conn, c => c.req_packed_commands(pipeline, offset, count))
    }

    fn get_db(&self) -> i64 {
        on_conn!(&self.conn, c => c.get_db())
    }
}
