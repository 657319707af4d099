//! `leasehold bench`: what `bench/run.sh` needs from the server's own code, so that the
//! benchmark names no Redis key and composes no script itself. It loads pools through
//! the store's `add_items` (the script the API runs), and prints the keys of a pool or a
//! counter ([`keys`]) and the name `FCALL` calls an operation by ([`store::Scripts`]) for the runs that call
//! the functions directly, without the HTTP layer.

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};

use crate::metrics::Metrics;
use crate::names::{CounterName, ItemId, PoolName, Tenant};
use crate::store::{
    self, ConnectionMode, Durability, NewItem, Store, StoreSettings, Topology, keys,
};

/// Connects to one Redis as the server would (and so loads every script), with a long
/// timeout: a call adds a thousand items.
pub async fn connect(redis: &str) -> Result<Store, String> {
    let settings = StoreSettings {
        topology: Topology::Single(redis.to_owned()),
        durability: Durability::Async,
        connections: ConnectionMode::Shared,
        pool_size: ConnectionMode::Shared.default_size(),
        timeout: Duration::from_secs(30),
        idempotency_ttl: Duration::from_secs(86_400),
        counter_retention: Duration::from_secs(35 * 86_400),
        tls: None,
        fence_failovers: true,
        expiry_lag: Duration::ZERO,
    };
    Store::connect(settings, Metrics::new())
        .await
        .map_err(|e| format!("connecting to {redis}: {e}"))
}

/// Adds items `i<from>` to `i<from + count - 1>` (priority `i % 10`, data `{}`) to a pool,
/// `batch` a call with `in_flight` calls at once; answers the seconds it took.
pub async fn load(
    store: &Store,
    tenant: &Tenant,
    pool: &PoolName,
    from: u64,
    count: u64,
    batch: u64,
    in_flight: usize,
) -> Result<f64, String> {
    let started = Instant::now();
    let end = from + count;
    let batches = (from..end).step_by(batch.max(1) as usize).map(|first| {
        let last = (first + batch).min(end);
        (first..last)
            .map(|i| {
                Ok(NewItem {
                    id: ItemId::parse("id", &format!("i{i}")).map_err(|e| e.to_string())?,
                    priority: (i % 10) as i64,
                    data: "{}".to_owned(),
                    available: store::Available::Now,
                })
            })
            .collect::<Result<Vec<_>, String>>()
    });
    futures::stream::iter(batches)
        .map(|items| async move {
            let items = items?;
            let added = store
                .pool(tenant, pool)
                .add_items(None, &items, &store::Quotas::default())
                .await
                .map_err(|e| format!("adding items to {pool}: {e}"))?;
            match added.value.existing.first() {
                None => Ok(()),
                Some(id) => Err(format!("item {id} was in {pool} already")),
            }
        })
        .buffer_unordered(in_flight.max(1))
        .try_collect::<()>()
        .await?;
    Ok(started.elapsed().as_secs_f64())
}

/// The keys a pool's scripts take, in their order, or one of them by its role (`avail`,
/// `leased`, `events`, …: the suffix of its name).
pub fn pool_keys(
    tenant: &Tenant,
    pool: &PoolName,
    role: Option<&str>,
) -> Result<Vec<String>, String> {
    let all = keys::pool_keys(tenant, pool);
    match role {
        None => Ok(all),
        Some(role) => all
            .into_iter()
            .find(|key| key.rsplit(':').next() == Some(role))
            .map(|key| vec![key])
            .ok_or_else(|| format!("a pool has no key {role:?}")),
    }
}

/// The keys `counter_next` takes for a counter without periods: its key (as the period
/// drawn and the period named) and where idempotent answers would be kept.
pub fn counter_keys(tenant: &Tenant, counter: &CounterName) -> Vec<String> {
    let key = keys::counter(tenant, counter, None);
    let [answers, answer_exp] = keys::counter_answers(tenant, counter);
    vec![key.clone(), key, answers, answer_exp]
}

/// The name `FCALL` calls an operation by (`lh_<version>_<op>`, its file in `lua/`); the
/// store loads the library when it connects.
pub fn function_name(name: &str) -> Result<String, String> {
    store::Scripts::new()
        .named()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, function)| function.fcall_name().to_owned())
        .ok_or_else(|| format!("no operation {name:?} (one of lua/*.lua, without .lua)"))
}

