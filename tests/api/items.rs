//! Items: bulk add, read with ETag, PUT / PATCH / DELETE under every precondition
//! (If-Match, If-None-Match, expected_version, Lease-Token, require_if_match), the
//! lost-update scenario, and listing by state, by holder and page by page.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::helpers::*;
use reqwest::Method;
use serde_json::{Value, json};

fn item_path(pool: &str, id: &str) -> String {
    format!("/v1/pools/{pool}/items/{id}")
}

/// Creates (or replaces) an item with `data` and returns its body.
async fn put_data(app: &TestApp, pool: &str, id: &str, data: Value) -> Value {
    let reply = app.put(&item_path(pool, id), json!({ "data": data })).await;
    assert!(
        reply.status.as_u16() == 200 || reply.status.as_u16() == 201,
        "unexpected answer: {:#?}",
        reply.body
    );
    reply.body
}

/// A PUT of `data` with one extra header.
async fn put_with(app: &TestApp, pool: &str, id: &str, header: &str, value: &str) -> Reply {
    app.send(
        app.request(Method::PUT, &item_path(pool, id))
            .header(header, value)
            .json(&json!({"data": {"by": header}})),
    )
    .await
}

fn version(body: &Value) -> u64 {
    body["version"].as_u64().expect("version")
}

fn token(lease: &Value) -> u64 {
    lease["token"].as_u64().expect("token")
}

/// Polls the item until `condition` holds on its body, failing after five seconds.
async fn item_eventually(
    app: &TestApp,
    pool: &str,
    id: &str,
    what: &str,
    condition: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let item = app.item(pool, id).await;
        if condition(&item) {
            return item;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn ids(items: &Value) -> Vec<String> {
    items
        .as_array()
        .expect("an array of items")
        .iter()
        .map(|item| item["id"].as_str().expect("id").to_owned())
        .collect()
}

// ---- bulk add ----

#[tokio::test]
async fn bulk_add_reports_created_and_existing_ids() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a", "b"]).await;
    let body = app
        .post(
            &format!("/v1/pools/{pool}/items"),
            json!({"items": [{"id": "b"}, {"id": "c"}, {"id": "a"}]}),
        )
        .await
        .expect(200);
    assert_eq!(body["created"], json!(["c"]));
    let existing: BTreeSet<&str> = body["existing"]
        .as_array()
        .expect("existing")
        .iter()
        .map(|v| v.as_str().expect("id"))
        .collect();
    assert_eq!(existing, BTreeSet::from(["a", "b"]));
}

#[tokio::test]
async fn bulk_add_leaves_existing_items_untouched() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.post(
        &format!("/v1/pools/{pool}/items"),
        json!({"items": [{"id": "a", "priority": 3, "data": {"original": true}}]}),
    )
    .await
    .expect(200);
    let before = app.item(&pool, "a").await;
    app.post(
        &format!("/v1/pools/{pool}/items"),
        json!({"items": [{"id": "a", "priority": 9, "data": {"original": false}}]}),
    )
    .await
    .expect(200);
    let after = app.item(&pool, "a").await;
    assert_eq!(after["data"], json!({"original": true}));
    assert_eq!(after["priority"], 3);
    assert_eq!(after["version"], before["version"]);
}

#[tokio::test]
async fn bulk_add_rejects_the_same_id_twice_in_one_request() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.post(
        &format!("/v1/pools/{pool}/items"),
        json!({"items": [{"id": "a"}, {"id": "b"}, {"id": "a"}]}),
    )
    .await
    .expect_problem(400, "invalid_request");
    app.get(&item_path(&pool, "b"))
        .await
        .expect_problem(404, "not_found");
}

#[tokio::test]
async fn bulk_add_rejects_more_than_1000_items() {
    let app = spawn_app().await;
    let pool = pool_name();
    let items: Vec<Value> = (0..1001).map(|n| json!({"id": format!("i{n}")})).collect();
    app.post(
        &format!("/v1/pools/{pool}/items"),
        json!({ "items": items }),
    )
    .await
    .expect_problem(400, "invalid_request");
    app.get(&item_path(&pool, "i0"))
        .await
        .expect_problem(404, "not_found");
}

#[tokio::test]
async fn bulk_add_accepts_exactly_1000_items() {
    let app = spawn_app().await;
    let pool = pool_name();
    let items: Vec<Value> = (0..1000).map(|n| json!({"id": format!("i{n}")})).collect();
    let body = app
        .post(
            &format!("/v1/pools/{pool}/items"),
            json!({ "items": items }),
        )
        .await
        .expect(200);
    assert_eq!(body["created"].as_array().expect("created").len(), 1000);
}

// ---- GET ----

