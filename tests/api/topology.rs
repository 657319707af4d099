//! Topologies beyond one Redis, as test fixtures built from Debian's `redis-server`:
//!
//! - `RedisCluster`: 3 primaries and 3 replicas formed with `redis-cli --cluster create`,
//!   with by-hand resharding of exact slots (the slot of a hot pool, not "some slots")
//!   and manual `CLUSTER FAILOVER`;
//! - `Sentinel`: 1 primary, 2 replicas and 3 sentinels, with SIGKILL and SIGSTOP of the
//!   primary and a timed wait for the sentinels' failover.
//!
//! Every process is a `RedisProcess`, whose guard stops it by its pid if the test process
//! dies; a fixture that drops shuts its processes down itself first (see `stop_all`, for
//! the cases a guard's SIGTERM cannot handle). Each fixture waits, with a deadline, until its topology has settled before it
//! returns, and after every change it makes, so a test starts from a known state. The
//! tests at the bottom prove the fixtures themselves; the service's cluster and sentinel
//! tests (issue 4) build on them.
//!
//! The fixtures are blocking (they poll with short sleeps): from a `#[tokio::test]`, call
//! them from a multi-threaded runtime or through `spawn_blocking`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::helpers::*;

/// Every data node fsyncs each write (what the durability tests need, and what a
/// deployment that cares about failover would run), and a primary starts a replica's full
/// sync at once instead of waiting 5 s for more replicas to share it.
const DURABLE: &[&str] = &[
    "--appendonly",
    "yes",
    "--appendfsync",
    "always",
    "--repl-diskless-sync-delay",
    "0",
];
/// How long a node must be unreachable before the cluster fails it over.
const CLUSTER_NODE_TIMEOUT_MS: u64 = 2000;
/// How long a fixture waits for its topology to settle before it fails the test.
const SETTLE: Duration = Duration::from_secs(20);
/// How long one question to one node may take: a SIGSTOPped node must not hang a fixture.
const ASK_TIMEOUT: Duration = Duration::from_millis(500);
/// A cluster node also listens on its port + 10000 (the cluster bus), which must be a port.
const BUS_OFFSET: u16 = 10_000;
/// Keys moved per MIGRATE while resharding.
const MIGRATE_BATCH: usize = 100;
pub const SLOTS: u16 = 16_384;

/// Ports this module has handed out (with their bus ports), so that fixtures started at
/// the same time never pick the same one between its probe and redis-server's bind.
static TAKEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// A free loopback port no fixture of this module holds; with `bus`, its port + 10000 is
/// free too, as a cluster node needs.
fn fresh_port(bus: bool) -> u16 {
    let mut taken = TAKEN.lock().expect("port list");
    for _ in 0..1000 {
        let port = free_port();
        if taken.contains(&port) {
            continue;
        }
        if bus {
            let Some(bus_port) = port.checked_add(BUS_OFFSET).filter(|p| *p < u16::MAX) else {
                continue;
            };
            if taken.contains(&bus_port)
                || std::net::TcpListener::bind(("127.0.0.1", bus_port)).is_err()
            {
                continue;
            }
            taken.insert(bus_port);
        }
        taken.insert(port);
        return port;
    }
    panic!("no free loopback port found in 1000 tries");
}

fn temp_dir(what: &str, port: u16) -> PathBuf {
    std::env::temp_dir().join(format!(
        "leasehold-{what}-{port}-{}",
        uuid::Uuid::new_v4().simple()
    ))
}

/// Runs `cmd` on the node at `port`, giving up after `timeout` (connecting, and each read
/// and write), so that a stopped or killed node is an error rather than a hang.
fn ask_within<T: redis::FromRedisValue>(
    port: u16,
    timeout: Duration,
    cmd: &redis::Cmd,
) -> redis::RedisResult<T> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}"))?;
    let mut con = client.get_connection_with_timeout(timeout)?;
    con.set_read_timeout(Some(timeout))?;
    con.set_write_timeout(Some(timeout))?;
    cmd.query(&mut con)
}

fn ask<T: redis::FromRedisValue>(port: u16, cmd: &redis::Cmd) -> redis::RedisResult<T> {
    ask_within(port, ASK_TIMEOUT, cmd)
}

/// `ROLE`'s first word: "master", "slave" or "sentinel"; None if the node does not answer.
fn role(port: u16) -> Option<String> {
    let role: Vec<redis::Value> = ask(port, &redis::cmd("ROLE")).ok()?;
    redis::from_redis_value(role.first()?.clone()).ok()
}

/// Whether the node at `port` is a replica of `primary` whose link to it is up.
fn replica_linked(port: u16, primary: u16) -> bool {
    let info: String = match ask(port, redis::cmd("INFO").arg("replication")) {
        Ok(info) => info,
        Err(_) => return false,
    };
    let has = |line: &str| info.lines().any(|l| l.trim() == line);
    has("role:slave") && has(&format!("master_port:{primary}")) && has("master_link_status:up")
}

/// What a fixture has done to a process, so it does not wait for it to answer and can
/// wake it before it is stopped for good.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Down {
    Killed,
    Stopped,
}

/// Stops every process of a fixture that it has not killed, before their guards send
/// SIGTERM: `SHUTDOWN NOSAVE NOW FORCE` (after SIGCONT, for one it stopped), then SIGKILL
/// by pid for any still listening 2 s later. The guards' SIGTERM is not enough here: a
/// stopped redis-server holds it pending, and one writing its first AOF (as a replica
/// does right after a full sync, such as an old primary just made a replica) logs that
/// it cannot exit and keeps running; either way the guard, and the drop that reaps it,
/// would wait forever. (SIGKILL for all would do, but each guard then reports "Killed"
/// on the test's stderr.)
fn stop_all(processes: &[RedisProcess], down: &Mutex<BTreeMap<u16, Down>>) {
    let down = down.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let live: Vec<&RedisProcess> = processes
        .iter()
        .filter(|p| down.get(&p.port) != Some(&Down::Killed))
        .collect();
    for process in &live {
        if down.get(&process.port) == Some(&Down::Stopped) {
            signal_quietly(process.pid, "CONT");
        }
        let _ = ask::<redis::Value>(
            process.port,
            redis::cmd("SHUTDOWN").arg("NOSAVE").arg("NOW").arg("FORCE"),
        );
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    for process in live {
        while std::net::TcpStream::connect(("127.0.0.1", process.port)).is_ok()
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        if std::net::TcpStream::connect(("127.0.0.1", process.port)).is_ok() {
            signal_quietly(process.pid, "KILL");
        }
    }
}

/// `kill -<signal> <pid>`, whether or not the process is still there.
fn signal_quietly(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stderr(std::process::Stdio::null())
        .status();
}

/// One line of `CLUSTER NODES`, as the node asked sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterNode {
    pub id: String,
    pub port: u16,
    pub primary: bool,
    /// For a replica, the id of the primary it replicates.
    pub primary_id: Option<String>,
    /// For a primary, the slot ranges it serves (inclusive), in order.
    pub slots: Vec<(u16, u16)>,
    /// Flagged `fail` or `fail?` by the node asked.
    pub failing: bool,
    /// Still in the handshake, or without an address: not yet a member.
    pub joining: bool,
}

