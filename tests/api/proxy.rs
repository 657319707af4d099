//! Network faults between the service and Redis, made by the user-space TCP proxy of
//! `fixtures/proxy.rs`, whose `Mode` a test switches at run time (pass, blackhole, delay
//! with jitter, drop, reset): its own tests, and the tests that put it between in-process
//! apps and a real redis-server. They prove that requests fail within their
//! timeout with 503 `backend_unavailable` and `Retry-After` and recover once the network
//! does, that a small delay only slows requests, and that under load with the faults
//! cycling the history checkers find nothing acknowledged lost or handed out twice.
//!
//! The seed of the proxy's and the clients' choices is printed; set LEASEHOLD_CHAOS_SEED to
//! replay one, and LEASEHOLD_CHAOS_SECONDS to run the load test longer.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use leasehold::contend;
use leasehold::store::ConnectionMode;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

use crate::fixtures::proxy::{Mode, Proxy};
use crate::helpers::*;

// ---------------------------------------------------------------------------------------
// The tests.

/// The apps give up on a Redis call after this long and answer 503.
const TIMEOUT_MS: u64 = 500;
/// A request during a fault must be answered within this: a handful of bounded Redis
/// calls at most, plus slack for a debug build on shared cores.
const FAIL_FAST: Duration = Duration::from_millis(3 * TIMEOUT_MS + 500);
/// How long a request may hang before the test calls it hung (well past FAIL_FAST).
const HUNG: Duration = Duration::from_secs(10);

fn seed() -> u64 {
    std::env::var("LEASEHOLD_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random)
}

fn load_seconds() -> u64 {
    std::env::var("LEASEHOLD_CHAOS_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6)
}

fn address_of(redis: &RedisProcess) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], redis.port))
}

/// An in-process app whose every Redis connection goes through `proxy`.
async fn app_behind(proxy: &Proxy) -> TestApp {
    app_behind_with(proxy, ConnectionMode::Auto).await
}

async fn app_behind_with(proxy: &Proxy, connections: ConnectionMode) -> TestApp {
    spawn_app_with(Options {
        redis_url: Some(proxy.url()),
        redis_timeout_ms: Some(TIMEOUT_MS),
        connections: Some(connections),
        ..Options::default()
    })
    .await
}

/// What the fault tests send: a claim, a version-checked write and a counter draw, in a
/// pool of items, a pool holding one register, and a counter of their own.
struct Target {
    pool: String,
    registers: String,
    counter: String,
}

impl Target {
    async fn create(app: &TestApp) -> Target {
        let target = Target {
            pool: pool_name(),
            registers: pool_name(),
            counter: format!("c-{}", uuid::Uuid::new_v4().simple()),
        };
        let ids: Vec<String> = (0..20).map(|n| format!("i{n}")).collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        app.add_items(&target.pool, &ids).await;
        app.put(&target.register(), json!({"data": {"n": 0}}))
            .await
            .expect(201);
        target
    }

    fn register(&self) -> String {
        format!("/v1/pools/{}/items/r", self.registers)
    }

    /// The three requests, each with the time it took to be answered.
    async fn requests(
        &self,
        app: &TestApp,
        if_match: &str,
    ) -> Vec<(&'static str, Reply, Duration)> {
        let claim = app
            .request(Method::POST, &format!("/v1/pools/{}/claim", self.pool))
            .json(&json!({"holder": "h"}));
        let put = app
            .request(Method::PUT, &self.register())
            .header("If-Match", if_match)
            .json(&json!({"data": {"n": 1}}));
        let draw = app
            .request(Method::POST, &format!("/v1/counters/{}/next", self.counter))
            .json(&json!({}));
        let mut replies = Vec::new();
        for (what, request) in [
            ("claim", claim),
            ("PUT If-Match", put),
            ("counter draw", draw),
        ] {
            let started = Instant::now();
            let reply = app.send(request.timeout(HUNG)).await;
            replies.push((what, reply, started.elapsed()));
        }
        replies
    }

    /// The register's current ETag, read while the network is healthy.
    async fn etag(&self, app: &TestApp) -> String {
        let reply = app.get(&self.register()).await;
        assert_eq!(reply.status, 200, "reading the register: {:#?}", reply.body);
        reply.header("etag").expect("an ETag").to_owned()
    }
}

