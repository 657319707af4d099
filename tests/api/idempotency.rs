//! Idempotency: a retry with the same `Idempotency-Key` gets the stored answer (leases,
//! tokens, counter values, status, refusals) marked `idempotent-replayed: true` and
//! changes nothing; the same key on a different request is refused; bad keys are 400.

use crate::helpers::*;
use reqwest::Method;
use reqwest::header::HeaderValue;
use serde_json::{Value, json};

/// Sends `method path` with `body` (or no body) under `Idempotency-Key: key`.
async fn send_keyed(
    app: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    body: Option<&Value>,
) -> Reply {
    let mut request = app.request(method, path).header("Idempotency-Key", key);
    if let Some(body) = body {
        request = request.json(body);
    }
    app.send(request).await
}

#[track_caller]
fn assert_replayed(reply: &Reply) {
    assert_eq!(
        reply.header("idempotent-replayed"),
        Some("true"),
        "not marked as a replay: {:#?}",
        reply.body
    );
}

#[track_caller]
fn assert_not_replayed(reply: &Reply) {
    assert_eq!(
        reply.header("idempotent-replayed"),
        None,
        "a first answer is marked as a replay"
    );
}

async fn pool_view(app: &TestApp, pool: &str) -> Value {
    app.get(&format!("/v1/pools/{pool}")).await.expect(200)
}

#[tokio::test]
async fn claim_next_replay_returns_the_same_leases_and_grants_nothing_more() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a", "b", "c", "d", "e"]).await;
    let path = format!("/v1/pools/{pool}/claim");
    let body = json!({"holder": "alice", "count": 2});

    let first = send_keyed(&app, Method::POST, &path, "claim-1", Some(&body)).await;
    assert_not_replayed(&first);
    let first = first.expect(200);
    assert_eq!(first["leases"].as_array().expect("leases").len(), 2);
    let before = pool_view(&app, &pool).await;

    let retry = send_keyed(&app, Method::POST, &path, "claim-1", Some(&body)).await;
    assert_replayed(&retry);
    let retry = retry.expect(200);
    assert_eq!(retry["leases"], first["leases"], "same leases and tokens");

    let after = pool_view(&app, &pool).await;
    assert_eq!(after["counts"], before["counts"]);
    assert_eq!(after["counts"]["leased"], 2);
    assert_eq!(after["counts"]["available"], 3);
    assert_eq!(after["stats"]["claims"], 2);
}

#[tokio::test]
async fn complete_replay_returns_the_same_item_instead_of_lease_lost() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    let lease = app.claim(&pool, "alice").await.expect("a lease");
    let path = format!("/v1/pools/{pool}/items/a/complete");
    let body = json!({"holder": "alice", "token": lease["token"], "data": {"result": 42}});

    let first = send_keyed(&app, Method::POST, &path, "done-1", Some(&body)).await;
    assert_not_replayed(&first);
    let first = first.expect(200);
    assert_eq!(first["state"], "done");

    let retry = send_keyed(&app, Method::POST, &path, "done-1", Some(&body)).await;
    assert_replayed(&retry);
    assert_eq!(retry.expect(200), first);
    let item = app.item(&pool, "a").await;
    assert_eq!(
        item["version"], first["version"],
        "the retry changed nothing"
    );
}

#[tokio::test]
async fn put_item_replay_keeps_status_201_and_the_same_body() {
    let app = spawn_app().await;
    let pool = pool_name();
    let path = format!("/v1/pools/{pool}/items/a");
    let body = json!({"data": {"n": 1}});

    let first = send_keyed(&app, Method::PUT, &path, "put-1", Some(&body)).await;
    assert_not_replayed(&first);
    let first = first.expect(201);

    let retry = send_keyed(&app, Method::PUT, &path, "put-1", Some(&body)).await;
    assert_replayed(&retry);
    assert_eq!(retry.header("etag"), Some("\"1\""));
    assert_eq!(retry.expect(201), first);
    assert_eq!(
        app.item(&pool, "a").await["version"],
        1,
        "not written twice"
    );
}