impl ClusterNode {
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn owns(&self, slot: u16) -> bool {
        self.slots.iter().any(|&(a, b)| a <= slot && slot <= b)
    }

    /// Parses `CLUSTER NODES`. Slots being imported or migrated (`[slot-<-id]`,
    /// `[slot->-id]`) are left out: they still belong to the node listed as owning them.
    fn parse_all(text: &str) -> Vec<ClusterNode> {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                assert!(fields.len() >= 8, "a CLUSTER NODES line: {line}");
                // 127.0.0.1:7000@17000[,hostname]
                let port = fields[1]
                    .split('@')
                    .next()
                    .and_then(|addr| addr.rsplit(':').next())
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(0);
                let flags: Vec<&str> = fields[2].split(',').collect();
                let slots = fields[8..]
                    .iter()
                    .filter(|s| !s.starts_with('['))
                    .map(|s| match s.split_once('-') {
                        Some((a, b)) => (
                            a.parse().expect("a slot number"),
                            b.parse().expect("a slot number"),
                        ),
                        None => {
                            let slot = s.parse().expect("a slot number");
                            (slot, slot)
                        }
                    })
                    .collect();
                ClusterNode {
                    id: fields[0].to_owned(),
                    port,
                    primary: flags.contains(&"master"),
                    primary_id: (fields[3] != "-").then(|| fields[3].to_owned()),
                    slots,
                    failing: flags.iter().any(|f| *f == "fail" || *f == "fail?"),
                    joining: flags.iter().any(|f| *f == "handshake" || *f == "noaddr"),
                }
            })
            .collect()
    }
}

/// A Redis Cluster of 3 primaries and 3 replicas on loopback, each node fsyncing every
/// write, each stopped by its pid when the fixture drops.
pub struct RedisCluster {
    nodes: Vec<RedisProcess>,
    /// The settings every node was started with (to restart one the same way).
    args: Vec<Vec<String>>,
    down: Mutex<BTreeMap<u16, Down>>,
}

impl RedisCluster {
    /// Starts six nodes, joins them with `redis-cli --cluster create --cluster-replicas 1`
    /// and waits until every node reports `cluster_state:ok` and the same owner for
    /// every one of the 16384 slots, and every replica is in sync.
    pub fn start() -> RedisCluster {
        RedisCluster::start_with(&[])
    }

    /// As `start`, with `extra` settings for every node (such as
    /// `["--min-replicas-to-write", "1"]`).
    pub fn start_with(extra: &[&str]) -> RedisCluster {
        let mut nodes = Vec::new();
        let mut all_args = Vec::new();
        for _ in 0..6 {
            let port = fresh_port(true);
            let config_file = format!("nodes-{port}.conf");
            let timeout = CLUSTER_NODE_TIMEOUT_MS.to_string();
            let args: Vec<String> = [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                &config_file,
                "--cluster-node-timeout",
                &timeout,
            ]
            .iter()
            .chain(DURABLE)
            .chain(extra)
            .map(|s| s.to_string())
            .collect();
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            nodes.push(RedisProcess::start_on(
                port,
                &temp_dir("cluster", port),
                &refs,
            ));
            all_args.push(args);
        }
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        // `timeout`: redis-cli waits for the join without a deadline of its own.
        let output = Command::new("timeout")
            .args(["30", "redis-cli", "--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("redis-cli runs");
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let cluster = RedisCluster {
            nodes,
            args: all_args,
            down: Mutex::new(BTreeMap::new()),
        };
        cluster.wait_until_healthy();
        cluster
    }

    /// `redis://127.0.0.1:port` of every node, primaries and replicas alike (a cluster
    /// client discovers the rest from any one of them).
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisProcess::url).collect()
    }

    /// The process of the node on `port`.
    pub fn process(&self, port: u16) -> &RedisProcess {
        self.nodes
            .iter()
            .find(|n| n.port == port)
            .expect("a node of this cluster")
    }

    fn up_ports(&self) -> Vec<u16> {
        let down = self.down.lock().expect("down list");
        self.nodes
            .iter()
            .map(|n| n.port)
            .filter(|p| !down.contains_key(p))
            .collect()
    }

    /// The cluster as the first node that answers sees it.
    pub fn nodes(&self) -> Vec<ClusterNode> {
        for port in self.up_ports() {
            if let Ok(text) = ask::<String>(port, redis::cmd("CLUSTER").arg("NODES")) {
                return ClusterNode::parse_all(&text);
            }
        }
        panic!("no node of the cluster answers CLUSTER NODES");
    }

    /// The primaries that are up and not failing, by port.
    pub fn primaries(&self) -> Vec<ClusterNode> {
        self.members(true)
    }

    /// The replicas that are up and not failing, by port.
    pub fn replicas(&self) -> Vec<ClusterNode> {
        self.members(false)
    }

    fn members(&self, primary: bool) -> Vec<ClusterNode> {
        let up = self.up_ports();
        let mut nodes: Vec<ClusterNode> = self
            .nodes()
            .into_iter()
            .filter(|n| n.primary == primary && !n.failing && up.contains(&n.port))
            .collect();
        nodes.sort_by_key(|n| n.port);
        nodes
    }