#[tokio::test]
async fn new_item_has_every_field_version_1_and_etag_1() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.post(
        &format!("/v1/pools/{pool}/items"),
        json!({"items": [{"id": "case-1", "priority": 7, "data": {"name": "Jane"}}]}),
    )
    .await
    .expect(200);
    let reply = app.get(&item_path(&pool, "case-1")).await;
    assert_eq!(reply.header("etag"), Some("\"1\""));
    let item = reply.expect(200);
    assert_eq!(item["id"], "case-1");
    assert_eq!(item["pool"], pool.as_str());
    assert_eq!(item["state"], "available");
    assert_eq!(item["priority"], 7);
    assert_eq!(item["version"], 1);
    assert_eq!(item["holder"], Value::Null);
    assert_eq!(item["lease_expires_at"], Value::Null);
    assert_eq!(item["attempts"], 0);
    assert_eq!(item["data"], json!({"name": "Jane"}));
    for field in ["created_at", "updated_at"] {
        let time = item[field].as_str().expect(field);
        assert!(time.ends_with('Z') && time.contains('T'), "{field}: {time}");
    }
}

#[tokio::test]
async fn get_with_current_etag_in_if_none_match_is_not_modified() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    let reply = app
        .send(
            app.request(Method::GET, &item_path(&pool, "a"))
                .header("If-None-Match", "\"1\""),
        )
        .await;
    assert_eq!(reply.status.as_u16(), 304);
    assert_eq!(reply.body, Value::Null);
}

#[tokio::test]
async fn get_with_stale_etag_in_if_none_match_returns_the_item() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    put_data(&app, &pool, "a", json!({"n": 2})).await;
    let reply = app
        .send(
            app.request(Method::GET, &item_path(&pool, "a"))
                .header("If-None-Match", "\"1\""),
        )
        .await;
    assert_eq!(reply.header("etag"), Some("\"2\""));
    assert_eq!(reply.expect(200)["data"], json!({"n": 2}));
}

#[tokio::test]
async fn version_grows_by_one_on_every_change() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    assert_eq!(version(&app.item(&pool, "a").await), 1);

    put_data(&app, &pool, "a", json!({"step": "put"})).await;
    assert_eq!(version(&app.item(&pool, "a").await), 2);

    app.patch(&item_path(&pool, "a"), json!({"step": "patch"}))
        .await
        .expect(200);
    assert_eq!(version(&app.item(&pool, "a").await), 3);

    let lease = app.claim(&pool, "alice").await.expect("a lease");
    assert_eq!(version(&lease), 4);
    assert_eq!(version(&app.item(&pool, "a").await), 4);

    app.post(
        &format!("{}/renew", item_path(&pool, "a")),
        json!({"holder": "alice", "token": token(&lease)}),
    )
    .await
    .expect(200);
    assert_eq!(version(&app.item(&pool, "a").await), 5);

    app.post(
        &format!("{}/release", item_path(&pool, "a")),
        json!({"holder": "alice", "token": token(&lease)}),
    )
    .await
    .expect(200);
    assert_eq!(version(&app.item(&pool, "a").await), 6);

    let lease = app.claim(&pool, "bob").await.expect("a lease");
    assert_eq!(version(&lease), 7);
    app.post(
        &format!("{}/complete", item_path(&pool, "a")),
        json!({"holder": "bob", "token": token(&lease)}),
    )
    .await
    .expect(200);
    assert_eq!(version(&app.item(&pool, "a").await), 8);

    app.post(&format!("{}/requeue", item_path(&pool, "a")), json!({}))
        .await
        .expect(200);
    assert_eq!(version(&app.item(&pool, "a").await), 9);
}

// ---- PUT ----

#[tokio::test]
async fn put_creates_with_201_then_replaces_with_200_and_a_new_etag() {
    let app = spawn_app().await;
    let pool = pool_name();
    let path = item_path(&pool, "a");
    let created = app.put(&path, json!({"data": {"n": 1}})).await;
    assert_eq!(created.header("etag"), Some("\"1\""));
    let created = created.expect(201);
    assert_eq!(created["version"], 1);
    assert_eq!(created["data"], json!({"n": 1}));

    let replaced = app.put(&path, json!({"data": {"m": 2}})).await;
    assert_eq!(replaced.header("etag"), Some("\"2\""));
    let replaced = replaced.expect(200);
    assert_eq!(replaced["version"], 2);
    assert_eq!(
        replaced["data"],
        json!({"m": 2}),
        "PUT replaces, not merges"
    );
    assert_eq!(app.item(&pool, "a").await["data"], json!({"m": 2}));
}

#[tokio::test]
async fn put_with_current_if_match_replaces_the_item() {
    let app = spawn_app().await;
    let pool = pool_name();
    put_data(&app, &pool, "a", json!({"n": 1})).await;
    let reply = put_with(&app, &pool, "a", "If-Match", "\"1\"").await;
    assert_eq!(reply.header("etag"), Some("\"2\""));
    assert_eq!(reply.expect(200)["data"], json!({"by": "If-Match"}));
}

