//! `--durability replicas:N`: a write is acknowledged only once N replicas have it, and a
//! read only while N replicas are in step. With a real replica that stops answering, writes
//! fail fast with 503 `durability_timeout`, and a retry with the same Idempotency-Key, once
//! the replica is back, finds the write made once.

use std::time::{Duration, Instant};

use leasehold::store::Durability;
use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

/// A primary and one replica, in sync.
fn primary_with_replica() -> (RedisProcess, RedisProcess) {
    let primary = RedisProcess::start(&[]);
    let replica = RedisProcess::start(&["--replicaof", "127.0.0.1", &primary.port.to_string()]);
    wait_for(Duration::from_secs(15), "the replica to sync", || {
        let info: String = redis::cmd("INFO")
            .arg("replication")
            .query(&mut replica.connection())
            .expect("INFO");
        info.contains("master_link_status:up")
    });
    (primary, replica)
}

#[test]
fn durability_is_async_fsync_or_replicas_n() {
    assert_eq!("async".parse(), Ok(Durability::Async));
    assert_eq!("fsync".parse(), Ok(Durability::Fsync));
    assert_eq!("replicas:2".parse(), Ok(Durability::Replicas(2)));
    for bad in [
        "replicas:0",
        "replicas:17",
        "replicas:",
        "replicas",
        "sync",
        "",
    ] {
        assert!(bad.parse::<Durability>().is_err(), "{bad} accepted");
    }
    assert_eq!(Durability::Replicas(3).to_string(), "replicas:3");
}

#[tokio::test]
async fn writes_are_acknowledged_once_a_replica_has_them() {
    let (primary, replica) = primary_with_replica();
    let app = spawn_app_with(Options {
        redis_url: Some(primary.url()),
        durability: Some(Durability::Replicas(1)),
        ..Options::default()
    })
    .await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    let lease = app.claim(&pool, "alice").await.expect("a lease");
    // Acknowledged means on the replica: read it there.
    let leased: bool = redis::cmd("EXISTS")
        .arg(
            leasehold::store::keys::pool_keys(
                &app.tenant,
                &leasehold::names::PoolName::parse("pool", &pool).expect("valid"),
                None,
            )[3]
            .clone(),
        )
        .query(&mut replica.connection())
        .expect("EXISTS");
    assert!(leased, "the lease is not on the replica: {lease}");
}

#[tokio::test]
async fn a_write_no_replica_acknowledges_is_503_and_its_retry_applies_it_once() {
    let (primary, replica) = primary_with_replica();
    let timeout_ms = 600;
    let app = spawn_app_with(Options {
        redis_url: Some(primary.url()),
        durability: Some(Durability::Replicas(1)),
        redis_timeout_ms: Some(timeout_ms),
        ..Options::default()
    })
    .await;
    let pool = pool_name();
    app.add_items(&pool, &["a", "b"]).await;
    let claim = || {
        app.request(Method::POST, &format!("/v1/pools/{pool}/claim"))
            .header("idempotency-key", "claim-1")
            .json(&json!({"holder": "alice"}))
    };

    replica.signal("STOP");
    let started = Instant::now();
    let refused = app.send(claim()).await;
    let took = started.elapsed();
    replica.signal("CONT");
    assert!(refused.header("retry-after").is_some());
    refused.expect_problem(503, "durability_timeout");
    assert!(
        took < Duration::from_millis(2 * timeout_ms),
        "took {took:?}"
    );

    // The replica catches up; the retry replays the write that was made, and only it.
    let mut retried = None;
    for _ in 0..50 {
        let reply = app.send(claim()).await;
        if reply.status.is_success() {
            retried = Some(reply);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let retried = retried.expect("the retry succeeds once the replica is back");
    assert_eq!(retried.header("idempotent-replayed"), Some("true"));
    let leases = retried.body["leases"].as_array().expect("leases").clone();
    assert_eq!(leases.len(), 1);
    let counts = app.get(&format!("/v1/pools/{pool}")).await.expect(200)["counts"].clone();
    assert_eq!(
        counts["leased"], 1,
        "the claim was made exactly once: {counts}"
    );
    assert_eq!(counts["available"], 1);
}

/// Under `replicas:N` a read also confirms that N replicas are in step with the primary it
/// reads from: a deposed primary (its replicas gone to the new one) must not answer stale
/// data. Here the only replica stops: the read fails fast instead of answering.
#[tokio::test]
async fn a_read_without_its_replicas_in_step_is_503_not_stale() {
    let (primary, replica) = primary_with_replica();
    let app = spawn_app_with(Options {
        redis_url: Some(primary.url()),
        durability: Some(Durability::Replicas(1)),
        redis_timeout_ms: Some(600),
        ..Options::default()
    })
    .await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    // In step, reads answer (on a busy machine the replica may first need a moment).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let read = app.get(&format!("/v1/pools/{pool}/items/a")).await;
        if read.status == 200 || std::time::Instant::now() > deadline {
            read.expect(200);
            break;
        }
    }
    replica.signal("STOP");
    let item = app.get(&format!("/v1/pools/{pool}/items/a")).await;
    replica.signal("CONT");
    item.expect_problem(503, "backend_unavailable");
}
