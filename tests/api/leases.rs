//! Leases: claim-next, claim-specific, renew, release, complete, assign, requeue, expiry.

use std::time::Duration;

use crate::helpers::*;
use reqwest::Method;
use serde_json::{Value, json};

/// Long enough for any test here; short leases are asked for explicitly.
const WAIT: Duration = Duration::from_secs(10);

/// A lease short enough to expire within a test.
const SHORT_LEASE_MS: u64 = 150;

/// Claims the named item for `holder` with a lease of `lease_ms`.
async fn claim_item_for(app: &TestApp, pool: &str, id: &str, holder: &str, lease_ms: u64) -> Value {
    app.post(
        &action_path(pool, id, "claim"),
        json!({ "holder": holder, "lease_ms": lease_ms }),
    )
    .await
    .expect(200)
}

/// Claims up to `count` items for `holder`; the leases.
async fn claim_many(app: &TestApp, pool: &str, holder: &str, count: u64) -> Vec<Value> {
    let body = app
        .post(
            &format!("/v1/pools/{pool}/claim"),
            json!({ "holder": holder, "count": count }),
        )
        .await
        .expect(200);
    body["leases"].as_array().expect("leases").clone()
}

fn token(lease: &Value) -> u64 {
    lease["token"].as_u64().expect("a numeric token")
}

fn ids(leases: &[Value]) -> Vec<String> {
    leases
        .iter()
        .map(|l| l["id"].as_str().expect("id").to_owned())
        .collect()
}

fn expiry_ms(lease: &Value) -> i64 {
    lease["lease_expires_at"]
        .as_str()
        .expect("lease_expires_at")
        .parse::<jiff::Timestamp>()
        .expect("RFC 3339 time")
        .as_millisecond()
}

async fn put_pool(app: &TestApp, pool: &str, settings: Value) {
    let status = app
        .put(&format!("/v1/pools/{pool}"), settings)
        .await
        .status
        .as_u16();
    assert!(status == 200 || status == 201, "PUT pool answered {status}");
}

async fn assign(app: &TestApp, pool: &str, id: &str, body: Value) -> Reply {
    app.put(&action_path(pool, id, "holder"), body).await
}

async fn leases_of(app: &TestApp, pool: &str, holder: &str) -> Vec<Value> {
    let body = app
        .get(&format!("/v1/pools/{pool}/leases?holder={holder}"))
        .await
        .expect(200);
    body["leases"].as_array().expect("leases").clone()
}

/// Waits until Redis's clock is past the lease's expiry, without touching the item, so
/// nothing has reclaimed the lease when the test goes on.
async fn wait_until_expired(lease: &Value) {
    let expires = expiry_ms(lease);
    eventually(
        WAIT,
        "Redis's clock to pass the lease's expiry",
        async || redis_now_ms() > expires,
    )
    .await;
}

// ---------------------------------------------------------------------------------------
// Claim-next

#[tokio::test]
async fn claim_next_grants_highest_priority_first_then_arrival_order() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.post(
        &format!("/v1/pools/{pool}/items"),
        json!({"items": [
            {"id": "low", "priority": -5},
            {"id": "first", "priority": 0},
            {"id": "urgent", "priority": 10},
            {"id": "second", "priority": 0},
        ]}),
    )
    .await
    .expect(200);
    let mut order = Vec::new();
    while let Some(lease) = app.claim(&pool, "alice").await {
        order.push(lease["id"].as_str().expect("id").to_owned());
    }
    assert_eq!(order, ["urgent", "first", "second", "low"]);
}

#[tokio::test]
async fn batch_claim_returns_at_most_count_leases_best_first() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.post(
        &format!("/v1/pools/{pool}/items"),
        json!({"items": [
            {"id": "a", "priority": 1},
            {"id": "b", "priority": 5},
            {"id": "c", "priority": 3},
            {"id": "d", "priority": 5},
            {"id": "e", "priority": 0},
        ]}),
    )
    .await
    .expect(200);
    let leases = claim_many(&app, &pool, "alice", 3).await;
    assert_eq!(ids(&leases), ["b", "d", "c"]);
    for lease in &leases {
        assert_eq!(lease["holder"], "alice");
        assert!(lease["token"].is_u64(), "{lease:#?}");
    }
    let rest = claim_many(&app, &pool, "alice", 100).await;
    assert_eq!(ids(&rest), ["a", "e"]);
}

