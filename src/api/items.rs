//! `/v1/pools/{pool}/items` and `/v1/pools/{pool}/items/{id}`.

use std::collections::HashSet;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::extract::{PathParams, QueryParams, Write};
use super::pools::Empty;
use super::{
    MAX_SAFE_INTEGER, check_priority, check_safe, item_names, no_content, page_limit, reply,
    with_etag,
};
use crate::app::AppState;
use crate::error::ApiError;
use crate::model::Item;
use crate::names::{Holder, ItemId, PoolName, Tenant};
use crate::store::{ItemState, ListCursor, NewItem, data_text};

/// The most items one bulk add takes.
const MAX_BULK: usize = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddItemsBody {
    items: Vec<NewItemBody>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewItemBody {
    id: String,
    priority: Option<i64>,
    data: Option<Value>,
}

pub async fn add_items(
    State(app): State<AppState>,
    tenant: Tenant,
    PathParams(pool): PathParams<String>,
    write: Write<AddItemsBody>,
) -> Result<Response, ApiError> {
    let pool = PoolName::parse("pool", &pool)?;
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
        let id = ItemId::parse(&format!("items[{n}].id"), &item.id)?;
        if !seen.insert(item.id) {
            return Err(ApiError::invalid(
                &format!("items[{n}].id"),
                "appears twice",
            ));
        }
        check_priority(&format!("items[{n}].priority"), item.priority)?;
        let data = match item.data {
            Some(data) => data_text(&data).map_err(|e| match e {
                ApiError::InvalidRequest { detail, .. } => {
                    ApiError::invalid(&format!("items[{n}].data"), detail)
                }
                other => other,
            })?,
            None => "{}".to_owned(),
        };
        items.push(NewItem {
            id,
            priority: item.priority.unwrap_or(0),
            data,
        });
    }
    let answer = app
        .store()
        .pool(&tenant, &pool)
        .add_items(write.idempotency.as_ref(), &items)
        .await?;
    let body = json!({"created": answer.value.created, "existing": answer.value.existing});
    Ok(reply(StatusCode::OK, &body, answer.replayed))
}

pub async fn get_item(
    State(app): State<AppState>,
    tenant: Tenant,
    PathParams((pool, id)): PathParams<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (pool, id) = item_names(&pool, &id)?;
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
    let item = Item::new(&pool, record)?;
    Ok(with_etag(reply(StatusCode::OK, &item, false), version))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    state: Option<String>,
    holder: Option<String>,
    limit: Option<u64>,
    cursor: Option<String>,
}

fn parse_cursor(cursor: &str) -> Result<ListCursor, ApiError> {
    cursor
        .split_once('.')
        .and_then(|(s, o)| Some(ListCursor(s.parse().ok()?, o.parse().ok()?)))
        .filter(|c| (1..=5).contains(&c.0) && c.1 <= MAX_SAFE_INTEGER)
        .ok_or_else(|| ApiError::invalid("cursor", "must be a next_cursor from a listing"))
}

pub async fn list_items(
    State(app): State<AppState>,
    tenant: Tenant,
    PathParams(pool): PathParams<String>,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Response, ApiError> {
    let pool = PoolName::parse("pool", &pool)?;
    let state = query.state.as_deref().map(ItemState::parse).transpose()?;
    let holder = query
        .holder
        .as_deref()
        .map(|h| Holder::parse("holder", h))
        .transpose()?;
    let limit = page_limit(query.limit)?;
    let cursor = match query.cursor.as_deref() {
        Some(c) => parse_cursor(c)?,
        None => ListCursor(1, 0),
    };
    let (records, next) = app
        .store()
        .pool(&tenant, &pool)
        .list_items(state, holder.as_ref().map(Holder::as_str), cursor, limit)
        .await?;
    let items = records
        .into_iter()
        .map(|r| Item::new(&pool, r))
        .collect::<Result<Vec<_>, _>>()?;
    let next_cursor = next.map(|c| format!("{}.{}", c.0, c.1));
    Ok(reply(
        StatusCode::OK,
        &json!({"items": items, "next_cursor": next_cursor}),
        false,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutItemBody {
    data: Value,
    priority: Option<i64>,
    expected_version: Option<u64>,
}

pub async fn put_item(
    State(app): State<AppState>,
    tenant: Tenant,
    PathParams((pool, id)): PathParams<(String, String)>,
    write: Write<PutItemBody>,
) -> Result<Response, ApiError> {
    let (pool, id) = item_names(&pool, &id)?;
    let body = write.body;
    check_priority("priority", body.priority)?;
    let data = data_text(&body.data)?;
    let mut preconditions = write.preconditions;
    preconditions.expected_version = body
        .expected_version
        .map(|v| check_safe("expected_version", v))
        .transpose()?;
    let answer = app
        .store()
        .pool(&tenant, &pool)
        .put_item(
            write.idempotency.as_ref(),
            &id,
            data,
            body.priority,
            &preconditions,
        )
        .await?;
    let status = if answer.value.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let version = answer.value.item.version;
    let item = Item::new(&pool, answer.value.item)?;
    Ok(with_etag(reply(status, &item, answer.replayed), version))
}

/// The body is a JSON merge patch (RFC 7396) of the item's data.
pub async fn patch_item(
    State(app): State<AppState>,
    tenant: Tenant,
    PathParams((pool, id)): PathParams<(String, String)>,
    write: Write<Value>,
) -> Result<Response, ApiError> {
    let (pool, id) = item_names(&pool, &id)?;
    let answer = app
        .store()
        .pool(&tenant, &pool)
        .patch_item(
            write.idempotency.as_ref(),
            &id,
            &write.body,
            &write.preconditions,
        )
        .await?;
    let version = answer.value.item.version;
    let item = Item::new(&pool, answer.value.item)?;
    Ok(with_etag(
        reply(StatusCode::OK, &item, answer.replayed),
        version,
    ))
}

pub async fn delete_item(
    State(app): State<AppState>,
    tenant: Tenant,
    PathParams((pool, id)): PathParams<(String, String)>,
    write: Write<Empty>,
) -> Result<Response, ApiError> {
    let (pool, id) = item_names(&pool, &id)?;
    let answer = app
        .store()
        .pool(&tenant, &pool)
        .delete_item(write.idempotency.as_ref(), &id, &write.preconditions)
        .await?;
    Ok(no_content(answer.replayed))
}