#[tokio::test]
async fn put_with_stale_if_match_is_412_with_the_current_version() {
    let app = spawn_app().await;
    let pool = pool_name();
    put_data(&app, &pool, "a", json!({"n": 1})).await;
    put_data(&app, &pool, "a", json!({"n": 2})).await;
    let body = put_with(&app, &pool, "a", "If-Match", "\"1\"")
        .await
        .expect_problem(412, "precondition_failed");
    assert_eq!(body["current"]["version"], 2);
    assert_eq!(body["current"]["state"], "available");
    assert_eq!(app.item(&pool, "a").await["data"], json!({"n": 2}));
}

#[tokio::test]
async fn put_with_if_match_on_a_missing_item_is_412_and_creates_nothing() {
    let app = spawn_app().await;
    let pool = pool_name();
    let body = put_with(&app, &pool, "ghost", "If-Match", "\"1\"")
        .await
        .expect_problem(412, "precondition_failed");
    assert_eq!(body["current"]["version"], 0);
    app.get(&item_path(&pool, "ghost"))
        .await
        .expect_problem(404, "not_found");
}

#[tokio::test]
async fn put_with_if_none_match_star_creates_once_then_is_412() {
    let app = spawn_app().await;
    let pool = pool_name();
    put_with(&app, &pool, "a", "If-None-Match", "*")
        .await
        .expect(201);
    let body = put_with(&app, &pool, "a", "If-None-Match", "*")
        .await
        .expect_problem(412, "precondition_failed");
    assert_eq!(body["current"]["version"], 1);
    assert_eq!(version(&app.item(&pool, "a").await), 1);
}

#[tokio::test]
async fn put_with_wrong_expected_version_is_409_version_conflict_with_current() {
    let app = spawn_app().await;
    let pool = pool_name();
    put_data(&app, &pool, "a", json!({"n": 1})).await;
    app.claim(&pool, "jane").await.expect("a lease");
    let body = app
        .put(
            &item_path(&pool, "a"),
            json!({"data": {"n": 2}, "expected_version": 1}),
        )
        .await
        .expect_problem(409, "version_conflict");
    assert_eq!(body["current"]["version"], 2);
    assert_eq!(body["current"]["state"], "leased");
    assert_eq!(body["current"]["holder"], "jane");
    assert_eq!(app.item(&pool, "a").await["data"], json!({"n": 1}));
}

#[tokio::test]
async fn put_with_matching_expected_version_replaces_the_item() {
    let app = spawn_app().await;
    let pool = pool_name();
    put_data(&app, &pool, "a", json!({"n": 1})).await;
    let body = app
        .put(
            &item_path(&pool, "a"),
            json!({"data": {"n": 2}, "expected_version": 1}),
        )
        .await
        .expect(200);
    assert_eq!(body["version"], 2);
    assert_eq!(body["data"], json!({"n": 2}));
}

#[tokio::test]
async fn put_with_expected_version_0_creates_a_missing_item() {
    let app = spawn_app().await;
    let pool = pool_name();
    let body = app
        .put(
            &item_path(&pool, "a"),
            json!({"data": {"n": 1}, "expected_version": 0}),
        )
        .await
        .expect(201);
    assert_eq!(body["version"], 1);
    let again = app
        .put(
            &item_path(&pool, "a"),
            json!({"data": {"n": 2}, "expected_version": 0}),
        )
        .await
        .expect_problem(409, "version_conflict");
    assert_eq!(again["current"]["version"], 1);
}

#[tokio::test]
async fn put_with_the_current_lease_token_succeeds() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    let lease = app.claim(&pool, "alice").await.expect("a lease");
    let reply = put_with(&app, &pool, "a", "Lease-Token", &token(&lease).to_string()).await;
    let body = reply.expect(200);
    assert_eq!(body["data"], json!({"by": "Lease-Token"}));
    assert_eq!(body["state"], "leased", "a write keeps the lease");
    assert_eq!(body["holder"], "alice");
}

#[tokio::test]
async fn put_with_the_token_of_a_released_lease_is_lease_lost() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    let lease = app.claim(&pool, "alice").await.expect("a lease");
    app.post(
        &format!("{}/release", item_path(&pool, "a")),
        json!({"holder": "alice", "token": token(&lease)}),
    )
    .await
    .expect(200);
    let body = put_with(&app, &pool, "a", "Lease-Token", &token(&lease).to_string())
        .await
        .expect_problem(409, "lease_lost");
    assert_eq!(body["current"]["state"], "available");
    assert_eq!(app.item(&pool, "a").await["data"], json!({}));
}

