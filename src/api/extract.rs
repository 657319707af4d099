//! Extractors whose every rejection is an `ApiError`, so bad input is answered with
//! problem+json like every other error: the caller's tenant, path and query parameters,
//! and `Write`, which reads a mutating request's JSON body, preconditions and
//! `Idempotency-Key` in one place.

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::de::DeserializeOwned;
use serde::de::value::{Error as DeError, SeqDeserializer, StrDeserializer};
use serde_path_to_error::Segment;
use sha2::{Digest, Sha256};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::names::Tenant;
use crate::state::AppState;
use crate::store::{EventId, Idempotency, Preconditions};

/// The longest `Idempotency-Key` accepted.
const MAX_IDEMPOTENCY_KEY: usize = 128;

impl FromRequestParts<AppState> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Caller::from_request_parts(parts, state)
            .await
            .map(|caller| caller.tenant)
    }
}

/// The caller: its tenant and its key, for what outlives one answer (a live stream ends
/// when its key is revoked). Authenticated and admitted as [`Tenant`] is.
impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let authorization = parts
            .headers
            .get(header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        let caller = state.auth().caller(authorization)?;
        if let Some(limit) = state.rate_limit() {
            state.store().admit(&caller.tenant, limit).await?;
        }
        Ok(caller)
    }
}

/// Path parameters as their types (`PathParams<PoolName>`, `PathParams<(PoolName,
/// ItemId)>`), read in the order the route names them; a bad one is a 400 naming it.
pub struct PathParams<T>(pub T);

impl<T, S> FromRequestParts<S> for PathParams<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let raw = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::invalid("path", e.body_text()))?;
        let (names, values): (Vec<&str>, Vec<&str>) = raw.iter().unzip();
        let read = match values.as_slice() {
            [one] => serde_path_to_error::deserialize(StrDeserializer::<DeError>::new(one)),
            many => serde_path_to_error::deserialize(SeqDeserializer::<_, DeError>::new(
                many.iter().copied(),
            )),
        };
        read.map(PathParams).map_err(|e| {
            let field = match e.path().iter().next() {
                Some(Segment::Seq { index }) => names.get(*index).copied(),
                _ => names.first().copied(),
            };
            ApiError::invalid(field.unwrap_or("path"), e.inner().to_string())
        })
    }
}

/// Query parameters as their types; a bad one is a 400 naming it.
pub struct QueryParams<T>(pub T);

impl<T, S> FromRequestParts<S> for QueryParams<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let pairs = url::form_urlencoded::parse(query.as_bytes());
        serde_path_to_error::deserialize(serde_urlencoded::Deserializer::new(pairs))
            .map(QueryParams)
            .map_err(|e| refusal("query", &e.path().to_string(), e.inner().to_string()))
    }
}

/// A field that failed to read, as a 400: the path to it (`items[2].priority`), or for a
/// field that is missing, its name (serde reports it at its parent); `whole` when neither
/// says more.
fn refusal(whole: &str, path: &str, detail: String) -> ApiError {
    let missing = detail
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
        .map(|name| match path {
            "." | "" => name.to_owned(),
            parent => format!("{parent}.{name}"),
        });
    let field = match (missing, path) {
        (Some(field), _) => field,
        (None, "." | "") => whole.to_owned(),
        (None, path) => path.to_owned(),
    };
    ApiError::invalid(&field, detail)
}

/// What serde_json says, without the position it appends (`at line 1 column 9`): the
/// field is named instead.
fn json_detail(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let position = format!(" at line {} column {}", error.line(), error.column());
    match text.strip_suffix(&position) {
        Some(detail) if error.line() > 0 => detail.to_owned(),
        _ => text,
    }
}

/// The `Last-Event-ID` header of an event stream: the last event a follower had. An empty
/// one is none (a browser sends it empty before its first event).
pub struct LastEventId(pub Option<EventId>);