/// What `leasehold bench soak` runs: items flowing through add → claim → complete (and one
/// in a hundred released once, so that it dies) on one pool of a running server, while
/// Redis's `used_memory` is sampled.
#[derive(Debug, Clone)]
pub struct Soak {
    /// The server's base URL.
    pub url: String,
    /// The server's Redis, to read `used_memory` from.
    pub redis: String,
    /// How many items flow through in all.
    pub items: u64,
    /// The pool's keep_done_ms and keep_dead_ms (`None`: for ever, the negative control).
    pub keep_ms: Option<u64>,
    /// Concurrent workers, each claiming up to 50 at a time.
    pub workers: usize,
    /// Seconds between memory samples.
    pub every_secs: u64,
}

/// Items a worker adds when it finds the pool empty, and claims at once.
const SOAK_ADD: u64 = 500;
const SOAK_CLAIM: u32 = 50;

/// The memory samples of a soak: (seconds since the start, items through, used_memory).
pub type Samples = Vec<(f64, u64, u64)>;

/// Runs a soak and prints a line per sample as it goes; answers the samples.
pub async fn soak(options: &Soak) -> Result<Samples, String> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    let client = crate::client::Client::builder(options.url.clone())
        .build()
        .map_err(|e| e.to_string())?;
    let pool = format!("soak-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let settings = crate::client::PoolSettings {
        max_attempts: Some(1),
        keep_done_ms: Some(options.keep_ms),
        keep_dead_ms: Some(options.keep_ms),
        ..Default::default()
    };
    client
        .put_pool(&pool, &settings)
        .await
        .map_err(|e| e.to_string())?;
    let redis = redis::Client::open(options.redis.as_str()).map_err(|e| e.to_string())?;
    let mut conn = redis
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| e.to_string())?;
    let added = Arc::new(AtomicU64::new(0));
    let through = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let data = serde_json::json!({"note": "x".repeat(200)});

    let mut workers = tokio::task::JoinSet::new();
    for w in 0..options.workers.max(1) {
        let (client, pool, added, through, data) = (
            client.clone(),
            pool.clone(),
            Arc::clone(&added),
            Arc::clone(&through),
            data.clone(),
        );
        let total = options.items;
        workers.spawn(async move {
            let claim = crate::client::Claim {
                count: Some(SOAK_CLAIM),
                ..crate::client::Claim::new(format!("w{w}"))
            };
            while through.load(Ordering::Relaxed) < total {
                let leases = client
                    .claim_next(&pool, &claim)
                    .await
                    .map_err(|e| e.to_string())?;
                if leases.is_empty() {
                    let first = added.fetch_add(SOAK_ADD, Ordering::Relaxed);
                    if first >= total {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        continue;
                    }
                    let items: Vec<crate::client::NewItem> = (first..(first + SOAK_ADD).min(total))
                        .map(|i| crate::client::NewItem {
                            data: Some(data.clone()),
                            ..crate::client::NewItem::new(format!("i{i}"))
                        })
                        .collect();
                    client
                        .add_items(&pool, &items)
                        .await
                        .map_err(|e| e.to_string())?;
                    continue;
                }
                for lease in leases {
                    let n: u64 = lease.id()[1..].parse().unwrap_or(0);
                    if n % 100 == 99 {
                        lease
                            .release(&crate::client::Release::default())
                            .await
                            .map_err(|e| e.to_string())?;
                    } else {
                        lease.complete(None).await.map_err(|e| e.to_string())?;
                    }
                    through.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok::<(), String>(())
        });
    }

    let mut samples = Samples::new();
    let every = Duration::from_secs(options.every_secs.max(1));
    let mut ticks = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                let info: String = redis::cmd("INFO")
                    .arg("memory")
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| e.to_string())?;
                let used = info
                    .lines()
                    .find_map(|l| l.strip_prefix("used_memory:"))
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .ok_or("no used_memory in INFO memory")?;
                let sample = (started.elapsed().as_secs_f64(), through.load(Ordering::Relaxed), used);
                println!(
                    "{:>6.0} s  {:>9} items through  used_memory {:>7.1} MiB",
                    sample.0,
                    sample.1,
                    used as f64 / 1_048_576.0
                );
                samples.push(sample);
            }
            done = workers.join_next() => match done {
                None => break,
                Some(Ok(Ok(()))) => {}
                Some(Ok(Err(e))) => return Err(e),
                Some(Err(e)) => return Err(e.to_string()),
            },
        }
    }
    Ok(samples)
}

