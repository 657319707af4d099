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

/// Every endpoint of the route table (`src/api/mod.rs`) that takes a tenant, with a body
/// it accepts, for `pool`, item `id` and `counter`; the deletes come last.
fn every_endpoint(pool: &str, id: &str, counter: &str) -> Vec<(Method, String, Option<Value>)> {
    let item = format!("/v1/pools/{pool}/items/{id}");
    let lease = json!({"holder": "h", "token": 1});
    vec![
        (Method::GET, "/v1/pools".to_owned(), None),
        (Method::PUT, format!("/v1/pools/{pool}"), Some(json!({}))),
        (Method::GET, format!("/v1/pools/{pool}"), None),
        (
            Method::POST,
            format!("/v1/pools/{pool}/items"),
            Some(json!({"items": [{"id": id}]})),
        ),
        (Method::GET, format!("/v1/pools/{pool}/items"), None),
        (Method::GET, item.clone(), None),
        (Method::PUT, item.clone(), Some(json!({"data": {}}))),
        (Method::PATCH, item.clone(), Some(json!({"x": 1}))),
        (
            Method::POST,
            format!("/v1/pools/{pool}/claim"),
            Some(json!({"holder": "h"})),
        ),
        (
            Method::POST,
            format!("{item}/claim"),
            Some(json!({"holder": "h"})),
        ),
        (Method::POST, format!("{item}/renew"), Some(lease.clone())),
        (Method::POST, format!("{item}/release"), Some(lease.clone())),
        (Method::POST, format!("{item}/complete"), Some(lease)),
        (
            Method::PUT,
            format!("{item}/holder"),
            Some(json!({"holder": "h"})),
        ),
        (Method::POST, format!("{item}/requeue"), Some(json!({}))),
        (
            Method::GET,
            format!("/v1/pools/{pool}/leases?holder=h"),
            None,
        ),
        (
            Method::POST,
            format!("/v1/counters/{counter}/next"),
            Some(json!({})),
        ),
        (Method::GET, format!("/v1/counters/{counter}"), None),
        (Method::DELETE, item, None),
        (Method::DELETE, format!("/v1/pools/{pool}"), None),
    ]
}

/// Every Redis key of a tenant.
fn keys_of(tenant: &leasehold::names::Tenant) -> Vec<String> {
    redis::cmd("KEYS")
        .arg(format!("lh:{{{tenant}*"))
        .query(&mut redis().connection())
        .expect("KEYS")
}

/// Sends `method path` with `body` and the raw `Authorization` value (none if `None`).
async fn with_authorization(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<&Value>,
    authorization: Option<&[u8]>,
) -> Reply {
    let mut request = app.client.request(method, app.url(path));
    if let Some(value) = authorization {
        request = request.header(
            "Authorization",
            reqwest::header::HeaderValue::from_bytes(value).expect("a header value"),
        );
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    app.send(request).await
}

/// The scheme of `Authorization` is case-insensitive (RFC 9110, 11.1): `bearer <key>`
/// is the key's tenant, as `Bearer <key>` is.
#[tokio::test]
async fn the_bearer_scheme_is_taken_in_any_case() {
    let app = spawn_app().await;
    let pool = pool_name();
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let authorization = format!("{scheme} {}", app.key);
        let reply = with_authorization(
            &app,
            Method::PUT,
            &format!("/v1/pools/{pool}"),
            Some(&json!({})),
            Some(authorization.as_bytes()),
        )
        .await;
        assert!(
            reply.status.is_success(),
            "{scheme}: {} {:#}",
            reply.status,
            reply.body
        );
        assert_eq!(reply.body["name"], json!(pool), "{scheme}");
    }
    let listed = with_authorization(
        &app,
        Method::GET,
        "/v1/pools",
        None,
        Some(format!("bearer {}", app.key).as_bytes()),
    )
    .await;
    let names: Vec<&str> = listed.body["pools"]
        .as_array()
        .expect("pools")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(names.contains(&pool.as_str()), "{names:?}");
}