#[tokio::test]
async fn put_with_the_token_of_an_older_lease_is_lease_lost() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    let old = app.claim(&pool, "alice").await.expect("a lease");
    app.post(
        &format!("{}/release", item_path(&pool, "a")),
        json!({"holder": "alice", "token": token(&old)}),
    )
    .await
    .expect(200);
    let new = app.claim(&pool, "alice").await.expect("a new lease");
    assert!(token(&new) > token(&old));
    let body = put_with(&app, &pool, "a", "Lease-Token", &token(&old).to_string())
        .await
        .expect_problem(409, "lease_lost");
    assert_eq!(body["current"]["holder"], "alice");
    assert_eq!(body["current"]["state"], "leased");
}

#[tokio::test]
async fn put_with_the_token_of_an_expired_lease_is_lease_lost() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    let lease = app
        .post(
            &format!("/v1/pools/{pool}/claim"),
            json!({"holder": "alice", "lease_ms": 150}),
        )
        .await
        .expect(200)["leases"][0]
        .clone();
    item_eventually(&app, &pool, "a", "the lease to expire", |item| {
        item["state"] == "available"
    })
    .await;
    put_with(&app, &pool, "a", "Lease-Token", &token(&lease).to_string())
        .await
        .expect_problem(409, "lease_lost");
    assert_eq!(app.item(&pool, "a").await["data"], json!({}));
}

#[tokio::test]
async fn require_if_match_pool_refuses_a_write_without_precondition_with_428() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.put(
        &format!("/v1/pools/{pool}"),
        json!({"require_if_match": true}),
    )
    .await
    .expect(201);
    app.put(&item_path(&pool, "a"), json!({"data": {"n": 1}}))
        .await
        .expect_problem(428, "precondition_required");
    app.get(&item_path(&pool, "a"))
        .await
        .expect_problem(404, "not_found");
}

#[tokio::test]
async fn require_if_match_pool_accepts_writes_with_a_precondition() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.put(
        &format!("/v1/pools/{pool}"),
        json!({"require_if_match": true}),
    )
    .await
    .expect(201);
    put_with(&app, &pool, "a", "If-None-Match", "*")
        .await
        .expect(201);
    put_with(&app, &pool, "a", "If-Match", "\"1\"")
        .await
        .expect(200);
    app.put(
        &item_path(&pool, "a"),
        json!({"data": {"n": 3}, "expected_version": 2}),
    )
    .await
    .expect(200);
    app.patch(&item_path(&pool, "a"), json!({"n": 4}))
        .await
        .expect_problem(428, "precondition_required");
    app.send(
        app.request(Method::PATCH, &item_path(&pool, "a"))
            .header("If-Match", "\"3\"")
            .json(&json!({"n": 4})),
    )
    .await
    .expect(200);
    assert_eq!(app.item(&pool, "a").await["data"], json!({"n": 4}));
}

#[tokio::test]
async fn of_two_writers_at_the_same_version_exactly_one_wins_and_the_other_gets_412() {
    let app = spawn_app().await;
    let pool = pool_name();
    put_data(&app, &pool, "event", json!({"assignee": "nobody"})).await;

    // Both read version 1 …
    let first = app.get(&item_path(&pool, "event")).await;
    let second = app.get(&item_path(&pool, "event")).await;
    let etag_a = first.header("etag").expect("etag").to_owned();
    let etag_b = second.header("etag").expect("etag").to_owned();
    assert_eq!(etag_a, "\"1\"");
    assert_eq!(etag_a, etag_b);

    // … and both write at once with If-Match.
    let write = |etag: String, assignee: &'static str| {
        app.send(
            app.request(Method::PUT, &item_path(&pool, "event"))
                .header("If-Match", etag)
                .json(&json!({"data": {"assignee": assignee}})),
        )
    };
    let (a, b) = tokio::join!(write(etag_a, "alice"), write(etag_b, "bob"));
    let statuses = [a.status.as_u16(), b.status.as_u16()];
    let (winner, loser, winner_name) = match statuses {
        [200, 412] => (a, b, "alice"),
        [412, 200] => (b, a, "bob"),
        other => panic!("expected one 200 and one 412, got {other:?}"),
    };
    assert_eq!(winner.body["version"], 2);
    let refused = loser.expect_problem(412, "precondition_failed");
    assert_eq!(refused["current"]["version"], 2);

    let item = app.item(&pool, "event").await;
    assert_eq!(item["data"], json!({"assignee": winner_name}));
    assert_eq!(item["version"], 2);
}

// ---- PATCH ----

