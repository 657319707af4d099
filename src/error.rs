//! `ApiError`: one variant per problem, and the single place where a problem becomes an
//! HTTP status, a stable `code` and an `application/problem+json` body (RFC 9457).
//!
//! Expected refusals decided inside Redis (a lease lost, a version conflict, …) arrive as
//! a [`Refusal`] decoded by `store`; internal faults are logged here with their cause and
//! answered with a generic body, so no Redis error text ever reaches a client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::metrics::Conflict;

pub use crate::store::Refusal;
pub use leasehold_wire::problem::{Current, ProblemCode};

use crate::store::StoreError;

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 `invalid_request`: the field and the rule it broke.
    #[error("{field}: {detail}")]
    InvalidRequest { field: String, detail: String },
    /// 401 `unauthorized`: a missing, malformed or unknown API key.
    #[error("a valid API key is required (Authorization: Bearer <key>)")]
    Unauthorized,
    /// 404 `not_found` for a route that does not exist.
    #[error("no such route")]
    NoRoute,
    /// 405 `method_not_allowed`.
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// 404, 409, 412, 428: decided inside Redis.
    #[error("{}", .0.code.meaning())]
    Refused(Refusal),
    /// 413 `payload_too_large`.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 429 `rate_limited`: the tenant is over its rate limit; Retry-After says when the
    /// next request would be admitted.
    #[error("too many requests for this tenant: retry in {} ms", .retry_after.as_millis())]
    RateLimited { retry_after: std::time::Duration },
    /// 408 `request_timeout`: the body did not arrive in time.
    #[error("the request's body did not arrive within {} s", .0.as_secs())]
    RequestTimeout(std::time::Duration),
    /// 415 `unsupported_media_type`.
    #[error("the body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    /// 503 `backend_unavailable`: Redis could not be reached in time; the outcome of a
    /// write is unknown, so retry it with the same `Idempotency-Key`.
    #[error(
        "the backend could not be reached in time: retry (a write with the same Idempotency-Key: whether it was applied is unknown)"
    )]
    BackendUnavailable(String),
    /// 503 `backend_unavailable` from `/readyz`, saying why when that is safe to show.
    #[error("not ready: {0}")]
    NotReady(String),
    /// 503 `durability_timeout`: the write ran but too few replicas acknowledged it in
    /// time; the outcome is unknown, so retry with the same `Idempotency-Key`.
    #[error("too few replicas acknowledged the write in time; retry with the same Idempotency-Key")]
    DurabilityTimeout(String),
    /// 500 `internal`: a fault of ours, logged with its cause.
    #[error("internal error")]
    Internal(String),
}

impl From<crate::names::Invalid> for ApiError {
    fn from(invalid: crate::names::Invalid) -> Self {
        ApiError::InvalidRequest {
            field: invalid.field,
            detail: invalid.detail,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(cause) => ApiError::BackendUnavailable(cause),
            StoreError::Unacknowledged(cause) => ApiError::DurabilityTimeout(cause),
            StoreError::Refused(refusal) => ApiError::Refused(refusal),
            StoreError::RateLimited { retry_after } => ApiError::RateLimited { retry_after },
            StoreError::Invalid(invalid) => invalid.into(),
            StoreError::TooLarge(detail) => ApiError::PayloadTooLarge(detail),
            StoreError::Internal(cause) => ApiError::Internal(cause),
        }
    }
}

impl ApiError {
    pub fn invalid(field: &str, detail: impl Into<String>) -> Self {
        ApiError::InvalidRequest {
            field: field.to_owned(),
            detail: detail.into(),
        }
    }

    pub fn refused(code: ProblemCode) -> Self {
        ApiError::Refused(Refusal {
            code,
            current: None,
            limit: None,
            quota: None,
            missing: None,
            detail: None,
            replayed: false,
        })
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.problem_code().status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    pub fn code(&self) -> &'static str {
        self.problem_code().as_str()
    }

    /// The problem code this error is answered with.
    pub fn problem_code(&self) -> ProblemCode {
        match self {
            ApiError::InvalidRequest { .. } => ProblemCode::InvalidRequest,
            ApiError::Unauthorized => ProblemCode::Unauthorized,
            ApiError::NoRoute => ProblemCode::NotFound,
            ApiError::MethodNotAllowed => ProblemCode::MethodNotAllowed,
            ApiError::Refused(r) => r.code,
            ApiError::PayloadTooLarge(_) => ProblemCode::PayloadTooLarge,
            ApiError::UnsupportedMediaType => ProblemCode::UnsupportedMediaType,
            ApiError::RequestTimeout(_) => ProblemCode::RequestTimeout,
            ApiError::RateLimited { .. } => ProblemCode::RateLimited,
            ApiError::BackendUnavailable(_) | ApiError::NotReady(_) => {
                ProblemCode::BackendUnavailable
            }
            ApiError::DurabilityTimeout(_) => ProblemCode::DurabilityTimeout,
            ApiError::Internal(_) => ProblemCode::Internal,
        }
    }