/// The verdict on a soak's samples: the memory after the first `warm_secs` (the flow
/// settled, the keep time filled), the last while items still flowed, and their ratio.
pub fn flatness(samples: &Samples, warm_secs: f64) -> Option<(u64, u64, f64)> {
    let settled = samples.iter().find(|(at, _, _)| *at >= warm_secs)?.2;
    let last = samples.last()?.2;
    Some((settled, last, last as f64 / settled as f64))
}

/// The heaviest requests the API takes, made against a running server (with a short
/// `--sweep-interval-secs`, so a sweep runs too), while its Redis logs every call of a
/// millisecond or more: the slowest call of each script that took that long, in
/// microseconds, by Redis's own `SLOWLOG` (the others took less).
pub async fn script_budget(url: &str, redis_url: &str) -> Result<Vec<(String, u64)>, String> {
    use crate::client::{Claim, Client, ItemFilter, NewItem, PoolSettings};
    let e = |e: crate::client::Error| format!("{e:?}");
    let redis = redis::Client::open(redis_url).map_err(|e| e.to_string())?;
    let mut conn = redis
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| e.to_string())?;
    // Calls of a millisecond or more (also those scripts make: Redis logs them too).
    for (name, value) in [
        ("slowlog-log-slower-than", "1000"),
        ("slowlog-max-len", "100000"),
    ] {
        redis::cmd("CONFIG")
            .arg("SET")
            .arg(name)
            .arg(value)
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
    }
    redis::cmd("SLOWLOG")
        .arg("RESET")
        .query_async::<()>(&mut conn)
        .await
        .map_err(|e| e.to_string())?;

    let client = Client::builder(url.to_owned()).build().map_err(e)?;
    let pool = format!("budget-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let settings = PoolSettings {
        max_events: Some(100_000),
        keep_done_ms: Some(Some(1)),
        ..PoolSettings::default()
    };
    client.put_pool(&pool, &settings).await.map_err(e)?;
    eprintln!("adding 5,000 items of 1.9 KB, then 95,000 more");
    // The largest adds a body allows: 1,000 items of 1.9 KB, five times.
    let blob = serde_json::json!({"blob": "b".repeat(1900)});
    for batch in 0..5 {
        let items: Vec<NewItem> = (0..1000)
            .map(|i| NewItem {
                data: Some(blob.clone()),
                ..NewItem::new(format!("big-{batch}-{i}"))
            })
            .collect();
        client.add_items(&pool, &items).await.map_err(e)?;
    }
    // A full log: 100,000 events.
    for batch in 0..95 {
        let items: Vec<NewItem> = (0..1000)
            .map(|i| NewItem::new(format!("small-{batch}-{i}")))
            .collect();
        client.add_items(&pool, &items).await.map_err(e)?;
    }
    eprintln!("claiming 2,000 items, 100 a call, completing each with data");
    // The largest claims, completed with data: then 2,000 items are due for removal.
    for _ in 0..20 {
        let claim = Claim {
            count: Some(100),
            ..Claim::new("budget")
        };
        for lease in client.claim_next(&pool, &claim).await.map_err(e)? {
            lease.complete(Some(blob.clone())).await.map_err(e)?;
        }
    }
    // The largest pages.
    let filter = ItemFilter {
        limit: Some(1000),
        ..ItemFilter::default()
    };
    client.list_items(&pool, &filter).await.map_err(e)?;
    client
        .list_events(&pool, None, Some(1000))
        .await
        .map_err(e)?;
    eprintln!("a sweep, the log cut to 50,000 and to none, the pool deleted");
    // A sweep pass, then the log cut from 100,000 to 50,000 and to none at once.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for max_events in [50_000, 0] {
        let cut = PoolSettings {
            max_events: Some(max_events),
            ..PoolSettings::default()
        };
        client.put_pool(&pool, &cut).await.map_err(e)?;
    }
    client.delete_pool(&pool).await.map_err(e)?;

    let names: std::collections::HashMap<String, &str> = store::Scripts::new()
        .named()
        .into_iter()
        .map(|(name, function)| (function.fcall_name().to_lowercase(), name))
        .collect();
    let log: Vec<redis::Value> = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(-1)
        .query_async(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    let mut slowest: std::collections::BTreeMap<String, u64> = Default::default();
    for entry in log {
        let redis::Value::Array(fields) = entry else {
            continue;
        };
        let (Some(redis::Value::Int(micros)), Some(redis::Value::Array(args))) =
            (fields.get(2), fields.get(3))
        else {
            continue;
        };
        let text = |v: &redis::Value| match v {
            redis::Value::BulkString(b) => String::from_utf8_lossy(b).to_lowercase(),
            redis::Value::SimpleString(s) => s.to_lowercase(),
            _ => String::new(),
        };
        let (Some(command), Some(function)) = (args.first().map(text), args.get(1).map(text))
        else {
            continue;
        };
        if command != "fcall" {
            continue;
        }
        let Some(name) = names.get(&function) else {
            continue;
        };
        let worst = slowest.entry((*name).to_owned()).or_default();
        *worst = (*worst).max(*micros as u64);
    }
    let mut slowest: Vec<(String, u64)> = slowest.into_iter().collect();
    slowest.sort_by_key(|worst| std::cmp::Reverse(worst.1));
    Ok(slowest)
}

