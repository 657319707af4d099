//! Limits a tenant's writes are held to (`--max-pools-per-tenant`, `--max-items-per-pool`,
//! `--max-pool-bytes`, or the tenant's own in the key file), and the exact count of what a
//! pool holds that they are checked against: items' ids and data, the event log, and the
//! answers stored for Idempotency-Keys.

use std::time::Duration;

use leasehold::names::PoolName;
use leasehold::store::{Quotas, keys};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

fn pool_path(pool: &str) -> String {
    format!("/v1/pools/{pool}")
}

fn items_path(pool: &str) -> String {
    format!("/v1/pools/{pool}/items")
}

fn quotas(max_pools: u64, max_items: u64, max_bytes: u64) -> Quotas {
    Quotas {
        max_pools_per_tenant: max_pools,
        max_items_per_pool: max_items,
        max_pool_bytes: max_bytes,
    }
}

/// What the pool holds, counted from Redis itself: items' ids and data (as the API shows
/// it, compact), the event log's fields and values, the stored answers' fields and values.
async fn counted(app: &TestApp, pool: &str) -> (u64, u64, u64) {
    counted_in(app, pool, &mut redis().connection()).await
}

/// As `counted`, reading Redis through `conn` (an app's own Redis).
async fn counted_in(
    app: &TestApp,
    pool: &str,
    conn: &mut impl redis::ConnectionLike,
) -> (u64, u64, u64) {
    let name = PoolName::parse("pool", pool).expect("valid");
    let mut data = 0;
    let mut after: Option<String> = None;
    loop {
        let query = after
            .as_deref()
            .map_or(String::new(), |c| format!("&cursor={c}"));
        let page = app
            .get(&format!("{}?limit=1000{query}", items_path(pool)))
            .await
            .expect(200);
        for item in page["items"].as_array().expect("items") {
            let id = item["id"].as_str().expect("id");
            data += (id.len() + item["data"].to_string().len()) as u64;
        }
        match page["next_cursor"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
    }
    let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(keys::pool_events(&app.tenant, &name))
        .arg("-")
        .arg("+")
        .query(conn)
        .expect("XRANGE");
    let events = entries
        .iter()
        .flat_map(|(_, fields)| fields)
        .map(|(f, v)| (f.len() + v.len()) as u64)
        .sum();
    let answers: Vec<(String, String)> = redis::cmd("HGETALL")
        .arg(keys::pool_answers(&app.tenant, &name))
        .query(conn)
        .expect("HGETALL");
    let answers = answers
        .iter()
        .map(|(f, v)| (f.len() + v.len()) as u64)
        .sum();
    (data, events, answers)
}

/// The pool's usage as `GET /v1/pools/{pool}` shows it.
async fn usage(app: &TestApp, pool: &str) -> Value {
    app.get(&pool_path(pool)).await.expect(200)["usage"].clone()
}

#[track_caller]
fn assert_counted(usage: &Value, counted: (u64, u64, u64), when: &str) {
    let (data, events, answers) = counted;
    assert_eq!(usage["data_bytes"], data, "data bytes {when}: {usage}");
    assert_eq!(usage["event_bytes"], events, "event bytes {when}: {usage}");
    assert_eq!(
        usage["answer_bytes"], answers,
        "answer bytes {when}: {usage}"
    );
    assert_eq!(
        usage["bytes"],
        data + events + answers,
        "bytes {when}: {usage}"
    );
}

#[tokio::test]
async fn a_pool_counts_exactly_the_bytes_it_holds_through_every_kind_of_write() {
    let app = spawn_app().await;
    let pool = pool_name();
    let keyed = |method: Method, path: &str, key: &str| {
        app.request(method, path)
            .header("Idempotency-Key", key.to_owned())
    };
    // Adds (two with an Idempotency-Key, one of them retried), a PUT that grows an item
    // and one that shrinks it, a PATCH, claims, a release, a completion with data, a
    // deletion: each kind of write that adds or removes bytes.
    let items: Vec<Value> = (0..20)
        .map(|i| json!({"id": format!("item-{i}"), "data": {"n": i, "text": "x".repeat(i * 7)}}))
        .collect();
    for key in ["add-1", "add-1"] {
        app.send(keyed(Method::POST, &items_path(&pool), key).json(&json!({"items": items[..10]})))
            .await
            .expect(200);
    }
    app.post(&items_path(&pool), json!({"items": items[10..]}))
        .await
        .expect(200);
    let usage_now = usage(&app, &pool).await;
    assert_counted(&usage_now, counted(&app, &pool).await, "after adds");
    assert_eq!(usage_now["items"], 20);
    assert!(usage_now["answer_bytes"].as_u64() > Some(0), "{usage_now}");

    app.put(
        &format!("{}/item-3", items_path(&pool)),
        json!({"data": {"grown": "y".repeat(500)}}),
    )
    .await
    .expect(200);
    app.put(
        &format!("{}/item-19", items_path(&pool)),
        json!({"data": {}}),
    )
    .await
    .expect(200);
    app.patch(
        &format!("{}/item-4", items_path(&pool)),
        json!({"added": [1, 2, 3]}),
    )
    .await
    .expect(200);
    for holder in ["alice", "bob", "carol"] {
        let lease = app.claim(&pool, holder).await.expect("a lease");
        let id = lease["id"].as_str().expect("id");
        if holder == "bob" {
            release(&app, &pool, &lease, json!({})).await;
        } else {
            app.send(keyed(Method::POST, &action_path(&pool, id, "complete"), holder).json(
                &json!({"holder": holder, "token": lease["token"], "data": {"result": holder.repeat(40)}}),
            ))
            .await
            .expect(200);
        }
    }
    app.delete(&format!("{}/item-7", items_path(&pool))).await;
    assert_counted(
        &usage(&app, &pool).await,
        counted(&app, &pool).await,
        "after changes",
    );

    // The log capped at 8 events drops the oldest as it grows, and drops more at once when
    // the cap is lowered: both take their bytes with them.
    app.put(&pool_path(&pool), json!({"max_events": 8}))
        .await
        .expect(200);
    for _ in 0..5 {
        app.claim(&pool, "dave").await.expect("a lease");
    }
    assert_counted(
        &usage(&app, &pool).await,
        counted(&app, &pool).await,
        "under a cap",
    );
    app.put(&pool_path(&pool), json!({"max_events": 2}))
        .await
        .expect(200);
    assert_counted(
        &usage(&app, &pool).await,
        counted(&app, &pool).await,
        "cap lowered",
    );
    app.put(&pool_path(&pool), json!({"max_events": 0}))
        .await
        .expect(200);
    let usage_now = usage(&app, &pool).await;
    assert_counted(&usage_now, counted(&app, &pool).await, "no log");
    assert_eq!(usage_now["event_bytes"], 0);
    assert_eq!(usage_now["items"], 19);
    assert_eq!(usage_now["max_items"], Quotas::default().max_items_per_pool);
    assert_eq!(usage_now["max_bytes"], Quotas::default().max_pool_bytes);
}

#[tokio::test]
async fn items_past_max_items_per_pool_are_refused_whole_and_other_pools_are_unaffected() {
    let app = spawn_app_with(Options {
        quotas: quotas(100, 5, 1 << 30),
        ..Options::default()
    })
    .await;
    let pool = pool_name();
    app.add_items(&pool, &["a", "b", "c"]).await;
    let refused = app
        .post(
            &items_path(&pool),
            json!({"items": [{"id": "d"}, {"id": "a"}, {"id": "e"}, {"id": "f"}]}),
        )
        .await
        .expect_problem(409, "quota_exceeded");
    assert_eq!(refused["quota"], "max_items_per_pool", "{refused}");
    assert_eq!(refused["limit"], 5, "{refused}");
    assert_eq!(refused["usage"], 3, "{refused}");
    assert!(
        refused["detail"]
            .as_str()
            .is_some_and(|d| d.contains("max_items_per_pool is 5")),
        "{refused}"
    );
    app.get(&format!("{}/d", items_path(&pool)))
        .await
        .expect_problem(404, "not_found");
    assert_eq!(usage(&app, &pool).await["items"], 3);

    // Ids that exist already do not count: a, b and two new ones fit.
    app.post(
        &items_path(&pool),
        json!({"items": [{"id": "a"}, {"id": "b"}, {"id": "d"}, {"id": "e"}]}),
    )
    .await
    .expect(200);
    app.put(&format!("{}/f", items_path(&pool)), json!({"data": {}}))
        .await
        .expect_problem(409, "quota_exceeded");
    app.put(
        &format!("{}/a", items_path(&pool)),
        json!({"data": {"changed": true}}),
    )
    .await
    .expect(200);
    // Another pool has its own room.
    let other = pool_name();
    app.add_items(&other, &["a", "b", "c", "d", "e"]).await;
    // Deleting makes room again.
    app.delete(&format!("{}/a", items_path(&pool))).await;
    app.put(&format!("{}/f", items_path(&pool)), json!({"data": {}}))
        .await
        .expect(201);
}

#[tokio::test]
async fn a_full_pool_refuses_more_data_but_can_still_be_drained_and_other_tenants_write() {
    let app = spawn_app_with(Options {
        quotas: quotas(100, 1_000_000, 6_000),
        ..Options::default()
    })
    .await;
    let pool = pool_name();
    let big = |id: &str| json!({"id": id, "data": {"blob": "z".repeat(900)}});
    let mut added = 0;
    let refused = loop {
        let reply = app
            .post(
                &items_path(&pool),
                json!({"items": [big(&format!("i{added}"))]}),
            )
            .await;
        if reply.status.as_u16() != 200 {
            break reply.expect_problem(409, "quota_exceeded");
        }
        added += 1;
        assert!(added < 10, "6,000 bytes cannot hold 10 items of 900");
    };
    assert_eq!(refused["quota"], "max_pool_bytes", "{refused}");
    assert_eq!(refused["limit"], 6_000, "{refused}");
    let used = refused["usage"].as_u64().expect("usage");
    assert!(used + 900 > 6_000 && used <= 6_000, "{refused}");
    assert_eq!(usage(&app, &pool).await["items"], added);

    // Claims, renewals, releases and completions without data still work (their events
    // count, and may take the pool past the limit: it can always be drained).
    let lease = app.claim(&pool, "w1").await.expect("a lease");
    let grown = app
        .post(
            &action_path(&pool, lease["id"].as_str().expect("id"), "complete"),
            json!({"holder": "w1", "token": lease["token"], "data": {"blob": "z".repeat(2000)}}),
        )
        .await
        .expect_problem(409, "quota_exceeded");
    assert_eq!(grown["quota"], "max_pool_bytes");
    complete(&app, &pool, &lease).await;
    let lease = app.claim(&pool, "w2").await.expect("a lease");
    release(&app, &pool, &lease, json!({})).await;

    // Another tenant is not held to this pool's use.
    let other = app
        .client
        .post(app.url(&items_path(&pool_name())))
        .bearer_auth(&app.other_key)
        .json(&json!({"items": [big("x")]}));
    app.send(other).await.expect(200);

    // Deleting an item frees its bytes.
    app.delete(&format!("{}/i0", items_path(&pool))).await;
    app.post(&items_path(&pool), json!({"items": [big("again")]}))
        .await
        .expect(200);
    assert_counted(
        &usage(&app, &pool).await,
        counted(&app, &pool).await,
        "at the limit",
    );
}

#[tokio::test]
async fn a_tenant_past_max_pools_cannot_create_another_until_one_is_deleted() {
    let app = spawn_app_with(Options {
        quotas: quotas(3, 1_000, 1 << 20),
        ..Options::default()
    })
    .await;
    let pools: Vec<String> = (0..4).map(|_| pool_name()).collect();
    // Each way of creating a pool: PUT the pool, add items, PUT an item.
    app.put(&pool_path(&pools[0]), json!({})).await.expect(201);
    app.add_items(&pools[1], &["a"]).await;
    app.put(&format!("{}/a", items_path(&pools[2])), json!({"data": {}}))
        .await
        .expect(201);
    let tenant = app.get("/v1/tenant").await.expect(200);
    assert_eq!(tenant["pools"], 3, "{tenant}");
    assert_eq!(tenant["tenant"], app.tenant.to_string());
    assert_eq!(tenant["limits"]["max_pools_per_tenant"], 3, "{tenant}");

    for refused in [
        app.put(&pool_path(&pools[3]), json!({})).await,
        app.post(&items_path(&pools[3]), json!({"items": [{"id": "a"}]}))
            .await,
        app.put(&format!("{}/a", items_path(&pools[3])), json!({"data": {}}))
            .await,
    ] {
        let problem = refused.expect_problem(409, "quota_exceeded");
        assert_eq!(problem["quota"], "max_pools_per_tenant", "{problem}");
        assert_eq!(problem["usage"], 3, "{problem}");
    }
    app.get(&pool_path(&pools[3]))
        .await
        .expect_problem(404, "not_found");
    // Pools that exist take writes as before.
    app.put(&pool_path(&pools[0]), json!({"lease_ms": 5000}))
        .await
        .expect(200);
    app.add_items(&pools[0], &["b"]).await;

    app.delete(&pool_path(&pools[1])).await;
    assert_eq!(app.get("/v1/tenant").await.expect(200)["pools"], 2);
    app.put(&pool_path(&pools[3]), json!({})).await.expect(201);
    let listed = app.get("/v1/pools").await.expect(200);
    let mut expected = vec![pools[0].clone(), pools[2].clone(), pools[3].clone()];
    expected.sort();
    let names: Vec<&str> = listed["pools"]
        .as_array()
        .expect("pools")
        .iter()
        .map(|p| p["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, expected);
}

#[tokio::test]
async fn the_key_file_sets_a_tenants_own_limits_and_a_reload_changes_them() {
    let app = spawn_app().await;
    let defaults = app.get("/v1/tenant").await.expect(200)["limits"].clone();
    assert_eq!(
        defaults,
        json!({"max_pools_per_tenant": 10_000, "max_items_per_pool": 10_000_000, "max_pool_bytes": 1_u64 << 30})
    );
    let file = std::fs::read_to_string(&app.key_file).expect("key file");
    let mut lines: Vec<String> = file.lines().map(str::to_owned).collect();
    lines[0].push_str(" max_pools=1 max_pool_bytes=4096");
    std::fs::write(&app.key_file, lines.join("\n")).expect("write");
    app.auth.reload().expect("reload");
    let own = app.get("/v1/tenant").await.expect(200)["limits"].clone();
    assert_eq!(
        own,
        json!({"max_pools_per_tenant": 1, "max_items_per_pool": 10_000_000, "max_pool_bytes": 4096})
    );
    let first = pool_name();
    app.add_items(&first, &["a"]).await;
    app.post(&items_path(&pool_name()), json!({"items": [{"id": "a"}]}))
        .await
        .expect_problem(409, "quota_exceeded");
    assert_eq!(usage(&app, &first).await["max_bytes"], 4096);
    // The other tenant keeps the defaults.
    let other = app
        .client
        .get(app.url("/v1/tenant"))
        .bearer_auth(&app.other_key);
    assert_eq!(app.send(other).await.expect(200)["limits"], defaults);

    // A file whose limits contradict, or name an unknown one, is refused whole.
    for bad in [
        " max_pools=2",
        " max_widgets=3",
        " max_pools=lots",
        " max_pool_bytes=9007199254740992",
    ] {
        let mut broken = lines.clone();
        broken.push(format!(
            "{}{bad}",
            lines[0].split(' ').next().expect("entry")
        ));
        std::fs::write(&app.key_file, broken.join("\n")).expect("write");
        let error = app.auth.reload().expect_err("a bad limit is refused");
        assert!(
            error.contains(&app.key_file.display().to_string()),
            "{error}"
        );
    }
    assert_eq!(app.get("/v1/tenant").await.expect(200)["limits"], own);
}

#[tokio::test]
async fn deleting_a_pool_deletes_its_stored_answers_and_expired_answers_are_removed() {
    let app = spawn_app_with(Options {
        idempotency_ttl_secs: Some(1),
        ..Options::default()
    })
    .await;
    let pool = pool_name();
    let name = PoolName::parse("pool", &pool).expect("valid");
    let answers = keys::pool_answers(&app.tenant, &name);
    let items: Vec<Value> = (0..50)
        .map(|i| json!({"id": format!("i{i}"), "data": {"blob": "q".repeat(1000)}}))
        .collect();
    app.post(&items_path(&pool), json!({"items": items}))
        .await
        .expect(200);
    for n in 0..3 {
        let claim = app
            .request(Method::POST, &format!("/v1/pools/{pool}/claim"))
            .header("Idempotency-Key", format!("claim-{n}"))
            .json(&json!({"holder": "w", "count": 10}));
        app.send(claim).await.expect(200);
    }
    let held = usage(&app, &pool).await["answer_bytes"]
        .as_u64()
        .expect("bytes");
    assert!(held > 30_000, "three claims of ten 1 KB items: {held}");

    // Past their time, answers are removed by the writes that follow.
    eventually(
        Duration::from_secs(10),
        "expired answers removed",
        async || {
            app.put(&pool_path(&pool), json!({})).await.expect(200);
            usage(&app, &pool).await["answer_bytes"] == 0
        },
    )
    .await;
    let left: u64 = redis::cmd("HLEN")
        .arg(&answers)
        .query(&mut redis().connection())
        .expect("HLEN");
    assert_eq!(left, 0);

    let claim = app
        .request(Method::POST, &format!("/v1/pools/{pool}/claim"))
        .header("Idempotency-Key", "claim-last")
        .json(&json!({"holder": "w", "count": 10}));
    app.send(claim).await.expect(200);
    let delete = app
        .request(Method::DELETE, &pool_path(&pool))
        .header("Idempotency-Key", "delete-it");
    assert_eq!(app.send(delete).await.status.as_u16(), 204);
    let fields: Vec<String> = redis::cmd("HKEYS")
        .arg(&answers)
        .query(&mut redis().connection())
        .expect("HKEYS");
    assert_eq!(
        fields,
        [keys::answer_field("delete-it")],
        "only the deletion's own answer"
    );
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&answers)
        .query(&mut redis().connection())
        .expect("PTTL");
    assert!(ttl > 0, "the deletion's answer expires by itself: {ttl}");
    let again = app
        .request(Method::DELETE, &pool_path(&pool))
        .header("Idempotency-Key", "delete-it");
    let again = app.send(again).await;
    assert_eq!(again.status.as_u16(), 204);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));

    // A pool made again under the name counts the answer it finds.
    app.put(&pool_path(&pool), json!({})).await.expect(201);
    assert_counted(
        &usage(&app, &pool).await,
        counted(&app, &pool).await,
        "made again",
    );
}