#[tokio::test]
async fn patch_merges_nested_objects_and_null_removes_a_key() {
    let app = spawn_app().await;
    let pool = pool_name();
    put_data(
        &app,
        &pool,
        "a",
        json!({"name": "Jane", "address": {"city": "Oslo", "zip": "0150"}, "tags": [1, 2], "old": true}),
    )
    .await;
    let body = app
        .send(
            app.request(Method::PATCH, &item_path(&pool, "a"))
                .header("Content-Type", "application/merge-patch+json")
                .body(
                    json!({"address": {"zip": null, "street": "Main"}, "tags": [3], "old": null, "new": 1})
                        .to_string(),
                ),
        )
        .await
        .expect(200);
    let expected = json!({
        "name": "Jane",
        "address": {"city": "Oslo", "street": "Main"},
        "tags": [3],
        "new": 1
    });
    assert_eq!(body["data"], expected);
    assert_eq!(body["version"], 2);
    assert_eq!(app.item(&pool, "a").await["data"], expected);
}

#[tokio::test]
async fn patch_with_stale_if_match_is_412_and_changes_nothing() {
    let app = spawn_app().await;
    let pool = pool_name();
    put_data(&app, &pool, "a", json!({"n": 1})).await;
    put_data(&app, &pool, "a", json!({"n": 2})).await;
    let body = app
        .send(
            app.request(Method::PATCH, &item_path(&pool, "a"))
                .header("If-Match", "\"1\"")
                .json(&json!({"n": 3})),
        )
        .await
        .expect_problem(412, "precondition_failed");
    assert_eq!(body["current"]["version"], 2);
    assert_eq!(app.item(&pool, "a").await["data"], json!({"n": 2}));
}

#[tokio::test]
async fn patch_of_a_missing_item_is_404() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["other"]).await;
    app.patch(&item_path(&pool, "ghost"), json!({"n": 1}))
        .await
        .expect_problem(404, "not_found");
    app.get(&item_path(&pool, "ghost"))
        .await
        .expect_problem(404, "not_found");
}

#[tokio::test]
async fn a_patch_that_is_not_an_object_is_400_before_any_precondition() {
    let app = spawn_app().await;
    let pool = pool_name();
    put_data(&app, &pool, "a", json!({"n": 1})).await;
    for (id, if_match) in [("a", "\"1\""), ("ghost", "*")] {
        for body in ["-5.066877775975174e+16", "[1]", "\"text\"", "true", "null"] {
            let problem = app
                .send(
                    app.request(Method::PATCH, &item_path(&pool, id))
                        .header("If-Match", if_match)
                        .header("Content-Type", "application/merge-patch+json")
                        .body(body),
                )
                .await
                .expect_problem(400, "invalid_request");
            assert!(
                problem["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("must be a JSON object")),
                "{id} {body}: {problem}"
            );
        }
    }
    assert_eq!(app.item(&pool, "a").await["data"], json!({"n": 1}));
    assert_eq!(app.item(&pool, "a").await["version"], 1);
}

// ---- DELETE ----

#[tokio::test]
async fn delete_item_is_204_and_then_the_item_is_gone() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    let reply = app.delete(&item_path(&pool, "a")).await;
    assert_eq!(reply.status.as_u16(), 204);
    app.get(&item_path(&pool, "a"))
        .await
        .expect_problem(404, "not_found");
    app.delete(&item_path(&pool, "a"))
        .await
        .expect_problem(404, "not_found");
}

#[tokio::test]
async fn delete_with_stale_if_match_is_412_and_the_item_remains() {
    let app = spawn_app().await;
    let pool = pool_name();
    put_data(&app, &pool, "a", json!({"n": 1})).await;
    put_data(&app, &pool, "a", json!({"n": 2})).await;
    let body = app
        .send(
            app.request(Method::DELETE, &item_path(&pool, "a"))
                .header("If-Match", "\"1\""),
        )
        .await
        .expect_problem(412, "precondition_failed");
    assert_eq!(body["current"]["version"], 2);
    let item = app.item(&pool, "a").await;
    assert_eq!(item["data"], json!({"n": 2}));
    assert_eq!(item["version"], 2);
}

// ---- listing ----

#[tokio::test]
async fn listing_by_state_returns_only_items_in_that_state() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a", "b", "c", "d"]).await;
    let first = app.claim(&pool, "alice").await.expect("a lease");
    let second = app.claim(&pool, "alice").await.expect("a lease");
    app.post(
        &format!(
            "{}/complete",
            item_path(&pool, second["id"].as_str().expect("id"))
        ),
        json!({"holder": "alice", "token": token(&second)}),
    )
    .await
    .expect(200);

    let leased = app
        .get(&format!("/v1/pools/{pool}/items?state=leased"))
        .await
        .expect(200);
    assert_eq!(ids(&leased["items"]), [first["id"].as_str().expect("id")]);
    let done = app
        .get(&format!("/v1/pools/{pool}/items?state=done"))
        .await
        .expect(200);
    assert_eq!(ids(&done["items"]), [second["id"].as_str().expect("id")]);
    let available = app
        .get(&format!("/v1/pools/{pool}/items?state=available"))
        .await
        .expect(200);
    assert_eq!(ids(&available["items"]), ["c", "d"]);
    for item in available["items"].as_array().expect("items") {
        assert_eq!(item["state"], "available");
    }
}