/// What one operation costs Redis: its function's mean execution time (`INFO
/// commandstats`, `cmdstat_fcall` over `calls` calls made through the HTTP API), against a
/// minimal script making the same writes (called as often, by `EVALSHA` on the same Redis).
#[derive(Debug, Clone)]
pub struct OpCost {
    pub op: &'static str,
    pub calls: u64,
    pub micros_per_call: f64,
    pub minimal_calls: u64,
    pub minimal_micros_per_call: f64,
}

/// The minimal scripts: what each operation writes, and nothing else — no argument
/// checks, no idempotency, no state machine, no JSON. All keys in one slot, `{m}`.
/// KEYS: avail, fence, items, leased, events, done, counter.
const MINIMAL: &[(&str, &str)] = &[
    // The minimal claim of issue 18: ZPOPMIN + INCR + HSET + ZADD (no event).
    (
        "claim_next",
        "local id = redis.call('ZPOPMIN', KEYS[1])[1]
         if not id then return false end
         local token = redis.call('INCR', KEYS[2])
         redis.call('HSET', KEYS[3], id, ARGV[1] .. '|' .. token .. '|' .. ARGV[2])
         redis.call('ZADD', KEYS[4], ARGV[2], id)
         return token",
    ),
    (
        "renew",
        "redis.call('ZADD', KEYS[4], 'XX', ARGV[2], ARGV[3])
         redis.call('HSET', KEYS[3], ARGV[3], ARGV[1] .. '|' .. ARGV[2])
         redis.call('XADD', KEYS[5], 'MAXLEN', '~', '10000', '*', 'type', 'renewed', 'item', ARGV[3], 'holder', ARGV[1])
         return 1",
    ),
    (
        "release",
        "redis.call('ZREM', KEYS[4], ARGV[3])
         redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
         redis.call('HSET', KEYS[3], ARGV[3], 'available')
         redis.call('XADD', KEYS[5], 'MAXLEN', '~', '10000', '*', 'type', 'released', 'item', ARGV[3], 'holder', ARGV[1])
         return 1",
    ),
    (
        "complete",
        "redis.call('ZREM', KEYS[4], ARGV[3])
         redis.call('ZADD', KEYS[6], ARGV[2], ARGV[3])
         redis.call('HSET', KEYS[3], ARGV[3], 'done')
         redis.call('XADD', KEYS[5], 'MAXLEN', '~', '10000', '*', 'type', 'completed', 'item', ARGV[3], 'holder', ARGV[1])
         return 1",
    ),
    (
        "put_item",
        "local old = redis.call('HGET', KEYS[3], ARGV[3])
         redis.call('HSET', KEYS[3], ARGV[3], ARGV[1])
         redis.call('XADD', KEYS[5], 'MAXLEN', '~', '10000', '*', 'type', 'written', 'item', ARGV[3])
         return old and 1 or 0",
    ),
    (
        "counter_next",
        "local v = redis.call('INCRBY', KEYS[7], 1)
         redis.call('PEXPIRE', KEYS[7], ARGV[2])
         return v",
    ),
];