#[tokio::test]
async fn claim_on_empty_pool_returns_no_leases() {
    let app = spawn_app().await;
    let pool = pool_name();
    put_pool(&app, &pool, json!({})).await;
    let body = app
        .post(
            &format!("/v1/pools/{pool}/claim"),
            json!({ "holder": "alice" }),
        )
        .await
        .expect(200);
    assert_eq!(body, json!({ "leases": [] }));
}

#[tokio::test]
async fn claim_on_pool_whose_items_are_all_leased_returns_no_leases() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    assert!(app.claim(&pool, "alice").await.is_some());
    assert_eq!(app.claim(&pool, "bob").await, None);
}

#[tokio::test]
async fn a_claim_on_a_pool_that_does_not_exist_is_404_naming_it_unless_it_may_wait_for_it() {
    let app = spawn_app().await;
    let pool = pool_name();
    let started = std::time::Instant::now();
    let refused = app
        .post(
            &format!("/v1/pools/{pool}/claim"),
            json!({ "holder": "alice", "wait_ms": 20_000 }),
        )
        .await
        .expect_problem(404, "not_found");
    assert_eq!(refused["detail"], format!("no pool named {pool}"));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "a typo'd pool is refused at once, not after the wait"
    );
    let body = app
        .post(
            &format!("/v1/pools/{pool}/claim"),
            json!({ "holder": "alice", "create": true }),
        )
        .await
        .expect(200);
    assert_eq!(body, json!({ "leases": [] }));
    app.get(&format!("/v1/pools/{pool}"))
        .await
        .expect_problem(404, "not_found");
    // Waiting for the pool: its first producer's item is granted.
    let claim_path = format!("/v1/pools/{pool}/claim");
    let waiter = app.post(
        &claim_path,
        json!({ "holder": "alice", "create": true, "wait_ms": 20_000 }),
    );
    let producer = async {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        app.add_items(&pool, &["first"]).await;
    };
    let (granted, ()) = tokio::join!(waiter, producer);
    assert_eq!(granted.expect(200)["leases"][0]["id"], "first");
}

#[tokio::test]
async fn every_404_names_what_was_not_found() {
    let app = spawn_app().await;
    let pool = pool_name();
    let missing = |reply: Reply| reply.expect_problem(404, "not_found")["detail"].clone();
    assert_eq!(
        missing(app.get(&format!("/v1/pools/{pool}")).await),
        format!("no pool named {pool}")
    );
    assert_eq!(
        missing(app.get(&format!("/v1/pools/{pool}/items/x")).await),
        format!("no pool named {pool}")
    );
    app.add_items(&pool, &["a"]).await;
    assert_eq!(
        missing(app.get(&format!("/v1/pools/{pool}/items/x")).await),
        format!("no item x in pool {pool}")
    );
    assert_eq!(
        missing(
            app.post(
                &action_path(&pool, "x", "renew"),
                json!({"holder": "h", "token": 1})
            )
            .await
        ),
        format!("no item x in pool {pool}")
    );
    assert_eq!(
        missing(app.delete(&format!("/v1/pools/{pool}/items/x")).await),
        format!("no item x in pool {pool}")
    );
    assert_eq!(
        missing(app.get(&format!("/v1/pools/{pool}-other/events")).await),
        format!("no pool named {pool}-other")
    );
    assert_eq!(missing(app.get("/v1/nowhere").await), "no such route");
}

#[tokio::test]
async fn claim_with_lease_ms_zero_grants_lease_without_expiry() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    let body = app
        .post(
            &format!("/v1/pools/{pool}/claim"),
            json!({ "holder": "alice", "lease_ms": 0 }),
        )
        .await
        .expect(200);
    let lease = &body["leases"][0];
    assert_eq!(lease["id"], "a");
    assert_eq!(lease["lease_expires_at"], Value::Null);
    let item = app.item(&pool, "a").await;
    assert_eq!(item["state"], "leased");
    assert_eq!(item["holder"], "alice");
    assert_eq!(item["lease_expires_at"], Value::Null);
}

// ---------------------------------------------------------------------------------------
// Claim-specific

#[tokio::test]
async fn claim_item_grants_lease_on_available_item() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    let lease = claim_item(&app, &pool, "a", "alice").await;
    assert_eq!(lease["id"], "a");
    assert_eq!(lease["holder"], "alice");
    assert_eq!(lease["version"], 2);
    assert_eq!(lease["attempts"], 1);
    assert!(lease["token"].is_u64(), "{lease:#?}");
    assert!(lease["lease_expires_at"].is_string(), "{lease:#?}");
    let item = app.item(&pool, "a").await;
    assert_eq!(item["state"], "leased");
    assert_eq!(item["holder"], "alice");
    assert_eq!(item.get("token"), None, "a plain GET shows no token");
}

