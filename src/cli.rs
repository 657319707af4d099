//! The command line: `dev` (the default), `serve`, `keygen`, and the tools `contend` and
//! `bench`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::ServerArgs;
use crate::store::{Durability, NodeAuth};

/// Share out work among many app instances without overlap: leases, version-checked
/// items and daily counters, in Redis.
#[derive(Debug, Parser)]
#[command(name = "leasehold", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// With no command, `leasehold` runs `dev`.
    #[command(flatten)]
    pub dev: DevArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run with an embedded redis-server (AOF on, data in --data-dir), anonymous tenant `dev`.
    Dev(DevArgs),
    /// Run against your Redis, for production: API keys required.
    Serve(ServeArgs),
    /// Print a new API key for a tenant (first line) and its key-file entry (second line).
    Keygen(KeygenArgs),
    /// Point many parallel clients at a deployment and check that nothing overlapped:
    /// no item held twice, no counter value issued twice, no acknowledged write lost.
    Contend(ContendArgs),
    /// Remove the Functions libraries of other Leasehold versions from one Redis server,
    /// once a rolling upgrade is over (replicas of each version call their own library, so
    /// none is removed by a replica): every `leasehold_*` library but this build's. Needs a
    /// user with +function|list and +function|delete (not the service's); on a Cluster,
    /// run it against each primary.
    PruneFunctions(PruneArgs),
    /// What the benchmark (bench/run.sh) takes from this binary: pools loaded through the
    /// store, and the key names and function names of the runs that call Redis directly.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Clone, Subcommand)]
pub enum BenchCommand {
    /// Add items i<from>.. (priority i % 10, data {}) to a pool, 1000 a call through the
    /// store's add_items script; prints the seconds it took.
    Load {
        /// The Redis to load (one server).
        #[arg(long, default_value = "redis://127.0.0.1:6379")]
        redis: String,
        #[arg(long, default_value = "dev")]
        tenant: String,
        #[arg(long)]
        pool: String,
        /// How many items.
        #[arg(long)]
        items: u64,
        /// The first item's number.
        #[arg(long, default_value_t = 1)]
        from: u64,
    },
    /// Print the keys a pool's scripts take (in their order), or one of them by its role
    /// (--key avail, leased, events, ...); or those of a counter without periods.
    Keys {
        #[arg(long, default_value = "dev")]
        tenant: String,
        #[arg(long, conflicts_with = "counter", required_unless_present = "counter")]
        pool: Option<String>,
        #[arg(long, requires = "pool")]
        key: Option<String>,
        #[arg(long)]
        counter: Option<String>,
    },
    /// Run items through add → claim → complete (one in a hundred released once, so that
    /// it dies) on a new pool of a running server, printing Redis's used_memory as it
    /// goes, then how much it grew after the first minute.
    Soak {
        /// The server.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// Its Redis.
        #[arg(long, default_value = "redis://127.0.0.1:6379")]
        redis: String,
        #[arg(long, default_value_t = 1_000_000)]
        items: u64,
        /// The pool's keep_done_ms and keep_dead_ms; `forever` for none (the control).
        #[arg(long, default_value = "10000")]
        keep_ms: String,
        #[arg(long, default_value_t = 16)]
        workers: usize,
        /// Seconds between samples.
        #[arg(long, default_value_t = 10)]
        every: u64,
        /// Seconds after which the flow is taken as settled.
        #[arg(long, default_value_t = 60)]
        warm: u64,
    },
    /// Make the heaviest requests the API takes against a running server (whose Redis
    /// this sets to log every call) and print the slowest call of each script.
    Budget {
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        #[arg(long, default_value = "redis://127.0.0.1:6379")]
        redis: String,
    },
    /// Measure what each operation costs Redis (`INFO commandstats`, `FCALL` time per
    /// call) through a running server's HTTP API, against minimal scripts that make the
    /// same writes on the same Redis. The server must be alone on its Redis, with
    /// `--sweep-interval-secs 0` and no rate limit.
    Cost {
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        #[arg(long, default_value = "redis://127.0.0.1:6379")]
        redis: String,
        /// Calls of each operation.
        #[arg(long, default_value_t = 2000)]
        calls: u64,
    },
    /// Connect to Redis (which loads the Functions library) and print the name FCALL calls
    /// one operation by, named after its file in lua/.
    Function {
        #[arg(long, default_value = "redis://127.0.0.1:6379")]
        redis: String,
        operation: String,
    },
}

