//! Pools: create and change settings, read config, counts and stats, list, delete.

use crate::helpers::*;
use reqwest::Method;
use serde_json::{Value, json};

fn pool_path(pool: &str) -> String {
    format!("/v1/pools/{pool}")
}

#[tokio::test]
async fn put_pool_creates_with_201_then_updates_with_200() {
    let app = spawn_app().await;
    let pool = pool_name();
    let created = app
        .put(&pool_path(&pool), json!({ "lease_ms": 5000 }))
        .await
        .expect(201);
    assert_eq!(created["name"], pool.as_str());
    assert_eq!(
        created["config"],
        json!({
            "lease_ms": 5000,
            "max_leases_per_holder": 0,
            "max_attempts": 0,
            "require_if_match": false,
            "max_events": 10000,
            "keep_done_ms": 604_800_000,
            "keep_dead_ms": 2_592_000_000_u64,
            "paused": false,
        })
    );
    assert!(created["created_at"].is_string(), "{created:#?}");
    assert!(created["updated_at"].is_string(), "{created:#?}");
    let updated = app
        .put(&pool_path(&pool), json!({ "lease_ms": 7000 }))
        .await
        .expect(200);
    assert_eq!(updated["config"]["lease_ms"], 7000);
}

#[tokio::test]
async fn put_pool_keeps_settings_not_given() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.put(
        &pool_path(&pool),
        json!({
            "lease_ms": 5000,
            "max_leases_per_holder": 3,
            "max_attempts": 4,
            "require_if_match": true,
            "max_events": 500,
            "keep_done_ms": 60_000,
        }),
    )
    .await
    .expect(201);
    let updated = app
        .put(&pool_path(&pool), json!({ "max_attempts": 9 }))
        .await
        .expect(200);
    let expected = json!({
        "lease_ms": 5000,
        "max_leases_per_holder": 3,
        "max_attempts": 9,
        "require_if_match": true,
        "max_events": 500,
        "keep_done_ms": 60_000,
        "keep_dead_ms": 2_592_000_000_u64,
        "paused": false,
    });
    assert_eq!(updated["config"], expected);
    let read = app.get(&pool_path(&pool)).await.expect(200);
    assert_eq!(read["config"], expected);
}

#[tokio::test]
async fn new_pool_has_default_settings() {
    let app = spawn_app().await;
    let pool = pool_name();
    let created = app.put(&pool_path(&pool), json!({})).await.expect(201);
    assert_eq!(
        created["config"],
        json!({
            "lease_ms": 30000,
            "max_leases_per_holder": 0,
            "max_attempts": 0,
            "require_if_match": false,
            "max_events": 10000,
            "keep_done_ms": 604_800_000,
            "keep_dead_ms": 2_592_000_000_u64,
            "paused": false,
        })
    );
    assert_eq!(
        created["counts"],
        json!({ "available": 0, "leased": 0, "delayed": 0, "done": 0, "dead": 0 })
    );
    assert_eq!(
        created["stats"],
        json!({ "claims": 0, "conflicts": 0, "expired": 0 })
    );
}

#[tokio::test]
async fn get_pool_counts_items_by_state() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(
        &pool,
        &["avail1", "avail2", "leased", "delayed", "done", "dead"],
    )
    .await;
    claim_item(&app, &pool, "leased", "alice").await;
    let delayed = claim_item(&app, &pool, "delayed", "alice").await;
    assert_eq!(
        release(&app, &pool, &delayed, json!({ "delay_ms": 600_000 })).await["state"],
        "delayed"
    );
    let done = claim_item(&app, &pool, "done", "alice").await;
    complete(&app, &pool, &done).await;
    // With max_attempts 1, the first grant that ends without completion kills the item.
    app.put(&pool_path(&pool), json!({ "max_attempts": 1 }))
        .await
        .expect(200);
    let dead = claim_item(&app, &pool, "dead", "alice").await;
    assert_eq!(
        release(&app, &pool, &dead, json!({ "delay_ms": 0 })).await["state"],
        "dead"
    );

    let view = app.get(&pool_path(&pool)).await.expect(200);
    assert_eq!(view["name"], pool.as_str());
    assert_eq!(
        view["counts"],
        json!({ "available": 2, "leased": 1, "delayed": 1, "done": 1, "dead": 1 })
    );
    assert_eq!(view["config"]["max_attempts"], 1);
    assert_eq!(view["stats"]["claims"], 4);
}

#[tokio::test]
async fn get_never_created_pool_is_not_found() {
    let app = spawn_app().await;
    app.get(&pool_path(&pool_name()))
        .await
        .expect_problem(404, "not_found");
}

