//! The API description (`GET /openapi.json`) and its page (`GET /docs`): the description
//! lists exactly the routes the router serves, with their methods, every problem code
//! under its status, the contract's name patterns and ranges, and the key as `serve`
//! requires it.

use std::collections::BTreeSet;

use crate::helpers::*;
use reqwest::Method;
use serde_json::{Value, json};

/// Every operation of the contract (DESIGN.md), the event log, and the operations
/// endpoints.
const OPERATIONS: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/v1/pools"),
    ("GET", "/v1/tenant"),
    ("PUT", "/v1/pools/{pool}"),
    ("GET", "/v1/pools/{pool}"),
    ("DELETE", "/v1/pools/{pool}"),
    ("POST", "/v1/pools/{pool}/items"),
    ("GET", "/v1/pools/{pool}/items"),
    ("GET", "/v1/pools/{pool}/items/{id}"),
    ("PUT", "/v1/pools/{pool}/items/{id}"),
    ("PATCH", "/v1/pools/{pool}/items/{id}"),
    ("DELETE", "/v1/pools/{pool}/items/{id}"),
    ("POST", "/v1/pools/{pool}/claim"),
    ("POST", "/v1/pools/{pool}/items/{id}/claim"),
    ("POST", "/v1/pools/{pool}/items/{id}/renew"),
    ("POST", "/v1/pools/{pool}/items/{id}/release"),
    ("POST", "/v1/pools/{pool}/items/{id}/complete"),
    ("PUT", "/v1/pools/{pool}/items/{id}/holder"),
    ("POST", "/v1/pools/{pool}/items/{id}/requeue"),
    ("GET", "/v1/pools/{pool}/leases"),
    ("GET", "/v1/pools/{pool}/events"),
    ("GET", "/v1/pools/{pool}/events/stream"),
    ("POST", "/v1/counters/{name}/next"),
    ("GET", "/v1/counters/{name}"),
];

/// The problem codes of DESIGN.md's table, with `invalid_state`, `method_not_allowed` and
/// `internal`, which the server adds.
const PROBLEMS: &[(u16, &str)] = &[
    (400, "invalid_request"),
    (401, "unauthorized"),
    (404, "not_found"),
    (405, "method_not_allowed"),
    (408, "request_timeout"),
    (409, "already_leased"),
    (409, "lease_lost"),
    (409, "version_conflict"),
    (409, "holder_at_capacity"),
    (409, "invalid_state"),
    (409, "pool_paused"),
    (409, "idempotency_key_reused"),
    (409, "quota_exceeded"),
    (412, "precondition_failed"),
    (413, "payload_too_large"),
    (415, "unsupported_media_type"),
    (428, "precondition_required"),
    (429, "rate_limited"),
    (500, "internal"),
    (503, "backend_unavailable"),
    (503, "durability_timeout"),
];

const METHODS: [&str; 5] = ["GET", "PUT", "POST", "PATCH", "DELETE"];

/// The description, checking that it is served as JSON.
async fn description(app: &TestApp) -> Value {
    let answer = app.send(app.request(Method::GET, "/openapi.json")).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert!(
        answer.body.is_object(),
        "not a JSON object: {:?}",
        answer.body
    );
    answer.body
}

/// The (method, path) of every operation the description lists.
fn described_operations(spec: &Value) -> BTreeSet<(String, String)> {
    let mut operations = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            operations.insert((method.to_uppercase(), path.clone()));
        }
    }
    operations
}

/// The operations of the description, and the value at the JSON pointer `pointer`.
fn at<'a>(spec: &'a Value, pointer: &str) -> &'a Value {
    spec.pointer(pointer)
        .unwrap_or_else(|| panic!("{pointer} is missing from the description"))
}

#[tokio::test]
async fn the_description_is_openapi_3_1_json() {
    let app = spawn_app().await;
    let spec = description(&app).await;
    let version = spec["openapi"].as_str().expect("openapi");
    assert!(version.starts_with("3.1."), "{version}");
    assert_eq!(spec["info"]["title"], "Leasehold");
    assert!(spec["info"]["version"].is_string());
    assert!(spec["paths"].as_object().is_some_and(|p| !p.is_empty()));
}

