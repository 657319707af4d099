//! `/v1/pools/{pool}/items` and `/v1/pools/{pool}/items/{id}`.

use std::collections::HashSet;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::data::Data;
use super::extract::{PathParams, QueryParams, Write};
use super::openapi::EntityTags;
use super::pools::Empty;
use super::{no_content, reply, with_etag};
use crate::error::ApiError;
use crate::model::{self, AddedItems, Item, ItemPage};
use crate::names::{Holder, ItemId, PoolName, Tenant};
use crate::state::AppState;
use crate::store::{Available, ItemState, ListCursor, NewItem, StoreError, data_text};
use leasehold_wire::numbers::{DurationMs, PageLimit, Priority, Token, Version};

/// The most items one bulk add takes.
pub(super) const MAX_BULK: usize = 1000;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddItemsBody {
    #[schema(schema_with = super::openapi::new_items)]
    items: Vec<NewItemBody>,
}

/// An item to add.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewItemBody {
    id: ItemId,
    /// Default 0.
    priority: Option<Priority>,
    /// Default `{}`.
    data: Option<Data>,
    /// Scheduled: the item starts `delayed` and becomes available at this time (RFC 3339;
    /// a time already past: at once). Not with `delay_ms`.
    #[schema(value_type = Option<String>, format = DateTime)]
    available_at: Option<jiff::Timestamp>,
    /// Scheduled: the item starts `delayed` and becomes available this long after it is
    /// added (by Redis's clock). Not with `available_at`.
    delay_ms: Option<DurationMs>,
}

/// When an item given `available_at` or `delay_ms` (at most one) becomes available.
pub(super) fn availability(
    field: &str,
    available_at: Option<jiff::Timestamp>,
    delay_ms: Option<DurationMs>,
) -> Result<Available, ApiError> {
    match (available_at, delay_ms) {
        (None, None) => Ok(Available::Now),
        (Some(_), Some(_)) => Err(ApiError::invalid(
            field,
            "give available_at or delay_ms, not both",
        )),
        (Some(at), None) => Ok(Available::At(
            u64::try_from(at.as_millisecond()).unwrap_or(0),
        )),
        (None, Some(delay)) => Ok(Available::After(delay.get())),
    }
}

/// Adds items; an item that exists already is left as it is (its data is not replaced).
#[utoipa::path(
    post,
    path = "/v1/pools/{pool}/items",
    tag = "items",
    params(("pool" = PoolName, Path)),
    request_body = AddItemsBody,
    responses(
        (status = 200, description = "Which ids were added and which existed", body = AddedItems),
        (status = 409, description = "`quota_exceeded`: the new items would pass the pool's `max_items_per_pool` or `max_pool_bytes`, or a new pool the tenant's `max_pools_per_tenant` (`quota` names it; nothing is added)"),
    )
)]
pub async fn add_items(
    State(app): State<AppState>,
    tenant: Tenant,
    PathParams(pool): PathParams<PoolName>,
    write: Write<AddItemsBody>,
) -> Result<Response, ApiError> {
    let body = write.body;
    if body.items.is_empty() || body.items.len() > MAX_BULK {
        return Err(ApiError::invalid(
            "items",
            format!("must hold 1 to {MAX_BULK} items"),
        ));
    }
    let mut seen = HashSet::new();
    let mut items = Vec::with_capacity(body.items.len());
    for (n, item) in body.items.into_iter().enumerate() {
        if !seen.insert(item.id.clone()) {
            return Err(ApiError::invalid(
                &format!("items[{n}].id"),
                "appears twice",
            ));
        }
        let data = match item.data {
            Some(data) => data_text(&data.0).map_err(|e| match e {
                StoreError::Invalid(invalid) => {
                    ApiError::invalid(&format!("items[{n}].data"), invalid.detail)
                }
                other => other.into(),
            })?,
            None => "{}".to_owned(),
        };
        let available = availability(&format!("items[{n}]"), item.available_at, item.delay_ms)?;
        items.push(NewItem {
            id: item.id,
            priority: item.priority.map_or(0, Priority::get),
            data,
            available,
        });
    }
    let answer = app
        .store()
        .pool(&tenant, &pool)
        .add_items(write.idempotency.as_ref(), &items, &app.quotas(&tenant))
        .await?;
    let body = AddedItems {
        created: answer.value.created,
        existing: answer.value.existing,
    };
    Ok(reply(StatusCode::OK, &body, answer.replayed))
}

