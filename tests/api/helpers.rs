//! The test harness: the shared backend (a real `redis-server` from
//! `fixtures/redis_server.rs` on a free loopback port, one per test binary, stopped by its
//! own pid when the binary exits), and `TestApp`, the real router served on port 0 with two
//! fresh tenants, so tests run in parallel without flushing anything.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use leasehold::auth::{self, Auth};
use leasehold::config::{LogFormat, ServerArgs, Settings};
use leasehold::names::Tenant;
use leasehold::store::{ConnectionMode, Durability, Topology};
use reqwest::{Method, StatusCode, header::HeaderMap};
use serde_json::{Value, json};

pub use crate::fixtures::redis_server::RedisProcess;
pub use crate::fixtures::skipped_on_topology_rerun;

/// The Redis the contract suite runs against, shared by every test of this binary: one
/// server by default, with the default user off and the app connecting as the minimal
/// `leasehold` user of `deploy/leasehold.acl` (so a command the ACL lacks fails a test), or with `LEASEHOLD_TEST_TOPOLOGY=cluster` a real Redis Cluster of
/// three primaries and three replicas (so the same tests prove the same contract there).
pub enum Backend {
    Single(RedisProcess),
    Cluster(crate::fixtures::RedisCluster),
}

impl Backend {
    /// How the app reaches it.
    pub fn topology(&self) -> Topology {
        match self {
            Backend::Single(redis) => Topology::Single(redis.app_url()),
            Backend::Cluster(cluster) => Topology::Cluster(cluster.urls()),
        }
    }

    /// The URL the app connects with (on a Cluster: the first node's).
    pub fn url(&self) -> String {
        match self {
            Backend::Single(redis) => redis.app_url(),
            Backend::Cluster(cluster) => cluster.urls()[0].clone(),
        }
    }

    /// A connection for looking inside Redis; on a Cluster it follows redirections, and
    /// sends KEYS to every primary.
    pub fn connection(&self) -> TestConnection {
        match self {
            Backend::Single(redis) => TestConnection::Single(redis.connection()),
            Backend::Cluster(cluster) => TestConnection::Cluster(Box::new(
                redis::cluster::ClusterClient::new(cluster.urls())
                    .expect("cluster client")
                    .get_connection()
                    .expect("cluster connection"),
            )),
        }
    }
}

/// A synchronous connection to the backend, whichever it is.
pub enum TestConnection {
    Single(redis::Connection),
    Cluster(Box<redis::cluster::ClusterConnection>),
}

