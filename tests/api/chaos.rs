//! Faults under load. Three `leasehold serve` replicas (real processes) share one
//! redis-server that fsyncs its append-only file on every write; `leasehold contend`'s
//! clients, spread over the replicas, record every operation while a fault is injected;
//! then the checkers go over the whole history. Each test prints one line of figures.
//!
//! The seed of the clients' choices is printed; set LEASEHOLD_CHAOS_SEED to replay one, and
//! LEASEHOLD_CHAOS_SECONDS to run longer than the default.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use leasehold::contend::{self, RunReport};

use crate::helpers::*;

const LEASEHOLD: &str = env!("CARGO_BIN_EXE_leasehold");
const DURABLE: &[&str] = &["--appendonly", "yes", "--appendfsync", "always"];
/// Replicas give up on a Redis call after this long, and answer 503.
const REDIS_TIMEOUT_MS: u64 = 500;

/// A `leasehold serve` process, killed by its pid when dropped.
struct Replica {
    port: u16,
    /// Where Redis is and how durable writes are: `--redis URL`, `--redis-cluster …`, ….
    backend: Vec<String>,
    child: Option<Child>,
}

impl Replica {
    async fn start(redis_url: &str) -> Replica {
        Replica::start_with(&["--redis", redis_url]).await
    }

    async fn start_with(backend: &[&str]) -> Replica {
        let mut replica = Replica {
            port: free_port(),
            backend: backend.iter().map(|a| a.to_string()).collect(),
            child: None,
        };
        replica.spawn().await;
        replica
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Where its log goes.
    fn log(&self) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("leasehold-replica-{}.log", self.port))
    }

    /// Where its stderr goes (shown when it fails to start).
    fn err_log(&self) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("leasehold-replica-{}.err", self.port))
    }

    async fn spawn(&mut self) {
        let child = Command::new(LEASEHOLD)
            .args(["serve", "--allow-anonymous"])
            .args(&self.backend)
            .args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .args(["--redis-timeout-ms", &REDIS_TIMEOUT_MS.to_string()])
            .env("LEASEHOLD_LOG", "warn")
            .stdout(std::fs::File::create(self.log()).expect("log file"))
            .stderr(std::fs::File::create(self.err_log()).expect("log file"))
            .spawn()
            .expect("leasehold serve starts");
        self.child = Some(child);
        if !healthy(&self.url()).await {
            let log = std::fs::read_to_string(self.err_log()).unwrap_or_default();
            panic!("{} never became healthy:\n{log}", self.url());
        }
    }

    /// SIGKILL, by pid.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `/healthz` until it answers, with a deadline; false if it never does.