#[test]
fn a_limit_past_what_the_scripts_can_hold_is_refused_at_start() {
    use clap::Parser;
    for flag in [
        "--max-pool-bytes",
        "--max-items-per-pool",
        "--max-pools-per-tenant",
    ] {
        let parsed = leasehold::cli::Cli::try_parse_from([
            "leasehold",
            "serve",
            "--allow-anonymous",
            flag,
            "9007199254740992",
        ]);
        assert!(parsed.is_err(), "{flag} 2^53 was taken");
        let parsed = leasehold::cli::Cli::try_parse_from([
            "leasehold",
            "serve",
            "--allow-anonymous",
            flag,
            "9007199254740991",
        ]);
        assert!(parsed.is_ok(), "{flag} 2^53 - 1 was refused");
    }
}

/// A pool made by a version that did not count bytes: its event log is counted at its
/// first call, its items by the sweeper, and then the counts are exact again.
#[tokio::test]
async fn a_pool_from_before_counting_is_counted_by_the_sweeper() {
    let (redis, app) = app_on_own_redis_with(Options {
        sweep_interval_secs: Some(1),
        ..Options::default()
    })
    .await;
    let pool = pool_name();
    let items: Vec<Value> = (0..1500)
        .map(|i| json!({"id": format!("i{i}"), "data": {"n": i}}))
        .collect();
    for chunk in items.chunks(500) {
        app.post(&items_path(&pool), json!({"items": chunk}))
            .await
            .expect(200);
    }
    // As an older version left it: no counts in the pool, no mark on the items.
    let name = PoolName::parse("pool", &pool).expect("valid");
    let pool_keys = keys::pool_keys(&app.tenant, &name);
    let _: () = redis::cmd("EVAL")
        .arg(
            "redis.call('HDEL', KEYS[1], 'data_bytes', 'event_bytes', 'answer_bytes') \
             local flat = redis.call('HGETALL', KEYS[2]) \
             for i = 1, #flat, 2 do \
               local it = cmsgpack.unpack(flat[i + 1]) it.k = nil \
               redis.call('HSET', KEYS[2], flat[i], cmsgpack.pack(it)) \
             end",
        )
        .arg(2)
        .arg(&pool_keys[0])
        .arg(&pool_keys[1])
        .query(&mut redis.connection())
        .expect("EVAL");
    let first = usage(&app, &pool).await;
    let (data, events, _) = counted_in(&app, &pool, &mut redis.connection()).await;
    assert_eq!(
        first["event_bytes"], events,
        "the log counted at once: {first}"
    );
    assert!(first["data_bytes"].as_u64() < Some(data), "{first}");
    // An item written meanwhile counts at once, and is not counted twice.
    app.put(
        &format!("{}/i7", items_path(&pool)),
        json!({"data": {"changed": true}}),
    )
    .await
    .expect(200);
    eventually(
        Duration::from_secs(15),
        "the sweeper to count every item",
        async || usage(&app, &pool).await.get("counting").is_none(),
    )
    .await;
    let now = counted_in(&app, &pool, &mut redis.connection()).await;
    assert_counted(&usage(&app, &pool).await, now, "counted");
}
