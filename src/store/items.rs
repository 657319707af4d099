//! Items: bulk add, read, list, and writes under preconditions (PUT, PATCH, DELETE).

use leasehold_wire::items::ItemState;
use serde::Deserialize;
use serde_json::Value;

use super::StoreError;
use super::pools::flag;
use super::{Answer, Idempotency, Outcome, PoolRef, Quotas, lua_list};
use crate::names::Invalid;
use crate::names::ItemId;
use leasehold_wire::problem::ProblemCode;

/// The largest item data, as compact JSON.
pub const MAX_DATA_BYTES: usize = 64 * 1024;

/// How many times PATCH merges again when the item changes under it.
const PATCH_ATTEMPTS: usize = 16;

/// An item as a script reports it (times in milliseconds since the epoch, data as JSON
/// text). The HTTP layer decides which fields a response shows.
#[derive(Debug, Clone, Deserialize)]
pub struct ItemRecord {
    pub id: String,
    pub state: ItemState,
    pub priority: i64,
    pub version: u64,
    pub holder: Option<String>,
    pub token: Option<u64>,
    /// Lease expiry in ms; 0 = a lease without expiry.
    pub expires: Option<u64>,
    pub attempts: u64,
    pub data: String,
    pub created: u64,
    pub updated: u64,
    /// For a delayed item: when it becomes available, in ms (sent as text).
    #[serde(default, deserialize_with = "super::events::optional_number_text")]
    pub available: Option<u64>,
}

/// An item to add in bulk.
#[derive(Debug)]
pub struct NewItem {
    pub id: ItemId,
    pub priority: i64,
    /// Compact JSON text of an object.
    pub data: String,
    pub available: Available,
}

/// When an item becomes available.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Available {
    #[default]
    Now,
    /// This long from now (by Redis's clock), in ms.
    After(u64),
    /// At this time, in ms since the epoch (now if it has passed).
    At(u64),
}

