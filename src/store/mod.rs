//! Everything that speaks to Redis: the connections (one server, a Cluster, or Sentinel's
//! primary), running scripts with bounded timeouts and the chosen durability (`WAIT` for
//! replicas), decoding their tagged replies, and the start-up and readiness checks.
//!
//! Each public operation is one script (see `lua/`), named the same in three places:
//! `lua/claim_next.lua` ↔ [`PoolRef::claim_next`] ↔ `POST /v1/pools/{pool}/claim`.

mod backend;
mod counters;
mod error;
mod events;
mod failover;
mod items;
pub mod keys;
mod leases;
mod pools;
pub mod scripts;
mod wakeups;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::{ErrorKind, RedisError, Script, ServerErrorKind};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::names::{PoolName, Tenant};
use leasehold_wire::problem::{Current, ProblemCode};

use backend::{Backend, Handle};
pub use backend::{ConnectionMode, Topology};
pub use counters::{CounterDraw, CounterFormat, PeriodKind, date_in};
pub use error::{Refusal, StoreError};
pub use events::{
    EVENT_ID_PATTERN, EventId, EventKind, EventPage, EventRecord, Followed, Follower,
};
pub use items::{
    AddedItems, ItemRecord, ItemState, ListCursor, NewItem, Preconditions, PutItem, data_text,
};
pub use pools::{
    DEFAULT_MAX_EVENTS, PoolConfig, PoolCounts, PoolSettings, PoolStats, PoolSummary, PoolView,
};
pub use redis::{ClientTlsConfig, TlsCertificates};
pub use scripts::Scripts;
use wakeups::Wakeups;
pub use wakeups::{stop_waiting, stopping as stop_waiting_signal};

/// How writes are made durable before they are acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Acknowledge once the script has run (Redis persists on its own schedule).
    Async,
    /// Require Redis to fsync its append-only file on every write.
    Fsync,
    /// After each write, `WAIT` until this many replicas have it; fewer in time is a 503
    /// `durability_timeout` (outcome unknown: retry with the same Idempotency-Key).
    Replicas(u32),
}

impl FromStr for Durability {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "async" => Ok(Durability::Async),
            "fsync" => Ok(Durability::Fsync),
            _ => s
                .strip_prefix("replicas:")
                .and_then(|n| n.parse().ok())
                .filter(|n| (1..=16).contains(n))
                .map(Durability::Replicas)
                .ok_or_else(|| "expected async, fsync or replicas:N (N from 1 to 16)".to_owned()),
        }
    }
}

impl fmt::Display for Durability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Durability::Async => f.write_str("async"),
            Durability::Fsync => f.write_str("fsync"),
            Durability::Replicas(n) => write!(f, "replicas:{n}"),
        }
    }
}

/// A client's write, or a read (which may apply expired leases, as any call does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Write,
    Read,
}

/// A request's `Idempotency-Key` and the fingerprint of the request it came with.
#[derive(Debug, Clone)]
pub struct Idempotency {
    pub key: String,
    pub fingerprint: String,
}

/// A script's successful answer, and whether it was replayed from an earlier request.
#[derive(Debug)]
pub struct Answer<T> {
    pub value: T,
    pub replayed: bool,
}

/// A per-tenant rate limit: `per_second` on average, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_second: u32,
    pub burst: u32,
}

impl RateLimit {
    /// The time between two requests at the limit, in microseconds (at least 1).
    fn interval_us(self) -> u64 {
        (1_000_000 / u64::from(self.per_second.max(1))).max(1)
    }
}

/// What the store needs to know at start-up.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    pub topology: Topology,
    pub durability: Durability,
    /// Resolved: never `Auto`.
    pub connections: ConnectionMode,
    pub pool_size: usize,
    pub timeout: Duration,
    pub idempotency_ttl: Duration,
    pub counter_retention: Duration,
    /// The CA to trust and the client certificate to present over `rediss://`, when not
    /// the system's roots and no client certificate.
    pub tls: Option<TlsCertificates>,
}

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
}

/// A cheap, cloneable handle on Redis and the scripts.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Backend,
    scripts: Scripts,
    settings: StoreSettings,
    wakeups: Arc<Wakeups>,
    feeds: events::Feeds,
}

