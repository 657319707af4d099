//! Tenants: two tenants using the same pool, item and counter names share nothing —
//! pool lists, items, leases, tokens and counter values are separate, and no answer to
//! one tenant shows the other's holder or version.

use crate::helpers::*;
use reqwest::Method;
use serde_json::{Value, json};

/// Sends `method path` with `body` as the second tenant.
async fn as_other(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> Reply {
    let mut request = app
        .client
        .request(method, app.url(path))
        .bearer_auth(&app.other_key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    app.send(request).await
}

fn pool_names(list: &Value) -> Vec<String> {
    list["pools"]
        .as_array()
        .expect("pools")
        .iter()
        .map(|p| p["name"].as_str().expect("name").to_owned())
        .collect()
}

#[tokio::test]
async fn each_tenant_lists_only_its_own_pools() {
    let app = spawn_app().await;
    let shared = pool_name();
    let mine_only = pool_name();
    app.add_items(&shared, &["a", "b", "c"]).await;
    app.add_items(&mine_only, &["a"]).await;
    as_other(
        &app,
        Method::POST,
        &format!("/v1/pools/{shared}/items"),
        Some(json!({"items": [{"id": "a"}]})),
    )
    .await
    .expect(200);

    let mine = app.get("/v1/pools").await.expect(200);
    let mut expected = vec![shared.clone(), mine_only.clone()];
    expected.sort();
    assert_eq!(pool_names(&mine), expected);

    let theirs = as_other(&app, Method::GET, "/v1/pools", None)
        .await
        .expect(200);
    assert_eq!(pool_names(&theirs), std::slice::from_ref(&shared));
    assert_eq!(theirs["pools"][0]["counts"]["available"], 1);

    as_other(&app, Method::GET, &format!("/v1/pools/{mine_only}"), None)
        .await
        .expect_problem(404, "not_found");
}

#[tokio::test]
async fn an_item_of_one_tenant_is_not_found_for_the_other() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.put(
        &format!("/v1/pools/{pool}/items/case-1"),
        json!({"data": {"secret": "tenant one"}}),
    )
    .await
    .expect(201);

    let path = format!("/v1/pools/{pool}/items/case-1");
    as_other(&app, Method::GET, &path, None)
        .await
        .expect_problem(404, "not_found");
    as_other(&app, Method::DELETE, &path, None)
        .await
        .expect_problem(404, "not_found");
    let created = as_other(
        &app,
        Method::PUT,
        &path,
        Some(json!({"data": {"mine": "tenant two"}})),
    )
    .await
    .expect(201);
    assert_eq!(created["version"], 1);

    let item = app.item(&pool, "case-1").await;
    assert_eq!(item["data"], json!({"secret": "tenant one"}));
    assert_eq!(item["version"], 1);
}

#[tokio::test]
async fn leases_and_tokens_are_separate_per_tenant() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    as_other(
        &app,
        Method::POST,
        &format!("/v1/pools/{pool}/items"),
        Some(json!({"items": [{"id": "a"}]})),
    )
    .await
    .expect(200);

    let alice = app.claim(&pool, "alice").await.expect("a lease");
    let bob = as_other(
        &app,
        Method::POST,
        &format!("/v1/pools/{pool}/claim"),
        Some(json!({"holder": "bob"})),
    )
    .await
    .expect(200)["leases"][0]
        .clone();
    assert_eq!(
        bob["id"], "a",
        "the other tenant's item a is its own to claim"
    );
    assert_eq!(bob["holder"], "bob");
    assert_eq!(bob["version"], 2, "a first grant in the other tenant");

    // Each tenant sees its own holder, and its holder's leases only.
    assert_eq!(app.item(&pool, "a").await["holder"], "alice");
    let leases = app
        .get(&format!("/v1/pools/{pool}/leases?holder=bob"))
        .await
        .expect(200);
    assert_eq!(leases["leases"], json!([]));
    let leases = as_other(
        &app,
        Method::GET,
        &format!("/v1/pools/{pool}/leases?holder=alice"),
        None,
    )
    .await
    .expect(200);
    assert_eq!(leases["leases"], json!([]));

    // A token of one tenant means nothing in the other.
    app.post(
        &format!("/v1/pools/{pool}/items/a/complete"),
        json!({"holder": "bob", "token": bob["token"]}),
    )
    .await
    .expect_problem(409, "lease_lost");
    as_other(
        &app,
        Method::POST,
        &format!("/v1/pools/{pool}/items/a/complete"),
        Some(json!({"holder": "alice", "token": alice["token"]})),
    )
    .await
    .expect_problem(409, "lease_lost");
    assert_eq!(app.item(&pool, "a").await["state"], "leased");
}

