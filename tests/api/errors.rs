//! Errors: every refusal is `application/problem+json` with type, title, status, code and
//! detail; bad names never reach Redis; bodies are checked for type, shape and size;
//! auth, routing and an unreachable Redis have their own codes.

use std::time::Duration;

use crate::helpers::*;
use reqwest::Method;
use serde_json::{Value, json};

/// Asserts the full problem shape: the content type and every member RFC 9457 and the
/// contract ask for, and returns the body.
#[track_caller]
fn assert_problem(reply: Reply, status: u16, code: &str) -> Value {
    let body = reply.expect_problem(status, code);
    assert_eq!(body["status"], status, "{body:#}");
    assert_eq!(body["code"], code, "{body:#}");
    for member in ["type", "title", "detail"] {
        let text = body[member].as_str().unwrap_or_default();
        assert!(!text.is_empty(), "{member} missing: {body:#}");
    }
    body
}

/// Every Redis key of this test's tenant.
fn tenant_keys(app: &TestApp) -> Vec<String> {
    assert_eq!(
        app.redis_url,
        redis().url(),
        "the app uses the shared Redis"
    );
    let mut redis = redis().connection();
    redis::cmd("KEYS")
        .arg(format!("lh:{{{}*", app.tenant))
        .query(&mut redis)
        .expect("KEYS")
}

/// A write to `/v1/pools/<pool>/items/<id>` that would create the pool, the item and
/// the tenant's pool index if the names were valid.
async fn put_item_at(app: &TestApp, pool: &str, id: &str) -> Reply {
    app.put(
        &format!("/v1/pools/{pool}/items/{id}"),
        json!({"data": {"n": 1}}),
    )
    .await
}

/// A bad pool name (as it goes in the URL, percent-encoded) is refused with field
/// "pool", and no key of the tenant exists afterwards.
async fn assert_pool_name_rejected(encoded: &str) {
    let app = spawn_app().await;
    let body = assert_problem(
        put_item_at(&app, encoded, "a").await,
        400,
        "invalid_request",
    );
    assert_eq!(body["field"], "pool", "{body:#}");
    let body = assert_problem(
        app.post(
            &format!("/v1/pools/{encoded}/items"),
            json!({"items": [{"id": "a"}]}),
        )
        .await,
        400,
        "invalid_request",
    );
    assert_eq!(body["field"], "pool", "{body:#}");
    assert_eq!(tenant_keys(&app), Vec::<String>::new());
}

#[tokio::test]
async fn pool_name_with_an_open_brace_is_rejected_and_nothing_written() {
    assert_pool_name_rejected("a%7Bb").await;
}

#[tokio::test]
async fn pool_name_with_a_close_brace_is_rejected_and_nothing_written() {
    assert_pool_name_rejected("a%7Db").await;
}

#[tokio::test]
async fn pool_name_with_a_space_is_rejected_and_nothing_written() {
    assert_pool_name_rejected("a%20b").await;
}

#[tokio::test]
async fn pool_name_with_a_slash_is_rejected_and_nothing_written() {
    assert_pool_name_rejected("a%2Fb").await;
}

#[tokio::test]
async fn pool_name_of_65_characters_is_rejected_and_nothing_written() {
    assert_pool_name_rejected(&"p".repeat(65)).await;
}

#[tokio::test]
async fn pool_name_of_64_characters_is_accepted() {
    let app = spawn_app().await;
    put_item_at(&app, &"p".repeat(64), "a").await.expect(201);
}

#[tokio::test]
async fn invalid_item_id_is_rejected_with_its_field_and_nothing_written() {
    let app = spawn_app().await;
    let pool = pool_name();
    for id in ["a%7Bb", "a%20b", "-leading-dash", &"i".repeat(129)] {
        let body = assert_problem(put_item_at(&app, &pool, id).await, 400, "invalid_request");
        assert_eq!(body["field"], "id", "id {id}: {body:#}");
    }
    let body = assert_problem(
        app.post(
            &format!("/v1/pools/{pool}/items"),
            json!({"items": [{"id": "a b"}]}),
        )
        .await,
        400,
        "invalid_request",
    );
    assert!(
        body["field"].as_str().unwrap_or_default().contains("id"),
        "{body:#}"
    );
    assert_eq!(tenant_keys(&app), Vec::<String>::new());
}

#[tokio::test]
async fn invalid_holder_is_rejected_with_field_holder() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    for holder in ["jane doe", "{jane}", "a/b", "", &"h".repeat(129)] {
        let body = assert_problem(
            app.post(
                &format!("/v1/pools/{pool}/claim"),
                json!({ "holder": holder }),
            )
            .await,
            400,
            "invalid_request",
        );
        assert_eq!(body["field"], "holder", "holder {holder:?}: {body:#}");
    }
    assert_eq!(app.item(&pool, "a").await["state"], "available");
}