impl<S: Send + Sync> FromRequestParts<S> for LastEventId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        const NAME: &str = "Last-Event-ID";
        match header_text(&parts.headers, NAME) {
            Ok(None | Some("")) => Ok(LastEventId(None)),
            Ok(Some(text)) => EventId::parse(text)
                .map(|id| LastEventId(Some(id)))
                .ok_or_else(|| ApiError::invalid(NAME, EventId::RULE)),
            // Not visible ASCII: no event id, refused like any other.
            Err(_) => Err(ApiError::invalid(NAME, EventId::RULE)),
        }
    }
}

/// A mutating request: its JSON body (an empty body reads as `{}`), its preconditions,
/// and its `Idempotency-Key` with the fingerprint that tells a retry from a reuse.
pub struct Write<T> {
    pub body: T,
    pub idempotency: Option<Idempotency>,
    pub preconditions: Preconditions,
}

impl<T: DeserializeOwned> FromRequest<AppState> for Write<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let (parts, body) = request.into_parts();
        let bytes = read_body(
            &parts.headers,
            body,
            state.max_body_bytes(),
            state.body_timeout(),
        )
        .await?;
        let json: &[u8] = if bytes.is_empty() {
            b"{}"
        } else {
            check_json_content_type(&parts.headers)?;
            &bytes
        };
        // Every body is a JSON object: anything else is said so, in the API's words, rather
        // than in the parser's (which would name a type of ours).
        let starts_as_json = json.iter().find(|b| !b.is_ascii_whitespace()).copied();
        if matches!(
            starts_as_json,
            Some(b'[' | b'"' | b'0'..=b'9' | b'-' | b't' | b'f' | b'n')
        ) {
            return Err(ApiError::invalid("body", "the body must be a JSON object"));
        }
        let mut reader = serde_json::Deserializer::from_slice(json);
        let body: T = serde_path_to_error::deserialize(&mut reader)
            .map_err(|e| refusal("body", &e.path().to_string(), json_detail(e.inner())))?;
        reader
            .end()
            .map_err(|e| ApiError::invalid("body", json_detail(&e)))?;

        let preconditions = Preconditions {
            if_match: entity_tags(&parts.headers, header::IF_MATCH, false)?,
            if_none_match: entity_tags(&parts.headers, header::IF_NONE_MATCH, true)?,
            expected_version: None,
            lease_token: header_text(&parts.headers, "lease-token")?
                .map(|t| {
                    t.trim()
                        .parse::<u64>()
                        .ok()
                        .filter(|t| *t <= leasehold_wire::numbers::MAX_SAFE_INTEGER)
                        .ok_or_else(|| {
                            ApiError::invalid("Lease-Token", "must be a token (an integer)")
                        })
                })
                .transpose()?,
        };
        let idempotency = match header_text(&parts.headers, "idempotency-key")? {
            None => None,
            Some(key) => {
                let valid = !key.is_empty()
                    && key.len() <= MAX_IDEMPOTENCY_KEY
                    && key.bytes().all(|b| b.is_ascii_graphic());
                if !valid {
                    return Err(ApiError::invalid(
                        "Idempotency-Key",
                        "must be 1 to 128 visible ASCII characters",
                    ));
                }
                let mut hasher = Sha256::new();
                for piece in [
                    parts.method.as_str(),
                    parts.uri.path(),
                    parts.uri.query().unwrap_or_default(),
                    &preconditions.if_match,
                    &preconditions.if_none_match,
                    header_text(&parts.headers, "lease-token")?.unwrap_or_default(),
                ] {
                    hasher.update(piece.as_bytes());
                    hasher.update(b"\n");
                }
                hasher.update(&bytes);
                Some(Idempotency {
                    key: key.to_owned(),
                    fingerprint: hex::encode(hasher.finalize()),
                })
            }
        };
        Ok(Write {
            body,
            idempotency,
            preconditions,
        })
    }
}