    /// The replicas of `primary`.
    pub fn replicas_of(&self, primary: &ClusterNode) -> Vec<ClusterNode> {
        self.replicas()
            .into_iter()
            .filter(|r| r.primary_id.as_deref() == Some(primary.id.as_str()))
            .collect()
    }

    /// The primary that serves `slot`.
    pub fn node_for_slot(&self, slot: u16) -> ClusterNode {
        self.nodes()
            .into_iter()
            .find(|n| n.primary && n.owns(slot))
            .unwrap_or_else(|| panic!("no primary serves slot {slot}"))
    }

    /// The slot of `key`, as Redis computes it (`CLUSTER KEYSLOT`).
    pub fn slot_of(&self, key: &str) -> u16 {
        for port in self.up_ports() {
            if let Ok(slot) = ask(port, redis::cmd("CLUSTER").arg("KEYSLOT").arg(key)) {
                return slot;
            }
        }
        panic!("no node of the cluster answers CLUSTER KEYSLOT");
    }

    /// A connection to the node on `port` (no redirections followed: a key it does not
    /// serve answers MOVED).
    pub fn connection(&self, port: u16) -> redis::Connection {
        self.process(port).connection()
    }

    /// Moves exactly `slots` to the primary `to`, one slot at a time, the way
    /// `redis-cli --cluster reshard` does: mark the slot IMPORTING on `to` and MIGRATING
    /// on its owner, MIGRATE its keys in batches until the owner has none left (keys
    /// written meanwhile are redirected to `to` with ASK), then assign the slot to `to` on
    /// `to`, on the old owner and on every other primary. Returns once every node agrees.
    pub fn reshard(&self, slots: Vec<u16>, to: &ClusterNode) {
        assert!(to.primary, "reshard to a primary, not {to:?}");
        for slot in slots {
            let from = self.node_for_slot(slot);
            if from.id == to.id {
                continue;
            }
            let setslot = |port: u16, args: &[&str]| {
                let answer: String = ask(
                    port,
                    redis::cmd("CLUSTER").arg("SETSLOT").arg(slot).arg(args),
                )
                .unwrap_or_else(|e| panic!("CLUSTER SETSLOT {slot} {args:?} on {port}: {e}"));
                assert_eq!(answer, "OK");
            };
            setslot(to.port, &["IMPORTING", &from.id]);
            setslot(from.port, &["MIGRATING", &to.id]);
            let deadline = Instant::now() + SETTLE;
            loop {
                let keys: Vec<String> = ask(
                    from.port,
                    redis::cmd("CLUSTER")
                        .arg("GETKEYSINSLOT")
                        .arg(slot)
                        .arg(MIGRATE_BATCH),
                )
                .expect("CLUSTER GETKEYSINSLOT");
                if keys.is_empty() {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "slot {slot} still has keys after {SETTLE:?}"
                );
                // An empty key and KEYS: move this batch in one round trip. NOKEY (the
                // keys expired meanwhile) is fine.
                let _: String = ask_within(
                    from.port,
                    Duration::from_secs(10),
                    redis::cmd("MIGRATE")
                        .arg("127.0.0.1")
                        .arg(to.port)
                        .arg("")
                        .arg(0)
                        .arg(5000)
                        .arg("KEYS")
                        .arg(&keys),
                )
                .unwrap_or_else(|e| panic!("MIGRATE of slot {slot}: {e}"));
            }
            let owner = ["NODE", to.id.as_str()];
            setslot(to.port, &owner);
            setslot(from.port, &owner);
            for other in self.primaries() {
                if other.id != to.id && other.id != from.id {
                    setslot(other.port, &owner);
                }
            }
        }
        self.wait_until_healthy();
    }

    /// `CLUSTER FAILOVER` on `replica` (its primary must be up): returns once it reports
    /// itself primary, its old primary replicates it, and the cluster is healthy again.
    pub fn failover(&self, replica: &ClusterNode) {
        let old_primary = replica
            .primary_id
            .clone()
            .unwrap_or_else(|| panic!("failover of a replica, not {replica:?}"));
        let answer: String =
            ask(replica.port, redis::cmd("CLUSTER").arg("FAILOVER")).expect("CLUSTER FAILOVER");
        assert_eq!(answer, "OK");
        wait_for(SETTLE, "the replica to become primary", || {
            role(replica.port).as_deref() == Some("master")
        });
        wait_for(SETTLE, "the old primary to replicate the new", || {
            self.nodes()
                .iter()
                .any(|n| n.id == old_primary && n.primary_id.as_ref() == Some(&replica.id))
        });
        self.wait_until_healthy();
    }

    /// SIGKILL of one node, by pid (`wait_until_healthy` then waits for the cluster to
    /// fail it over, if it was a primary).
    pub fn kill_node(&self, node: &ClusterNode) {
        self.signal_node(node, "KILL");
    }

    /// Sends `signal` (KILL, STOP, CONT, …) to one node, by pid. Until CONT, a stopped
    /// node is left out of the fixture's questions, like a killed one.
    pub fn signal_node(&self, node: &ClusterNode, signal: &str) {
        self.process(node.port).signal(signal);
        let mut down = self.down.lock().expect("down list");
        match signal {
            "KILL" => {
                down.insert(node.port, Down::Killed);
            }
            "STOP" => {
                down.insert(node.port, Down::Stopped);
            }
            "CONT" => {
                down.remove(&node.port);
            }
            _ => {}
        }
    }

    /// Starts a killed node again on its port, with its data and its `nodes.conf` (so it
    /// rejoins as the node it was), and waits until the cluster is healthy.
    pub fn restart_node(&mut self, port: u16) {
        let index = self
            .nodes
            .iter()
            .position(|n| n.port == port)
            .expect("a node of this cluster");
        assert_eq!(
            self.down.lock().expect("down list").get(&port),
            Some(&Down::Killed),
            "restart a killed node"
        );
        let dir = self.nodes[index].dir.clone();
        let args: Vec<&str> = self.args[index].iter().map(String::as_str).collect();
        self.nodes[index] = RedisProcess::start_on(port, &dir, &args);
        self.down.lock().expect("down list").remove(&port);
        self.wait_until_healthy();
    }

