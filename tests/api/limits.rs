//! Per-tenant rate limits: kept in Redis (GCRA), so every replica counts against one
//! limit; over it, 429 `rate_limited` with Retry-After; one tenant over its limit never
//! refuses another tenant's requests.

use std::time::{Duration, Instant};

use crate::helpers::*;

/// An app that lets each tenant make `per_second` requests a second, `burst` at once.
async fn limited_app(per_second: u32, burst: u32) -> TestApp {
    spawn_app_with(Options {
        rate_limit: Some(per_second),
        rate_burst: Some(burst),
        ..Options::default()
    })
    .await
}

/// Sends `n` requests one after another as the app's tenant, round-robin over `apps`;
/// returns each status and the time it took to send them all.
async fn statuses(apps: &[&TestApp], n: usize) -> (Vec<u16>, Duration) {
    let started = Instant::now();
    let mut statuses = Vec::new();
    for i in 0..n {
        let reply = apps[i % apps.len()].get("/v1/pools").await;
        if reply.status == 429 {
            assert_eq!(reply.code(), "rate_limited", "{:#?}", reply.body);
            assert_eq!(
                reply.header("content-type"),
                Some("application/problem+json")
            );
            let retry_after: u64 = reply
                .header("retry-after")
                .and_then(|v| v.parse().ok())
                .expect("Retry-After in seconds");
            assert!((1..=2).contains(&retry_after), "Retry-After {retry_after}");
        }
        statuses.push(reply.status.as_u16());
    }
    (statuses, started.elapsed())
}

/// The most requests a limit of `per_second`, `burst` at once, may admit over `elapsed`.
fn most_admitted(per_second: u32, burst: u32, elapsed: Duration) -> usize {
    burst as usize + (elapsed.as_secs_f64() * f64::from(per_second)).ceil() as usize
}

#[tokio::test]
async fn a_tenant_over_its_limit_gets_429_with_retry_after_then_is_admitted_again() {
    let app = limited_app(1, 3).await;
    let (statuses, elapsed) = statuses(&[&app], 10).await;
    assert_eq!(statuses[..3], [200, 200, 200], "the burst is admitted");
    let admitted = statuses.iter().filter(|&&s| s == 200).count();
    assert!(
        admitted <= most_admitted(1, 3, elapsed),
        "{admitted} admitted in {elapsed:?}: {statuses:?}"
    );
    assert!(
        statuses.iter().all(|&s| s == 200 || s == 429),
        "{statuses:?}"
    );
    if elapsed < Duration::from_secs(6) {
        assert!(statuses.contains(&429), "{statuses:?} in {elapsed:?}");
    }

    // Admitted again once the interval has passed (polled, bounded).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let reply = app.get("/v1/pools").await;
        if reply.status == 200 {
            break;
        }
        assert_eq!(reply.status, 429);
        assert!(Instant::now() < deadline, "never admitted again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn replicas_share_one_limit() {
    let first = limited_app(1, 4).await;
    let second = replica_of(
        &first,
        Options {
            rate_limit: Some(1),
            rate_burst: Some(4),
            ..Options::default()
        },
    )
    .await;
    let (statuses, elapsed) = statuses(&[&first, &second], 12).await;
    let admitted = statuses.iter().filter(|&&s| s == 200).count();
    // Each replica alone would admit 4 at once: together they admit 4, not 8.
    assert!(
        admitted <= most_admitted(1, 4, elapsed),
        "{admitted} admitted in {elapsed:?}: {statuses:?}"
    );
    assert_eq!(statuses[..4], [200, 200, 200, 200]);
}

#[tokio::test]
async fn one_tenant_over_its_limit_never_refuses_another() {
    let app = limited_app(2, 3).await;
    let started = Instant::now();
    let mut refused = 0;
    for i in 0..20 {
        let flood = app
            .send(
                app.client
                    .get(app.url("/v1/pools"))
                    .bearer_auth(&app.other_key),
            )
            .await;
        if flood.status == 429 {
            refused += 1;
        }
        // The first tenant's own three requests are within its burst, whatever the
        // other one does.
        if i % 8 == 0 {
            let mine = app.get("/v1/pools").await;
            assert_eq!(mine.status, 200, "the quiet tenant: {:#?}", mine.body);
        }
    }
    // 20 requests at 2/s (3 at once) are limited unless they took 8 s or more.
    if started.elapsed() < Duration::from_secs(8) {
        assert!(refused > 0, "the flooding tenant was never limited");
    }
}

#[tokio::test]
async fn without_a_limit_nothing_is_refused() {
    let app = spawn_app().await;
    let (statuses, _) = statuses(&[&app], 30).await;
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
}
