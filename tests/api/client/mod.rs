//! `leasehold::client` against the real app: every typed call round-trips, every refusal
//! comes back as its problem code, retries happen exactly where they should (and with one
//! `Idempotency-Key`, so a retried write is applied once), and the `Lease` guard renews,
//! reports a lost lease, and releases on drop unless completed.
//!
//! Faults are real: a redis-server of the test's own stopped with SIGSTOP (the app answers
//! 503 with `Retry-After`), a rate-limited app (429 with `Retry-After`), and the harness's
//! TCP proxy resetting connections. A recording front, forwarding every request unchanged
//! to the app, shows how many attempts a call made and what each carried.
//!
//! The tests follow `crates/client/src` file by file; this module holds their harness.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use futures::StreamExt;
use leasehold::client::{
    Assign, Claim, Client, CounterPeriod, Error, Event, EventKind, EventStream, Followed,
    ItemFilter, ItemState, Lost, NewItem, Next, Period, PoolSettings, Preconditions, ProblemCode,
    PutItem, Release, RetryPolicy,
};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::fixtures::proxy::{Mode, Proxy};
use crate::helpers::*;

mod counters;
mod error;
mod events;
mod items;
mod lease;
mod leases;
mod lib;
mod pools;
mod retry;

/// A client of `app` as its default tenant, with the default retry policy.
fn client_of(app: &TestApp) -> Client {
    client_at(&app.url(""), app)
}

fn client_at(base_url: &str, app: &TestApp) -> Client {
    Client::builder(base_url)
        .api_key(Some(app.key.clone()))
        .build()
        .expect("a client")
}

/// The code of a failed call.
#[track_caller]
fn code_of<T: std::fmt::Debug>(result: Result<T, Error>) -> ProblemCode {
    let error = result.expect_err("the call is refused");
    error
        .code()
        .unwrap_or_else(|| panic!("not a problem answer: {error:?}"))
}

/// One request as the recording front saw it.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    idempotency_key: Option<String>,
    status: u16,
    arrived: Instant,
    answered: Instant,
}

/// A recording front for an app: forwards every request unchanged and remembers each.
struct Recorder {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

#[derive(Clone)]
struct Front {
    target: SocketAddr,
    http: reqwest::Client,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Recorder {
    async fn start(app: &TestApp) -> Recorder {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let front = Front {
            target: app.addr,
            http: reqwest::Client::new(),
            seen: seen.clone(),
        };
        let router = axum::Router::new().fallback(forward).with_state(front);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port for the recorder");
        let addr = listener.local_addr().expect("its address");
        tokio::spawn(async move { axum::serve(listener, router).await });
        Recorder { addr, seen }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The requests whose path ends with `suffix` (query excluded), in arrival order.
    fn to(&self, suffix: &str) -> Vec<Seen> {
        self.seen
            .lock()
            .expect("the record")
            .iter()
            .filter(|s| s.path.ends_with(suffix))
            .cloned()
            .collect()
    }
}

async fn forward(
    State(front): State<Front>,
    request: axum::extract::Request,
) -> axum::response::Response {
    let arrived = Instant::now();
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .expect("the request body");
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut out = front
        .http
        .request(
            parts.method.clone(),
            format!("http://{}{path_and_query}", front.target),
        )
        .body(body);
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            out = out.header(name, value);
        }
    }
    let answer = out.send().await.expect("the app answers");
    let status = answer.status();
    let headers = answer.headers().clone();
    let body = answer.bytes().await.expect("the answer body");
    front.seen.lock().expect("the record").push(Seen {
        path: parts.uri.path().to_owned(),
        idempotency_key: parts
            .headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        status: status.as_u16(),
        arrived,
        answered: Instant::now(),
    });
    let mut reply = axum::response::Response::new(axum::body::Body::from(body));
    *reply.status_mut() = status;
    for (name, value) in &headers {
        if name != "content-length" && name != "transfer-encoding" {
            reply.headers_mut().insert(name, value.clone());
        }
    }
    reply
}

/// An app of its own over a redis-server of its own, which a test may stop: the app
/// gives up on Redis after 300 ms and answers 503 with `Retry-After`.
async fn app_over_own_redis() -> (RedisProcess, TestApp) {
    app_on_own_redis_with(Options {
        redis_timeout_ms: Some(300),
        ..Options::default()
    })
    .await
}

fn counter_name() -> String {
    format!("c-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// Three replicas of one app over a redis-server of their own, so that `scripts_run`
/// counts only their work.
async fn three_replicas_over_own_redis() -> (RedisProcess, [TestApp; 3]) {
    let redis = RedisProcess::start(&[]);
    let options = || Options {
        redis_url: Some(redis.url()),
        ..Options::default()
    };
    let a = spawn_app_with(options()).await;
    let b = replica_of(&a, options()).await;
    let c = replica_of(&a, options()).await;
    (redis, [a, b, c])
}

/// A retry policy that keeps trying for as long as a test's fault lasts.
fn patient() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 200,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        max_elapsed: Duration::from_secs(30),
    }
}

fn added_items(ids: &[&str]) -> Vec<NewItem> {
    ids.iter().map(|id| NewItem::new(*id)).collect()
}