/// An item (never with its token: that goes only to its holder).
#[utoipa::path(
    get,
    path = "/v1/pools/{pool}/items/{id}",
    tag = "items",
    params(
        ("pool" = PoolName, Path),
        ("id" = ItemId, Path),
        ("If-None-Match" = Option<String>, Header, description = "`*` or entity tags: 304 when one matches the item's version"),
    ),
    responses(
        (status = 200, description = "The item", body = Item, headers(("ETag" = String, description = "`\"<version>\"`"))),
        (status = 304, description = "Not modified: If-None-Match matched", headers(("ETag" = String, description = "`\"<version>\"`"))),
        (status = 404, description = "`not_found`: no such item"),
    )
)]
pub async fn get_item(
    State(app): State<AppState>,
    tenant: Tenant,
    PathParams((pool, id)): PathParams<(PoolName, ItemId)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let record = app.store().pool(&tenant, &pool).get_item(&id).await?;
    let version = record.version;
    let etag = format!("\"{version}\"");
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == "*" || t == etag)
        });
    if not_modified {
        return Ok(with_etag(StatusCode::NOT_MODIFIED.into_response(), version));
    }
    let item = model::item(&pool, record)?;
    Ok(with_etag(reply(StatusCode::OK, &item, false), version))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only items in this state (default: all, in the order available, delayed, leased,
    /// done, dead).
    state: Option<ItemState>,
    /// Only items this holder holds.
    holder: Option<Holder>,
    /// Default 100.
    limit: Option<PageLimit>,
    cursor: Option<ItemCursor>,
}

/// What a `next_cursor` of an item listing looks like: the state's place in the listing
/// order, a dot, and the offset within that state.
pub(super) const CURSOR_PATTERN: &str = "^[1-5]\\.[0-9]{1,15}$";

/// The `cursor` of an item listing, `<state>.<offset>`, as a `next_cursor` gave it.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(try_from = "String")]
pub struct ItemCursor(ListCursor);

impl TryFrom<String> for ItemCursor {
    type Error = &'static str;

    /// Accepts exactly the strings `CURSOR_PATTERN` matches.
    fn try_from(cursor: String) -> Result<Self, &'static str> {
        cursor
            .split_once('.')
            .filter(|(s, o)| {
                matches!(s.as_bytes(), [b'1'..=b'5'])
                    && (1..=15).contains(&o.len())
                    && o.bytes().all(|b| b.is_ascii_digit())
            })
            .and_then(|(s, o)| Some(ItemCursor(ListCursor(s.parse().ok()?, o.parse().ok()?))))
            .ok_or("must be a next_cursor from a listing")
    }
}

impl utoipa::PartialSchema for ItemCursor {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some(CURSOR_PATTERN))
            .description(Some("A `next_cursor` from the previous page"))
            .into()
    }
}

impl ToSchema for ItemCursor {}

/// A page of the pool's items.
#[utoipa::path(
    get,
    path = "/v1/pools/{pool}/items",
    tag = "items",
    params(("pool" = PoolName, Path), ListQuery),
    responses((status = 200, description = "A page of items", body = ItemPage))
)]
pub async fn list_items(
    State(app): State<AppState>,
    tenant: Tenant,
    PathParams(pool): PathParams<PoolName>,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Response, ApiError> {
    let cursor = query.cursor.map_or(ListCursor(1, 0), |c| c.0);
    let (records, next) = app
        .store()
        .pool(&tenant, &pool)
        .list_items(
            query.state,
            query.holder.as_ref().map(Holder::as_str),
            cursor,
            query.limit.unwrap_or_default().get(),
        )
        .await?;
    let items = records
        .into_iter()
        .map(|r| model::item(&pool, r))
        .collect::<Result<Vec<_>, _>>()?;
    let next_cursor = next.map(|c| format!("{}.{}", c.0, c.1));
    Ok(reply(
        StatusCode::OK,
        &ItemPage { items, next_cursor },
        false,
    ))
}

/// An item's new data and priority.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutItemBody {
    data: Data,
    /// Default: kept (0 for a new item).
    priority: Option<Priority>,
    /// The write succeeds only if the item has this version (0: only if it does not
    /// exist), else 409 `version_conflict`.
    expected_version: Option<Version>,
}

/// Creates or replaces an item's data, under the preconditions given.
#[utoipa::path(
    put,
    path = "/v1/pools/{pool}/items/{id}",
    tag = "items",
    params(
        ("pool" = PoolName, Path),
        ("id" = ItemId, Path),
        ("If-Match" = Option<EntityTags>, Header, description = "Write only if the item's version is one of these (412 otherwise, also for a missing item)"),
        ("If-None-Match" = Option<EntityTags>, Header, description = "`*`: write only if the item does not exist (412 otherwise)"),
        ("Lease-Token" = Option<Token>, Header, description = "Write only while this lease is current on the item (409 `lease_lost` otherwise)"),
    ),
    request_body = PutItemBody,
    responses(
        (status = 201, description = "Created", body = Item, headers(("ETag" = String, description = "`\"<version>\"`"))),
        (status = 200, description = "Replaced", body = Item, headers(("ETag" = String, description = "`\"<version>\"`"))),
        (status = 404, description = "`not_found`: no such item (with Lease-Token)"),
        (status = 409, description = "`version_conflict` (expected_version), `lease_lost` (Lease-Token) or `idempotency_key_reused`; `current` shows the item as it is. `quota_exceeded`: a new item, or larger data, would pass a limit of the pool (or a new pool, the tenant's)"),
        (status = 412, description = "`precondition_failed`: If-Match or If-None-Match did not hold; `current` shows the item as it is"),
        (status = 428, description = "`precondition_required`: the pool requires a precondition on item writes"),
    )
)]
pub async fn put_item(
    State(app): State<AppState>,
    tenant: Tenant,
    PathParams((pool, id)): PathParams<(PoolName, ItemId)>,
    write: Write<PutItemBody>,
) -> Result<Response, ApiError> {
    let body = write.body;
    let data = data_text(&body.data.0)?;
    let mut preconditions = write.preconditions;
    preconditions.expected_version = body.expected_version.map(Version::get);
    let answer = app
        .store()
        .pool(&tenant, &pool)
        .put_item(
            write.idempotency.as_ref(),
            &id,
            data,
            body.priority.map(Priority::get),
            &preconditions,
            &app.quotas(&tenant),
        )
        .await?;
    let status = if answer.value.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let version = answer.value.item.version;
    let item = model::item(&pool, answer.value.item)?;
    Ok(with_etag(reply(status, &item, answer.replayed), version))
}