#[tokio::test]
async fn claim_item_again_by_same_holder_returns_same_token() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    let first = claim_item(&app, &pool, "a", "alice").await;
    let again = claim_item(&app, &pool, "a", "alice").await;
    assert_eq!(token(&again), token(&first));
    assert_eq!(again["holder"], "alice");
}

/// Claiming again is a renewal: the lease runs again from the claim, for the lease time
/// it asks (here none: it no longer expires), as one more change of the item.
#[tokio::test]
async fn claim_item_again_by_same_holder_runs_the_lease_again() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    let first = app
        .post(
            &action_path(&pool, "a", "claim"),
            json!({"holder": "alice", "lease_ms": 30_000}),
        )
        .await
        .expect(200);
    let again = app
        .post(
            &action_path(&pool, "a", "claim"),
            json!({"holder": "alice", "lease_ms": 0}),
        )
        .await
        .expect(200);
    assert_eq!(token(&again), token(&first));
    assert_eq!(
        again["version"],
        first["version"].as_u64().expect("version") + 1
    );
    assert!(first["lease_expires_at"].is_string());
    assert_eq!(again["lease_expires_at"], Value::Null);
    let longer = app
        .post(
            &action_path(&pool, "a", "claim"),
            json!({"holder": "alice", "lease_ms": 60_000}),
        )
        .await
        .expect(200);
    assert!(longer["lease_expires_at"].as_str() > first["lease_expires_at"].as_str());
}

#[tokio::test]
async fn claim_item_held_by_another_holder_is_already_leased() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    claim_item(&app, &pool, "a", "alice").await;
    let problem = app
        .post(
            &action_path(&pool, "a", "claim"),
            json!({ "holder": "bob" }),
        )
        .await
        .expect_problem(409, "already_leased");
    assert_eq!(problem["current"]["holder"], "alice");
    assert_eq!(problem["current"]["state"], "leased");
}

#[tokio::test]
async fn claim_item_that_is_done_is_invalid_state() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    let lease = claim_item(&app, &pool, "a", "alice").await;
    complete(&app, &pool, &lease).await;
    let problem = app
        .post(
            &action_path(&pool, "a", "claim"),
            json!({ "holder": "alice" }),
        )
        .await
        .expect_problem(409, "invalid_state");
    assert_eq!(problem["current"]["state"], "done");
}

#[tokio::test]
async fn claim_missing_item_is_not_found() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    app.post(
        &action_path(&pool, "nope", "claim"),
        json!({ "holder": "alice" }),
    )
    .await
    .expect_problem(404, "not_found");
}

// ---------------------------------------------------------------------------------------
// Renew

#[tokio::test]
async fn renew_keeps_token_and_extends_expiry() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    let lease = claim_item_for(&app, &pool, "a", "alice", 10_000).await;
    let renewed = app
        .post(
            &action_path(&pool, "a", "renew"),
            json!({ "holder": "alice", "token": lease["token"], "lease_ms": 60_000 }),
        )
        .await
        .expect(200);
    assert_eq!(token(&renewed), token(&lease));
    assert!(
        expiry_ms(&renewed) > expiry_ms(&lease),
        "renewed {} vs first {}",
        renewed["lease_expires_at"],
        lease["lease_expires_at"]
    );
    assert_eq!(
        renewed["version"].as_u64(),
        lease["version"].as_u64().map(|v| v + 1)
    );
}

#[tokio::test]
async fn renew_with_wrong_token_is_lease_lost() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    let lease = claim_item(&app, &pool, "a", "alice").await;
    let problem = app
        .post(
            &action_path(&pool, "a", "renew"),
            json!({ "holder": "alice", "token": token(&lease) + 1000 }),
        )
        .await
        .expect_problem(409, "lease_lost");
    assert_eq!(problem["current"]["holder"], "alice");
}

#[tokio::test]
async fn renew_by_another_holder_is_lease_lost() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    let lease = claim_item(&app, &pool, "a", "alice").await;
    app.post(
        &action_path(&pool, "a", "renew"),
        json!({ "holder": "bob", "token": lease["token"] }),
    )
    .await
    .expect_problem(409, "lease_lost");
    assert_eq!(app.item(&pool, "a").await["holder"], "alice");
}

// ---------------------------------------------------------------------------------------
// Release

#[tokio::test]
async fn released_item_is_available_and_claimable_again() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    let lease = app.claim(&pool, "alice").await.expect("a lease");
    let item = release(&app, &pool, &lease, json!({})).await;
    assert_eq!(item["state"], "available");
    assert_eq!(item["holder"], Value::Null);
    assert_eq!(item["lease_expires_at"], Value::Null);
    let again = app.claim(&pool, "bob").await.expect("the item again");
    assert_eq!(again["id"], "a");
    assert_eq!(again["holder"], "bob");
}

