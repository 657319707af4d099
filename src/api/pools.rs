//! `/v1/pools` and `/v1/pools/{pool}`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use utoipa::ToSchema;

use super::extract::{PathParams, QueryParams, Write};
use super::{no_content, reply};
use crate::error::ApiError;
use crate::model::{self, Pool, PoolList, TenantInfo};
use crate::names::{PoolName, Tenant};
use crate::state::AppState;
use crate::store::PoolSettings;
use leasehold_wire::numbers::{DurationMs, EventLogSize, PageLimit, PoolLimit};
use utoipa::IntoParams;

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
    /// How long a done item is kept, in ms, before it is removed (a `removed` event):
    /// default 604800000 (7 days); 0: removed on completion; null: kept for ever.
    #[serde(default, deserialize_with = "super::extract::present")]
    #[schema(value_type = Option<DurationMs>, nullable)]
    keep_done_ms: Option<Option<DurationMs>>,
    /// How long a dead item is kept, in ms: default 2592000000 (30 days); 0: removed when
    /// it dies; null: kept for ever.
    #[serde(default, deserialize_with = "super::extract::present")]
    #[schema(value_type = Option<DurationMs>, nullable)]
    keep_dead_ms: Option<Option<DurationMs>>,
    /// Pause (true) or resume (false) the pool: while paused, claims grant nothing (a
    /// claim answers an empty list with `paused: true`; long-poll claims wait for the
    /// resume), claiming a named item is 409 `pool_paused`; renewals, releases,
    /// completions and adds go on. Recorded in the events (`paused`, `resumed`).
    paused: Option<bool>,
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
        (status = 409, description = "`quota_exceeded`: the tenant has `max_pools_per_tenant` pools already (`quota`, `limit`, `usage`)"),
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
        keep_done_ms: body.keep_done_ms.map(|keep| keep.map(DurationMs::get)),
        keep_dead_ms: body.keep_dead_ms.map(|keep| keep.map(DurationMs::get)),
        paused: body.paused,
    };
    let answer = app
        .store()
        .pool(&tenant, &pool)
        .put_pool(write.idempotency.as_ref(), &settings, &app.quotas(&tenant))
        .await?;
    let (view, created) = answer.value;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let pool = model::pool(&pool, view, &app.quotas(&tenant));
    Ok(reply(status, &pool, answer.replayed))
}

/// A pool's settings, counts by state, stats, and what it holds against its limits.
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
    let pool = model::pool(&pool, view, &app.quotas(&tenant));
    Ok(reply(StatusCode::OK, &pool, false))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PoolsQuery {
    /// Start after this pool name (the previous page's `next_after`); without it, from
    /// the first by name.
    after: Option<PoolName>,
    /// Default 100.
    limit: Option<PageLimit>,
}

/// A page of this tenant's pools, by name, with their counts. Each page costs Redis work
/// in proportion to its size, however many pools the tenant has.
#[utoipa::path(
    get,
    path = "/v1/pools",
    tag = "pools",
    params(PoolsQuery),
    responses((status = 200, description = "A page of the pools", body = PoolList))
)]
pub async fn list_pools(
    State(app): State<AppState>,
    tenant: Tenant,
    QueryParams(query): QueryParams<PoolsQuery>,
) -> Result<Response, ApiError> {
    let limit = query.limit.unwrap_or_default().get();
    let (pools, next_after) = app
        .store()
        .list_pools(&tenant, query.after.as_ref(), limit)
        .await?;
    Ok(reply(
        StatusCode::OK,
        &PoolList { pools, next_after },
        false,
    ))
}

/// The caller's tenant: how many pools it has, and the limits its writes are held to.
#[utoipa::path(
    get,
    path = "/v1/tenant",
    tag = "pools",
    responses((status = 200, description = "The tenant", body = TenantInfo))
)]
pub async fn get_tenant(State(app): State<AppState>, tenant: Tenant) -> Result<Response, ApiError> {
    let pools = app.store().tenant_pools(&tenant).await?;
    let info = TenantInfo {
        tenant: tenant.to_string(),
        pools,
        limits: app.quotas(&tenant),
    };
    Ok(reply(StatusCode::OK, &info, false))
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