/// A 503 `backend_unavailable` with Retry-After, in time, telling nothing of Redis.
#[track_caller]
fn assert_unavailable(fault: Mode, what: &str, reply: Reply, took: Duration) {
    assert!(
        took < FAIL_FAST,
        "{fault:?}: the {what} took {took:?} (bound {FAIL_FAST:?})"
    );
    let retry_after = reply.header("retry-after").unwrap_or_default().to_owned();
    assert!(
        retry_after.parse::<u64>().is_ok_and(|secs| secs > 0),
        "{fault:?}: the {what} has Retry-After {retry_after:?}"
    );
    let body = reply.expect_problem(503, "backend_unavailable");
    let text = body.to_string().to_lowercase();
    for leak in [
        "redis",
        "refused",
        "os error",
        "broken pipe",
        "io error",
        "ioerror",
        "reset",
        "eof",
        "timed out",
        "127.0.0.1",
    ] {
        assert!(
            !text.contains(leak),
            "{fault:?}: the {what}'s body leaks {leak:?}: {body:#}"
        );
    }
}

/// Under `fault`, every request fails fast with 503 (twice: once meeting the app's open
/// connections, once its new ones); back in `Pass`, they succeed again. Both ways of using
/// connections: shared (multiplexed) and pooled.
async fn fails_fast_then_recovers(fault: Mode) {
    for connections in [ConnectionMode::Shared, ConnectionMode::Pooled] {
        fails_fast_then_recovers_with(fault, connections).await;
    }
}