#[tokio::test]
async fn delete_item_replay_is_204_again() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    let path = format!("/v1/pools/{pool}/items/a");

    let first = send_keyed(&app, Method::DELETE, &path, "del-1", None).await;
    assert_not_replayed(&first);
    assert_eq!(first.status.as_u16(), 204);

    let retry = send_keyed(&app, Method::DELETE, &path, "del-1", None).await;
    assert_replayed(&retry);
    assert_eq!(retry.status.as_u16(), 204, "{:#?}", retry.body);

    let without_key = app.delete(&path).await;
    without_key.expect_problem(404, "not_found");
}

#[tokio::test]
async fn counter_draw_replay_returns_the_same_values_and_draws_nothing() {
    let app = spawn_app().await;
    let path = "/v1/counters/cases/next";
    let body = json!({"count": 3, "format": "CASE-{date}-{seq:05}"});

    let first = send_keyed(&app, Method::POST, path, "draw-1", Some(&body)).await;
    assert_not_replayed(&first);
    let first = first.expect(200);
    assert_eq!(first["values"], json!([1, 2, 3]));

    let retry = send_keyed(&app, Method::POST, path, "draw-1", Some(&body)).await;
    assert_replayed(&retry);
    assert_eq!(retry.expect(200), first);

    let next = app.post(path, json!({})).await.expect(200);
    assert_eq!(next["values"], json!([4]), "the replay drew no values");
}

#[tokio::test]
async fn same_key_with_a_different_body_is_idempotency_key_reused() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a", "b", "c"]).await;
    let path = format!("/v1/pools/{pool}/claim");

    send_keyed(
        &app,
        Method::POST,
        &path,
        "k-1",
        Some(&json!({"holder": "alice"})),
    )
    .await
    .expect(200);
    send_keyed(
        &app,
        Method::POST,
        &path,
        "k-1",
        Some(&json!({"holder": "alice", "count": 2})),
    )
    .await
    .expect_problem(409, "idempotency_key_reused");

    let view = pool_view(&app, &pool).await;
    assert_eq!(view["counts"]["leased"], 1, "the reuse granted nothing");
}

#[tokio::test]
async fn same_key_on_a_different_counter_body_is_idempotency_key_reused() {
    let app = spawn_app().await;
    let path = "/v1/counters/cases/next";
    send_keyed(&app, Method::POST, path, "k-1", Some(&json!({"count": 1})))
        .await
        .expect(200);
    send_keyed(&app, Method::POST, path, "k-1", Some(&json!({"count": 2})))
        .await
        .expect_problem(409, "idempotency_key_reused");
    let value = app.get("/v1/counters/cases").await.expect(200);
    assert_eq!(value["value"], 1);
}

#[tokio::test]
async fn a_refusal_is_stored_and_replayed_after_the_state_changed() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    let alice = app.claim(&pool, "alice").await.expect("a lease");
    let path = format!("/v1/pools/{pool}/items/a/claim");
    let body = json!({"holder": "bob"});

    let first = send_keyed(&app, Method::POST, &path, "bob-1", Some(&body)).await;
    assert_not_replayed(&first);
    let refused = first.expect_problem(409, "already_leased");
    assert_eq!(refused["current"]["holder"], "alice");

    // Alice lets go: the item could now be claimed by bob…
    app.post(
        &format!("/v1/pools/{pool}/items/a/release"),
        json!({"holder": "alice", "token": alice["token"]}),
    )
    .await
    .expect(200);

    // …but a retry of bob's request gets the answer it got the first time.
    let retry = send_keyed(&app, Method::POST, &path, "bob-1", Some(&body)).await;
    assert_replayed(&retry);
    assert_eq!(retry.expect_problem(409, "already_leased"), refused);
    let item = app.item(&pool, "a").await;
    assert_eq!(item["state"], "available");
    assert_eq!(item["holder"], Value::Null);
}

async fn assert_key_rejected(key: HeaderValue) {
    let app = spawn_app().await;
    let pool = pool_name();
    let reply = app
        .send(
            app.request(Method::PUT, &format!("/v1/pools/{pool}/items/a"))
                .header("Idempotency-Key", key.clone())
                .json(&json!({"data": {}})),
        )
        .await;
    let body = reply.expect_problem(400, "invalid_request");
    assert!(
        body["field"]
            .as_str()
            .unwrap_or_default()
            .eq_ignore_ascii_case("idempotency-key"),
        "key {key:?}: {body:#}"
    );
    app.get(&format!("/v1/pools/{pool}/items/a"))
        .await
        .expect_problem(404, "not_found");
}