#[tokio::test]
async fn the_description_lists_every_operation_of_the_contract_and_no_other() {
    let app = spawn_app().await;
    let spec = description(&app).await;
    let expected: BTreeSet<(String, String)> = OPERATIONS
        .iter()
        .map(|(method, path)| (method.to_string(), path.to_string()))
        .collect();
    assert_eq!(described_operations(&spec), expected);
}

/// A concrete path for a described one, with valid names in place of its parameters.
fn concrete(path: &str) -> String {
    path.replace("{pool}", &pool_name())
        .replace("{id}", "item-1")
        .replace("{name}", "counter-1")
}

#[tokio::test]
async fn the_router_serves_each_described_path_with_exactly_the_described_methods() {
    let app = spawn_app().await;
    let spec = description(&app).await;
    for (path, item) in spec["paths"].as_object().expect("paths") {
        let described: BTreeSet<String> = item
            .as_object()
            .expect("a path item")
            .keys()
            .map(|m| m.to_uppercase())
            .collect();
        let url = concrete(path);
        for method in METHODS {
            let request = app
                .request(Method::from_bytes(method.as_bytes()).expect("method"), &url)
                .json(&json!({}));
            let answer = app.send(request).await;
            if described.contains(method) {
                assert_ne!(answer.status, 405, "{method} {path}: {:?}", answer.body);
                let unrouted = answer.status == 404 && answer.body["detail"] == "no such route";
                assert!(!unrouted, "{method} {path} is described but not routed");
            } else {
                assert_eq!(
                    answer.status, 405,
                    "{method} {path} is routed but not described"
                );
                let allowed: BTreeSet<String> = answer
                    .header("allow")
                    .unwrap_or_default()
                    .split(',')
                    .map(|m| m.trim().to_owned())
                    .filter(|m| !m.is_empty() && m != "HEAD")
                    .collect();
                assert_eq!(allowed, described, "Allow of {path}");
            }
        }
    }
}

#[tokio::test]
async fn every_reference_in_the_description_resolves() {
    let app = spawn_app().await;
    let spec = description(&app).await;
    let mut pending = vec![&spec];
    let mut references = 0;
    while let Some(value) = pending.pop() {
        match value {
            Value::Object(map) => {
                if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
                    let pointer = reference.strip_prefix('#').expect("a local reference");
                    assert!(
                        spec.pointer(pointer).is_some(),
                        "{reference} resolves nowhere"
                    );
                    references += 1;
                }
                pending.extend(map.values());
            }
            Value::Array(values) => pending.extend(values),
            _ => {}
        }
    }
    assert!(references > 50, "only {references} references");
}

#[tokio::test]
async fn every_problem_code_is_described_under_its_status() {
    let app = spawn_app().await;
    let spec = description(&app).await;
    let mut described = BTreeSet::new();
    for (name, schema) in at(&spec, "/components/schemas")
        .as_object()
        .expect("schemas")
    {
        let Some(status) = name
            .strip_prefix("Problem")
            .and_then(|s| s.parse::<u16>().ok())
        else {
            continue;
        };
        let restriction = &schema["allOf"][1]["properties"];
        assert_eq!(restriction["status"]["const"], status, "{name}");
        for code in restriction["code"]["enum"].as_array().expect("codes") {
            described.insert((status, code.as_str().expect("a code").to_owned()));
        }
    }
    let expected: BTreeSet<(u16, String)> = PROBLEMS
        .iter()
        .map(|(status, code)| (*status, code.to_string()))
        .collect();
    assert_eq!(described, expected);
}