#[tokio::test]
async fn listing_by_holder_returns_only_that_holders_items() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a", "b", "c", "d"]).await;
    let mut alices = BTreeSet::new();
    alices.insert(
        app.claim(&pool, "alice").await.expect("lease")["id"]
            .as_str()
            .expect("id")
            .to_owned(),
    );
    app.claim(&pool, "bob").await.expect("lease");
    alices.insert(
        app.claim(&pool, "alice").await.expect("lease")["id"]
            .as_str()
            .expect("id")
            .to_owned(),
    );
    let body = app
        .get(&format!("/v1/pools/{pool}/items?holder=alice"))
        .await
        .expect(200);
    let listed: BTreeSet<String> = ids(&body["items"]).into_iter().collect();
    assert_eq!(listed, alices);
    for item in body["items"].as_array().expect("items") {
        assert_eq!(item["holder"], "alice");
    }
}

#[tokio::test]
async fn listing_pages_walk_every_item_exactly_once() {
    let app = spawn_app().await;
    let pool = pool_name();
    let all: Vec<String> = (0..23).map(|n| format!("item-{n:02}")).collect();
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    app.add_items(&pool, &refs).await;
    // Some items in other states, so the walk crosses state boundaries.
    for _ in 0..4 {
        app.claim(&pool, "alice").await.expect("a lease");
    }
    let lease = app.claim(&pool, "bob").await.expect("a lease");
    app.post(
        &format!(
            "{}/complete",
            item_path(&pool, lease["id"].as_str().expect("id"))
        ),
        json!({"holder": "bob", "token": token(&lease)}),
    )
    .await
    .expect(200);

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(pages <= 10, "the walk does not end");
        let path = match &cursor {
            Some(c) => format!("/v1/pools/{pool}/items?limit=5&cursor={c}"),
            None => format!("/v1/pools/{pool}/items?limit=5"),
        };
        let page = app.get(&path).await.expect(200);
        let page_ids = ids(&page["items"]);
        assert!(page_ids.len() <= 5, "a page is larger than the limit");
        seen.extend(page_ids);
        match &page["next_cursor"] {
            Value::Null => break,
            Value::String(next) => cursor = Some(next.clone()),
            other => panic!("next_cursor: {other}"),
        }
    }
    assert_eq!(seen.len(), all.len(), "every item once: {seen:?}");
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), all.len(), "no item twice: {seen:?}");
    assert_eq!(unique, all.iter().collect::<BTreeSet<_>>());
    assert!(pages >= 5);
}

#[tokio::test]
async fn listing_rejects_a_limit_out_of_range() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    for limit in ["0", "1001", "-1", "ten"] {
        listing_refuses(&app, &pool, &format!("limit={limit}")).await;
    }
}

/// Asserts that listing `pool` with `query` is 400 invalid_request.
async fn listing_refuses(app: &TestApp, pool: &str, query: &str) {
    let reply = app.get(&format!("/v1/pools/{pool}/items?{query}")).await;
    assert_eq!(reply.status.as_u16(), 400, "{query}: {:#?}", reply.body);
    reply.expect_problem(400, "invalid_request");
}

#[tokio::test]
async fn listing_rejects_a_cursor_it_did_not_issue() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    for cursor in ["garbage", "9.0", "1.x"] {
        listing_refuses(&app, &pool, &format!("cursor={cursor}")).await;
    }
}

#[tokio::test]
async fn listing_rejects_an_unknown_state() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    app.get(&format!("/v1/pools/{pool}/items?state=sleeping"))
        .await
        .expect_problem(400, "invalid_request");
}

#[tokio::test]
async fn plain_get_and_listing_never_show_the_token() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    let lease = app.claim(&pool, "alice").await.expect("a lease");
    assert!(lease.get("token").is_some(), "the holder gets the token");
    let item = app.item(&pool, "a").await;
    assert_eq!(item["holder"], "alice");
    assert!(item.get("token").is_none(), "GET shows a token: {item:#}");
    let listing = app
        .get(&format!("/v1/pools/{pool}/items"))
        .await
        .expect(200);
    for item in listing["items"].as_array().expect("items") {
        assert!(
            item.get("token").is_none(),
            "listing shows a token: {item:#}"
        );
    }
}

