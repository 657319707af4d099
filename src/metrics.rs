//! Prometheus metrics, served at `GET /metrics`: requests by route and status, conflicts
//! by route and code (where contention is), request and Redis-call latency, leases ended
//! by expiry, Redis connections and calls in flight.
//!
//! The recorder is process-wide (the `metrics` facade has one): every app built in one
//! process reports into it. Labels are routes as declared (`/v1/pools/{pool}/claim`),
//! never pool, item or tenant names, so the number of series stays bounded.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use metrics::SharedString;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets in seconds, from a cache hit on loopback to the slowest timeout.
const BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// How often histogram samples are folded into their buckets.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

pub const REQUESTS: &str = "leasehold_http_requests_total";
pub const REQUEST_SECONDS: &str = "leasehold_http_request_duration_seconds";
pub const CONFLICTS: &str = "leasehold_conflicts_total";
pub const REDIS_SECONDS: &str = "leasehold_redis_call_duration_seconds";
pub const REDIS_ERRORS: &str = "leasehold_redis_errors_total";
pub const REDIS_IN_FLIGHT: &str = "leasehold_redis_calls_in_flight";
pub const REDIS_CONNECTIONS: &str = "leasehold_redis_connections";
pub const LEASES_EXPIRED: &str = "leasehold_leases_expired_total";

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder on first use; `None` if another recorder was
/// installed first (then `/metrics` answers 404).
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), BUCKETS)
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            describe();
            // Histograms keep every sample until upkeep folds them into their buckets:
            // without a scrape, memory would grow with every request.
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("metrics-upkeep".to_owned())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_EVERY);
                        upkeep.run_upkeep();
                    }
                })
                .ok()?;
            Some(handle)
        })
        .as_ref()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        REQUESTS,
        "HTTP requests answered, by method, route and status"
    );
    describe_histogram!(
        REQUEST_SECONDS,
        metrics::Unit::Seconds,
        "Time to answer an HTTP request, by method and route"
    );
    describe_counter!(
        CONFLICTS,
        "Requests refused by the state they met (already_leased, lease_lost, version_conflict, precondition_failed, ...), by route and code"
    );
    describe_histogram!(
        REDIS_SECONDS,
        metrics::Unit::Seconds,
        "Time of one Redis call (a script, with its WAIT if any), by script"
    );
    describe_counter!(
        REDIS_ERRORS,
        "Redis calls that failed: timeout, unavailable (connection or server), or internal"
    );
    describe_gauge!(REDIS_IN_FLIGHT, "Redis calls under way");
    describe_gauge!(
        REDIS_CONNECTIONS,
        "Connections to Redis: open, and (pooled) idle in the pool"
    );
    describe_counter!(
        LEASES_EXPIRED,
        "Leases ended because their time ran out (reclaimed by the call that found them)"
    );
}

/// Middleware: counts and times every request under its route, and counts refusals.
pub async fn track(matched: Option<MatchedPath>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    // Shared, so the three series below take it without copying.
    let route = SharedString::from(Arc::<str>::from(
        matched.as_ref().map_or("unmatched", MatchedPath::as_str),
    ));
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!(REQUEST_SECONDS, "method" => method.clone(), "route" => route.clone())
        .record(started.elapsed().as_secs_f64());
    if let Some(Conflict(code)) = response.extensions().get::<Conflict>() {
        metrics::counter!(CONFLICTS, "route" => route.clone(), "code" => *code).increment(1);
    }
    metrics::counter!(REQUESTS, "method" => method, "route" => route, "status" => status)
        .increment(1);
    response
}

/// The method as a label, without allocating for the methods the API has.
fn method_label(method: &Method) -> SharedString {
    match *method {
        Method::GET => SharedString::const_str("GET"),
        Method::POST => SharedString::const_str("POST"),
        Method::PUT => SharedString::const_str("PUT"),
        Method::PATCH => SharedString::const_str("PATCH"),
        Method::DELETE => SharedString::const_str("DELETE"),
        Method::HEAD => SharedString::const_str("HEAD"),
        ref other => SharedString::from(other.as_str().to_owned()),
    }
}

/// Marks a response as a refusal by the state of the data, with its problem code.
#[derive(Debug, Clone, Copy)]
pub struct Conflict(pub &'static str);