#[tokio::test]
async fn release_with_delay_makes_item_delayed_then_available() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    let lease = app.claim(&pool, "alice").await.expect("a lease");
    let item = release(&app, &pool, &lease, json!({ "delay_ms": 300 })).await;
    assert_eq!(item["state"], "delayed");
    assert_eq!(item["holder"], Value::Null);
    eventually(WAIT, "the delay to end", async || {
        app.item(&pool, "a").await["state"] == "available"
    })
    .await;
    let again = app
        .claim(&pool, "bob")
        .await
        .expect("the item after its delay");
    assert_eq!(again["id"], "a");
}

#[tokio::test]
async fn release_with_priority_changes_claim_order() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.post(
        &format!("/v1/pools/{pool}/items"),
        json!({"items": [{"id": "a", "priority": 0}, {"id": "b", "priority": 1}]}),
    )
    .await
    .expect(200);
    let lease = claim_item(&app, &pool, "a", "alice").await;
    let item = release(&app, &pool, &lease, json!({ "priority": 5 })).await;
    assert_eq!(item["priority"], 5);
    let next = app.claim(&pool, "bob").await.expect("a lease");
    assert_eq!(next["id"], "a", "priority 5 now comes before b's 1");
}

// ---------------------------------------------------------------------------------------
// Complete

#[tokio::test]
async fn complete_marks_item_done_and_replaces_data() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.post(
        &format!("/v1/pools/{pool}/items"),
        json!({"items": [{"id": "a", "data": {"input": 1}}]}),
    )
    .await
    .expect(200);
    let lease = claim_item(&app, &pool, "a", "alice").await;
    let item = app
        .post(
            &action_path(&pool, "a", "complete"),
            json!({ "holder": "alice", "token": lease["token"], "data": {"result": 42} }),
        )
        .await
        .expect(200);
    assert_eq!(item["state"], "done");
    assert_eq!(item["data"], json!({"result": 42}));
    let stored = app.item(&pool, "a").await;
    assert_eq!(stored["state"], "done");
    assert_eq!(stored["holder"], Value::Null);
    assert_eq!(stored["data"], json!({"result": 42}));
}

#[tokio::test]
async fn second_complete_is_lease_lost_with_current_state_done() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    let lease = claim_item(&app, &pool, "a", "alice").await;
    complete(&app, &pool, &lease).await;
    let problem = app
        .post(
            &action_path(&pool, "a", "complete"),
            json!({ "holder": "alice", "token": lease["token"] }),
        )
        .await
        .expect_problem(409, "lease_lost");
    assert_eq!(problem["current"]["state"], "done");
}

// ---------------------------------------------------------------------------------------
// Expiry (by Redis's clock)

#[tokio::test]
async fn expired_lease_cannot_be_renewed() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    let lease = claim_item_for(&app, &pool, "a", "alice", SHORT_LEASE_MS).await;
    wait_until_expired(&lease).await;
    let problem = app
        .post(
            &action_path(&pool, "a", "renew"),
            json!({ "holder": "alice", "token": lease["token"] }),
        )
        .await
        .expect_problem(409, "lease_lost");
    assert_eq!(problem["current"]["state"], "available");
}

#[tokio::test]
async fn expired_lease_cannot_be_released() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    let lease = claim_item_for(&app, &pool, "a", "alice", SHORT_LEASE_MS).await;
    wait_until_expired(&lease).await;
    let problem = app
        .post(
            &action_path(&pool, "a", "release"),
            json!({ "holder": "alice", "token": lease["token"] }),
        )
        .await
        .expect_problem(409, "lease_lost");
    assert_eq!(problem["current"]["state"], "available");
}

#[tokio::test]
async fn expired_lease_cannot_be_completed() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    let lease = claim_item_for(&app, &pool, "a", "alice", SHORT_LEASE_MS).await;
    wait_until_expired(&lease).await;
    let problem = app
        .post(
            &action_path(&pool, "a", "complete"),
            json!({ "holder": "alice", "token": lease["token"], "data": {"late": true} }),
        )
        .await
        .expect_problem(409, "lease_lost");
    assert_eq!(problem["current"]["state"], "available");
    let item = app.item(&pool, "a").await;
    assert_eq!(item["data"], json!({}), "a refused complete writes nothing");
}