#[tokio::test]
async fn adding_items_creates_pool_implicitly_with_defaults() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a", "b"]).await;
    let view = app.get(&pool_path(&pool)).await.expect(200);
    assert_eq!(view["config"]["lease_ms"], 30000);
    assert_eq!(view["counts"]["available"], 2);
}

#[tokio::test]
async fn putting_an_item_creates_pool_implicitly() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.put(
        &format!("/v1/pools/{pool}/items/a"),
        json!({ "data": { "x": 1 } }),
    )
    .await
    .expect(201);
    let view = app.get(&pool_path(&pool)).await.expect(200);
    assert_eq!(view["counts"]["available"], 1);
}

#[tokio::test]
async fn list_pools_shows_this_tenants_pools_sorted_by_name_with_counts() {
    let app = spawn_app().await;
    let suffix = pool_name();
    let (first, second, third) = (
        format!("a-{suffix}"),
        format!("b-{suffix}"),
        format!("c-{suffix}"),
    );
    app.add_items(&third, &["x"]).await;
    app.put(&pool_path(&first), json!({})).await.expect(201);
    app.add_items(&second, &["x", "y"]).await;
    claim_item(&app, &second, "y", "alice").await;
    let foreign = app
        .client
        .request(Method::PUT, app.url(&pool_path(&format!("z-{suffix}"))))
        .bearer_auth(&app.other_key)
        .json(&json!({}));
    app.send(foreign).await.expect(201);

    let listed = app.get("/v1/pools").await.expect(200);
    let zero = json!({ "available": 0, "leased": 0, "delayed": 0, "done": 0, "dead": 0 });
    assert_eq!(
        listed,
        json!({ "pools": [
            { "name": first, "counts": zero },
            { "name": second, "counts":
                { "available": 1, "leased": 1, "delayed": 0, "done": 0, "dead": 0 } },
            { "name": third, "counts":
                { "available": 1, "leased": 0, "delayed": 0, "done": 0, "dead": 0 } },
        ], "next_after": null })
    );
}

#[tokio::test]
async fn delete_pool_answers_204_then_pool_is_not_found() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    let reply = app.delete(&pool_path(&pool)).await;
    assert_eq!(reply.status.as_u16(), 204, "{:#?}", reply.body);
    assert_eq!(reply.body, Value::Null);
    app.get(&pool_path(&pool))
        .await
        .expect_problem(404, "not_found");
    let listed = app.get("/v1/pools").await.expect(200);
    assert_eq!(listed, json!({ "pools": [], "next_after": null }));
}

#[tokio::test]
async fn delete_pool_removes_its_items() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a", "b"]).await;
    claim_item(&app, &pool, "b", "alice").await;
    app.delete(&pool_path(&pool)).await.expect(204);
    app.get(&format!("/v1/pools/{pool}/items/a"))
        .await
        .expect_problem(404, "not_found");
    app.get(&format!("/v1/pools/{pool}/items/b"))
        .await
        .expect_problem(404, "not_found");
    let leases = app
        .get(&format!("/v1/pools/{pool}/leases?holder=alice"))
        .await
        .expect(200);
    assert_eq!(leases["leases"], json!([]));
}

#[tokio::test]
async fn delete_pool_twice_is_not_found_the_second_time() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.put(&pool_path(&pool), json!({})).await.expect(201);
    app.delete(&pool_path(&pool)).await.expect(204);
    app.delete(&pool_path(&pool))
        .await
        .expect_problem(404, "not_found");
}

#[tokio::test]
async fn delete_never_created_pool_is_not_found() {
    let app = spawn_app().await;
    app.delete(&pool_path(&pool_name()))
        .await
        .expect_problem(404, "not_found");
}

#[tokio::test]
async fn put_pool_with_negative_lease_ms_is_invalid() {
    let app = spawn_app().await;
    let pool = pool_name();
    let problem = app
        .put(&pool_path(&pool), json!({ "lease_ms": -1 }))
        .await
        .expect_problem(400, "invalid_request");
    assert_eq!(problem["field"], "lease_ms");
    app.get(&pool_path(&pool))
        .await
        .expect_problem(404, "not_found");
}

#[tokio::test]
async fn put_pool_with_lease_ms_over_30_days_is_invalid() {
    let app = spawn_app().await;
    let pool = pool_name();
    let problem = app
        .put(&pool_path(&pool), json!({ "lease_ms": 2_592_000_001_i64 }))
        .await
        .expect_problem(400, "invalid_request");
    assert_eq!(problem["field"], "lease_ms");
    app.get(&pool_path(&pool))
        .await
        .expect_problem(404, "not_found");
}