    /// Every problem Leasehold answers with: its status, its stable `code` and what it
    /// means, one entry per code, so the API description lists each exactly once.
    pub fn catalogue() -> Vec<(StatusCode, &'static str, &'static str)> {
        ProblemCode::ALL
            .iter()
            .map(|code| {
                let status = StatusCode::from_u16(code.status())
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                (status, code.as_str(), code.meaning())
            })
            .collect()
    }
}

/// The body of every error answer (RFC 9457 problem details plus a stable `code`).
#[derive(Serialize, ToSchema)]
pub(crate) struct Problem<'a> {
    /// `urn:leasehold:problem:<code>`.
    #[serde(rename = "type")]
    kind: String,
    /// The status's reason phrase.
    title: &'a str,
    status: u16,
    /// The stable code to branch on.
    code: &'a str,
    /// For a person: what went wrong.
    detail: String,
    /// With `invalid_request`: the field, header or parameter that broke a rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    /// With a 409 or 412 about an item: the item as it is now.
    #[serde(skip_serializing_if = "Option::is_none")]
    current: Option<&'a Current>,
    /// With `holder_at_capacity`: the holder's lease limit; with `quota_exceeded`: the
    /// value of the limit the write would pass.
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<u64>,
    /// With `quota_exceeded`: the limit the write would pass (`max_pool_bytes`,
    /// `max_items_per_pool` or `max_pools_per_tenant`).
    #[serde(skip_serializing_if = "Option::is_none")]
    quota: Option<&'a str>,
    /// With `quota_exceeded`: what is used of that limit now.
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<u64>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::BackendUnavailable(cause) => tracing::warn!(%cause, "backend unavailable"),
            ApiError::NotReady(why) => tracing::warn!(%why, "not ready"),
            ApiError::DurabilityTimeout(cause) => tracing::warn!(%cause, "durability timeout"),
            ApiError::Internal(cause) => tracing::error!(%cause, "internal error"),
            _ => {}
        }
        let status = self.status();
        let code = self.code();
        let (field, current, limit, replayed) = match &self {
            ApiError::InvalidRequest { field, .. } => (Some(field.as_str()), None, None, false),
            ApiError::Refused(r) => (None, r.current.as_ref(), r.limit, r.replayed),
            _ => (None, None, None, false),
        };
        let quota = match &self {
            ApiError::Refused(r) => r.quota.as_deref(),
            _ => None,
        };
        let detail = match &self {
            ApiError::InvalidRequest { detail, .. } => detail.clone(),
            ApiError::PayloadTooLarge(detail) => detail.clone(),
            ApiError::Refused(Refusal {
                detail: Some(detail),
                ..
            }) => detail.to_string(),
            ApiError::Refused(Refusal { quota: Some(q), .. }) => format!(
                "{} is {}: {} used, and this write would add {}",
                q.name, q.limit, q.usage, q.adds
            ),
            other => other.to_string(),
        };
        let problem = Problem {
            kind: format!("urn:leasehold:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            code,
            detail,
            field,
            current: current.filter(|_| status != StatusCode::NOT_FOUND),
            limit,
            quota: quota.map(|q| q.name.as_str()),
            usage: quota.map(|q| q.usage),
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let ApiError::RateLimited { retry_after } = &self {
            // Whole seconds, rounded up: never earlier than the limiter would admit.
            let seconds = retry_after.as_micros().div_ceil(1_000_000).max(1);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds as u64));
        }
        if replayed {
            headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
        }
        if let ApiError::Refused(refusal) = &self
            && refusal.code != ProblemCode::NotFound
        {
            response.extensions_mut().insert(Conflict(code));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_lists_each_code_once_with_the_status_it_answers() {
        let catalogue = ApiError::catalogue();
        let mut codes: Vec<&str> = catalogue.iter().map(|(_, code, _)| *code).collect();
        codes.sort_unstable();
        let before = codes.len();
        codes.dedup();
        assert_eq!(codes.len(), before, "a code listed twice");
        for error in [
            ApiError::invalid("field", "rule"),
            ApiError::Unauthorized,
            ApiError::NoRoute,
            ApiError::refused(ProblemCode::LeaseLost),
            ApiError::DurabilityTimeout(String::new()),
        ] {
            assert!(
                catalogue
                    .iter()
                    .any(|(status, code, _)| *status == error.status() && *code == error.code()),
                "{error:?} missing"
            );
        }
    }
}
