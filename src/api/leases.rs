//! Leases: `/claim`, `/items/{id}/claim|renew|release|complete|requeue`,
//! `/items/{id}/holder` and `/leases?holder=`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::data::Data;
use super::extract::{PathParams, QueryParams, Write};
use super::openapi::EntityTags;
use super::{reply, with_etag};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::model::{self, Item, Lease, LeasePage, Leases};
use crate::names::{Holder, ItemId, PoolName, Tenant};
use crate::state::AppState;
use crate::store::{ItemRecord, NextClaim, data_text};
use leasehold_wire::numbers::{
    ClaimCount, DurationMs, PageLimit, Priority, Token, Version, WaitMs,
};

fn item_reply(pool: &PoolName, record: ItemRecord, replayed: bool) -> Result<Response, ApiError> {
    let version = record.version;
    let item = model::item(pool, record)?;
    Ok(with_etag(reply(StatusCode::OK, &item, replayed), version))
}

/// Who claims, how many items and for how long.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimNextBody {
    holder: Holder,
    /// Default 1.
    count: Option<ClaimCount>,
    /// Default: the pool's `lease_ms`.
    lease_ms: Option<DurationMs>,
    /// Default 0: answer at once, possibly with no lease.
    wait_ms: Option<WaitMs>,
    /// Default false: a pool that does not exist answers 404 `not_found`. With true, it is
    /// as good as an empty pool: the answer is empty (after `wait_ms`, within which an
    /// item added by the pool's first producer is granted), for workers that may start
    /// before anyone creates the pool.
    create: Option<bool>,
}