/// Changes an existing item's data with a JSON merge patch (RFC 7396), under the
/// preconditions given.
#[utoipa::path(
    patch,
    path = "/v1/pools/{pool}/items/{id}",
    tag = "items",
    params(
        ("pool" = PoolName, Path),
        ("id" = ItemId, Path),
        ("If-Match" = Option<EntityTags>, Header, description = "Write only if the item's version is one of these (412 otherwise, also for a missing item)"),
        ("If-None-Match" = Option<EntityTags>, Header, description = "`*` always fails here (the item must exist): 412"),
        ("Lease-Token" = Option<Token>, Header, description = "Write only while this lease is current on the item (409 `lease_lost` otherwise)"),
    ),
    request_body(
        description = "A merge patch of the data: its fields replace the data's, a null removes one (no body: no change)",
        content((Option<Data> = "application/merge-patch+json"), (Option<Data> = "application/json")),
    ),
    responses(
        (status = 200, description = "Changed", body = Item, headers(("ETag" = String, description = "`\"<version>\"`"))),
        (status = 404, description = "`not_found`: no such item"),
        (status = 409, description = "`version_conflict`, `lease_lost` (Lease-Token) or `idempotency_key_reused`; `current` shows the item as it is. `quota_exceeded`: larger data would pass the pool's `max_pool_bytes`"),
        (status = 412, description = "`precondition_failed`: If-Match or If-None-Match did not hold; `current` shows the item as it is"),
        (status = 428, description = "`precondition_required`: the pool requires a precondition on item writes"),
    )
)]
pub async fn patch_item(
    State(app): State<AppState>,
    tenant: Tenant,
    PathParams((pool, id)): PathParams<(PoolName, ItemId)>,
    write: Write<Data>,
) -> Result<Response, ApiError> {
    let answer = app
        .store()
        .pool(&tenant, &pool)
        .patch_item(
            write.idempotency.as_ref(),
            &id,
            &write.body.0,
            &write.preconditions,
            &app.quotas(&tenant),
        )
        .await?;
    let version = answer.value.item.version;
    let item = model::item(&pool, answer.value.item)?;
    Ok(with_etag(
        reply(StatusCode::OK, &item, answer.replayed),
        version,
    ))
}

/// Deletes an item, under the preconditions given.
#[utoipa::path(
    delete,
    path = "/v1/pools/{pool}/items/{id}",
    tag = "items",
    params(
        ("pool" = PoolName, Path),
        ("id" = ItemId, Path),
        ("If-Match" = Option<EntityTags>, Header, description = "Delete only if the item's version is one of these (412 otherwise)"),
        ("If-None-Match" = Option<EntityTags>, Header, description = "Delete only if the item's version is none of these (412 otherwise)"),
        ("Lease-Token" = Option<Token>, Header, description = "Delete only while this lease is current on the item (409 `lease_lost` otherwise)"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "`not_found`: no such item"),
        (status = 409, description = "`version_conflict`, `lease_lost` (Lease-Token) or `idempotency_key_reused`; `current` shows the item as it is"),
        (status = 412, description = "`precondition_failed`: If-Match or If-None-Match did not hold; `current` shows the item as it is"),
        (status = 428, description = "`precondition_required`: the pool requires a precondition on item writes"),
    )
)]
pub async fn delete_item(
    State(app): State<AppState>,
    tenant: Tenant,
    PathParams((pool, id)): PathParams<(PoolName, ItemId)>,
    write: Write<Empty>,
) -> Result<Response, ApiError> {
    let answer = app
        .store()
        .pool(&tenant, &pool)
        .delete_item(write.idempotency.as_ref(), &id, &write.preconditions)
        .await?;
    Ok(no_content(answer.replayed))
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::*;
    use regex_automata::meta::Regex;

    proptest! {
        #[test]
        fn a_cursor_is_accepted_exactly_when_its_pattern_matches(
            cursor in prop_oneof!["[0-9]{1,2}[.][0-9+ -]{0,17}", "[0-9.a+-]{0,8}"]
        ) {
            let pattern = Regex::new(CURSOR_PATTERN).expect("the pattern compiles");
            prop_assert_eq!(ItemCursor::try_from(cursor.clone()).is_ok(), pattern.is_match(&cursor), "{:?}", cursor);
        }
    }
}