impl redis::ConnectionLike for TestConnection {
    fn req_packed_command(&mut self, cmd: &[u8]) -> redis::RedisResult<redis::Value> {
        match self {
            TestConnection::Single(c) => c.req_packed_command(cmd),
            TestConnection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> redis::RedisResult<Vec<redis::Value>> {
        match self {
            TestConnection::Single(c) => c.req_packed_commands(cmd, offset, count),
            TestConnection::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn req_command(&mut self, cmd: &redis::Cmd) -> redis::RedisResult<redis::Value> {
        match self {
            TestConnection::Single(c) => c.req_command(cmd),
            TestConnection::Cluster(c) => c.req_command(cmd),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            TestConnection::Single(c) => c.get_db(),
            TestConnection::Cluster(c) => c.get_db(),
        }
    }

    fn check_connection(&mut self) -> bool {
        match self {
            TestConnection::Single(c) => c.check_connection(),
            TestConnection::Cluster(c) => c.check_connection(),
        }
    }

    fn is_open(&self) -> bool {
        match self {
            TestConnection::Single(c) => c.is_open(),
            TestConnection::Cluster(c) => c.is_open(),
        }
    }
}

/// The shared backend, started on first use.
pub fn redis() -> &'static Backend {
    static BACKEND: OnceLock<Backend> = OnceLock::new();
    BACKEND.get_or_init(
        || match std::env::var("LEASEHOLD_TEST_TOPOLOGY").as_deref() {
            Ok("cluster") => Backend::Cluster(crate::fixtures::RedisCluster::start()),
            _ => Backend::Single(RedisProcess::start_locked(&[])),
        },
    )
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Redis's clock, the one leases expire and days change by, in milliseconds.
pub fn redis_now_ms() -> i64 {
    let (secs, micros): (i64, i64) = redis::cmd("TIME")
        .query(&mut redis().connection())
        .expect("TIME");
    secs * 1000 + micros / 1000
}

/// An app over a redis-server of its own (with the ACL users, as the shared one), for a
/// test that counts Redis's work, changes its users' rights or stops it.
pub async fn app_on_own_redis() -> (RedisProcess, TestApp) {
    app_on_own_redis_with(Options::default()).await
}

/// As `app_on_own_redis`, with other `options` (its Redis is the app's own whatever they say).
pub async fn app_on_own_redis_with(options: Options) -> (RedisProcess, TestApp) {
    let redis = RedisProcess::start_locked(&[]);
    let app = spawn_app_with(Options {
        redis_url: Some(redis.app_url()),
        ..options
    })
    .await;
    (redis, app)
}

/// How many functions and scripts a redis-server has run (`FCALL`, `EVALSHA`, `EVAL`).
pub fn scripts_run(redis: &RedisProcess) -> u64 {
    command_calls(&mut redis.connection())
        .into_iter()
        .filter(|(name, _)| ["fcall", "evalsha", "eval"].contains(&name.as_str()))
        .map(|(_, calls)| calls)
        .sum()
}

/// How many times Redis ran each command (`INFO commandstats`), by lower-case name.
pub fn command_calls(redis: &mut impl redis::ConnectionLike) -> Vec<(String, u64)> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(redis)
        .expect("INFO commandstats");
    info.lines()
        .filter_map(|line| {
            let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = stats
                .split(',')
                .find_map(|s| s.strip_prefix("calls="))?
                .parse()
                .ok()?;
            Some((name.to_owned(), calls))
        })
        .collect()
}

/// Polls an async condition (an HTTP or Redis round trip) until it holds, failing the test
/// after `timeout`.
pub async fn eventually(timeout: Duration, what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls `condition` (blocking: for fixtures outside async code) until it holds, failing
/// the test after `timeout`.
pub fn wait_for(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An answer: status, headers and the JSON body (`Value::Null` when empty).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The problem `code` of an error answer.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or_default()
    }

    /// Asserts the status and returns the body.
    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected answer: {:#?}",
            self.body
        );
        self.body
    }

    /// Asserts a problem+json answer with this status and code.
    #[track_caller]
    pub fn expect_problem(self, status: u16, code: &str) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected answer: {:#?}",
            self.body
        );
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{:#?}",
            self.body
        );
        assert_eq!(self.code(), code, "{:#?}", self.body);
        self.body
    }
}

/// The app under test, served in-process on a random port against the shared Redis.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    /// The API key of the tenant requests use by default, and its tenant.
    pub key: String,
    pub tenant: Tenant,
    /// A second tenant's key, for isolation tests.
    pub other_key: String,
    pub key_file: PathBuf,
    /// The app's key table (clones share it): `auth.reload()` re-reads `key_file`, as a
    /// SIGHUP does in the binary.
    pub auth: Auth,
    pub redis_url: String,
}

/// Changes to the default settings for one test.
#[derive(Default)]
pub struct Options {
    pub max_body_bytes: Option<usize>,
    pub redis_url: Option<String>,
    pub redis_timeout_ms: Option<u64>,
    pub durability: Option<Durability>,
    /// Another Redis topology than the shared backend (such as a Cluster of the test's own).
    pub topology: Option<Topology>,
    /// How the app uses its Redis connections (default: `auto`).
    pub connections: Option<ConnectionMode>,
    /// Requests per second per tenant (default: no limit), and the burst.
    pub rate_limit: Option<u32>,
    pub rate_burst: Option<u32>,
    /// The CA and client certificate for a `rediss://` Redis.
    pub tls: Option<leasehold::store::TlsCertificates>,
    /// How long a live event stream lasts at most (default an hour).
    pub stream_max_secs: Option<u64>,
    /// The connection limits (defaults: 10 s, 30 s, from the fd limit, 10 s).
    pub header_timeout_secs: Option<u64>,
    pub body_timeout_secs: Option<u64>,
    pub max_connections: Option<usize>,
    pub shutdown_grace_secs: Option<u64>,
    /// The tenants' limits (default: the server's defaults).
    pub quotas: leasehold::store::Quotas,
    /// How long answers are kept for replay (default a day).
    pub idempotency_ttl_secs: Option<u64>,
    /// How often the app sweeps every pool (default: never, so that apps sharing one
    /// Redis do not take each other's turns).
    pub sweep_interval_secs: Option<u64>,
    /// How late expiries are applied in pools nobody calls on (default: off, so that the
    /// tests that count Redis's work count only their own calls).
    pub expiry_lag_ms: Option<u64>,
}