#[tokio::test]
async fn expired_lease_returns_item_to_available_keeping_attempts() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    let lease = claim_item_for(&app, &pool, "a", "alice", SHORT_LEASE_MS).await;
    let mut item = Value::Null;
    eventually(WAIT, "the lease to expire", async || {
        item = app.item(&pool, "a").await;
        item["state"] == "available"
    })
    .await;
    assert_eq!(item["holder"], Value::Null);
    assert_eq!(item["lease_expires_at"], Value::Null);
    assert_eq!(item["attempts"], 1);
    assert_eq!(
        item["version"].as_u64(),
        lease["version"].as_u64().map(|v| v + 1),
        "expiry is a change: {item:#?}"
    );
}

#[tokio::test]
async fn grant_after_expiry_has_higher_token() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    let lease = claim_item_for(&app, &pool, "a", "alice", SHORT_LEASE_MS).await;
    wait_until_expired(&lease).await;
    let next = app.claim(&pool, "bob").await.expect("the expired item");
    assert_eq!(next["id"], "a");
    assert!(token(&next) > token(&lease), "{next:#?} vs {lease:#?}");
}

#[tokio::test]
async fn fencing_tokens_strictly_increase_across_grants_in_a_pool() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a", "b"]).await;
    let mut tokens = Vec::new();
    let first = app.claim(&pool, "alice").await.expect("a");
    tokens.push(token(&first));
    tokens.push(token(&claim_item(&app, &pool, "b", "bob").await));
    release(&app, &pool, &first, json!({})).await;
    tokens.push(token(&app.claim(&pool, "carol").await.expect("a again")));
    let assigned = assign(&app, &pool, "b", json!({ "holder": "dave" }))
        .await
        .expect(200);
    tokens.push(token(&assigned));
    assert!(
        tokens.windows(2).all(|w| w[0] < w[1]),
        "tokens not strictly increasing: {tokens:?}"
    );
}

// ---------------------------------------------------------------------------------------
// max_attempts

#[tokio::test]
async fn item_dies_after_max_attempts_grants_end_without_completion() {
    let app = spawn_app().await;
    let pool = pool_name();
    put_pool(&app, &pool, json!({ "max_attempts": 2 })).await;
    app.add_items(&pool, &["a"]).await;
    let first = claim_item(&app, &pool, "a", "alice").await;
    let item = release(&app, &pool, &first, json!({})).await;
    assert_eq!(item["state"], "available", "one attempt of two used");
    claim_item_for(&app, &pool, "a", "alice", SHORT_LEASE_MS).await;
    let mut item = Value::Null;
    eventually(WAIT, "the second lease to expire", async || {
        item = app.item(&pool, "a").await;
        item["state"] != "leased"
    })
    .await;
    assert_eq!(item["state"], "dead");
    assert_eq!(item["attempts"], 2);
    assert_eq!(app.claim(&pool, "bob").await, None);
}

#[tokio::test]
async fn requeue_brings_dead_item_back_with_attempts_reset() {
    let app = spawn_app().await;
    let pool = pool_name();
    put_pool(&app, &pool, json!({ "max_attempts": 2 })).await;
    app.add_items(&pool, &["a"]).await;
    for _ in 0..2 {
        let lease = claim_item(&app, &pool, "a", "alice").await;
        release(&app, &pool, &lease, json!({})).await;
    }
    assert_eq!(app.item(&pool, "a").await["state"], "dead");
    let item = app
        .post(&action_path(&pool, "a", "requeue"), json!({}))
        .await
        .expect(200);
    assert_eq!(item["state"], "available");
    assert_eq!(item["attempts"], 0);
    let lease = app.claim(&pool, "bob").await.expect("the requeued item");
    assert_eq!(lease["id"], "a");
}

// ---------------------------------------------------------------------------------------
// max_leases_per_holder

#[tokio::test]
async fn holder_at_capacity_is_refused_with_limit() {
    let app = spawn_app().await;
    let pool = pool_name();
    put_pool(&app, &pool, json!({ "max_leases_per_holder": 1 })).await;
    app.add_items(&pool, &["a", "b"]).await;
    assert!(app.claim(&pool, "alice").await.is_some());
    let problem = app
        .post(
            &format!("/v1/pools/{pool}/claim"),
            json!({ "holder": "alice" }),
        )
        .await
        .expect_problem(409, "holder_at_capacity");
    assert_eq!(problem["limit"], 1);
    let problem = app
        .post(
            &action_path(&pool, "b", "claim"),
            json!({ "holder": "alice" }),
        )
        .await
        .expect_problem(409, "holder_at_capacity");
    assert_eq!(problem["limit"], 1);
    assert_eq!(app.item(&pool, "b").await["state"], "available");
}