/// Leases the best available items (highest priority, then first added), up to `count`;
/// with `wait_ms`, waits that long for one when none is available. A pool that does not
/// exist is 404 `not_found`, unless `create` says to wait for it. A wait ends with 401
/// when the caller's key is revoked meanwhile.
#[utoipa::path(
    post,
    path = "/v1/pools/{pool}/claim",
    tag = "leases",
    params(("pool" = PoolName, Path)),
    request_body = ClaimNextBody,
    responses(
        (status = 200, description = "The leases granted, best first (possibly none)", body = Leases),
        (status = 404, description = "`not_found`: no such pool (unless `create`), named in `detail`"),
        (status = 409, description = "`holder_at_capacity`: the holder has `max_leases_per_holder` leases (`limit`); or `idempotency_key_reused`"),
    )
)]
pub async fn claim_next(
    State(app): State<AppState>,
    caller: Caller,
    PathParams(pool): PathParams<PoolName>,
    write: Write<ClaimNextBody>,
) -> Result<Response, ApiError> {
    let body = write.body;
    let answer = app
        .store()
        .pool(&caller.tenant, &pool)
        .claim_next(
            write.idempotency.as_ref(),
            &NextClaim {
                holder: &body.holder,
                count: body.count.map_or(1, ClaimCount::get),
                lease_ms: body.lease_ms.map(DurationMs::get),
                wait: std::time::Duration::from_millis(body.wait_ms.map_or(0, WaitMs::get)),
                create: body.create.unwrap_or(false),
            },
            app.auth().revoked(&caller),
        )
        .await?;
    // A wait that ended for want of a key: nothing was granted, so nothing is lost.
    if answer.value.leases.is_empty() && !app.auth().still_valid(&caller) {
        return Err(ApiError::Unauthorized);
    }
    Ok(reply(
        StatusCode::OK,
        &Leases {
            leases: model::leases(answer.value.leases)?,
            paused: answer.value.paused,
        },
        answer.replayed,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimItemBody {
    holder: Holder,
    /// Default: the pool's `lease_ms`.
    lease_ms: Option<DurationMs>,
}

/// Leases one named item; claiming an item this holder holds already renews the same lease
/// (same token) for `lease_ms` from now.
#[utoipa::path(
    post,
    path = "/v1/pools/{pool}/items/{id}/claim",
    tag = "leases",
    params(("pool" = PoolName, Path), ("id" = ItemId, Path)),
    request_body = ClaimItemBody,
    responses(
        (status = 200, description = "The lease", body = Lease),
        (status = 404, description = "`not_found`: no such item"),
        (status = 409, description = "`already_leased` (by another holder), `invalid_state` (done, dead or delayed), `holder_at_capacity`, `pool_paused` (the pool is paused) or `idempotency_key_reused`; `current` shows the item as it is"),
    )
)]
pub async fn claim_item(
    State(app): State<AppState>,
    tenant: Tenant,
    PathParams((pool, id)): PathParams<(PoolName, ItemId)>,
    write: Write<ClaimItemBody>,
) -> Result<Response, ApiError> {
    let body = write.body;
    let answer = app
        .store()
        .pool(&tenant, &pool)
        .claim_item(
            write.idempotency.as_ref(),
            &id,
            &body.holder,
            body.lease_ms.map(DurationMs::get),
        )
        .await?;
    Ok(reply(
        StatusCode::OK,
        &model::lease(answer.value)?,
        answer.replayed,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenewBody {
    holder: Holder,
    token: Token,
    /// The new lease time from now (default: the pool's `lease_ms`).
    lease_ms: Option<DurationMs>,
}

/// Extends a lease that is still current; the token stays the same.
#[utoipa::path(
    post,
    path = "/v1/pools/{pool}/items/{id}/renew",
    tag = "leases",
    params(("pool" = PoolName, Path), ("id" = ItemId, Path)),
    request_body = RenewBody,
    responses(
        (status = 200, description = "The lease, with its new expiry", body = Lease),
        (status = 404, description = "`not_found`: no such item"),
        (status = 409, description = "`lease_lost`: expired, released, reassigned, or not this holder's token; or `idempotency_key_reused`"),
    )
)]
pub async fn renew(
    State(app): State<AppState>,
    tenant: Tenant,
    PathParams((pool, id)): PathParams<(PoolName, ItemId)>,
    write: Write<RenewBody>,
) -> Result<Response, ApiError> {
    let body = write.body;
    let answer = app
        .store()
        .pool(&tenant, &pool)
        .renew(
            write.idempotency.as_ref(),
            &id,
            &body.holder,
            body.token.get(),
            body.lease_ms.map(DurationMs::get),
        )
        .await?;
    Ok(reply(
        StatusCode::OK,
        &model::lease(answer.value)?,
        answer.replayed,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseBody {
    holder: Holder,
    token: Token,
    /// Keep the item `delayed` this long before it is available again (default 0).
    delay_ms: Option<DurationMs>,
    /// A new priority for the item (default: kept).
    priority: Option<Priority>,
}

/// Gives a lease back: the item is available again, or delayed for `delay_ms`.
#[utoipa::path(
    post,
    path = "/v1/pools/{pool}/items/{id}/release",
    tag = "leases",
    params(("pool" = PoolName, Path), ("id" = ItemId, Path)),
    request_body = ReleaseBody,
    responses(
        (status = 200, description = "The item (available, delayed, or dead after its last attempt)", body = Item, headers(("ETag" = String, description = "`\"<version>\"`"))),
        (status = 404, description = "`not_found`: no such item"),
        (status = 409, description = "`lease_lost`: expired, released, reassigned, or not this holder's token; or `idempotency_key_reused`"),
    )
)]
pub async fn release(
    State(app): State<AppState>,
    tenant: Tenant,
    PathParams((pool, id)): PathParams<(PoolName, ItemId)>,
    write: Write<ReleaseBody>,
) -> Result<Response, ApiError> {
    let body = write.body;
    let answer = app
        .store()
        .pool(&tenant, &pool)
        .release(
            write.idempotency.as_ref(),
            &id,
            &body.holder,
            body.token.get(),
            body.delay_ms.map(DurationMs::get),
            body.priority.map(Priority::get),
        )
        .await?;
    item_reply(&pool, answer.value, answer.replayed)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteBody {
    holder: Holder,
    token: Token,
    /// The item's final data (default: kept).
    data: Option<Data>,
}

/// Finishes a lease: the item is `done`.
#[utoipa::path(
    post,
    path = "/v1/pools/{pool}/items/{id}/complete",
    tag = "leases",
    params(("pool" = PoolName, Path), ("id" = ItemId, Path)),
    request_body = CompleteBody,
    responses(
        (status = 200, description = "The item, done", body = Item, headers(("ETag" = String, description = "`\"<version>\"`"))),
        (status = 404, description = "`not_found`: no such item"),
        (status = 409, description = "`lease_lost`: expired, released, reassigned, completed, or not this holder's token; or `idempotency_key_reused`. `quota_exceeded`: larger data would pass the pool's `max_pool_bytes` (the lease is kept: complete without data, or free room)"),
    )
)]
pub async fn complete(
    State(app): State<AppState>,
    tenant: Tenant,
    PathParams((pool, id)): PathParams<(PoolName, ItemId)>,
    write: Write<CompleteBody>,
) -> Result<Response, ApiError> {
    let body = write.body;
    let data = body.data.as_ref().map(|d| data_text(&d.0)).transpose()?;
    let answer = app
        .store()
        .pool(&tenant, &pool)
        .complete(
            write.idempotency.as_ref(),
            &id,
            &body.holder,
            body.token.get(),
            data,
            &app.quotas(&tenant),
        )
        .await?;
    item_reply(&pool, answer.value, answer.replayed)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    /// The new holder, or null to unassign.
    #[serde(default, deserialize_with = "super::extract::present")]
    #[schema(value_type = Option<Holder>, required = true)]
    holder: Option<Option<Holder>>,
    /// Default: the pool's `lease_ms`.
    lease_ms: Option<DurationMs>,
    /// Assign only if the item has this version (409 `version_conflict` otherwise).
    expected_version: Option<Version>,
}

/// Assigns an item on someone's behalf (ending any other holder's lease, with a new
/// token), or unassigns it (`holder: null`).
#[utoipa::path(
    put,
    path = "/v1/pools/{pool}/items/{id}/holder",
    tag = "leases",
    params(
        ("pool" = PoolName, Path),
        ("id" = ItemId, Path),
        ("If-Match" = Option<EntityTags>, Header, description = "Assign only if the item's version is one of these (412 otherwise)"),
    ),
    request_body = AssignBody,
    responses(
        (status = 200, description = "The item; with its `token` when assigned", body = Item, headers(("ETag" = String, description = "`\"<version>\"`"))),
        (status = 404, description = "`not_found`: no such item"),
        (status = 409, description = "`version_conflict`, `invalid_state` (done or dead), `holder_at_capacity` or `idempotency_key_reused`; `current` shows the item as it is"),
        (status = 412, description = "`precondition_failed`: If-Match did not hold"),
        (status = 428, description = "`precondition_required`: the pool requires a precondition on item writes"),
    )
)]
pub async fn assign(
    State(app): State<AppState>,
    tenant: Tenant,
    PathParams((pool, id)): PathParams<(PoolName, ItemId)>,
    write: Write<AssignBody>,
) -> Result<Response, ApiError> {
    let body = write.body;
    let holder = body
        .holder
        .ok_or_else(|| ApiError::invalid("holder", "is required: a holder, or null to unassign"))?;
    let answer = app
        .store()
        .pool(&tenant, &pool)
        .assign(
            write.idempotency.as_ref(),
            &id,
            holder.as_ref(),
            body.lease_ms.map(DurationMs::get),
            body.expected_version.map(Version::get),
            &write.preconditions.if_match,
        )
        .await?;
    let version = answer.value.version;
    let item = model::item_with_token(&pool, answer.value)?;
    Ok(with_etag(
        reply(StatusCode::OK, &item, answer.replayed),
        version,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequeueBody {
    /// A new priority (default: kept).
    priority: Option<Priority>,
    /// Snooze: the item becomes available at this time (RFC 3339) instead of now; it is
    /// `delayed` until then. Not with `delay_ms`.
    #[schema(value_type = Option<String>, format = DateTime)]
    available_at: Option<jiff::Timestamp>,
    /// Snooze: the item becomes available this long from now instead. Not with
    /// `available_at`.
    delay_ms: Option<DurationMs>,
}

/// Puts a `done` or `dead` item back (attempts start again at 0); an available or
/// delayed item becomes available now. With `available_at` or `delay_ms`, the item is
/// delayed until then instead ("snooze until Monday").
#[utoipa::path(
    post,
    path = "/v1/pools/{pool}/items/{id}/requeue",
    tag = "leases",
    params(("pool" = PoolName, Path), ("id" = ItemId, Path)),
    request_body(content = Option<RequeueBody>, description = "Optional"),
    responses(
        (status = 200, description = "The item, available (or delayed, when snoozed)", body = Item, headers(("ETag" = String, description = "`\"<version>\"`"))),
        (status = 404, description = "`not_found`: no such item"),
        (status = 409, description = "`already_leased`: the item is leased; or `idempotency_key_reused`"),
    )
)]
pub async fn requeue(
    State(app): State<AppState>,
    tenant: Tenant,
    PathParams((pool, id)): PathParams<(PoolName, ItemId)>,
    write: Write<RequeueBody>,
) -> Result<Response, ApiError> {
    let answer = app
        .store()
        .pool(&tenant, &pool)
        .requeue(
            write.idempotency.as_ref(),
            &id,
            write.body.priority.map(Priority::get),
            super::items::availability("body", write.body.available_at, write.body.delay_ms)?,
        )
        .await?;
    item_reply(&pool, answer.value, answer.replayed)
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LeasesQuery {
    /// Whose leases (required).
    #[param(required = true)]
    holder: Option<Holder>,
    /// Default 100.
    limit: Option<PageLimit>,
    /// A `next_cursor` from the previous page.
    cursor: Option<ItemId>,
}

/// A page of the leases a holder has now, in id order, with their tokens: to recover
/// after a restart.
#[utoipa::path(
    get,
    path = "/v1/pools/{pool}/leases",
    tag = "leases",
    params(("pool" = PoolName, Path), LeasesQuery),
    responses((status = 200, description = "A page of leases; `next_cursor` is null on the last", body = LeasePage))
)]
pub async fn list_leases(
    State(app): State<AppState>,
    tenant: Tenant,
    PathParams(pool): PathParams<PoolName>,
    QueryParams(query): QueryParams<LeasesQuery>,
) -> Result<Response, ApiError> {
    let holder = query
        .holder
        .ok_or_else(|| ApiError::invalid("holder", "is required"))?;
    let limit = query.limit.unwrap_or_default().get();
    let (records, next) = app
        .store()
        .pool(&tenant, &pool)
        .list_leases(&holder, query.cursor.as_ref(), limit)
        .await?;
    let page = LeasePage {
        leases: model::leases(records)?,
        next_cursor: next,
    };
    Ok(reply(StatusCode::OK, &page, false))
}