/// The keys an app accepts: its default tenant's, another tenant's, and the file.
struct Keys {
    tenant: Tenant,
    key: String,
    other_key: String,
    key_file: PathBuf,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

pub async fn spawn_app_with(options: Options) -> TestApp {
    let tenant = fresh_tenant();
    let other = fresh_tenant();
    let (key, entry) = auth::generate(&tenant);
    let (other_key, other_entry) = auth::generate(&other);
    let key_file = std::env::temp_dir().join(format!("leasehold-keys-{}", uuid::Uuid::new_v4()));
    std::fs::write(&key_file, format!("{entry}\n{other_entry}\n")).expect("key file");
    let keys = Keys {
        tenant,
        key,
        other_key,
        key_file,
    };
    start_app(options, keys, std::future::pending()).await
}

/// Another replica: an app with `options` that accepts the same keys as `first`, so one
/// client key works on both (as behind a load balancer).
pub async fn replica_of(first: &TestApp, options: Options) -> TestApp {
    replica_until(first, options, std::future::pending()).await
}

/// As `replica_of`, an app that stops (as on SIGTERM) when `shutdown` completes.
pub async fn replica_until(
    first: &TestApp,
    options: Options,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> TestApp {
    let keys = Keys {
        tenant: first.tenant.clone(),
        key: first.key.clone(),
        other_key: first.other_key.clone(),
        key_file: first.key_file.clone(),
    };
    start_app(options, keys, shutdown).await
}

/// The settings an app with `options` is built from, and the URL of its Redis.
pub fn settings_for(options: Options, auth: Auth) -> (Settings, String) {
    let mut server = ServerArgs {
        listen: "127.0.0.1:0".parse().expect("addr"),
        redis_connections: options.connections.unwrap_or_default(),
        redis_pool_size: None,
        redis_timeout_ms: options.redis_timeout_ms.unwrap_or(5000),
        idempotency_ttl_secs: options.idempotency_ttl_secs.unwrap_or(86_400),
        counter_retention_days: 35,
        rate_limit: options.rate_limit.unwrap_or(0),
        rate_burst: options.rate_burst,
        log_format: LogFormat::Text,
        max_body_bytes: 2 * 1024 * 1024,
        stream_max_secs: options.stream_max_secs.unwrap_or(3600),
        header_timeout_secs: options.header_timeout_secs.unwrap_or(10),
        body_timeout_secs: options.body_timeout_secs.unwrap_or(30),
        max_connections: options.max_connections,
        shutdown_grace_secs: options.shutdown_grace_secs.unwrap_or(10),
        max_pools_per_tenant: options.quotas.max_pools_per_tenant,
        max_items_per_pool: options.quotas.max_items_per_pool,
        max_pool_bytes: options.quotas.max_pool_bytes,
        sweep_interval_secs: options.sweep_interval_secs.unwrap_or(0),
        expiry_lag_ms: options.expiry_lag_ms.unwrap_or(0),
    };
    if let Some(limit) = options.max_body_bytes {
        server.max_body_bytes = limit;
    }
    let (topology, redis_url) = match (options.topology, options.redis_url) {
        (Some(Topology::Cluster(urls)), _) => (Topology::Cluster(urls.clone()), urls[0].clone()),
        (Some(topology), _) => (topology, String::new()),
        (None, Some(url)) => (Topology::Single(url.clone()), url),
        (None, None) => (redis().topology(), redis().url()),
    };
    let mut settings = Settings::new(
        &server,
        topology,
        auth,
        options.durability.unwrap_or(Durability::Async),
    );
    settings.store.tls = options.tls;
    (settings, redis_url)
}

async fn start_app(
    options: Options,
    keys: Keys,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> TestApp {
    let auth = Auth::from_file(&keys.key_file, false).expect("keys");
    let (settings, redis_url) = settings_for(options, auth.clone());
    let app = leasehold::app::build(&settings).await.expect("app builds");
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(app.serve(listener, shutdown));
    TestApp {
        addr,
        client: reqwest::Client::new(),
        key: keys.key,
        tenant: keys.tenant,
        other_key: keys.other_key,
        key_file: keys.key_file,
        auth,
        redis_url,
    }
}

fn fresh_tenant() -> Tenant {
    let name = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
    Tenant::parse("tenant", &name).expect("valid tenant")
}

/// A fresh pool name, so tests never share a pool even within one tenant.
pub fn pool_name() -> String {
    format!("pool-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// A request as the default tenant, to send with `send`.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(&self.key)
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.request(Method::GET, path)).await
    }

    /// `GET path` of a page that is not JSON (metrics, HTML): asserts 200 and answers its
    /// content type and text.
    pub async fn get_text(&self, path: &str) -> (String, String) {
        let answer = self
            .client
            .get(self.url(path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert_eq!(answer.status(), 200, "GET {path}");
        let content_type = answer
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let text = answer.text().await.expect("the text");
        (content_type, text)
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(self.request(Method::POST, path).json(&body))
            .await
    }

    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.send(self.request(Method::PUT, path).json(&body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.send(self.request(Method::PATCH, path).json(&body))
            .await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(self.request(Method::DELETE, path)).await
    }

    /// Adds items with default priority and empty data; returns nothing, asserts 200.
    pub async fn add_items(&self, pool: &str, ids: &[&str]) {
        let items: Vec<Value> = ids.iter().map(|id| json!({"id": id})).collect();
        self.post(
            &format!("/v1/pools/{pool}/items"),
            json!({ "items": items }),
        )
        .await
        .expect(200);
    }

    /// Claims the next item for `holder`; the lease, or None if the pool had nothing.
    pub async fn claim(&self, pool: &str, holder: &str) -> Option<Value> {
        let body = self
            .post(
                &format!("/v1/pools/{pool}/claim"),
                json!({ "holder": holder }),
            )
            .await
            .expect(200);
        body["leases"].as_array().expect("leases").first().cloned()
    }

    pub async fn item(&self, pool: &str, id: &str) -> Value {
        self.get(&format!("/v1/pools/{pool}/items/{id}"))
            .await
            .expect(200)
    }
}

/// The path of an action on an item: `/v1/pools/{pool}/items/{id}/{action}`.
pub fn action_path(pool: &str, id: &str, action: &str) -> String {
    format!("/v1/pools/{pool}/items/{id}/{action}")
}

/// Claims the named item for `holder` and returns the lease (asserts 200).
pub async fn claim_item(app: &TestApp, pool: &str, id: &str, holder: &str) -> Value {
    app.post(&action_path(pool, id, "claim"), json!({ "holder": holder }))
        .await
        .expect(200)
}

/// Releases a lease, with `extra` fields (`delay_ms`, `priority`) added to the body.
pub async fn release(app: &TestApp, pool: &str, lease: &Value, extra: Value) -> Value {
    let mut body = json!({ "holder": lease["holder"], "token": lease["token"] });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    let id = lease["id"].as_str().expect("id");
    app.post(&action_path(pool, id, "release"), body)
        .await
        .expect(200)
}

/// Completes a lease (asserts 200) and returns the item.
pub async fn complete(app: &TestApp, pool: &str, lease: &Value) -> Value {
    let id = lease["id"].as_str().expect("id");
    app.post(
        &action_path(pool, id, "complete"),
        json!({ "holder": lease["holder"], "token": lease["token"] }),
    )
    .await
    .expect(200)
}
