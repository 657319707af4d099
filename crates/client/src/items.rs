//! Items: bulk add, read (with its version), list with filters and cursor paging, and
//! writes under preconditions (PUT, PATCH, DELETE).

use reqwest::Method;
use serde_json::{Value, json};

use super::transport::Call;
use super::{
    AddedItems, Client, Error, Item, ItemFilter, ItemPage, NewItem, Preconditions, Put, PutItem,
    json_call, path,
};

impl Preconditions {
    /// Adds the preconditions' headers to a call.
    fn apply(&self, mut call: Call) -> Result<Call, Error> {
        if let Some(version) = self.if_match {
            call = call
                .header("if-match", &format!("\"{version}\""))
                .map_err(Error::Invalid)?;
        }
        if self.if_none_match_any {
            call = call.header("if-none-match", "*").map_err(Error::Invalid)?;
        }
        if let Some(token) = self.lease_token {
            call = call
                .header("lease-token", &token.to_string())
                .map_err(Error::Invalid)?;
        }
        Ok(call)
    }
}

impl Client {
    /// `POST /v1/pools/{pool}/items`: adds up to 1000 items; ids that exist are left as
    /// they are (and listed in `existing`).
    pub async fn add_items(&self, pool: &str, items: &[NewItem]) -> Result<AddedItems, Error> {
        let call = json_call(
            Method::POST,
            path(&["v1", "pools", pool, "items"], &[]),
            &json!({ "items": items }),
        )?;
        self.call(call).await
    }

    /// `GET /v1/pools/{pool}/items/{id}`: the item; its `version` is the one its `ETag`
    /// names, to write back with [`Preconditions::if_match`].
    pub async fn get_item(&self, pool: &str, id: &str) -> Result<Item, Error> {
        self.call(Call::new(
            Method::GET,
            path(&["v1", "pools", pool, "items", id], &[]),
        ))
        .await
    }

    /// `GET /v1/pools/{pool}/items`: one page; pass its `next_cursor` in the filter for
    /// the next.
    pub async fn list_items(&self, pool: &str, filter: &ItemFilter) -> Result<ItemPage, Error> {
        let mut query = Vec::new();
        if let Some(state) = filter.state {
            query.push(("state", state.as_str().to_owned()));
        }
        if let Some(holder) = &filter.holder {
            query.push(("holder", holder.clone()));
        }
        if let Some(limit) = filter.limit {
            query.push(("limit", limit.to_string()));
        }
        if let Some(cursor) = &filter.cursor {
            query.push(("cursor", cursor.clone()));
        }
        self.call(Call::new(
            Method::GET,
            path(&["v1", "pools", pool, "items"], &query),
        ))
        .await
    }

    /// Every item the filter matches, page after page.
    pub async fn list_all_items(
        &self,
        pool: &str,
        filter: &ItemFilter,
    ) -> Result<Vec<Item>, Error> {
        let mut filter = filter.clone();
        let mut items = Vec::new();
        loop {
            let page = self.list_items(pool, &filter).await?;
            items.extend(page.items);
            match page.next_cursor {
                Some(cursor) => filter.cursor = Some(cursor),
                None => return Ok(items),
            }
        }
    }

    /// `PUT /v1/pools/{pool}/items/{id}`: creates or replaces the item's data (and
    /// priority), under `put.expected_version` (409 `version_conflict`) and the header
    /// preconditions (412 `precondition_failed`, 409 `lease_lost`).
    pub async fn put_item(
        &self,
        pool: &str,
        id: &str,
        put: &PutItem,
        preconditions: &Preconditions,
    ) -> Result<Put, Error> {
        let call = json_call(
            Method::PUT,
            path(&["v1", "pools", pool, "items", id], &[]),
            put,
        )?;
        let answer = self
            .send(preconditions.apply(call)?, &self.inner.policy)
            .await?;
        Ok(Put {
            item: super::decode(&answer)?,
            created: super::created(&answer),
        })
    }

    /// `PATCH /v1/pools/{pool}/items/{id}`: merges `patch` into the item's data (JSON
    /// merge patch, RFC 7396: `null` removes a field), under the preconditions.
    pub async fn patch_item(
        &self,
        pool: &str,
        id: &str,
        patch: &Value,
        preconditions: &Preconditions,
    ) -> Result<Item, Error> {
        let call = json_call(
            Method::PATCH,
            path(&["v1", "pools", pool, "items", id], &[]),
            patch,
        )?;
        self.call(preconditions.apply(call)?).await
    }

    /// `DELETE /v1/pools/{pool}/items/{id}`, under the preconditions.
    pub async fn delete_item(
        &self,
        pool: &str,
        id: &str,
        preconditions: &Preconditions,
    ) -> Result<(), Error> {
        let call = Call::new(
            Method::DELETE,
            path(&["v1", "pools", pool, "items", id], &[]),
        );
        self.send(preconditions.apply(call)?, &self.inner.policy)
            .await
            .map(|_| ())
    }
}