#[tokio::test]
async fn batch_claim_is_cut_to_room_left_under_holder_limit() {
    let app = spawn_app().await;
    let pool = pool_name();
    put_pool(&app, &pool, json!({ "max_leases_per_holder": 3 })).await;
    app.add_items(&pool, &["a", "b", "c", "d", "e"]).await;
    assert!(app.claim(&pool, "alice").await.is_some());
    let leases = claim_many(&app, &pool, "alice", 5).await;
    assert_eq!(ids(&leases), ["b", "c"]);
    assert_eq!(leases_of(&app, &pool, "alice").await.len(), 3);
}

#[tokio::test]
async fn completing_a_lease_frees_room_under_holder_limit() {
    let app = spawn_app().await;
    let pool = pool_name();
    put_pool(&app, &pool, json!({ "max_leases_per_holder": 1 })).await;
    app.add_items(&pool, &["a", "b"]).await;
    let lease = app.claim(&pool, "alice").await.expect("a");
    app.post(
        &format!("/v1/pools/{pool}/claim"),
        json!({ "holder": "alice" }),
    )
    .await
    .expect_problem(409, "holder_at_capacity");
    complete(&app, &pool, &lease).await;
    let next = app.claim(&pool, "alice").await.expect("room for b");
    assert_eq!(next["id"], "b");
}

#[tokio::test]
async fn expired_leases_do_not_count_against_holder_limit() {
    let app = spawn_app().await;
    let pool = pool_name();
    put_pool(&app, &pool, json!({ "max_leases_per_holder": 1 })).await;
    app.add_items(&pool, &["a", "b"]).await;
    let short = claim_item_for(&app, &pool, "a", "alice", SHORT_LEASE_MS).await;
    wait_until_expired(&short).await;
    let lease = claim_item(&app, &pool, "b", "alice").await;
    assert_eq!(lease["holder"], "alice");
}

// ---------------------------------------------------------------------------------------
// Assign (PUT .../holder)

#[tokio::test]
async fn assign_grants_lease_with_token_to_named_holder() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    let item = assign(&app, &pool, "a", json!({ "holder": "bob" }))
        .await
        .expect(200);
    assert_eq!(item["state"], "leased");
    assert_eq!(item["holder"], "bob");
    let held = leases_of(&app, &pool, "bob").await;
    assert_eq!(ids(&held), ["a"]);
    assert_eq!(token(&held[0]), token(&item));
}

#[tokio::test]
async fn reassign_ends_first_holders_lease_and_grants_higher_token() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    let first = claim_item(&app, &pool, "a", "alice").await;
    let item = assign(&app, &pool, "a", json!({ "holder": "bob" }))
        .await
        .expect(200);
    assert_eq!(item["holder"], "bob");
    assert!(token(&item) > token(&first), "{item:#?} vs {first:#?}");
    let problem = app
        .post(
            &action_path(&pool, "a", "renew"),
            json!({ "holder": "alice", "token": first["token"] }),
        )
        .await
        .expect_problem(409, "lease_lost");
    assert_eq!(problem["current"]["holder"], "bob");
}

#[tokio::test]
async fn assign_null_unassigns_to_available() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    claim_item(&app, &pool, "a", "alice").await;
    let item = assign(&app, &pool, "a", json!({ "holder": null }))
        .await
        .expect(200);
    assert_eq!(item["state"], "available");
    assert_eq!(item["holder"], Value::Null);
    assert_eq!(item.get("token"), None);
    assert!(leases_of(&app, &pool, "alice").await.is_empty());
}

#[tokio::test]
async fn assign_with_stale_expected_version_is_version_conflict() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    let problem = assign(
        &app,
        &pool,
        "a",
        json!({ "holder": "bob", "expected_version": 5 }),
    )
    .await
    .expect_problem(409, "version_conflict");
    assert_eq!(problem["current"]["version"], 1);
    assert_eq!(app.item(&pool, "a").await["state"], "available");
}

#[tokio::test]
async fn assign_with_stale_if_match_is_precondition_failed() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    let request = app
        .request(Method::PUT, &action_path(&pool, "a", "holder"))
        .header("If-Match", "\"5\"")
        .json(&json!({ "holder": "bob" }));
    let problem = app
        .send(request)
        .await
        .expect_problem(412, "precondition_failed");
    assert_eq!(problem["current"]["version"], 1);
    assert_eq!(app.item(&pool, "a").await["state"], "available");
}

