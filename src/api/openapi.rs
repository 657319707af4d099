//! The API description: `GET /openapi.json` (OpenAPI 3.1) and `GET /docs`, a page that
//! renders it.
//!
//! The description is generated from the code, so it cannot drift from what the server
//! does: each handler's `#[utoipa::path]` gives its path, parameters, body and answers, and
//! the route table in `api/mod.rs` registers handler and description together; bodies and
//! answers derive their schemas from the types the handlers use; name patterns come from
//! `names`, numeric ranges from the constants the handlers check, time zones from the
//! database the server looks them up in, and problems from [`ApiError::catalogue`].
//!
//! What every operation of a kind shares is added here once, by [`Spec::new`]: every
//! answer's `X-Request-Id`; on `/v1` the bearer key, 400, 401, 429, 500 and 503 (and 404
//! where the path names something); on writes `Idempotency-Key`, `Idempotent-Replayed`,
//! 408, 409 `idempotency_key_reused`, 413 and 415. An error status a handler declares gets the
//! problem body of its status, listing the codes that status can carry.

use std::collections::BTreeMap;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::{Map, Value, json};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
use utoipa::openapi::{RefOr, Schema};

use super::counters::{Period, TimeZoneName};
use super::items::ItemCursor;
use crate::store::EventId;
use leasehold_wire::numbers::{PageLimit, Token};
use utoipa::{OpenApi, PartialSchema, ToSchema};

use crate::error::ApiError;
use crate::names::{CounterName, Holder, ItemId, PoolName};
use crate::state::AppState;

/// The parts of the description that no handler owns: the title, the overview and the
/// order of the tags.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Leasehold",
        description = "Share out work among many app instances without overlap: claim items from pools under leases with fencing tokens, write item data under version checks, and draw per-day sequence numbers. All state lives in Redis; every state change is one Lua script.\n\nErrors are `application/problem+json` (RFC 9457) with a stable `code` (the `Problem<status>` schemas list them). A path this API does not have is 404 `not_found`; a method a path does not take is 405 `method_not_allowed`, with `Allow`. Times are RFC 3339 UTC strings with milliseconds. Bodies are JSON; unknown fields are refused with 400.",
    ),
    tags(
        (name = "pools", description = "Named sets of items to share out"),
        (name = "items", description = "Items and their data, written under preconditions"),
        (name = "leases", description = "Claiming, renewing, releasing and completing items"),
        (name = "events", description = "Every change to a pool's items: paged, or live as Server-Sent Events"),
        (name = "counters", description = "Per-tenant sequences, optionally per day"),
        (name = "operations", description = "Health, readiness, metrics and this description"),
    ),
    // Schemas only parameters refer to (bodies and answers bring their own).
    components(schemas(
        crate::error::Problem<'static>,
        PoolName,
        ItemId,
        Holder,
        CounterName,
        EntityTags,
        Token,
        PageLimit,
        ItemCursor,
        EventId,
        Period,
        TimeZoneName
    ))
)]
pub struct ApiDoc;

/// The finished description, serialized once when the router is built: as `serve` with
/// keys answers (a key required), and as a deployment that also takes requests without a
/// key answers (`dev`, or `serve --allow-anonymous`).
#[derive(Clone)]
pub struct Spec {
    keyed: Bytes,
    anonymous: Bytes,
}

impl Spec {
    /// Completes what the handlers declared (see the module docs) and serializes it.
    pub fn new(openapi: utoipa::openapi::OpenApi) -> Self {
        let mut doc =
            serde_json::to_value(&openapi).expect("an OpenAPI document serializes to JSON");
        complete(&mut doc);
        let mut anonymous = doc.clone();
        doc["security"] = json!([{ BEARER: [] }]);
        anonymous["security"] = json!([{ BEARER: [] }, {}]);
        let bytes =
            |doc: &Value| Bytes::from(serde_json::to_vec(doc).expect("a JSON value serializes"));
        Spec {
            keyed: bytes(&doc),
            anonymous: bytes(&anonymous),
        }
    }
}