impl Available {
    /// As the scripts take it (`when_arg` in `lua/lib/idempotency.lua`).
    pub fn arg(self) -> String {
        match self {
            Available::Now => String::new(),
            Available::After(ms) => format!("+{ms}"),
            Available::At(ms) => format!("={ms}"),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct AddedItems {
    #[serde(deserialize_with = "lua_list")]
    pub created: Vec<String>,
    #[serde(deserialize_with = "lua_list")]
    pub existing: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct PutItem {
    pub item: ItemRecord,
    pub created: bool,
}

/// The conditions a write is made under (all optional).
#[derive(Debug, Default, Clone)]
pub struct Preconditions {
    /// `If-Match`: `*` or comma-separated versions; empty when absent.
    pub if_match: String,
    /// `If-None-Match`: `*` or comma-separated versions; empty when absent.
    pub if_none_match: String,
    pub expected_version: Option<u64>,
    pub lease_token: Option<u64>,
}

impl Preconditions {
    fn args(&self) -> [String; 4] {
        let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
        [
            self.if_match.clone(),
            self.if_none_match.clone(),
            opt(self.expected_version),
            opt(self.lease_token),
        ]
    }
}

/// Where a listing goes on: the state index (1..=5, in `lua/list_items.lua`'s order) and
/// the offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct ListCursor(pub u8, pub u64);

#[derive(Deserialize)]
struct ListReply {
    #[serde(deserialize_with = "lua_list")]
    items: Vec<ItemRecord>,
    next: Option<ListCursor>,
}

#[derive(Deserialize)]
struct Deleted {}

/// Checks that merged or given data is an object within the size limit; returns its text.
pub fn data_text(data: &Value) -> Result<String, StoreError> {
    if !data.is_object() {
        return Err(StoreError::Invalid(Invalid::new(
            "data",
            "must be a JSON object",
        )));
    }
    let text = data.to_string();
    if text.len() > MAX_DATA_BYTES {
        return Err(StoreError::TooLarge(format!(
            "data is {} bytes as compact JSON; the limit is {MAX_DATA_BYTES}",
            text.len()
        )));
    }
    Ok(text)
}

/// RFC 7396 JSON merge patch.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// What `put_item.lua` writes: the data, the priority (a PUT's), and for a PATCH the
/// version and creation time of the item its data was merged from.
struct ItemWrite {
    data: String,
    priority: Option<i64>,
    base: Option<(u64, u64)>,
}

impl PoolRef<'_> {
    pub async fn add_items(
        &self,
        idempotency: Option<&Idempotency>,
        items: &[NewItem],
        quotas: &Quotas,
    ) -> Result<Answer<AddedItems>, StoreError> {
        let item_args: Vec<String> = items
            .iter()
            .flat_map(|item| {
                [
                    item.id.to_string(),
                    item.priority.to_string(),
                    item.data.clone(),
                    item.available.arg(),
                ]
            })
            .collect();
        self.creating(&self.scripts().add_items, idempotency, quotas, |reserved| {
            let mut args = vec![
                quotas.max_items_per_pool.to_string(),
                quotas.max_pool_bytes.to_string(),
                flag(reserved),
            ];
            args.extend(item_args.iter().cloned());
            args
        })
        .await?
        .done()
    }

    pub async fn get_item(&self, id: &ItemId) -> Result<ItemRecord, StoreError> {
        let args = [id.to_string()];
        self.read(&self.scripts().get_item, &args).await
    }

    /// A page of items, optionally of one state or one holder, and where the next starts.
    pub async fn list_items(
        &self,
        state: Option<ItemState>,
        holder: Option<&str>,
        cursor: ListCursor,
        limit: u64,
    ) -> Result<(Vec<ItemRecord>, Option<ListCursor>), StoreError> {
        let args = [
            state.map(|s| s.as_str().to_owned()).unwrap_or_default(),
            holder.unwrap_or_default().to_owned(),
            cursor.0.to_string(),
            cursor.1.to_string(),
            limit.to_string(),
        ];
        let page: ListReply = self.read(&self.scripts().list_items, &args).await?;
        Ok((page.items, page.next))
    }

    /// Creates or replaces an item's data (and priority) under preconditions.
    pub async fn put_item(
        &self,
        idempotency: Option<&Idempotency>,
        id: &ItemId,
        data: String,
        priority: Option<i64>,
        preconditions: &Preconditions,
        quotas: &Quotas,
    ) -> Result<Answer<PutItem>, StoreError> {
        let write = ItemWrite {
            data,
            priority,
            base: None,
        };
        self.write_item(idempotency, id, write, preconditions, quotas)
            .await?
            .done()
    }

    /// Applies a JSON merge patch to an item's data: read, merge, then write only if the
    /// item is still at the version merged from (again, a bounded number of times, when
    /// another writer got in between). The caller's own preconditions hold throughout.
    pub async fn patch_item(
        &self,
        idempotency: Option<&Idempotency>,
        id: &ItemId,
        patch: &Value,
        preconditions: &Preconditions,
        quotas: &Quotas,
    ) -> Result<Answer<PutItem>, StoreError> {
        if let Some(idempotency) = idempotency
            && let Some(answer) = self.stored_answer(idempotency).await?
        {
            return Ok(answer);
        }
        for _ in 0..PATCH_ATTEMPTS {
            let (base, data) = match self.get_item(id).await {
                Ok(item) => {
                    let mut data: Value = serde_json::from_str(&item.data).map_err(|e| {
                        StoreError::Internal(format!("stored data is not JSON: {e}"))
                    })?;
                    merge_patch(&mut data, patch);
                    ((item.version, item.created), data_text(&data)?)
                }
                // The script still runs: it answers a replay, a failed If-Match, or 404.
                Err(StoreError::Refused(r)) if r.code == ProblemCode::NotFound => {
                    ((0, 0), String::new())
                }
                Err(e) => return Err(e),
            };
            let outcome = self
                .write_item(
                    idempotency,
                    id,
                    ItemWrite {
                        data,
                        priority: None,
                        base: Some(base),
                    },
                    preconditions,
                    quotas,
                )
                .await?;
            if let Outcome::Done(answer) = outcome {
                return Ok(answer);
            }
        }
        Err(StoreError::Unavailable(format!(
            "item changed under {PATCH_ATTEMPTS} merges in a row"
        )))
    }

    async fn write_item(
        &self,
        idempotency: Option<&Idempotency>,
        id: &ItemId,
        write: ItemWrite,
        preconditions: &Preconditions,
        quotas: &Quotas,
    ) -> Result<Outcome<PutItem>, StoreError> {
        let ItemWrite {
            data,
            priority,
            base,
        } = write;
        let [if_match, if_none_match, expected, token] = preconditions.args();
        let args = [
            id.to_string(),
            data,
            priority.map(|p| p.to_string()).unwrap_or_default(),
            if_match,
            if_none_match,
            expected,
            token,
            base.map(|b| b.0.to_string()).unwrap_or_default(),
            base.map(|b| b.1.to_string()).unwrap_or_default(),
            quotas.max_items_per_pool.to_string(),
            quotas.max_pool_bytes.to_string(),
        ];
        self.creating(&self.scripts().put_item, idempotency, quotas, |reserved| {
            let mut args = args.to_vec();
            args.push(flag(reserved));
            args
        })
        .await
    }

    pub async fn delete_item(
        &self,
        idempotency: Option<&Idempotency>,
        id: &ItemId,
        preconditions: &Preconditions,
    ) -> Result<Answer<()>, StoreError> {
        let [if_match, if_none_match, expected, token] = preconditions.args();
        let args = [id.to_string(), if_match, if_none_match, expected, token];
        let answer: Answer<Deleted> = self
            .script(&self.scripts().delete_item, idempotency, &args)
            .await?
            .done()?;
        Ok(Answer {
            value: (),
            replayed: answer.replayed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut target = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge_patch(&mut target, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(target, json!({"a": "z", "c": {"d": "e"}}));
        let mut target = json!({"a": [1, 2]});
        merge_patch(&mut target, &json!({"a": [3], "n": {"x": 1}}));
        assert_eq!(target, json!({"a": [3], "n": {"x": 1}}));
    }

    #[test]
    fn data_must_be_a_small_object() {
        assert!(data_text(&json!({"a": 1})).is_ok());
        assert!(matches!(
            data_text(&json!([1])),
            Err(StoreError::Invalid(_))
        ));
        let big = json!({"a": "x".repeat(MAX_DATA_BYTES)});
        assert!(matches!(data_text(&big), Err(StoreError::TooLarge(_))));
    }
}
