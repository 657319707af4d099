//! The command line: `dev` (the default), `serve` and `keygen`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::ServerArgs;
use crate::store::Durability;

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
    /// The Redis to keep all state in.
    #[arg(
        long,
        env = "LEASEHOLD_REDIS",
        default_value = "redis://127.0.0.1:6379"
    )]
    pub redis: String,
    /// The key file: one `tenant:<sha256 hex>` a line, as `leasehold keygen` prints.
    #[arg(long, env = "LEASEHOLD_API_KEYS")]
    pub api_keys: Option<PathBuf>,
    /// Accept requests without a key as tenant `dev` (for tests; never in production).
    #[arg(long, env = "LEASEHOLD_ALLOW_ANONYMOUS")]
    pub allow_anonymous: bool,
    /// `async`: acknowledge after the script; `fsync`: require appendonly yes and
    /// appendfsync always on Redis, and refuse to start otherwise.
    #[arg(
        long,
        env = "LEASEHOLD_DURABILITY",
        value_enum,
        default_value = "async"
    )]
    pub durability: Durability,
}

#[derive(Debug, Clone, clap::Args)]
pub struct KeygenArgs {
    /// The tenant the key belongs to (a firm, a team): ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$
    #[arg(long, env = "LEASEHOLD_TENANT")]
    pub tenant: String,
}
