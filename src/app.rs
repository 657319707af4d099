//! The application: the router with its layers over the [`AppState`], serving with
//! graceful shutdown on Ctrl-C or SIGTERM.

use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::Response;
use tokio::net::TcpListener;
use tracing::Instrument;

use crate::config::Settings;
use crate::metrics::Metrics;
use crate::state::AppState;
use crate::store::{StartError, Store};

/// The application: its router, and the store whose waits end when it stops.
pub struct App {
    router: Router,
    store: Store,
}

impl App {
    /// Serves until `shutdown` completes; then long polls and event streams answer at once
    /// and in-flight requests finish.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let store = self.store;
        axum::serve(listener, self.router)
            .with_graceful_shutdown(async move {
                shutdown.await;
                store.stop_waiting();
            })
            .await
    }
}

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
    );
    let router = crate::api::router()
        .merge(crate::ui::router())
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
    })
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
