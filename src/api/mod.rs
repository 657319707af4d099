//! The HTTP API v1: the route table (every endpoint on one screen) and the helpers that
//! turn answers into responses. Each handler is extract → one store call → response.
//!
//! Each handler's `#[utoipa::path]` names its method and path and describes it; `routes!`
//! registers handler and description together (one `routes!` per path), so the router and
//! `GET /openapi.json` cannot disagree.

mod counters;
mod data;
mod events;
pub mod extract;
mod items;
mod leases;
pub mod openapi;
mod ops;
mod pools;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use serde::Serialize;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    let (router, description) = routes().split_for_parts();
    router
        .layer(Extension(openapi::Spec::new(description)))
        .fallback(|| async { ApiError::NoRoute })
        .method_not_allowed_fallback(method_not_allowed)
}

/// A route that exists, called with another method: 405 as problem+json (also for the
/// dashboard's routes, merged beside these).
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
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
        .routes(routes!(pools::get_tenant))
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
