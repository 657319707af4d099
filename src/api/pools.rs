//! `/v1/pools` and `/v1/pools/{pool}`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use utoipa::ToSchema;

use super::extract::{PathParams, Write};
use super::{no_content, reply};
use crate::error::ApiError;
use crate::model::{self, Pool, PoolList};
use crate::names::{PoolName, Tenant};
use crate::state::AppState;
use crate::store::PoolSettings;
use leasehold_wire::numbers::{DurationMs, EventLogSize, PoolLimit};

/// A pool's settings to set; a field left out keeps its value (or its default, for a new
/// pool).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutPoolBody {
    /// The lease time of a claim that names none (default 30000; 0: no expiry).
    lease_ms: Option<DurationMs>,
    /// The most leases one holder may have at once (default 0: unlimited).
    max_leases_per_holder: Option<PoolLimit>,
    /// Grants after which a lease ending without completion makes the item `dead`
    /// (default 0: unlimited).
    max_attempts: Option<PoolLimit>,
    /// Require a precondition (If-Match, If-None-Match, expected_version or Lease-Token)
    /// on item writes (default false).
    require_if_match: Option<bool>,
    /// How many of its latest events the pool's log keeps (default 10000; 0: no log).
    /// A smaller number drops the oldest at once.
    max_events: Option<EventLogSize>,
}

/// Creates a pool, or changes its settings.
#[utoipa::path(
    put,
    path = "/v1/pools/{pool}",
    tag = "pools",
    params(("pool" = PoolName, Path)),
    request_body(content = Option<PutPoolBody>, description = "Settings to set (all optional; no body keeps them all)"),
    responses(
        (status = 201, description = "Created", body = Pool),
        (status = 200, description = "Changed", body = Pool),
    )
)]
pub async fn put_pool(
    State(app): State<AppState>,
    tenant: Tenant,
    PathParams(pool): PathParams<PoolName>,
    write: Write<PutPoolBody>,
) -> Result<Response, ApiError> {
    let body = write.body;
    let settings = PoolSettings {
        lease_ms: body.lease_ms.map(DurationMs::get),
        max_leases_per_holder: body.max_leases_per_holder.map(PoolLimit::get),
        max_attempts: body.max_attempts.map(PoolLimit::get),
        require_if_match: body.require_if_match,
        max_events: body.max_events.map(EventLogSize::get),
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
    Ok(reply(status, &model::pool(&pool, view), answer.replayed))
}

/// A pool's settings, counts by state and stats.
#[utoipa::path(
    get,
    path = "/v1/pools/{pool}",
    tag = "pools",
    params(("pool" = PoolName, Path)),
    responses(
        (status = 200, description = "The pool", body = Pool),
        (status = 404, description = "`not_found`: no such pool"),
    )
)]
pub async fn get_pool(
    State(app): State<AppState>,
    tenant: Tenant,
    PathParams(pool): PathParams<PoolName>,
) -> Result<Response, ApiError> {
    let view = app.store().pool(&tenant, &pool).get_pool().await?;
    Ok(reply(StatusCode::OK, &model::pool(&pool, view), false))
}

/// This tenant's pools, by name, with their counts.
#[utoipa::path(
    get,
    path = "/v1/pools",
    tag = "pools",
    responses((status = 200, description = "The pools", body = PoolList))
)]
pub async fn list_pools(State(app): State<AppState>, tenant: Tenant) -> Result<Response, ApiError> {
    let pools = app.store().list_pools(&tenant).await?;
    Ok(reply(StatusCode::OK, &PoolList { pools }, false))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// Deletes a pool and its items (its token counter is kept, so a pool made again under
/// the same name never hands out a lower token).
#[utoipa::path(
    delete,
    path = "/v1/pools/{pool}",
    tag = "pools",
    params(("pool" = PoolName, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "`not_found`: no such pool"),
    )
)]
pub async fn delete_pool(
    State(app): State<AppState>,
    tenant: Tenant,
    PathParams(pool): PathParams<PoolName>,
    write: Write<Empty>,
) -> Result<Response, ApiError> {
    let answer = app
        .store()
        .pool(&tenant, &pool)
        .delete_pool(write.idempotency.as_ref())
        .await?;
    Ok(no_content(answer.replayed))
}
