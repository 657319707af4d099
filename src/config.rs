//! Settings: the flags (each with its `LEASEHOLD_*` environment variable) shared by
//! `dev` and `serve`, and the validated `Settings` the app is built from.

use std::net::SocketAddr;
use std::time::Duration;

use crate::auth::Auth;
use crate::store::{ConnectionMode, Durability, Quotas, RateLimit, StoreSettings, Topology};
use leasehold_wire::numbers::MAX_SAFE_INTEGER;

/// Flags common to every command that serves the API.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// Address and port to serve the HTTP API on.
    #[arg(long, env = "LEASEHOLD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// How requests use connections to Redis: `shared` (a few multiplexed connections
    /// that all requests pipeline on), `pooled` (one connection per request at a time, as
    /// `WAIT` needs), or `auto` (`pooled` under `--durability replicas:N`, else `shared`).
    #[arg(long, env = "LEASEHOLD_REDIS_CONNECTIONS", value_enum, default_value_t)]
    pub redis_connections: ConnectionMode,
    /// Connections each replica opens to Redis: how many shared connections (default 2),
    /// or the most the pool holds (default 16; one per concurrent request at most).
    #[arg(long, env = "LEASEHOLD_REDIS_POOL_SIZE")]
    pub redis_pool_size: Option<usize>,
    /// How long one Redis call may take before the request is answered 503.
    #[arg(long, env = "LEASEHOLD_REDIS_TIMEOUT_MS", default_value_t = 2000)]
    pub redis_timeout_ms: u64,
    /// How long an answer is kept for replay under its Idempotency-Key.
    #[arg(long, env = "LEASEHOLD_IDEMPOTENCY_TTL_SECS", default_value_t = 86_400)]
    pub idempotency_ttl_secs: u64,
    /// How long a daily counter is kept after its day ends (for GET and late replays); at
    /// least 2 days, since one date is "today" somewhere on Earth for about 50 hours.
    #[arg(long, env = "LEASEHOLD_COUNTER_RETENTION_DAYS", default_value_t = 35)]
    pub counter_retention_days: u64,
    /// Requests per second each tenant may make, across all replicas together (0: no
    /// limit). Over it, requests answer 429 `rate_limited` with Retry-After.
    #[arg(long, env = "LEASEHOLD_RATE_LIMIT", default_value_t = 0)]
    pub rate_limit: u32,
    /// How many requests a tenant may make at once above its rate (default: one second's
    /// worth, the rate itself).
    #[arg(long, env = "LEASEHOLD_RATE_BURST")]
    pub rate_burst: Option<u32>,
    /// Log lines as text for people, or as JSON objects (one a line) for collectors. Each
    /// request's lines carry its id (`X-Request-Id`); the level comes from `LEASEHOLD_LOG`.
    #[arg(long, env = "LEASEHOLD_LOG_FORMAT", value_enum, default_value_t)]
    pub log_format: LogFormat,
    /// The largest request body accepted, in bytes.
    #[arg(long, env = "LEASEHOLD_MAX_BODY_BYTES", default_value_t = 2 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// How long a live event stream lasts at most; then it ends cleanly, and the client
    /// resumes with `Last-Event-ID` (an `EventSource` does so by itself).
    #[arg(long, env = "LEASEHOLD_STREAM_MAX_SECS", default_value_t = 3600)]
    pub stream_max_secs: u64,
    /// A connection must send a request's whole head within this long of being ready for
    /// one (a new connection, or a kept-alive one between requests), else it is closed.
    #[arg(long, env = "LEASEHOLD_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    pub header_timeout_secs: u64,
    /// A request's body must arrive within this long, else 408 `request_timeout`.
    #[arg(long, env = "LEASEHOLD_BODY_TIMEOUT_SECS", default_value_t = 30)]
    pub body_timeout_secs: u64,
    /// Open connections at most; one over it is closed at once. Default: the process's
    /// file-descriptor limit less room for Redis connections and logs.
    #[arg(long, env = "LEASEHOLD_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// How many pools a tenant may have (its own `max_pools=` in the key file wins).
    #[arg(long, env = "LEASEHOLD_MAX_POOLS_PER_TENANT", default_value_t = Quotas::default().max_pools_per_tenant, value_parser = clap::value_parser!(u64).range(0..=MAX_SAFE_INTEGER))]
    pub max_pools_per_tenant: u64,
    /// How many items a pool may hold, in every state (the key file's
    /// `max_items_per_pool=` wins for its tenant).
    #[arg(long, env = "LEASEHOLD_MAX_ITEMS_PER_POOL", default_value_t = Quotas::default().max_items_per_pool, value_parser = clap::value_parser!(u64).range(0..=MAX_SAFE_INTEGER))]
    pub max_items_per_pool: u64,
    /// How many bytes a pool may hold: items' ids and data, its event log and its stored
    /// answers (the key file's `max_pool_bytes=` wins for its tenant).
    #[arg(long, env = "LEASEHOLD_MAX_POOL_BYTES", default_value_t = Quotas::default().max_pool_bytes, value_parser = clap::value_parser!(u64).range(0..=MAX_SAFE_INTEGER))]
    pub max_pool_bytes: u64,
    /// How late a lease's end (or a delay's) may be applied in a pool nobody calls on: the
    /// replica that saw it scheduled sweeps the pool within this long after it is due, so
    /// the event log, its followers and the dashboard see it then. 0: only calls and the
    /// periodic sweep apply it.
    #[arg(long, env = "LEASEHOLD_EXPIRY_LAG_MS", default_value_t = 1000)]
    pub expiry_lag_ms: u64,
    /// How often the replicas sweep every pool (one replica at a time): expired leases
    /// applied, done and dead items past `keep_done_ms`/`keep_dead_ms` and expired stored
    /// answers removed, also in pools nobody calls on. 0: never.
    #[arg(long, env = "LEASEHOLD_SWEEP_INTERVAL_SECS", default_value_t = 60)]
    pub sweep_interval_secs: u64,
    /// On shutdown, how long requests under way may take to finish before every
    /// connection is closed.
    #[arg(long, env = "LEASEHOLD_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    pub shutdown_grace_secs: u64,
}