#[tokio::test]
async fn every_v1_operation_describes_its_errors_as_problems() {
    let app = spawn_app().await;
    let spec = description(&app).await;
    for (method, path) in described_operations(&spec) {
        if !path.starts_with("/v1/") {
            continue;
        }
        let operation = &spec["paths"][&path][method.to_lowercase()];
        let responses = operation["responses"].as_object().expect("responses");
        let mut statuses = vec!["400", "401", "429", "500", "503"];
        if path.contains('{') {
            statuses.push("404");
        }
        if method != "GET" {
            statuses.extend(["409", "413", "415"]);
            let parameters = operation["parameters"].as_array().expect("parameters");
            assert!(
                parameters.iter().any(|p| p["name"] == "Idempotency-Key"),
                "{method} {path} takes an Idempotency-Key"
            );
        }
        for status in statuses {
            let response = responses
                .get(status)
                .unwrap_or_else(|| panic!("{method} {path} does not describe {status}"));
            let response = match response["$ref"].as_str() {
                Some(reference) => at(&spec, reference.trim_start_matches('#')),
                None => response,
            };
            assert_eq!(
                response["content"]["application/problem+json"]["schema"]["$ref"],
                format!("#/components/schemas/Problem{status}"),
                "{method} {path} {status}"
            );
        }
        for (status, response) in responses {
            if status.starts_with('2') {
                assert!(
                    response["headers"]["X-Request-Id"].is_object(),
                    "{method} {path} {status} lacks X-Request-Id"
                );
            }
        }
    }
}

