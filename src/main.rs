//! The `leasehold` binary: parse the command line, run the command.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use leasehold::app;
use leasehold::auth::{self, Auth};
use leasehold::cli::{BenchCommand, Cli, Command, ContendArgs, DevArgs, KeygenArgs, ServeArgs};
use leasehold::config::{LogFormat, Settings};
use leasehold::dev::EmbeddedRedis;
use leasehold::names::{CounterName, PoolName, Tenant};
use leasehold::store::{ClientTlsConfig, Durability, TlsCertificates, Topology};

/// mimalloc: fewer cycles per request than the system allocator (see docs/benchmarks.md).
/// Built without transparent huge pages, which would raise the resident memory in 2 MiB
/// steps.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => dev(cli.dev).await,
        Some(Command::Dev(args)) => dev(args).await,
        Some(Command::Serve(args)) => serve(args).await,
        Some(Command::Keygen(args)) => keygen(&args),
        Some(Command::Contend(args)) => contend(args).await,
        Some(Command::PruneFunctions(args)) => prune_functions(&args).await,
        Some(Command::Bench(command)) => bench(command).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("leasehold: {message}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LEASEHOLD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a person at a terminal, and never with NO_COLOR (no-color.org): a
    // log written to a file or a collector gets plain text.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stdout())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().with_current_span(true).init(),
    }
}

async fn dev(args: DevArgs) -> Result<(), String> {
    init_tracing(args.server.log_format);
    let auth = match &args.api_keys {
        Some(path) => Auth::from_file(path, true)?,
        None => Auth::anonymous(),
    };
    let _held = leasehold::dev::lock_data_dir(&args.data_dir, &args.server.listen.to_string())
        .map_err(|e| e.to_string())?;
    let redis = EmbeddedRedis::start(&args.redis_server, &args.data_dir)
        .await
        .map_err(|e| e.to_string())?;
    let settings = Settings::new(
        &args.server,
        Topology::Single(redis.url().to_owned()),
        auth,
        Durability::Async,
    );
    let served = run(
        &settings,
        &format!(
            "Redis {} (data in {})",
            redis.url(),
            args.data_dir.display()
        ),
    )
    .await;
    redis.stop().await;
    served
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    init_tracing(args.server.log_format);
    let auth = match (&args.api_keys, args.allow_anonymous) {
        (Some(path), anonymous) => Auth::from_file(path, anonymous)?,
        (None, true) => Auth::anonymous(),
        (None, false) => {
            return Err("serve needs --api-keys FILE (make entries with `leasehold keygen --tenant T`), or --allow-anonymous for tests".to_owned());
        }
    };
    for (flag, url) in std::iter::once(("--redis", &args.redis))
        .chain(args.redis_cluster.iter().map(|u| ("--redis-cluster", u)))
        .chain(args.redis_sentinel.iter().map(|u| ("--redis-sentinel", u)))
    {
        let known = ["redis://", "rediss://", "redis+unix://", "unix://"];
        if !known.iter().any(|scheme| url.starts_with(scheme)) {
            return Err(format!(
                "{flag} must look like redis://host:6379 (rediss:// for TLS, redis://user:password@host:6379 with a user)"
            ));
        }
    }
    let topology = match (&args.redis_cluster[..], &args.redis_sentinel[..]) {
        ([], []) => Topology::Single(args.redis.clone()),
        (nodes, []) => Topology::Cluster(nodes.to_vec()),
        (_, sentinels) => Topology::Sentinel {
            urls: sentinels.to_vec(),
            master: args.sentinel_master.clone().unwrap_or_default(),
            auth: args.sentinel_auth.clone(),
        },
    };
    let backend = format!(
        "Redis {}, durability {}",
        topology.describe(),
        args.durability
    );
    let tls = tls_certificates(&args, &topology)?;
    let mut settings = Settings::new(&args.server, topology, auth, args.durability);
    settings.store.tls = tls;
    settings.store.fence_failovers = !args.unsafe_no_failover_fence;
    run(&settings, &backend).await
}

