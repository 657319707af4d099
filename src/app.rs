//! The application: the router with its layers over the [`AppState`], serving with
//! graceful shutdown on Ctrl-C or SIGTERM.
//!
//! Serving guards the replica against connections that hold it up: a request's head must
//! arrive within the header timeout of the connection being ready for one (a new one, or
//! a kept-alive one between requests), else the connection is closed; open connections
//! are capped, and one over the cap is closed at once rather than left waiting; on
//! shutdown, requests under way get a grace period to finish, then every connection is
//! closed. (A body's own timeout is `api::extract`'s: 408.)

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::Response;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::auth::Auth;
use crate::config::{ServeLimits, Settings};
use crate::metrics::Metrics;
use crate::state::AppState;
use crate::store::{StartError, Store};

/// The application: its router, the store whose waits end when it stops, the limits it
/// serves connections with, and who it sweeps pools for.
pub struct App {
    router: Router,
    store: Store,
    limits: ServeLimits,
    auth: Auth,
    sweep_interval: Duration,
}

impl App {
    /// Serves until `shutdown` completes; then long polls and event streams answer at once,
    /// requests under way have the grace period to finish, and every connection closes.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let limits = self.limits;
        let open = Arc::new(Semaphore::new(limits.max_connections));
        let graceful = GracefulShutdown::new();
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout);
        let mut connections = tokio::task::JoinSet::new();
        let sweeper = (!self.sweep_interval.is_zero()).then(|| {
            tokio::spawn(sweep_forever(
                self.store.clone(),
                self.auth.clone(),
                self.sweep_interval,
            ))
        });
        tokio::pin!(shutdown);
        loop {
            // Reap the connections that have ended.
            while connections.try_join_next().is_some() {}
            let stream = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of file descriptors, say: wait a little rather than spin.
                        tracing::warn!("accepting a connection failed: {e}");
                        tokio::time::sleep(ACCEPT_RETRY).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let Ok(slot) = Arc::clone(&open).try_acquire_owned() else {
                // Over the cap: closed at once, rather than left to wait behind the others.
                drop(stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            let service = TowerToHyperService::new(self.router.clone());
            let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
            connections.spawn(async move {
                let _ = connection.await;
                drop(slot);
            });
        }
        drop(listener);
        if let Some(sweeper) = sweeper {
            sweeper.abort();
        }
        self.store.stop_waiting();
        if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(
                "closing {} connections still open after the {:?} grace period",
                connections.len(),
                limits.shutdown_grace
            );
        }
        connections.shutdown().await;
        Ok(())
    }
}

/// How long to wait after a failed accept before accepting again.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);

/// Connects to Redis (checking its settings and loading the scripts) and builds the app.
pub async fn build(settings: &Settings) -> Result<App, StartError> {
    let metrics = Metrics::new();
    let store = Store::connect(settings.store.clone(), metrics.clone()).await?;
    let state = AppState::new(
        store,
        metrics.clone(),
        settings.auth.clone(),
        settings.max_body_bytes,
        settings.rate_limit,
        settings.stream_max,
        settings.serve.body_timeout,
    );
    let router = crate::api::router()
        .merge(crate::ui::router())
        .method_not_allowed_fallback(crate::api::method_not_allowed)
        .with_state(state.clone())
        // Bodies are read and limited by `api::extract::Write`, which answers problem+json.
        .layer(DefaultBodyLimit::disable())
        // Runs after routing (per route), so it sees the route matched.
        .layer(middleware::from_fn_with_state(
            metrics,
            crate::metrics::track,
        ))
        .layer(middleware::from_fn(request_span));
    Ok(App {
        router,
        store: state.store().clone(),
        limits: settings.serve,
        auth: settings.auth.clone(),
        sweep_interval: settings.sweep_interval,
    })
}

/// Sweeps every pool of every tenant the key file names, once an `interval`, one replica
/// at a time across them all: what time alone does to pools nobody calls on (expired
/// leases applied, finished items past their keep time and expired answers removed).
async fn sweep_forever(store: Store, auth: Auth, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match store.sweep_pools(&auth.tenants(), interval).await {
            Ok(Some(pools)) => tracing::debug!(pools, "swept the pools"),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "sweeping the pools failed; trying again later"),
        }
    }
}

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The caller's `X-Request-Id` if it is a sensible one (1 to 128 visible ASCII characters),
/// else a new UUID.
fn request_id(request: &Request) -> HeaderValue {
    request
        .headers()
        .get(X_REQUEST_ID)
        .filter(|v| {
            let bytes = v.as_bytes();
            (1..=128).contains(&bytes.len()) && bytes.iter().all(|b| b.is_ascii_graphic())
        })
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::try_from(uuid::Uuid::new_v4().to_string())
                .unwrap_or(HeaderValue::from_static("-"))
        })
}

/// Middleware: one span per request, named by its request id (echoed in `X-Request-Id`),
/// so every log line of the request carries it; the request itself is logged at debug
/// (warn when it answers 5xx).
async fn request_span(mut request: Request, next: Next) -> Response {
    let id = request_id(&request);
    request.headers_mut().insert(X_REQUEST_ID, id.clone());
    let span = tracing::info_span!(
        "request",
        id = id.to_str().unwrap_or("-"),
        method = %request.method(),
        path = request.uri().path(),
    );
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    let micros = started.elapsed().as_micros() as u64;
    span.in_scope(|| {
        if status >= 500 {
            tracing::warn!(status, micros, "answered");
        } else {
            tracing::debug!(status, micros, "answered");
        }
    });
    response.headers_mut().insert(X_REQUEST_ID, id);
    response
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