/// The tagged reply every script returns: `ok`, a refusal (`err`), or `retry`.
#[derive(Deserialize)]
struct Reply<T> {
    ok: Option<T>,
    err: Option<ProblemCode>,
    current: Option<Current>,
    limit: Option<u64>,
    retry: Option<u64>,
    /// Leases this call ended because their time ran out.
    expired: Option<u64>,
}

/// A decoded reply before refusals become errors: scripts that can ask for a retry
/// answer `Retry` with the time Redis saw.
enum Outcome<T> {
    Done(Answer<T>),
    Retry(u64),
}

impl Store {
    /// Connects, checks the settings that correctness depends on, and loads the scripts.
    pub async fn connect(settings: StoreSettings) -> Result<Self, StartError> {
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
                scripts: Scripts::new(),
                settings,
                wakeups: Arc::default(),
                feeds: events::Feeds::default(),
            }),
        };
        store.check_settings().await.map_err(|e| match e {
            SettingsProblem::Start(e) => e,
            SettingsProblem::Redis(e) => unreachable(e.to_string()),
        })?;
        store
            .load_scripts()
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let settings = &store.inner.settings;
        tokio::spawn(Wakeups::subscribe(
            Arc::downgrade(&store.inner.wakeups),
            settings.topology.clone(),
            settings.tls.clone(),
            settings.timeout,
        ));
        if let Topology::Sentinel { urls, master } = &settings.topology {
            for url in urls {
                tokio::spawn(failover::follow_switches(
                    Arc::downgrade(&store.inner),
                    url.clone(),
                    master.clone(),
                    settings.timeout,
                ));
            }
        }
        Ok(store)
    }

    pub fn durability(&self) -> Durability {
        self.inner.settings.durability
    }

    /// For `/readyz`: Redis answers, the settings still hold, the scripts are loaded.
    pub async fn ready(&self) -> Result<(), String> {
        self.bounded(async {
            self.check_settings().await.map_err(|e| match e {
                SettingsProblem::Start(e) => e.to_string(),
                SettingsProblem::Redis(e) => e.to_string(),
            })?;
            self.load_scripts().await.map_err(|e| e.to_string())
        })
        .await
        .map_err(|_| "Redis did not answer in time".to_owned())?
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

    async fn check_server<C: redis::aio::ConnectionLike>(
        &self,
        conn: &mut C,
    ) -> Result<(), SettingsProblem> {
        let policy = config_get(conn, "maxmemory-policy").await?;
        if policy != "noeviction" {
            return Err(SettingsProblem::Start(StartError::Eviction(policy)));
        }
        if self.inner.settings.durability == Durability::Fsync {
            let appendonly = config_get(conn, "appendonly").await?;
            let appendfsync = config_get(conn, "appendfsync").await?;
            if appendonly != "yes" || appendfsync != "always" {
                return Err(SettingsProblem::Start(StartError::NotFsync {
                    appendonly,
                    appendfsync,
                }));
            }
        }
        Ok(())
    }

    /// Loads every script that is not loaded yet (on a Cluster: on every node).
    async fn load_scripts(&self) -> Result<(), RedisError> {
        let mut conn = self.inner.backend.get().await?;
        let hashes: Vec<&str> = self
            .inner
            .scripts
            .all()
            .iter()
            .map(|s| s.get_hash())
            .collect();
        let loaded: Vec<bool> = redis::cmd("SCRIPT")
            .arg("EXISTS")
            .arg(&hashes)
            .query_async(&mut conn)
            .await?;
        for (script, loaded) in self.inner.scripts.all().iter().zip(loaded) {
            if !loaded {
                script.load_async(&mut conn).await?;
            }
        }
        Ok(())
    }

    fn scripts(&self) -> &Scripts {
        &self.inner.scripts
    }

    fn idempotency_args(&self, idempotency: Option<&Idempotency>) -> [String; 2] {
        match idempotency {
            Some(i) => [
                i.fingerprint.clone(),
                self.inner.settings.idempotency_ttl.as_millis().to_string(),
            ],
            None => [String::new(), String::new()],
        }
    }

    /// Runs one script under the request timeout and decodes its tagged reply.
    ///
    /// Under `replicas:N`, no answer leaves before N replicas have everything it could
    /// reflect: a write only once they have it (else 503 `durability_timeout`), and a read
    /// (or a replayed answer) only once they have all the state it read (else 503
    /// `backend_unavailable`). A primary Sentinel has replaced, still believing it is primary,
    /// has lost its replicas: it answers nothing, instead of state a failover takes back.
    async fn run<T: DeserializeOwned>(
        &self,
        access: Access,
        script: &Script,
        keys: &[String],
        head: &[String],
        args: &[String],
    ) -> Result<Outcome<T>, StoreError> {
        let started = Instant::now();
        let (json, replayed) = self
            .with_connection(async |conn: &mut Handle<'_>| {
                let mut invocation = script.prepare_invoke();
                for key in keys {
                    invocation.key(key);
                }
                for arg in head.iter().chain(args) {
                    invocation.arg(arg);
                }
                let reply: (String, bool) =
                    invocation.invoke_async(conn).await.map_err(backend_error)?;
                self.acknowledged(conn, access, &keys[0]).await?;
                Ok(reply)
            })
            .await?;
        metrics::histogram!(crate::metrics::REDIS_SECONDS, "script" => self.scripts().name_of(script))
            .record(started.elapsed().as_secs_f64());
        decode(&json, replayed)
    }

    /// Under `replicas:N`, waits until N replicas have everything the primary holding
    /// `key` had when the call on `conn` before this ran; fewer in time is an error.
    /// Elsewhere, nothing to wait for.
    ///
    /// `WAIT` counts a connection's own last write: after a call that wrote nothing (a
    /// read, an answer replayed, a claim that found nothing) it would count an older write,
    /// or none, and pass at once. So a tiny write to `key`'s slot goes first (in the same
    /// round trip): the replicas that have it have every write before it, and the primary
    /// that holds the slot, whichever node that is, is the one asked.
    async fn acknowledged(
        &self,
        conn: &mut Handle<'_>,
        access: Access,
        key: &str,
    ) -> Result<(), StoreError> {
        let Durability::Replicas(wanted) = self.durability() else {
            return Ok(());
        };
        let wait_ms = (self.inner.settings.timeout / 2).as_millis() as u64;
        // A WAIT that fails (a primary mid-failover, a demoted one refusing the write) has
        // confirmed nothing.
        let acked = redis::pipe()
            .cmd("SET")
            .arg(keys::ack(key))
            .arg(1)
            .arg("PX")
            .arg(ACK_KEY_TTL_MS)
            .ignore()
            .cmd("WAIT")
            .arg(wanted)
            .arg(wait_ms)
            .query_async::<(u32,)>(conn)
            .await
            .map_or(0, |(acked,)| acked);
        if acked >= wanted {
            return Ok(());
        }
        let cause = format!("{acked} of {wanted} replicas acknowledged within {wait_ms} ms");
        Err(match access {
            Access::Write => StoreError::Unacknowledged(cause),
            Access::Read => StoreError::Unavailable(cause),
        })
    }

    /// Admits one request of `tenant` under `limit`, or refuses it with 429 and when to
    /// come back. The limiter's state is in Redis, so the limit holds for all replicas
    /// together. It is not waited on under `replicas:N`: losing it in a failover only
    /// forgets some of the tenant's recent requests.
    pub async fn admit(&self, tenant: &Tenant, limit: RateLimit) -> Result<(), StoreError> {
        let script = &self.scripts().rate_limit;
        let key = keys::rate_limit(tenant);
        let started = Instant::now();
        let (admitted, wait_us): (bool, u64) = self
            .with_connection(async |conn: &mut Handle<'_>| {
                script
                    .key(&key)
                    .arg(limit.interval_us())
                    .arg(limit.burst)
                    .invoke_async(conn)
                    .await
                    .map_err(backend_error)
            })
            .await?;
        metrics::histogram!(crate::metrics::REDIS_SECONDS, "script" => "rate_limit")
            .record(started.elapsed().as_secs_f64());
        if admitted {
            Ok(())
        } else {
            Err(StoreError::RateLimited {
                retry_after: Duration::from_micros(wait_us),
            })
        }
    }

    /// Redis's clock, in milliseconds since the epoch: the one clock every replica agrees on.
    pub async fn redis_time_ms(&self) -> Result<i64, StoreError> {
        let (secs, micros): (i64, i64) = self.query(redis::cmd("TIME")).await?;
        Ok(secs * 1000 + micros / 1000)
    }

    /// Runs a plain command under the request timeout, for what need not be acknowledged
    /// by replicas: Redis's clock, the pool index's upkeep.
    async fn query<T: redis::FromRedisValue>(&self, cmd: redis::Cmd) -> Result<T, StoreError> {
        self.with_connection(async |conn: &mut Handle<'_>| {
            cmd.query_async(conn).await.map_err(backend_error)
        })
        .await
    }

    /// Runs a plain read of `key` (no script needed) under the request timeout; under
    /// `replicas:N`, answered only once N replicas have the state it read.
    async fn read_query<T: redis::FromRedisValue>(
        &self,
        cmd: redis::Cmd,
        key: &str,
    ) -> Result<T, StoreError> {
        self.with_connection(async |conn: &mut Handle<'_>| {
            let value = cmd.query_async(conn).await.map_err(backend_error)?;
            self.acknowledged(conn, Access::Read, key).await?;
            Ok(value)
        })
        .await
    }

    /// Runs `work` on a pooled connection, bounded by the request timeout: a stalled Redis
    /// answers 503 fast instead of hanging.
    ///
    /// A connection that met a fault (it timed out, failed, was refused as a replica's, or
    /// its replicas did not acknowledge), or that was open when Sentinel switched primaries,
    /// is closed rather than used again: the next call connects afresh, to the primary the
    /// sentinels name now. A primary that was replaced but still believes it is primary
    /// answers its old connections without error, until they are dropped.
    async fn with_connection<R>(
        &self,
        work: impl AsyncFnOnce(&mut Handle<'_>) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let _in_flight = InFlight::start();
        let timeout = self.inner.settings.timeout;
        let result = async {
            let mut conn = self
                .bounded(self.inner.backend.get())
                .await?
                .map_err(backend_error)?;
            let result = tokio::time::timeout(timeout, work(&mut conn))
                .await
                .unwrap_or_else(|_| Err(StoreError::Unavailable(TIMED_OUT.to_owned())));
            let faulted = matches!(
                result,
                Err(StoreError::Unavailable(_) | StoreError::Unacknowledged(_))
            );
            if faulted || self.inner.backend.switched_since(&conn) {
                conn.discard();
            }
            result
        }
        .await;
        if let Err(error) = &result {
            let kind = match error {
                StoreError::Unavailable(cause) if cause == TIMED_OUT => "timeout",
                StoreError::Unavailable(_) => "unavailable",
                StoreError::Unacknowledged(_) => "unacknowledged",
                _ => "internal",
            };
            metrics::counter!(crate::metrics::REDIS_ERRORS, "kind" => kind).increment(1);
        }
        result
    }

    /// Sets the connection gauges (called when metrics are scraped).
    pub fn record_connection_gauges(&self) {
        let (open, idle) = self.inner.backend.status();
        metrics::gauge!(crate::metrics::REDIS_CONNECTIONS, "state" => "open").set(open as f64);
        if let Some(idle) = idle {
            metrics::gauge!(crate::metrics::REDIS_CONNECTIONS, "state" => "idle").set(idle as f64);
        }
    }

    /// Every Redis call is bounded: a stalled Redis answers 503 fast instead of hanging.
    async fn bounded<F: Future>(&self, work: F) -> Result<F::Output, StoreError> {
        tokio::time::timeout(self.inner.settings.timeout, work)
            .await
            .map_err(|_| StoreError::Unavailable(TIMED_OUT.to_owned()))
    }
}

