//! Done and dead items are not kept for ever: a pool's `keep_done_ms` and `keep_dead_ms`
//! (7 and 30 days by default; 0: removed at once; null: kept for ever) decide how long, the
//! scripts remove those past it (a bounded number a call, oldest first, a `removed` event
//! each), and the replicas' sweeper does the same for pools nobody calls on, with their
//! expired stored answers.

use std::time::Duration;

use leasehold::names::PoolName;
use leasehold::store::keys;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

fn pool_path(pool: &str) -> String {
    format!("/v1/pools/{pool}")
}

async fn events(app: &TestApp, pool: &str) -> Vec<Value> {
    app.get(&format!("/v1/pools/{pool}/events?limit=1000"))
        .await
        .expect(200)["events"]
        .as_array()
        .expect("events")
        .clone()
}

/// Claims and completes `n` items of `pool` (`holder` w).
async fn finish(app: &TestApp, pool: &str, n: usize) {
    for _ in 0..n {
        let lease = app.claim(pool, "w").await.expect("a lease");
        complete(app, pool, &lease).await;
    }
}

#[tokio::test]
async fn pools_keep_done_items_7_days_and_dead_ones_30_unless_told_otherwise() {
    let app = spawn_app().await;
    let pool = pool_name();
    let created = app.put(&pool_path(&pool), json!({})).await.expect(201);
    assert_eq!(created["config"]["keep_done_ms"], 7 * 86_400_000_u64);
    assert_eq!(created["config"]["keep_dead_ms"], 30 * 86_400_000_u64);
    let forever = app
        .put(
            &pool_path(&pool),
            json!({"keep_done_ms": null, "keep_dead_ms": 5000}),
        )
        .await
        .expect(200);
    assert_eq!(forever["config"]["keep_done_ms"], Value::Null);
    assert_eq!(forever["config"]["keep_dead_ms"], 5000);
    // Left out, a setting keeps its value.
    let kept = app
        .put(&pool_path(&pool), json!({"lease_ms": 1000}))
        .await
        .expect(200);
    assert_eq!(kept["config"]["keep_done_ms"], Value::Null);
    assert_eq!(kept["config"]["keep_dead_ms"], 5000);
    for bad in [
        json!({"keep_done_ms": -1}),
        json!({"keep_dead_ms": "1d"}),
        json!({"keep_done_ms": 2_592_000_001_u64}),
    ] {
        app.put(&pool_path(&pool), bad.clone())
            .await
            .expect_problem(400, "invalid_request");
    }
    assert_eq!(
        app.get(&pool_path(&pool)).await.expect(200)["config"],
        kept["config"]
    );
}

#[tokio::test]
async fn with_keep_0_an_item_is_removed_as_it_finishes_and_with_null_it_stays() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.put(
        &pool_path(&pool),
        json!({"keep_done_ms": 0, "keep_dead_ms": 0, "max_attempts": 1}),
    )
    .await
    .expect(201);
    app.add_items(&pool, &["a", "b"]).await;
    let lease = claim_item(&app, &pool, "a", "w").await;
    let done = complete(&app, &pool, &lease).await;
    assert_eq!(
        done["state"], "done",
        "the answer shows the item as it finished"
    );
    app.get(&format!("{}/items/a", pool_path(&pool)))
        .await
        .expect_problem(404, "not_found");
    let lease = claim_item(&app, &pool, "b", "w").await;
    let dead = release(&app, &pool, &lease, json!({})).await;
    assert_eq!(dead["state"], "dead");
    app.get(&format!("{}/items/b", pool_path(&pool)))
        .await
        .expect_problem(404, "not_found");
    let kinds: Vec<(String, String, String)> = events(&app, &pool)
        .await
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap_or_default().to_owned(),
                e["item"].as_str().unwrap_or_default().to_owned(),
                e["state"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .filter(|(kind, _, _)| kind == "completed" || kind == "released" || kind == "removed")
        .collect();
    let triple = |k: &str, i: &str, s: &str| (k.to_owned(), i.to_owned(), s.to_owned());
    assert_eq!(
        kinds,
        [
            triple("completed", "a", "done"),
            triple("removed", "a", "done"),
            triple("released", "b", "dead"),
            triple("removed", "b", "dead"),
        ]
    );
    let pool_now = app.get(&pool_path(&pool)).await.expect(200);
    assert_eq!(pool_now["usage"]["items"], 0);
    assert_eq!(pool_now["usage"]["data_bytes"], 0);

    // Kept for ever: the same completion leaves the item done.
    app.put(&pool_path(&pool), json!({"keep_done_ms": null}))
        .await
        .expect(200);
    app.add_items(&pool, &["c"]).await;
    let lease = claim_item(&app, &pool, "c", "w").await;
    complete(&app, &pool, &lease).await;
    assert_eq!(app.item(&pool, "c").await["state"], "done");
}