#[tokio::test]
async fn body_with_a_non_json_content_type_is_415() {
    let app = spawn_app().await;
    let pool = pool_name();
    assert_problem(
        app.send(
            app.request(Method::POST, &format!("/v1/pools/{pool}/items"))
                .header("Content-Type", "text/plain")
                .body(r#"{"items":[{"id":"a"}]}"#),
        )
        .await,
        415,
        "unsupported_media_type",
    );
    assert_eq!(tenant_keys(&app), Vec::<String>::new());
}

#[tokio::test]
async fn malformed_json_is_400() {
    let app = spawn_app().await;
    let pool = pool_name();
    assert_problem(
        app.send(
            app.request(Method::POST, &format!("/v1/pools/{pool}/items"))
                .header("Content-Type", "application/json")
                .body(r#"{"items":[{"id":"a"}"#),
        )
        .await,
        400,
        "invalid_request",
    );
    assert_eq!(tenant_keys(&app), Vec::<String>::new());
}

#[tokio::test]
async fn unknown_body_field_is_400() {
    let app = spawn_app().await;
    let pool = pool_name();
    assert_problem(
        app.put(
            &format!("/v1/pools/{pool}/items/a"),
            json!({"data": {}, "colour": "red"}),
        )
        .await,
        400,
        "invalid_request",
    );
    assert_problem(
        app.post(
            &format!("/v1/pools/{pool}/claim"),
            json!({"holder": "alice", "cuont": 2}),
        )
        .await,
        400,
        "invalid_request",
    );
    assert_eq!(tenant_keys(&app), Vec::<String>::new());
}

#[tokio::test]
async fn body_over_max_body_bytes_is_413() {
    let app = spawn_app_with(Options {
        max_body_bytes: Some(1024),
        ..Options::default()
    })
    .await;
    let pool = pool_name();
    let items: Vec<Value> = (0..100)
        .map(|n| json!({"id": format!("item-{n}")}))
        .collect();
    let body = json!({ "items": items });
    assert!(body.to_string().len() > 1024);
    assert_problem(
        app.post(&format!("/v1/pools/{pool}/items"), body).await,
        413,
        "payload_too_large",
    );
    assert_eq!(tenant_keys(&app), Vec::<String>::new());
}

#[tokio::test]
async fn body_within_max_body_bytes_is_accepted() {
    let app = spawn_app_with(Options {
        max_body_bytes: Some(1024),
        ..Options::default()
    })
    .await;
    let pool = pool_name();
    app.post(
        &format!("/v1/pools/{pool}/items"),
        json!({"items": [{"id": "a"}]}),
    )
    .await
    .expect(200);
}

#[tokio::test]
async fn data_that_is_not_an_object_is_400() {
    let app = spawn_app().await;
    let pool = pool_name();
    for data in [json!([1, 2]), json!("text"), json!(3), json!(null)] {
        let reply = app
            .put(
                &format!("/v1/pools/{pool}/items/a"),
                json!({ "data": data }),
            )
            .await;
        assert_eq!(reply.status.as_u16(), 400, "data {data}: {:#?}", reply.body);
        assert_problem(reply, 400, "invalid_request");
    }
    assert_problem(
        app.post(
            &format!("/v1/pools/{pool}/items"),
            json!({"items": [{"id": "a", "data": [1]}]}),
        )
        .await,
        400,
        "invalid_request",
    );
    assert_eq!(tenant_keys(&app), Vec::<String>::new());
}

#[tokio::test]
async fn data_over_64_kib_is_413_and_nothing_written() {
    let app = spawn_app().await;
    let pool = pool_name();
    let big = json!({"text": "x".repeat(64 * 1024)});
    assert_problem(
        app.put(&format!("/v1/pools/{pool}/items/a"), json!({ "data": big }))
            .await,
        413,
        "payload_too_large",
    );
    assert_problem(
        app.post(
            &format!("/v1/pools/{pool}/items"),
            json!({"items": [{"id": "a", "data": big}]}),
        )
        .await,
        413,
        "payload_too_large",
    );
    assert_eq!(tenant_keys(&app), Vec::<String>::new());
}

#[tokio::test]
async fn data_just_under_64_kib_is_accepted() {
    let app = spawn_app().await;
    let pool = pool_name();
    // {"text":"…"} is 11 bytes around the string.
    let data = json!({"text": "x".repeat(64 * 1024 - 11)});
    assert_eq!(data.to_string().len(), 64 * 1024);
    app.put(
        &format!("/v1/pools/{pool}/items/a"),
        json!({ "data": data }),
    )
    .await
    .expect(201);
}

#[tokio::test]
async fn request_without_authorization_is_401() {
    let app = spawn_app().await;
    let pool = pool_name();
    let reply = app
        .send(
            app.client
                .put(app.url(&format!("/v1/pools/{pool}/items/a")))
                .json(&json!({"data": {}})),
        )
        .await;
    assert_problem(reply, 401, "unauthorized");
    assert_eq!(tenant_keys(&app), Vec::<String>::new());
}

#[tokio::test]
async fn request_with_an_unknown_key_is_401() {
    let app = spawn_app().await;
    let pool = pool_name();
    let reply = app
        .send(
            app.client
                .put(app.url(&format!("/v1/pools/{pool}/items/a")))
                .bearer_auth("lh_not-a-key-anyone-was-given")
                .json(&json!({"data": {}})),
        )
        .await;
    assert_problem(reply, 401, "unauthorized");
    assert_eq!(tenant_keys(&app), Vec::<String>::new());
}

#[tokio::test]
async fn unknown_route_is_404_not_found() {
    let app = spawn_app().await;
    assert_problem(app.get("/v1/nothing-here").await, 404, "not_found");
    assert_problem(app.get("/v2/pools").await, 404, "not_found");
}

#[tokio::test]
async fn wrong_method_is_405_method_not_allowed() {
    let app = spawn_app().await;
    let pool = pool_name();
    assert_problem(
        app.get(&format!("/v1/pools/{pool}/claim")).await,
        405,
        "method_not_allowed",
    );
    assert_problem(
        app.post("/v1/pools", json!({})).await,
        405,
        "method_not_allowed",
    );
}

#[tokio::test]
async fn unreachable_redis_is_503_backend_unavailable_without_redis_error_text() {
    let private = RedisProcess::start(&[]);
    let app = spawn_app_with(Options {
        redis_url: Some(private.url()),
        redis_timeout_ms: Some(500),
        ..Options::default()
    })
    .await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    drop(private);

    for reply in [
        app.get(&format!("/v1/pools/{pool}/items/a")).await,
        app.put(&format!("/v1/pools/{pool}/items/b"), json!({"data": {}}))
            .await,
    ] {
        let retry_after = reply.header("retry-after").unwrap_or_default();
        assert!(
            retry_after.parse::<u64>().is_ok_and(|secs| secs > 0),
            "Retry-After: {retry_after:?}"
        );
        let body = assert_problem(reply, 503, "backend_unavailable");
        let text = body.to_string().to_lowercase();
        for leak in [
            "refused",
            "os error",
            "broken pipe",
            "io error",
            "ioerror",
            "connection reset",
            "timed out",
            "127.0.0.1",
            "noscript",
        ] {
            assert!(!text.contains(leak), "the body leaks {leak:?}: {body:#}");
        }
        // A read is told to retry; a write, to retry with the same Idempotency-Key.
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("retry ("), "{detail}");
        assert!(
            detail.contains("a write with the same Idempotency-Key"),
            "{detail}"
        );
    }
}

/// After Redis restarts, the shared connections a replica holds are dead. A replica that
/// was idle checks such a connection before a request's command goes on it, and replaces
/// it: the request never reached Redis on the dead one, so it is sent on the new one,
/// instead of failing with 503 (once per connection, as it did).
#[tokio::test]
async fn after_redis_restarts_an_idle_replica_answers_every_request_without_a_503() {
    for mode in [
        leasehold::store::ConnectionMode::Shared,
        leasehold::store::ConnectionMode::Pooled,
    ] {
        restarts_answered_without_a_503(mode).await;
    }
}

async fn restarts_answered_without_a_503(mode: leasehold::store::ConnectionMode) {
    let mut redis = RedisProcess::start(&["--appendonly", "yes"]);
    let app = spawn_app_with(Options {
        redis_url: Some(redis.url()),
        connections: Some(mode),
        ..Options::default()
    })
    .await;
    let pool = pool_name();
    for restart in 0..3 {
        // Every shared connection in use before the restart.
        for n in 0..8 {
            app.put(
                &format!("/v1/pools/{pool}/items/r{restart}-{n}"),
                json!({"data": {}}),
            )
            .await
            .expect(201);
        }
        redis.signal("KILL");
        redis.wait_gone();
        let (port, dir) = (redis.port, redis.dir.clone());
        redis = RedisProcess::start_on(port, &dir, &["--appendonly", "yes"]);
        // Idle for the time after which a connection is checked before use (that time
        // going by is the condition itself).
        tokio::time::sleep(Duration::from_millis(1100)).await;
        for n in 0..8 {
            let reply = app
                .put(
                    &format!("/v1/pools/{pool}/items/after-{restart}-{n}"),
                    json!({"data": {}}),
                )
                .await;
            assert_eq!(
                reply.status.as_u16(),
                201,
                "{mode:?}: request {n} after restart {restart}: {:?}",
                reply.body
            );
        }
    }
}

/// A body that is not a JSON object is told so in the API's words, whatever it is, and
/// nothing names a type of the server's.
#[tokio::test]
async fn a_body_that_is_not_an_object_is_told_so_in_the_apis_words() {
    let app = spawn_app().await;
    let pool = pool_name();
    for body in ["[1, 2]", "\"items\"", "42", "-1", "true", "null", "  [ ]"] {
        let problem = app
            .send(
                app.request(Method::POST, &format!("/v1/pools/{pool}/items"))
                    .header("content-type", "application/json")
                    .body(body),
            )
            .await
            .expect_problem(400, "invalid_request");
        assert_eq!(problem["field"], "body", "{body}");
        assert_eq!(
            problem["detail"], "the body must be a JSON object",
            "{body}"
        );
    }
    app.get(&format!("/v1/pools/{pool}"))
        .await
        .expect_problem(404, "not_found");
}