/// The body, bounded in size and in the time it takes to arrive.
async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<Vec<u8>, ApiError> {
    let too_large = || ApiError::PayloadTooLarge(format!("the body is larger than {limit} bytes"));
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(too_large());
    }
    let read = tokio::time::timeout(timeout, Limited::new(body, limit).collect())
        .await
        .map_err(|_| ApiError::RequestTimeout(timeout))?;
    match read {
        Ok(collected) => Ok(collected.to_bytes().to_vec()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Err(e) => Err(ApiError::invalid("body", format!("could not be read: {e}"))),
    }
}

/// `application/json`, or any `application/*+json` (such as `merge-patch+json`).
fn check_json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let mime = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let json =
        mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"));
    if json {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType)
    }
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ApiError> {
    headers
        .get(name)
        .map(|v| {
            v.to_str()
                .map_err(|_| ApiError::invalid(name, "must be visible ASCII"))
        })
        .transpose()
}

/// What `entity_tags` accepts, for the API description: `*`, or elements separated by
/// commas, each an optional `W/` and a quoted tag of visible ASCII, spaces and tabs (no
/// comma); empty elements are allowed, as RFC 9110's list rule says.
pub(super) fn entity_tags_pattern() -> String {
    let element = r#"[ \t]*((W/)?"[\t\x20-\x2B\x2D-\x7E]*")?[ \t]*"#;
    format!(r"^[ \t]*(\*|{element}(,{element})*)[ \t]*$")
}

/// An `If-Match` / `If-None-Match` header as the scripts take it: `*`, or the versions of
/// its entity tags joined by commas. Tags Leasehold never issues match nothing (`x`);
/// weak tags match only under weak comparison (If-None-Match), as RFC 9110 says.
fn entity_tags(
    headers: &HeaderMap,
    name: header::HeaderName,
    weak_comparison: bool,
) -> Result<String, ApiError> {
    let Some(value) = header_text(headers, name.as_str())? else {
        return Ok(String::new());
    };
    let value = value.trim();
    if value == "*" {
        return Ok("*".to_owned());
    }
    let mut versions = Vec::new();
    for tag in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let (weak, tag) = match tag.strip_prefix("W/") {
            Some(rest) => (true, rest),
            None => (false, tag),
        };
        let version = tag
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .ok_or_else(|| {
                ApiError::invalid(name.as_str(), "must be * or entity tags such as \"3\"")
            })?;
        if let Ok(v) = version.parse::<u64>()
            && (!weak || weak_comparison)
        {
            versions.push(v.to_string());
        }
    }
    if versions.is_empty() {
        return Ok("x".to_owned());
    }
    Ok(versions.join(","))
}

/// For a field where `null` says something (`Some(None)`) and leaving it out says nothing
/// (`None`): use with `#[serde(default, deserialize_with = "present")]`.
pub(super) fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    use axum::http::HeaderValue;
    use proptest::prelude::*;
    use regex_automata::meta::Regex;

    fn header_value() -> impl Strategy<Value = String> {
        prop_oneof![
            "[ \t\"W/,*0-9a]{0,12}",
            proptest::collection::vec(r#"[ ]?(W/)?"[0-9a ]{0,3}"[ ]?"#, 0..4)
                .prop_map(|tags| tags.join(",")),
        ]
    }

    proptest! {
        #[test]
        fn entity_tags_are_accepted_exactly_when_their_pattern_matches(value in header_value()) {
            let pattern = Regex::new(&entity_tags_pattern()).expect("the pattern compiles");
            let mut headers = HeaderMap::new();
            headers.insert(header::IF_MATCH, HeaderValue::from_str(&value).expect("a header value"));
            let accepted = entity_tags(&headers, header::IF_MATCH, false).is_ok();
            prop_assert_eq!(accepted, pattern.is_match(&value), "{:?}", value);
        }
    }
}