/// How connections are served: what keeps slow or idle ones from holding a replica up.
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub max_connections: usize,
    pub shutdown_grace: Duration,
}

/// File descriptors kept back from `--max-connections`' default, for Redis connections,
/// the listener, logs and the embedded Redis's pipes.
const RESERVED_FDS: u64 = 256;

/// The default cap on open connections: the file-descriptor limit less what is reserved.
fn default_max_connections() -> usize {
    let soft = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft);
    usize::try_from(soft.saturating_sub(RESERVED_FDS).max(64)).unwrap_or(usize::MAX)
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// A day's counter key is shared by every time zone whose date has that label, and one
/// date lasts about 50 hours around the world: kept less than that, a key could expire
/// while its date is still today somewhere, and start again at 1.
const MIN_COUNTER_RETENTION_DAYS: u64 = 2;

/// Everything the app is built from, validated once at start-up.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub store: StoreSettings,
    pub auth: Auth,
    pub max_body_bytes: usize,
    pub rate_limit: Option<RateLimit>,
    /// How long a live event stream lasts at most.
    pub stream_max: Duration,
    pub serve: ServeLimits,
    /// How often every pool is swept (zero: never).
    pub sweep_interval: Duration,
}

impl Settings {
    pub fn new(
        server: &ServerArgs,
        topology: Topology,
        auth: Auth,
        durability: Durability,
    ) -> Self {
        let connections = server.redis_connections.resolve(durability);
        Settings {
            listen: server.listen,
            store: StoreSettings {
                topology,
                durability,
                connections,
                pool_size: server
                    .redis_pool_size
                    .unwrap_or(connections.default_size())
                    .max(1),
                timeout: Duration::from_millis(server.redis_timeout_ms.max(1)),
                idempotency_ttl: Duration::from_secs(server.idempotency_ttl_secs.max(1)),
                counter_retention: Duration::from_secs(
                    server
                        .counter_retention_days
                        .max(MIN_COUNTER_RETENTION_DAYS)
                        * 86_400,
                ),
                tls: None,
                fence_failovers: true,
                expiry_lag: Duration::from_millis(server.expiry_lag_ms),
            },
            auth: auth.with_default_quotas(Quotas {
                max_pools_per_tenant: server.max_pools_per_tenant,
                max_items_per_pool: server.max_items_per_pool,
                max_pool_bytes: server.max_pool_bytes,
            }),
            max_body_bytes: server.max_body_bytes,
            rate_limit: (server.rate_limit > 0).then(|| RateLimit {
                per_second: server.rate_limit,
                burst: server.rate_burst.unwrap_or(server.rate_limit).max(1),
            }),
            stream_max: Duration::from_secs(server.stream_max_secs.max(1)),
            sweep_interval: Duration::from_secs(server.sweep_interval_secs),
            serve: ServeLimits {
                header_timeout: Duration::from_secs(server.header_timeout_secs.max(1)),
                body_timeout: Duration::from_secs(server.body_timeout_secs.max(1)),
                max_connections: server
                    .max_connections
                    .unwrap_or_else(default_max_connections)
                    .max(1),
                shutdown_grace: Duration::from_secs(server.shutdown_grace_secs),
            },
        }
    }
}