#[tokio::test]
async fn listing_leased_items_skips_none_of_the_live_ones_when_many_have_expired() {
    let app = spawn_app().await;
    let pool = pool_name();
    let items: Vec<Value> = (0..150)
        .map(|n| json!({"id": format!("i{n:03}")}))
        .collect();
    app.post(
        &format!("/v1/pools/{pool}/items"),
        json!({ "items": items }),
    )
    .await
    .expect(200);
    let claim = |lease_ms: u64| json!({"holder": "alice", "count": 100, "lease_ms": lease_ms});
    let short = app
        .post(&format!("/v1/pools/{pool}/claim"), claim(200))
        .await
        .expect(200);
    let expires_at = short["leases"][0]["lease_expires_at"]
        .as_str()
        .expect("expiry")
        .to_owned();
    let long = app
        .post(&format!("/v1/pools/{pool}/claim"), claim(600_000))
        .await
        .expect(200);
    let mut live: Vec<String> = ids(&long["leases"]);
    assert_eq!(live.len(), 50);
    let expiry_ms = expires_at
        .parse::<jiff::Timestamp>()
        .expect("RFC 3339")
        .as_millisecond();
    wait_for(
        Duration::from_secs(10),
        "the short leases to expire",
        || redis_now_ms() > expiry_ms,
    );

    let mut listed = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let mut path = format!("/v1/pools/{pool}/items?state=leased&limit=100");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = app.get(&path).await.expect(200);
        listed.extend(ids(&page["items"]));
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    listed.sort();
    live.sort();
    assert_eq!(listed, live);
}

#[tokio::test]
async fn a_retried_patch_replays_its_answer_even_when_the_merge_would_no_longer_fit() {
    let app = spawn_app().await;
    let pool = pool_name();
    put_data(&app, &pool, "a", json!({})).await;
    let patch = |key: &str, field: &str, size: usize| {
        app.request(Method::PATCH, &item_path(&pool, "a"))
            .header("idempotency-key", key.to_owned())
            .json(&json!({ field: "x".repeat(size) }))
    };
    let first = app.send(patch("grow-1", "first", 40_000)).await;
    let first_body = first.expect(200);
    // Another writer replaces the data: merging the first patch again would not fit now.
    put_data(&app, &pool, "a", json!({"second": "y".repeat(40_000)})).await;

    let retry = app.send(patch("grow-1", "first", 40_000)).await;
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(retry.expect(200), first_body);
}

#[tokio::test]
async fn a_lease_token_or_cursor_beyond_any_issued_is_invalid() {
    let app = spawn_app().await;
    let pool = pool_name();
    put_data(&app, &pool, "a", json!({})).await;
    put_with(&app, &pool, "a", "lease-token", "9007199254740993")
        .await
        .expect_problem(400, "invalid_request");
    app.get(&format!(
        "/v1/pools/{pool}/items?cursor=1.99999999999999999"
    ))
    .await
    .expect_problem(400, "invalid_request");
}