#[tokio::test]
async fn finished_items_past_their_time_are_removed_by_later_calls_oldest_first() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.put(&pool_path(&pool), json!({"keep_done_ms": 300}))
        .await
        .expect(201);
    let ids: Vec<String> = (0..5).map(|i| format!("i{i}")).collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    app.add_items(&pool, &id_refs).await;
    finish(&app, &pool, 5).await;
    assert_eq!(
        app.get(&pool_path(&pool)).await.expect(200)["counts"]["done"],
        5
    );
    eventually(
        Duration::from_secs(10),
        "the done items removed",
        async || {
            // A claim (nothing to grant) removes what is due, as any claim does.
            app.claim(&pool, "idle").await;
            app.get(&pool_path(&pool)).await.expect(200)["counts"]["done"] == 0
        },
    )
    .await;
    let removed: Vec<String> = events(&app, &pool)
        .await
        .iter()
        .filter(|e| e["type"] == "removed")
        .map(|e| e["item"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        removed, ids,
        "each removed once, in the order they were done"
    );
    assert_eq!(
        app.get(&pool_path(&pool)).await.expect(200)["usage"]["data_bytes"],
        0
    );
}

/// How many items and stored answers a pool has, read from Redis without the API (whose
/// calls would remove what is due themselves).
fn held(redis: &RedisProcess, app: &TestApp, pool: &str) -> (u64, u64) {
    let name = PoolName::parse("pool", pool).expect("valid");
    let keys = keys::pool_keys(&app.tenant, &name);
    let mut conn = redis.connection();
    let items: u64 = redis::cmd("HLEN")
        .arg(&keys[1])
        .query(&mut conn)
        .expect("HLEN");
    let answers: u64 = redis::cmd("HLEN")
        .arg(keys::pool_answers(&app.tenant, &name))
        .query(&mut conn)
        .expect("HLEN");
    (items, answers)
}

/// A pool of `app` whose 20 items are done (kept 200 ms) and whose answers (kept 1 s)
/// are 20: then nobody calls on it.
async fn idle_pool(app: &TestApp) -> String {
    let pool = pool_name();
    app.put(&pool_path(&pool), json!({"keep_done_ms": 200}))
        .await
        .expect(201);
    let ids: Vec<String> = (0..20).map(|i| format!("i{i}")).collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    app.add_items(&pool, &id_refs).await;
    for n in 0..20 {
        let lease = app.claim(&pool, "w").await.expect("a lease");
        let id = lease["id"].as_str().expect("id");
        let done = app
            .request(Method::POST, &action_path(&pool, id, "complete"))
            .header("Idempotency-Key", format!("complete-{n}"))
            .json(&json!({"holder": "w", "token": lease["token"]}));
        app.send(done).await.expect(200);
    }
    pool
}