#[derive(Debug, Clone, clap::Args)]
pub struct DevArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Where the embedded Redis keeps its data.
    #[arg(long, env = "LEASEHOLD_DATA_DIR", default_value = "./.leasehold")]
    pub data_dir: PathBuf,
    /// The redis-server program to start.
    #[arg(long, env = "LEASEHOLD_REDIS_SERVER", default_value = "redis-server")]
    pub redis_server: PathBuf,
    /// Also accept the keys in this file (requests without a key are tenant `dev`).
    #[arg(long, env = "LEASEHOLD_API_KEYS")]
    pub api_keys: Option<PathBuf>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The Redis to keep all state in (one server).
    #[arg(
        long,
        env = "LEASEHOLD_REDIS",
        default_value = "redis://127.0.0.1:6379"
    )]
    pub redis: String,
    /// A Redis Cluster instead: any of its nodes, comma-separated.
    #[arg(
        long,
        env = "LEASEHOLD_REDIS_CLUSTER",
        value_delimiter = ',',
        conflicts_with = "redis_sentinel"
    )]
    pub redis_cluster: Vec<String>,
    /// Sentinel instead: the sentinels, comma-separated; Leasehold follows the primary
    /// they name for --sentinel-master through failovers.
    #[arg(
        long,
        env = "LEASEHOLD_REDIS_SENTINEL",
        value_delimiter = ',',
        requires = "sentinel_master"
    )]
    pub redis_sentinel: Vec<String>,
    /// The name the sentinels monitor the primary under.
    #[arg(long, env = "LEASEHOLD_SENTINEL_MASTER")]
    pub sentinel_master: Option<String>,
    /// With Sentinel: the user and password to log in to the servers the sentinels name,
    /// as `user:password` (`:password` for the default user); the sentinels' own go in
    /// their URLs.
    #[arg(
        long,
        env = "LEASEHOLD_SENTINEL_AUTH",
        requires = "redis_sentinel",
        hide_env_values = true
    )]
    pub sentinel_auth: Option<NodeAuth>,
    /// TLS (`rediss://` URLs): the CA certificate (PEM) that signed Redis's certificate,
    /// trusted instead of the system's roots.
    #[arg(long, env = "LEASEHOLD_REDIS_CA_CERT")]
    pub redis_ca_cert: Option<PathBuf>,
    /// TLS: the client certificate (PEM) to present, for Redis with `tls-auth-clients yes`
    /// (its default); needs --redis-client-key.
    #[arg(
        long,
        env = "LEASEHOLD_REDIS_CLIENT_CERT",
        requires = "redis_client_key"
    )]
    pub redis_client_cert: Option<PathBuf>,
    /// TLS: the private key (PEM) of --redis-client-cert.
    #[arg(
        long,
        env = "LEASEHOLD_REDIS_CLIENT_KEY",
        requires = "redis_client_cert"
    )]
    pub redis_client_key: Option<PathBuf>,
    /// The key file: one `tenant:<sha256 hex>` a line, as `leasehold keygen` prints.
    #[arg(long, env = "LEASEHOLD_API_KEYS")]
    pub api_keys: Option<PathBuf>,
    /// Accept requests without a key as tenant `dev` (for tests; never in production).
    #[arg(long, env = "LEASEHOLD_ALLOW_ANONYMOUS")]
    pub allow_anonymous: bool,
    /// Through Sentinel, go on writing to a primary that the sentinels have begun to fail
    /// over, until they announce the new one: loses writes it acknowledged in between.
    /// Only for the tests' negative control.
    #[arg(long, hide = true)]
    pub unsafe_no_failover_fence: bool,
    /// `async`: acknowledge after the script; `fsync`: require appendonly yes and
    /// appendfsync always on Redis, and refuse to start otherwise; `replicas:N`: after
    /// each write, WAIT for N replicas (503 durability_timeout when fewer acknowledge it
    /// in time).
    #[arg(long, env = "LEASEHOLD_DURABILITY", default_value = "async")]
    pub durability: Durability,
}

#[derive(Debug, Clone, clap::Args)]
pub struct KeygenArgs {
    /// The tenant the key belongs to (a firm, a team): `^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`
    #[arg(long, env = "LEASEHOLD_TENANT")]
    pub tenant: String,
    /// Append the key's entry to this key file (made, readable by its owner only, if it
    /// does not exist) and print only the key; without it, print the key, then the entry.
    #[arg(long)]
    pub append: Option<PathBuf>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ContendArgs {
    /// The deployment's base URL; repeat it (or separate with commas) to spread the
    /// clients over several replicas.
    #[arg(
        long = "url",
        env = "LEASEHOLD_URL",
        value_delimiter = ',',
        required = true
    )]
    pub urls: Vec<String>,
    /// The API key to call with (a tenant's key; `leasehold dev` needs none).
    #[arg(long, env = "LEASEHOLD_KEY")]
    pub key: Option<String>,
    /// How many clients run in parallel, each with one request in flight.
    #[arg(long, env = "LEASEHOLD_CLIENTS", default_value_t = 64)]
    pub clients: usize,
    /// How many items the run's pool starts with.
    #[arg(long, env = "LEASEHOLD_ITEMS", default_value_t = 1000)]
    pub items: usize,
    /// How long the clients run, in seconds.
    #[arg(long, env = "LEASEHOLD_DURATION", default_value_t = 10)]
    pub duration: u64,
    /// How many items one claim asks for.
    #[arg(long, env = "LEASEHOLD_BATCH", default_value_t = 4)]
    pub batch: u32,
    /// The lease time of the run's pool, in milliseconds.
    #[arg(long, env = "LEASEHOLD_LEASE_MS", default_value_t = 5000)]
    pub lease_ms: u64,
    /// The seed of the clients' random choices (printed, so a run can be repeated).
    #[arg(long, env = "LEASEHOLD_SEED")]
    pub seed: Option<u64>,
    /// How long one request may take before its outcome counts as unknown, in ms.
    #[arg(long, env = "LEASEHOLD_REQUEST_TIMEOUT_MS", default_value_t = 5000)]
    pub request_timeout_ms: u64,
    /// Print the report as JSON (and no progress bar).
    #[arg(long, env = "LEASEHOLD_JSON")]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// The Redis server (e.g. redis://admin:secret@10.0.0.1:6379).
    #[arg(long)]
    pub redis: String,
    /// List what would be removed, and remove nothing.
    #[arg(long)]
    pub dry_run: bool,
}