/// This description, as this server answers: with the key optional where requests
/// without one are accepted.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "This description (OpenAPI 3.1)", body = Object))
)]
pub async fn openapi_json(
    State(app): State<AppState>,
    Extension(spec): Extension<Spec>,
) -> Response {
    let anonymous = app.auth().authenticate(None).is_ok();
    let body = if anonymous {
        spec.anonymous
    } else {
        spec.keyed
    };
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// A page that renders `/openapi.json` for people: self-contained, so it works where the
/// server has no way out to the internet.
#[utoipa::path(
    get,
    path = "/docs",
    tag = "operations",
    responses((status = 200, description = "The API reference page", content_type = "text/html", body = String))
)]
pub async fn docs() -> Html<&'static str> {
    Html(include_str!("docs.html"))
}

/// The security scheme's name in the description.
const BEARER: &str = "bearer";

const PROBLEM_JSON: &str = "application/problem+json";

/// Statuses every `/v1` operation can answer: a bad name, query or body; no valid key;
/// over the tenant's rate limit; a fault; Redis out of reach.
const V1_STATUSES: [u16; 5] = [400, 401, 429, 500, 503];
/// Statuses every write can answer besides: a body that did not arrive in time, a reused
/// `Idempotency-Key`, a body too large or not JSON.
const WRITE_STATUSES: [u16; 4] = [408, 409, 413, 415];
/// Refusals a script decides, stored with an `Idempotency-Key` and replayed like a success.
const REPLAYED_STATUSES: [u16; 4] = [404, 409, 412, 428];

/// The problem codes of one status, with what each means.
type Codes<'a> = BTreeMap<u16, Vec<(&'a str, &'a str)>>;

fn complete(doc: &mut Value) {
    let catalogue = ApiError::catalogue();
    let mut codes: Codes = BTreeMap::new();
    for (status, code, meaning) in &catalogue {
        codes
            .entry(status.as_u16())
            .or_default()
            .push((code, meaning));
    }

    let components = object(&mut doc["components"]);
    let schemas = object(components.entry("schemas").or_insert(json!({})));
    for (status, codes) in &codes {
        let names: Vec<&str> = codes.iter().map(|(code, _)| *code).collect();
        schemas.insert(
            format!("Problem{status}"),
            json!({
                "description": format!("A problem answered with status {status}"),
                "allOf": [
                    { "$ref": "#/components/schemas/Problem" },
                    { "type": "object", "properties": {
                        "status": { "const": status },
                        "code": { "type": "string", "enum": names },
                    }},
                ],
            }),
        );
    }
    // `available_at` or `delay_ms`, not both: a rule between two fields, stated here.
    let not_both = json!({ "required": ["available_at", "delay_ms"] });
    if let Some(requeue) = schemas
        .get_mut("RequeueBody")
        .and_then(Value::as_object_mut)
    {
        requeue.insert("not".to_owned(), not_both.clone());
    }
    if let Some(item) = schemas
        .get_mut("AddItemsBody")
        .and_then(|body| body.pointer_mut("/properties/items/items"))
        .and_then(Value::as_object_mut)
    {
        item.insert("not".to_owned(), not_both);
    }
    // `{date}` needs period `day`: a rule between two fields, which derives cannot state.
    if let Some(next) = schemas.get_mut("NextBody").and_then(Value::as_object_mut) {
        next.insert(
            "if".to_owned(),
            json!({ "properties": { "period": { "const": "none" } }, "required": ["period"] }),
        );
        next.insert(
            "then".to_owned(),
            json!({ "properties": { "format": { "not": { "type": "string", "pattern": "\\{date\\}" } } } }),
        );
    }
    components.insert(
        "headers".to_owned(),
        json!({
            "X-Request-Id": {
                "description": "The request's id: the caller's own X-Request-Id when it is 1 to 128 visible ASCII characters, else a new UUID. The server's log lines for the request carry it.",
                "required": true,
                "schema": { "type": "string", "pattern": VISIBLE_ASCII },
            },
            "Idempotent-Replayed": {
                "description": "`true` when this is the stored answer to an earlier request with the same Idempotency-Key.",
                "schema": { "type": "string", "enum": ["true"] },
            },
            "Retry-After": {
                "description": "Seconds to wait before trying again.",
                "required": true,
                "schema": { "type": "integer", "minimum": 1 },
            },
        }),
    );
    let mut responses = Map::new();
    for status in V1_STATUSES.into_iter().chain(WRITE_STATUSES) {
        responses.insert(
            format!("Problem{status}"),
            problem_response(status, &codes, None, false),
        );
    }
    components.insert("responses".to_owned(), Value::Object(responses));
    components.insert(
        "securitySchemes".to_owned(),
        json!({ BEARER: {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key from `leasehold keygen --tenant T`: the tenant always comes from the key. `leasehold serve` requires one on every `/v1` request. `leasehold dev` (and `serve --allow-anonymous`) also accepts requests without a key, as the tenant `dev`, and then says so in this description by making the key optional. A key that is presented must be valid everywhere: an unknown or revoked key is 401 `unauthorized`.",
        }}),
    );

    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, operation) in item.iter_mut() {
            if matches!(method.as_str(), "get" | "put" | "post" | "patch" | "delete") {
                complete_operation(path, method, object(operation), &codes);
            }
        }
    }
}