#[tokio::test]
async fn missing_malformed_and_unknown_keys_get_401_on_every_endpoint() {
    let app = spawn_app().await;
    let pool = pool_name();
    let bad: Vec<(&str, Option<Vec<u8>>)> = vec![
        ("no Authorization", None),
        ("an empty Authorization", Some(b"".to_vec())),
        ("Basic credentials", Some(b"Basic dXNlcjpwYXNz".to_vec())),
        ("Bearer without a key", Some(b"Bearer".to_vec())),
        ("Bearer and a space", Some(b"Bearer ".to_vec())),
        ("the key without Bearer", Some(app.key.clone().into_bytes())),
        (
            "the key with a suffix",
            Some(format!("Bearer {}x", app.key).into_bytes()),
        ),
        (
            "the key cut short",
            Some(format!("Bearer {}", &app.key[..app.key.len() - 1]).into_bytes()),
        ),
        (
            "the key's hash instead of the key",
            Some(
                format!(
                    "Bearer {}",
                    std::fs::read_to_string(&app.key_file)
                        .expect("key file")
                        .lines()
                        .next()
                        .and_then(|l| l.split_once(':'))
                        .expect("tenant:hash")
                        .1
                )
                .into_bytes(),
            ),
        ),
        (
            "an unknown key",
            Some(b"Bearer lh_nobody-was-given-this".to_vec()),
        ),
        (
            "bytes that are not UTF-8",
            Some(b"Bearer lh_\xff\xfe".to_vec()),
        ),
    ];
    for (method, path, body) in every_endpoint(&pool, "a", "cases") {
        for (what, authorization) in &bad {
            let reply = with_authorization(
                &app,
                method.clone(),
                &path,
                body.as_ref(),
                authorization.as_deref(),
            )
            .await;
            assert_eq!(
                reply.status.as_u16(),
                401,
                "{what}: {method} {path}: {:#}",
                reply.body
            );
            reply.expect_problem(401, "unauthorized");
        }
    }
    assert_eq!(keys_of(&app.tenant), Vec::<String>::new());
}

#[tokio::test]
async fn a_revoked_key_gets_401_on_every_endpoint_and_the_others_keep_working() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    // Revoke the default tenant's key: keep only the other tenant's entry.
    let file = std::fs::read_to_string(&app.key_file).expect("key file");
    let others: Vec<&str> = file.lines().skip(1).collect();
    std::fs::write(&app.key_file, others.join("\n")).expect("rewrite the key file");
    assert_eq!(app.auth.reload(), Ok(1));

    let keys_before = keys_of(&app.tenant);
    let revoked = format!("Bearer {}", app.key);
    for (method, path, body) in every_endpoint(&pool, "a", "cases") {
        let reply = with_authorization(
            &app,
            method.clone(),
            &path,
            body.as_ref(),
            Some(revoked.as_bytes()),
        )
        .await;
        assert_eq!(
            reply.status.as_u16(),
            401,
            "{method} {path}: {:#}",
            reply.body
        );
        reply.expect_problem(401, "unauthorized");
    }
    let mut keys_after = keys_of(&app.tenant);
    let mut keys_before = keys_before;
    keys_before.sort();
    keys_after.sort();
    assert_eq!(keys_after, keys_before, "a revoked key changed something");
    as_other(&app, Method::GET, "/v1/pools", None)
        .await
        .expect(200);
}

/// What tenant one can see of its own state: compared before and after tenant two has
/// used every endpoint with the same names.
async fn tenant_one_view(app: &TestApp, pool: &str) -> Vec<Value> {
    let mut view = Vec::new();
    for path in [
        "/v1/pools".to_owned(),
        format!("/v1/pools/{pool}"),
        format!("/v1/pools/{pool}/items"),
        format!("/v1/pools/{pool}/items/a"),
        format!("/v1/pools/{pool}/items/b"),
        format!("/v1/pools/{pool}/leases?holder=jane-of-tenant-one"),
        "/v1/counters/cases?period=none".to_owned(),
    ] {
        let reply = app.get(&path).await;
        view.push(json!({"path": path, "status": reply.status.as_u16(), "etag": reply.header("etag"), "body": reply.body}));
    }
    view
}

/// Tenant two's side of the isolation test: sends as the other tenant, checks that no
/// answer holds any of `forbidden` (tenant one's data, holder and name), and records
/// what it sent, its 409 bodies and its last body.
struct TenantTwo<'a> {
    app: &'a TestApp,
    forbidden: Vec<String>,
    seen: Vec<String>,
    conflicts: Vec<(String, Value)>,
    last: Value,
}

impl TenantTwo<'_> {
    async fn call(&mut self, method: Method, path: String, body: Option<Value>) -> u16 {
        let reply = as_other(self.app, method.clone(), &path, body).await;
        let seen = format!("{method} {path}");
        let shown = format!("{:?} {}", reply.headers, reply.body);
        for forbidden in &self.forbidden {
            assert!(
                !shown.contains(forbidden.as_str()),
                "{seen} shows tenant one's {forbidden:?}: {shown}"
            );
        }
        let status = reply.status.as_u16();
        if status == 409 {
            self.conflicts.push((seen.clone(), reply.body.clone()));
        }
        self.seen.push(seen);
        self.last = reply.body;
        status
    }
}