#[tokio::test]
async fn empty_idempotency_key_is_400() {
    assert_key_rejected(HeaderValue::from_static("")).await;
}

#[tokio::test]
async fn idempotency_key_of_129_characters_is_400() {
    let key = "k".repeat(129);
    assert_key_rejected(HeaderValue::from_str(&key).expect("ASCII")).await;
}

#[tokio::test]
async fn idempotency_key_with_non_ascii_characters_is_400() {
    assert_key_rejected(HeaderValue::from_bytes("clé-1".as_bytes()).expect("obs-text")).await;
}

#[tokio::test]
async fn idempotency_key_of_128_characters_is_accepted() {
    let app = spawn_app().await;
    let pool = pool_name();
    let key = "k".repeat(128);
    let path = format!("/v1/pools/{pool}/items/a");
    let body = json!({"data": {}});
    send_keyed(&app, Method::PUT, &path, &key, Some(&body))
        .await
        .expect(201);
    let retry = send_keyed(&app, Method::PUT, &path, &key, Some(&body)).await;
    assert_replayed(&retry);
}

#[tokio::test]
async fn same_key_on_another_item_of_the_pool_is_idempotency_key_reused() {
    let app = spawn_app().await;
    let pool = pool_name();
    let body = json!({"data": {"n": 1}});
    let path_a = format!("/v1/pools/{pool}/items/a");
    let path_b = format!("/v1/pools/{pool}/items/b");
    send_keyed(&app, Method::PUT, &path_a, "k-1", Some(&body))
        .await
        .expect(201);
    send_keyed(&app, Method::PUT, &path_b, "k-1", Some(&body))
        .await
        .expect_problem(409, "idempotency_key_reused");
    app.get(&path_b).await.expect_problem(404, "not_found");
}

#[tokio::test]
async fn same_key_with_a_different_if_match_is_idempotency_key_reused() {
    let app = spawn_app().await;
    let pool = pool_name();
    let path = format!("/v1/pools/{pool}/items/a");
    app.put(&path, json!({"data": {"n": 0}})).await.expect(201);
    let write = |etag: &'static str| {
        app.send(
            app.request(Method::PUT, &path)
                .header("Idempotency-Key", "k-1")
                .header("If-Match", etag)
                .json(&json!({"data": {"n": 1}})),
        )
    };
    write("\"1\"").await.expect(200);
    write("\"2\"")
        .await
        .expect_problem(409, "idempotency_key_reused");
    assert_eq!(app.item(&pool, "a").await["version"], 2);
}

/// A key is scoped to the pool or counter it is used on (its answer is stored in the same
/// Redis slot as the effect, see docs/api.md): the same key on another pool, or on a
/// counter, is another request, applied there and replayed there alone.
#[tokio::test]
async fn a_key_is_scoped_to_its_pool_or_counter() {
    let app = spawn_app().await;
    let (first, second) = (pool_name(), pool_name());
    let counter = format!("c-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let key = "one-key-everywhere";
    let add = |pool: &str, id: &str| {
        let path = format!("/v1/pools/{pool}/items");
        let body = json!({"items": [{"id": id}]});
        let app = &app;
        async move { send_keyed(app, Method::POST, &path, key, Some(&body)).await }
    };
    let draw = || {
        let path = format!("/v1/counters/{counter}/next");
        let app = &app;
        async move {
            send_keyed(
                app,
                Method::POST,
                &path,
                key,
                Some(&json!({"period": "none"})),
            )
            .await
        }
    };

    for reply in [add(&first, "a").await, add(&second, "a").await] {
        assert_not_replayed(&reply);
        assert_eq!(reply.expect(200)["created"], json!(["a"]));
    }
    let drawn = draw().await;
    assert_not_replayed(&drawn);
    assert_eq!(drawn.expect(200)["values"], json!([1]));

    // Each replays its own answer, and the same key with another body on the first pool
    // is still refused there.
    let again = add(&second, "a").await;
    assert_replayed(&again);
    assert_eq!(again.expect(200)["created"], json!(["a"]));
    let again = draw().await;
    assert_replayed(&again);
    assert_eq!(again.expect(200)["values"], json!([1]));
    add(&first, "b")
        .await
        .expect_problem(409, "idempotency_key_reused");
}
