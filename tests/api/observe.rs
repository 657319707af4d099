//! Observing a replica: `GET /metrics` (requests, conflicts by route and code, latency,
//! expired leases, Redis connections) and request ids in `X-Request-Id`.
//!
//! Each app has its own recorder: what one app of this test binary counts, another does
//! not see.

use std::time::Duration;

use crate::helpers::*;
use serde_json::json;

/// The body of `GET /metrics`, checking its content type.
async fn scrape(app: &TestApp) -> String {
    let (content_type, text) = app.get_text("/metrics").await;
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    text
}

/// The value of the series `name` whose labels include every one of `labels` (0 when no
/// such series is there yet).
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .filter(|(series, _)| {
            let (series_name, series_labels) = series.split_once('{').unwrap_or((series, ""));
            series_name == name
                && labels
                    .iter()
                    .all(|(k, v)| series_labels.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|(_, value)| value.parse::<f64>().expect("a number"))
        .sum()
}

const CLAIM_ROUTE: &str = "/v1/pools/{pool}/items/{id}/claim";

#[tokio::test]
async fn metrics_count_requests_and_conflicts_by_route_and_code() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a"]).await;
    let before = scrape(&app).await;

    claim_item(&app, &pool, "a", "first").await;
    app.post(
        &action_path(&pool, "a", "claim"),
        json!({"holder": "second"}),
    )
    .await
    .expect_problem(409, "already_leased");
    app.post(
        &action_path(&pool, "a", "claim"),
        json!({"holder": "third"}),
    )
    .await
    .expect_problem(409, "already_leased");

    let after = scrape(&app).await;
    let grew = |name: &str, labels: &[(&str, &str)]| {
        sample(&after, name, labels) - sample(&before, name, labels)
    };
    let conflicts = [("route", CLAIM_ROUTE), ("code", "already_leased")];
    assert!(
        grew("leasehold_conflicts_total", &conflicts) >= 2.0,
        "{after}"
    );
    let refused = [
        ("method", "POST"),
        ("route", CLAIM_ROUTE),
        ("status", "409"),
    ];
    assert!(grew("leasehold_http_requests_total", &refused) >= 2.0);
    let granted = [
        ("method", "POST"),
        ("route", CLAIM_ROUTE),
        ("status", "200"),
    ];
    assert!(grew("leasehold_http_requests_total", &granted) >= 1.0);
    // Latency histograms: one observation per request, one per script call.
    let timed = [("method", "POST"), ("route", CLAIM_ROUTE)];
    assert!(grew("leasehold_http_request_duration_seconds_count", &timed) >= 3.0);
    assert!(
        sample(
            &after,
            "leasehold_http_request_duration_seconds_bucket",
            &[("route", CLAIM_ROUTE), ("le", "+Inf")]
        ) >= 3.0
    );
    let script = [("script", "claim_item")];
    assert!(grew("leasehold_redis_call_duration_seconds_count", &script) >= 3.0);
    // Answers that are not refusals by the data are not conflicts.
    assert_eq!(
        sample(
            &after,
            "leasehold_conflicts_total",
            &[("code", "invalid_request")]
        ),
        0.0
    );
    assert!(sample(&after, "leasehold_redis_connections", &[("state", "open")]) >= 1.0);
}

#[tokio::test]
async fn a_route_that_does_not_exist_is_counted_as_unmatched() {
    let app = spawn_app().await;
    let labels = [("route", "unmatched"), ("status", "404")];
    let before = sample(
        &scrape(&app).await,
        "leasehold_http_requests_total",
        &labels,
    );
    app.get("/v1/no/such/route")
        .await
        .expect_problem(404, "not_found");
    let after = sample(
        &scrape(&app).await,
        "leasehold_http_requests_total",
        &labels,
    );
    assert!(after - before >= 1.0);
}

#[tokio::test]
async fn leases_ended_by_expiry_are_counted() {
    let app = spawn_app().await;
    let pool = pool_name();
    app.add_items(&pool, &["a", "b"]).await;
    for id in ["a", "b"] {
        let lease = app
            .post(
                &action_path(&pool, id, "claim"),
                json!({"holder": "sleepy", "lease_ms": 50}),
            )
            .await
            .expect(200);
        assert_eq!(lease["holder"], "sleepy");
    }
    let before = sample(&scrape(&app).await, "leasehold_leases_expired_total", &[]);
    let granted_at = redis_now_ms();
    wait_for(Duration::from_secs(5), "the leases to expire", || {
        redis_now_ms() > granted_at + 50
    });

    // Reading the pool ends both expired leases (the reclaim of get_pool).
    let pool_view = app.get(&format!("/v1/pools/{pool}")).await.expect(200);
    assert_eq!(pool_view["counts"]["available"], 2);
    let after = sample(&scrape(&app).await, "leasehold_leases_expired_total", &[]);
    assert!(after - before >= 2.0, "before {before}, after {after}");
}