#[tokio::test]
async fn counters_start_at_1_for_each_tenant() {
    let app = spawn_app().await;
    let path = "/v1/counters/cases/next";
    let mine = app.post(path, json!({"count": 3})).await.expect(200);
    assert_eq!(mine["values"], json!([1, 2, 3]));

    let theirs = as_other(&app, Method::POST, path, Some(json!({})))
        .await
        .expect(200);
    assert_eq!(theirs["values"], json!([1]));

    let mine = app.post(path, json!({})).await.expect(200);
    assert_eq!(mine["values"], json!([4]));
    let value = as_other(&app, Method::GET, "/v1/counters/cases", None)
        .await
        .expect(200);
    assert_eq!(value["value"], 1);
}

#[tokio::test]
async fn a_refusal_never_shows_the_other_tenants_holder_or_version() {
    let app = spawn_app().await;
    let pool = pool_name();
    let path = format!("/v1/pools/{pool}/items/case-1");
    // Tenant one: version 5, held by a recognisable holder.
    app.put(&path, json!({"data": {"n": 0}})).await.expect(201);
    for n in 1..4 {
        app.put(&path, json!({"data": {"n": n}})).await.expect(200);
    }
    app.send(
        app.request(Method::POST, &format!("{path}/claim"))
            .json(&json!({"holder": "jane-of-tenant-one"})),
    )
    .await
    .expect(200);
    assert_eq!(app.item(&pool, "case-1").await["version"], 5);

    // Tenant two: its own item, version 1, never leased.
    as_other(&app, Method::PUT, &path, Some(json!({"data": {}})))
        .await
        .expect(201);

    let conflict = as_other(
        &app,
        Method::PUT,
        &path,
        Some(json!({"data": {}, "expected_version": 5})),
    )
    .await
    .expect_problem(409, "version_conflict");
    assert_eq!(conflict["current"]["version"], 1);
    assert_eq!(conflict["current"]["holder"], Value::Null);

    let precondition = app
        .send(
            app.client
                .request(Method::PUT, app.url(&path))
                .bearer_auth(&app.other_key)
                .header("If-Match", "\"5\"")
                .json(&json!({"data": {}})),
        )
        .await
        .expect_problem(412, "precondition_failed");
    assert_eq!(precondition["current"]["version"], 1);

    let lost = as_other(
        &app,
        Method::POST,
        &format!("{path}/renew"),
        Some(json!({"holder": "jane-of-tenant-one", "token": 1})),
    )
    .await
    .expect_problem(409, "lease_lost");

    for body in [&conflict, &precondition, &lost] {
        assert!(
            !body.to_string().contains("jane-of-tenant-one"),
            "a refusal shows tenant one's holder: {body:#}"
        );
        assert_ne!(body["current"]["version"], 5, "{body:#}");
    }
}

#[tokio::test]
async fn the_key_file_holds_each_tenants_hash_and_never_a_key() {
    let app = spawn_app().await;
    let file = std::fs::read_to_string(&app.key_file).expect("key file");
    let entries: Vec<&str> = file.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(entries.len(), 2, "{file}");
    assert!(
        entries[0].starts_with(&format!("{}:", app.tenant)),
        "{file}"
    );
    for entry in &entries {
        let (_, hash) = entry.split_once(':').expect("tenant:hash");
        assert_eq!(hash.len(), 64, "a sha256 hex: {entry}");
        assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()), "{entry}");
    }
    assert!(!file.contains(&app.key), "the file holds a key");
    assert!(!file.contains(&app.other_key), "the file holds a key");
}