    /// Waits until every node that is up reports `cluster_state:ok` with all 16384 slots
    /// assigned and served, lists every up node as a member and none of them failing,
    /// agrees with the others on the owner of every slot (each owner being up) and on who
    /// replicates whom, and every up replica has its link to its primary up. (Gossip
    /// spreads a change node by node: until the views agree, a client that asks one node
    /// may be told something another would contradict.)
    pub fn wait_until_healthy(&self) {
        let deadline = Instant::now() + SETTLE;
        loop {
            let Err(last) = self.health() else {
                return;
            };
            assert!(
                Instant::now() < deadline,
                "the cluster did not settle within {SETTLE:?}: {last}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Why the cluster is not healthy yet, if it is not.
    fn health(&self) -> Result<(), String> {
        let up = self.up_ports();
        let mut views = Vec::new();
        for &port in &up {
            let info: String = ask(port, redis::cmd("CLUSTER").arg("INFO"))
                .map_err(|e| format!("{port}: CLUSTER INFO: {e}"))?;
            for expected in [
                "cluster_state:ok",
                "cluster_slots_assigned:16384",
                "cluster_slots_ok:16384",
            ] {
                if !info.lines().any(|l| l.trim() == expected) {
                    return Err(format!("{port}: not {expected}"));
                }
            }
            let text: String = ask(port, redis::cmd("CLUSTER").arg("NODES"))
                .map_err(|e| format!("{port}: CLUSTER NODES: {e}"))?;
            let view = ClusterNode::parse_all(&text);
            for &other in &up {
                match view.iter().find(|n| n.port == other) {
                    None => return Err(format!("{port} does not know {other}")),
                    Some(n) if n.failing || n.joining => {
                        return Err(format!("{port} sees {other} failing or joining"));
                    }
                    Some(_) => {}
                }
            }
            let mut owners: Vec<(u16, u16, u16)> = view
                .iter()
                .filter(|n| n.primary)
                .flat_map(|n| n.slots.iter().map(|&(a, b)| (a, b, n.port)))
                .collect();
            owners.sort();
            if let Some(&(_, _, owner)) = owners.iter().find(|(_, _, o)| !up.contains(o)) {
                return Err(format!("{port} has slots served by {owner}, which is down"));
            }
            let myself = view.iter().find(|n| n.port == port);
            if let Some(primary_id) = myself.and_then(|n| n.primary_id.as_ref()) {
                let primary = view
                    .iter()
                    .find(|n| &n.id == primary_id)
                    .map_or(0, |n| n.port);
                if !replica_linked(port, primary) {
                    return Err(format!("replica {port} is not in sync with {primary}"));
                }
            }
            // Who replicates whom, among the nodes that are up (0: a primary).
            let mut roles: Vec<(u16, u16)> = view
                .iter()
                .filter(|n| up.contains(&n.port))
                .map(|n| {
                    let primary = n
                        .primary_id
                        .as_ref()
                        .and_then(|id| view.iter().find(|p| &p.id == id))
                        .map_or(0, |p| p.port);
                    (n.port, primary)
                })
                .collect();
            roles.sort();
            views.push((port, owners, roles));
        }
        let Some((first, owners, roles)) = views.first() else {
            return Err("every node is down".into());
        };
        for (port, other_owners, other_roles) in &views[1..] {
            if other_owners != owners {
                return Err(format!(
                    "{port} and {first} disagree on the slots: {other_owners:?} against \
                     {owners:?}"
                ));
            }
            if other_roles != roles {
                return Err(format!(
                    "{port} and {first} disagree on the roles: {other_roles:?} against \
                     {roles:?}"
                ));
            }
        }
        Ok(())
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        stop_all(&self.nodes, &self.down);
    }
}

/// A primary, 2 replicas (each fsyncing every write) and 3 sentinels (quorum 2, down
/// after 1 s), on loopback; every process stopped by its pid when the fixture drops.
pub struct Sentinel {
    pub master_name: String,
    /// The data nodes: the first primary at start, then its replicas.
    nodes: Vec<RedisProcess>,
    /// The settings every data node was started with, except `--replicaof`.
    args: Vec<String>,
    sentinels: Vec<RedisProcess>,
    down: Mutex<BTreeMap<u16, Down>>,
}

impl Sentinel {
    pub const DOWN_AFTER_MS: u64 = 1000;
    pub const FAILOVER_TIMEOUT_MS: u64 = 5000;
    /// How long `wait_until_settled` waits. A primary that comes back after a failover
    /// is turned into a replica only once a sentinel's INFO (every 10 s for a replica)
    /// finds it has claimed to be a primary for over 8 s: 10 to 20 s after it returns.
    pub const SETTLE: Duration = Duration::from_secs(40);

    /// Starts the primary and its two replicas, waits until both are in sync, then starts
    /// the three sentinels and waits until each knows the primary, both replicas (in
    /// sync) and the two other sentinels (which it needs to win a failover election).
    pub fn start(master_name: &str) -> Sentinel {
        Sentinel::start_with(master_name, &[])
    }

    /// As `start`, with `extra` settings for the primary and the replicas (such as
    /// `["--min-replicas-to-write", "1"]`).
    pub fn start_with(master_name: &str, extra: &[&str]) -> Sentinel {
        let args: Vec<String> = DURABLE.iter().chain(extra).map(|s| s.to_string()).collect();
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let primary_port = fresh_port(false);
        let mut nodes = vec![RedisProcess::start_on(
            primary_port,
            &temp_dir("primary", primary_port),
            &refs,
        )];
        let primary = primary_port.to_string();
        for _ in 0..2 {
            let port = fresh_port(false);
            let mut replica_args = vec!["--replicaof", "127.0.0.1", primary.as_str()];
            replica_args.extend(&refs);
            nodes.push(RedisProcess::start_on(
                port,
                &temp_dir("replica", port),
                &replica_args,
            ));
        }
        wait_for(SETTLE, "both replicas to sync with the primary", || {
            nodes[1..]
                .iter()
                .all(|n| replica_linked(n.port, primary_port))
        });
        let mut sentinels = Vec::new();
        for _ in 0..3 {
            let port = fresh_port(false);
            let dir = temp_dir("sentinel", port);
            std::fs::create_dir_all(&dir).expect("sentinel dir");
            let config = dir.join("sentinel.conf");
            std::fs::write(
                &config,
                format!(
                    "sentinel monitor {master_name} 127.0.0.1 {primary_port} 2\n\
                     sentinel down-after-milliseconds {master_name} {}\n\
                     sentinel failover-timeout {master_name} {}\n\
                     sentinel parallel-syncs {master_name} 1\n",
                    Sentinel::DOWN_AFTER_MS,
                    Sentinel::FAILOVER_TIMEOUT_MS
                ),
            )
            .expect("sentinel.conf");
            sentinels.push(RedisProcess::start_with_config(
                &config,
                port,
                &dir,
                &["--sentinel"],
            ));
        }
        let sentinel = Sentinel {
            master_name: master_name.to_owned(),
            nodes,
            args,
            sentinels,
            down: Mutex::new(BTreeMap::new()),
        };
        sentinel.wait_until_settled();
        sentinel
    }

    /// `redis://127.0.0.1:port` of every sentinel.
    pub fn sentinel_urls(&self) -> Vec<String> {
        self.sentinels.iter().map(RedisProcess::url).collect()
    }

    pub fn sentinels(&self) -> &[RedisProcess] {
        &self.sentinels
    }

    /// The primary's port, as the first sentinel that answers names it.
    pub fn primary_port(&self) -> u16 {
        for sentinel in &self.sentinels {
            if let Some(port) = self.named_by(sentinel.port) {
                return port;
            }
        }
        panic!("no sentinel names a primary for {}", self.master_name);
    }

    /// The primary's `redis://` URL, as the sentinels name it
    /// (`SENTINEL GET-MASTER-ADDR-BY-NAME`).
    pub fn primary_url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.primary_port())
    }

    /// The data node the sentinels name primary.
    pub fn primary(&self) -> &RedisProcess {
        self.node(self.primary_port())
    }

    /// The data nodes other than the one the sentinels name primary, that the fixture has
    /// not killed or stopped (an old primary that came back counts, though it is a
    /// replica only once the sentinels have demoted it: see `wait_until_settled`).
    pub fn replicas(&self) -> Vec<&RedisProcess> {
        let primary = self.primary_port();
        let down = self.down.lock().expect("down list");
        self.nodes
            .iter()
            .filter(|n| n.port != primary && !down.contains_key(&n.port))
            .collect()
    }

    /// The data node on `port`.
    pub fn node(&self, port: u16) -> &RedisProcess {
        self.nodes
            .iter()
            .find(|n| n.port == port)
            .expect("a data node of this setup")
    }

    /// SIGKILL of the primary, by pid; returns its port (for `wait_for_failover`).
    pub fn kill_primary(&self) -> u16 {
        self.signal_primary("KILL", Down::Killed)
    }

    /// SIGSTOP of the primary, by pid; returns its port. `resume` sends it SIGCONT.
    pub fn stop_primary(&self) -> u16 {
        self.signal_primary("STOP", Down::Stopped)
    }

    fn signal_primary(&self, signal: &str, how: Down) -> u16 {
        let primary = self.primary();
        primary.signal(signal);
        self.down
            .lock()
            .expect("down list")
            .insert(primary.port, how);
        primary.port
    }

    /// SIGCONT to a node the fixture stopped. Once the sentinels have failed it over, it
    /// comes back a primary, until they turn it into a replica of the new one.
    pub fn resume(&self, port: u16) {
        let mut down = self.down.lock().expect("down list");
        assert_eq!(
            down.get(&port),
            Some(&Down::Stopped),
            "resume a stopped node"
        );
        self.node(port).signal("CONT");
        down.remove(&port);
    }

    /// Starts a killed data node again on its port with its data, as a replica of the node
    /// on `primary` (as an operator brings a failed node back; the sentinels would demote
    /// it if it came back a primary, but only 10 to 20 s later).
    pub fn restart_as_replica_of(&mut self, port: u16, primary: u16) {
        assert_eq!(
            self.down.lock().expect("down list").get(&port),
            Some(&Down::Killed),
            "restart a killed node"
        );
        let index = self
            .nodes
            .iter()
            .position(|n| n.port == port)
            .expect("a data node of this setup");
        let dir = self.nodes[index].dir.clone();
        let primary = primary.to_string();
        let mut args = vec!["--replicaof", "127.0.0.1", primary.as_str()];
        args.extend(self.args.iter().map(String::as_str));
        self.nodes[index] = RedisProcess::start_on(port, &dir, &args);
        self.down.lock().expect("down list").remove(&port);
    }

    /// The port of the primary the sentinel on `port` names, if it answers.
    fn named_by(&self, port: u16) -> Option<u16> {
        let addr: Option<(String, u16)> = ask(
            port,
            redis::cmd("SENTINEL")
                .arg("GET-MASTER-ADDR-BY-NAME")
                .arg(&self.master_name),
        )
        .ok()?;
        addr.map(|(_, port)| port)
    }

    /// Waits until every sentinel names a primary other than `old_primary_port` and that
    /// node answers `ROLE` as master; returns how long that took from the call (call it
    /// right after the fault, and it is the window in which no primary could be found).
    /// The wait allows for one failed election, which the sentinels retry after twice
    /// the failover timeout.
    pub fn wait_for_failover(&self, old_primary_port: u16) -> Duration {
        let start = Instant::now();
        let limit = Duration::from_millis(4 * Sentinel::FAILOVER_TIMEOUT_MS) + SETTLE;
        loop {
            let named: Vec<Option<u16>> = self
                .sentinels
                .iter()
                .map(|s| self.named_by(s.port))
                .collect();
            let agreed =
                named.first().copied().flatten().filter(|new| {
                    *new != old_primary_port && named.iter().all(|n| *n == Some(*new))
                });
            if agreed.is_some_and(|new| role(new).as_deref() == Some("master")) {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < limit,
                "no failover from {old_primary_port} within {limit:?}; the sentinels name {named:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until every sentinel names the same primary, which answers as master, lists
    /// every other data node that is up as a replica (with no down flag) and knows the
    /// two other sentinels, and each of those replicas reports its link to that primary
    /// up. After a failover, this is when the remaining replica follows the new primary,
    /// and when an old primary that came back has been made a replica (see `SETTLE`).
    /// (A sentinel's own view of a replica's link lags by up to 10 s, so the link is
    /// asked of the replica.)
    pub fn wait_until_settled(&self) {
        let deadline = Instant::now() + Sentinel::SETTLE;
        loop {
            let Err(last) = self.settled() else {
                return;
            };
            assert!(
                Instant::now() < deadline,
                "the sentinel setup did not settle within {:?}: {last}",
                Sentinel::SETTLE
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn settled(&self) -> Result<(), String> {
        let named: Vec<Option<u16>> = self
            .sentinels
            .iter()
            .map(|s| self.named_by(s.port))
            .collect();
        let Some(Some(primary)) = named.first().copied() else {
            return Err("the first sentinel names no primary".into());
        };
        if named.iter().any(|n| *n != Some(primary)) {
            return Err(format!("the sentinels name {named:?}"));
        }
        if role(primary).as_deref() != Some("master") {
            return Err(format!("{primary} does not answer as master"));
        }
        let replicas: Vec<u16> = {
            let down = self.down.lock().expect("down list");
            self.nodes
                .iter()
                .map(|n| n.port)
                .filter(|p| *p != primary && !down.contains_key(p))
                .collect()
        };
        for sentinel in &self.sentinels {
            let listed: Vec<Vec<String>> = ask(
                sentinel.port,
                redis::cmd("SENTINEL")
                    .arg("REPLICAS")
                    .arg(&self.master_name),
            )
            .map_err(|e| format!("sentinel {}: SENTINEL REPLICAS: {e}", sentinel.port))?;
            let fields: Vec<BTreeMap<&str, &str>> = listed
                .iter()
                .map(|r| {
                    r.chunks(2)
                        .filter_map(|kv| Some((kv.first()?.as_str(), kv.get(1)?.as_str())))
                        .collect()
                })
                .collect();
            for &replica in &replicas {
                let port = replica.to_string();
                let known = fields.iter().any(|f| {
                    f.get("port") == Some(&port.as_str()) && f.get("flags") == Some(&"slave")
                });
                if !known {
                    return Err(format!(
                        "sentinel {} does not list {replica} as a replica that is up: \
                         {fields:?}",
                        sentinel.port
                    ));
                }
            }
            let others: Vec<redis::Value> = ask(
                sentinel.port,
                redis::cmd("SENTINEL")
                    .arg("SENTINELS")
                    .arg(&self.master_name),
            )
            .map_err(|e| format!("sentinel {}: SENTINEL SENTINELS: {e}", sentinel.port))?;
            if others.len() < self.sentinels.len() - 1 {
                return Err(format!(
                    "sentinel {} knows {} other sentinels",
                    sentinel.port,
                    others.len()
                ));
            }
        }
        if let Some(replica) = replicas.iter().find(|p| !replica_linked(**p, primary)) {
            return Err(format!("{replica} is not a replica of {primary} in sync"));
        }
        Ok(())
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        stop_all(&self.nodes, &self.down);
        stop_all(&self.sentinels, &Mutex::new(BTreeMap::new()));
    }
}

// ---------------------------------------------------------------------------------------
// The fixtures' own tests.

/// Every slot is served by exactly one primary.
fn assert_all_slots_covered_once(primaries: &[ClusterNode]) {
    let mut ranges: Vec<(u16, u16)> = primaries.iter().flat_map(|p| p.slots.clone()).collect();
    ranges.sort();
    let mut next = 0u16;
    for (a, b) in ranges {
        assert_eq!(a, next, "slots from {next} on are missing or served twice");
        next = b + 1;
    }
    assert_eq!(next, SLOTS, "slots from {next} on are served by nobody");
}

/// A key of the slot's owner fails with MOVED anywhere else, naming the owner.
fn assert_moved(result: redis::RedisResult<redis::Value>, owner: u16) {
    let error = result.expect_err("a node that does not serve the slot refuses it");
    assert_eq!(error.code(), Some("MOVED"), "{error}");
    let owner = format!("127.0.0.1:{owner}");
    assert_eq!(
        error.redirect_node().map(|(address, _slot)| address),
        Some(owner.as_str()),
        "{error}"
    );
}

#[test]
fn cluster_forms_with_three_primaries_and_three_replicas_covering_every_slot() {
    let started = Instant::now();
    let cluster = RedisCluster::start();
    println!("cluster formed in {:?}", started.elapsed());
    assert_eq!(cluster.urls().len(), 6);
    let primaries = cluster.primaries();
    let replicas = cluster.replicas();
    assert_eq!(primaries.len(), 3, "{primaries:#?}");
    assert_eq!(replicas.len(), 3, "{replicas:#?}");
    assert_all_slots_covered_once(&primaries);
    for primary in &primaries {
        assert_eq!(
            cluster.replicas_of(primary).len(),
            1,
            "each primary has one replica: {replicas:#?}"
        );
    }
    for node in primaries.iter().chain(&replicas) {
        let info: String = redis::cmd("INFO")
            .arg("persistence")
            .query(&mut cluster.connection(node.port))
            .expect("INFO persistence");
        assert!(info.contains("aof_enabled:1"), "every node fsyncs its AOF");
    }
    for slot in [0, 5460, 5461, 10922, 10923, SLOTS - 1] {
        assert!(cluster.node_for_slot(slot).owns(slot));
    }
}

#[test]
fn one_pool_tag_lands_on_one_node_and_its_scripts_run_there() {
    let cluster = RedisCluster::start();
    let tag = format!("{{tenant/{}}}", pool_name());
    let (items, fence) = (format!("lh:{tag}:items"), format!("lh:{tag}:fence"));
    let slot = cluster.slot_of(&items);
    assert_eq!(cluster.slot_of(&fence), slot, "one tag, one slot");
    let owner = cluster.node_for_slot(slot);

    let script = "redis.call('HSET', KEYS[1], 'a', ARGV[1]) \
                  return {redis.call('INCR', KEYS[2]), redis.call('HGET', KEYS[1], 'a')}";
    let eval = |port: u16, keys: [&str; 2]| -> redis::RedisResult<redis::Value> {
        redis::cmd("EVAL")
            .arg(script)
            .arg(2)
            .arg(&keys)
            .arg("data")
            .query(&mut cluster.connection(port))
    };
    let (token, value): (i64, String) =
        redis::from_redis_value(eval(owner.port, [&items, &fence]).expect("EVAL on the owner"))
            .expect("token and value");
    assert_eq!((token, value.as_str()), (1, "data"));

    let elsewhere = cluster
        .primaries()
        .into_iter()
        .find(|p| p.id != owner.id)
        .expect("another primary");
    assert_moved(eval(elsewhere.port, [&items, &fence]), owner.port);

    // Without the shared tag, the same script is refused: what the tags prevent.
    let untagged = (0..1000)
        .map(|i| format!("lh:{{tenant/other-{i}}}:fence"))
        .find(|k| cluster.slot_of(k) != slot && owner.owns(cluster.slot_of(k)))
        .expect("another slot of the same node");
    let error = eval(owner.port, [&items, &untagged]).expect_err("keys of two slots");
    assert_eq!(error.code(), Some("CROSSSLOT"), "{error}");
}

#[test]
fn reshard_moves_exactly_the_slot_of_a_pool_with_its_keys() {
    let cluster = RedisCluster::start();
    let tag = format!("{{tenant/{}}}", pool_name());
    let keys: Vec<String> = (0..250).map(|i| format!("lh:{tag}:k{i}")).collect();
    let slot = cluster.slot_of(&keys[0]);
    let from = cluster.node_for_slot(slot);
    let mut con = cluster.connection(from.port);
    for (i, key) in keys.iter().enumerate() {
        let () = redis::cmd("SET")
            .arg(key)
            .arg(i)
            .query(&mut con)
            .expect("SET on the owner");
    }
    let to = cluster
        .primaries()
        .into_iter()
        .find(|p| p.id != from.id)
        .expect("another primary");
    let neighbour = if slot > 0 { slot - 1 } else { slot + 1 };
    let neighbour_owner = cluster.node_for_slot(neighbour);

    let started = Instant::now();
    cluster.reshard(vec![slot], &to);
    println!(
        "moved slot {slot} ({} keys) from {} to {} in {:?}",
        keys.len(),
        from.port,
        to.port,
        started.elapsed()
    );

    assert_eq!(cluster.node_for_slot(slot).id, to.id);
    assert_eq!(
        cluster.node_for_slot(neighbour).id,
        neighbour_owner.id,
        "only that slot moved"
    );
    let mut con = cluster.connection(to.port);
    for (i, key) in keys.iter().enumerate() {
        let value: Option<usize> = redis::cmd("GET")
            .arg(key)
            .query(&mut con)
            .expect("GET on the new owner");
        assert_eq!(value, Some(i), "{key} moved with its slot");
    }
    let count: usize = redis::cmd("CLUSTER")
        .arg("COUNTKEYSINSLOT")
        .arg(slot)
        .query(&mut cluster.connection(from.port))
        .expect("COUNTKEYSINSLOT");
    assert_eq!(count, 0, "nothing left behind");
    assert_moved(
        redis::cmd("GET")
            .arg(&keys[0])
            .query(&mut cluster.connection(from.port)),
        to.port,
    );
}

#[test]
fn cluster_failover_swaps_a_primary_and_its_replica() {
    let cluster = RedisCluster::start();
    let primary = cluster.primaries().remove(0);
    let replica = cluster.replicas_of(&primary).remove(0);
    let key = (0..1000)
        .map(|i| format!("lh:{{tenant/failover-{i}}}:fence"))
        .find(|k| primary.owns(cluster.slot_of(k)))
        .expect("a key of that primary");
    let mut con = cluster.connection(primary.port);
    let () = redis::cmd("SET")
        .arg(&key)
        .arg("before")
        .query(&mut con)
        .expect("SET");
    let acknowledged: i64 = redis::cmd("WAIT")
        .arg(1)
        .arg(5000)
        .query(&mut con)
        .expect("WAIT");
    assert_eq!(acknowledged, 1, "the replica has the write");

    let started = Instant::now();
    cluster.failover(&replica);
    println!(
        "failover of {} to {} in {:?}",
        primary.port,
        replica.port,
        started.elapsed()
    );

    let promoted = cluster
        .primaries()
        .into_iter()
        .find(|p| p.id == replica.id)
        .expect("the replica is a primary");
    assert_eq!(
        promoted.slots, primary.slots,
        "with the old primary's slots"
    );
    let demoted = cluster
        .replicas()
        .into_iter()
        .find(|r| r.id == primary.id)
        .expect("the old primary is a replica");
    assert_eq!(demoted.primary_id.as_deref(), Some(replica.id.as_str()));
    let value: Option<String> = redis::cmd("GET")
        .arg(&key)
        .query(&mut cluster.connection(replica.port))
        .expect("GET on the new primary");
    assert_eq!(value.as_deref(), Some("before"));
    assert_moved(
        redis::cmd("GET")
            .arg(&key)
            .query(&mut cluster.connection(primary.port)),
        replica.port,
    );
}

#[test]
fn cluster_replaces_a_killed_primary_and_takes_it_back_as_a_replica() {
    let mut cluster = RedisCluster::start();
    let primary = cluster.primaries().remove(0);
    let replica = cluster.replicas_of(&primary).remove(0);
    assert!(cluster.urls().contains(&primary.url()));

    let started = Instant::now();
    cluster.kill_node(&primary);
    cluster.wait_until_healthy();
    println!(
        "SIGKILL of primary {}: the cluster was whole again {:?} later",
        primary.port,
        started.elapsed()
    );
    let promoted = cluster
        .primaries()
        .into_iter()
        .find(|p| p.id == replica.id)
        .expect("its replica took over");
    assert_eq!(promoted.slots, primary.slots);
    assert_eq!(cluster.primaries().len(), 3);
    assert_eq!(cluster.replicas().len(), 2);

    cluster.restart_node(primary.port);
    let back = cluster
        .replicas()
        .into_iter()
        .find(|r| r.id == primary.id)
        .expect("the old primary rejoined, as the same node");
    assert_eq!(back.primary_id.as_deref(), Some(replica.id.as_str()));
    assert_eq!(cluster.replicas().len(), 3);
}

#[test]
fn sentinels_report_the_primary_and_its_two_replicas() {
    let started = Instant::now();
    let setup = Sentinel::start("leasehold");
    println!("sentinel setup settled in {:?}", started.elapsed());
    assert_eq!(setup.sentinel_urls().len(), 3);
    let primary = setup.primary();
    assert_eq!(setup.primary_url(), primary.url());
    assert_eq!(role(primary.port).as_deref(), Some("master"));
    let replicas = setup.replicas();
    assert_eq!(replicas.len(), 2);
    for replica in &replicas {
        assert_eq!(role(replica.port).as_deref(), Some("slave"));
    }
    for sentinel in setup.sentinels() {
        assert_eq!(role(sentinel.port).as_deref(), Some("sentinel"));
    }
    let mut con = primary.connection();
    let () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut con)
        .expect("SET");
    let acknowledged: i64 = redis::cmd("WAIT")
        .arg(2)
        .arg(5000)
        .query(&mut con)
        .expect("WAIT");
    assert_eq!(acknowledged, 2, "both replicas acknowledge");
}

/// The longest the sentinels may take to promote a replica after the primary dies:
/// 1 s to notice, then agreement, election and promotion (a split vote would cost
/// twice the failover timeout more, and fail this).
const FAILOVER_BOUND: Duration = Duration::from_secs(8);

#[test]
fn sentinels_promote_a_replica_when_the_primary_is_killed() {
    let setup = Sentinel::start("leasehold");
    let mut con = setup.primary().connection();
    let () = redis::cmd("SET")
        .arg("before")
        .arg("1")
        .query(&mut con)
        .expect("SET");
    let acknowledged: i64 = redis::cmd("WAIT")
        .arg(2)
        .arg(5000)
        .query(&mut con)
        .expect("WAIT");
    assert_eq!(acknowledged, 2);

    let old = setup.kill_primary();
    let window = setup.wait_for_failover(old);
    let started = Instant::now();
    setup.wait_until_settled();
    println!(
        "SIGKILL of the primary: no primary for {window:?}; the other replica followed \
         {:?} later",
        started.elapsed()
    );
    assert!(
        window < FAILOVER_BOUND,
        "failover took {window:?}, over {FAILOVER_BOUND:?}"
    );
    let primary = setup.primary();
    assert_ne!(primary.port, old);
    assert_eq!(setup.replicas().len(), 1);
    let mut con = primary.connection();
    let before: Option<String> = redis::cmd("GET")
        .arg("before")
        .query(&mut con)
        .expect("GET");
    assert_eq!(
        before.as_deref(),
        Some("1"),
        "the acknowledged write survived"
    );
    let () = redis::cmd("SET")
        .arg("after")
        .arg("1")
        .query(&mut con)
        .expect("the new primary takes writes");
    let acknowledged: i64 = redis::cmd("WAIT")
        .arg(1)
        .arg(5000)
        .query(&mut con)
        .expect("WAIT");
    assert_eq!(
        acknowledged, 1,
        "the remaining replica follows the new primary"
    );
}

#[test]
fn sentinels_fail_over_a_stopped_primary_which_comes_back_still_primary() {
    let setup = Sentinel::start("leasehold");
    let old = setup.stop_primary();
    let window = setup.wait_for_failover(old);
    assert!(
        window < FAILOVER_BOUND,
        "failover took {window:?}, over {FAILOVER_BOUND:?}"
    );
    println!("SIGSTOP of the primary: no primary for {window:?}");
    setup.resume(old);
    // Back, it still takes itself for the primary (the split brain the durability tests
    // are about) while the sentinels name the new one; they demote it 10 to 20 s later
    // (`Sentinel::SETTLE`), which this test does not wait for.
    wait_for(
        Duration::from_secs(5),
        "the old primary to answer again",
        || role(old).is_some(),
    );
    assert_eq!(role(old).as_deref(), Some("master"));
    assert_ne!(setup.primary_port(), old);
    assert_eq!(
        setup.replicas().len(),
        2,
        "the resumed node counts as up again"
    );
}

/// The contract suite runs against the topology `LEASEHOLD_TEST_TOPOLOGY` asks for, so a
/// green cluster pass means the contract held on a Cluster, not on a lone server.
#[test]
fn the_contract_suite_runs_on_the_topology_asked_for() {
    let wanted = std::env::var("LEASEHOLD_TEST_TOPOLOGY").unwrap_or_default();
    match redis().topology() {
        leasehold::store::Topology::Cluster(urls) => {
            assert_eq!(wanted, "cluster");
            assert_eq!(urls.len(), 6);
        }
        leasehold::store::Topology::Single(_) => assert_ne!(wanted, "cluster"),
        other => panic!("unexpected test topology {other:?}"),
    }
}

/// An app on a Cluster spreads pools over every primary (each pool's keys on one slot),
/// and every operation works whichever primary holds the pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pools_spread_over_every_primary_and_work_on_each() {
    let cluster = tokio::task::spawn_blocking(RedisCluster::start)
        .await
        .expect("the cluster starts");
    let app = spawn_app_with(Options {
        topology: Some(leasehold::store::Topology::Cluster(cluster.urls())),
        ..Options::default()
    })
    .await;
    let mut owners = BTreeSet::new();
    for n in 0..30 {
        let pool = format!("spread-{n}");
        app.add_items(&pool, &["a", "b"]).await;
        let lease = app.claim(&pool, "alice").await.expect("a lease");
        app.post(
            &format!(
                "/v1/pools/{pool}/items/{}/complete",
                lease["id"].as_str().expect("id")
            ),
            serde_json::json!({"holder": "alice", "token": lease["token"]}),
        )
        .await
        .expect(200);
        let key = format!("lh:{{{}/{pool}}}:pool", app.tenant);
        owners.insert(cluster.node_for_slot(cluster.slot_of(&key)).port);
    }
    let primaries: BTreeSet<u16> = cluster.primaries().iter().map(|p| p.port).collect();
    assert_eq!(owners, primaries, "30 pools did not reach every primary");
}