fn complete_operation(path: &str, method: &str, operation: &mut Map<String, Value>, codes: &Codes) {
    let v1 = path.starts_with("/v1/");
    let write = v1 && method != "get";
    if !v1 {
        operation.insert("security".to_owned(), json!([]));
    }
    // A header or query value is text, never JSON null; a JSON body of `null` is refused
    // too, so an optional body is one that may be left out, not one that may be null.
    if let Some(parameters) = operation
        .get_mut("parameters")
        .and_then(Value::as_array_mut)
    {
        for parameter in parameters {
            not_null(&mut parameter["schema"]);
        }
    }
    if let Some(content) = operation
        .get_mut("requestBody")
        .and_then(|body| body.get_mut("content"))
        .and_then(Value::as_object_mut)
    {
        for media in content.values_mut() {
            not_null(&mut media["schema"]);
        }
    }
    if write {
        let parameters = operation.entry("parameters").or_insert(json!([]));
        if let Some(parameters) = parameters.as_array_mut() {
            parameters.push(idempotency_key_parameter());
        }
    }

    let responses = object(operation.entry("responses").or_insert(json!({})));
    if v1 {
        let mut shared = V1_STATUSES.to_vec();
        if write {
            shared.extend(WRITE_STATUSES);
        }
        for status in shared {
            responses.entry(status.to_string()).or_insert_with(
                || json!({ "$ref": format!("#/components/responses/Problem{status}") }),
            );
        }
        // A path that names something: no such thing, or an empty name (no such route).
        if path.contains('{') {
            responses.entry("404").or_insert_with(|| json!({}));
        }
    }
    for (status, response) in responses.iter_mut() {
        if response.get("$ref").is_some() {
            continue;
        }
        let status: u16 = status.parse().unwrap_or_default();
        let replayed = write && (status < 300 || REPLAYED_STATUSES.contains(&status));
        if status >= 400 {
            let description = response.get("description").and_then(Value::as_str);
            *response = problem_response(status, codes, description, replayed);
            continue;
        }
        let response = object(response);
        let headers = object(response.entry("headers").or_insert(json!({})));
        if let Some(etag) = headers.get_mut("ETag") {
            object(etag).insert("required".to_owned(), json!(true));
        }
        add_headers(headers, status, replayed);
    }
}

/// A problem answer of `status`: its description (by default, the codes it can carry and
/// their meaning), headers and body.
fn problem_response(
    status: u16,
    codes: &Codes,
    description: Option<&str>,
    replayed: bool,
) -> Value {
    let description = description.map(str::to_owned).unwrap_or_else(|| {
        codes
            .get(&status)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|(code, meaning)| format!("`{code}`: {meaning}"))
            .collect::<Vec<_>>()
            .join("; ")
    });
    let mut headers = Map::new();
    add_headers(&mut headers, status, replayed);
    json!({
        "description": description,
        "headers": headers,
        "content": { PROBLEM_JSON: { "schema": { "$ref": format!("#/components/schemas/Problem{status}") } } },
    })
}