#[tokio::test]
async fn the_sweeper_empties_an_idle_pool_of_what_is_due_and_without_it_nothing_goes() {
    let options = |sweep| Options {
        sweep_interval_secs: Some(sweep),
        idempotency_ttl_secs: Some(1),
        ..Options::default()
    };
    let (swept_redis, swept) = app_on_own_redis_with(options(1)).await;
    let (idle_redis, unswept) = app_on_own_redis_with(options(0)).await;
    let swept_pool = idle_pool(&swept).await;
    let unswept_pool = idle_pool(&unswept).await;
    assert_eq!(held(&idle_redis, &unswept, &unswept_pool), (20, 20));
    eventually(
        Duration::from_secs(15),
        "the sweeper to empty the idle pool",
        async || held(&swept_redis, &swept, &swept_pool) == (0, 0),
    )
    .await;
    // The same time went by for a pool no replica sweeps: everything is still there.
    assert_eq!(held(&idle_redis, &unswept, &unswept_pool), (20, 20));
    let usage = swept.get(&pool_path(&swept_pool)).await.expect(200)["usage"].clone();
    assert_eq!(usage["items"], 0, "{usage}");
    assert_eq!(usage["answer_bytes"], 0, "{usage}");
    assert_eq!(usage["data_bytes"], 0, "{usage}");
}

/// An expired lease on its last attempt, in a pool that keeps dead items 0 ms: the item is
/// gone, and nothing acts on it again (a deletion or a requeue is 404, and its bytes are
/// taken away once).
#[tokio::test]
async fn an_item_removed_as_its_lease_expires_is_gone_for_every_later_call() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.put(
        &pool_path(&pool),
        json!({"max_attempts": 1, "keep_dead_ms": 0, "lease_ms": 100}),
    )
    .await
    .expect(201);
    app.add_items(&pool, &["a", "b"]).await;
    claim_item(&app, &pool, "a", "w").await;
    let expires = redis_now_ms() + 100;
    eventually(
        Duration::from_secs(5),
        "the lease to have ended",
        async || redis_now_ms() > expires,
    )
    .await;
    app.delete(&format!("{}/items/a", pool_path(&pool)))
        .await
        .expect_problem(404, "not_found");
    app.post(&action_path(&pool, "a", "requeue"), json!({}))
        .await
        .expect_problem(404, "not_found");
    let usage = app.get(&pool_path(&pool)).await.expect(200)["usage"].clone();
    assert_eq!(usage["items"], 1, "{usage}");
    assert_eq!(usage["data_bytes"], "b".len() + "{}".len(), "{usage}");
    let kinds: Vec<String> = events(&app, &pool)
        .await
        .iter()
        .filter(|e| e["item"] == "a")
        .map(|e| e["type"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(kinds, ["added", "claimed", "expired", "removed"]);
}

/// A pool at its byte limit still takes a completion with larger data when done items
/// are not kept: the data goes with the item at once.
#[tokio::test]
async fn a_full_pool_takes_larger_data_on_completion_when_done_items_are_not_kept() {
    let app = spawn_app_with(Options {
        quotas: leasehold::store::Quotas {
            max_pool_bytes: 1000,
            ..leasehold::store::Quotas::default()
        },
        ..Options::default()
    })
    .await;
    let pool = pool_name();
    app.put(
        &pool_path(&pool),
        json!({"keep_done_ms": 0, "max_events": 0}),
    )
    .await
    .expect(201);
    app.post(
        &format!("{}/items", pool_path(&pool)),
        json!({"items": [{"id": "a", "data": {"x": "y".repeat(900)}}]}),
    )
    .await
    .expect(200);
    let lease = app.claim(&pool, "w").await.expect("a lease");
    app.post(
        &action_path(&pool, "a", "complete"),
        json!({"holder": "w", "token": lease["token"], "data": {"result": "z".repeat(950)}}),
    )
    .await
    .expect(200);
    assert_eq!(
        app.get(&pool_path(&pool)).await.expect(200)["usage"]["items"],
        0
    );
}