#[tokio::test]
async fn assign_done_item_is_invalid_state() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    let lease = claim_item(&app, &pool, "a", "alice").await;
    complete(&app, &pool, &lease).await;
    let problem = assign(&app, &pool, "a", json!({ "holder": "bob" }))
        .await
        .expect_problem(409, "invalid_state");
    assert_eq!(problem["current"]["state"], "done");
}

#[tokio::test]
async fn assign_without_holder_field_is_invalid_request() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    let problem = assign(&app, &pool, "a", json!({ "lease_ms": 1000 }))
        .await
        .expect_problem(400, "invalid_request");
    assert_eq!(problem["field"], "holder");
}

// ---------------------------------------------------------------------------------------
// Requeue

#[tokio::test]
async fn requeue_leased_item_is_already_leased() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    claim_item(&app, &pool, "a", "alice").await;
    let problem = app
        .post(&action_path(&pool, "a", "requeue"), json!({}))
        .await
        .expect_problem(409, "already_leased");
    assert_eq!(problem["current"]["holder"], "alice");
}

#[tokio::test]
async fn requeue_done_item_makes_it_available_again() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    let lease = claim_item(&app, &pool, "a", "alice").await;
    complete(&app, &pool, &lease).await;
    let item = app
        .post(&action_path(&pool, "a", "requeue"), json!({}))
        .await
        .expect(200);
    assert_eq!(item["state"], "available");
    assert_eq!(item["attempts"], 0);
    let again = app.claim(&pool, "bob").await.expect("the requeued item");
    assert_eq!(again["id"], "a");
}

// ---------------------------------------------------------------------------------------
// GET /leases?holder=

#[tokio::test]
async fn leases_by_holder_lists_only_that_holders_leases_with_tokens() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a", "b", "c"]).await;
    let a = claim_item(&app, &pool, "a", "alice").await;
    claim_item(&app, &pool, "b", "bob").await;
    let c = claim_item(&app, &pool, "c", "alice").await;
    let mut held = leases_of(&app, &pool, "alice").await;
    held.sort_by_key(|l| l["id"].as_str().map(str::to_owned));
    assert_eq!(ids(&held), ["a", "c"]);
    assert_eq!(token(&held[0]), token(&a));
    assert_eq!(token(&held[1]), token(&c));
    assert!(held.iter().all(|l| l["holder"] == "alice"));
}

#[tokio::test]
async fn expired_lease_drops_out_of_holders_leases() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a", "b"]).await;
    let short = claim_item_for(&app, &pool, "a", "alice", SHORT_LEASE_MS).await;
    claim_item(&app, &pool, "b", "alice").await;
    wait_until_expired(&short).await;
    assert_eq!(ids(&leases_of(&app, &pool, "alice").await), ["b"]);
}

#[tokio::test]
async fn leases_without_holder_is_invalid_request() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    let problem = app
        .get(&format!("/v1/pools/{pool}/leases"))
        .await
        .expect_problem(400, "invalid_request");
    assert_eq!(problem["field"], "holder");
}

// ---------------------------------------------------------------------------------------
// Pool stats

#[tokio::test]
async fn pool_stats_count_claims_conflicts_and_expired_leases() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a", "b"]).await;
    claim_item(&app, &pool, "a", "alice").await;
    app.post(
        &action_path(&pool, "a", "claim"),
        json!({ "holder": "bob" }),
    )
    .await
    .expect_problem(409, "already_leased");
    let short = claim_item_for(&app, &pool, "b", "bob", SHORT_LEASE_MS).await;
    wait_until_expired(&short).await;
    let view = app.get(&format!("/v1/pools/{pool}")).await.expect(200);
    assert_eq!(
        view["stats"],
        json!({ "claims": 2, "conflicts": 1, "expired": 1 })
    );
}

#[tokio::test]
async fn pool_stats_count_precondition_failures_as_conflicts() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    let request = app
        .request(Method::PUT, &action_path(&pool, "a", "holder"))
        .header("If-Match", "\"9\"")
        .json(&json!({ "holder": "bob" }));
    app.send(request)
        .await
        .expect_problem(412, "precondition_failed");
    let view = app.get(&format!("/v1/pools/{pool}")).await.expect(200);
    assert_eq!(view["stats"]["conflicts"], 1);
    assert_eq!(view["stats"]["claims"], 0);
}