/// The certificate files given for TLS to Redis, read; none given, none needed.
fn tls_certificates(
    args: &ServeArgs,
    topology: &Topology,
) -> Result<Option<TlsCertificates>, String> {
    let read = |path: &PathBuf| {
        std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    let root_cert = args.redis_ca_cert.as_ref().map(read).transpose()?;
    let client_tls = match (&args.redis_client_cert, &args.redis_client_key) {
        (Some(cert), Some(key)) => Some(ClientTlsConfig {
            client_cert: read(cert)?,
            client_key: read(key)?,
        }),
        _ => None,
    };
    if root_cert.is_none() && client_tls.is_none() {
        return Ok(None);
    }
    if !topology
        .urls()
        .iter()
        .all(|url| url.starts_with("rediss://"))
    {
        return Err(
            "--redis-ca-cert and --redis-client-cert are for TLS: give Redis as rediss:// URLs"
                .to_owned(),
        );
    }
    Ok(Some(TlsCertificates {
        client_tls,
        root_cert,
    }))
}

/// Why the API's address could not be taken, and what to do about it.
fn listen_error(listen: std::net::SocketAddr, e: &std::io::Error) -> String {
    let next = std::net::SocketAddr::new(listen.ip(), listen.port().wrapping_add(1).max(1));
    match e.kind() {
        std::io::ErrorKind::AddrInUse => format!(
            "cannot listen on {listen}: another program has that port; choose another with --listen (or LEASEHOLD_LISTEN), such as --listen {next}"
        ),
        _ => format!("cannot listen on {listen} (--listen or LEASEHOLD_LISTEN): {e}"),
    }
}

async fn run(settings: &Settings, backend: &str) -> Result<(), String> {
    let app = app::build(settings).await.map_err(|e| e.to_string())?;
    settings.auth.reload_on_sighup();
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|e| listen_error(settings.listen, &e))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(
        "Leasehold is listening on http://{addr} with {backend} (dashboard: http://{addr}/ui/)"
    );
    app.serve(listener, app::shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}

fn keygen(args: &KeygenArgs) -> Result<(), String> {
    let tenant = Tenant::parse("tenant", &args.tenant).map_err(|e| e.to_string())?;
    let (key, entry) = auth::generate(&tenant);
    let Some(path) = &args.append else {
        println!("{key}");
        println!("{entry}");
        return Ok(());
    };
    append_entry(path, &entry)?;
    println!("{key}");
    eprintln!(
        "The key above (shown once, keep it for your app) is for tenant {tenant}; its entry was added to {}. Send SIGHUP to a running server to take it.",
        path.display()
    );
    Ok(())
}

/// Appends a line to a key file, made with mode 0600 where it does not exist, starting on a
/// new line if the file does not end with one.
fn append_entry(path: &std::path::Path, entry: &str) -> Result<(), String> {
    use std::io::Write;
    let fail = |e: std::io::Error| format!("cannot add the key to {}: {e}", path.display());
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let ends_with_newline = std::fs::read(path)
        .map(|bytes| bytes.is_empty() || bytes.ends_with(b"\n"))
        .unwrap_or(true);
    let mut file = options.open(path).map_err(fail)?;
    let line = if ends_with_newline {
        format!("{entry}\n")
    } else {
        format!("\n{entry}\n")
    };
    file.write_all(line.as_bytes()).map_err(fail)
}

/// Exits 0 only when the checkers found no anomaly.
async fn contend(args: ContendArgs) -> Result<(), String> {
    let seed = args.seed.unwrap_or_else(rand::random);
    let options = leasehold::contend::Options {
        urls: args.urls,
        key: args.key,
        clients: args.clients,
        items: args.items,
        duration: std::time::Duration::from_secs(args.duration),
        batch: args.batch.clamp(1, 100),
        lease_ms: args.lease_ms,
        seed,
        request_timeout: std::time::Duration::from_millis(args.request_timeout_ms),
        progress: !args.json,
    };
    let report = leasehold::contend::run(options).await?;
    if args.json {
        let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        println!("{json}");
    } else {
        print!("{}", report.table());
    }
    if report.passed() {
        Ok(())
    } else {
        Err(format!(
            "{} anomalies found (seed {seed})",
            report.check.anomalies.len()
        ))
    }
}

async fn prune_functions(args: &leasehold::cli::PruneArgs) -> Result<(), String> {
    let client = redis::Client::open(args.redis.as_str()).map_err(|e| e.to_string())?;
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| format!("connecting to Redis: {e}"))?;
    let scripts = leasehold::store::Scripts::new();
    let keep = scripts.library().name();
    let removed = leasehold::store::scripts::prune(&mut conn, keep, args.dry_run)
        .await
        .map_err(|e| e.to_string())?;
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    for name in &removed {
        println!("{verb} {name}");
    }
    println!(
        "kept {keep} (this version's); {} other(s) {verb}",
        removed.len()
    );
    Ok(())
}

