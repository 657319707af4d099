//! Operations endpoints: liveness, readiness and metrics.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::reply;
use crate::error::ApiError;
use crate::model::Status;
use crate::state::AppState;
use crate::store::NotReady;

/// The process is alive.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "Alive: `{\"status\": \"ok\"}`", body = Status))
)]
pub async fn healthz() -> Response {
    reply(
        axum::http::StatusCode::OK,
        &Status {
            status: "ok".to_owned(),
        },
        false,
    )
}

/// Redis is reachable, its settings still hold and the scripts are loaded.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready: `{\"status\": \"ready\"}`", body = Status),
        (status = 503, description = "`backend_unavailable`: Redis is out of reach, its settings changed, the scripts could not be loaded, or it refuses writes for lack of memory (which `detail` says)"),
    )
)]
pub async fn readyz(State(app): State<AppState>) -> Result<Response, ApiError> {
    app.store()
        .ready()
        .await
        .map_err(|not_ready| match not_ready {
            NotReady::OutOfMemory => ApiError::NotReady(not_ready.to_string()),
            NotReady::Unavailable(cause) => ApiError::BackendUnavailable(cause),
        })?;
    Ok(reply(
        axum::http::StatusCode::OK,
        &Status {
            status: "ready".to_owned(),
        },
        false,
    ))
}

/// Prometheus metrics of this replica: requests, conflicts, latency, Redis calls. No key
/// is needed: routes are labelled as declared, never with pool, item or tenant names.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses(
        (status = 200, description = "The Prometheus text format (0.0.4)", content_type = "text/plain", body = String),
    )
)]
pub async fn metrics(State(app): State<AppState>) -> Response {
    app.store().record_connection_gauges();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        app.metrics().render(),
    )
        .into_response()
}