#[tokio::test]
async fn a_pool_deleted_and_created_again_never_hands_out_a_lower_token() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a", "b", "c"]).await;
    let mut highest = 0;
    while let Some(lease) = app.claim(&pool, "alice").await {
        highest = highest.max(lease["token"].as_u64().expect("token"));
    }
    assert_eq!(highest, 3);
    app.delete(&format!("/v1/pools/{pool}")).await.expect(204);

    app.add_items(&pool, &["a"]).await;
    let lease = app.claim(&pool, "bob").await.expect("a lease");
    assert!(
        lease["token"].as_u64().expect("token") > highest,
        "token {} after the pool was created again, {highest} before",
        lease["token"]
    );
}

#[tokio::test]
async fn a_holders_leases_come_in_pages_that_cover_each_lease_once() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a", "b", "c", "d", "e"]).await;
    claim_many(&app, &pool, "alice", 5).await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..5 {
        let mut path = format!("/v1/pools/{pool}/leases?holder=alice&limit=2");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = app.get(&path).await.expect(200);
        let leases = page["leases"].as_array().expect("leases").clone();
        assert!(leases.len() <= 2, "{page:#?}");
        seen.extend(ids(&leases));
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    seen.sort();
    assert_eq!(seen, ["a", "b", "c", "d", "e"]);
}

#[tokio::test]
async fn a_token_larger_than_any_issued_is_invalid_not_a_server_error() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    claim_item(&app, &pool, "a", "alice").await;
    for action in ["renew", "release", "complete"] {
        app.post(
            &action_path(&pool, "a", action),
            json!({"holder": "alice", "token": u64::MAX}),
        )
        .await
        .expect_problem(400, "invalid_request");
    }
    let reply = app
        .put(
            &format!("/v1/pools/{pool}/items/a/holder"),
            json!({"holder": "bob", "expected_version": 9_007_199_254_740_993_u64}),
        )
        .await;
    assert_eq!(
        reply.expect_problem(400, "invalid_request")["field"],
        "expected_version"
    );
}

// ---- pause and resume ----

#[tokio::test]
async fn a_paused_pool_grants_nothing_until_resumed_while_its_leases_go_on() {
    let app = spawn_app().await;
    let pool = pool_name();
    let pool_path = format!("/v1/pools/{pool}");
    app.add_items(&pool, &["a", "b", "c"]).await;
    let held = app.claim(&pool, "w").await.expect("a lease");
    let paused = app
        .put(&pool_path, json!({"paused": true}))
        .await
        .expect(200);
    assert_eq!(paused["config"]["paused"], true);

    let answer = app
        .post(&format!("{pool_path}/claim"), json!({"holder": "w2"}))
        .await
        .expect(200);
    assert_eq!(answer, json!({"leases": [], "paused": true}));
    app.post(&action_path(&pool, "c", "claim"), json!({"holder": "w2"}))
        .await
        .expect_problem(409, "pool_paused");
    // The lease held goes on: renewed, then completed; adds go on.
    let id = held["id"].as_str().expect("id");
    app.post(
        &action_path(&pool, id, "renew"),
        json!({"holder": "w", "token": held["token"]}),
    )
    .await
    .expect(200);
    complete(&app, &pool, &held).await;
    app.add_items(&pool, &["d"]).await;

    // A waiting claim waits through the pause and is granted at the resume.
    let claim_path = format!("{pool_path}/claim");
    let waiter = app.post(&claim_path, json!({"holder": "w3", "wait_ms": 20_000}));
    let resume = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let resumed = app
            .put(&pool_path, json!({"paused": false}))
            .await
            .expect(200);
        assert_eq!(resumed["config"]["paused"], false);
    };
    let (granted, ()) = tokio::join!(waiter, resume);
    let granted = granted.expect(200);
    assert_eq!(
        granted["leases"].as_array().map(Vec::len),
        Some(1),
        "{granted}"
    );
    assert!(granted.get("paused").is_none(), "{granted}");

    let events = app
        .get(&format!("{pool_path}/events?limit=1000"))
        .await
        .expect(200)["events"]
        .clone();
    let pool_events: Vec<Value> = events
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["item"].is_null())
        .cloned()
        .collect();
    let kinds: Vec<&str> = pool_events
        .iter()
        .map(|e| e["type"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(kinds, ["paused", "resumed"]);
    assert!(
        pool_events
            .iter()
            .all(|e| e["state"].is_null() && e["version"].is_null())
    );
    // Pausing twice is one pause.
    app.put(&pool_path, json!({"paused": true}))
        .await
        .expect(200);
    app.put(&pool_path, json!({"paused": true}))
        .await
        .expect(200);
    let paused_events = app
        .get(&format!("{pool_path}/events?limit=1000"))
        .await
        .expect(200)["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["type"] == "paused")
        .count();
    assert_eq!(paused_events, 2);
}
