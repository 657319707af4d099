//! `leasehold contend`: many parallel clients against any deployment, through the real
//! HTTP API, each recording what it saw; then the history checkers over all of it.
//!
//! It creates its own pools and counter (names unique to the run), loads the items, lets
//! the clients run for the duration, reads the final state, and reports throughput,
//! latency, conflicts by code, and every anomaly the checkers found: an item granted to two
//! holders at once, a fencing token reused or going back, a stale lease accepted, an
//! acknowledged write lost, a counter value issued twice or read before a failover took it
//! back, an event sent live that the pool's log lost. There must be none.
//!
//! Besides the clients, one follower (`follow.rs`) keeps what the pool's live event stream
//! sends; at the end, the pool's whole event log is read as the truth it is held to.

mod follow;
mod http;
mod report;
mod workload;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::check::{self, EventLog, FencedResource, Finals, History, Op, Outcome};
use crate::client::EventPage;
use http::{Http, Reply, Request};
use report::Measured;
pub use report::RunReport;
use workload::{Client, ClientStats, Workload};

/// How many version-checked registers the clients increment (few, so they contend).
const REGISTERS: usize = 8;
/// How many items are hot (claimed and assigned by name by many clients).
const HOT_ITEMS: usize = 8;
/// Items are loaded in bulk requests of this many.
const LOAD_BATCH: usize = 1000;
/// How many events the pool's log keeps (the most it may): enough to hold a whole run, so
/// that every event the follower was sent can be found in it at the end.
const MAX_EVENTS: u64 = 100_000;
/// The final event log is read in pages of this many (the most a page may hold).
const EVENT_PAGE: usize = 1000;

/// What a run does.
#[derive(Debug, Clone)]
pub struct Options {
    /// Base URLs of the deployment (clients are spread over them), e.g. `http://host:8080`.
    pub urls: Vec<String>,
    pub key: Option<String>,
    pub clients: usize,
    pub items: usize,
    pub duration: Duration,
    pub batch: u32,
    pub lease_ms: u64,
    pub seed: u64,
    pub request_timeout: Duration,
    pub progress: bool,
}

/// Runs the clients and the checkers; an error only when the run could not be set up.
pub async fn run(options: Options) -> Result<RunReport, String> {
    let urls: Vec<String> = options
        .urls
        .iter()
        .map(|u| u.trim_end_matches('/').to_owned())
        .collect();
    if urls.is_empty() {
        return Err("give at least one --url".to_owned());
    }
    let http = Http::new(urls.clone(), options.key.clone(), options.request_timeout)?;
    let run_id = format!("{:08x}", options.seed as u32 ^ rand::random::<u32>());
    let pool = format!("contend-{run_id}");
    let registers_pool = format!("contend-{run_id}-registers");
    let counter = format!("contend-{run_id}");
    setup(&http, &pool, &registers_pool, &options).await?;

    let history = History::new();
    let started = history.start().instant_at(0);
    let work = Arc::new(Workload {
        http: http.clone(),
        pool: pool.clone(),
        registers_pool: registers_pool.clone(),
        registers: (0..REGISTERS).map(|n| format!("r{n}")).collect(),
        hot: (0..HOT_ITEMS.min(options.items)).map(item_id).collect(),
        counter: counter.clone(),
        batch: options.batch,
        lease_ms: options.lease_ms,
        deadline: started + options.duration,
        history,
        fenced: FencedResource::new(),
        operations: AtomicU64::new(0),
    });
    let progress = report::progress(options.progress, options.duration);
    let ticker = tokio::spawn({
        let progress = progress.clone();
        let work = work.clone();
        async move {
            while !workload::remaining(work.deadline).is_zero() {
                tokio::time::sleep(Duration::from_millis(200)).await;
                progress.set_position(work.history.now_us() / 1_000_000);
                let operations = work.operations.load(Ordering::Relaxed);
                progress.set_message(format!("{operations} operations"));
            }
        }
    });
    let (stop_following, stopped) = oneshot::channel();
    let follower = tokio::spawn(follow::follow(work.clone(), stopped));
    let clients: Vec<_> = (0..options.clients.max(1))
        .map(|id| tokio::spawn(Client::new(id, options.seed, work.clone()).run()))
        .collect();
    let mut stats = ClientStats::default();
    for client in clients {
        stats.merge(client.await.map_err(|e| format!("a client failed: {e}"))?);
    }
    let elapsed = started.elapsed();
    let _ = stop_following.send(());
    let received = follower
        .await
        .map_err(|e| format!("the event follower failed: {e}"))?;
    ticker.abort();
    progress.finish_and_clear();

    let events = work.history.events();
    let finals = read_finals(&http, &registers_pool, &counter, &work).await?;
    let mut check = check::check_all(&events, &received.deliveries, &finals);
    check.anomalies.extend(work.fenced.anomalies());
    cleanup(&http, &[&pool, &registers_pool]).await;
    let measured = Measured {
        elapsed,
        clock: work.history.start(),
        retries: http.retries(),
        last_failure: http.last_failure(),
        deliveries: received.events(),
        stream_connections: received.connections,
        events_logged: finals.event_log.as_ref().map_or(0, |log| log.events.len()),
    };
    Ok(RunReport::new(&options, &run_id, stats, measured, check))
}

