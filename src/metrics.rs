//! Prometheus metrics, served at `GET /metrics`: requests by route and status, conflicts
//! by route and code (where contention is), request and Redis-call latency, leases ended
//! by expiry, Redis connections and calls in flight.
//!
//! Each app has its own recorder ([`Metrics`], in the app's state): apps built in one
//! process count apart. Labels are routes as declared (`/v1/pools/{pool}/claim`), never
//! pool, item or tenant names, so the number of series stays bounded.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use metrics::SharedString;
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

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

/// One app's metrics: its own recorder, so apps in one process (the tests') count apart.
/// Cheap to clone. Code that records does so inside [`Metrics::record`].
#[derive(Clone)]
pub struct Metrics(Arc<Recorders>);

struct Recorders {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

impl Metrics {
    pub fn new() -> Metrics {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new())
            .build_recorder();
        let handle = recorder.handle();
        let metrics = Metrics(Arc::new(Recorders { recorder, handle }));
        metrics.record(describe);
        // Histograms keep every sample until upkeep folds them into their buckets:
        // without a scrape, memory would grow with every request. The task ends with the
        // app's metrics.
        let upkeep = Arc::downgrade(&metrics.0);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let mut every = tokio::time::interval(UPKEEP_EVERY);
                loop {
                    every.tick().await;
                    match upkeep.upgrade() {
                        Some(recorders) => recorders.handle.run_upkeep(),
                        None => return,
                    }
                }
            });
        }
        metrics
    }

    /// Runs `record` (which uses the `metrics` macros) against this app's recorder.
    pub fn record<T>(&self, record: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(&self.0.recorder, record)
    }

    /// Everything recorded, in the Prometheus text format.
    pub fn render(&self) -> String {
        self.0.handle.run_upkeep();
        self.0.handle.render()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
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
pub async fn track(
    State(metrics): State<Metrics>,
    matched: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    // Shared, so the three series below take it without copying.
    let route = SharedString::from(Arc::<str>::from(
        matched.as_ref().map_or("unmatched", MatchedPath::as_str),
    ));
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let conflict = response.extensions().get::<Conflict>().copied();
    metrics.record(|| {
        metrics::histogram!(REQUEST_SECONDS, "method" => method.clone(), "route" => route.clone())
            .record(started.elapsed().as_secs_f64());
        if let Some(Conflict(code)) = conflict {
            metrics::counter!(CONFLICTS, "route" => route.clone(), "code" => code).increment(1);
        }
        metrics::counter!(REQUESTS, "method" => method, "route" => route, "status" => status)
            .increment(1);
    });
    response
}

/// The method as a label, from a fixed set.
fn method_label(method: &Method) -> SharedString {
    match *method {
        Method::GET => SharedString::const_str("GET"),
        Method::POST => SharedString::const_str("POST"),
        Method::PUT => SharedString::const_str("PUT"),
        Method::PATCH => SharedString::const_str("PATCH"),
        Method::DELETE => SharedString::const_str("DELETE"),
        Method::HEAD => SharedString::const_str("HEAD"),
        Method::OPTIONS => SharedString::const_str("OPTIONS"),
        // Any other name a caller sends folds into one label: label values come from a
        // fixed set, so what strangers send cannot grow `/metrics`.
        _ => SharedString::const_str("other"),
    }
}

/// Marks a response as a refusal by the state of the data, with its problem code.
#[derive(Debug, Clone, Copy)]
pub struct Conflict(pub &'static str);