/// Calls and total microseconds of `commands` (`fcall`, `evalsha`) together since the
/// last `CONFIG RESETSTAT`.
async fn command_stats(
    conn: &mut redis::aio::MultiplexedConnection,
    commands: &[&str],
) -> Result<(u64, u64), String> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .map_err(|e| e.to_string())?;
    let (mut calls, mut usec) = (0, 0);
    for command in commands {
        let prefix = format!("cmdstat_{command}:");
        let Some(line) = info.lines().find(|l| l.starts_with(&prefix)) else {
            continue;
        };
        let field = |name: &str| {
            line.split([':', ','])
                .find_map(|part| part.strip_prefix(name)?.strip_prefix('='))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        calls += field("calls");
        usec += field("usec");
    }
    Ok((calls, usec))
}

/// How the server calls its operations: `FCALL` (and `EVALSHA`, for a server of an
/// earlier version, which ran scripts), so that one build measures before and after.
const LEASEHOLD_CALLS: &[&str] = &["fcall", "evalsha"];

async fn reset_stats(conn: &mut redis::aio::MultiplexedConnection) -> Result<(), String> {
    redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async::<()>(conn)
        .await
        .map_err(|e| e.to_string())
}

/// Measures each operation's Redis cost, `calls` calls each, one at a time: through the
/// HTTP API of the server at `url` (each write with its own Idempotency-Key, as the
/// clients send them), then the minimal scripts on its Redis. The server must make no
/// other script calls meanwhile: run it alone, with `--sweep-interval-secs 0` and no rate
/// limit.
pub async fn op_cost(url: &str, redis_url: &str, calls: u64) -> Result<Vec<OpCost>, String> {
    let redis = redis::Client::open(redis_url).map_err(|e| e.to_string())?;
    let mut conn = redis
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| e.to_string())?;
    let http = reqwest::Client::new();
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let pool = format!("cost-{run}");
    let written = format!("cost-put-{run}");
    let base = url.trim_end_matches('/').to_owned();
    let send = |method: reqwest::Method, path: String, body: serde_json::Value| {
        let request = http
            .request(method, format!("{base}{path}"))
            .header("idempotency-key", uuid::Uuid::new_v4().to_string())
            .json(&body);
        async move {
            let answer = request.send().await.map_err(|e| e.to_string())?;
            let status = answer.status();
            let body: serde_json::Value = answer.json().await.map_err(|e| e.to_string())?;
            if status.is_success() {
                Ok(body)
            } else {
                Err(format!("{status}: {body}"))
            }
        }
    };
    use reqwest::Method;
    use serde_json::json;

    // Two pools of `calls` items: one to lease, one to write.
    for name in [&pool, &written] {
        send(
            Method::PUT,
            format!("/v1/pools/{name}"),
            json!({"lease_ms": 600_000}),
        )
        .await?;
        for first in (0..calls).step_by(1000) {
            let items: Vec<_> = (first..(first + 1000).min(calls))
                .map(|i| json!({"id": format!("i{i}")}))
                .collect();
            send(
                Method::POST,
                format!("/v1/pools/{name}/items"),
                json!({ "items": items }),
            )
            .await?;
        }
    }

    let mut measured: Vec<(&'static str, u64, u64)> = Vec::new();
    // claim_next, one item a call; the leases are kept for what follows.
    reset_stats(&mut conn).await?;
    let mut leases = Vec::new();
    for _ in 0..calls {
        let answer = send(
            Method::POST,
            format!("/v1/pools/{pool}/claim"),
            json!({"holder": "w", "lease_ms": 600_000}),
        )
        .await?;
        let lease = &answer["leases"][0];
        let id = lease["id"]
            .as_str()
            .ok_or("a claim granted nothing")?
            .to_owned();
        leases.push((id, lease["token"].as_u64().unwrap_or(0)));
    }
    let (n, us) = command_stats(&mut conn, LEASEHOLD_CALLS).await?;
    measured.push(("claim_next", n, us));

    reset_stats(&mut conn).await?;
    for (id, token) in &leases {
        send(
            Method::POST,
            format!("/v1/pools/{pool}/items/{id}/renew"),
            json!({"holder": "w", "token": token, "lease_ms": 600_000}),
        )
        .await?;
    }
    let (n, us) = command_stats(&mut conn, LEASEHOLD_CALLS).await?;
    measured.push(("renew", n, us));

    let half = leases.len() / 2;
    for (op, part) in [("release", &leases[..half]), ("complete", &leases[half..])] {
        reset_stats(&mut conn).await?;
        for (id, token) in part {
            send(
                Method::POST,
                format!("/v1/pools/{pool}/items/{id}/{op}"),
                json!({"holder": "w", "token": token}),
            )
            .await?;
        }
        let (n, us) = command_stats(&mut conn, LEASEHOLD_CALLS).await?;
        measured.push((op, n, us));
    }

    reset_stats(&mut conn).await?;
    for i in 0..calls {
        let request = http
            .put(format!("{base}/v1/pools/{written}/items/i{i}"))
            .header("idempotency-key", uuid::Uuid::new_v4().to_string())
            .header("if-match", "\"1\"")
            .json(&json!({"data": {"n": i}}));
        let answer = request.send().await.map_err(|e| e.to_string())?;
        if !answer.status().is_success() {
            return Err(format!("put item: {}", answer.status()));
        }
    }
    let (n, us) = command_stats(&mut conn, LEASEHOLD_CALLS).await?;
    measured.push(("put_item", n, us));

    reset_stats(&mut conn).await?;
    for _ in 0..calls {
        send(
            Method::POST,
            format!("/v1/counters/cost-{run}/next"),
            json!({}),
        )
        .await?;
    }
    let (n, us) = command_stats(&mut conn, LEASEHOLD_CALLS).await?;
    measured.push(("counter_next", n, us));

    // The minimal scripts, on fresh keys of their own slot, as many calls each.
    let keys: Vec<String> = ["avail", "fence", "items", "leased", "events", "done", "ctr"]
        .iter()
        .map(|k| format!("bench:{{m-{run}}}:{k}"))
        .collect();
    for first in (0..calls).step_by(1000) {
        let mut add = redis::cmd("ZADD");
        add.arg(&keys[0]);
        for i in first..(first + 1000).min(calls) {
            add.arg(i).arg(format!("i{i}"));
        }
        add.query_async::<()>(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
    }
    let mut out = Vec::new();
    for (op, n, us) in measured {
        let source = MINIMAL
            .iter()
            .find(|(name, _)| *name == op)
            .map(|(_, source)| *source)
            .ok_or_else(|| format!("no minimal script for {op}"))?;
        let script = redis::Script::new(source);
        reset_stats(&mut conn).await?;
        for i in 0..calls {
            let mut call = script.prepare_invoke();
            for key in &keys {
                call.key(key);
            }
            call.arg("w").arg(1_000_000 + i).arg(format!("i{i}"));
            call.invoke_async::<redis::Value>(&mut conn)
                .await
                .map_err(|e| format!("minimal {op}: {e}"))?;
        }
        let (minimal_calls, minimal_us) = command_stats(&mut conn, &["evalsha"]).await?;
        let per = |us: u64, n: u64| if n == 0 { 0.0 } else { us as f64 / n as f64 };
        out.push(OpCost {
            op,
            calls: n,
            micros_per_call: per(us, n),
            minimal_calls,
            minimal_micros_per_call: per(minimal_us, minimal_calls),
        });
    }
    for name in [&pool, &written] {
        send(Method::DELETE, format!("/v1/pools/{name}"), json!({}))
            .await
            .ok();
    }
    Ok(out)
}