#[tokio::test]
async fn put_pool_with_lease_ms_of_exactly_30_days_is_accepted() {
    let app = spawn_app().await;
    let pool = pool_name();
    let created = app
        .put(&pool_path(&pool), json!({ "lease_ms": 2_592_000_000_i64 }))
        .await
        .expect(201);
    assert_eq!(created["config"]["lease_ms"], 2_592_000_000_i64);
}

#[tokio::test]
async fn put_pool_with_unknown_field_is_invalid() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.put(&pool_path(&pool), json!({ "lease_seconds": 30 }))
        .await
        .expect_problem(400, "invalid_request");
    app.get(&pool_path(&pool))
        .await
        .expect_problem(404, "not_found");
}

#[tokio::test]
async fn a_replayed_delete_does_not_hide_the_pool_created_again_since() {
    let app = spawn_app().await;
    let pool = pool_name();
    let delete = || {
        app.request(reqwest::Method::DELETE, &pool_path(&pool))
            .header("idempotency-key", "delete-once")
    };
    app.add_items(&pool, &["a"]).await;
    app.send(delete()).await.expect(204);
    app.add_items(&pool, &["b"]).await;

    let replay = app.send(delete()).await;
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    replay.expect(204);
    app.get(&pool_path(&pool)).await.expect(200);
    let pools = app.get("/v1/pools").await.expect(200);
    let names: Vec<&str> = pools["pools"]
        .as_array()
        .expect("pools")
        .iter()
        .map(|p| p["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, [pool.as_str()]);
}

// ---- paging and the tenant's index ----

/// Every pool name of the listing, page by page with `limit`, and the pages' sizes.
async fn every_page(app: &TestApp, limit: u64) -> (Vec<String>, Vec<usize>) {
    let (mut names, mut sizes) = (Vec::new(), Vec::new());
    let mut after = String::new();
    loop {
        let page = app
            .get(&format!("/v1/pools?limit={limit}{after}"))
            .await
            .expect(200);
        let pools = page["pools"].as_array().expect("pools");
        sizes.push(pools.len());
        names.extend(
            pools
                .iter()
                .map(|p| p["name"].as_str().expect("name").to_owned()),
        );
        match page["next_after"].as_str() {
            Some(next) => after = format!("&after={next}"),
            None => return (names, sizes),
        }
        assert!(sizes.len() < 100, "the pages never end");
    }
}

#[tokio::test]
async fn pools_are_listed_in_pages_by_name() {
    let app = spawn_app().await;
    let mut names: Vec<String> = (0..7).map(|_| pool_name()).collect();
    for name in &names {
        app.put(&pool_path(name), json!({})).await.expect(201);
    }
    names.sort();
    let (listed, sizes) = every_page(&app, 3).await;
    assert_eq!(listed, names);
    assert_eq!(sizes, [3, 3, 1]);
    let (listed, sizes) = every_page(&app, 7).await;
    assert_eq!(listed, names);
    assert_eq!(
        sizes,
        [7, 0],
        "a full page says where the next starts, even if it is empty"
    );
    let default = app.get("/v1/pools").await.expect(200);
    assert_eq!(default["pools"].as_array().map(Vec::len), Some(7));
    assert_eq!(default["next_after"], Value::Null);

    let after_third = app
        .get(&format!("/v1/pools?after={}", names[2]))
        .await
        .expect(200);
    assert_eq!(after_third["pools"][0]["name"], names[3].as_str());
    for bad in ["limit=0", "limit=1001", "after=%7Bx%7D", "page=2"] {
        app.get(&format!("/v1/pools?{bad}"))
            .await
            .expect_problem(400, "invalid_request");
    }
}

#[tokio::test]
async fn the_index_drops_names_without_a_pool_but_not_a_pool_being_created() {
    let app = spawn_app().await;
    let real = pool_name();
    app.put(&pool_path(&real), json!({})).await.expect(201);
    let [names, pending, _] = leasehold::store::keys::tenant_pools(&app.tenant);
    let (gone, old_reservation, fresh_reservation) = (pool_name(), pool_name(), pool_name());
    let mut conn = redis().connection();
    // A deletion cut short before its name left the index; a reservation whose pool never
    // came; one whose pool is being created right now.
    for name in [&gone, &old_reservation, &fresh_reservation] {
        let _: () = redis::cmd("ZADD")
            .arg(&names)
            .arg(0)
            .arg(name)
            .query(&mut conn)
            .expect("ZADD");
    }
    let _: () = redis::cmd("HSET")
        .arg(&pending)
        .arg(&old_reservation)
        .arg(redis_now_ms() - 120_000)
        .arg(&fresh_reservation)
        .arg(redis_now_ms())
        .query(&mut conn)
        .expect("HSET");
    assert_eq!(app.get("/v1/tenant").await.expect(200)["pools"], 4);

    let (listed, _) = every_page(&app, 100).await;
    assert_eq!(listed, std::slice::from_ref(&real));
    let left: Vec<String> = redis::cmd("ZRANGE")
        .arg(&names)
        .arg(0)
        .arg(-1)
        .query(&mut conn)
        .expect("ZRANGE");
    let mut expected = vec![real.clone(), fresh_reservation.clone()];
    expected.sort();
    assert_eq!(
        left, expected,
        "only the fresh reservation stays beside the pool"
    );
    assert_eq!(app.get("/v1/tenant").await.expect(200)["pools"], 2);

    // The pool being created comes, and is listed.
    app.add_items(&fresh_reservation, &["a"]).await;
    let (listed, _) = every_page(&app, 100).await;
    assert_eq!(listed, expected);
    let still_pending: Option<String> = redis::cmd("HGET")
        .arg(&pending)
        .arg(&fresh_reservation)
        .query(&mut conn)
        .expect("HGET");
    assert_eq!(still_pending, None, "its creation cleared the reservation");
}

#[tokio::test]
async fn a_pool_index_kept_as_a_set_by_an_older_version_is_moved_at_first_use() {
    let app = spawn_app().await;
    let older = [pool_name(), pool_name()];
    for name in &older {
        app.put(&pool_path(name), json!({})).await.expect(201);
    }
    // As an older version left it: the names in a set, none in the sorted index.
    let [names, _, legacy] = leasehold::store::keys::tenant_pools(&app.tenant);
    let mut conn = redis().connection();
    let _: () = redis::cmd("UNLINK")
        .arg(&names)
        .query(&mut conn)
        .expect("UNLINK");
    let _: () = redis::cmd("SADD")
        .arg(&legacy)
        .arg(&older[0])
        .arg(&older[1])
        .query(&mut conn)
        .expect("SADD");

    let (listed, _) = every_page(&app, 100).await;
    let mut expected = older.to_vec();
    expected.sort();
    assert_eq!(listed, expected);
    let legacy_left: bool = redis::cmd("EXISTS")
        .arg(&legacy)
        .query(&mut conn)
        .expect("EXISTS");
    assert!(!legacy_left, "the set is gone once moved");
}

#[tokio::test]
async fn a_page_of_pools_costs_redis_work_in_proportion_to_the_page_not_the_tenant() {
    let (redis, app) = app_on_own_redis().await;
    for n in 0..300 {
        app.put(&pool_path(&format!("p{n:03}")), json!({}))
            .await
            .expect(201);
    }
    let before = scripts_run(&redis);
    let page = app.get("/v1/pools?limit=10").await.expect(200);
    let used = scripts_run(&redis) - before;
    assert_eq!(page["pools"].as_array().map(Vec::len), Some(10));
    assert_eq!(page["next_after"], "p009");
    // One script reads the page of names, one per pool reads its counts.
    assert_eq!(used, 11, "scripts for a page of 10 among 300 pools");
}

/// A deletion that removes a name from the index while the same name is being created
/// again: the creation puts it back, so the pool is never left out of its tenant's index.
#[test]
fn a_creation_puts_back_a_name_a_deletion_removed_meanwhile() {
    let tenant = leasehold::names::Tenant::parse(
        "tenant",
        &format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
    )
    .expect("valid");
    let keys = leasehold::store::keys::tenant_pools(&tenant);
    let scripts = leasehold::store::Scripts::new();
    let mut conn = redis().connection();
    let run =
        |script: &leasehold::store::scripts::Function, args: &[&str], conn: &mut TestConnection| {
            let mut invocation = script.prepare_invoke();
            for key in &keys {
                invocation.key(key);
            }
            for arg in args {
                invocation.arg(*arg);
            }
            let _: (String, i64) = invocation.invoke(conn).expect("script");
        };
    // The creator reserves the name (still listed from before), the deletion removes it,
    // then the creator's pool comes.
    run(&scripts.reserve_pool, &["p", "10"], &mut conn);
    run(&scripts.unlist_pool, &["p", "gone"], &mut conn);
    run(&scripts.unlist_pool, &["p", "created"], &mut conn);
    let names: Vec<String> = redis::cmd("ZRANGE")
        .arg(&keys[0])
        .arg(0)
        .arg(-1)
        .query(&mut conn)
        .expect("ZRANGE");
    assert_eq!(names, ["p"]);
}
