//! Leases: `/claim`, `/items/{id}/claim|renew|release|complete|requeue`,
//! `/items/{id}/holder` and `/leases?holder=`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::extract::{PathParams, QueryParams, Write};
use super::{
    check_duration, check_priority, check_range, check_safe, item_names, page_limit, reply,
    with_etag,
};
use crate::app::AppState;
use crate::error::ApiError;
use crate::model::{Item, Lease, Leases};
use crate::names::{Holder, ItemId, PoolName, Tenant};
use crate::store::{ItemRecord, data_text};

/// The most leases one claim grants.
const MAX_CLAIM: i64 = 100;
/// The longest long-poll a claim may ask for.
const MAX_WAIT_MS: i64 = 30_000;

fn item_reply(pool: &PoolName, record: ItemRecord, replayed: bool) -> Result<Response, ApiError> {
    let version = record.version;
    let item = Item::new(pool, record)?;
    Ok(with_etag(reply(StatusCode::OK, &item, replayed), version))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimNextBody {
    holder: String,
    count: Option<i64>,
    lease_ms: Option<i64>,
    wait_ms: Option<i64>,
}

pub async fn claim_next(
    State(app): State<AppState>,
    tenant: Tenant,
    PathParams(pool): PathParams<String>,
    write: Write<ClaimNextBody>,
) -> Result<Response, ApiError> {
    let pool = PoolName::parse("pool", &pool)?;
    let body = write.body;
    let holder = Holder::parse("holder", &body.holder)?;
    check_range("count", body.count, 1, MAX_CLAIM)?;
    check_range("wait_ms", body.wait_ms, 0, MAX_WAIT_MS)?;
    let wait = std::time::Duration::from_millis(body.wait_ms.unwrap_or(0) as u64);
    let lease_ms = check_duration("lease_ms", body.lease_ms)?;
    let answer = app
        .store()
        .pool(&tenant, &pool)
        .claim_next(
            write.idempotency.as_ref(),
            &holder,
            body.count.unwrap_or(1) as u32,
            lease_ms,
            wait,
        )
        .await?;
    Ok(reply(
        StatusCode::OK,
        &Leases::new(answer.value)?,
        answer.replayed,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimItemBody {
    holder: String,
    lease_ms: Option<i64>,
}

pub async fn claim_item(
    State(app): State<AppState>,
    tenant: Tenant,
    PathParams((pool, id)): PathParams<(String, String)>,
    write: Write<ClaimItemBody>,
) -> Result<Response, ApiError> {
    let (pool, id) = item_names(&pool, &id)?;
    let holder = Holder::parse("holder", &write.body.holder)?;
    let lease_ms = check_duration("lease_ms", write.body.lease_ms)?;
    let answer = app
        .store()
        .pool(&tenant, &pool)
        .claim_item(write.idempotency.as_ref(), &id, &holder, lease_ms)
        .await?;
    Ok(reply(
        StatusCode::OK,
        &Lease::new(answer.value)?,
        answer.replayed,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenewBody {
    holder: String,
    token: u64,
    lease_ms: Option<i64>,
}

pub async fn renew(
    State(app): State<AppState>,
    tenant: Tenant,
    PathParams((pool, id)): PathParams<(String, String)>,
    write: Write<RenewBody>,
) -> Result<Response, ApiError> {
    let (pool, id) = item_names(&pool, &id)?;
    let body = write.body;
    let holder = Holder::parse("holder", &body.holder)?;
    let lease_ms = check_duration("lease_ms", body.lease_ms)?;
    let answer = app
        .store()
        .pool(&tenant, &pool)
        .renew(
            write.idempotency.as_ref(),
            &id,
            &holder,
            check_safe("token", body.token)?,
            lease_ms,
        )
        .await?;
    Ok(reply(
        StatusCode::OK,
        &Lease::new(answer.value)?,
        answer.replayed,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseBody {
    holder: String,
    token: u64,
    delay_ms: Option<i64>,
    priority: Option<i64>,
}

pub async fn release(
    State(app): State<AppState>,
    tenant: Tenant,
    PathParams((pool, id)): PathParams<(String, String)>,
    write: Write<ReleaseBody>,
) -> Result<Response, ApiError> {
    let (pool, id) = item_names(&pool, &id)?;
    let body = write.body;
    let holder = Holder::parse("holder", &body.holder)?;
    let delay_ms = check_duration("delay_ms", body.delay_ms)?;
    check_priority("priority", body.priority)?;
    let answer = app
        .store()
        .pool(&tenant, &pool)
        .release(
            write.idempotency.as_ref(),
            &id,
            &holder,
            check_safe("token", body.token)?,
            delay_ms,
            body.priority,
        )
        .await?;
    item_reply(&pool, answer.value, answer.replayed)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompleteBody {
    holder: String,
    token: u64,
    data: Option<Value>,
}

pub async fn complete(
    State(app): State<AppState>,
    tenant: Tenant,
    PathParams((pool, id)): PathParams<(String, String)>,
    write: Write<CompleteBody>,
) -> Result<Response, ApiError> {
    let (pool, id) = item_names(&pool, &id)?;
    let body = write.body;
    let holder = Holder::parse("holder", &body.holder)?;
    let data = body.data.as_ref().map(data_text).transpose()?;
    let answer = app
        .store()
        .pool(&tenant, &pool)
        .complete(
            write.idempotency.as_ref(),
            &id,
            &holder,
            check_safe("token", body.token)?,
            data,
        )
        .await?;
    item_reply(&pool, answer.value, answer.replayed)
}

/// `Some(None)` for an explicit `null`, `None` for a missing field.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    #[serde(default, deserialize_with = "present")]
    holder: Option<Option<String>>,
    lease_ms: Option<i64>,
    expected_version: Option<u64>,
}

pub async fn assign(
    State(app): State<AppState>,
    tenant: Tenant,
    PathParams((pool, id)): PathParams<(String, String)>,
    write: Write<AssignBody>,
) -> Result<Response, ApiError> {
    let (pool, id) = item_names(&pool, &id)?;
    let body = write.body;
    let holder = body
        .holder
        .ok_or_else(|| ApiError::invalid("holder", "is required: a holder, or null to unassign"))?
        .map(|h| Holder::parse("holder", &h))
        .transpose()?;
    let lease_ms = check_duration("lease_ms", body.lease_ms)?;
    let answer = app
        .store()
        .pool(&tenant, &pool)
        .assign(
            write.idempotency.as_ref(),
            &id,
            holder.as_ref(),
            lease_ms,
            body.expected_version
                .map(|v| check_safe("expected_version", v))
                .transpose()?,
            &write.preconditions.if_match,
        )
        .await?;
    let version = answer.value.version;
    let item = Item::with_token(&pool, answer.value)?;
    Ok(with_etag(
        reply(StatusCode::OK, &item, answer.replayed),
        version,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequeueBody {
    priority: Option<i64>,
}

pub async fn requeue(
    State(app): State<AppState>,
    tenant: Tenant,
    PathParams((pool, id)): PathParams<(String, String)>,
    write: Write<RequeueBody>,
) -> Result<Response, ApiError> {
    let (pool, id) = item_names(&pool, &id)?;
    check_priority("priority", write.body.priority)?;
    let answer = app
        .store()
        .pool(&tenant, &pool)
        .requeue(write.idempotency.as_ref(), &id, write.body.priority)
        .await?;
    item_reply(&pool, answer.value, answer.replayed)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeasesQuery {
    holder: Option<String>,
    limit: Option<u64>,
    cursor: Option<String>,
}

/// A page of the leases a holder has now, in id order; `next_cursor` is null on the last.
pub async fn list_leases(
    State(app): State<AppState>,
    tenant: Tenant,
    PathParams(pool): PathParams<String>,
    QueryParams(query): QueryParams<LeasesQuery>,
) -> Result<Response, ApiError> {
    let pool = PoolName::parse("pool", &pool)?;
    let holder = query
        .holder
        .ok_or_else(|| ApiError::invalid("holder", "is required"))?;
    let holder = Holder::parse("holder", &holder)?;
    let limit = page_limit(query.limit)?;
    let after = query
        .cursor
        .as_deref()
        .map(|c| ItemId::parse("cursor", c))
        .transpose()?;
    let (records, next) = app
        .store()
        .pool(&tenant, &pool)
        .list_leases(&holder, after.as_ref(), limit)
        .await?;
    let leases = Leases::new(records)?;
    Ok(reply(
        StatusCode::OK,
        &serde_json::json!({"leases": leases.leases, "next_cursor": next}),
        false,
    ))
}
