//! Operations endpoints: liveness and readiness.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::error::ApiError;

/// The process is alive.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Redis is reachable, its settings still hold and the scripts are loaded.
pub async fn readyz(State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    app.store()
        .ready()
        .await
        .map_err(ApiError::BackendUnavailable)?;
    Ok(Json(json!({"status": "ready"})))
}