#[tokio::test]
async fn every_endpoint_keeps_two_tenants_with_the_same_names_apart() {
    let app = spawn_app().await;
    let pool = pool_name();
    let secret = "secret-of-tenant-one";
    let jane = "jane-of-tenant-one";

    // Tenant one: a configured pool, item a leased by Jane (version 3), item b done,
    // item c available, all with secret data, and a counter at 7.
    app.put(&format!("/v1/pools/{pool}"), json!({"lease_ms": 123_456}))
        .await
        .expect(201);
    for id in ["a", "b", "c"] {
        app.put(
            &format!("/v1/pools/{pool}/items/{id}"),
            json!({"data": {"secret": secret}, "priority": 9}),
        )
        .await
        .expect(201);
    }
    app.patch(
        &format!("/v1/pools/{pool}/items/a"),
        json!({"more": secret}),
    )
    .await
    .expect(200);
    let jane_lease = claim_item(&app, &pool, "a", jane).await;
    let b = claim_item(&app, &pool, "b", jane).await;
    complete(&app, &pool, &b).await;
    app.post(
        "/v1/counters/cases/next",
        json!({"period": "none", "count": 7}),
    )
    .await
    .expect(200);
    let before = tenant_one_view(&app, &pool).await;

    // Tenant two: every endpoint, same pool, item and counter names.
    let item = format!("/v1/pools/{pool}/items/a");
    let mut two = TenantTwo {
        app: &app,
        forbidden: vec![secret.to_owned(), jane.to_owned(), app.tenant.to_string()],
        seen: Vec::new(),
        conflicts: Vec::new(),
        last: Value::Null,
    };

    // Reads before tenant two has anything: nothing of tenant one's exists for it.
    assert_eq!(two.call(Method::GET, "/v1/pools".into(), None).await, 200);
    assert_eq!(
        two.call(Method::GET, format!("/v1/pools/{pool}"), None)
            .await,
        404
    );
    assert_eq!(two.call(Method::GET, item.clone(), None).await, 404);
    let listed = two
        .call(Method::GET, format!("/v1/pools/{pool}/items"), None)
        .await;
    assert!(matches!(listed, 200 | 404), "list items: {listed}");
    let leases = two
        .call(
            Method::GET,
            format!("/v1/pools/{pool}/leases?holder={jane}"),
            None,
        )
        .await;
    assert!(matches!(leases, 200 | 404), "list leases: {leases}");
    assert_eq!(
        two.call(Method::GET, "/v1/counters/cases?period=none".into(), None)
            .await,
        200
    );
    // Writes aimed at tenant one's item, with tenant one's holder and token.
    let jane_token = json!({"holder": jane, "token": jane_lease["token"]});
    for action in ["renew", "release", "complete"] {
        let status = two
            .call(
                Method::POST,
                format!("{item}/{action}"),
                Some(jane_token.clone()),
            )
            .await;
        assert!(matches!(status, 404 | 409), "{action}: {status}");
    }
    let requeued = two
        .call(
            Method::POST,
            format!("/v1/pools/{pool}/items/b/requeue"),
            Some(json!({})),
        )
        .await;
    assert_eq!(requeued, 404, "requeue of tenant one's done item");
    let deleted = two
        .call(Method::DELETE, format!("/v1/pools/{pool}/items/c"), None)
        .await;
    assert_eq!(deleted, 404, "delete of tenant one's item");

    // Tenant two builds its own pool with the same names.
    assert_eq!(
        two.call(
            Method::PUT,
            format!("/v1/pools/{pool}"),
            Some(json!({"lease_ms": 5000}))
        )
        .await,
        201
    );
    let added = two
        .call(
            Method::POST,
            format!("/v1/pools/{pool}/items"),
            Some(json!({"items": [{"id": "a"}, {"id": "b"}, {"id": "c"}]})),
        )
        .await;
    assert_eq!(added, 200, "{:#}", two.last);
    assert_eq!(
        two.last["created"],
        json!(["a", "b", "c"]),
        "{:#}",
        two.last
    );
    assert_eq!(
        two.call(Method::GET, format!("/v1/pools/{pool}"), None)
            .await,
        200
    );
    assert_eq!(
        two.call(Method::GET, format!("/v1/pools/{pool}/items"), None)
            .await,
        200
    );
    assert_eq!(
        two.call(
            Method::PUT,
            item.clone(),
            Some(json!({"data": {"mine": 2}}))
        )
        .await,
        200
    );
    assert_eq!(
        two.call(Method::PATCH, item.clone(), Some(json!({"more": 2})))
            .await,
        200
    );
    assert_eq!(
        two.call(
            Method::POST,
            format!("{item}/claim"),
            Some(json!({"holder": "bob"}))
        )
        .await,
        200
    );
    let bob = two.last.clone();
    assert_eq!(bob["holder"], "bob");
    // Refusals show tenant two's own item: Bob and its version, never Jane or hers.
    assert_eq!(
        two.call(
            Method::POST,
            format!("{item}/claim"),
            Some(json!({"holder": "carol"}))
        )
        .await,
        409
    );
    assert_eq!(
        two.call(
            Method::POST,
            format!("{item}/renew"),
            Some(jane_token.clone())
        )
        .await,
        409
    );
    assert_eq!(
        two.call(
            Method::PUT,
            format!("{item}/holder"),
            Some(json!({"holder": "carol", "expected_version": 3}))
        )
        .await,
        409
    );
    assert!(!two.conflicts.is_empty());
    for (seen, body) in &two.conflicts {
        if body["current"].is_object() {
            assert_eq!(body["current"]["holder"], "bob", "{seen}: {body:#}");
            assert_eq!(
                body["current"]["version"], bob["version"],
                "{seen}: {body:#}"
            );
        }
    }
    let bob_token = json!({"holder": "bob", "token": bob["token"]});
    assert_eq!(
        two.call(
            Method::POST,
            format!("{item}/renew"),
            Some(bob_token.clone())
        )
        .await,
        200
    );
    assert_eq!(
        two.call(
            Method::POST,
            format!("/v1/pools/{pool}/claim"),
            Some(json!({"holder": "bob", "count": 5}))
        )
        .await,
        200
    );
    let claimed = two.last.clone();
    let claimed_ids: Vec<&str> = claimed["leases"]
        .as_array()
        .expect("leases")
        .iter()
        .filter_map(|l| l["id"].as_str())
        .collect();
    assert_eq!(
        claimed_ids,
        ["b", "c"],
        "tenant two claims its own b and c only"
    );
    assert_eq!(
        two.call(
            Method::GET,
            format!("/v1/pools/{pool}/leases?holder=bob"),
            None
        )
        .await,
        200
    );
    assert_eq!(
        two.call(Method::POST, format!("{item}/release"), Some(bob_token))
            .await,
        200
    );
    assert_eq!(
        two.call(
            Method::PUT,
            format!("{item}/holder"),
            Some(json!({"holder": "dave"}))
        )
        .await,
        200
    );
    let dave = two.last.clone();
    assert_eq!(
        two.call(
            Method::POST,
            format!("{item}/complete"),
            Some(json!({"holder": "dave", "token": dave["token"]}))
        )
        .await,
        200
    );
    assert_eq!(
        two.call(Method::POST, format!("{item}/requeue"), Some(json!({})))
            .await,
        200
    );
    assert_eq!(
        two.call(
            Method::POST,
            "/v1/counters/cases/next".into(),
            Some(json!({"period": "none"}))
        )
        .await,
        200
    );
    let drawn = two.last.clone();
    assert_eq!(
        drawn["values"],
        json!([1]),
        "tenant two's counter starts at 1"
    );
    assert_eq!(
        two.call(Method::GET, "/v1/counters/cases?period=none".into(), None)
            .await,
        200
    );
    assert_eq!(two.call(Method::DELETE, item.clone(), None).await, 204);
    assert_eq!(
        two.call(Method::DELETE, format!("/v1/pools/{pool}"), None)
            .await,
        204
    );
    assert_eq!(two.call(Method::GET, "/v1/pools".into(), None).await, 200);

    // Every endpoint was exercised as tenant two.
    for (method, path, _) in every_endpoint(&pool, "a", "cases") {
        let route = path.split('?').next().unwrap_or_default().to_owned();
        assert!(
            two.seen.iter().any(|seen| {
                let (m, p) = seen.split_once(' ').expect("method path");
                m == method.as_str() && p.split('?').next() == Some(route.as_str())
            }),
            "{method} {route} was not exercised"
        );
    }

    // Tenant one's view is unchanged, to the byte.
    assert_eq!(tenant_one_view(&app, &pool).await, before);
}
