//! `--durability replicas:N`: a write is acknowledged only once N replicas have it, and
//! nothing is read that N replicas do not have. With a real replica that stops answering,
//! writes fail fast with 503 `durability_timeout`, a retry with the same Idempotency-Key,
//! once the replica is back, finds the write made once, and every read path answers 503
//! rather than state a failover could take back: one primary with its replica here, and
//! the same through Sentinel.

use std::time::{Duration, Instant};

use leasehold::store::{Durability, Topology};
use reqwest::Method;
use serde_json::{Value, json};

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
    if skipped_on_topology_rerun("it starts its own primaries and replicas") {
        return;
    }
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
    if skipped_on_topology_rerun("it starts its own primaries and replicas") {
        return;
    }
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
            )[3]
            .clone(),
        )
        .query(&mut replica.connection())
        .expect("EXISTS");
    assert!(leased, "the lease is not on the replica: {lease}");
}

#[tokio::test]
async fn a_write_no_replica_acknowledges_is_503_and_its_retry_applies_it_once() {
    if skipped_on_topology_rerun("it starts its own primaries and replicas") {
        return;
    }
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

// ---------------------------------------------------------------------------------------
// Every read path, with the replicas stalled

/// An app over a primary whose replicas the test stops (SIGSTOP) and resumes: writes made
/// meanwhile are on the primary alone, and a failover would take them back.
///
/// Writes go through `app` and reads through `reader`, another replica of the service (as
/// behind a load balancer): a read must not count on sharing a connection with the write.
struct Stalling<'a> {
    app: TestApp,
    reader: TestApp,
    /// A replica of the service over the same Redis with `async` durability: it writes
    /// without waiting for anyone.
    lax: TestApp,
    primary: &'a RedisProcess,
    replicas: Vec<&'a RedisProcess>,
}

/// How long the app gives Redis (and `WAIT` half of it).
const STALL_TIMEOUT_MS: u64 = 600;