/// Data comes back as written, numbers included: a number a 64-bit integer or a double
/// cannot hold exactly is refused with 400 naming the field, wherever data is written,
/// and nothing is written; sent as a string it is kept. (Bodies are sent as text: a
/// client's own JSON value would have rounded the number already.)
#[tokio::test]
async fn data_keeps_every_number_exactly_or_is_refused() {
    let app = spawn_app().await;
    let pool = pool_name();
    let big = "123456789012345678901234567890";
    let raw = |method: Method, path: String, body: String| {
        app.send(
            app.request(method, &path)
                .header("content-type", "application/json")
                .body(body),
        )
    };
    let item = format!("/v1/pools/{pool}/items/a");

    // A PUT, a bulk add, a PATCH and a completion, each refused, naming the field.
    let refused = raw(
        Method::PUT,
        item.clone(),
        format!(r#"{{"data": {{"n": {big}}}}}"#),
    )
    .await
    .expect_problem(400, "invalid_request");
    assert_eq!(refused["field"], json!("data"), "{refused:#}");
    assert!(refused["detail"].as_str().unwrap_or_default().contains(big));
    let refused = raw(
        Method::POST,
        format!("/v1/pools/{pool}/items"),
        format!(r#"{{"items": [{{"id": "b"}}, {{"id": "c", "data": {{"n": {big}}}}}]}}"#),
    )
    .await
    .expect_problem(400, "invalid_request");
    assert_eq!(refused["field"], json!("items[1].data"), "{refused:#}");
    assert_eq!(
        app.get(&format!("/v1/pools/{pool}/items/b")).await.status,
        404
    );

    let exact = json!({"s": big, "f": 0.1, "e": 1e2, "i": i64::MIN, "u": u64::MAX});
    let put = app.put(&item, json!({"data": exact})).await.expect(201);
    assert_eq!(put["data"], exact);
    let refused = raw(Method::PATCH, item.clone(), format!(r#"{{"n": {big}}}"#))
        .await
        .expect_problem(400, "invalid_request");
    assert!(
        refused["detail"].as_str().unwrap_or_default().contains(big),
        "{refused:#}"
    );
    let lease = app
        .post(&format!("{item}/claim"), json!({"holder": "h"}))
        .await
        .expect(200);
    let refused = raw(
        Method::POST,
        format!("{item}/complete"),
        format!(
            r#"{{"holder": "h", "token": {}, "data": {{"n": {big}}}}}"#,
            lease["token"]
        ),
    )
    .await
    .expect_problem(400, "invalid_request");
    assert_eq!(refused["field"], json!("data"), "{refused:#}");
    let kept = app.get(&item).await.expect(200);
    assert_eq!((&kept["data"], &kept["state"]), (&exact, &json!("leased")));
}

// ---- scheduled availability ----

fn ms_of(timestamp: &Value) -> i64 {
    timestamp
        .as_str()
        .expect("a time")
        .parse::<jiff::Timestamp>()
        .expect("RFC 3339")
        .as_millisecond()
}

#[tokio::test]
async fn an_item_added_with_a_delay_is_delayed_until_then_and_a_waiting_claim_gets_it_then() {
    let app = spawn_app().await;
    let pool = pool_name();
    let past = jiff::Timestamp::from_millisecond(redis_now_ms() - 60_000)
        .expect("a time")
        .to_string();
    app.post(
        &format!("/v1/pools/{pool}/items"),
        json!({"items": [{"id": "later", "delay_ms": 600}, {"id": "overdue", "available_at": past}]}),
    )
    .await
    .expect(200);
    let later = app.item(&pool, "later").await;
    assert_eq!(later["state"], "delayed");
    let due = ms_of(&later["available_at"]);
    assert_eq!(app.item(&pool, "overdue").await["state"], "available");
    assert!(
        app.item(&pool, "overdue")
            .await
            .get("available_at")
            .is_none()
    );
    // The overdue one is there at once; the later one only once its time comes.
    assert_eq!(
        app.claim(&pool, "w").await.expect("a lease")["id"],
        "overdue"
    );
    let waited = app
        .post(
            &format!("/v1/pools/{pool}/claim"),
            json!({"holder": "w", "wait_ms": 10_000}),
        )
        .await
        .expect(200);
    assert_eq!(waited["leases"][0]["id"], "later");
    assert!(redis_now_ms() >= due, "granted no earlier than its time");

    for (body, field) in [
        (
            json!({"id": "x", "delay_ms": 10, "available_at": past}),
            "items[0]",
        ),
        (
            json!({"id": "x", "available_at": "next monday"}),
            "items[0].available_at",
        ),
        (json!({"id": "x", "delay_ms": -5}), "items[0].delay_ms"),
    ] {
        let problem = app
            .post(&format!("/v1/pools/{pool}/items"), json!({"items": [body]}))
            .await
            .expect_problem(400, "invalid_request");
        assert_eq!(problem["field"], field, "{problem}");
    }
    app.get(&item_path(&pool, "x"))
        .await
        .expect_problem(404, "not_found");
}

#[tokio::test]
async fn an_available_item_can_be_snoozed_and_comes_back_at_its_time() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    let snoozed = app
        .post(
            &action_path(&pool, "a", "requeue"),
            json!({"delay_ms": 500}),
        )
        .await
        .expect(200);
    assert_eq!(snoozed["state"], "delayed");
    let due = ms_of(&snoozed["available_at"]);
    assert!(
        app.claim(&pool, "w").await.is_none(),
        "nothing to claim while snoozed"
    );
    let until = jiff::Timestamp::from_millisecond(due + 300)
        .expect("a time")
        .to_string();
    let again = app
        .post(
            &action_path(&pool, "a", "requeue"),
            json!({"available_at": until}),
        )
        .await
        .expect(200);
    assert_eq!(ms_of(&again["available_at"]), due + 300, "snoozed further");
    eventually(
        Duration::from_secs(10),
        "the item back at its time",
        async || app.item(&pool, "a").await["state"] == "available",
    )
    .await;
    let events = app
        .get(&format!("/v1/pools/{pool}/events"))
        .await
        .expect(200)["events"]
        .clone();
    let over = events
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["type"] == "delay_over")
        .expect("a delay_over event")
        .clone();
    assert_eq!(ms_of(&over["at"]), due + 300, "{over}");
}

#[tokio::test]
async fn an_item_scheduled_centuries_ahead_keeps_its_exact_time() {
    let app = spawn_app().await;
    let pool = pool_name();
    let far = "5421-02-15T20:08:03.123Z";
    app.post(
        &format!("/v1/pools/{pool}/items"),
        json!({"items": [{"id": "far", "available_at": far}]}),
    )
    .await
    .expect(200);
    let item = app.item(&pool, "far").await;
    assert_eq!(item["state"], "delayed");
    assert_eq!(item["available_at"], far);
}