fn item_id(n: usize) -> String {
    format!("i{n:07}")
}

async fn setup(
    http: &Http,
    pool: &str,
    registers_pool: &str,
    options: &Options,
) -> Result<(), String> {
    let put_pool = Request {
        method: Method::PUT,
        path: format!("/v1/pools/{pool}"),
        body: Some(json!({"lease_ms": options.lease_ms, "max_events": MAX_EVENTS})),
        headers: Vec::new(),
    };
    expect_ok(http.write(0, put_pool).await, "create the pool")?;
    for start in (0..options.items).step_by(LOAD_BATCH) {
        let end = (start + LOAD_BATCH).min(options.items);
        let items: Vec<Value> = (start..end)
            .map(|n| json!({"id": item_id(n), "priority": if n < HOT_ITEMS { 10 } else { 0 }}))
            .collect();
        let load = Request {
            method: Method::POST,
            path: format!("/v1/pools/{pool}/items"),
            body: Some(json!({ "items": items })),
            headers: Vec::new(),
        };
        expect_ok(http.write(0, load).await, "load the items")?;
    }
    let registers: Vec<Value> = (0..REGISTERS)
        .map(|n| json!({"id": format!("r{n}"), "data": {"n": 0}}))
        .collect();
    let load = Request {
        method: Method::POST,
        path: format!("/v1/pools/{registers_pool}/items"),
        body: Some(json!({ "items": registers })),
        headers: Vec::new(),
    };
    expect_ok(http.write(0, load).await, "create the registers")?;
    Ok(())
}

fn expect_ok(reply: Reply, what: &str) -> Result<Value, String> {
    match reply {
        Reply::Ok { body, .. } => Ok(body),
        Reply::Refused { status, code } if status.as_u16() == 401 => Err(format!(
            "cannot {what}: 401 {code} (pass the deployment's API key with --key)"
        )),
        Reply::Refused { status, code } => Err(format!("cannot {what}: {status} {code}")),
        Reply::Unknown { cause } => Err(format!("cannot {what}: {cause}")),
    }
}

/// The registers' and counter's final state, for the checkers.
async fn read_finals(
    http: &Http,
    registers_pool: &str,
    counter: &str,
    work: &Workload,
) -> Result<Finals, String> {
    let mut finals = Finals::default();
    for key in &work.registers {
        let read = Request {
            method: Method::GET,
            path: format!("/v1/pools/{registers_pool}/items/{key}"),
            body: None,
            headers: Vec::new(),
        };
        match http.read_anywhere(&read).await {
            Reply::Ok {
                etag: Some(version),
                body,
                ..
            } => {
                let value = body["data"]["n"].as_u64().unwrap_or(0);
                finals.registers.insert(key.clone(), (version, value));
            }
            other => return Err(format!("cannot read register {key} at the end: {other:?}")),
        }
    }
    let mut periods: BTreeSet<Option<String>> = BTreeSet::new();
    for event in work.history.events() {
        if let (Outcome::Ok, Op::Counter { period, .. } | Op::CounterRead { period, .. }) =
            (event.outcome, event.op)
        {
            periods.insert(period);
        }
    }
    for period in periods {
        let query = period.as_deref().unwrap_or("none");
        let read = Request {
            method: Method::GET,
            path: format!("/v1/counters/{counter}?period={query}"),
            body: None,
            headers: Vec::new(),
        };
        let body = expect_ok(
            http.read_anywhere(&read).await,
            "read the counter at the end",
        )?;
        let value = body["value"].as_u64().unwrap_or(0);
        finals.counters.insert((counter.to_owned(), period), value);
    }
    finals.event_log = Some(read_event_log(http, &work.pool).await?);
    Ok(finals)
}

/// The pool's whole event log, page by page, oldest first. A page that says events were
/// trimmed since the last one starts the log again: what was read before it is no longer
/// kept, so it is not the truth to hold deliveries to.
async fn read_event_log(http: &Http, pool: &str) -> Result<EventLog, String> {
    let mut log = EventLog {
        pool: pool.to_owned(),
        events: Vec::new(),
    };
    let mut after: Option<String> = None;
    loop {
        let from = after
            .as_deref()
            .map_or(String::new(), |after| format!("&after={after}"));
        let read = Request {
            method: Method::GET,
            path: format!("/v1/pools/{pool}/events?limit={EVENT_PAGE}{from}"),
            body: None,
            headers: Vec::new(),
        };
        let body = expect_ok(http.read_anywhere(&read).await, "read the event log")?;
        let page: EventPage = serde_json::from_value(body)
            .map_err(|e| format!("cannot read the event log's page: {e}"))?;
        if page.trimmed {
            log.events.clear();
        }
        if page.events.is_empty() {
            return Ok(log);
        }
        log.events.extend(page.events);
        if page.next_after.is_none() {
            return Ok(log);
        }
        after = page.next_after;
    }
}

/// Deletes the run's pools; a failure here is not the run's.
async fn cleanup(http: &Http, pools: &[&str]) {
    for pool in pools {
        let delete = Request {
            method: Method::DELETE,
            path: format!("/v1/pools/{pool}"),
            body: None,
            headers: Vec::new(),
        };
        let _ = http.write(0, delete).await;
    }
}