async fn bench(command: BenchCommand) -> Result<(), String> {
    let tenant = |name: &str| Tenant::parse("tenant", name).map_err(|e| e.to_string());
    let pool = |name: &str| PoolName::parse("pool", name).map_err(|e| e.to_string());
    match command {
        BenchCommand::Load {
            redis,
            tenant: t,
            pool: p,
            items,
            from,
        } => {
            let store = leasehold::bench::connect(&redis).await?;
            let seconds =
                leasehold::bench::load(&store, &tenant(&t)?, &pool(&p)?, from, items, 1000, 4)
                    .await?;
            println!("{seconds:.2}");
        }
        BenchCommand::Keys {
            tenant: t,
            pool: Some(p),
            key,
            ..
        } => {
            let keys = leasehold::bench::pool_keys(&tenant(&t)?, &pool(&p)?, key.as_deref())?;
            println!("{}", keys.join(" "));
        }
        BenchCommand::Keys {
            tenant: t, counter, ..
        } => {
            let name = counter.unwrap_or_default();
            let counter = CounterName::parse("counter", &name).map_err(|e| e.to_string())?;
            println!(
                "{}",
                leasehold::bench::counter_keys(&tenant(&t)?, &counter).join(" ")
            );
        }
        BenchCommand::Soak {
            url,
            redis,
            items,
            keep_ms,
            workers,
            every,
            warm,
        } => {
            let keep_ms = match keep_ms.as_str() {
                "forever" => None,
                ms => Some(
                    ms.parse()
                        .map_err(|_| format!("--keep-ms {ms}: a number or `forever`"))?,
                ),
            };
            let options = leasehold::bench::Soak {
                url,
                redis,
                items,
                keep_ms,
                workers,
                every_secs: every,
            };
            let samples = leasehold::bench::soak(&options).await?;
            match leasehold::bench::flatness(&samples, warm as f64) {
                Some((settled, last, ratio)) => println!(
                    "after {warm} s: {:.1} MiB; last: {:.1} MiB; last / after {warm} s = {ratio:.2}",
                    settled as f64 / 1_048_576.0,
                    last as f64 / 1_048_576.0
                ),
                None => println!("the run ended before {warm} s: no verdict"),
            }
        }
        BenchCommand::Budget { url, redis } => {
            let slowest = leasehold::bench::script_budget(&url, &redis).await?;
            println!("{:<14} {:>12}", "script", "slowest call");
            for (script, micros) in slowest {
                println!("{script:<14} {:>9.1} ms", micros as f64 / 1000.0);
            }
            println!("(every other script: under 1 ms)");
        }
        BenchCommand::Cost { url, redis, calls } => {
            let costs = leasehold::bench::op_cost(&url, &redis, calls).await?;
            println!("| operation | calls | Leasehold µs/call | minimal µs/call | ratio |");
            println!("|---|---:|---:|---:|---:|");
            for c in costs {
                let ratio = if c.minimal_micros_per_call > 0.0 {
                    c.micros_per_call / c.minimal_micros_per_call
                } else {
                    0.0
                };
                println!(
                    "| {} | {} | {:.2} | {:.2} | {ratio:.2} |",
                    c.op, c.calls, c.micros_per_call, c.minimal_micros_per_call
                );
            }
        }
        BenchCommand::Function { redis, operation } => {
            let name = leasehold::bench::function_name(&operation)?;
            leasehold::bench::connect(&redis).await?;
            println!("{name}");
        }
    }
    Ok(())
}
