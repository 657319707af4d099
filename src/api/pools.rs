//! `/v1/pools` and `/v1/pools/{pool}`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::extract::{PathParams, Write};
use super::{check_duration, check_range, no_content, reply};
use crate::app::AppState;
use crate::error::ApiError;
use crate::model::Pool;
use crate::names::{PoolName, Tenant};
use crate::store::PoolSettings;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutPoolBody {
    lease_ms: Option<i64>,
    max_leases_per_holder: Option<i64>,
    max_attempts: Option<i64>,
    require_if_match: Option<bool>,
}

const MAX_LIMIT: i64 = 1_000_000;

pub async fn put_pool(
    State(app): State<AppState>,
    tenant: Tenant,
    PathParams(pool): PathParams<String>,
    write: Write<PutPoolBody>,
) -> Result<Response, ApiError> {
    let pool = PoolName::parse("pool", &pool)?;
    let body = write.body;
    check_range(
        "max_leases_per_holder",
        body.max_leases_per_holder,
        0,
        MAX_LIMIT,
    )?;
    check_range("max_attempts", body.max_attempts, 0, MAX_LIMIT)?;
    let settings = PoolSettings {
        lease_ms: check_duration("lease_ms", body.lease_ms)?,
        max_leases_per_holder: body.max_leases_per_holder.map(|v| v as u64),
        max_attempts: body.max_attempts.map(|v| v as u64),
        require_if_match: body.require_if_match,
    };
    let answer = app
        .store()
        .pool(&tenant, &pool)
        .put_pool(write.idempotency.as_ref(), &settings)
        .await?;
    let (view, created) = answer.value;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(reply(status, &Pool::new(&pool, view), answer.replayed))
}

pub async fn get_pool(
    State(app): State<AppState>,
    tenant: Tenant,
    PathParams(pool): PathParams<String>,
) -> Result<Response, ApiError> {
    let pool = PoolName::parse("pool", &pool)?;
    let view = app.store().pool(&tenant, &pool).get_pool().await?;
    Ok(reply(StatusCode::OK, &Pool::new(&pool, view), false))
}

pub async fn list_pools(State(app): State<AppState>, tenant: Tenant) -> Result<Response, ApiError> {
    let pools = app.store().list_pools(&tenant).await?;
    Ok(reply(StatusCode::OK, &json!({ "pools": pools }), false))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

pub async fn delete_pool(
    State(app): State<AppState>,
    tenant: Tenant,
    PathParams(pool): PathParams<String>,
    write: Write<Empty>,
) -> Result<Response, ApiError> {
    let pool = PoolName::parse("pool", &pool)?;
    let answer = app
        .store()
        .pool(&tenant, &pool)
        .delete_pool(write.idempotency.as_ref())
        .await?;
    Ok(no_content(answer.replayed))
}