async fn fails_fast_then_recovers_with(fault: Mode, connections: ConnectionMode) {
    let redis = RedisProcess::start(&[]);
    let proxy = Proxy::start(address_of(&redis), seed()).await;
    let app = app_behind_with(&proxy, connections).await;
    let target = Target::create(&app).await;

    proxy.set_mode(fault);
    let mut slowest = Duration::ZERO;
    for _ in 0..2 {
        for (what, reply, took) in target.requests(&app, "\"1\"").await {
            assert_unavailable(fault, what, reply, took);
            slowest = slowest.max(took);
        }
    }

    proxy.set_mode(Mode::Pass);
    let healing = Instant::now();
    // The app's pool may still hold connections the fault spoiled; each is found out and
    // replaced on use, so poll rather than expect the first request to pass.
    eventually(
        Duration::from_secs(20),
        "requests to succeed again",
        || async {
            let etag = match app.get(&target.register()).await {
                reply if reply.status == 200 => reply.header("etag").unwrap_or_default().to_owned(),
                _ => return false,
            };
            let replies = target.requests(&app, &etag).await;
            replies.iter().all(|(_, reply, _)| reply.status == 200)
        },
    )
    .await;
    let healed = healing.elapsed();
    let etag = target.etag(&app).await;
    for (what, reply, _) in target.requests(&app, &etag).await {
        assert_eq!(
            reply.status, 200,
            "{fault:?}, healed: the {what}: {:#?}",
            reply.body
        );
    }
    println!(
        "proxy {fault:?}, {connections:?} connections: 6 requests answered 503 backend_unavailable with Retry-After, the slowest in {} ms (bound {} ms); healed {} ms after Pass",
        slowest.as_millis(),
        FAIL_FAST.as_millis(),
        healed.as_millis()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackholed_redis_is_503_within_the_timeout_then_heals() {
    if skipped_on_topology_rerun("it puts a proxy in front of one redis-server") {
        return;
    }
    fails_fast_then_recovers(Mode::Blackhole).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_slower_than_the_timeout_is_503_within_it_then_heals() {
    if skipped_on_topology_rerun("it puts a proxy in front of one redis-server") {
        return;
    }
    fails_fast_then_recovers(Mode::Delay {
        base: Duration::from_millis(1500),
        jitter: Duration::from_millis(100),
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_redis_connections_are_503_then_heal() {
    if skipped_on_topology_rerun("it puts a proxy in front of one redis-server") {
        return;
    }
    fails_fast_then_recovers(Mode::Reset).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_redis_connections_are_503_then_heal() {
    if skipped_on_topology_rerun("it puts a proxy in front of one redis-server") {
        return;
    }
    fails_fast_then_recovers(Mode::Drop { probability: 1.0 }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delay_below_the_timeout_only_slows_requests() {
    if skipped_on_topology_rerun("it puts a proxy in front of one redis-server") {
        return;
    }
    let redis = RedisProcess::start(&[]);
    let proxy = Proxy::start(address_of(&redis), seed()).await;
    let app = app_behind(&proxy).await;
    let target = Target::create(&app).await;
    proxy.set_mode(Mode::Delay {
        base: Duration::from_millis(50),
        jitter: Duration::from_millis(30),
    });
    let (mut fastest, mut slowest) = (Duration::MAX, Duration::ZERO);
    for _ in 0..3 {
        let etag = target.etag(&app).await;
        for (what, reply, took) in target.requests(&app, &etag).await {
            assert_eq!(
                reply.status, 200,
                "the {what} under a small delay: {:#?}",
                reply.body
            );
            // Out and back, each held at least 20 ms: the delay was felt.
            assert!(
                took >= Duration::from_millis(40),
                "the {what} took only {took:?}"
            );
            fastest = fastest.min(took);
            slowest = slowest.max(took);
        }
    }
    println!(
        "proxy Delay 50 ± 30 ms: 9 requests all 200, in {} to {} ms",
        fastest.as_millis(),
        slowest.as_millis()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faults_cycling_under_load_lose_and_repeat_nothing() {
    if skipped_on_topology_rerun("it puts a proxy in front of one redis-server") {
        return;
    }
    let seed = seed();
    let backend = RedisProcess::start(&[]);
    let proxy = Proxy::start(address_of(&backend), seed).await;
    let first = app_behind(&proxy).await;
    let mut urls = vec![first.url("")];
    for _ in 0..2 {
        let replica = replica_of(
            &first,
            Options {
                redis_url: Some(proxy.url()),
                redis_timeout_ms: Some(TIMEOUT_MS),
                ..Options::default()
            },
        )
        .await;
        urls.push(replica.url(""));
    }
    let duration = Duration::from_secs(load_seconds());
    let run = tokio::spawn(contend::run(contend::Options {
        urls,
        key: Some(first.key.clone()),
        clients: 32,
        items: 2000,
        duration,
        batch: 4,
        lease_ms: 2000,
        seed,
        request_timeout: Duration::from_secs(3),
        progress: false,
    }));

    // The run sets up its pools first; faults start once its clients have claimed (a
    // pool's fencing counter exists only after a grant), read directly from Redis rather
    // than through the proxy. Waiting only for the setup's last write to land in Redis
    // let a fault catch its answer on the way back, failing the setup.
    let pattern = format!("lh:{{{}/contend-*}}:fence", first.tenant);
    eventually(
        Duration::from_secs(30),
        "the run's clients to start",
        || async {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(&pattern)
                .query(&mut backend.connection())
                .expect("KEYS");
            !keys.is_empty()
        },
    )
    .await;
    let phase = Duration::from_millis(800);
    let cycle = [
        Mode::Blackhole,
        // Some chunks held past the apps' timeout (their writes may land after the 503),
        // some not.
        Mode::Delay {
            base: Duration::from_millis(400),
            jitter: Duration::from_millis(300),
        },
        Mode::Reset,
        Mode::Drop { probability: 0.3 },
        Mode::Pass,
    ];
    // Leave the last second healthy, so the run ends by reading its final state.
    let faults_end = Instant::now() + duration.saturating_sub(Duration::from_secs(1));
    let mut faults = 0;
    for mode in cycle.iter().cycle() {
        if Instant::now() + phase > faults_end {
            break;
        }
        proxy.set_mode(*mode);
        if *mode != Mode::Pass {
            faults += 1;
        }
        tokio::time::sleep(phase).await;
    }
    proxy.set_mode(Mode::Pass);

    let run = run
        .await
        .expect("the run finished")
        .expect("the run was set up");
    let c = &run.check;
    println!(
        "proxy faults cycling: {} operations checked ({} ok, {} failed, {} unknown), {faults} faults injected, {} retries, {} anomalies, seed {}",
        c.operations,
        c.ok,
        c.fail,
        c.unknown,
        run.retries,
        c.anomalies.len(),
        run.seed
    );
    assert!(run.passed(), "{}", run.table());
    assert!(
        c.operations > 500,
        "too little load to prove anything: {}",
        run.table()
    );
    assert!(
        c.unknown > 0 || run.retries > 0,
        "no client felt the faults:\n{}",
        run.table()
    );
    for cause in run.unknown_causes.keys() {
        assert!(
            cause == "503 backend_unavailable" || cause == "connection" || cause == "timeout",
            "a client saw more than an unavailable backend: {cause}\n{}",
            run.table()
        );
    }
}

/// A loopback echo server for the proxy's own tests; it lives as long as the test.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port for the echo server");
    let addr = listener.local_addr().expect("the echo server's address");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut read, mut write) = stream.split();
                let _ = tokio::io::copy(&mut read, &mut write).await;
            });
        }
    });
    addr
}

/// Sends `bytes` and reads back as many, concurrently (large payloads would otherwise
/// fill both directions' buffers).
async fn round_trip(stream: &mut TcpStream, bytes: &[u8]) -> Vec<u8> {
    let (mut read, mut write) = stream.split();
    let mut back = vec![0u8; bytes.len()];
    let (sent, received) = tokio::join!(write.write_all(bytes), read.read_exact(&mut back));
    sent.expect("bytes sent through the proxy");
    received.expect("bytes echoed back through the proxy");
    back
}

/// True when the stream has been closed by the peer: EOF or a reset, not a hang.
async fn closed(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    // A write may succeed into the buffer before the reset arrives; the read tells.
    let _ = stream.write_all(b"ping").await;
    match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
        Ok(Ok(0)) => true,
        Ok(Err(e)) => matches!(
            e.kind(),
            std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::BrokenPipe
        ),
        Ok(Ok(_)) | Err(_) => false,
    }
}

/// True when a new connection to `addr` is closed by the peer; a reset may come so fast
/// that the connect itself reports it.
async fn new_connection_closed(addr: SocketAddr) -> bool {
    match TcpStream::connect(addr).await {
        Ok(mut stream) => closed(&mut stream).await,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_passes_bytes_unchanged_holds_them_in_order_blackholes_and_resets() {
    if skipped_on_topology_rerun("it puts a proxy in front of one redis-server") {
        return;
    }
    let proxy = Proxy::start(echo_server().await, 7).await;
    let live = proxy.live_tasks();
    let mut rng = StdRng::seed_from_u64(7);
    let payload: Vec<u8> = (0..256 * 1024).map(|_| rng.random()).collect();

    // Pass: a quarter of a megabyte, unchanged.
    let mut stream = TcpStream::connect(proxy.addr()).await.expect("connect");
    assert!(
        round_trip(&mut stream, &payload).await == payload,
        "Pass changed bytes"
    );

    // Delay with jitter: many small chunks, each held, none reordered.
    proxy.set_mode(Mode::Delay {
        base: Duration::from_millis(5),
        jitter: Duration::from_millis(4),
    });
    let started = Instant::now();
    for chunk in payload[..4096].chunks(97) {
        assert!(
            round_trip(&mut stream, chunk).await == chunk,
            "Delay reordered bytes"
        );
    }
    // 43 round trips, each held at least 1 ms out and 1 ms back.
    assert!(
        started.elapsed() >= Duration::from_millis(43 * 2),
        "no delay felt"
    );

    // Blackhole: the existing connection goes silent, and so does a new one.
    proxy.set_mode(Mode::Blackhole);
    let mut fresh = TcpStream::connect(proxy.addr()).await.expect("connect");
    for silent in [&mut stream, &mut fresh] {
        silent
            .write_all(b"hello")
            .await
            .expect("written into the void");
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_millis(300), silent.read(&mut buf)).await;
        assert!(read.is_err(), "a blackholed read returned {read:?}");
    }

    // Back to Pass: a new connection works, and the one that lost bytes stays silent.
    proxy.set_mode(Mode::Pass);
    let mut healed = TcpStream::connect(proxy.addr()).await.expect("connect");
    assert!(round_trip(&mut healed, b"again").await == b"again");
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_millis(300), stream.read(&mut buf)).await;
    assert!(read.is_err(), "a stream with a hole was resumed: {read:?}");

    // Reset: the live connection is reset, and so is a new one.
    proxy.set_mode(Mode::Reset);
    assert!(
        closed(&mut healed).await,
        "an existing connection survived Reset"
    );
    assert!(
        new_connection_closed(proxy.addr()).await,
        "a new connection survived Reset"
    );

    // Drop(1.0): new connections are closed at once.
    proxy.set_mode(Mode::Drop { probability: 1.0 });
    assert!(
        new_connection_closed(proxy.addr()).await,
        "a new connection survived Drop(1.0)"
    );

    // Every task the proxy started ends with it, even with connections still open.
    proxy.set_mode(Mode::Pass);
    let mut open = TcpStream::connect(proxy.addr()).await.expect("connect");
    assert!(round_trip(&mut open, b"open").await == b"open");
    assert!(
        live.load(Ordering::SeqCst) >= 2,
        "the accept loop and a connection"
    );
    drop(proxy);
    eventually(
        Duration::from_secs(5),
        "the proxy's tasks to end",
        || async { live.load(Ordering::SeqCst) == 0 },
    )
    .await;
    assert!(closed(&mut open).await, "a connection outlived the proxy");
}