async fn healthy(url: &str) -> bool {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let ok = client
            .get(format!("{url}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// One Redis (durable, restartable where it was) and three replicas over it.
struct Deployment {
    redis: RedisProcess,
    replicas: Vec<Replica>,
}

impl Deployment {
    async fn start() -> Deployment {
        let redis = RedisProcess::start(DURABLE);
        let mut replicas = Vec::new();
        for _ in 0..3 {
            replicas.push(Replica::start(&redis.url()).await);
        }
        Deployment { redis, replicas }
    }

    fn urls(&self) -> Vec<String> {
        self.replicas.iter().map(Replica::url).collect()
    }

    /// SIGKILL redis-server, then start it again on the same port and data.
    fn kill_and_restart_redis(&mut self) {
        self.redis.signal("KILL");
        self.redis.wait_gone();
        let (port, dir) = (self.redis.port, self.redis.dir.clone());
        self.redis = RedisProcess::start_on(port, &dir, DURABLE);
    }
}

fn seed() -> u64 {
    std::env::var("LEASEHOLD_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random)
}

fn seconds() -> u64 {
    std::env::var("LEASEHOLD_CHAOS_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8)
}

fn options(urls: Vec<String>, seed: u64, lease_ms: u64) -> contend::Options {
    contend::Options {
        urls,
        key: None,
        clients: 64,
        items: 4000,
        duration: Duration::from_secs(seconds()),
        batch: 4,
        lease_ms,
        seed,
        request_timeout: Duration::from_secs(3),
        progress: false,
    }
}

/// The one line of figures each fault test prints, then its verdict.
#[track_caller]
fn report(fault: &str, faults: usize, report: &RunReport) {
    let c = &report.check;
    println!(
        "chaos {fault}: {} operations checked ({} ok, {} failed, {} unknown), {} stream deliveries over {} connections, {faults} faults injected, {} retries, {} anomalies, seed {}",
        c.operations,
        c.ok,
        c.fail,
        c.unknown,
        report.deliveries,
        report.stream_connections,
        report.retries,
        c.anomalies.len(),
        report.seed
    );
    assert!(report.passed(), "{}", report.table());
    assert!(
        c.operations > 1000,
        "too little load to prove anything: {}",
        report.table()
    );
    assert!(
        report.deliveries > 0,
        "no event reached the stream's follower: {}",
        report.table()
    );
    for cause in report.unknown_causes.keys() {
        assert!(
            cause == "503 backend_unavailable"
                || cause == "503 durability_timeout"
                || cause == "connection"
                || cause == "timeout",
            "a client saw more than an unavailable backend: {cause}\n{}",
            report.table()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_killed_mid_load_loses_and_repeats_nothing() {
    if skipped_on_topology_rerun("it starts its own deployments to break") {
        return;
    }
    let mut deployment = Deployment::start().await;
    let run = tokio::spawn(contend::run(options(deployment.urls(), seed(), 2000)));

    tokio::time::sleep(Duration::from_secs(2)).await;
    deployment.replicas[1].kill();
    tokio::time::sleep(Duration::from_millis(700)).await;
    deployment.replicas[1].spawn().await;

    let run = run
        .await
        .expect("the run finished")
        .expect("the run was set up");
    report("replica SIGKILL", 1, &run);
    assert!(
        run.retries > 0,
        "no client noticed the replica die:\n{}",
        run.table()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_killed_and_restarted_under_load_loses_and_reissues_nothing() {
    if skipped_on_topology_rerun("it starts its own deployments to break") {
        return;
    }
    let mut deployment = Deployment::start().await;
    let run = tokio::spawn(contend::run(options(deployment.urls(), seed(), 2000)));

    let restarts = 3;
    for _ in 0..restarts {
        tokio::time::sleep(Duration::from_millis(1800)).await;
        deployment.kill_and_restart_redis();
    }

    let run = run
        .await
        .expect("the run finished")
        .expect("the run was set up");
    report("redis SIGKILL + restart", restarts, &run);
    assert!(
        run.retries > 0,
        "no client noticed Redis die:\n{}",
        run.table()
    );
    // The restarted Redis keeps the Functions library in its append-only file, as it keeps
    // the data (a Redis that lost it is covered by
    // `scripts::requests_still_work_after_the_function_library_is_flushed`).
    let library = leasehold::store::Scripts::new().library().name().to_owned();
    let listed: Vec<redis::Value> = redis::cmd("FUNCTION")
        .arg("LIST")
        .arg("LIBRARYNAME")
        .arg(&library)
        .query(&mut deployment.redis.connection())
        .expect("FUNCTION LIST");
    assert_eq!(listed.len(), 1, "the library is there after the restarts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_stopped_longer_than_a_lease_fails_fast_and_never_admits_two_holders() {
    if skipped_on_topology_rerun("it starts its own deployments to break") {
        return;
    }
    let lease_ms = 1000;
    let deployment = Deployment::start().await;
    let run = tokio::spawn(contend::run(options(deployment.urls(), seed(), lease_ms)));

    tokio::time::sleep(Duration::from_secs(2)).await;
    deployment.redis.signal("STOP");
    let stopped = Instant::now();
    let client = reqwest::Client::new();
    let mut probes = 0;
    while stopped.elapsed() < Duration::from_millis(2 * lease_ms + 500) {
        let started = Instant::now();
        let response = client
            .post(format!(
                "{}/v1/pools/probe/claim",
                deployment.urls()[probes % 3]
            ))
            .json(&serde_json::json!({"holder": "probe"}))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .expect("the replica answers while Redis is stopped");
        let took = started.elapsed();
        assert_eq!(response.status().as_u16(), 503);
        assert!(response.headers().contains_key("retry-after"));
        let problem: serde_json::Value = response.json().await.expect("problem+json");
        assert_eq!(problem["code"], "backend_unavailable");
        assert!(
            took < Duration::from_millis(3 * REDIS_TIMEOUT_MS),
            "a request took {took:?} while Redis was stopped"
        );
        probes += 1;
    }
    deployment.redis.signal("CONT");

    let run = run
        .await
        .expect("the run finished")
        .expect("the run was set up");
    report("redis SIGSTOP past the lease time", 1, &run);
    assert!(probes >= 3, "only {probes} probes");
}

/// The negative control: the same harness, with Redis's state corrupted behind the
/// service's back mid-run (fencing counters reset, a register rolled back to an older
/// version), must report the very anomalies the fault tests prove absent.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_checkers_catch_state_corrupted_behind_the_services_back() {
    if skipped_on_topology_rerun("it starts its own deployments to break") {
        return;
    }
    let deployment = Deployment::start().await;
    let mut options = options(deployment.urls(), seed(), 2000);
    options.duration = Duration::from_secs(6);
    let run = tokio::spawn(contend::run(options));

    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut conn = deployment.redis.connection();
    let keys = |pattern: &str| -> Vec<String> {
        redis::cmd("KEYS")
            .arg(pattern)
            .query(&mut deployment.redis.connection())
            .expect("KEYS")
    };
    // Every pool's fencing counter back to zero: tokens are handed out again.
    for fence in keys("lh:{dev/contend-*}:fence") {
        redis::cmd("SET")
            .arg(&fence)
            .arg(0)
            .exec(&mut conn)
            .expect("SET");
    }
    // Every register back to version 1, value 0: acknowledged writes vanish.
    for items in keys("lh:{dev/contend-*-registers}:items") {
        let record: Vec<u8> = redis::cmd("HGET")
            .arg(&items)
            .arg("r0")
            .query(&mut conn)
            .expect("HGET");
        let script = "local t = cmsgpack.unpack(ARGV[1]); t.v = 1; t.d = '{\"n\":0}'; \
                      redis.call('HSET', KEYS[1], 'r0', cmsgpack.pack(t))";
        redis::cmd("EVAL")
            .arg(script)
            .arg(1)
            .arg(&items)
            .arg(record)
            .exec(&mut conn)
            .expect("EVAL");
    }

    let run = run
        .await
        .expect("the run finished")
        .expect("the run was set up");
    let kinds: std::collections::BTreeSet<&str> =
        run.check.anomalies.iter().map(|a| a.kind).collect();
    println!(
        "chaos negative control: {} operations checked, {} anomalies of kinds {kinds:?}, seed {}",
        run.check.operations,
        run.check.anomalies.len(),
        run.seed
    );
    assert!(!run.passed(), "corruption went unnoticed:\n{}", run.table());
    assert!(
        kinds.contains("token_reused") || kinds.contains("token_went_back"),
        "reset fencing counters not caught: {kinds:?}"
    );
    assert!(
        kinds.contains("not_linearizable") || kinds.contains("lost_write"),
        "a rolled-back register not caught: {kinds:?}"
    );
}

/// What users run: the `leasehold contend` binary against three replicas, 0 overlaps.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_contend_command_against_three_replicas_finds_no_overlap() {
    if skipped_on_topology_rerun("it starts its own deployments to break") {
        return;
    }
    let deployment = Deployment::start().await;
    let output = tokio::process::Command::new(LEASEHOLD)
        .args([
            "contend",
            "--json",
            "--clients",
            "64",
            "--items",
            "2000",
            "--duration",
            "4",
        ])
        .args(["--url", &deployment.urls().join(",")])
        .output()
        .await
        .expect("leasehold contend runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&output.stderr)));
    println!(
        "contend against 3 replicas: {} requests, {:.0}/s, {} operations checked, anomalies {}",
        report["requests"],
        report["throughput"].as_f64().unwrap_or(0.0),
        report["check"]["operations"],
        report["check"]["anomalies"]
    );
    assert!(output.status.success(), "{stdout}");
    assert_eq!(report["check"]["anomalies"], serde_json::json!([]));
    assert!(report["check"]["operations"].as_u64().expect("a count") > 1000);
    assert_eq!(report["urls"].as_array().expect("urls").len(), 3);
}

/// A Redis Cluster (3 primaries + 3 replicas, AOF always) and three replicas over it.
struct ClusterDeployment {
    cluster: crate::fixtures::RedisCluster,
    replicas: Vec<Replica>,
}

impl ClusterDeployment {
    async fn start(durability: &str) -> ClusterDeployment {
        let cluster = tokio::task::spawn_blocking(crate::fixtures::RedisCluster::start)
            .await
            .expect("the cluster starts");
        let nodes = cluster.urls().join(",");
        let args = ["--redis-cluster", &nodes, "--durability", durability];
        let mut replicas = Vec::new();
        for _ in 0..3 {
            replicas.push(Replica::start_with(&args).await);
        }
        ClusterDeployment { cluster, replicas }
    }

    fn urls(&self) -> Vec<String> {
        self.replicas.iter().map(Replica::url).collect()
    }

    /// The slots holding the run's pools (found by their settings keys).
    fn contend_slots(&self) -> Vec<u16> {
        let mut conn = redis::cluster::ClusterClient::new(self.cluster.urls())
            .expect("cluster client")
            .get_connection()
            .expect("cluster connection");
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("lh:{dev/contend-*}:pool")
            .query(&mut conn)
            .expect("KEYS");
        let mut slots: Vec<u16> = keys.iter().map(|k| self.cluster.slot_of(k)).collect();
        slots.sort_unstable();
        slots.dedup();
        slots
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn resharding_and_failing_over_a_hot_pool_on_a_cluster_loses_nothing() {
    if skipped_on_topology_rerun("it starts its own deployments to break") {
        return;
    }
    let deployment = ClusterDeployment::start("replicas:1").await;
    let run = tokio::spawn(contend::run(options(deployment.urls(), seed(), 2000)));

    // Wait until the run's pools exist, then move their slots to another primary.
    let mut slots = Vec::new();
    for _ in 0..100 {
        slots = deployment.contend_slots();
        if slots.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(slots.len(), 2, "the run's two pools");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cluster = &deployment.cluster;
    let mut faults = 0;
    for slot in &slots {
        let owner = cluster.node_for_slot(*slot);
        let to = cluster
            .primaries()
            .into_iter()
            .find(|p| p.port != owner.port)
            .expect("another primary");
        let slot = *slot;
        tokio::task::block_in_place(|| cluster.reshard(vec![slot], &to));
        faults += 1;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Then fail over the primary that now holds the hot pool, to its replica.
    let owner = cluster.node_for_slot(slots[0]);
    let replica = cluster
        .replicas_of(&owner)
        .into_iter()
        .next()
        .expect("a replica");
    tokio::task::block_in_place(|| cluster.failover(&replica));
    faults += 1;

    let run = run
        .await
        .expect("the run finished")
        .expect("the run was set up");
    report("cluster reshard + CLUSTER FAILOVER", faults, &run);
}

const SENTINEL_MASTER: &str = "leasehold";

/// A primary, two replicas and three sentinels (the primary refuses writes once it has no
/// replica: `min-replicas-to-write 1`), and three replicas following the primary.
struct SentinelDeployment {
    sentinel: crate::fixtures::Sentinel,
    replicas: Vec<Replica>,
}

impl SentinelDeployment {
    /// Three replicas of the service with `extra` flags, over a primary with two replicas
    /// and three sentinels.
    async fn start(durability: &str, extra: &[&str]) -> SentinelDeployment {
        let sentinel = tokio::task::spawn_blocking(|| {
            crate::fixtures::Sentinel::start_with(
                SENTINEL_MASTER,
                &[
                    "--min-replicas-to-write",
                    "1",
                    "--min-replicas-max-lag",
                    "10",
                ],
            )
        })
        .await
        .expect("the sentinels start");
        let sentinels = sentinel.sentinel_urls().join(",");
        let mut args = vec![
            "--redis-sentinel",
            &sentinels,
            "--sentinel-master",
            SENTINEL_MASTER,
            "--durability",
            durability,
        ];
        args.extend(extra);
        let mut replicas = Vec::new();
        for _ in 0..3 {
            replicas.push(Replica::start_with(&args).await);
        }
        SentinelDeployment { sentinel, replicas }
    }

    fn urls(&self) -> Vec<String> {
        self.replicas.iter().map(Replica::url).collect()
    }

    /// The fault of the negative control: the replicas stall, so the primary keeps writes
    /// they never get, then the primary dies and a replica is promoted. A stopped replica's
    /// kernel still takes in the replication stream, so first a value larger than its
    /// socket buffers goes down the stream: every write after it waits in the primary's own
    /// output buffer, and dies with the primary.
    fn stall_replicas_then_kill_primary(&self) -> Duration {
        let replicas = self.sentinel.replicas();
        for replica in &replicas {
            replica.signal("STOP");
        }
        redis::cmd("SET")
            .arg("negative-control-filler")
            .arg(vec![b'x'; 32 << 20])
            .exec(&mut self.sentinel.primary().connection())
            .expect("SET on the primary");
        std::thread::sleep(Duration::from_millis(1500));
        let old = self.sentinel.kill_primary();
        for replica in &replicas {
            replica.signal("CONT");
        }
        self.sentinel.wait_for_failover(old)
    }
}

/// A fault injected into a Sentinel setup: when it struck, and how long the sentinels took
/// from then to name a new primary that answers as one (their down-after plus failover),
/// or to their last announcement of a switch if that came later (under load they have
/// failed a new primary over again, too busy to answer their pings).
struct Failover {
    struck: Instant,
    window: Duration,
}

impl Failover {
    /// Kills the primary, then waits for its successor.
    fn kill(sentinel: &crate::fixtures::Sentinel) -> Failover {
        let struck = Instant::now();
        let old = sentinel.kill_primary();
        let window = sentinel.wait_for_failover(old);
        Failover { struck, window }
    }
}

/// The Sentinel faults the chaos tests inject.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum SentinelFault {
    /// SIGKILL of the primary.
    Kill,
    /// SIGSTOP of the primary past down-after, then SIGCONT once it is replaced: it comes
    /// back believing it is primary, until the sentinels demote it.
    Stop,
    /// SIGKILL of the primary, then of the replica promoted in its place, as soon as the
    /// first dead node is back (with its data, as a replica of the new primary) and in
    /// sync.
    KillTwice,
    /// The replicas stall, then the primary dies: what `replicas:N` alone cannot cover.
    StallThenKill,
    /// `SENTINEL FAILOVER`: the sentinels replace a primary that is alive and well.
    Manual,
}

async fn sentinel_run(durability: &str, fault: SentinelFault) -> (RunReport, Failover) {
    sentinel_run_with(durability, &[], fault).await
}

/// As `sentinel_run`, with `extra` flags for the service's replicas.
async fn sentinel_run_with(
    durability: &str,
    extra: &[&str],
    fault: SentinelFault,
) -> (RunReport, Failover) {
    let mut deployment = SentinelDeployment::start(durability, extra).await;
    let mut options = options(deployment.urls(), seed(), 3000);
    if fault == SentinelFault::KillTwice {
        // Two failovers, the second possibly after a failed election.
        options.duration = options.duration.max(Duration::from_secs(30));
    }
    let run = tokio::spawn(contend::run(options));
    let switches = deployment.sentinel.watch_switches();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut failover = tokio::task::block_in_place(|| match fault {
        SentinelFault::Kill => Failover::kill(&deployment.sentinel),
        SentinelFault::Stop => {
            let struck = Instant::now();
            let old = deployment.sentinel.stop_primary();
            let window = deployment.sentinel.wait_for_failover(old);
            deployment.sentinel.resume(old);
            Failover { struck, window }
        }
        SentinelFault::KillTwice => {
            let sentinel = &mut deployment.sentinel;
            let first = sentinel.primary_port();
            let failover = Failover::kill(sentinel);
            let second = sentinel.primary_port();
            sentinel.restart_as_replica_of(first, second);
            sentinel.wait_until_in_sync(first, second);
            let failover_again = Failover::kill(sentinel);
            let successor = sentinel.primary_port();
            sentinel.restart_as_replica_of(second, successor);
            println!(
                "sentinel double failover: {:?} after the first SIGKILL, {:?} after the second",
                failover.window, failover_again.window
            );
            failover_again
        }
        SentinelFault::StallThenKill => {
            let struck = Instant::now();
            let window = deployment.stall_replicas_then_kill_primary();
            Failover { struck, window }
        }
        SentinelFault::Manual => {
            let struck = Instant::now();
            let old = deployment.sentinel.primary_port();
            deployment.sentinel.fail_over();
            let window = deployment.sentinel.wait_for_failover(old);
            Failover { struck, window }
        }
    });
    let run = run
        .await
        .expect("the run finished")
        .expect("the run was set up");
    if let Some(last) = switches.last() {
        failover.window = failover
            .window
            .max(last.saturating_duration_since(failover.struck));
    }
    (run, failover)
}

/// The replicas follow a failover within a second of the sentinels: from the fault to the
/// last request that failed is at most the sentinels' own time (down-after, election,
/// promotion) plus one second.
#[track_caller]
fn assert_followed_within_a_second(fault: &str, run: &RunReport, failover: &Failover) {
    let failing = run
        .last_unavailable
        .map(|last| last.saturating_duration_since(failover.struck));
    println!(
        "sentinel {fault}: the sentinels took {:?}; requests failed until {failing:?} after the fault",
        failover.window
    );
    let bound = failover.window + Duration::from_secs(1);
    assert!(
        failing.is_some_and(|failing| failing <= bound),
        "requests failed until {failing:?} after the fault, past the bound {bound:?}\n{}",
        run.table()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sentinel_failover_after_the_primary_is_killed_loses_nothing_with_replicas_1() {
    if skipped_on_topology_rerun("it starts its own deployments to break") {
        return;
    }
    let (run, failover) = sentinel_run("replicas:1", SentinelFault::Kill).await;
    report("sentinel: primary SIGKILL, replicas:1", 1, &run);
    assert_followed_within_a_second("primary SIGKILL", &run, &failover);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sentinel_failover_after_the_primary_is_stopped_loses_nothing_with_replicas_1() {
    if skipped_on_topology_rerun("it starts its own deployments to break") {
        return;
    }
    let (run, failover) = sentinel_run("replicas:1", SentinelFault::Stop).await;
    report(
        "sentinel: primary SIGSTOP past down-after, replicas:1",
        1,
        &run,
    );
    assert_followed_within_a_second(
        "primary SIGSTOP, back as a deposed primary",
        &run,
        &failover,
    );
}

/// Two failovers in a row; under load, the sentinels have been seen to fail the second
/// new primary over again a second after its promotion (too busy to answer their pings),
/// while it was alive with a replica: the fence is what keeps that third failover from
/// taking back writes (see `a_failover_of_a_live_primary_loses_nothing_with_replicas_1`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_failovers_in_a_row_lose_nothing_with_replicas_1() {
    if skipped_on_topology_rerun("it starts its own deployments to break") {
        return;
    }
    let (run, failover) = sentinel_run("replicas:1", SentinelFault::KillTwice).await;
    report("sentinel: primary SIGKILL twice, replicas:1", 2, &run);
    assert_followed_within_a_second("second SIGKILL", &run, &failover);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stalled_replicas_then_a_dead_primary_lose_nothing_with_replicas_1() {
    if skipped_on_topology_rerun("it starts its own deployments to break") {
        return;
    }
    let (run, failover) = sentinel_run("replicas:1", SentinelFault::StallThenKill).await;
    println!(
        "sentinel failover window after stall + SIGKILL: {:?}",
        failover.window
    );
    report(
        "sentinel: replicas stalled, primary SIGKILL, replicas:1",
        1,
        &run,
    );
}

/// The sentinels replace a primary that is alive (`SENTINEL FAILOVER`, as before an
/// upgrade; the same happens to a primary too busy to answer their pings in time). From
/// `REPLICAOF NO ONE` on the replica they chose until they reconfigure the other one, the
/// old primary still has that other replica, so it goes on acknowledging writes under
/// `replicas:1`, and the failover takes them back. Each replica of the service stops
/// sending anything to the old primary at the first `+try-failover`, so nothing it
/// acknowledged is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failover_of_a_live_primary_loses_nothing_with_replicas_1() {
    if skipped_on_topology_rerun("it starts its own deployments to break") {
        return;
    }
    let (run, failover) = sentinel_run("replicas:1", SentinelFault::Manual).await;
    println!("sentinel failover of a live primary: {:?}", failover.window);
    report(
        "sentinel: SENTINEL FAILOVER of a live primary, replicas:1",
        1,
        &run,
    );
}

/// The negative control for the fence: the same failover, with the service's replicas
/// writing to the old primary until the sentinels announce the new one
/// (`--unsafe-no-failover-fence`), loses acknowledged writes. Repeated a few times, as the
/// loss depends on timing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_the_fence_a_failover_of_a_live_primary_loses_acknowledged_writes() {
    if skipped_on_topology_rerun("it starts its own deployments to break") {
        return;
    }
    caught_losing(
        "no fence",
        "replicas:1",
        &["--unsafe-no-failover-fence"],
        SentinelFault::Manual,
    )
    .await;
}

/// The negative control for `replicas:N`: the same fault with `async` durability must lose
/// acknowledged writes (the checkers see reused tokens or counter values, or lost writes),
/// which is exactly what `replicas:1` prevents in the test above. Repeated a few times, as
/// the loss depends on timing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_async_durability_the_same_failover_loses_acknowledged_writes() {
    if skipped_on_topology_rerun("it starts its own deployments to break") {
        return;
    }
    caught_losing("async", "async", &[], SentinelFault::StallThenKill).await;
}

/// A negative control: runs the fault with the service set up as `durability` and
/// `extra` say until the checkers find acknowledged writes lost (up to 3 runs, as the loss
/// depends on timing), and fails if they never do: then the test could not see the loss
/// its positive twin says does not happen.
async fn caught_losing(label: &str, durability: &str, extra: &[&str], fault: SentinelFault) {
    let mut kinds = std::collections::BTreeSet::new();
    let mut attempts = 0;
    while kinds.is_empty() && attempts < 3 {
        attempts += 1;
        let (run, failover) = sentinel_run_with(durability, extra, fault).await;
        kinds = run.check.anomalies.iter().map(|a| a.kind).collect();
        println!(
            "sentinel negative control ({label}), attempt {attempts}: {} operations checked, failover {:?}, anomalies of kinds {kinds:?}, seed {}",
            run.check.operations, failover.window, run.seed
        );
    }
    assert!(
        !kinds.is_empty(),
        "{label}: {attempts} failovers lost nothing: the harness cannot see the loss"
    );
}