/// How long the key a read writes before `WAIT` (see [`Store::acknowledged`]) stays.
const ACK_KEY_TTL_MS: u64 = 60_000;

/// Why a call that took longer than the request timeout failed.
const TIMED_OUT: &str = "Redis call timed out";

/// Counts a Redis call in the in-flight gauge while it lives.
struct InFlight;

impl InFlight {
    fn start() -> InFlight {
        metrics::gauge!(crate::metrics::REDIS_IN_FLIGHT).increment(1.0);
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::gauge!(crate::metrics::REDIS_IN_FLIGHT).decrement(1.0);
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
    /// Runs a write script with the pool's ten keys and the idempotency arguments first.
    async fn script<T: DeserializeOwned>(
        &self,
        script: &Script,
        idempotency: Option<&Idempotency>,
        args: &[String],
    ) -> Result<Outcome<T>, StoreError> {
        let keys = keys::pool_keys(self.tenant, self.pool, idempotency.map(|i| i.key.as_str()));
        let head = self.store.idempotency_args(idempotency);
        self.store
            .run(Access::Write, script, &keys, &head, args)
            .await
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
        script: &Script,
        args: &[String],
    ) -> Result<T, StoreError> {
        let keys = keys::pool_keys(self.tenant, self.pool, None);
        let head = self.store.idempotency_args(None);
        let answer: Answer<T> = self
            .store
            .run(Access::Read, script, &keys, &head, args)
            .await?
            .done()?;
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
        let key = keys::pool_idempotency(self.tenant, self.pool, &idempotency.key);
        let stored: Option<String> = self
            .store
            .read_query(redis::cmd("GET").arg(&key).clone(), &key)
            .await?;
        let Some(stored) = stored else {
            return Ok(None);
        };
        match stored.split_once('\n') {
            Some((fingerprint, json)) if fingerprint == idempotency.fingerprint => {
                decode(json, true)?.done().map(Some)
            }
            _ => Err(StoreError::refused(ProblemCode::IdempotencyKeyReused)),
        }
    }
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

/// Whether Redis refused the user a command or key inside a script (an ACL without a
/// right that `deploy/leasehold.acl` lists): Redis's setup, not a bug of the script. Redis 7
/// answers that with a plain `ERR`, so only the message tells.
fn lacks_a_right(e: &RedisError) -> bool {
    e.detail()
        .is_some_and(|detail| detail.contains("The user executing the script can't"))
}

/// Redis faults become 503 (retry with the same Idempotency-Key), except errors raised by
/// a script itself, which are bugs of ours (500). Neither carries Redis's text to clients.
fn backend_error(e: RedisError) -> StoreError {
    let script_fault = matches!(
        e.kind(),
        ErrorKind::Server(ServerErrorKind::ResponseError)
            | ErrorKind::UnexpectedReturnType
            | ErrorKind::Parse
    ) && !matches!(
        e.code(),
        Some(
            "OOM"
                | "BUSY"
                | "LOADING"
                | "READONLY"
                | "MASTERDOWN"
                | "CLUSTERDOWN"
                | "TRYAGAIN"
                | "NOREPLICAS"
                | "NOPERM"
        )
    ) && !lacks_a_right(&e);
    if script_fault {
        StoreError::Internal(e.to_string())
    } else {
        StoreError::Unavailable(e.to_string())
    }
}

fn decode<T: DeserializeOwned>(json: &str, replayed: bool) -> Result<Outcome<T>, StoreError> {
    let reply: Reply<T> = serde_json::from_str(json)
        .map_err(|e| StoreError::Internal(format!("undecodable script reply: {e}: {json}")))?;
    if let (Some(expired), false) = (reply.expired, replayed) {
        metrics::counter!(crate::metrics::LEASES_EXPIRED).increment(expired);
    }
    if let Some(value) = reply.ok {
        return Ok(Outcome::Done(Answer { value, replayed }));
    }
    if let Some(now) = reply.retry {
        return Ok(Outcome::Retry(now));
    }
    match reply.err {
        Some(code) if code.is_refusal() => Err(StoreError::Refused(Refusal {
            code,
            current: reply.current,
            limit: reply.limit,
            replayed,
        })),
        Some(code) => Err(StoreError::Internal(format!(
            "a script refused with {code}, which is no refusal: {json}"
        ))),
        None => Err(StoreError::Internal(format!(
            "script reply without outcome: {json}"
        ))),
    }
}

impl<T> Outcome<T> {
    /// For scripts that never ask for a retry.
    fn done(self) -> Result<Answer<T>, StoreError> {
        match self {
            Outcome::Done(answer) => Ok(answer),
            Outcome::Retry(_) => Err(StoreError::Internal("unexpected retry reply".to_owned())),
        }
    }
}

/// Empty Lua tables encode as `{}`; lists in replies accept that as an empty list.
fn lua_list<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum List<T> {
        Items(Vec<T>),
        Empty(serde::de::IgnoredAny),
    }
    Ok(match List::deserialize(deserializer)? {
        List::Items(items) => items,
        List::Empty(_) => Vec::new(),
    })
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn a_node_url_keeps_the_seed_credentials() {
        assert_eq!(
            node_url("redis://user:secret@10.0.0.1:6379/0", "10.0.0.2:7001"),
            "redis://user:secret@10.0.0.2:7001/0"
        );
        assert_eq!(redacted("redis://user:secret@h:1"), "redis://user:***@h:1");
    }
}
