//! The fixtures' own tests: a Redis Cluster and a Sentinel setup form, reshard, fail over
//! and settle as the service's tests expect of them (`fixtures/`).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::fixtures::*;
use crate::helpers::*;

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
    if skipped_on_topology_rerun("it starts its own Cluster or Sentinel") {
        return;
    }
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
    if skipped_on_topology_rerun("it starts its own Cluster or Sentinel") {
        return;
    }
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
    if skipped_on_topology_rerun("it starts its own Cluster or Sentinel") {
        return;
    }
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
    if skipped_on_topology_rerun("it starts its own Cluster or Sentinel") {
        return;
    }
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
    if skipped_on_topology_rerun("it starts its own Cluster or Sentinel") {
        return;
    }
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
    if skipped_on_topology_rerun("it starts its own Cluster or Sentinel") {
        return;
    }
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
    if skipped_on_topology_rerun("it starts its own Cluster or Sentinel") {
        return;
    }
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