fn add_headers(headers: &mut Map<String, Value>, status: u16, replayed: bool) {
    let header = |name: &str| json!({ "$ref": format!("#/components/headers/{name}") });
    headers.insert("X-Request-Id".to_owned(), header("X-Request-Id"));
    if replayed {
        headers.insert(
            "Idempotent-Replayed".to_owned(),
            header("Idempotent-Replayed"),
        );
    }
    if status == 429 || status == 503 {
        headers.insert("Retry-After".to_owned(), header("Retry-After"));
    }
}

/// `oneOf: [null, X]` (how an `Option` is described) becomes `X`.
fn not_null(schema: &mut Value) {
    let Some(variants) = schema.get("oneOf").and_then(Value::as_array) else {
        return;
    };
    let rest: Vec<&Value> = variants
        .iter()
        .filter(|v| v.get("type") != Some(&json!("null")))
        .collect();
    if let [only] = rest[..] {
        *schema = only.clone();
    }
}

/// The JSON object at `value`, made one if it is not.
fn object(value: &mut Value) -> &mut Map<String, Value> {
    if !value.is_object() {
        *value = json!({});
    }
    value.as_object_mut().expect("just made an object")
}

/// 1 to 128 visible ASCII characters: request ids and idempotency keys.
const VISIBLE_ASCII: &str = "^[!-~]{1,128}$";

fn idempotency_key_parameter() -> Value {
    json!({
        "name": "Idempotency-Key",
        "in": "header",
        "required": false,
        "description": "Makes a retry safe: the first answer is stored in the same script as the effect (24 h by default), and a retry with the same key (per pool, or per counter) gets the same answer with `Idempotent-Replayed: true`. The same key with a different request is 409 `idempotency_key_reused`.",
        "schema": { "type": "string", "pattern": VISIBLE_ASCII },
    })
}

/// An `If-Match` / `If-None-Match` value as the server reads it: `*`, or entity tags
/// (`"3"`, `W/"3"`) separated by commas. Tags Leasehold never issued match nothing.
pub struct EntityTags;

impl PartialSchema for EntityTags {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(super::extract::entity_tags_pattern()))
            .description(Some("`*`, or entity tags such as `\"3\"`, comma-separated"))
            .into()
    }
}

impl ToSchema for EntityTags {}

/// `items` of a bulk add: 1 to 1000 items, ids unique within the request.
pub fn new_items() -> RefOr<Schema> {
    ArrayBuilder::new()
        .items(super::items::NewItemBody::schema())
        .min_items(Some(1))
        .max_items(Some(super::items::MAX_BULK))
        // Identical items share their id; ids unique across differing items is a rule
        // JSON Schema cannot state, so the description says it.
        .unique_items(true)
        .description(Some(
            "The items to add; an id may appear once (400 otherwise)",
        ))
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &Bytes) -> Value {
        serde_json::from_slice(bytes).expect("the description is JSON")
    }

    #[test]
    fn the_key_is_optional_only_in_the_description_for_anonymous_servers() {
        let spec = Spec::new(super::super::routes().into_openapi());
        let (mut keyed, mut anonymous) = (parse(&spec.keyed), parse(&spec.anonymous));
        assert_eq!(keyed["security"], json!([{ "bearer": [] }]));
        assert_eq!(anonymous["security"], json!([{ "bearer": [] }, {}]));
        keyed["security"] = Value::Null;
        anonymous["security"] = Value::Null;
        assert_eq!(keyed, anonymous, "they differ in the key only");
    }

    #[test]
    fn an_optional_parameter_is_never_null() {
        let mut schema = json!({ "oneOf": [{ "type": "null" }, { "$ref": "#/x" }] });
        not_null(&mut schema);
        assert_eq!(schema, json!({ "$ref": "#/x" }));
        let mut either = json!({ "oneOf": [{ "type": "string" }, { "type": "integer" }] });
        let before = either.clone();
        not_null(&mut either);
        assert_eq!(either, before, "a real choice stays");
    }
}