#[tokio::test]
async fn a_request_id_is_echoed_or_made() {
    let app = spawn_app().await;
    let given = app
        .send(
            app.request(reqwest::Method::GET, "/v1/pools")
                .header("x-request-id", "order-4711.retry-2"),
        )
        .await;
    assert_eq!(given.header("x-request-id"), Some("order-4711.retry-2"));

    let made = app.get("/v1/pools").await;
    let id = made.header("x-request-id").expect("an id");
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    let another = app.get("/v1/pools").await;
    assert_ne!(another.header("x-request-id"), Some(id));

    // Too long, or with spaces: replaced by a new one rather than logged as given.
    for bad in ["x".repeat(129), "two words".to_owned()] {
        let replaced = app
            .send(
                app.request(reqwest::Method::GET, "/v1/pools")
                    .header("x-request-id", bad.as_str()),
            )
            .await;
        let id = replaced.header("x-request-id").expect("an id");
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{bad} -> {id}");
    }

    // Errors carry one too.
    let problem = app
        .send(app.client.get(app.url("/v1/pools")).bearer_auth("wrong"))
        .await;
    assert_eq!(problem.status, 401);
    assert!(problem.header("x-request-id").is_some());
}

/// Apps in one process count apart: each has its own recorder.
#[tokio::test]
async fn each_app_counts_its_own_requests() {
    let first = spawn_app().await;
    let second = replica_of(&first, Options::default()).await;
    for _ in 0..3 {
        first.get("/healthz").await.expect(200);
    }
    let healthz = [("route", "/healthz"), ("status", "200")];
    assert_eq!(
        sample(
            &scrape(&first).await,
            "leasehold_http_requests_total",
            &healthz
        ),
        3.0
    );
    assert_eq!(
        sample(
            &scrape(&second).await,
            "leasehold_http_requests_total",
            &healthz
        ),
        0.0
    );
}

/// A stranger's made-up method names become no label: whatever is sent, the method label
/// takes its value from a fixed set, so `/metrics` does not grow with what is sent.
#[tokio::test]
async fn any_method_name_is_counted_under_one_label() {
    let app = spawn_app().await;
    let odd = |n: usize| {
        let method = reqwest::Method::from_bytes(format!("M{n}{}", "Q".repeat(5000)).as_bytes())
            .expect("a method token");
        app.request(method, "/nowhere")
    };
    app.send(odd(0)).await.expect_problem(404, "not_found");
    // Twice, so the series of the scrape itself are there before the one compared with.
    scrape(&app).await;
    let before = scrape(&app).await;
    for n in 1..20 {
        app.send(odd(n)).await.expect_problem(404, "not_found");
    }
    let after = scrape(&app).await;
    assert!(!after.contains("QQQQ"), "a method name became a label");
    assert_eq!(
        sample(
            &after,
            "leasehold_http_requests_total",
            &[("method", "other")]
        ),
        20.0
    );
    // Only the counts changed, not the series: the size stays within a few digits.
    assert!(
        after.len() < before.len() + 200,
        "/metrics grew from {} to {} bytes",
        before.len(),
        after.len()
    );
}

/// `/readyz` answers 503 while Redis refuses writes for want of memory (`noeviction` at
/// `maxmemory`), saying so, and ready again once it has room; reads answer meanwhile.
#[tokio::test]
async fn readyz_is_not_ready_while_redis_is_out_of_memory() {
    // With a rate limit, so that every request passes the limiter's function first.
    let (redis, app) = app_on_own_redis_with(Options {
        rate_limit: Some(10_000),
        ..Options::default()
    })
    .await;
    assert_eq!(app.get("/readyz").await.status, 200);
    let full = pool_name();
    app.add_items(&full, &["a"]).await;
    let mut admin = redis.connection();
    let fillers: Vec<String> = (0..16).map(|i| format!("filler:{i}")).collect();
    for name in &fillers {
        let _: () = redis::cmd("SET")
            .arg(name)
            .arg("x".repeat(64 * 1024))
            .query(&mut admin)
            .expect("SET a filler");
    }
    // Redis now holds more than it may: it refuses every write that could add memory.
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query(&mut admin)
        .expect("INFO");
    let used: u64 = info
        .lines()
        .find_map(|line| line.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("used_memory");
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(used - 512 * 1024)
        .query(&mut admin)
        .expect("CONFIG SET maxmemory");

    let problem = app
        .get("/readyz")
        .await
        .expect_problem(503, "backend_unavailable");
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("out of memory"), "{detail}");
    let pool = pool_name();
    app.put(&format!("/v1/pools/{pool}"), json!({}))
        .await
        .expect_problem(503, "backend_unavailable");
    // A full Redis still answers what is in it: the reads go on (the operator needs them
    // most now), the writes wait for room.
    for path in [
        format!("/v1/pools/{full}"),
        format!("/v1/pools/{full}/items/a"),
        format!("/v1/pools/{full}/items"),
        format!("/v1/pools/{full}/events"),
        "/v1/pools".to_owned(),
    ] {
        assert_eq!(app.get(&path).await.status, 200, "GET {path}");
    }
    app.post(&format!("/v1/pools/{full}/claim"), json!({"holder": "w"}))
        .await
        .expect_problem(503, "backend_unavailable");

    let _: () = redis::cmd("DEL")
        .arg(&fillers)
        .query(&mut admin)
        .expect("DEL");
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(0)
        .query(&mut admin)
        .expect("CONFIG SET maxmemory 0");
    assert_eq!(app.get("/readyz").await.status, 200);
}