#[tokio::test]
async fn names_and_numbers_carry_the_contract_rules() {
    let app = spawn_app().await;
    let spec = description(&app).await;
    let schema = |name: &str| at(&spec, &format!("/components/schemas/{name}")).clone();
    for (name, pattern, max) in [
        ("PoolName", "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", 64),
        ("CounterName", "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", 64),
        ("ItemId", "^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$", 128),
        ("Holder", "^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$", 128),
    ] {
        assert_eq!(schema(name)["pattern"], pattern, "{name}");
        assert_eq!(schema(name)["maxLength"], max, "{name}");
    }
    for (name, min, max) in [
        ("Priority", -1_000_000i64, 1_000_000i64),
        ("DurationMs", 0, 2_592_000_000),
        ("ClaimCount", 1, 100),
        ("DrawCount", 1, 1000),
        ("PageLimit", 1, 1000),
        ("WaitMs", 0, 30_000),
        ("Token", 0, 9_007_199_254_740_991),
    ] {
        assert_eq!(schema(name)["minimum"], min, "{name}");
        assert_eq!(schema(name)["maximum"], max, "{name}");
    }
    // The path parameters refer to those schemas.
    let parameters = at(
        &spec,
        "/paths/~1v1~1pools~1{pool}~1items~1{id}/get/parameters",
    );
    let names: Vec<(&str, &str)> = parameters
        .as_array()
        .expect("parameters")
        .iter()
        .filter(|p| p["in"] == "path")
        .map(|p| {
            (
                p["name"].as_str().unwrap_or_default(),
                p["schema"]["$ref"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("pool", "#/components/schemas/PoolName"),
            ("id", "#/components/schemas/ItemId")
        ]
    );
    // Event ids: the pattern `EventId::parse` accepts exactly (its unit test proves it),
    // for `after` and `Last-Event-ID` wherever the event log takes them.
    assert_eq!(schema("EventId")["pattern"], "^[0-9]{1,19}-[0-9]{1,19}$");
    assert_eq!(
        schema("EventId")["pattern"],
        leasehold::store::EVENT_ID_PATTERN
    );
    for (path, name) in [
        ("/paths/~1v1~1pools~1{pool}~1events/get/parameters", "after"),
        (
            "/paths/~1v1~1pools~1{pool}~1events~1stream/get/parameters",
            "after",
        ),
        (
            "/paths/~1v1~1pools~1{pool}~1events~1stream/get/parameters",
            "Last-Event-ID",
        ),
    ] {
        let parameter = at(&spec, path)
            .as_array()
            .expect("parameters")
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{path} has {name}"));
        assert!(
            parameter["schema"]
                .to_string()
                .contains("\"#/components/schemas/EventId\""),
            "{path} {name}: {parameter:#?}"
        );
    }
    // Time zones are the ones the server knows.
    let zones = schema("TimeZoneName")["enum"].clone();
    for zone in ["UTC", "Europe/Paris", "America/New_York"] {
        assert!(
            zones.as_array().expect("zones").contains(&json!(zone)),
            "{zone}"
        );
    }
}

#[tokio::test]
async fn the_key_is_required_where_the_server_requires_one() {
    let app = spawn_app().await;
    let spec = description(&app).await;
    assert_eq!(spec["security"], json!([{ "bearer": [] }]));
    assert_eq!(
        at(&spec, "/components/securitySchemes/bearer")["scheme"],
        "bearer"
    );
    for (method, path) in described_operations(&spec) {
        let operation = &spec["paths"][&path][method.to_lowercase()];
        if path.starts_with("/v1/") {
            assert!(operation.get("security").is_none(), "{method} {path}");
        } else {
            assert_eq!(operation["security"], json!([]), "{method} {path}");
        }
    }
    // As described: no key, no answer.
    let answer = app.send(app.client.get(app.url("/v1/pools"))).await;
    answer.expect_problem(401, "unauthorized");
    let answer = app.send(app.client.get(app.url("/openapi.json"))).await;
    assert_eq!(answer.status, 200, "the description itself needs no key");
}

#[tokio::test]
async fn integers_written_with_a_decimal_point_are_integers() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a", "b"]).await;
    // JSON Schema's integer includes 2.0 and 1e2, so the server takes them as 2 and 100.
    let answer = app
        .send(
            app.request(Method::POST, &format!("/v1/pools/{pool}/claim"))
                .header("content-type", "application/json")
                .body(r#"{"holder":"h","count":2.0,"lease_ms":1e5}"#),
        )
        .await;
    let leases = answer.expect(200);
    assert_eq!(leases["leases"].as_array().map(Vec::len), Some(2));
    let answer = app
        .send(
            app.request(Method::PUT, &format!("/v1/pools/{pool}/items/c"))
                .header("content-type", "application/json")
                .body(r#"{"data":{},"priority":-3.0,"expected_version":0.0}"#),
        )
        .await;
    let item = answer.expect(201);
    assert_eq!(item["priority"], -3);
    // A fraction is still no integer.
    let answer = app
        .send(
            app.request(Method::POST, &format!("/v1/pools/{pool}/claim"))
                .header("content-type", "application/json")
                .body(r#"{"holder":"h","count":1.5}"#),
        )
        .await;
    answer.expect_problem(400, "invalid_request");
}

#[tokio::test]
async fn numbers_are_read_exactly() {
    let app = spawn_app().await;
    let pool = pool_name();
    // 2128831676487675 is below 2^53, so a float holds it exactly; a reader that rounds
    // 16-digit numbers loosely makes it 2128831676487675.25, which is no integer.
    let answer = app
        .send(
            app.request(Method::PUT, &format!("/v1/pools/{pool}/items/a"))
                .header("content-type", "application/json")
                .body(r#"{"data":{"x":2128831676487675.0,"y":0.30000000000000004}}"#),
        )
        .await;
    answer.expect(201);
    let lease = claim_item(&app, &pool, "a", "h").await;
    let token = lease["token"].as_u64().expect("a token");
    let answer = app
        .send(
            app.request(Method::POST, &action_path(&pool, "a", "renew"))
                .header("content-type", "application/json")
                .body(format!(r#"{{"holder":"h","token":{token}.0}}"#)),
        )
        .await;
    assert_eq!(answer.expect(200)["token"], token);
    let text = app
        .request(Method::GET, &format!("/v1/pools/{pool}/items/a"))
        .send()
        .await
        .expect("GET the item")
        .text()
        .await
        .expect("its text");
    assert!(
        text.contains(r#""x":2128831676487675.0"#) && text.contains(r#""y":0.30000000000000004"#),
        "{text}"
    );
}

#[tokio::test]
async fn the_docs_page_is_self_contained_html_that_reads_the_description() {
    let app = spawn_app().await;
    let (content_type, page) = app.get_text("/docs").await;
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(page.starts_with("<!doctype html>"), "{}", &page[..40]);
    assert!(page.contains("fetch(\"/openapi.json\")"));
    for outside in ["http://", "https://", "<script src", "<link", "@import"] {
        assert!(
            !page.contains(outside),
            "the page loads something from {outside}"
        );
    }
}