impl Stalling<'_> {
    fn stop(&self) {
        for replica in &self.replicas {
            replica.signal("STOP");
        }
    }

    fn resume(&self) {
        for replica in &self.replicas {
            replica.signal("CONT");
        }
    }

    /// A write made while the replicas are stopped: applied on the primary only, so
    /// acknowledged to nobody.
    async fn unacknowledged(&self, method: Method, path: &str, body: Value) {
        let reply = self
            .app
            .send(self.app.request(method, path).json(&body))
            .await;
        reply.expect_problem(503, "durability_timeout");
    }

    /// A read while the replicas are stopped: it must not answer.
    async fn refused(&self, path: &str) {
        let reply = self.reader.get(path).await;
        assert_eq!(
            reply.status.as_u16(),
            503,
            "{path} answered what no replica has: {:?}",
            reply.body
        );
        assert_eq!(
            reply.code(),
            "backend_unavailable",
            "{path}: {:?}",
            reply.body
        );
        assert!(reply.header("retry-after").is_some(), "{path}");
    }

    /// Once the replicas are back, the read answers, with the write they caught up on.
    async fn answers(&self, path: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let reply = self.reader.get(path).await;
            if reply.status.is_success() || Instant::now() > deadline {
                return reply.expect(200);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// How many `WAIT`s the primary has run.
    fn waits(&self) -> u64 {
        command_calls(&mut self.primary.connection())
            .into_iter()
            .find(|(name, _)| name == "wait")
            .map_or(0, |(_, calls)| calls)
    }
}

fn single(primary: &RedisProcess) -> Options {
    Options {
        redis_url: Some(primary.url()),
        durability: Some(Durability::Replicas(1)),
        redis_timeout_ms: Some(STALL_TIMEOUT_MS),
        ..Options::default()
    }
}

/// Runs `check` against an app over a primary and its one replica.
macro_rules! on_a_primary_with_a_replica {
    ($check:ident) => {{
        let (primary, replica) = primary_with_replica();
        let app = spawn_app_with(single(&primary)).await;
        let reader = replica_of(&app, single(&primary)).await;
        let lax = replica_of(
            &app,
            Options {
                redis_url: Some(primary.url()),
                ..Options::default()
            },
        )
        .await;
        let stalling = Stalling {
            app,
            reader,
            lax,
            primary: &primary,
            replicas: vec![&replica],
        };
        $check(&stalling).await;
    }};
}

/// The incident: a counter drawn while the replica is stopped (503, not acknowledged) must
/// not be read back, or a failover makes the counter go back for whoever read it.
async fn counter_reads(s: &Stalling<'_>) {
    let name = pool_name();
    let next = format!("/v1/counters/{name}/next");
    let value = format!("/v1/counters/{name}?period=none");
    let drawn = s
        .app
        .post(&next, json!({"period": "none"}))
        .await
        .expect(200);
    assert_eq!(drawn["values"], json!([1]));
    s.answers(&value).await;
    s.stop();
    s.unacknowledged(Method::POST, &next, json!({"period": "none", "count": 5}))
        .await;
    s.refused(&value).await;
    s.resume();
    assert_eq!(s.answers(&value).await["value"], 6);
}

async fn item_reads(s: &Stalling<'_>) {
    let pool = pool_name();
    s.app.add_items(&pool, &["a"]).await;
    let item = format!("/v1/pools/{pool}/items/a");
    s.answers(&item).await;
    s.stop();
    s.unacknowledged(Method::PUT, &item, json!({"data": {"n": 2}}))
        .await;
    s.refused(&item).await;
    s.resume();
    assert_eq!(s.answers(&item).await["data"], json!({"n": 2}));
}

async fn item_listings(s: &Stalling<'_>) {
    let pool = pool_name();
    s.app.add_items(&pool, &["a"]).await;
    let items = format!("/v1/pools/{pool}/items");
    s.stop();
    let add = json!({"items": [{"id": "b"}]});
    s.unacknowledged(Method::POST, &items, add).await;
    s.refused(&items).await;
    s.resume();
    assert_eq!(
        s.answers(&items).await["items"].as_array().map(Vec::len),
        Some(2)
    );
}

async fn pool_reads(s: &Stalling<'_>) {
    let pool = pool_name();
    s.app.add_items(&pool, &["a"]).await;
    let path = format!("/v1/pools/{pool}");
    s.stop();
    let items = format!("/v1/pools/{pool}/items");
    s.unacknowledged(Method::POST, &items, json!({"items": [{"id": "b"}]}))
        .await;
    s.refused(&path).await;
    s.resume();
    assert_eq!(s.answers(&path).await["counts"]["available"], 2);
}

async fn pool_listings(s: &Stalling<'_>) {
    let pool = pool_name();
    s.stop();
    s.unacknowledged(Method::PUT, &format!("/v1/pools/{pool}"), json!({}))
        .await;
    s.refused("/v1/pools").await;
    s.resume();
    let listed = s.answers("/v1/pools").await;
    // (The write that was not acknowledged in time was kept: the replica caught up.)
    let names: Vec<&str> = listed["pools"]
        .as_array()
        .expect("pools")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(names.contains(&pool.as_str()), "{listed}");
}

async fn lease_listings(s: &Stalling<'_>) {
    let pool = pool_name();
    s.app.add_items(&pool, &["a"]).await;
    let leases = format!("/v1/pools/{pool}/leases?holder=alice");
    s.stop();
    let claim = format!("/v1/pools/{pool}/claim");
    s.unacknowledged(Method::POST, &claim, json!({"holder": "alice"}))
        .await;
    s.refused(&leases).await;
    s.resume();
    assert_eq!(s.answers(&leases).await["leases"][0]["id"], "a");
}

async fn event_pages(s: &Stalling<'_>) {
    let pool = pool_name();
    s.app.add_items(&pool, &["a"]).await;
    let events = format!("/v1/pools/{pool}/events");
    s.stop();
    let items = format!("/v1/pools/{pool}/items");
    s.unacknowledged(Method::POST, &items, json!({"items": [{"id": "b"}]}))
        .await;
    s.refused(&events).await;
    s.resume();
    assert_eq!(s.answers(&events).await["events"][1]["item"], "b");
}

/// A follower of the live stream is sent no event before the replicas have it, though the
/// stream's reader reads the log (and is refused) while they are stopped.
async fn event_streams(s: &Stalling<'_>) {
    let pool = pool_name();
    s.app.add_items(&pool, &["a"]).await;
    let mut stream = crate::events::follow(&s.reader, &pool, None, None).await;
    assert_eq!(stream.expect_event().await.event, "added");
    s.stop();
    let items = format!("/v1/pools/{pool}/items");
    s.unacknowledged(Method::POST, &items, json!({"items": [{"id": "b"}]}))
        .await;
    // The reader polls every half second: let it read (and wait) twice while stalled.
    let waits = s.waits();
    let deadline = Instant::now() + Duration::from_secs(15);
    while s.waits() < waits + 2 {
        assert!(Instant::now() < deadline, "the stream's reader never read");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let resumed = Instant::now();
    s.resume();
    let event = stream.expect_event().await;
    let delivered = Instant::now();
    assert_eq!(event.event, "added");
    assert!(event.data.contains("\"b\""), "{event:?}");
    assert!(
        delivered > resumed,
        "the event was sent before any replica had it"
    );
}

/// A long-poll claim woken by an item added while the replicas are stopped may grant it,
/// but not answer before a replica has the grant.
async fn long_poll_answers(s: &Stalling<'_>) {
    let pool = pool_name();
    s.app.add_items(&pool, &["a"]).await;
    let claim = format!("/v1/pools/{pool}/claim");
    s.app
        .post(&claim, json!({"holder": "first"}))
        .await
        .expect(200);
    let waiting = s
        .reader
        .request(Method::POST, &claim)
        .json(&json!({"holder": "waiter", "wait_ms": 10_000}))
        .send();
    let before = s.waits();
    let waiting = tokio::spawn(waiting);
    // The waiter is waiting once its first try found nothing.
    let deadline = Instant::now() + Duration::from_secs(15);
    while s.waits() <= before {
        assert!(Instant::now() < deadline, "the long poll never tried");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.stop();
    let items = format!("/v1/pools/{pool}/items");
    s.unacknowledged(Method::POST, &items, json!({"items": [{"id": "b"}]}))
        .await;
    let answer = waiting
        .await
        .expect("the waiter finishes")
        .expect("the waiter is answered");
    let status = answer.status().as_u16();
    let body: Value = answer.json().await.expect("JSON");
    s.resume();
    assert_eq!(status, 503, "a grant no replica has was answered: {body}");
    assert_eq!(body["code"], "durability_timeout", "{body}");
}

/// A retry with the same Idempotency-Key replays the stored answer only once the replicas
/// have it: a stored answer is state like any other. (A PATCH reads the item before it
/// writes, which the stall refuses; so its stored answer is made by a replica of the
/// service that does not wait for acknowledgements.)
async fn replayed_answers(s: &Stalling<'_>) {
    let pool = pool_name();
    s.app.add_items(&pool, &["a", "b"]).await;
    let claim = |app: &TestApp| {
        app.request(Method::POST, &format!("/v1/pools/{pool}/claim"))
            .header("idempotency-key", "claim-once")
            .json(&json!({"holder": "alice"}))
    };
    let patch = |app: &TestApp| {
        app.request(Method::PATCH, &format!("/v1/pools/{pool}/items/b"))
            .header("idempotency-key", "patch-once")
            .json(&json!({"data": {"n": 1}}))
    };
    s.stop();
    s.app
        .send(claim(&s.app))
        .await
        .expect_problem(503, "durability_timeout");
    s.lax.send(patch(&s.lax)).await.expect(200);
    let requests: [&dyn Fn(&TestApp) -> reqwest::RequestBuilder; 2] = [&claim, &patch];
    for request in requests {
        let retried = s.reader.send(request(&s.reader)).await;
        assert_eq!(
            retried.status.as_u16(),
            503,
            "an answer no replica has was replayed: {:?}",
            retried.body
        );
    }
    s.resume();
    for request in requests {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let reply = s.reader.send(request(&s.reader)).await;
            if reply.status.is_success() || Instant::now() > deadline {
                assert_eq!(reply.header("idempotent-replayed"), Some("true"));
                reply.expect(200);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test]
async fn a_counter_read_never_shows_a_draw_no_replica_has() {
    if skipped_on_topology_rerun("it starts its own primaries and replicas") {
        return;
    }
    on_a_primary_with_a_replica!(counter_reads);
}

#[tokio::test]
async fn an_item_read_never_shows_a_write_no_replica_has() {
    if skipped_on_topology_rerun("it starts its own primaries and replicas") {
        return;
    }
    on_a_primary_with_a_replica!(item_reads);
}

#[tokio::test]
async fn an_item_listing_never_shows_an_add_no_replica_has() {
    if skipped_on_topology_rerun("it starts its own primaries and replicas") {
        return;
    }
    on_a_primary_with_a_replica!(item_listings);
}

#[tokio::test]
async fn a_pool_read_never_counts_an_add_no_replica_has() {
    if skipped_on_topology_rerun("it starts its own primaries and replicas") {
        return;
    }
    on_a_primary_with_a_replica!(pool_reads);
}

#[tokio::test]
async fn the_pool_listing_never_shows_a_pool_no_replica_has() {
    if skipped_on_topology_rerun("it starts its own primaries and replicas") {
        return;
    }
    on_a_primary_with_a_replica!(pool_listings);
}

#[tokio::test]
async fn a_lease_listing_never_shows_a_grant_no_replica_has() {
    if skipped_on_topology_rerun("it starts its own primaries and replicas") {
        return;
    }
    on_a_primary_with_a_replica!(lease_listings);
}

#[tokio::test]
async fn an_event_page_never_shows_an_event_no_replica_has() {
    if skipped_on_topology_rerun("it starts its own primaries and replicas") {
        return;
    }
    on_a_primary_with_a_replica!(event_pages);
}

#[tokio::test]
async fn an_event_stream_sends_no_event_before_a_replica_has_it() {
    if skipped_on_topology_rerun("it starts its own primaries and replicas") {
        return;
    }
    on_a_primary_with_a_replica!(event_streams);
}

#[tokio::test]
async fn a_long_poll_claim_never_answers_a_grant_no_replica_has() {
    if skipped_on_topology_rerun("it starts its own primaries and replicas") {
        return;
    }
    on_a_primary_with_a_replica!(long_poll_answers);
}

#[tokio::test]
async fn a_retry_never_replays_an_answer_no_replica_has() {
    if skipped_on_topology_rerun("it starts its own primaries and replicas") {
        return;
    }
    on_a_primary_with_a_replica!(replayed_answers);
}

/// The same, through Sentinel (a primary, two replicas, three sentinels): every read path
/// in turn, with both replicas stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_sentinel_no_read_path_shows_what_no_replica_has() {
    if skipped_on_topology_rerun("it starts its own primaries and replicas") {
        return;
    }
    let sentinel = tokio::task::spawn_blocking(|| crate::fixtures::Sentinel::start("durable"))
        .await
        .expect("the sentinels start");
    let topology = Topology::Sentinel {
        urls: sentinel.sentinel_urls(),
        master: sentinel.master_name.clone(),
        auth: None,
    };
    let strict = || Options {
        topology: Some(topology.clone()),
        durability: Some(Durability::Replicas(1)),
        redis_timeout_ms: Some(STALL_TIMEOUT_MS),
        ..Options::default()
    };
    let app = spawn_app_with(strict()).await;
    let reader = replica_of(&app, strict()).await;
    let lax = replica_of(
        &app,
        Options {
            topology: Some(topology),
            ..Options::default()
        },
    )
    .await;
    let s = Stalling {
        app,
        reader,
        lax,
        primary: sentinel.primary(),
        replicas: sentinel.replicas(),
    };
    assert_eq!(s.replicas.len(), 2);
    counter_reads(&s).await;
    item_reads(&s).await;
    item_listings(&s).await;
    pool_reads(&s).await;
    pool_listings(&s).await;
    lease_listings(&s).await;
    event_pages(&s).await;
    event_streams(&s).await;
    long_poll_answers(&s).await;
    replayed_answers(&s).await;
}
