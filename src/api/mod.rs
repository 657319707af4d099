//! The HTTP API v1: the route table (every endpoint on one screen) and the helpers that
//! turn answers into responses. Each handler is extract → one store call → response.
//!
//! Each handler's `#[utoipa::path]` names its method and path and describes it; `routes!`
//! registers handler and description together (one `routes!` per path), so the router and
//! `GET /openapi.json` cannot disagree.

mod counters;
mod events;
pub mod extract;
mod items;
mod leases;
pub mod openapi;
mod ops;
mod pools;
mod whole;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use serde::Serialize;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::names::{ItemId, PoolName};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    let (router, description) = routes().split_for_parts();
    router
        .layer(Extension(openapi::Spec::new(description)))
        .fallback(|| async { ApiError::NoRoute })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
}

/// Every endpoint, each with its description.
fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .routes(routes!(openapi::openapi_json))
        .routes(routes!(openapi::docs))
        .routes(routes!(pools::list_pools))
        .routes(routes!(
            pools::put_pool,
            pools::get_pool,
            pools::delete_pool
        ))
        .routes(routes!(items::add_items, items::list_items))
        .routes(routes!(
            items::get_item,
            items::put_item,
            items::patch_item,
            items::delete_item
        ))
        .routes(routes!(leases::claim_next))
        .routes(routes!(leases::claim_item))
        .routes(routes!(leases::renew))
        .routes(routes!(leases::release))
        .routes(routes!(leases::complete))
        .routes(routes!(leases::assign))
        .routes(routes!(leases::requeue))
        .routes(routes!(leases::list_leases))
        .routes(routes!(events::list_events))
        .routes(routes!(events::stream_events))
        .routes(routes!(counters::counter_next))
        .routes(routes!(counters::get_counter))
}

/// A JSON answer, marked `Idempotent-Replayed: true` when it was stored before.
fn reply<T: Serialize>(status: StatusCode, body: &T, replayed: bool) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => mark_replayed(
            (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
            replayed,
        ),
        Err(e) => ApiError::Internal(format!("encoding a reply: {e}")).into_response(),
    }
}

/// 204, marked like `reply`.
fn no_content(replayed: bool) -> Response {
    mark_replayed(StatusCode::NO_CONTENT.into_response(), replayed)
}

fn mark_replayed(mut response: Response, replayed: bool) -> Response {
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

/// Adds `ETag: "<version>"`.
fn with_etag(mut response: Response, version: u64) -> Response {
    if let Ok(value) = HeaderValue::from_str(&format!("\"{version}\"")) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

/// A pool name and an item id from the path.
fn item_names(pool: &str, id: &str) -> Result<(PoolName, ItemId), ApiError> {
    Ok((PoolName::parse("pool", pool)?, ItemId::parse("id", id)?))
}

/// Rejects a negative or too large `lease_ms` and the like.
fn check_range(field: &str, value: Option<i64>, min: i64, max: i64) -> Result<(), ApiError> {
    match value {
        Some(v) if v < min || v > max => Err(ApiError::invalid(
            field,
            format!("must be between {min} and {max}"),
        )),
        _ => Ok(()),
    }
}

/// The largest token, version or offset Leasehold can issue (scripts count in doubles):
/// anything larger cannot match and is refused as invalid.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

fn check_safe(field: &str, value: u64) -> Result<u64, ApiError> {
    if value > MAX_SAFE_INTEGER {
        return Err(ApiError::invalid(
            field,
            format!("must be at most {MAX_SAFE_INTEGER}"),
        ));
    }
    Ok(value)
}

/// The default and the largest page of a listing.
const DEFAULT_PAGE: u64 = 100;
const MAX_PAGE: u64 = 1000;

fn page_limit(limit: Option<u64>) -> Result<u64, ApiError> {
    let limit = limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("must be between 1 and {MAX_PAGE}"),
        ));
    }
    Ok(limit)
}

/// Priorities run from -1,000,000 to 1,000,000, higher first.
const PRIORITY_LIMIT: i64 = 1_000_000;
/// The longest lease or delay: 30 days (a lease of 0 has no expiry).
const MAX_DURATION_MS: i64 = 30 * 24 * 3_600_000;

fn check_priority(field: &str, priority: Option<i64>) -> Result<(), ApiError> {
    check_range(field, priority, -PRIORITY_LIMIT, PRIORITY_LIMIT)
}

fn check_duration(field: &str, ms: Option<i64>) -> Result<Option<u64>, ApiError> {
    check_range(field, ms, 0, MAX_DURATION_MS)?;
    Ok(ms.map(|ms| ms as u64))
}
